/*
 * twilio_rest.c - the Twilio REST client (see twilio_rest.h): libcurl
 * calls with the tenant's Basic credentials, form bodies, retries with
 * capped full-jitter backoff, defensive reading of Twilio's answers, and
 * SSRF-safe pagination.
 *
 * DESIGN: a call is a loop of attempts on the client's one easy handle.
 * Each attempt resets the handle (curl_easy_reset keeps the connection
 * pool, DNS and TLS session caches) and sets every option again, so no
 * option of an earlier call leaks into the next.  Whether to try again is
 * decided by one pure table, nf_tw_retryable(), from the HTTP status (or
 * "no answer" and whether anything was sent) and the caller's retry class;
 * the same table says when a create failed ambiguously.  Only the last
 * attempt is turned into an error.  Everything Twilio sends is untrusted:
 * bodies are capped, parsed strictly, and error fields are copied without
 * control characters.  Timeouts are libcurl's (CURLOPT_NOSIGNAL: no
 * SIGALRM in a threaded process); redirects are never followed and only
 * http/https are allowed.  One log line per call (method, product, path
 * without its query, status, attempts, duration), never the credentials,
 * the body or Twilio's message text (it may echo customer data).
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "config.h"
#include "json.h"
#include "log.h"
#include "nonflex.h"
#include "req.h"
#include "tenant.h"
#include "twilio_rest.h"

static const struct {
	const char	*name;    /* for log lines */
	const char	*host;    /* Twilio's base URL */
	const char	*env;     /* the variable that overrides it */
} products[NF_TW__MAX] = {
	{ "api", "https://api.twilio.com", "TWILIO_API_BASE_URL" },                      /* NF_TW_API */
	{ "conversations", "https://conversations.twilio.com",
	  "TWILIO_CONVERSATIONS_BASE_URL" },                                             /* NF_TW_CONVERSATIONS */
	{ "taskrouter", "https://taskrouter.twilio.com", "TWILIO_TASKROUTER_BASE_URL" }, /* NF_TW_TASKROUTER */
	{ "video", "https://video.twilio.com", "TWILIO_VIDEO_BASE_URL" },                /* NF_TW_VIDEO */
	{ "studio", "https://studio.twilio.com", "TWILIO_STUDIO_BASE_URL" },             /* NF_TW_STUDIO */
};

struct nf_tw_client {
	CURL		*curl;
	char		*base[NF_TW__MAX];    /* no trailing '/' */
	long		 connect_timeout_ms;
	long		 timeout_ms;           /* per attempt */
	int		 max_attempts;
	int64_t		 backoff_base_ms;
	int64_t		 backoff_cap_ms;
};

/* Growing byte buffer, always NUL-terminated once non-empty. */
struct buf {
	char	*p;
	size_t	 len;
	size_t	 cap;
	int	 too_big;    /* the answer passed NF_TW_BODY_MAX */
};

/* One call, as the attempts see it. */
struct call {
	enum nf_tw_product	 product;
	const char		*method;
	const char		*url;
	const char		*logpath;   /* path without query, for the log */
	const char		*user;
	const char		*pass;      /* never logged */
	const char		*body;      /* form body (POST) */
	size_t			 body_len;
	struct curl_slist	*headers;
	enum nf_tw_retry	 retry;
};

/* One attempt's outcome. */
struct attempt {
	CURLcode	 cc;
	long		 status;             /* 0: no HTTP answer */
	int		 nothing_sent;       /* failed before the request left */
	int64_t		 retry_after_ms;
	struct buf	 body;
	char		 errbuf[CURL_ERROR_SIZE];
};

