/*
 * h_dev.c - development and integration-test routes, present only when
 * NONFLEX_DEV_ROUTES=1 (the route table marks them NF_ROUTE_DEV).
 *
 * They expose the pipeline's results (parsed JSON and form bodies, the
 * resolved tenant) and the paths to Redis and nchan, so the integration
 * tests can check them over HTTP.  None of them reveals a secret.  The
 * failure routes (hang, crash, counter) let tests/integ/failures.test.mjs
 * provoke RELIABILITY battery 57-59 through the real stack: a worker stuck
 * past its deadline, a worker crashing mid-request, and many workers
 * racing read-then-write on one document.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "app.h"
#include "events.h"
#include "handlers.h"
#include "jobs.h"
#include "json.h"
#include "kv.h"
#include "nonflex.h"
#include "req.h"
#include "store.h"
#include "tenant.h"
#include "valid.h"

/* POST /api/dev/echo (JSON): 200 {"tenant", "body": <parsed body>}. */
enum nf_err
h_dev_echo(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*root = json_object_new_object();

	(void)e;
	nf_json_add_str(root, "tenant", r->tenant->id);
	/* Second reference: r owns the body and root now shares it. */
	nf_json_add(root, "body", json_object_get(r->json));
	nf_resp_json(r, 200, root);
	return NF_OK;
}

/* POST /api/dev/echo-form (form): 200 {"tenant", "fields": [[name, value], ...]}
 * in arrival order, duplicates kept. */
enum nf_err
h_dev_echo_form(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*root = json_object_new_object();
	struct json_object	*arr = json_object_new_array(), *pair;
	size_t			 i;

	(void)e;
	for (i = 0; i < r->form.n; i++) {
		pair = json_object_new_array();
		json_object_array_add(pair, json_object_new_string(r->form.v[i].name));
		json_object_array_add(pair, json_object_new_string(r->form.v[i].value));
		if (json_object_array_add(arr, pair) != 0)
			json_object_put(pair);
	}
	nf_json_add_str(root, "tenant", r->tenant->id);
	nf_json_add(root, "fields", arr);
	nf_resp_json(r, 200, root);
	return NF_OK;
}

/*
 * Hand the event to nonflex-jobs as an "event.publish" job; while Redis is
 * down the job waits in the store's outbox (nf_jobs_submit).  Adds
 * {"queued": true, "deferred", "id"} to root.
 */
static enum nf_err
events_via_job(struct nf_req *r, const char *topic, const char *type,
    struct json_object *data, struct json_object *root, struct nf_error *e)
{
	struct json_object	*payload;
	struct nf_store		*st = NULL;
	struct nf_error		 se;
	char			 id[25];
	enum nf_err		 rc;
	int			 deferred = 0;

	nf_error_clear(&se);
	if (nf_app_store(r->app, &st, &se) != NF_OK)
		st = NULL;              /* Redis alone may still take it */
	payload = json_object_new_object();
	nf_json_add_str(payload, "topic", topic);
	nf_json_add_str(payload, "type", type);
	/* Second reference: the body keeps data, payload shares it. */
	nf_json_add(payload, "data", json_object_get(data));
	rc = nf_jobs_submit(st, nf_app_kv(r->app), r->tenant->id, "event.publish",
	    payload, 0, id, &deferred, e);
	json_object_put(payload);
	if (rc != NF_OK)
		return rc;
	nf_json_add_bool(root, "queued", 1);
	nf_json_add_bool(root, "deferred", deferred);
	nf_json_add_str(root, "id", id);
	return NF_OK;
}

/*
 * POST /api/dev/events (JSON {topic, type, data?, via?: "direct"|"job"}).
 * direct: publish from this worker: 202 {"published": topic}, 503
 * events_unavailable.  job: an "event.publish" job for nonflex-jobs:
 * 202 {"queued": true, "deferred": false, "id"} when it is in Redis, with
 * "deferred": true when Redis is down and the job waits in the store's
 * outbox until nonflex-jobs drains it; 503 redis_unavailable only when
 * neither Redis nor the store can take it.  400 naming the field.
 */
enum nf_err
h_dev_events(struct nf_req *r, struct nf_error *e)
{
	static const char *const allowed[] = { "topic", "type", "data", "via", NULL };
	static const char *const vias[] = { "direct", "job", NULL };
	struct json_object	*data = NULL, *root;
	const char		*topic = NULL, *type = NULL;
	enum nf_err		 rc;
	int			 via = 0;

	if ((rc = nf_json_reject_unknown(r->json, allowed, e)) != NF_OK ||
	    (rc = nf_json_get_string(r->json, "topic", 1, 64, 1, &topic, e)) != NF_OK ||
	    (rc = nf_json_get_string(r->json, "type", 1, 64, 1, &type, e)) != NF_OK ||
	    (rc = nf_json_get_value(r->json, "data", -1, 0, &data, e)) != NF_OK ||
	    (rc = nf_json_get_enum(r->json, "via", vias, 0, &via, e)) != NF_OK)
		return rc;
	if (!nf_events_valid_topic(topic))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "topic",
		    "topic must match [a-z0-9_-]{1,64}");
	root = json_object_new_object();
	if (via == 0) {
		if ((rc = nf_events_publish(r->tenant->id, topic, type, data, e)) != NF_OK)
			goto out;
		nf_json_add_str(root, "published", topic);
	} else if ((rc = events_via_job(r, topic, type, data, root, e)) != NF_OK)
		goto out;
	nf_resp_json(r, 202, root);
	root = NULL;
