/*
 * store.c - the backend-independent half of the document store (store.h):
 * picks a backend by URI scheme, validates every filter, update, sort and
 * document, forces the tenant into filters and documents, assigns _id, and
 * implements keyset (cursor) pagination on top of the backend's find.
 *
 * DESIGN: backends (store_sqlite.c, store_mongo.c) trust what they get from
 * here, so all checking of the query language lives in this one file.  The
 * tenant is ANDed at the top level of every filter by overwriting the
 * "tenant" key of a private copy, so neither a caller's "tenant" key nor a
 * "$or" can reach another tenant's documents.
 *
 * The MongoDB backend is a module (store_mongo.so, built from
 * store_mongo.c and bsonjson.c) loaded here on the first mongodb:// open:
 * libmongoc and the libraries it pulls in (ICU, libstdc++, SASL plugins,
 * snappy, ...) cost every process about 3 MB resident, and SQLite
 * deployments never need them.  See mongo_module() for where it is looked
 * for.  The module uses nf_log/nf_x* and friends from the executable, which
 * is linked with -rdynamic for that.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "log.h"
#include "nonflex.h"
#include "store.h"
#include "store_impl.h"
#include "valid.h"

#define NF_STORE_MAXDEPTH	20	/* nesting of filters and documents */
#define NF_STORE_MAXPATH	256	/* bytes in a dotted path */
#define NF_STORE_MAXCURSOR	4096	/* bytes in a page cursor */
#define NF_STORE_MAXPAGE	1000	/* page size limit */
#define NF_MONGO_MODULE		"store_mongo.so"

/* Set by Makefile.am; the fallbacks keep stray compiles working. */
#ifndef NF_PKGLIBDIR
#define NF_PKGLIBDIR		"/usr/local/lib/nonflex"
#endif
#ifndef NF_BUILDDIR
#define NF_BUILDDIR		"."
#endif

static enum nf_err	check_filter(struct json_object *, int, struct nf_error *);

static enum nf_err
einval(struct nf_error *e, const char *field, const char *msg)
{
	return nf_error_set(e, NF_EINVAL, "invalid_query", field, "%s", msg);
}

/* 1 when name is a collection name: [a-z][a-z0-9_]{0,63}. */
static int
coll_ok(const char *name)
{
	return name != NULL && name[0] >= 'a' && name[0] <= 'z' &&
	    nf_valid_charset(name, 64, "_");
}

/* 1 when s is a usable tenant id (non-empty, short, printable). */
static int
tenant_ok(const char *s)
{
	size_t	 i;

	if (s == NULL || s[0] == '\0')
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (i >= 128 || (unsigned char)s[i] < 0x21 || s[i] == 0x7f)
			return 0;
	return 1;
}

/*
 * 1 when p is a dotted path the backends can express: non-empty segments of
 * [A-Za-z0-9_-] only.  The SQLite backend writes paths into its SQL text as
 * JSON path literals (that is how its expression indexes get used), so this
 * class is what keeps every literal closed: no quote, backslash, '$',
 * bracket, space or control byte can reach it.  Stored documents may hold
 * other key names; they just cannot be queried, sorted or updated by path.
 */
