/*
 * h_dev.c - development and integration-test routes, present only when
 * NONFLEX_DEV_ROUTES=1 (the route table marks them NF_ROUTE_DEV).
 *
 * They expose the pipeline's results (parsed JSON and form bodies, the
 * resolved tenant) and the paths to Redis and nchan, so the integration
 * tests can check them over HTTP.  None of them reveals a secret.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdlib.h>

#include <json-c/json.h>

#include "app.h"
#include "events.h"
#include "handlers.h"
#include "jobs.h"
#include "json.h"
#include "kv.h"
#include "nonflex.h"
#include "req.h"
#include "tenant.h"

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
 * POST /api/dev/events (JSON {topic, type, data?, via?: "direct"|"job"}).
 * direct: publish from this worker; job: enqueue "event.publish" for
 * nonflex-jobs.  202 {"published"|"enqueued": ...}; 400 naming the field;
 * 503 events_unavailable / redis_unavailable.
 */
enum nf_err
h_dev_events(struct nf_req *r, struct nf_error *e)
{
	static const char *const allowed[] = { "topic", "type", "data", "via", NULL };
	static const char *const vias[] = { "direct", "job", NULL };
	struct json_object	*data = NULL, *payload, *root;
	const char		*topic = NULL, *type = NULL;
	char			 id[25];
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
	} else {
		if (nf_app_kv(r->app) == NULL) {
			rc = nf_error_set(e, NF_EUNAVAIL, "redis_unavailable", NULL,
			    "Redis is unavailable");
			goto out;
		}
		payload = json_object_new_object();
		nf_json_add_str(payload, "topic", topic);
		nf_json_add_str(payload, "type", type);
		/* Second reference: the body keeps data, payload shares it. */
		nf_json_add(payload, "data", json_object_get(data));
		rc = nf_jobs_enqueue(nf_app_kv(r->app), r->tenant->id, "event.publish",
		    payload, 0, id, e);
		json_object_put(payload);
		if (rc != NF_OK)
			goto out;
		nf_json_add_str(root, "enqueued", id);
	}
	nf_resp_json(r, 202, root);
	root = NULL;
out:
	json_object_put(root);
	return rc;
}

/*
 * GET /api/dev/kv: one rate-limit hit in Redis (bucket "dev"), proving the
 * worker's Redis path works.  200 {"allowed", "retry_after_ms"};
 * 503 redis_unavailable.
 */
enum nf_err
h_dev_kv(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*root;
	int64_t			 retry = 0;
	enum nf_err		 rc;
	int			 allowed = 0;

	rc = nf_kv_ratelimit_hit(nf_app_kv(r->app), r->tenant->id, "dev", 1000000, 60000,
	    &allowed, &retry, e);
	if (rc == NF_EUNAVAIL)
		return nf_error_set(e, NF_EUNAVAIL, "redis_unavailable", NULL,
		    "Redis is unavailable");
	if (rc != NF_OK)
		return rc;
	root = json_object_new_object();
	nf_json_add_bool(root, "allowed", allowed);
	nf_json_add_int(root, "retry_after_ms", retry);
	nf_resp_json(r, 200, root);
	return NF_OK;
}
