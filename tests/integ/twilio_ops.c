/*
 * twilio_ops.c - test driver: run one Twilio operation (twilio_api.h) or a
 * raw paginated list (nf_tw_list) for a tenant and print the outcome as
 * one JSON object on stdout.  twilio-rest.test.mjs runs it against Prism
 * mocks of Twilio's OpenAPI definitions (contract tests).
 *
 * Configuration and tenants are loaded exactly as nonflexctl loads them
 * (nf_config_load, then TENANTS_FILE), so TWILIO_*_BASE_URL and the
 * tenant's ${ENV} secrets come from the environment.  Output:
 *   {"ok":true,"op":OP,"status":S,"attempts":N,"body":{...}}   one call
 *   {"ok":true,"op":OP,"count":N,"items":[...]}                a list
 *   {"ok":true,"op":"message-find","found":{...}|null}
 *   {"ok":false,"op":OP,"error":{"class","code","field","message"},
 *    "status":S,"attempts":N,"ambiguous":0|1,"twilio_code":C}
 * Exit status 0 on success, 1 on an error, 2 on a usage error.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "config.h"
#include "json.h"
#include "log.h"
#include "nonflex.h"
#include "tenant.h"
#include "twilio_api.h"
#include "twilio_rest.h"
#include "valid.h"

struct ops {
	struct nf_tw_client	*client;
	const struct nf_tenant	*tenant;
	struct nf_tw_result	 res;     /* single calls */
	struct json_object	*items;   /* lists */
	struct json_object	*found;   /* message-find */
	int			 find;    /* the op was message-find */
};

typedef enum nf_err (*op_fn)(struct ops *, char **, struct nf_error *);

static enum nf_err
op_message_create(struct ops *o, char **a, struct nf_error *e)
{
	return nf_twapi_message_create(o->client, o->tenant, a[0], a[1], a[2], a[3], &o->res, e);
}

static enum nf_err
op_messages_list(struct ops *o, char **a, struct nf_error *e)
{
	return nf_twapi_messages_list(o->client, o->tenant, a[0], atoi(a[1]), atoi(a[2]),
	    &o->items, e);
}

static enum nf_err
op_message_find(struct ops *o, char **a, struct nf_error *e)
{
	o->find = 1;
	return nf_twapi_message_find(o->client, o->tenant, a[0], a[1], atoi(a[2]), &o->found, e);
}

static enum nf_err
op_conversation_fetch(struct ops *o, char **a, struct nf_error *e)
{
	return nf_twapi_conversation_fetch(o->client, o->tenant, a[0], &o->res, e);
}

/* A JSON argument; NULL when it is not valid JSON (the wrapper refuses). */
static struct json_object *
json_arg(const char *s)
{
	struct json_object	*v = NULL;

	nf_json_parse(s, strlen(s), &v, NULL);
	return v;
}

static enum nf_err
op_conversation_attributes(struct ops *o, char **a, struct nf_error *e)
{
	struct json_object	*attrs = json_arg(a[1]);
	enum nf_err		 rc;

	rc = nf_twapi_conversation_set_attributes(o->client, o->tenant, a[0], attrs, &o->res, e);
	json_object_put(attrs);
	return rc;
}

/* "-" leaves an optional argument unset. */
static const char *
opt(const char *s)
{
	return strcmp(s, "-") == 0 ? NULL : s;
}

static enum nf_err
op_task_create(struct ops *o, char **a, struct nf_error *e)
{
	struct nf_twapi_task	 t;
	enum nf_err		 rc;

	memset(&t, 0, sizeof(t));
	t.attributes = json_arg(a[0]);
	t.workflow_sid = opt(a[1]);
	t.priority = opt(a[2]) != NULL ? atoll(a[2]) : -1;
	t.task_channel = opt(a[3]);
	t.timeout_s = opt(a[4]) != NULL ? atoll(a[4]) : 0;
	rc = nf_twapi_task_create(o->client, o->tenant, &t, &o->res, e);
	json_object_put(t.attributes);
	return rc;
}

static enum nf_err
op_task_update(struct ops *o, char **a, struct nf_error *e)
{
	return nf_twapi_task_update(o->client, o->tenant, a[0], a[1], opt(a[2]), &o->res, e);
}

static enum nf_err
op_reservation_update(struct ops *o, char **a, struct nf_error *e)
{
	return nf_twapi_reservation_update(o->client, o->tenant, a[0], a[1], a[2], &o->res, e);
}

static enum nf_err
op_worker_activity(struct ops *o, char **a, struct nf_error *e)
{
	return nf_twapi_worker_set_activity(o->client, o->tenant, a[0], a[1], &o->res, e);
}

static enum nf_err
op_workers_list(struct ops *o, char **a, struct nf_error *e)
{
	return nf_twapi_workers_list(o->client, o->tenant, atoi(a[0]), &o->items, e);
}

static enum nf_err
op_account_fetch(struct ops *o, char **a, struct nf_error *e)
{
	(void)a;
	return nf_twapi_account_fetch(o->client, o->tenant, &o->res, e);
}

static enum nf_err
op_call_redirect(struct ops *o, char **a, struct nf_error *e)
{
	return nf_twapi_call_redirect(o->client, o->tenant, a[0], a[1], opt(a[2]), &o->res, e);
}

static enum nf_err
op_list(struct ops *o, char **a, struct nf_error *e)
{
	static const char *const products[] = { "api", "conversations", "taskrouter", "video",
	    "studio", NULL };
	int	 p = nf_valid_enum(a[0], products);

	if (p < 0)
		return nf_error_set(e, NF_EINVAL, "invalid_field", "product", "unknown product");
	return nf_tw_list(o->client, o->tenant, (enum nf_tw_product)p, a[1], a[2], atoi(a[3]),
	    &o->items, e);
}