static void
buf_add(struct buf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = nf_xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
buf_reset(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static const char *
base_of(const struct nf_tw_client *c, enum nf_tw_product p)
{
	return (unsigned)p < NF_TW__MAX ? c->base[p] : NULL;
}

/* ---- pure parts ------------------------------------------------------ */

int64_t
nf_tw_backoff_ms(int n, int64_t base_ms, int64_t cap_ms, int64_t retry_after_ms)
{
	int64_t		 ceil_ms, d;
	uint64_t	 r;
	int		 i;

	if (cap_ms < 0)
		cap_ms = 0;
	ceil_ms = base_ms < 0 ? 0 : base_ms;
	for (i = 1; i < n && ceil_ms > 0 && ceil_ms < cap_ms; i++)
		ceil_ms = ceil_ms > cap_ms / 2 ? cap_ms : ceil_ms * 2;
	if (ceil_ms > cap_ms)
		ceil_ms = cap_ms;
	nf_random_bytes(&r, sizeof(r));
	d = (int64_t)(r % ((uint64_t)ceil_ms + 1));
	return d < retry_after_ms ? retry_after_ms : d;
}

int
nf_tw_retryable(long status, int nothing_sent, enum nf_tw_retry cls, int *ambiguous)
{
	int	 retry = 0, amb = 0;

	if (status == 0) {
		/* No answer: safe to repeat only if nothing left, or if
		 * repeating cannot duplicate anything. */
		if (nothing_sent || cls == NF_TW_IDEMPOTENT)
			retry = 1;
		else
			amb = 1;
	} else if (status == 429) {
		retry = 1;      /* Twilio: not processed, safe to retry (20429) */
	} else if (status >= 500 && status <= 599) {
		if (cls == NF_TW_IDEMPOTENT)
			retry = 1;
		else
			amb = 1;
	}
	if (ambiguous != NULL)
		*ambiguous = amb;
	return retry;
}

/* Copy src into dst[size] without control characters, cut on a UTF-8
 * boundary (src is valid UTF-8: it passed nf_json_parse). */
static void
copy_text(char *dst, size_t size, const char *src)
{
	size_t	 i, n = strlen(src);

	if (n >= size) {
		n = size - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	}
	for (i = 0; i < n; i++)
		dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ? ' ' : src[i];
	dst[n] = '\0';
}

/* Twilio's code: a JSON integer, or a string of digits. */
static int
code_of(struct json_object *o)
{
	const char	*s;
	long		 v;
	char		*end;

	if (json_object_is_type(o, json_type_int)) {
		v = (long)json_object_get_int64(o);
		return v > 0 && v < 10000000 ? (int)v : 0;
	}
	if (!json_object_is_type(o, json_type_string))
		return 0;
	s = json_object_get_string(o);
	errno = 0;
	v = strtol(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && v > 0 && v < 10000000 ? (int)v : 0;
}

/* Fill out from one error object; 1 when it has a code or a message. */
static int
error_fields(struct json_object *e, struct nf_tw_result *out)
{
	struct json_object	*v;

	if (!json_object_is_type(e, json_type_object))
		return 0;
	if (json_object_object_get_ex(e, "code", &v))
		out->code = code_of(v);
	if (json_object_object_get_ex(e, "message", &v) &&
	    json_object_is_type(v, json_type_string))
		copy_text(out->message, sizeof(out->message), json_object_get_string(v));
	if ((json_object_object_get_ex(e, "more_info", &v) ||
	    json_object_object_get_ex(e, "infoUrl", &v)) &&
	    json_object_is_type(v, json_type_string))
		copy_text(out->more_info, sizeof(out->more_info), json_object_get_string(v));
	return out->code != 0 || out->message[0] != '\0';
}

int
nf_tw_error_parse(const char *body, size_t len, struct nf_tw_result *out)
{
	struct json_object	*root = NULL, *errs;
	int			 ok = 0;

	out->code = 0;
	out->message[0] = out->more_info[0] = '\0';
	if (body == NULL || len == 0 || nf_json_parse(body, len, &root, NULL) != NF_OK)
		return 0;
	if (json_object_object_get_ex(root, "errors", &errs) &&
	    json_object_is_type(errs, json_type_array) && json_object_array_length(errs) > 0)
		ok = error_fields(json_object_array_get_idx(errs, 0), out);
	else
		ok = error_fields(root, out);
	if (!ok) {
		out->code = 0;
		out->message[0] = out->more_info[0] = '\0';
	}
	json_object_put(root);
	return ok;
}

/* 1 when libcurl finds part in u. */
static int
has_part(CURLU *u, CURLUPart part)
{
	char	*x = NULL;
	int	 yes;

	yes = curl_url_get(u, part, &x, 0) == CURLUE_OK;
	curl_free(x);
	return yes;
}

/* scheme, host and port of u equal to those of base, and u has no user
 * info; both parsed by libcurl, ports defaulted. */
static int
same_origin(CURLU *base, CURLU *u)
{
	static const CURLUPart parts[] = { CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT };
	char	*a, *b;
	size_t	 i;
	int	 ok = 1;

	if (has_part(u, CURLUPART_USER) || has_part(u, CURLUPART_PASSWORD))
		return 0;
	for (i = 0; ok && i < NF_ARRAY_LEN(parts); i++) {
		a = b = NULL;
		ok = curl_url_get(base, parts[i], &a, CURLU_DEFAULT_PORT) == CURLUE_OK &&
		    curl_url_get(u, parts[i], &b, CURLU_DEFAULT_PORT) == CURLUE_OK &&
		    strcasecmp(a, b) == 0;
		curl_free(a);
		curl_free(b);
	}
	return ok;
}

/* 1 when s has a byte that must not appear in a URL, path or header. */
static int
has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

char *
nf_tw_page_url(const char *base, const char *link)
{
	CURLU	*b = curl_url(), *u = curl_url();
	char	*s = NULL, *scheme = NULL, *out = NULL;

	if (b == NULL || u == NULL)
		abort();
	if (base == NULL || link == NULL || *link == '\0' || has_ctl(link) ||
	    curl_url_set(b, CURLUPART_URL, base, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_URL, link, 0) != CURLUE_OK ||   /* resolved against base */
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) ||
	    !same_origin(b, u) || curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK)
		goto out;
	out = nf_xstrdup(s);
out:
	curl_free(s);
	curl_free(scheme);
	curl_url_cleanup(b);
	curl_url_cleanup(u);
	return out;
}

/* ---- client ---------------------------------------------------------- */

/* A usable base URL: http(s)://host[:port][/prefix], no query, user
 * info or fragment. */
static int
base_ok(const char *url)
{
	CURLU	*u = curl_url();
	char	*scheme = NULL, *host = NULL;
	int	 ok;

	if (u == NULL)
		abort();
	ok = !has_ctl(url) &&
	    (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0) &&
	    curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0) &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && *host != '\0' &&
	    !has_part(u, CURLUPART_QUERY) && !has_part(u, CURLUPART_USER) &&
	    !has_part(u, CURLUPART_PASSWORD) && !has_part(u, CURLUPART_FRAGMENT);
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

enum nf_err
nf_tw_client_new(const struct nf_config *cfg, struct nf_tw_client **out, struct nf_error *err)
{
	const char		*conf[NF_TW__MAX];
	struct nf_tw_client	*c;
	size_t			 i, n;

	*out = NULL;
	conf[NF_TW_API] = cfg->twilio_api_base;
	conf[NF_TW_CONVERSATIONS] = cfg->twilio_conversations_base;
	conf[NF_TW_TASKROUTER] = cfg->twilio_taskrouter_base;
	conf[NF_TW_VIDEO] = cfg->twilio_video_base;
	conf[NF_TW_STUDIO] = cfg->twilio_studio_base;
	for (i = 0; i < NF_TW__MAX; i++) {
		if (conf[i] == NULL || *conf[i] == '\0')
			conf[i] = products[i].host;
		if (!base_ok(conf[i]))
			return nf_error_set(err, NF_EINVAL, "invalid_config", products[i].env,
			    "%s must be an http:// or https:// URL without query or "
			    "credentials", products[i].env);
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		nf_error("curl_global_init failed");
		abort();
	}
	c = nf_xcalloc(1, sizeof(*c));
	if ((c->curl = curl_easy_init()) == NULL) {
		nf_error("curl_easy_init failed");
		abort();
	}
	for (i = 0; i < NF_TW__MAX; i++) {
		n = strlen(conf[i]);
		while (n > 0 && conf[i][n - 1] == '/')
			n--;
		c->base[i] = nf_xstrndup(conf[i], n);
	}
	c->connect_timeout_ms = (long)cfg->twilio_connect_timeout_ms;
	c->timeout_ms = (long)cfg->twilio_timeout_ms;
	c->max_attempts = cfg->twilio_max_attempts < 1 ? 1 : (int)cfg->twilio_max_attempts;
	c->backoff_base_ms = NF_TW_BACKOFF_BASE_MS;
	c->backoff_cap_ms = NF_TW_BACKOFF_CAP_MS;
	*out = c;
	return NF_OK;
}

void
nf_tw_client_free(struct nf_tw_client *c)
{
	size_t	 i;

	if (c == NULL)
		return;
	curl_easy_cleanup(c->curl);
	for (i = 0; i < NF_TW__MAX; i++)
		free(c->base[i]);
	free(c);
	curl_global_cleanup();
}

void
nf_tw_client_set_backoff(struct nf_tw_client *c, int64_t base_ms, int64_t cap_ms)
{
	c->backoff_base_ms = base_ms < 0 ? 0 : base_ms;
	c->backoff_cap_ms = cap_ms < c->backoff_base_ms ? c->backoff_base_ms : cap_ms;
}

const char *
nf_tw_base_url(const struct nf_tw_client *c, enum nf_tw_product p)
{
	return base_of(c, p);
}

void
nf_tw_result_cleanup(struct nf_tw_result *r)
{
	if (r == NULL)
		return;
	json_object_put(r->body);
	r->body = NULL;
}

/* ---- one attempt ----------------------------------------------------- */

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct buf	*b = arg;
	size_t		 len = size * n;

	if (b->len + len > NF_TW_BODY_MAX) {
		b->too_big = 1;
		return 0;       /* CURLE_WRITE_ERROR */
	}
	buf_add(b, p, len);
	return len;
}

/* Retry-After: delay-seconds or an HTTP-date (RFC 9110 10.2.3). */
static int64_t
retry_after(const char *v, size_t len)
{
	char	 s[64], *end;
	long	 sec;
	time_t	 t;

	while (len > 0 && (*v == ' ' || *v == '\t'))
		v++, len--;
	while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' ||
	    v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len == 0 || len >= sizeof(s))
		return 0;
	memcpy(s, v, len);
	s[len] = '\0';
	if (s[0] >= '0' && s[0] <= '9') {
		errno = 0;
		sec = strtol(s, &end, 10);
		if (errno != 0 || *end != '\0' || sec < 0)
			return 0;
		return (sec > 86400 ? 86400 : sec) * (int64_t)1000;
	}
	if ((t = curl_getdate(s, NULL)) < 0 || t <= time(NULL))
		return 0;
	return (t - time(NULL) > 86400 ? 86400 : (int64_t)(t - time(NULL))) * 1000;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct attempt	*a = arg;
	size_t		 len = size * n;

	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0)
		a->retry_after_ms = 0;   /* a new answer (after 100 Continue) */
	else if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0)
		a->retry_after_ms = retry_after(p + 12, len - 12);
	return len;
}

