/*
 * t_twrest.c - tests for the Twilio REST client (twilio_rest.c) and the
 * typed operations (twilio_api.c).
 *
 * Pure parts are table-tested: backoff bounds and jitter, the retry
 * decision table, Twilio error bodies (both shapes, HTML, empty,
 * truncated), page-link checks.  Real exchanges run against a tiny HTTP
 * server on 127.0.0.1 inside this process (a thread answering a script:
 * status + headers + body, or hang until the client gives up, or close
 * without answering) that records every request it sees, so the tests
 * assert what a user of the client would notice: attempts, delays,
 * ambiguity, errors, and the exact method, path, headers and form body of
 * every operation (Prism, in the integration tests, does not flag unknown
 * parameters).  A closed loopback port stands for "connection refused".
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "config.h"
#include "json.h"
#include "log.h"
#include "nonflex.h"
#include "req.h"
#include "tenant.h"
#include "testutil.h"
#include "twilio_api.h"
#include "twilio_rest.h"
#include "valid.h"

#define AC	"AC0123456789abcdef0123456789abcdef"
#define SK	"SK0123456789abcdef0123456789abcdef"
#define IS	"IS0123456789abcdef0123456789abcdef"
#define WS	"WS0123456789abcdef0123456789abcdef"
#define WW	"WW0123456789abcdef0123456789abcdef"
#define CH	"CH0123456789abcdef0123456789abcdef"
#define WT	"WT0123456789abcdef0123456789abcdef"
#define WR	"WR0123456789abcdef0123456789abcdef"
#define WK	"WK0123456789abcdef0123456789abcdef"
#define WA	"WA0123456789abcdef0123456789abcdef"
#define CA	"CA0123456789abcdef0123456789abcdef"
#define SECRET	"nfsecret-unit-api-secret-5e1f"
#define TOKEN	"nfsecret-unit-auth-token-77aa"

/* ---- the loopback server --------------------------------------------- */

enum act { ANSWER = 0, HANG, CLOSE };

struct canned {
	int		 status;
	const char	*headers;   /* extra lines, each ending "\r\n", or NULL */
	const char	*body;      /* NULL: empty */
	enum act	 act;
};

struct seen {
	char	*head;              /* request line and headers */
	char	*body;
	int64_t	 at;                /* monotonic ms of arrival */
};

#define SRV_MAX 16

struct srv {
	int			 lfd;
	int			 port;
	pthread_t		 th;
	const struct canned	*script;
	size_t			 n;
	struct seen		 req[SRV_MAX];
	size_t			 nreq;     /* read after srv_stop */
	volatile int		 stop;
};

/* Read one request (head + Content-Length body) from fd; 0 or -1. */
static int
read_request(int fd, struct seen *s)
{
	char		 buf[65536], *end, *cl;
	size_t		 len = 0, want, hlen;
	ssize_t		 r;
	struct pollfd	 p = { .fd = fd, .events = POLLIN };

	for (;;) {
		if (len == sizeof(buf) - 1 || poll(&p, 1, 3000) <= 0 ||
		    (r = read(fd, buf + len, sizeof(buf) - 1 - len)) <= 0)
			return -1;
		len += (size_t)r;
		buf[len] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) != NULL)
			break;
	}
	hlen = (size_t)(end - buf) + 4;
	s->head = nf_xstrndup(buf, hlen);
	want = (cl = strcasestr(s->head, "\r\nContent-Length:")) != NULL ?
	    strtoul(cl + 17, NULL, 10) : 0;
	while (len - hlen < want) {
		if (len == sizeof(buf) - 1 || poll(&p, 1, 3000) <= 0 ||
		    (r = read(fd, buf + len, sizeof(buf) - 1 - len)) <= 0)
			return -1;
		len += (size_t)r;
	}
	s->body = nf_xstrndup(buf + hlen, want);
	return 0;
}

static void
write_all(int fd, const char *s, size_t n)
{
	ssize_t	 w;

	while (n > 0 && (w = write(fd, s, n)) > 0) {
		s += w;
		n -= (size_t)w;
	}
}

static void
act(int fd, const struct canned *c)
{
	struct pollfd	 p = { .fd = fd, .events = POLLIN };
	const char	*body = c->body != NULL ? c->body : "";
	char		*msg;
	char		 x;

	if (c->act == HANG) {
		/* Until the client gives up and closes (read returns 0). */
		while (poll(&p, 1, 5000) > 0 && read(fd, &x, 1) > 0)
			;
		return;
	}
	if (c->act == CLOSE)
		return;
	msg = nf_xasprintf("HTTP/1.1 %d Canned\r\n%sContent-Length: %zu\r\n"
	    "Connection: close\r\n%s\r\n%s", c->status,
	    c->headers != NULL && strcasestr(c->headers, "Content-Type:") != NULL ? "" :
	    "Content-Type: application/json\r\n", strlen(body),
	    c->headers != NULL ? c->headers : "", body);
	write_all(fd, msg, strlen(msg));
	free(msg);
}

static void *
serve(void *arg)
{
	struct srv	*s = arg;
	struct pollfd	 p = { .fd = s->lfd, .events = POLLIN };
	int		 fd;

	while (!s->stop && s->nreq < s->n) {
		if (poll(&p, 1, 50) <= 0)
			continue;
		if ((fd = accept(s->lfd, NULL, NULL)) < 0)
			continue;
		if (read_request(fd, &s->req[s->nreq]) == 0) {
			s->req[s->nreq].at = nf_mono_ms();
			act(fd, &s->script[s->nreq]);
			s->nreq++;
		}
		close(fd);
	}
	/* Past the script: refuse further connections at once. */
	close(s->lfd);
	s->lfd = -1;
	return NULL;
}

/* Listen on a free loopback port (s->port) without answering yet, so a
 * test can write pages that link back to this server. */
static void
srv_bind(struct srv *s)
{
	struct sockaddr_in	 sa;
	socklen_t		 len = sizeof(sa);
	int			 one = 1;

	memset(s, 0, sizeof(*s));
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(s->lfd, 0);
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(s->lfd, (struct sockaddr *)&sa, &len), 0);
	ck_assert_int_eq(listen(s->lfd, 16), 0);
	s->port = ntohs(sa.sin_port);
}

/* Answer the next n requests from script (borrowed until srv_stop). */
static void
srv_run(struct srv *s, const struct canned *script, size_t n)
{
	ck_assert(n <= SRV_MAX);
	s->script = script;
	s->n = n;
	ck_assert_int_eq(pthread_create(&s->th, NULL, serve, s), 0);
}

static void
srv_start(struct srv *s, const struct canned *script, size_t n)
{
	srv_bind(s);
	srv_run(s, script, n);
}

static void
srv_stop(struct srv *s)
{
	s->stop = 1;
	pthread_join(s->th, NULL);
	if (s->lfd >= 0)
		close(s->lfd);
}

static void
srv_free(struct srv *s)
{
	size_t	 i;

	for (i = 0; i < s->nreq; i++) {
		free(s->req[i].head);
		free(s->req[i].body);
	}
}

/* Value of header name in a recorded head (static buffer), or NULL. */
static const char *
hdr(const struct seen *q, const char *name)
{
	static char	 val[512];
	char		 pat[80];
	const char	*p, *e;

	snprintf(pat, sizeof(pat), "\r\n%s:", name);
	if ((p = strcasestr(q->head, pat)) == NULL)
		return NULL;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	e = strstr(p, "\r\n");
	snprintf(val, sizeof(val), "%.*s", (int)(e - p), p);
	return val;
}

/* "METHOD /path" of a recorded request must be line (without " HTTP/1.1"). */
static void
assert_line(const struct seen *q, const char *line)
{
	size_t	 n = strlen(line);

	ck_assert_msg(strncmp(q->head, line, n) == 0 && strncmp(q->head + n, " HTTP/1.1\r\n", 11) == 0,
	    "request line: %.*s, expected %s", (int)strcspn(q->head, "\r"), q->head, line);
}

/* ---- fixtures -------------------------------------------------------- */

static struct nf_tenant tenant = {
	.id = "t1",
	.twilio = {
		.account_sid = AC, .auth_token = TOKEN, .api_key = SK, .api_secret = SECRET,
		.conversations_service_sid = IS, .workspace_sid = WS, .workflow_sid = WW,
	},
};

static struct nf_config	 cfg;

/* A client on 127.0.0.1:port for every product, with short timeouts
 * and a backoff of 1..5 ms so retries do not slow the tests. */
static struct nf_tw_client *
client(int port, int attempts, int timeout_ms)
{
	struct nf_tw_client	*c = NULL;
	struct nf_error		 e;
	char			*base = nf_xasprintf("http://127.0.0.1:%d", port);

	nf_config_cleanup(&cfg);
	cfg.twilio_api_base = nf_xstrdup(base);
	cfg.twilio_conversations_base = nf_xstrdup(base);
	cfg.twilio_taskrouter_base = nf_xstrdup(base);
	cfg.twilio_video_base = nf_xstrdup(base);
	cfg.twilio_studio_base = base;
	cfg.twilio_connect_timeout_ms = 1000;
	cfg.twilio_timeout_ms = timeout_ms;
	cfg.twilio_max_attempts = attempts;
	ck_assert_int_eq(nf_tw_client_new(&cfg, &c, &e), NF_OK);
	nf_tw_client_set_backoff(c, 1, 5);
	return c;
}

/* One call of method on path with the given retry class. */
static enum nf_err
call(struct nf_tw_client *c, const char *method, const char *path, enum nf_tw_retry r,
    struct nf_tw_result *res, struct nf_error *e)
{
	return nf_tw_request(c, &tenant, NF_TW_API, method, path, NULL, NULL, r, res, e);
}

