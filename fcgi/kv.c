/*
 * kv.c - Redis through hiredis (see kv.h): lazy connection with connect and
 * command timeouts, reconnect after any I/O error, tenant-namespaced keys,
 * token locks, fixed-window rate limits, dedupe keys and Lua scripts.
 *
 * DESIGN: a struct nf_kv owns at most one synchronous redisContext.  Every
 * call first makes sure it is connected; any I/O error (reply NULL or
 * context error) frees the context, so the next call reconnects and a Redis
 * restart costs only the request in flight.  A failed connect arms a short
 * backoff (250 ms) during which calls fail at once with NF_EUNAVAIL, so a
 * dead Redis costs neither a connect attempt per call nor more than the
 * connect timeout.  The outage is logged once when it starts and once when
 * it ends; the URL's password is never logged.  Scripts run with EVALSHA
 * (SHA-1 computed locally) and fall back to EVAL on NOSCRIPT, which happens
 * once after every Redis restart.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <hiredis.h>
#include <openssl/evp.h>

#include "nonflex.h"
#include "log.h"
#include "kv.h"

#define KV_RETRY_MS	250     /* wait after a failed connect */
#define KV_TIMEOUT_DEF	500     /* connect and command timeout, ms */

struct nf_kv {
	char		*host;          /* TCP host, or NULL for unix */
	int		 port;          /* TCP port */
	char		*path;          /* unix socket path, or NULL */
	char		*user;          /* ACL user (AUTH user pass), or NULL */
	char		*password;      /* AUTH password, or NULL; never logged */
	int		 db;            /* SELECT db when > 0 */
	int		 timeout_ms;    /* connect and command timeout */
	redisContext	*c;             /* NULL while disconnected */
	int64_t		 retry_at;      /* mono ms before which no reconnect */
	int		 down;          /* outage already logged */
};

static enum nf_err
unavail(struct nf_error *err)
{
	return nf_error_set(err, NF_EUNAVAIL, "redis_unavailable", NULL,
	    "Redis is unavailable");
}

/* Decode %XX escapes in place (passwords may contain reserved chars). */
static int
pct_decode(char *s)
{
	char	*w = s, hex[3] = { 0 };

	for (; *s != '\0'; s++) {
		if (*s != '%') {
			*w++ = *s;
			continue;
		}
		if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2]))
			return -1;
		hex[0] = s[1];
		hex[1] = s[2];
		*w++ = (char)strtol(hex, NULL, 16);
		s += 2;
	}
	*w = '\0';
	return 0;
}

