/*
 * customers.c - the tenant's customers, orders and tickets (customers.h):
 * phone numbers in E.164, validation of every write, the local store, the
 * CRM-first lookups and the demo seed.
 *
 * DESIGN: the store is tenant-scoped by construction (store.h), so every
 * query here names only the natural keys.  Phones stay an array of E.164
 * strings: the store's equality on an array field matches any element
 * (MongoDB's rule, which store_sqlite.c implements with json_each), so
 * {"phones": "+1555..."} finds a customer by any of its numbers without a
 * second "phoneKeys" copy.  The store has no regular expressions, so the
 * search (?q=) compares whole values: a `searchKeys` array written with
 * each customer holds the lower-cased first name, last name, full name and
 * e-mail, and the raw profile fields are matched too so that documents
 * imported from the original (without searchKeys) are found by exact
 * spelling.  A lookup asks the CRM (crm.h) first when the tenant has one
 * and falls back to the local store when the CRM does not know the key or
 * fails; the failure is logged by its error code only, never the key.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "app.h"
#include "crm.h"
#include "customers.h"
#include "jobs.h"
#include "json.h"
#include "log.h"
#include "nonflex.h"
#include "store.h"
#include "tenant.h"
#include "valid.h"

#define CUSTOMERS	"customers"
#define ORDERS		"orders"
#define TICKETS		"tickets"
#define ID_MAX		64      /* externalId, orderId, ticketId */
#define NAME_MAX	100
#define NOTES_MAX	2000
#define PHONES_MAX	10
#define ADDRESSES_MAX	10
#define ADDR_FIELD_MAX	200
#define ITEMS_MAX	100
#define QTY_MAX		100000
#define MONEY_MAX	1e12
#define SUBJECT_MAX	200
#define DESCRIPTION_MAX	5000
#define LOOKUP_ORDERS	50      /* orders attached to a local lookup */
#define Q_MAX		200

static const char *const ticket_statuses[] = { "open", "pending", "solved", "closed",
	NULL };
static const char *const ticket_priorities[] = { "low", "normal", "high", "urgent",
	NULL };
static const char *const order_statuses[] = { "pending", "processing", "shipped",
	"delivered", "cancelled", "refunded", NULL };
/* Fields no client body may set (mass assignment, battery 43). */
static const char *const immutable[] = { "_id", "id", "tenant", "createdAt",
	"updatedAt", "searchKeys", NULL };

static const struct nf_index indexes[] = {
	{ "customers_external", { "externalId", NULL }, { 1 }, 1 },
	{ "customers_phone", { "profile.phone", NULL }, { 1 }, 0 },
	{ "customers_phones", { "phones", NULL }, { 1 }, 0 },
	{ "customers_search", { "searchKeys", NULL }, { 1 }, 0 },
	{ "orders_order", { "orderId", NULL }, { 1 }, 1 },
	{ "orders_customer", { "customerId", "createdAt", NULL }, { 1, -1 }, 0 },
	{ "tickets_ticket", { "ticketId", NULL }, { 1 }, 1 },
	{ "tickets_customer", { "customerId", "createdAt", NULL }, { 1, -1 }, 0 },
};
static const char *const index_colls[] = { CUSTOMERS, CUSTOMERS, CUSTOMERS, CUSTOMERS,
	ORDERS, ORDERS, TICKETS, TICKETS };

/* The store handle this process ensured the indexes on. */
static struct nf_store	*indexed_store;

/* ---- phone numbers ------------------------------------------------------ */

static enum nf_err
bad_phone(struct nf_error *e)
{
	return nf_error_set(e, NF_EINVAL, "invalid_phone", "phone",
	    "phone must be a phone number in international (E.164) form");
}

enum nf_err
nf_phone_e164(const char *in, const char *default_cc, char out[NF_PHONE_MAX + 1],
    struct nf_error *e)
{
	char		 d[NF_PHONE_MAX + 1];
	const char	*p, *digits = d, *cc = default_cc;
	size_t		 n = 0, cclen;
	int		 intl = 0;

	out[0] = '\0';
	if (in == NULL)
		return bad_phone(e);
	for (p = in; *p != '\0'; p++) {
		if (*p >= '0' && *p <= '9') {
			if (n >= NF_PHONE_MAX)
				return bad_phone(e);
			d[n++] = *p;
		} else if (*p == '+' && n == 0 && !intl)
			intl = 1;
		else if (strchr(" -.()", *p) == NULL)
			return bad_phone(e);
	}
	d[n] = '\0';
	if (!intl && n > 2 && d[0] == '0' && d[1] == '0') {
		intl = 1;                       /* "00" international prefix */
		digits += 2;
		n -= 2;
	}
	if (cc == NULL || !nf_valid_int(cc, 1, 999, NULL) || cc[0] == '0')
		cc = "1";
	cclen = strlen(cc);
	/* National: 11+ digits already starting with the country code are
	 * taken as international, anything else gets the code in front. */
	if (!intl && !(n >= 11 && n <= 15 && strncmp(digits, cc, cclen) == 0)) {
		if (n == 0 || n + cclen > 15)
			return bad_phone(e);
		snprintf(out, NF_PHONE_MAX + 1, "+%s%s", cc, digits);
	} else if (n > 15)
		return bad_phone(e);            /* never truncated into validity */
	else
		snprintf(out, NF_PHONE_MAX + 1, "+%s", digits);
	if (!nf_valid_e164(out)) {
		out[0] = '\0';
		return bad_phone(e);
	}
	return NF_OK;
}

const char *
nf_customer_source_name(enum nf_customer_source s)
{
	static const char *const names[] = { "crm", "cache", "local" };

	return (size_t)s < NF_ARRAY_LEN(names) ? names[s] : "local";
}

/* ---- indexes -------------------------------------------------------------- */

enum nf_err
nf_customers_migrate(struct nf_store *st, struct nf_error *e)
{
	_Static_assert(NF_ARRAY_LEN(index_colls) == NF_ARRAY_LEN(indexes), "one per index");
	return nf_store_ensure_indexes(st, index_colls, indexes, NF_ARRAY_LEN(indexes),
	    &indexed_store, e);
}

