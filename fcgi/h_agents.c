/*
 * h_agents.c - agent routes: presence (status), level, and the admin's
 * agent management (list, create, read, update, delete).
 *
 * The route table (routes.c) decides who may call each route; the
 * handlers only add the one rule the table cannot express: an agent may
 * change (or read the level of) its own record only, unless it is an
 * admin.  Agents live in the tenant's `agents` collection (seed.c's
 * shape); the store is the record and presence is mirrored to Redis
 * ("nf:<tenant>:presence:<id>") for fast reads and published as a live
 * event (topic "agents") for supervisors, both best effort.  Responses
 * never carry the password hash (agent_view copies an allow-list).
 * Every change is audited (audit.h) with ids and field names, never
 * passwords.
 *
 * Last admin: a change that would leave the tenant without an enabled
 * admin is refused with 409 last_admin.  It is checked before the write
 * and verified after it; when two requests race past the first check the
 * verification sees zero admins and puts the old values back, so the
 * tenant is never left without an admin.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "app.h"
#include "audit.h"
#include "authcache.h"
#include "events.h"
#include "handlers.h"
#include "json.h"
#include "listing.h"
#include "kv.h"
#include "log.h"
#include "nonflex.h"
#include "passwd.h"
#include "req.h"
#include "router.h"
#include "seed.h"
#include "store.h"
#include "tenant.h"
#include "valid.h"

#define AGENTS		"agents"
#define LIST_DEFAULT	50
#define LIST_MAX	200
#define TAGS_MAX	32     /* skills or languages per agent */
#define TAG_LEN_MAX	64

static const char *const statuses[] = { "available", "busy", "offline", NULL };
static const char *const role_names[] = { "agent", "supervisor", "admin", NULL };

/* Fields copied into responses: an allow-list, so the hash never leaks. */
static const char *const view_fields[] = { "username", "name", "status", "skills",
	"languages", "level", "roles", "disabled", "workerSid", "createdAt", "updatedAt",
	NULL };

/* The store, with the agents indexes (ensured once per store handle). */
static enum nf_err
agents_store(struct nf_req *r, struct nf_store **st, struct nf_error *e)
{
	enum nf_err	 rc;

	if ((rc = nf_app_store(r->app, st, e)) != NF_OK)
		return rc;
	return nf_seed_indexes(*st, e);
}

static struct json_object *
agent_view(struct json_object *doc)
{
	struct json_object	*out = json_object_new_object(), *v;
	size_t			 i;

	if (json_object_object_get_ex(doc, "_id", &v))
		nf_json_add(out, "id", json_object_get(v));   /* shared with doc */
	for (i = 0; view_fields[i] != NULL; i++)
		if (json_object_object_get_ex(doc, view_fields[i], &v))
			nf_json_add(out, view_fields[i], json_object_get(v));
	return out;
}

/* Load agent :id into *doc; 404 for a malformed or unknown id. */
static enum nf_err
agent_load(struct nf_store *st, const char *tenant, const char *id,
    struct json_object **doc, struct nf_error *e)
{
	struct json_object	*f;
	enum nf_err		 rc;

	*doc = NULL;
	if (id == NULL || !nf_valid_hex24(id))
		return nf_error_set(e, NF_ENOTFOUND, "agent_not_found", NULL,
		    "no such agent");
	f = nf_json_pair("_id", id);
	rc = nf_store_find_one(st, tenant, AGENTS, f, NULL, doc, e);
	json_object_put(f);
	if (rc == NF_ENOTFOUND)
		return nf_error_set(e, NF_ENOTFOUND, "agent_not_found", NULL,
		    "no such agent");
	return rc;
}

static int
doc_has_role(struct json_object *doc, const char *role)
{
	struct json_object	*roles, *v;
	size_t			 i, n;

	if (!json_object_object_get_ex(doc, "roles", &roles) ||
	    !json_object_is_type(roles, json_type_array))
		return 0;
	n = json_object_array_length(roles);
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(roles, i);
		if (json_object_is_type(v, json_type_string) &&
		    strcmp(json_object_get_string(v), role) == 0)
			return 1;
	}
	return 0;
}

