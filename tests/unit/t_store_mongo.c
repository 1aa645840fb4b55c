/*
 * t_store_mongo.c - tests of the MongoDB backend (fcgi/store_mongo.c) that
 * the shared conformance suite (t_store.c) does not cover.
 *
 * Always run (no server needed): URI errors never echo the password, open
 * does not block, every operation against an unreachable server answers
 * NF_EUNAVAIL "store_unavailable" within the server-selection timeout
 * (2000 ms by default) without driver text or secrets, and invalid values
 * are rejected before any network I/O.
 *
 * With TEST_MONGO_URI set (mongodb://host:27017/nonflex_test): data shaped
 * like the original Node/Mongoose app's (ObjectId _id, BSON dates, int32
 * __v), written directly with libmongoc, is found, updated and removed
 * through nf_store_* by its 24-hex id; duplicate keys are NF_ECONFLICT.
 * The test collection is dropped afterwards.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <json-c/json.h>
#include <mongoc/mongoc.h>

#include "nonflex.h"
#include "store.h"
#include "testutil.h"

#define SECRET "s3cretPW-do-not-leak"

static char	 errlog[4096];     /* file receiving this test's stderr */

/* Send stderr (the log) to a file we can search for the secret. */
static void
capture_stderr(void)
{
	int	 fd;

	snprintf(errlog, sizeof(errlog), "%s/t_store_mongo.%ld.log",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (long)getpid());
	fd = open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
	close(fd);
}

/* 1 when the captured log contains needle; removes the file. */
static int
log_contains(const char *needle)
{
	FILE	*f = fopen(errlog, "r");
	char	 buf[65536];
	size_t	 n;

	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(errlog);
	return strstr(buf, needle) != NULL;
}

static void
assert_clean(const struct nf_error *e)
{
	ck_assert_ptr_null(strstr(e->message, SECRET));
	ck_assert_ptr_null(strstr(e->message, "mongo"));   /* no driver text */
}

START_TEST(test_bad_uri)
{
	static const char	*bad[] = {
		"mongodb://user:" SECRET "@",
		"mongodb://user:" SECRET "@host:notaport/db",
		"mongodb://user:" SECRET "@host/db?serverSelectionTimeoutMS=abc&w=x&unknown=1&tls=maybe",
		"mongodb://",
		/* The driver echoes option values: the log must star them. */
		"mongodb://user:" SECRET "@host/db?tls=" SECRET,
		"mongodb://user:" SECRET "@host/db?w=" SECRET "&journal=" SECRET,
	};
	struct nf_store		*s = NULL;
	struct nf_error		 e;
	size_t			 i;

	capture_stderr();
	for (i = 0; i < NF_ARRAY_LEN(bad); i++) {
		nf_error_clear(&e);
		ck_assert_int_eq(nf_store_open(bad[i], &s, &e), NF_EINVAL);
		ck_assert_ptr_null(s);
		ck_assert_str_eq(e.code, "invalid_store_uri");
		ck_assert_ptr_null(strstr(e.message, SECRET));
	}
	ck_assert_msg(!log_contains(SECRET), "the password reached the log");
}
END_TEST

/* Every operation against a port nobody listens on. */
static void
all_ops_unavailable(struct nf_store *s)
{
	struct json_object	*doc = json_tokener_parse("{\"name\":\"x\"}");
	struct json_object	*upd = json_tokener_parse("{\"$set\":{\"n\":1}}");
	struct json_object	*out = NULL;
	struct nf_index		 ix = { "name_1", { "name", NULL }, { 1 }, 1 };
	struct nf_error		 e;
	int64_t			 n;

#define UNAVAIL(call) do {						\
		nf_error_clear(&e);					\
		ck_assert_int_eq((call), NF_EUNAVAIL);			\
		ck_assert_str_eq(e.code, "store_unavailable");		\
		assert_clean(&e);					\
	} while (0)
	UNAVAIL(nf_store_ping(s, &e));
	UNAVAIL(nf_store_ensure_index(s, "agents", &ix, &e));
	UNAVAIL(nf_store_insert(s, "t1", "agents", doc, NULL, &e));
	UNAVAIL(nf_store_find(s, "t1", "agents", doc, NULL, &out, &e));
	ck_assert_ptr_null(out);
	UNAVAIL(nf_store_count(s, "t1", "agents", doc, &n, &e));
	UNAVAIL(nf_store_update(s, "t1", "agents", doc, upd, NF_STORE_UPSERT, &n, &e));
	UNAVAIL(nf_store_find_and_modify(s, "t1", "agents", doc, NULL, upd, NF_STORE_NEW,
	    &out, &e));
	ck_assert_ptr_null(out);
	UNAVAIL(nf_store_delete(s, "t1", "agents", doc, NF_STORE_MULTI, &n, &e));
#undef UNAVAIL
	json_object_put(doc);
	json_object_put(upd);
}

