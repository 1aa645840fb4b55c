/*
 * t_http.c - tests for the workers' HTTP client (http.c).
 *
 * Real exchanges run against a tiny server on 127.0.0.1 inside the test (a
 * thread that accepts, records the raw request bytes, writes a canned raw
 * answer - or hangs, or closes - and counts connections), so each test
 * can say exactly what went over the wire, including "nothing".  TLS
 * tests use certificates made at test time with the openssl CLI (one for
 * "localhost", one for "other.example") and an OpenSSL server thread.  A
 * freshly freed loopback port stands for "nobody listens".  No test
 * leaves the machine.
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
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "http.h"
#include "log.h"
#include "nonflex.h"
#include "testutil.h"

/* ---- the loopback server ------------------------------------------------ */

struct srv {
	int		 lfd;
	int		 port;
	pthread_t	 th;
	const char	*answer;     /* raw bytes written after the request */
	size_t		 answer_len;
	int		 hang;       /* answer nothing until the client leaves */
	SSL_CTX		*tls;        /* non-NULL: speak TLS */
	int		 accepted;   /* connections accepted (read after stop) */
	int		 handshakes; /* TLS handshakes that succeeded */
	char		 req[65536]; /* the first request's bytes */
	size_t		 req_len;
	volatile int	 stop;
};

static ssize_t
srv_recv(int fd, SSL *ssl, char *buf, size_t n)
{
	struct pollfd	 p = { .fd = fd, .events = POLLIN };

	if (ssl != NULL)
		return SSL_read(ssl, buf, (int)n);
	if (poll(&p, 1, 3000) <= 0)
		return -1;
	return read(fd, buf, n);
}