static int
doc_enabled_admin(struct json_object *doc)
{
	struct json_object	*v;

	if (doc == NULL || !doc_has_role(doc, "admin"))
		return 0;
	return !json_object_object_get_ex(doc, "disabled", &v) ||
	    !json_object_get_boolean(v);
}

static int
is_self(const struct nf_req *r, const char *id)
{
	return r->principal.authenticated && id != NULL &&
	    strcmp(r->principal.agent_id, id) == 0;
}

static int
is_admin(const struct nf_req *r)
{
	return r->principal.authenticated && (r->principal.roles & NF_ROLE_ADMIN);
}

/* Enabled admins of the tenant. */
static enum nf_err
count_admins(struct nf_store *st, const char *tenant, int64_t *n, struct nf_error *e)
{
	struct json_object	*f, *ne;
	enum nf_err		 rc;

	f = nf_json_pair("roles", "admin");
	ne = json_object_new_object();
	nf_json_add_bool(ne, "$ne", 1);
	nf_json_add(f, "disabled", ne);
	rc = nf_store_count(st, tenant, AGENTS, f, n, e);
	json_object_put(f);
	return rc;
}

static enum nf_err
last_admin_error(struct nf_error *e)
{
	return nf_error_set(e, NF_ECONFLICT, "last_admin", NULL,
	    "the tenant's last enabled admin cannot be removed or disabled");
}

/* Mirror presence to Redis; the store already holds it, so a Redis failure
 * only costs the fast path and is logged. */
static void
presence_set(struct nf_req *r, const char *id, const char *status)
{
	struct nf_kv	*kv = nf_app_kv(r->app);
	struct nf_error	 e;
	char		*key;

	if (kv == NULL || (key = nf_kv_key(r->tenant->id, "presence", id)) == NULL)
		return;
	nf_error_clear(&e);
	if (status != NULL) {
		if (nf_kv_command(kv, NULL, &e, "SET %s %s", key, status) != NF_OK)
			nf_warn("presence of %s not mirrored to redis: %s", id, e.message);
	} else if (nf_kv_command(kv, NULL, &e, "DEL %s", key) != NF_OK)
		nf_warn("presence of %s not removed from redis: %s", id, e.message);
	free(key);
}

/* Tell every worker to forget what it cached about this agent
 * (authcache.h); the change is stored, so a failure is logged there and
 * bounded by the cache's maximum age. */
static void
agent_changed(struct nf_req *r, const char *id)
{
	struct nf_error	 e;

	if (nf_valid_hex24(id))
		(void)nf_authcache_publish_agent(nf_app_kv(r->app), r->tenant->id, id, &e);
}

/* Tell supervisors live (topic "agents", type "agent.status").  The change
 * is already stored, so a publisher failure is logged, never the answer. */
static void
publish_status(struct nf_req *r, const char *id, const char *username,
    const char *status)
{
	struct json_object	*d = json_object_new_object();
	struct nf_error		 e;

	nf_error_clear(&e);
	nf_json_add_str(d, "id", id);
	nf_json_add_str(d, "username", username);        /* null if absent */
	nf_json_add_str(d, "status", status);
	if (nf_events_publish(r->tenant->id, "agents", "agent.status", d, &e) != NF_OK)
		nf_warn("status of agent %s not published: %s", id, e.message);
	json_object_put(d);
}

/* ---- validation of agent fields ---------------------------------------- */

int
nf_agents_valid_username(const char *s)
{
	return s != NULL && strlen(s) >= 2 && nf_valid_charset(s, 64, "._-");
}

/* Array of 0..TAGS_MAX distinct short strings; *out a new clean copy. */
static enum nf_err
get_tags(struct json_object *obj, const char *field, struct json_object **out,
    struct nf_error *e)
{
	struct json_object	*arr = NULL, *v;
	const char		*s;
	size_t			 i, j, n;
	enum nf_err		 rc;