static int
path_ok(const char *p)
{
	size_t	 i, seg = 0;

	if (p == NULL || p[0] == '\0')
		return 0;
	for (i = 0; p[i] != '\0'; i++) {
		unsigned char c = (unsigned char)p[i];

		if (i >= NF_STORE_MAXPATH)
			return 0;
		if (c == '.') {
			if (seg == 0)
				return 0;
			seg = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
		seg++;
	}
	return seg > 0;
}

/* 1 when p is "tenant" or "_id" or below them. */
static int
path_reserved(const char *p)
{
	size_t	 n;

	if (strncmp(p, "tenant", 6) == 0)
		n = 6;
	else if (strncmp(p, "_id", 3) == 0)
		n = 3;
	else
		return 0;
	return p[n] == '\0' || p[n] == '.';
}

/*
 * Walk v within NF_STORE_MAXDEPTH.  With keys set, v is a stored document
 * and its keys must not start with '$', contain '.' or be empty; without,
 * v is an operand of $eq/$ne/$in/$nin: data, so any keys.
 */
static enum nf_err
check_tree(struct json_object *v, int depth, int keys, struct nf_error *e)
{
	size_t	 i, n;

	if (depth > NF_STORE_MAXDEPTH)
		return einval(e, NULL, keys ? "document nested too deeply" :
		    "value nested too deeply");
	if (json_object_is_type(v, json_type_array)) {
		n = json_object_array_length(v);
		for (i = 0; i < n; i++)
			if (check_tree(json_object_array_get_idx(v, i), depth + 1, keys,
			    e) != NF_OK)
				return NF_EINVAL;
		return NF_OK;
	}
	if (!json_object_is_type(v, json_type_object))
		return NF_OK;
	json_object_object_foreach(v, key, val) {
		if (keys && (key[0] == '\0' || key[0] == '$' || strchr(key, '.') != NULL))
			return einval(e, key, "invalid field name in document");
		if (check_tree(val, depth + 1, keys, e) != NF_OK)
			return NF_EINVAL;
	}
	return NF_OK;
}

static enum nf_err
check_doc(struct json_object *v, int depth, struct nf_error *e)
{
	return check_tree(v, depth, 1, e);
}

static enum nf_err
check_depth(struct json_object *v, int depth, struct nf_error *e)
{
	return check_tree(v, depth, 0, e);
}

static int
is_scalar(struct json_object *v)
{
	return v == NULL || json_object_is_type(v, json_type_null) ||
	    json_object_is_type(v, json_type_boolean) ||
	    json_object_is_type(v, json_type_int) ||
	    json_object_is_type(v, json_type_double) ||
	    json_object_is_type(v, json_type_string);
}

static int
is_number(struct json_object *v)
{
	return json_object_is_type(v, json_type_int) ||
	    json_object_is_type(v, json_type_double);
}

/* An object whose first key starts with '$' is an operator object. */
static int
is_operator_object(struct json_object *v)
{
	if (!json_object_is_type(v, json_type_object))
		return 0;
	json_object_object_foreach(v, key, val) {
		(void)val;
		return key[0] == '$';
	}
	return 0;
}

/* {"$gt": 5, "$lt": 9} for one field. */
static enum nf_err
check_ops(const char *field, struct json_object *ops, struct nf_error *e)
{
	json_object_object_foreach(ops, op, arg) {
		if (strcmp(op, "$eq") == 0 || strcmp(op, "$ne") == 0) {
			if (check_depth(arg, 1, e) != NF_OK)
				return NF_EINVAL;
		} else if (strcmp(op, "$gt") == 0 || strcmp(op, "$gte") == 0 ||
		    strcmp(op, "$lt") == 0 || strcmp(op, "$lte") == 0) {
			if (!is_scalar(arg))
				return einval(e, field, "comparison needs a scalar value");
		} else if (strcmp(op, "$in") == 0 || strcmp(op, "$nin") == 0) {
			if (!json_object_is_type(arg, json_type_array))
				return einval(e, field, "$in and $nin need an array");
			if (check_depth(arg, 1, e) != NF_OK)
				return NF_EINVAL;
		} else if (strcmp(op, "$exists") == 0) {
			if (!json_object_is_type(arg, json_type_boolean) &&
			    !json_object_is_type(arg, json_type_int))
				return einval(e, field, "$exists needs a boolean");
		} else
			return einval(e, field, "unknown or misplaced query operator");
	}
	return NF_OK;
}

/* $and / $or: a non-empty array of filters. */
static enum nf_err
check_logical(struct json_object *arr, int depth, struct nf_error *e)
{
	size_t	 i, n;

	if (!json_object_is_type(arr, json_type_array) ||
	    (n = json_object_array_length(arr)) == 0)
		return einval(e, NULL, "$and and $or need a non-empty array of filters");
	for (i = 0; i < n; i++)
		if (check_filter(json_object_array_get_idx(arr, i), depth + 1, e) != NF_OK)
			return NF_EINVAL;
	return NF_OK;
}

static enum nf_err
check_filter(struct json_object *f, int depth, struct nf_error *e)
{
	if (depth > NF_STORE_MAXDEPTH)
		return einval(e, NULL, "filter nested too deeply");
	if (!json_object_is_type(f, json_type_object))
		return einval(e, NULL, "filter must be an object");
	json_object_object_foreach(f, key, val) {
		if (strcmp(key, "$and") == 0 || strcmp(key, "$or") == 0) {
			if (check_logical(val, depth, e) != NF_OK)
				return NF_EINVAL;
			continue;
		}
		if (!path_ok(key))
			return einval(e, key, "invalid field path or operator in filter");
		if (is_operator_object(val)) {
			if (check_ops(key, val, e) != NF_OK)
				return NF_EINVAL;
		} else if (check_doc(val, depth + 1, e) != NF_OK)
			return NF_EINVAL;
	}
	return NF_OK;
}

/* Sort: {"path": 1|-1, ...}. */
static enum nf_err
check_sort(struct json_object *s, struct nf_error *e)
{
	int64_t	 d;

	if (s == NULL)
		return NF_OK;
	if (!json_object_is_type(s, json_type_object))
		return einval(e, NULL, "sort must be an object");
	json_object_object_foreach(s, key, val) {
		if (!path_ok(key))
			return einval(e, key, "invalid sort path");
		d = json_object_get_int64(val);
		if (!json_object_is_type(val, json_type_int) || (d != 1 && d != -1))
			return einval(e, key, "sort direction must be 1 or -1");
	}
	return NF_OK;
}

/* One update operator's argument: {"path": value, ...}. */
static enum nf_err
check_update_op(const char *op, struct json_object *arg, struct nf_error *e)
{
	struct json_object	*each;

	if (!json_object_is_type(arg, json_type_object) ||
	    json_object_object_length(arg) == 0)
		return einval(e, op, "update operator needs a non-empty object");
	json_object_object_foreach(arg, path, val) {
		if (!path_ok(path))
			return einval(e, path, "invalid field path in update");
		if (path_reserved(path))
			return einval(e, path, "tenant and _id cannot be updated");
		if (strcmp(op, "$inc") == 0 && !is_number(val))
			return einval(e, path, "$inc needs a number");
		if (strcmp(op, "$push") == 0 && is_operator_object(val)) {
			if (json_object_object_length(val) != 1 ||
			    !json_object_object_get_ex(val, "$each", &each) ||
			    !json_object_is_type(each, json_type_array))
				return einval(e, path, "$push takes a value or {\"$each\": [...]}");
			val = each;
		}
		if (strcmp(op, "$unset") != 0 && check_doc(val, 1, e) != NF_OK)
			return NF_EINVAL;
	}
	return NF_OK;
}

/* Operators ($set ...) or a replacement document, never both. */
static enum nf_err
check_update(struct json_object *u, struct nf_error *e)
{
	int	 ops = 0, plain = 0;

	if (!json_object_is_type(u, json_type_object) ||
	    json_object_object_length(u) == 0)
		return einval(e, NULL, "update must be a non-empty object");
	json_object_object_foreach(u, key, val) {
		if (key[0] != '$') {
			plain = 1;
			continue;
		}
		ops = 1;
		if (strcmp(key, "$set") != 0 && strcmp(key, "$unset") != 0 &&
		    strcmp(key, "$inc") != 0 && strcmp(key, "$push") != 0)
			return einval(e, key, "unknown update operator");
		if (check_update_op(key, val, e) != NF_OK)
			return NF_EINVAL;
	}
	if (ops && plain)
		return einval(e, NULL, "update mixes operators and fields");
	return ops ? NF_OK : check_doc(u, 0, e);
}

static void
set_tenant(struct json_object *o, const char *tenant)
{
	json_object_object_add(o, "tenant", json_object_new_string(tenant));
}

/* New filter: a deep copy of f (may be NULL) with "tenant" forced. */
static enum nf_err
scoped_filter(const char *tenant, struct json_object *f,
    struct json_object **out, struct nf_error *e)
{
	*out = NULL;
	if (!tenant_ok(tenant))
		return einval(e, "tenant", "invalid tenant");
	if (f != NULL && check_filter(f, 0, e) != NF_OK)
		return NF_EINVAL;
	if (f == NULL)
		*out = json_object_new_object();
	else if (json_object_deep_copy(f, out, NULL) != 0)
		return nf_error_set(e, NF_ESYSTEM, NULL, NULL, "cannot copy filter");
	set_tenant(*out, tenant);
	return NF_OK;
}

/* Replacement documents keep tenant; the backend keeps the matched _id. */
static enum nf_err
scoped_update(const char *tenant, struct json_object *u,
    struct json_object **out, struct nf_error *e)
{
	*out = NULL;
	if (check_update(u, e) != NF_OK)
		return NF_EINVAL;
	if (json_object_deep_copy(u, out, NULL) != 0)
		return nf_error_set(e, NF_ESYSTEM, NULL, NULL, "cannot copy update");
	if (!is_operator_object(*out)) {
		json_object_object_del(*out, "_id");
		set_tenant(*out, tenant);
	}
	return NF_OK;
}

static enum nf_err
check_call(struct nf_store *s, const char *coll, struct nf_error *e)
{
	if (s == NULL || s->ops == NULL)
		return nf_error_set(e, NF_EUNAVAIL, "store_unavailable", NULL,
		    "the store is not open");
	if (!coll_ok(coll))
		return einval(e, "collection", "invalid collection name");
	return NF_OK;
}

/*
 * Where store_mongo.so is looked for.  NONFLEX_MODULE_DIR, when set, is the
 * only place (an explicit choice must not silently fall back to another
 * copy); otherwise the first of these holding the file: the configured
 * $(pkglibdir) (installed layout), the running executable's directory (the
 * programs of a build tree sit beside the module) and the build tree this
 * binary was compiled in (unit tests in tests/unit, VPATH builds,
 * distcheck).  Returns a malloc'd path; when nothing is found, the path
 * under $(pkglibdir), so the error names where it should be installed.
 */
static char *
module_path(void)
{
	char		 exe[PATH_MAX], *p, *slash;
	const char	*env = getenv("NONFLEX_MODULE_DIR");
	ssize_t		 n;

	if (env != NULL && env[0] != '\0')
		return nf_xasprintf("%s/%s", env, NF_MONGO_MODULE);
	p = nf_xasprintf("%s/%s", NF_PKGLIBDIR, NF_MONGO_MODULE);
	if (access(p, R_OK) == 0)
		return p;
	free(p);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		if ((slash = strrchr(exe, '/')) != NULL) {
			*slash = '\0';
			p = nf_xasprintf("%s/%s", exe, NF_MONGO_MODULE);
			if (access(p, R_OK) == 0)
				return p;
			free(p);
		}
	}
	p = nf_xasprintf("%s/%s", NF_BUILDDIR, NF_MONGO_MODULE);
	if (access(p, R_OK) == 0)
		return p;
	free(p);
	return nf_xasprintf("%s/%s", NF_PKGLIBDIR, NF_MONGO_MODULE);
}

