/*
 * crm.c - the tenant's external CRM (crm.h): lookups through a Redis
 * cache, the ticket push run by nonflex-jobs, and the mapping of the
 * CRM's answers to the original's customer and order shapes.
 *
 * DESIGN: every call goes through the workers' HTTP client (http.h), never
 * libcurl, so the same code runs in nonflex-fcgi and nonflex-jobs.  The
 * CRM is untrusted: its JSON is parsed strictly (json.h), only known
 * fields of the expected type are copied (bounded strings and arrays), a
 * redirect is refused and logged instead of followed (the Location could
 * point at a metadata service: RELIABILITY 32), and http.h refuses
 * private addresses unless NONFLEX_CRM_ALLOW_PRIVATE.  A GET is tried
 * twice on a 5xx or a timeout; a POST is not (the job runner retries it
 * with backoff).  The cache holds the mapped JSON, so a hit costs one
 * Redis GET and a parse; Redis being down only costs the cache.  The API
 * key lives in one header buffer that is wiped after use; log lines name
 * the tenant, the kind of call and the status, never the key or the body.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>

#include "app.h"
#include "breaker.h"
#include "crm.h"
#include "customers.h"
#include "http.h"
#include "json.h"
#include "kv.h"
#include "log.h"
#include "tenant.h"
#include "valid.h"

#define CRM_MAX_RESPONSE	(256 * 1024)  /* a contact with its orders */
#define STR_MAX			512           /* names, emails, ids, ... */
#define NOTES_MAX		4096
#define LIST_MAX		50            /* phones, addresses, orders, items */

/* Per kind: URL path, cache key part, public not-found code. */
static const struct {
	const char	*path;
	const char	*cache;
	const char	*notfound;
} kinds[] = {
	[NF_CRM_BY_PHONE] = { "contacts/phone/", "phone", "customer_not_found" },
	[NF_CRM_BY_ID] = { "contacts/", "id", "customer_not_found" },
	[NF_CRM_ORDER] = { "orders/", "order", "order_not_found" },
};

static int
kind_ok(enum nf_crm_kind k)
{
	return (int)k >= 0 && (size_t)k < NF_ARRAY_LEN(kinds);
}

static int
key_ok(const char *key)
{
	return key != NULL && nf_valid_utf8(key, strlen(key), 1, NF_CRM_KEY_MAX);
}

int
nf_crm_configured(const struct nf_tenant *t)
{
	return t != NULL && t->crm.base_url != NULL;
}

/* --- URLs and cache keys --------------------------------------------- */

/* The base URL's length without trailing slashes. */
static size_t
base_len(const char *base)
{
	size_t	 n = strlen(base);

	while (n > 0 && base[n - 1] == '/')
		n--;
	return n;
}

