/*
 * seed.c - see seed.h.  Agents are stored with the original app's field
 * names (username, password = hash, status, skills, languages, level) plus
 * Nonflex's roles/disabled, so later modules and an imported original
 * database read the same shape.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "customers.h"
#include "nonflex.h"
#include "passwd.h"
#include "seed.h"
#include "store.h"

static const struct nf_index indexes[] = {
	{ "agents_username", { "username", NULL }, { 1 }, 1 },
	{ "agents_status", { "status", NULL }, { 1 }, 0 },
};

static const char *const index_colls[] = { "agents", "agents" };

enum nf_err
nf_seed_indexes(struct nf_store *st, struct nf_error *err)
{
	static struct nf_store	*done;

	_Static_assert(NF_ARRAY_LEN(index_colls) == NF_ARRAY_LEN(indexes), "one per index");
	return nf_store_ensure_indexes(st, index_colls, indexes, NF_ARRAY_LEN(indexes), &done,
	    err);
}

/* Copy one optional field of the seed entry into doc. */
static void
copy_field(struct json_object *doc, struct json_object *src, const char *name)
{
	struct json_object	*v;

	if (json_object_object_get_ex(src, name, &v))
		json_object_object_add(doc, name, json_object_get(v));
}

static enum nf_err
seed_agent(struct nf_store *st, const char *tenant, struct json_object *a,
    nf_seed_report_fn report, void *arg, struct nf_error *err)
{
	struct json_object	*filter = NULL, *found = NULL, *doc = NULL, *v;
	const char		*username, *password;
	char			*hash = NULL, now[25];
	enum nf_err		 rc;

	if (!json_object_object_get_ex(a, "username", &v) ||
	    !json_object_is_type(v, json_type_string))
		return nf_error_set(err, NF_EINVAL, "invalid_seed", "username",
		    "seed agent without a username");
	username = json_object_get_string(v);
	if (!json_object_object_get_ex(a, "password", &v) ||
	    !json_object_is_type(v, json_type_string))
		return nf_error_set(err, NF_EINVAL, "invalid_seed", "password",
		    "seed agent %s without a password", username);
	password = json_object_get_string(v);

	filter = json_object_new_object();
	json_object_object_add(filter, "username", json_object_new_string(username));
	rc = nf_store_find_one(st, tenant, "agents", filter, NULL, &found, err);
	if (rc == NF_OK) {
		if (report != NULL)
			report(tenant, "agent", username, 0, arg);
		goto out;
	}
	if (rc != NF_ENOTFOUND)
		goto out;
	if ((rc = nf_passwd_hash(password, &hash)) != NF_OK) {
		nf_error_set(err, rc, NULL, NULL, "password hashing failed");
		goto out;
	}
	nf_iso8601(nf_now_ms(), now);
	doc = json_object_new_object();
	json_object_object_add(doc, "username", json_object_new_string(username));
	json_object_object_add(doc, "password", json_object_new_string(hash));
	json_object_object_add(doc, "status", json_object_new_string("offline"));
	copy_field(doc, a, "name");
	copy_field(doc, a, "skills");
	copy_field(doc, a, "languages");
	copy_field(doc, a, "level");
	copy_field(doc, a, "roles");
	json_object_object_add(doc, "disabled", json_object_new_boolean(0));
	json_object_object_add(doc, "createdAt", json_object_new_string(now));
	json_object_object_add(doc, "updatedAt", json_object_new_string(now));
	rc = nf_store_insert(st, tenant, "agents", doc, NULL, err);
	if (rc == NF_OK && report != NULL)
		report(tenant, "agent", username, 1, arg);
out:
	if (hash != NULL) {
		explicit_bzero(hash, strlen(hash));
		free(hash);
	}
	json_object_put(doc);
	json_object_put(found);
	json_object_put(filter);
	return rc;
}

enum nf_err
nf_seed_tenant(struct nf_store *st, const char *tenant, struct json_object *demo,
    nf_seed_report_fn report, void *arg, struct nf_error *err)
{
	struct json_object	*agents;
	enum nf_err		 rc;
	size_t			 i, n;

	if ((rc = nf_seed_indexes(st, err)) != NF_OK ||
	    (rc = nf_customers_seed(st, tenant, demo, report, arg, err)) != NF_OK)
		return rc;
	if (!json_object_object_get_ex(demo, "agents", &agents))
		return NF_OK;
	if (!json_object_is_type(agents, json_type_array))
		return nf_error_set(err, NF_EINVAL, "invalid_seed", "agents",
		    "agents must be an array");
	n = json_object_array_length(agents);
	for (i = 0; i < n; i++)
		if ((rc = seed_agent(st, tenant, json_object_array_get_idx(agents, i),
		    report, arg, err)) != NF_OK)
			return rc;
	return NF_OK;
}