START_TEST(test_unreachable)
{
	struct nf_store	*s = NULL;
	struct nf_error	 e;
	char		*uri;
	int64_t		 t0;

	capture_stderr();
	uri = nf_xasprintf("mongodb://user:" SECRET "@127.0.0.1:%d/nonflex_t"
	    "?serverSelectionTimeoutMS=200", tu_free_port());
	t0 = nf_mono_ms();
	ck_assert_int_eq(nf_store_open(uri, &s, &e), NF_OK);
	ck_assert_msg(nf_mono_ms() - t0 < 500, "open blocked");
	ck_assert_str_eq(nf_store_backend(s), "mongodb");
	all_ops_unavailable(s);
	nf_store_free(s);
	free(uri);
	ck_assert_msg(!log_contains(SECRET), "the password reached the log");
}
END_TEST

/* Without serverSelectionTimeoutMS in the URI, we wait 2 s, not 30 s. */
START_TEST(test_default_selection_timeout)
{
	struct nf_store	*s = NULL;
	struct nf_error	 e;
	char		*uri;
	int64_t		 t0, took;

	capture_stderr();
	uri = nf_xasprintf("mongodb://127.0.0.1:%d/", tu_free_port());
	ck_assert_int_eq(nf_store_open(uri, &s, &e), NF_OK);
	t0 = nf_mono_ms();
	ck_assert_int_eq(nf_store_ping(s, &e), NF_EUNAVAIL);
	took = nf_mono_ms() - t0;
	ck_assert_msg(took >= 1500 && took < 6000, "ping failed after %lld ms",
	    (long long)took);
	nf_store_free(s);
	free(uri);
	log_contains("");
}
END_TEST

/* Values the driver would refuse are NF_EINVAL before any network I/O. */
START_TEST(test_invalid_value_offline)
{
	struct nf_store		*s = NULL;
	struct json_object	*doc = json_object_new_object();
	struct nf_error		 e;
	char			*uri;
	int64_t			 t0;

	capture_stderr();
	uri = nf_xasprintf("mongodb://127.0.0.1:%d/?serverSelectionTimeoutMS=3000",
	    tu_free_port());
	ck_assert_int_eq(nf_store_open(uri, &s, &e), NF_OK);
	json_object_object_add(doc, "name", json_object_new_string_len("\xc3\x28", 2));
	t0 = nf_mono_ms();
	nf_error_clear(&e);
	ck_assert_int_eq(nf_store_insert(s, "t1", "agents", doc, NULL, &e), NF_EINVAL);
	ck_assert_str_eq(e.code, "invalid_utf8");
	ck_assert_msg(nf_mono_ms() - t0 < 1000, "invalid input reached the network");
	json_object_put(doc);
	nf_store_free(s);
	free(uri);
	log_contains("");
}
END_TEST

/* ---- against a real server (TEST_MONGO_URI) ------------------------- */

static char	 coll[64];

/* Insert one Mongoose-shaped document with libmongoc directly. */
static void
insert_raw(const char *uri, const char *hex)
{
	mongoc_client_t		*cl;
	mongoc_collection_t	*c;
	mongoc_uri_t		*u;
	bson_error_t		 be;
	bson_oid_t		 oid;
	bson_t			 doc = BSON_INITIALIZER;
	const char		*db;

	u = mongoc_uri_new_with_error(uri, &be);
	ck_assert_ptr_nonnull(u);
	db = mongoc_uri_get_database(u) ? mongoc_uri_get_database(u) : "nonflex";
	cl = mongoc_client_new_from_uri(u);
	c = mongoc_client_get_collection(cl, db, coll);
	bson_oid_init_from_string(&oid, hex);
	BSON_APPEND_OID(&doc, "_id", &oid);
	BSON_APPEND_UTF8(&doc, "tenant", "t1");
	BSON_APPEND_UTF8(&doc, "username", "alice");
	BSON_APPEND_DATE_TIME(&doc, "createdAt", 1700000000000LL);
	BSON_APPEND_INT32(&doc, "__v", 0);
	ck_assert_msg(mongoc_collection_insert_one(c, &doc, NULL, NULL, &be), "%s", be.message);
	bson_destroy(&doc);
	mongoc_collection_destroy(c);
	mongoc_client_destroy(cl);
	mongoc_uri_destroy(u);
}

static void
drop_coll(struct nf_store *s)
{
	struct nf_error	 e;

	nf_store_delete(s, "t1", coll, NULL, NF_STORE_MULTI, NULL, &e);
	nf_store_delete(s, "t2", coll, NULL, NF_STORE_MULTI, NULL, &e);
}