static void
srv_send(int fd, SSL *ssl, const char *p, size_t n)
{
	ssize_t	 w;

	while (n > 0) {
		w = ssl != NULL ? SSL_write(ssl, p, (int)n) :
		    send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Read a request head and its Content-Length body into s->req. */
static void
srv_read_request(struct srv *s, int fd, SSL *ssl)
{
	char		*end, *cl;
	size_t		 want = 0, hlen;
	ssize_t		 r;

	for (;;) {
		if (s->req_len == sizeof(s->req) - 1 ||
		    (r = srv_recv(fd, ssl, s->req + s->req_len,
		    sizeof(s->req) - 1 - s->req_len)) <= 0)
			return;
		s->req_len += (size_t)r;
		s->req[s->req_len] = '\0';
		if ((end = strstr(s->req, "\r\n\r\n")) != NULL)
			break;
	}
	hlen = (size_t)(end - s->req) + 4;
	if ((cl = strcasestr(s->req, "\r\nContent-Length:")) != NULL && cl < end)
		want = strtoul(cl + 17, NULL, 10);
	while (s->req_len - hlen < want && s->req_len < sizeof(s->req) - 1) {
		if ((r = srv_recv(fd, ssl, s->req + s->req_len,
		    sizeof(s->req) - 1 - s->req_len)) <= 0)
			return;
		s->req_len += (size_t)r;
	}
}

static void
srv_serve(struct srv *s, int fd)
{
	struct timeval	 tv = { .tv_sec = 3 };
	struct pollfd	 p = { .fd = fd, .events = POLLIN };
	SSL		*ssl = NULL;
	char		 x;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (s->tls != NULL) {
		ssl = SSL_new(s->tls);
		SSL_set_fd(ssl, fd);
		if (SSL_accept(ssl) != 1)
			goto out;
		s->handshakes++;
	}
	srv_read_request(s, fd, ssl);
	if (s->hang) {
		/* Until the client gives up and closes. */
		while (!s->stop && poll(&p, 1, 50) >= 0 &&
		    !(p.revents && read(fd, &x, 1) <= 0))
			;
		goto out;
	}
	if (s->answer != NULL)
		srv_send(fd, ssl, s->answer, s->answer_len);
	if (ssl != NULL)
		SSL_shutdown(ssl);
out:
	SSL_free(ssl);
	close(fd);
}

static void *
srv_main(void *arg)
{
	struct srv	*s = arg;
	struct pollfd	 p = { .fd = s->lfd, .events = POLLIN };
	int		 fd;

	while (!s->stop) {
		if (poll(&p, 1, 20) <= 0)
			continue;
		if ((fd = accept(s->lfd, NULL, NULL)) < 0)
			continue;
		s->accepted++;
		srv_serve(s, fd);
	}
	return NULL;
}

/* Start a server answering with the raw bytes answer (NULL: close). */
static void
srv_start(struct srv *s, const char *answer, size_t len)
{
	struct sockaddr_in	 sa;
	socklen_t		 sl = sizeof(sa);
	SSL_CTX			*tls = s->tls;
	int			 hang = s->hang;

	memset(s, 0, sizeof(*s));
	s->tls = tls;
	s->hang = hang;
	s->answer = answer;
	s->answer_len = answer != NULL && len == 0 ? strlen(answer) : len;
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(s->lfd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(s->lfd, 8), 0);
	ck_assert_int_eq(getsockname(s->lfd, (struct sockaddr *)&sa, &sl), 0);
	s->port = ntohs(sa.sin_port);
	ck_assert_int_eq(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void
srv_stop(struct srv *s)
{
	s->stop = 1;
	pthread_join(s->th, NULL);
	close(s->lfd);
}

/* A request to the server's path with test defaults. */
static struct nf_http_req
req_to(const struct srv *s, const char *path, char *url, size_t n)
{
	struct nf_http_req	 rq;

	snprintf(url, n, "%s://127.0.0.1:%d%s", s->tls != NULL ? "https" : "http",
	    s->port, path);
	memset(&rq, 0, sizeof(rq));
	rq.method = "GET";
	rq.url = url;
	rq.connect_timeout_ms = 2000;
	rq.total_timeout_ms = 5000;
	rq.allow_private = 1;
	return rq;
}

/* Run one exchange against a plain server answering raw. */
static enum nf_err
one(const char *raw, size_t max, struct srv *s, struct nf_http_resp *resp,
    struct nf_error *e)
{
	struct nf_http_req	 rq;
	char			 url[128];
	enum nf_err		 rc;

	s->tls = NULL;
	s->hang = 0;
	srv_start(s, raw, 0);
	rq = req_to(s, "/x", url, sizeof(url));
	rq.max_response = max;
	rc = nf_http_do(&rq, resp, e);
	srv_stop(s);
	return rc;
}

/* ---- answers ---------------------------------------------------------- */

START_TEST(t_content_length)
{
	static const char *const hdrs[] = { "Authorization: Bearer tok-1",
	    "Accept: application/json", NULL };
	struct srv		 s;
	struct nf_http_req	 rq;
	struct nf_http_resp	 r;
	struct nf_error		 e;
	char			 url[128], want[64];

	srv_start(&s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	    "Content-Length: 11\r\n\r\n{\"ok\":true}", 0);
	rq = req_to(&s, "/v1/contacts/phone/%2B15551234567?x=1#frag", url, sizeof(url));
	rq.headers = hdrs;
	ck_assert_int_eq(nf_http_do(&rq, &r, &e), NF_OK);
	srv_stop(&s);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"ok\":true}");
	ck_assert_uint_eq(r.body_len, 11);
	ck_assert_str_eq(r.content_type, "application/json");
	ck_assert_int_eq(r.sent, 1);
	ck_assert_int_eq(r.timed_out, 0);
	ck_assert_int_eq(r.retry_after_ms, 0);
	/* What the server saw: the path and query, never the fragment. */
	ck_assert_int_eq(s.accepted, 1);
	ck_assert_msg(strncmp(s.req, "GET /v1/contacts/phone/%2B15551234567?x=1 "
	    "HTTP/1.1\r\n", 52) == 0, "%s", s.req);
	snprintf(want, sizeof(want), "\r\nHost: 127.0.0.1:%d\r\n", s.port);
	ck_assert_ptr_nonnull(strstr(s.req, want));
	ck_assert_ptr_nonnull(strstr(s.req, "\r\nUser-Agent: nonflex/" PACKAGE_VERSION "\r\n"));
	ck_assert_ptr_nonnull(strstr(s.req, "\r\nConnection: close\r\n"));
	ck_assert_ptr_nonnull(strstr(s.req, "\r\nAuthorization: Bearer tok-1\r\n"));
	ck_assert_ptr_nonnull(strstr(s.req, "\r\nAccept: application/json\r\n"));
	ck_assert_ptr_null(strstr(s.req, "frag"));
	ck_assert_ptr_null(strstr(s.req, "Content-Length"));
	nf_http_resp_cleanup(&r);
	nf_http_resp_cleanup(NULL);
}
END_TEST

START_TEST(t_chunked)
{
	struct srv		 s;
	struct nf_http_resp	 r;
	struct nf_error		 e;

	ck_assert_int_eq(one("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n", 0, &s,
	    &r, &e), NF_OK);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "hello world");
	ck_assert_uint_eq(r.body_len, 11);
	nf_http_resp_cleanup(&r);
}
END_TEST

START_TEST(t_close_delimited)
{
	struct srv		 s;
	struct nf_http_resp	 r;
	struct nf_error		 e;

	ck_assert_int_eq(one("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Connection: close\r\n\r\nuntil the very end", 0, &s, &r, &e), NF_OK);
	ck_assert_str_eq(r.body, "until the very end");
	ck_assert_str_eq(r.content_type, "text/plain");
	nf_http_resp_cleanup(&r);
}
END_TEST

START_TEST(t_empty_and_error_status)
{
	struct srv		 s;
	struct nf_http_resp	 r;
	struct nf_error		 e;

	/* Any status is an answer: the caller decides. */
	ck_assert_int_eq(one("HTTP/1.1 500 Internal Server Error\r\n"
	    "Content-Length: 4\r\n\r\noops", 0, &s, &r, &e), NF_OK);
	ck_assert_int_eq(r.status, 500);
	ck_assert_str_eq(r.body, "oops");
	nf_http_resp_cleanup(&r);
	ck_assert_int_eq(one("HTTP/1.1 204 No Content\r\n\r\n", 0, &s, &r, &e), NF_OK);
	ck_assert_int_eq(r.status, 204);
	ck_assert_ptr_nonnull(r.body);
	ck_assert_uint_eq(r.body_len, 0);
	nf_http_resp_cleanup(&r);
	/* An interim 100 is skipped; the final answer counts. */
	ck_assert_int_eq(one("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
	    "Content-Length: 2\r\n\r\n{}", 0, &s, &r, &e), NF_OK);
	ck_assert_int_eq(r.status, 201);
	ck_assert_str_eq(r.body, "{}");
	nf_http_resp_cleanup(&r);
}
END_TEST

START_TEST(t_bytes_after_answer_ignored)
{
	struct srv		 s;
	struct nf_http_resp	 r;
	struct nf_error		 e;

	/* A second answer smuggled after the first must not replace it. */
	ck_assert_int_eq(one("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
	    "HTTP/1.1 500 Evil\r\nLocation: http://10.0.0.1/\r\n"
	    "Content-Length: 4\r\n\r\nevil", 0, &s, &r, &e), NF_OK);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{}");
	ck_assert_str_eq(r.location, "");
	nf_http_resp_cleanup(&r);
}
END_TEST

START_TEST(t_redirect_not_followed)
{
	struct srv		 s;
	struct nf_http_resp	 r;
	struct nf_error		 e;

	ck_assert_int_eq(one("HTTP/1.1 302 Found\r\nLocation: "
	    "http://169.254.169.254/latest/meta-data/\r\nContent-Length: 0\r\n\r\n",
	    0, &s, &r, &e), NF_OK);
	ck_assert_int_eq(r.status, 302);
	ck_assert_str_eq(r.location, "http://169.254.169.254/latest/meta-data/");
	ck_assert_int_eq(s.accepted, 1);
	nf_http_resp_cleanup(&r);
}
END_TEST

START_TEST(t_retry_after)
{
	struct srv		 s;
	struct nf_http_resp	 r;
	struct nf_error		 e;
	char			 raw[256], date[64];
	time_t			 t;

	ck_assert_int_eq(one("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n"
	    "Content-Length: 0\r\n\r\n", 0, &s, &r, &e), NF_OK);
	ck_assert_int_eq(r.status, 429);
	ck_assert_int_eq(r.retry_after_ms, 7000);
	nf_http_resp_cleanup(&r);

	t = time(NULL) + 60;
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime(&t));
	snprintf(raw, sizeof(raw), "HTTP/1.1 503 Unavailable\r\nRetry-After: %s\r\n"
	    "Content-Length: 0\r\n\r\n", date);
	ck_assert_int_eq(one(raw, 0, &s, &r, &e), NF_OK);
	ck_assert_int_eq(r.status, 503);
	ck_assert_msg(r.retry_after_ms > 55000 && r.retry_after_ms <= 61000,
	    "%lld", (long long)r.retry_after_ms);
	nf_http_resp_cleanup(&r);

	/* A date in the past means "now"; nonsense is ignored. */
	ck_assert_int_eq(one("HTTP/1.1 503 x\r\nRetry-After: Thu, 01 Jan 2004 "
	    "00:00:00 GMT\r\nContent-Length: 0\r\n\r\n", 0, &s, &r, &e), NF_OK);
	ck_assert_int_eq(r.retry_after_ms, 0);
	nf_http_resp_cleanup(&r);
	ck_assert_int_eq(one("HTTP/1.1 503 x\r\nRetry-After: soon\r\n"
	    "Content-Length: 0\r\n\r\n", 0, &s, &r, &e), NF_OK);
	ck_assert_int_eq(r.retry_after_ms, 0);
	nf_http_resp_cleanup(&r);
}
END_TEST

START_TEST(t_too_large)
{
	struct srv		 s;
	struct nf_http_resp	 r;
	struct nf_error		 e;
	char			 raw[1024];

	/* Announced over the cap: refused before the body. */
	ck_assert_int_eq(one("HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\nabc",
	    100, &s, &r, &e), NF_EUPSTREAM);
	ck_assert_str_eq(e.code, "upstream_too_large");
	ck_assert_ptr_null(r.body);
	nf_http_resp_cleanup(&r);
	/* Chunked, so only counting can tell. */
	snprintf(raw, sizeof(raw), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
	    "\r\n\r\n64\r\n%0100d\r\n1\r\nx\r\n0\r\n\r\n", 0);
	ck_assert_int_eq(one(raw, 100, &s, &r, &e), NF_EUPSTREAM);
	ck_assert_str_eq(e.code, "upstream_too_large");
	nf_http_resp_cleanup(&r);
	/* Exactly at the cap is fine. */
	ck_assert_int_eq(one(raw, 101, &s, &r, &e), NF_OK);
	ck_assert_uint_eq(r.body_len, 101);
	nf_http_resp_cleanup(&r);
}
END_TEST

START_TEST(t_total_timeout)
{
	struct srv		 s;
	struct nf_http_req	 rq;
	struct nf_http_resp	 r;
	struct nf_error		 e;
	char			 url[128];
	int64_t			 t0, ms;

	s.tls = NULL;
	s.hang = 1;
	srv_start(&s, NULL, 0);
	rq = req_to(&s, "/slow", url, sizeof(url));
	rq.total_timeout_ms = 300;
	t0 = nf_mono_ms();
	ck_assert_int_eq(nf_http_do(&rq, &r, &e), NF_EUPSTREAM);
	ms = nf_mono_ms() - t0;
	srv_stop(&s);
	ck_assert_str_eq(e.code, "upstream_timeout");
	ck_assert_int_eq(r.timed_out, 1);
	ck_assert_int_eq(r.sent, 1);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(ms >= 290 && ms < 1500, "took %lld ms", (long long)ms);
	ck_assert_int_eq(s.accepted, 1);
	nf_http_resp_cleanup(&r);
}
END_TEST

START_TEST(t_nobody_listens)
{
	struct nf_http_req	 rq;
	struct nf_http_resp	 r;
	struct nf_error		 e;
	char			 url[128];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", tu_free_port());
	memset(&rq, 0, sizeof(rq));
	rq.method = "GET";
	rq.url = url;
	rq.allow_private = 1;
	rq.total_timeout_ms = 2000;
	ck_assert_int_eq(nf_http_do(&rq, &r, &e), NF_EUNAVAIL);
	ck_assert_str_eq(e.code, "upstream_unreachable");
	ck_assert_int_eq(r.sent, 0);
	ck_assert_int_eq(r.status, 0);
	nf_http_resp_cleanup(&r);
}
END_TEST

START_TEST(t_malformed)
{
	static const char *const bad[] = {
		"garbage that is not HTTP\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
		"HTTP/1.1 200 OK\r\nContent-Len",
	};
	struct srv		 s;
	struct nf_http_resp	 r;
	struct nf_error		 e;
	size_t			 i;

	for (i = 0; i < NF_ARRAY_LEN(bad); i++) {
		ck_assert_int_eq(one(bad[i], 0, &s, &r, &e), NF_EUPSTREAM);
		ck_assert_msg(strcmp(e.code, "upstream_bad_response") == 0,
		    "case %zu: %s", i, e.code);
		ck_assert_int_eq(r.sent, 1);
		ck_assert_ptr_null(r.body);
		nf_http_resp_cleanup(&r);
	}
	/* Closed without a byte. */
	ck_assert_int_eq(one(NULL, 0, &s, &r, &e), NF_EUPSTREAM);
	ck_assert_str_eq(e.code, "upstream_error");
	nf_http_resp_cleanup(&r);
}
END_TEST

/* ---- requests -------------------------------------------------------------- */

START_TEST(t_post_body)
{
	static const char body[] = "{\"a\":\"line1\\r\\n\"}\r\n\0binary\xff";
	static const char *const hdrs[] = { "Content-Type: application/json", NULL };
	struct srv		 s;
	struct nf_http_req	 rq;
	struct nf_http_resp	 r;
	struct nf_error		 e;
	char			 url[128], cl[64], *b;

	srv_start(&s, "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}", 0);
	rq = req_to(&s, "/tickets", url, sizeof(url));
	rq.method = "POST";
	rq.headers = hdrs;
	rq.body = body;
	rq.body_len = sizeof(body) - 1;
	ck_assert_int_eq(nf_http_do(&rq, &r, &e), NF_OK);
	srv_stop(&s);
	ck_assert_int_eq(r.status, 201);
	ck_assert(strncmp(s.req, "POST /tickets HTTP/1.1\r\n", 24) == 0);
	snprintf(cl, sizeof(cl), "\r\nContent-Length: %zu\r\n", sizeof(body) - 1);
	ck_assert_ptr_nonnull(strstr(s.req, cl));
	b = strstr(s.req, "\r\n\r\n");
	ck_assert_ptr_nonnull(b);
	b += 4;
	ck_assert_uint_eq(s.req_len - (size_t)(b - s.req), sizeof(body) - 1);
	ck_assert(memcmp(b, body, sizeof(body) - 1) == 0);
	nf_http_resp_cleanup(&r);

	/* An empty POST still says Content-Length: 0. */
	srv_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0);
	rq = req_to(&s, "/p", url, sizeof(url));
	rq.method = "POST";
	ck_assert_int_eq(nf_http_do(&rq, &r, &e), NF_OK);
	srv_stop(&s);
	ck_assert_ptr_nonnull(strstr(s.req, "\r\nContent-Length: 0\r\n"));
	nf_http_resp_cleanup(&r);
}
END_TEST

