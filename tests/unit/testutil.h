/*
 * testutil.h - helpers shared by the Check unit tests: running a suite,
 * temporary directories, free loopback ports, a private redis-server per
 * test program.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_TESTUTIL_H
#define NF_TESTUTIL_H

#include <check.h>

/* A suite called name holding one test case of the same name (*tc). */
Suite	*tu_suite(const char *name, TCase **tc);
/*
 * Run every test of s, free s with its runner, and return the program's
 * exit status: 0 when all passed, 1 otherwise.  tu_run_nofork runs the
 * tests in this process: needed when they share a server this process
 * started, since a forked test's exit would stop it (atexit).
 */
int	 tu_run(Suite *s);
int	 tu_run_nofork(Suite *s);
/*
 * main() of a test program whose tests share one private redis-server:
 * start it (*url holds its URL while the tests run), run make()'s suite
 * with tu_run_nofork, free *url.  77 (skip) when redis-server is missing.
 */
int	 tu_main_redis(Suite *(*make)(void), char **url);

/* New empty directory under $TMPDIR (malloc'd path); removed by tu_rmtree. */
char	*tu_tmpdir(const char *tag);
void	 tu_rmtree(const char *path);
/* A TCP port on 127.0.0.1 that was free a moment ago. */
int	 tu_free_port(void);
/*
 * Start redis-server on 127.0.0.1 with a free port and no persistence;
 * returns its URL ("redis://127.0.0.1:PORT", malloc'd) or NULL when
 * redis-server is not installed (callers then exit 77 = skip).
 */
char	*tu_redis_start(void);
/* Stop (SIGTERM, wait) the server started by tu_redis_start; restart it on
 * the same port (tu_redis_restart) to test reconnects. */
void	 tu_redis_stop(void);
int	 tu_redis_restart(void);
/* Kill it with SIGKILL without waiting for persistence (simulate a crash). */
void	 tu_redis_kill(void);

#endif