enum nf_err
nf_customers_store(struct nf_app *app, struct nf_store **st, struct nf_error *e)
{
	enum nf_err	 rc;

	if ((rc = nf_app_store(app, st, e)) != NF_OK)
		return rc;
	return nf_customers_migrate(*st, e);
}

/* ---- small helpers ------------------------------------------------------ */

/* [A-Za-z0-9._-]{1,64}: externalId, orderId, ticketId. */
static int
valid_key(const char *s)
{
	size_t	 n = 0;

	if (s == NULL)
		return 0;
	for (; s[n] != '\0'; n++)
		if (n >= ID_MAX || !(isalnum((unsigned char)s[n]) ||
		    strchr("._-", s[n]) != NULL))
			return 0;
	return n > 0;
}

/* Rewrite e->field as "<prefix>.<field>" (or "<prefix>" when it had none),
 * so nested errors name their path. */
static enum nf_err
nest(enum nf_err rc, struct nf_error *e, const char *prefix)
{
	char	*f;
	size_t	 n;

	if (rc == NF_OK || e == NULL)
		return rc;
	f = e->field[0] != '\0' ? nf_xasprintf("%s.%s", prefix, e->field) :
	    nf_xstrdup(prefix);
	if ((n = strlen(f)) >= sizeof(e->field))
		n = sizeof(e->field) - 1;       /* paths here are short */
	memcpy(e->field, f, n);
	e->field[n] = '\0';
	free(f);
	return rc;
}

/* 400 for a body that is not an object, sets an immutable field, or holds
 * one not in allowed. */
static enum nf_err
check_body(struct json_object *body, const char *const *allowed, struct nf_error *e)
{
	if (!json_object_is_type(body, json_type_object))
		return nf_error_set(e, NF_EINVAL, "invalid_json", NULL,
		    "the body must be a JSON object");
	json_object_object_foreach(body, k, v) {
		(void)v;
		if (nf_valid_enum(k, immutable) >= 0)
			return nf_error_set(e, NF_EINVAL, "immutable_field", k,
			    "%s cannot be set", k);
	}
	return nf_json_reject_unknown(body, allowed, e);
}

/* A finite number in [0, MONEY_MAX]; missing is an error when required. */
static enum nf_err
get_amount(struct json_object *obj, const char *field, int required, double *out,
    struct nf_error *e)
{
	struct json_object	*v = NULL;
	enum nf_err		 rc;
	double			 d;

	if ((rc = nf_json_get_value(obj, field, -1, required, &v, e)) != NF_OK || v == NULL)
		return rc;
	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
		return nf_error_set(e, NF_EINVAL, "invalid_field", field,
		    "%s must be a number", field);
	d = json_object_get_double(v);
	if (!isfinite(d) || d < 0 || d > MONEY_MAX)
		return nf_error_set(e, NF_EINVAL, "invalid_field", field,
		    "%s must be a number from 0 to %.0f", field, MONEY_MAX);
	*out = d;
	return NF_OK;
}

static void
lower_add(struct json_object *arr, const char *s)
{
	char	*l;
	size_t	 i;

	if (s == NULL || *s == '\0')
		return;
	l = nf_xstrdup(s);
	for (i = 0; l[i] != '\0'; i++)
		l[i] = (char)tolower((unsigned char)l[i]);
	json_object_array_add(arr, json_object_new_string(l));
	free(l);
}

/* The searchKeys of a customer document (see DESIGN above). */
static struct json_object *
search_keys(struct json_object *doc)
{
	struct json_object	*keys = json_object_new_array(), *profile = NULL;
	const char		*first, *last;
	char			*full;

	json_object_object_get_ex(doc, "profile", &profile);
	first = nf_json_field_str(profile, "firstName");
	last = nf_json_field_str(profile, "lastName");
	lower_add(keys, first);
	lower_add(keys, last);
	if (first != NULL && last != NULL && *last != '\0') {
		full = nf_xasprintf("%s %s", first, last);
		lower_add(keys, full);
		free(full);
	}
	lower_add(keys, nf_json_field_str(profile, "email"));
	return keys;
}

/* ---- customer validation ------------------------------------------------ */

/* A bounded string: 1..max bytes of UTF-8 without control characters. */
static enum nf_err
get_text(struct json_object *obj, const char *field, size_t min, size_t max,
    int required, const char **out, struct nf_error *e)
{
	enum nf_err	 rc;
	const char	*p;

	if ((rc = nf_json_get_string(obj, field, min, max, required, out, e)) != NF_OK ||
	    *out == NULL)
		return rc;
	for (p = *out; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t')
			return nf_error_set(e, NF_EINVAL, "invalid_field", field,
			    "%s must not contain control characters", field);
	return NF_OK;
}

/* profile {firstName, lastName, email, phone} merged over base (may be
 * NULL) into *out (new).  firstName is required in the result. */
static enum nf_err
get_profile(struct json_object *body, struct json_object *base, const char *cc,
    struct json_object **out, struct nf_error *e)
{
	static const char *const allowed[] = { "firstName", "lastName", "email", "phone",
		NULL };
	struct json_object	*p = NULL, *res;
	const char		*first = NULL, *last = NULL, *email = NULL, *phone = NULL;
	char			 e164[NF_PHONE_MAX + 1];
	enum nf_err		 rc;

	*out = NULL;
	if ((rc = nf_json_get_value(body, "profile", json_type_object, base == NULL,
	    &p, e)) != NF_OK || p == NULL)
		return rc;                      /* an update without profile */
	if ((rc = nf_json_reject_unknown(p, allowed, e)) != NF_OK ||
	    (rc = get_text(p, "firstName", 1, NAME_MAX, base == NULL, &first, e)) != NF_OK ||
	    (rc = get_text(p, "lastName", 0, NAME_MAX, 0, &last, e)) != NF_OK ||
	    (rc = nf_json_get_string(p, "email", 3, 254, 0, &email, e)) != NF_OK ||
	    (rc = nf_json_get_string(p, "phone", 1, 64, 0, &phone, e)) != NF_OK)
		return nest(rc, e, "profile");
	if (email != NULL && !nf_valid_email(email))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "profile.email",
		    "profile.email must be an e-mail address");
	if (phone != NULL && nf_phone_e164(phone, cc, e164, e) != NF_OK)
		return nf_error_set(e, NF_EINVAL, "invalid_phone", "profile.phone",
		    "profile.phone must be a phone number in international (E.164) form");
	res = json_object_new_object();
	if (base != NULL) {
		json_object_object_foreach(base, k, v)
			nf_json_add(res, k, json_object_get(v));    /* shared with base */
	}
	if (first != NULL)
		nf_json_add_str(res, "firstName", first);
	if (last != NULL)
		nf_json_add_str(res, "lastName", last);
	if (email != NULL)
		nf_json_add_str(res, "email", email);
	if (phone != NULL)
		nf_json_add_str(res, "phone", e164);
	*out = res;
	return NF_OK;
}

