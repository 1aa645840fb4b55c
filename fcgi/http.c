/*
 * http.c - the workers' small HTTP/1.1 client (see http.h): one request
 * per connection over a plain or TLS socket, the answer parsed by
 * Debian's http-parser.
 *
 * DESIGN: a call is a straight line - check the request (URL, method,
 * headers) before any I/O; resolve; for each resolved address, refuse it
 * if it is private (the check runs on the very sockaddr handed to
 * connect(), so a name that resolves - or rebinds - to 127.0.0.1 or
 * 169.254.169.254 is refused too), else connect without blocking under
 * the connect timeout; TLS handshake; send; read and parse until the
 * answer is complete, the peer closes, or the total deadline passes.
 * Every wait is a poll() bounded by the deadline: no signals, no alarms
 * (the workers may be threaded).  The one wait that cannot be bounded is
 * getaddrinfo(): glibc's resolver blocks for its own timeout
 * (resolv.conf "options timeout:/attempts:", 5 s x 2 by default); the
 * deadline is checked right after it, and IP literals never touch DNS.
 *
 * Everything the peer sends is untrusted: header values we keep are
 * truncated to their fields, the body is capped (an announced
 * Content-Length over the cap fails before any body is read), redirects
 * are returned, never followed.  Log lines name the method, host and port
 * and the reason, never the path, query, headers or body (they carry
 * API keys and customer data).  OpenSSL's error queue is cleared before
 * returning so no stale error reaches other users of libcrypto.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "http.h"
#include "log.h"
#include "nonflex.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define HTTP_BODY_DEFAULT	(1024 * 1024)
#define HTTP_TOTAL_DEFAULT_MS	10000
#define HTTP_URL_MAX		4096
#define HTTP_RETRY_AFTER_MAX_S	86400    /* a day: anything longer is nonsense */

/* Where the request goes, from the URL. */
struct target {
	int	 tls;
	int	 literal;          /* host is an IP address: no SNI, IP check */
	char	 host[256];        /* without IPv6 brackets */
	char	 port[8];
	char	 hosthdr[300];     /* Host header value */
	char	*path;             /* path?query, owned */
};

/* An open connection and the deadline every wait on it respects. */
struct conn {
	int	 fd;
	SSL_CTX	*ctx;
	SSL	*ssl;
	int64_t	 deadline;         /* monotonic ms */
};

/* The parser callbacks' view of the answer. */
struct rx {
	struct nf_http_resp	*resp;
	size_t			 cap;        /* body cap */
	size_t			 alloc;      /* bytes allocated for resp->body */
	int			 head_only;  /* HEAD: no body follows */
	char			 field[32];  /* current header name (truncated) */
	size_t			 flen;
	char			 value[sizeof(((struct nf_http_resp *)0)->location)];
	size_t			 vlen;
	int			 in_value;
	int			 too_large;
	int			 done;       /* a final (non-1xx) answer is complete */
};

/* ---- addresses --------------------------------------------------------- */

static int
v4_private(const unsigned char *a)
{
	return a[0] == 0 ||                              /* 0/8 "this network" */
	    a[0] == 10 ||                                /* 10/8 */
	    a[0] == 127 ||                               /* loopback */
	    (a[0] == 100 && (a[1] & 0xc0) == 64) ||      /* 100.64/10 CGNAT */
	    (a[0] == 169 && a[1] == 254) ||              /* link-local, metadata */
	    (a[0] == 172 && (a[1] & 0xf0) == 16) ||      /* 172.16/12 */
	    (a[0] == 192 && a[1] == 168) ||              /* 192.168/16 */
	    (a[0] == 192 && a[1] == 0 && a[2] == 0) ||   /* 192.0.0/24 IETF */
	    (a[0] == 198 && (a[1] & 0xfe) == 18) ||      /* 198.18/15 benchmarking */
	    a[0] >= 224;                                 /* multicast, reserved, broadcast */
}