static void
set_options(struct nf_tw_client *c, const struct call *k, struct attempt *a)
{
	CURL	*h = c->curl;

	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, k->url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "nonflex/" PACKAGE_VERSION);
	curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	curl_easy_setopt(h, CURLOPT_USERNAME, k->user);
	curl_easy_setopt(h, CURLOPT_PASSWORD, k->pass);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, k->headers);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &a->body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, a->errbuf);
	if (strcmp(k->method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)k->body_len);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, k->body);
	} else if (strcmp(k->method, "DELETE") == 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
}

static void
attempt_run(struct nf_tw_client *c, const struct call *k, struct attempt *a)
{
	buf_reset(&a->body);
	a->errbuf[0] = '\0';
	a->status = 0;
	a->retry_after_ms = 0;
	set_options(c, k, a);
	a->cc = curl_easy_perform(c->curl);
	if (a->cc == CURLE_OK || a->cc == CURLE_WRITE_ERROR)
		curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &a->status);
	if (a->cc == CURLE_WRITE_ERROR && !a->body.too_big)
		a->status = 0;
	/* Failures that happen before a single request byte can leave. */
	a->nothing_sent = a->cc == CURLE_COULDNT_CONNECT ||
	    a->cc == CURLE_COULDNT_RESOLVE_HOST || a->cc == CURLE_COULDNT_RESOLVE_PROXY ||
	    a->cc == CURLE_SSL_CONNECT_ERROR;
	if (a->cc != CURLE_OK && a->errbuf[0] == '\0')
		snprintf(a->errbuf, sizeof(a->errbuf), "%s", curl_easy_strerror(a->cc));
}