char *
nf_crm_url(const char *base, enum nf_crm_kind kind, const char *key)
{
	static const char	 hex[] = "0123456789ABCDEF";
	size_t			 blen, plen, klen, i, o;
	char			*url;
	unsigned char		 c;

	if (base == NULL || !kind_ok(kind) || !key_ok(key))
		return NULL;
	blen = base_len(base);
	plen = strlen(kinds[kind].path);
	klen = strlen(key);
	url = nf_xmalloc(blen + 1 + plen + 3 * klen + 1);
	memcpy(url, base, blen);
	url[blen] = '/';
	memcpy(url + blen + 1, kinds[kind].path, plen);
	o = blen + 1 + plen;
	for (i = 0; i < klen; i++) {
		c = (unsigned char)key[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~')
			url[o++] = (char)c;
		else {
			url[o++] = '%';
			url[o++] = hex[c >> 4];
			url[o++] = hex[c & 15];
		}
	}
	url[o] = '\0';
	return url;
}

char *
nf_crm_cache_key(const char *tenant, enum nf_crm_kind kind, const char *key)
{
	char	*name, *k;

	if (!kind_ok(kind) || !key_ok(key))
		return NULL;
	name = nf_xasprintf("%s:%s", kinds[kind].cache, key);
	k = nf_kv_key(tenant, "crm", name);
	free(name);
	return k;
}

/* --- mapping ---------------------------------------------------------- */

/* A string member within bounds, or NULL (absent, wrong type, too long). */
static const char *
str_of(struct json_object *o, const char *key, size_t max)
{
	struct json_object	*v;
	const char		*s;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	return nf_valid_utf8(s, strlen(s), 1, max) ? s : NULL;
}

/* The first of several spellings that is a usable string. */
static const char *
str_any(struct json_object *o, const char *const *keys, size_t max)
{
	const char	*s = NULL;

	for (; *keys != NULL && s == NULL; keys++)
		s = str_of(o, *keys, max);
	return s;
}

/* An id: a string or a whole number, as a new JSON string (NULL if none). */
static struct json_object *
id_any(struct json_object *o, const char *const *keys)
{
	struct json_object	*v;
	char			 buf[32];
	const char		*s;

	for (; *keys != NULL; keys++) {
		if ((s = str_of(o, *keys, NF_CRM_KEY_MAX)) != NULL)
			return json_object_new_string(s);
		if (json_object_object_get_ex(o, *keys, &v) &&
		    json_object_is_type(v, json_type_int)) {
			snprintf(buf, sizeof(buf), "%lld", (long long)json_object_get_int64(v));
			return json_object_new_string(buf);
		}
	}
	return NULL;
}

static struct json_object *
obj_of(struct json_object *o, const char *key)
{
	struct json_object	*v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_object))
		return NULL;
	return v;
}

static struct json_object *
arr_of(struct json_object *o, const char *key)
{
	struct json_object	*v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}

static void
add_str_or_null(struct json_object *o, const char *key, const char *v)
{
	nf_json_add(o, key, v != NULL ? json_object_new_string(v) : NULL);
}

/* A number, or a string holding one ("19.99"), as a new JSON double. */
static struct json_object *
num_of(struct json_object *o, const char *key)
{
	struct json_object	*v;
	const char		*s;
	char			*end;
	double			 d;

	if (o == NULL || !json_object_object_get_ex(o, key, &v))
		return NULL;
	if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
		return json_object_new_double(json_object_get_double(v));
	if ((s = str_of(o, key, 32)) == NULL)
		return NULL;
	d = strtod(s, &end);
	return *end == '\0' && end != s ? json_object_new_double(d) : NULL;
}

/* Normalize a phone to E.164 and append it to phones unless present;
 * numbers that cannot be E.164 are dropped (upstream data is untrusted). */
static const char *
phone_add(struct json_object *phones, const char *raw)
{
	char		 e164[NF_PHONE_MAX + 1];
	struct nf_error	 e;
	size_t		 i, n = json_object_array_length(phones);

	if (raw == NULL || n >= LIST_MAX || nf_phone_e164(raw, NULL, e164, &e) != NF_OK)
		return NULL;
	for (i = 0; i < n; i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(phones, i)),
		    e164) == 0)
			return json_object_get_string(json_object_array_get_idx(phones, i));
	json_object_array_add(phones, json_object_new_string(e164));
	return json_object_get_string(json_object_array_get_idx(phones, n));
}

/* phones[]: strings or {number} (or {phone}) objects. */
static void
phones_from(struct json_object *phones, struct json_object *src)
{
	struct json_object	*v;
	size_t			 i, n;

	n = src != NULL ? json_object_array_length(src) : 0;
	for (i = 0; i < n && i < LIST_MAX; i++) {
		v = json_object_array_get_idx(src, i);
		if (json_object_is_type(v, json_type_string))
			phone_add(phones, json_object_get_string(v));
		else if (json_object_is_type(v, json_type_object))
			phone_add(phones, str_any(v, (const char *const[]){ "number",
			    "phone", "value", NULL }, STR_MAX));
	}
}

