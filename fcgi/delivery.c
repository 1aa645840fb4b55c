/*
 * delivery.c - the "conv.deliver" and "conv.task" jobs (delivery.h): bot
 * and agent messages to the Twilio Conversation, and the TaskRouter task
 * of a handoff.  Runs only in nonflex-jobs.
 *
 * DESIGN: a message is posted at most once to the customer.  Before each
 * post the message's "attempts" counter is raised in the store, so a run
 * that finds it above zero knows an earlier run may have reached Twilio
 * (an ambiguous answer, or a runner lost mid-call) and first looks the
 * message up by our id (nf_twapi_message_find), resending only when
 * Twilio does not have it.  Outcomes map to the runner's contract
 * (jobs.h): NF_OK when sent (or already sent), NF_EINVAL for what can
 * never succeed (the message is marked failed at once: a Twilio 4xx such
 * as 21211, a missing SID, a tenant without Conversations), any other
 * error to be retried with backoff (429, Twilio down, an ambiguous post
 * Twilio does not have).  The last attempt marks the message failed before
 * returning its error, so the inbox shows it with a retry action
 * (h_delivery.c) while the job goes to the dead letters.  Except for an
 * outage: when the last attempt could not reach Twilio at all (connection
 * refused, DNS, still rate limited) the message is handed to a new job due
 * after the runners' longest backoff (park()), for up to a day, so
 * nothing written while Twilio is down is lost or failed.
 *
 * Reconciliation walks the conversation's messages newest first and stops
 * at our id, or at the first message older than the message's first
 * attempt (firstAttemptAt, less RECONCILE_SKEW_MS for the clocks'
 * difference): Twilio cannot hold our message before we first sent it, so
 * that proves it does not have it, however long the conversation.
 *
 * Credentials refused (battery 27): a 401/403 from any call for tenant T
 * flags T misconfigured (twhealth.h: logged, audited, announced) and parks
 * the job like an outage, whatever its attempt number, so T's messages
 * and handoff tasks neither burn their attempts nor reach the dead
 * letters while someone fixes the tenants file (SIGHUP reloads it); the
 * next successful call clears the flag and the parked jobs go out on
 * their next run.  Other tenants' jobs never look at T's state.
 *
 * The task of a handoff is created at most once, too.  TaskRouter cannot
 * cheaply find a task by our id, so the conversation is marked
 * "taskPending" before the create: a create that fails before reaching
 * Twilio clears the mark and is retried; an ambiguous one (or a rerun
 * that finds the mark: the runner died mid-call) leaves it and is not
 * resent.  Trade-off: a second task would offer one chat to two agents,
 * while a missing task only leaves the conversation in the inbox's queue,
 * where agents claim it anyway; the job is dead-lettered so operators see
 * it.  The Twilio Conversation's attributes then get the conversation's
 * aiEnabled (false after a handoff), merged into what is there.
 *
 * The Twilio client (libcurl) is one per process, made on first use and
 * kept for connection reuse: nothing the FastCGI workers link refers to
 * this file.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "app.h"
#include "conversations.h"
#include "delivery.h"
#include "jobs.h"
#include "json.h"
#include "log.h"
#include "nonflex.h"
#include "store.h"
#include "tenant.h"
#include "twilio_api.h"
#include "twilio_rest.h"
#include "twhealth.h"
#include "valid.h"

/* Reconciliation reads at most this many pages of 100 messages... */
#define RECONCILE_MAX_PAGES	100
/* ...newer than the first attempt less this margin for clock skew. */
#define RECONCILE_SKEW_MS	(10LL * 60 * 1000)
#define TASK_TIMEOUT_S	86400   /* a chat task waits a day at most */
/* How long a message waits out a Twilio outage before it is failed. */
#define DELIVERY_PATIENCE_MS	(24LL * 3600 * 1000)

static struct nf_tw_client	*client;

static void
client_free(void)
{
	nf_tw_client_free(client);
	client = NULL;
}

/* The process's Twilio client, made from app's settings on first use. */
static enum nf_err
tw_client(struct nf_app *app, struct nf_tw_client **out, struct nf_error *e)
{
	enum nf_err	rc;

	if (client == NULL) {
		if ((rc = nf_tw_client_new(&app->cfg, &client, e)) != NF_OK)
			return rc;
		atexit(client_free);
	}
	*out = client;
	return NF_OK;
}

