/*
 * store_mongo.c - the MongoDB document-store backend (nf_store_mongo_ops),
 * chosen by store.c for "mongodb://" and "mongodb+srv://" URIs.
 *
 * DESIGN: one mongoc_client_pool_t per store; every operation pops a client,
 * runs, and pushes it back on every path (run()).  Opening never talks to
 * the server: the pool's monitor finds it and the first operation waits at
 * most serverSelectionTimeoutMS (2000 unless the URI sets it).  Filters,
 * updates and documents arrive validated and tenant-scoped from store.c and
 * are converted by bsonjson.c with typed appends (ObjectId for 24-hex _id,
 * so collections written by the original Node/Mongoose app - agents,
 * customers, orders, tickets - work unchanged).
 *
 * Errors: server selection, network and authentication failures are
 * NF_EUNAVAIL "store_unavailable"; "not primary" / step-down errors are
 * retried once (after the driver's own retryable-write/read attempt) and
 * then NF_EUNAVAIL; duplicate keys (11000) are NF_ECONFLICT "duplicate_key";
 * an update that does not fit the stored document ($inc on a string, $set
 * through a non-object: server codes 2, 14, 28, ...) is NF_EINVAL
 * "invalid_query", as in the SQLite backend; anything else NF_ESTORE.
 * Driver text goes to the log, never into the public nf_error, and the URI
 * (which may hold a password) is never logged.  The step-down retry is a
 * new attempt: for a write interrupted after the server applied it
 * (189/11602) the driver's retryable writes (retryWrites, on by default)
 * are what make it exactly-once.
 *
 * Unique indexes get a partialFilterExpression {key: {$exists: true}}, so
 * like SQLite's they only constrain documents that have the keys.
 *
 * Upserts: as MongoDB does, equality fields of the filter (tenant, which
 * store.c forces at the top level, and an _id) seed the new document; for
 * operator updates without an _id in the filter "$setOnInsert" adds a fresh
 * ObjectId (nf_id_new); a replacement upsert without one gets the server's
 * ObjectId, which reads back as the same 24-hex shape.
 * find_and_modify with NF_STORE_UPSERT but not NF_STORE_NEW that inserts
 * returns NF_OK with *out NULL (there is no "before" document).
 *
 * Atomic units (nf_store_atomic): a session started on a client popped
 * for the whole unit runs fn inside mongoc_client_session_with_transaction
 * (snapshot reads, majority writes, primary).  While it is open, every
 * operation on the same store from the same thread (cur_unit) runs on
 * that client with the session appended to its options, so it is part of
 * the transaction; a nested nf_store_atomic joins it.  MongoDB has no
 * savepoints, so a nested unit that fails fails the whole unit, and so
 * does any operation error even when fn goes on (the server has aborted
 * the transaction by then; committing would silently drop the writes
 * before it, and the driver would retry such a fn forever).  A transient
 * error (a write conflict with another unit, an election) makes the
 * driver run fn again; after UNIT_RETRY_MS of that, or when the driver's
 * own 120 s budget runs out, the unit is NF_EUNAVAIL.  fn's own error is
 * returned as is; a duplicate key inside the unit is NF_ECONFLICT.
 * createIndexes is the exception: MongoDB accepts it in a transaction
 * only for a collection created in that transaction and with read
 * concern "local", and modules ensure their indexes lazily (possibly
 * inside a unit), so it runs outside the unit on its own client; it
 * changes no documents, so the unit's atomicity is unaffected.  A server
 * without transactions (a standalone mongod answers the first operation
 * with code 20 "Transaction numbers are only allowed on a replica set
 * member or mongos", an old one fails start_transaction or
 * start_session) has written nothing of the unit: fn runs again with its
 * operations one by one, as do all later units on that store, and the
 * process logs this once.
 *
 * Running the conformance suite against a real server (no server can be
 * installed on the build machines, so this is the only way to exercise this
 * file end to end):
 *
 *     TEST_MONGO_URI=mongodb://host:27017/nonflex_test \
 *         make check TESTS=tests/unit/t_store
 *
 * The suite uses the database named in the URI path (nonflex_test above);
 * point it at a throw-away database, never at production data.  A replica
 * set URI (?replicaSet=rs0) also exercises the step-down retry path when
 * the primary is stepped down (rs.stepDown()) during the run.  The
 * json<->BSON converters are tested without a server by
 * tests/unit/t_bsonjson.
 *
 * Built with bsonjson.c into the module store_mongo.so (see Makefile.am),
 * which store.c loads only when a mongodb:// URI is opened; it calls back
 * into the executable for nf_log, nf_x* and nf_error_set.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <mongoc/mongoc.h>

#include "bsonjson.h"
#include "log.h"
#include "nonflex.h"
#include "store.h"
#include "store_impl.h"

#define DEFAULT_DB			"nonflex"
#define DEFAULT_SELECT_TIMEOUT_MS	2000
#define DEFAULT_SOCKET_TIMEOUT_MS	30000	/* a hung server must not hold a worker for minutes */
#define NF_BJ_DOMAIN			1000	/* our bson_error_t domain: conversion failures */
/* How long a unit in conflict is run again: SQLite's busy wait. */
#define UNIT_RETRY_MS			5000

struct mongo {
	mongoc_client_pool_t	*pool;
	char			*db;      /* database from the URI path, or "nonflex" */
	int			 no_txn;  /* no transactions: units run plainly */
};

struct op;

/*
 * Runs one operation with the client cl, on collection c (NULL for database
 * commands) and the options opts (op->opts, plus "sessionId" inside a
 * unit).  Returns 1 on success, 0 with be filled on failure; reply is
 * always initialized (the server's reply: a failure's errorLabels tell a
 * unit whether to try again).  Frees what it allocates itself and resets
 * its outputs first (it may run twice).
 */
typedef int	(*op_fn)(struct op *, mongoc_client_t *, mongoc_collection_t *,
		    const bson_t *opts, bson_t *reply, bson_error_t *);

