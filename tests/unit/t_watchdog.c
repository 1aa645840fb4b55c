/*
 * t_watchdog.c - unit tests for watchdog.c: the async-signal-safe log line,
 * the per-request deadline (a stuck child logs its request id and exits
 * 70), disarming, and the crash handlers (SIGSEGV, SIGABRT, stack
 * overflow: one line naming the request, then death by the same signal).
 *
 * Each scenario runs in a forked child whose stderr is a pipe, so the
 * real handlers run and the parent checks exactly what a worker would
 * have written to its log.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <sys/resource.h>
#include <sys/wait.h>

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "json.h"
#include "nonflex.h"
#include "testutil.h"
#include "watchdog.h"

/* Parse one line strictly; fails the test when it is not one JSON object. */
static struct json_object *
parse_line(const char *line, size_t len)
{
	struct json_object	*o = NULL;
	struct nf_error		 e;

	ck_assert_msg(len > 2 && line[len - 1] == '\n', "no newline: %s", line);
	ck_assert_msg(nf_json_parse(line, len - 1, &o, &e) == NF_OK, "bad JSON (%s): %s",
	    e.message, line);
	ck_assert(json_object_is_type(o, json_type_object));
	return o;
}

static const char *
str(struct json_object *o, const char *key)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	return json_object_get_string(v);
}

START_TEST(format_line)
{
	char			 buf[2048], small[40];
	struct json_object	*o;
	size_t			 len;

	/* No request: no request fields. */
	len = nf_watchdog_format(buf, sizeof(buf), 1795601400123LL, "hello \"x\"", "n", -42);
	o = parse_line(buf, len);
	ck_assert_str_eq(str(o, "ts"), "2026-11-25T10:10:00.123Z");
	ck_assert_str_eq(str(o, "level"), "error");
	ck_assert_str_eq(str(o, "msg"), "hello \"x\"");
	ck_assert_str_eq(str(o, "n"), "-42");
	ck_assert_ptr_null(str(o, "request_id"));
	ck_assert_int_eq(atoi(str(o, "pid")), (int)getpid());
	json_object_put(o);

	/* Epoch start, leap day, end of a century. */
	len = nf_watchdog_format(buf, sizeof(buf), 0, "m", NULL, 0);
	o = parse_line(buf, len);
	ck_assert_str_eq(str(o, "ts"), "1970-01-01T00:00:00.000Z");
	json_object_put(o);
	len = nf_watchdog_format(buf, sizeof(buf), 951782399999LL, "m", NULL, 0);
	o = parse_line(buf, len);
	ck_assert_str_eq(str(o, "ts"), "2000-02-28T23:59:59.999Z");
	json_object_put(o);
	len = nf_watchdog_format(buf, sizeof(buf), 951868800000LL, "m", NULL, 0);
	o = parse_line(buf, len);
	ck_assert_str_eq(str(o, "ts"), "2000-03-01T00:00:00.000Z");
	json_object_put(o);

	/* Client text in the path is escaped: no forged line, valid UTF-8. */
	nf_watchdog_arm("rid-42", "POST", "/a\"b\\c\r\n{\"x\":1}\xff\x01", 0);
	len = nf_watchdog_format(buf, sizeof(buf), 0, "m", NULL, 0);
	ck_assert_ptr_null(memchr(buf, '\n', len - 1));
	ck_assert_ptr_null(memchr(buf, '\r', len));
	o = parse_line(buf, len);
	ck_assert_str_eq(str(o, "request_id"), "rid-42");
	ck_assert_str_eq(str(o, "method"), "POST");
	ck_assert_str_eq(str(o, "path"), "/a\"b\\c\r\n{\"x\":1}\xc3\xbf\x01");
	json_object_put(o);
	nf_watchdog_disarm();
	len = nf_watchdog_format(buf, sizeof(buf), 0, "m", NULL, 0);
	o = parse_line(buf, len);
	ck_assert_ptr_null(str(o, "request_id"));
	json_object_put(o);

	/* A buffer too small truncates but still ends the line. */
	len = nf_watchdog_format(small, sizeof(small), 0, "a long message here", "k", 1);
	ck_assert_uint_eq(len, strlen(small));
	ck_assert(len < sizeof(small));
	ck_assert_str_eq(small + len - 2, "}\n");
	ck_assert_uint_eq(nf_watchdog_format(small, 3, 0, "m", NULL, 0), 0);
}
END_TEST

enum scenario { HANG, DISARMED, SEGV, ABORT, OVERFLOW };

static volatile int	sink;

/* Recursion the compiler cannot turn into a loop. */
static int
deep(int n)
{
	volatile char	 pad[1024];

	pad[0] = (char)n;
	sink = pad[0];
	if (sink == 1000)   /* never true at run time; keeps -Winfinite-recursion quiet */
		return 0;
	return deep(n + 1) + pad[0];
}

