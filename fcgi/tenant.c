/*
 * tenant.c - tenants file loading, resolution and public view (tenant.h).
 *
 * DESIGN: one table maps each JSON field ("twilio.authToken") to its place
 * in struct nf_tenant, its environment fallback, whether it is a secret
 * and what shape a value must have.  Loading, freeing and the public view
 * are loops over that table, so a secret cannot be forgotten in one of
 * them: the public view is built only from rows not marked secret.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cors.h"
#include "json.h"
#include "nonflex.h"
#include "tenant.h"
#include "valid.h"

enum shape {
	S_TEXT,      /* any UTF-8 text up to 4096 bytes */
	S_SID,       /* Twilio SID with the row's prefix */
	S_PHONE,     /* E.164, optionally "whatsapp:"-prefixed */
	S_URL,       /* http(s) URL */
};

struct field {
	const char	*section;  /* NULL (top level), "twilio", "ai", "crm" */
	const char	*key;      /* JSON key */
	size_t		 off;      /* offset of the char * in struct nf_tenant */
	const char	*env;      /* process-wide fallback, or NULL */
	int		 secret;   /* never in the public view */
	enum shape	 shape;
	const char	*prefix;   /* SID prefix for S_SID */
};

#define T(f) offsetof(struct nf_tenant, f)

static const struct field fields[] = {
	{ NULL, "name", T(name), NULL, 0, S_TEXT, NULL },
	{ NULL, "apiKey", T(api_key), NULL, 1, S_TEXT, NULL },
	{ "twilio", "accountSid", T(twilio.account_sid), "TWILIO_ACCOUNT_SID", 0, S_SID, "AC" },
	{ "twilio", "authToken", T(twilio.auth_token), "TWILIO_AUTH_TOKEN", 1, S_TEXT, NULL },
	/* An API key SID is not a secret by itself, but the SPA has no use
	 * for it and it pairs with apiSecret: keep it private. */
	{ "twilio", "apiKey", T(twilio.api_key), "TWILIO_API_KEY", 1, S_SID, "SK" },
	{ "twilio", "apiSecret", T(twilio.api_secret), "TWILIO_API_SECRET", 1, S_TEXT, NULL },
	{ "twilio", "conversationsServiceSid", T(twilio.conversations_service_sid), NULL, 0,
	    S_SID, "IS" },
	{ "twilio", "voiceNumber", T(twilio.voice_number), NULL, 0, S_PHONE, NULL },
	{ "twilio", "whatsappNumber", T(twilio.whatsapp_number), NULL, 0, S_PHONE, NULL },
	{ "twilio", "workspaceSid", T(twilio.workspace_sid), NULL, 0, S_SID, "WS" },
	{ "twilio", "workflowSid", T(twilio.workflow_sid), NULL, 0, S_SID, "WW" },
	{ "twilio", "twimlAppSid", T(twilio.twiml_app_sid), NULL, 0, S_SID, "AP" },
	{ "ai", "openaiApiKey", T(ai.openai_api_key), "OPENAI_API_KEY", 1, S_TEXT, NULL },
	{ "ai", "model", T(ai.model), NULL, 0, S_TEXT, NULL },
	{ "ai", "systemPrompt", T(ai.system_prompt), NULL, 0, S_TEXT, NULL },
	{ "ai", "language", T(ai.language), NULL, 0, S_TEXT, NULL },
	{ "crm", "baseUrl", T(crm.base_url), "CRM_BASE_URL", 0, S_URL, NULL },
	{ "crm", "apiKey", T(crm.api_key), "CRM_API_KEY", 1, S_TEXT, NULL },
};

static char **
slot(struct nf_tenant *t, const struct field *f)
{
	return (char **)(void *)((char *)t + f->off);
}

static const char *
cslot(const struct nf_tenant *t, const struct field *f)
{
	return *(char *const *)(const void *)((const char *)t + f->off);
}