/* One store operation: inputs prepared before run(), outputs filled by fn. */
struct op {
	const char		*what;      /* "insert", for the log */
	const char		*coll;      /* NULL for database commands */
	op_fn			 fn;
	bson_t			 filter;    /* or the command for ensure_index */
	bson_t			 doc;       /* document or update */
	bson_t			 opts;      /* options (a unit adds its session) */
	bson_t			 sort;      /* find_and_modify's sort */
	int			 own;       /* never part of a unit (ping, createIndexes) */
	unsigned		 flags;     /* NF_STORE_* */
	int			 replace;   /* doc is a replacement, not operators */
	int64_t			 n;         /* count, matched or deleted */
	int			 upserted;  /* find_and_modify inserted a document */
	struct json_object	*out;       /* find / find_and_modify result */
};

/*
 * An atomic unit open on this thread (nf_store_atomic): its store, the
 * client its session was started from, fn and what the current attempt of
 * fn reported.  Reset before each attempt (with_transaction may run fn
 * more than once).
 */
struct unit {
	struct mongo		*m;
	mongoc_client_t		*cl;
	mongoc_client_session_t	*sess;
	struct nf_store		*st;
	nf_store_atomic_fn	 fn;
	void			*ctx;
	struct nf_error		*e;
	int64_t			 deadline;     /* mono ms: no new attempt after it */
	int			 attempts;
	int			 gave_up;      /* stopped retrying at the deadline */
	int			 no_txn;       /* the server cannot run transactions */
	enum nf_err		 rc;           /* fn's result */
	enum nf_err		 failed;       /* first failed operation or nested unit */
	struct nf_error		 failed_err;   /* its public error */
	bson_error_t		 failed_be;    /* its driver error */
	bson_t			 failed_reply; /* its server reply (errorLabels) */
};

static pthread_once_t	 driver_once = PTHREAD_ONCE_INIT;
static pthread_once_t	 no_txn_once = PTHREAD_ONCE_INIT;
/* The unit open on this thread, NULL outside nf_store_atomic. */
static _Thread_local struct unit *cur_unit;
/* The URI being parsed by this thread, so driver warnings about it
 * ("Unknown option or value for ...") can be redacted. */
static _Thread_local const char *parsing_uri;

static char	*redact(const char *, const char *);

/* Driver warnings become our JSON log lines; its chatter is dropped. */
static void
driver_log(mongoc_log_level_t level, const char *domain, const char *msg, void *arg)
{
	char	*safe;

	(void)arg;
	if (level > MONGOC_LOG_LEVEL_WARNING)
		return;
	safe = redact(parsing_uri, msg);
	nf_log(level == MONGOC_LOG_LEVEL_WARNING ? NF_LOG_WARN : NF_LOG_ERROR,
	    "mongoc %s: %s", domain, safe);
	free(safe);
}

static void
driver_init(void)
{
	mongoc_init();
	mongoc_log_set_handler(driver_log, NULL);
}

static void
op_init(struct op *op, const char *what, const char *coll, op_fn fn)
{
	memset(op, 0, sizeof(*op));
	op->what = what;
	op->coll = coll;
	op->fn = fn;
	bson_init(&op->filter);
	bson_init(&op->doc);
	bson_init(&op->opts);
	bson_init(&op->sort);
}

static void
op_cleanup(struct op *op)
{
	bson_destroy(&op->filter);
	bson_destroy(&op->doc);
	bson_destroy(&op->opts);
	bson_destroy(&op->sort);
	json_object_put(op->out);
	op->out = NULL;
}

/* ---- error mapping -------------------------------------------------- */

static int
is_dup(const bson_error_t *be)
{
	return be->domain != NF_BJ_DOMAIN &&
	    (be->code == 11000 || be->code == 11001 || be->code == 12582);
}

/* "not primary" and step-down errors: the next primary may take it. */
static int
is_stepdown(const bson_error_t *be)
{
	static const uint32_t	 codes[] = {
		10107,	/* NotWritablePrimary */
		13435,	/* NotPrimaryNoSecondaryOk */
		13436,	/* NotPrimaryOrSecondary */
		10058,	/* LegacyNotPrimary */
		189,	/* PrimarySteppedDown */
		91,	/* ShutdownInProgress */
		11600,	/* InterruptedAtShutdown */
		11602,	/* InterruptedDueToReplStateChange */
	};
	size_t			 i;

	if (be->domain != MONGOC_ERROR_SERVER && be->domain != MONGOC_ERROR_WRITE_CONCERN &&
	    be->domain != MONGOC_ERROR_COMMAND && be->domain != MONGOC_ERROR_QUERY)
		return 0;
	for (i = 0; i < NF_ARRAY_LEN(codes); i++)
		if (be->code == codes[i])
			return 1;
	return strstr(be->message, "not master") != NULL ||
	    strstr(be->message, "not primary") != NULL ||
	    strstr(be->message, "node is recovering") != NULL;
}

/*
 * Server errors caused by the request meeting the stored data, e.g. $inc
 * on a string or $set through a non-object: the caller's fault, as in
 * the SQLite backend.
 */
static int
is_bad_request(const bson_error_t *be)
{
	static const uint32_t	 codes[] = {
		2,	/* BadValue ($push to a non-array) */
		9,	/* FailedToParse */
		14,	/* TypeMismatch ($inc on a non-number) */
		28,	/* PathNotViable ($set a.b where a is a string) */
		40,	/* ConflictingUpdateOperators */
		52,	/* DollarPrefixedFieldName */
		56,	/* EmptyFieldName */
		57,	/* DottedFieldName */
		66,	/* ImmutableField */
	};
	size_t			 i;

	if (be->domain != MONGOC_ERROR_SERVER)
		return 0;
	for (i = 0; i < NF_ARRAY_LEN(codes); i++)
		if (be->code == codes[i])
			return 1;
	return 0;
}