static int *volatile nowhere;

/* See fcgi/h_dev.c: a real invalid write, not an UBSan report. */
__attribute__((no_sanitize("undefined"))) static void
write_nowhere(void)
{
	*nowhere = 1;
}

static void
child(enum scenario sc)
{
	struct rlimit	 nocore = { 0, 0 };
	struct nf_error	 e;

	setrlimit(RLIMIT_CORE, &nocore);
	if (nf_watchdog_init("t_watchdog", &e) != NF_OK)
		_exit(99);
	nf_watchdog_arm("req-abc.1", "POST", "/api/dev/hang", sc == HANG ? 150 : 10000);
	switch (sc) {
	case HANG:
		for (;;)
			sink++;
	case DISARMED:
		nf_watchdog_arm("req-abc.1", "POST", "/api/dev/hang", 100);
		nf_watchdog_disarm();
		usleep(400 * 1000);
		_exit(0);
	case SEGV:
		write_nowhere();
		break;
	case ABORT:
		abort();
	case OVERFLOW:
		sink = deep(0);
		break;
	}
	_exit(98);
}

/* Run a scenario; returns the wait status, the child's stderr in out. */
static int
run(enum scenario sc, char *out, size_t outsz, int64_t *ms)
{
	int	 fds[2], status = 0;
	pid_t	 pid;
	size_t	 got = 0;
	ssize_t	 n;
	int64_t	 t0 = nf_mono_ms();

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		child(sc);
	}
	close(fds[1]);
	while (got + 1 < outsz && (n = read(fds[0], out + got, outsz - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	*ms = nf_mono_ms() - t0;
	return status;
}

/* The one line a scenario wrote, checked for the request fields. */
static struct json_object *
the_line(const char *out)
{
	struct json_object	*o;
	const char		*nl = strchr(out, '\n');

	ck_assert_msg(nl != NULL && nl[1] == '\0', "want exactly one line, got: %s", out);
	o = parse_line(out, (size_t)(nl - out) + 1);
	ck_assert_str_eq(str(o, "prog"), "t_watchdog");
	ck_assert_str_eq(str(o, "request_id"), "req-abc.1");
	ck_assert_str_eq(str(o, "method"), "POST");
	ck_assert_str_eq(str(o, "path"), "/api/dev/hang");
	ck_assert_str_eq(str(o, "level"), "error");
	return o;
}

START_TEST(deadline_fires)
{
	char			 out[4096];
	struct json_object	*o;
	int64_t			 ms;
	int			 st = run(HANG, out, sizeof(out), &ms);

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == NF_WATCHDOG_EXIT,
	    "status %#x, output %s", st, out);
	ck_assert_msg(ms >= 140 && ms < 3000, "deadline after %lld ms", (long long)ms);
	o = the_line(out);
	ck_assert_str_eq(str(o, "timeout_ms"), "150");
	ck_assert(strstr(str(o, "msg"), "deadline") != NULL);
	json_object_put(o);
}
END_TEST

START_TEST(disarm_cancels)
{
	char	 out[4096];
	int64_t	 ms;
	int	 st = run(DISARMED, out, sizeof(out), &ms);

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x, output %s", st, out);
	ck_assert_str_eq(out, "");
}
END_TEST

static void
expect_crash(enum scenario sc, int sig, const char *name)
{
	char			 out[4096];
	struct json_object	*o;
	int64_t			 ms;
	int			 st = run(sc, out, sizeof(out), &ms);

	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == sig, "status %#x, output %s", st, out);
	o = the_line(out);
	ck_assert(strstr(str(o, "msg"), name) != NULL);
	ck_assert_int_eq(atoi(str(o, "signal")), sig);
	json_object_put(o);
}

START_TEST(crash_segv)
{
	expect_crash(SEGV, SIGSEGV, "SIGSEGV");
}
END_TEST

START_TEST(crash_abort)
{
	expect_crash(ABORT, SIGABRT, "SIGABRT");
}
END_TEST

START_TEST(crash_stack_overflow)
{
	/* Only reported because the handler runs on its own stack. */
	expect_crash(OVERFLOW, SIGSEGV, "SIGSEGV");
}
END_TEST

int
main(void)
{
	TCase	*tc;
	Suite	*s = tu_suite("watchdog", &tc);

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, format_line);
	tcase_add_test(tc, deadline_fires);
	tcase_add_test(tc, disarm_cancels);
	tcase_add_test(tc, crash_segv);
	tcase_add_test(tc, crash_abort);
	tcase_add_test(tc, crash_stack_overflow);
	return tu_run(s);
}
