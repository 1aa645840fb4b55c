/*
 * t_provision.c - the pure parts of provision.c: which PUBLIC_URLs may be
 * a callback base, and which taskrouter.json definitions are refused
 * before anything is sent to Twilio (each with a message naming the place
 * to fix).  The conversation with Twilio itself is tested against Prism
 * in tests/integ/provision.test.mjs.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "json.h"
#include "nonflex.h"
#include "provision.h"
#include "tenant.h"
#include "testutil.h"

START_TEST(public_url)
{
	static const struct {
		const char	*url;
		int		 ok;
	} c[] = {
		{ "https://cc.example.com", 1 }, { "https://cc.example.com/", 1 },
		{ "https://cc.example.com:8443/nonflex", 1 }, { "HTTPS://CC.example.com", 1 },
		{ "http://127.0.0.1:8080", 1 }, { "http://127.1.2.3", 1 },
		{ "http://localhost:3000/", 1 }, { "http://[::1]:8080", 1 },
		{ NULL, 0 }, { "", 0 }, { "http://cc.example.com", 0 },
		{ "http://10.0.0.1", 0 }, { "http://127.0.0.1.example.com", 0 },
		{ "http://localhost.example.com", 0 }, { "http://[::2]", 0 },
		{ "ftp://cc.example.com", 0 }, { "cc.example.com", 0 }, { "/webhooks", 0 },
		{ "https://user:pw@cc.example.com", 0 }, { "https://cc.example.com/?a=1", 0 },
		{ "https://cc.example.com/#top", 0 }, { "https://cc.example.com /x", 0 },
		{ "https://cc.example.com\n", 0 },
	};
	struct nf_error	 e;
	size_t		 i;

	for (i = 0; i < NF_ARRAY_LEN(c); i++) {
		nf_error_clear(&e);
		ck_assert_msg((nf_provision_public_url_check(c[i].url, &e) == NF_OK) == c[i].ok,
		    "PUBLIC_URL \"%s\" should be %s", c[i].url ? c[i].url : "(null)",
		    c[i].ok ? "accepted" : "refused");
		if (!c[i].ok) {
			ck_assert_str_eq(e.field, "PUBLIC_URL");
			ck_assert_msg(strstr(e.message, "https://") != NULL, "%s", e.message);
		}
	}
}
END_TEST

/* The repository's infra/taskrouter.json, parsed. */
static struct json_object *
shipped_def(void)
{
	struct json_object	*def = json_object_from_file(TOP_SRCDIR "/infra/taskrouter.json");

	ck_assert_ptr_nonnull(def);
	return def;
}

/* Set (json NULL: remove) the member at a dotted path such as
 * "taskQueues.1.maxReservedWorkers" in root. */
static void
set_path(struct json_object *root, const char *dotted, const char *json)
{
	struct json_object	*o = root, *v = NULL;
	char			*copy = strdup(dotted), *key, *next, *end;
	long			 idx;

	for (key = copy; (next = strchr(key, '.')) != NULL; key = next + 1) {
		*next = '\0';
		idx = strtol(key, &end, 10);
		o = *end == '\0' ? json_object_array_get_idx(o, (size_t)idx) :
		    json_object_object_get(o, key);
		ck_assert_msg(o != NULL, "no %s in %s", key, dotted);
	}
	if (json == NULL)
		json_object_object_del(o, key);
	else {
		v = json_tokener_parse(json);
		ck_assert_msg(v != NULL || strcmp(json, "null") == 0, "bad JSON %s", json);
		json_object_object_add(o, key, v);
	}
	free(copy);
}

START_TEST(shipped_definition_is_valid)
{
	struct json_object	*def = shipped_def();
	struct nf_error		 e;

	nf_error_clear(&e);
	ck_assert_msg(nf_provision_def_check(def, &e) == NF_OK, "%s", e.message);
	json_object_put(def);
}
END_TEST

