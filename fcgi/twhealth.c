/*
 * twhealth.c - the per-tenant "Twilio refused our credentials" flag (see
 * twhealth.h): set once per episode in Redis, announced once, cleared by
 * the next success.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>

#include "app.h"
#include "audit.h"
#include "events.h"
#include "json.h"
#include "kv.h"
#include "log.h"
#include "nonflex.h"
#include "tenant.h"
#include "twhealth.h"

#define ACTOR	"nonflex-jobs"
#define TOPIC	"queue"         /* every staff member of the tenant listens */

/* Audit and publish ev for t with data (consumed). */
static void
announce(struct nf_app *app, const struct nf_tenant *t, const char *ev,
    struct json_object *data)
{
	struct nf_store	*st;
	struct nf_error	 e;

	if (nf_events_publish(t->id, TOPIC, ev, data, &e) != NF_OK)
		nf_warn("tenant %s: cannot publish %s: %s", t->id, ev, e.message);
	if (nf_app_store(app, &st, &e) == NF_OK)
		nf_audit_store(st, t->id, ACTOR, ev, NULL, data);   /* consumes data */
	else {
		nf_warn("tenant %s: %s not audited: %s", t->id, ev, e.message);
		json_object_put(data);
	}
}

void
nf_twhealth_refused(struct nf_app *app, const struct nf_tenant *t, long status, int code,
    const char *message)
{
	struct json_object	*flag;
	struct redisReply	*r = NULL;
	struct nf_kv		*kv = nf_app_kv(app);
	struct nf_error		 e;
	char			*key, at[25];
	int			 first;

	if (t == NULL || (key = nf_kv_key(t->id, "twilio", "health")) == NULL)
		return;
	nf_iso8601(nf_now_ms(), at);
	flag = json_object_new_object();
	nf_json_add_str(flag, "status", "misconfigured");
	nf_json_add_int(flag, "code", code);
	nf_json_add_int(flag, "httpStatus", status);
	nf_json_add_str(flag, "message", message != NULL && *message != '\0' ? message :
	    "Twilio refused the tenant's credentials");
	nf_json_add_str(flag, "since", at);
	if (kv == NULL || nf_kv_command(kv, &r, &e, "SET %s %s NX", key,
	    nf_json_str(flag, NULL)) != NF_OK) {
		/* Redis down: announce every time rather than never */
		first = 1;
	} else
		first = r->type == REDIS_REPLY_STATUS;
	if (r != NULL)
		freeReplyObject(r);
	free(key);
	if (!first) {
		json_object_put(flag);
		return;
	}
	nf_error("tenant %s: Twilio refused the credentials (HTTP %ld, Twilio code %d); "
	    "deliveries wait until they are fixed", t->id, status, code);
	announce(app, t, "twilio.misconfigured", flag);
}

void
nf_twhealth_ok(struct nf_app *app, const struct nf_tenant *t)
{
	struct redisReply	*r = NULL;
	struct nf_kv		*kv = nf_app_kv(app);
	struct nf_error		 e;
	struct json_object	*data;
	char			*key;
	int			 was;

	if (t == NULL || kv == NULL || (key = nf_kv_key(t->id, "twilio", "health")) == NULL)
		return;
	was = nf_kv_command(kv, &r, &e, "DEL %s", key) == NF_OK &&
	    r->type == REDIS_REPLY_INTEGER && r->integer > 0;
	if (r != NULL)
		freeReplyObject(r);
	free(key);
	if (!was)
		return;
	nf_info("tenant %s: Twilio accepts the credentials again", t->id);
	data = json_object_new_object();
	nf_json_add_str(data, "status", "ok");
	announce(app, t, "twilio.recovered", data);
}

enum nf_err
nf_twhealth_get(struct nf_kv *kv, const char *tenant, struct json_object **out,
    struct nf_error *e)
{
	struct redisReply	*r = NULL;
	char			*key;
	enum nf_err		 rc;

	*out = NULL;
	if (kv == NULL)
		return nf_error_set(e, NF_EUNAVAIL, "redis_unavailable", NULL,
		    "Redis is not configured");
	if ((key = nf_kv_key(tenant, "twilio", "health")) == NULL)
		return nf_error_set(e, NF_EINVAL, "invalid_tenant_id", NULL, "bad tenant id");
	rc = nf_kv_command(kv, &r, e, "GET %s", key);
	free(key);
	if (rc == NF_OK && r->type == REDIS_REPLY_STRING &&
	    nf_json_parse(r->str, r->len, out, NULL) == NF_OK &&
	    !json_object_is_type(*out, json_type_object)) {
		json_object_put(*out);
		*out = NULL;
	}
	if (r != NULL)
		freeReplyObject(r);
	if (rc != NF_OK)
		return rc;
	if (*out == NULL) {
		*out = json_object_new_object();
		nf_json_add_str(*out, "status", "ok");
	}
	return NF_OK;
}
