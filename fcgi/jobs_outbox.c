/*
 * jobs_outbox.c - the durable outbox of the job queue (see jobs.h,
 * "OUTBOX"): nf_jobs_submit falls back to the store's "outbox" collection
 * when Redis is down, and nonflex-jobs drains it once Redis is back.
 *
 * DESIGN: an outbox document is {_id: job id, tenant, type, job: the job's
 * JSON text, due, createdAt, lease, owner}.  The job is kept as text, not
 * as a sub-document, because a client's payload may hold keys the store
 * refuses as field names ("a.b", "$x") and because the runner must get back
 * exactly the bytes a direct enqueue would have written.  lease is 0 for a
 * free document, else the time (ms since epoch) a drainer's claim ends; the
 * claim is one find-and-modify, so two drainers never hold one document.
 * Pushing goes through nf_jobs_push_once, so a document pushed by a drainer
 * that died before deleting it is deleted by the next one without a second
 * copy of the job.  Nothing here logs a payload: only ids, types, counts.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "nonflex.h"
#include "jobs.h"
#include "json.h"
#include "log.h"
#include "store.h"

static const struct nf_index outbox_lease_ix = {
	"lease", { "lease", NULL }, { 1 }, 0
};

enum nf_err
nf_jobs_outbox_index(struct nf_store *st, struct nf_error *err)
{
	return nf_store_ensure_index(st, NF_JOBS_OUTBOX, &outbox_lease_ix, err);
}

enum nf_err
nf_jobs_outbox_count(struct nf_store *st, const char *tenant, int64_t *n,
    struct nf_error *err)
{
	struct json_object	*f = json_object_new_object();
	enum nf_err		 rc;

	rc = nf_store_count(st, tenant, NF_JOBS_OUTBOX, f, n, err);
	json_object_put(f);
	return rc;
}

/* Write a prepared job into tenant's outbox. */
static enum nf_err
outbox_put(struct nf_store *st, const char *tenant, const char *id, const char *type,
    const char *json, int64_t due, struct nf_error *err)
{
	struct json_object	*doc;
	enum nf_err		 rc;

	if ((rc = nf_jobs_outbox_index(st, err)) != NF_OK)
		return rc;
	doc = json_object_new_object();
	nf_json_add_str(doc, "_id", id);
	nf_json_add_str(doc, "type", type);
	nf_json_add_str(doc, "job", json);
	nf_json_add_int(doc, "due", due);
	nf_json_add_int(doc, "createdAt", nf_now_ms());
	nf_json_add_int(doc, "lease", 0);
	rc = nf_store_insert(st, tenant, NF_JOBS_OUTBOX, doc, NULL, err);
	json_object_put(doc);
	return rc;
}

/* nf_jobs_submit and nf_jobs_submit_id: want_id NULL makes a new id. */
static enum nf_err
submit(struct nf_store *st, struct nf_kv *kv, const char *tenant, const char *type,
    struct json_object *payload, int64_t delay_ms, const char *want_id, char id_out[25],
    int *deferred, struct nf_error *err)
{
	struct nf_error	 kerr, serr;
	char		 id[25], *json = NULL;
	int64_t		 due;
	enum nf_err	 rc;

	*deferred = 0;
	if (id_out != NULL)
		id_out[0] = '\0';
	if ((rc = nf_jobs_prepare_id(tenant, type, payload, delay_ms, 0, want_id, id, &json,
	    &due, err)) != NF_OK)
		return rc;
	nf_error_clear(&kerr);
	nf_error_clear(&serr);
	/* push_once: an id queued before (within 3 days) is not queued again. */
	rc = kv != NULL ? nf_jobs_push_once(kv, id, json, due, NULL, &kerr) : NF_EUNAVAIL;
	if (rc == NF_OK)
		goto out;
	/* Any Redis failure (down, loading, out of memory) defers the job. */
	rc = st != NULL ? outbox_put(st, tenant, id, type, json, due, &serr) : NF_EUNAVAIL;
	if (rc == NF_ECONFLICT && want_id != NULL) {
		/* This id already waits in the outbox: submitted before. */
		*deferred = 1;
		rc = NF_OK;
		goto out;
	}
	if (rc != NF_OK) {
		nf_error("job %s (%s) lost: redis %s and store %s", id, type,
		    kv != NULL ? kerr.code : "not configured",
		    st != NULL ? serr.code : "unavailable");
		rc = nf_error_set(err, NF_EUNAVAIL, "redis_unavailable", NULL,
		    "Redis is unavailable and the job could not be kept for later");
		goto out;
	}
	nf_warn("job %s (%s) deferred to the outbox: redis %s", id, type,
	    kv != NULL ? kerr.code : "not configured");
	*deferred = 1;
out:
	if (rc == NF_OK && id_out != NULL)
		memcpy(id_out, id, sizeof(id));
	free(json);
	return rc;
}