/* phones: up to PHONES_MAX numbers, normalized and deduplicated. */
static enum nf_err
get_phones(struct json_object *body, const char *cc, struct json_object **out,
    struct nf_error *e)
{
	struct json_object	*arr = NULL, *v;
	char			 e164[NF_PHONE_MAX + 1], f[32];
	size_t			 i, j, n;
	enum nf_err		 rc;

	*out = NULL;
	if ((rc = nf_json_get_value(body, "phones", json_type_array, 0, &arr, e)) != NF_OK ||
	    arr == NULL)
		return rc;
	if ((n = json_object_array_length(arr)) > PHONES_MAX)
		return nf_error_set(e, NF_EINVAL, "invalid_field", "phones",
		    "phones holds at most %d numbers", PHONES_MAX);
	*out = json_object_new_array();
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(v, json_type_string) ||
		    nf_phone_e164(json_object_get_string(v), cc, e164, e) != NF_OK) {
			json_object_put(*out);
			*out = NULL;
			snprintf(f, sizeof(f), "phones[%zu]", i);
			return nf_error_set(e, NF_EINVAL, "invalid_phone", f,
			    "%s must be a phone number in international (E.164) form", f);
		}
		for (j = 0; j < json_object_array_length(*out); j++)
			if (strcmp(e164, json_object_get_string(
			    json_object_array_get_idx(*out, j))) == 0)
				break;
		if (j == json_object_array_length(*out))
			json_object_array_add(*out, json_object_new_string(e164));
	}
	return NF_OK;
}

/* One address: an object of bounded strings from a fixed list. */
static enum nf_err
check_address(struct json_object *a, size_t i, struct nf_error *e)
{
	static const char *const allowed[] = { "type", "street", "line2", "city", "state",
		"zip", "country", NULL };
	char		 f[32];
	const char	*s;
	size_t		 k;
	enum nf_err	 rc = NF_OK;

	snprintf(f, sizeof(f), "addresses[%zu]", i);
	if (!json_object_is_type(a, json_type_object))
		return nf_error_set(e, NF_EINVAL, "invalid_field", f, "%s must be an object", f);
	if ((rc = nf_json_reject_unknown(a, allowed, e)) != NF_OK)
		return nest(rc, e, f);
	for (k = 0; allowed[k] != NULL; k++)
		if ((rc = get_text(a, allowed[k], 0, ADDR_FIELD_MAX, 0, &s, e)) != NF_OK)
			return nest(rc, e, f);
	return NF_OK;
}

static enum nf_err
get_addresses(struct json_object *body, struct json_object **out, struct nf_error *e)
{
	struct json_object	*arr = NULL;
	size_t			 i, n;
	enum nf_err		 rc;

	*out = NULL;
	if ((rc = nf_json_get_value(body, "addresses", json_type_array, 0, &arr, e)) != NF_OK ||
	    arr == NULL)
		return rc;
	if ((n = json_object_array_length(arr)) > ADDRESSES_MAX)
		return nf_error_set(e, NF_EINVAL, "invalid_field", "addresses",
		    "addresses holds at most %d entries", ADDRESSES_MAX);
	for (i = 0; i < n; i++)
		if ((rc = check_address(json_object_array_get_idx(arr, i), i, e)) != NF_OK)
			return rc;
	*out = json_object_get(arr);     /* validated: kept as sent */
	return NF_OK;
}

/*
 * The fields create and update share, validated into set; base is the
 * stored document for an update (NULL on create).  Nothing is written
 * until every field passed.
 */
static enum nf_err
customer_fields(struct json_object *body, struct json_object *base, const char *cc,
    struct json_object *set, struct nf_error *e)
{
	struct json_object	*profile = NULL, *phones = NULL, *addrs = NULL, *bp = NULL;
	const char		*language = NULL, *tier = NULL, *notes = NULL;
	enum nf_err		 rc;

	if (base != NULL)
		json_object_object_get_ex(base, "profile", &bp);
	if (base != NULL && bp == NULL)
		bp = json_object_new_object();          /* imported without one */
	else
		json_object_get(bp);
	if ((rc = get_profile(body, bp, cc, &profile, e)) != NF_OK ||
	    (rc = get_phones(body, cc, &phones, e)) != NF_OK ||
	    (rc = get_addresses(body, &addrs, e)) != NF_OK ||
	    (rc = nf_json_get_string(body, "language", 2, 16, 0, &language, e)) != NF_OK ||
	    (rc = nf_json_get_string(body, "tier", 1, 32, 0, &tier, e)) != NF_OK ||
	    (rc = get_text(body, "notes", 0, NOTES_MAX, 0, &notes, e)) != NF_OK)
		goto out;
	if (language != NULL && !nf_valid_charset(language, 16, "-")) {
		rc = nf_error_set(e, NF_EINVAL, "invalid_field", "language",
		    "language must be a language tag such as en or es-MX (lower case)");
		goto out;
	}
	if (tier != NULL && !nf_valid_charset(tier, 32, "_-")) {
		rc = nf_error_set(e, NF_EINVAL, "invalid_field", "tier",
		    "tier must be 1 to 32 of a-z 0-9 _ -");
		goto out;
	}
	if (profile != NULL)
		nf_json_add(set, "profile", json_object_get(profile));
	if (phones != NULL)
		nf_json_add(set, "phones", json_object_get(phones));
	if (addrs != NULL)
		nf_json_add(set, "addresses", json_object_get(addrs));
	if (language != NULL)
		nf_json_add_str(set, "language", language);
	if (tier != NULL)
		nf_json_add_str(set, "tier", tier);
	if (notes != NULL)
		nf_json_add_str(set, "notes", notes);
out:
	json_object_put(bp);
	json_object_put(profile);
	json_object_put(phones);
	json_object_put(addrs);
	return rc;
}