/* "${NAME}" -> getenv(NAME) ("" and unset both mean absent: NULL). */
static const char *
expand(const char *s)
{
	char		 name[128];
	size_t		 len = strlen(s), i;
	const char	*v;

	if (len < 4 || strncmp(s, "${", 2) != 0 || s[len - 1] != '}' || len - 3 >= sizeof(name))
		return s;
	for (i = 2; i < len - 1; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return s;
	memcpy(name, s + 2, len - 3);
	name[len - 3] = '\0';
	v = getenv(name);
	return (v != NULL && *v != '\0') ? v : NULL;
}

static int
shape_ok(const struct field *f, const char *v)
{
	switch (f->shape) {
	case S_SID:
		return nf_valid_twilio_sid(v, f->prefix);
	case S_PHONE:
		if (strncmp(v, "whatsapp:", 9) == 0)
			v += 9;
		return nf_valid_e164(v);
	case S_URL:
		return strncmp(v, "https://", 8) == 0 || strncmp(v, "http://", 7) == 0;
	case S_TEXT:
		break;
	}
	return 1;
}

/* Fill one field of t from its JSON object (or the environment). */
static enum nf_err
load_field(struct nf_tenant *t, struct json_object *jt, const struct field *f,
    struct nf_error *e)
{
	struct json_object	*sec = jt, *v = NULL;
	const char		*s = NULL;

	if (f->section != NULL && !json_object_object_get_ex(jt, f->section, &sec))
		sec = NULL;
	if (sec != NULL && !json_object_is_type(sec, json_type_object))
		return nf_error_set(e, NF_EINVAL, "invalid_tenants", f->section,
		    "tenant %s: %s must be an object", t->id, f->section);
	if (sec != NULL && json_object_object_get_ex(sec, f->key, &v) && v != NULL) {
		if (!json_object_is_type(v, json_type_string))
			return nf_error_set(e, NF_EINVAL, "invalid_tenants", f->key,
			    "tenant %s: %s%s%s must be a string", t->id,
			    f->section ? f->section : "", f->section ? "." : "", f->key);
		s = expand(json_object_get_string(v));
		if (s != NULL && *s == '\0')
			s = NULL;
	}
	if (s == NULL && f->env != NULL && (s = getenv(f->env)) != NULL && *s == '\0')
		s = NULL;
	if (s == NULL)
		return NF_OK;
	/* Secrets are never quoted: the message names the field only. */
	if (!nf_valid_utf8(s, strlen(s), 1, 4096) || !shape_ok(f, s))
		return nf_error_set(e, NF_EINVAL, "invalid_tenants", f->key,
		    "tenant %s: %s%s%s has an invalid value", t->id,
		    f->section ? f->section : "", f->section ? "." : "", f->key);
	*slot(t, f) = nf_xstrdup(s);
	return NF_OK;
}

static void
add_or_null(struct json_object *o, const char *key, const char *v)
{
	nf_json_add(o, key, v != NULL ? json_object_new_string(v) : NULL);
}

struct json_object *
nf_tenant_public_json(const struct nf_tenant *t)
{
	static const char *const sections[] = { "twilio", "ai", "crm" };
	struct json_object	*root = json_object_new_object(), *sec;
	size_t			 i, k;

	add_or_null(root, "id", t->id);
	for (i = 0; i < NF_ARRAY_LEN(fields); i++)
		if (fields[i].section == NULL && !fields[i].secret)
			add_or_null(root, fields[i].key, cslot(t, &fields[i]));
	for (k = 0; k < NF_ARRAY_LEN(sections); k++) {
		sec = json_object_new_object();
		for (i = 0; i < NF_ARRAY_LEN(fields); i++)
			if (fields[i].section != NULL && !fields[i].secret &&
			    strcmp(fields[i].section, sections[k]) == 0)
				add_or_null(sec, fields[i].key, cslot(t, &fields[i]));
		nf_json_add(root, sections[k], sec);
	}
	json_object_object_get_ex(root, "twilio", &sec);
	nf_json_add_bool(sec, "configured", t->twilio.account_sid && t->twilio.auth_token);
	json_object_object_get_ex(root, "ai", &sec);
	nf_json_add_bool(sec, "configured", t->ai.openai_api_key != NULL);
	json_object_object_get_ex(root, "crm", &sec);
	nf_json_add_bool(sec, "configured", t->crm.base_url != NULL);
	return root;
}

static void
faq_free(struct nf_tenant_ai *ai)
{
	size_t	 i, k;

	for (i = 0; i < ai->nfaq; i++) {
		for (k = 0; k < ai->faq[i].nkeywords; k++)
			free(ai->faq[i].keywords[k]);
		free(ai->faq[i].keywords);
		free(ai->faq[i].answer);
	}
	free(ai->faq);
	ai->faq = NULL;
	ai->nfaq = 0;
}

static void
tenant_cleanup(struct nf_tenant *t)
{
	size_t	 i;

	faq_free(&t->ai);
	for (i = 0; i < t->webchat.nallowed_origins; i++)
		free(t->webchat.allowed_origins[i]);
	free(t->webchat.allowed_origins);
	for (i = 0; i < NF_ARRAY_LEN(fields); i++)
		free(*slot(t, &fields[i]));
	free(t->id);
	free(t->public_json);
}

/* crm.cacheTtlS: optional whole seconds (0 turns the CRM cache off). */
static enum nf_err
load_cache_ttl(struct nf_tenant *t, struct json_object *jt, struct nf_error *e)
{
	struct json_object	*sec, *v;
	int64_t			 n;

	t->crm.cache_ttl_s = -1;
	if (!json_object_object_get_ex(jt, "crm", &sec) ||
	    !json_object_is_type(sec, json_type_object) ||
	    !json_object_object_get_ex(sec, "cacheTtlS", &v) || v == NULL)
		return NF_OK;
	n = json_object_get_int64(v);
	if (!json_object_is_type(v, json_type_int) || n < 0 || n > 86400)
		return nf_error_set(e, NF_EINVAL, "invalid_tenants", "cacheTtlS",
		    "tenant %s: crm.cacheTtlS must be an integer from 0 to 86400", t->id);
	t->crm.cache_ttl_s = n;
	return NF_OK;
}

/* ai.dailyTokenBudget: optional whole tokens per UTC day (0: unlimited). */
static enum nf_err
load_token_budget(struct nf_tenant *t, struct json_object *jt, struct nf_error *e)
{
	struct json_object	*sec, *v;
	int64_t			 n;

	t->ai.daily_token_budget = -1;
	if (!json_object_object_get_ex(jt, "ai", &sec) ||
	    !json_object_is_type(sec, json_type_object) ||
	    !json_object_object_get_ex(sec, "dailyTokenBudget", &v) || v == NULL)
		return NF_OK;
	n = json_object_get_int64(v);
	if (!json_object_is_type(v, json_type_int) || n < 0 || n > 1000000000000LL)
		return nf_error_set(e, NF_EINVAL, "invalid_tenants", "dailyTokenBudget",
		    "tenant %s: ai.dailyTokenBudget must be an integer from 0 to 10^12", t->id);
	t->ai.daily_token_budget = n;
	return NF_OK;
}

/* ai.faq limits: what an offline responder reasonably needs. */
#define FAQ_MAX		100
#define FAQ_KEYWORDS	20
#define FAQ_KEYWORD_MAX	100
#define FAQ_ANSWER_MAX	2000

/* A string of 1..max bytes of UTF-8, or NULL. */
static const char *
faq_str(struct json_object *v, size_t max)
{
	const char	*s;

	if (v == NULL || !json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	return nf_valid_utf8(s, strlen(s), 1, max) ? s : NULL;
}

/* One ai.faq[] entry {keywords[], answer} into in. */
static enum nf_err
load_intent(struct nf_tenant_intent *in, const char *tid, size_t idx,
    struct json_object *o, struct nf_error *e)
{
	struct json_object	*kw = NULL, *ans = NULL;
	const char		*s;
	size_t			 k, n;

	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "keywords", &kw) ||
	    !json_object_is_type(kw, json_type_array) ||
	    (n = json_object_array_length(kw)) == 0 || n > FAQ_KEYWORDS)
		return nf_error_set(e, NF_EINVAL, "invalid_tenants", "keywords",
		    "tenant %s: ai.faq[%zu].keywords must be an array of 1 to %d strings",
		    tid, idx, FAQ_KEYWORDS);
	in->keywords = nf_xcalloc(n, sizeof(*in->keywords));
	for (k = 0; k < n; k++) {
		if ((s = faq_str(json_object_array_get_idx(kw, k), FAQ_KEYWORD_MAX)) == NULL)
			return nf_error_set(e, NF_EINVAL, "invalid_tenants", "keywords",
			    "tenant %s: ai.faq[%zu].keywords[%zu] must be a string of 1 to "
			    "%d bytes", tid, idx, k, FAQ_KEYWORD_MAX);
		in->keywords[in->nkeywords++] = nf_xstrdup(s);
	}
	json_object_object_get_ex(o, "answer", &ans);
	if ((s = faq_str(ans, FAQ_ANSWER_MAX)) == NULL)
		return nf_error_set(e, NF_EINVAL, "invalid_tenants", "answer",
		    "tenant %s: ai.faq[%zu].answer must be a string of 1 to %d bytes",
		    tid, idx, FAQ_ANSWER_MAX);
	in->answer = nf_xstrdup(s);
	return NF_OK;
}