int
nf_http_addr_private(const struct sockaddr *sa)
{
	const unsigned char	*a;
	static const unsigned char v4mapped[12] =
	    { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const unsigned char nat64[12] =
	    { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const unsigned char zero[16];

	if (sa == NULL)
		return 1;
	if (sa->sa_family == AF_INET)
		return v4_private((const unsigned char *)
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr);
	if (sa->sa_family != AF_INET6)
		return 1;
	a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
	if (memcmp(a, zero, 15) == 0 && (a[15] == 0 || a[15] == 1))
		return 1;                                /* :: and ::1 */
	/* Addresses that embed an IPv4 one reach that IPv4 address. */
	if (memcmp(a, v4mapped, 12) == 0 || memcmp(a, nat64, 12) == 0 ||
	    memcmp(a, zero, 12) == 0)                /* deprecated ::a.b.c.d */
		return v4_private(a + 12);
	if (a[0] == 0x20 && a[1] == 0x02)                /* 6to4 2002::/16 */
		return v4_private(a + 2);
	return (a[0] & 0xfe) == 0xfc ||                  /* fc00::/7 ULA */
	    (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) ||   /* fe80::/10 link-local */
	    (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) ||   /* fec0::/10 site-local */
	    a[0] == 0xff;                                /* multicast */
}

/* ---- checking the request ---------------------------------------------- */

/* RFC 9110 token characters (header names, methods). */
static int
tchar(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/*
 * 1 when h is "Name: value" with a token name, no control character but
 * HTAB in the value (so no CR/LF: no header or request smuggling), and
 * not one of the headers this client writes itself.
 */
static int
header_ok(const char *h)
{
	static const char *const ours[] = {
		"host", "content-length", "transfer-encoding", "connection",
	};
	const char	*p;
	size_t		 i, n;

	for (p = h; *p != '\0' && tchar((unsigned char)*p); p++)
		;
	if (p == h || *p != ':')
		return 0;
	n = (size_t)(p - h);
	for (i = 0; i < NF_ARRAY_LEN(ours); i++)
		if (strlen(ours[i]) == n && strncasecmp(h, ours[i], n) == 0)
			return 0;
	for (p++; *p != '\0'; p++)
		if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
			return 0;
	return 1;
}

static enum nf_err
check_request(const struct nf_http_req *rq, struct nf_error *e)
{
	const char	*p;
	size_t		 i;

	if (rq->method == NULL || *rq->method == '\0' || strlen(rq->method) > 16)
		return nf_error_set(e, NF_EINVAL, "invalid_method", "method",
		    "method must be an HTTP token");
	for (p = rq->method; *p != '\0'; p++)
		if (!tchar((unsigned char)*p))
			return nf_error_set(e, NF_EINVAL, "invalid_method",
			    "method", "method must be an HTTP token");
	for (i = 0; rq->headers != NULL && rq->headers[i] != NULL; i++)
		if (!header_ok(rq->headers[i]))
			return nf_error_set(e, NF_EINVAL, "invalid_header",
			    "headers", "header %zu is malformed, has CR/LF or "
			    "is set by the client itself", i);
	if (rq->body == NULL && rq->body_len > 0)
		return nf_error_set(e, NF_EINVAL, "invalid_body", "body",
		    "body_len without body");
	return NF_OK;
}

static enum nf_err
bad_url(struct nf_error *e, const char *why)
{
	return nf_error_set(e, NF_EINVAL, "invalid_url", "url", "%s", why);
}

/* Fill t from url: http(s) only, a host, no credentials, no fragment sent. */
static enum nf_err
parse_url(const char *url, struct target *t, struct nf_error *e)
{
	struct http_parser_url	 u;
	size_t			 len, hlen, n;
	const char		*s;
	unsigned char		 tmp[sizeof(struct in6_addr)];
	unsigned		 port;
	int			 v6;

	memset(t, 0, sizeof(*t));
	if (url == NULL || (len = strlen(url)) == 0 || len > HTTP_URL_MAX)
		return bad_url(e, "url is missing or too long");
	for (s = url; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return bad_url(e, "url must be ASCII without spaces");
	http_parser_url_init(&u);
	if (http_parser_parse_url(url, len, 0, &u) != 0 ||
	    !(u.field_set & (1 << UF_SCHEMA)) || !(u.field_set & (1 << UF_HOST)))
		return bad_url(e, "url is not an absolute http(s) URL");
	s = url + u.field_data[UF_SCHEMA].off;
	n = u.field_data[UF_SCHEMA].len;
	if (n == 5 && strncasecmp(s, "https", 5) == 0)
		t->tls = 1;
	else if (n != 4 || strncasecmp(s, "http", 4) != 0)
		return bad_url(e, "only http and https URLs are allowed");
	if (u.field_set & (1 << UF_USERINFO))
		return bad_url(e, "credentials in the URL are not allowed");
	hlen = u.field_data[UF_HOST].len;
	if (hlen == 0 || hlen >= sizeof(t->host))
		return bad_url(e, "bad host");
	memcpy(t->host, url + u.field_data[UF_HOST].off, hlen);
	if ((u.field_set & (1 << UF_PORT)) && u.port == 0)
		return bad_url(e, "bad port");
	port = (u.field_set & (1 << UF_PORT)) ? u.port : t->tls ? 443 : 80;
	snprintf(t->port, sizeof(t->port), "%u", port);
	v6 = inet_pton(AF_INET6, t->host, tmp) == 1;
	t->literal = v6 || inet_pton(AF_INET, t->host, tmp) == 1;
	if (strchr(t->host, ':') != NULL && !v6)
		return bad_url(e, "bad host");
	snprintf(t->hosthdr, sizeof(t->hosthdr), "%s%s%s%s%s", v6 ? "[" : "",
	    t->host, v6 ? "]" : "", (u.field_set & (1 << UF_PORT)) ? ":" : "",
	    (u.field_set & (1 << UF_PORT)) ? t->port : "");
	t->path = nf_xasprintf("%.*s%s%.*s",
	    (u.field_set & (1 << UF_PATH)) ? (int)u.field_data[UF_PATH].len : 1,
	    (u.field_set & (1 << UF_PATH)) ? url + u.field_data[UF_PATH].off : "/",
	    (u.field_set & (1 << UF_QUERY)) ? "?" : "",
	    (u.field_set & (1 << UF_QUERY)) ? (int)u.field_data[UF_QUERY].len : 0,
	    (u.field_set & (1 << UF_QUERY)) ? url + u.field_data[UF_QUERY].off : "");
	return NF_OK;
}

/* ---- waiting and I/O ----------------------------------------------------- */

/* Wait for ev on fd until deadline: 1 ready, 0 timed out, -1 error. */
static int
wait_fd(int fd, short ev, int64_t deadline)
{
	struct pollfd	 p = { .fd = fd, .events = ev };
	int64_t		 left;
	int		 r;

	for (;;) {
		if ((left = deadline - nf_mono_ms()) <= 0)
			return 0;
		r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0)
			return 1;
		if (r == 0)
			continue;              /* re-check the clock */
		if (errno != EINTR)
			return -1;
	}
}

/* Wait as a TLS call asked (WANT_READ/WANT_WRITE); same results as wait_fd. */
static int
tls_wait(struct conn *c, int ret, int64_t deadline)
{
	switch (SSL_get_error(c->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return wait_fd(c->fd, POLLIN, deadline);
	case SSL_ERROR_WANT_WRITE:
		return wait_fd(c->fd, POLLOUT, deadline);
	default:
		return -1;
	}
}

/* Write all of p: 1 done, 0 timed out, -1 error; *sent set once a byte left. */
static int
conn_write(struct conn *c, const char *p, size_t n, int *sent)
{
	ssize_t	 w;
	int	 r;

	while (n > 0) {
		if (c->ssl != NULL) {
			ERR_clear_error();
			if ((r = SSL_write(c->ssl, p, n > INT_MAX ? INT_MAX : (int)n)) > 0)
				w = r;
			else if ((r = tls_wait(c, r, c->deadline)) <= 0)
				return r;
			else
				continue;
		} else if ((w = send(c->fd, p, n, MSG_NOSIGNAL)) < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return -1;
			if ((r = wait_fd(c->fd, POLLOUT, c->deadline)) <= 0)
				return r;
			continue;
		}
		*sent = 1;
		p += w;
		n -= (size_t)w;
	}
	return 1;
}

/* Read some bytes: >0 count, 0 end of stream, -1 error, -2 timed out. */
static ssize_t
conn_read(struct conn *c, char *buf, size_t n)
{
	ssize_t	 r;
	int	 w, err;

	for (;;) {
		if (c->ssl != NULL) {
			ERR_clear_error();
			if ((w = SSL_read(c->ssl, buf, n > INT_MAX ? INT_MAX : (int)n)) > 0)
				return w;
			err = SSL_get_error(c->ssl, w);
			/* A peer that closes without close_notify is treated
			 * as an end of stream (SSL_OP_IGNORE_UNEXPECTED_EOF);
			 * Content-Length and chunked bodies still detect
			 * truncation, only close-delimited ones cannot. */
			if (err == SSL_ERROR_ZERO_RETURN)
				return 0;
			if ((w = tls_wait(c, w, c->deadline)) <= 0)
				return w == 0 ? -2 : -1;
			continue;
		}
		if ((r = recv(c->fd, buf, n, 0)) >= 0)
			return r;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		if ((w = wait_fd(c->fd, POLLIN, c->deadline)) <= 0)
			return w == 0 ? -2 : -1;
	}
}

static void
conn_close(struct conn *c)
{
	if (c->ssl != NULL) {
		/* Best effort, non-blocking: we do not wait for the peer's. */
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	c->ssl = NULL;
	c->ctx = NULL;
	c->fd = -1;
	ERR_clear_error();
}

/* ---- connecting ------------------------------------------------------------ */

/* Connect fd to ai within the timeout: 1 connected, 0 timed out, -1 failed. */
static int
connect_one(const struct addrinfo *ai, int64_t deadline, int *fdp)
{
	int		 fd, r, soerr = 0;
	socklen_t	 len = sizeof(soerr);

	*fdp = -1;
	if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) < 0)
		return -1;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
		*fdp = fd;
		return 1;
	}
	if (errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	if ((r = wait_fd(fd, POLLOUT, deadline)) <= 0) {
		close(fd);
		return r;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
		close(fd);
		return -1;
	}
	*fdp = fd;
	return 1;
}

static void
addr_text(const struct sockaddr *sa, char *buf, size_t n)
{
	const void	*a = sa->sa_family == AF_INET6 ?
	    (const void *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr :
	    (const void *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;

	if (inet_ntop(sa->sa_family, a, buf, (socklen_t)n) == NULL)
		snprintf(buf, n, "?");
}

/*
 * Resolve t and connect to the first address that is allowed and answers.
 * Private addresses are skipped (not connected to) unless allowed.
 */
static enum nf_err
open_conn(const struct target *t, const struct nf_http_req *rq,
    struct conn *c, struct nf_http_resp *resp, struct nf_error *e)
{
	struct addrinfo		 hints, *res = NULL, *ai;
	char			 txt[INET6_ADDRSTRLEN];
	int64_t			 cto, until;
	int			 rc, refused = 0, tried = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(t->host, t->port, &hints, &res)) != 0) {
		nf_warn("http: cannot resolve %s: %s", t->host, gai_strerror(rc));
		return nf_error_set(e, NF_EUNAVAIL, "upstream_unreachable", NULL,
		    "cannot resolve the host");
	}
	cto = rq->connect_timeout_ms > 0 ? rq->connect_timeout_ms : INT64_MAX / 4;
	for (ai = res; ai != NULL && c->fd < 0; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		if (!rq->allow_private && nf_http_addr_private(ai->ai_addr)) {
			addr_text(ai->ai_addr, txt, sizeof(txt));
			nf_warn("http: refusing %s:%s (%s is a private, loopback "
			    "or link-local address)", t->host, t->port, txt);
			refused++;
			continue;
		}
		tried++;
		until = nf_mono_ms() + cto;
		if (until > c->deadline)
			until = c->deadline;
		if (connect_one(ai, until, &c->fd) == 0)
			resp->timed_out = 1;
	}
	freeaddrinfo(res);
	if (c->fd >= 0) {
		resp->timed_out = 0;
		return NF_OK;
	}
	if (refused > 0 && tried == 0)
		return nf_error_set(e, NF_EFORBIDDEN, "destination_refused", "url",
		    "the destination address is not allowed");
	nf_warn("http: cannot connect to %s:%s%s", t->host, t->port,
	    resp->timed_out ? " (timed out)" : "");
	return nf_error_set(e, NF_EUNAVAIL, "upstream_unreachable", NULL,
	    resp->timed_out ? "connecting timed out" : "cannot connect");
}

/* OpenSSL's oldest queued error as text (into buf: thread-safe). */
static const char *
ssl_err(char *buf, size_t n)
{
	ERR_error_string_n(ERR_get_error(), buf, n);
	return buf;
}

/*
 * The system's trust anchors, looked up by subject hash in the certificate
 * directory (/etc/ssl/certs, or $SSL_CERT_DIR) so only the CA a chain needs
 * is read.  SSL_CTX_set_default_verify_paths() would also parse the whole
 * bundle file (about 140 certificates) on every call: measured +1.1 MB of
 * heap and +1 MB of touched library pages per worker.  $SSL_CERT_FILE,
 * when an operator sets it, is loaded as well.
 */
static int
trust_system(SSL_CTX *ctx)
{
	const char	*dir = getenv(X509_get_default_cert_dir_env());
	const char	*file = getenv(X509_get_default_cert_file_env());

	if (dir == NULL || *dir == '\0')
		dir = X509_get_default_cert_dir();
	if (!SSL_CTX_load_verify_locations(ctx, NULL, dir))
		return 0;
	return file == NULL || *file == '\0' ||
	    SSL_CTX_load_verify_locations(ctx, file, NULL);
}

/* TLS >= 1.2 with the peer's chain and name verified; SNI for names. */
static enum nf_err
tls_start(struct conn *c, const struct target *t, const struct nf_http_req *rq,
    struct nf_http_resp *resp, struct nf_error *e)
{
	char	 eb[256];
	int64_t	 until;
	long	 vr;
	int	 r;

	until = rq->connect_timeout_ms > 0 ? nf_mono_ms() + rq->connect_timeout_ms :
	    c->deadline;
	if (until > c->deadline)
		until = c->deadline;
	ERR_clear_error();
	if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    !SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) ||
	    !trust_system(c->ctx) ||
	    (rq->ca_file != NULL &&
	    !SSL_CTX_load_verify_locations(c->ctx, rq->ca_file, NULL))) {
		nf_warn("http: TLS setup failed: %s",
		    ssl_err(eb, sizeof(eb)));
		return nf_error_set(e, NF_EUNAVAIL, "upstream_unreachable", NULL,
		    "TLS setup failed");
	}
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	SSL_CTX_set_options(c->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	if ((c->ssl = SSL_new(c->ctx)) == NULL || !SSL_set_fd(c->ssl, c->fd) ||
	    (t->literal ?
	    !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), t->host) :
	    (!SSL_set_tlsext_host_name(c->ssl, t->host) ||
	    !SSL_set1_host(c->ssl, t->host)))) {
		nf_warn("http: TLS setup failed: %s",
		    ssl_err(eb, sizeof(eb)));
		return nf_error_set(e, NF_EUNAVAIL, "upstream_unreachable", NULL,
		    "TLS setup failed");
	}
	for (;;) {
		ERR_clear_error();
		if ((r = SSL_connect(c->ssl)) == 1)
			return NF_OK;
		if ((r = tls_wait(c, r, until)) <= 0)
			break;
	}
	if (r == 0)
		resp->timed_out = 1;
	vr = SSL_get_verify_result(c->ssl);
	nf_warn("http: TLS handshake with %s:%s failed: %s", t->host, t->port,
	    r == 0 ? "timed out" : vr != X509_V_OK ?
	    X509_verify_cert_error_string(vr) :
	    ssl_err(eb, sizeof(eb)));
	return nf_error_set(e, NF_EUNAVAIL, "upstream_unreachable", NULL,
	    vr != X509_V_OK ? "the server's certificate was not accepted" :
	    "TLS handshake failed");
}

