/*
 * bsonjson.c - json-c <-> BSON conversion used by the MongoDB store backend.
 *
 * DESIGN: both directions walk the value tree with typed libbson appends or
 * bson_iter accessors; no JSON text is ever produced or parsed here.  The
 * mapping rules (ObjectId for "_id" hex strings, BSON dates for exact
 * ISO-8601 strings, exotic types) are listed in bsonjson.h.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "bsonjson.h"

/* Latest instant nf_iso8601 can print with a 4-digit year. */
#define MAX_DATE_MS 253402300799999LL

static enum nf_err append_value(bson_t *, const char *, struct json_object *, int, int,
    struct nf_error *);
static enum nf_err doc_to_json(bson_iter_t *, int, int, struct json_object **);

int
nf_bsonjson_is_oid_hex(const char *s, size_t len)
{
	size_t	 i;

	if (s == NULL || len != 24)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* 1 when key is "_id" or ends in "._id": its string values are ObjectIds. */
static int
is_id_key(const char *key)
{
	size_t	 n = strlen(key);

	return strcmp(key, "_id") == 0 || (n > 4 && strcmp(key + n - 4, "._id") == 0);
}

/* Parse exactly "YYYY-MM-DDTHH:MM:SS.mmmZ" (1970..9999) into ms; 1 on success. */
static int
parse_iso(const char *s, size_t len, int64_t *ms)
{
	static const char	 pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	struct tm		 tm;
	char			 back[25];
	time_t			 t;
	size_t			 i;

	if (len != sizeof(pat) - 1)
		return 0;
	for (i = 0; i < len; i++) {
		if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
			return 0;
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = atoi(s) - 1900;
	tm.tm_mon = atoi(s + 5) - 1;
	tm.tm_mday = atoi(s + 8);
	tm.tm_hour = atoi(s + 11);
	tm.tm_min = atoi(s + 14);
	tm.tm_sec = atoi(s + 17);
	if (tm.tm_year < 70)
		return 0;
	if ((t = timegm(&tm)) == (time_t)-1)
		return 0;
	*ms = (int64_t)t * 1000 + atoi(s + 20);
	/* Only a string that formats back to itself (no "Feb 30") is a date. */
	nf_iso8601(*ms, back);
	return memcmp(back, s, len) == 0;
}

static enum nf_err
append_string(bson_t *b, const char *key, struct json_object *v, int id_ctx,
    struct nf_error *e)
{
	const char	*s = json_object_get_string(v);
	size_t		 len = (size_t)json_object_get_string_len(v);
	bson_oid_t	 oid;
	int64_t		 ms;

	if (!bson_utf8_validate(s, len, true))
		return nf_error_set(e, NF_EINVAL, "invalid_utf8", key,
		    "string value is not valid UTF-8");
	if (id_ctx && nf_bsonjson_is_oid_hex(s, len)) {
		bson_oid_init_from_string(&oid, s);
		bson_append_oid(b, key, -1, &oid);
	} else if (parse_iso(s, len, &ms))
		bson_append_date_time(b, key, -1, ms);
	else
		bson_append_utf8(b, key, -1, s, (int)len);
	return NF_OK;
}

static void
append_int(bson_t *b, const char *key, struct json_object *v)
{
	int64_t	 i = json_object_get_int64(v);
	uint64_t u;

	if (i == INT64_MAX && (u = json_object_get_uint64(v)) > (uint64_t)INT64_MAX)
		bson_append_double(b, key, -1, (double)u);
	else
		bson_append_int64(b, key, -1, i);
}

/*
 * Members of obj into b.  id_ctx carries "_id"-ness into operator objects
 * ({"_id": {"$in": [...]}}) but not into plain sub-documents.
 */
static enum nf_err
append_members(bson_t *b, struct json_object *obj, int id_ctx, int depth,
    struct nf_error *e)
{
	enum nf_err	 rc;

	json_object_object_foreach(obj, key, val) {
		int	 ctx = is_id_key(key) || (id_ctx && key[0] == '$');

		if ((rc = append_value(b, key, val, ctx, depth, e)) != NF_OK)
			return rc;
	}
	return NF_OK;
}

static enum nf_err
append_array(bson_t *b, struct json_object *arr, int id_ctx, int depth,
    struct nf_error *e)
{
	char		 buf[16];
	const char	*k;
	size_t		 i, n = json_object_array_length(arr);
	enum nf_err	 rc;

	for (i = 0; i < n; i++) {
		bson_uint32_to_string((uint32_t)i, &k, buf, sizeof(buf));
		rc = append_value(b, k, json_object_array_get_idx(arr, i), id_ctx, depth, e);
		if (rc != NF_OK)
			return rc;
	}
	return NF_OK;
}

static enum nf_err
append_value(bson_t *b, const char *key, struct json_object *v, int id_ctx, int depth,
    struct nf_error *e)
{
	bson_t		 child;
	enum nf_err	 rc;

	if (depth >= NF_BSONJSON_MAXDEPTH)
		return nf_error_set(e, NF_EINVAL, "too_deep", key, "value is nested too deeply");
	switch (json_object_get_type(v)) {
	case json_type_null:
		bson_append_null(b, key, -1);
		return NF_OK;
	case json_type_boolean:
		bson_append_bool(b, key, -1, json_object_get_boolean(v) != 0);
		return NF_OK;
	case json_type_int:
		append_int(b, key, v);
		return NF_OK;
	case json_type_double:
		bson_append_double(b, key, -1, json_object_get_double(v));
		return NF_OK;
	case json_type_string:
		return append_string(b, key, v, id_ctx, e);
	case json_type_object:
		bson_append_document_begin(b, key, -1, &child);
		rc = append_members(&child, v, id_ctx, depth + 1, e);
		bson_append_document_end(b, &child);
		return rc;
	case json_type_array:
		bson_append_array_begin(b, key, -1, &child);
		rc = append_array(&child, v, id_ctx, depth + 1, e);
		bson_append_array_end(b, &child);
		return rc;
	}
	return nf_error_set(e, NF_EINVAL, "invalid_value", key, "unsupported JSON value");
}

enum nf_err
nf_bsonjson_append(bson_t *out, const char *key, struct json_object *v, int id_ctx,
    struct nf_error *e)
{
	return append_value(out, key, v, id_ctx, 0, e);
}

enum nf_err
nf_bsonjson_from_json(struct json_object *obj, bson_t *out, struct nf_error *e)
{
	if (!json_object_is_type(obj, json_type_object))
		return nf_error_set(e, NF_EINVAL, "invalid_document", NULL,
		    "document must be a JSON object");
	return append_members(out, obj, 0, 0, e);
}

/* ISO-8601 for any representable date; NULL (JSON null) when out of range. */
static struct json_object *
date_json(int64_t ms)
{
	char		 buf[80];   /* >= 25; room for any int snprintf could print */
	time_t		 t;
	struct tm	 tm;
	int64_t		 sec, frac;

	if (ms >= 0 && ms <= MAX_DATE_MS) {
		nf_iso8601(ms, buf);
		return json_object_new_string(buf);
	}
	/* Before 1970: floor division, which nf_iso8601 does not do. */
	if (ms < 0 && ms >= -62167219200000LL) {
		sec = ms / 1000;
		frac = ms % 1000;
		if (frac < 0) {
			frac += 1000;
			sec--;
		}
		t = (time_t)sec;
		if (gmtime_r(&t, &tm) == NULL)
			return NULL;
		snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, (int)frac);
		return json_object_new_string(buf);
	}
	return NULL;
}

static struct json_object *
binary_json(const bson_iter_t *it)
{
	const uint8_t		*data;
	uint32_t		 len;
	bson_subtype_t		 sub;
	char			*buf;
	struct json_object	*o;

	bson_iter_binary(it, &sub, &len, &data);
	buf = nf_xmalloc(4 * ((size_t)len / 3 + 1) + 1);
	EVP_EncodeBlock((unsigned char *)buf, data, (int)len);
	o = json_object_new_string(buf);
	free(buf);
	return o;
}

static struct json_object *
regex_json(const bson_iter_t *it)
{
	const char		*opts;
	const char		*re = bson_iter_regex(it, &opts);
	char			*s = nf_xasprintf("/%s/%s", re, opts ? opts : "");
	struct json_object	*o = json_object_new_string(s);

	free(s);
	return o;
}

static struct json_object *
utf8_json(const char *s, uint32_t len)
{
	if (s == NULL || !bson_utf8_validate(s, len, true))
		return NULL;
	return json_object_new_string_len(s, (int)len);
}

/* Scalars and exotic types; see the table in bsonjson.h. */
static struct json_object *
scalar_json(const bson_iter_t *it)
{
	char		 buf[BSON_DECIMAL128_STRING];
	bson_decimal128_t d;
	uint32_t	 len, ts, inc, slen;
	const uint8_t	*scope;
	const char	*s;
	double		 dbl;

	switch (bson_iter_type(it)) {
	case BSON_TYPE_DOUBLE:
		dbl = bson_iter_double(it);
		return isfinite(dbl) ? json_object_new_double(dbl) : NULL;
	case BSON_TYPE_UTF8:
		s = bson_iter_utf8(it, &len);
		return utf8_json(s, len);
	case BSON_TYPE_BINARY:
		return binary_json(it);
	case BSON_TYPE_OID:
		bson_oid_to_string(bson_iter_oid(it), buf);
		return json_object_new_string(buf);
	case BSON_TYPE_BOOL:
		return json_object_new_boolean(bson_iter_bool(it));
	case BSON_TYPE_DATE_TIME:
		return date_json(bson_iter_date_time(it));
	case BSON_TYPE_REGEX:
		return regex_json(it);
	case BSON_TYPE_CODE:
		s = bson_iter_code(it, &len);
		return utf8_json(s, len);
	case BSON_TYPE_SYMBOL:
		s = bson_iter_symbol(it, &len);
		return utf8_json(s, len);
	case BSON_TYPE_CODEWSCOPE:
		s = bson_iter_codewscope(it, &len, &slen, &scope);
		return utf8_json(s, len);
	case BSON_TYPE_INT32:
		return json_object_new_int64(bson_iter_int32(it));
	case BSON_TYPE_TIMESTAMP:
		bson_iter_timestamp(it, &ts, &inc);
		return date_json((int64_t)ts * 1000);
	case BSON_TYPE_INT64:
		return json_object_new_int64(bson_iter_int64(it));
	case BSON_TYPE_DECIMAL128:
		if (!bson_iter_decimal128(it, &d))
			return NULL;
		bson_decimal128_to_string(&d, buf);
		return json_object_new_string(buf);
	default:
		/* null, undefined, DBPointer, MinKey, MaxKey */
		return NULL;
	}
}

/* One element's value; containers recurse. */
static enum nf_err
value_json(bson_iter_t *it, int depth, struct json_object **out)
{
	bson_iter_t	 sub;
	bson_type_t	 t = bson_iter_type(it);

	*out = NULL;
	if (t == BSON_TYPE_DOCUMENT || t == BSON_TYPE_ARRAY) {
		if (depth >= NF_BSONJSON_MAXDEPTH || !bson_iter_recurse(it, &sub))
			return NF_ESTORE;
		return doc_to_json(&sub, t == BSON_TYPE_ARRAY, depth + 1, out);
	}
	*out = scalar_json(it);
	return NF_OK;
}

/* Members of the (sub)document under it into a new object or array. */
static enum nf_err
doc_to_json(bson_iter_t *it, int is_array, int depth, struct json_object **out)
{
	struct json_object	*o, *v;
	enum nf_err		 rc = NF_OK;

	o = is_array ? json_object_new_array() : json_object_new_object();
	while (bson_iter_next(it)) {
		if ((rc = value_json(it, depth, &v)) != NF_OK)
			break;
		if (is_array ? json_object_array_add(o, v) :
		    json_object_object_add(o, bson_iter_key(it), v)) {
			json_object_put(v);
			rc = NF_ENOMEM;
			break;
		}
	}
	if (rc != NF_OK) {
		json_object_put(o);
		o = NULL;
	}
	*out = o;
	return rc;
}

enum nf_err
nf_bsonjson_to_json(const bson_t *doc, struct json_object **out, struct nf_error *e)
{
	bson_iter_t	 it;
	size_t		 off = 0;
	enum nf_err	 rc;

	*out = NULL;
	/* Validate the structure first so the walk never reads past the end. */
	if (!bson_validate(doc, BSON_VALIDATE_NONE, &off) || !bson_iter_init(&it, doc))
		return nf_error_set(e, NF_ESTORE, "store_error", NULL,
		    "the store returned a malformed document");
	if ((rc = doc_to_json(&it, 0, 0, out)) != NF_OK)
		return nf_error_set(e, rc == NF_ENOMEM ? NF_ENOMEM : NF_ESTORE,
		    rc == NF_ENOMEM ? "out_of_memory" : "store_error", NULL,
		    "the store returned a document that cannot be converted");
	return NF_OK;
}