	*out = NULL;
	if ((rc = nf_json_get_value(obj, field, json_type_array, 0, &arr, e)) != NF_OK ||
	    arr == NULL)
		return rc;
	if ((n = json_object_array_length(arr)) > TAGS_MAX)
		return nf_error_set(e, NF_EINVAL, "invalid_field", field,
		    "%s holds at most %d entries", field, TAGS_MAX);
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(v, json_type_string) ||
		    !nf_valid_utf8(json_object_get_string(v),
		    (size_t)json_object_get_string_len(v), 1, TAG_LEN_MAX))
			return nf_error_set(e, NF_EINVAL, "invalid_field", field,
			    "%s must be strings of 1 to %d bytes", field, TAG_LEN_MAX);
	}
	*out = json_object_new_array();
	for (i = 0; i < n; i++) {
		s = json_object_get_string(json_object_array_get_idx(arr, i));
		for (j = 0; j < i; j++)
			if (strcmp(s, json_object_get_string(
			    json_object_array_get_idx(arr, j))) == 0)
				break;
		if (j == i)
			json_object_array_add(*out, json_object_new_string(s));
	}
	return NF_OK;
}

/* Non-empty array of role names, deduplicated, in canonical order. */
static enum nf_err
get_roles(struct json_object *obj, struct json_object **out, struct nf_error *e)
{
	struct json_object	*arr = NULL, *v;
	unsigned		 bits = 0;
	size_t			 i, n;
	int			 k;
	enum nf_err		 rc;

	*out = NULL;
	if ((rc = nf_json_get_value(obj, "roles", json_type_array, 0, &arr, e)) != NF_OK ||
	    arr == NULL)
		return rc;
	n = json_object_array_length(arr);
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(v, json_type_string) ||
		    (k = nf_valid_enum(json_object_get_string(v), role_names)) < 0)
			return nf_error_set(e, NF_EINVAL, "invalid_field", "roles",
			    "roles must be agent, supervisor or admin");
		bits |= 1u << k;
	}
	if (bits == 0)
		return nf_error_set(e, NF_EINVAL, "invalid_field", "roles",
		    "roles must name at least one role");
	*out = json_object_new_array();
	for (k = 0; role_names[k] != NULL; k++)
		if (bits & (1u << k))
			json_object_array_add(*out, json_object_new_string(role_names[k]));
	return NF_OK;
}

/*
 * The fields create and update share, validated into set (a $set body).
 * Field errors name the field.  password is hashed after the policy.
 */
static enum nf_err
agent_fields(struct json_object *body, const char *username, struct json_object *set,
    struct nf_error *e)
{
	struct json_object	*skills = NULL, *langs = NULL, *roles = NULL, *v = NULL;
	const char		*name = NULL, *password = NULL, *worker = NULL;
	char			*hash = NULL;
	int64_t			 level = 0;
	int			 disabled = -1;
	enum nf_err		 rc;

