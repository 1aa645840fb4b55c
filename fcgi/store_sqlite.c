/*
 * store_sqlite.c - the embedded SQLite backend of the document store
 * (store_impl.h), selected by "sqlite:///abs/path.db" or "sqlite://:memory:".
 *
 * DESIGN: one table per collection, c_<coll>(id TEXT PRIMARY KEY, tenant TEXT
 * NOT NULL, doc TEXT NOT NULL), created on first use; documents are JSON text.
 * Filters compile to WHERE clauses over json_type()/json_extract() with every
 * value bound as a parameter.  Field paths are written into the SQL text as
 * JSON path literals, json_extract(doc,'$."a"."b"'), in exactly the form the
 * expression indexes use, because SQLite only matches an index expression
 * against an identical expression; store.c admits only paths made of
 * [A-Za-z0-9_-] segments and path_safe() checks again here, so a literal can
 * never be closed early.  MongoDB semantics are kept where handlers can see them:
 * equality against an array field matches any element (json_each), values
 * compare only within their type bracket (a number never matches a string, a
 * boolean is not 1), null matches missing, missing sorts first.
 *
 * Many worker processes share one file: the database runs in WAL mode, and
 * every write (insert, update, upsert, find_and_modify, delete, and an
 * nf_store_atomic unit as a whole) runs inside BEGIN IMMEDIATE ... COMMIT,
 * taking the write lock before reading, so two processes can never act on
 * the same "before" state; inside a unit, operations are savepoints.
 * Writers line up in a queue shared by the processes (see wlock_take)
 * before asking SQLite for its lock, and checkpoints run after the lock is
 * let go (sq_wal_hook).  Updates are applied in C on the json-c document and the
 * whole document is written back.  Lock timeouts, a full disk and I/O errors
 * become NF_EUNAVAIL (503) after a rollback; the SQLite message goes to the
 * log only.
 *
 * Limits (documented differences from MongoDB): a dotted path does not walk
 * through arrays ("items.sku" does not look inside an array of items, and
 * "a.0" is a key named "0"); sorting compares values as the index holds
 * them, so in a field mixing types booleans sort as 0/1 and objects or
 * arrays by their JSON text (see order_by).
 *
 * Indexes: ensure_index creates (tenant, json_extract(doc,'<path>')...).
 * An equality or $in on a path that leads an index is prefixed with
 * "rowid IN (SELECT rowid ... WHERE tenant = ? AND json_extract(..) IN (..)
 * UNION ALL <rows holding an array there>)", a necessary condition that the
 * planner answers from the index whatever its statistics, so the exact
 * (type-bracketed, array-aware) predicate runs on a handful of rows instead
 * of every document of the tenant (1000 lookups by an indexed field, 20k
 * documents in two tenants, 2 cores: 9.6 s with a scan, 40-60 ms now).  Each connection learns a collection's indexes
 * from sqlite_master on first use; one created later by another process is
 * used after a restart.
 *
 * Size cap: "sqlite:///path.db?max_pages=N" sets PRAGMA max_page_count on
 * every connection (N pages of 4 KiB by default), so a store can be kept
 * from filling its disk; a write past the cap fails like a full disk.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <pthread.h>

#include <json-c/json.h>
#include <sqlite3.h>

#include "json.h"
#include "log.h"
#include "nonflex.h"
#include "store.h"
#include "store_impl.h"

#define SQ_CACHE	32	/* prepared statements kept per connection */
#define SQ_BUSY_MS	5000	/* how long a writer waits for the lock */
#define SQ_WAL_STEP	1000	/* WAL frames between checkpoints (SQLite's default) */
#define SQ_WAL_RESTART	8000	/* WAL frames (~32 MB) that force it back to the start */

struct sq_stmt {
	char		*sql;     /* cache key: the full SQL text */
	sqlite3_stmt	*st;
	int		 busy;    /* handed out and not yet returned */
};

struct sq_coll {
	struct sq_coll	*next;
	char		 name[65];  /* collection whose table exists */
	char		**lead;     /* JSON paths that lead one of its indexes */
	size_t		 nlead;
};

struct sq_wq;

struct sq {
	sqlite3		*db;
	struct sq_coll	*colls;
	struct sq_stmt	 cache[SQ_CACHE];
	size_t		 hand;      /* next cache slot to recycle */
	int64_t		 busy_since; /* mono ms when the current wait began */
	uint32_t	 jitter;    /* xorshift state for the busy waits */
	int		 depth;     /* open transactions: BEGIN, then savepoints */
	int		 ckpt_at;   /* WAL frames at this connection's last checkpoint */
	int		 ckpt_due;  /* checkpoint mode to run once the lock is let go, or -1 */
	struct sq_wq	*wq;        /* the writers' queue (<db>-wlock), or NULL */
	int		 wlocked;   /* this connection holds it */
};

/* SQL text under construction plus the values bound to its '?'s. */
struct sqb {
	char			*buf;
	size_t			 len, cap;
	struct json_object	*binds;   /* array; NULL entries bind SQL NULL */
	int			 bad;     /* a path failed path_safe: never run */
	const char		*coll;    /* queried collection (for prefilters) */
	struct json_object	*tenant;  /* its forced tenant value (borrowed) */
	const struct sq_coll	*ci;      /* its known indexes, or NULL */
};

/* ---- errors --------------------------------------------------------- */

/* Log SQLite's message (never shown to clients) and map the code. */
static enum nf_err
sq_err(struct sq *q, int rc, const char *what, struct nf_error *e)
{
	int	 prim = rc & 0xff;

	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
		nf_log(NF_LOG_DEBUG, "sqlite %s: %s", what, sqlite3_errmsg(q->db));
		return nf_error_set(e, NF_ECONFLICT, "duplicate_key", NULL,
		    "a document with the same key already exists");
	}
	nf_log(NF_LOG_ERROR, "sqlite %s: %s (code %d)", what,
	    q->db != NULL ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc), rc);
	if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED || prim == SQLITE_FULL ||
	    prim == SQLITE_IOERR || prim == SQLITE_CANTOPEN || prim == SQLITE_NOMEM ||
	    prim == SQLITE_READONLY || prim == SQLITE_PROTOCOL)
		return nf_error_set(e, NF_EUNAVAIL, "store_unavailable", NULL,
		    "the store is busy or unavailable, try again later");
	return nf_error_set(e, NF_ESTORE, "store_error", NULL, "internal store error");
}

/* ---- SQL builder ---------------------------------------------------- */

static void
sqb_init(struct sqb *b)
{
	memset(b, 0, sizeof(*b));
	b->cap = 256;
	b->buf = nf_xmalloc(b->cap);
	b->buf[0] = '\0';
	b->binds = json_object_new_array();
}

static void
sqb_free(struct sqb *b)
{
	free(b->buf);
	json_object_put(b->binds);
	b->buf = NULL;
	b->binds = NULL;
}

static void
sqb_add(struct sqb *b, const char *s)
{
	size_t	 n = strlen(s);

	if (b->len + n + 1 > b->cap) {
		while (b->len + n + 1 > b->cap)
			b->cap *= 2;
		b->buf = nf_xrealloc(b->buf, b->cap);
	}
	memcpy(b->buf + b->len, s, n + 1);
	b->len += n;
}

/* Append "?" bound to v (borrowed; a reference is kept). */
static void
sqb_val(struct sqb *b, struct json_object *v)
{
	sqb_add(b, "?");
	json_object_array_add(b->binds, json_object_get(v));
}

static void
sqb_str(struct sqb *b, const char *s)
{
	sqb_add(b, "?");
	json_object_array_add(b->binds, json_object_new_string(s));
}

/* JSON path text $."a"."b" for a dotted path (segments hold no quotes). */
static char *
json_path(const char *dotted)
{
	size_t	 n = strlen(dotted), i, j = 0;
	char	*p = nf_xmalloc(2 * n + 8);

	p[j++] = '$';
	p[j++] = '.';
	p[j++] = '"';
	for (i = 0; i < n; i++) {
		if (dotted[i] == '.') {
			p[j++] = '"';
			p[j++] = '.';
			p[j++] = '"';
		} else
			p[j++] = dotted[i];
	}
	p[j++] = '"';
	p[j] = '\0';
	return p;
}

/*
 * 1 when a dotted path may be written into SQL text: only [A-Za-z0-9_.-].
 * store.c enforces the same (path_ok); this second check sits where the
 * text is pasted, so the SQL stays closed even if the two ever drift.
 */
static int
path_safe(const char *p)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";

	return p[0] != '\0' && p[strspn(p, ok)] == '\0';
}

/*
 * Append the quoted JSON path literal '$."a"."b"' of dotted, the same text
 * sq_ensure_index puts into index expressions.  An unsafe path marks the
 * builder bad (stmt_build refuses it) instead of reaching the SQL.
 */