static enum nf_err
not_found(struct nf_error *e, const char *what)
{
	return nf_error_set(e, NF_ENOTFOUND, what, NULL, "no such %s",
	    strcmp(what, "order_not_found") == 0 ? "order" :
	    strcmp(what, "ticket_not_found") == 0 ? "ticket" : "customer");
}

enum nf_err
nf_customers_create(struct nf_store *st, const char *tenant, const char *cc,
    struct json_object *body, struct json_object **out, struct nf_error *e)
{
	static const char *const allowed[] = { "externalId", "profile", "phones", "language",
		"tier", "notes", "addresses", NULL };
	struct json_object	*doc = NULL;
	const char		*ext = NULL;
	char			 now[25];
	enum nf_err		 rc;

	*out = NULL;
	if ((rc = check_body(body, allowed, e)) != NF_OK ||
	    (rc = nf_json_get_string(body, "externalId", 1, ID_MAX, 1, &ext, e)) != NF_OK)
		return rc;
	if (!valid_key(ext))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "externalId",
		    "externalId must be 1 to %d of A-Z a-z 0-9 . _ -", ID_MAX);
	doc = json_object_new_object();
	nf_json_add_str(doc, "externalId", ext);
	if ((rc = customer_fields(body, NULL, cc, doc, e)) != NF_OK)
		goto out;
	if (!json_object_object_get_ex(doc, "phones", NULL))
		nf_json_add(doc, "phones", json_object_new_array());
	if (!json_object_object_get_ex(doc, "addresses", NULL))
		nf_json_add(doc, "addresses", json_object_new_array());
	nf_json_add(doc, "searchKeys", search_keys(doc));
	nf_iso8601(nf_now_ms(), now);
	nf_json_add_str(doc, "createdAt", now);
	nf_json_add_str(doc, "updatedAt", now);
	rc = nf_store_insert(st, tenant, CUSTOMERS, doc, NULL, e);
	if (rc == NF_ECONFLICT)
		rc = nf_error_set(e, NF_ECONFLICT, "customer_exists", "externalId",
		    "a customer with this externalId exists");
out:
	if (rc == NF_OK)
		*out = doc;
	else
		json_object_put(doc);
	return rc;
}

static enum nf_err
load_customer(struct nf_store *st, const char *tenant, const char *id,
    struct json_object **doc, struct nf_error *e)
{
	struct json_object	*f;
	enum nf_err		 rc;

	*doc = NULL;
	if (!valid_key(id))
		return not_found(e, "customer_not_found");
	f = nf_json_pair("externalId", id);
	rc = nf_store_find_one(st, tenant, CUSTOMERS, f, NULL, doc, e);
	json_object_put(f);
	return rc == NF_ENOTFOUND ? not_found(e, "customer_not_found") : rc;
}

static struct json_object *
key_names(struct json_object *set)
{
	struct json_object	*arr = json_object_new_array();

	json_object_object_foreach(set, k, v) {
		(void)v;
		if (strcmp(k, "updatedAt") != 0 && strcmp(k, "searchKeys") != 0)
			json_object_array_add(arr, json_object_new_string(k));
	}
	return arr;
}

enum nf_err
nf_customers_update(struct nf_store *st, const char *tenant, const char *cc,
    const char *id, struct json_object *body, struct json_object **out,
    struct json_object **fields, struct nf_error *e)
{
	static const char *const allowed[] = { "profile", "phones", "language", "tier",
		"notes", "addresses", NULL };
	struct json_object	*before = NULL, *set = NULL, *upd = NULL, *f = NULL, *after;
	char			 now[25];
	enum nf_err		 rc;

	*out = NULL;
	if (fields != NULL)
		*fields = NULL;
	if ((rc = load_customer(st, tenant, id, &before, e)) != NF_OK)
		return rc;
	if (json_object_is_type(body, json_type_object) &&
	    json_object_object_get_ex(body, "externalId", NULL)) {
		rc = nf_error_set(e, NF_EINVAL, "immutable_field", "externalId",
		    "externalId cannot be changed");
		goto out;
	}
	if ((rc = check_body(body, allowed, e)) != NF_OK)
		goto out;
	if (json_object_object_length(body) == 0) {
		rc = nf_error_set(e, NF_EINVAL, "empty_update", NULL, "nothing to change");
		goto out;
	}
	set = json_object_new_object();
	if ((rc = customer_fields(body, before, cc, set, e)) != NF_OK)
		goto out;
	/* searchKeys from the merged state. */
	after = json_object_new_object();
	json_object_object_foreach(before, k, v)
		nf_json_add(after, k, json_object_get(v));
	json_object_object_foreach(set, k2, v2)
		nf_json_add(after, k2, json_object_get(v2));
	nf_json_add(set, "searchKeys", search_keys(after));
	json_object_put(after);
	nf_iso8601(nf_now_ms(), now);
	nf_json_add_str(set, "updatedAt", now);
	upd = json_object_new_object();
	nf_json_add(upd, "$set", json_object_get(set));
	f = nf_json_pair("externalId", id);
	rc = nf_store_find_and_modify(st, tenant, CUSTOMERS, f, NULL, upd, NF_STORE_NEW,
	    out, e);
	if (rc == NF_ENOTFOUND)
		rc = not_found(e, "customer_not_found");
	if (rc == NF_OK && fields != NULL)
		*fields = key_names(set);
out:
	json_object_put(f);
	json_object_put(upd);
	json_object_put(set);
	json_object_put(before);
	return rc;
}

enum nf_err
nf_customers_search_filter(const char *q, const char *cc, struct json_object **out,
    struct nf_error *e)
{
	static const char *const raw[] = { "profile.firstName", "profile.lastName",
		"profile.email", NULL };
	struct json_object	*or, *keys;
	char			 e164[NF_PHONE_MAX + 1];
	struct nf_error		 ignored;
	size_t			 i;

