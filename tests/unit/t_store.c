/*
 * t_store.c - the document store conformance suite (store.h).  Every case
 * runs against SQLite (a temporary file) and, when TEST_MONGO_URI is set,
 * against MongoDB too (a database with a random suffix, dropped at the end),
 * so both backends are held to the same semantics: tenant isolation through
 * every call, Mongo filter/update semantics, find_and_modify atomicity
 * across processes, cursor pagination and rejection of bad input.  An
 * indexed path must answer exactly like an unindexed one.  SQLite-only
 * cases prove its plans use the indexes (EXPLAIN QUERY PLAN through
 * nf_store_sqlite_plan) and that a lock timeout or a full database
 * (max_pages cap) gives NF_EUNAVAIL, rolls back and leaves the file intact.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <sys/wait.h>

#include <signal.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <mongoc/mongoc.h>
#include <sqlite3.h>

#include "nonflex.h"
#include "store.h"
#include "store_impl.h"
#include "testutil.h"

static const char	*uri;          /* backend under test */
static struct nf_store	*S;            /* opened per test (in the forked child) */
static char		 C[16];        /* a fresh collection per test */

/* ---- helpers -------------------------------------------------------- */

static struct json_object *
J(const char *s)
{
	struct json_object	*o;

	if (s == NULL)
		return NULL;
	o = json_tokener_parse(s);
	ck_assert_msg(o != NULL, "bad test JSON: %s", s);
	return o;
}

static void
setup(void)
{
	struct nf_error	 e;
	char		 hex[9];

	nf_random_hex(hex, 4);
	snprintf(C, sizeof(C), "t%s", hex);
	ck_assert_int_eq(nf_store_open(uri, &S, &e), NF_OK);
}

static void
teardown(void)
{
	nf_store_free(S);
	S = NULL;
}

static void
ins(const char *tenant, const char *json)
{
	struct json_object	*d = J(json);
	struct nf_error		 e;
	enum nf_err		 rc;

	rc = nf_store_insert(S, tenant, C, d, NULL, &e);
	ck_assert_msg(rc == NF_OK, "insert %s: %d %s", json, rc, e.message);
	json_object_put(d);
}

static int64_t
cnt(const char *tenant, const char *filter)
{
	struct json_object	*f = J(filter);
	struct nf_error		 e;
	int64_t			 n = -1;
	enum nf_err		 rc;

	rc = nf_store_count(S, tenant, C, f, &n, &e);
	ck_assert_msg(rc == NF_OK, "count %s: %d %s", filter, rc, e.message);
	json_object_put(f);
	return n;
}

/* The "k" labels of the matches, comma separated (static buffer). */
static const char *
keys(const char *tenant, const char *filter, const char *sort, int64_t limit,
    int64_t skip)
{
	static char		 buf[1024];
	struct nf_find_opts	 o = { J(sort), limit, skip };
	struct json_object	*f = J(filter), *out = NULL, *k;
	struct nf_error		 e;
	enum nf_err		 rc;
	size_t			 i;

	rc = nf_store_find(S, tenant, C, f, &o, &out, &e);
	ck_assert_msg(rc == NF_OK, "find %s: %d %s", filter, rc, e.message);
	buf[0] = '\0';
	for (i = 0; i < json_object_array_length(out); i++) {
		json_object_object_get_ex(json_object_array_get_idx(out, i), "k", &k);
		if (i > 0)
			strncat(buf, ",", sizeof(buf) - strlen(buf) - 1);
		strncat(buf, k != NULL ? json_object_get_string(k) : "?",
		    sizeof(buf) - strlen(buf) - 1);
	}
	json_object_put(f);
	json_object_put(o.sort);
	json_object_put(out);
	return buf;
}

#define KEYS(t, f) keys((t), (f), "{\"k\":1}", 0, 0)

static enum nf_err
upd(const char *tenant, const char *filter, const char *update, unsigned flags,
    int64_t *matched, struct nf_error *e)
{
	struct json_object	*f = J(filter), *u = J(update);
	enum nf_err		 rc;

	rc = nf_store_update(S, tenant, C, f, u, flags, matched, e);
	json_object_put(f);
	json_object_put(u);
	return rc;
}

static enum nf_err
fam(const char *tenant, const char *filter, const char *sort, const char *update,
    unsigned flags, struct json_object **out, struct nf_error *e)
{
	struct json_object	*f = J(filter), *s = J(sort), *u = J(update);
	enum nf_err		 rc;

	rc = nf_store_find_and_modify(S, tenant, C, f, s, u, flags, out, e);
	json_object_put(f);
	json_object_put(s);
	json_object_put(u);
	return rc;
}

static struct json_object *
one(const char *tenant, const char *filter)
{
	struct json_object	*f = J(filter), *out = NULL;
	struct nf_error		 e;

	ck_assert_int_eq(nf_store_find_one(S, tenant, C, f, NULL, &out, &e), NF_OK);
	json_object_put(f);
	return out;
}