/* ---- pure parts ------------------------------------------------------ */

START_TEST(backoff_bounds_and_jitter)
{
	int64_t	 d, ceil_ms, lo, hi;
	int	 n, i, distinct = 0;
	char	 hit[3201];

	for (n = 1; n <= 12; n++) {
		ceil_ms = 200LL << (n - 1);
		if (ceil_ms > 5000)
			ceil_ms = 5000;
		lo = INT64_MAX;
		hi = -1;
		for (i = 0; i < 400; i++) {
			d = nf_tw_backoff_ms(n, 200, 5000, 0);
			ck_assert_msg(d >= 0 && d <= ceil_ms, "n=%d: %lld outside [0,%lld]", n,
			    (long long)d, (long long)ceil_ms);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		/* Full jitter: spread over the whole range, not near the top. */
		ck_assert_msg(lo < ceil_ms / 4 && hi > ceil_ms * 3 / 4,
		    "n=%d: samples in [%lld,%lld] of [0,%lld]", n, (long long)lo,
		    (long long)hi, (long long)ceil_ms);
	}
	memset(hit, 0, sizeof(hit));
	for (i = 0; i < 400; i++)
		hit[nf_tw_backoff_ms(5, 200, 5000, 0)] = 1;
	for (i = 0; i <= 3200; i++)
		distinct += hit[i];
	ck_assert_int_gt(distinct, 100);
	/* Retry-After is a floor, even above the cap. */
	for (i = 0; i < 100; i++) {
		ck_assert_int_ge(nf_tw_backoff_ms(1, 200, 5000, 1500), 1500);
		ck_assert_int_eq(nf_tw_backoff_ms(3, 200, 5000, 8000), 8000);
	}
	/* Huge attempt numbers and caps neither overflow nor pass the cap. */
	ck_assert_int_le(nf_tw_backoff_ms(INT_MAX, 200, 5000, 0), 5000);
	ck_assert_int_le(nf_tw_backoff_ms(200, 1LL << 40, INT64_MAX, 0), INT64_MAX);
	ck_assert_int_le(nf_tw_backoff_ms(0, 200, 5000, 0), 200);
	ck_assert_int_le(nf_tw_backoff_ms(-3, 200, 5000, 0), 200);
	ck_assert_int_eq(nf_tw_backoff_ms(4, 0, 5000, 0), 0);
}
END_TEST

START_TEST(retry_table)
{
	static const struct {
		long		 status;
		int		 nothing_sent;
		enum nf_tw_retry cls;
		int		 retry, ambiguous;
	} t[] = {
		{ 200, 0, NF_TW_IDEMPOTENT, 0, 0 }, { 201, 0, NF_TW_CREATE, 0, 0 },
		{ 204, 0, NF_TW_IDEMPOTENT, 0, 0 },
		/* 429: never processed, always safe to retry. */
		{ 429, 0, NF_TW_IDEMPOTENT, 1, 0 }, { 429, 0, NF_TW_CREATE, 1, 0 },
		/* 5xx: retried only when repeating cannot duplicate. */
		{ 500, 0, NF_TW_IDEMPOTENT, 1, 0 }, { 500, 0, NF_TW_CREATE, 0, 1 },
		{ 502, 0, NF_TW_IDEMPOTENT, 1, 0 }, { 502, 0, NF_TW_CREATE, 0, 1 },
		{ 503, 0, NF_TW_IDEMPOTENT, 1, 0 }, { 503, 0, NF_TW_CREATE, 0, 1 },
		{ 504, 0, NF_TW_IDEMPOTENT, 1, 0 }, { 504, 0, NF_TW_CREATE, 0, 1 },
		/* Other 4xx: our request is wrong; never retried. */
		{ 400, 0, NF_TW_IDEMPOTENT, 0, 0 }, { 400, 0, NF_TW_CREATE, 0, 0 },
		{ 401, 0, NF_TW_IDEMPOTENT, 0, 0 }, { 403, 0, NF_TW_CREATE, 0, 0 },
		{ 404, 0, NF_TW_IDEMPOTENT, 0, 0 }, { 405, 0, NF_TW_CREATE, 0, 0 },
		{ 409, 0, NF_TW_CREATE, 0, 0 }, { 422, 0, NF_TW_IDEMPOTENT, 0, 0 },
		/* Redirects are not followed and not retried. */
		{ 302, 0, NF_TW_IDEMPOTENT, 0, 0 }, { 301, 0, NF_TW_CREATE, 0, 0 },
		/* No answer, nothing sent (refused, DNS, TLS): always retried. */
		{ 0, 1, NF_TW_IDEMPOTENT, 1, 0 }, { 0, 1, NF_TW_CREATE, 1, 0 },
		/* No answer after sending (timeout, reset): ambiguous for a create. */
		{ 0, 0, NF_TW_IDEMPOTENT, 1, 0 }, { 0, 0, NF_TW_CREATE, 0, 1 },
	};
	size_t	 i;
	int	 amb;

	for (i = 0; i < NF_ARRAY_LEN(t); i++) {
		amb = -1;
		ck_assert_msg(nf_tw_retryable(t[i].status, t[i].nothing_sent, t[i].cls, &amb) ==
		    t[i].retry && amb == t[i].ambiguous,
		    "row %zu: status %ld sent %d class %d", i, t[i].status, !t[i].nothing_sent,
		    t[i].cls);
	}
	ck_assert_int_eq(nf_tw_retryable(503, 0, NF_TW_IDEMPOTENT, NULL), 1);
}
END_TEST

START_TEST(error_bodies)
{
	static const struct {
		const char	*body;
		int		 ok, code;
		const char	*message, *more_info;
	} t[] = {
		{ "{\"code\":21211,\"message\":\"The 'To' number +1555 is not valid.\","
		  "\"more_info\":\"https://www.twilio.com/docs/errors/21211\",\"status\":400}",
		  1, 21211, "The 'To' number +1555 is not valid.",
		  "https://www.twilio.com/docs/errors/21211" },
		{ "{\"errors\":[{\"code\":20001,\"message\":\"Bad thing\",\"infoUrl\":\"https://x\"},"
		  "{\"code\":2,\"message\":\"second\"}]}", 1, 20001, "Bad thing", "https://x" },
		{ "{\"code\":\"20404\",\"message\":\"Not found\"}", 1, 20404, "Not found", "" },
		{ "{\"errors\":\"x\",\"code\":5,\"message\":\"m\"}", 1, 5, "m", "" },
		{ "{\"code\":20003,\"message\":\"a\\nb\\u0001c\\td\"}", 1, 20003, "a b c d", "" },
		{ "{\"message\":\"only a message\"}", 1, 0, "only a message", "" },
		{ "<html><body><h1>502 Bad Gateway</h1></body></html>", 0, 0, "", "" },
		{ "", 0, 0, "", "" },
		{ "{\"code\":21211,\"message\":\"The", 0, 0, "", "" },
		{ "{\"code\":21211,", 0, 0, "", "" },
		{ "{\"sid\":\"IM1\"}", 0, 0, "", "" },
		{ "[1,2]", 0, 0, "", "" },
		{ "{\"errors\":[]}", 0, 0, "", "" },
		{ "{\"code\":true,\"message\":7}", 0, 0, "", "" },
		{ "{\"code\":1,\"message\":\"\xff\"}", 0, 0, "", "" },
		{ "null", 0, 0, "", "" },
	};
	struct nf_tw_result	 r;
	char			*big;
	size_t			 i;

	for (i = 0; i < NF_ARRAY_LEN(t); i++) {
		memset(&r, 'x', sizeof(r));
		r.body = NULL;
		ck_assert_msg(nf_tw_error_parse(t[i].body, strlen(t[i].body), &r) == t[i].ok,
		    "row %zu", i);
		ck_assert_int_eq(r.code, t[i].code);
		ck_assert_str_eq(r.message, t[i].message);
		ck_assert_str_eq(r.more_info, t[i].more_info);
	}
	ck_assert_int_eq(nf_tw_error_parse(NULL, 0, &r), 0);
	/* A long message is cut to the field, on a UTF-8 boundary. */
	big = nf_xmalloc(2048);
	strcpy(big, "{\"code\":1,\"message\":\"");
	for (i = 0; i < 400; i++)
		strcat(big, "\xc3\xa9");
	strcat(big, "\"}");
	ck_assert_int_eq(nf_tw_error_parse(big, strlen(big), &r), 1);
	ck_assert_uint_le(strlen(r.message), sizeof(r.message) - 1);
	ck_assert_uint_ge(strlen(r.message), sizeof(r.message) - 2);
	ck_assert(nf_valid_utf8(r.message, strlen(r.message), 1, sizeof(r.message)));
	free(big);
}
END_TEST

START_TEST(page_links)
{
	static const struct {
		const char	*base, *link, *want;   /* want NULL: refused */
	} t[] = {
		{ "http://127.0.0.1:4010", "http://127.0.0.1:4010/v1/X?Page=1&PageToken=PT",
		  "http://127.0.0.1:4010/v1/X?Page=1&PageToken=PT" },
		{ "http://127.0.0.1:4010", "/2010-04-01/Accounts/" AC "/Calls.json?Page=1",
		  "http://127.0.0.1:4010/2010-04-01/Accounts/" AC "/Calls.json?Page=1" },
		{ "https://taskrouter.twilio.com", "https://taskrouter.twilio.com:443/v1/W?Page=2",
		  "https://taskrouter.twilio.com:443/v1/W?Page=2" },
		{ "https://taskrouter.twilio.com", "https://TASKROUTER.twilio.com/v1/W",
		  "https://TASKROUTER.twilio.com/v1/W" },
		{ "http://127.0.0.1:4010", "http://169.254.169.254/latest/meta-data", NULL },
		{ "http://127.0.0.1:4010", "https://127.0.0.1:4010/v1/X", NULL },
		{ "http://127.0.0.1:4010", "http://127.0.0.1:4011/v1/X", NULL },
		{ "http://127.0.0.1:4010", "http://127.0.0.1/v1/X", NULL },
		{ "http://127.0.0.1:4010", "http://user:pw@127.0.0.1:4010/v1", NULL },
		{ "http://127.0.0.1:4010", "//evil.example/v1", NULL },
		{ "http://127.0.0.1:4010", "ftp://127.0.0.1:4010/x", NULL },
		{ "http://127.0.0.1:4010", "file:///etc/passwd", NULL },
		{ "http://127.0.0.1:4010", "http://127.0.0.1:4010/v1 X", NULL },
		{ "http://127.0.0.1:4010", "http://127.0.0.1:4010/v1\r\nX: y", NULL },
		{ "http://127.0.0.1:4010", "", NULL },
		{ "https://taskrouter.twilio.com", "https://taskrouter.twilio.com.evil.com/v1", NULL },
		{ "https://taskrouter.twilio.com", "https://evil.com#@taskrouter.twilio.com/", NULL },
		{ "https://taskrouter.twilio.com", "https://evil.com\\@taskrouter.twilio.com/", NULL },
	};
	size_t	 i;
	char	*got;

	for (i = 0; i < NF_ARRAY_LEN(t); i++) {
		got = nf_tw_page_url(t[i].base, t[i].link);
		if (t[i].want == NULL)
			ck_assert_msg(got == NULL, "row %zu: %s accepted as %s", i, t[i].link, got);
		else
			ck_assert_msg(got != NULL && strcmp(got, t[i].want) == 0,
			    "row %zu: %s -> %s", i, t[i].link, got ? got : "(refused)");
		free(got);
	}
	ck_assert_ptr_null(nf_tw_page_url("http://127.0.0.1:4010", NULL));
}
END_TEST

START_TEST(client_config)
{
	struct nf_tw_client	*c = NULL;
	struct nf_error		 e;

	memset(&cfg, 0, sizeof(cfg));
	cfg.twilio_api_base = nf_xstrdup("");
	cfg.twilio_taskrouter_base = nf_xstrdup("http://127.0.0.1:4010/");
	cfg.twilio_max_attempts = 4;
	ck_assert_int_eq(nf_tw_client_new(&cfg, &c, &e), NF_OK);
	ck_assert_str_eq(nf_tw_base_url(c, NF_TW_API), "https://api.twilio.com");
	ck_assert_str_eq(nf_tw_base_url(c, NF_TW_CONVERSATIONS), "https://conversations.twilio.com");
	ck_assert_str_eq(nf_tw_base_url(c, NF_TW_TASKROUTER), "http://127.0.0.1:4010");
	ck_assert_str_eq(nf_tw_base_url(c, NF_TW_STUDIO), "https://studio.twilio.com");
	ck_assert_ptr_null(nf_tw_base_url(c, NF_TW__MAX));
	nf_tw_client_free(c);
	nf_tw_client_free(NULL);

	free(cfg.twilio_taskrouter_base);
	cfg.twilio_taskrouter_base = nf_xstrdup("ftp://127.0.0.1/");
	ck_assert_int_eq(nf_tw_client_new(&cfg, &c, &e), NF_EINVAL);
	ck_assert_ptr_null(c);
	ck_assert_str_eq(e.field, "TWILIO_TASKROUTER_BASE_URL");
	free(cfg.twilio_taskrouter_base);
	cfg.twilio_taskrouter_base = nf_xstrdup("http://user:" SECRET "@127.0.0.1/");
	ck_assert_int_eq(nf_tw_client_new(&cfg, &c, &e), NF_EINVAL);
	ck_assert_ptr_null(strstr(e.message, SECRET));
	free(cfg.twilio_taskrouter_base);
	cfg.twilio_taskrouter_base = nf_xstrdup("127.0.0.1:4010");
	ck_assert_int_eq(nf_tw_client_new(&cfg, &c, &e), NF_EINVAL);
	nf_config_cleanup(&cfg);
}
END_TEST

/* ---- exchanges ------------------------------------------------------- */

#define ERR_20429 "{\"code\":20429,\"message\":\"Too Many Requests\",\"more_info\":" \
	"\"https://www.twilio.com/docs/errors/20429\",\"status\":429}"

START_TEST(rate_limited_then_created)
{
	static const struct canned script[] = {
		{ 429, "Retry-After: 1\r\n", ERR_20429, ANSWER },
		{ 429, "Retry-After: 1\r\n", ERR_20429, ANSWER },
		{ 429, "Retry-After: 1\r\n", ERR_20429, ANSWER },
		{ 201, NULL, "{\"sid\":\"IM0123456789abcdef0123456789abcdef\"}", ANSWER },
	};
	struct nf_tw_result	 r;
	struct nf_error		 e;
	struct nf_tw_client	*c;
	struct srv		 s;
	struct json_object	*sid;
	size_t			 i;

	srv_start(&s, script, NF_ARRAY_LEN(script));
	c = client(s.port, 4, 2000);
	ck_assert_int_eq(call(c, "POST", "/v1/Things", NF_TW_CREATE, &r, &e), NF_OK);
	srv_stop(&s);
	ck_assert_int_eq(r.attempts, 4);
	ck_assert_uint_eq(s.nreq, 4);            /* exactly one create succeeded */
	ck_assert_int_eq(r.status, 201);
	ck_assert_int_eq(r.ambiguous, 0);
	ck_assert(json_object_object_get_ex(r.body, "sid", &sid));
	for (i = 1; i < s.nreq; i++)
		ck_assert_msg(s.req[i].at - s.req[i - 1].at >= 1000,
		    "attempt %zu came %lld ms after the previous one (Retry-After: 1)", i + 1,
		    (long long)(s.req[i].at - s.req[i - 1].at));
	nf_tw_result_cleanup(&r);
	nf_tw_client_free(c);
	srv_free(&s);
}
END_TEST

START_TEST(rate_limit_budget)
{
	static const struct canned script[] = {
		{ 429, NULL, ERR_20429, ANSWER }, { 429, NULL, ERR_20429, ANSWER },
		{ 429, "Retry-After: 2\r\n", ERR_20429, ANSWER },
	};
	static const struct canned longwait[] = {
		{ 429, "Retry-After: 3600\r\n", ERR_20429, ANSWER },
	};
	struct nf_tw_result	 r;
	struct nf_error		 e;
	struct nf_tw_client	*c;
	struct srv		 s;

	srv_start(&s, script, NF_ARRAY_LEN(script));
	c = client(s.port, 3, 2000);
	ck_assert_int_eq(call(c, "POST", "/v1/Things", NF_TW_CREATE, &r, &e), NF_ERATE);
	srv_stop(&s);
	ck_assert_str_eq(e.code, "twilio_rate_limited");
	ck_assert_int_eq(r.attempts, 3);
	ck_assert_uint_eq(s.nreq, 3);
	ck_assert_int_eq(r.code, 20429);
	ck_assert_int_eq(r.retry_after_ms, 2000);   /* for the job runner's re-queue */
	ck_assert_int_eq(r.ambiguous, 0);
	ck_assert_ptr_nonnull(strstr(e.message, "20429"));
	nf_tw_client_free(c);
	srv_free(&s);

	/* A Retry-After too long to wait for inside a call ends it at once. */
	srv_start(&s, longwait, NF_ARRAY_LEN(longwait));
	c = client(s.port, 4, 2000);
	ck_assert_int_eq(call(c, "GET", "/v1/Things", NF_TW_IDEMPOTENT, &r, &e), NF_ERATE);
	srv_stop(&s);
	ck_assert_int_eq(r.attempts, 1);
	ck_assert_int_eq(r.retry_after_ms, 3600 * 1000);
	nf_tw_client_free(c);
	srv_free(&s);
}
END_TEST

START_TEST(create_5xx_is_ambiguous)
{
	static const struct canned script[] = {
		{ 500, NULL, "{\"code\":20500,\"message\":\"Internal Server Error\"}", ANSWER },
		{ 201, NULL, "{}", ANSWER },
	};
	struct nf_tw_result	 r;
	struct nf_error		 e;
	struct nf_tw_client	*c;
	struct srv		 s;

	srv_start(&s, script, NF_ARRAY_LEN(script));
	c = client(s.port, 4, 2000);
	ck_assert_int_eq(call(c, "POST", "/v1/Things", NF_TW_CREATE, &r, &e), NF_EUNAVAIL);
	srv_stop(&s);
	ck_assert_str_eq(e.code, "twilio_unavailable");
	ck_assert_int_eq(r.attempts, 1);
	ck_assert_uint_eq(s.nreq, 1);            /* no blind resend */
	ck_assert_int_eq(r.ambiguous, 1);
	ck_assert_int_eq(r.status, 500);
	ck_assert_ptr_null(r.body);
	nf_tw_client_free(c);
	srv_free(&s);
}
END_TEST

START_TEST(idempotent_5xx_retried)
{
	static const struct canned script[] = {
		{ 503, NULL, "<html><body>Service Unavailable</body></html>", ANSWER },
		{ 200, NULL, "{\"sid\":\"" WK "\"}", ANSWER },
	};
	static const struct canned html[] = {
		{ 502, "Content-Type: text/html\r\n", "<html><h1>502 Bad Gateway</h1>", ANSWER },
		{ 502, "Content-Type: text/html\r\n", "", ANSWER },
		{ 502, "Content-Type: text/html\r\n", "<html><h1>502", ANSWER },
	};
	struct nf_tw_result	 r;
	struct nf_error		 e;
	struct nf_tw_client	*c;
	struct srv		 s;

	srv_start(&s, script, NF_ARRAY_LEN(script));
	c = client(s.port, 4, 2000);
	ck_assert_int_eq(call(c, "GET", "/v1/Workers/" WK, NF_TW_IDEMPOTENT, &r, &e), NF_OK);
	srv_stop(&s);
	ck_assert_int_eq(r.attempts, 2);
	ck_assert_uint_eq(s.nreq, 2);
	ck_assert_ptr_nonnull(r.body);
	nf_tw_result_cleanup(&r);
	nf_tw_client_free(c);
	srv_free(&s);

	/* HTML, empty and cut pages until the budget is spent: a clear error. */
	srv_start(&s, html, NF_ARRAY_LEN(html));
	c = client(s.port, 3, 2000);
	ck_assert_int_eq(call(c, "POST", "/v1/Workers/" WK, NF_TW_IDEMPOTENT, &r, &e),
	    NF_EUNAVAIL);
	srv_stop(&s);
	ck_assert_int_eq(r.attempts, 3);
	ck_assert_int_eq(r.code, 0);
	ck_assert_int_eq(r.ambiguous, 0);
	ck_assert_ptr_nonnull(strstr(e.message, "HTTP 502"));
	nf_tw_client_free(c);
	srv_free(&s);
}
END_TEST

START_TEST(timeouts_and_resets)
{
	static const struct canned hang_then_ok[] = {
		{ 0, NULL, NULL, HANG }, { 200, NULL, "{}", ANSWER },
	};
	static const struct canned reset_then_ok[] = {
		{ 0, NULL, NULL, CLOSE }, { 200, NULL, "{}", ANSWER },
	};
	struct nf_tw_result	 r;
	struct nf_error		 e;
	struct nf_tw_client	*c;
	struct srv		 s;
	int64_t			 t0;

	/* GET: a timeout is retried. */
	srv_start(&s, hang_then_ok, NF_ARRAY_LEN(hang_then_ok));
	c = client(s.port, 4, 300);
	t0 = nf_mono_ms();
	ck_assert_int_eq(call(c, "GET", "/v1/Tasks", NF_TW_IDEMPOTENT, &r, &e), NF_OK);
	ck_assert_int_lt(nf_mono_ms() - t0, 3000);
	srv_stop(&s);
	ck_assert_int_eq(r.attempts, 2);
	nf_tw_result_cleanup(&r);
	nf_tw_client_free(c);
	srv_free(&s);

	/* A create that timed out after sending: not resent, ambiguous. */
	srv_start(&s, hang_then_ok, NF_ARRAY_LEN(hang_then_ok));
	c = client(s.port, 4, 300);
	ck_assert_int_eq(call(c, "POST", "/v1/Tasks", NF_TW_CREATE, &r, &e), NF_EUNAVAIL);
	srv_stop(&s);
	ck_assert_int_eq(r.attempts, 1);
	ck_assert_uint_eq(s.nreq, 1);
	ck_assert_int_eq(r.ambiguous, 1);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(e.message, "may have taken effect"));
	nf_tw_client_free(c);
	srv_free(&s);

	/* Connection closed after the request, without an answer. */
	srv_start(&s, reset_then_ok, NF_ARRAY_LEN(reset_then_ok));
	c = client(s.port, 4, 2000);
	ck_assert_int_eq(call(c, "POST", "/v1/Tasks", NF_TW_CREATE, &r, &e), NF_EUNAVAIL);
	srv_stop(&s);
	ck_assert_int_eq(r.ambiguous, 1);
	ck_assert_uint_eq(s.nreq, 1);
	nf_tw_client_free(c);
	srv_free(&s);

	srv_start(&s, reset_then_ok, NF_ARRAY_LEN(reset_then_ok));
	c = client(s.port, 4, 2000);
	ck_assert_int_eq(call(c, "POST", "/v1/Tasks/" WT, NF_TW_IDEMPOTENT, &r, &e), NF_OK);
	srv_stop(&s);
	ck_assert_int_eq(r.attempts, 2);
	nf_tw_result_cleanup(&r);
	nf_tw_client_free(c);
	srv_free(&s);
}
END_TEST