	*out = NULL;
	if (q == NULL || *q == '\0') {
		*out = json_object_new_object();
		return NF_OK;
	}
	if (!nf_valid_utf8(q, strlen(q), 1, Q_MAX))
		return nf_error_set(e, NF_EINVAL, "invalid_query", "q",
		    "q must be 1 to %d bytes of text", Q_MAX);
	or = json_object_new_array();
	keys = json_object_new_array();
	lower_add(keys, q);
	json_object_array_add(or, nf_json_pair("searchKeys",
	    json_object_get_string(json_object_array_get_idx(keys, 0))));
	json_object_put(keys);
	for (i = 0; raw[i] != NULL; i++)
		json_object_array_add(or, nf_json_pair(raw[i], q));
	if (nf_phone_e164(q, cc, e164, &ignored) == NF_OK) {
		json_object_array_add(or, nf_json_pair("profile.phone", e164));
		json_object_array_add(or, nf_json_pair("phones", e164));
	}
	*out = json_object_new_object();
	nf_json_add(*out, "$or", or);
	return NF_OK;
}

/* ---- views ---------------------------------------------------------------- */

static struct json_object *
view(struct json_object *doc, const char *const *fields)
{
	struct json_object	*out = json_object_new_object(), *v;
	size_t			 i;

	for (i = 0; fields[i] != NULL; i++)
		if (json_object_object_get_ex(doc, fields[i], &v))
			nf_json_add(out, fields[i], json_object_get(v));   /* shared */
	return out;
}

struct json_object *
nf_customer_view(struct json_object *doc)
{
	static const char *const f[] = { "externalId", "profile", "phones", "language",
		"tier", "notes", "addresses", "orders", "createdAt", "updatedAt", NULL };

	return view(doc, f);
}

struct json_object *
nf_order_view(struct json_object *doc)
{
	static const char *const f[] = { "orderId", "customerId", "status", "total",
		"currency", "items", "createdAt", "updatedAt", NULL };

	return view(doc, f);
}

struct json_object *
nf_ticket_view(struct json_object *doc)
{
	static const char *const f[] = { "ticketId", "customerId", "subject", "description",
		"status", "priority", "crm", "createdAt", "updatedAt", NULL };

	return view(doc, f);
}

enum nf_err
nf_customers_recent(struct nf_store *st, const char *tenant, const char *coll, const char *id,
    const char *sort_field, int64_t limit, struct json_object *(*view_of)(struct json_object *),
    struct json_object **out, struct nf_error *e)
{
	struct nf_find_opts	 o = { NULL, limit, 0 };
	struct json_object	*f = json_object_new_object(), *docs = NULL;
	size_t			 i, n;
	enum nf_err		 rc;

	*out = NULL;
	nf_json_add_str(f, "customerId", id);
	o.sort = json_object_new_object();
	nf_json_add_int(o.sort, sort_field, -1);
	rc = nf_store_find(st, tenant, coll, f, &o, &docs, e);
	json_object_put(o.sort);
	json_object_put(f);
	if (rc != NF_OK)
		return rc;
	*out = json_object_new_array();
	n = json_object_array_length(docs);
	for (i = 0; i < n; i++)
		json_object_array_add(*out, view_of(json_object_array_get_idx(docs, i)));
	json_object_put(docs);
	return NF_OK;
}

/* ---- lookups: CRM first, then the local store ----------------------------- */

/* One local customer matching filter (consumed), with its orders. */
static enum nf_err
local_customer(struct nf_store *st, const char *tenant, struct json_object *f,
    struct json_object **out, struct nf_error *e)
{
	struct json_object	*doc = NULL, *orders = NULL;
	enum nf_err		 rc;

	*out = NULL;
	rc = nf_store_find_one(st, tenant, CUSTOMERS, f, NULL, &doc, e);
	json_object_put(f);
	if (rc == NF_ENOTFOUND)
		return not_found(e, "customer_not_found");
	if (rc != NF_OK)
		return rc;
	if ((rc = nf_customers_recent(st, tenant, ORDERS, nf_json_field_str(doc, "externalId"),
	    "createdAt", LOOKUP_ORDERS, nf_order_view, &orders, e)) == NF_OK) {
		*out = nf_customer_view(doc);
		nf_json_add(*out, "orders", orders);
	}
	json_object_put(doc);
	return rc;
}

/*
 * Ask the CRM when the tenant has one: NF_OK with *out and *src when it
 * answered, NF_ENOTFOUND (e untouched) when the local store must answer.
 */
static enum nf_err
crm_first(struct nf_app *app, const struct nf_tenant *t, enum nf_crm_kind kind,
    const char *key, struct json_object **out, enum nf_customer_source *src)
{
	struct nf_error	 ce;
	int		 cached = 0;
	enum nf_err	 rc;

	*out = NULL;
	if (!nf_crm_configured(t))
		return NF_ENOTFOUND;
	nf_error_clear(&ce);
	rc = nf_crm_get(app, t, kind, key, out, &cached, &ce);
	if (rc == NF_OK && *out != NULL) {
		*src = cached ? NF_SRC_CACHE : NF_SRC_CRM;
		return NF_OK;
	}
	json_object_put(*out);
	*out = NULL;
	if (rc != NF_ENOTFOUND)
		nf_warn("crm lookup failed for tenant %s (%s); answering from the local store",
		    t->id, ce.code[0] != '\0' ? ce.code : nf_strerror(rc));
	return NF_ENOTFOUND;
}

enum nf_err
nf_customers_by_phone(struct nf_app *app, const struct nf_tenant *t, const char *phone,
    struct json_object **out, enum nf_customer_source *src, struct nf_error *e)
{
	struct json_object	*f, *or;
	struct nf_store		*st;
	char			 e164[NF_PHONE_MAX + 1];
	enum nf_err		 rc;

	*out = NULL;
	*src = NF_SRC_LOCAL;
	if ((rc = nf_phone_e164(phone, app->cfg.phone_default_cc, e164, e)) != NF_OK)
		return rc;
	if (crm_first(app, t, NF_CRM_BY_PHONE, e164, out, src) == NF_OK)
		return NF_OK;
	if ((rc = nf_customers_store(app, &st, e)) != NF_OK)
		return rc;
	or = json_object_new_array();
	json_object_array_add(or, nf_json_pair("profile.phone", e164));
	json_object_array_add(or, nf_json_pair("phones", e164));
	f = json_object_new_object();
	nf_json_add(f, "$or", or);
	return local_customer(st, t->id, f, out, e);
}