/* ---- the answer -------------------------------------------------------------- */

/* Retry-After: delta seconds or an HTTP date, as ms from now (>= 0). */
static int64_t
retry_after(const char *v)
{
	struct tm	 tm;
	const char	*end;
	int64_t		 s = 0, ms;

	while (*v == ' ' || *v == '\t')
		v++;
	if (*v >= '0' && *v <= '9') {
		for (; *v >= '0' && *v <= '9'; v++)
			if ((s = s * 10 + (*v - '0')) > HTTP_RETRY_AFTER_MAX_S)
				s = HTTP_RETRY_AFTER_MAX_S;
		return s * 1000;
	}
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm)) == NULL)
		return 0;
	ms = (int64_t)timegm(&tm) * 1000 - nf_now_ms();
	if (ms < 0)
		return 0;
	return ms > HTTP_RETRY_AFTER_MAX_S * 1000 ? HTTP_RETRY_AFTER_MAX_S * 1000 : ms;
}

/* Copy a header value without control characters, truncated to n - 1. */
static void
keep(char *dst, size_t n, const char *v)
{
	size_t	 i = 0;

	for (; *v != '\0' && i + 1 < n; v++)
		if ((unsigned char)*v >= 0x20 && *v != 0x7f)
			dst[i++] = *v;
	dst[i] = '\0';
}