static void
sleep_ms(int64_t ms)
{
	struct timespec	 ts, rem;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &rem) != 0 && errno == EINTR)
		ts = rem;
}

/* ---- turning the last attempt into a result -------------------------- */

static enum nf_err
answer_error(const struct attempt *a, struct nf_tw_result *out, struct nf_error *err)
{
	char	 what[256], msg[160];

	nf_tw_error_parse(a->body.p, a->body.len, out);
	/* Cut Twilio's text here, on a UTF-8 boundary, so that only our
	 * ASCII suffixes can be cut by the message's size. */
	copy_text(msg, sizeof(msg), out->message[0] != '\0' ? out->message : "no message");
	if (out->code != 0 || out->message[0] != '\0')
		snprintf(what, sizeof(what), "Twilio error %d: %s (HTTP %ld)", out->code,
		    msg, a->status);
	else
		snprintf(what, sizeof(what), "Twilio answered HTTP %ld%s", a->status,
		    a->body.len == 0 ? " with an empty body" : " without a Twilio error");
	if (a->status == 429)
		return nf_error_set(err, NF_ERATE, "twilio_rate_limited", NULL,
		    "%s; still rate limited after %d attempts", what, out->attempts);
	if (a->status == 401 || a->status == 403)
		return nf_error_set(err, NF_EAUTH, "twilio_auth", NULL,
		    "%s: check the tenant's Twilio credentials", what);
	if (a->status == 404)
		return nf_error_set(err, NF_ENOTFOUND, "twilio_not_found", NULL, "%s", what);
	if (a->status >= 500)
		return nf_error_set(err, NF_EUNAVAIL, "twilio_unavailable", NULL, "%s%s", what,
		    out->ambiguous ? "; the create may have taken effect" : "");
	return nf_error_set(err, NF_EUPSTREAM, "twilio_error", NULL, "%s", what);
}