static int
is_unavailable(const bson_error_t *be)
{
	return be->domain == MONGOC_ERROR_SERVER_SELECTION ||
	    be->domain == MONGOC_ERROR_STREAM ||
	    (be->domain == MONGOC_ERROR_CLIENT &&
	    (be->code == MONGOC_ERROR_CLIENT_AUTHENTICATE ||
	    be->code == MONGOC_ERROR_CLIENT_NO_ACCEPTABLE_PEER)) ||
	    is_stepdown(be);
}

/* Log the driver's error for operation what on coll (may be NULL) and
 * fill e with a public one. */
static enum nf_err
map_error(const char *what, const char *coll, const bson_error_t *be, struct nf_error *e)
{
	if (coll == NULL)
		coll = "-";
	if (is_dup(be)) {
		/* The server's text echoes the key values: log the code only. */
		nf_log(NF_LOG_INFO, "mongo %s on %s: duplicate key (code %u)", what, coll,
		    be->code);
		return nf_error_set(e, NF_ECONFLICT, "duplicate_key", NULL,
		    "a document with the same key already exists");
	}
	if (is_bad_request(be)) {
		nf_log(NF_LOG_INFO, "mongo %s on %s refused: code %u: %s", what, coll,
		    be->code, be->message);
		return nf_error_set(e, NF_EINVAL, "invalid_query", NULL,
		    "the update does not fit the stored document");
	}
	nf_log(NF_LOG_ERROR, "mongo %s on %s failed: domain %u code %u: %s", what, coll,
	    be->domain, be->code, be->message);
	if (is_unavailable(be))
		return nf_error_set(e, NF_EUNAVAIL, "store_unavailable", NULL,
		    "the document store is unavailable");
	return nf_error_set(e, NF_ESTORE, "store_error", NULL,
	    "the document store failed");
}

/* ---- atomic units: error classes ------------------------------------ */

/*
 * The server cannot run transactions: a standalone mongod refuses the
 * transaction number (IllegalOperation 20, "Transaction numbers are only
 * allowed on a replica set member or mongos"), a server too old for them
 * fails the driver's start_transaction, one without sessions fails
 * start_session.
 */
static int
is_no_txn(const bson_error_t *be)
{
	if (be->domain == MONGOC_ERROR_CLIENT && be->code == MONGOC_ERROR_CLIENT_SESSION_FAILURE)
		return 1;
	if (be->domain == MONGOC_ERROR_TRANSACTION &&
	    be->code == MONGOC_ERROR_TRANSACTION_INVALID_STATE &&
	    strstr(be->message, "not supported by this server") != NULL)
		return 1;
	return be->domain != NF_BJ_DOMAIN && be->code == 20 &&
	    strstr(be->message, "Transaction numbers") != NULL;
}

/* A reply whose failure may succeed when the whole unit runs again. */
static int
is_transient(const bson_t *reply)
{
	return reply != NULL && (mongoc_error_has_label(reply, "TransientTransactionError") ||
	    mongoc_error_has_label(reply, "UnknownTransactionCommitResult"));
}

/* The options of every transaction: majority writes read back at a
 * snapshot, on the primary (a URI's readPreference must not send a
 * transaction's reads to a secondary, which the server refuses). */
static mongoc_transaction_opt_t *
txn_opts_new(void)
{
	mongoc_transaction_opt_t	*to = mongoc_transaction_opts_new();
	mongoc_read_concern_t		*rc = mongoc_read_concern_new();
	mongoc_write_concern_t		*wc = mongoc_write_concern_new();
	mongoc_read_prefs_t		*rp = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);

	mongoc_read_concern_set_level(rc, MONGOC_READ_CONCERN_LEVEL_SNAPSHOT);
	mongoc_write_concern_set_w(wc, MONGOC_WRITE_CONCERN_W_MAJORITY);
	mongoc_transaction_opts_set_read_concern(to, rc);
	mongoc_transaction_opts_set_write_concern(to, wc);
	mongoc_transaction_opts_set_read_prefs(to, rp);
	mongoc_read_concern_destroy(rc);
	mongoc_write_concern_destroy(wc);
	mongoc_read_prefs_destroy(rp);
	return to;
}

static void
unit_reset(struct unit *u)
{
	u->rc = NF_OK;
	u->failed = NF_OK;
	memset(&u->failed_err, 0, sizeof(u->failed_err));
	memset(&u->failed_be, 0, sizeof(u->failed_be));
	bson_reinit(&u->failed_reply);
}

/* The first failure of this attempt (a server error, or a nested unit's
 * error) is what the unit fails with, even if fn goes on. */
static void
unit_note(struct unit *u, enum nf_err rc, const struct nf_error *e, const bson_t *reply,
    const bson_error_t *be)
{
	if (u->failed != NF_OK)
		return;
	u->failed = rc;
	if (e != NULL)
		u->failed_err = *e;
	else
		nf_error_set(&u->failed_err, rc, NULL, NULL, "the atomic unit failed");
	if (reply != NULL) {
		bson_destroy(&u->failed_reply);
		bson_copy_to(reply, &u->failed_reply);
	}
	if (be != NULL)
		u->failed_be = *be;
	else
		bson_set_error(&u->failed_be, NF_BJ_DOMAIN, 3, "a nested unit failed");
}

/* An operation of a unit failed with be (the server's reply in reply). */
static enum nf_err
unit_op_failed(struct unit *u, const struct op *op, const bson_t *reply,
    const bson_error_t *be, struct nf_error *e)
{
	enum nf_err	 rc;

	if (is_no_txn(be)) {
		u->no_txn = 1;
		return nf_error_set(e, NF_EUNAVAIL, "store_unavailable", NULL,
		    "the document store is unavailable");
	}
	if (is_transient(reply)) {
		/* A write conflict with another unit: expected, retried. */
		nf_log(NF_LOG_INFO, "mongo %s on %s in a unit: transient error (code %u)",
		    op->what, op->coll != NULL ? op->coll : "-", be->code);
		rc = nf_error_set(e, NF_EUNAVAIL, "store_unavailable", NULL,
		    "the document store is busy, try again later");
	} else
		rc = map_error(op->what, op->coll, be, e);
	unit_note(u, rc, e, reply, be);
	return rc;
}