/* One header is complete: keep the few the caller sees. */
static void
header_done(struct rx *x)
{
	x->field[x->flen] = '\0';
	x->value[x->vlen] = '\0';
	if (strcasecmp(x->field, "Content-Type") == 0)
		keep(x->resp->content_type, sizeof(x->resp->content_type), x->value);
	else if (strcasecmp(x->field, "Location") == 0)
		keep(x->resp->location, sizeof(x->resp->location), x->value);
	else if (strcasecmp(x->field, "Retry-After") == 0)
		x->resp->retry_after_ms = retry_after(x->value);
	x->flen = x->vlen = 0;
	x->in_value = 0;
}

static void
append(char *dst, size_t *len, size_t cap, const char *at, size_t n)
{
	if (n > cap - 1 - *len)
		n = cap - 1 - *len;    /* longer names and values are cut */
	memcpy(dst + *len, at, n);
	*len += n;
}

static int
on_field(http_parser *p, const char *at, size_t n)
{
	struct rx	*x = p->data;

	if (x->in_value)
		header_done(x);
	append(x->field, &x->flen, sizeof(x->field), at, n);
	return 0;
}

static int
on_value(http_parser *p, const char *at, size_t n)
{
	struct rx	*x = p->data;

	x->in_value = 1;
	append(x->value, &x->vlen, sizeof(x->value), at, n);
	return 0;
}