static enum nf_err
finish(const struct call *k, const struct attempt *a, struct nf_tw_result *out,
    struct nf_error *err)
{
	struct json_object	*o = NULL;

	if (a->body.too_big) {
		out->ambiguous = k->retry == NF_TW_CREATE;
		return nf_error_set(err, NF_EUPSTREAM, "twilio_response_too_large", NULL,
		    "Twilio's answer is larger than %d bytes", NF_TW_BODY_MAX);
	}
	if (a->cc != CURLE_OK)
		return nf_error_set(err, NF_EUNAVAIL, "twilio_unavailable", NULL,
		    "Twilio could not be reached (%s)%s", curl_easy_strerror(a->cc),
		    out->ambiguous ? "; the create may have taken effect" : "");
	if (a->status < 200 || a->status > 299)
		return answer_error(a, out, err);
	if (a->status == 204 || (a->body.len == 0 && strcmp(k->method, "DELETE") == 0))
		return NF_OK;
	if (nf_json_parse(a->body.p, a->body.len, &o, NULL) != NF_OK ||
	    !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		out->ambiguous = k->retry == NF_TW_CREATE;
		return nf_error_set(err, NF_EUPSTREAM, "twilio_bad_response", NULL,
		    "Twilio answered HTTP %ld with a body that is not a JSON object",
		    a->status);
	}
	out->body = o;
	return NF_OK;
}