/* Addresses: objects, of which scalar members are kept. */
static struct json_object *
addresses_from(struct json_object *src)
{
	struct json_object	*out = json_object_new_array(), *a, *m;
	size_t			 i, n;

	n = src != NULL ? json_object_array_length(src) : 0;
	for (i = 0; i < n && i < LIST_MAX; i++) {
		a = json_object_array_get_idx(src, i);
		if (!json_object_is_type(a, json_type_object))
			continue;
		m = json_object_new_object();
		json_object_object_foreach(a, k, v) {
			if (json_object_is_type(v, json_type_string) &&
			    strlen(json_object_get_string(v)) <= STR_MAX)
				nf_json_add_str(m, k, json_object_get_string(v));
			else if (json_object_is_type(v, json_type_int) ||
			    json_object_is_type(v, json_type_boolean))
				nf_json_add(m, k, json_object_get(v));  /* shared scalar */
		}
		json_object_array_add(out, m);
	}
	return out;
}

static struct json_object *
item_from(struct json_object *src)
{
	struct json_object	*it = json_object_new_object(), *v;

	add_str_or_null(it, "sku", str_any(src, (const char *const[]){ "sku", "id", NULL },
	    STR_MAX));
	add_str_or_null(it, "name", str_any(src, (const char *const[]){ "name", "title",
	    NULL }, STR_MAX));
	if ((json_object_object_get_ex(src, "qty", &v) ||
	    json_object_object_get_ex(src, "quantity", &v)) &&
	    json_object_is_type(v, json_type_int))
		nf_json_add_int(it, "qty", json_object_get_int64(v));
	else
		nf_json_add(it, "qty", NULL);
	nf_json_add(it, "price", num_of(src, "price"));
	return it;
}

struct json_object *
nf_crm_map_order(struct json_object *src)
{
	struct json_object	*o, *id, *items, *arr;
	size_t			 i, n;

	if (src == NULL || !json_object_is_type(src, json_type_object) ||
	    (id = id_any(src, (const char *const[]){ "orderId", "order_id", "id",
	    "number", NULL })) == NULL)
		return NULL;
	o = json_object_new_object();
	nf_json_add(o, "orderId", id);
	nf_json_add(o, "customerId", id_any(src, (const char *const[]){ "customerId",
	    "customer_id", "externalId", "contactId", NULL }));
	add_str_or_null(o, "status", str_of(src, "status", STR_MAX));
	nf_json_add(o, "total", num_of(src, "total"));
	add_str_or_null(o, "currency", str_of(src, "currency", 16));
	arr = json_object_new_array();
	items = arr_of(src, "items");
	n = items != NULL ? json_object_array_length(items) : 0;
	for (i = 0; i < n && i < LIST_MAX; i++)
		if (json_object_is_type(json_object_array_get_idx(items, i), json_type_object))
			json_object_array_add(arr, item_from(json_object_array_get_idx(items, i)));
	nf_json_add(o, "items", arr);
	return o;
}

static struct json_object *
orders_from(struct json_object *src)
{
	struct json_object	*out = json_object_new_array(), *o;
	size_t			 i, n;

	n = src != NULL ? json_object_array_length(src) : 0;
	for (i = 0; i < n && i < LIST_MAX; i++)
		if ((o = nf_crm_map_order(json_object_array_get_idx(src, i))) != NULL)
			json_object_array_add(out, o);
	return out;
}

/* profile{}: the nested profile wins, then flat fields, then name{} and
 * contact{}; profile.phone is the first usable number found. */
