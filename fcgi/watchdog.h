/*
 * watchdog.h - per-request deadline and crash reporting for a worker.
 *
 * DESIGN: a worker serves one request at a time and multiwatch replaces a
 * worker that exits, so the cheapest way out of a stuck request (an
 * endless loop, a blocked read) is to end the process: nginx answers
 * 502 for that one request and the pool is whole again a moment later
 * (RELIABILITY battery 58, 59).  The deadline is a SIGALRM timer armed
 * when a request starts and disarmed after its response; the crash
 * handlers (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) run on their own
 * stack so a stack overflow is reported too.  Both write one JSON log line
 * naming the request id with async-signal-safe calls only (write(2), no
 * stdio, no malloc), then the deadline _exit()s and a crash re-raises its
 * signal with the default action, so the exit status and any core dump
 * stay truthful.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_WATCHDOG_H
#define NF_WATCHDOG_H

#include <stddef.h>
#include <stdint.h>

#include "nonflex.h"

/* Exit status of a worker whose request ran past its deadline (EX_SOFTWARE). */
#define NF_WATCHDOG_EXIT 70

/*
 * Install the crash handlers (on an alternate signal stack) and the
 * deadline handler.  prog names the program in the lines written (copied).
 * NF_ESYSTEM when the kernel refuses; the worker can still run without.
 */
enum nf_err	 nf_watchdog_init(const char *prog, struct nf_error *);

/*
 * A request starts: remember its id, method and path (copied; the path is
 * JSON-escaped and capped when written) for the crash and deadline lines,
 * and arm the deadline to fire after timeout_ms (<= 0: no deadline).
 * Cannot fail.
 */
void		 nf_watchdog_arm(const char *request_id, const char *method,
		    const char *path, int64_t timeout_ms);

/* The response is out: cancel the deadline and forget the request.
 * Cannot fail. */
void		 nf_watchdog_disarm(void);

/*
 * Format one log line into buf (cap bytes, NUL-terminated, ends in '\n')
 * with async-signal-safe code only: {"ts","level":"error","prog","msg",
 * "request_id"?, "method"?, "path"?, key: value}.  Returns its length
 * (truncated lines still end in "}\n").  Exposed for the unit tests.
 */
size_t		 nf_watchdog_format(char *buf, size_t cap, int64_t now_ms, const char *msg,
		    const char *key, long value);

#endif