enum nf_err
nf_customers_by_id(struct nf_app *app, const struct nf_tenant *t, const char *id,
    struct json_object **out, enum nf_customer_source *src, struct nf_error *e)
{
	struct nf_store	*st;
	enum nf_err	 rc;

	*out = NULL;
	*src = NF_SRC_LOCAL;
	if (!valid_key(id))
		return not_found(e, "customer_not_found");
	if (crm_first(app, t, NF_CRM_BY_ID, id, out, src) == NF_OK)
		return NF_OK;
	if ((rc = nf_customers_store(app, &st, e)) != NF_OK)
		return rc;
	return local_customer(st, t->id, nf_json_pair("externalId", id), out, e);
}

enum nf_err
nf_orders_by_id(struct nf_app *app, const struct nf_tenant *t, const char *id,
    struct json_object **out, enum nf_customer_source *src, struct nf_error *e)
{
	struct json_object	*f, *doc = NULL;
	struct nf_store		*st;
	enum nf_err		 rc;

	*out = NULL;
	*src = NF_SRC_LOCAL;
	if (!valid_key(id))
		return not_found(e, "order_not_found");
	if (crm_first(app, t, NF_CRM_ORDER, id, out, src) == NF_OK)
		return NF_OK;
	if ((rc = nf_customers_store(app, &st, e)) != NF_OK)
		return rc;
	f = nf_json_pair("orderId", id);
	rc = nf_store_find_one(st, t->id, ORDERS, f, NULL, &doc, e);
	json_object_put(f);
	if (rc == NF_ENOTFOUND)
		return not_found(e, "order_not_found");
	if (rc == NF_OK)
		*out = nf_order_view(doc);
	json_object_put(doc);
	return rc;
}

enum nf_err
nf_customers_exists(struct nf_app *app, const struct nf_tenant *t, const char *id,
    struct nf_error *e)
{
	struct json_object	*doc = NULL;
	struct nf_store		*st;
	enum nf_customer_source	 src;
	enum nf_err		 rc;

	if ((rc = nf_customers_store(app, &st, e)) != NF_OK)
		return rc;
	rc = load_customer(st, t->id, id, &doc, e);
	json_object_put(doc);
	if (rc != NF_ENOTFOUND || !nf_crm_configured(t))
		return rc;
	doc = NULL;
	if (crm_first(app, t, NF_CRM_BY_ID, id, &doc, &src) != NF_OK)
		return not_found(e, "customer_not_found");
	json_object_put(doc);
	return NF_OK;
}

/* ---- orders --------------------------------------------------------------- */

static enum nf_err
check_item(struct json_object *it, size_t i, struct nf_error *e)
{
	static const char *const allowed[] = { "sku", "name", "qty", "price", NULL };
	const char	*s = NULL;
	char		 f[32];
	int64_t		 qty = 0;
	double		 price = 0;
	enum nf_err	 rc;

	snprintf(f, sizeof(f), "items[%zu]", i);
	if (!json_object_is_type(it, json_type_object))
		return nf_error_set(e, NF_EINVAL, "invalid_field", f, "%s must be an object", f);
	if ((rc = nf_json_reject_unknown(it, allowed, e)) != NF_OK ||
	    (rc = nf_json_get_string(it, "sku", 1, ID_MAX, 1, &s, e)) != NF_OK ||
	    (rc = get_text(it, "name", 1, SUBJECT_MAX, 1, &s, e)) != NF_OK ||
	    (rc = nf_json_get_int(it, "qty", 1, QTY_MAX, 1, &qty, e)) != NF_OK ||
	    (rc = get_amount(it, "price", 1, &price, e)) != NF_OK)
		return nest(rc, e, f);
	return NF_OK;
}

static enum nf_err
get_items(struct json_object *body, struct json_object **out, struct nf_error *e)
{
	struct json_object	*arr = NULL;
	size_t			 i, n;
	enum nf_err		 rc;

	*out = NULL;
	if ((rc = nf_json_get_value(body, "items", json_type_array, 0, &arr, e)) != NF_OK)
		return rc;
	if (arr == NULL) {
		*out = json_object_new_array();
		return NF_OK;
	}
	if ((n = json_object_array_length(arr)) > ITEMS_MAX)
		return nf_error_set(e, NF_EINVAL, "invalid_field", "items",
		    "items holds at most %d entries", ITEMS_MAX);
	for (i = 0; i < n; i++)
		if ((rc = check_item(json_object_array_get_idx(arr, i), i, e)) != NF_OK)
			return rc;
	*out = json_object_get(arr);
	return NF_OK;
}

enum nf_err
nf_orders_create(struct nf_store *st, const char *tenant, const char *customer_id,
    struct json_object *body, struct json_object **out, struct nf_error *e)
{
	static const char *const allowed[] = { "orderId", "status", "total", "currency",
		"items", NULL };
	struct json_object	*doc = NULL, *items = NULL;
	const char		*oid = NULL, *cur = "USD";
	char			 now[25];
	double			 total = 0;
	int			 status = 0;
	size_t			 i;
	enum nf_err		 rc;