out:
	json_object_put(root);
	return rc;
}

/* Optional integer query parameter name in [min, max]; *out keeps its
 * default when absent. */
static enum nf_err
query_int(struct nf_req *r, const char *name, int64_t min, int64_t max, int64_t *out,
    struct nf_error *e)
{
	const char	*v = nf_pairs_get(&r->query, name);

	if (v != NULL && !nf_valid_int(v, min, max, out))
		return nf_error_set(e, NF_EINVAL, "invalid_query", name,
		    "%s must be an integer in %lld..%lld", name, (long long)min,
		    (long long)max);
	return NF_OK;
}

/*
 * GET /api/dev/kv[?bucket=slug&limit=N&window_ms=M]: one rate-limit hit in
 * Redis (bucket "dev", limit 1000000 per 60 s by default), proving the
 * worker's Redis path works.  200 {"allowed", "retry_after_ms"};
 * 429 rate_limited with Retry-After the window's remaining seconds;
 * 400 naming a bad query parameter; 503 redis_unavailable.
 */
enum nf_err
h_dev_kv(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*root;
	const char		*bucket = nf_pairs_get(&r->query, "bucket");
	int64_t			 retry = 0, limit = 1000000, window = 60000;
	enum nf_err		 rc;
	int			 allowed = 0;

	if (bucket == NULL)
		bucket = "dev";
	else if (!nf_valid_slug(bucket))
		return nf_error_set(e, NF_EINVAL, "invalid_query", "bucket",
		    "bucket must match [a-z0-9-]{1,63}");
	if ((rc = query_int(r, "limit", 1, 1000000, &limit, e)) != NF_OK ||
	    (rc = query_int(r, "window_ms", 100, 3600000, &window, e)) != NF_OK)
		return rc;
	rc = nf_kv_ratelimit_hit(nf_app_kv(r->app), r->tenant->id, bucket, limit, window,
	    &allowed, &retry, e);
	if (rc == NF_EUNAVAIL)
		return nf_error_set(e, NF_EUNAVAIL, "redis_unavailable", NULL,
		    "Redis is unavailable");
	if (rc != NF_OK)
		return rc;
	if (!allowed) {
		nf_resp_retry_after(r, retry);
		return nf_error_set(e, NF_ERATE, "rate_limited", NULL,
		    "too many requests; see Retry-After");
	}
	root = json_object_new_object();
	nf_json_add_bool(root, "allowed", allowed);
	nf_json_add_int(root, "retry_after_ms", retry);
	nf_resp_json(r, 200, root);
	return NF_OK;
}

/* ---- failure injection (RELIABILITY battery 57-59) ---------------------- */

/* Sleep ms, resuming after signals that do not end the process. */
static void
sleep_ms(int64_t ms)
{
	struct timespec	 ts, left;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &left) != 0 && errno == EINTR)
		ts = left;
}

/* Burn CPU for ms, the way a handler caught in a loop would. */
static void
spin_ms(int64_t ms)
{
	int64_t			 end = nf_mono_ms() + ms;
	volatile uint64_t	 n = 0;

	while (nf_mono_ms() < end)
		n++;
}

/*
 * POST /api/dev/hang (JSON {ms: 0..600000, spin?: bool}): stay in the
 * handler ms milliseconds, asleep (like blocked I/O) or, with spin, busy
 * (like an endless loop).  200 {"ms", "spin"} when it returns; past
 * NONFLEX_REQUEST_TIMEOUT_MS the watchdog ends the worker instead and
 * nginx answers 502.  400 naming the field.
 */
enum nf_err
h_dev_hang(struct nf_req *r, struct nf_error *e)
{
	static const char *const allowed[] = { "ms", "spin", NULL };
	struct json_object	*root;
	int64_t			 ms = 0;
	enum nf_err		 rc;
	int			 spin = 0;

	if ((rc = nf_json_reject_unknown(r->json, allowed, e)) != NF_OK ||
	    (rc = nf_json_get_int(r->json, "ms", 0, 600000, 1, &ms, e)) != NF_OK ||
	    (rc = nf_json_get_bool(r->json, "spin", 0, &spin, e)) != NF_OK)
		return rc;
	if (spin)
		spin_ms(ms);
	else
		sleep_ms(ms);
	root = json_object_new_object();
	nf_json_add_int(root, "ms", ms);
	nf_json_add_bool(root, "spin", spin);
	nf_resp_json(r, 200, root);
	return NF_OK;
}

/* A NULL the compiler cannot see through, so the write below really faults. */
static int *volatile nowhere;