START_TEST(t_bad_headers_refused)
{
	static const char *const cases[][2] = {
		{ "X-A: b\r\nX-Evil: 1", NULL },
		{ "X-A: b\nX-Evil: 1", NULL },
		{ "X-A: b\r", NULL },
		{ "No colon here", NULL },
		{ "Bad Name: x", NULL },
		{ "Host: evil.example", NULL },
		{ "content-length: 5", NULL },
		{ "Transfer-Encoding: chunked", NULL },
	};
	struct srv		 s;
	struct nf_http_req	 rq;
	struct nf_http_resp	 r;
	struct nf_error		 e;
	char			 url[128];
	size_t			 i;

	s.tls = NULL;
	s.hang = 0;
	srv_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0);
	for (i = 0; i < NF_ARRAY_LEN(cases); i++) {
		rq = req_to(&s, "/", url, sizeof(url));
		rq.headers = cases[i];
		ck_assert_int_eq(nf_http_do(&rq, &r, &e), NF_EINVAL);
		ck_assert_str_eq(e.code, "invalid_header");
		ck_assert_str_eq(e.field, "headers");
		ck_assert_int_eq(r.sent, 0);
		nf_http_resp_cleanup(&r);
	}
	rq = req_to(&s, "/", url, sizeof(url));
	rq.method = "GET /x HTTP/1.1\r\nX:";
	ck_assert_int_eq(nf_http_do(&rq, &r, &e), NF_EINVAL);
	ck_assert_str_eq(e.field, "method");
	usleep(100 * 1000);
	srv_stop(&s);
	ck_assert_int_eq(s.accepted, 0);     /* refused before connecting */
}
END_TEST