/* A 24-hex id from the payload; NF_EINVAL naming it otherwise. */
static enum nf_err
payload_id(const struct nf_job *j, const char *field, const char **out, struct nf_error *e)
{
	if (nf_json_get_string(j->payload, field, 24, 24, 1, out, e) != NF_OK ||
	    !nf_valid_hex24(*out))
		return nf_error_set(e, NF_EINVAL, "invalid_payload", field,
		    "%s: %s must be a 24-hex id", j->type, field);
	return NF_OK;
}

static enum nf_err
job_tenant(struct nf_app *app, const struct nf_job *j, const struct nf_tenant **t,
    struct nf_error *e)
{
	if ((*t = nf_tenant_find(app->tenants, j->tenant)) == NULL)
		return nf_error_set(e, NF_EINVAL, "tenant_not_found", NULL,
		    "%s: unknown tenant", j->type);
	return NF_OK;
}

/* ---- conv.deliver ---------------------------------------------------- */

/* One delivery: what the job is about. */
struct dlv {
	struct nf_app		*app;
	const struct nf_tenant	*t;
	const struct nf_job	*j;
	const char		*msg_id;
	struct json_object	*msg;           /* the message document */
	const char		*ch;            /* the conversation's CH... */
};

static enum nf_err
msg_load(struct nf_app *app, const struct nf_tenant *t, const char *id,
    struct json_object **out, struct nf_error *e)
{
	struct json_object	*f;
	struct nf_store		*st;
	enum nf_err		 rc;

	*out = NULL;
	if ((rc = nf_conv_store(app, &st, e)) != NF_OK)
		return rc;
	f = nf_json_pair("_id", id);
	rc = nf_store_find_one(st, t->id, "messages", f, NULL, out, e);
	json_object_put(f);
	if (rc == NF_ENOTFOUND)
		rc = nf_error_set(e, NF_EINVAL, "message_not_found", "messageId",
		    "conv.deliver: no such message");
	return rc;
}

/* Raise the message's attempts before a post (see DESIGN). */
static enum nf_err
msg_count_attempt(const struct dlv *d, struct nf_error *e)
{
	struct json_object	*f, *u, *inc, *set;
	struct nf_store		*st;
	enum nf_err		 rc;

	if ((rc = nf_conv_store(d->app, &st, e)) != NF_OK)
		return rc;
	f = nf_json_pair("_id", d->msg_id);
	inc = json_object_new_object();
	nf_json_add_int(inc, "attempts", 1);
	u = json_object_new_object();
	nf_json_add(u, "$inc", inc);
	if (!json_object_object_get_ex(d->msg, "firstAttemptAt", NULL)) {
		/* also in d->msg: this run's own reconciliation needs it */
		int64_t	now = nf_now_ms();

		set = json_object_new_object();
		nf_json_add_int(set, "firstAttemptAt", now);
		nf_json_add(u, "$set", set);
		nf_json_add_int(d->msg, "firstAttemptAt", now);
	}
	rc = nf_store_update(st, d->t->id, "messages", f, u, 0, NULL, e);
	json_object_put(u);
	json_object_put(f);
	return rc;
}

static enum nf_err
mark_sent(const struct dlv *d, const char *sid, struct nf_error *e)
{
	enum nf_err	rc;

	if ((rc = nf_conv_delivery(d->app, d->t, d->msg_id, sid, "sent", NULL, e)) == NF_OK)
		nf_info("conv.deliver: message %s sent as %s", d->msg_id,
		    sid != NULL ? sid : "(no sid)");
	return rc;
}

/* Mark the message failed with why and return rc (a failure to mark is
 * logged: the job's own error is what the runner must see). */
static enum nf_err
mark_failed(const struct dlv *d, enum nf_err rc, const char *why)
{
	struct nf_error	e2;

	if (nf_conv_delivery(d->app, d->t, d->msg_id, NULL, "failed", why, &e2) != NF_OK)
		nf_warn("conv.deliver: message %s: cannot mark it failed: %s", d->msg_id,
		    e2.message);
	else
		nf_warn("conv.deliver: message %s failed: %s", d->msg_id, why);
	return rc;
}