/*
 * op inside the unit open on this thread: on the unit's client (a session
 * belongs to the client that started it) with the session in its options,
 * and no step-down retry of its own (the server aborted the transaction:
 * the whole unit is what runs again).
 */
static enum nf_err
run_in_unit(struct mongo *m, struct unit *u, struct op *op, struct nf_error *e)
{
	mongoc_collection_t	*c;
	bson_t			 opts, reply;
	bson_error_t		 be;
	enum nf_err		 rc = NF_OK;
	int			 ok;

	memset(&be, 0, sizeof(be));
	if (u->no_txn)
		return nf_error_set(e, NF_EUNAVAIL, "store_unavailable", NULL,
		    "the document store is unavailable");
	bson_copy_to(&op->opts, &opts);
	if (!mongoc_client_session_append(u->sess, &opts, &be)) {
		bson_destroy(&opts);
		return map_error(op->what, op->coll, &be, e);
	}
	c = op->coll != NULL ? mongoc_client_get_collection(u->cl, m->db, op->coll) : NULL;
	ok = op->fn(op, u->cl, c, &opts, &reply, &be);
	if (c != NULL)
		mongoc_collection_destroy(c);
	if (!ok)
		rc = unit_op_failed(u, op, &reply, &be, e);
	bson_destroy(&reply);
	bson_destroy(&opts);
	return rc;
}

/* ---- running an operation ------------------------------------------- */

/*
 * Pop a client, run op->fn, push the client back; retry once after a
 * step-down.  Inside a unit on m, run_in_unit instead.  Returns NF_OK or
 * the mapped error.
 */
static enum nf_err
run(struct mongo *m, struct op *op, struct nf_error *e)
{
	mongoc_client_t		*cl;
	mongoc_collection_t	*c;
	bson_t			 reply;
	bson_error_t		 be;
	int			 attempt, ok;

	if (cur_unit != NULL && cur_unit->m == m && !op->own)
		return run_in_unit(m, cur_unit, op, e);
	for (attempt = 0; attempt < 2; attempt++) {
		memset(&be, 0, sizeof(be));
		if ((cl = mongoc_client_pool_pop(m->pool)) == NULL) {
			bson_set_error(&be, MONGOC_ERROR_CLIENT, MONGOC_ERROR_CLIENT_NO_ACCEPTABLE_PEER,
			    "no client available from the pool");
			break;
		}
		c = op->coll != NULL ? mongoc_client_get_collection(cl, m->db, op->coll) : NULL;
		ok = op->fn(op, cl, c, &op->opts, &reply, &be);
		bson_destroy(&reply);
		if (c != NULL)
			mongoc_collection_destroy(c);
		mongoc_client_pool_push(m->pool, cl);
		if (ok)
			return NF_OK;
		if (attempt > 0 || !is_stepdown(&be))
			break;
		nf_log(NF_LOG_WARN, "mongo %s on %s: primary unavailable (code %u), retrying once",
		    op->what, op->coll ? op->coll : "-", be.code);
	}
	return map_error(op->what, op->coll, &be, e);
}

/* ---- conversions ---------------------------------------------------- */

/* {"a": 1, "b": -1} into BSON int32 directions (sort must be numbers). */
static void
sort_bson(struct json_object *sort, bson_t *out)
{
	if (sort == NULL || !json_object_is_type(sort, json_type_object))
		return;
	json_object_object_foreach(sort, key, val)
		BSON_APPEND_INT32(out, key, json_object_get_int64(val) < 0 ? -1 : 1);
}

/* 1 when the update document is a replacement (no "$" keys). */
static int
is_replacement(struct json_object *u)
{
	json_object_object_foreach(u, key, val) {
		(void)val;
		if (key[0] == '$')
			return 0;
	}
	return 1;
}

/* 1 when the filter names _id at the top level or inside a top-level $and. */
static int
filter_has_id(struct json_object *f)
{
	struct json_object	*and;
	size_t			 i, n;

	if (!json_object_is_type(f, json_type_object))
		return 0;
	if (json_object_object_get_ex(f, "_id", NULL))
		return 1;
	if (!json_object_object_get_ex(f, "$and", &and) ||
	    !json_object_is_type(and, json_type_array))
		return 0;
	n = json_object_array_length(and);
	for (i = 0; i < n; i++)
		if (filter_has_id(json_object_array_get_idx(and, i)))
			return 1;
	return 0;
}

/*
 * The update document for update/find_and_modify: the caller's operators
 * or replacement, plus {"$setOnInsert": {"_id": <new ObjectId>}} for an
 * operator upsert whose filter does not fix _id.
 */
static enum nf_err
update_bson(struct json_object *filter, struct json_object *u, unsigned flags,
    struct op *op, struct nf_error *e)
{
	struct json_object	*soi;
	char			 id[25];
	bson_oid_t		 oid;
	bson_t			 child;
	enum nf_err		 rc;

	if (!json_object_is_type(u, json_type_object))
		return nf_error_set(e, NF_EINVAL, "invalid_query", NULL,
		    "update must be an object");
	op->replace = is_replacement(u);
	if ((rc = nf_bsonjson_from_json(u, &op->doc, e)) != NF_OK)
		return rc;
	if (op->replace || !(flags & NF_STORE_UPSERT) || filter_has_id(filter) ||
	    json_object_object_get_ex(u, "$setOnInsert", &soi))
		return NF_OK;
	nf_id_new(id);
	bson_oid_init_from_string(&oid, id);
	bson_append_document_begin(&op->doc, "$setOnInsert", -1, &child);
	BSON_APPEND_OID(&child, "_id", &oid);
	bson_append_document_end(&op->doc, &child);
	return NF_OK;
}

static int64_t
reply_int(const bson_t *reply, const char *key)
{
	bson_iter_t	 it;

	if (bson_iter_init_find(&it, reply, key) && BSON_ITER_HOLDS_NUMBER(&it))
		return bson_iter_as_int64(&it);
	return 0;
}