static const char *
field_str(struct json_object *o, const char *k)
{
	struct json_object	*v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

static int64_t
field_int(struct json_object *o, const char *k)
{
	struct json_object	*v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : -999;
}

/* ---- basic CRUD ----------------------------------------------------- */

START_TEST(t_insert_find)
{
	struct json_object	*d, *out = NULL, *f;
	struct nf_error		 e;
	const char		*before;
	char			*saved, id[25];

	d = J("{\"k\":\"a\",\"name\":\"Ann\",\"n\":1}");
	saved = nf_xstrdup(json_object_to_json_string(d));
	ck_assert_int_eq(nf_store_insert(S, "ta", C, d, id, &e), NF_OK);
	/* The caller's document is borrowed and left untouched. */
	before = json_object_to_json_string(d);
	ck_assert_str_eq(before, saved);
	ck_assert_int_eq(strlen(id), 24);
	ck_assert_int_eq(strspn(id, "0123456789abcdef"), 24);
	json_object_put(d);
	free(saved);
	ins("ta", "{\"k\":\"b\",\"name\":\"Bob\",\"n\":2}");
	ins("ta", "{\"_id\":\"own-id\",\"k\":\"c\",\"n\":3}");

	ck_assert_str_eq(KEYS("ta", NULL), "a,b,c");
	ck_assert_str_eq(KEYS("ta", "{}"), "a,b,c");
	out = one("ta", "{\"name\":\"Bob\"}");
	ck_assert_str_eq(field_str(out, "k"), "b");
	ck_assert_str_eq(field_str(out, "tenant"), "ta");
	ck_assert_int_eq(strlen(field_str(out, "_id")), 24);
	json_object_put(out);
	f = J("{\"_id\":\"\"}");
	json_object_object_add(f, "_id", json_object_new_string(id));
	ck_assert_int_eq(nf_store_find_one(S, "ta", C, f, NULL, &out, &e), NF_OK);
	ck_assert_str_eq(field_str(out, "k"), "a");
	json_object_put(out);
	json_object_put(f);
	out = one("ta", "{\"_id\":\"own-id\"}");
	ck_assert_str_eq(field_str(out, "k"), "c");
	json_object_put(out);

	f = J("{\"name\":\"Nobody\"}");
	out = (struct json_object *)1;
	ck_assert_int_eq(nf_store_find_one(S, "ta", C, f, NULL, &out, &e), NF_ENOTFOUND);
	ck_assert_ptr_null(out);
	json_object_put(f);
	ck_assert_str_eq(nf_store_backend(S), strncmp(uri, "sqlite", 6) == 0 ?
	    "sqlite" : "mongodb");
	ck_assert_int_eq(nf_store_ping(S, &e), NF_OK);
}
END_TEST

START_TEST(t_duplicates)
{
	struct nf_index		 ix = { "email_u", { "email", NULL }, { 1 }, 1 };
	struct nf_index		 bad = { "k_u", { "k", NULL }, { 1 }, 1 };
	struct json_object	*d;
	struct nf_error		 e;
	int64_t			 m;

	ins("ta", "{\"_id\":\"dup\",\"k\":\"a\"}");
	d = J("{\"_id\":\"dup\",\"k\":\"b\"}");
	ck_assert_int_eq(nf_store_insert(S, "ta", C, d, NULL, &e), NF_ECONFLICT);
	ck_assert_str_eq(e.code, "duplicate_key");
	json_object_put(d);
	ck_assert_str_eq(KEYS("ta", NULL), "a");

	ck_assert_int_eq(nf_store_ensure_index(S, C, &ix, &e), NF_OK);
	ck_assert_int_eq(nf_store_ensure_index(S, C, &ix, &e), NF_OK); /* idempotent */
	ins("ta", "{\"k\":\"x\",\"email\":\"x@example.com\"}");
	ins("ta", "{\"k\":\"y\",\"email\":\"y@example.com\"}");
	d = J("{\"k\":\"z\",\"email\":\"x@example.com\"}");
	ck_assert_int_eq(nf_store_insert(S, "ta", C, d, NULL, &e), NF_ECONFLICT);
	ck_assert_str_eq(e.code, "duplicate_key");
	/* Unique within the tenant: another tenant may use the same key. */
	ck_assert_int_eq(nf_store_insert(S, "tb", C, d, NULL, &e), NF_OK);
	json_object_put(d);
	/* An update that would duplicate the key fails and changes nothing. */
	ck_assert_int_eq(upd("ta", "{\"k\":\"y\"}",
	    "{\"$set\":{\"email\":\"x@example.com\"}}", 0, &m, &e), NF_ECONFLICT);
	ck_assert_str_eq(e.code, "duplicate_key");
	ck_assert_int_eq(cnt("ta", "{\"email\":\"y@example.com\"}"), 1);
	/* A new unique index over existing duplicates is refused. */
	ins("ta", "{\"k\":\"x\"}");
	ck_assert_int_eq(nf_store_ensure_index(S, C, &bad, &e), NF_ECONFLICT);
}
END_TEST

START_TEST(t_dotted)
{
	struct json_object	*o;
	struct nf_error		 e;
	int64_t			 m;

	ins("ta", "{\"k\":\"a\",\"addr\":{\"city\":\"Oslo\",\"geo\":{\"zip\":\"0150\"}}}");
	ins("ta", "{\"k\":\"b\",\"addr\":{\"city\":\"Rome\"}}");
	ins("ta", "{\"k\":\"c\",\"addr\":\"Oslo\"}");
	ck_assert_str_eq(KEYS("ta", "{\"addr.city\":\"Oslo\"}"), "a");
	ck_assert_str_eq(KEYS("ta", "{\"addr.geo.zip\":\"0150\"}"), "a");
	ck_assert_str_eq(KEYS("ta", "{\"addr.geo\":{\"zip\":\"0150\"}}"), "a");
	ck_assert_str_eq(KEYS("ta", "{\"addr.geo.zip\":{\"$exists\":false}}"), "b,c");
	ck_assert_int_eq(upd("ta", "{\"k\":\"b\"}", "{\"$set\":{\"x.y.z\":5}}", 0, &m, &e),
	    NF_OK);
	ck_assert_int_eq(m, 1);
	ck_assert_str_eq(KEYS("ta", "{\"x.y.z\":5}"), "b");
	o = one("ta", "{\"k\":\"b\"}");
	ck_assert_ptr_nonnull(json_object_object_get(json_object_object_get(
	    json_object_object_get(o, "x"), "y"), "z"));
	json_object_put(o);
	/* $set through a non-object is an error and changes nothing. */
	ck_assert_int_eq(upd("ta", "{\"k\":\"c\"}", "{\"$set\":{\"addr.city\":\"X\"}}",
	    0, &m, &e), NF_EINVAL);
	ck_assert_str_eq(KEYS("ta", "{\"addr\":\"Oslo\"}"), "c");
}
END_TEST

START_TEST(t_arrays)
{
	ins("ta", "{\"k\":\"a\",\"tags\":[\"red\",\"blue\"],\"s\":[1,9]}");
	ins("ta", "{\"k\":\"b\",\"tags\":[\"green\"],\"s\":[2,3]}");
	ins("ta", "{\"k\":\"c\",\"tags\":\"red\",\"s\":4}");
	ins("ta", "{\"k\":\"d\"}");
	ck_assert_str_eq(KEYS("ta", "{\"tags\":\"red\"}"), "a,c");
	ck_assert_str_eq(KEYS("ta", "{\"tags\":{\"$eq\":\"blue\"}}"), "a");
	ck_assert_str_eq(KEYS("ta", "{\"tags\":[\"red\",\"blue\"]}"), "a");
	ck_assert_str_eq(KEYS("ta", "{\"tags\":[\"blue\",\"red\"]}"), "");
	ck_assert_str_eq(KEYS("ta", "{\"tags\":{\"$in\":[\"green\",\"x\"]}}"), "b");
	ck_assert_str_eq(KEYS("ta", "{\"tags\":{\"$ne\":\"red\"}}"), "b,d");
	ck_assert_str_eq(KEYS("ta", "{\"tags\":{\"$nin\":[\"red\",\"green\"]}}"), "d");
	ck_assert_str_eq(KEYS("ta", "{\"s\":{\"$gt\":5}}"), "a");
	ck_assert_str_eq(KEYS("ta", "{\"s\":{\"$lte\":2}}"), "a,b");
	ck_assert_str_eq(KEYS("ta", "{\"s\":3}"), "b");
}
END_TEST

START_TEST(t_operators)
{
	ins("ta", "{\"k\":\"a\",\"v\":1}");
	ins("ta", "{\"k\":\"b\",\"v\":5}");
	ins("ta", "{\"k\":\"c\",\"v\":10}");
	ins("ta", "{\"k\":\"d\",\"v\":\"7\"}");
	ins("ta", "{\"k\":\"e\",\"v\":true}");
	ins("ta", "{\"k\":\"f\",\"v\":null}");
	ins("ta", "{\"k\":\"g\"}");
	ins("ta", "{\"k\":\"h\",\"v\":2.5}");
	ins("ta", "{\"k\":\"i\",\"v\":false}");
	ins("ta", "{\"k\":\"j\",\"v\":\"abc\"}");
	/* Type bracketing: numbers compare only with numbers. */
	ck_assert_str_eq(KEYS("ta", "{\"v\":{\"$gt\":5}}"), "c");
	ck_assert_str_eq(KEYS("ta", "{\"v\":{\"$gte\":5}}"), "b,c");
	ck_assert_str_eq(KEYS("ta", "{\"v\":{\"$lt\":5}}"), "a,h");
	ck_assert_str_eq(KEYS("ta", "{\"v\":{\"$lte\":2.5}}"), "a,h");
	ck_assert_str_eq(KEYS("ta", "{\"v\":{\"$gt\":1,\"$lt\":10}}"), "b,h");
	ck_assert_str_eq(KEYS("ta", "{\"v\":{\"$gt\":\"\"}}"), "d,j");
	ck_assert_str_eq(KEYS("ta", "{\"v\":{\"$lt\":\"b\"}}"), "d,j");
	ck_assert_str_eq(KEYS("ta", "{\"v\":{\"$gt\":false}}"), "e");
	/* Booleans are JSON booleans, not 0/1. */
	ck_assert_str_eq(KEYS("ta", "{\"v\":true}"), "e");
	ck_assert_str_eq(KEYS("ta", "{\"v\":false}"), "i");
	ck_assert_str_eq(KEYS("ta", "{\"v\":1}"), "a");
	ck_assert_str_eq(KEYS("ta", "{\"v\":{\"$eq\":2.5}}"), "h");
	ck_assert_str_eq(KEYS("ta", "{\"v\":\"7\"}"), "d");
	ck_assert_str_eq(KEYS("ta", "{\"v\":7}"), "");
	/* null matches null and missing. */
	ck_assert_str_eq(KEYS("ta", "{\"v\":null}"), "f,g");
	ck_assert_str_eq(KEYS("ta", "{\"v\":{\"$ne\":null}}"), "a,b,c,d,e,h,i,j");
	ck_assert_str_eq(KEYS("ta", "{\"v\":{\"$gte\":null}}"), "f,g");
	ck_assert_str_eq(KEYS("ta", "{\"v\":{\"$gt\":null}}"), "");
	/* $ne and $nin match missing fields. */
	ck_assert_str_eq(KEYS("ta", "{\"v\":{\"$ne\":5}}"), "a,c,d,e,f,g,h,i,j");
	ck_assert_str_eq(KEYS("ta", "{\"v\":{\"$in\":[1,\"7\",null]}}"), "a,d,f,g");
	ck_assert_str_eq(KEYS("ta", "{\"v\":{\"$nin\":[1,\"7\",null,true,false]}}"),
	    "b,c,h,j");
	ck_assert_str_eq(KEYS("ta", "{\"v\":{\"$in\":[]}}"), "");
	ck_assert_int_eq(cnt("ta", "{\"v\":{\"$nin\":[]}}"), 10);
	ck_assert_str_eq(KEYS("ta", "{\"v\":{\"$exists\":true}}"), "a,b,c,d,e,f,h,i,j");
	ck_assert_str_eq(KEYS("ta", "{\"v\":{\"$exists\":false}}"), "g");
	/* $and / $or. */
	ck_assert_str_eq(KEYS("ta", "{\"$or\":[{\"v\":1},{\"v\":\"7\"},{\"k\":\"g\"}]}"),
	    "a,d,g");
	ck_assert_str_eq(KEYS("ta", "{\"$and\":[{\"v\":{\"$gt\":1}},{\"v\":{\"$lt\":6}}]}"),
	    "b,h");
	ck_assert_str_eq(KEYS("ta", "{\"k\":{\"$ne\":\"a\"},\"$or\":[{\"v\":1},{\"v\":5}]}"),
	    "b");
	ck_assert_str_eq(KEYS("ta", "{\"$or\":[{\"$and\":[{\"v\":{\"$gte\":5}},"
	    "{\"v\":{\"$lte\":5}}]},{\"k\":\"j\"}]}"), "b,j");
}
END_TEST

START_TEST(t_sort_limit)
{
	ins("ta", "{\"k\":\"a\",\"g\":2,\"n\":\"x\"}");
	ins("ta", "{\"k\":\"b\",\"g\":1,\"n\":\"y\"}");
	ins("ta", "{\"k\":\"c\",\"g\":2,\"n\":\"w\"}");
	ins("ta", "{\"k\":\"d\",\"n\":\"z\"}");
	ins("ta", "{\"k\":\"e\",\"g\":1,\"n\":\"a\"}");
	ck_assert_str_eq(keys("ta", NULL, "{\"g\":1,\"n\":1}", 0, 0), "d,e,b,c,a");
	ck_assert_str_eq(keys("ta", NULL, "{\"g\":-1,\"n\":1}", 0, 0), "c,a,e,b,d");
	ck_assert_str_eq(keys("ta", NULL, "{\"g\":1,\"n\":-1}", 2, 1), "b,e");
	ck_assert_str_eq(keys("ta", NULL, "{\"k\":-1}", 2, 0), "e,d");
	ck_assert_str_eq(keys("ta", NULL, "{\"k\":1}", 0, 4), "e");
	ck_assert_str_eq(keys("ta", NULL, "{\"k\":1}", 0, 9), "");
	ck_assert_int_eq(cnt("ta", NULL), 5);
	ck_assert_int_eq(cnt("ta", "{\"g\":1}"), 2);
	ck_assert_int_eq(cnt("ta", "{\"g\":3}"), 0);
}
END_TEST

/* ---- updates -------------------------------------------------------- */

START_TEST(t_update_ops)
{
	struct json_object	*o, *v;
	struct nf_error		 e;
	int64_t			 m;

	ins("ta", "{\"k\":\"a\",\"n\":1,\"f\":1.5,\"gone\":1,\"list\":[1],\"s\":\"x\"}");
	ck_assert_int_eq(upd("ta", "{\"k\":\"a\"}", "{\"$set\":{\"s\":\"y\",\"new\":[1,2]},"
	    "\"$unset\":{\"gone\":\"\",\"nothere\":\"\",\"nope.deep\":1},"
	    "\"$inc\":{\"n\":2,\"f\":1,\"fresh\":-3},"
	    "\"$push\":{\"list\":2,\"l2\":{\"$each\":[3,4]}}}", 0, &m, &e), NF_OK);
	ck_assert_int_eq(m, 1);
	o = one("ta", "{\"k\":\"a\"}");
	ck_assert_str_eq(field_str(o, "s"), "y");
	ck_assert_int_eq(field_int(o, "n"), 3);
	ck_assert(json_object_is_type(json_object_object_get(o, "n"), json_type_int));
	ck_assert(json_object_get_double(json_object_object_get(o, "f")) == 2.5);
	ck_assert_int_eq(field_int(o, "fresh"), -3);
	ck_assert(!json_object_object_get_ex(o, "gone", NULL));
	ck_assert_str_eq(json_object_to_json_string_ext(json_object_object_get(o, "list"),
	    JSON_C_TO_STRING_PLAIN), "[1,2]");
	ck_assert_str_eq(json_object_to_json_string_ext(json_object_object_get(o, "l2"),
	    JSON_C_TO_STRING_PLAIN), "[3,4]");
	ck_assert_str_eq(json_object_to_json_string_ext(json_object_object_get(o, "new"),
	    JSON_C_TO_STRING_PLAIN), "[1,2]");
	json_object_put(o);
	/* $push of an array value pushes it as one element. */
	ck_assert_int_eq(upd("ta", "{\"k\":\"a\"}", "{\"$push\":{\"list\":[5]}}", 0, &m, &e),
	    NF_OK);
	o = one("ta", "{\"k\":\"a\"}");
	v = json_object_object_get(o, "list");
	ck_assert_int_eq(json_object_array_length(v), 3);
	json_object_put(o);
	/* Type errors leave the document as it was. */
	ck_assert_int_eq(upd("ta", "{\"k\":\"a\"}", "{\"$inc\":{\"s\":1}}", 0, &m, &e),
	    NF_EINVAL);
	ck_assert_int_eq(upd("ta", "{\"k\":\"a\"}", "{\"$push\":{\"s\":1}}", 0, &m, &e),
	    NF_EINVAL);
	ck_assert_int_eq(cnt("ta", "{\"s\":\"y\"}"), 1);
	/* No match: nothing happens. */
	ck_assert_int_eq(upd("ta", "{\"k\":\"zz\"}", "{\"$set\":{\"s\":1}}", 0, &m, &e),
	    NF_OK);
	ck_assert_int_eq(m, 0);
	ck_assert_int_eq(cnt("ta", NULL), 1);
}
END_TEST

START_TEST(t_replace)
{
	struct json_object	*o;
	struct nf_error		 e;
	char			*id;
	int64_t			 m;

	ins("ta", "{\"k\":\"a\",\"keep\":false,\"x\":1}");
	o = one("ta", "{\"k\":\"a\"}");
	id = nf_xstrdup(field_str(o, "_id"));
	json_object_put(o);
	ck_assert_int_eq(upd("ta", "{\"k\":\"a\"}",
	    "{\"k\":\"a2\",\"y\":2,\"_id\":\"other\",\"tenant\":\"tb\"}", 0, &m, &e), NF_OK);
	ck_assert_int_eq(m, 1);
	o = one("ta", "{\"k\":\"a2\"}");
	ck_assert_str_eq(field_str(o, "_id"), id);
	ck_assert_str_eq(field_str(o, "tenant"), "ta");
	ck_assert(!json_object_object_get_ex(o, "x", NULL));
	ck_assert_int_eq(field_int(o, "y"), 2);
	json_object_put(o);
	ck_assert_int_eq(cnt("tb", NULL), 0);
	/* A replacement cannot apply to many documents. */
	ck_assert_int_eq(upd("ta", "{}", "{\"z\":1}", NF_STORE_MULTI, &m, &e), NF_EINVAL);
	free(id);
}
END_TEST

START_TEST(t_upsert)
{
	struct json_object	*o;
	struct nf_error		 e;
	int64_t			 m;

	ck_assert_int_eq(upd("ta", "{\"k\":\"u\",\"a.b\":1,\"n\":{\"$gt\":1},"
	    "\"e\":{\"$eq\":\"q\"},\"$or\":[{\"z\":1},{\"z\":2}]}",
	    "{\"$set\":{\"s\":\"new\"},\"$inc\":{\"c\":1}}", NF_STORE_UPSERT, &m, &e), NF_OK);
	ck_assert_int_eq(m, 1);
	o = one("ta", "{\"k\":\"u\"}");
	ck_assert_str_eq(field_str(o, "s"), "new");
	ck_assert_str_eq(field_str(o, "e"), "q");
	ck_assert_str_eq(field_str(o, "tenant"), "ta");
	ck_assert_int_eq(field_int(o, "c"), 1);
	ck_assert_int_eq(field_int(json_object_object_get(o, "a"), "b"), 1);
	ck_assert(!json_object_object_get_ex(o, "n", NULL));
	ck_assert(!json_object_object_get_ex(o, "z", NULL));
	ck_assert_int_eq(strlen(field_str(o, "_id")), 24);
	json_object_put(o);
	/* Second time it matches and updates. */
	ck_assert_int_eq(upd("ta", "{\"k\":\"u\"}", "{\"$inc\":{\"c\":1}}",
	    NF_STORE_UPSERT, &m, &e), NF_OK);
	ck_assert_int_eq(m, 1);
	ck_assert_int_eq(cnt("ta", "{\"c\":2}"), 1);
	/* _id from the filter; replacement upsert. */
	ck_assert_int_eq(upd("ta", "{\"_id\":\"fixed\"}", "{\"k\":\"r\",\"v\":1}",
	    NF_STORE_UPSERT, &m, &e), NF_OK);
	o = one("ta", "{\"k\":\"r\"}");
	ck_assert_str_eq(field_str(o, "_id"), "fixed");
	ck_assert_str_eq(field_str(o, "tenant"), "ta");
	json_object_put(o);
	ck_assert_int_eq(cnt("ta", NULL), 2);
}
END_TEST

START_TEST(t_multi_delete)
{
	struct nf_error		 e;
	struct json_object	*f;
	int64_t			 m;

	ins("ta", "{\"k\":\"a\",\"g\":1}");
	ins("ta", "{\"k\":\"b\",\"g\":1}");
	ins("ta", "{\"k\":\"c\",\"g\":1}");
	ins("ta", "{\"k\":\"d\",\"g\":2}");
	ck_assert_int_eq(upd("ta", "{\"g\":1}", "{\"$set\":{\"h\":1}}", 0, &m, &e), NF_OK);
	ck_assert_int_eq(m, 1);
	ck_assert_int_eq(cnt("ta", "{\"h\":1}"), 1);
	ck_assert_int_eq(upd("ta", "{\"g\":1}", "{\"$set\":{\"h\":2}}", NF_STORE_MULTI,
	    &m, &e), NF_OK);
	ck_assert_int_eq(m, 3);
	ck_assert_int_eq(cnt("ta", "{\"h\":2}"), 3);

	f = J("{\"g\":1}");
	ck_assert_int_eq(nf_store_delete(S, "ta", C, f, 0, &m, &e), NF_OK);
	ck_assert_int_eq(m, 1);
	ck_assert_int_eq(cnt("ta", NULL), 3);
	ck_assert_int_eq(nf_store_delete(S, "ta", C, f, NF_STORE_MULTI, &m, &e), NF_OK);
	ck_assert_int_eq(m, 2);
	ck_assert_int_eq(nf_store_delete(S, "ta", C, f, NF_STORE_MULTI, &m, &e), NF_OK);
	ck_assert_int_eq(m, 0);
	ck_assert_str_eq(KEYS("ta", NULL), "d");
	json_object_put(f);
}
END_TEST

START_TEST(t_find_and_modify)
{
	struct json_object	*o = NULL;
	struct nf_error		 e;

	ins("ta", "{\"k\":\"a\",\"st\":\"new\",\"p\":2}");
	ins("ta", "{\"k\":\"b\",\"st\":\"new\",\"p\":1}");
	ins("ta", "{\"k\":\"c\",\"st\":\"new\",\"p\":3}");
	/* Before, in sort order. */
	ck_assert_int_eq(fam("ta", "{\"st\":\"new\"}", "{\"p\":1}",
	    "{\"$set\":{\"st\":\"taken\"}}", 0, &o, &e), NF_OK);
	ck_assert_str_eq(field_str(o, "k"), "b");
	ck_assert_str_eq(field_str(o, "st"), "new");
	json_object_put(o);
	/* After. */
	ck_assert_int_eq(fam("ta", "{\"st\":\"new\"}", "{\"p\":-1}",
	    "{\"$set\":{\"st\":\"taken\"},\"$inc\":{\"n\":1}}", NF_STORE_NEW, &o, &e), NF_OK);
	ck_assert_str_eq(field_str(o, "k"), "c");
	ck_assert_str_eq(field_str(o, "st"), "taken");
	ck_assert_int_eq(field_int(o, "n"), 1);
	json_object_put(o);
	/* Remove. */
	ck_assert_int_eq(fam("ta", "{\"st\":\"new\"}", NULL, NULL, NF_STORE_REMOVE, &o, &e),
	    NF_OK);
	ck_assert_str_eq(field_str(o, "k"), "a");
	json_object_put(o);
	ck_assert_int_eq(cnt("ta", NULL), 2);
	/* Nothing left. */
	o = (struct json_object *)1;
	ck_assert_int_eq(fam("ta", "{\"st\":\"new\"}", NULL,
	    "{\"$set\":{\"st\":\"taken\"}}", 0, &o, &e), NF_ENOTFOUND);
	ck_assert_ptr_null(o);
	ck_assert_int_eq(fam("ta", "{\"st\":\"new\"}", NULL, NULL, NF_STORE_REMOVE, &o, &e),
	    NF_ENOTFOUND);
	/* Upsert returning the new document. */
	ck_assert_int_eq(fam("ta", "{\"k\":\"d\"}", NULL, "{\"$set\":{\"st\":\"made\"}}",
	    NF_STORE_UPSERT | NF_STORE_NEW, &o, &e), NF_OK);
	ck_assert_str_eq(field_str(o, "k"), "d");
	ck_assert_str_eq(field_str(o, "st"), "made");
	ck_assert_str_eq(field_str(o, "tenant"), "ta");
	json_object_put(o);
	/* Upsert without NF_STORE_NEW: no "before" document. */
	ck_assert_int_eq(fam("ta", "{\"k\":\"e\"}", NULL, "{\"$set\":{\"st\":\"made\"}}",
	    NF_STORE_UPSERT, &o, &e), NF_OK);
	ck_assert_ptr_null(o);
	ck_assert_int_eq(cnt("ta", "{\"st\":\"made\"}"), 2);
	/* Bad combinations. */
	ck_assert_int_eq(fam("ta", "{}", NULL, "{\"$set\":{\"a\":1}}", NF_STORE_REMOVE, &o,
	    &e), NF_EINVAL);
	ck_assert_int_eq(fam("ta", "{}", NULL, NULL, 0, &o, &e), NF_EINVAL);
	ck_assert_int_eq(fam("ta", "{}", "{\"p\":0}", "{\"$set\":{\"a\":1}}", 0, &o, &e),
	    NF_EINVAL);
}
END_TEST

/* ---- pagination ----------------------------------------------------- */

static int
page_all(const char *tenant, const char *filter, int dir, int64_t limit, char *out,
    size_t outsz)
{
	struct json_object	*f = J(filter), *page, *k;
	struct nf_error		 e;
	char			*cur = NULL, *next = NULL;
	int			 pages = 0;
	size_t			 i;

	out[0] = '\0';
	do {
		ck_assert_int_eq(nf_store_page(S, tenant, C, f, "n", dir, limit, cur, &page,
		    &next, &e), NF_OK);
		ck_assert_int_le(json_object_array_length(page), limit);
		for (i = 0; i < json_object_array_length(page); i++) {
			json_object_object_get_ex(json_object_array_get_idx(page, i), "k", &k);
			if (out[0] != '\0')
				strncat(out, ",", outsz - strlen(out) - 1);
			strncat(out, json_object_get_string(k), outsz - strlen(out) - 1);
		}
		json_object_put(page);
		free(cur);
		cur = next;
		pages++;
		ck_assert_int_lt(pages, 100);
	} while (cur != NULL);
	json_object_put(f);
	return pages;
}

START_TEST(t_page)
{
	static const char	*bad[] = {
		"", "!!!!", "abc", "a+b/", "AAAA====", "bm90IGpzb24",       /* not json */
		"eyJhIjoxfQ", /* {"a":1} */ "WzEsMiwzXQ", /* [1,2,3] */
		"WzEsMl0", /* [1,2] */ "W3siYSI6MX0sIngiXQ", /* [{"a":1},"x"] */
		"WzEsIiJd", /* [1,""] */ "WzEsIngiXSA", /* [1,"x"] + space */
	};
	struct json_object	*page = NULL, *d;
	struct nf_error		 e;
	char			 got[512], want[512], *next = NULL, *cur;
	int			 i, n[] = { 5, 3, 3, 9, 1, 7, 3, 0, 8, 2, 6, 4 };
	size_t			 j;

	want[0] = '\0';
	for (i = 0; i < 24; i++) {
		d = json_object_new_object();
		json_object_object_add(d, "k", json_object_new_string_len(
		    (char[]){ (char)('A' + i) }, 1));
		/* Duplicates in n exercise the _id tie-breaker; two miss n. */
		if (i < 22)
			json_object_object_add(d, "n", json_object_new_int(n[i % 12] + (i / 12) * 10));
		json_object_object_add(d, "_id", json_object_new_string_len(
		    (char[]){ 'i', (char)('a' + i) }, 2));
		ck_assert_int_eq(nf_store_insert(S, i % 5 == 4 ? "tb" : "ta", C, d, NULL, &e),
		    NF_OK);
		json_object_put(d);
	}
	/* Expected order from a plain sorted find. */
	snprintf(want, sizeof(want), "%s", keys("ta", NULL, "{\"n\":1,\"_id\":1}", 0, 0));
	ck_assert_int_ge(page_all("ta", NULL, 1, 4, got, sizeof(got)), 4);
	ck_assert_str_eq(got, want);
	snprintf(want, sizeof(want), "%s", keys("ta", NULL, "{\"n\":-1,\"_id\":-1}", 0, 0));
	ck_assert_int_ge(page_all("ta", NULL, -1, 3, got, sizeof(got)), 5);
	ck_assert_str_eq(got, want);
	snprintf(want, sizeof(want), "%s", keys("ta", "{\"n\":{\"$gte\":5}}",
	    "{\"n\":1,\"_id\":1}", 0, 0));
	page_all("ta", "{\"n\":{\"$gte\":5}}", 1, 2, got, sizeof(got));
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(page_all("ta", NULL, 1, 1000, got, sizeof(got)), 1);
	/* Tenant B pages only its own documents. */
	snprintf(want, sizeof(want), "%s", keys("tb", NULL, "{\"n\":1,\"_id\":1}", 0, 0));
	page_all("tb", NULL, 1, 2, got, sizeof(got));
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(strlen(got), 7);  /* 4 documents */

	/* Limits. */
	ck_assert_int_eq(nf_store_page(S, "ta", C, NULL, "n", 1, 0, NULL, &page, &next, &e),
	    NF_EINVAL);
	ck_assert_int_eq(nf_store_page(S, "ta", C, NULL, "n", 1, 1001, NULL, &page, &next,
	    &e), NF_EINVAL);
	ck_assert_int_eq(nf_store_page(S, "ta", C, NULL, "n", 2, 10, NULL, &page, &next, &e),
	    NF_EINVAL);
	/* Tampered cursors. */
	for (j = 0; j < NF_ARRAY_LEN(bad); j++) {
		ck_assert_msg(nf_store_page(S, "ta", C, NULL, "n", 1, 10, bad[j], &page, &next,
		    &e) == NF_EINVAL, "cursor %s accepted", bad[j]);
		ck_assert_str_eq(e.code, "invalid_cursor");
		ck_assert_ptr_null(page);
		ck_assert_ptr_null(next);
	}
	/* A real cursor with one byte flipped is refused or still well formed. */
	ck_assert_int_eq(nf_store_page(S, "ta", C, NULL, "n", 1, 2, NULL, &page, &next, &e),
	    NF_OK);
	json_object_put(page);
	ck_assert_ptr_nonnull(next);
	next[strlen(next) / 2] = '*';
	cur = next;
	ck_assert_int_eq(nf_store_page(S, "ta", C, NULL, "n", 1, 2, cur, &page, &next, &e),
	    NF_EINVAL);
	ck_assert_str_eq(e.code, "invalid_cursor");
	free(cur);
}
END_TEST

/* ---- tenancy and injection ------------------------------------------ */

START_TEST(t_tenants)
{
	struct json_object	*o = NULL, *f;
	struct nf_error		 e;
	int64_t			 m;

	ins("ta", "{\"_id\":\"a1\",\"k\":\"a\",\"secret\":\"A\",\"n\":1}");
	ins("tb", "{\"_id\":\"b1\",\"k\":\"b\",\"n\":1,\"tenant\":\"ta\"}");
	/* An inserted "tenant" is overwritten by the caller's tenant. */
	ck_assert_str_eq(KEYS("ta", NULL), "a");
	ck_assert_str_eq(KEYS("tb", NULL), "b");
	/* B cannot see A, by _id, by tenant key, through $or. */
	ck_assert_str_eq(KEYS("tb", "{\"_id\":\"a1\"}"), "");
	ck_assert_str_eq(KEYS("tb", "{\"tenant\":\"ta\"}"), "b");
	ck_assert_str_eq(KEYS("tb", "{\"$or\":[{\"tenant\":\"ta\"},{\"_id\":\"a1\"}]}"), "");
	ck_assert_str_eq(KEYS("tb", "{\"tenant\":{\"$ne\":\"tb\"}}"), "b");
	ck_assert_int_eq(cnt("tb", "{\"_id\":\"a1\"}"), 0);
	ck_assert_int_eq(cnt("tb", "{\"tenant\":\"ta\"}"), 1);
	f = J("{\"_id\":\"a1\"}");
	ck_assert_int_eq(nf_store_find_one(S, "tb", C, f, NULL, &o, &e), NF_ENOTFOUND);
	/* B cannot update, claim or delete A's document. */
	ck_assert_int_eq(upd("tb", "{\"_id\":\"a1\"}", "{\"$set\":{\"secret\":\"B\"}}",
	    NF_STORE_MULTI, &m, &e), NF_OK);
	ck_assert_int_eq(m, 0);
	ck_assert_int_eq(upd("tb", "{\"tenant\":\"ta\",\"k\":\"a\"}",
	    "{\"$set\":{\"secret\":\"B\"}}", 0, &m, &e), NF_OK);
	ck_assert_int_eq(m, 0);
	ck_assert_int_eq(upd("tb", "{\"_id\":\"a1\"}", "{\"k\":\"stolen\"}", 0, &m, &e),
	    NF_OK);
	ck_assert_int_eq(m, 0);
	ck_assert_int_eq(fam("tb", "{\"_id\":\"a1\"}", NULL, "{\"$set\":{\"secret\":\"B\"}}",
	    NF_STORE_NEW, &o, &e), NF_ENOTFOUND);
	ck_assert_int_eq(fam("tb", "{\"k\":\"a\"}", NULL, NULL, NF_STORE_REMOVE, &o, &e),
	    NF_ENOTFOUND);
	ck_assert_int_eq(nf_store_delete(S, "tb", C, f, NF_STORE_MULTI, &m, &e), NF_OK);
	ck_assert_int_eq(m, 0);
	/* An upsert by B on A's _id cannot overwrite A's document. */
	ck_assert_int_ne(upd("tb", "{\"_id\":\"a1\"}", "{\"$set\":{\"secret\":\"B\"}}",
	    NF_STORE_UPSERT, &m, &e), NF_OK);
	/* Nor can B move documents between tenants or rename _id. */
	ck_assert_int_eq(upd("tb", "{}", "{\"$set\":{\"tenant\":\"ta\"}}", 0, &m, &e),
	    NF_EINVAL);
	ck_assert_int_eq(upd("tb", "{}", "{\"$unset\":{\"tenant\":1}}", 0, &m, &e), NF_EINVAL);
	ck_assert_int_eq(upd("tb", "{}", "{\"$set\":{\"_id\":\"x\"}}", 0, &m, &e), NF_EINVAL);
	ck_assert_int_eq(upd("tb", "{}", "{\"$inc\":{\"tenant.x\":1}}", 0, &m, &e), NF_EINVAL);
	ck_assert_int_eq(upd("tb", "{}", "{\"$push\":{\"_id\":1}}", 0, &m, &e), NF_EINVAL);
	ck_assert_int_eq(fam("tb", "{}", NULL, "{\"$set\":{\"tenant\":\"ta\"}}", 0, &o, &e),
	    NF_EINVAL);
	ck_assert_int_eq(upd("tb", "{}", "{\"k\":\"b2\",\"tenant\":\"ta\"}", 0, &m, &e),
	    NF_OK);
	ck_assert_str_eq(KEYS("tb", NULL), "b2");
	ck_assert_str_eq(KEYS("ta", NULL), "a");
	o = one("ta", "{\"_id\":\"a1\"}");
	ck_assert_str_eq(field_str(o, "secret"), "A");
	ck_assert_str_eq(field_str(o, "k"), "a");
	json_object_put(o);
	json_object_put(f);
	/* Invalid tenants are refused outright. */
	f = J("{}");
	ck_assert_int_eq(nf_store_find(S, "", C, f, NULL, &o, &e), NF_EINVAL);
	ck_assert_int_eq(nf_store_find(S, NULL, C, f, NULL, &o, &e), NF_EINVAL);
	ck_assert_int_eq(nf_store_find(S, "t a", C, f, NULL, &o, &e), NF_EINVAL);
	json_object_put(f);
}
END_TEST

START_TEST(t_injection)
{
	struct json_object	*f, *out = NULL;
	struct nf_error		 e;

	ins("ta", "{\"k\":\"a\",\"name\":\"alice\",\"pw\":\"x\"}");
	ins("ta", "{\"k\":\"b\",\"name\":\"{\\\"$ne\\\":\\\"\\\"}\"}");
	/* Client strings are data. */
	ck_assert_str_eq(KEYS("ta", "{\"name\":\"{\\\"$ne\\\":\\\"\\\"}\"}"), "b");
	ck_assert_str_eq(KEYS("ta", "{\"name\":\"' OR 1=1--\"}"), "");
	ck_assert_str_eq(KEYS("ta", "{\"name\":\"alice' OR '1'='1\"}"), "");
	ck_assert_str_eq(KEYS("ta", "{\"name\":\"\\\") OR 1 --\"}"), "");
	/* An object under $eq / $in is compared as a value, not run. */
	ck_assert_str_eq(KEYS("ta", "{\"name\":{\"$eq\":{\"$ne\":\"\"}}}"), "");
	ck_assert_str_eq(KEYS("ta", "{\"name\":{\"$in\":[{\"$gt\":\"\"}]}}"), "");
	ck_assert_str_eq(KEYS("ta", "{\"pw\":{\"$eq\":{\"$exists\":true}}}"), "");
	/* A client object put where an operator would go is refused. */
	f = J("{\"name\":{\"$where\":\"1\"}}");
	ck_assert_int_eq(nf_store_find(S, "ta", C, f, NULL, &out, &e), NF_EINVAL);
	ck_assert_ptr_null(out);
	json_object_put(f);
	/* Odd field paths are refused, not pasted. */
	f = J("{\"na'me\":\"x\"}");
	ck_assert_int_eq(nf_store_find(S, "ta", C, f, NULL, &out, &e), NF_EINVAL);
	json_object_put(f);
	f = J("{\"a\\\"b\":\"x\"}");
	ck_assert_int_eq(nf_store_find(S, "ta", C, f, NULL, &out, &e), NF_EINVAL);
	json_object_put(f);
	ck_assert_int_eq(cnt("ta", NULL), 2);
}
END_TEST

START_TEST(t_invalid)
{
	static const char *filters[] = {
		"{\"$where\":\"1\"}", "{\"a\":{\"$regex\":\"x\"}}", "{\"a\":{\"$in\":1}}",
		"{\"a\":{\"$nin\":\"x\"}}", "{\"$and\":[]}", "{\"$or\":{}}", "{\"$or\":[1]}",
		"{\"a\":{\"$gt\":[1]}}", "{\"a\":{\"$gt\":{\"b\":1}}}", "{\"$nor\":[{}]}",
		"{\"a..b\":1}", "{\".a\":1}", "{\"a.\":1}", "{\"a.$b\":1}", "{\"\":1}",
		"{\"a\":{\"$exists\":\"yes\"}}", "{\"a\":{\"$eq\":1,\"b\":2}}", "[]", "5",
		"{\"a\":{\"b\":{\"$gt\":1}}}", "{\"a b\":1}", "{\"a[0]\":1}",
		"{\"a*\":1}", "{\"na$me\":1}", "{\"caf\u00e9\":1}", "{\"a/b\":1}",
	};
	static const char *updates[] = {
		"{}", "{\"$set\":{}}", "{\"$set\":1}", "{\"$rename\":{\"a\":\"b\"}}",
		"{\"$set\":{\"a\":1},\"b\":2}", "{\"$inc\":{\"a\":\"1\"}}",
		"{\"$inc\":{\"a\":null}}", "{\"$push\":{\"a\":{\"$each\":1}}}",
		"{\"$push\":{\"a\":{\"$each\":[1],\"$slice\":1}}}", "{\"$set\":{\"$a\":1}}",
		"{\"$set\":{\"a\":{\"$b\":1}}}", "{\"a\":{\"b.c\":1}}", "{\"$set\":{\"a..b\":1}}",
		"[1]", "{\"$set\":{\"a b\":1}}", "{\"$unset\":{\"a,b\":1}}",
	};
	struct json_object	*f, *u, *out = NULL, *d;
	struct nf_find_opts	 o = { NULL, -1, 0 };
	struct nf_error		 e;
	struct nf_store		*s2 = NULL;
	int64_t			 m;
	size_t			 i;

	ins("ta", "{\"k\":\"a\",\"a\":1}");
	for (i = 0; i < NF_ARRAY_LEN(filters); i++) {
		f = J(filters[i]);
		ck_assert_msg(nf_store_find(S, "ta", C, f, NULL, &out, &e) == NF_EINVAL,
		    "filter %s accepted", filters[i]);
		ck_assert_msg(strstr(e.message, "SELECT") == NULL, "SQL in message");
		json_object_put(f);
	}
	for (i = 0; i < NF_ARRAY_LEN(updates); i++) {
		u = J(updates[i]);
		ck_assert_msg(nf_store_update(S, "ta", C, NULL, u, 0, &m, &e) == NF_EINVAL,
		    "update %s accepted", updates[i]);
		json_object_put(u);
	}
	ck_assert_int_eq(cnt("ta", "{\"a\":1}"), 1);
	/* Documents, collections, options, URIs. */
	d = J("{\"$bad\":1}");
	ck_assert_int_eq(nf_store_insert(S, "ta", C, d, NULL, &e), NF_EINVAL);
	json_object_put(d);
	d = J("{\"a\":{\"b.c\":1}}");
	ck_assert_int_eq(nf_store_insert(S, "ta", C, d, NULL, &e), NF_EINVAL);
	json_object_put(d);
	d = J("[1]");
	ck_assert_int_eq(nf_store_insert(S, "ta", C, d, NULL, &e), NF_EINVAL);
	ck_assert_int_eq(nf_store_insert(S, "ta", "Bad", d, NULL, &e), NF_EINVAL);
	ck_assert_int_eq(nf_store_insert(S, "ta", "a\"b", d, NULL, &e), NF_EINVAL);
	ck_assert_int_eq(nf_store_insert(S, "ta", "1abc", d, NULL, &e), NF_EINVAL);
	json_object_put(d);
	f = J("{}");
	ck_assert_int_eq(nf_store_find(S, "ta", "x; DROP TABLE y", f, NULL, &out, &e),
	    NF_EINVAL);
	ck_assert_int_eq(nf_store_find(S, "ta", C, f, &o, &out, &e), NF_EINVAL);
	o.limit = 0;
	o.sort = J("{\"a\":2}");
	ck_assert_int_eq(nf_store_find(S, "ta", C, f, &o, &out, &e), NF_EINVAL);
	json_object_put(o.sort);
	o.sort = J("{\"a\":\"asc\"}");
	ck_assert_int_eq(nf_store_find(S, "ta", C, f, &o, &out, &e), NF_EINVAL);
	json_object_put(o.sort);
	json_object_put(f);
	ck_assert_int_eq(nf_store_open("postgres://x", &s2, &e), NF_EINVAL);
	ck_assert_int_eq(nf_store_open("sqlite://relative.db", &s2, &e), NF_EINVAL);
	ck_assert_int_eq(nf_store_open(NULL, &s2, &e), NF_EINVAL);
	ck_assert_ptr_null(s2);
}
END_TEST

/* ---- indexes -------------------------------------------------------- */

/*
 * The same values under an indexed path "p" and an unindexed twin "q":
 * every filter must give the same answer on both, so the index shortcut
 * can never change Mongo semantics (array elements, type brackets, null).
 */
START_TEST(t_indexed)
{
	static const char *docs[][2] = {	/* label, value of p and q */
		{ "a", "\"x\"" }, { "b", "[\"x\",\"y\"]" }, { "c", "5" }, { "d", "5.0" },
		{ "e", "\"5\"" }, { "f", "true" }, { "g", "1" }, { "h", "null" },
		{ "i", NULL }, { "j", "{\"a\":1}" }, { "k", "\"[x\"" }, { "l", "[1,true]" },
		{ "m", "\"\\\\\"" }, { "n", "[[\"x\"]]" },
	};
	static const char *filters[] = {
		"{\"F\":\"x\"}", "{\"F\":5}", "{\"F\":\"5\"}", "{\"F\":true}", "{\"F\":1}",
		"{\"F\":false}", "{\"F\":null}", "{\"F\":{\"$eq\":\"y\"}}",
		"{\"F\":{\"$in\":[\"x\",5]}}", "{\"F\":{\"$in\":[true,\"[x\"]}}",
		"{\"F\":{\"$ne\":\"x\"}}", "{\"F\":{\"$nin\":[\"x\",1]}}", "{\"F\":\"[x\"}",
		"{\"F\":{\"$in\":[null,\"y\"]}}", "{\"$or\":[{\"F\":\"y\"},{\"F\":1}]}",
		"{\"F\":{\"a\":1}}", "{\"F\":[1,true]}", "{\"F\":{\"$in\":[]}}",
		"{\"F\":{\"$gte\":5,\"$eq\":5}}", "{\"F\":\"\\\\\"}", "{\"F\":\"z\"}",
		"{\"F\":[\"x\"]}", "{\"$and\":[{\"F\":\"x\"},{\"F\":\"y\"}]}",
	};
	struct nf_index		 ix = { "p", { "p", NULL }, { 1 }, 0 };
	struct json_object	*f;
	struct nf_error		 e;
	char			 buf[256], fp[128], fq[128], *r, *at;
	int64_t			 m = -1;
	size_t			 i;

	ck_assert_int_eq(nf_store_ensure_index(S, C, &ix, &e), NF_OK);
	for (i = 0; i < NF_ARRAY_LEN(docs); i++) {
		if (docs[i][1] != NULL)
			snprintf(buf, sizeof(buf), "{\"k\":\"%s\",\"p\":%s,\"q\":%s}",
			    docs[i][0], docs[i][1], docs[i][1]);
		else
			snprintf(buf, sizeof(buf), "{\"k\":\"%s\"}", docs[i][0]);
		ins("ta", buf);
	}
	ins("tb", "{\"k\":\"other\",\"p\":\"x\",\"q\":\"x\"}");
	for (i = 0; i < NF_ARRAY_LEN(filters); i++) {
		snprintf(fp, sizeof(fp), "%s", filters[i]);
		snprintf(fq, sizeof(fq), "%s", filters[i]);
		for (at = strstr(fp, "\"F\""); at != NULL; at = strstr(at, "\"F\""))
			at[1] = 'p';
		for (at = strstr(fq, "\"F\""); at != NULL; at = strstr(at, "\"F\""))
			at[1] = 'q';
		r = nf_xstrdup(KEYS("ta", fq));
		ck_assert_msg(strcmp(KEYS("ta", fp), r) == 0, "%s: indexed [%s], "
		    "unindexed [%s]", filters[i], KEYS("ta", fp), r);
		free(r);
	}
	ck_assert_str_eq(KEYS("ta", "{\"p\":\"x\"}"), "a,b");
	ck_assert_str_eq(KEYS("ta", "{\"p\":5}"), "c,d");
	ck_assert_str_eq(KEYS("ta", "{\"p\":1}"), "g,l");
	ck_assert_str_eq(KEYS("ta", "{\"p\":true}"), "f,l");
	ck_assert_str_eq(KEYS("ta", "{\"p\":\"[x\"}"), "k");
	ck_assert_str_eq(KEYS("ta", "{\"p\":\"\\\\\"}"), "m");
	ck_assert_str_eq(KEYS("ta", "{\"p\":{\"$in\":[\"y\",\"5\"]}}"), "b,e");
	ck_assert_str_eq(KEYS("tb", "{\"p\":\"x\"}"), "other");
	/* count, update and delete go through the same index path. */
	ck_assert_int_eq(cnt("ta", "{\"p\":\"x\"}"), 2);
	ck_assert_int_eq(upd("ta", "{\"p\":\"x\"}", "{\"$set\":{\"hit\":1}}",
	    NF_STORE_MULTI, &m, &e), NF_OK);
	ck_assert_int_eq(m, 2);
	ck_assert_str_eq(KEYS("ta", "{\"hit\":1}"), "a,b");
	f = J("{\"p\":{\"$in\":[5,true]}}");
	ck_assert_int_eq(nf_store_delete(S, "ta", C, f, NF_STORE_MULTI, &m, &e), NF_OK);
	ck_assert_int_eq(m, 4);
	json_object_put(f);
	ck_assert_str_eq(KEYS("ta", "{\"p\":{\"$in\":[5,true,1]}}"), "g");
	ck_assert_int_eq(cnt("tb", NULL), 1);
}
END_TEST

/* ---- concurrency across processes ----------------------------------- */

#define NPROC	4
#define NINC	200
#define NJOBS	60

/* Child: its own connection; $inc the counter, then claim jobs. */
static int
worker(int slot)
{
	struct nf_store		*s = NULL;
	struct json_object	*f, *u, *out;
	struct nf_error		 e;
	char			 buf[64];
	int			 i, claimed = 0;
	enum nf_err		 rc;

	if (nf_store_open(uri, &s, &e) != NF_OK)
		return 100;
	f = J("{\"_id\":\"counter\"}");
	u = J("{\"$inc\":{\"n\":1}}");
	for (i = 0; i < NINC; i++)
		if (nf_store_update(s, "ta", C, f, u, 0, NULL, &e) != NF_OK)
			return 101;
	json_object_put(f);
	json_object_put(u);
	f = J("{\"state\":\"new\"}");
	snprintf(buf, sizeof(buf), "{\"$set\":{\"state\":\"taken\",\"by\":%d},"
	    "\"$inc\":{\"claims\":1}}", slot);
	u = J(buf);
	for (;;) {
		out = NULL;
		rc = nf_store_find_and_modify(s, "ta", C, f, NULL, u, NF_STORE_NEW, &out, &e);
		if (rc == NF_ENOTFOUND)
			break;
		if (rc != NF_OK || field_int(out, "by") != slot)
			return 102;
		json_object_put(out);
		claimed++;
	}
	json_object_put(f);
	json_object_put(u);
	nf_store_free(s);
	(void)claimed;    /* one process may legitimately claim them all */
	return 0;
}

START_TEST(t_concurrency)
{
	struct json_object	*out = NULL, *f;
	struct nf_error		 e;
	pid_t			 pids[NPROC];
	int			 i, st;
	char			 buf[64];
	int64_t			 per[NPROC], total = 0;

	ins("ta", "{\"_id\":\"counter\",\"n\":0}");
	for (i = 0; i < NJOBS; i++) {
		snprintf(buf, sizeof(buf), "{\"_id\":\"job%02d\",\"state\":\"new\"}", i);
		ins("ta", buf);
	}
	/* The parent's connection must not cross fork(): close it first. */
	nf_store_free(S);
	S = NULL;
	for (i = 0; i < NPROC; i++) {
		ck_assert_int_ge(pids[i] = fork(), 0);
		if (pids[i] == 0)
			_exit(worker(i));
	}
	for (i = 0; i < NPROC; i++) {
		ck_assert_int_eq(waitpid(pids[i], &st, 0), pids[i]);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "worker %d failed with %d", i, WEXITSTATUS(st));
	}
	ck_assert_int_eq(nf_store_open(uri, &S, &e), NF_OK);
	out = one("ta", "{\"_id\":\"counter\"}");
	ck_assert_int_eq(field_int(out, "n"), NPROC * NINC);
	json_object_put(out);
	ck_assert_int_eq(cnt("ta", "{\"state\":\"taken\",\"claims\":1}"), NJOBS);
	ck_assert_int_eq(cnt("ta", "{\"claims\":{\"$gt\":1}}"), 0);
	for (i = 0; i < NPROC; i++) {
		snprintf(buf, sizeof(buf), "{\"by\":%d}", i);
		per[i] = cnt("ta", buf);
		total += per[i];
	}
	ck_assert_int_eq(total, NJOBS);
	f = J("{\"state\":\"new\"}");
	ck_assert_int_eq(nf_store_count(S, "ta", C, f, &total, &e), NF_OK);
	ck_assert_int_eq(total, 0);
	json_object_put(f);
}
END_TEST