	if ((rc = nf_json_get_string(body, "name", 1, 128, 0, &name, e)) != NF_OK ||
	    (rc = get_tags(body, "skills", &skills, e)) != NF_OK ||
	    (rc = get_tags(body, "languages", &langs, e)) != NF_OK ||
	    (rc = get_roles(body, &roles, e)) != NF_OK ||
	    (rc = nf_json_get_int(body, "level", 1, 10, 0, &level, e)) != NF_OK ||
	    (rc = nf_json_get_bool(body, "disabled", 0, &disabled, e)) != NF_OK ||
	    (rc = nf_json_get_string(body, "workerSid", 1, 34, 0, &worker, e)) != NF_OK ||
	    (rc = nf_json_get_value(body, "password", json_type_string, 0, &v, e)) != NF_OK)
		goto out;
	/* The TaskRouter worker a taskrouter token is minted for (h_tokens.c). */
	if (worker != NULL && !nf_valid_twilio_sid(worker, "WK")) {
		rc = nf_error_set(e, NF_EINVAL, "invalid_field", "workerSid",
		    "workerSid must be a TaskRouter worker SID (WK and 32 hex digits)");
		goto out;
	}
	if (v != NULL) {
		password = json_object_get_string(v);
		if (strlen(password) != (size_t)json_object_get_string_len(v)) {
			rc = nf_error_set(e, NF_EINVAL, "weak_password", "password",
			    "password must not contain NUL");
			goto out;
		}
		if ((rc = nf_passwd_policy(password, username, "password", e)) != NF_OK)
			goto out;
		if ((rc = nf_passwd_hash(password, &hash)) != NF_OK) {
			nf_error_set(e, rc, NULL, NULL, "password hashing failed");
			goto out;
		}
		nf_json_add_str(set, "password", hash);
		nf_json_add_int(set, "passwordChangedAt", nf_now_ms());
	}
	if (name != NULL)
		nf_json_add_str(set, "name", name);
	if (skills != NULL)
		nf_json_add(set, "skills", json_object_get(skills));
	if (langs != NULL)
		nf_json_add(set, "languages", json_object_get(langs));
	if (roles != NULL)
		nf_json_add(set, "roles", json_object_get(roles));
	if (level != 0)
		nf_json_add_int(set, "level", level);
	if (disabled >= 0)
		nf_json_add_bool(set, "disabled", disabled);
	if (worker != NULL)
		nf_json_add_str(set, "workerSid", worker);
out:
	if (hash != NULL) {
		explicit_bzero(hash, strlen(hash));
		free(hash);
	}
	json_object_put(skills);
	json_object_put(langs);
	json_object_put(roles);
	return rc;
}

/* Names of set's keys without the secret ones, for the audit record. */
static struct json_object *
changed_fields(struct json_object *set)
{
	struct json_object	*arr = json_object_new_array();

	json_object_object_foreach(set, k, v) {
		(void)v;
		if (strcmp(k, "password") == 0)
			json_object_array_add(arr, json_object_new_string("password"));
		else if (strcmp(k, "updatedAt") != 0 && strcmp(k, "passwordChangedAt") != 0)
			json_object_array_add(arr, json_object_new_string(k));
	}
	return arr;
}

static void
audit_agent(struct nf_req *r, const char *event, const char *id, const char *username,
    struct json_object *fields)
{
	struct json_object	*d = json_object_new_object();

	nf_json_add_str(d, "agentId", id);
	if (username != NULL)
		nf_json_add_str(d, "username", username);
	if (fields != NULL)
		nf_json_add(d, "fields", fields);
	nf_audit(r, event, NULL, d);
}

/* ---- presence and level ------------------------------------------------ */

/*
 * POST /api/agents/:id/status {status}: 200 {id, status}; 403 for someone
 * else's id unless admin; 400 for a status other than available, busy,
 * offline; 404 unknown agent.
 */
enum nf_err
h_agents_status(struct nf_req *r, struct nf_error *e)
{
	static const char *const allowed[] = { "status", NULL };
	struct json_object	*f = NULL, *upd = NULL, *set, *before = NULL, *root, *d;
	struct nf_store		*st;
	const char		*id = nf_req_path_param(r, "id");
	char			 now[25];
	int			 s = 0;
	enum nf_err		 rc;

	if (!is_self(r, id) && !is_admin(r))
		return nf_error_set(e, NF_EFORBIDDEN, "forbidden", NULL,
		    "agents may change only their own status");
	if ((rc = nf_json_reject_unknown(r->json, allowed, e)) != NF_OK ||
	    (rc = nf_json_get_enum(r->json, "status", statuses, 1, &s, e)) != NF_OK)
		return rc;
	if (!nf_valid_hex24(id))
		return nf_error_set(e, NF_ENOTFOUND, "agent_not_found", NULL, "no such agent");
	if ((rc = agents_store(r, &st, e)) != NF_OK)
		return rc;
	nf_iso8601(nf_now_ms(), now);
	f = nf_json_pair("_id", id);
	upd = json_object_new_object();
	set = json_object_new_object();
	nf_json_add_str(set, "status", statuses[s]);
	nf_json_add_str(set, "statusAt", now);
	nf_json_add_str(set, "updatedAt", now);
	nf_json_add(upd, "$set", set);
	rc = nf_store_find_and_modify(st, r->tenant->id, AGENTS, f, NULL, upd, 0,
	    &before, e);
	if (rc == NF_ENOTFOUND)
		rc = nf_error_set(e, NF_ENOTFOUND, "agent_not_found", NULL, "no such agent");
	if (rc != NF_OK)
		goto out;
	agent_changed(r, id);
	presence_set(r, id, statuses[s]);
	publish_status(r, id, nf_json_field_str(before, "username"), statuses[s]);
	d = json_object_new_object();
	nf_json_add_str(d, "agentId", id);
	nf_json_add_str(d, "from", nf_json_field_str(before, "status"));
	nf_json_add_str(d, "to", statuses[s]);
	nf_audit(r, "agent.status", NULL, d);
	root = json_object_new_object();
	nf_json_add_str(root, "id", id);
	nf_json_add_str(root, "status", statuses[s]);
	nf_resp_json(r, 200, root);
out:
	json_object_put(before);
	json_object_put(upd);
	json_object_put(f);
	return rc;
}