/* Why a Twilio call failed, for the inbox: Twilio's code and message
 * when it answered one, our error otherwise. */
static void
why_of(const struct nf_tw_result *o, const struct nf_error *e, char *buf, size_t sz)
{
	if (o != NULL && o->code != 0)
		snprintf(buf, sz, "twilio %d: %s", o->code, o->message);
	else
		snprintf(buf, sz, "%s: %s", e->code, e->message);
}

/* Tell twhealth.h how Twilio answered a call for t. */
static void
twilio_seen(struct nf_app *app, const struct nf_tenant *t, enum nf_err rc,
    const struct nf_tw_result *o)
{
	if (rc == NF_OK)
		nf_twhealth_ok(app, t);
	else if (rc == NF_EAUTH)
		nf_twhealth_refused(app, t, o->status, o->code, o->message);
}

/*
 * Submit job type for d's tenant again with payload p (consumed) plus the
 * first job's time ("since"), due after the runners' longest backoff.
 * NF_ETOOBIG once DELIVERY_PATIENCE_MS have passed since that time.
 */
static enum nf_err
requeue(struct nf_app *app, const struct nf_tenant *t, const struct nf_job *j,
    struct json_object *p, struct nf_error *e)
{
	struct nf_jobs_config	 cfg;
	struct nf_store		*st;
	int64_t			 since = j->enqueued_at;
	enum nf_err		 rc;
	int			 deferred = 0;

	if (nf_json_get_int(j->payload, "since", 0, INT64_MAX, 0, &since, e) != NF_OK ||
	    nf_now_ms() - since > DELIVERY_PATIENCE_MS) {
		json_object_put(p);
		return NF_ETOOBIG;
	}
	if (nf_jobs_config_env(&cfg, e) != NF_OK)
		nf_jobs_config_defaults(&cfg);
	if ((rc = nf_conv_store(app, &st, e)) != NF_OK) {
		json_object_put(p);
		return rc;
	}
	nf_json_add_int(p, "since", since);
	rc = nf_jobs_submit(st, nf_app_kv(app), t->id, j->type, p, cfg.backoff_max_ms, NULL,
	    &deferred, e);
	json_object_put(p);
	if (rc == NF_OK)
		nf_info("%s: tenant %s: Twilio unreachable or refusing; trying again in %lld ms",
		    j->type, t->id, (long long)cfg.backoff_max_ms);
	return rc;
}

/*
 * The last attempt failed because Twilio could not be reached (or kept
 * rate limiting): hand the message to a new job due after the runners'
 * longest backoff, so an outage of any length up to DELIVERY_PATIENCE_MS
 * loses nothing.  The first job's time travels in the payload ("since").
 */
static enum nf_err
park(const struct dlv *d, struct nf_error *e)
{
	struct json_object	*p = json_object_new_object();

	nf_json_add_str(p, "conversationId", nf_json_field_str(d->msg, "conversationId"));
	nf_json_add_str(p, "messageId", d->msg_id);
	return requeue(d->app, d->t, d->j, p, e);
}

/*
 * A run that did not deliver: permanent (NF_EINVAL) errors and the last
 * attempt mark the message failed, except that a Twilio outage (nothing
 * sent, or rate limited) parks the message for a later job instead, and
 * refused credentials (NF_EAUTH) park it at once; anything else is left
 * to the runner's retry.
 */
static enum nf_err
not_delivered(const struct dlv *d, enum nf_err rc, const char *why)
{
	struct nf_error	e2;

	if (rc == NF_EAUTH && park(d, &e2) == NF_OK)
		return NF_OK;
	if (rc != NF_EINVAL && d->j->attempts + 1 >= d->j->max_attempts &&
	    (rc == NF_EUNAVAIL || rc == NF_ERATE) && park(d, &e2) == NF_OK)
		return NF_OK;
	if (rc == NF_EINVAL || d->j->attempts + 1 >= d->j->max_attempts)
		return mark_failed(d, rc, why);
	nf_info("conv.deliver: message %s not delivered yet (attempt %d of %d): %s",
	    d->msg_id, d->j->attempts + 1, d->j->max_attempts, why);
	return rc;
}