static void
log_call(const struct call *k, const struct nf_tw_result *out, enum nf_err rc,
    int64_t ms, const char *curl_err)
{
	struct json_object	*o = json_object_new_object();
	enum nf_log_level	 lvl = NF_LOG_DEBUG;

	if (rc == NF_EUNAVAIL || out->ambiguous)
		lvl = NF_LOG_WARN;
	else if (rc != NF_OK)
		lvl = NF_LOG_INFO;
	nf_json_add_str(o, "product", products[k->product].name);
	nf_json_add_str(o, "method", k->method);
	nf_json_add_str(o, "path", k->logpath);
	nf_json_add_int(o, "status", out->status);
	nf_json_add_int(o, "attempts", out->attempts);
	nf_json_add_int(o, "duration_ms", ms);
	if (out->code != 0)
		nf_json_add_int(o, "twilio_code", out->code);
	if (out->ambiguous)
		nf_json_add_bool(o, "ambiguous", 1);
	if (curl_err != NULL && *curl_err != '\0')
		nf_json_add_str(o, "curl_error", curl_err);
	nf_log_fields(lvl, "twilio call", o);
	json_object_put(o);
}

/* The attempts of one call. */
static enum nf_err
run_call(struct nf_tw_client *c, const struct call *k, struct nf_tw_result *out,
    struct nf_error *err)
{
	struct attempt	 a;
	int64_t		 start = nf_mono_ms(), delay;
	enum nf_err	 rc;
	int		 retry;

	memset(&a, 0, sizeof(a));
	for (;;) {
		attempt_run(c, k, &a);
		out->attempts++;
		out->status = a.status;
		out->retry_after_ms = a.retry_after_ms;
		retry = nf_tw_retryable(a.body.too_big ? 200 : a.status, a.nothing_sent,
		    k->retry, &out->ambiguous);
		if (!retry || out->attempts >= c->max_attempts ||
		    a.retry_after_ms > NF_TW_RETRY_AFTER_MAX_MS)
			break;
		delay = nf_tw_backoff_ms(out->attempts, c->backoff_base_ms, c->backoff_cap_ms,
		    a.retry_after_ms);
		nf_info("twilio %s %s: attempt %d got %ld%s%s, retrying in %lld ms",
		    k->method, k->logpath, out->attempts, a.status,
		    a.errbuf[0] != '\0' ? " " : "", a.errbuf, (long long)delay);
		sleep_ms(delay);
	}
	rc = finish(k, &a, out, err);
	log_call(k, out, rc, nf_mono_ms() - start, a.errbuf);
	buf_reset(&a.body);
	return rc;
}

/* ---- requests -------------------------------------------------------- */

static int
set(const char *s)
{
	return s != NULL && *s != '\0';
}

/* The tenant's Basic credentials: API key + secret, else account SID +
 * auth token; 0 when it has neither pair. */
static int
credentials(const struct nf_tenant *t, const char **user, const char **pass)
{
	if (t == NULL)
		return 0;
	if (set(t->twilio.api_key) && set(t->twilio.api_secret)) {
		*user = t->twilio.api_key;
		*pass = t->twilio.api_secret;
		return 1;
	}
	if (set(t->twilio.account_sid) && set(t->twilio.auth_token)) {
		*user = t->twilio.account_sid;
		*pass = t->twilio.auth_token;
		return 1;
	}
	return 0;
}

/* name=value&... with every byte outside [A-Za-z0-9._~-] percent-encoded. */
static char *
form_encode(CURL *h, const struct nf_pairs *form, size_t *len)
{
	struct buf	 b;
	char		*e;
	size_t		 i, j;

	memset(&b, 0, sizeof(b));
	buf_add(&b, "", 0);
	for (i = 0; form != NULL && i < form->n; i++) {
		if (i > 0)
			buf_add(&b, "&", 1);
		for (j = 0; j < 2; j++) {
			const char *s = j == 0 ? form->v[i].name : form->v[i].value;

			if ((e = curl_easy_escape(h, s, (int)strlen(s))) == NULL)
				abort();
			buf_add(&b, e, strlen(e));
			curl_free(e);
			if (j == 0)
				buf_add(&b, "=", 1);
		}
	}
	*len = b.len;
	return b.p;
}