/* ---- atomic units (nf_store_atomic) --------------------------------- */

/* Store calls for unit functions: they return the rc, as fn must. */
static enum nf_err
u_ins(struct nf_store *s, const char *tenant, const char *coll, const char *json,
    struct nf_error *e)
{
	struct json_object	*d = J(json);
	enum nf_err		 rc;

	rc = nf_store_insert(s, tenant, coll, d, NULL, e);
	json_object_put(d);
	return rc;
}

static enum nf_err
u_upd(struct nf_store *s, const char *tenant, const char *coll, const char *filter,
    const char *update, struct nf_error *e)
{
	struct json_object	*f = J(filter), *u = J(update);
	enum nf_err		 rc;

	rc = nf_store_update(s, tenant, coll, f, u, 0, NULL, e);
	json_object_put(f);
	json_object_put(u);
	return rc;
}

static enum nf_err
u_del(struct nf_store *s, const char *tenant, const char *coll, const char *filter,
    struct nf_error *e)
{
	struct json_object	*f = J(filter);
	enum nf_err		 rc;

	rc = nf_store_delete(s, tenant, coll, f, 0, NULL, e);
	json_object_put(f);
	return rc;
}

static enum nf_err
u_one(struct nf_store *s, const char *tenant, const char *coll, const char *filter,
    struct json_object **out, struct nf_error *e)
{
	struct json_object	*f = J(filter);
	enum nf_err		 rc;

