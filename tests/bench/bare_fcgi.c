/*
 * bare_fcgi.c - the benchmark's baseline: a bare FastCGI responder.
 *
 * DESIGN: it does the least a FastCGI worker can do (accept, answer a fixed
 * 200 {"ok":true}, finish) with the same one-request-per-accept loop as
 * nonflex-fcgi, so tests/bench can compare GET /api/tenants/current against
 * the cost of nginx + FastCGI alone.  conf/stack starts it under
 * spawn-fcgi + multiwatch on run/bare.sock when NONFLEX_BENCH=1 and nginx
 * routes /__bench/bare to it.  It reads no input and keeps no state.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <fcgiapp.h>

static volatile sig_atomic_t stop_requested;

/* SIGTERM/SIGINT: finish the current request, then leave the loop. */
static void
on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
	FCGX_ShutdownPending();
}

static void
install_signals(void)
{
	struct sigaction sa = { 0 };

	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

int
main(void)
{
	/* The whole answer is fixed, so it is written in one piece; it is
	 * spelled out because FCGX_FPrintF knows no %zu. */
	static const char reply[] = "Status: 200 OK\r\n"
	    "Content-Type: application/json; charset=utf-8\r\n"
	    "Content-Length: 11\r\n\r\n"
	    "{\"ok\":true}";
	FCGX_Request req;

	if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0) {
		fprintf(stderr, "bare-fcgi: FastCGI initialisation failed\n");
		return EXIT_FAILURE;
	}
	install_signals();
	while (!stop_requested && FCGX_Accept_r(&req) >= 0) {
		FCGX_PutStr(reply, (int)sizeof(reply) - 1, req.out);
		FCGX_Finish_r(&req);
	}
	return EXIT_SUCCESS;
}