START_TEST(t_invalid_urls)
{
	static const char *const bad[] = {
		"ftp://example.com/x", "file:///etc/passwd", "gopher://h/",
		"http://", "/relative/path", "example.com/x",
		"http://user:pw@example.com/", "http://exa mple.com/",
		"http://example.com/\r\nX: y", "http://example.com:0/",
		"http://example.com:99999/", "",
	};
	struct nf_http_req	 rq;
	struct nf_http_resp	 r;
	struct nf_error		 e;
	size_t			 i;

	memset(&rq, 0, sizeof(rq));
	rq.method = "GET";
	for (i = 0; i < NF_ARRAY_LEN(bad); i++) {
		rq.url = bad[i];
		ck_assert_msg(nf_http_do(&rq, &r, &e) == NF_EINVAL, "%s", bad[i]);
		ck_assert_str_eq(e.code, "invalid_url");
		ck_assert_str_eq(e.field, "url");
		nf_http_resp_cleanup(&r);
	}
	rq.url = NULL;
	ck_assert_int_eq(nf_http_do(&rq, &r, &e), NF_EINVAL);
	nf_http_resp_cleanup(&r);
}
END_TEST

START_TEST(t_no_secret_in_log)
{
	static const char *const hdrs[] = {
	    "Authorization: Bearer nfsecret-crm-key-41", NULL };
	struct srv		 s;
	struct nf_http_req	 rq;
	struct nf_http_resp	 r;
	struct nf_error		 e;
	char			 url[128], *dir, *path, buf[8192];
	FILE			 *f;
	size_t			 n;
	int			 fd, saved;

	/* Failures log a line; it must name the host, never the path, query
	 * or headers (API keys, phone numbers). */
	dir = tu_tmpdir("http-log");
	path = nf_xasprintf("%s/err", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	saved = dup(2);
	dup2(fd, 2);
	s.tls = NULL;
	s.hang = 0;
	srv_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 0);
	rq = req_to(&s, "/contacts/phone/+15550001111?api_key=nfsecret-q-42",
	    url, sizeof(url));
	rq.headers = hdrs;
	ck_assert_int_eq(nf_http_do(&rq, &r, &e), NF_EUPSTREAM);
	srv_stop(&s);
	nf_http_resp_cleanup(&r);
	rq.allow_private = 0;
	ck_assert_int_eq(nf_http_do(&rq, &r, &e), NF_EFORBIDDEN);
	nf_http_resp_cleanup(&r);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	ck_assert_msg(strstr(buf, "127.0.0.1") != NULL, "%s", buf);
	ck_assert_msg(strstr(buf, "refusing") != NULL, "%s", buf);
	ck_assert_ptr_null(strstr(buf, "nfsecret"));
	ck_assert_ptr_null(strstr(buf, "15550001111"));
	tu_rmtree(dir);
	free(dir);
	free(path);
}
END_TEST