	*out = NULL;
	if (json_object_is_type(body, json_type_object) &&
	    json_object_object_get_ex(body, "customerId", NULL))
		return nf_error_set(e, NF_EINVAL, "immutable_field", "customerId",
		    "customerId is the customer of the path");
	if ((rc = check_body(body, allowed, e)) != NF_OK ||
	    (rc = nf_json_get_string(body, "orderId", 1, ID_MAX, 1, &oid, e)) != NF_OK)
		return rc;
	if (!valid_key(oid))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "orderId",
		    "orderId must be 1 to %d of A-Z a-z 0-9 . _ -", ID_MAX);
	if ((rc = nf_json_get_enum(body, "status", order_statuses, 0, &status, e)) != NF_OK ||
	    (rc = get_amount(body, "total", 1, &total, e)) != NF_OK ||
	    (rc = nf_json_get_string(body, "currency", 3, 3, 0, &cur, e)) != NF_OK)
		return rc;
	for (i = 0; i < 3; i++)
		if (cur[i] < 'A' || cur[i] > 'Z')
			return nf_error_set(e, NF_EINVAL, "invalid_field", "currency",
			    "currency must be 3 upper-case letters (ISO 4217)");
	if ((rc = get_items(body, &items, e)) != NF_OK)
		return rc;
	nf_iso8601(nf_now_ms(), now);
	doc = json_object_new_object();
	nf_json_add_str(doc, "orderId", oid);
	nf_json_add_str(doc, "customerId", customer_id);
	nf_json_add_str(doc, "status", order_statuses[status]);
	nf_json_add(doc, "total", json_object_new_double(total));
	nf_json_add_str(doc, "currency", cur);
	nf_json_add(doc, "items", items);
	nf_json_add_str(doc, "createdAt", now);
	nf_json_add_str(doc, "updatedAt", now);
	rc = nf_store_insert(st, tenant, ORDERS, doc, NULL, e);
	if (rc == NF_ECONFLICT)
		rc = nf_error_set(e, NF_ECONFLICT, "order_exists", "orderId",
		    "an order with this orderId exists");
	if (rc == NF_OK)
		*out = doc;
	else
		json_object_put(doc);
	return rc;
}

/* ---- tickets -------------------------------------------------------------- */

/* Validate a ticket body and store it under ticket_id (NULL: a new
 * "TKT-<24 hex>"), with crm {status: pending} when crm is set. */
static enum nf_err
ticket_insert(struct nf_store *st, const char *tenant, const char *customer_id,
    struct json_object *body, const char *ticket_id, int crm,
    struct json_object **out, struct nf_error *e)
{
	static const char *const allowed[] = { "subject", "description", "priority",
		"status", NULL };
	struct json_object	*doc, *c;
	const char		*subject = NULL, *desc = NULL;
	char			 now[25], id[25], tid[32];
	int			 prio = 1, status = 0;
	enum nf_err		 rc;

	*out = NULL;
	if (json_object_is_type(body, json_type_object) &&
	    (json_object_object_get_ex(body, "ticketId", NULL) ||
	    json_object_object_get_ex(body, "customerId", NULL) ||
	    json_object_object_get_ex(body, "crm", NULL)))
		return nf_error_set(e, NF_EINVAL, "immutable_field",
		    json_object_object_get_ex(body, "ticketId", NULL) ? "ticketId" :
		    json_object_object_get_ex(body, "customerId", NULL) ? "customerId" : "crm",
		    "this field is set by the server");
	if ((rc = check_body(body, allowed, e)) != NF_OK ||
	    (rc = get_text(body, "subject", 1, SUBJECT_MAX, 1, &subject, e)) != NF_OK ||
	    (rc = get_text(body, "description", 0, DESCRIPTION_MAX, 0, &desc, e)) != NF_OK ||
	    (rc = nf_json_get_enum(body, "priority", ticket_priorities, 0, &prio, e)) != NF_OK ||
	    (rc = nf_json_get_enum(body, "status", ticket_statuses, 0, &status, e)) != NF_OK)
		return rc;
	if (ticket_id == NULL) {
		nf_id_new(id);
		snprintf(tid, sizeof(tid), "TKT-%s", id);
		ticket_id = tid;
	}
	nf_iso8601(nf_now_ms(), now);
	doc = json_object_new_object();
	nf_json_add_str(doc, "ticketId", ticket_id);
	nf_json_add_str(doc, "customerId", customer_id);
	nf_json_add_str(doc, "subject", subject);
	nf_json_add_str(doc, "description", desc != NULL ? desc : "");
	nf_json_add_str(doc, "status", ticket_statuses[status]);
	nf_json_add_str(doc, "priority", ticket_priorities[prio]);
	if (crm) {
		c = json_object_new_object();
		nf_json_add_str(c, "status", "pending");
		nf_json_add(doc, "crm", c);
	}
	nf_json_add_str(doc, "createdAt", now);
	nf_json_add_str(doc, "updatedAt", now);
	rc = nf_store_insert(st, tenant, TICKETS, doc, NULL, e);
	if (rc == NF_ECONFLICT)
		rc = nf_error_set(e, NF_ECONFLICT, "ticket_exists", "ticketId",
		    "a ticket with this id exists");
	if (rc == NF_OK)
		*out = doc;
	else
		json_object_put(doc);
	return rc;
}

enum nf_err
nf_tickets_create(struct nf_app *app, const struct nf_tenant *t, const char *customer_id,
    struct json_object *body, struct json_object **out, struct nf_error *e)
{
	struct json_object	*payload;
	struct nf_store		*st;
	struct nf_error		 je;
	int			 crm = nf_crm_configured(t), deferred = 0;
	enum nf_err		 rc;

	*out = NULL;
	if ((rc = nf_customers_exists(app, t, customer_id, e)) != NF_OK ||
	    (rc = nf_customers_store(app, &st, e)) != NF_OK ||
	    (rc = ticket_insert(st, t->id, customer_id, body, NULL, crm, out, e)) != NF_OK)
		return rc;
	if (!crm)
		return NF_OK;
	/* The ticket is stored; the job (or the outbox when Redis is down)
	 * carries it to the CRM.  Losing both is logged, the ticket kept. */
	payload = json_object_new_object();
	nf_json_add_str(payload, "tenant", t->id);
	nf_json_add_str(payload, "ticketId", nf_json_field_str(*out, "ticketId"));
	nf_error_clear(&je);
	if (nf_jobs_submit(st, nf_app_kv(app), t->id, "crm.ticket", payload, 0, NULL,
	    &deferred, &je) != NF_OK)
		nf_error("ticket %s of tenant %s not queued for the crm: %s",
		    nf_json_field_str(*out, "ticketId"), t->id, je.message);
	json_object_put(payload);
	return NF_OK;
}

