/*
 * kv.h - Redis through hiredis: connection with timeouts and reconnect,
 * tenant-namespaced keys, token locks, rate limits, dedupe keys.
 *
 * DESIGN: one synchronous connection per process, opened lazily and
 * re-opened after any I/O error, so a Redis restart costs the requests in
 * flight at that moment and nothing after.  Connect and command timeouts are
 * short (default 500 ms) so a dead Redis answers NF_EUNAVAIL (code
 * "redis_unavailable", HTTP 503) within a second and nothing hangs.
 * Keys are built only here: "nf:<tenant>:<kind>:<name>"; global keys (the
 * job queue) are "nf:<kind>:...".
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_KV_H
#define NF_KV_H

#include <stdint.h>

#include "nonflex.h"

struct nf_kv;
struct redisReply;

/* url: redis://[:password@]host[:port][/db] or unix:///path/to.sock[?db=N].
 * Never fails for a reachable-later server: the connection is lazy. */
enum nf_err	 nf_kv_open(const char *url, int timeout_ms, struct nf_kv **out,
		    struct nf_error *);
void		 nf_kv_free(struct nf_kv *);   /* accepts NULL */
enum nf_err	 nf_kv_ping(struct nf_kv *, struct nf_error *);

/*
 * Run one command (hiredis format string: use %s / %b for every value, never
 * paste values into fmt).  *out receives the reply (caller frees with
 * freeReplyObject) unless out is NULL.  A Redis error reply is NF_ESYSTEM
 * with the reply still returned; I/O failure is NF_EUNAVAIL.
 */
enum nf_err	 nf_kv_command(struct nf_kv *, struct redisReply **out,
		    struct nf_error *, const char *fmt, ...);
enum nf_err	 nf_kv_commandargv(struct nf_kv *, struct redisReply **out,
		    struct nf_error *, int argc, const char **argv, const size_t *argvlen);

/*
 * A Lua script for nf_kv_eval: src is the source; sha (hex SHA-1) is
 * computed on first use.  Declare as a static with sha zeroed.
 */
struct nf_kv_script {
	const char	*src;
	char		 sha[41];
};
/* EVALSHA, falling back to EVAL on NOSCRIPT (e.g. after a Redis restart).
 * args holds nkeys key names followed by the other arguments (nargs in
 * all).  Reply and errors as nf_kv_command. */
enum nf_err	 nf_kv_eval(struct nf_kv *, struct nf_kv_script *, struct redisReply **out,
		    struct nf_error *, int nkeys, int nargs, const char **args);

/*
 * Publish / subscribe, for pushing cache invalidations to every worker
 * (authcache.h).  A subscription has its own connection, opened with kv's
 * address and credentials; nf_kv_sub_poll never blocks: it hands every
 * message already received to fn and returns 0, or -1 once the connection
 * broke (messages may then have been lost: the caller drops what it cached,
 * frees the subscription and opens a new one later).  Delivery is Redis
 * Pub/Sub's: at most once, in order, to subscribers connected at the time.
 */
struct nf_kv_sub;
typedef void	(*nf_kv_sub_fn)(void *ctx, const char *msg, size_t len);
enum nf_err	 nf_kv_publish(struct nf_kv *, const char *channel, const char *msg,
		    struct nf_error *);
enum nf_err	 nf_kv_sub_open(const struct nf_kv *, const char *channel,
		    struct nf_kv_sub **out, struct nf_error *);
int		 nf_kv_sub_poll(struct nf_kv_sub *, nf_kv_sub_fn fn, void *ctx);
void		 nf_kv_sub_free(struct nf_kv_sub *);   /* accepts NULL */

/* Key "nf:<tenant>:<kind>:<name>" (malloc'd), or NULL when a part is empty
 * or holds spaces/control characters (or tenant/kind a ':'). */
char		*nf_kv_key(const char *tenant, const char *kind, const char *name);

/* Lock with a random token (SET NX PX).  NF_ECONFLICT when already held.
 * token_out receives 32 hex chars + NUL. */
enum nf_err	 nf_kv_lock_acquire(struct nf_kv *, const char *tenant, const char *name,
		    int64_t ttl_ms, char token_out[33], struct nf_error *);
/* Release only if token matches (compare-and-delete in Lua).
 * NF_ECONFLICT when the lock is held by another token or has expired. */
enum nf_err	 nf_kv_lock_release(struct nf_kv *, const char *tenant, const char *name,
		    const char *token, struct nf_error *);

/* Fixed-window counter: *allowed is 1 while the count within window_ms is
 * <= limit; otherwise 0 and *retry_after_ms is the time left in the window. */
enum nf_err	 nf_kv_ratelimit_hit(struct nf_kv *, const char *tenant, const char *bucket,
		    int64_t limit, int64_t window_ms, int *allowed, int64_t *retry_after_ms,
		    struct nf_error *);

/* Forget bucket's count (e.g. a user's failed logins after a success). */
enum nf_err	 nf_kv_ratelimit_reset(struct nf_kv *, const char *tenant, const char *bucket,
		    struct nf_error *);

/* Atomic first-seen check (SET NX PX): *first is 1 for the first caller. */
enum nf_err	 nf_kv_dedupe(struct nf_kv *, const char *tenant, const char *key,
		    int64_t ttl_ms, int *first, struct nf_error *);

#endif
