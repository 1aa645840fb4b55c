/*
 * spool_drain.c - see spool_drain.h.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "conversations.h"
#include "log.h"
#include "nonflex.h"
#include "spool.h"
#include "spool_drain.h"

#define BATCH		256     /* records between two looks at the signals */
#define IDLE_MS		1000    /* longest sleep: a missed wake-up costs this */
#define PAUSE_MAX_MS	5000
#define RESTART_MS	1000

/* The stop flag of nonflex-jobs' signal handlers, which the child inherits. */
static volatile sig_atomic_t	*d_stop;

static enum nf_err
apply(struct json_object *rec, void *arg, struct nf_error *e)
{
	return nf_conv_apply(arg, rec, e);
}

/* Sleep until the spool changes, ms pass, or a signal comes. */
static void
d_wait(struct nf_spool *sp, int ms)
{
	struct pollfd	 p = { .fd = nf_spool_watch_fd(sp), .events = POLLIN };

	if (p.fd >= 0)
		poll(&p, 1, ms);
	else
		usleep((useconds_t)ms * 1000);
	nf_spool_watch_clear(sp);
}

static int
d_run(void)
{
	struct nf_spool	*sp = NULL;
	struct nf_app	 app;
	struct nf_error	 e;
	int64_t		 pause = 0;
	int		 done;

	prctl(PR_SET_NAME, "nonflex-spool", 0, 0, 0);
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	while (!*d_stop && nf_app_init(&app, "nonflex-spool", &e) != NF_OK) {
		nf_error("spool drainer waits for its configuration: %s", e.message);
		sleep(5);
	}
	if (*d_stop)
		return 0;
	while (!*d_stop && nf_spool_open(app.cfg.spool_dir, &sp, &e) != NF_OK)
		sleep(1);
	nf_info("spool drainer started on %s", app.cfg.spool_dir);
	while (!*d_stop) {
		nf_app_maybe_reload(&app);
		/* watch before draining: a write during the drain wakes the wait */
		nf_spool_watch_fd(sp);
		if (nf_spool_drain(sp, apply, &app, BATCH, &done, &e) != NF_OK) {
			pause = pause == 0 ? 100 : (pause * 2 > PAUSE_MAX_MS ? PAUSE_MAX_MS :
			    pause * 2);
			nf_warn("spool drainer: %s; trying again in %lld ms", e.message,
			    (long long)pause);
			usleep((useconds_t)pause * 1000);
			continue;
		}
		pause = 0;
		if (done < BATCH)
			d_wait(sp, IDLE_MS);
	}
	nf_info("spool drainer stopping");
	nf_spool_free(sp);
	nf_app_cleanup(&app);
	return 0;
}

pid_t
nf_spool_drainer_start(volatile sig_atomic_t *stop)
{
	const char	*dir = getenv("NONFLEX_SPOOL_DIR");
	pid_t		 pid;

	d_stop = stop;
	if (dir == NULL || *dir == '\0')
		return 0;
	if ((pid = fork()) < 0) {
		nf_error("spool drainer: fork: %s", strerror(errno));
		return 0;
	}
	if (pid == 0)
		_exit(d_run());
	return pid;
}

void
nf_spool_drainer_check(pid_t *pid)
{
	static int64_t	 next;
	int		 status;

	if (*pid > 0 && waitpid(*pid, &status, WNOHANG) == *pid) {
		nf_warn("spool drainer %ld exited (status %d); starting another",
		    (long)*pid, status);
		*pid = 0;
	}
	if (*pid > 0 || getenv("NONFLEX_SPOOL_DIR") == NULL || nf_mono_ms() < next)
		return;
	next = nf_mono_ms() + RESTART_MS;
	*pid = nf_spool_drainer_start(d_stop);
}

void
nf_spool_drainer_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}
