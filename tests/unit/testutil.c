/*
 * testutil.c - see testutil.h.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nonflex.h"
#include "testutil.h"

static pid_t	redis_pid = -1;
static int	redis_port;

Suite *
tu_suite(const char *name, TCase **tc)
{
	Suite	*s = suite_create(name);

	*tc = tcase_create(name);
	suite_add_tcase(s, *tc);
	return s;
}

static int
run(Suite *s, enum fork_status fork)
{
	SRunner	*sr = srunner_create(s);
	int	 failed;

	srunner_set_fork_status(sr, fork);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

int
tu_run(Suite *s)
{
	return run(s, CK_FORK_GETENV);
}

int
tu_run_nofork(Suite *s)
{
	return run(s, CK_NOFORK);
}

int
tu_main_redis(Suite *(*make)(void), char **url)
{
	int	 rc;

	if ((*url = tu_redis_start()) == NULL)
		return 77;
	rc = tu_run_nofork(make());
	free(*url);
	*url = NULL;
	return rc;
}

char *
tu_tmpdir(const char *tag)
{
	const char	*base = getenv("TMPDIR");
	char		*p;

	p = nf_xasprintf("%s/nf-%s-XXXXXX", base != NULL ? base : "/tmp", tag);
	if (mkdtemp(p) == NULL) {
		perror("mkdtemp");
		abort();
	}
	return p;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(path);
}

void
tu_rmtree(const char *path)
{
	if (path != NULL)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int
tu_free_port(void)
{
	struct sockaddr_in	 sa;
	socklen_t		 len = sizeof(sa);
	int			 fd, port;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		abort();
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		abort();
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static int
port_open(int port)
{
	struct sockaddr_in	 sa;
	int			 fd, ok;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static int
redis_spawn(void)
{
	char	 portstr[16];
	pid_t	 pid;
	int	 i, devnull;

	snprintf(portstr, sizeof(portstr), "%d", redis_port);
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		devnull = open("/dev/null", O_RDWR);
		dup2(devnull, 1);
		dup2(devnull, 2);
		execlp("redis-server", "redis-server", "--port", portstr,
		    "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		    "--daemonize", "no", (char *)NULL);
		_exit(127);
	}
	redis_pid = pid;
	for (i = 0; i < 200; i++) {
		if (port_open(redis_port))
			return 0;
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			redis_pid = -1;
			return -1;
		}
		usleep(20000);
	}
	return -1;
}

static void
stop_at_exit(void)
{
	tu_redis_kill();
}

char *
tu_redis_start(void)
{
	if (system("command -v redis-server >/dev/null 2>&1") != 0)
		return NULL;
	redis_port = tu_free_port();
	if (redis_spawn() != 0)
		return NULL;
	atexit(stop_at_exit);
	return nf_xasprintf("redis://127.0.0.1:%d", redis_port);
}

void
tu_redis_stop(void)
{
	if (redis_pid <= 0)
		return;
	kill(redis_pid, SIGTERM);
	waitpid(redis_pid, NULL, 0);
	redis_pid = -1;
}

void
tu_redis_kill(void)
{
	if (redis_pid <= 0)
		return;
	kill(redis_pid, SIGKILL);
	waitpid(redis_pid, NULL, 0);
	redis_pid = -1;
}

int
tu_redis_restart(void)
{
	tu_redis_stop();
	return redis_spawn();
}