/* ai.faq: optional intents of the offline responder (ai.c). */
static enum nf_err
load_faq(struct nf_tenant *t, struct json_object *jt, struct nf_error *e)
{
	struct json_object	*sec, *faq;
	enum nf_err		 rc;
	size_t			 i, n;

	if (!json_object_object_get_ex(jt, "ai", &sec) ||
	    !json_object_is_type(sec, json_type_object) ||
	    !json_object_object_get_ex(sec, "faq", &faq) || faq == NULL)
		return NF_OK;
	if (!json_object_is_type(faq, json_type_array) ||
	    (n = json_object_array_length(faq)) > FAQ_MAX)
		return nf_error_set(e, NF_EINVAL, "invalid_tenants", "faq",
		    "tenant %s: ai.faq must be an array of at most %d intents", t->id, FAQ_MAX);
	t->ai.faq = nf_xcalloc(n > 0 ? n : 1, sizeof(*t->ai.faq));
	for (i = 0; i < n; i++) {
		rc = load_intent(&t->ai.faq[i], t->id, i, json_object_array_get_idx(faq, i), e);
		t->ai.nfaq++;   /* counted even on failure so cleanup frees it */
		if (rc != NF_OK)
			return rc;
	}
	return NF_OK;
}

/* webchat.allowedOrigins: optional array of origins (cors.h); a "${ENV}"
 * entry whose variable is unset is left out, so a deployment can add its
 * site without editing the file. */