/* ---- operations (fn of struct op) ----------------------------------- */

static int
ping_fn(struct op *op, mongoc_client_t *cl, mongoc_collection_t *c, const bson_t *opts,
    bson_t *reply, bson_error_t *be)
{
	(void)c;
	(void)opts;
	return mongoc_client_command_simple(cl, "admin", &op->filter, NULL, reply, be);
}

static int
index_fn(struct op *op, mongoc_client_t *cl, mongoc_collection_t *c, const bson_t *opts,
    bson_t *reply, bson_error_t *be)
{
	(void)cl;
	return mongoc_collection_write_command_with_opts(c, &op->filter, opts, reply, be);
}

static int
insert_fn(struct op *op, mongoc_client_t *cl, mongoc_collection_t *c, const bson_t *opts,
    bson_t *reply, bson_error_t *be)
{
	(void)cl;
	return mongoc_collection_insert_one(c, &op->doc, opts, reply, be);
}

static int
find_fn(struct op *op, mongoc_client_t *cl, mongoc_collection_t *c, const bson_t *opts,
    bson_t *reply, bson_error_t *be)
{
	mongoc_cursor_t		*cur;
	const bson_t		*doc, *err;
	struct json_object	*v;
	struct nf_error		 ce;
	int			 ok = 1;

	(void)cl;
	bson_init(reply);
	json_object_put(op->out);
	op->out = json_object_new_array();
	cur = mongoc_collection_find_with_opts(c, &op->filter, opts, NULL);
	while (ok && mongoc_cursor_next(cur, &doc)) {
		if (nf_bsonjson_to_json(doc, &v, &ce) != NF_OK) {
			bson_set_error(be, NF_BJ_DOMAIN, 1, "result conversion: %s", ce.message);
			ok = 0;
		} else if (json_object_array_add(op->out, v) != 0) {
			json_object_put(v);
			bson_set_error(be, NF_BJ_DOMAIN, 2, "out of memory");
			ok = 0;
		}
	}
	if (ok && mongoc_cursor_error_document(cur, be, &err)) {
		bson_destroy(reply);
		bson_copy_to(err, reply);
		ok = 0;
	}
	mongoc_cursor_destroy(cur);
	return ok;
}

static int
count_fn(struct op *op, mongoc_client_t *cl, mongoc_collection_t *c, const bson_t *opts,
    bson_t *reply, bson_error_t *be)
{
	(void)cl;
	op->n = mongoc_collection_count_documents(c, &op->filter, opts, NULL, reply, be);
	return op->n >= 0;
}

static int
update_fn(struct op *op, mongoc_client_t *cl, mongoc_collection_t *c, const bson_t *opts,
    bson_t *reply, bson_error_t *be)
{
	bool	 ok;

	(void)cl;
	if (op->replace)
		ok = mongoc_collection_replace_one(c, &op->filter, &op->doc, opts, reply, be);
	else if (op->flags & NF_STORE_MULTI)
		ok = mongoc_collection_update_many(c, &op->filter, &op->doc, opts, reply, be);
	else
		ok = mongoc_collection_update_one(c, &op->filter, &op->doc, opts, reply, be);
	op->n = ok ? reply_int(reply, "matchedCount") + reply_int(reply, "upsertedCount") : 0;
	return ok;
}

/* "value" of a findAndModify reply into op->out; upsert noted in op. */
static int
fam_result(struct op *op, const bson_t *reply, bson_error_t *be)
{
	bson_iter_t	 it, sub;
	struct nf_error	 ce;
	bson_t		 value;
	const uint8_t	*data;
	uint32_t	 len;

	op->upserted = bson_iter_init_find(&it, reply, "lastErrorObject") &&
	    BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &sub) &&
	    bson_iter_find(&sub, "upserted");
	if (!bson_iter_init_find(&it, reply, "value") || !BSON_ITER_HOLDS_DOCUMENT(&it))
		return 1;	/* null: nothing matched (or an upsert without "new") */
	bson_iter_document(&it, &len, &data);
	if (!bson_init_static(&value, data, len) ||
	    nf_bsonjson_to_json(&value, &op->out, &ce) != NF_OK) {
		bson_set_error(be, NF_BJ_DOMAIN, 1, "findAndModify result conversion failed");
		return 0;
	}
	return 1;
}

/* The driver's findAndModify options for op, with opts (a session) added. */
static mongoc_find_and_modify_opts_t *
fam_options(const struct op *op, const bson_t *opts)
{
	mongoc_find_and_modify_opts_t	*fam = mongoc_find_and_modify_opts_new();
	int				 f = MONGOC_FIND_AND_MODIFY_NONE;

	if (!bson_empty(&op->sort))
		mongoc_find_and_modify_opts_set_sort(fam, &op->sort);
	if (op->flags & NF_STORE_REMOVE)
		f |= MONGOC_FIND_AND_MODIFY_REMOVE;
	else
		mongoc_find_and_modify_opts_set_update(fam, &op->doc);
	if ((op->flags & NF_STORE_UPSERT) && !(op->flags & NF_STORE_REMOVE))
		f |= MONGOC_FIND_AND_MODIFY_UPSERT;
	if ((op->flags & NF_STORE_NEW) && !(op->flags & NF_STORE_REMOVE))
		f |= MONGOC_FIND_AND_MODIFY_RETURN_NEW;
	mongoc_find_and_modify_opts_set_flags(fam, (mongoc_find_and_modify_flags_t)f);
	if (!bson_empty(opts))
		mongoc_find_and_modify_opts_append(fam, opts);
	return fam;
}

static int
fam_fn(struct op *op, mongoc_client_t *cl, mongoc_collection_t *c, const bson_t *opts,
    bson_t *reply, bson_error_t *be)
{
	mongoc_find_and_modify_opts_t	*fam;
	int				 ok;

	(void)cl;
	json_object_put(op->out);
	op->out = NULL;
	op->upserted = 0;
	fam = fam_options(op, opts);
	ok = mongoc_collection_find_and_modify_with_opts(c, &op->filter, fam, reply, be);
	mongoc_find_and_modify_opts_destroy(fam);
	return ok && fam_result(op, reply, be);
}

