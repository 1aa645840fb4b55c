/*
 * store_impl.h - the ops table each store backend implements (store_sqlite.c,
 * store_mongo.c).  Only store.c and the backends include this file.
 *
 * store.c validates filters/updates, forces the tenant into filters and
 * documents and assigns _id before calling a backend, so backends receive:
 * - filter: already containing "tenant"; operators limited to the set in
 *   store.h (validated);
 * - docs for insert: already carrying "_id" and "tenant";
 * - updates: validated; for upserts the backend must build the new document
 *   from the filter's equality fields plus the update, as MongoDB does, and
 *   set "_id" (from the filter, else nf_id_new) and "tenant".
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_STORE_IMPL_H
#define NF_STORE_IMPL_H

#include "store.h"

struct nf_store_ops {
	const char	*name;
	enum nf_err	(*open)(const char *uri, void **impl, struct nf_error *);
	void		(*free)(void *impl);
	enum nf_err	(*ping)(void *impl, struct nf_error *);
	enum nf_err	(*ensure_index)(void *impl, const char *coll,
			    const struct nf_index *, struct nf_error *);
	enum nf_err	(*insert)(void *impl, const char *coll, struct json_object *doc,
			    struct nf_error *);
	enum nf_err	(*find)(void *impl, const char *coll, struct json_object *filter,
			    const struct nf_find_opts *, struct json_object **out,
			    struct nf_error *);
	enum nf_err	(*count)(void *impl, const char *coll, struct json_object *filter,
			    int64_t *n, struct nf_error *);
	enum nf_err	(*update)(void *impl, const char *coll, struct json_object *filter,
			    struct json_object *update, unsigned flags, int64_t *matched,
			    struct nf_error *);
	enum nf_err	(*find_and_modify)(void *impl, const char *coll,
			    struct json_object *filter, struct json_object *sort,
			    struct json_object *update, unsigned flags,
			    struct json_object **out, struct nf_error *);
	enum nf_err	(*delete)(void *impl, const char *coll, struct json_object *filter,
			    unsigned flags, int64_t *deleted, struct nf_error *);
	/* nf_store_atomic (store.h): run fn(st, ctx, e) as one unit. */
	enum nf_err	(*atomic)(void *impl, struct nf_store *st, nf_store_atomic_fn fn,
			    void *ctx, struct nf_error *);
};

extern const struct nf_store_ops nf_store_sqlite_ops;
extern const struct nf_store_ops nf_store_mongo_ops;

struct nf_store {
	const struct nf_store_ops	*ops;
	void				*impl;
};

/*
 * SQLite only, for tests and diagnostics: the EXPLAIN QUERY PLAN of the
 * SELECT nf_store_find would run for tenant's filter (borrowed, unchecked:
 * pass what store.c would accept) and o (may be NULL), one detail line per
 * plan step, each ending in '\n', in *plan (malloc'd, caller frees).
 * NF_EINVAL when s is not a SQLite store.
 */
enum nf_err	 nf_store_sqlite_plan(struct nf_store *s, const char *tenant,
		    const char *coll, struct json_object *filter,
		    const struct nf_find_opts *o, char **plan, struct nf_error *);

#endif
