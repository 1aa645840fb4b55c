/*
 * watchdog.c - per-request deadline and crash reporting (see watchdog.h).
 *
 * DESIGN: everything a signal handler touches is static storage filled
 * before the handler can run: the request fields are copied at arm time
 * and published by a sig_atomic_t flag, the line is formatted into a
 * stack buffer by hand-written code (no snprintf, no gmtime, no json-c:
 * none of them is async-signal-safe) and sent with a single write(2), so
 * it does not interleave with the lines of other workers sharing stderr.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "nonflex.h"
#include "watchdog.h"

#define ALTSTACK_SIZE	(64 * 1024)   /* >= MINSIGSTKSZ even with AVX-512 state */
/*
 * A line holds at most ~1.7 KB (a 128-byte id, a 200-byte path escaped
 * to 6 bytes a byte, fixed text), so it is never truncated in practice;
 * if it were, it would lose its tail but still end in "}\n".
 */
#define LINE_MAX_LEN	2048
#define PATH_KEEP	200           /* bytes of the path kept for the line */

static char			 prog[32] = "nonflex";
static char			 rid[129];
static char			 method[16];
static char			 path[PATH_KEEP + 1];
static volatile sig_atomic_t	 in_request;    /* rid/method/path are valid */
static volatile long		 armed_ms;      /* the deadline in force, for the line */
static _Alignas(16) char	 altstack[ALTSTACK_SIZE];

/* ---- async-signal-safe formatting -------------------------------------- */

struct out {
	char	*buf;
	size_t	 cap;   /* room for text, keeping 3 bytes for "}\n\0" */
	size_t	 len;
};

static void
put(struct out *o, const char *s)
{
	for (; *s != '\0' && o->len < o->cap; s++)
		o->buf[o->len++] = *s;
}

/* s as the inside of a JSON string: quotes, backslashes, control and
 * non-ASCII bytes escaped (the path is raw client text). */
static void
put_escaped(struct out *o, const char *s)
{
	static const char	 hex[] = "0123456789abcdef";
	unsigned char		 c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char	 q[3] = { '\\', (char)c, '\0' };

			put(o, q);
		} else if (c < 0x20 || c >= 0x7f) {
			char	 u[7] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], '\0' };

			put(o, u);
		} else {
			char	 one[2] = { (char)c, '\0' };

			put(o, one);
		}
	}
}