enum nf_err
nf_jobs_submit(struct nf_store *st, struct nf_kv *kv, const char *tenant,
    const char *type, struct json_object *payload, int64_t delay_ms,
    char id_out[25], int *deferred, struct nf_error *err)
{
	return submit(st, kv, tenant, type, payload, delay_ms, NULL, id_out, deferred, err);
}

enum nf_err
nf_jobs_submit_id(struct nf_store *st, struct nf_kv *kv, const char *tenant,
    const char *type, struct json_object *payload, int64_t delay_ms, const char *id,
    int *deferred, struct nf_error *err)
{
	if (id == NULL)
		return nf_error_set(err, NF_EINVAL, "invalid_job", "id", "Invalid job id");
	return submit(st, kv, tenant, type, payload, delay_ms, id, NULL, deferred, err);
}

/* {"_id": id of doc, "owner": owner}, a new object; NULL when doc has no id. */
static struct json_object *
owned_filter(struct json_object *doc, const char *owner)
{
	struct json_object	*id, *f;

	if (!json_object_object_get_ex(doc, "_id", &id) ||
	    !json_object_is_type(id, json_type_string))
		return NULL;
	f = nf_json_pair("_id", json_object_get_string(id));
	nf_json_add_str(f, "owner", owner);
	return f;
}

/* {"$set": {"lease": lease, "owner": owner}}, a new object. */
static struct json_object *
lease_update(int64_t lease, const char *owner)
{
	struct json_object	*u = json_object_new_object();
	struct json_object	*set = json_object_new_object();

	nf_json_add_int(set, "lease", lease);
	nf_json_add_str(set, "owner", owner);
	nf_json_add(u, "$set", set);
	return u;
}

enum nf_err
nf_jobs_outbox_claim(struct nf_store *st, const char *tenant, const char *owner,
    int64_t lease_ms, struct json_object **doc, struct nf_error *err)
{
	struct json_object	*f, *lt, *sort, *u;
	int64_t			 now = nf_now_ms();
	enum nf_err		 rc;

	*doc = NULL;
	f = json_object_new_object();
	lt = json_object_new_object();
	nf_json_add_int(lt, "$lt", now);
	nf_json_add(f, "lease", lt);
	sort = json_object_new_object();
	nf_json_add_int(sort, "_id", 1);        /* ids start with their time */
	u = lease_update(now + lease_ms, owner);
	rc = nf_store_find_and_modify(st, tenant, NF_JOBS_OUTBOX, f, sort, u,
	    NF_STORE_NEW, doc, err);
	json_object_put(f);
	json_object_put(sort);
	json_object_put(u);
	return rc;
}

enum nf_err
nf_jobs_outbox_push(struct nf_kv *kv, struct json_object *doc, int *pushed,
    struct nf_error *err)
{
	struct json_object	*id, *job, *due;

	if (pushed != NULL)
		*pushed = 0;
	if (!json_object_object_get_ex(doc, "_id", &id) ||
	    !json_object_is_type(id, json_type_string) ||
	    !json_object_object_get_ex(doc, "job", &job) ||
	    !json_object_is_type(job, json_type_string) ||
	    !json_object_object_get_ex(doc, "due", &due) ||
	    !json_object_is_type(due, json_type_int))
		return nf_error_set(err, NF_EINVAL, "invalid_outbox_document", NULL,
		    "Malformed outbox document");
	return nf_jobs_push_once(kv, json_object_get_string(id),
	    json_object_get_string(job), json_object_get_int64(due), pushed, err);
}

enum nf_err
nf_jobs_outbox_done(struct nf_store *st, const char *tenant, const char *owner,
    struct json_object *doc, int *deleted, struct nf_error *err)
{
	struct json_object	*f = owned_filter(doc, owner);
	int64_t			 n = 0;
	enum nf_err		 rc;