START_TEST(bad_definitions)
{
	static const struct {
		const char	*path;
		const char	*json;     /* NULL: remove the member */
		const char	*expect;   /* in the message */
	} c[] = {
		{ "extras", "{}", "unknown section extras" },
		{ "workspace", NULL, "workspace: must be an object" },
		{ "workspace.friendlyName", NULL, "workspace: friendlyName is required" },
		{ "workspace.friendlyName", "\"\"", "friendlyName must be 1 to 64" },
		{ "workspace.eventCallbackUrl", "\"https://x\"", "unknown field eventCallbackUrl" },
		{ "workspace.multiTaskEnabled", "\"yes\"", "multiTaskEnabled must be true or" },
		{ "activities", "{}", "activities: must be an array" },
		{ "activities.1.available", "\"no\"", "activities[1]: available must be true" },
		{ "activities.2.available", NULL, "activities[2]: available is required" },
		{ "activities.3.friendlyName", "\"Busy\"", "a second activity named \"Busy\"" },
		{ "taskQueues.0.targetworkers", "\"1==1\"", "taskQueues[0]: unknown field" },
		{ "taskQueues.1.targetWorkers", NULL, "taskQueues[1]: targetWorkers is required" },
		{ "taskQueues.2.maxReservedWorkers", "0", "maxReservedWorkers must be between 1" },
		{ "taskQueues.2.maxReservedWorkers", "51", "maxReservedWorkers must be between 1" },
		{ "taskQueues.0.taskOrder", "\"RANDOM\"", "taskQueues[0]: taskOrder must be one" },
		{ "taskQueues.1.friendlyName", "\"Sales\"", "a second taskqueue named \"Sales\"" },
		{ "workflow.configuration", NULL, "workflow: configuration is required" },
		{ "workflow.configuration", "\"{}\"", "configuration must be a JSON object" },
		{ "workflow.taskReservationTimeout", "86401", "taskReservationTimeout must be" },
		{ "workflow.configuration.task_routing.default_filter.queue", "\"Nope\"",
		  "queue \"Nope\" is not one of taskQueues" },
		{ "workflow.configuration.task_routing.filters.0.targets.0.queue", "7",
		  "queue \"(not a string)\"" },
		{ "conversations.method", "\"PUT\"", "conversations: method must be one" },
		{ "conversations.filters", "[]", "filters must list 1 to 32 values" },
		{ "conversations.filters", "[\"onMessageAdded\",\"onMessageAdded\"]",
		  "filters lists onMessageAdded twice" },
		{ "conversations.filters", "[\"onMessageAdded\",\"\"]", "filters[1] must be" },
		{ "conversations.postWebhookUrl", "\"https://x\"", "unknown field postWebhookUrl" },
	};
	struct json_object	*def;
	struct nf_error		 e;
	size_t			 i;

	for (i = 0; i < NF_ARRAY_LEN(c); i++) {
		def = shipped_def();
		set_path(def, c[i].path, c[i].json);
		nf_error_clear(&e);
		ck_assert_msg(nf_provision_def_check(def, &e) == NF_EINVAL,
		    "%s = %s accepted", c[i].path, c[i].json ? c[i].json : "(removed)");
		ck_assert_str_eq(e.code, "invalid_taskrouter");
		ck_assert_msg(strstr(e.message, c[i].expect) != NULL,
		    "%s: message \"%s\" lacks \"%s\"", c[i].path, e.message, c[i].expect);
		json_object_put(def);
	}
	ck_assert_int_eq(nf_provision_def_check(NULL, &e), NF_EINVAL);
}
END_TEST

/* Refusals that need no Twilio at all: the client is never touched (NULL). */
START_TEST(refused_before_any_request)
{
	struct nf_provision_opts	 o;
	struct nf_provision_sids	 sids;
	struct nf_tenant		 t;
	struct json_object		*def = shipped_def();
	struct nf_error			 e;

	memset(&o, 0, sizeof(o));
	memset(&t, 0, sizeof(t));
	t.id = "tenant9";
	o.public_url = "https://cc.example.com";
	nf_error_clear(&e);
	ck_assert_int_eq(nf_provision_run(NULL, &t, def, &o, &sids, &e), NF_EINVAL);
	ck_assert_str_eq(e.code, "missing_setting");
	ck_assert_str_eq(e.field, "twilio.conversationsServiceSid");
	ck_assert_ptr_nonnull(strstr(e.message, "tenant9"));

	t.twilio.conversations_service_sid = "IS00000000000000000000000000000001";
	o.public_url = "http://cc.example.com";
	ck_assert_int_eq(nf_provision_run(NULL, &t, def, &o, &sids, &e), NF_EINVAL);
	ck_assert_str_eq(e.field, "PUBLIC_URL");
	ck_assert_str_eq(sids.workspace, "");

	o.public_url = "https://cc.example.com";
	set_path(def, "taskQueues.0.taskOrder", "\"FILO\"");
	ck_assert_int_eq(nf_provision_run(NULL, &t, def, &o, &sids, &e), NF_EINVAL);
	ck_assert_str_eq(e.code, "invalid_taskrouter");
	json_object_put(def);
}
END_TEST

START_TEST(action_names)
{
	ck_assert_str_eq(nf_provision_action_name(NF_PROVISION_UNCHANGED, 0), "unchanged");
	ck_assert_str_eq(nf_provision_action_name(NF_PROVISION_CREATED, 0), "created");
	ck_assert_str_eq(nf_provision_action_name(NF_PROVISION_UPDATED, 0), "updated");
	ck_assert_str_eq(nf_provision_action_name(NF_PROVISION_UNCHANGED, 1), "unchanged");
	ck_assert_str_eq(nf_provision_action_name(NF_PROVISION_CREATED, 1), "would create");
	ck_assert_str_eq(nf_provision_action_name(NF_PROVISION_UPDATED, 1), "would update");
	ck_assert_str_eq(nf_provision_action_name(NF_PROVISION__MAX, 0), "?");
}
END_TEST

int
main(void)
{
	TCase	*tc;
	Suite	*s = tu_suite("provision", &tc);

	tcase_add_test(tc, public_url);
	tcase_add_test(tc, shipped_definition_is_valid);
	tcase_add_test(tc, bad_definitions);
	tcase_add_test(tc, refused_before_any_request);
	tcase_add_test(tc, action_names);
	return tu_run(s);
}