static enum nf_err
load_webchat(struct nf_tenant *t, struct json_object *jt, struct nf_error *e)
{
	struct json_object	*sec, *list, *v;
	const char		*s;
	size_t			 i, n;

	if (!json_object_object_get_ex(jt, "webchat", &sec) || sec == NULL)
		return NF_OK;
	if (!json_object_is_type(sec, json_type_object))
		return nf_error_set(e, NF_EINVAL, "invalid_tenants", "webchat",
		    "tenant %s: webchat must be an object", t->id);
	if (!json_object_object_get_ex(sec, "allowedOrigins", &list) || list == NULL)
		return NF_OK;
	if (!json_object_is_type(list, json_type_array) ||
	    (n = json_object_array_length(list)) > NF_CORS_ORIGINS_MAX)
		return nf_error_set(e, NF_EINVAL, "invalid_tenants", "allowedOrigins",
		    "tenant %s: webchat.allowedOrigins must be an array of at most %d origins",
		    t->id, NF_CORS_ORIGINS_MAX);
	t->webchat.allowed_origins = nf_xcalloc(n > 0 ? n : 1, sizeof(char *));
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(list, i);
		if (!json_object_is_type(v, json_type_string))
			s = "";
		else if ((s = expand(json_object_get_string(v))) == NULL)
			continue;
		if (!nf_cors_valid_origin(s))
			return nf_error_set(e, NF_EINVAL, "invalid_tenants", "allowedOrigins",
			    "tenant %s: webchat.allowedOrigins[%zu] must be an origin such as "
			    "\"https://shop.example\" (scheme, host, optional port; no path)",
			    t->id, i);
		t->webchat.allowed_origins[t->webchat.nallowed_origins++] = nf_xstrdup(s);
	}
	return NF_OK;
}