static int
delete_fn(struct op *op, mongoc_client_t *cl, mongoc_collection_t *c, const bson_t *opts,
    bson_t *reply, bson_error_t *be)
{
	bool	 ok;

	(void)cl;
	if (op->flags & NF_STORE_MULTI)
		ok = mongoc_collection_delete_many(c, &op->filter, opts, reply, be);
	else
		ok = mongoc_collection_delete_one(c, &op->filter, opts, reply, be);
	op->n = ok ? reply_int(reply, "deletedCount") : 0;
	return ok;
}

/* ---- open / free ---------------------------------------------------- */

/*
 * msg (malloc'd copy) with the URI's password blanked: the text between
 * "://" + user + ':' and the last '@' is starred wherever it appears.
 */
static char *
redact(const char *uri, const char *msg)
{
	const char	*p, *colon = NULL, *at;
	char		*copy = nf_xstrdup(msg), *hit;
	size_t		 n = 0;

	if (uri != NULL && (p = strstr(uri, "://")) != NULL &&
	    (at = strrchr(p, '@')) != NULL &&
	    (colon = memchr(p + 3, ':', (size_t)(at - p - 3))) != NULL)
		n = (size_t)(at - colon - 1);
	if (n > 0)
		while ((hit = memmem(copy, strlen(copy), colon + 1, n)) != NULL)
			memset(hit, '*', n);
	return copy;
}

static void
log_uri_error(const char *uri, const char *msg)
{
	char	*safe = redact(uri, msg);

	nf_log(NF_LOG_ERROR, "mongo: invalid store URI: %s", safe);
	free(safe);
}

/* Our defaults where the URI is silent; the pool copies the URI. */
static void
uri_defaults(mongoc_uri_t *uri)
{
	if (mongoc_uri_get_appname(uri) == NULL)
		mongoc_uri_set_appname(uri, "nonflex");
	if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
		    DEFAULT_SELECT_TIMEOUT_MS);
	if (!mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS,
		    DEFAULT_SOCKET_TIMEOUT_MS);
}

static void
mongo_free(void *impl)
{
	struct mongo	*m = impl;

	if (m == NULL)
		return;
	if (m->pool != NULL)
		mongoc_client_pool_destroy(m->pool);
	free(m->db);
	free(m);
}

static enum nf_err
mongo_open(const char *uristr, void **impl, struct nf_error *e)
{
	mongoc_uri_t	*uri = NULL;
	struct mongo	*m = NULL;
	bson_error_t	 be;
	const char	*db;
	enum nf_err	 rc = NF_OK;

	*impl = NULL;
	pthread_once(&driver_once, driver_init);
	memset(&be, 0, sizeof(be));
	parsing_uri = uristr;
	uri = mongoc_uri_new_with_error(uristr, &be);
	parsing_uri = NULL;
	if (uri == NULL) {
		log_uri_error(uristr, be.message);
		rc = nf_error_set(e, NF_EINVAL, "invalid_store_uri", "STORE_URI",
		    "the MongoDB URI is not valid");
		goto out;
	}
	uri_defaults(uri);
	m = nf_xcalloc(1, sizeof(*m));
	parsing_uri = uristr;
	m->pool = mongoc_client_pool_new_with_error(uri, &be);
	parsing_uri = NULL;
	if (m->pool == NULL) {
		log_uri_error(uristr, be.message);
		rc = nf_error_set(e, NF_EINVAL, "invalid_store_uri", "STORE_URI",
		    "the MongoDB URI options are not usable");
		goto out;
	}
	/* Version 2: server errors carry the server's own error codes. */
	mongoc_client_pool_set_error_api(m->pool, MONGOC_ERROR_API_VERSION_2);
	db = mongoc_uri_get_database(uri);
	m->db = nf_xstrdup(db != NULL && db[0] != '\0' ? db : DEFAULT_DB);
	*impl = m;
	m = NULL;
out:
	mongo_free(m);
	if (uri != NULL)
		mongoc_uri_destroy(uri);
	return rc;
}

/* ---- ops table entries ---------------------------------------------- */

static enum nf_err
mongo_ping(void *impl, struct nf_error *e)
{
	struct op	 op;
	enum nf_err	 rc;

	op_init(&op, "ping", NULL, ping_fn);
	op.own = 1;	/* "ping" is not allowed in a transaction */
	BSON_APPEND_INT32(&op.filter, "ping", 1);
	rc = run(impl, &op, e);
	op_cleanup(&op);
	return rc;
}

/*
 * partialFilterExpression {k: {$exists: true}, ...}: like the SQLite
 * backend, a unique index constrains only documents that have its keys,
 * so any number of documents may lack them (MongoDB would otherwise index
 * a missing field as null and allow only one).
 */
static void
unique_partial(bson_t *spec, const struct nf_index *ix)
{
	bson_t	 pfe, ex;
	size_t	 i;

	bson_append_document_begin(spec, "partialFilterExpression", -1, &pfe);
	for (i = 0; i < NF_INDEX_MAXKEYS && ix->keys[i] != NULL; i++) {
		bson_append_document_begin(&pfe, ix->keys[i], -1, &ex);
		BSON_APPEND_BOOL(&ex, "$exists", true);
		bson_append_document_end(&pfe, &ex);
	}
	bson_append_document_end(spec, &pfe);
}

/* {createIndexes: coll, indexes: [{key: {tenant: 1, k: dir...}, name, unique}]} */
static enum nf_err
mongo_ensure_index(void *impl, const char *coll, const struct nf_index *ix,
    struct nf_error *e)
{
	struct op	 op;
	bson_t		 arr, spec, key;
	size_t		 i;
	enum nf_err	 rc;