/*
 * The MongoDB backend's ops, loading the module on first use (NULL and e
 * set when it cannot be loaded; the next call tries again).  The module is
 * never unloaded: libmongoc keeps process-wide state and threads.
 */
static const struct nf_store_ops *
mongo_module(struct nf_error *e)
{
	static const struct nf_store_ops	*ops;
	void					*h;
	char					*path;

	if (ops != NULL)
		return ops;
	path = module_path();
	if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		nf_error("cannot load the MongoDB store module %s: %s", path, dlerror());
		nf_error_set(e, NF_EUNAVAIL, "store_backend_missing", "STORE_URI",
		    "the MongoDB store module %s cannot be loaded", path);
	} else if ((ops = dlsym(h, "nf_store_mongo_ops")) == NULL) {
		nf_error("%s has no nf_store_mongo_ops: %s", path, dlerror());
		nf_error_set(e, NF_EUNAVAIL, "store_backend_missing", "STORE_URI",
		    "%s is not a Nonflex store module", path);
		dlclose(h);
	}
	free(path);
	return ops;
}

enum nf_err
nf_store_open(const char *uri, struct nf_store **out, struct nf_error *e)
{
	const struct nf_store_ops	*ops;
	void				*impl = NULL;
	enum nf_err			 rc;

	*out = NULL;
	if (uri == NULL)
		return einval(e, "STORE_URI", "missing store URI");
	if (strncmp(uri, "sqlite://", 9) == 0)
		ops = &nf_store_sqlite_ops;
	else if (strncmp(uri, "mongodb://", 10) == 0 ||
	    strncmp(uri, "mongodb+srv://", 14) == 0) {
		if ((ops = mongo_module(e)) == NULL)
			return NF_EUNAVAIL;
	} else
		return nf_error_set(e, NF_EINVAL, "invalid_store_uri", "STORE_URI",
		    "store URI must start with sqlite:// or mongodb://");
	if ((rc = ops->open(uri, &impl, e)) != NF_OK)
		return rc;
	*out = nf_xcalloc(1, sizeof(**out));
	(*out)->ops = ops;
	(*out)->impl = impl;
	return NF_OK;
}