static int
parse_int(const char *s, int lo, int hi, int *out)
{
	char	*end;
	long	 v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

/* "[user:]password@" part of a redis:// URL; ui is modified. */
static int
parse_userinfo(struct nf_kv *kv, char *ui)
{
	char	*colon = strchr(ui, ':');

	if (colon == NULL)      /* "redis://password@host" is not standard */
		return -1;
	*colon = '\0';
	if (*ui != '\0')
		kv->user = nf_xstrdup(ui);
	kv->password = nf_xstrdup(colon + 1);
	if ((kv->user != NULL && pct_decode(kv->user) != 0) ||
	    pct_decode(kv->password) != 0)
		return -1;
	return 0;
}

/* host[:port] or [v6]:port; hp is modified. */
static int
parse_hostport(struct nf_kv *kv, char *hp)
{
	char	*port = NULL, *end;

	if (*hp == '[') {
		if ((end = strchr(hp, ']')) == NULL)
			return -1;
		*end = '\0';
		hp++;
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return -1;
	} else if ((port = strrchr(hp, ':')) != NULL)
		*port++ = '\0';
	if (*hp == '\0')
		return -1;
	kv->host = nf_xstrdup(hp);
	kv->port = 6379;
	if (port != NULL && parse_int(port, 1, 65535, &kv->port) != 0)
		return -1;
	return 0;
}

static int
parse_tcp(struct nf_kv *kv, char *rest)
{
	char	*at, *slash;

	if ((slash = strchr(rest, '/')) != NULL) {
		*slash++ = '\0';
		if (*slash != '\0' && parse_int(slash, 0, 1000, &kv->db) != 0)
			return -1;
	}
	if ((at = strrchr(rest, '@')) != NULL) {
		*at = '\0';
		if (parse_userinfo(kv, rest) != 0)
			return -1;
		rest = at + 1;
	}
	return parse_hostport(kv, rest);
}

static int
parse_unix(struct nf_kv *kv, char *rest)
{
	char	*q;

	if ((q = strchr(rest, '?')) != NULL) {
		*q++ = '\0';
		if (strncmp(q, "db=", 3) != 0 || parse_int(q + 3, 0, 1000, &kv->db) != 0)
			return -1;
	}
	if (rest[0] != '/' || rest[1] == '\0')
		return -1;
	kv->path = nf_xstrdup(rest);
	return 0;
}

static int
parse_url(struct nf_kv *kv, const char *url)
{
	char	*copy = nf_xstrdup(url);
	int	 rc = -1;

	if (strncmp(copy, "redis://", 8) == 0)
		rc = parse_tcp(kv, copy + 8);
	else if (strncmp(copy, "unix://", 7) == 0)
		rc = parse_unix(kv, copy + 7);
	free(copy);
	return rc;
}

enum nf_err
nf_kv_open(const char *url, int timeout_ms, struct nf_kv **out, struct nf_error *err)
{
	struct nf_kv	*kv;

	*out = NULL;
	kv = nf_xcalloc(1, sizeof(*kv));
	kv->timeout_ms = timeout_ms > 0 ? timeout_ms : KV_TIMEOUT_DEF;
	if (url == NULL || strlen(url) > 4096 || parse_url(kv, url) != 0) {
		nf_kv_free(kv);
		/* The URL may hold a password: do not echo it. */
		return nf_error_set(err, NF_EINVAL, "invalid_redis_url", "REDIS_URL",
		    "REDIS_URL must be redis://[:password@]host[:port][/db] "
		    "or unix:///path[?db=N]");
	}
	*out = kv;
	return NF_OK;
}

static void
disconnect(struct nf_kv *kv)
{
	if (kv->c != NULL)
		redisFree(kv->c);
	kv->c = NULL;
}

void
nf_kv_free(struct nf_kv *kv)
{
	if (kv == NULL)
		return;
	disconnect(kv);
	free(kv->host);
	free(kv->path);
	free(kv->user);
	if (kv->password != NULL)
		explicit_bzero(kv->password, strlen(kv->password));
	free(kv->password);
	free(kv);
}

/* "host:port" or "unix:/path" for log lines (never the password). */
static const char *
where(const struct nf_kv *kv, char buf[300])
{
	if (kv->path != NULL)
		snprintf(buf, 300, "unix:%s", kv->path);
	else
		snprintf(buf, 300, "%s:%d", kv->host, kv->port);
	return buf;
}

/* Run a setup command right after connecting; 0 when it answered OK. */
static int
setup_cmd(const struct nf_kv *kv, redisContext *c, int argc, const char **argv)
{
	redisReply	*r;
	char		 buf[300];
	int		 ok;

	r = redisCommandArgv(c, argc, argv, NULL);
	ok = r != NULL && r->type == REDIS_REPLY_STATUS;
	if (r != NULL && r->type == REDIS_REPLY_ERROR)
		nf_warn("redis %s refused %s", where(kv, buf), argv[0]);   /* no args: secret */
	if (r != NULL)
		freeReplyObject(r);
	return ok ? 0 : -1;
}

static int
handshake(const struct nf_kv *kv, redisContext *c)
{
	const char	*argv[3];
	char		 db[16];

	if (kv->password != NULL) {
		argv[0] = "AUTH";
		argv[1] = kv->user != NULL ? kv->user : kv->password;
		argv[2] = kv->password;
		if (setup_cmd(kv, c, kv->user != NULL ? 3 : 2, argv) != 0)
			return -1;
	}
	if (kv->db > 0) {
		snprintf(db, sizeof(db), "%d", kv->db);
		argv[0] = "SELECT";
		argv[1] = db;
		if (setup_cmd(kv, c, 2, argv) != 0)
			return -1;
	}
	return 0;
}

/*
 * Drop the connection.  backoff is set after a failed connect only: after an
 * I/O error on a working connection the next call reconnects at once, so a
 * restarted Redis is used as soon as it is back.
 */
static void
mark_down(struct nf_kv *kv, const char *why, int backoff)
{
	char	buf[300];

	if (!kv->down)
		nf_warn("redis %s unavailable: %s", where(kv, buf), why);
	disconnect(kv);
	if (backoff)
		kv->retry_at = nf_mono_ms() + KV_RETRY_MS;
	kv->down = 1;
}

/* A new connection with kv's address, timeouts and credentials, or NULL
 * with *why set (the context, if any, is freed). */
static redisContext *
dial(const struct nf_kv *kv, const char **why)
{
	static char	 errbuf[128];
	struct timeval	 tv;
	redisContext	*c;

	tv.tv_sec = kv->timeout_ms / 1000;
	tv.tv_usec = (kv->timeout_ms % 1000) * 1000;
	c = kv->path != NULL ? redisConnectUnixWithTimeout(kv->path, tv) :
	    redisConnectWithTimeout(kv->host, kv->port, tv);
	if (c == NULL || c->err != 0) {
		snprintf(errbuf, sizeof(errbuf), "%s", c != NULL ? c->errstr : "out of memory");
		*why = errbuf;
		if (c != NULL)
			redisFree(c);
		return NULL;
	}
	if (redisSetTimeout(c, tv) != REDIS_OK || handshake(kv, c) != 0) {
		*why = "connection setup failed";
		redisFree(c);
		return NULL;
	}
	return c;
}

/* Make sure kv->c is a live, authenticated connection. */
static enum nf_err
ensure(struct nf_kv *kv, struct nf_error *err)
{
	const char	*why = NULL;
	char		 buf[300];

	if (kv->c != NULL)
		return NF_OK;
	if (nf_mono_ms() < kv->retry_at)
		return unavail(err);
	if ((kv->c = dial(kv, &why)) == NULL) {
		mark_down(kv, why, 1);
		return unavail(err);
	}
	if (kv->down)
		nf_info("redis %s reachable again", where(kv, buf));
	kv->down = 0;
	return NF_OK;
}

/* Common handling of a reply: I/O errors drop the connection. */
static enum nf_err
finish(struct nf_kv *kv, redisReply *r, redisReply **out, struct nf_error *err)
{
	enum nf_err	rc = NF_OK;

	if (r == NULL || kv->c->err != 0) {
		mark_down(kv, kv->c->errstr[0] != '\0' ? kv->c->errstr : "I/O error", 0);
		if (r != NULL)
			freeReplyObject(r);
		if (out != NULL)
			*out = NULL;
		return unavail(err);
	}
	if (r->type == REDIS_REPLY_ERROR) {
		nf_debug("redis error reply: %.*s", (int)(r->len > 200 ? 200 : r->len), r->str);
		rc = nf_error_set(err, NF_ESYSTEM, "redis_error", NULL,
		    "Redis rejected a command");
	}
	if (out != NULL)
		*out = r;
	else
		freeReplyObject(r);
	return rc;
}

enum nf_err
nf_kv_command(struct nf_kv *kv, redisReply **out, struct nf_error *err,
    const char *fmt, ...)
{
	va_list		 ap;
	redisReply	*r;
	enum nf_err	 rc;

	if (out != NULL)
		*out = NULL;
	if ((rc = ensure(kv, err)) != NF_OK)
		return rc;
	va_start(ap, fmt);
	r = redisvCommand(kv->c, fmt, ap);
	va_end(ap);
	return finish(kv, r, out, err);
}

enum nf_err
nf_kv_commandargv(struct nf_kv *kv, redisReply **out, struct nf_error *err,
    int argc, const char **argv, const size_t *argvlen)
{
	redisReply	*r;
	enum nf_err	 rc;

	if (out != NULL)
		*out = NULL;
	if ((rc = ensure(kv, err)) != NF_OK)
		return rc;
	r = redisCommandArgv(kv->c, argc, argv, argvlen);
	return finish(kv, r, out, err);
}

enum nf_err
nf_kv_ping(struct nf_kv *kv, struct nf_error *err)
{
	return nf_kv_command(kv, NULL, err, "PING");
}

/* Key parts: non-empty, at most 200 bytes, no spaces or control chars. */
static int
key_part_ok(const char *s)
{
	size_t	n;

	if (s == NULL || *s == '\0')
		return 0;
	for (n = 0; s[n] != '\0'; n++)
		if (n >= 200 || (unsigned char)s[n] <= ' ' || s[n] == 0x7f)
			return 0;
	return 1;
}

char *
nf_kv_key(const char *tenant, const char *kind, const char *name)
{
	if (!key_part_ok(tenant) || !key_part_ok(kind) || !key_part_ok(name) ||
	    strchr(tenant, ':') != NULL || strchr(kind, ':') != NULL)
		return NULL;
	return nf_xasprintf("nf:%s:%s:%s", tenant, kind, name);
}

static enum nf_err
bad_key(struct nf_error *err)
{
	return nf_error_set(err, NF_EINVAL, "invalid_key", NULL,
	    "Invalid Redis key component");
}

/* --- Lua scripts ------------------------------------------------------ */

static void
script_sha(struct nf_kv_script *s)
{
	unsigned char	md[EVP_MAX_MD_SIZE];
	unsigned int	mdlen = 0, i;

	if (s->sha[0] != '\0')
		return;
	if (EVP_Digest(s->src, strlen(s->src), md, &mdlen, EVP_sha1(), NULL) != 1)
		abort();        /* SHA-1 is always available in libcrypto */
	for (i = 0; i < mdlen && i < 20; i++)
		snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
}

static int
is_noscript(const redisReply *r)
{
	return r != NULL && r->type == REDIS_REPLY_ERROR &&
	    r->str != NULL && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

enum nf_err
nf_kv_eval(struct nf_kv *kv, struct nf_kv_script *s, redisReply **out,
    struct nf_error *err, int nkeys, int nargs, const char **args)
{
	const char	**argv;
	char		  nk[16];
	redisReply	 *r = NULL;
	enum nf_err	  rc;
	int		  i;

	if (out != NULL)
		*out = NULL;
	script_sha(s);
	snprintf(nk, sizeof(nk), "%d", nkeys);
	argv = nf_xcalloc((size_t)nargs + 3, sizeof(*argv));
	argv[0] = "EVALSHA";
	argv[1] = s->sha;
	argv[2] = nk;
	for (i = 0; i < nargs; i++)
		argv[i + 3] = args[i];
	rc = nf_kv_commandargv(kv, &r, err, nargs + 3, argv, NULL);
	if (rc == NF_ESYSTEM && is_noscript(r)) {
		freeReplyObject(r);
		r = NULL;
		argv[0] = "EVAL";
		argv[1] = s->src;
		rc = nf_kv_commandargv(kv, &r, err, nargs + 3, argv, NULL);
	}
	free(argv);
	if (out != NULL)
		*out = r;
	else if (r != NULL)
		freeReplyObject(r);
	return rc;
}

/* --- locks, rate limits, dedupe ---------------------------------------- */

static struct nf_kv_script unlock_lua = { .src =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n" };

/*
 * INCR, and start the window on the first hit (PEXPIRE NX semantics; the
 * "ttl < 0" branch also repairs a key that somehow lost its expiry).
 * Returns {count, pttl}.
 */
static struct nf_kv_script ratelimit_lua = { .src =
    "local n = redis.call('INCR', KEYS[1])\n"
    "local ttl = redis.call('PTTL', KEYS[1])\n"
    "if ttl < 0 then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[1])\n"
    "  ttl = tonumber(ARGV[1])\n"
    "end\n"
    "return {n, ttl}\n" };

enum nf_err
nf_kv_lock_acquire(struct nf_kv *kv, const char *tenant, const char *name,
    int64_t ttl_ms, char token_out[33], struct nf_error *err)
{
	redisReply	*r = NULL;
	char		*key = NULL;
	enum nf_err	 rc;

	token_out[0] = '\0';
	if (ttl_ms <= 0)
		return nf_error_set(err, NF_EINVAL, "invalid_ttl", NULL,
		    "Lock TTL must be positive");
	if ((key = nf_kv_key(tenant, "lock", name)) == NULL)
		return bad_key(err);
	nf_random_hex(token_out, 16);
	rc = nf_kv_command(kv, &r, err, "SET %s %s NX PX %lld", key, token_out,
	    (long long)ttl_ms);
	if (rc == NF_OK && r->type == REDIS_REPLY_NIL)
		rc = nf_error_set(err, NF_ECONFLICT, "lock_held", NULL,
		    "The resource is locked by someone else");
	if (rc != NF_OK)
		token_out[0] = '\0';
	if (r != NULL)
		freeReplyObject(r);
	free(key);
	return rc;
}

enum nf_err
nf_kv_lock_release(struct nf_kv *kv, const char *tenant, const char *name,
    const char *token, struct nf_error *err)
{
	redisReply	*r = NULL;
	const char	*args[2];
	char		*key;
	enum nf_err	 rc;

	if (token == NULL || *token == '\0')
		return nf_error_set(err, NF_ECONFLICT, "lock_not_held", NULL,
		    "The lock is not held with this token");
	if ((key = nf_kv_key(tenant, "lock", name)) == NULL)
		return bad_key(err);
	args[0] = key;
	args[1] = token;
	rc = nf_kv_eval(kv, &unlock_lua, &r, err, 1, 2, args);
	if (rc == NF_OK && (r->type != REDIS_REPLY_INTEGER || r->integer != 1))
		rc = nf_error_set(err, NF_ECONFLICT, "lock_not_held", NULL,
		    "The lock is not held with this token");
	if (r != NULL)
		freeReplyObject(r);
	free(key);
	return rc;
}

enum nf_err
nf_kv_ratelimit_hit(struct nf_kv *kv, const char *tenant, const char *bucket,
    int64_t limit, int64_t window_ms, int *allowed, int64_t *retry_after_ms,
    struct nf_error *err)
{
	redisReply	*r = NULL;
	const char	*args[2];
	char		*key, win[24];
	enum nf_err	 rc;

	*allowed = 0;
	*retry_after_ms = 0;
	if (limit < 0 || window_ms <= 0)
		return nf_error_set(err, NF_EINVAL, "invalid_ratelimit", NULL,
		    "Rate limit and window must be positive");
	if ((key = nf_kv_key(tenant, "rl", bucket)) == NULL)
		return bad_key(err);
	snprintf(win, sizeof(win), "%lld", (long long)window_ms);
	args[0] = key;
	args[1] = win;
	rc = nf_kv_eval(kv, &ratelimit_lua, &r, err, 1, 2, args);
	if (rc == NF_OK && (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER ||
	    r->element[1]->type != REDIS_REPLY_INTEGER))
		rc = nf_error_set(err, NF_ESYSTEM, "redis_error", NULL,
		    "Unexpected reply from Redis");
	if (rc == NF_OK) {
		*allowed = r->element[0]->integer <= limit;
		if (!*allowed)
			*retry_after_ms = r->element[1]->integer > 0 ?
			    r->element[1]->integer : 1;
	}
	if (r != NULL)
		freeReplyObject(r);
	free(key);
	return rc;
}

/* The counter is one key (see ratelimit_lua): deleting it starts a fresh
 * window at the next hit. */
enum nf_err
nf_kv_ratelimit_reset(struct nf_kv *kv, const char *tenant, const char *bucket,
    struct nf_error *err)
{
	char		*key;
	enum nf_err	 rc;

	if ((key = nf_kv_key(tenant, "rl", bucket)) == NULL)
		return bad_key(err);
	rc = nf_kv_command(kv, NULL, err, "DEL %s", key);
	free(key);
	return rc;
}

enum nf_err
nf_kv_dedupe(struct nf_kv *kv, const char *tenant, const char *key,
    int64_t ttl_ms, int *first, struct nf_error *err)
{
	redisReply	*r = NULL;
	char		*k;
	enum nf_err	 rc;

	*first = 0;
	if (ttl_ms <= 0)
		return nf_error_set(err, NF_EINVAL, "invalid_ttl", NULL,
		    "Dedupe TTL must be positive");
	if ((k = nf_kv_key(tenant, "dedupe", key)) == NULL)
		return bad_key(err);
	rc = nf_kv_command(kv, &r, err, "SET %s 1 NX PX %lld", k, (long long)ttl_ms);
	if (rc == NF_OK)
		*first = r->type == REDIS_REPLY_STATUS;
	if (r != NULL)
		freeReplyObject(r);
	free(k);
	return rc;
}

/* ---- publish / subscribe ------------------------------------------------ */

struct nf_kv_sub {
	redisContext	*c;
};

enum nf_err
nf_kv_publish(struct nf_kv *kv, const char *channel, const char *msg, struct nf_error *err)
{
	return nf_kv_command(kv, NULL, err, "PUBLISH %s %s", channel, msg);
}

/* 1 when r is the confirmation of SUBSCRIBE channel. */
static int
subscribed(const redisReply *r, const char *channel)
{
	return r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, "subscribe") == 0 &&
	    r->element[1]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[1]->str, channel) == 0;
}

enum nf_err
nf_kv_sub_open(const struct nf_kv *kv, const char *channel, struct nf_kv_sub **out,
    struct nf_error *err)
{
	redisContext	*c;
	redisReply	*r;
	const char	*why = NULL;

	*out = NULL;
	if (kv == NULL || nf_mono_ms() < kv->retry_at || (c = dial(kv, &why)) == NULL)
		return unavail(err);
	r = redisCommand(c, "SUBSCRIBE %s", channel);
	if (!subscribed(r, channel)) {
		if (r != NULL)
			freeReplyObject(r);
		redisFree(c);
		return unavail(err);
	}
	freeReplyObject(r);
	*out = nf_xcalloc(1, sizeof(**out));
	(*out)->c = c;
	return NF_OK;
}

/* Hand one pushed reply to fn when it is a message. */
static void
deliver(redisReply *r, nf_kv_sub_fn fn, void *ctx)
{
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, "message") == 0 &&
	    r->element[2]->type == REDIS_REPLY_STRING)
		fn(ctx, r->element[2]->str, r->element[2]->len);
}

int
nf_kv_sub_poll(struct nf_kv_sub *s, nf_kv_sub_fn fn, void *ctx)
{
	char		 buf[16384];
	void		*reply;
	ssize_t		 n;

	if (s == NULL || s->c == NULL)
		return -1;
	for (;;) {
		n = recv(s->c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR))
			return -1;     /* closed or broken: messages may be lost */
		if (n < 0)
			break;
		if (redisReaderFeed(s->c->reader, buf, (size_t)n) != REDIS_OK)
			return -1;
		for (;;) {
			reply = NULL;
			if (redisReaderGetReply(s->c->reader, &reply) != REDIS_OK)
				return -1;
			if (reply == NULL)
				break;
			deliver(reply, fn, ctx);
			freeReplyObject(reply);
		}
		/* No early exit on a short read: a server that pushed a message
		 * and then died leaves data followed by EOF, and the EOF must
		 * be seen now, not one request later. */
	}
	return 0;
}

void
nf_kv_sub_free(struct nf_kv_sub *s)
{
	if (s == NULL)
		return;
	if (s->c != NULL)
		redisFree(s->c);
	free(s);
}