	op_init(&op, "createIndexes", coll, index_fn);
	op.own = 1;	/* see "Atomic units" at the top */
	BSON_APPEND_UTF8(&op.filter, "createIndexes", coll);
	bson_append_array_begin(&op.filter, "indexes", -1, &arr);
	bson_append_document_begin(&arr, "0", -1, &spec);
	bson_append_document_begin(&spec, "key", -1, &key);
	BSON_APPEND_INT32(&key, "tenant", 1);
	for (i = 0; i < NF_INDEX_MAXKEYS && ix->keys[i] != NULL; i++)
		BSON_APPEND_INT32(&key, ix->keys[i], ix->dirs[i] < 0 ? -1 : 1);
	bson_append_document_end(&spec, &key);
	BSON_APPEND_UTF8(&spec, "name", ix->name);
	BSON_APPEND_BOOL(&spec, "unique", ix->unique != 0);
	if (ix->unique)
		unique_partial(&spec, ix);
	bson_append_document_end(&arr, &spec);
	bson_append_array_end(&op.filter, &arr);
	rc = run(impl, &op, e);
	op_cleanup(&op);
	return rc;
}

static enum nf_err
mongo_insert(void *impl, const char *coll, struct json_object *doc, struct nf_error *e)
{
	struct op	 op;
	enum nf_err	 rc;

	op_init(&op, "insert", coll, insert_fn);
	if ((rc = nf_bsonjson_from_json(doc, &op.doc, e)) == NF_OK)
		rc = run(impl, &op, e);
	op_cleanup(&op);
	return rc;
}

static enum nf_err
mongo_find(void *impl, const char *coll, struct json_object *filter,
    const struct nf_find_opts *o, struct json_object **out, struct nf_error *e)
{
	struct op	 op;
	bson_t		 sort;
	enum nf_err	 rc;

	*out = NULL;
	op_init(&op, "find", coll, find_fn);
	if ((rc = nf_bsonjson_from_json(filter, &op.filter, e)) != NF_OK)
		goto out;
	if (o != NULL && o->sort != NULL) {
		bson_append_document_begin(&op.opts, "sort", -1, &sort);
		sort_bson(o->sort, &sort);
		bson_append_document_end(&op.opts, &sort);
	}
	if (o != NULL && o->limit > 0)
		BSON_APPEND_INT64(&op.opts, "limit", o->limit);
	if (o != NULL && o->skip > 0)
		BSON_APPEND_INT64(&op.opts, "skip", o->skip);
	if ((rc = run(impl, &op, e)) == NF_OK) {
		*out = op.out;
		op.out = NULL;
	}
out:
	op_cleanup(&op);
	return rc;
}

static enum nf_err
mongo_count(void *impl, const char *coll, struct json_object *filter, int64_t *n,
    struct nf_error *e)
{
	struct op	 op;
	enum nf_err	 rc;

	*n = 0;
	op_init(&op, "count", coll, count_fn);
	if ((rc = nf_bsonjson_from_json(filter, &op.filter, e)) == NF_OK &&
	    (rc = run(impl, &op, e)) == NF_OK)
		*n = op.n;
	op_cleanup(&op);
	return rc;
}

static enum nf_err
mongo_update(void *impl, const char *coll, struct json_object *filter,
    struct json_object *update, unsigned flags, int64_t *matched, struct nf_error *e)
{
	struct op	 op;
	enum nf_err	 rc;

	if (matched != NULL)
		*matched = 0;
	op_init(&op, "update", coll, update_fn);
	op.flags = flags;
	BSON_APPEND_BOOL(&op.opts, "upsert", (flags & NF_STORE_UPSERT) != 0);
	if ((rc = nf_bsonjson_from_json(filter, &op.filter, e)) != NF_OK ||
	    (rc = update_bson(filter, update, flags, &op, e)) != NF_OK)
		goto out;
	if (op.replace && (flags & NF_STORE_MULTI)) {
		rc = nf_error_set(e, NF_EINVAL, "invalid_query", NULL,
		    "a replacement cannot update many documents");
		goto out;
	}
	if ((rc = run(impl, &op, e)) == NF_OK && matched != NULL)
		*matched = op.n;
out:
	op_cleanup(&op);
	return rc;
}

static enum nf_err
mongo_find_and_modify(void *impl, const char *coll, struct json_object *filter,
    struct json_object *sort, struct json_object *update, unsigned flags,
    struct json_object **out, struct nf_error *e)
{
	struct op	 op;
	enum nf_err	 rc;

	*out = NULL;
	op_init(&op, "findAndModify", coll, fam_fn);
	if ((rc = nf_bsonjson_from_json(filter, &op.filter, e)) != NF_OK)
		goto out;
	if (!(flags & NF_STORE_REMOVE) &&
	    (rc = update_bson(filter, update, flags, &op, e)) != NF_OK)
		goto out;
	op.flags = flags;
	sort_bson(sort, &op.sort);
	if ((rc = run(impl, &op, e)) != NF_OK)
		goto out;
	if (op.out == NULL && !op.upserted) {
		rc = nf_error_set(e, NF_ENOTFOUND, NULL, NULL, "no such document");
		goto out;
	}
	*out = op.out;
	op.out = NULL;
out:
	op_cleanup(&op);
	return rc;
}

static enum nf_err
mongo_delete(void *impl, const char *coll, struct json_object *filter, unsigned flags,
    int64_t *deleted, struct nf_error *e)
{
	struct op	 op;
	enum nf_err	 rc;

	if (deleted != NULL)
		*deleted = 0;
	op_init(&op, "delete", coll, delete_fn);
	op.flags = flags;
	if ((rc = nf_bsonjson_from_json(filter, &op.filter, e)) == NF_OK &&
	    (rc = run(impl, &op, e)) == NF_OK && deleted != NULL)
		*deleted = op.n;
	op_cleanup(&op);
	return rc;
}

/* ---- atomic units ---------------------------------------------------- */

static void
log_no_txn(void)
{
	nf_log(NF_LOG_WARN, "mongo: the server does not support transactions (not a "
	    "replica set?): atomic units run their operations one by one");
}