static const struct {
	const char	*name;
	op_fn		 fn;
	int		 argc;
	const char	*usage;
} ops[] = {
	{ "message-create", op_message_create, 4, "CH AUTHOR BODY MESSAGE_ID" },
	{ "messages-list", op_messages_list, 3, "CH PAGE_SIZE MAX_PAGES" },
	{ "message-find", op_message_find, 3, "CH MESSAGE_ID MAX_PAGES" },
	{ "conversation-fetch", op_conversation_fetch, 1, "CH" },
	{ "conversation-attributes", op_conversation_attributes, 2, "CH JSON" },
	{ "task-create", op_task_create, 5, "ATTRS_JSON WW|- PRIORITY|- CHANNEL|- TIMEOUT|-" },
	{ "task-update", op_task_update, 3, "WT STATUS REASON|-" },
	{ "reservation-update", op_reservation_update, 3, "WT WR STATUS" },
	{ "worker-activity", op_worker_activity, 2, "WK WA" },
	{ "workers-list", op_workers_list, 1, "MAX_PAGES" },
	{ "account-fetch", op_account_fetch, 0, "" },
	{ "call-redirect", op_call_redirect, 3, "CA URL METHOD|-" },
	{ "list", op_list, 4, "PRODUCT PATH KEY MAX_PAGES" },
};

static void
usage(void)
{
	size_t	 i;

	fprintf(stderr, "usage: twilio_ops [--tenant ID] OP ARGS...\n");
	for (i = 0; i < NF_ARRAY_LEN(ops); i++)
		fprintf(stderr, "  %s %s\n", ops[i].name, ops[i].usage);
}

static void
print(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

static void
report(const char *op, struct ops *o, enum nf_err rc, const struct nf_error *e)
{
	struct json_object	*out = json_object_new_object(), *err;

	nf_json_add_bool(out, "ok", rc == NF_OK);
	nf_json_add_str(out, "op", op);
	if (rc != NF_OK) {
		err = json_object_new_object();
		nf_json_add_str(err, "class", nf_strerror(rc));
		nf_json_add_str(err, "code", e->code);
		nf_json_add_str(err, "field", e->field);
		nf_json_add_str(err, "message", e->message);
		nf_json_add(out, "error", err);
		nf_json_add_int(out, "ambiguous", o->res.ambiguous);
		nf_json_add_int(out, "twilio_code", o->res.code);
	}
	if (o->items != NULL) {
		nf_json_add_int(out, "count", (int64_t)json_object_array_length(o->items));
		nf_json_add(out, "items", json_object_get(o->items));
	} else if (o->find) {
		nf_json_add(out, "found", json_object_get(o->found));
	} else {
		nf_json_add_int(out, "status", o->res.status);
		nf_json_add_int(out, "attempts", o->res.attempts);
		if (o->res.body != NULL)
			nf_json_add(out, "body", json_object_get(o->res.body));
	}
	print(out);
	json_object_put(out);
}

/* Config, tenants and client, as nonflexctl loads them; 0 or 1. */
static int
setup(struct nf_config *cfg, struct nf_tenants **tenants, const char *tenant_id,
    struct ops *o)
{
	struct nf_error	 e;

	if (nf_config_load(cfg, &e) != NF_OK) {
		fprintf(stderr, "twilio_ops: %s: %s\n", e.field, e.message);
		return 1;
	}
	nf_log_init("twilio_ops", (enum nf_log_level)cfg->log_level);
	if (nf_tenants_load(cfg->tenants_file, tenants, &e) != NF_OK) {
		fprintf(stderr, "twilio_ops: tenants file %s: %s\n", cfg->tenants_file, e.message);
		return 1;
	}
	if ((o->tenant = nf_tenant_find(*tenants, tenant_id)) == NULL) {
		fprintf(stderr, "twilio_ops: unknown tenant %s\n", tenant_id);
		return 1;
	}
	if (nf_tw_client_new(cfg, &o->client, &e) != NF_OK) {
		fprintf(stderr, "twilio_ops: %s\n", e.message);
		return 1;
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	static const struct option	 lopts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	struct nf_config	 cfg;
	struct nf_tenants	*tenants = NULL;
	struct nf_error		 e;
	struct ops		 o;
	const char		*tenant_id = "tenant1";
	enum nf_err		 rc;
	size_t			 i;
	int			 ch, status = 1;

	memset(&cfg, 0, sizeof(cfg));
	memset(&o, 0, sizeof(o));
	nf_error_clear(&e);
	nf_log_init("twilio_ops", NF_LOG_WARN);
	while ((ch = getopt_long(argc, argv, "t:", lopts, NULL)) != -1) {
		if (ch != 't') {
			usage();
			return 2;
		}
		tenant_id = optarg;
	}
	for (i = 0; optind < argc && i < NF_ARRAY_LEN(ops); i++)
		if (strcmp(argv[optind], ops[i].name) == 0)
			break;
	if (optind >= argc || i == NF_ARRAY_LEN(ops) || argc - optind - 1 != ops[i].argc) {
		usage();
		return 2;
	}
	if (setup(&cfg, &tenants, tenant_id, &o) == 0) {
		rc = ops[i].fn(&o, argv + optind + 1, &e);
		report(ops[i].name, &o, rc, &e);
		status = rc == NF_OK ? 0 : 1;
	}
	nf_tw_result_cleanup(&o.res);
	json_object_put(o.items);
	json_object_put(o.found);
	nf_tw_client_free(o.client);
	nf_tenants_free(tenants);
	nf_config_cleanup(&cfg);
	return status;
}