static void
sqb_path(struct sqb *b, const char *dotted)
{
	char	*p;

	if (!path_safe(dotted)) {
		b->bad = 1;
		sqb_add(b, "NULL");
		return;
	}
	p = json_path(dotted);
	sqb_add(b, "'");
	sqb_add(b, p);
	sqb_add(b, "'");
	free(p);
}

static void
sqb_table(struct sqb *b, const char *coll)
{
	sqb_add(b, "\"c_");
	sqb_add(b, coll);
	sqb_add(b, "\"");
}

/* ---- index knowledge ------------------------------------------------ */

static struct sq_coll *
coll_find(struct sq *q, const char *coll)
{
	struct sq_coll	*c;

	for (c = q->colls; c != NULL; c = c->next)
		if (strcmp(c->name, coll) == 0)
			return c;
	return NULL;
}

static int
lead_has(const struct sq_coll *c, const char *jpath, size_t n)
{
	size_t	 i;

	for (i = 0; c != NULL && i < c->nlead; i++)
		if (strlen(c->lead[i]) == n && memcmp(c->lead[i], jpath, n) == 0)
			return 1;
	return 0;
}

/* Remember that the JSON path jpath (n bytes) leads an index of c. */
static void
lead_add(struct sq_coll *c, const char *jpath, size_t n)
{
	if (lead_has(c, jpath, n))
		return;
	c->lead = nf_xrealloc(c->lead, (c->nlead + 1) * sizeof(*c->lead));
	c->lead[c->nlead++] = nf_xstrndup(jpath, n);
}

/* Index SQL written by sq_ensure_index: ...(tenant, json_extract(doc,'P')... */
static void
lead_parse(struct sq_coll *c, const char *sql)
{
	static const char	 mark[] = "(tenant, json_extract(doc,'";
	const char		*p, *end;

	if (sql == NULL || (p = strstr(sql, mark)) == NULL)
		return;
	p += sizeof(mark) - 1;
	if ((end = strchr(p, '\'')) != NULL)
		lead_add(c, p, (size_t)(end - p));
}

/* 1 when v can be looked up in a json_extract index (a scalar, not null). */
static int
indexable(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_boolean:
	case json_type_int:
	case json_type_double:
	case json_type_string:
		return 1;
	default:
		return 0;
	}
}

/*
 * Open "(rowid IN (<index lookups>) AND " in front of an equality or $in
 * on path, when path leads an index; returns 1 when it did (the caller
 * closes the parenthesis).  The subquery is only a necessary condition:
 * rows whose value equals one of the values (booleans look up as 1/0), plus rows
 * holding an array at path (an array's JSON text sorts in ['[', '\\')),
 * whose elements the exact predicate after it checks; that predicate keeps
 * the type brackets and MongoDB's array rule.  v is one value, or with
 * list set an array of them.
 */
static int
prefilter(struct sqb *b, const char *path, struct json_object *v, int list)
{
	size_t	 i, n = list ? json_object_array_length(v) : 1;
	char	*jp;
	int	 hit;

	if (b->ci == NULL || b->tenant == NULL || n == 0 || !path_safe(path))
		return 0;
	for (i = 0; i < n; i++)
		if (!indexable(list ? json_object_array_get_idx(v, i) : v))
			return 0;
	jp = json_path(path);
	hit = lead_has(b->ci, jp, strlen(jp));
	free(jp);
	if (!hit)
		return 0;
	sqb_add(b, "(rowid IN (SELECT rowid FROM ");
	sqb_table(b, b->coll);
	sqb_add(b, " WHERE tenant = ");
	sqb_val(b, b->tenant);
	sqb_add(b, " AND json_extract(doc,");
	sqb_path(b, path);
	sqb_add(b, ") IN (");
	for (i = 0; i < n; i++) {
		sqb_add(b, i > 0 ? "," : "");
		sqb_val(b, list ? json_object_array_get_idx(v, i) : v);
	}
	sqb_add(b, ") UNION ALL SELECT rowid FROM ");
	sqb_table(b, b->coll);
	sqb_add(b, " WHERE tenant = ");
	sqb_val(b, b->tenant);
	sqb_add(b, " AND json_extract(doc,");
	sqb_path(b, path);
	sqb_add(b, ") >= '[' AND json_extract(doc,");
	sqb_path(b, path);
	sqb_add(b, ") < '\\') AND ");
	return 1;
}

/*
 * Where a leaf compares: a document field (path != NULL) or the current
 * json_each row "je" when looking inside an array.
 */
struct src {
	const char	*path;
};

/* The source's JSON type (type = 1) or its value (type = 0) as SQL. */
static void
src_expr(struct sqb *b, const struct src *s, int type)
{
	if (s->path == NULL) {
		sqb_add(b, type ? "je.type" : "je.value");
		return;
	}
	sqb_add(b, type ? "json_type(doc," : "json_extract(doc,");
	sqb_path(b, s->path);
	sqb_add(b, ")");
}

static void
src_type(struct sqb *b, const struct src *s)
{
	src_expr(b, s, 1);
}

static void
src_val(struct sqb *b, const struct src *s)
{
	src_expr(b, s, 0);
}

/* (T IS 'a' OR T IS 'b') */
static void
type_is(struct sqb *b, const struct src *s, const char *t1, const char *t2)
{
	sqb_add(b, "(");
	src_type(b, s);
	sqb_add(b, " IS '");
	sqb_add(b, t1);
	sqb_add(b, "'");
	if (t2 != NULL) {
		sqb_add(b, " OR ");
		src_type(b, s);
		sqb_add(b, " IS '");
		sqb_add(b, t2);
		sqb_add(b, "'");
	}
	sqb_add(b, ")");
}

/* Equality of one value (no array expansion), never SQL NULL. */
static void
leaf_eq(struct sqb *b, const struct src *s, struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		if (s->path != NULL) {
			sqb_add(b, "(");
			src_type(b, s);
			sqb_add(b, " IS NULL OR ");
			type_is(b, s, "null", NULL);
			sqb_add(b, ")");
		} else
			type_is(b, s, "null", NULL);
		return;
	case json_type_boolean:
		type_is(b, s, json_object_get_boolean(v) ? "true" : "false", NULL);
		return;
	case json_type_int:
	case json_type_double:
		sqb_add(b, "(");
		type_is(b, s, "integer", "real");
		break;
	case json_type_string:
		sqb_add(b, "(");
		type_is(b, s, "text", NULL);
		break;
	case json_type_object:
	case json_type_array:
		sqb_add(b, "(");
		type_is(b, s, json_object_is_type(v, json_type_array) ? "array" : "object",
		    NULL);
		sqb_add(b, " AND ");
		src_val(b, s);
		sqb_add(b, " = json(");
		sqb_str(b, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
		sqb_add(b, "))");
		return;
	}
	sqb_add(b, " AND ");
	src_val(b, s);
	sqb_add(b, " = ");
	sqb_val(b, v);
	sqb_add(b, ")");
}

/* $gt/$gte/$lt/$lte within v's type bracket; never SQL NULL. */
static void
leaf_cmp(struct sqb *b, const struct src *s, const char *sqlop, struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		/* $gte/$lte null match null or missing; $gt/$lt null nothing. */
		if (strchr(sqlop, '=') != NULL)
			leaf_eq(b, s, v);
		else
			sqb_add(b, "0");
		return;
	case json_type_boolean:
		sqb_add(b, "(");
		type_is(b, s, "true", "false");
		break;
	case json_type_int:
	case json_type_double:
		sqb_add(b, "(");
		type_is(b, s, "integer", "real");
		break;
	case json_type_string:
		sqb_add(b, "(");
		type_is(b, s, "text", NULL);
		break;
	default:
		sqb_add(b, "0");    /* store.c allows scalars only */
		return;
	}
	sqb_add(b, " AND ");
	src_val(b, s);
	sqb_add(b, " ");
	sqb_add(b, sqlop);
	sqb_add(b, " ");
	if (json_object_is_type(v, json_type_boolean)) {
		struct json_object *i = json_object_new_int(json_object_get_boolean(v));

		sqb_val(b, i);
		json_object_put(i);
	} else
		sqb_val(b, v);
	sqb_add(b, ")");
}

/*
 * A field predicate with MongoDB's array rule: true when the field itself
 * matches or, if it is an array, when any element does.
 */
static void
field_pred(struct sqb *b, const char *path, const char *sqlop, struct json_object *v,
    int pre)
{
	struct src	 f = { path }, el = { NULL };
	int		 open = pre && sqlop == NULL && prefilter(b, path, v, 0);

	sqb_add(b, "(");
	if (sqlop == NULL)
		leaf_eq(b, &f, v);
	else
		leaf_cmp(b, &f, sqlop, v);
	sqb_add(b, " OR (json_type(doc,");
	sqb_path(b, path);
	sqb_add(b, ") IS 'array' AND EXISTS (SELECT 1 FROM json_each(doc,");
	sqb_path(b, path);
	sqb_add(b, ") AS je WHERE ");
	if (sqlop == NULL)
		leaf_eq(b, &el, v);
	else
		leaf_cmp(b, &el, sqlop, v);
	sqb_add(b, open ? "))))" : ")))");
}