/*
 * Look the message up at Twilio by our id: *found 1 (and the message
 * marked sent) when Twilio has it.
 */
static enum nf_err
reconcile(const struct dlv *d, struct nf_tw_client *c, int *found, struct nf_error *e)
{
	struct json_object	*hit = NULL, *v;
	struct nf_tw_result	 o;
	int64_t			 bound = INT64_MIN;
	enum nf_err		 rc;

	*found = 0;
	/* messages queued before firstAttemptAt existed: no bound */
	if (json_object_object_get_ex(d->msg, "firstAttemptAt", &v) &&
	    json_object_is_type(v, json_type_int))
		bound = json_object_get_int64(v) - RECONCILE_SKEW_MS;
	rc = nf_twapi_message_find_since(c, d->t, d->ch, d->msg_id, bound,
	    RECONCILE_MAX_PAGES, &hit, &o, e);
	twilio_seen(d->app, d->t, rc, &o);
	nf_tw_result_cleanup(&o);
	if (rc != NF_OK)
		return rc;
	if (hit != NULL) {
		*found = 1;
		nf_info("conv.deliver: message %s found at Twilio", d->msg_id);
		rc = mark_sent(d, nf_json_field_str(hit, "sid"), e);
		json_object_put(hit);
	}
	return rc;
}

/* Map a failed create to the runner's contract (see DESIGN). */
static enum nf_err
create_failed(const struct dlv *d, struct nf_tw_client *c, enum nf_err rc,
    const struct nf_tw_result *o, struct nf_error *e)
{
	char	why[320];
	int	found;

	why_of(o, e, why, sizeof(why));
	if (o->ambiguous) {
		nf_warn("conv.deliver: message %s: outcome unknown (%s); looking it up",
		    d->msg_id, why);
		if ((rc = reconcile(d, c, &found, e)) != NF_OK) {
			why_of(NULL, e, why, sizeof(why));
			return not_delivered(d, rc, why);
		}
		if (found)
			return NF_OK;
		/* not NF_EUNAVAIL: Twilio answered, so this is no outage to park */
		return not_delivered(d, nf_error_set(e, NF_EUPSTREAM, "twilio_error",
		    NULL, "conv.deliver: Twilio does not have the message; resending later"),
		    why);
	}
	switch (rc) {
	case NF_EAUTH:          /* the tenant's credentials: park (see DESIGN) */
	case NF_ERATE:
	case NF_EUNAVAIL:
	case NF_ENOMEM:
	case NF_ESYSTEM:
		return not_delivered(d, rc, why);
	default:        /* 4xx, 404, a bad argument: never succeeds */
		return not_delivered(d, nf_error_set(e, NF_EINVAL, "twilio_refused", NULL,
		    "conv.deliver: %s", why), why);
	}
}

/* Post the queued message d->msg (see DESIGN). */
static enum nf_err
deliver(struct dlv *d, struct nf_error *e)
{
	struct nf_tw_client	*c;
	struct nf_tw_result	 o;
	struct json_object	*v;
	const char		*author, *body;
	char			 why[320];
	enum nf_err		 rc;
	int			 found;

	if (tw_client(d->app, &c, e) != NF_OK)
		return mark_failed(d, NF_EINVAL, "twilio_not_configured: bad Twilio settings");
	if (json_object_object_get_ex(d->msg, "attempts", &v) && json_object_get_int64(v) > 0) {
		if ((rc = reconcile(d, c, &found, e)) != NF_OK) {
			why_of(NULL, e, why, sizeof(why));
			return not_delivered(d, rc, why);
		}
		if (found)
			return NF_OK;
	}
	if ((rc = msg_count_attempt(d, e)) != NF_OK)
		return rc;
	author = nf_json_field_str(d->msg, "author");
	if (author == NULL || *author == '\0')
		author = "bot";
	body = nf_json_field_str(d->msg, "body");
	rc = nf_twapi_message_create(c, d->t, d->ch, author, body != NULL ? body : "",
	    d->msg_id, &o, e);
	twilio_seen(d->app, d->t, rc, &o);
	if (rc == NF_OK)
		rc = mark_sent(d, nf_json_field_str(o.body, "sid"), e);
	else
		rc = create_failed(d, c, rc, &o, e);
	nf_tw_result_cleanup(&o);
	return rc;
}

