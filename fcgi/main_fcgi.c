/*
 * main_fcgi.c - nonflex-fcgi, the FastCGI worker.
 *
 * DESIGN: spawn-fcgi hands the listening socket in as fd 0 and multiwatch
 * supervises the workers.  Each worker serves one request per accept
 * (FCGX_Accept_r), so a slow request occupies exactly one worker and
 * nothing is shared between requests except the process context
 * (struct nf_app: config, tenants, store and Redis connections).
 * Signals only set flags: SIGHUP asks for a reload before the next
 * request; SIGTERM lets the current request finish, then the loop ends and
 * the process exits 0 (FCGX_ShutdownPending makes a blocked accept give
 * up).  A request that outlives NONFLEX_REQUEST_TIMEOUT_MS, or crashes
 * the worker, costs only itself: watchdog.c logs it with its request id
 * and ends the process, and multiwatch starts a fresh one.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "app.h"
#include "log.h"
#include "nonflex.h"
#include "req.h"
#include "router.h"
#include "watchdog.h"

static volatile sig_atomic_t	stopping;

static void
on_term(int sig)
{
	(void)sig;
	stopping = 1;
	/* Only sets libfcgi's flag, so it is safe here. */
	FCGX_ShutdownPending();
}

static void
on_hup(int sig)
{
	(void)sig;
	nf_app_request_reload();
}

static void
signals(void)
{
	struct sigaction	 sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a SIGTERM must interrupt a blocked accept(). */
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static void
serve(struct nf_app *app, FCGX_Request *fr)
{
	struct nf_req	 r;

	nf_app_maybe_reload(app);
	nf_req_init(&r, app, fr->envp, nf_req_fcgx_read, fr->in);
	/* Disarmed in main() once FCGX_Finish_r has flushed the response. */
	nf_watchdog_arm(r.request_id, r.method_name, r.path, app->cfg.request_timeout_ms);
	nf_router_handle(&r, nf_routes, nf_routes_len);
	if (nf_resp_write(&r, nf_req_fcgx_write, fr->out) < 0)
		nf_warn("client went away before the response was written");
	nf_req_cleanup(&r);
}

int
main(int argc, char *argv[])
{
	struct nf_app	 app;
	struct nf_error	 e;
	FCGX_Request	 fr;

	(void)argc;
	(void)argv;
	nf_error_clear(&e);
	signals();
	if (nf_app_init(&app, "nonflex-fcgi", &e) != NF_OK) {
		nf_error("cannot start: %s", e.message);
		return 1;
	}
	/* Refuse a guessable token key (RFC 8725 3.5): tokens could be forged. */
	if (nf_config_jwt_check(&app.cfg, &e) != NF_OK) {
		nf_error("cannot start: %s", e.message);
		nf_app_cleanup(&app);
		return 1;
	}
	if (FCGX_Init() != 0 || FCGX_InitRequest(&fr, 0, 0) != 0) {
		nf_error("cannot initialize libfcgi");
		nf_app_cleanup(&app);
		return 1;
	}
	if (nf_watchdog_init("nonflex-fcgi", &e) != NF_OK)
		nf_warn("%s", e.message);
	nf_info("worker ready (pid %ld)", (long)getpid());
	while (!stopping && FCGX_Accept_r(&fr) >= 0) {
		serve(&app, &fr);
		FCGX_Finish_r(&fr);
		nf_watchdog_disarm();
	}
	FCGX_Free(&fr, 1);
	nf_info("worker stopping");
	nf_app_cleanup(&app);
	return 0;
}
