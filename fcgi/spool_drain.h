/*
 * spool_drain.h - nonflex-jobs' spool drainer: the process that turns the
 * records the workers spooled (spool.h) into stored messages, conversations,
 * events and AI jobs (conversations.h, nf_conv_apply).
 *
 * DESIGN: a child process of nonflex-jobs ("nonflex-spool"), so a slow job
 * (an OpenAI answer taking seconds) never holds up the inbox, and pausing
 * or restarting the job runner leaves ingestion running.  It sleeps on the
 * spool's inotify descriptor (at most a second), drains what is there, and
 * after a failure that asks for a retry (the store down) waits with a
 * growing pause (up to 5 s), keeping its position.  The parent starts it,
 * starts it again (at most once a second) when it dies, and stops it on
 * SIGTERM.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_SPOOL_DRAIN_H
#define NF_SPOOL_DRAIN_H

#include <sys/types.h>

#include <signal.h>

/*
 * Start the drainer for NONFLEX_SPOOL_DIR; 0 (no child) when it is unset.
 * The child keeps the caller's signal handlers: it stops once they set
 * *stop (SIGTERM), and reloads its configuration on SIGHUP
 * (nf_app_request_reload).
 */
pid_t	 nf_spool_drainer_start(volatile sig_atomic_t *stop);
/* In the parent's loop: start it again if it died (rate limited). */
void	 nf_spool_drainer_check(pid_t *);
/* SIGTERM it and wait for it. */
void	 nf_spool_drainer_stop(pid_t);

#endif