/* GET /api/agents/:id/level: 200 {id, level}; own id, or a supervisor or
 * admin; 403 otherwise; 404 unknown agent. */
enum nf_err
h_agents_level(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*doc = NULL, *root, *v;
	struct nf_store		*st;
	const char		*id = nf_req_path_param(r, "id");
	enum nf_err		 rc;

	if (!is_self(r, id) &&
	    !(r->principal.roles & (NF_ROLE_ADMIN | NF_ROLE_SUPERVISOR)))
		return nf_error_set(e, NF_EFORBIDDEN, "forbidden", NULL,
		    "agents may read only their own level");
	if ((rc = agents_store(r, &st, e)) != NF_OK ||
	    (rc = agent_load(st, r->tenant->id, id, &doc, e)) != NF_OK)
		return rc;
	root = json_object_new_object();
	nf_json_add_str(root, "id", id);
	if (json_object_object_get_ex(doc, "level", &v))
		nf_json_add(root, "level", json_object_get(v));   /* shared with doc */
	else
		nf_json_add_int(root, "level", 1);
	nf_resp_json(r, 200, root);
	json_object_put(doc);
	return NF_OK;
}

/* ---- admin: list, create, read, update, delete -------------------------- */

static enum nf_err
list_filter(struct nf_req *r, struct json_object **out, struct nf_error *e)
{
	const char	*status = nf_pairs_get(&r->query, "status");
	const char	*skill = nf_pairs_get(&r->query, "skill");

	*out = NULL;
	if (status != NULL && nf_valid_enum(status, statuses) < 0)
		return nf_error_set(e, NF_EINVAL, "invalid_query", "status",
		    "status must be available, busy or offline");
	if (skill != NULL && !nf_valid_utf8(skill, strlen(skill), 1, TAG_LEN_MAX))
		return nf_error_set(e, NF_EINVAL, "invalid_query", "skill",
		    "skill must be 1 to %d bytes", TAG_LEN_MAX);
	*out = json_object_new_object();
	if (status != NULL)
		nf_json_add_str(*out, "status", status);
	if (skill != NULL)
		nf_json_add_str(*out, "skills", skill);
	return NF_OK;
}

/*
 * GET /api/agents?status=&skill=&limit=&cursor=: 200 {agents: [...],
 * next: cursor|null}, by username.  400 for a bad filter, limit or cursor.
 */
enum nf_err
h_agents_list(struct nf_req *r, struct nf_error *e)
{
	static const struct nf_listing	 listing = { AGENTS, "username", 1,
	    LIST_DEFAULT, LIST_MAX, "agents", agent_view, NULL };
	struct json_object		*f = NULL;
	struct nf_store			*st;
	enum nf_err			 rc;

	if ((rc = list_filter(r, &f, e)) == NF_OK &&
	    (rc = agents_store(r, &st, e)) == NF_OK)
		rc = nf_listing_respond(r, st, f, &listing, e);
	json_object_put(f);
	return rc;
}