	if (deleted != NULL)
		*deleted = 0;
	if (f == NULL)
		return nf_error_set(err, NF_EINVAL, "invalid_outbox_document", NULL,
		    "Malformed outbox document");
	rc = nf_store_delete(st, tenant, NF_JOBS_OUTBOX, f, 0, &n, err);
	if (rc == NF_OK && deleted != NULL)
		*deleted = n > 0;
	json_object_put(f);
	return rc;
}

enum nf_err
nf_jobs_outbox_release(struct nf_store *st, const char *tenant, const char *owner,
    struct json_object *doc, struct nf_error *err)
{
	struct json_object	*f = owned_filter(doc, owner), *u;
	enum nf_err		 rc;

	if (f == NULL)
		return nf_error_set(err, NF_EINVAL, "invalid_outbox_document", NULL,
		    "Malformed outbox document");
	u = lease_update(0, "");
	rc = nf_store_update(st, tenant, NF_JOBS_OUTBOX, f, u, 0, NULL, err);
	json_object_put(f);
	json_object_put(u);
	return rc;
}

/*
 * A document that can never be pushed: log its id and drop it.  Its
 * _id may be missing altogether, so it is deleted by its lease owner and
 * lease value, which only this claim holds.
 */
static void
drop_malformed(struct nf_store *st, const char *tenant, const char *owner,
    struct json_object *doc)
{
	struct json_object	*f = json_object_new_object(), *lease = NULL;
	int64_t			 n;

	nf_error("outbox: tenant %s: malformed document %.24s dropped", tenant,
	    json_object_get_string(json_object_object_get(doc, "_id")));
	json_object_object_get_ex(doc, "lease", &lease);
	nf_json_add_str(f, "owner", owner);
	nf_json_add(f, "lease", json_object_get(lease));   /* f shares doc's value */
	nf_store_delete(st, tenant, NF_JOBS_OUTBOX, f, 0, &n, NULL);
	json_object_put(f);
}

/* Push and delete one claimed document (given back when the push fails);
 * *requeued counts the jobs queued now. */
static enum nf_err
drain_one(struct nf_store *st, struct nf_kv *kv, const char *tenant, const char *owner,
    struct json_object *doc, int *requeued, struct nf_error *err)
{
	enum nf_err	 rc;
	int		 pushed = 0;

	rc = nf_jobs_outbox_push(kv, doc, &pushed, err);
	if (rc == NF_EINVAL) {
		drop_malformed(st, tenant, owner, doc);
		return NF_OK;
	}
	if (rc != NF_OK) {
		/* free it now rather than when the lease ends */
		nf_jobs_outbox_release(st, tenant, owner, doc, NULL);
		return rc;
	}
	if (!pushed)
		nf_info("outbox: job %.24s was queued already; not queued again",
		    json_object_get_string(json_object_object_get(doc, "_id")));
	*requeued += pushed;
	/* a failed delete leaves the document to a later claim: the seen key
	 * makes that claim's push a no-op */
	return nf_jobs_outbox_done(st, tenant, owner, doc, NULL, err);
}

enum nf_err
nf_jobs_outbox_drain(struct nf_store *st, struct nf_kv *kv, const char *tenant,
    const char *owner, int64_t lease_ms, int max, int *moved, struct nf_error *err)
{
	struct json_object	*doc = NULL;
	enum nf_err		 rc = NF_OK;
	int			 n = 0, queued = 0;

	*moved = 0;
	if (max < 1 || max > 10000 || lease_ms < 1)
		return nf_error_set(err, NF_EINVAL, "invalid_argument", NULL,
		    "Invalid outbox drain arguments");
	while (n < max) {
		rc = nf_jobs_outbox_claim(st, tenant, owner, lease_ms, &doc, err);
		if (rc == NF_ENOTFOUND) {
			rc = NF_OK;
			break;
		}
		if (rc != NF_OK)
			break;
		rc = drain_one(st, kv, tenant, owner, doc, &queued, err);
		json_object_put(doc);
		doc = NULL;
		if (rc != NF_OK)
			break;
		n++;
	}
	if (n > 0)
		nf_info("outbox: tenant %s: %d job(s) handled, %d queued now", tenant, n,
		    queued);
	*moved = n;
	return rc;
}