static enum nf_err
load_tenant(struct nf_tenant *t, const char *key, struct json_object *jt,
    struct nf_error *e)
{
	struct json_object	*id, *pub;
	enum nf_err		 rc;
	const char		*s;
	size_t			 i;

	if (!nf_valid_slug(key))
		return nf_error_set(e, NF_EINVAL, "invalid_tenants", "id",
		    "tenant ids must match [a-z0-9-]{1,63}");
	t->id = nf_xstrdup(key);
	if (!json_object_is_type(jt, json_type_object))
		return nf_error_set(e, NF_EINVAL, "invalid_tenants", NULL,
		    "tenant %s must be an object", key);
	if (json_object_object_get_ex(jt, "id", &id) &&
	    (!json_object_is_type(id, json_type_string) ||
	    strcmp(json_object_get_string(id), key) != 0))
		return nf_error_set(e, NF_EINVAL, "invalid_tenants", "id",
		    "tenant %s: id must equal its key", key);
	for (i = 0; i < NF_ARRAY_LEN(fields); i++)
		if ((rc = load_field(t, jt, &fields[i], e)) != NF_OK)
			return rc;
	if ((rc = load_cache_ttl(t, jt, e)) != NF_OK)
		return rc;
	if ((rc = load_token_budget(t, jt, e)) != NF_OK)
		return rc;
	if ((rc = load_faq(t, jt, e)) != NF_OK)
		return rc;
	if ((rc = load_webchat(t, jt, e)) != NF_OK)
		return rc;
	pub = nf_tenant_public_json(t);
	s = nf_json_str(pub, &t->public_len);
	t->public_json = nf_xstrndup(s, t->public_len);
	json_object_put(pub);
	return NF_OK;
}

enum nf_err
nf_tenants_parse(const char *text, size_t len, struct nf_tenants **out,
    struct nf_error *e)
{
	struct json_object	*root = NULL;
	struct nf_tenants	*ts = NULL;
	struct nf_error		 je;
	enum nf_err		 rc;
	size_t			 n;

	*out = NULL;
	if ((rc = nf_json_parse(text, len, &root, &je)) != NF_OK) {
		rc = nf_error_set(e, NF_EINVAL, "invalid_tenants", NULL,
		    "not valid JSON (%s)", je.message);
		goto out;
	}
	if (!json_object_is_type(root, json_type_object) ||
	    (n = (size_t)json_object_object_length(root)) == 0) {
		rc = nf_error_set(e, NF_EINVAL, "invalid_tenants", NULL,
		    "must be an object with at least one tenant");
		goto out;
	}
	ts = nf_xcalloc(1, sizeof(*ts));
	ts->v = nf_xcalloc(n, sizeof(*ts->v));
	json_object_object_foreach(root, key, val) {
		rc = load_tenant(&ts->v[ts->n], key, val, e);
		ts->n++;   /* counted even on failure so free releases it */
		if (rc != NF_OK)
			goto out;
	}
	*out = ts;
	ts = NULL;
out:
	nf_tenants_free(ts);
	json_object_put(root);
	return rc;
}