/* GET /api/agents/:id: 200 the agent; 404 unknown (any tenant's id). */
enum nf_err
h_agents_get(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*doc = NULL;
	struct nf_store		*st;
	enum nf_err		 rc;

	if ((rc = agents_store(r, &st, e)) != NF_OK ||
	    (rc = agent_load(st, r->tenant->id, nf_req_path_param(r, "id"), &doc, e)) != NF_OK)
		return rc;
	nf_resp_json(r, 200, agent_view(doc));
	json_object_put(doc);
	return NF_OK;
}

/* Build the new agent document from the create body. */
static enum nf_err
new_agent_doc(struct json_object *body, struct json_object **out, struct nf_error *e)
{
	static const char *const allowed[] = { "username", "password", "name", "skills",
		"languages", "roles", "level", "disabled", "workerSid", NULL };
	struct json_object	*doc, *v;
	const char		*username = NULL;
	char			 now[25];
	enum nf_err		 rc;

	*out = NULL;
	if ((rc = nf_json_reject_unknown(body, allowed, e)) != NF_OK ||
	    (rc = nf_json_get_string(body, "username", 1, 64, 1, &username, e)) != NF_OK)
		return rc;
	if (!nf_agents_valid_username(username))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "username",
		    "username must be 2 to 64 of a-z 0-9 . _ -");
	doc = json_object_new_object();
	nf_json_add_str(doc, "username", username);
	if ((rc = agent_fields(body, username, doc, e)) != NF_OK) {
		json_object_put(doc);
		return rc;
	}
	if (!json_object_object_get_ex(doc, "password", NULL)) {
		json_object_put(doc);
		return nf_error_set(e, NF_EINVAL, "missing_field", "password",
		    "password is required");
	}
	nf_iso8601(nf_now_ms(), now);
	if (!json_object_object_get_ex(doc, "name", NULL))
		nf_json_add_str(doc, "name", username);
	if (!json_object_object_get_ex(doc, "skills", NULL))
		nf_json_add(doc, "skills", json_object_new_array());
	if (!json_object_object_get_ex(doc, "languages", NULL))
		nf_json_add(doc, "languages", json_object_new_array());
	if (!json_object_object_get_ex(doc, "roles", NULL)) {
		v = json_object_new_array();
		json_object_array_add(v, json_object_new_string("agent"));
		nf_json_add(doc, "roles", v);
	}
	if (!json_object_object_get_ex(doc, "level", NULL))
		nf_json_add_int(doc, "level", 1);
	if (!json_object_object_get_ex(doc, "disabled", NULL))
		nf_json_add_bool(doc, "disabled", 0);
	nf_json_add_str(doc, "status", "offline");
	nf_json_add_str(doc, "createdAt", now);
	nf_json_add_str(doc, "updatedAt", now);
	*out = doc;
	return NF_OK;
}

enum nf_err
nf_agents_create(struct nf_store *st, const char *tenant, struct json_object *body,
    struct json_object **out, struct nf_error *e)
{
	struct json_object	*doc = NULL;
	char			 id[25];
	enum nf_err		 rc;

	*out = NULL;
	if ((rc = new_agent_doc(body, &doc, e)) != NF_OK)
		return rc;
	rc = nf_store_insert(st, tenant, AGENTS, doc, id, e);
	if (rc == NF_ECONFLICT)
		rc = nf_error_set(e, NF_ECONFLICT, "username_taken", "username",
		    "an agent with this username exists");
	if (rc != NF_OK) {
		json_object_put(doc);
		return rc;
	}
	nf_json_add_str(doc, "_id", id);
	*out = doc;
	return NF_OK;
}

/* POST /api/agents: 201 the agent; 400 naming the field (weak_password
 * for the policy); 409 username_taken. */
enum nf_err
h_agents_create(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*doc = NULL;
	struct nf_store		*st;
	enum nf_err		 rc;

	if ((rc = agents_store(r, &st, e)) != NF_OK ||
	    (rc = nf_agents_create(st, r->tenant->id, r->json, &doc, e)) != NF_OK)
		return rc;
	audit_agent(r, "agent.create", nf_json_field_str(doc, "_id"), nf_json_field_str(doc, "username"),
	    changed_fields(doc));
	nf_resp_json(r, 201, agent_view(doc));
	json_object_put(doc);
	return NF_OK;
}

