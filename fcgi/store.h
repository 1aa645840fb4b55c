/*
 * store.h - the document store every handler uses.
 *
 * DESIGN: collections of JSON documents (json-c objects), queried with a
 * subset of MongoDB's filter and update language.  Two backends sit behind
 * one ops table (store_impl.h): SQLite (sqlite:///path, the default, one
 * table per collection holding JSON text, safe with many worker processes)
 * and MongoDB (mongodb://..., libmongoc client pool).
 *
 * Tenancy is enforced here, not by callers: every call takes the tenant id,
 * every filter gets {"tenant": <tenant>} forced into it and every inserted
 * or upserted document gets its "tenant" field set, so no query can reach
 * another tenant's documents.  Filters and updates are built by code, never
 * copied from request bodies; they are still validated (unknown "$"
 * operators are NF_EINVAL), so a client string such as {"$ne": ""} that ends
 * up as a *value* is compared as data.
 *
 * Documents: "_id" is a 24-hex string (nf_id_new) unless the caller sets
 * one.  Field names may not start with '$' or contain '.' or NUL.  Paths
 * used in filters, sorts, updates, pages and indexes are dotted segments of
 * [A-Za-z0-9_-] only (anything else is NF_EINVAL), because the SQLite
 * backend writes them into SQL text so that its indexes are used.
 *
 * Filters supported: {"a.b": value} (equality on dotted paths; against an
 * array field it matches when any element equals the value), $eq, $ne, $gt,
 * $gte, $lt, $lte, $in, $nin, $exists, and top-level $and / $or.
 * Updates supported: $set, $unset, $inc, $push (with optional $each);
 * a document without '$' keys is a replacement (tenant and _id kept).
 *
 * Ownership: filters, updates, sort and documents passed in are borrowed.
 * Results (*out) are new references the caller must json_object_put.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_STORE_H
#define NF_STORE_H

#include <stdint.h>

#include "nonflex.h"

struct json_object;
struct nf_store;

/* Options for find; sort is {"field": 1|-1, ...} in key order (borrowed). */
struct nf_find_opts {
	struct json_object	*sort;
	int64_t			 limit;   /* 0 = no limit */
	int64_t			 skip;
};

/* Index declared per collection; tenant is always the implicit first key. */
#define NF_INDEX_MAXKEYS 4
struct nf_index {
	const char	*name;                    /* stable name, [a-z0-9_]+ */
	const char	*keys[NF_INDEX_MAXKEYS];  /* dotted paths, NULL-terminated */
	int		 dirs[NF_INDEX_MAXKEYS];  /* 1 or -1 */
	int		 unique;                  /* unique within the tenant */
};

/* Flags for update / delete / find_and_modify. */
#define NF_STORE_MULTI   0x01  /* update/delete every match, not just one */
#define NF_STORE_UPSERT  0x02  /* insert when nothing matches */
#define NF_STORE_NEW     0x04  /* find_and_modify returns the new document */
#define NF_STORE_REMOVE  0x08  /* find_and_modify removes the match */

/*
 * Open a store from a URI: "sqlite:///abs/path.db", "sqlite://:memory:" or
 * "mongodb://..." / "mongodb+srv://...".  Returns NF_EINVAL for an unknown
 * scheme, NF_EUNAVAIL when the backend cannot be reached.  A SQLite URI may
 * end in "?max_pages=N" to cap the file at N pages (PRAGMA max_page_count;
 * 4 KiB pages): writes past the cap fail with NF_EUNAVAIL, like a full disk.
 */
enum nf_err	 nf_store_open(const char *uri, struct nf_store **out, struct nf_error *);
void		 nf_store_free(struct nf_store *);               /* accepts NULL */
const char	*nf_store_backend(const struct nf_store *);    /* "sqlite" | "mongodb" */
enum nf_err	 nf_store_ping(struct nf_store *, struct nf_error *);

/* Create the index if missing (idempotent).  Fails with NF_ECONFLICT when
 * existing documents violate a new unique index. */
enum nf_err	 nf_store_ensure_index(struct nf_store *, const char *coll,
		    const struct nf_index *, struct nf_error *);
/*
 * The indexes a module relies on (ix[i] in collection colls[i]), ensured
 * once per store handle: *done (the module's static) remembers the handle
 * they were ensured on, so later calls cost one comparison; a reopened
 * store gets them again.  Stops at the first failure (*done unchanged).
 */