/* ---- destinations ------------------------------------------------------------ */

START_TEST(t_private_refused)
{
	static const char *const dest[][2] = {
		{ "http", "127.0.0.1" }, { "http", "localhost" },
		{ "http", "2130706433" },         /* 127.0.0.1 spelt as a number */
		{ "http", "127.1" }, { "http", "[::ffff:127.0.0.1]" },
		{ "https", "127.0.0.1" },
	};
	struct srv		 s;
	struct nf_http_req	 rq;
	struct nf_http_resp	 r;
	struct nf_error		 e;
	char			 url[128];
	size_t			 i;

	s.tls = NULL;
	s.hang = 0;
	srv_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0);
	for (i = 0; i < NF_ARRAY_LEN(dest); i++) {
		rq = req_to(&s, "/", url, sizeof(url));
		snprintf(url, sizeof(url), "%s://%s:%d/", dest[i][0], dest[i][1],
		    s.port);
		rq.allow_private = 0;
		ck_assert_msg(nf_http_do(&rq, &r, &e) == NF_EFORBIDDEN, "%s", url);
		ck_assert_str_eq(e.code, "destination_refused");
		ck_assert_int_eq(r.sent, 0);
		nf_http_resp_cleanup(&r);
	}
	usleep(100 * 1000);
	ck_assert_int_eq(s.accepted, 0);     /* not even a TCP connection */
	/* The same server is reachable when private addresses are allowed. */
	rq = req_to(&s, "/", url, sizeof(url));
	ck_assert_int_eq(nf_http_do(&rq, &r, &e), NF_OK);
	ck_assert_int_eq(r.status, 200);
	nf_http_resp_cleanup(&r);
	srv_stop(&s);
	ck_assert_int_eq(s.accepted, 1);
}
END_TEST