/* Whether d->msg still needs delivering: *todo 0 when it is done. */
static enum nf_err
check_message(struct dlv *d, const char *conv_id, int *todo, struct nf_error *e)
{
	const char	*dir, *cid, *state;

	*todo = 0;
	dir = nf_json_field_str(d->msg, "direction");
	cid = nf_json_field_str(d->msg, "conversationId");
	if (dir == NULL || strcmp(dir, "outbound") != 0 || cid == NULL ||
	    strcmp(cid, conv_id) != 0)
		return nf_error_set(e, NF_EINVAL, "invalid_message", "messageId",
		    "conv.deliver: not an outbound message of this conversation");
	state = nf_json_field_str(d->msg, "delivery");
	/* sent, delivered, read: done; failed: a stale job (the retry route
	 * queues a new one after setting it back to queued) */
	*todo = state == NULL || strcmp(state, "queued") == 0;
	if (!*todo)
		nf_info("conv.deliver: message %s is %s; nothing to do", d->msg_id, state);
	return NF_OK;
}

enum nf_err
nf_delivery_job(const struct nf_job *j, void *arg, struct nf_error *e)
{
	struct dlv		 d = { .app = arg, .j = j };
	struct json_object	*conv = NULL;
	const char		*conv_id;
	enum nf_err		 rc;
	int			 todo;

	if ((rc = payload_id(j, "conversationId", &conv_id, e)) != NF_OK ||
	    (rc = payload_id(j, "messageId", &d.msg_id, e)) != NF_OK ||
	    (rc = job_tenant(d.app, j, &d.t, e)) != NF_OK ||
	    (rc = msg_load(d.app, d.t, d.msg_id, &d.msg, e)) != NF_OK ||
	    (rc = check_message(&d, conv_id, &todo, e)) != NF_OK || !todo)
		goto out;
	if ((rc = nf_conv_get(d.app, d.t, conv_id, &conv, e)) != NF_OK) {
		if (rc == NF_ENOTFOUND)
			rc = mark_failed(&d, nf_error_set(e, NF_EINVAL, "conversation_not_found",
			    "conversationId", "conv.deliver: no such conversation"),
			    "conversation_not_found");
		goto out;
	}
	d.ch = nf_json_field_str(conv, "twilioSid");
	if (d.ch == NULL || d.t->twilio.conversations_service_sid == NULL) {
		rc = nf_error_set(e, NF_EINVAL, "twilio_not_configured", NULL,
		    "conv.deliver: no Twilio Conversation for this conversation");
		rc = mark_failed(&d, rc, "twilio_not_configured");
		goto out;
	}
	rc = deliver(&d, e);
out:
	json_object_put(conv);
	json_object_put(d.msg);
	return rc;
}

/* ---- conv.task ------------------------------------------------------- */

/* Set (pending 1: only when neither taskSid nor the mark is there) or
 * clear the conversation's taskPending mark.  *won 1 when it changed. */
static enum nf_err
task_mark(struct nf_app *app, const struct nf_tenant *t, const char *conv_id, int pending,
    int *won, struct nf_error *e)
{
	struct json_object	*f, *u, *op, *doc = NULL;
	struct nf_store		*st;
	enum nf_err		 rc;

	*won = 0;
	if ((rc = nf_conv_store(app, &st, e)) != NF_OK)
		return rc;
	f = nf_json_pair("_id", conv_id);
	op = json_object_new_object();
	if (pending) {
		nf_json_add(f, "taskSid", NULL);
		nf_json_add(f, "taskPending", NULL);
		nf_json_add_int(op, "taskPending", nf_now_ms());
	} else
		nf_json_add_str(op, "taskPending", "");
	u = json_object_new_object();
	nf_json_add(u, pending ? "$set" : "$unset", op);
	rc = nf_store_find_and_modify(st, t->id, "conversations", f, NULL, u, 0, &doc, e);
	*won = rc == NF_OK;
	if (rc == NF_ENOTFOUND)
		rc = NF_OK;
	json_object_put(doc);
	json_object_put(u);
	json_object_put(f);
	return rc;
}