/* A real invalid write; UBSan must not turn it into a clean exit in the
 * sanitizer build, which would test its handler instead of ours. */
__attribute__((no_sanitize("undefined"))) static void
write_nowhere(void)
{
	*nowhere = 1;
}

/*
 * POST /api/dev/crash (JSON {how: "segv"|"abort"}): crash the worker in
 * the middle of the request, by an invalid memory write or abort().  Never
 * answers: nginx answers 502, the crash handler logs the request id and
 * multiwatch starts a new worker.  400 naming the field.
 */
enum nf_err
h_dev_crash(struct nf_req *r, struct nf_error *e)
{
	static const char *const allowed[] = { "how", NULL };
	static const char *const hows[] = { "segv", "abort", NULL };
	enum nf_err	 rc;
	int		 how = -1;

	if ((rc = nf_json_reject_unknown(r->json, allowed, e)) != NF_OK ||
	    (rc = nf_json_get_enum(r->json, "how", hows, 1, &how, e)) != NF_OK)
		return rc;
	if (how == 0)
		write_nowhere();
	else
		abort();
	/* Not reached: both end the process. */
	return nf_error_set(e, NF_ESYSTEM, NULL, NULL, "the crash did not happen");
}

/*
 * Where both counter routes start: check the name, get the store, and
 * build the counter document's filter {"name": name} in *f (a new object
 * the caller puts; left untouched on error).
 */
static enum nf_err
counter_open(struct nf_req *r, const char *name, struct nf_store **st,
    struct json_object **f, struct nf_error *e)
{
	enum nf_err	 rc;

	if (!nf_valid_slug(name))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "name",
		    "name must match [a-z0-9-]{1,63}");
	if ((rc = nf_app_store(r->app, st, e)) != NF_OK)
		return rc;
	*f = json_object_new_object();
	nf_json_add_str(*f, "name", name);
	return NF_OK;
}

static enum nf_err
counter_reply(struct nf_req *r, int status, struct json_object *doc, struct nf_error *e)
{
	struct json_object	*root, *n = NULL;

	if (!json_object_object_get_ex(doc, "n", &n) || !json_object_is_type(n, json_type_int))
		return nf_error_set(e, NF_ESTORE, "store_error", NULL,
		    "the counter document has no integer n");
	root = json_object_new_object();
	nf_json_add_str(root, "name", json_object_get_string(
	    json_object_object_get(doc, "name")));
	nf_json_add_int(root, "n", json_object_get_int64(n));
	nf_resp_json(r, status, root);
	return NF_OK;
}

/*
 * POST /api/dev/counter (JSON {name: slug}): add 1 to the counter
 * document of that name with one atomic find-and-modify ($inc, upsert),
 * the read-then-write that many workers race on.  200 {"name", "n"} with
 * the new value; 400 naming the field; 503 store_unavailable (with
 * Retry-After) when the store is busy past its timeout or down.
 */
enum nf_err
h_dev_counter_inc(struct nf_req *r, struct nf_error *e)
{
	static const char *const allowed[] = { "name", NULL };
	struct json_object	*f = NULL, *u = NULL, *inc, *doc = NULL;
	struct nf_store		*st;
	const char		*name = NULL;
	enum nf_err		 rc;

	if ((rc = nf_json_reject_unknown(r->json, allowed, e)) != NF_OK ||
	    (rc = nf_json_get_string(r->json, "name", 1, 63, 1, &name, e)) != NF_OK)
		return rc;
	if ((rc = counter_open(r, name, &st, &f, e)) != NF_OK)
		return rc;
	u = json_object_new_object();
	inc = json_object_new_object();
	nf_json_add_int(inc, "n", 1);
	nf_json_add(u, "$inc", inc);
	if ((rc = nf_store_find_and_modify(st, r->tenant->id, "dev_counters", f, NULL, u,
	    NF_STORE_UPSERT | NF_STORE_NEW, &doc, e)) != NF_OK)
		goto out;
	rc = counter_reply(r, 200, doc, e);
out:
	json_object_put(f);
	json_object_put(u);
	json_object_put(doc);
	return rc;
}

/*
 * GET /api/dev/counter/:name: 200 {"name", "n"}; 404 not_found when no
 * such counter; 400 for a bad name; 503 store_unavailable.
 */
enum nf_err
h_dev_counter_get(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*f = NULL, *doc = NULL;
	struct nf_store		*st;
	const char		*name = nf_req_path_param(r, "name");
	enum nf_err		 rc;

	if ((rc = counter_open(r, name, &st, &f, e)) != NF_OK)
		return rc;
	rc = nf_store_find_one(st, r->tenant->id, "dev_counters", f, NULL, &doc, e);
	if (rc == NF_ENOTFOUND)
		rc = nf_error_set(e, NF_ENOTFOUND, "not_found", NULL, "no such counter");
	if (rc == NF_OK)
		rc = counter_reply(r, 200, doc, e);
	json_object_put(f);
	json_object_put(doc);
	return rc;
}