	rc = nf_store_find_one(s, tenant, coll, f, NULL, out, e);
	json_object_put(f);
	return rc;
}

static int64_t
cnt_coll(const char *tenant, const char *coll, const char *filter)
{
	struct json_object	*f = J(filter);
	struct nf_error		 e;
	int64_t			 n = -1;

	ck_assert_int_eq(nf_store_count(S, tenant, coll, f, &n, &e), NF_OK);
	json_object_put(f);
	return n;
}

struct unit_ctx {
	char		 c2[24];      /* a second collection */
	enum nf_err	 fail;        /* fn returns this at the end (NF_OK: success) */
	int		 runs;        /* times fn ran */
	int64_t		 seen_new;    /* inside the unit: its insert, read back */
	int64_t		 seen_v;      /* inside the unit: its update, read back */
	int		 seen_gone;   /* inside the unit: its delete, read back */
};

/*
 * Insert (tenant ta, collection C), update (tenant tb, collection c2) and
 * delete (ta, C), reading each back inside the unit, then fail on purpose
 * when u->fail says so.
 */
static enum nf_err
unit_writes(struct nf_store *s, void *arg, struct nf_error *e)
{
	struct unit_ctx		*u = arg;
	struct json_object	*out = NULL;
	enum nf_err		 rc;

	u->runs++;
	if ((rc = u_ins(s, "ta", C, "{\"_id\":\"new\",\"k\":\"new\"}", e)) != NF_OK ||
	    (rc = u_upd(s, "tb", u->c2, "{\"_id\":\"b1\"}", "{\"$set\":{\"v\":2}}", e)) != NF_OK ||
	    (rc = u_del(s, "ta", C, "{\"_id\":\"old\"}", e)) != NF_OK)
		return rc;
	if ((rc = u_one(s, "ta", C, "{\"k\":\"new\"}", &out, e)) != NF_OK)
		return rc;
	u->seen_new = out != NULL;
	json_object_put(out);
	if ((rc = u_one(s, "tb", u->c2, "{\"_id\":\"b1\"}", &out, e)) != NF_OK)
		return rc;
	u->seen_v = field_int(out, "v");
	json_object_put(out);
	rc = u_one(s, "ta", C, "{\"_id\":\"old\"}", &out, e);
	u->seen_gone = rc == NF_ENOTFOUND;
	json_object_put(out);
	if (u->fail != NF_OK)
		return nf_error_set(e, u->fail, "unit_said_no", "k", "the unit failed on purpose");
	return NF_OK;
}