/* 400 for fields a PATCH may not touch: immutable ones by name, the rest
 * as unknown (mass assignment). */
static enum nf_err
patch_check_fields(struct json_object *body, struct nf_error *e)
{
	static const char *const allowed[] = { "name", "skills", "languages", "roles",
		"level", "disabled", "password", "workerSid", NULL };
	static const char *const immutable[] = { "_id", "id", "tenant", "username",
		"createdAt", "updatedAt", "passwordChangedAt", "status", NULL };

	if (!json_object_is_type(body, json_type_object))
		return nf_error_set(e, NF_EINVAL, "invalid_json", NULL,
		    "the body must be a JSON object");
	json_object_object_foreach(body, k, v) {
		(void)v;
		if (nf_valid_enum(k, immutable) >= 0)
			return nf_error_set(e, NF_EINVAL, "immutable_field", k,
			    "this field cannot be changed");
	}
	if (json_object_object_length(body) == 0)
		return nf_error_set(e, NF_EINVAL, "empty_update", NULL,
		    "nothing to change");
	return nf_json_reject_unknown(body, allowed, e);
}

/* Would set take away an enabled admin? */
static int
set_demotes_admin(struct json_object *before, struct json_object *set)
{
	struct json_object	*after;
	int			 demotes;

	if (!doc_enabled_admin(before))
		return 0;
	after = json_object_new_object();
	json_object_object_foreach(before, k, v)
		nf_json_add(after, k, json_object_get(v));      /* shallow copy */
	json_object_object_foreach(set, k2, v2)
		nf_json_add(after, k2, json_object_get(v2));
	demotes = !doc_enabled_admin(after);
	json_object_put(after);
	return demotes;
}

/* After a write that demoted an admin: when no enabled admin is left,
 * put back the old roles and disabled flag and report last_admin. */
static enum nf_err
verify_admins_left(struct nf_store *st, const char *tenant, const char *id,
    struct json_object *before, struct nf_error *e)
{
	struct json_object	*f, *upd, *set, *v;
	int64_t			 n = 0;
	enum nf_err		 rc;

	if ((rc = count_admins(st, tenant, &n, e)) != NF_OK || n > 0)
		return rc;
	f = nf_json_pair("_id", id);
	upd = json_object_new_object();
	set = json_object_new_object();
	if (json_object_object_get_ex(before, "roles", &v))
		nf_json_add(set, "roles", json_object_get(v));
	nf_json_add_bool(set, "disabled", 0);
	nf_json_add(upd, "$set", set);
	if (nf_store_update(st, tenant, AGENTS, f, upd, 0, NULL, e) != NF_OK)
		nf_error("last admin %s of %s could not be restored", id, tenant);
	json_object_put(upd);
	json_object_put(f);
	return last_admin_error(e);
}

/* Apply set to the agent: 404, 409 last_admin, or NF_OK. */
static enum nf_err
patch_apply(struct nf_store *st, const char *tenant, const char *id,
    struct json_object *before, struct json_object *set, struct nf_error *e)
{
	struct json_object	*f, *upd;
	int64_t			 n = 0, matched = 0;
	int			 demotes = set_demotes_admin(before, set);
	enum nf_err		 rc;

	if (demotes) {
		if ((rc = count_admins(st, tenant, &n, e)) != NF_OK)
			return rc;
		if (n <= 1)
			return last_admin_error(e);
	}
	f = nf_json_pair("_id", id);
	upd = json_object_new_object();
	nf_json_add(upd, "$set", json_object_get(set));   /* the caller keeps set */
	rc = nf_store_update(st, tenant, AGENTS, f, upd, 0, &matched, e);
	json_object_put(upd);
	json_object_put(f);
	if (rc == NF_OK && matched == 0)
		rc = nf_error_set(e, NF_ENOTFOUND, "agent_not_found", NULL, "no such agent");
	if (rc == NF_OK && demotes)
		rc = verify_admins_left(st, tenant, id, before, e);
	return rc;
}