enum nf_err	 nf_store_ensure_indexes(struct nf_store *, const char *const *colls,
		    const struct nf_index *ix, size_t n, struct nf_store **done,
		    struct nf_error *);

/* Insert doc (borrowed; not modified).  id_out (may be NULL) receives the
 * _id.  A duplicate _id or unique-index key gives NF_ECONFLICT. */
enum nf_err	 nf_store_insert(struct nf_store *, const char *tenant, const char *coll,
		    struct json_object *doc, char id_out[25], struct nf_error *);

/* All matches as a new JSON array in *out (empty array when none). */
enum nf_err	 nf_store_find(struct nf_store *, const char *tenant, const char *coll,
		    struct json_object *filter, const struct nf_find_opts *,
		    struct json_object **out, struct nf_error *);

/* First match in *out; NF_ENOTFOUND (and *out NULL) when none. */
enum nf_err	 nf_store_find_one(struct nf_store *, const char *tenant, const char *coll,
		    struct json_object *filter, const struct nf_find_opts *,
		    struct json_object **out, struct nf_error *);

enum nf_err	 nf_store_count(struct nf_store *, const char *tenant, const char *coll,
		    struct json_object *filter, int64_t *n, struct nf_error *);

/* Update one (or with NF_STORE_MULTI all) matches.  *matched (may be NULL)
 * receives the number matched, an upserted document counting as 1. */
enum nf_err	 nf_store_update(struct nf_store *, const char *tenant, const char *coll,
		    struct json_object *filter, struct json_object *update,
		    unsigned flags, int64_t *matched, struct nf_error *);

/*
 * Atomically find the first match (in sort order, sort may be NULL), apply
 * update (or remove it with NF_STORE_REMOVE) and return the document before
 * (default) or after (NF_STORE_NEW) the change.  NF_ENOTFOUND when nothing
 * matched and no upsert happened.  Two processes racing on the same document
 * never both see the same "before" state.
 */
enum nf_err	 nf_store_find_and_modify(struct nf_store *, const char *tenant,
		    const char *coll, struct json_object *filter, struct json_object *sort,
		    struct json_object *update, unsigned flags,
		    struct json_object **out, struct nf_error *);

enum nf_err	 nf_store_delete(struct nf_store *, const char *tenant, const char *coll,
		    struct json_object *filter, unsigned flags, int64_t *deleted,
		    struct nf_error *);

/*
 * Cursor pagination over filter, ordered by field (dotted path) in dir
 * (1 or -1) with _id as tie-breaker.  cursor is NULL for the first page or
 * a value returned earlier in *next; a cursor that does not decode is
 * NF_EINVAL with code "invalid_cursor".  *next is NULL on the last page,
 * otherwise a malloc'd opaque string the caller frees.
 */
enum nf_err	 nf_store_page(struct nf_store *, const char *tenant, const char *coll,
		    struct json_object *filter, const char *field, int dir, int64_t limit,
		    const char *cursor, struct json_object **out, char **next,
		    struct nf_error *);

/*
 * An atomic unit: fn(st, ctx, e) runs and every store operation it makes
 * on st (any tenant, any collection) takes effect together when it returns
 * NF_OK, or none does when it returns an error (which nf_store_atomic
 * returns).  Reads inside fn see the unit's own writes.
 *
 * SQLite: BEGIN IMMEDIATE ... COMMIT, so the unit holds the write lock
 * from its first read (two units never act on the same "before" state)
 * and pays for one commit instead of one per operation; the operations
 * that open their own transaction use a savepoint inside a unit, and a
 * nested nf_store_atomic is a savepoint too.  A failed statement inside a
 * unit (a unique-index conflict on insert) fails alone; fn decides.
 *
 * MongoDB: a client session with a transaction (mongoc_client_session_
 * with_transaction), which may run fn more than once on a transient error,
 * so fn must do nothing but store operations (publish events, queue jobs
 * after it returns).  Any error inside a MongoDB transaction aborts the
 * whole unit, so fn must not rely on catching a conflict and going on: look
 * first (a find), then write.  A server without transactions (a standalone
 * mongod) runs fn's operations one by one, as without a unit; the first
 * use logs that once.
 */
typedef enum nf_err	(*nf_store_atomic_fn)(struct nf_store *, void *ctx,
			    struct nf_error *);
enum nf_err	 nf_store_atomic(struct nf_store *, nf_store_atomic_fn fn, void *ctx,
		    struct nf_error *);

#endif