static void
unit_seed(struct unit_ctx *u)
{
	memset(u, 0, sizeof(*u));
	snprintf(u->c2, sizeof(u->c2), "%sx", C);
	ins("ta", "{\"_id\":\"old\",\"k\":\"old\"}");
	ck_assert_int_eq(u_ins(S, "tb", u->c2, "{\"_id\":\"b1\",\"v\":1}", NULL), NF_OK);
}

/* Writes across two collections and two tenants land together or not at
 * all; reads inside the unit see the unit's own writes. */
START_TEST(t_atomic_all_or_none)
{
	struct unit_ctx	 u;
	struct nf_error	 e;

	unit_seed(&u);
	u.fail = NF_ECONFLICT;
	ck_assert_int_eq(nf_store_atomic(S, unit_writes, &u, &e), NF_ECONFLICT);
	/* fn's own error comes back as fn set it. */
	ck_assert_str_eq(e.code, "unit_said_no");
	ck_assert_str_eq(e.field, "k");
	ck_assert_int_eq(u.seen_new, 1);
	ck_assert_int_eq(u.seen_v, 2);
	ck_assert_int_eq(u.seen_gone, 1);
	/* ...and nothing of it stayed. */
	ck_assert_int_eq(cnt_coll("ta", C, "{\"_id\":\"new\"}"), 0);
	ck_assert_int_eq(cnt_coll("ta", C, "{\"_id\":\"old\"}"), 1);
	ck_assert_int_eq(cnt_coll("tb", u.c2, "{\"_id\":\"b1\",\"v\":1}"), 1);

	u.fail = NF_OK;
	u.seen_new = u.seen_v = u.seen_gone = 0;
	ck_assert_int_eq(nf_store_atomic(S, unit_writes, &u, &e), NF_OK);
	ck_assert_int_eq(u.seen_new, 1);
	ck_assert_int_eq(u.seen_v, 2);
	ck_assert_int_eq(u.seen_gone, 1);
	ck_assert_int_eq(cnt_coll("ta", C, "{\"_id\":\"new\"}"), 1);
	ck_assert_int_eq(cnt_coll("ta", C, "{\"_id\":\"old\"}"), 0);
	ck_assert_int_eq(cnt_coll("tb", u.c2, "{\"_id\":\"b1\",\"v\":2}"), 1);
	/* Tenancy holds inside units too. */
	ck_assert_int_eq(cnt_coll("tb", C, "{}"), 0);
	ck_assert_int_eq(cnt_coll("ta", u.c2, "{}"), 0);
	ck_assert_int_eq(nf_store_atomic(NULL, unit_writes, &u, &e), NF_EINVAL);
	ck_assert_int_eq(nf_store_atomic(S, NULL, &u, &e), NF_EINVAL);
}
END_TEST