/*
 * with_transaction's callback: one attempt of fn.  It fails when fn fails
 * or when one of fn's operations failed (the server aborted the
 * transaction then, so a fn that went on must not commit).  The failed
 * operation's reply goes back to the driver so its TransientTransactionError
 * label makes it run the unit again, up to UNIT_RETRY_MS in all.
 */
static bool
unit_attempt(mongoc_client_session_t *sess, void *ctx, bson_t **reply, bson_error_t *be)
{
	struct unit	*u = ctx;

	(void)sess;
	unit_reset(u);
	if (u->attempts > 0 && nf_mono_ms() >= u->deadline) {
		u->gave_up = 1;
		bson_set_error(be, NF_BJ_DOMAIN, 4, "unit retried for %d ms", UNIT_RETRY_MS);
		return false;
	}
	u->attempts++;
	u->rc = u->fn(u->st, u->ctx, u->e);
	if (u->no_txn) {
		bson_set_error(be, NF_BJ_DOMAIN, 5, "no transactions");
		return false;
	}
	if (u->failed != NF_OK) {
		*be = u->failed_be;
		*reply = bson_copy(&u->failed_reply);
		return false;
	}
	if (u->rc != NF_OK) {
		bson_set_error(be, NF_BJ_DOMAIN, 6, "the unit's function failed");
		return false;
	}
	return true;
}

/*
 * What nf_store_atomic returns after with_transaction gave ok, reply and
 * be: a transient failure that outlived the retries is NF_EUNAVAIL; fn's
 * own error is returned as fn set it; an operation error fn went past is
 * that operation's error (a duplicate key: NF_ECONFLICT); a failed commit
 * is mapped like any operation's error.
 */
static enum nf_err
unit_result(const struct unit *u, int ok, const bson_t *reply, const bson_error_t *be,
    struct nf_error *e)
{
	if (ok)
		return NF_OK;
	if (u->gave_up || is_transient(reply)) {
		nf_log(NF_LOG_WARN, "mongo: atomic unit given up after %d attempts",
		    u->attempts);
		return nf_error_set(e, NF_EUNAVAIL, "store_unavailable", NULL,
		    "the document store is busy, try again later");
	}
	if (u->rc != NF_OK)
		return u->rc;
	if (u->failed != NF_OK) {
		if (e != NULL)
			*e = u->failed_err;
		return u->failed;
	}
	return map_error(u->attempts > 0 ? "commitTransaction" : "startTransaction", NULL,
	    be, e);
}

/* Start u's session and run fn in a transaction on it. */
static enum nf_err
unit_run(struct unit *u, struct nf_error *e)
{
	mongoc_transaction_opt_t	*to;
	bson_error_t			 be;
	bson_t				 reply;
	enum nf_err			 rc;
	bool				 ok;

	memset(&be, 0, sizeof(be));
	if ((u->cl = mongoc_client_pool_pop(u->m->pool)) == NULL)
		return nf_error_set(e, NF_EUNAVAIL, "store_unavailable", NULL,
		    "the document store is unavailable");
	if ((u->sess = mongoc_client_start_session(u->cl, NULL, &be)) == NULL) {
		if (is_no_txn(&be)) {
			u->no_txn = 1;
			return NF_OK;
		}
		return map_error("startSession", NULL, &be, e);
	}
	to = txn_opts_new();
	u->deadline = nf_mono_ms() + UNIT_RETRY_MS;
	cur_unit = u;
	ok = mongoc_client_session_with_transaction(u->sess, unit_attempt, to, u, &reply, &be);
	cur_unit = NULL;
	mongoc_transaction_opts_destroy(to);
	if (!ok && is_no_txn(&be))
		u->no_txn = 1;
	rc = u->no_txn ? NF_OK : unit_result(u, ok, &reply, &be, e);
	bson_destroy(&reply);
	return rc;
}

/* A unit inside a unit joins it: MongoDB has no savepoints, so its
 * failure fails the whole unit (see "Atomic units" at the top). */
static enum nf_err
unit_nested(struct unit *u, struct nf_store *st, nf_store_atomic_fn fn, void *ctx,
    struct nf_error *e)
{
	enum nf_err	 rc;

	if ((rc = fn(st, ctx, e)) != NF_OK)
		unit_note(u, rc, e, NULL, NULL);
	return rc;
}

static enum nf_err
mongo_atomic(void *impl, struct nf_store *st, nf_store_atomic_fn fn, void *ctx,
    struct nf_error *e)
{
	struct mongo	*m = impl;
	struct unit	 u;
	enum nf_err	 rc;

	if (cur_unit != NULL && cur_unit->m == m)
		return unit_nested(cur_unit, st, fn, ctx, e);
	if (m->no_txn)
		return fn(st, ctx, e);
	memset(&u, 0, sizeof(u));
	u.m = m;
	u.st = st;
	u.fn = fn;
	u.ctx = ctx;
	u.e = e;
	bson_init(&u.failed_reply);
	rc = unit_run(&u, e);
	if (u.sess != NULL)
		mongoc_client_session_destroy(u.sess);
	if (u.cl != NULL)
		mongoc_client_pool_push(m->pool, u.cl);
	bson_destroy(&u.failed_reply);
	if (!u.no_txn)
		return rc;
	/* Nothing was written: the server refused the first operation. */
	m->no_txn = 1;
	pthread_once(&no_txn_once, log_no_txn);
	return fn(st, ctx, e);
}

/*
 * The module's one entry point, looked up by store.c with dlsym.  The
 * module is compiled with -fvisibility=hidden, so everything else
 * (bsonjson.c included) stays private to it.
 */
__attribute__((visibility("default")))
const struct nf_store_ops nf_store_mongo_ops = {
	.name = "mongodb",
	.open = mongo_open,
	.free = mongo_free,
	.ping = mongo_ping,
	.ensure_index = mongo_ensure_index,
	.insert = mongo_insert,
	.find = mongo_find,
	.count = mongo_count,
	.update = mongo_update,
	.find_and_modify = mongo_find_and_modify,
	.delete = mongo_delete,
	.atomic = mongo_atomic,
};
