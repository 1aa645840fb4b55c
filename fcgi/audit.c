/*
 * audit.c - the append-only audit log (see audit.h): one document per
 * event in the `audit` collection, read back by h_audit.c.
 *
 * The indexes on (at) and (event, at) serve the newest-first listing and
 * its event filter; they are ensured once per process and store handle,
 * lazily on the first write, so no start-up step can be forgotten.
 * A failed write is logged (event and actor, never data) and swallowed.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "app.h"
#include "audit.h"
#include "json.h"
#include "log.h"
#include "nonflex.h"
#include "req.h"
#include "store.h"
#include "tenant.h"

static const struct nf_index audit_indexes[] = {
	{ "audit_at", { "at", NULL }, { -1 }, 0 },
	{ "audit_event_at", { "event", "at", NULL }, { 1, -1 }, 0 },
	{ "audit_actor_at", { "actor", "at", NULL }, { 1, -1 }, 0 },
};

/* The store the indexes were last ensured on (per process). */
static struct nf_store	*indexed_store;

static void
ensure_indexes(struct nf_store *st)
{
	static const char *const colls[] = { "audit", "audit", "audit" };
	struct nf_error	 e;

	_Static_assert(NF_ARRAY_LEN(colls) == NF_ARRAY_LEN(audit_indexes), "one per index");

	nf_error_clear(&e);
	if (nf_store_ensure_indexes(st, colls, audit_indexes, NF_ARRAY_LEN(audit_indexes),
	    &indexed_store, &e) != NF_OK)
		nf_warn("audit indexes: %s", e.message);
}

static void
record(struct nf_store *st, const char *tenant, const char *actor, const char *event,
    const char *ip, const char *request_id, struct json_object *data)
{
	struct json_object	*doc;
	struct nf_error		 e;
	char			 at[25];

	if (event == NULL || tenant == NULL) {
		json_object_put(data);
		return;
	}
	if (st == NULL) {
		nf_error("audit %s by %s not stored: no store", event,
		    actor ? actor : "anonymous");
		json_object_put(data);
		return;
	}
	ensure_indexes(st);
	nf_iso8601(nf_now_ms(), at);
	doc = json_object_new_object();
	nf_json_add_str(doc, "at", at);
	nf_json_add_str(doc, "event", event);
	nf_json_add_str(doc, "actor", actor ? actor : "anonymous");
	if (ip != NULL)
		nf_json_add_str(doc, "ip", ip);
	if (request_id != NULL && request_id[0] != '\0')
		nf_json_add_str(doc, "requestId", request_id);
	/* data is consumed: ownership moves into doc. */
	nf_json_add(doc, "data", data ? data : json_object_new_object());
	nf_error_clear(&e);
	if (nf_store_insert(st, tenant, "audit", doc, NULL, &e) != NF_OK)
		nf_error("audit %s by %s not stored: %s", event,
		    actor ? actor : "anonymous", e.message);
	json_object_put(doc);
}

void
nf_audit_store(struct nf_store *st, const char *tenant, const char *actor,
    const char *event, const char *ip, struct json_object *data)
{
	record(st, tenant, actor, event, ip, NULL, data);
}

void
nf_audit(struct nf_req *r, const char *event, const char *actor,
    struct json_object *data)
{
	struct nf_store	*st = NULL;
	struct nf_error	 e;

	if (r == NULL || r->tenant == NULL) {
		json_object_put(data);
		return;
	}
	if (actor == NULL && r->principal.authenticated && r->principal.agent_id[0])
		actor = r->principal.agent_id;
	nf_error_clear(&e);
	if (r->app == NULL || nf_app_store(r->app, &st, &e) != NF_OK)
		st = NULL;
	record(st, r->tenant->id, actor, event, nf_req_param(r, "REMOTE_ADDR"),
	    r->request_id, data);
}