static int
on_headers(http_parser *p)
{
	struct rx	*x = p->data;

	if (x->in_value)
		header_done(x);
	x->resp->status = (int)p->status_code;
	if ((p->flags & F_CONTENTLENGTH) && p->content_length > x->cap) {
		x->too_large = 1;
		return -1;
	}
	return x->head_only ? 1 : 0;     /* 1: the answer has no body */
}

static int
on_body(http_parser *p, const char *at, size_t n)
{
	struct rx		*x = p->data;
	struct nf_http_resp	*r = x->resp;

	if (n > x->cap - r->body_len) {
		x->too_large = 1;
		return -1;
	}
	if (r->body_len + n + 1 > x->alloc) {
		x->alloc = (r->body_len + n + 1) * 2;
		if (x->alloc > x->cap + 1)
			x->alloc = x->cap + 1;
		r->body = nf_xrealloc(r->body, x->alloc);
	}
	memcpy(r->body + r->body_len, at, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
	return 0;
}

static int
on_complete(http_parser *p)
{
	struct rx		*x = p->data;
	struct nf_http_resp	*r = x->resp;

	if (p->status_code >= 100 && p->status_code < 200) {
		/* An interim answer (100 Continue): the real one follows. */
		r->status = 0;
		r->content_type[0] = r->location[0] = '\0';
		r->retry_after_ms = 0;
		return 0;
	}
	x->done = 1;
	http_parser_pause(p, 1);         /* ignore anything after it */
	return 0;
}

/* Read and parse until a final answer is complete. */
static enum nf_err
receive(struct conn *c, const struct target *t, struct rx *x, struct nf_error *e)
{
	http_parser_settings	 cb;
	http_parser		 p;
	char			 buf[16384];
	ssize_t			 n;
	size_t			 used, total = 0;

	http_parser_settings_init(&cb);
	cb.on_header_field = on_field;
	cb.on_header_value = on_value;
	cb.on_headers_complete = on_headers;
	cb.on_body = on_body;
	cb.on_message_complete = on_complete;
	http_parser_init(&p, HTTP_RESPONSE);
	p.data = x;
	for (;;) {
		if ((n = conn_read(c, buf, sizeof(buf))) < 0) {
			if (n == -2) {
				x->resp->timed_out = 1;
				nf_warn("http: %s:%s timed out", t->host, t->port);
				return nf_error_set(e, NF_EUPSTREAM, "upstream_timeout",
				    NULL, "the upstream did not answer in time");
			}
			nf_warn("http: reading from %s:%s failed", t->host, t->port);
			return nf_error_set(e, NF_EUPSTREAM, "upstream_error", NULL,
			    "the connection to the upstream failed");
		}
		total += (size_t)n;
		/* n == 0 tells the parser the stream ended, which completes
		 * a close-delimited body. */
		used = http_parser_execute(&p, &cb, buf, (size_t)n);
		if (x->done)
			return NF_OK;
		if (x->too_large) {
			nf_warn("http: answer from %s:%s is over %zu bytes",
			    t->host, t->port, x->cap);
			return nf_error_set(e, NF_EUPSTREAM, "upstream_too_large",
			    NULL, "the upstream's answer is too large");
		}
		if (HTTP_PARSER_ERRNO(&p) != HPE_OK || used != (size_t)n || n == 0) {
			if (total == 0) {
				nf_warn("http: %s:%s closed without answering",
				    t->host, t->port);
				return nf_error_set(e, NF_EUPSTREAM, "upstream_error",
				    NULL, "the upstream closed the connection");
			}
			nf_warn("http: bad answer from %s:%s: %s", t->host, t->port,
			    n == 0 && HTTP_PARSER_ERRNO(&p) == HPE_OK ? "truncated" :
			    http_errno_name(HTTP_PARSER_ERRNO(&p)));
			return nf_error_set(e, NF_EUPSTREAM, "upstream_bad_response",
			    NULL, "the upstream's answer is malformed");
		}
	}
}

/* ---- one exchange -------------------------------------------------------------- */

/* Request line and headers, ending with the blank line. */
static char *
request_head(const struct nf_http_req *rq, const struct target *t)
{
	char	*head, *next;
	int	 want_len;
	size_t	 i;

	want_len = rq->body != NULL || strcmp(rq->method, "POST") == 0 ||
	    strcmp(rq->method, "PUT") == 0 || strcmp(rq->method, "PATCH") == 0;
	head = nf_xasprintf("%s %s HTTP/1.1\r\nHost: %s\r\n"
	    "User-Agent: nonflex/%s\r\nConnection: close\r\n", rq->method, t->path,
	    t->hosthdr, PACKAGE_VERSION);
	if (want_len) {
		next = nf_xasprintf("%sContent-Length: %zu\r\n", head, rq->body_len);
		free(head);
		head = next;
	}
	for (i = 0; rq->headers != NULL && rq->headers[i] != NULL; i++) {
		next = nf_xasprintf("%s%s\r\n", head, rq->headers[i]);
		free(head);
		head = next;
	}
	next = nf_xasprintf("%s\r\n", head);
	free(head);
	return next;
}

static enum nf_err
exchange(const struct nf_http_req *rq, const struct target *t, struct conn *c,
    struct nf_http_resp *resp, struct nf_error *e)
{
	struct rx	 x;
	char		*head;
	enum nf_err	 rc;
	int		 w;

	if ((rc = open_conn(t, rq, c, resp, e)) != NF_OK)
		return rc;
	if (t->tls && (rc = tls_start(c, t, rq, resp, e)) != NF_OK)
		return rc;
	head = request_head(rq, t);
	w = conn_write(c, head, strlen(head), &resp->sent);
	free(head);
	if (w > 0 && rq->body_len > 0)
		w = conn_write(c, rq->body, rq->body_len, &resp->sent);
	if (w <= 0) {
		resp->timed_out = w == 0;
		nf_warn("http: sending to %s:%s failed%s", t->host, t->port,
		    w == 0 ? " (timed out)" : "");
		if (!resp->sent)
			return nf_error_set(e, NF_EUNAVAIL, "upstream_unreachable",
			    NULL, "cannot send the request");
		return nf_error_set(e, NF_EUPSTREAM, w == 0 ? "upstream_timeout" :
		    "upstream_error", NULL, "sending the request failed");
	}
	memset(&x, 0, sizeof(x));
	x.resp = resp;
	x.cap = rq->max_response > 0 ? rq->max_response : HTTP_BODY_DEFAULT;
	x.head_only = strcmp(rq->method, "HEAD") == 0;
	if ((rc = receive(c, t, &x, e)) != NF_OK)
		return rc;
	if (resp->body == NULL)
		resp->body = nf_xstrdup("");
	return NF_OK;
}

/*
 * SIGPIPE: plain sockets use MSG_NOSIGNAL, but OpenSSL writes with
 * write(), so a peer that went away would kill a process that does not
 * ignore the signal.  Block it in this thread for the call and discard
 * one we caused (the way libcurl guards its TLS writes).
 */
static void
sigpipe_block(sigset_t *old, int *was_pending)
{
	sigset_t	 set, pend;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigemptyset(&pend);
	sigpending(&pend);
	*was_pending = sigismember(&pend, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &set, old);
}

static void
sigpipe_restore(const sigset_t *old, int was_pending)
{
	sigset_t		 set, pend;
	struct timespec		 zero = { 0, 0 };

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigemptyset(&pend);
	if (!was_pending && sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE) == 1)
		sigtimedwait(&set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

enum nf_err
nf_http_do(const struct nf_http_req *rq, struct nf_http_resp *resp,
    struct nf_error *e)
{
	struct target	 t;
	struct conn	 c = { .fd = -1 };
	sigset_t	 old;
	enum nf_err	 rc;
	int		 pending;

	memset(resp, 0, sizeof(*resp));
	nf_error_clear(e);
	memset(&t, 0, sizeof(t));
	if ((rc = check_request(rq, e)) != NF_OK ||
	    (rc = parse_url(rq->url, &t, e)) != NF_OK)
		goto out;
	c.deadline = nf_mono_ms() + (rq->total_timeout_ms > 0 ?
	    rq->total_timeout_ms : HTTP_TOTAL_DEFAULT_MS);
	sigpipe_block(&old, &pending);
	rc = exchange(rq, &t, &c, resp, e);
	conn_close(&c);
	sigpipe_restore(&old, pending);
out:
	free(t.path);
	if (rc != NF_OK) {
		free(resp->body);
		resp->body = NULL;
		resp->body_len = 0;
	}
	return rc;
}

void
nf_http_resp_cleanup(struct nf_http_resp *r)
{
	if (r == NULL)
		return;
	free(r->body);
	memset(r, 0, sizeof(*r));
}
