/*
 * authcache.h - what a worker remembers between requests about sessions:
 * verified tokens and agent documents, dropped the moment anything changes.
 *
 * DESIGN: every authenticated request used to verify its token, ask Redis
 * whether the token was revoked and read the agent from the store, so a
 * logout, a disabled agent or a changed password took effect at once.  To
 * keep that promise without a Redis round trip and a store read per
 * request, each worker subscribes to one Redis Pub/Sub channel on its own
 * connection and drains it, without blocking, at the start of every
 * authenticated request.  Whoever revokes a token or changes an agent
 * publishes it there AFTER the durable write (nf_authcache_publish_*), so
 * by the time the writer's client can send its next request, the message
 * is already in every worker's socket buffer.
 *
 * A worker caches only while its subscription is up: when it breaks (Redis
 * restarted, connection lost) everything cached is dropped and requests
 * take the full path (which fails closed without Redis) until a new
 * subscription is confirmed.  Entries also expire after
 * NF_AUTHCACHE_MAX_AGE_MS, which bounds staleness if a publish was lost
 * (e.g. nonflexctl changed an agent while Redis was unreachable).
 *
 * Per process, not thread-safe: a FastCGI worker serves one request at a
 * time.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_AUTHCACHE_H
#define NF_AUTHCACHE_H

#include "nonflex.h"

struct json_object;
struct nf_app;
struct nf_auth_claims;
struct nf_kv;

#define NF_AUTHCACHE_MAX_AGE_MS	5000
#define NF_AUTHCACHE_CHANNEL	"nf:auth-invalidate"

/* Drain pending invalidations; (re)subscribe when needed.  1 when the
 * caches may be used for this request, 0 when they must not be. */
int		 nf_authcache_sync(struct nf_app *);

/* A token that passed verification and the revocation check: claims of a
 * cached token (its expiry must still be checked by the caller), or 0. */
int		 nf_authcache_token_get(const char *token, struct nf_auth_claims *out);
void		 nf_authcache_token_put(const char *token, const struct nf_auth_claims *);

/* The agent document of (tenant, id) as a new reference, or NULL. */
struct json_object *nf_authcache_agent_get(const char *tenant, const char *id);
void		 nf_authcache_agent_put(const char *tenant, const char *id,
		    struct json_object *doc);

/*
 * Tell every worker: token jti of tenant is revoked / agent id of tenant
 * changed.  Call after the durable write.  NF_EUNAVAIL when Redis could
 * not be told (the caches then expire within NF_AUTHCACHE_MAX_AGE_MS).
 */
enum nf_err	 nf_authcache_publish_revoke(struct nf_kv *, const char *tenant,
		    const char *jti, struct nf_error *);
enum nf_err	 nf_authcache_publish_agent(struct nf_kv *, const char *tenant,
		    const char *id, struct nf_error *);

/* Forget everything (tests; a subscription lost). */
void		 nf_authcache_clear(void);

#endif
