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

/* The backend itself, for its pure parts (transaction options, error
 * classes, what one attempt of a unit reports); built into this test
 * with bsonjson.c, next to the module that nf_store_open loads.  Its ops
 * table is renamed so that the two copies do not collide (ASan reports
 * that as an ODR violation). */
#define nf_store_mongo_ops	t_store_mongo_ops
#include "store_mongo.c"

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

/* ---- atomic units without a server ----------------------------------- */

/* Counts its calls in *(int *)arg, returns what tm_ret says. */
static enum nf_err	 tm_ret;

static enum nf_err
tm_count(struct nf_store *s, void *arg, struct nf_error *e)
{
	(void)s;
	(*(int *)arg)++;
	if (tm_ret != NF_OK)
		return nf_error_set(e, tm_ret, "fn_code", "fn_field", "fn's own error");
	return NF_OK;
}

/* An unreachable server: the unit is NF_EUNAVAIL and fn never runs (a
 * failed session is not mistaken for a server without transactions). */
START_TEST(test_atomic_unreachable)
{
	struct nf_store	*s = NULL;
	struct nf_error	 e;
	char		*uri;
	int		 calls = 0;
	int64_t		 t0;

	capture_stderr();
	uri = nf_xasprintf("mongodb://user:" SECRET "@127.0.0.1:%d/nonflex_t"
	    "?serverSelectionTimeoutMS=200", tu_free_port());
	ck_assert_int_eq(nf_store_open(uri, &s, &e), NF_OK);
	t0 = nf_mono_ms();
	ck_assert_int_eq(nf_store_atomic(s, tm_count, &calls, &e), NF_EUNAVAIL);
	ck_assert_msg(nf_mono_ms() - t0 < 3000, "the unit waited too long");
	ck_assert_str_eq(e.code, "store_unavailable");
	assert_clean(&e);
	ck_assert_int_eq(calls, 0);
	nf_store_free(s);
	free(uri);
	ck_assert_msg(!log_contains(SECRET), "the password reached the log");
}
END_TEST

/* Every transaction: snapshot reads, majority writes, on the primary. */
START_TEST(test_txn_opts)
{
	mongoc_transaction_opt_t	*to = txn_opts_new();

	ck_assert_str_eq(mongoc_read_concern_get_level(
	    mongoc_transaction_opts_get_read_concern(to)), "snapshot");
	ck_assert(mongoc_write_concern_get_wmajority(
	    mongoc_transaction_opts_get_write_concern(to)));
	ck_assert_int_eq(mongoc_read_prefs_get_mode(mongoc_transaction_opts_get_read_prefs(to)),
	    MONGOC_READ_PRIMARY);
	mongoc_transaction_opts_destroy(to);
}
END_TEST

static bson_error_t
be_of(uint32_t domain, uint32_t code, const char *msg)
{
	bson_error_t	 be;

	memset(&be, 0, sizeof(be));
	bson_set_error(&be, domain, code, "%s", msg);
	return be;
}

/* Which errors mean "this server cannot run transactions". */
START_TEST(test_no_txn_errors)
{
	static const struct {
		uint32_t	 domain, code;
		const char	*msg;
		int		 no_txn;
	} cases[] = {
		{ MONGOC_ERROR_SERVER, 20, "Transaction numbers are only allowed on a replica "
		    "set member or mongos", 1 },
		{ MONGOC_ERROR_CLIENT, MONGOC_ERROR_CLIENT_SESSION_FAILURE,
		    "Server does not support sessions", 1 },
		{ MONGOC_ERROR_TRANSACTION, MONGOC_ERROR_TRANSACTION_INVALID_STATE,
		    "Multi-document transactions are not supported by this server version", 1 },
		{ MONGOC_ERROR_SERVER, 20, "cannot do that here", 0 },
		{ MONGOC_ERROR_TRANSACTION, MONGOC_ERROR_TRANSACTION_INVALID_STATE,
		    "Transaction already in progress", 0 },
		{ MONGOC_ERROR_SERVER, 11000, "E11000 duplicate key", 0 },
		{ MONGOC_ERROR_SERVER_SELECTION, MONGOC_ERROR_SERVER_SELECTION_FAILURE,
		    "No suitable servers found", 0 },
	};
	bson_error_t	 be;
	size_t		 i;

	for (i = 0; i < NF_ARRAY_LEN(cases); i++) {
		be = be_of(cases[i].domain, cases[i].code, cases[i].msg);
		ck_assert_msg(is_no_txn(&be) == cases[i].no_txn, "case %zu", i);
	}
}
END_TEST

static void
unit_init(struct unit *u, struct mongo *m)
{
	memset(u, 0, sizeof(*u));
	u->m = m;
	bson_init(&u->failed_reply);
}