static struct json_object *
profile_from(struct json_object *c, struct json_object *phones)
{
	static const char *const first[] = { "firstName", "first_name", NULL };
	static const char *const last[] = { "lastName", "last_name", NULL };
	struct json_object	*prof = obj_of(c, "profile"), *name = obj_of(c, "name");
	struct json_object	*contact = obj_of(c, "contact"), *p;
	const char		*s, *phone;

	p = json_object_new_object();
	if ((s = str_any(prof, first, STR_MAX)) == NULL &&
	    (s = str_any(c, first, STR_MAX)) == NULL)
		s = str_any(name, (const char *const[]){ "first", "firstName", NULL }, STR_MAX);
	add_str_or_null(p, "firstName", s);
	if ((s = str_any(prof, last, STR_MAX)) == NULL &&
	    (s = str_any(c, last, STR_MAX)) == NULL)
		s = str_any(name, (const char *const[]){ "last", "lastName", NULL }, STR_MAX);
	add_str_or_null(p, "lastName", s);
	if ((s = str_of(prof, "email", STR_MAX)) == NULL &&
	    (s = str_of(c, "email", STR_MAX)) == NULL)
		s = str_of(contact, "email", STR_MAX);
	add_str_or_null(p, "email", s);
	if ((phone = phone_add(phones, str_of(prof, "phone", STR_MAX))) == NULL &&
	    (phone = phone_add(phones, str_of(c, "phone", STR_MAX))) == NULL)
		phone = phone_add(phones, str_of(contact, "phone", STR_MAX));
	phones_from(phones, arr_of(prof, "phones"));
	phones_from(phones, arr_of(c, "phones"));
	if (phone == NULL && json_object_array_length(phones) > 0)
		phone = json_object_get_string(json_object_array_get_idx(phones, 0));
	add_str_or_null(p, "phone", phone);
	return p;
}

struct json_object *
nf_crm_map_customer(struct json_object *c)
{
	struct json_object	*out, *id, *phones, *prof;
	const char		*s;

	if (c == NULL || !json_object_is_type(c, json_type_object) ||
	    (id = id_any(c, (const char *const[]){ "externalId", "external_id", "id",
	    NULL })) == NULL)
		return NULL;
	prof = obj_of(c, "profile");
	out = json_object_new_object();
	nf_json_add(out, "externalId", id);
	phones = json_object_new_array();
	nf_json_add(out, "profile", profile_from(c, phones));
	nf_json_add(out, "phones", phones);
	if ((s = str_of(c, "language", 16)) == NULL)
		s = str_of(prof, "language", 16);
	add_str_or_null(out, "language", s);
	if ((s = str_of(c, "tier", STR_MAX)) == NULL)
		s = str_of(prof, "tier", STR_MAX);
	add_str_or_null(out, "tier", s);
	if ((s = str_of(c, "notes", NOTES_MAX)) == NULL)
		s = str_of(prof, "notes", NOTES_MAX);
	add_str_or_null(out, "notes", s);
	nf_json_add(out, "addresses", addresses_from(arr_of(c, "addresses")));
	nf_json_add(out, "orders", orders_from(arr_of(c, "orders")));
	return out;
}

/* --- HTTP ------------------------------------------------------------- */

/* Where a call goes: what it needs from the configuration and tenant. */
struct call {
	const struct nf_config	*cfg;
	const struct nf_tenant	*t;
	const char		*what;   /* for log lines: "phone", "ticket", ... */
};

/* One exchange with the Bearer key; the header is wiped afterwards. */
static enum nf_err
exchange(const struct call *c, const char *method, const char *url, const char *body,
    struct nf_http_resp *resp, struct nf_error *e)
{
	const char		*headers[5];
	char			*auth = NULL;
	struct nf_http_req	 req;
	enum nf_err		 rc;
	size_t			 n = 0;

	if (c->t->crm.api_key != NULL) {
		auth = nf_xasprintf("Authorization: Bearer %s", c->t->crm.api_key);
		headers[n++] = auth;
	}
	headers[n++] = "Accept: application/json";
	headers[n++] = "User-Agent: nonflex";
	if (body != NULL)
		headers[n++] = "Content-Type: application/json";
	headers[n] = NULL;
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.url = url;
	req.headers = headers;
	req.body = body;
	req.body_len = body != NULL ? strlen(body) : 0;
	req.connect_timeout_ms = c->cfg->crm_connect_timeout_ms;
	req.total_timeout_ms = c->cfg->crm_timeout_ms;
	req.max_response = CRM_MAX_RESPONSE;
	req.allow_private = c->cfg->crm_allow_private != 0;
	rc = nf_http_do(&req, resp, e);
	if (auth != NULL) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	return rc;
}

/* A transport failure as the caller sees it: the CRM failed (fall back,
 * or retry the job).  http.h's detail is logged, not returned. */