START_TEST(connection_refused)
{
	struct nf_tw_result	 r;
	struct nf_error		 e;
	struct nf_tw_client	*c = client(tu_free_port(), 3, 2000);

	/* Nothing was sent: even a create is retried, and is not ambiguous. */
	ck_assert_int_eq(call(c, "POST", "/v1/Tasks", NF_TW_CREATE, &r, &e), NF_EUNAVAIL);
	ck_assert_str_eq(e.code, "twilio_unavailable");
	ck_assert_int_eq(r.attempts, 3);
	ck_assert_int_eq(r.ambiguous, 0);
	ck_assert_int_eq(r.status, 0);
	nf_tw_client_free(c);
}
END_TEST

START_TEST(client_errors_not_retried)
{
	static const struct canned script[] = {
		{ 400, NULL, "{\"code\":21211,\"message\":\"The 'To' number is not valid.\","
		  "\"more_info\":\"https://www.twilio.com/docs/errors/21211\",\"status\":400}", ANSWER },
		{ 401, NULL, "{\"code\":20003,\"message\":\"Authenticate\",\"status\":401}", ANSWER },
		{ 404, NULL, "{\"errors\":[{\"code\":20404,\"message\":\"Not found\"}]}", ANSWER },
		{ 403, NULL, "", ANSWER },
		{ 302, "Location: http://169.254.169.254/latest\r\n", "", ANSWER },
	};
	static const struct {
		enum nf_err	 rc;
		const char	*code;
		int		 twcode;
	} want[] = {
		{ NF_EUPSTREAM, "twilio_error", 21211 }, { NF_EAUTH, "twilio_auth", 20003 },
		{ NF_ENOTFOUND, "twilio_not_found", 20404 }, { NF_EAUTH, "twilio_auth", 0 },
		{ NF_EUPSTREAM, "twilio_error", 0 },
	};
	struct nf_tw_result	 r;
	struct nf_error		 e;
	struct nf_tw_client	*c;
	struct srv		 s;
	size_t			 i;

	srv_start(&s, script, NF_ARRAY_LEN(script));
	c = client(s.port, 4, 2000);
	for (i = 0; i < NF_ARRAY_LEN(want); i++) {
		ck_assert_int_eq(call(c, "GET", "/v1/X", NF_TW_IDEMPOTENT, &r, &e), want[i].rc);
		ck_assert_str_eq(e.code, want[i].code);
		ck_assert_int_eq(r.code, want[i].twcode);
		ck_assert_int_eq(r.attempts, 1);
		ck_assert_ptr_null(r.body);
	}
	srv_stop(&s);
	ck_assert_uint_eq(s.nreq, NF_ARRAY_LEN(want));   /* the redirect was not followed */
	ck_assert_str_eq(r.message, "");
	nf_tw_client_free(c);
	srv_free(&s);

	/* The first answer's detail, as a user sees it. */
	srv_start(&s, script, 1);
	c = client(s.port, 4, 2000);
	call(c, "POST", "/v1/X", NF_TW_CREATE, &r, &e);
	srv_stop(&s);
	ck_assert_str_eq(e.message, "Twilio error 21211: The 'To' number is not valid. (HTTP 400)");
	ck_assert_str_eq(r.more_info, "https://www.twilio.com/docs/errors/21211");
	nf_tw_client_free(c);
	srv_free(&s);
}
END_TEST