static int
priv(const char *a)
{
	struct sockaddr_in	 v4;
	struct sockaddr_in6	 v6;

	memset(&v4, 0, sizeof(v4));
	memset(&v6, 0, sizeof(v6));
	if (inet_pton(AF_INET, a, &v4.sin_addr) == 1) {
		v4.sin_family = AF_INET;
		return nf_http_addr_private((struct sockaddr *)&v4);
	}
	ck_assert_msg(inet_pton(AF_INET6, a, &v6.sin6_addr) == 1, "%s", a);
	v6.sin6_family = AF_INET6;
	return nf_http_addr_private((struct sockaddr *)&v6);
}

START_TEST(t_addr_private_table)
{
	static const struct { const char *a; int want; } tab[] = {
		{ "10.0.0.1", 1 }, { "10.255.255.255", 1 },
		{ "172.16.0.1", 1 }, { "172.31.255.254", 1 },
		{ "172.15.255.255", 0 }, { "172.32.0.1", 0 },
		{ "192.168.1.1", 1 }, { "192.169.0.1", 0 },
		{ "127.0.0.1", 1 }, { "127.255.0.9", 1 },
		{ "169.254.169.254", 1 }, { "169.253.0.1", 0 },
		{ "100.64.0.1", 1 }, { "100.127.255.255", 1 },
		{ "100.63.255.255", 0 }, { "100.128.0.0", 0 },
		{ "0.0.0.0", 1 }, { "224.0.0.1", 1 }, { "255.255.255.255", 1 },
		{ "8.8.8.8", 0 }, { "93.184.216.34", 0 }, { "1.1.1.1", 0 },
		{ "::", 1 }, { "::1", 1 },
		{ "fc00::1", 1 }, { "fd12:3456::1", 1 },
		{ "fe80::1", 1 }, { "febf::1", 1 }, { "ff02::1", 1 },
		{ "::ffff:127.0.0.1", 1 }, { "::ffff:169.254.169.254", 1 },
		{ "::ffff:10.1.2.3", 1 }, { "::ffff:8.8.8.8", 0 },
		{ "64:ff9b::a9fe:a9fe", 1 }, { "2002:7f00:1::", 1 },
		{ "2001:4860:4860::8888", 0 }, { "2606:4700::1111", 0 },
	};
	struct sockaddr		 un = { .sa_family = AF_UNIX };
	size_t			 i;

	for (i = 0; i < NF_ARRAY_LEN(tab); i++)
		ck_assert_msg(priv(tab[i].a) == tab[i].want, "%s: want %d",
		    tab[i].a, tab[i].want);
	ck_assert_int_eq(nf_http_addr_private(&un), 1);
	ck_assert_int_eq(nf_http_addr_private(NULL), 1);
}
END_TEST