static enum nf_err
transport_failed(const struct call *c, enum nf_err rc, const struct nf_http_resp *resp,
    struct nf_error *e)
{
	nf_warn("crm %s: %s (%s)", c->what, e->code, e->message);
	if (rc == NF_EUNAVAIL)
		return nf_error_set(e, NF_EUNAVAIL, "crm_unavailable", NULL,
		    "the CRM cannot be reached");
	if (resp->timed_out)
		return nf_error_set(e, NF_EUPSTREAM, "crm_timeout", NULL,
		    "the CRM did not answer in time");
	return nf_error_set(e, NF_EUPSTREAM, "crm_error", NULL, "the CRM call failed");
}

static enum nf_err
redirect_refused(const struct call *c, const struct nf_http_resp *resp,
    struct nf_error *e)
{
	nf_warn("crm %s: redirect %d to %s refused (never followed)", c->what,
	    resp->status, resp->location[0] != '\0' ? resp->location : "(none)");
	return nf_error_set(e, NF_EUPSTREAM, "crm_redirect_refused", NULL,
	    "the CRM answered a redirect");
}

/* Parse a 2xx body: an object (or the first object of an array, as some
 * CRMs answer searches); anything else is crm_bad_response. */
static enum nf_err
parse_body(const struct call *c, const struct nf_http_resp *resp,
    struct json_object **out, struct nf_error *e)
{
	struct json_object	*root = NULL, *first;
	struct nf_error		 je;

	*out = NULL;
	if (resp->body == NULL ||
	    nf_json_parse(resp->body, resp->body_len, &root, &je) != NF_OK) {
		nf_warn("crm %s: the answer is not valid JSON", c->what);
		return nf_error_set(e, NF_EUPSTREAM, "crm_bad_response", NULL,
		    "the CRM answered something unreadable");
	}
	if (json_object_is_type(root, json_type_array) && json_object_array_length(root) > 0 &&
	    json_object_is_type((first = json_object_array_get_idx(root, 0)),
	    json_type_object)) {
		*out = json_object_get(first);   /* outlives root */
		json_object_put(root);
		return NF_OK;
	}
	if (!json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		nf_warn("crm %s: the answer is not a JSON object", c->what);
		return nf_error_set(e, NF_EUPSTREAM, "crm_bad_response", NULL,
		    "the CRM answered something unreadable");
	}
	*out = root;
	return NF_OK;
}

/* GET url, once more after a 5xx or a timeout; the JSON object in *out. */
static enum nf_err
get_json(const struct call *c, const char *url, const char *notfound,
    struct json_object **out, struct nf_error *e)
{
	struct nf_http_resp	 resp;
	enum nf_err		 rc;
	int			 attempt;

	*out = NULL;
	for (attempt = 0;; attempt++) {
		memset(&resp, 0, sizeof(resp));
		rc = exchange(c, "GET", url, NULL, &resp, e);
		if (attempt == 0 && ((rc == NF_OK && resp.status >= 500) ||
		    (rc != NF_OK && resp.timed_out))) {
			nf_info("crm %s: %s, trying once more", c->what,
			    rc == NF_OK ? "server error" : "timeout");
			nf_http_resp_cleanup(&resp);
			continue;
		}
		break;
	}
	if (rc != NF_OK)
		rc = transport_failed(c, rc, &resp, e);
	else if (resp.status >= 300 && resp.status < 400)
		rc = redirect_refused(c, &resp, e);
	else if (resp.status == 404)
		rc = nf_error_set(e, NF_ENOTFOUND, notfound, NULL, "not found in the CRM");
	else if (resp.status < 200 || resp.status >= 300) {
		nf_warn("crm %s: status %d", c->what, resp.status);
		rc = nf_error_set(e, NF_EUPSTREAM, resp.status == 401 || resp.status == 403 ?
		    "crm_unauthorized" : "crm_error", NULL, "the CRM refused the request");
	} else
		rc = parse_body(c, &resp, out, e);
	nf_http_resp_cleanup(&resp);
	return rc;
}

/* --- cache ------------------------------------------------------------ */