/*
 * PATCH /api/agents/:id {name?, skills?, languages?, roles?, level?,
 * disabled?, password?, workerSid?}: 200 the agent; 400 for an immutable
 * or unknown field or a bad value; 404 unknown; 409 last_admin.
 */
enum nf_err
nf_agents_update(struct nf_store *st, const char *tenant, const char *id,
    struct json_object *body, struct json_object **fields, struct nf_error *e)
{
	struct json_object	*before = NULL, *set = NULL;
	char			 now[25];
	enum nf_err		 rc;

	*fields = NULL;
	if ((rc = agent_load(st, tenant, id, &before, e)) != NF_OK)
		return rc;
	if ((rc = patch_check_fields(body, e)) != NF_OK)
		goto out;
	set = json_object_new_object();
	if ((rc = agent_fields(body, nf_json_field_str(before, "username"), set, e)) != NF_OK)
		goto out;
	nf_iso8601(nf_now_ms(), now);
	nf_json_add_str(set, "updatedAt", now);
	if ((rc = patch_apply(st, tenant, id, before, set, e)) != NF_OK)
		goto out;
	*fields = changed_fields(set);
out:
	json_object_put(set);
	json_object_put(before);
	return rc;
}

enum nf_err
h_agents_update(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*after = NULL, *fields = NULL;
	struct nf_store		*st;
	const char		*id = nf_req_path_param(r, "id");
	enum nf_err		 rc;

	if ((rc = agents_store(r, &st, e)) != NF_OK)
		return rc;
	rc = nf_agents_update(st, r->tenant->id, id, r->json, &fields, e);
	/* Even a refused change (409 last_admin) may have been applied and
	 * undone in between: workers must not keep that state. */
	agent_changed(r, id);
	if (rc != NF_OK || (rc = agent_load(st, r->tenant->id, id, &after, e)) != NF_OK) {
		json_object_put(fields);
		return rc;
	}
	audit_agent(r, "agent.update", id, nf_json_field_str(after, "username"), fields);
	nf_resp_json(r, 200, agent_view(after));
	json_object_put(after);
	return NF_OK;
}

/* DELETE /api/agents/:id: 204; 404 unknown; 409 last_admin. */
enum nf_err
h_agents_delete(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*before = NULL, *f = NULL;
	struct nf_store		*st;
	const char		*id = nf_req_path_param(r, "id");
	int64_t			 n = 0, deleted = 0;
	enum nf_err		 rc;

	if ((rc = agents_store(r, &st, e)) != NF_OK ||
	    (rc = agent_load(st, r->tenant->id, id, &before, e)) != NF_OK)
		return rc;
	if (doc_enabled_admin(before)) {
		if ((rc = count_admins(st, r->tenant->id, &n, e)) != NF_OK)
			goto out;
		if (n <= 1) {
			rc = last_admin_error(e);
			goto out;
		}
	}
	f = nf_json_pair("_id", id);
	if ((rc = nf_store_delete(st, r->tenant->id, AGENTS, f, 0, &deleted, e)) != NF_OK)
		goto out;
	if (deleted == 0) {
		rc = nf_error_set(e, NF_ENOTFOUND, "agent_not_found", NULL, "no such agent");
		goto out;
	}
	if (doc_enabled_admin(before) &&
	    count_admins(st, r->tenant->id, &n, e) == NF_OK && n == 0) {
		/* Raced with another removal: put this admin back. */
		if (nf_store_insert(st, r->tenant->id, AGENTS, before, NULL, e) != NF_OK)
			nf_error("last admin %s of %s could not be restored", id,
			    r->tenant->id);
		rc = last_admin_error(e);
		goto out;
	}
	agent_changed(r, id);
	presence_set(r, id, NULL);
	audit_agent(r, "agent.delete", id, nf_json_field_str(before, "username"), NULL);
	nf_resp_empty(r, 204);
out:
	json_object_put(f);
	json_object_put(before);
	return rc;
}
