/*
 * authcache.c - per-worker caches of verified tokens and agent documents,
 * invalidated through Redis Pub/Sub (see authcache.h).
 *
 * DESIGN: two small direct-mapped tables (a slot per hash, a newer entry
 * replaces an older one), so memory stays bounded whatever the traffic.
 * Messages are "revoke <tenant> <jti>" and "agent <tenant> <id>"; an
 * unknown message drops everything, which is always safe.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "app.h"
#include "auth.h"
#include "authcache.h"
#include "kv.h"
#include "log.h"
#include "nonflex.h"

#define SLOTS		128     /* per table; a power of two */
#define RESUB_MS	1000    /* between subscription attempts */

struct tok_entry {
	char			*token;
	struct nf_auth_claims	 claims;
	int64_t			 at;     /* mono ms when cached */
};

struct agent_entry {
	char			 tenant[64];
	char			 id[25];
	struct json_object	*doc;
	int64_t			 at;
};

static struct tok_entry		 toks[SLOTS];
static struct agent_entry	 agents[SLOTS];
static struct nf_kv_sub		*sub;
static int64_t			 resub_at;

/* FNV-1a, enough to spread tokens and ids over the slots. */
static size_t
slot_of(const char *a, const char *b)
{
	uint32_t	 h = 2166136261u;

	for (; *a != '\0'; a++)
		h = (h ^ (unsigned char)*a) * 16777619u;
	for (; b != NULL && *b != '\0'; b++)
		h = (h ^ (unsigned char)*b) * 16777619u;
	return h & (SLOTS - 1);
}

static void
tok_drop(struct tok_entry *t)
{
	free(t->token);
	memset(t, 0, sizeof(*t));
}

static void
agent_drop(struct agent_entry *a)
{
	json_object_put(a->doc);
	memset(a, 0, sizeof(*a));
}

void
nf_authcache_clear(void)
{
	size_t	 i;

	for (i = 0; i < SLOTS; i++) {
		tok_drop(&toks[i]);
		agent_drop(&agents[i]);
	}
}

static int
fresh(int64_t at)
{
	return at != 0 && nf_mono_ms() - at < NF_AUTHCACHE_MAX_AGE_MS;
}

/* Apply one message. */
static void
on_message(void *ctx, const char *msg, size_t len)
{
	char	 kind[8], tenant[64], name[40];
	size_t	 i;

	(void)ctx;
	if (len > 120 || sscanf(msg, "%7s %63s %39s", kind, tenant, name) != 3) {
		nf_authcache_clear();
		return;
	}
	if (strcmp(kind, "revoke") == 0) {
		for (i = 0; i < SLOTS; i++)
			if (toks[i].token != NULL && strcmp(toks[i].claims.jti, name) == 0 &&
			    strcmp(toks[i].claims.tenant, tenant) == 0)
				tok_drop(&toks[i]);
	} else if (strcmp(kind, "agent") == 0) {
		agent_drop(&agents[slot_of(tenant, name)]);
	} else
		nf_authcache_clear();
}

int
nf_authcache_sync(struct nf_app *app)
{
	struct nf_error	 e;
	struct nf_kv	*kv = nf_app_kv(app);

	if (sub != NULL && nf_kv_sub_poll(sub, on_message, NULL) == 0)
		return 1;
	if (sub != NULL) {
		nf_info("auth cache: invalidation feed lost; caching paused");
		nf_kv_sub_free(sub);
		sub = NULL;
		nf_authcache_clear();
	}
	if (kv == NULL || nf_mono_ms() < resub_at)
		return 0;
	resub_at = nf_mono_ms() + RESUB_MS;
	if (nf_kv_sub_open(kv, NF_AUTHCACHE_CHANNEL, &sub, &e) != NF_OK)
		return 0;
	/* Whatever happened before the subscription is unknown: start empty. */
	nf_authcache_clear();
	return 1;
}

int
nf_authcache_token_get(const char *token, struct nf_auth_claims *out)
{
	struct tok_entry	*t = &toks[slot_of(token, NULL)];

	if (t->token == NULL || !fresh(t->at) || strcmp(t->token, token) != 0)
		return 0;
	*out = t->claims;
	return 1;
}

void
nf_authcache_token_put(const char *token, const struct nf_auth_claims *c)
{
	struct tok_entry	*t = &toks[slot_of(token, NULL)];

	tok_drop(t);
	t->token = nf_xstrdup(token);
	t->claims = *c;
	t->at = nf_mono_ms();
}

struct json_object *
nf_authcache_agent_get(const char *tenant, const char *id)
{
	struct agent_entry	*a = &agents[slot_of(tenant, id)];

	if (a->doc == NULL || !fresh(a->at) || strcmp(a->tenant, tenant) != 0 ||
	    strcmp(a->id, id) != 0)
		return NULL;
	return json_object_get(a->doc);
}

void
nf_authcache_agent_put(const char *tenant, const char *id, struct json_object *doc)
{
	struct agent_entry	*a = &agents[slot_of(tenant, id)];

	if (strlen(tenant) >= sizeof(a->tenant) || strlen(id) >= sizeof(a->id))
		return;
	agent_drop(a);
	snprintf(a->tenant, sizeof(a->tenant), "%s", tenant);
	snprintf(a->id, sizeof(a->id), "%s", id);
	a->doc = json_object_get(doc);
	a->at = nf_mono_ms();
}

static enum nf_err
publish(struct nf_kv *kv, const char *kind, const char *tenant, const char *name,
    struct nf_error *e)
{
	char		 msg[160];
	enum nf_err	 rc;

	snprintf(msg, sizeof(msg), "%s %s %s", kind, tenant, name);
	if (kv == NULL)
		rc = nf_error_set(e, NF_EUNAVAIL, "redis_unavailable", NULL,
		    "Redis is unavailable");
	else
		rc = nf_kv_publish(kv, NF_AUTHCACHE_CHANNEL, msg, e);
	if (rc != NF_OK)
		nf_warn("auth cache: could not publish %s for %s/%s; workers may use "
		    "what they cached for up to %d ms", kind, tenant, name,
		    NF_AUTHCACHE_MAX_AGE_MS);
	return rc;
}

enum nf_err
nf_authcache_publish_revoke(struct nf_kv *kv, const char *tenant, const char *jti,
    struct nf_error *e)
{
	return publish(kv, "revoke", tenant, jti, e);
}

enum nf_err
nf_authcache_publish_agent(struct nf_kv *kv, const char *tenant, const char *id,
    struct nf_error *e)
{
	return publish(kv, "agent", tenant, id, e);
}