static int64_t
cache_ttl(const struct nf_config *cfg, const struct nf_tenant *t)
{
	return t->crm.cache_ttl_s >= 0 ? t->crm.cache_ttl_s : cfg->crm_cache_ttl_s;
}

/* A cached answer, or NULL (miss, Redis down, unreadable entry). */
static struct json_object *
cache_get(struct nf_kv *kv, const char *key)
{
	struct redisReply	*rep = NULL;
	struct json_object	*o = NULL;
	struct nf_error		 e;

	if (kv == NULL || key == NULL)
		return NULL;
	if (nf_kv_command(kv, &rep, &e, "GET %s", key) == NF_OK &&
	    rep->type == REDIS_REPLY_STRING &&
	    nf_json_parse(rep->str, rep->len, &o, &e) == NF_OK &&
	    !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	if (rep != NULL)
		freeReplyObject(rep);
	return o;
}

static void
cache_put(struct nf_kv *kv, const char *key, int64_t ttl, struct json_object *o)
{
	struct nf_error	 e;
	char		 sttl[24];
	size_t		 len;
	const char	*s;

	if (kv == NULL || key == NULL || ttl <= 0)
		return;
	snprintf(sttl, sizeof(sttl), "%lld", (long long)ttl);
	s = nf_json_str(o, &len);
	if (nf_kv_command(kv, NULL, &e, "SET %s %b EX %s", key, s, len, sttl) != NF_OK)
		nf_debug("crm cache: not stored (%s)", e.code);
}

/* --- lookups ---------------------------------------------------------- */

static void
crm_breaker(const struct nf_config *cfg, struct nf_breaker *br)
{
	br->name = "crm";
	br->failures = (int)cfg->crm_breaker_failures;
	br->window_s = (int)cfg->crm_breaker_window_s;
	br->open_s = (int)cfg->crm_breaker_open_s;
}

enum nf_err
nf_crm_get(struct nf_app *app, const struct nf_tenant *t, enum nf_crm_kind kind,
    const char *key, struct json_object **out, int *from_cache, struct nf_error *e)
{
	char			 e164[NF_PHONE_MAX + 1];
	struct call		 c = { &app->cfg, t, NULL };
	struct json_object	*raw = NULL;
	struct nf_kv		*kv = NULL;
	char			*ckey = NULL, *url = NULL;
	struct nf_breaker	 br;
	int64_t			 ttl;
	enum nf_err		 rc;

	*out = NULL;
	*from_cache = 0;
	if (!nf_crm_configured(t))
		return nf_error_set(e, NF_EINVAL, "crm_not_configured", NULL,
		    "the tenant has no CRM");
	if (!kind_ok(kind) || !key_ok(key))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "key", "invalid lookup key");
	if (kind == NF_CRM_BY_PHONE) {
		if ((rc = nf_phone_e164(key, app->cfg.phone_default_cc, e164, e)) != NF_OK)
			return rc;
		key = e164;
	}
	c.what = kinds[kind].cache;
	kv = nf_app_kv(app);
	if ((ttl = cache_ttl(&app->cfg, t)) > 0) {
		ckey = nf_crm_cache_key(t->id, kind, key);
		if ((*out = cache_get(kv, ckey)) != NULL) {
			*from_cache = 1;
			rc = NF_OK;
			goto out;
		}
	}
	if ((url = nf_crm_url(t->crm.base_url, kind, key)) == NULL) {
		rc = nf_error_set(e, NF_EINVAL, "invalid_field", "key", "invalid lookup key");
		goto out;
	}
	/* A CRM that keeps failing is skipped for a while: the caller answers
	 * from the local store at once instead of holding a worker. */
	crm_breaker(&app->cfg, &br);
	if (nf_breaker_is_open(kv, t->id, &br)) {
		rc = nf_error_set(e, NF_EUNAVAIL, "crm_circuit_open", NULL,
		    "the CRM keeps failing; it is skipped for now");
		goto out;
	}
	rc = get_json(&c, url, kinds[kind].notfound, &raw, e);
	nf_breaker_record(kv, t->id, &br, rc == NF_OK || rc == NF_ENOTFOUND);
	if (rc != NF_OK)
		goto out;
	*out = kind == NF_CRM_ORDER ? nf_crm_map_order(raw) : nf_crm_map_customer(raw);
	if (*out == NULL) {
		nf_warn("crm %s: the answer has no usable id", c.what);
		rc = nf_error_set(e, NF_EUPSTREAM, "crm_bad_response", NULL,
		    "the CRM answered something unreadable");
		goto out;
	}
	cache_put(kv, ckey, ttl, *out);
out:
	json_object_put(raw);
	free(ckey);
	free(url);
	return rc;
}