/* $set set and $unset unset (either NULL; both consumed) on conversation
 * conv_id. */
static enum nf_err
conv_update(struct nf_app *app, const struct nf_tenant *t, const char *conv_id,
    struct json_object *set, struct json_object *unset, struct nf_error *e)
{
	struct json_object	*f, *u = json_object_new_object();
	struct nf_store		*st;
	enum nf_err		 rc;

	if (set != NULL)
		nf_json_add(u, "$set", set);
	if (unset != NULL)
		nf_json_add(u, "$unset", unset);
	if ((rc = nf_conv_store(app, &st, e)) == NF_OK) {
		f = nf_json_pair("_id", conv_id);
		rc = nf_store_update(st, t->id, "conversations", f, u, 0, NULL, e);
		json_object_put(f);
	}
	json_object_put(u);
	return rc;
}

/* Record the created task's SID and drop the mark. */
static enum nf_err
task_record(struct nf_app *app, const struct nf_tenant *t, const char *conv_id,
    const char *task_sid, struct nf_error *e)
{
	return conv_update(app, t, conv_id, nf_json_pair("taskSid", task_sid),
	    nf_json_pair("taskPending", ""), e);
}

static struct json_object *
task_attributes(const struct nf_tenant *t, struct json_object *conv, const char *conv_id)
{
	struct json_object	*a = json_object_new_object();
	const char		*lang = t->ai.language != NULL ? t->ai.language : "en";

	nf_json_add_str(a, "type", "chat");
	nf_json_add_str(a, "channel", nf_json_field_str(conv, "channel"));
	nf_json_add_str(a, "conversationId", conv_id);
	nf_json_add_str(a, "conversation_sid", nf_json_field_str(conv, "twilioSid"));
	nf_json_add_str(a, "language", lang);
	nf_json_add_str(a, "customerId", nf_json_field_str(conv, "customerId"));
	return a;
}

/* Create the handoff's task once (see DESIGN). */
static enum nf_err
task_create(struct nf_app *app, const struct nf_tenant *t, struct json_object *conv,
    const char *conv_id, struct nf_tw_client *c, struct nf_error *e)
{
	struct nf_twapi_task	 task = { .priority = -1, .timeout_s = TASK_TIMEOUT_S };
	struct nf_tw_result	 o;
	struct json_object	*v;
	enum nf_err		 rc;
	int			 won, undo;

	if ((rc = task_mark(app, t, conv_id, 1, &won, e)) != NF_OK)
		return rc;
	if (!won)
		return nf_error_set(e, NF_EINVAL, "task_outcome_unknown", NULL,
		    "conv.task: an earlier run may have created the task; not resending");
	task.attributes = task_attributes(t, conv, conv_id);
	if (json_object_object_get_ex(conv, "priority", &v) && json_object_is_type(v, json_type_int))
		task.priority = json_object_get_int64(v) < 0 ? 0 : json_object_get_int64(v);
	rc = nf_twapi_task_create(c, t, &task, &o, e);
	twilio_seen(app, t, rc, &o);
	json_object_put(task.attributes);
	if (rc == NF_OK) {
		nf_info("conv.task: conversation %s: task %s", conv_id,
		    nf_json_field_str(o.body, "sid") != NULL ? nf_json_field_str(o.body, "sid") : "(no sid)");
		rc = task_record(app, t, conv_id, nf_json_field_str(o.body, "sid"), e);
	} else if (o.ambiguous) {
		nf_warn("conv.task: conversation %s: task create outcome unknown; not resending",
		    conv_id);
		rc = nf_error_set(e, NF_EINVAL, "task_outcome_unknown", NULL,
		    "conv.task: the task create's outcome is unknown; not resending");
	} else {
		/* nothing was created: let the next run try again */
		struct nf_error	e2;

		if (task_mark(app, t, conv_id, 0, &undo, &e2) != NF_OK)
			nf_warn("conv.task: conversation %s: cannot clear the mark: %s",
			    conv_id, e2.message);
		if (rc == NF_EUPSTREAM || rc == NF_ENOTFOUND)
			rc = NF_EINVAL;         /* Twilio refused it: never succeeds */
	}
	nf_tw_result_cleanup(&o);
	return rc;
}