START_TEST(bad_success_answers)
{
	static const struct canned script[] = {
		{ 200, "Content-Type: text/html\r\n", "<html>ok</html>", ANSWER },
		{ 200, NULL, "{\"sid\":\"WT", ANSWER },
		{ 201, NULL, "{\"sid\":\"WT", ANSWER },
		{ 200, NULL, "[1]", ANSWER },
		{ 204, NULL, NULL, ANSWER },
	};
	struct nf_tw_result	 r;
	struct nf_error		 e;
	struct nf_tw_client	*c;
	struct srv		 s;

	srv_start(&s, script, NF_ARRAY_LEN(script));
	c = client(s.port, 4, 2000);
	ck_assert_int_eq(call(c, "GET", "/v1/X", NF_TW_IDEMPOTENT, &r, &e), NF_EUPSTREAM);
	ck_assert_str_eq(e.code, "twilio_bad_response");
	ck_assert_int_eq(r.ambiguous, 0);
	ck_assert_int_eq(call(c, "GET", "/v1/X", NF_TW_IDEMPOTENT, &r, &e), NF_EUPSTREAM);
	/* A create answered 201 happened, but we cannot read it. */
	ck_assert_int_eq(call(c, "POST", "/v1/X", NF_TW_CREATE, &r, &e), NF_EUPSTREAM);
	ck_assert_int_eq(r.ambiguous, 1);
	ck_assert_int_eq(call(c, "GET", "/v1/X", NF_TW_IDEMPOTENT, &r, &e), NF_EUPSTREAM);
	ck_assert_int_eq(call(c, "DELETE", "/v1/X", NF_TW_IDEMPOTENT, &r, &e), NF_OK);
	ck_assert_ptr_null(r.body);
	ck_assert_int_eq(r.status, 204);
	srv_stop(&s);
	ck_assert_uint_eq(s.nreq, 5);
	assert_line(&s.req[4], "DELETE /v1/X");
	nf_tw_client_free(c);
	srv_free(&s);
}
END_TEST