/* (eq a1 OR eq a2 ...) ; "0" when the array is empty.  pre: see prefilter. */
static void
field_in(struct sqb *b, const char *path, struct json_object *arr, int pre)
{
	size_t	 i, n = json_object_array_length(arr);
	int	 open;

	if (n == 0) {
		sqb_add(b, "0");
		return;
	}
	open = pre && prefilter(b, path, arr, 1);
	sqb_add(b, "(");
	for (i = 0; i < n; i++) {
		if (i > 0)
			sqb_add(b, " OR ");
		field_pred(b, path, NULL, json_object_array_get_idx(arr, i), 0);
	}
	sqb_add(b, open ? "))" : ")");
}

static enum nf_err	where_filter(struct sqb *, struct json_object *, int, struct nf_error *);

static enum nf_err
where_op(struct sqb *b, const char *path, const char *op, struct json_object *v,
    struct nf_error *e)
{
	static const struct { const char *op, *sql; } cmps[] = {
		{ "$gt", ">" }, { "$gte", ">=" }, { "$lt", "<" }, { "$lte", "<=" },
	};
	size_t	 i;

	if (strcmp(op, "$eq") == 0) {
		field_pred(b, path, NULL, v, 1);
	} else if (strcmp(op, "$ne") == 0) {
		sqb_add(b, "NOT ");
		field_pred(b, path, NULL, v, 0);
	} else if (strcmp(op, "$in") == 0) {
		field_in(b, path, v, 1);
	} else if (strcmp(op, "$nin") == 0) {
		sqb_add(b, "NOT ");
		field_in(b, path, v, 0);
	} else if (strcmp(op, "$exists") == 0) {
		sqb_add(b, "(json_type(doc,");
		sqb_path(b, path);
		sqb_add(b, json_object_get_boolean(v) ? ") IS NOT NULL)" : ") IS NULL)");
	} else {
		for (i = 0; i < NF_ARRAY_LEN(cmps); i++)
			if (strcmp(op, cmps[i].op) == 0)
				break;
		if (i == NF_ARRAY_LEN(cmps))
			return nf_error_set(e, NF_EINVAL, "invalid_query", path,
			    "unknown query operator");
		field_pred(b, path, cmps[i].sql, v, 0);
	}
	return NF_OK;
}

/* $and / $or over an array of filters. */
static enum nf_err
where_logical(struct sqb *b, struct json_object *arr, const char *join,
    struct nf_error *e)
{
	size_t	 i, n = json_object_array_length(arr);

	sqb_add(b, "(");
	for (i = 0; i < n; i++) {
		if (i > 0)
			sqb_add(b, join);
		if (where_filter(b, json_object_array_get_idx(arr, i), 1, e) != NF_OK)
			return NF_EINVAL;
	}
	sqb_add(b, n == 0 ? "1)" : ")");
	return NF_OK;
}

static int
first_key_is_op(struct json_object *v)
{
	if (!json_object_is_type(v, json_type_object))
		return 0;
	json_object_object_foreach(v, k, val) {
		(void)val;
		return k[0] == '$';
	}
	return 0;
}

/* One "key: value" of a filter. */
static enum nf_err
where_key(struct sqb *b, const char *key, struct json_object *v, int nested,
    struct nf_error *e)
{
	int	 first = 1;

	if (strcmp(key, "$and") == 0)
		return where_logical(b, v, " AND ", e);
	if (strcmp(key, "$or") == 0)
		return where_logical(b, v, " OR ", e);
	if (key[0] == '$')
		return nf_error_set(e, NF_EINVAL, "invalid_query", key,
		    "unknown query operator");
	/* Columns: the forced tenant, and _id (always a string). */
	if (!nested && strcmp(key, "tenant") == 0 &&
	    json_object_is_type(v, json_type_string)) {
		sqb_add(b, "tenant = ");
		sqb_val(b, v);
		return NF_OK;
	}
	if (strcmp(key, "_id") == 0 && json_object_is_type(v, json_type_string)) {
		sqb_add(b, "id = ");
		sqb_val(b, v);
		return NF_OK;
	}
	if (!first_key_is_op(v)) {
		field_pred(b, key, NULL, v, 1);
		return NF_OK;
	}
	sqb_add(b, "(");
	json_object_object_foreach(v, op, arg) {
		if (!first)
			sqb_add(b, " AND ");
		first = 0;
		if (where_op(b, key, op, arg, e) != NF_OK)
			return NF_EINVAL;
	}
	sqb_add(b, ")");
	return NF_OK;
}

static enum nf_err
where_filter(struct sqb *b, struct json_object *f, int nested, struct nf_error *e)
{
	int	 first = 1;

	if (!json_object_is_type(f, json_type_object))
		return nf_error_set(e, NF_EINVAL, "invalid_query", NULL,
		    "filter must be an object");
	sqb_add(b, "(");
	json_object_object_foreach(f, key, v) {
		if (!first)
			sqb_add(b, " AND ");
		first = 0;
		if (where_key(b, key, v, nested, e) != NF_OK)
			return NF_EINVAL;
	}
	sqb_add(b, first ? "1)" : ")");
	return NF_OK;
}

/* WHERE body for a tenant-scoped filter on coll (store.c forced "tenant"). */
static enum nf_err
where_top(struct sq *q, struct sqb *b, const char *coll, struct json_object *filter,
    struct nf_error *e)
{
	b->coll = coll;
	b->ci = coll_find(q, coll);
	if (!json_object_object_get_ex(filter, "tenant", &b->tenant) ||
	    !json_object_is_type(b->tenant, json_type_string))
		b->tenant = NULL;
	return where_filter(b, filter, 0, e);
}

/* ORDER BY the values themselves, as the index expressions hold them, so
 * the planner sorts from an index instead of sorting every document of the
 * tenant: missing/null first, then numbers, then strings, as MongoDB does.
 * (Putting MongoDB's type bracket, a CASE on json_type(), in front made
 * every sorted page a full scan.)  Documented difference: in a field that
 * mixes types, booleans sort as the numbers 0/1 and objects or arrays by
 * their JSON text among the strings. */
static void
order_by(struct sqb *b, struct json_object *sort)
{
	const char	*dir;

	sqb_add(b, " ORDER BY ");
	if (sort != NULL) {
		json_object_object_foreach(sort, key, v) {
			dir = json_object_get_int(v) < 0 ? " DESC, " : ", ";
			if (strcmp(key, "_id") == 0) {
				sqb_add(b, "id");
				sqb_add(b, dir);
				continue;
			}
			sqb_add(b, "json_extract(doc,");
			sqb_path(b, key);
			sqb_add(b, ")");
			sqb_add(b, dir);
		}
	}
	sqb_add(b, "rowid");
}

/* ---- statements ----------------------------------------------------- */

static void
stmt_put(struct sq *q, sqlite3_stmt *st)
{
	size_t	 i;

	if (st == NULL)
		return;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	for (i = 0; i < SQ_CACHE; i++)
		if (q->cache[i].st == st) {
			q->cache[i].busy = 0;
			return;
		}
	sqlite3_finalize(st);
}

/* A prepared statement for sql, from the cache when possible. */
/*
 * SQLite rolls a whole transaction back by itself on some errors (a full
 * disk, I/O, out of memory).  Inside a unit that must not go unnoticed:
 * the unit's later statements would each commit alone.
 */
static enum nf_err
unit_lost(struct sq *q, struct nf_error *e)
{
	nf_log(NF_LOG_ERROR, "sqlite: a transaction was rolled back under an atomic unit");
	(void)q;
	return nf_error_set(e, NF_EUNAVAIL, "store_unavailable", NULL,
	    "the store is busy or unavailable, try again later");
}

static enum nf_err
stmt_get(struct sq *q, const char *sql, sqlite3_stmt **out, struct nf_error *e)
{
	struct sq_stmt	*c = NULL;
	size_t		 i;
	int		 rc;

	*out = NULL;
	if (q->depth > 0 && sqlite3_get_autocommit(q->db))
		return unit_lost(q, e);
	for (i = 0; i < SQ_CACHE; i++)
		if (q->cache[i].sql != NULL && !q->cache[i].busy &&
		    strcmp(q->cache[i].sql, sql) == 0) {
			q->cache[i].busy = 1;
			*out = q->cache[i].st;
			return NF_OK;
		}
	rc = sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
	if (rc != SQLITE_OK)
		return sq_err(q, rc, "prepare", e);
	for (i = 0; i < SQ_CACHE && c == NULL; i++) {
		struct sq_stmt *s = &q->cache[(q->hand + i) % SQ_CACHE];

		if (!s->busy)
			c = s;
	}
	if (c == NULL)
		return NF_OK;           /* all slots in use: stmt_put finalizes */
	q->hand = (size_t)(c - q->cache + 1) % SQ_CACHE;
	sqlite3_finalize(c->st);
	free(c->sql);
	c->sql = nf_xstrdup(sql);
	c->st = *out;
	c->busy = 1;
	return NF_OK;
}

