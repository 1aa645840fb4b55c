/*
 * testutil.h - helpers shared by the Check unit tests: temporary
 * directories, free loopback ports, a private redis-server per test program.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_TESTUTIL_H
#define NF_TESTUTIL_H

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