/* ---- TLS ---------------------------------------------------------------------- */

static char	*certdir;

/* Self-signed certificates for "localhost" (lh) and "other.example". */
static void
certs_make(void)
{
	static const char *const names[] = { "localhost", "other.example" };
	static const char *const files[] = { "lh", "other" };
	char	*cmd;
	size_t	 i;

	certdir = tu_tmpdir("http-tls");
	for (i = 0; i < 2; i++) {
		cmd = nf_xasprintf("openssl req -x509 -newkey ec -pkeyopt "
		    "ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=%s "
		    "-addext subjectAltName=DNS:%s -keyout %s/%s.key -out %s/%s.crt "
		    ">/dev/null 2>&1", names[i], names[i], certdir, files[i],
		    certdir, files[i]);
		if (system(cmd) != 0)
			ck_abort_msg("openssl req failed: %s", cmd);
		free(cmd);
	}
}

static void
certs_rm(void)
{
	tu_rmtree(certdir);
	free(certdir);
	certdir = NULL;
}

static char *
cert(const char *name, const char *ext)
{
	return nf_xasprintf("%s/%s.%s", certdir, name, ext);
}

static SSL_CTX *
server_ctx(const char *name, int max_version)
{
	SSL_CTX	*ctx;
	char	*crt = cert(name, "crt"), *key = cert(name, "key");

	ctx = SSL_CTX_new(TLS_server_method());
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(SSL_CTX_use_certificate_file(ctx, crt, SSL_FILETYPE_PEM), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
	if (max_version != 0) {
		SSL_CTX_set_security_level(ctx, 0);
		SSL_CTX_set_min_proto_version(ctx, 0);
		SSL_CTX_set_max_proto_version(ctx, max_version);
	}
	free(crt);
	free(key);
	return ctx;
}

/* One exchange with a TLS server using name's certificate. */
static enum nf_err
tls_one(const char *name, int max_version, const char *host, const char *ca,
    struct srv *s, struct nf_http_resp *r, struct nf_error *e)
{
	struct nf_http_req	 rq;
	char			 url[128], *caf = ca != NULL ? cert(ca, "crt") : NULL;
	enum nf_err		 rc;

	s->tls = server_ctx(name, max_version);
	s->hang = 0;
	srv_start(s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n7\r\n{\"a\":1}\r\n0\r\n\r\n", 0);
	rq = req_to(s, "/tls", url, sizeof(url));
	snprintf(url, sizeof(url), "https://%s:%d/tls", host, s->port);
	rq.ca_file = caf;
	rc = nf_http_do(&rq, r, e);
	srv_stop(s);
	SSL_CTX_free(s->tls);
	free(caf);
	return rc;
}

START_TEST(t_tls_ok)
{
	struct srv		 s;
	struct nf_http_resp	 r;
	struct nf_error		 e;

	ck_assert_int_eq(tls_one("lh", 0, "localhost", "lh", &s, &r, &e), NF_OK);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"a\":1}");
	ck_assert_int_eq(s.handshakes, 1);
	ck_assert(strncmp(s.req, "GET /tls HTTP/1.1\r\n", 19) == 0);
	ck_assert_ptr_nonnull(strstr(s.req, "\r\nHost: localhost:"));
	nf_http_resp_cleanup(&r);
}
END_TEST

START_TEST(t_tls_unknown_ca)
{
	struct srv		 s;
	struct nf_http_resp	 r;
	struct nf_error		 e;

	/* The system store does not know our self-signed certificate. */
	ck_assert_int_eq(tls_one("lh", 0, "localhost", NULL, &s, &r, &e), NF_EUNAVAIL);
	ck_assert_str_eq(e.code, "upstream_unreachable");
	ck_assert_int_eq(r.sent, 0);
	ck_assert_int_eq(s.handshakes, 0);
	ck_assert_uint_eq(s.req_len, 0);
	nf_http_resp_cleanup(&r);
}
END_TEST

START_TEST(t_tls_system_store)
{
	struct srv		 s;
	struct nf_http_resp	 r;
	struct nf_error		 e;
	char			*cmd, *dir;

	/* No ca_file: the CA is found by subject hash in the system's
	 * certificate directory ($SSL_CERT_DIR here, /etc/ssl/certs in
	 * production), as update-ca-certificates lays it out. */
	dir = nf_xasprintf("%s/store", certdir);
	cmd = nf_xasprintf("mkdir -p %s && cp %s/lh.crt %s/ && openssl rehash %s",
	    dir, certdir, dir, dir);
	ck_assert_int_eq(system(cmd), 0);
	setenv("SSL_CERT_DIR", dir, 1);
	ck_assert_int_eq(tls_one("lh", 0, "localhost", NULL, &s, &r, &e), NF_OK);
	ck_assert_int_eq(r.status, 200);
	nf_http_resp_cleanup(&r);
	unsetenv("SSL_CERT_DIR");
	free(cmd);
	free(dir);
}
END_TEST

START_TEST(t_tls_wrong_name)
{
	struct srv		 s;
	struct nf_http_resp	 r;
	struct nf_error		 e;

	/* A trusted certificate, but for another host name. */
	ck_assert_int_eq(tls_one("other", 0, "localhost", "other", &s, &r, &e),
	    NF_EUNAVAIL);
	ck_assert_str_eq(e.code, "upstream_unreachable");
	ck_assert_int_eq(r.sent, 0);
	ck_assert_uint_eq(s.req_len, 0);
	nf_http_resp_cleanup(&r);
	/* An IP address is checked against the certificate too. */
	ck_assert_int_eq(tls_one("lh", 0, "127.0.0.1", "lh", &s, &r, &e), NF_EUNAVAIL);
	ck_assert_uint_eq(s.req_len, 0);
	nf_http_resp_cleanup(&r);
}
END_TEST

START_TEST(t_tls_old_version)
{
	struct srv		 s;
	struct nf_http_resp	 r;
	struct nf_error		 e;

	ck_assert_int_eq(tls_one("lh", TLS1_1_VERSION, "localhost", "lh", &s, &r, &e),
	    NF_EUNAVAIL);
	ck_assert_int_eq(r.sent, 0);
	ck_assert_uint_eq(s.req_len, 0);
	nf_http_resp_cleanup(&r);
}
END_TEST

START_TEST(t_tls_handshake_timeout)
{
	struct srv		 s;
	struct nf_http_req	 rq;
	struct nf_http_resp	 r;
	struct nf_error		 e;
	char			 url[128];
	int64_t			 t0, ms;

	/* A server that accepts TCP and never answers the ClientHello. */
	s.tls = NULL;
	s.hang = 1;
	srv_start(&s, NULL, 0);
	rq = req_to(&s, "/", url, sizeof(url));
	snprintf(url, sizeof(url), "https://localhost:%d/", s.port);
	rq.total_timeout_ms = 300;
	t0 = nf_mono_ms();
	ck_assert_int_eq(nf_http_do(&rq, &r, &e), NF_EUNAVAIL);
	ms = nf_mono_ms() - t0;
	srv_stop(&s);
	ck_assert_str_eq(e.code, "upstream_unreachable");
	ck_assert_int_eq(r.timed_out, 1);
	ck_assert_int_eq(r.sent, 0);
	ck_assert_msg(ms >= 290 && ms < 1500, "took %lld ms", (long long)ms);
	nf_http_resp_cleanup(&r);
}
END_TEST

static Suite *
suite(void)
{
	Suite	*s;
	TCase	*tc, *tls;

	s = tu_suite("http", &tc);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, t_content_length);
	tcase_add_test(tc, t_chunked);
	tcase_add_test(tc, t_close_delimited);
	tcase_add_test(tc, t_empty_and_error_status);
	tcase_add_test(tc, t_bytes_after_answer_ignored);
	tcase_add_test(tc, t_redirect_not_followed);
	tcase_add_test(tc, t_retry_after);
	tcase_add_test(tc, t_too_large);
	tcase_add_test(tc, t_total_timeout);
	tcase_add_test(tc, t_nobody_listens);
	tcase_add_test(tc, t_malformed);
	tcase_add_test(tc, t_post_body);
	tcase_add_test(tc, t_bad_headers_refused);
	tcase_add_test(tc, t_invalid_urls);
	tcase_add_test(tc, t_private_refused);
	tcase_add_test(tc, t_addr_private_table);
	tcase_add_test(tc, t_no_secret_in_log);
	tls = tcase_create("tls");
	tcase_set_timeout(tls, 20);
	tcase_add_unchecked_fixture(tls, certs_make, certs_rm);
	tcase_add_test(tls, t_tls_ok);
	tcase_add_test(tls, t_tls_unknown_ca);
	tcase_add_test(tls, t_tls_system_store);
	tcase_add_test(tls, t_tls_wrong_name);
	tcase_add_test(tls, t_tls_old_version);
	tcase_add_test(tls, t_tls_handshake_timeout);
	suite_add_tcase(s, tls);
	return s;
}

int
main(void)
{
	nf_log_init("t_http", NF_LOG_WARN);
	return tu_run(suite());
}