void
nf_store_free(struct nf_store *s)
{
	if (s == NULL)
		return;
	if (s->ops != NULL)
		s->ops->free(s->impl);
	free(s);
}

const char *
nf_store_backend(const struct nf_store *s)
{
	return s != NULL && s->ops != NULL ? s->ops->name : "none";
}

enum nf_err
nf_store_ping(struct nf_store *s, struct nf_error *e)
{
	if (s == NULL || s->ops == NULL)
		return nf_error_set(e, NF_EUNAVAIL, "store_unavailable", NULL,
		    "the store is not open");
	return s->ops->ping(s->impl, e);
}

enum nf_err
nf_store_ensure_index(struct nf_store *s, const char *coll,
    const struct nf_index *ix, struct nf_error *e)
{
	size_t		 i;
	enum nf_err	 rc;

	if ((rc = check_call(s, coll, e)) != NF_OK)
		return rc;
	if (ix == NULL || !nf_valid_charset(ix->name, 64, "_") || ix->keys[0] == NULL)
		return einval(e, "index", "invalid index definition");
	for (i = 0; i < NF_INDEX_MAXKEYS && ix->keys[i] != NULL; i++)
		if (!path_ok(ix->keys[i]) || (ix->dirs[i] != 1 && ix->dirs[i] != -1))
			return einval(e, "index", "invalid index key");
	return s->ops->ensure_index(s->impl, coll, ix, e);
}