/* An operation error inside a unit fails it (fn passes it on) and the
 * unit's earlier writes are gone: an invalid filter, a duplicate key. */
static enum nf_err
unit_bad_filter(struct nf_store *s, void *arg, struct nf_error *e)
{
	struct json_object	*out = NULL;
	enum nf_err		 rc;

	(void)arg;
	if ((rc = u_ins(s, "ta", C, "{\"_id\":\"n1\",\"k\":\"n1\"}", e)) != NF_OK)
		return rc;
	rc = u_one(s, "ta", C, "{\"k\":{\"$where\":\"1\"}}", &out, e);
	json_object_put(out);
	return rc;
}

static enum nf_err
unit_dup(struct nf_store *s, void *arg, struct nf_error *e)
{
	enum nf_err	 rc;

	(void)arg;
	if ((rc = u_ins(s, "ta", C, "{\"_id\":\"n2\",\"k\":\"n2\"}", e)) != NF_OK)
		return rc;
	return u_ins(s, "ta", C, "{\"_id\":\"old\"}", e);
}

START_TEST(t_atomic_op_error)
{
	struct nf_error	 e;

	ins("ta", "{\"_id\":\"old\",\"k\":\"old\"}");
	ck_assert_int_eq(nf_store_atomic(S, unit_bad_filter, NULL, &e), NF_EINVAL);
	ck_assert_int_eq(cnt("ta", "{\"_id\":\"n1\"}"), 0);
	ck_assert_int_eq(nf_store_atomic(S, unit_dup, NULL, &e), NF_ECONFLICT);
	ck_assert_str_eq(e.code, "duplicate_key");
	ck_assert_int_eq(cnt("ta", "{\"_id\":\"n2\"}"), 0);
	ck_assert_int_eq(cnt("ta", "{}"), 1);
	/* The store is usable afterwards, inside and outside units. */
	ck_assert_int_eq(nf_store_atomic(S, unit_dup, NULL, &e), NF_ECONFLICT);
	ins("ta", "{\"_id\":\"after\"}");
	ck_assert_int_eq(cnt("ta", "{}"), 2);
}
END_TEST

/* Outer unit: insert "o1", a nested unit (inserts "i1", then fails with
 * NF_ENOTFOUND), insert "o2", succeed. */
static enum nf_err
unit_inner(struct nf_store *s, void *arg, struct nf_error *e)
{
	enum nf_err	 rc;

	(void)arg;
	if ((rc = u_ins(s, "ta", C, "{\"_id\":\"i1\"}", e)) != NF_OK)
		return rc;
	return nf_error_set(e, NF_ENOTFOUND, "inner_gave_up", NULL, "the inner unit failed");
}

static enum nf_err
unit_inner_ok(struct nf_store *s, void *arg, struct nf_error *e)
{
	(void)arg;
	return u_ins(s, "ta", C, "{\"_id\":\"i2\"}", e);
}

static enum nf_err
unit_outer(struct nf_store *s, void *arg, struct nf_error *e)
{
	enum nf_err	*inner = arg;
	enum nf_err	 rc;

	if ((rc = u_ins(s, "ta", C, "{\"_id\":\"o1\"}", e)) != NF_OK)
		return rc;
	*inner = nf_store_atomic(s, unit_inner, NULL, e);
	if ((rc = nf_store_atomic(s, unit_inner_ok, NULL, e)) != NF_OK)
		return rc;
	return u_ins(s, "ta", C, "{\"_id\":\"o2\"}", e);
}

/*
 * A nested unit that fails: on SQLite (a savepoint) only its own writes
 * are undone and the outer unit goes on; on MongoDB (no savepoints) its
 * failure fails the whole unit.  Either way the inner unit's writes never
 * land, and a nested unit that succeeds commits with the outer one.
 */
START_TEST(t_atomic_nested)
{
	struct nf_error	 e;
	enum nf_err	 inner = NF_OK, rc;

	rc = nf_store_atomic(S, unit_outer, &inner, &e);
	ck_assert_int_eq(inner, NF_ENOTFOUND);
	ck_assert_int_eq(cnt("ta", "{\"_id\":\"i1\"}"), 0);
	if (strcmp(nf_store_backend(S), "sqlite") == 0) {
		ck_assert_int_eq(rc, NF_OK);
		ck_assert_int_eq(cnt("ta", "{}"), 3);
		ck_assert_int_eq(cnt("ta", "{\"_id\":{\"$in\":[\"o1\",\"i2\",\"o2\"]}}"), 3);
	} else {
		ck_assert_int_eq(rc, NF_ENOTFOUND);
		ck_assert_str_eq(e.code, "inner_gave_up");
		ck_assert_int_eq(cnt("ta", "{}"), 0);
	}
}
END_TEST

static enum nf_err
unit_nested_first(struct nf_store *s, void *arg, struct nf_error *e)
{
	enum nf_err	*inner = arg;

	*inner = nf_store_atomic(s, unit_inner, NULL, e);
	return NF_OK;
}

/* A unit that fails after the first write ever to a collection leaves the
 * collection usable: whatever the backend set up for it inside the unit
 * is rolled back with it and must be set up again. */
START_TEST(t_atomic_new_collection)
{
	struct json_object	*d = J("{\"_id\":\"x\"}");
	struct nf_error		 e;
	enum nf_err		 inner = NF_OK;

	ck_assert_int_eq(nf_store_atomic(S, unit_inner, NULL, &e), NF_ENOTFOUND);
	ck_assert_int_eq(cnt("ta", "{}"), 0);
	ck_assert_int_eq(nf_store_insert(S, "ta", C, d, NULL, &e), NF_OK);
	ck_assert_int_eq(cnt("ta", "{}"), 1);
	/* The same for a nested unit's first write, on a fresh collection. */
	strcat(C, "n");
	(void)nf_store_atomic(S, unit_nested_first, &inner, &e);
	ck_assert_int_eq(inner, NF_ENOTFOUND);
	ck_assert_int_eq(nf_store_insert(S, "ta", C, d, NULL, &e), NF_OK);
	ck_assert_int_eq(cnt("ta", "{\"_id\":\"x\"}"), 1);
	json_object_put(d);
}
END_TEST

#define UNIT_PROCS	2
#define UNIT_BUMPS	200

/* Read the counter, write it back plus one: a lost update without the
 * unit's isolation. */
static enum nf_err
unit_bump(struct nf_store *s, void *arg, struct nf_error *e)
{
	struct json_object	*out = NULL;
	char			 buf[64];
	enum nf_err		 rc;
	int64_t			 n;

	(void)arg;
	if ((rc = u_one(s, "ta", C, "{\"_id\":\"counter\"}", &out, e)) != NF_OK)
		return rc;
	n = field_int(out, "n");
	json_object_put(out);
	snprintf(buf, sizeof(buf), "{\"$set\":{\"n\":%lld}}", (long long)n + 1);
	return u_upd(s, "ta", C, "{\"_id\":\"counter\"}", buf, e);
}

static int
unit_worker(void)
{
	struct nf_store	*s = NULL;
	struct nf_error	 e;
	int		 i;

	if (nf_store_open(uri, &s, &e) != NF_OK)
		return 100;
	for (i = 0; i < UNIT_BUMPS; i++)
		if (nf_store_atomic(s, unit_bump, NULL, &e) != NF_OK) {
			fprintf(stderr, "unit %d: %s\n", i, e.message);
			return 101;
		}
	nf_store_free(s);
	return 0;
}

START_TEST(t_atomic_concurrency)
{
	struct json_object	*out;
	struct nf_error		 e;
	pid_t			 pids[UNIT_PROCS];
	int			 i, st;

	ins("ta", "{\"_id\":\"counter\",\"n\":0}");
	nf_store_free(S);
	S = NULL;
	for (i = 0; i < UNIT_PROCS; i++) {
		ck_assert_int_ge(pids[i] = fork(), 0);
		if (pids[i] == 0)
			_exit(unit_worker());
	}
	for (i = 0; i < UNIT_PROCS; i++) {
		ck_assert_int_eq(waitpid(pids[i], &st, 0), pids[i]);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "worker %d failed with %d", i, WEXITSTATUS(st));
	}
	ck_assert_int_eq(nf_store_open(uri, &S, &e), NF_OK);
	out = one("ta", "{\"_id\":\"counter\"}");
	ck_assert_int_eq(field_int(out, "n"), UNIT_PROCS * UNIT_BUMPS);
	json_object_put(out);
}
END_TEST

/* ---- SQLite-only failure behaviour ---------------------------------- */

static char	*sqlite_path;   /* file behind uri when it is SQLite */
static char	*tmpdir;        /* directory of sqlite_path */