/* Base64 of "user:pass", for the expected Authorization header. */
static char *
basic(const char *user, const char *pass)
{
	char		*plain = nf_xasprintf("%s:%s", user, pass);
	size_t		 n = strlen(plain);
	char		*out = nf_xmalloc(4 * ((n + 2) / 3) + 1 + 6);

	strcpy(out, "Basic ");
	EVP_EncodeBlock((unsigned char *)out + 6, (unsigned char *)plain, (int)n);
	free(plain);
	return out;
}

START_TEST(request_shape)
{
	static const struct canned script[] = {
		{ 201, NULL, "{}", ANSWER }, { 200, NULL, "{}", ANSWER },
	};
	static const char *const extra[] = { "X-Twilio-Webhook-Enabled: true", NULL };
	struct nf_pairs		 form = { 0 };
	struct nf_tenant	 t2 = tenant;
	struct nf_tw_result	 r;
	struct nf_error		 e;
	struct nf_tw_client	*c;
	struct srv		 s;
	char			*want;

	nf_pairs_add(&form, "To", 2, "+1 555", 6);
	nf_pairs_add(&form, "Body", 4, "a&b=c \xc3\xbc~", 10);
	nf_pairs_add(&form, "Body", 4, "second", 6);
	srv_start(&s, script, NF_ARRAY_LEN(script));
	c = client(s.port, 1, 2000);
	ck_assert_int_eq(nf_tw_request(c, &tenant, NF_TW_CONVERSATIONS, "POST", "/v1/Things",
	    &form, extra, NF_TW_CREATE, &r, &e), NF_OK);
	nf_tw_result_cleanup(&r);
	/* Without an API secret: account SID + auth token. */
	t2.twilio.api_secret = NULL;
	ck_assert_int_eq(nf_tw_request(c, &t2, NF_TW_API, "GET", "/2010-04-01/Accounts/" AC
	    ".json?A=b", NULL, NULL, NF_TW_IDEMPOTENT, &r, &e), NF_OK);
	nf_tw_result_cleanup(&r);
	srv_stop(&s);
	ck_assert_uint_eq(s.nreq, 2);
	assert_line(&s.req[0], "POST /v1/Things");
	ck_assert_str_eq(s.req[0].body, "To=%2B1%20555&Body=a%26b%3Dc%20%C3%BC~&Body=second");
	want = basic(SK, SECRET);
	ck_assert_str_eq(hdr(&s.req[0], "Authorization"), want);
	free(want);
	ck_assert_str_eq(hdr(&s.req[0], "Content-Type"), "application/x-www-form-urlencoded");
	ck_assert_str_eq(hdr(&s.req[0], "Accept"), "application/json");
	ck_assert_str_eq(hdr(&s.req[0], "User-Agent"), "nonflex/" PACKAGE_VERSION);
	ck_assert_str_eq(hdr(&s.req[0], "X-Twilio-Webhook-Enabled"), "true");
	ck_assert_ptr_null(hdr(&s.req[0], "Expect"));
	assert_line(&s.req[1], "GET /2010-04-01/Accounts/" AC ".json?A=b");
	ck_assert_str_eq(s.req[1].body, "");
	want = basic(AC, TOKEN);
	ck_assert_str_eq(hdr(&s.req[1], "Authorization"), want);
	free(want);
	ck_assert_ptr_null(hdr(&s.req[1], "X-Twilio-Webhook-Enabled"));
	nf_pairs_cleanup(&form);
	nf_tw_client_free(c);
	srv_free(&s);
}
END_TEST

START_TEST(refused_before_sending)
{
	static const char *const crlf[] = { "X-A: b\r\nX-Injected: 1", NULL };
	static const struct canned script[] = { { 200, NULL, "{}", ANSWER } };
	struct nf_tenant	 none = { .id = "none" };
	struct nf_tw_result	 r;
	struct nf_error		 e;
	struct nf_tw_client	*c;
	struct srv		 s;

	srv_start(&s, script, NF_ARRAY_LEN(script));
	c = client(s.port, 4, 2000);
	ck_assert_int_eq(nf_tw_request(c, &none, NF_TW_API, "GET", "/x", NULL, NULL,
	    NF_TW_IDEMPOTENT, &r, &e), NF_EINVAL);
	ck_assert_str_eq(e.code, "twilio_missing_credentials");
	ck_assert_int_eq(r.attempts, 0);
	ck_assert_int_eq(nf_tw_request(c, NULL, NF_TW_API, "GET", "/x", NULL, NULL,
	    NF_TW_IDEMPOTENT, &r, &e), NF_EINVAL);
	ck_assert_int_eq(nf_tw_request(c, &tenant, NF_TW_API, "GET", "/x", NULL, crlf,
	    NF_TW_IDEMPOTENT, &r, &e), NF_EINVAL);
	ck_assert_int_eq(call(c, "PUT", "/x", NF_TW_IDEMPOTENT, &r, &e), NF_EINVAL);
	ck_assert_int_eq(call(c, "GET", "x", NF_TW_IDEMPOTENT, &r, &e), NF_EINVAL);
	ck_assert_int_eq(call(c, "GET", "//evil.example/x", NF_TW_IDEMPOTENT, &r, &e), NF_EINVAL);
	ck_assert_int_eq(call(c, "GET", "/x y", NF_TW_IDEMPOTENT, &r, &e), NF_EINVAL);
	ck_assert_int_eq(call(c, "GET", "/x\r\nHost: evil", NF_TW_IDEMPOTENT, &r, &e), NF_EINVAL);
	ck_assert_int_eq(nf_tw_request(c, &tenant, NF_TW__MAX, "GET", "/x", NULL, NULL,
	    NF_TW_IDEMPOTENT, &r, &e), NF_EINVAL);
	srv_stop(&s);
	ck_assert_uint_eq(s.nreq, 0);
	nf_tw_client_free(c);
	srv_free(&s);
}
END_TEST

/* Run fn with stderr (the log) captured; returns what was written. */
static char *
captured_log(void (*fn)(int), int port)
{
	char	 path[] = "/tmp/t_twrest-log-XXXXXX", *text;
	int	 fd = mkstemp(path), saved = dup(STDERR_FILENO);
	FILE	*f;
	long	 n;

	ck_assert(fd >= 0 && saved >= 0);
	dup2(fd, STDERR_FILENO);
	fn(port);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd);
	f = fopen(path, "r");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	text = nf_xcalloc(1, (size_t)n + 1);
	ck_assert_uint_eq(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	unlink(path);
	return text;
}

static void
noisy_calls(int port)
{
	struct nf_tenant	 t2 = tenant;
	struct nf_tw_result	 r;
	struct nf_error		 e;
	struct nf_tw_client	*c = client(port, 2, 2000);

	t2.twilio.api_secret = NULL;
	call(c, "GET", "/2010-04-01/Accounts/" AC ".json", NF_TW_IDEMPOTENT, &r, &e);
	nf_tw_result_cleanup(&r);
	ck_assert_ptr_null(strstr(e.message, SECRET));
	nf_tw_request(c, &t2, NF_TW_API, "POST", "/v1/Fail", NULL, NULL, NF_TW_IDEMPOTENT, &r, &e);
	ck_assert_ptr_null(strstr(e.message, TOKEN));
	nf_tw_client_free(c);
}

START_TEST(no_secret_in_logs)
{
	static const struct canned script[] = {
		{ 200, NULL, "{\"sid\":\"" AC "\"}", ANSWER },
		{ 500, NULL, "{\"code\":1,\"message\":\"boom\"}", ANSWER },
		{ 401, NULL, "{\"code\":20003,\"message\":\"Authenticate\"}", ANSWER },
	};
	struct srv	 s;
	char		*log, *b1, *b2;

	srv_start(&s, script, NF_ARRAY_LEN(script));
	nf_log_init("t_twrest", NF_LOG_DEBUG);
	log = captured_log(noisy_calls, s.port);
	srv_stop(&s);
	ck_assert_uint_eq(s.nreq, 3);
	/* Every call was logged, with what an operator needs... */
	ck_assert_ptr_nonnull(strstr(log, "\"path\":\"/2010-04-01/Accounts/" AC ".json\""));
	ck_assert_ptr_nonnull(strstr(log, "\"status\":401"));
	ck_assert_ptr_nonnull(strstr(log, "\"attempts\":2"));
	/* ...and never a credential, in clear or as the Basic header. */
	b1 = basic(SK, SECRET);
	b2 = basic(AC, TOKEN);
	ck_assert_ptr_null(strstr(log, SECRET));
	ck_assert_ptr_null(strstr(log, TOKEN));
	ck_assert_ptr_null(strstr(log, b1 + 6));
	ck_assert_ptr_null(strstr(log, b2 + 6));
	free(b1);
	free(b2);
	free(log);
	srv_free(&s);
}
END_TEST


/* ---- pagination ------------------------------------------------------ */

/* A product-API page: "things" = items, meta.next_page_url = next
 * (NULL: null).  uri: the 2010 shape instead, with next_page_uri. */
static char *
page(const char *next, const char *items, int uri)
{
	char	*link = next != NULL ? nf_xasprintf("\"%s\"", next) : nf_xstrdup("null");
	char	*p;

	if (uri)
		p = nf_xasprintf("{\"page\":0,\"next_page_uri\":%s,\"things\":%s}", link, items);
	else
		p = nf_xasprintf("{\"meta\":{\"key\":\"things\",\"next_page_url\":%s},"
		    "\"things\":%s}", link, items);
	free(link);
	return p;
}