enum nf_err
nf_store_ensure_indexes(struct nf_store *s, const char *const *colls,
    const struct nf_index *ix, size_t n, struct nf_store **done, struct nf_error *e)
{
	size_t		 i;
	enum nf_err	 rc;

	if (s == *done)
		return NF_OK;
	for (i = 0; i < n; i++)
		if ((rc = nf_store_ensure_index(s, colls[i], &ix[i], e)) != NF_OK)
			return rc;
	*done = s;
	return NF_OK;
}

enum nf_err
nf_store_insert(struct nf_store *s, const char *tenant, const char *coll,
    struct json_object *doc, char id_out[25], struct nf_error *e)
{
	struct json_object	*copy = NULL, *id;
	char			 idbuf[25];
	enum nf_err		 rc;

	if (id_out != NULL)
		id_out[0] = '\0';
	if ((rc = check_call(s, coll, e)) != NF_OK)
		goto out;
	if (!tenant_ok(tenant)) {
		rc = einval(e, "tenant", "invalid tenant");
		goto out;
	}
	if (!json_object_is_type(doc, json_type_object)) {
		rc = einval(e, NULL, "document must be an object");
		goto out;
	}
	if ((rc = check_doc(doc, 0, e)) != NF_OK)
		goto out;
	if (json_object_deep_copy(doc, &copy, NULL) != 0) {
		rc = nf_error_set(e, NF_ESYSTEM, NULL, NULL, "cannot copy document");
		goto out;
	}
	set_tenant(copy, tenant);
	if (!json_object_object_get_ex(copy, "_id", &id) ||
	    !json_object_is_type(id, json_type_string) ||
	    json_object_get_string_len(id) == 0) {
		nf_id_new(idbuf);
		json_object_object_add(copy, "_id", json_object_new_string(idbuf));
	} else if (json_object_get_string_len(id) > 128) {
		rc = einval(e, "_id", "_id is too long");
		goto out;
	}
	if ((rc = s->ops->insert(s->impl, coll, copy, e)) != NF_OK)
		goto out;
	/* A caller-chosen _id longer than 24 bytes does not fit id_out. */
	json_object_object_get_ex(copy, "_id", &id);
	if (id_out != NULL && json_object_get_string_len(id) <= 24)
		memcpy(id_out, json_object_get_string(id),
		    (size_t)json_object_get_string_len(id) + 1);
out:
	json_object_put(copy);
	return rc;
}

static enum nf_err
check_opts(const struct nf_find_opts *o, struct nf_error *e)
{
	if (o == NULL)
		return NF_OK;
	if (o->limit < 0 || o->skip < 0)
		return einval(e, "limit", "limit and skip must not be negative");
	return check_sort(o->sort, e);
}

enum nf_err
nf_store_find(struct nf_store *s, const char *tenant, const char *coll,
    struct json_object *filter, const struct nf_find_opts *o,
    struct json_object **out, struct nf_error *e)
{
	struct json_object	*f = NULL;
	enum nf_err		 rc;