enum nf_err
nf_tenants_load(const char *path, struct nf_tenants **out, struct nf_error *e)
{
	FILE		*f = NULL;
	char		*buf = NULL;
	size_t		 len = 0, cap = 0, n;
	enum nf_err	 rc;

	*out = NULL;
	if (path == NULL || (f = fopen(path, "re")) == NULL)
		return nf_error_set(e, NF_ENOTFOUND, "invalid_tenants", NULL,
		    "cannot open the tenants file");
	for (;;) {
		if (len == cap) {
			if (cap >= (size_t)4 << 20) {
				rc = nf_error_set(e, NF_EINVAL, "invalid_tenants", NULL,
				    "the tenants file is larger than 4 MB");
				goto out;
			}
			cap = cap ? cap * 2 : 8192;
			buf = nf_xrealloc(buf, cap);
		}
		if ((n = fread(buf + len, 1, cap - len, f)) == 0)
			break;
		len += n;
	}
	if (ferror(f)) {
		rc = nf_error_set(e, NF_ENOTFOUND, "invalid_tenants", NULL,
		    "cannot read the tenants file");
		goto out;
	}
	rc = nf_tenants_parse(buf, len, out, e);
out:
	free(buf);
	fclose(f);
	return rc;
}

void
nf_tenants_free(struct nf_tenants *ts)
{
	size_t	 i;

	if (ts == NULL)
		return;
	for (i = 0; i < ts->n; i++)
		tenant_cleanup(&ts->v[i]);
	free(ts->v);
	free(ts);
}

const struct nf_tenant *
nf_tenant_find(const struct nf_tenants *ts, const char *id)
{
	size_t	 i;

	for (i = 0; ts != NULL && id != NULL && i < ts->n; i++)
		if (strcmp(ts->v[i].id, id) == 0)
			return &ts->v[i];
	return NULL;
}

const struct nf_tenant *
nf_tenant_find_by_account_sid(const struct nf_tenants *ts, const char *sid)
{
	size_t	 i;

	for (i = 0; ts != NULL && sid != NULL && i < ts->n; i++)
		if (ts->v[i].twilio.account_sid != NULL &&
		    strcmp(ts->v[i].twilio.account_sid, sid) == 0)
			return &ts->v[i];
	return NULL;
}

/* Tenant named by the Host header's first label, lower-cased. */
static const struct nf_tenant *
from_host(const struct nf_tenants *ts, const char *host)
{
	char	 label[64];
	size_t	 i;

	if (host == NULL)
		return NULL;
	for (i = 0; host[i] != '\0' && host[i] != '.' && host[i] != ':'; i++) {
		if (i + 1 >= sizeof(label))
			return NULL;
		label[i] = (host[i] >= 'A' && host[i] <= 'Z') ? (char)(host[i] + 32) : host[i];
	}
	label[i] = '\0';
	return nf_valid_slug(label) ? nf_tenant_find(ts, label) : NULL;
}

enum nf_err
nf_tenant_resolve(const struct nf_tenants *ts, const struct nf_tenant_hints *h,
    const struct nf_tenant **out, struct nf_error *e)
{
	const struct nf_tenant	*t;

	*out = NULL;
	if ((t = from_host(ts, h->host)) != NULL)
		return (*out = t), NF_OK;
	if (h->header != NULL) {
		if (!nf_valid_slug(h->header))
			return nf_error_set(e, NF_EINVAL, "invalid_tenant_id", "X-Tenant-Id",
			    "X-Tenant-Id must match [a-z0-9-]{1,63}");
		if ((t = nf_tenant_find(ts, h->header)) == NULL)
			return nf_error_set(e, NF_ENOTFOUND, "tenant_not_found", "X-Tenant-Id",
			    "unknown tenant");
		return (*out = t), NF_OK;
	}
	if (h->path != NULL && strncmp(h->path, "/webhooks/", 10) == 0 &&
	    (t = nf_tenant_find_by_account_sid(ts, h->account_sid)) != NULL)
		return (*out = t), NF_OK;
	if ((t = nf_tenant_find(ts, h->default_tenant)) == NULL)
		return nf_error_set(e, NF_ENOTFOUND, "tenant_not_found", NULL,
		    "no tenant for this request");
	*out = t;
	return NF_OK;
}