enum nf_err
nf_tickets_update(struct nf_store *st, const char *tenant, const char *customer_id,
    const char *ticket_id, struct json_object *body, struct json_object **out,
    char **old_status, struct nf_error *e)
{
	static const char *const allowed[] = { "status", "priority", NULL };
	struct json_object	*f = NULL, *upd, *set, *before = NULL;
	char			 now[25];
	int			 status = -1, prio = -1;
	enum nf_err		 rc;

	*out = NULL;
	if (old_status != NULL)
		*old_status = NULL;
	if (!valid_key(customer_id) || !valid_key(ticket_id))
		return not_found(e, "ticket_not_found");
	if ((rc = check_body(body, allowed, e)) != NF_OK ||
	    (rc = nf_json_get_enum(body, "status", ticket_statuses, 0, &status, e)) != NF_OK ||
	    (rc = nf_json_get_enum(body, "priority", ticket_priorities, 0, &prio, e)) != NF_OK)
		return rc;
	if (status < 0 && prio < 0)
		return nf_error_set(e, NF_EINVAL, "empty_update", NULL, "nothing to change");
	f = nf_json_pair("ticketId", ticket_id);
	nf_json_add_str(f, "customerId", customer_id);
	set = json_object_new_object();
	if (status >= 0)
		nf_json_add_str(set, "status", ticket_statuses[status]);
	if (prio >= 0)
		nf_json_add_str(set, "priority", ticket_priorities[prio]);
	nf_iso8601(nf_now_ms(), now);
	nf_json_add_str(set, "updatedAt", now);
	upd = json_object_new_object();
	nf_json_add(upd, "$set", set);
	rc = nf_store_find_and_modify(st, tenant, TICKETS, f, NULL, upd, 0, &before, e);
	if (rc == NF_ENOTFOUND)
		rc = not_found(e, "ticket_not_found");
	if (rc == NF_OK && old_status != NULL && nf_json_field_str(before, "status") != NULL)
		*old_status = nf_xstrdup(nf_json_field_str(before, "status"));
	json_object_put(before);
	if (rc == NF_OK) {
		rc = nf_store_find_one(st, tenant, TICKETS, f, NULL, out, e);
		if (rc != NF_OK && old_status != NULL) {
			free(*old_status);
			*old_status = NULL;
		}
	}
	json_object_put(upd);
	json_object_put(f);
	return rc;
}

/* ---- seed ----------------------------------------------------------------- */

typedef void (*report_fn)(const char *, const char *, const char *, int, void *);

/* A shallow copy of obj without the keys k1 and k2 (each may be NULL). */
static struct json_object *
without(struct json_object *obj, const char *k1, const char *k2)
{
	struct json_object	*c = json_object_new_object();

	json_object_object_foreach(obj, k, v)
		if ((k1 == NULL || strcmp(k, k1) != 0) && (k2 == NULL || strcmp(k, k2) != 0))
			nf_json_add(c, k, json_object_get(v));
	return c;
}

/* Report a seed insert's outcome; a conflict means "already there", so a
 * second seed changes nothing. */
static enum nf_err
seeded(enum nf_err rc, const char *tenant, const char *kind, const char *key,
    report_fn report, void *arg, struct nf_error *e)
{
	if (rc == NF_ECONFLICT) {
		nf_error_clear(e);
		rc = NF_OK;
		if (report != NULL)
			report(tenant, kind, key ? key : "?", 0, arg);
	} else if (rc == NF_OK && report != NULL)
		report(tenant, kind, key ? key : "?", 1, arg);
	return rc;
}

static enum nf_err
seed_children(struct nf_store *st, const char *tenant, const char *cid,
    struct json_object *c, report_fn report, void *arg, struct nf_error *e)
{
	struct json_object	*arr, *it, *body, *doc;
	size_t			 i, n;
	enum nf_err		 rc = NF_OK;

	if (json_object_object_get_ex(c, "orders", &arr) &&
	    json_object_is_type(arr, json_type_array)) {
		n = json_object_array_length(arr);
		for (i = 0; i < n && rc == NF_OK; i++) {
			it = json_object_array_get_idx(arr, i);
			doc = NULL;
			rc = seeded(nf_orders_create(st, tenant, cid, it, &doc, e), tenant,
			    "order", nf_json_field_str(it, "orderId"), report, arg, e);
			json_object_put(doc);
		}
	}
	if (rc == NF_OK && json_object_object_get_ex(c, "tickets", &arr) &&
	    json_object_is_type(arr, json_type_array)) {
		n = json_object_array_length(arr);
		for (i = 0; i < n && rc == NF_OK; i++) {
			it = json_object_array_get_idx(arr, i);
			if (!valid_key(nf_json_field_str(it, "ticketId")))
				return nf_error_set(e, NF_EINVAL, "invalid_seed", "ticketId",
				    "seed ticket without a valid ticketId");
			body = without(it, "ticketId", NULL);
			doc = NULL;
			rc = seeded(ticket_insert(st, tenant, cid, body, nf_json_field_str(it, "ticketId"),
			    0, &doc, e), tenant, "ticket", nf_json_field_str(it, "ticketId"), report,
			    arg, e);
			json_object_put(doc);
			json_object_put(body);
		}
	}
	return rc;
}

enum nf_err
nf_customers_seed(struct nf_store *st, const char *tenant, struct json_object *demo,
    report_fn report, void *arg, struct nf_error *e)
{
	struct json_object	*arr, *c, *body, *doc;
	const char		*cid;
	size_t			 i, n;
	enum nf_err		 rc;

	if ((rc = nf_customers_migrate(st, e)) != NF_OK)
		return rc;
	if (!json_object_object_get_ex(demo, "customers", &arr))
		return NF_OK;
	if (!json_object_is_type(arr, json_type_array))
		return nf_error_set(e, NF_EINVAL, "invalid_seed", "customers",
		    "customers must be an array");
	n = json_object_array_length(arr);
	for (i = 0; i < n; i++) {
		c = json_object_array_get_idx(arr, i);
		if ((cid = nf_json_field_str(c, "externalId")) == NULL)
			return nf_error_set(e, NF_EINVAL, "invalid_seed", "externalId",
			    "seed customer without an externalId");
		body = without(c, "orders", "tickets");
		doc = NULL;
		rc = seeded(nf_customers_create(st, tenant, NULL, body, &doc, e), tenant,
		    "customer", cid, report, arg, e);
		json_object_put(doc);
		json_object_put(body);
		if (rc != NF_OK ||
		    (rc = seed_children(st, tenant, cid, c, report, arg, e)) != NF_OK)
			return rc;
	}
	return NF_OK;
}