/* --- tickets ---------------------------------------------------------- */

/* What the CRM is sent: the ticket's own fields, never tenant or crm{}. */
static struct json_object *
ticket_body(struct json_object *ticket)
{
	static const char *const keep[] = { "ticketId", "customerId", "subject",
	    "description", "status", "priority", "createdAt", NULL };
	struct json_object	*b = json_object_new_object(), *v;
	size_t			 i;

	for (i = 0; keep[i] != NULL; i++)
		if (json_object_object_get_ex(ticket, keep[i], &v) &&
		    json_object_is_type(v, json_type_string))
			nf_json_add_str(b, keep[i], json_object_get_string(v));
	return b;
}

/* The CRM's id for the ticket in a 2xx answer, or NULL. */
static char *
ticket_id_of(const struct call *c, const struct nf_http_resp *resp)
{
	struct json_object	*o = NULL, *id;
	struct nf_error		 e;
	char			*s = NULL;

	if (resp->body == NULL || resp->body_len == 0 || parse_body(c, resp, &o, &e) != NF_OK)
		return NULL;
	if ((id = id_any(o, (const char *const[]){ "id", "ticketId", "_id", NULL })) != NULL) {
		s = nf_xstrdup(json_object_get_string(id));
		json_object_put(id);
	}
	json_object_put(o);
	return s;
}

enum nf_err
nf_crm_ticket_push(const struct nf_config *cfg, const struct nf_tenant *t,
    struct json_object *ticket, char **crm_id, struct nf_error *e)
{
	struct call		 c = { cfg, t, "ticket" };
	struct nf_http_resp	 resp;
	struct json_object	*body = NULL;
	char			*url = NULL;
	enum nf_err		 rc;

	if (crm_id != NULL)
		*crm_id = NULL;
	memset(&resp, 0, sizeof(resp));
	if (!nf_crm_configured(t))
		return nf_error_set(e, NF_EINVAL, "crm_not_configured", NULL,
		    "the tenant has no CRM");
	if (ticket == NULL || !json_object_is_type(ticket, json_type_object))
		return nf_error_set(e, NF_EINVAL, "invalid_ticket", NULL, "no ticket to send");
	body = ticket_body(ticket);
	url = nf_xasprintf("%.*s/tickets", (int)base_len(t->crm.base_url), t->crm.base_url);
	rc = exchange(&c, "POST", url, nf_json_str(body, NULL), &resp, e);
	if (rc != NF_OK)
		rc = transport_failed(&c, rc, &resp, e);
	else if (resp.status >= 300 && resp.status < 400)
		rc = redirect_refused(&c, &resp, e);
	else if (resp.status >= 400 && resp.status < 500 && resp.status != 408 &&
	    resp.status != 429) {
		nf_warn("crm ticket: rejected with status %d", resp.status);
		rc = nf_error_set(e, NF_EINVAL, "crm_rejected", NULL,
		    "the CRM rejected the ticket (status %d)", resp.status);
	} else if (resp.status < 200 || resp.status >= 300) {
		nf_warn("crm ticket: status %d", resp.status);
		rc = nf_error_set(e, NF_EUPSTREAM, "crm_error", NULL,
		    "the CRM failed (status %d)", resp.status);
	} else if (crm_id != NULL)
		*crm_id = ticket_id_of(&c, &resp);
	nf_http_resp_cleanup(&resp);
	json_object_put(body);
	free(url);
	return rc;
}