static enum nf_err
bind_all(struct sq *q, sqlite3_stmt *st, struct json_object *binds, struct nf_error *e)
{
	struct json_object	*v;
	size_t			 i, n = json_object_array_length(binds);
	int			 rc = SQLITE_OK, k;

	for (i = 0; i < n && rc == SQLITE_OK; i++) {
		v = json_object_array_get_idx(binds, i);
		k = (int)i + 1;
		switch (json_object_get_type(v)) {
		case json_type_null:
			rc = sqlite3_bind_null(st, k);
			break;
		case json_type_boolean:
		case json_type_int:
			rc = sqlite3_bind_int64(st, k, json_object_get_int64(v));
			break;
		case json_type_double:
			rc = sqlite3_bind_double(st, k, json_object_get_double(v));
			break;
		case json_type_string:
			rc = sqlite3_bind_text(st, k, json_object_get_string(v),
			    json_object_get_string_len(v), SQLITE_TRANSIENT);
			break;
		default:
			rc = sqlite3_bind_text(st, k, json_object_to_json_string_ext(v,
			    JSON_C_TO_STRING_PLAIN), -1, SQLITE_TRANSIENT);
			break;
		}
	}
	return rc == SQLITE_OK ? NF_OK : sq_err(q, rc, "bind", e);
}

/* Prepare and bind b. */
static enum nf_err
stmt_build(struct sq *q, struct sqb *b, sqlite3_stmt **st, struct nf_error *e)
{
	enum nf_err	 rc;

	*st = NULL;
	if (b->bad)
		return nf_error_set(e, NF_EINVAL, "invalid_query", NULL,
		    "invalid field path");
	if ((rc = stmt_get(q, b->buf, st, e)) != NF_OK)
		return rc;
	if ((rc = bind_all(q, *st, b->binds, e)) != NF_OK) {
		stmt_put(q, *st);
		*st = NULL;
	}
	return rc;
}