START_TEST(test_mongoose_compat)
{
	static const char	*hex = "65a1b2c3d4e5f60718293a4b";
	const char		*uri = getenv("TEST_MONGO_URI");
	struct nf_store		*s = NULL;
	struct json_object	*f, *u, *out = NULL, *v;
	struct nf_error		 e;
	char			 rnd[9];
	int64_t			 n;

	nf_random_hex(rnd, 4);
	snprintf(coll, sizeof(coll), "t_mongo_%s", rnd);
	ck_assert_int_eq(nf_store_open(uri, &s, &e), NF_OK);
	ck_assert_int_eq(nf_store_ping(s, &e), NF_OK);
	insert_raw(uri, hex);

	f = json_object_new_object();
	json_object_object_add(f, "_id", json_object_new_string(hex));
	ck_assert_int_eq(nf_store_find_one(s, "t1", coll, f, NULL, &out, &e), NF_OK);
	ck_assert(json_object_object_get_ex(out, "_id", &v));
	ck_assert_str_eq(json_object_get_string(v), hex);
	ck_assert(json_object_object_get_ex(out, "createdAt", &v));
	ck_assert_str_eq(json_object_get_string(v), "2023-11-14T22:13:20.000Z");
	ck_assert(json_object_object_get_ex(out, "__v", &v));
	ck_assert(json_object_is_type(v, json_type_int));
	json_object_put(out);
	out = NULL;
	/* Another tenant does not see it. */
	ck_assert_int_eq(nf_store_find_one(s, "t2", coll, f, NULL, &out, &e), NF_ENOTFOUND);

	u = json_tokener_parse("{\"$set\":{\"status\":\"available\"},\"$inc\":{\"__v\":1}}");
	ck_assert_int_eq(nf_store_update(s, "t1", coll, f, u, 0, &n, &e), NF_OK);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(nf_store_find_and_modify(s, "t1", coll, f, NULL, u, NF_STORE_NEW,
	    &out, &e), NF_OK);
	ck_assert(json_object_object_get_ex(out, "__v", &v));
	ck_assert_int_eq(json_object_get_int64(v), 2);
	json_object_put(out);
	out = NULL;
	json_object_put(u);

	/* Duplicate _id (an ObjectId either way) is a conflict. */
	u = json_object_new_object();
	json_object_object_add(u, "_id", json_object_new_string(hex));
	nf_error_clear(&e);
	ck_assert_int_eq(nf_store_insert(s, "t1", coll, u, NULL, &e), NF_ECONFLICT);
	ck_assert_str_eq(e.code, "duplicate_key");
	json_object_put(u);

	ck_assert_int_eq(nf_store_delete(s, "t1", coll, f, 0, &n, &e), NF_OK);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(nf_store_count(s, "t1", coll, NULL, &n, &e), NF_OK);
	ck_assert_int_eq(n, 0);
	json_object_put(f);
	drop_coll(s);
	nf_store_free(s);
}
END_TEST

/* Operator upserts get a fresh 24-hex (ObjectId) _id and the tenant. */
START_TEST(test_upsert_ids)
{
	const char		*uri = getenv("TEST_MONGO_URI");
	struct nf_store		*s = NULL;
	struct json_object	*f, *u, *out = NULL, *v;
	struct nf_error		 e;
	char			 rnd[9];

	nf_random_hex(rnd, 4);
	snprintf(coll, sizeof(coll), "t_mongo_%s", rnd);
	ck_assert_int_eq(nf_store_open(uri, &s, &e), NF_OK);
	f = json_tokener_parse("{\"phone\":\"+15550100\"}");
	u = json_tokener_parse("{\"$set\":{\"name\":\"Bob\"}}");
	ck_assert_int_eq(nf_store_find_and_modify(s, "t1", coll, f, NULL, u,
	    NF_STORE_UPSERT | NF_STORE_NEW, &out, &e), NF_OK);
	ck_assert(json_object_object_get_ex(out, "_id", &v));
	ck_assert_int_eq(json_object_get_string_len(v), 24);
	ck_assert(json_object_object_get_ex(out, "tenant", &v));
	ck_assert_str_eq(json_object_get_string(v), "t1");
	ck_assert(json_object_object_get_ex(out, "phone", &v));
	ck_assert_str_eq(json_object_get_string(v), "+15550100");
	json_object_put(out);
	json_object_put(f);
	json_object_put(u);
	drop_coll(s);
	nf_store_free(s);
}
END_TEST

static Suite *
suite(void)
{
	Suite	*s = suite_create("store_mongo");
	TCase	*off = tcase_create("offline"), *on;

	tcase_set_timeout(off, 30);
	tcase_add_test(off, test_bad_uri);
	tcase_add_test(off, test_unreachable);
	tcase_add_test(off, test_default_selection_timeout);
	tcase_add_test(off, test_invalid_value_offline);
	suite_add_tcase(s, off);
	if (getenv("TEST_MONGO_URI") != NULL && getenv("TEST_MONGO_URI")[0] != '\0') {
		on = tcase_create("server");
		tcase_set_timeout(on, 60);
		tcase_add_test(on, test_mongoose_compat);
		tcase_add_test(on, test_upsert_ids);
		suite_add_tcase(s, on);
	}
	return s;
}

int
main(void)
{
	return tu_run(suite());
}