/* Decimal of v, zero-padded to at least width digits. */
static void
put_num(struct out *o, long v, int width)
{
	char		 d[24];
	int		 n = 0, neg = v < 0;
	unsigned long	 u = neg ? 0UL - (unsigned long)v : (unsigned long)v;

	do {
		d[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0 && n < (int)sizeof(d) - 1);
	while (n < width && n < (int)sizeof(d) - 1)
		d[n++] = '0';
	if (neg && o->len < o->cap)
		o->buf[o->len++] = '-';
	while (n > 0 && o->len < o->cap)
		o->buf[o->len++] = d[--n];
}

static void
put_field(struct out *o, const char *key, const char *val)
{
	put(o, ",\"");
	put(o, key);
	put(o, "\":\"");
	put_escaped(o, val);
	put(o, "\"");
}

/* Days since 1970-01-01 to a civil date (H. Hinnant's algorithm). */
static void
civil(long days, long *y, long *m, long *d)
{
	long		 era, yoe, doy, mp;
	unsigned long	 doe;

	days += 719468;
	era = (days >= 0 ? days : days - 146096) / 146097;
	doe = (unsigned long)(days - era * 146097);
	yoe = (long)((doe - doe / 1460 + doe / 36524 - doe / 146096) / 365);
	doy = (long)doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yoe + era * 400 + (*m <= 2);
}

/* "2026-11-25T10:00:00.000Z", like nf_iso8601. */
static void
put_time(struct out *o, int64_t ms)
{
	long	 y, m, d, secs = (long)(ms / 1000), days = secs / 86400;
	long	 rem = secs % 86400;

	if (rem < 0) {
		rem += 86400;
		days--;
	}
	civil(days, &y, &m, &d);
	put_num(o, y, 4);
	put(o, "-");
	put_num(o, m, 2);
	put(o, "-");
	put_num(o, d, 2);
	put(o, "T");
	put_num(o, rem / 3600, 2);
	put(o, ":");
	put_num(o, rem / 60 % 60, 2);
	put(o, ":");
	put_num(o, rem % 60, 2);
	put(o, ".");
	put_num(o, (long)(ms % 1000 < 0 ? ms % 1000 + 1000 : ms % 1000), 3);
	put(o, "Z");
}

size_t
nf_watchdog_format(char *buf, size_t cap, int64_t now_ms, const char *msg, const char *key,
    long value)
{
	struct out	 o;

	if (buf == NULL || cap < 4)
		return 0;
	o.buf = buf;
	o.cap = cap - 3;
	o.len = 0;
	put(&o, "{\"ts\":\"");
	put_time(&o, now_ms);
	put(&o, "\",\"level\":\"error\"");
	put_field(&o, "prog", prog);
	put_field(&o, "msg", msg);
	if (in_request) {
		put_field(&o, "request_id", rid);
		put_field(&o, "method", method);
		put_field(&o, "path", path);
	}
	put(&o, ",\"pid\":");
	put_num(&o, (long)getpid(), 1);
	if (key != NULL) {
		put(&o, ",\"");
		put(&o, key);
		put(&o, "\":");
		put_num(&o, value, 1);
	}
	buf[o.len++] = '}';
	buf[o.len++] = '\n';
	buf[o.len] = '\0';
	return o.len;
}

/* ---- handlers ------------------------------------------------------------ */

static int64_t
now_ms(void)
{
	struct timespec	 ts;

	/* clock_gettime is async-signal-safe (POSIX.1-2008). */
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
emit(const char *msg, const char *key, long value)
{
	char	 line[LINE_MAX_LEN];
	size_t	 len, off = 0;
	ssize_t	 w;
	int	 saved = errno;

	len = nf_watchdog_format(line, sizeof(line), now_ms(), msg, key, value);
	while (off < len) {
		w = write(STDERR_FILENO, line + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	errno = saved;
}

static void
on_deadline(int sig)
{
	(void)sig;
	/* A timer that fired just as the request ended: nothing is stuck. */
	if (!in_request)
		return;
	emit("request deadline exceeded; the worker exits and is replaced",
	    "timeout_ms", armed_ms);
	_exit(NF_WATCHDOG_EXIT);
}

static const char *
signame(int sig)
{
	switch (sig) {
	case SIGSEGV:
		return "worker crashed: SIGSEGV";
	case SIGBUS:
		return "worker crashed: SIGBUS";
	case SIGFPE:
		return "worker crashed: SIGFPE";
	case SIGILL:
		return "worker crashed: SIGILL";
	case SIGABRT:
		return "worker crashed: SIGABRT";
	default:
		return "worker crashed";
	}
}

/*
 * Installed with SA_RESETHAND | SA_NODEFER: the disposition is back to
 * the default on entry, so raise() ends the process the way the signal
 * would have (exit status, core dump), and a second fault while writing
 * the line does the same instead of looping.
 */
static void
on_crash(int sig)
{
	emit(signame(sig), "signal", sig);
	raise(sig);
}

enum nf_err
nf_watchdog_init(const char *name, struct nf_error *e)
{
	static const int	 fatal[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
	struct sigaction	 sa;
	stack_t			 ss;
	size_t			 i;
	int			 onstack = SA_ONSTACK;

	if (name != NULL) {
		strncpy(prog, name, sizeof(prog) - 1);
		prog[sizeof(prog) - 1] = '\0';
	}
	memset(&ss, 0, sizeof(ss));
	ss.ss_sp = altstack;
	ss.ss_size = sizeof(altstack);
	if (sigaltstack(&ss, NULL) != 0)
		onstack = 0;   /* still report crashes, just not stack overflows */
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_crash;
	sa.sa_flags = SA_RESETHAND | SA_NODEFER | onstack;
	for (i = 0; i < NF_ARRAY_LEN(fatal); i++)
		if (sigaction(fatal[i], &sa, NULL) != 0)
			return nf_error_set(e, NF_ESYSTEM, "watchdog", NULL,
			    "cannot install the crash handlers: %s", strerror(errno));
	sa.sa_handler = on_deadline;
	sa.sa_flags = SA_RESTART | onstack;
	if (sigaction(SIGALRM, &sa, NULL) != 0)
		return nf_error_set(e, NF_ESYSTEM, "watchdog", NULL,
		    "cannot install the deadline handler: %s", strerror(errno));
	if (!onstack)
		return nf_error_set(e, NF_ESYSTEM, "watchdog", NULL,
		    "no alternate signal stack: stack overflows go unreported");
	return NF_OK;
}

static void
copy(char *dst, size_t cap, const char *src)
{
	size_t	 n = src != NULL ? strlen(src) : 0;

	if (n >= cap)
		n = cap - 1;
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

static void
set_timer(int64_t ms)
{
	struct itimerval	 it;

	memset(&it, 0, sizeof(it));
	if (ms > 0) {
		it.it_value.tv_sec = (time_t)(ms / 1000);
		it.it_value.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	}
	/* Cannot fail with these arguments (valid timer, values in range). */
	setitimer(ITIMER_REAL, &it, NULL);
}

void
nf_watchdog_arm(const char *request_id, const char *m, const char *p, int64_t timeout_ms)
{
	set_timer(0);
	in_request = 0;
	copy(rid, sizeof(rid), request_id);
	copy(method, sizeof(method), m);
	copy(path, sizeof(path), p);
	armed_ms = (long)timeout_ms;
	in_request = 1;
	set_timer(timeout_ms);
}

void
nf_watchdog_disarm(void)
{
	set_timer(0);
	in_request = 0;
}