/* Drop the conversation's twilioAttributesPending (set by the handoff
 * until Twilio has the flag). */
static enum nf_err
ai_flag_done(struct nf_app *app, const struct nf_tenant *t, const char *conv_id,
    struct nf_error *e)
{
	return conv_update(app, t, conv_id, NULL, nf_json_pair("twilioAttributesPending", ""),
	    e);
}

static enum nf_err
ai_flag(struct nf_app *app, const struct nf_tenant *t, struct json_object *conv,
    struct nf_tw_client *c, struct nf_error *e)
{
	struct nf_tw_result	 o;
	struct json_object	*attrs = NULL, *v;
	const char		*ch = nf_json_field_str(conv, "twilioSid"), *s;
	enum nf_err		 rc;
	int			 ai = 0;

	rc = nf_twapi_conversation_fetch(c, t, ch, &o, e);
	twilio_seen(app, t, rc, &o);
	if (rc != NF_OK)
		goto out;
	s = nf_json_field_str(o.body, "attributes");
	if (s == NULL || nf_json_parse(s, strlen(s), &attrs, e) != NF_OK ||
	    !json_object_is_type(attrs, json_type_object)) {
		json_object_put(attrs);
		attrs = json_object_new_object();
	}
	nf_tw_result_cleanup(&o);
	if (json_object_object_get_ex(conv, "aiEnabled", &v))
		ai = json_object_get_boolean(v);
	json_object_object_del(attrs, "aiEnabled");
	nf_json_add_bool(attrs, "aiEnabled", ai);
	rc = nf_twapi_conversation_set_attributes(c, t, ch, attrs, &o, e);
	twilio_seen(app, t, rc, &o);
out:
	if (rc == NF_EUPSTREAM || rc == NF_ENOTFOUND)
		rc = NF_EINVAL;
	nf_tw_result_cleanup(&o);
	json_object_put(attrs);
	return rc;
}

enum nf_err
nf_delivery_task_job(const struct nf_job *j, void *arg, struct nf_error *e)
{
	struct nf_app		*app = arg;
	const struct nf_tenant	*t;
	struct nf_tw_client	*c;
	struct json_object	*conv = NULL;
	const char		*conv_id, *status, *task_sid;
	enum nf_err		 rc;

	if ((rc = payload_id(j, "conversationId", &conv_id, e)) != NF_OK ||
	    (rc = job_tenant(app, j, &t, e)) != NF_OK)
		return rc;
	if ((rc = nf_conv_get(app, t, conv_id, &conv, e)) != NF_OK) {
		if (rc == NF_ENOTFOUND)
			rc = NF_EINVAL;
		return rc;
	}
	if ((rc = tw_client(app, &c, e)) != NF_OK) {
		rc = NF_EINVAL;
		goto out;
	}
	/* The AI flag first: it is idempotent and retried, while a task whose
	 * create had an unknown outcome ends the job (never resent), and the
	 * Twilio side must still learn that the assistant is off. */
	if (nf_json_field_str(conv, "twilioSid") != NULL &&
	    t->twilio.conversations_service_sid != NULL &&
	    ((rc = ai_flag(app, t, conv, c, e)) != NF_OK ||
	    (rc = ai_flag_done(app, t, conv_id, e)) != NF_OK))
		goto out;
	status = nf_json_field_str(conv, "status");
	task_sid = nf_json_field_str(conv, "taskSid");
	/* a conversation claimed or closed meanwhile needs no routing */
	if (task_sid == NULL && status != NULL && strcmp(status, "queued") == 0 &&
	    t->twilio.workspace_sid != NULL && t->twilio.workflow_sid != NULL)
		rc = task_create(app, t, conv, conv_id, c, e);
out:
	if (rc == NF_EAUTH) {
		/* refused credentials: wait for them to be fixed (see DESIGN) */
		struct json_object	*p = json_object_new_object();
		struct nf_error		 e2;

		nf_json_add_str(p, "conversationId", conv_id);
		if (requeue(app, t, j, p, &e2) == NF_OK)
			rc = NF_OK;
		else
			rc = NF_EINVAL;
	}
	json_object_put(conv);
	return rc;
}