static bson_t *
labelled(const char *label)
{
	bson_t	*r = bson_new(), arr;

	bson_append_array_begin(r, "errorLabels", -1, &arr);
	BSON_APPEND_UTF8(&arr, "0", label);
	bson_append_array_end(r, &arr);
	return r;
}

/* How a unit's outcome becomes nf_store_atomic's result. */
START_TEST(test_unit_result)
{
	struct mongo	 m = { NULL, NULL, 0 };
	struct unit	 u;
	struct nf_error	 e;
	bson_t		 empty = BSON_INITIALIZER, *tr = labelled("TransientTransactionError");
	bson_t		*uc = labelled("UnknownTransactionCommitResult");
	bson_error_t	 be = be_of(MONGOC_ERROR_SERVER, 112, "WriteConflict");
	struct op	 op;

	capture_stderr();
	op_init(&op, "insert", "agents", insert_fn);
	unit_init(&u, &m);
	ck_assert_int_eq(unit_result(&u, 1, &empty, &be, &e), NF_OK);
	/* Retries ran out on a conflict or an unknown commit: 503. */
	ck_assert_int_eq(unit_result(&u, 0, tr, &be, &e), NF_EUNAVAIL);
	ck_assert_str_eq(e.code, "store_unavailable");
	ck_assert_int_eq(unit_result(&u, 0, uc, &be, &e), NF_EUNAVAIL);
	u.gave_up = 1;
	ck_assert_int_eq(unit_result(&u, 0, &empty, &be, &e), NF_EUNAVAIL);
	u.gave_up = 0;
	/* fn's own error, as fn set it. */
	u.rc = nf_error_set(&e, NF_ENOTFOUND, "fn_code", "fn_field", "fn's own error");
	ck_assert_int_eq(unit_result(&u, 0, &empty, &be, &e), NF_ENOTFOUND);
	ck_assert_str_eq(e.code, "fn_code");
	ck_assert_str_eq(e.field, "fn_field");
	/* A duplicate key fn went past is still the unit's result. */
	u.rc = NF_OK;
	be = be_of(MONGOC_ERROR_SERVER, 11000, "E11000 duplicate key {name: \"x\"}");
	ck_assert_int_eq(unit_op_failed(&u, &op, &empty, &be, &e), NF_ECONFLICT);
	nf_error_clear(&e);
	ck_assert_int_eq(unit_result(&u, 0, &empty, &be, &e), NF_ECONFLICT);
	ck_assert_str_eq(e.code, "duplicate_key");
	ck_assert_ptr_null(strstr(e.message, "E11000"));
	/* A commit that failed otherwise is mapped like an operation. */
	unit_reset(&u);
	u.attempts = 1;
	be = be_of(MONGOC_ERROR_SERVER_SELECTION, MONGOC_ERROR_SERVER_SELECTION_FAILURE,
	    "No suitable servers");
	ck_assert_int_eq(unit_result(&u, 0, &empty, &be, &e), NF_EUNAVAIL);
	be = be_of(MONGOC_ERROR_SERVER, 8000, "something odd");
	ck_assert_int_eq(unit_result(&u, 0, &empty, &be, &e), NF_ESTORE);
	ck_assert_str_eq(e.code, "store_error");
	op_cleanup(&op);
	bson_destroy(&u.failed_reply);
	bson_destroy(tr);
	bson_destroy(uc);
	unlink(errlog);
}
END_TEST

/* A fn that hits a failed operation (as run_in_unit reports one) and
 * then, wrongly, goes on and returns NF_OK. */
static bson_t		*tm_reply;
static bson_error_t	 tm_be;

static enum nf_err
tm_swallow(struct nf_store *s, void *arg, struct nf_error *e)
{
	struct unit	*u = arg;
	struct op	 op;

	(void)s;
	op_init(&op, "update", "agents", update_fn);
	(void)unit_op_failed(u, &op, tm_reply, &tm_be, e);
	op_cleanup(&op);
	return NF_OK;
}