/* "Name: value" with a token name and no CR/LF/NUL anywhere. */
static int
header_ok(const char *h)
{
	const char	*colon = strchr(h, ':'), *p;

	if (colon == NULL || colon == h)
		return 0;
	for (p = h; p < colon; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return 0;
	for (p = colon; *p != '\0'; p++)
		if (*p == '\r' || *p == '\n')
			return 0;
	return 1;
}

static enum nf_err
bad_request(struct nf_error *err, const char *what)
{
	return nf_error_set(err, NF_EINVAL, "invalid_request", NULL,
	    "invalid Twilio request: %s", what);
}

/* Common front of nf_tw_request and the pages of nf_tw_list: checks,
 * credentials, body and headers, then the attempts. */
static enum nf_err
call_url(struct nf_tw_client *c, const struct nf_tenant *t, enum nf_tw_product p,
    const char *method, const char *url, const char *logpath,
    const struct nf_pairs *form, const char *const *headers, enum nf_tw_retry retry,
    struct nf_tw_result *out, struct nf_error *err)
{
	struct call	 k;
	char		*body = NULL;
	size_t		 i;
	enum nf_err	 rc;

	memset(&k, 0, sizeof(k));
	k.product = p;
	k.method = method;
	k.url = url;
	k.logpath = logpath;
	k.retry = retry;
	if (!credentials(t, &k.user, &k.pass))
		return nf_error_set(err, NF_EINVAL, "twilio_missing_credentials", NULL,
		    "tenant %s has no Twilio credentials (twilio.apiKey + apiSecret or "
		    "twilio.accountSid + authToken)", t != NULL && t->id != NULL ? t->id : "?");
	for (i = 0; headers != NULL && headers[i] != NULL; i++)
		if (!header_ok(headers[i]))
			return bad_request(err, "malformed header");
	if (strcmp(method, "POST") == 0)
		k.body = body = form_encode(c->curl, form, &k.body_len);
	else if (form != NULL && form->n > 0)
		return bad_request(err, "a body is only sent with POST");
	k.headers = curl_slist_append(NULL, "Accept: application/json");
	k.headers = curl_slist_append(k.headers, "Expect:");
	for (i = 0; headers != NULL && headers[i] != NULL; i++)
		k.headers = curl_slist_append(k.headers, headers[i]);
	if (k.headers == NULL)
		abort();
	rc = run_call(c, &k, out, err);
	curl_slist_free_all(k.headers);
	free(body);
	return rc;
}

enum nf_err
nf_tw_request(struct nf_tw_client *c, const struct nf_tenant *t, enum nf_tw_product p,
    const char *method, const char *path, const struct nf_pairs *form,
    const char *const *headers, enum nf_tw_retry retry, struct nf_tw_result *out,
    struct nf_error *err)
{
	char		*url, *logpath;
	enum nf_err	 rc;

	memset(out, 0, sizeof(*out));
	if ((unsigned)p >= NF_TW__MAX)
		return bad_request(err, "unknown product");
	if (method == NULL || (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0 &&
	    strcmp(method, "DELETE") != 0))
		return bad_request(err, "method must be GET, POST or DELETE");
	if (path == NULL || path[0] != '/' || path[1] == '/' || has_ctl(path))
		return bad_request(err, "path must start with a single '/' and have no spaces");
	url = nf_xasprintf("%s%s", c->base[p], path);
	logpath = nf_xstrndup(path, strcspn(path, "?#"));
	rc = call_url(c, t, p, method, url, logpath, form, headers, retry, out, err);
	free(logpath);
	free(url);
	return rc;
}

/* ---- pagination ------------------------------------------------------ */

/* The link to the next page, borrowed from body: meta.next_page_url, else
 * next_page_uri; NULL at the end (absent, null or empty). */
static const char *
next_link(struct json_object *body)
{
	struct json_object	*meta, *v;

	if (json_object_object_get_ex(body, "meta", &meta) &&
	    json_object_object_get_ex(meta, "next_page_url", &v) &&
	    json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0)
		return json_object_get_string(v);
	if (json_object_object_get_ex(body, "next_page_uri", &v) &&
	    json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0)
		return json_object_get_string(v);
	return NULL;
}

/* The path of an absolute URL, without query, for log lines. */
static char *
url_logpath(const char *url)
{
	const char	*p = strstr(url, "://");

	p = p != NULL ? strchr(p + 3, '/') : NULL;
	if (p == NULL)
		return nf_xstrdup("/");
	return nf_xstrndup(p, strcspn(p, "?#"));
}

/* Append every element of page[key] to all; 0 when there is no such array. */
static int
append_items(struct json_object *all, struct json_object *page, const char *key)
{
	struct json_object	*arr, *it;
	size_t			 i, n;

	if (!json_object_object_get_ex(page, key, &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return 0;
	n = json_object_array_length(arr);
	for (i = 0; i < n; i++) {
		/* A second reference: the item now also lives in all. */
		it = json_object_get(json_object_array_get_idx(arr, i));
		if (json_object_array_add(all, it) != 0)
			json_object_put(it);
	}
	return 1;
}

/* Next page's URL into *next (NULL at the end), checked against the base
 * URL and the pages already seen. */
static enum nf_err
follow(const char *base, struct json_object *body, char **seen, int nseen, char **next,
    struct nf_error *err)
{
	const char	*link = next_link(body);
	int		 i;

	*next = NULL;
	if (link == NULL)
		return NF_OK;
	if ((*next = nf_tw_page_url(base, link)) == NULL) {
		nf_warn("twilio: refusing a next-page link outside %s", base);
		return nf_error_set(err, NF_EUPSTREAM, "twilio_bad_page_link", NULL,
		    "Twilio's next-page link leaves the configured base URL");
	}
	for (i = 0; i < nseen; i++)
		if (strcmp(seen[i], *next) == 0)
			return nf_error_set(err, NF_EUPSTREAM, "twilio_page_loop", NULL,
			    "Twilio's next-page link repeats page %d", i + 1);
	return NF_OK;
}

enum nf_err
nf_tw_list(struct nf_tw_client *c, const struct nf_tenant *t, enum nf_tw_product p,
    const char *path, const char *key, int max_pages, struct json_object **items,
    struct nf_error *err)
{
	struct nf_tw_result	 res;
	struct json_object	*all = NULL;
	char			**seen = NULL, *url = NULL, *logpath, *next = NULL;
	int			 nseen = 0, i;
	enum nf_err		 rc;

	*items = NULL;
	memset(&res, 0, sizeof(res));
	if (key == NULL || *key == '\0' || max_pages < 1)
		return bad_request(err, "a list needs a key and max_pages >= 1");
	if ((rc = nf_tw_request(c, t, p, "GET", path, NULL, NULL, NF_TW_IDEMPOTENT, &res,
	    err)) != NF_OK)
		goto out;
	all = json_object_new_array();
	url = nf_xasprintf("%s%s", c->base[p], path);
	seen = nf_xcalloc((size_t)max_pages + 1, sizeof(*seen));
	for (;;) {
		seen[nseen++] = url;
		url = NULL;
		if (!append_items(all, res.body, key)) {
			rc = nf_error_set(err, NF_EUPSTREAM, "twilio_bad_response", NULL,
			    "a Twilio list page has no \"%s\" array", key);
			goto out;
		}
		if ((rc = follow(c->base[p], res.body, seen, nseen, &next, err)) != NF_OK ||
		    next == NULL)
			goto out;
		if (nseen >= max_pages) {
			rc = nf_error_set(err, NF_EUPSTREAM, "twilio_page_loop", NULL,
			    "Twilio's list has more than %d pages", max_pages);
			goto out;
		}
		nf_tw_result_cleanup(&res);
		memset(&res, 0, sizeof(res));
		url = next;
		next = NULL;
		logpath = url_logpath(url);
		rc = call_url(c, t, p, "GET", url, logpath, NULL, NULL, NF_TW_IDEMPOTENT,
		    &res, err);
		free(logpath);
		if (rc != NF_OK)
			goto out;
	}
out:
	if (rc == NF_OK) {
		*items = all;
		all = NULL;
	}
	json_object_put(all);
	nf_tw_result_cleanup(&res);
	for (i = 0; i < nseen; i++)
		free(seen[i]);
	free(seen);
	free(url);
	free(next);
	return rc;
}