/* Serve bodies[0..n) as 200 answers on the bound server s and list
 * path through them; s is stopped on return. */
static enum nf_err
run_list(struct srv *s, char **bodies, size_t n, enum nf_tw_product p, const char *path,
    int max_pages, struct json_object **items, struct nf_error *e)
{
	static struct canned	 script[SRV_MAX];
	struct nf_tw_client	*c;
	enum nf_err		 rc;
	size_t			 i;

	for (i = 0; i < n; i++)
		script[i] = (struct canned){ 200, NULL, bodies[i], ANSWER };
	srv_run(s, script, n);
	c = client(s->port, 1, 2000);
	rc = nf_tw_list(c, &tenant, p, path, "things", max_pages, items, e);
	srv_stop(s);
	nf_tw_client_free(c);
	for (i = 0; i < n; i++)
		free(bodies[i]);
	return rc;
}

START_TEST(pagination_follows_links)
{
	struct json_object	*items = NULL;
	struct nf_error		 e;
	struct srv		 s;
	char			*b[2], *u2;
	size_t			 i;

	/* Product APIs: meta.next_page_url, absolute. */
	srv_bind(&s);
	u2 = nf_xasprintf("http://127.0.0.1:%d/v1/Things?PageSize=2&Page=1&PageToken=PT1", s.port);
	b[0] = page(u2, "[1,2]", 0);
	b[1] = page(NULL, "[3]", 0);
	ck_assert_int_eq(run_list(&s, b, 2, NF_TW_TASKROUTER, "/v1/Things?PageSize=2", 5,
	    &items, &e), NF_OK);
	ck_assert_uint_eq(s.nreq, 2);
	assert_line(&s.req[0], "GET /v1/Things?PageSize=2");
	assert_line(&s.req[1], "GET /v1/Things?PageSize=2&Page=1&PageToken=PT1");
	ck_assert_ptr_nonnull(hdr(&s.req[1], "Authorization"));
	ck_assert_uint_eq(json_object_array_length(items), 3);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(json_object_get_int(json_object_array_get_idx(items, i)),
		    (int)i + 1);
	json_object_put(items);
	free(u2);
	srv_free(&s);

	/* Api 2010: next_page_uri, relative to the base URL's origin. */
	srv_bind(&s);
	b[0] = page("/2010-04-01/Accounts/" AC "/Calls.json?Page=1&PageToken=PA1", "[\"a\"]", 1);
	b[1] = page(NULL, "[\"b\",\"c\"]", 1);
	ck_assert_int_eq(run_list(&s, b, 2, NF_TW_API, "/2010-04-01/Accounts/" AC
	    "/Calls.json?PageSize=1", 5, &items, &e), NF_OK);
	ck_assert_uint_eq(s.nreq, 2);
	assert_line(&s.req[1], "GET /2010-04-01/Accounts/" AC "/Calls.json?Page=1&PageToken=PA1");
	ck_assert_uint_eq(json_object_array_length(items), 3);
	json_object_put(items);
	srv_free(&s);
}
END_TEST

/* fmt with its "PORT" (if any) replaced by port. */
static char *
with_port(const char *fmt, int port)
{
	const char	*p = strstr(fmt, "PORT");

	if (p == NULL)
		return nf_xstrdup(fmt);
	return nf_xasprintf("%.*s%d%s", (int)(p - fmt), fmt, port, p + 4);
}

START_TEST(pagination_refuses_foreign_links)
{
	static const char *const links[] = {
		"http://169.254.169.254/latest/meta-data",
		"https://127.0.0.1:PORT/v1/Things?Page=1",       /* other scheme */
		"http://127.0.0.1:1/v1/Things?Page=1",           /* other port */
		"//evil.example/v1/Things",
		"http://u:p@127.0.0.1:PORT/v1/Things?Page=1",
	};
	struct json_object	*items = NULL;
	struct nf_error		 e;
	struct srv		 s;
	char			*b[1], *link;
	size_t			 i;

	for (i = 0; i < NF_ARRAY_LEN(links); i++) {
		srv_bind(&s);
		link = with_port(links[i], s.port);
		b[0] = page(link, "[1]", 0);
		ck_assert_int_eq(run_list(&s, b, 1, NF_TW_TASKROUTER, "/v1/Things", 5, &items,
		    &e), NF_EUPSTREAM);
		ck_assert_str_eq(e.code, "twilio_bad_page_link");
		ck_assert_ptr_null(items);
		ck_assert_uint_eq(s.nreq, 1);            /* the link was not fetched */
		free(link);
		srv_free(&s);
	}
}
END_TEST

START_TEST(pagination_stops_loops)
{
	struct json_object	*items = NULL;
	struct nf_error		 e;
	struct srv		 s;
	char			*b[3], *u1, *u2, *u3;

	/* Page 2 links back to page 1. */
	srv_bind(&s);
	u1 = nf_xasprintf("http://127.0.0.1:%d/v1/Things?PageSize=2", s.port);
	u2 = nf_xasprintf("http://127.0.0.1:%d/v1/Things?Page=1", s.port);
	b[0] = page(u2, "[1]", 0);
	b[1] = page(u1, "[2]", 0);
	ck_assert_int_eq(run_list(&s, b, 2, NF_TW_TASKROUTER, "/v1/Things?PageSize=2", 10,
	    &items, &e), NF_EUPSTREAM);
	ck_assert_str_eq(e.code, "twilio_page_loop");
	ck_assert_ptr_null(items);
	ck_assert_uint_eq(s.nreq, 2);
	free(u1);
	srv_free(&s);

	/* A page that links to itself. */
	srv_bind(&s);
	b[0] = page(u2, "[1]", 0);
	b[1] = page(u2, "[2]", 0);
	free(u2);
	u2 = nf_xasprintf("http://127.0.0.1:%d/v1/Things?Page=1", s.port);
	free(b[0]);
	free(b[1]);
	b[0] = page(u2, "[1]", 0);
	b[1] = page(u2, "[2]", 0);
	ck_assert_int_eq(run_list(&s, b, 2, NF_TW_TASKROUTER, "/v1/Things", 10, &items, &e),
	    NF_EUPSTREAM);
	ck_assert_str_eq(e.code, "twilio_page_loop");
	ck_assert_uint_eq(s.nreq, 2);
	srv_free(&s);

	/* More pages than allowed. */
	srv_bind(&s);
	free(u2);
	u2 = nf_xasprintf("http://127.0.0.1:%d/v1/Things?Page=1", s.port);
	u3 = nf_xasprintf("http://127.0.0.1:%d/v1/Things?Page=2", s.port);
	b[0] = page(u2, "[1]", 0);
	b[1] = page(u3, "[2]", 0);
	b[2] = page(NULL, "[3]", 0);
	ck_assert_int_eq(run_list(&s, b, 3, NF_TW_TASKROUTER, "/v1/Things", 2, &items, &e),
	    NF_EUPSTREAM);
	ck_assert_str_eq(e.code, "twilio_page_loop");
	ck_assert_uint_eq(s.nreq, 2);
	free(u2);
	free(u3);
	srv_free(&s);
}
END_TEST

START_TEST(pagination_bad_pages)
{
	static const struct canned notfound[] = {
		{ 200, NULL, NULL, ANSWER },
		{ 404, NULL, "{\"code\":20404,\"message\":\"Not found\"}", ANSWER },
	};
	struct canned		 script[2];
	struct json_object	*items = NULL;
	struct nf_tw_client	*c;
	struct nf_error		 e;
	struct srv		 s;
	char			*b[1], *u2, *p1;

	srv_bind(&s);
	b[0] = nf_xstrdup("{\"meta\":{\"next_page_url\":null},\"other\":[1]}");
	ck_assert_int_eq(run_list(&s, b, 1, NF_TW_TASKROUTER, "/v1/Things", 5, &items, &e),
	    NF_EUPSTREAM);
	ck_assert_str_eq(e.code, "twilio_bad_response");
	ck_assert_ptr_null(items);
	srv_free(&s);

	/* A failing second page fails the list, and nothing half-built is kept. */
	srv_bind(&s);
	u2 = nf_xasprintf("http://127.0.0.1:%d/v1/Things?Page=1", s.port);
	p1 = page(u2, "[1]", 0);
	memcpy(script, notfound, sizeof(script));
	script[0].body = p1;
	srv_run(&s, script, 2);
	c = client(s.port, 1, 2000);
	ck_assert_int_eq(nf_tw_list(c, &tenant, NF_TW_TASKROUTER, "/v1/Things", "things", 5,
	    &items, &e), NF_ENOTFOUND);
	srv_stop(&s);
	ck_assert_ptr_null(items);
	ck_assert_int_eq(nf_tw_list(c, &tenant, NF_TW_TASKROUTER, "/v1/Things", "", 5, &items,
	    &e), NF_EINVAL);
	ck_assert_int_eq(nf_tw_list(c, &tenant, NF_TW_TASKROUTER, "/v1/Things", "things", 0,
	    &items, &e), NF_EINVAL);
	nf_tw_client_free(c);
	free(u2);
	free(p1);
	srv_free(&s);
}
END_TEST

/* ---- operations (twilio_api.c) --------------------------------------- */

/* What one operation sent: its request line, form body, and whether it
 * set X-Twilio-Webhook-Enabled. */
struct sent {
	const char	*line;
	const char	*body;
};