/* A writer that holds the lock past the timeout gives 503, no SQL text. */
START_TEST(t_sqlite_busy)
{
	sqlite3		*db = NULL;
	struct nf_error	 e;
	int64_t		 m = -1, t0;
	enum nf_err	 rc;

	ins("ta", "{\"k\":\"a\",\"n\":1}");
	ck_assert_int_eq(sqlite3_open(sqlite_path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	t0 = nf_mono_ms();
	rc = upd("ta", "{\"k\":\"a\"}", "{\"$inc\":{\"n\":1}}", 0, &m, &e);
	ck_assert_int_eq(rc, NF_EUNAVAIL);
	ck_assert_int_ge(nf_mono_ms() - t0, 4000);
	ck_assert_str_eq(e.code, "store_unavailable");
	ck_assert_ptr_null(strstr(e.message, "lock"));
	ck_assert_ptr_null(strstr(e.message, "SQL"));
	ck_assert_int_eq(m, 0);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	/* Reads were never blocked, and the store works again. */
	ck_assert_int_eq(upd("ta", "{\"k\":\"a\"}", "{\"$inc\":{\"n\":1}}", 0, &m, &e),
	    NF_OK);
	ck_assert_int_eq(cnt("ta", "{\"n\":2}"), 1);
}
END_TEST

/* A unit that changes "held", says so on *fd, then never ends: a writer
 * that hangs, or is killed, in the middle of its transaction. */
static enum nf_err
hold_unit(struct nf_store *s, void *arg, struct nf_error *e)
{
	enum nf_err	 rc = u_upd(s, "ta", C, "{\"_id\":\"held\"}", "{\"$set\":{\"n\":99}}", e);

	if (rc == NF_OK && write(*(int *)arg, "x", 1) != 1)
		rc = NF_EUNAVAIL;
	while (rc == NF_OK)
		pause();
	return rc;
}

/* A forked process inside hold_unit (returns once it holds the lock). */
static pid_t
holder(void)
{
	struct nf_store	*s = NULL;
	struct nf_error	 e;
	pid_t		 pid;
	int		 p[2];
	char		 c;

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_ge(pid = fork(), 0);
	if (pid == 0) {
		close(p[0]);
		if (nf_store_open(uri, &s, &e) == NF_OK)
			nf_store_atomic(s, hold_unit, &p[1], &e);
		_exit(1);
	}
	close(p[1]);
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	close(p[0]);
	return pid;
}

/* A writer killed mid-transaction: the next one goes on at once, and the
 * dead one's change is gone. */
START_TEST(t_sqlite_writer_killed)
{
	struct json_object	*out;
	struct nf_error		 e;
	int64_t			 m = 0, t0;
	pid_t			 pid;
	int			 st;

	ins("ta", "{\"_id\":\"held\",\"n\":1}");
	pid = holder();
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	t0 = nf_mono_ms();
	ck_assert_int_eq(upd("ta", "{\"_id\":\"held\"}", "{\"$inc\":{\"n\":1}}", 0, &m, &e),
	    NF_OK);
	ck_assert_int_lt(nf_mono_ms() - t0, 1000);
	out = one("ta", "{\"_id\":\"held\"}");
	ck_assert_int_eq(field_int(out, "n"), 2);
	json_object_put(out);
}
END_TEST

/* A writer that hangs mid-transaction: the others get 503 after the busy
 * timeout, not a wait without end; reads go on. */
START_TEST(t_sqlite_writer_hung)
{
	struct json_object	*out;
	struct nf_error		 e;
	int64_t			 m = 0, t0;
	pid_t			 pid;
	enum nf_err		 rc;
	int			 st;

	ins("ta", "{\"_id\":\"held\",\"n\":1}");
	pid = holder();
	t0 = nf_mono_ms();
	rc = upd("ta", "{\"_id\":\"held\"}", "{\"$inc\":{\"n\":1}}", 0, &m, &e);
	ck_assert_int_eq(rc, NF_EUNAVAIL);
	ck_assert_str_eq(e.code, "store_unavailable");
	ck_assert_int_ge(nf_mono_ms() - t0, 4000);
	ck_assert_int_lt(nf_mono_ms() - t0, 9000);
	out = one("ta", "{\"_id\":\"held\"}");
	ck_assert_int_eq(field_int(out, "n"), 1);
	json_object_put(out);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_int_eq(upd("ta", "{\"_id\":\"held\"}", "{\"$inc\":{\"n\":1}}", 0, &m, &e),
	    NF_OK);
}
END_TEST

/* The query plan of a find on tenant "ta" (malloc'd). */
static char *
plan(const char *filter)
{
	struct json_object	*f = J(filter);
	struct nf_error		 e;
	char			*p = NULL;

	ck_assert_int_eq(nf_store_sqlite_plan(S, "ta", C, f, NULL, &p, &e), NF_OK);
	json_object_put(f);
	return p;
}

/* Equality lookups on an indexed path search that index, tenant first. */
START_TEST(t_sqlite_plan)
{
	struct nf_index	 ix = { "phone", { "profile.phone", NULL }, { 1 }, 0 };
	struct nf_index	 ux = { "email", { "email", "name", NULL }, { 1, -1 }, 1 };
	struct nf_error	 e;
	char		 want[128], wantu[128], tenant_only[128], *p;
	int		 i;

	snprintf(want, sizeof(want), "SEARCH c_%s USING INDEX i_%s__phone "
	    "(tenant=? AND <expr>=?)", C, C);
	snprintf(wantu, sizeof(wantu), "SEARCH c_%s USING INDEX i_%s__email "
	    "(tenant=? AND <expr>=?)", C, C);
	snprintf(tenant_only, sizeof(tenant_only), "USING INDEX c_%s__tenant (tenant=?)", C);
	/* Before the index exists the tenant's rows are scanned. */
	p = plan("{\"profile.phone\":\"+15550001\"}");
	ck_assert_msg(strstr(p, tenant_only) != NULL, "plan:\n%s", p);
	free(p);
	ck_assert_int_eq(nf_store_ensure_index(S, C, &ix, &e), NF_OK);
	ck_assert_int_eq(nf_store_ensure_index(S, C, &ux, &e), NF_OK);
	for (i = 0; i < 50; i++) {
		char buf[128];

		snprintf(buf, sizeof(buf), "{\"k\":\"%02d\",\"email\":\"u%d@example.com\","
		    "\"profile\":{\"phone\":\"+1555%07d\"}}", i, i, i);
		ins(i % 2 ? "ta" : "tb", buf);
	}
	for (i = 0; i < 2; i++) {
		p = plan("{\"profile.phone\":\"+15550000001\"}");
		ck_assert_msg(strstr(p, want) != NULL, "plan:\n%s", p);
		ck_assert_msg(strstr(p, tenant_only) == NULL, "plan:\n%s", p);
		free(p);
		p = plan("{\"profile.phone\":{\"$in\":[\"+15550000001\",\"+15550000003\"]}}");
		ck_assert_msg(strstr(p, want) != NULL, "plan:\n%s", p);
		free(p);
		p = plan("{\"email\":{\"$eq\":\"u1@example.com\"},\"k\":\"01\"}");
		ck_assert_msg(strstr(p, wantu) != NULL, "plan:\n%s", p);
		free(p);
		/* A second key alone, or an unindexed field, cannot use them. */
		p = plan("{\"name\":\"x\"}");
		ck_assert_msg(strstr(p, "i_") == NULL && strstr(p, tenant_only) != NULL,
		    "plan:\n%s", p);
		free(p);
		/* A new connection learns the indexes from the schema. */
		nf_store_free(S);
		ck_assert_int_eq(nf_store_open(uri, &S, &e), NF_OK);
	}
	ck_assert_str_eq(KEYS("ta", "{\"profile.phone\":\"+15550000001\"}"), "01");
	ck_assert_str_eq(KEYS("ta", "{\"profile.phone\":\"+15550000002\"}"), "");
	ck_assert_str_eq(KEYS("tb", "{\"profile.phone\":\"+15550000002\"}"), "02");
	ck_assert_str_eq(KEYS("ta", "{\"email\":\"u3@example.com\"}"), "03");
	/* Not a SQLite store, or a bad collection: refused. */
	ck_assert_int_eq(nf_store_sqlite_plan(NULL, "ta", C, NULL, NULL, &p, &e), NF_EINVAL);
	ck_assert_int_eq(nf_store_sqlite_plan(S, "ta", "x\"y", NULL, NULL, &p, &e),
	    NF_EINVAL);
	ck_assert_ptr_null(p);
}
END_TEST

/* Write helpers on a second store s (tenant "ta", this test's collection). */
static enum nf_err
ins_rc(struct nf_store *s, const char *json, struct nf_error *e)
{
	struct json_object	*d = J(json);
	enum nf_err		 rc;

	rc = nf_store_insert(s, "ta", C, d, NULL, e);
	json_object_put(d);
	return rc;
}

static int64_t
cnt_in(struct nf_store *s, const char *filter)
{
	struct json_object	*f = J(filter);
	struct nf_error		 e;
	int64_t			 n = -1;

	ck_assert_int_eq(nf_store_count(s, "ta", C, f, &n, &e), NF_OK);
	json_object_put(f);
	return n;
}

static void
integrity_ok(const char *path)
{
	sqlite3		*db = NULL;
	sqlite3_stmt	*st = NULL;

	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void
full_bad_uris(const char *path)
{
	static const char *bad[] = {
		"?max_pages=0", "?max_pages=x", "?max_pages=", "?foo=1", "?max_pages=-5",
		"?max_pages= 5", "?max_pages=99999999999", "?max_pages=5&x=1", "?",
	};
	struct nf_store	*s = NULL;
	struct nf_error	 e;
	char		*u;
	size_t		 i;

	for (i = 0; i < NF_ARRAY_LEN(bad); i++) {
		u = nf_xasprintf("sqlite://%s%s", path, bad[i]);
		ck_assert_msg(nf_store_open(u, &s, &e) == NF_EINVAL, "%s accepted", bad[i]);
		ck_assert_str_eq(e.code, "invalid_store_uri");
		ck_assert_ptr_null(s);
		free(u);
	}
	ck_assert_int_eq(nf_store_open("sqlite://:memory:?max_pages=100", &s, &e), NF_OK);
	ck_assert_int_eq(nf_store_ping(s, &e), NF_OK);
	nf_store_free(s);
}

/*
 * Battery item 57, disk full: a store capped by ?max_pages=N fails writes
 * past the cap with 503 store_unavailable, rolls the whole transaction
 * back (no partial document, no partly applied multi-update or upsert),
 * passes PRAGMA integrity_check, and takes writes again once space is
 * freed, on the same connection.
 */
START_TEST(t_sqlite_full)
{
	struct nf_store		*s = NULL;
	struct json_object	*out = NULL, *all, *big, *upf, *old;
	struct nf_error		 e;
	char			*path, *u, pad[2049], doc[2200];
	int64_t			 m = -1;
	enum nf_err		 rc = NF_OK;
	int			 n, i;

	path = nf_xasprintf("%s/full-%s.db", tmpdir, C);
	full_bad_uris(path);
	u = nf_xasprintf("sqlite://%s?max_pages=48", path);
	ck_assert_int_eq(nf_store_open(u, &s, &e), NF_OK);
	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	for (n = 0; n < 1000; n++) {
		snprintf(doc, sizeof(doc), "{\"_id\":\"d%04d\",\"n\":%d,\"pad\":\"%s\"}",
		    n, n, pad);
		if ((rc = ins_rc(s, doc, &e)) != NF_OK)
			break;
	}
	ck_assert_int_eq(rc, NF_EUNAVAIL);
	ck_assert_str_eq(e.code, "store_unavailable");
	ck_assert_ptr_null(strstr(e.message, "SQL"));
	ck_assert_ptr_null(strstr(e.message, "disk"));
	ck_assert_int_gt(n, 10);
	ck_assert_int_eq(cnt_in(s, "{}"), n);    /* the failed one is not there */

	/* An upsert through find_and_modify past the cap leaves nothing. */
	snprintf(doc, sizeof(doc), "{\"$set\":{\"big\":\"%s\"}}", pad);
	big = J(doc);
	upf = J("{\"_id\":\"new\"}");
	ck_assert_int_eq(nf_store_find_and_modify(s, "ta", C, upf, NULL, big,
	    NF_STORE_UPSERT | NF_STORE_NEW, &out, &e), NF_EUNAVAIL);
	ck_assert_ptr_null(out);
	ck_assert_int_eq(cnt_in(s, "{\"_id\":\"new\"}"), 0);
	integrity_ok(path);

	/* Freeing space makes writes work again... */
	old = J("{\"n\":{\"$lt\":10}}");
	ck_assert_int_eq(nf_store_delete(s, "ta", C, old, NF_STORE_MULTI, &m, &e), NF_OK);
	ck_assert_int_eq(m, 10);
	/* ...but a multi-update that runs out of it half-way through is
	 * rolled back as a whole: no document has the new field. */
	all = J("{}");
	ck_assert_int_eq(nf_store_update(s, "ta", C, all, big, NF_STORE_MULTI, &m, &e),
	    NF_EUNAVAIL);
	ck_assert_int_eq(m, 0);
	ck_assert_int_eq(cnt_in(s, "{\"big\":{\"$exists\":true}}"), 0);
	for (i = 0; i < 5; i++) {
		snprintf(doc, sizeof(doc), "{\"_id\":\"again%d\",\"pad\":\"%s\"}", i, pad);
		ck_assert_int_eq(ins_rc(s, doc, &e), NF_OK);
	}
	ck_assert_int_eq(cnt_in(s, "{}"), n - 10 + 5);
	nf_store_free(s);
	integrity_ok(path);
	json_object_put(all);
	json_object_put(big);
	json_object_put(upf);
	json_object_put(old);
	free(u);
	free(path);
}
END_TEST

struct full_ctx {
	char		 pad[2049];
	int		 inserted;   /* big documents the unit got in */
};

/* A marker, then big documents until the capped file is full. */
static enum nf_err
unit_fill(struct nf_store *s, void *arg, struct nf_error *e)
{
	struct full_ctx	*f = arg;
	char		 doc[2200];
	enum nf_err	 rc;

	if ((rc = u_ins(s, "ta", C, "{\"_id\":\"marker\"}", e)) != NF_OK)
		return rc;
	for (f->inserted = 0; f->inserted < 1000; f->inserted++) {
		snprintf(doc, sizeof(doc), "{\"_id\":\"u%04d\",\"pad\":\"%s\"}", f->inserted,
		    f->pad);
		if ((rc = u_ins(s, "ta", C, doc, e)) != NF_OK)
			return rc;
	}
	return NF_OK;
}

/* A unit that runs out of disk (max_pages cap) half-way leaves nothing,
 * and the store takes units again afterwards. */
START_TEST(t_sqlite_full_unit)
{
	struct nf_store		*keep = S;
	struct full_ctx		 f;
	struct nf_error		 e;
	char			*path, *u;

	path = nf_xasprintf("%s/fullu-%s.db", tmpdir, C);
	u = nf_xasprintf("sqlite://%s?max_pages=48", path);
	ck_assert_int_eq(nf_store_open(u, &S, &e), NF_OK);
	ins("ta", "{\"_id\":\"before\"}");
	memset(&f, 0, sizeof(f));
	memset(f.pad, 'x', sizeof(f.pad) - 1);
	ck_assert_int_eq(nf_store_atomic(S, unit_fill, &f, &e), NF_EUNAVAIL);
	ck_assert_str_eq(e.code, "store_unavailable");
	ck_assert_int_gt(f.inserted, 10);
	ck_assert_int_eq(cnt("ta", "{}"), 1);
	integrity_ok(path);
	ck_assert_int_eq(nf_store_atomic(S, unit_inner_ok, NULL, &e), NF_OK);
	ck_assert_int_eq(cnt("ta", "{}"), 2);
	nf_store_free(S);
	S = keep;
	integrity_ok(path);
	free(u);
	free(path);
}
END_TEST

/*
 * I/O errors: a VFS over the default one whose xWrite fails with
 * SQLITE_IOERR_WRITE while io_fail is set, as a dying disk would.  It is
 * registered as the default VFS inside this test only (Check forks a
 * process per test) and passes everything else through.
 */
struct shim_file {
	sqlite3_file	 base;
	sqlite3_file	*real;    /* the default VFS's file, allocated behind */
};

static sqlite3_vfs	*real_vfs;
static int		 io_fail;

#define REAL(f) (((struct shim_file *)(f))->real)

static int
shim_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}

static int
shim_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
	return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}

static int
shim_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	if (io_fail)
		return SQLITE_IOERR_WRITE;
	return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}