	*out = NULL;
	if ((rc = check_call(s, coll, e)) != NF_OK ||
	    (rc = check_opts(o, e)) != NF_OK ||
	    (rc = scoped_filter(tenant, filter, &f, e)) != NF_OK)
		goto out;
	rc = s->ops->find(s->impl, coll, f, o, out, e);
out:
	json_object_put(f);
	return rc;
}

enum nf_err
nf_store_find_one(struct nf_store *s, const char *tenant, const char *coll,
    struct json_object *filter, const struct nf_find_opts *o,
    struct json_object **out, struct nf_error *e)
{
	struct nf_find_opts	 one = { NULL, 1, 0 };
	struct json_object	*all = NULL;
	enum nf_err		 rc;

	*out = NULL;
	if (o != NULL) {
		one.sort = o->sort;
		one.skip = o->skip;
	}
	if ((rc = nf_store_find(s, tenant, coll, filter, &one, &all, e)) != NF_OK)
		goto out;
	if (json_object_array_length(all) == 0) {
		rc = nf_error_set(e, NF_ENOTFOUND, NULL, NULL, "no such document");
		goto out;
	}
	*out = json_object_get(json_object_array_get_idx(all, 0));
out:
	json_object_put(all);
	return rc;
}

enum nf_err
nf_store_count(struct nf_store *s, const char *tenant, const char *coll,
    struct json_object *filter, int64_t *n, struct nf_error *e)
{
	struct json_object	*f = NULL;
	enum nf_err		 rc;

	*n = 0;
	if ((rc = check_call(s, coll, e)) != NF_OK ||
	    (rc = scoped_filter(tenant, filter, &f, e)) != NF_OK)
		goto out;
	rc = s->ops->count(s->impl, coll, f, n, e);
out:
	json_object_put(f);
	return rc;
}

enum nf_err
nf_store_update(struct nf_store *s, const char *tenant, const char *coll,
    struct json_object *filter, struct json_object *update, unsigned flags,
    int64_t *matched, struct nf_error *e)
{
	struct json_object	*f = NULL, *u = NULL;
	int64_t			 m = 0;
	enum nf_err		 rc;

	if ((rc = check_call(s, coll, e)) != NF_OK ||
	    (rc = scoped_filter(tenant, filter, &f, e)) != NF_OK ||
	    (rc = scoped_update(tenant, update, &u, e)) != NF_OK)
		goto out;
	if ((flags & NF_STORE_MULTI) && !is_operator_object(u)) {
		rc = einval(e, NULL, "a replacement cannot update many documents");
		goto out;
	}
	rc = s->ops->update(s->impl, coll, f, u, flags & (NF_STORE_MULTI | NF_STORE_UPSERT),
	    &m, e);
out:
	if (matched != NULL)
		*matched = m;
	json_object_put(f);
	json_object_put(u);
	return rc;
}

enum nf_err
nf_store_find_and_modify(struct nf_store *s, const char *tenant, const char *coll,
    struct json_object *filter, struct json_object *sort, struct json_object *update,
    unsigned flags, struct json_object **out, struct nf_error *e)
{
	struct json_object	*f = NULL, *u = NULL;
	enum nf_err		 rc;

	*out = NULL;
	if ((rc = check_call(s, coll, e)) != NF_OK ||
	    (rc = check_sort(sort, e)) != NF_OK ||
	    (rc = scoped_filter(tenant, filter, &f, e)) != NF_OK)
		goto out;
	if (flags & NF_STORE_REMOVE) {
		if (update != NULL || (flags & (NF_STORE_UPSERT | NF_STORE_NEW))) {
			rc = einval(e, NULL, "remove takes no update, upsert or new");
			goto out;
		}
	} else if ((rc = scoped_update(tenant, update, &u, e)) != NF_OK)
		goto out;
	rc = s->ops->find_and_modify(s->impl, coll, f, sort, u,
	    flags & (NF_STORE_UPSERT | NF_STORE_NEW | NF_STORE_REMOVE), out, e);
out:
	json_object_put(f);
	json_object_put(u);
	return rc;
}

enum nf_err
nf_store_delete(struct nf_store *s, const char *tenant, const char *coll,
    struct json_object *filter, unsigned flags, int64_t *deleted, struct nf_error *e)
{
	struct json_object	*f = NULL;
	int64_t			 n = 0;
	enum nf_err		 rc;

