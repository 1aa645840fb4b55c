/*
 * h_health.c - GET /api/health: store, Redis and event publisher status.
 *
 * DESIGN: every check reuses the process's connections and is bounded by
 * their own timeouts (Redis NONFLEX_REDIS_TIMEOUT_MS, nchan 2 s, the store
 * backend's), so a dead dependency makes the answer "degraded", not slow
 * forever.  No tenant is needed: load balancers call it bare.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <string.h>

#include <json-c/json.h>

#include "app.h"
#include "events.h"
#include "handlers.h"
#include "jobs.h"
#include "json.h"
#include "kv.h"
#include "log.h"
#include "nonflex.h"
#include "req.h"
#include "spool.h"
#include "store.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* "sqlite" or "mongodb" from the configured URI, for a store not open. */
static const char *
backend_of(const char *uri)
{
	return strncmp(uri, "mongodb", 7) == 0 ? "mongodb" : "sqlite";
}

static int
check_store(struct nf_app *app, struct json_object *out)
{
	struct nf_store	*st = NULL;
	struct nf_error	 e;
	int		 up;

	nf_error_clear(&e);
	up = nf_app_store(app, &st, &e) == NF_OK && nf_store_ping(st, &e) == NF_OK;
	if (!up)
		nf_warn("health: store down: %s", e.code);
	nf_json_add_str(out, "status", up ? "up" : "down");
	nf_json_add_str(out, "backend", st != NULL ? nf_store_backend(st) :
	    backend_of(app->cfg.store_uri));
	return up;
}

static int
check_redis(struct nf_app *app, struct json_object *out)
{
	struct nf_kv	*kv = nf_app_kv(app);
	struct nf_error	 e;
	int		 up;

	nf_error_clear(&e);
	up = kv != NULL && nf_kv_ping(kv, &e) == NF_OK;
	nf_json_add_str(out, "status", up ? "up" : "down");
	return up;
}

static int
check_events(struct json_object *out)
{
	struct nf_error	 e;
	int		 up;

	nf_error_clear(&e);
	up = nf_events_ping(&e) == NF_OK;
	nf_json_add_str(out, "status", up ? "up" : "down");
	return up;
}

/*
 * Jobs waiting in the store's outbox for Redis (all tenants); null when
 * the store cannot say.  Informational: it does not change the status.
 */
static void
check_outbox(struct nf_app *app, int store_up, struct json_object *out)
{
	struct nf_store	*st = NULL;
	struct nf_error	 e;
	int64_t		 n, total = 0;
	size_t		 i;

	nf_error_clear(&e);
	if (!store_up || app->tenants == NULL || nf_app_store(app, &st, &e) != NF_OK) {
		nf_json_add(out, "outbox", NULL);
		return;
	}
	for (i = 0; i < app->tenants->n; i++) {
		if (nf_jobs_outbox_count(st, app->tenants->v[i].id, &n, &e) != NF_OK) {
			nf_warn("health: outbox count failed: %s", e.code);
			nf_json_add(out, "outbox", NULL);
			return;
		}
		total += n;
	}
	nf_json_add_int(out, "outbox", total);
}

/*
 * The inbound spool, when there is one: usable, and what waits for the
 * drainer (bytes, the age of the oldest waiting file in ms) and how many
 * records were dead-lettered.  A spool that cannot be used is down (the
 * webhooks then record at once); a drainer falling behind is only shown.
 */
static int
check_spool(struct nf_app *app, struct json_object *root)
{
	struct json_object	*out;
	struct nf_spool		*sp;
	struct nf_error		 e;
	int64_t			 bytes = 0, oldest = 0, dead = 0;
	int			 up;

	if (app->cfg.spool_dir == NULL || *app->cfg.spool_dir == '\0')
		return 1;
	out = json_object_new_object();
	up = (sp = nf_app_spool(app)) != NULL &&
	    nf_spool_backlog(sp, &bytes, &oldest, &dead, &e) == NF_OK;
	nf_json_add_str(out, "status", up ? "up" : "down");
	nf_json_add_int(out, "pendingBytes", bytes);
	nf_json_add_int(out, "oldestMs", oldest);
	nf_json_add_int(out, "dead", dead);
	nf_json_add(root, "spool", out);
	return up;
}

/*
 * GET /api/health, no role, no tenant.
 * 200 {status:"ok", version, store{status,backend}, redis{status},
 * events{status}, jobs{outbox}} (each component "up" or "down"; outbox the
 * number of jobs kept in the store while Redis was down, null when
 * unknown) when everything is up; 503 with status "degraded" otherwise.
 */
enum nf_err
h_health_get(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*root = json_object_new_object();
	struct json_object	*st = json_object_new_object();
	struct json_object	*rd = json_object_new_object();
	struct json_object	*ev = json_object_new_object();
	struct json_object	*jb = json_object_new_object();
	int			 ok, store_up;

	(void)e;
	ok = store_up = check_store(r->app, st);
	ok &= check_redis(r->app, rd);
	ok &= check_events(ev);
	check_outbox(r->app, store_up, jb);
	ok &= check_spool(r->app, jb);
	nf_json_add_str(root, "status", ok ? "ok" : "degraded");
	nf_json_add_str(root, "version", PACKAGE_VERSION);
	nf_json_add(root, "store", st);
	nf_json_add(root, "redis", rd);
	nf_json_add(root, "events", ev);
	nf_json_add(root, "jobs", jb);
	nf_resp_json(r, ok ? 200 : 503, root);
	return NF_OK;
}
