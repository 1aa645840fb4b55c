/*
 * tenant.h - the tenants file, per-tenant settings and tenant resolution.
 *
 * DESIGN: infra/tenants.json keeps the original's format: an object of
 * tenant id -> {id, name, apiKey, twilio{...}, ai{...}, crm{...}}.  Any
 * string may be "${ENV_NAME}", replaced from the environment at load (an
 * unset variable leaves the field absent); process-wide TWILIO_*, OPENAI_*
 * and CRM_* variables fill what a tenant leaves out.  The file is read once
 * per process (and on SIGHUP), and each tenant's public JSON (no secrets)
 * is serialized at load, so serving it costs no allocation.
 *
 * Absent strings are NULL, never "".
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_TENANT_H
#define NF_TENANT_H

#include <stddef.h>
#include <stdint.h>

#include "nonflex.h"

struct json_object;

struct nf_tenant_twilio {
	char	*account_sid;               /* AC... */
	char	*auth_token;                /* secret */
	char	*api_key;                   /* SK... */
	char	*api_secret;                /* secret */
	char	*conversations_service_sid; /* IS... */
	char	*voice_number;              /* E.164 */
	char	*whatsapp_number;           /* "whatsapp:+..." or E.164 */
	char	*workspace_sid;             /* WS... */
	char	*workflow_sid;              /* WW... */
	char	*twiml_app_sid;             /* AP... */
};

/* One offline intent (ai.faq[]): any of its keywords (a word or phrase,
 * matched whole, any case, accents ignored: ai.c) selects the answer. */
struct nf_tenant_intent {
	char	**keywords;
	size_t	  nkeywords;
	char	 *answer;
};

struct nf_tenant_ai {
	char			*openai_api_key;    /* secret */
	char			*model;
	char			*system_prompt;
	char			*language;          /* "en", "es", ... */
	struct nf_tenant_intent	*faq;               /* the offline responder's */
	size_t			 nfaq;
	int64_t			 daily_token_budget; /* ai.dailyTokenBudget: OpenAI tokens
						     * per UTC day (0: unlimited), or -1
						     * when absent: NONFLEX_AI_DAILY_TOKEN_
						     * BUDGET applies (ai_budget.h) */
};

struct nf_tenant_crm {
	char	*base_url;
	char	*api_key;                   /* secret */
	int64_t	 cache_ttl_s;               /* crm.cacheTtlS (0..86400), or -1 when
					     * absent: NONFLEX_CRM_CACHE_TTL_S applies */
};

/* webchat.allowedOrigins: the websites whose pages may embed the web-chat
 * widget (cors.h); each a serialized origin, "${ENV}" entries expanded and
 * dropped when unset. */
struct nf_tenant_webchat {
	char	**allowed_origins;
	size_t	  nallowed_origins;
};

struct nf_tenant {
	char			*id;        /* slug, equals its key in the file */
	char			*name;
	char			*api_key;   /* secret */
	struct nf_tenant_twilio	 twilio;
	struct nf_tenant_ai	 ai;
	struct nf_tenant_crm	 crm;
	struct nf_tenant_webchat webchat;
	char			*public_json;  /* nf_tenant_public_json, serialized */
	size_t			 public_len;
};

struct nf_tenants {
	struct nf_tenant	*v;
	size_t			 n;
};

/*
 * Load and validate a tenants file.  NF_EINVAL (code "invalid_tenants")
 * with a message naming the tenant and field when anything is wrong,
 * NF_ENOTFOUND when the file cannot be read.  *out is freed with
 * nf_tenants_free.
 */
enum nf_err	 nf_tenants_load(const char *path, struct nf_tenants **out, struct nf_error *);
/* The same from text in memory. */
enum nf_err	 nf_tenants_parse(const char *text, size_t len, struct nf_tenants **out,
		    struct nf_error *);
void		 nf_tenants_free(struct nf_tenants *);   /* accepts NULL */

/* Lookups; NULL when not found (t may be NULL). */
const struct nf_tenant *nf_tenant_find(const struct nf_tenants *t, const char *id);
const struct nf_tenant *nf_tenant_find_by_account_sid(const struct nf_tenants *t,
		    const char *account_sid);

/* What a request offers for resolution; any member may be NULL. */
struct nf_tenant_hints {
	const char	*host;           /* Host header (port allowed) */
	const char	*header;         /* X-Tenant-Id */
	const char	*path;           /* request path: /webhooks/ enables account_sid */
	const char	*account_sid;    /* AccountSid form/query parameter */
	const char	*default_tenant; /* DEFAULT_TENANT */
};

/*
 * Resolve the tenant: Host's first label when it names a tenant, then
 * X-Tenant-Id (malformed: NF_EINVAL "invalid_tenant_id"; unknown:
 * NF_ENOTFOUND "tenant_not_found"), then for /webhooks/ paths the
 * AccountSid, then the default tenant (unknown: NF_ENOTFOUND
 * "tenant_not_found").  *out is borrowed from t.
 */
enum nf_err	 nf_tenant_resolve(const struct nf_tenants *t, const struct nf_tenant_hints *,
		    const struct nf_tenant **out, struct nf_error *);

/* New public view of a tenant (original shape, no secret, plus
 * twilio/ai/crm "configured" booleans).  Caller puts it.  Cannot fail. */
struct json_object *nf_tenant_public_json(const struct nf_tenant *);

#endif