static void
assert_sent(const struct srv *s, size_t i, const struct sent *w)
{
	ck_assert_uint_gt(s->nreq, i);
	assert_line(&s->req[i], w->line);
	ck_assert_msg(strcmp(s->req[i].body, w->body) == 0, "%s: body %s, expected %s",
	    w->line, s->req[i].body, w->body);
	ck_assert_ptr_null(hdr(&s->req[i], "X-Twilio-Webhook-Enabled"));
	ck_assert_ptr_nonnull(hdr(&s->req[i], "Authorization"));
}

#define OK201	{ 201, NULL, "{\"sid\":\"x\"}", ANSWER }
#define OK200	{ 200, NULL, "{\"sid\":\"x\"}", ANSWER }

START_TEST(operations_send_exact_parameters)
{
	static const struct canned script[] = {
		OK201, OK200, OK200,
		{ 200, NULL, "{\"meta\":{\"next_page_url\":null},\"messages\":[]}", ANSWER },
		OK201, OK201, OK200, OK200, OK200, OK200,
		{ 200, NULL, "{\"meta\":{\"next_page_url\":null},\"workers\":[{\"sid\":\"" WK
		  "\"}]}", ANSWER },
		{ 200, NULL, "{\"sid\":\"" AC "\",\"auth_token\":\"the-account-token\","
		  "\"status\":\"active\"}", ANSWER },
		OK200,
	};
	static const struct sent want[] = {
		{ "POST /v1/Services/" IS "/Conversations/" CH "/Messages",
		  "Author=agent%3Asarah&Body=Hi%20%26%20%C3%BC%0Abye&"
		  "Attributes=%7B%22nonflex_message_id%22%3A%22m-1%22%7D" },
		{ "GET /v1/Services/" IS "/Conversations/" CH, "" },
		{ "POST /v1/Services/" IS "/Conversations/" CH,
		  "Attributes=%7B%22queue%22%3A%22vip%22%2C%22n%22%3A1%7D" },
		{ "GET /v1/Services/" IS "/Conversations/" CH "/Messages?Order=desc&PageSize=50", "" },
		{ "POST /v1/Workspaces/" WS "/Tasks",
		  "WorkflowSid=" WW "&Attributes=%7B%22type%22%3A%22chat%22%7D&Priority=5&"
		  "TaskChannel=chat&Timeout=3600" },
		{ "POST /v1/Workspaces/" WS "/Tasks",
		  "WorkflowSid=WW00000000000000000000000000000009&"
		  "Attributes=%7B%22type%22%3A%22chat%22%7D" },
		{ "POST /v1/Workspaces/" WS "/Tasks/" WT,
		  "AssignmentStatus=completed&Reason=resolved%20by%20agent" },
		{ "POST /v1/Workspaces/" WS "/Tasks/" WT, "AssignmentStatus=wrapping" },
		{ "POST /v1/Workspaces/" WS "/Tasks/" WT "/Reservations/" WR,
		  "ReservationStatus=accepted" },
		{ "POST /v1/Workspaces/" WS "/Workers/" WK, "ActivitySid=" WA },
		{ "GET /v1/Workspaces/" WS "/Workers?PageSize=100", "" },
		{ "GET /2010-04-01/Accounts/" AC ".json", "" },
		{ "POST /2010-04-01/Accounts/" AC "/Calls/" CA ".json",
		  "Url=https%3A%2F%2Fnonflex.example%2Fwebhooks%2Ftwilio%2Fvoice%3Fstep%3D2&"
		  "Method=POST" },
	};
	struct nf_twapi_task	 task = { .priority = 5, .task_channel = "chat",
				   .timeout_s = 3600 };
	struct json_object	*attrs, *items, *v;
	struct nf_tw_result	 r;
	struct nf_error		 e;
	struct nf_tw_client	*c;
	struct srv		 s;
	size_t			 i;

	srv_start(&s, script, NF_ARRAY_LEN(script));
	c = client(s.port, 1, 2000);
#define RUN(x) do { ck_assert_int_eq((x), NF_OK); nf_tw_result_cleanup(&r); } while (0)
	RUN(nf_twapi_message_create(c, &tenant, CH, "agent:sarah", "Hi & \xc3\xbc\nbye", "m-1",
	    &r, &e));
	RUN(nf_twapi_conversation_fetch(c, &tenant, CH, &r, &e));
	attrs = json_object_new_object();
	nf_json_add_str(attrs, "queue", "vip");
	nf_json_add_int(attrs, "n", 1);
	RUN(nf_twapi_conversation_set_attributes(c, &tenant, CH, attrs, &r, &e));
	json_object_put(attrs);
	ck_assert_int_eq(nf_twapi_messages_list(c, &tenant, CH, 50, 1, &items, &e), NF_OK);
	ck_assert_uint_eq(json_object_array_length(items), 0);
	json_object_put(items);
	task.attributes = attrs = json_object_new_object();
	nf_json_add_str(attrs, "type", "chat");
	RUN(nf_twapi_task_create(c, &tenant, &task, &r, &e));
	memset(&task, 0, sizeof(task));
	task.attributes = attrs;
	task.priority = -1;
	task.workflow_sid = "WW00000000000000000000000000000009";
	RUN(nf_twapi_task_create(c, &tenant, &task, &r, &e));
	json_object_put(attrs);
	RUN(nf_twapi_task_update(c, &tenant, WT, "completed", "resolved by agent", &r, &e));
	RUN(nf_twapi_task_update(c, &tenant, WT, "wrapping", NULL, &r, &e));
	RUN(nf_twapi_reservation_update(c, &tenant, WT, WR, "accepted", &r, &e));
	RUN(nf_twapi_worker_set_activity(c, &tenant, WK, WA, &r, &e));
	ck_assert_int_eq(nf_twapi_workers_list(c, &tenant, 3, &items, &e), NF_OK);
	ck_assert_uint_eq(json_object_array_length(items), 1);
	json_object_put(items);
	ck_assert_int_eq(nf_twapi_account_fetch(c, &tenant, &r, &e), NF_OK);
	/* The account's auth token never travels further. */
	ck_assert(!json_object_object_get_ex(r.body, "auth_token", &v));
	ck_assert(json_object_object_get_ex(r.body, "status", &v));
	nf_tw_result_cleanup(&r);
	RUN(nf_twapi_call_redirect(c, &tenant, CA,
	    "https://nonflex.example/webhooks/twilio/voice?step=2", NULL, &r, &e));
#undef RUN
	srv_stop(&s);
	ck_assert_uint_eq(s.nreq, NF_ARRAY_LEN(want));
	for (i = 0; i < NF_ARRAY_LEN(want); i++)
		assert_sent(&s, i, &want[i]);
	nf_tw_client_free(c);
	srv_free(&s);
}
END_TEST

START_TEST(operations_retry_classes)
{
	static const struct canned script[] = {
		{ 500, NULL, "{}", ANSWER },                            /* message create */
		{ 500, NULL, "{}", ANSWER }, { 200, NULL, "{}", ANSWER }, /* reservation */
		{ 503, NULL, "{}", ANSWER },                            /* task create */
	};
	struct nf_twapi_task	 task = { .priority = -1 };
	struct nf_tw_result	 r;
	struct nf_error		 e;
	struct nf_tw_client	*c;
	struct srv		 s;

	srv_start(&s, script, NF_ARRAY_LEN(script));
	c = client(s.port, 3, 2000);
	ck_assert_int_eq(nf_twapi_message_create(c, &tenant, CH, "a", "b", "m-1", &r, &e),
	    NF_EUNAVAIL);
	ck_assert_int_eq(r.ambiguous, 1);
	ck_assert_int_eq(r.attempts, 1);
	ck_assert_int_eq(nf_twapi_reservation_update(c, &tenant, WT, WR, "rejected", &r, &e),
	    NF_OK);
	ck_assert_int_eq(r.attempts, 2);
	nf_tw_result_cleanup(&r);
	task.attributes = json_object_new_object();
	ck_assert_int_eq(nf_twapi_task_create(c, &tenant, &task, &r, &e), NF_EUNAVAIL);
	ck_assert_int_eq(r.ambiguous, 1);
	ck_assert_int_eq(r.attempts, 1);
	json_object_put(task.attributes);
	srv_stop(&s);
	ck_assert_uint_eq(s.nreq, 4);
	nf_tw_client_free(c);
	srv_free(&s);
}
END_TEST

START_TEST(message_find_reconciles)
{
	static const struct canned script[] = {
		{ 200, NULL, "{\"meta\":{\"next_page_url\":null},\"messages\":["
		  "{\"sid\":\"IM1\",\"attributes\":\"{}\"},"
		  "{\"sid\":\"IM2\",\"attributes\":\"not json\"},"
		  "{\"sid\":\"IM3\",\"attributes\":\"{\\\"nonflex_message_id\\\":\\\"m-7\\\"}\"},"
		  "{\"sid\":\"IM4\",\"attributes\":\"{\\\"nonflex_message_id\\\":\\\"m-8\\\"}\"}]}",
		  ANSWER },
		{ 200, NULL, "{\"meta\":{\"next_page_url\":null},\"messages\":["
		  "{\"sid\":\"IM1\",\"attributes\":\"{}\"}]}", ANSWER },
	};
	struct json_object	*found = NULL, *sid;
	struct nf_error		 e;
	struct nf_tw_client	*c;
	struct srv		 s;

	srv_start(&s, script, NF_ARRAY_LEN(script));
	c = client(s.port, 1, 2000);
	ck_assert_int_eq(nf_twapi_message_find(c, &tenant, CH, "m-8", 3, &found, &e), NF_OK);
	ck_assert_ptr_nonnull(found);
	ck_assert(json_object_object_get_ex(found, "sid", &sid));
	ck_assert_str_eq(json_object_get_string(sid), "IM4");
	json_object_put(found);
	ck_assert_int_eq(nf_twapi_message_find(c, &tenant, CH, "m-7", 3, &found, &e), NF_OK);
	ck_assert_ptr_null(found);                   /* not on the second answer */
	srv_stop(&s);
	assert_line(&s.req[0], "GET /v1/Services/" IS "/Conversations/" CH
	    "/Messages?Order=desc&PageSize=100");
	nf_tw_client_free(c);
	srv_free(&s);
}
END_TEST