	if ((rc = check_call(s, coll, e)) != NF_OK ||
	    (rc = scoped_filter(tenant, filter, &f, e)) != NF_OK)
		goto out;
	rc = s->ops->delete(s->impl, coll, f, flags & NF_STORE_MULTI, &n, e);
out:
	if (deleted != NULL)
		*deleted = n;
	json_object_put(f);
	return rc;
}

enum nf_err
nf_store_atomic(struct nf_store *s, nf_store_atomic_fn fn, void *ctx, struct nf_error *e)
{
	if (s == NULL || fn == NULL)
		return nf_error_set(e, NF_EINVAL, "invalid_call", NULL, "no store or no unit");
	return s->ops->atomic(s->impl, s, fn, ctx, e);
}

/* ---- cursor pagination ---------------------------------------------- */

static enum nf_err
bad_cursor(struct nf_error *e)
{
	return nf_error_set(e, NF_EINVAL, "invalid_cursor", "cursor",
	    "the page cursor is not valid");
}

/* base64url without padding of the JSON text [v, id] (borrowed). */
static char *
pair_encode(struct json_object *v, struct json_object *id)
{
	struct json_object	*arr = json_object_new_array();
	const char		*txt;
	char			*b64;
	size_t			 n, i;

	json_object_array_add(arr, json_object_get(v));
	json_object_array_add(arr, json_object_get(id));
	txt = json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN);
	n = strlen(txt);
	b64 = nf_xmalloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)txt, (int)n);
	for (i = 0; b64[i] != '\0'; i++) {
		if (b64[i] == '+')
			b64[i] = '-';
		else if (b64[i] == '/')
			b64[i] = '_';
		else if (b64[i] == '=') {
			b64[i] = '\0';
			break;
		}
	}
	json_object_put(arr);
	return b64;
}

/* Cursor after document last: its value at the dotted field and its _id. */
static char *
cursor_encode(struct json_object *last, const char *field)
{
	struct json_object	*v = last, *id = NULL;
	char			*p = nf_xstrdup(field), *seg, *save = NULL;

	json_object_object_get_ex(last, "_id", &id);
	/* A missing value encodes as null, which is how it sorts. */
	for (seg = strtok_r(p, ".", &save); seg != NULL && v != NULL;
	    seg = strtok_r(NULL, ".", &save))
		if (!json_object_is_type(v, json_type_object) ||
		    !json_object_object_get_ex(v, seg, &v))
			v = NULL;
	free(p);
	return pair_encode(v, id);
}

/* Strict inverse of cursor_encode: *val and *id are new references. */
static enum nf_err
cursor_decode(const char *c, struct json_object **val, struct json_object **id,
    struct nf_error *e)
{
	struct json_tokener	*tok = NULL;
	struct json_object	*arr = NULL;
	unsigned char		*raw = NULL;
	char			*b64 = NULL;
	size_t			 n, i, pad;
	int			 len;
	enum nf_err		 rc = NF_OK;

	*val = *id = NULL;
	n = strlen(c);
	if (n == 0 || n > NF_STORE_MAXCURSOR || n % 4 == 1)
		return bad_cursor(e);
	pad = (4 - n % 4) % 4;
	b64 = nf_xmalloc(n + pad + 1);
	for (i = 0; i < n; i++) {
		char ch = c[i];

		if (ch == '-')
			ch = '+';
		else if (ch == '_')
			ch = '/';
		else if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9'))) {
			rc = bad_cursor(e);
			goto out;
		}
		b64[i] = ch;
	}
	memset(b64 + n, '=', pad);
	b64[n + pad] = '\0';
	raw = nf_xmalloc(n + pad + 1);
	if ((len = EVP_DecodeBlock(raw, (unsigned char *)b64, (int)(n + pad))) < 0 ||
	    (size_t)len < pad) {
		rc = bad_cursor(e);
		goto out;
	}
	len -= (int)pad;
	tok = json_tokener_new_ex(8);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	arr = json_tokener_parse_ex(tok, (const char *)raw, len);
	if (arr == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != (size_t)len ||
	    !json_object_is_type(arr, json_type_array) ||
	    json_object_array_length(arr) != 2 ||
	    !is_scalar(json_object_array_get_idx(arr, 0)) ||
	    !json_object_is_type(json_object_array_get_idx(arr, 1), json_type_string) ||
	    json_object_get_string_len(json_object_array_get_idx(arr, 1)) == 0) {
		rc = bad_cursor(e);
		goto out;
	}
	*val = json_object_get(json_object_array_get_idx(arr, 0));
	*id = json_object_get(json_object_array_get_idx(arr, 1));
	/* Only the canonical encoding is accepted: re-encode and compare. */
	free(b64);
	b64 = pair_encode(*val, *id);
	if (strcmp(b64, c) != 0) {
		json_object_put(*val);
		json_object_put(*id);
		*val = *id = NULL;
		rc = bad_cursor(e);
	}