/* Run a statement that returns no rows; *changes (may be NULL). */
static enum nf_err
exec_sqb(struct sq *q, struct sqb *b, int64_t *changes, struct nf_error *e)
{
	sqlite3_stmt	*st = NULL;
	enum nf_err	 rc;
	int		 src;

	if ((rc = stmt_build(q, b, &st, e)) != NF_OK)
		return rc;
	while ((src = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (src != SQLITE_DONE)
		rc = sq_err(q, src, "write", e);
	else if (changes != NULL)
		*changes = sqlite3_changes64(q->db);
	stmt_put(q, st);
	return rc;
}

/* exec_sqb for a builder used once: runs b, then frees it (consumes). */
static enum nf_err
exec_once(struct sq *q, struct sqb *b, struct nf_error *e)
{
	enum nf_err	 rc = exec_sqb(q, b, NULL, e);

	sqb_free(b);
	return rc;
}

static enum nf_err
exec_sql(struct sq *q, const char *sql, struct nf_error *e)
{
	struct sqb	 b;

	sqb_init(&b);
	sqb_add(&b, sql);
	return exec_once(q, &b, e);
}

/*
 * Waiting for another process's write lock.  SQLite's own busy timeout
 * sleeps 1, 2, 5, 10... ms; a writer here holds the lock for well under a
 * millisecond, so those sleeps left the core idle most of the time under
 * concurrent webhooks.  This waits 50 us, doubling to 1 ms, with jitter so
 * two waiters do not wake together, for at most SQ_BUSY_MS in all.
 */
static int
sq_busy(void *ctx, int count)
{
	struct sq	*q = ctx;
	struct timespec	 ts;
	long		 us;

	if (count == 0)
		q->busy_since = nf_mono_ms();
	else if (nf_mono_ms() - q->busy_since >= SQ_BUSY_MS)
		return 0;
	us = 50L << (count < 5 ? count : 5);
	q->jitter ^= q->jitter << 13;
	q->jitter ^= q->jitter >> 17;
	q->jitter ^= q->jitter << 5;
	us += (long)(q->jitter % (uint32_t)us);
	ts.tv_sec = 0;
	ts.tv_nsec = us * 1000;
	nanosleep(&ts, NULL);
	return 1;
}

/*
 * After each commit, with the WAL's size in frames.  SQLite's own hook
 * checkpoints (PASSIVE) on every commit once the WAL passes 1000 frames,
 * but under steady writes from several processes some reader always holds
 * a snapshot in the WAL, so it never goes back to the start: it grew
 * without bound (360 MB in a 15 s webhook benchmark) and every commit paid
 * a checkpoint and two fsyncs.  Here a PASSIVE checkpoint runs once per
 * SQ_WAL_STEP new frames, and past SQ_WAL_RESTART frames a RESTART one
 * waits (busy handler, bounded) for the readers to move on, so the WAL
 * starts over and stays within a few tens of MB.
 */
static int
sq_wal_hook(void *ctx, sqlite3 *db, const char *name, int frames)
{
	struct sq	*q = ctx;
	int		 mode;

	if (frames < q->ckpt_at)        /* the WAL started over */
		q->ckpt_at = 0;
	if (frames >= SQ_WAL_RESTART)
		mode = SQLITE_CHECKPOINT_RESTART;
	else if (frames - q->ckpt_at >= SQ_WAL_STEP)
		mode = SQLITE_CHECKPOINT_PASSIVE;
	else
		return SQLITE_OK;
	q->ckpt_at = frames;
	q->ckpt_due = mode;     /* run by wlock_drop, outside the writers' queue */
	(void)db;
	(void)name;
	return SQLITE_OK;
}

/*
 * The writers' queue.  SQLite's write lock is taken by polling (the busy
 * handler), so under concurrent writes a waiting process sleeps past the
 * moment the lock is let go, and the core idles: two workers writing
 * webhooks spent most of their time asleep.  Every write transaction of
 * this backend therefore first takes a mutex shared by every process on
 * the file (PTHREAD_PROCESS_SHARED, in <db>-wlock mapped by each), which
 * hands over to the next waiter the moment it is released, then BEGIN
 * IMMEDIATE, which then finds SQLite's lock free (other programs on the
 * file, such as the sqlite3 shell, still meet the busy handler).
 *  - The mutex is robust: a process that dies holding it (a worker killed
 *    mid-transaction) hands it to the next waiter, whose SQLite has rolled
 *    the dead one's transaction back already.
 *  - The wait is bounded by SQ_BUSY_MS: a holder that hangs or is stopped
 *    gives the others 503 store_unavailable, as SQLite's own lock would,
 *    rather than a worker pool stuck behind it.
 *  - A process that holds the queue through another connection does not
 *    wait for it again: it would wait for itself.
 */
#define WQ_MAGIC	0x6e667771u     /* "nfwq": the mutex is initialised */

struct sq_wq {
	uint32_t		 magic;
	pthread_mutex_t		 mu;
};

static int	sq_wlock_held;

/* 0, or NF_EUNAVAIL (e set) when the queue did not move in SQ_BUSY_MS. */
static enum nf_err
wlock_take(struct sq *q, struct nf_error *e)
{
	struct timespec	 ts;
	int		 rc;

	if (q->wq == NULL || q->wlocked || sq_wlock_held)
		return NF_OK;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += SQ_BUSY_MS / 1000;
	ts.tv_nsec += (long)(SQ_BUSY_MS % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	rc = pthread_mutex_clocklock(&q->wq->mu, CLOCK_MONOTONIC, &ts);
	if (rc == EOWNERDEAD) {
		nf_warn("sqlite: a process died in a write transaction; it was rolled back");
		pthread_mutex_consistent(&q->wq->mu);
		rc = 0;
	}
	if (rc == ETIMEDOUT) {
		nf_log(NF_LOG_ERROR, "sqlite: the writers' queue did not move in %d ms",
		    SQ_BUSY_MS);
		return nf_error_set(e, NF_EUNAVAIL, "store_unavailable", NULL,
		    "the store is busy or unavailable, try again later");
	}
	if (rc != 0)
		return NF_OK;           /* no queue: SQLite's lock still protects */
	q->wlocked = sq_wlock_held = 1;
	return NF_OK;
}

static void
wlock_drop(struct sq *q)
{
	int	 mode = q->ckpt_due;

	if (q->wlocked) {
		pthread_mutex_unlock(&q->wq->mu);
		q->wlocked = sq_wlock_held = 0;
	}
	q->ckpt_due = -1;
	if (mode >= 0 && sqlite3_wal_checkpoint_v2(q->db, NULL, mode, NULL, NULL) ==
	    SQLITE_OK && mode == SQLITE_CHECKPOINT_RESTART)
		q->ckpt_at = 0;     /* one that could not finish is retried later */
}

/* The first process to map the file sets the mutex up, under an flock so
 * two cannot both do it. */
static int
wq_init(int fd, struct sq_wq *wq)
{
	pthread_mutexattr_t	 a;
	int			 ok = 1;

	if (flock(fd, LOCK_EX) != 0)
		return 0;
	if (wq->magic != WQ_MAGIC) {
		ok = pthread_mutexattr_init(&a) == 0 &&
		    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) == 0 &&
		    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) == 0 &&
		    pthread_mutex_init(&wq->mu, &a) == 0;
		pthread_mutexattr_destroy(&a);
		if (ok)
			wq->magic = WQ_MAGIC;
	}
	flock(fd, LOCK_UN);
	return ok;
}

static struct sq_wq *
wlock_open(const char *path)
{
	struct sq_wq	*wq = NULL;
	struct stat	 sb;
	char		*lp;
	void		*m;
	int		 fd;

	if (strcmp(path, ":memory:") == 0)
		return NULL;
	lp = nf_xasprintf("%s-wlock", path);
	if ((fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 ||
	    fstat(fd, &sb) != 0 ||
	    ((size_t)sb.st_size < sizeof(*wq) && ftruncate(fd, sizeof(*wq)) != 0) ||
	    (m = mmap(NULL, sizeof(*wq), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) ==
	    MAP_FAILED)
		nf_warn("sqlite: no writers' queue %s: %s", lp, strerror(errno));
	else if (!wq_init(fd, wq = m)) {
		nf_warn("sqlite: no writers' queue %s: cannot set it up", lp);
		munmap(m, sizeof(*wq));
		wq = NULL;
	}
	if (fd >= 0)
		close(fd);
	free(lp);
	return wq;
}

static void
wlock_close(struct sq_wq *wq)
{
	if (wq != NULL)
		munmap(wq, sizeof(*wq));
}

/* ---- transactions and tables ---------------------------------------- */

static void	coll_free(struct sq_coll *);

static void
colls_forget(struct sq *q)
{
	struct sq_coll	*c;

	while ((c = q->colls) != NULL) {
		q->colls = c->next;
		coll_free(c);
	}
}

/*
 * Transactions nest: the outermost is BEGIN IMMEDIATE ... COMMIT, anything
 * begun inside it (an operation's own transaction within nf_store_atomic,
 * or a nested unit) is a savepoint, released or rolled back to alone.
 */
static enum nf_err
tx_begin(struct sq *q, struct nf_error *e)
{
	enum nf_err	 rc;

	if (q->depth > 0 && sqlite3_get_autocommit(q->db))
		return unit_lost(q, e);
	if (q->depth == 0 && (rc = wlock_take(q, e)) != NF_OK)
		return rc;
	rc = exec_sql(q, q->depth == 0 ? "BEGIN IMMEDIATE" : "SAVEPOINT nf_unit", e);
	if (rc == NF_OK)
		q->depth++;
	else if (q->depth == 0)
		wlock_drop(q);
	return rc;
}

static void
tx_rollback(struct sq *q)
{
	const char	*sql = q->depth > 1 ? "ROLLBACK TO nf_unit; RELEASE nf_unit" :
			    "ROLLBACK";

	if (q->depth > 0)
		q->depth--;
	if (!sqlite3_get_autocommit(q->db) &&
	    sqlite3_exec(q->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		nf_log(NF_LOG_ERROR, "sqlite rollback: %s", sqlite3_errmsg(q->db));
	/* The rollback may have undone a CREATE TABLE coll_ensure made in
	 * it: forget what it knows, tables are made again (IF NOT EXISTS). */
	colls_forget(q);
	if (q->depth == 0)
		wlock_drop(q);
}

/* Commit (or release) when rc is NF_OK, otherwise roll back; returns the
 * final rc. */
static enum nf_err
tx_end(struct sq *q, enum nf_err rc, struct nf_error *e)
{
	if (rc == NF_OK && q->depth > 0 && sqlite3_get_autocommit(q->db))
		rc = unit_lost(q, e);
	if (rc == NF_OK && (rc = exec_sql(q, q->depth > 1 ? "RELEASE nf_unit" : "COMMIT",
	    e)) == NF_OK) {
		if (--q->depth == 0)
			wlock_drop(q);
		return NF_OK;
	}
	tx_rollback(q);
	return rc;
}

static enum nf_err
sq_atomic(void *impl, struct nf_store *st, nf_store_atomic_fn fn, void *ctx,
    struct nf_error *e)
{
	struct sq	*q = impl;
	enum nf_err	 rc;

	if ((rc = tx_begin(q, e)) != NF_OK)
		return rc;
	return tx_end(q, fn(st, ctx, e), e);
}

static void
coll_free(struct sq_coll *c)
{
	size_t	 i;

	for (i = 0; i < c->nlead; i++)
		free(c->lead[i]);
	free(c->lead);
	free(c);
}

/* Learn which paths lead c's indexes from the schema (any process made them). */
static int
leads_load(struct sq *q, struct sq_coll *c)
{
	sqlite3_stmt	*st = NULL;
	char		 tbl[70];
	int		 rc;

	snprintf(tbl, sizeof(tbl), "c_%s", c->name);
	rc = sqlite3_prepare_v2(q->db, "SELECT sql FROM sqlite_master WHERE "
	    "type = 'index' AND tbl_name = ?", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 1, tbl, -1, SQLITE_TRANSIENT);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		lead_parse(c, (const char *)sqlite3_column_text(st, 0));
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Create c_<coll> on first use in this connection (names are validated
 * by store.c as [a-z][a-z0-9_]*, so they are safe as quoted identifiers). */
static enum nf_err
coll_ensure(struct sq *q, const char *coll, struct nf_error *e)
{
	struct sq_coll	*c;
	char		*sql;
	int		 rc;

	if (coll_find(q, coll) != NULL)
		return NF_OK;
	sql = nf_xasprintf("CREATE TABLE IF NOT EXISTS \"c_%s\" (id TEXT PRIMARY KEY, "
	    "tenant TEXT NOT NULL, doc TEXT NOT NULL);"
	    "CREATE INDEX IF NOT EXISTS \"c_%s__tenant\" ON \"c_%s\"(tenant);",
	    coll, coll, coll);
	rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
	free(sql);
	if (rc != SQLITE_OK)
		return sq_err(q, rc, "create table", e);
	c = nf_xcalloc(1, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", coll);
	if ((rc = leads_load(q, c)) != SQLITE_OK) {
		coll_free(c);
		return sq_err(q, rc, "read indexes", e);
	}
	c->next = q->colls;
	q->colls = c;
	return NF_OK;
}

/* ---- documents ------------------------------------------------------ */

static enum nf_err
parse_doc(const char *txt, struct json_object **out, struct nf_error *e)
{
	*out = txt != NULL ? json_tokener_parse(txt) : NULL;
	if (*out == NULL || !json_object_is_type(*out, json_type_object)) {
		json_object_put(*out);
		*out = NULL;
		nf_log(NF_LOG_ERROR, "sqlite: stored document does not parse");
		return nf_error_set(e, NF_ESTORE, "store_error", NULL,
		    "internal store error");
	}
	return NF_OK;
}

static const char *
doc_text(struct json_object *doc)
{
	return json_object_to_json_string_ext(doc,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

static enum nf_err
row_insert(struct sq *q, const char *coll, struct json_object *doc, struct nf_error *e)
{
	struct sqb	 b;

	if (nf_json_field_str(doc, "_id") == NULL || nf_json_field_str(doc, "tenant") == NULL)
		return nf_error_set(e, NF_EINVAL, "invalid_query", NULL,
		    "document needs _id and tenant");
	sqb_init(&b);
	sqb_add(&b, "INSERT INTO ");
	sqb_table(&b, coll);
	sqb_add(&b, "(id, tenant, doc) VALUES (");
	sqb_str(&b, nf_json_field_str(doc, "_id"));
	sqb_add(&b, ",");
	sqb_str(&b, nf_json_field_str(doc, "tenant"));
	sqb_add(&b, ",");
	sqb_str(&b, doc_text(doc));
	sqb_add(&b, ")");
	return exec_once(q, &b, e);
}

static enum nf_err
row_write(struct sq *q, const char *coll, struct json_object *doc, struct nf_error *e)
{
	struct sqb	 b;

	sqb_init(&b);
	sqb_add(&b, "UPDATE ");
	sqb_table(&b, coll);
	sqb_add(&b, " SET doc = ");
	sqb_str(&b, doc_text(doc));
	sqb_add(&b, " WHERE id = ");
	sqb_str(&b, nf_json_field_str(doc, "_id"));
	return exec_once(q, &b, e);
}

static enum nf_err
row_delete(struct sq *q, const char *coll, const char *id, struct nf_error *e)
{
	struct sqb	 b;

	sqb_init(&b);
	sqb_add(&b, "DELETE FROM ");
	sqb_table(&b, coll);
	sqb_add(&b, " WHERE id = ");
	sqb_str(&b, id);
	return exec_once(q, &b, e);
}

/* Append "SELECT doc FROM ... LIMIT ? OFFSET ?" to b. */
static enum nf_err
select_sql(struct sq *q, struct sqb *b, const char *coll, struct json_object *filter,
    struct json_object *sort, int64_t limit, int64_t skip, struct nf_error *e)
{
	struct json_object	*lim, *off;
	enum nf_err		 rc;

	sqb_add(b, "SELECT doc FROM ");
	sqb_table(b, coll);
	sqb_add(b, " WHERE ");
	if ((rc = where_top(q, b, coll, filter, e)) != NF_OK)
		return rc;
	order_by(b, sort);
	sqb_add(b, " LIMIT ");
	sqb_val(b, lim = json_object_new_int64(limit > 0 ? limit : -1));
	sqb_add(b, " OFFSET ");
	sqb_val(b, off = json_object_new_int64(skip));
	json_object_put(lim);
	json_object_put(off);
	return NF_OK;
}

/* SELECT doc ... into a new array *out. */
static enum nf_err
select_docs(struct sq *q, const char *coll, struct json_object *filter,
    struct json_object *sort, int64_t limit, int64_t skip,
    struct json_object **out, struct nf_error *e)
{
	struct json_object	*doc;
	sqlite3_stmt		*st = NULL;
	struct sqb		 b;
	enum nf_err		 rc;
	int			 src;

	*out = NULL;
	sqb_init(&b);
	if ((rc = select_sql(q, &b, coll, filter, sort, limit, skip, e)) != NF_OK ||
	    (rc = stmt_build(q, &b, &st, e)) != NF_OK)
		goto out;
	*out = json_object_new_array();
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		if ((rc = parse_doc((const char *)sqlite3_column_text(st, 0), &doc, e)) != NF_OK)
			goto out;
		json_object_array_add(*out, doc);
	}
	if (src != SQLITE_DONE)
		rc = sq_err(q, src, "select", e);
out:
	if (rc != NF_OK) {
		json_object_put(*out);
		*out = NULL;
	}
	stmt_put(q, st);
	sqb_free(&b);
	return rc;
}

/* ---- applying updates in C ------------------------------------------ */

static enum nf_err
shape_err(const char *path, struct nf_error *e)
{
	return nf_error_set(e, NF_EINVAL, "invalid_query", path,
	    "the update does not fit the document's shape");
}

/*
 * Parent object of a dotted path; *leaf points into *buf (freed by the
 * caller).  create: make missing intermediate objects.  Returns NULL when
 * the parent is missing (create == 0) or not an object (*bad set).
 */
static struct json_object *
walk(struct json_object *doc, const char *path, int create, char **buf,
    const char **leaf, int *bad)
{
	struct json_object	*cur = doc, *next;
	char			*seg, *dot;

	*bad = 0;
	*buf = nf_xstrdup(path);
	seg = *buf;
	while ((dot = strchr(seg, '.')) != NULL) {
		*dot = '\0';
		if (!json_object_object_get_ex(cur, seg, &next)) {
			if (!create)
				return NULL;
			next = json_object_new_object();
			json_object_object_add(cur, seg, next);
		} else if (!json_object_is_type(next, json_type_object)) {
			*bad = 1;
			return NULL;
		}
		cur = next;
		seg = dot + 1;
	}
	*leaf = seg;
	return cur;
}

static struct json_object *
copy_of(struct json_object *v)
{
	struct json_object	*c = NULL;

	if (v != NULL && json_object_deep_copy(v, &c, NULL) != 0)
		abort();    /* json-c fails here only when out of memory */
	return c;
}

static enum nf_err
inc_value(struct json_object *parent, const char *leaf, struct json_object *by,
    const char *path, struct nf_error *e)
{
	struct json_object	*cur;
	int64_t			 sum;

	if (!json_object_object_get_ex(parent, leaf, &cur) || cur == NULL) {
		json_object_object_add(parent, leaf, copy_of(by));
		return NF_OK;
	}
	if (json_object_is_type(cur, json_type_int) && json_object_is_type(by, json_type_int)) {
		if (__builtin_add_overflow(json_object_get_int64(cur),
		    json_object_get_int64(by), &sum))
			return nf_error_set(e, NF_EINVAL, "invalid_query", path,
			    "$inc overflows");
		json_object_object_add(parent, leaf, json_object_new_int64(sum));
		return NF_OK;
	}
	if (!json_object_is_type(cur, json_type_int) &&
	    !json_object_is_type(cur, json_type_double))
		return nf_error_set(e, NF_EINVAL, "invalid_query", path,
		    "$inc on a field that is not a number");
	json_object_object_add(parent, leaf, json_object_new_double(
	    json_object_get_double(cur) + json_object_get_double(by)));
	return NF_OK;
}

static enum nf_err
push_value(struct json_object *parent, const char *leaf, struct json_object *v,
    const char *path, struct nf_error *e)
{
	struct json_object	*arr, *each = NULL;
	size_t			 i, n;

	if (!json_object_object_get_ex(parent, leaf, &arr) || arr == NULL) {
		arr = json_object_new_array();
		json_object_object_add(parent, leaf, arr);
	} else if (!json_object_is_type(arr, json_type_array))
		return nf_error_set(e, NF_EINVAL, "invalid_query", path,
		    "$push on a field that is not an array");
	if (first_key_is_op(v) && json_object_object_get_ex(v, "$each", &each)) {
		n = json_object_array_length(each);
		for (i = 0; i < n; i++)
			json_object_array_add(arr, copy_of(json_object_array_get_idx(each, i)));
	} else
		json_object_array_add(arr, copy_of(v));
	return NF_OK;
}

/* Apply one operator ($set ...) with its {path: value} argument. */
static enum nf_err
apply_op(struct json_object *doc, const char *op, struct json_object *arg,
    struct nf_error *e)
{
	struct json_object	*parent;
	const char		*leaf = NULL;
	char			*buf = NULL;
	enum nf_err		 rc = NF_OK;
	int			 bad, unset = strcmp(op, "$unset") == 0;

	json_object_object_foreach(arg, path, v) {
		parent = walk(doc, path, !unset, &buf, &leaf, &bad);
		if (parent == NULL)
			rc = bad && !unset ? shape_err(path, e) : NF_OK;
		else if (unset)
			json_object_object_del(parent, leaf);
		else if (strcmp(op, "$set") == 0)
			json_object_object_add(parent, leaf, copy_of(v));
		else if (strcmp(op, "$inc") == 0)
			rc = inc_value(parent, leaf, v, path, e);
		else if (strcmp(op, "$push") == 0)
			rc = push_value(parent, leaf, v, path, e);
		else
			rc = nf_error_set(e, NF_EINVAL, "invalid_query", op,
			    "unknown update operator");
		free(buf);
		buf = NULL;
		if (rc != NF_OK)
			return rc;
	}
	return NF_OK;
}

/*
 * Apply update u to *doc (owned; may be replaced).  A replacement keeps
 * the old _id and tenant.
 */
static enum nf_err
apply_update(struct json_object **doc, struct json_object *u, struct nf_error *e)
{
	struct json_object	*repl, *v;

	if (!first_key_is_op(u)) {
		repl = copy_of(u);
		if (json_object_object_get_ex(*doc, "_id", &v))
			json_object_object_add(repl, "_id", json_object_get(v));
		if (json_object_object_get_ex(*doc, "tenant", &v))
			json_object_object_add(repl, "tenant", json_object_get(v));
		json_object_put(*doc);
		*doc = repl;
		return NF_OK;
	}
	json_object_object_foreach(u, op, arg)
		if (apply_op(*doc, op, arg, e) != NF_OK)
			return NF_EINVAL;
	return NF_OK;
}

/* Plain equality fields of a filter (and of its $and) into seed. */
static enum nf_err
seed_from_filter(struct json_object *seed, struct json_object *f, struct nf_error *e)
{
	struct json_object	*parent, *eq;
	const char		*leaf = NULL;
	char			*buf = NULL;
	size_t			 i;
	int			 bad;

	json_object_object_foreach(f, key, v) {
		if (strcmp(key, "$and") == 0) {
			for (i = 0; i < json_object_array_length(v); i++)
				if (seed_from_filter(seed, json_object_array_get_idx(v, i),
				    e) != NF_OK)
					return NF_EINVAL;
			continue;
		}
		if (key[0] == '$')
			continue;
		if (first_key_is_op(v)) {
			if (!json_object_object_get_ex(v, "$eq", &eq))
				continue;
			v = eq;
		}
		parent = walk(seed, key, 1, &buf, &leaf, &bad);
		if (parent != NULL)
			json_object_object_add(parent, leaf, copy_of(v));
		free(buf);
		if (parent == NULL)
			return shape_err(key, e);
	}
	return NF_OK;
}

/* The document an upsert inserts: filter equalities, then the update. */
static enum nf_err
upsert_doc(struct json_object *filter, struct json_object *u,
    struct json_object **out, struct nf_error *e)
{
	const char	*id, *tenant;
	char		 idbuf[25];
	enum nf_err	 rc;

	*out = json_object_new_object();
	if ((rc = seed_from_filter(*out, filter, e)) != NF_OK ||
	    (rc = apply_update(out, u, e)) != NF_OK) {
		json_object_put(*out);
		*out = NULL;
		return rc;
	}
	id = nf_json_field_str(*out, "_id");
	if (id == NULL || id[0] == '\0') {
		nf_id_new(idbuf);
		json_object_object_add(*out, "_id", json_object_new_string(idbuf));
	}
	/* The forced top-level tenant wins over anything the seed held. */
	if ((tenant = nf_json_field_str(filter, "tenant")) != NULL)
		json_object_object_add(*out, "tenant", json_object_new_string(tenant));
	return NF_OK;
}

/* ---- ops ------------------------------------------------------------ */

/* Options after '?' in a sqlite URI; "max_pages=N" is the only one. */
static enum nf_err
uri_opts(const char *opts, long long *max_pages, struct nf_error *e)
{
	const char	*num = opts + 10;
	char		*end = NULL;
	long long	 v = 0;

	*max_pages = 0;
	if (strncmp(opts, "max_pages=", 10) == 0 && *num >= '0' && *num <= '9') {
		errno = 0;
		v = strtoll(num, &end, 10);
	}
	if (end == NULL || *end != '\0' || errno != 0 || v < 1 || v > INT32_MAX)
		return nf_error_set(e, NF_EINVAL, "invalid_store_uri", "STORE_URI",
		    "the only sqlite store option is max_pages=N (1 to %d)", INT32_MAX);
	*max_pages = v;
	return NF_OK;
}

/*
 * PRAGMA max_page_count is per connection, so every worker sets it from
 * its URI.  SQLite never lowers it below the current size; say so.
 */
static int
set_max_pages(struct sq *q, long long max_pages)
{
	sqlite3_stmt	*st = NULL;
	char		*sql = nf_xasprintf("PRAGMA max_page_count=%lld", max_pages);
	int		 rc;

	rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_int64(st, 0) > max_pages)
			nf_log(NF_LOG_WARN, "sqlite: the database already holds %lld "
			    "pages, more than max_pages=%lld", sqlite3_column_int64(st, 0),
			    max_pages);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	free(sql);
	return rc;
}

static enum nf_err
sq_open(const char *uri, void **impl, struct nf_error *e)
{
	struct sq	*q = NULL;
	const char	*rest = uri + 9, *qm;   /* after "sqlite://" */
	char		*path = NULL;
	long long	 max_pages = 0;
	enum nf_err	 err;
	int		 rc;

	*impl = NULL;
	qm = strchr(rest, '?');
	if (qm != NULL && (err = uri_opts(qm + 1, &max_pages, e)) != NF_OK)
		return err;
	path = qm != NULL ? nf_xstrndup(rest, (size_t)(qm - rest)) : nf_xstrdup(rest);
	if (strcmp(path, ":memory:") != 0 && path[0] != '/') {
		err = nf_error_set(e, NF_EINVAL, "invalid_store_uri", "STORE_URI",
		    "use sqlite:///absolute/path.db or sqlite://:memory:");
		goto out;
	}
	q = nf_xcalloc(1, sizeof(*q));
	q->ckpt_due = -1;
	q->wq = wlock_open(path);
	do
		nf_random_bytes(&q->jitter, sizeof(q->jitter));
	while (q->jitter == 0);
	rc = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_extended_result_codes(q->db, 1);
		sqlite3_busy_handler(q->db, sq_busy, q);
		/* temp_store: a savepoint's journal inside an atomic unit stays
		 * in memory instead of a file created and deleted each time. */
		rc = sqlite3_exec(q->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
		    "PRAGMA temp_store=MEMORY;", NULL, NULL, NULL);
		sqlite3_wal_hook(q->db, sq_wal_hook, q);
	}
	if (rc == SQLITE_OK && max_pages > 0)
		rc = set_max_pages(q, max_pages);
	if (rc != SQLITE_OK) {
		sq_err(q, rc, "open", NULL);
		err = nf_error_set(e, NF_EUNAVAIL, "store_unavailable", NULL,
		    "the store cannot be opened");
		goto out;
	}
	*impl = q;
	q = NULL;
	err = NF_OK;
out:
	if (q != NULL) {
		sqlite3_close(q->db);
		wlock_close(q->wq);
		free(q);
	}
	free(path);
	return err;
}

static void
sq_free(void *impl)
{
	struct sq	*q = impl;
	size_t		 i;

	if (q == NULL)
		return;
	for (i = 0; i < SQ_CACHE; i++) {
		sqlite3_finalize(q->cache[i].st);
		free(q->cache[i].sql);
	}
	colls_forget(q);
	sqlite3_close(q->db);
	wlock_close(q->wq);
	free(q);
}

static enum nf_err
sq_ping(void *impl, struct nf_error *e)
{
	return exec_sql(impl, "SELECT 1", e);
}

/*
 * Expression index on (tenant, json_extract(doc,'<path>')...).  Index
 * expressions cannot take parameters, so paths are pasted as JSON path
 * literals by sqb_path, the same text the filters use (see prefilter), and
 * the first key's path is remembered so lookups on it use the index.  Unlike
 * MongoDB, a UNIQUE SQLite index lets any number of documents lack the
 * field (json_extract gives NULL, and NULLs are distinct).
 */
static enum nf_err
sq_ensure_index(void *impl, const char *coll, const struct nf_index *ix,
    struct nf_error *e)
{
	struct sq	*q = impl;
	struct sqb	 b;
	enum nf_err	 rc;
	char		*p;
	size_t		 i;
	int		 src;

	if ((rc = coll_ensure(q, coll, e)) != NF_OK)
		return rc;
	sqb_init(&b);
	sqb_add(&b, ix->unique ? "CREATE UNIQUE INDEX" : "CREATE INDEX");
	sqb_add(&b, " IF NOT EXISTS \"i_");
	sqb_add(&b, coll);
	sqb_add(&b, "__");
	sqb_add(&b, ix->name);
	sqb_add(&b, "\" ON ");
	sqb_table(&b, coll);
	sqb_add(&b, "(tenant");
	for (i = 0; i < NF_INDEX_MAXKEYS && ix->keys[i] != NULL; i++) {
		sqb_add(&b, ", json_extract(doc,");
		sqb_path(&b, ix->keys[i]);
		sqb_add(&b, ix->dirs[i] < 0 ? ") DESC" : ")");
	}
	sqb_add(&b, ")");
	if (b.bad) {
		sqb_free(&b);
		return nf_error_set(e, NF_EINVAL, "invalid_query", "index",
		    "invalid index key");
	}
	src = sqlite3_exec(q->db, b.buf, NULL, NULL, NULL);
	sqb_free(&b);
	if (src != SQLITE_OK)
		return sq_err(q, src, "create index", e);
	p = json_path(ix->keys[0]);
	lead_add(coll_find(q, coll), p, strlen(p));
	free(p);
	return NF_OK;
}

static enum nf_err
sq_insert(void *impl, const char *coll, struct json_object *doc, struct nf_error *e)
{
	enum nf_err	 rc;

	if ((rc = coll_ensure(impl, coll, e)) != NF_OK || (rc = tx_begin(impl, e)) != NF_OK)
		return rc;
	return tx_end(impl, row_insert(impl, coll, doc, e), e);
}

static enum nf_err
sq_find(void *impl, const char *coll, struct json_object *filter,
    const struct nf_find_opts *o, struct json_object **out, struct nf_error *e)
{
	enum nf_err	 rc;

	*out = NULL;
	if ((rc = coll_ensure(impl, coll, e)) != NF_OK)
		return rc;
	return select_docs(impl, coll, filter, o != NULL ? o->sort : NULL,
	    o != NULL ? o->limit : 0, o != NULL ? o->skip : 0, out, e);
}

static enum nf_err
sq_count(void *impl, const char *coll, struct json_object *filter, int64_t *n,
    struct nf_error *e)
{
	struct sq	*q = impl;
	sqlite3_stmt	*st = NULL;
	struct sqb	 b;
	enum nf_err	 rc;
	int		 src;

	*n = 0;
	if ((rc = coll_ensure(q, coll, e)) != NF_OK)
		return rc;
	sqb_init(&b);
	sqb_add(&b, "SELECT count(*) FROM ");
	sqb_table(&b, coll);
	sqb_add(&b, " WHERE ");
	if ((rc = where_top(q, &b, coll, filter, e)) != NF_OK ||
	    (rc = stmt_build(q, &b, &st, e)) != NF_OK)
		goto out;
	if ((src = sqlite3_step(st)) == SQLITE_ROW)
		*n = sqlite3_column_int64(st, 0);
	else
		rc = sq_err(q, src, "count", e);
out:
	stmt_put(q, st);
	sqb_free(&b);
	return rc;
}

/* Inside a transaction: update the matches in docs, or upsert. */
static enum nf_err
update_locked(struct sq *q, const char *coll, struct json_object *filter,
    struct json_object *u, unsigned flags, struct json_object *docs,
    int64_t *matched, struct json_object **last, struct nf_error *e)
{
	struct json_object	*doc = NULL;
	size_t			 i, n = json_object_array_length(docs);
	enum nf_err		 rc = NF_OK;

	*matched = 0;
	for (i = 0; i < n && rc == NF_OK; i++) {
		doc = copy_of(json_object_array_get_idx(docs, i));
		if ((rc = apply_update(&doc, u, e)) == NF_OK &&
		    (rc = row_write(q, coll, doc, e)) == NF_OK)
			(*matched)++;
		if (last != NULL && rc == NF_OK) {
			json_object_put(*last);
			*last = doc;
		} else
			json_object_put(doc);
	}
	if (n == 0 && (flags & NF_STORE_UPSERT) && rc == NF_OK) {
		if ((rc = upsert_doc(filter, u, &doc, e)) == NF_OK &&
		    (rc = row_insert(q, coll, doc, e)) == NF_OK)
			*matched = 1;
		if (last != NULL && rc == NF_OK)
			*last = doc;
		else
			json_object_put(doc);
	}
	return rc;
}

static enum nf_err
sq_update(void *impl, const char *coll, struct json_object *filter,
    struct json_object *u, unsigned flags, int64_t *matched, struct nf_error *e)
{
	struct sq		*q = impl;
	struct json_object	*docs = NULL;
	enum nf_err		 rc;

	*matched = 0;
	if ((rc = coll_ensure(q, coll, e)) != NF_OK || (rc = tx_begin(q, e)) != NF_OK)
		return rc;
	if ((rc = select_docs(q, coll, filter, NULL,
	    (flags & NF_STORE_MULTI) ? 0 : 1, 0, &docs, e)) == NF_OK)
		rc = update_locked(q, coll, filter, u, flags, docs, matched, NULL, e);
	json_object_put(docs);
	if ((rc = tx_end(q, rc, e)) != NF_OK)
		*matched = 0;
	return rc;
}

static enum nf_err
fam_locked(struct sq *q, const char *coll, struct json_object *filter,
    struct json_object *sort, struct json_object *u, unsigned flags,
    struct json_object **out, struct nf_error *e)
{
	struct json_object	*docs = NULL, *before, *after = NULL;
	int64_t			 n;
	enum nf_err		 rc;

	if ((rc = select_docs(q, coll, filter, sort, 1, 0, &docs, e)) != NF_OK)
		return rc;
	before = json_object_array_get_idx(docs, 0);
	if (before == NULL && !(flags & NF_STORE_UPSERT)) {
		rc = nf_error_set(e, NF_ENOTFOUND, NULL, NULL, "no such document");
	} else if (flags & NF_STORE_REMOVE) {
		if ((rc = row_delete(q, coll, nf_json_field_str(before, "_id"), e)) == NF_OK)
			*out = json_object_get(before);
	} else if ((rc = update_locked(q, coll, filter, u, flags, docs, &n, &after,
	    e)) == NF_OK) {
		/* An upsert has no "before": *out stays NULL unless NF_STORE_NEW. */
		*out = (flags & NF_STORE_NEW) ? json_object_get(after) :
		    json_object_get(before);
	}
	json_object_put(after);
	json_object_put(docs);
	return rc;
}

static enum nf_err
sq_find_and_modify(void *impl, const char *coll, struct json_object *filter,
    struct json_object *sort, struct json_object *u, unsigned flags,
    struct json_object **out, struct nf_error *e)
{
	struct sq	*q = impl;
	enum nf_err	 rc;

	*out = NULL;
	if ((rc = coll_ensure(q, coll, e)) != NF_OK || (rc = tx_begin(q, e)) != NF_OK)
		return rc;
	rc = fam_locked(q, coll, filter, sort, u, flags, out, e);
	/* NF_ENOTFOUND changed nothing; commit it like a success. */
	if ((rc = tx_end(q, rc == NF_ENOTFOUND ? NF_OK : rc, e)) != NF_OK ||
	    (*out == NULL && !(flags & NF_STORE_UPSERT))) {
		json_object_put(*out);
		*out = NULL;
		if (rc == NF_OK)
			rc = nf_error_set(e, NF_ENOTFOUND, NULL, NULL, "no such document");
	}
	return rc;
}

static enum nf_err
sq_delete(void *impl, const char *coll, struct json_object *filter, unsigned flags,
    int64_t *deleted, struct nf_error *e)
{
	struct sq		*q = impl;
	struct json_object	*lim;
	struct sqb		 b;
	enum nf_err		 rc;

	*deleted = 0;
	if ((rc = coll_ensure(q, coll, e)) != NF_OK)
		return rc;
	sqb_init(&b);
	sqb_add(&b, "DELETE FROM ");
	sqb_table(&b, coll);
	sqb_add(&b, " WHERE rowid IN (SELECT rowid FROM ");
	sqb_table(&b, coll);
	sqb_add(&b, " WHERE ");
	if ((rc = where_top(q, &b, coll, filter, e)) != NF_OK)
		goto out;
	sqb_add(&b, " LIMIT ");
	sqb_val(&b, lim = json_object_new_int((flags & NF_STORE_MULTI) ? -1 : 1));
	json_object_put(lim);
	sqb_add(&b, ")");
	if ((rc = tx_begin(q, e)) != NF_OK)
		goto out;
	rc = tx_end(q, exec_sqb(q, &b, deleted, e), e);
	if (rc != NF_OK)
		*deleted = 0;
out:
	sqb_free(&b);
	return rc;
}

const struct nf_store_ops nf_store_sqlite_ops = {
	.name = "sqlite",
	.open = sq_open,
	.free = sq_free,
	.ping = sq_ping,
	.ensure_index = sq_ensure_index,
	.insert = sq_insert,
	.find = sq_find,
	.count = sq_count,
	.update = sq_update,
	.find_and_modify = sq_find_and_modify,
	.delete = sq_delete,
	.atomic = sq_atomic,
};

/* ---- diagnostics ---------------------------------------------------- */

/* Plan rows of the prepared EXPLAIN QUERY PLAN st, "detail" joined by '\n'. */
static enum nf_err
plan_text(struct sq *q, sqlite3_stmt *st, char **plan, struct nf_error *e)
{
	const char	*d;
	size_t		 len = 0, n;
	int		 src;

	*plan = nf_xstrdup("");
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		d = (const char *)sqlite3_column_text(st, 3);
		n = d != NULL ? strlen(d) : 0;
		*plan = nf_xrealloc(*plan, len + n + 2);
		memcpy(*plan + len, d != NULL ? d : "", n);
		len += n;
		(*plan)[len++] = '\n';
		(*plan)[len] = '\0';
	}
	if (src == SQLITE_DONE)
		return NF_OK;
	free(*plan);
	*plan = NULL;
	return sq_err(q, src, "explain", e);
}

enum nf_err
nf_store_sqlite_plan(struct nf_store *s, const char *tenant, const char *coll,
    struct json_object *filter, const struct nf_find_opts *o, char **plan,
    struct nf_error *e)
{
	struct json_object	*f = NULL;
	sqlite3_stmt		*st = NULL;
	struct sqb		 b;
	enum nf_err		 rc;

	*plan = NULL;
	sqb_init(&b);
	if (s == NULL || s->ops != &nf_store_sqlite_ops || tenant == NULL ||
	    coll == NULL || coll[0] == '\0' ||
	    coll[strspn(coll, "abcdefghijklmnopqrstuvwxyz0123456789_")] != '\0') {
		rc = nf_error_set(e, NF_EINVAL, NULL, NULL, "not a sqlite store");
		goto out;
	}
	/* The same scoping store.c applies before a find. */
	if (filter == NULL)
		f = json_object_new_object();
	else if (json_object_deep_copy(filter, &f, NULL) != 0)
		abort();    /* json-c fails here only when out of memory */
	json_object_object_add(f, "tenant", json_object_new_string(tenant));
	sqb_add(&b, "EXPLAIN QUERY PLAN ");
	if ((rc = coll_ensure(s->impl, coll, e)) != NF_OK ||
	    (rc = select_sql(s->impl, &b, coll, f, o != NULL ? o->sort : NULL,
	    o != NULL ? o->limit : 0, o != NULL ? o->skip : 0, e)) != NF_OK ||
	    (rc = stmt_build(s->impl, &b, &st, e)) != NF_OK)
		goto out;
	rc = plan_text(s->impl, st, plan, e);
out:
	if (st != NULL)
		stmt_put(s->impl, st);
	json_object_put(f);
	sqb_free(&b);
	return rc;
}