START_TEST(operations_refuse_bad_input)
{
	static const char *const bad_sids[] = {
		NULL, "", "CH123", "CH0123456789abcdef0123456789abcdeg",
		"CH0123456789abcdef0123456789abcdef0", "ch0123456789abcdef0123456789abcdef",
		"IS0123456789abcdef0123456789abcdef", "../../2010-04-01/Accounts/AC.json",
		"CH0123456789abcdef0123456789abcd/.", "CH0123456789abcdef0123456789abcdef/Messages",
	};
	static const struct canned script[] = { OK200 };
	struct nf_tenant	 bare = tenant;
	struct nf_twapi_task	 task = { .priority = -1 };
	struct json_object	*items = (struct json_object *)1, *attrs, *arr;
	struct nf_tw_result	 r;
	struct nf_error		 e;
	struct nf_tw_client	*c;
	struct srv		 s;
	char			 longbody[1700];
	size_t			 i;

	srv_start(&s, script, NF_ARRAY_LEN(script));
	c = client(s.port, 1, 2000);
#define REFUSED(x, code_, field_) do {						\
		memset(&r, 0, sizeof(r));					\
		r.attempts = 9;							\
		ck_assert_int_eq((x), NF_EINVAL);				\
		ck_assert_str_eq(e.code, code_);				\
		ck_assert_str_eq(e.field, field_);				\
	} while (0)
	for (i = 0; i < NF_ARRAY_LEN(bad_sids); i++) {
		REFUSED(nf_twapi_message_create(c, &tenant, bad_sids[i], "a", "b", "m", &r, &e),
		    "invalid_sid", "conversation_sid");
		ck_assert_int_eq(r.attempts, 0);
		REFUSED(nf_twapi_conversation_fetch(c, &tenant, bad_sids[i], &r, &e),
		    "invalid_sid", "conversation_sid");
		REFUSED(nf_twapi_messages_list(c, &tenant, bad_sids[i], 50, 1, &items, &e),
		    "invalid_sid", "conversation_sid");
		ck_assert_ptr_null(items);
		REFUSED(nf_twapi_task_update(c, &tenant, bad_sids[i], "completed", "x", &r, &e),
		    "invalid_sid", "task_sid");
		REFUSED(nf_twapi_reservation_update(c, &tenant, WT, bad_sids[i], "accepted", &r,
		    &e), "invalid_sid", "reservation_sid");
		REFUSED(nf_twapi_worker_set_activity(c, &tenant, WK, bad_sids[i], &r, &e),
		    "invalid_sid", "activity_sid");
		REFUSED(nf_twapi_call_redirect(c, &tenant, bad_sids[i], "https://x.example/", NULL,
		    &r, &e), "invalid_sid", "call_sid");
	}
	/* Wrong prefixes: a task SID where a worker goes, and so on. */
	REFUSED(nf_twapi_worker_set_activity(c, &tenant, WT, WA, &r, &e), "invalid_sid",
	    "worker_sid");
	REFUSED(nf_twapi_reservation_update(c, &tenant, WR, WR, "accepted", &r, &e),
	    "invalid_sid", "task_sid");
	/* Bad arguments. */
	REFUSED(nf_twapi_message_create(c, &tenant, CH, "", "b", "m", &r, &e), "invalid_field",
	    "author");
	REFUSED(nf_twapi_message_create(c, &tenant, CH, "a", "", "m", &r, &e), "invalid_field",
	    "body");
	REFUSED(nf_twapi_message_create(c, &tenant, CH, "a", "\xc3\x28", "m", &r, &e),
	    "invalid_field", "body");
	memset(longbody, 'x', sizeof(longbody) - 1);
	longbody[sizeof(longbody) - 1] = '\0';
	REFUSED(nf_twapi_message_create(c, &tenant, CH, "a", longbody, "m", &r, &e),
	    "invalid_field", "body");
	REFUSED(nf_twapi_message_create(c, &tenant, CH, "a", "b", "m 1\"}", &r, &e),
	    "invalid_field", "message_id");
	REFUSED(nf_twapi_messages_list(c, &tenant, CH, 101, 1, &items, &e), "invalid_field",
	    "page_size");
	REFUSED(nf_twapi_conversation_set_attributes(c, &tenant, CH, NULL, &r, &e),
	    "invalid_field", "attributes");
	arr = json_object_new_array();
	REFUSED(nf_twapi_conversation_set_attributes(c, &tenant, CH, arr, &r, &e),
	    "invalid_field", "attributes");
	task.attributes = arr;
	REFUSED(nf_twapi_task_create(c, &tenant, &task, &r, &e), "invalid_field", "attributes");
	json_object_put(arr);
	task.attributes = attrs = json_object_new_object();
	task.timeout_s = 1209601;
	REFUSED(nf_twapi_task_create(c, &tenant, &task, &r, &e), "invalid_field", "timeout_s");
	task.timeout_s = 0;
	task.task_channel = "chat\r\nX: y";
	REFUSED(nf_twapi_task_create(c, &tenant, &task, &r, &e), "invalid_field", "task_channel");
	task.task_channel = NULL;
	task.workflow_sid = WS;
	REFUSED(nf_twapi_task_create(c, &tenant, &task, &r, &e), "invalid_sid", "workflow_sid");
	REFUSED(nf_twapi_task_update(c, &tenant, WT, "assigned", "x", &r, &e), "invalid_field",
	    "status");
	REFUSED(nf_twapi_task_update(c, &tenant, WT, "canceled", NULL, &r, &e), "invalid_field",
	    "reason");
	REFUSED(nf_twapi_reservation_update(c, &tenant, WT, WR, "pending", &r, &e),
	    "invalid_field", "status");
	REFUSED(nf_twapi_call_redirect(c, &tenant, CA, "javascript:alert(1)", NULL, &r, &e),
	    "invalid_field", "url");
	REFUSED(nf_twapi_call_redirect(c, &tenant, CA, "/relative", NULL, &r, &e),
	    "invalid_field", "url");
	REFUSED(nf_twapi_call_redirect(c, &tenant, CA, "https://x.example/a b", NULL, &r, &e),
	    "invalid_field", "url");
	REFUSED(nf_twapi_call_redirect(c, &tenant, CA, "https://x.example/", "PUT", &r, &e),
	    "invalid_field", "method");
	/* A tenant without the SIDs a call needs. */
	bare.twilio.workspace_sid = NULL;
	bare.twilio.workflow_sid = "WWnot-a-sid";
	bare.twilio.conversations_service_sid = NULL;
	bare.twilio.account_sid = "ACshort";
	REFUSED(nf_twapi_workers_list(c, &bare, 1, &items, &e), "twilio_not_configured",
	    "twilio.workspaceSid");
	REFUSED(nf_twapi_conversation_fetch(c, &bare, CH, &r, &e), "twilio_not_configured",
	    "twilio.conversationsServiceSid");
	REFUSED(nf_twapi_account_fetch(c, &bare, &r, &e), "twilio_not_configured",
	    "twilio.accountSid");
	bare.twilio.workspace_sid = WS;
	task.workflow_sid = NULL;
	REFUSED(nf_twapi_task_create(c, &bare, &task, &r, &e), "twilio_not_configured",
	    "twilio.workflowSid");
	json_object_put(attrs);
#undef REFUSED
	srv_stop(&s);
	ck_assert_uint_eq(s.nreq, 0);                /* nothing reached the server */
	nf_tw_client_free(c);
	srv_free(&s);
}
END_TEST

int
main(void)
{
	TCase	*tc;
	Suite	*s = tu_suite("twrest", &tc);

	nf_log_init("t_twrest", NF_LOG_INFO);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, backoff_bounds_and_jitter);
	tcase_add_test(tc, retry_table);
	tcase_add_test(tc, error_bodies);
	tcase_add_test(tc, page_links);
	tcase_add_test(tc, client_config);
	tcase_add_test(tc, rate_limited_then_created);
	tcase_add_test(tc, rate_limit_budget);
	tcase_add_test(tc, create_5xx_is_ambiguous);
	tcase_add_test(tc, idempotent_5xx_retried);
	tcase_add_test(tc, timeouts_and_resets);
	tcase_add_test(tc, connection_refused);
	tcase_add_test(tc, client_errors_not_retried);
	tcase_add_test(tc, bad_success_answers);
	tcase_add_test(tc, request_shape);
	tcase_add_test(tc, refused_before_sending);
	tcase_add_test(tc, no_secret_in_logs);
	tcase_add_test(tc, pagination_follows_links);
	tcase_add_test(tc, pagination_refuses_foreign_links);
	tcase_add_test(tc, pagination_stops_loops);
	tcase_add_test(tc, pagination_bad_pages);
	tcase_add_test(tc, operations_send_exact_parameters);
	tcase_add_test(tc, operations_retry_classes);
	tcase_add_test(tc, message_find_reconciles);
	tcase_add_test(tc, operations_refuse_bad_input);
	return tu_run(s);
}