/* One attempt: what the driver gets back decides whether it retries. */
START_TEST(test_unit_attempt)
{
	struct mongo	 m = { NULL, NULL, 0 };
	struct unit	 u;
	struct nf_error	 e;
	bson_error_t	 be;
	bson_t		*reply = NULL;
	int		 calls = 0;

	capture_stderr();
	unit_init(&u, &m);
	u.fn = tm_count;
	u.ctx = &calls;
	u.e = &e;
	u.deadline = nf_mono_ms() + 60000;
	tm_ret = NF_OK;
	ck_assert(unit_attempt(NULL, &u, &reply, &be));
	ck_assert_int_eq(calls, 1);
	/* fn's error: fail, without labels (the driver must not retry). */
	tm_ret = NF_EINVAL;
	ck_assert(!unit_attempt(NULL, &u, &reply, &be));
	ck_assert_ptr_null(reply);
	ck_assert_int_eq(u.rc, NF_EINVAL);
	/* An operation failed with a write conflict and fn went on: the
	 * attempt fails anyway, with the label so the driver runs it again. */
	tm_reply = labelled("TransientTransactionError");
	tm_be = be_of(MONGOC_ERROR_SERVER, 112, "WriteConflict");
	u.fn = tm_swallow;
	u.ctx = &u;
	ck_assert(!unit_attempt(NULL, &u, &reply, &be));
	ck_assert_ptr_nonnull(reply);
	ck_assert(mongoc_error_has_label(reply, "TransientTransactionError"));
	ck_assert_int_eq(be.code, 112);
	ck_assert_int_eq(u.failed, NF_EUNAVAIL);
	bson_destroy(reply);
	reply = NULL;
	/* A standalone server: stop, no labels, fall back. */
	tm_be = be_of(MONGOC_ERROR_SERVER, 20, "Transaction numbers are only allowed on a "
	    "replica set member or mongos");
	bson_reinit(tm_reply);
	ck_assert(!unit_attempt(NULL, &u, &reply, &be));
	ck_assert_ptr_null(reply);
	ck_assert_int_eq(u.no_txn, 1);
	u.no_txn = 0;
	/* Past the deadline no new attempt starts. */
	calls = 0;
	u.fn = tm_count;
	u.ctx = &calls;
	u.deadline = nf_mono_ms() - 1;
	ck_assert(!unit_attempt(NULL, &u, &reply, &be));
	ck_assert_int_eq(calls, 0);
	ck_assert_int_eq(u.gave_up, 1);
	ck_assert_int_eq(unit_result(&u, 0, &u.failed_reply, &be, &e), NF_EUNAVAIL);
	bson_destroy(tm_reply);
	bson_destroy(&u.failed_reply);
	unlink(errlog);
}
END_TEST

/* An outer fn that runs a failing nested unit (on the store in arg) and
 * ignores its error. */
static enum nf_err
tm_outer(struct nf_store *s, void *arg, struct nf_error *e)
{
	int	 calls = 0;

	tm_ret = NF_ENOTFOUND;
	(void)mongo_atomic(arg, s, tm_count, &calls, e);
	return NF_OK;
}

/* Inside an open unit a nested unit joins it, and its failure fails the
 * outer unit; a store known to lack transactions runs fn plainly. */
START_TEST(test_atomic_nested_and_plain)
{
	struct mongo	 m = { NULL, NULL, 0 }, other = { NULL, NULL, 1 };
	struct unit	 u;
	struct nf_error	 e;
	bson_t		*reply = NULL;
	bson_error_t	 be;
	int		 calls = 0;

	unit_init(&u, &m);
	cur_unit = &u;
	tm_ret = NF_ENOTFOUND;
	ck_assert_int_eq(mongo_atomic(&m, NULL, tm_count, &calls, &e), NF_ENOTFOUND);
	ck_assert_int_eq(calls, 1);
	ck_assert_int_eq(u.failed, NF_ENOTFOUND);
	ck_assert_str_eq(u.failed_err.code, "fn_code");
	/* A unit on another store is not joined: that store lacks
	 * transactions, so fn just runs. */
	tm_ret = NF_OK;
	ck_assert_int_eq(mongo_atomic(&other, NULL, tm_count, &calls, &e), NF_OK);
	ck_assert_int_eq(calls, 2);
	cur_unit = NULL;
	/* The outer fn ignored the nested failure: the attempt still fails,
	 * without a label, and the unit returns the nested error. */
	unit_reset(&u);
	u.fn = tm_outer;
	u.ctx = &m;
	u.e = &e;
	u.deadline = nf_mono_ms() + 60000;
	cur_unit = &u;
	ck_assert(!unit_attempt(NULL, &u, &reply, &be));
	cur_unit = NULL;
	ck_assert_int_eq(u.rc, NF_OK);
	ck_assert_ptr_nonnull(reply);
	ck_assert(!is_transient(reply));
	nf_error_clear(&e);
	ck_assert_int_eq(unit_result(&u, 0, reply, &be, &e), NF_ENOTFOUND);
	ck_assert_str_eq(e.code, "fn_code");
	bson_destroy(reply);
	bson_destroy(&u.failed_reply);
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
	tcase_add_test(off, test_atomic_unreachable);
	tcase_add_test(off, test_txn_opts);
	tcase_add_test(off, test_no_txn_errors);
	tcase_add_test(off, test_unit_result);
	tcase_add_test(off, test_unit_attempt);
	tcase_add_test(off, test_atomic_nested_and_plain);
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