static int
shim_truncate(sqlite3_file *f, sqlite3_int64 n)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), n);
}

static int
shim_sync(sqlite3_file *f, int fl)
{
	return REAL(f)->pMethods->xSync(REAL(f), fl);
}

static int
shim_size(sqlite3_file *f, sqlite3_int64 *n)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), n);
}

static int
shim_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}

static int
shim_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}

static int
shim_reserved(sqlite3_file *f, int *r)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r);
}

static int
shim_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int
shim_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int
shim_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int
shim_shmmap(sqlite3_file *f, int pg, int sz, int ext, void volatile **p)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, p);
}

static int
shim_shmlock(sqlite3_file *f, int off, int n, int fl)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, fl);
}

static void
shim_shmbarrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int
shim_shmunmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static const sqlite3_io_methods shim_io = {
	2, shim_close, shim_read, shim_write, shim_truncate, shim_sync, shim_size,
	shim_lock, shim_unlock, shim_reserved, shim_fcntl, shim_sector, shim_devchar,
	shim_shmmap, shim_shmlock, shim_shmbarrier, shim_shmunmap, NULL, NULL,
};

static int
shim_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out)
{
	struct shim_file	*s = (struct shim_file *)f;
	int			 rc;

	(void)v;
	s->real = (sqlite3_file *)(s + 1);
	s->base.pMethods = NULL;
	rc = real_vfs->xOpen(real_vfs, name, s->real, flags, out);
	if (s->real->pMethods != NULL)
		s->base.pMethods = &shim_io;
	return rc;
}

static void
shim_register(void)
{
	static sqlite3_vfs	 shim;

	real_vfs = sqlite3_vfs_find(NULL);
	ck_assert_ptr_nonnull(real_vfs);
	shim = *real_vfs;
	shim.zName = "nf-test-shim";
	shim.szOsFile = (int)sizeof(struct shim_file) + real_vfs->szOsFile;
	shim.xOpen = shim_open;
	shim.pNext = NULL;
	ck_assert_int_eq(sqlite3_vfs_register(&shim, 1), SQLITE_OK);
}

/* Battery item 57, I/O error: 503, rolled back, intact, and recovers. */
START_TEST(t_sqlite_ioerr)
{
	struct nf_store		*s = NULL;
	struct json_object	*all = J("{}"), *inc = J("{\"$inc\":{\"n\":1}}");
	struct nf_error		 e;
	char			*path, *u;
	int64_t			 m = -1;
	int			 i;

	shim_register();
	path = nf_xasprintf("%s/io-%s.db", tmpdir, C);
	u = nf_xasprintf("sqlite://%s", path);
	ck_assert_int_eq(nf_store_open(u, &s, &e), NF_OK);
	for (i = 0; i < 20; i++)
		ck_assert_int_eq(ins_rc(s, "{\"k\":\"a\",\"n\":0}", &e), NF_OK);
	io_fail = 1;
	ck_assert_int_eq(ins_rc(s, "{\"_id\":\"lost\",\"k\":\"b\"}", &e), NF_EUNAVAIL);
	ck_assert_str_eq(e.code, "store_unavailable");
	ck_assert_int_eq(nf_store_update(s, "ta", C, all, inc, NF_STORE_MULTI, &m, &e),
	    NF_EUNAVAIL);
	ck_assert_int_eq(m, 0);
	io_fail = 0;
	/* Reads work throughout; nothing of the failed writes is visible. */
	ck_assert_int_eq(cnt_in(s, "{}"), 20);
	ck_assert_int_eq(cnt_in(s, "{\"n\":0}"), 20);
	ck_assert_int_eq(cnt_in(s, "{\"_id\":\"lost\"}"), 0);
	/* And once the disk behaves again, so do writes. */
	ck_assert_int_eq(ins_rc(s, "{\"_id\":\"later\",\"k\":\"c\"}", &e), NF_OK);
	ck_assert_int_eq(cnt_in(s, "{}"), 21);
	nf_store_free(s);
	integrity_ok(path);
	ck_assert_int_eq(sqlite3_vfs_unregister(sqlite3_vfs_find("nf-test-shim")),
	    SQLITE_OK);
	ck_assert_int_eq(sqlite3_vfs_register(real_vfs, 1), SQLITE_OK);
	json_object_put(all);
	json_object_put(inc);
	free(u);
	free(path);
}
END_TEST

/* ---- runner --------------------------------------------------------- */

static Suite *
store_suite(const char *name, int sqlite)
{
	Suite	*s = suite_create(name);
	TCase	*tc = tcase_create("conformance");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_insert_find);
	tcase_add_test(tc, t_duplicates);
	tcase_add_test(tc, t_dotted);
	tcase_add_test(tc, t_arrays);
	tcase_add_test(tc, t_operators);
	tcase_add_test(tc, t_sort_limit);
	tcase_add_test(tc, t_update_ops);
	tcase_add_test(tc, t_replace);
	tcase_add_test(tc, t_upsert);
	tcase_add_test(tc, t_multi_delete);
	tcase_add_test(tc, t_find_and_modify);
	tcase_add_test(tc, t_page);
	tcase_add_test(tc, t_tenants);
	tcase_add_test(tc, t_injection);
	tcase_add_test(tc, t_invalid);
	tcase_add_test(tc, t_indexed);
	tcase_add_test(tc, t_concurrency);
	tcase_add_test(tc, t_atomic_all_or_none);
	tcase_add_test(tc, t_atomic_op_error);
	tcase_add_test(tc, t_atomic_nested);
	tcase_add_test(tc, t_atomic_new_collection);
	tcase_add_test(tc, t_atomic_concurrency);
	if (sqlite) {
		tcase_add_test(tc, t_sqlite_busy);
		tcase_add_test(tc, t_sqlite_writer_killed);
		tcase_add_test(tc, t_sqlite_writer_hung);
		tcase_add_test(tc, t_sqlite_plan);
		tcase_add_test(tc, t_sqlite_full);
		tcase_add_test(tc, t_sqlite_full_unit);
		tcase_add_test(tc, t_sqlite_ioerr);
	}
	suite_add_tcase(s, tc);
	return s;
}

/* mongodb://host/db?opts -> same URI with db_<random>; *db gets the name. */
static char *
mongo_test_uri(const char *base, char **db)
{
	const char	*hosts, *slash, *q;
	char		 hex[9], *name, *out;
	size_t		 dblen;

	nf_random_hex(hex, 4);
	hosts = strstr(base, "://");
	hosts = hosts != NULL ? hosts + 3 : base;
	slash = strchr(hosts, '/');
	q = strchr(hosts, '?');
	if (slash == NULL || (q != NULL && slash > q)) {
		*db = nf_xasprintf("nonflex_test_%s", hex);
		dblen = (size_t)((q != NULL ? q : base + strlen(base)) - base);
		out = nf_xasprintf("%.*s/%s%s", (int)dblen, base, *db, q != NULL ? q : "");
		return out;
	}
	dblen = (size_t)((q != NULL ? q : slash + strlen(slash)) - slash - 1);
	name = nf_xasprintf("%.*s", (int)dblen, slash + 1);
	*db = nf_xasprintf("%s_%s", name[0] != '\0' ? name : "nonflex_test", hex);
	out = nf_xasprintf("%.*s/%s%s", (int)(slash - base), base, *db, q != NULL ? q : "");
	free(name);
	return out;
}

static void
mongo_drop(const char *u, const char *db)
{
	mongoc_client_t		*c;
	mongoc_database_t	*d;
	bson_error_t		 err;

	mongoc_init();
	if ((c = mongoc_client_new(u)) != NULL) {
		d = mongoc_client_get_database(c, db);
		if (!mongoc_database_drop(d, &err))
			fprintf(stderr, "t_store: dropping %s: %s\n", db, err.message);
		mongoc_database_destroy(d);
		mongoc_client_destroy(c);
	}
	mongoc_cleanup();
}

int
main(void)
{
	const char	*mongo = getenv("TEST_MONGO_URI");
	char		*dir, *db = NULL, *muri;
	int		 rc;

	dir = tmpdir = tu_tmpdir("store");
	sqlite_path = nf_xasprintf("%s/store.db", dir);
	uri = nf_xasprintf("sqlite://%s", sqlite_path);
	rc = tu_run(store_suite("store-sqlite", 1));
	tu_rmtree(dir);
	free(dir);
	if (mongo == NULL || mongo[0] == '\0') {
		printf("store-mongodb: SKIPPED (TEST_MONGO_URI is not set)\n");
	} else {
		muri = mongo_test_uri(mongo, &db);
		uri = muri;
		rc |= tu_run(store_suite("store-mongodb", 0));
		mongo_drop(muri, db);
		free(muri);
		free(db);
	}
	return rc;
}