out:
	if (tok != NULL)
		json_tokener_free(tok);
	json_object_put(arr);
	free(raw);
	free(b64);
	return rc;
}

static struct json_object *
op1(const char *op, struct json_object *v)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, op, v);
	return o;
}

/*
 * The "after the cursor" condition.  Missing/null values sort first
 * ascending (as in MongoDB), so after a null in ascending order come the
 * other nulls with a greater _id and every non-null value; descending,
 * after a null only nulls with a smaller _id remain.  Comparisons are
 * type-bracketed, so the page field should hold one type (plus null).
 */
static struct json_object *
cursor_filter(const char *field, int dir, struct json_object *val,
    struct json_object *id)
{
	struct json_object	*or = json_object_new_array(), *a, *b;
	const char		*cmp = dir > 0 ? "$gt" : "$lt";
	int			 isnull = val == NULL || json_object_is_type(val, json_type_null);

	a = json_object_new_object();
	json_object_object_add(a, field, isnull ? NULL : json_object_get(val));
	json_object_object_add(a, "_id", op1(cmp, json_object_get(id)));
	json_object_array_add(or, a);
	if (isnull && dir < 0)
		return op1("$or", or);
	b = json_object_new_object();
	if (isnull)
		json_object_object_add(b, field, op1("$ne", NULL));
	else
		json_object_object_add(b, field, op1(cmp, json_object_get(val)));
	json_object_array_add(or, b);
	if (!isnull && dir < 0) {
		/* Descending, missing/null values come after every value. */
		b = json_object_new_object();
		json_object_object_add(b, field, NULL);
		json_object_array_add(or, b);
	}
	return op1("$or", or);
}

enum nf_err
nf_store_page(struct nf_store *s, const char *tenant, const char *coll,
    struct json_object *filter, const char *field, int dir, int64_t limit,
    const char *cursor, struct json_object **out, char **next, struct nf_error *e)
{
	struct json_object	*val = NULL, *id = NULL, *f = NULL, *and, *sort = NULL;
	struct nf_find_opts	 o;
	size_t			 n;
	enum nf_err		 rc;

	*out = NULL;
	*next = NULL;
	if (limit < 1 || limit > NF_STORE_MAXPAGE) {
		rc = nf_error_set(e, NF_EINVAL, "invalid_limit", "limit",
		    "limit must be between 1 and %d", NF_STORE_MAXPAGE);
		goto out;
	}
	if (!path_ok(field) || strcmp(field, "_id") == 0 || (dir != 1 && dir != -1)) {
		rc = einval(e, "sort", "invalid page order");
		goto out;
	}
	if (filter != NULL && !json_object_is_type(filter, json_type_object)) {
		rc = einval(e, NULL, "filter must be an object");
		goto out;
	}
	if (cursor != NULL && (rc = cursor_decode(cursor, &val, &id, e)) != NF_OK)
		goto out;
	f = json_object_new_object();
	if (cursor != NULL) {
		and = json_object_new_array();
		if (filter != NULL)
			json_object_array_add(and, json_object_get(filter));
		json_object_array_add(and, cursor_filter(field, dir, val, id));
		json_object_object_add(f, "$and", and);
	} else if (filter != NULL) {
		json_object_put(f);
		f = json_object_get(filter);
	}
	sort = json_object_new_object();
	json_object_object_add(sort, field, json_object_new_int(dir));
	json_object_object_add(sort, "_id", json_object_new_int(dir));
	o.sort = sort;
	o.limit = limit + 1;
	o.skip = 0;
	if ((rc = nf_store_find(s, tenant, coll, f, &o, out, e)) != NF_OK)
		goto out;
	if ((n = json_object_array_length(*out)) > (size_t)limit) {
		json_object_array_del_idx(*out, n - 1, 1);
		*next = cursor_encode(json_object_array_get_idx(*out, n - 2), field);
	}
out:
	json_object_put(val);
	json_object_put(id);
	json_object_put(f);
	json_object_put(sort);
	return rc;
}
