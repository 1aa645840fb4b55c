/*
 * h_webhooks_voice.c - Twilio Voice webhooks: the incoming call, answered
 * with TwiML, and the call status callbacks.
 *
 * Both routes are Twilio-signed (the router checks X-Twilio-Signature with
 * the tenant's auth token before these run) and record calls in the
 * tenant's `calls` collection, one document per CallSid (unique index on
 * (tenant, callSid), ensured once per process and store handle), shaped
 * {callSid, from, to, direction, status, statusRank, sequence, duration,
 * at, updatedAt}.
 *
 * The incoming call (battery 18): once the request is known to be a call,
 * the caller must hear something sensible whatever breaks inside, because
 * any non-TwiML answer makes Twilio play "an application error has
 * occurred".  So the store is optional here (no NF_ROUTE_NEEDS_STORE): the
 * greeting and <Enqueue> do not depend on it, and when the call cannot be
 * recorded it is still enqueued (the status callbacks create the record
 * later) and the failure is logged.  The one 400 is a CallSid that is not
 * ^CA[0-9a-fA-F]{32}$: Twilio never sends that, so it is a forged or
 * broken request, and there is nothing to record or dedupe it by.  A From
 * or To that is neither E.164 nor a client:<identity> is not a reason to
 * drop a live call (withheld numbers arrive as "anonymous", SIP trunks send
 * other forms): it is recorded and tasked as "anonymous" / "unknown", so no
 * caller-chosen text reaches the TwiML or the store.  A replayed webhook
 * (same CallSid) gets the same TwiML and changes nothing.
 *
 * Status callbacks (battery 13): statuses are ranked queued < initiated <
 * ringing < in-progress < final (completed, busy, failed, no-answer,
 * canceled); within one rank a higher SequenceNumber wins, and without one
 * the first stored stays.  The update is one conditional store write
 * ("only if the stored (rank, sequence) is older"), so two workers racing
 * on callbacks of the same call can never regress it; an unknown CallSid
 * creates the record.  The store is required there: 503 lets Twilio's
 * retry (or our reconciliation) deliver it again.
 *
 * Live events on the tenant's "queue" topic: call.incoming when a call is
 * first seen, call.status when its status changes; best effort (logged).
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
#include "events.h"
#include "handlers.h"
#include "json.h"
#include "log.h"
#include "nonflex.h"
#include "req.h"
#include "store.h"
#include "tenant.h"
#include "twiml.h"
#include "valid.h"

#define CALLS		"calls"
#define TWIML_TYPE	"text/xml; charset=utf-8"
#define IDENTITY_MAX	121         /* Twilio Client identities */
#define NO_SEQUENCE	(-1)

static const struct nf_index call_indexes[] = {
	{ "calls_callsid", { "callSid", NULL }, { 1 }, 1 },
	{ "calls_at", { "at", NULL }, { -1 }, 0 },
};
static const char *const call_index_colls[] = { CALLS, CALLS };

/* The store handle this process ensured the calls indexes on. */
static struct nf_store	*indexed_store;

/* Twilio's CallStatus values and their precedence (final states tie). */
static const char *const statuses[] = { "queued", "initiated", "ringing", "in-progress",
	"completed", "busy", "failed", "no-answer", "canceled", NULL };
static const int status_rank[] = { 0, 1, 2, 3, 4, 4, 4, 4, 4 };

/* What the caller hears, per tenant language (tenant.ai.language). */
struct voice_lang {
	const char	*code;       /* "en", "es": the Task's language */
	const char	*say_lang;   /* <Say language> */
	const char	*voice;      /* a Twilio voice that speaks say_lang */
	const char	*thanks;     /* "Thank you for calling", then the name */
	const char	*thanks_anon; /* the same without a name */
	const char	*hold;       /* after the thanks */
	const char	*no_agents;
};

static const struct voice_lang langs[] = {
	{ "en", "en-US", "Polly.Joanna",
	  "Thank you for calling", "Thank you for calling",
	  "Please hold while we connect you with an agent.",
	  "We are sorry, no agents are available right now. Please call again later. "
	  "Goodbye." },
	{ "es", "es-MX", "Polly.Mia",
	  "Gracias por llamar a", "Gracias por llamar",
	  "Por favor, espere mientras le comunicamos con un agente.",
	  "Lo sentimos, en este momento no hay agentes disponibles. Por favor, llame "
	  "más tarde. Adiós." },
};

/* A call as the webhook describes it (strings borrowed from the request). */
struct call {
	const char	*sid;
	const char	*from;
	const char	*to;
	const char	*direction;   /* NULL: not given */
	const char	*status;
	int		 rank;
	int64_t		 sequence;    /* NO_SEQUENCE when not given */
	int64_t		 duration;    /* -1 when not given */
	const char	*timestamp;   /* Twilio's Timestamp, NULL when not given */
};

static const struct voice_lang *
tenant_lang(const struct nf_tenant *t)
{
	const char	*l = t->ai.language;

	if (l != NULL && strncmp(l, "es", 2) == 0 &&
	    (l[2] == '\0' || l[2] == '-' || l[2] == '_'))
		return &langs[1];
	return &langs[0];
}

/* The store with the calls indexes in place. */
static enum nf_err
calls_store(struct nf_req *r, struct nf_store **st, struct nf_error *e)
{
	enum nf_err	 rc;

	if ((rc = nf_app_store(r->app, st, e)) != NF_OK)
		return rc;
	return nf_store_ensure_indexes(*st, call_index_colls, call_indexes,
	    NF_ARRAY_LEN(call_indexes), &indexed_store, e);
}

/* ---- form fields ------------------------------------------------------- */

static int
valid_identity(const char *s)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || strchr("_.@-", s[i]) != NULL))
			return 0;
	return i >= 1 && i <= IDENTITY_MAX;
}

/* From / To: E.164 or client:<identity> as sent, anything else fallback. */
static const char *
party(const struct nf_req *r, const char *field, const char *fallback)
{
	const char	*s = nf_pairs_get(&r->form, field);

	if (s != NULL && (nf_valid_e164(s) ||
	    (strncmp(s, "client:", 7) == 0 && valid_identity(s + 7))))
		return s;
	return fallback;
}

static enum nf_err
get_call_sid(const struct nf_req *r, const char **out, struct nf_error *e)
{
	const char	*s = nf_pairs_get(&r->form, "CallSid");

	if (s == NULL)
		return nf_error_set(e, NF_EINVAL, "missing_field", "CallSid",
		    "CallSid is required");
	if (!nf_valid_twilio_sid(s, "CA"))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "CallSid",
		    "CallSid must be CA followed by 32 hex digits");
	*out = s;
	return NF_OK;
}

/* Optional integer field in [0, max]; *out untouched when absent. */
static enum nf_err
get_uint(const struct nf_req *r, const char *field, int64_t max, int64_t *out,
    struct nf_error *e)
{
	const char	*s = nf_pairs_get(&r->form, field);

	if (s == NULL)
		return NF_OK;
	if (!nf_valid_int(s, 0, max, out))
		return nf_error_set(e, NF_EINVAL, "invalid_field", field,
		    "%s must be an integer from 0 to %lld", field, (long long)max);
	return NF_OK;
}

/* Direction ([a-z-], as Twilio's "outbound-api") or NULL. */
static const char *
get_direction(const struct nf_req *r)
{
	const char	*s = nf_pairs_get(&r->form, "Direction");

	return s != NULL && nf_valid_charset(s, 32, "-") ? s : NULL;
}

/* Twilio's Timestamp (RFC 2822 text) when it is short printable ASCII. */
static const char *
get_timestamp(const struct nf_req *r)
{
	const char	*s = nf_pairs_get(&r->form, "Timestamp");
	size_t		 i;

	if (s == NULL)
		return NULL;
	for (i = 0; s[i] != '\0'; i++)
		if (s[i] < 0x20 || s[i] > 0x7E)
			return NULL;
	return i >= 1 && i <= 64 ? s : NULL;
}

/* ---- store ------------------------------------------------------------- */

static struct json_object *
call_doc(const struct call *c, const char *now)
{
	struct json_object	*d = json_object_new_object();

	nf_json_add_str(d, "callSid", c->sid);
	nf_json_add_str(d, "from", c->from);
	nf_json_add_str(d, "to", c->to);
	if (c->direction != NULL)
		nf_json_add_str(d, "direction", c->direction);
	nf_json_add_str(d, "status", c->status);
	nf_json_add_int(d, "statusRank", c->rank);
	nf_json_add_int(d, "sequence", c->sequence);
	if (c->duration >= 0)
		nf_json_add_int(d, "duration", c->duration);
	if (c->timestamp != NULL)
		nf_json_add_str(d, "statusTimestamp", c->timestamp);
	nf_json_add_str(d, "at", now);
	nf_json_add_str(d, "updatedAt", now);
	return d;
}

/* {callSid, $or: [{statusRank < rank}, {statusRank == rank, sequence < seq}]}:
 * the stored status is older than c's. */
static struct json_object *
older_filter(const struct call *c)
{
	struct json_object	*f = json_object_new_object(), *or, *a, *b, *lt;

	nf_json_add_str(f, "callSid", c->sid);
	a = json_object_new_object();
	lt = json_object_new_object();
	nf_json_add_int(lt, "$lt", c->rank);
	nf_json_add(a, "statusRank", lt);
	b = json_object_new_object();
	nf_json_add_int(b, "statusRank", c->rank);
	lt = json_object_new_object();
	nf_json_add_int(lt, "$lt", c->sequence);
	nf_json_add(b, "sequence", lt);
	or = json_object_new_array();
	json_object_array_add(or, a);
	json_object_array_add(or, b);
	nf_json_add(f, "$or", or);
	return f;
}

static struct json_object *
status_update(const struct call *c, const char *now)
{
	struct json_object	*set = json_object_new_object(), *u;

	nf_json_add_str(set, "status", c->status);
	nf_json_add_int(set, "statusRank", c->rank);
	nf_json_add_int(set, "sequence", c->sequence);
	if (c->duration >= 0)
		nf_json_add_int(set, "duration", c->duration);
	if (c->timestamp != NULL)
		nf_json_add_str(set, "statusTimestamp", c->timestamp);
	nf_json_add_str(set, "updatedAt", now);
	u = json_object_new_object();
	nf_json_add(u, "$set", set);
	return u;
}

/* Apply c's status when the stored one is older; *applied says whether it
 * was.  One conditional write, so racing callbacks cannot regress it. */
static enum nf_err
update_if_older(struct nf_store *st, const char *tenant, const struct call *c,
    const char *now, int *applied, struct nf_error *e)
{
	struct json_object	*f = older_filter(c), *u = status_update(c, now);
	int64_t			 matched = 0;
	enum nf_err		 rc;

	rc = nf_store_update(st, tenant, CALLS, f, u, 0, &matched, e);
	json_object_put(f);
	json_object_put(u);
	*applied = rc == NF_OK && matched > 0;
	return rc;
}

/*
 * Record a status callback: update when older, else create the record
 * (unknown CallSid); when a concurrent request created it first, update
 * once more.  *applied is 1 when the stored status is now c's.
 */
static enum nf_err
status_record(struct nf_store *st, const char *tenant, const struct call *c,
    int *applied, struct nf_error *e)
{
	struct json_object	*doc;
	char			 now[25];
	enum nf_err		 rc;

	nf_iso8601(nf_now_ms(), now);
	if ((rc = update_if_older(st, tenant, c, now, applied, e)) != NF_OK || *applied)
		return rc;
	doc = call_doc(c, now);
	rc = nf_store_insert(st, tenant, CALLS, doc, NULL, e);
	json_object_put(doc);
	if (rc == NF_OK) {
		*applied = 1;
		return NF_OK;
	}
	if (rc != NF_ECONFLICT)
		return rc;
	nf_error_clear(e);
	return update_if_older(st, tenant, c, now, applied, e);
}

static void
publish(struct nf_req *r, const char *type, const struct call *c)
{
	struct json_object	*d = json_object_new_object();
	struct nf_error		 e;

	nf_json_add_str(d, "callSid", c->sid);
	nf_json_add_str(d, "from", c->from);
	nf_json_add_str(d, "to", c->to);
	nf_json_add_str(d, "status", c->status);
	if (c->duration >= 0)
		nf_json_add_int(d, "duration", c->duration);
	nf_error_clear(&e);
	if (nf_events_publish(r->tenant->id, "queue", type, d, &e) != NF_OK)
		nf_warn("%s for call %s not published: %s", type, c->sid, e.message);
	json_object_put(d);
}

/* ---- the incoming call ------------------------------------------------- */

/* The TaskRouter task's attributes, serialized (caller frees). */
static char *
task_json(const struct call *c, const struct voice_lang *l)
{
	struct json_object	*t = json_object_new_object();
	char			*s;

	nf_json_add_str(t, "type", "inbound_call");
	nf_json_add_str(t, "channel", "voice");
	nf_json_add_str(t, "call_sid", c->sid);
	nf_json_add_str(t, "from", c->from);
	nf_json_add_str(t, "to", c->to);
	nf_json_add_str(t, "language", l->code);
	/* infra/taskrouter.json's workflow routes on channel, language and
	 * skill (a string: skill == "sales"). */
	nf_json_add_str(t, "skill", "support");
	s = nf_xstrdup(nf_json_str(t, NULL));
	json_object_put(t);
	return s;
}

/*
 * Greeting, then <Enqueue workflowSid><Task> when the tenant has a
 * TaskRouter workflow, otherwise a polite goodbye and <Hangup/>.  Cannot
 * fail; the caller finishes and frees the document.
 */
static struct nf_twiml *
answer(const struct nf_tenant *t, const struct call *c)
{
	const struct voice_lang	*l = tenant_lang(t);
	const char		*wf = t->twilio.workflow_sid;
	const char		*say[] = { "voice", l->voice, "language", l->say_lang, NULL };
	const char		*enq[] = { "workflowSid", wf, NULL };
	struct nf_twiml		*tw = nf_twiml_new();
	char			*greeting, *task;

	greeting = t->name != NULL ? nf_xasprintf("%s %s. %s", l->thanks, t->name, l->hold) :
	    nf_xasprintf("%s. %s", l->thanks_anon, l->hold);
	nf_twiml_say(tw, greeting, say);
	if (wf != NULL && nf_valid_twilio_sid(wf, "WW")) {
		task = task_json(c, l);
		nf_twiml_enqueue(tw, NULL, task, enq);
		free(task);
	} else {
		if (wf != NULL)
			nf_warn("twilio.workflowSid is not a WW sid: calls are not enqueued");
		nf_twiml_say(tw, l->no_agents, say);
		nf_twiml_hangup(tw);
	}
	free(greeting);
	return tw;
}

/* Store the new call once; *fresh is 1 when this request created it.  A
 * replay (same CallSid) is NF_OK with *fresh 0. */
static enum nf_err
incoming_record(struct nf_req *r, const struct call *c, int *fresh, struct nf_error *e)
{
	struct nf_store		*st;
	struct json_object	*doc;
	char			 now[25];
	enum nf_err		 rc;

	*fresh = 0;
	if ((rc = calls_store(r, &st, e)) != NF_OK)
		return rc;
	nf_iso8601(nf_now_ms(), now);
	doc = call_doc(c, now);
	rc = nf_store_insert(st, r->tenant->id, CALLS, doc, NULL, e);
	json_object_put(doc);
	if (rc == NF_ECONFLICT)
		return NF_OK;
	*fresh = rc == NF_OK;
	return rc;
}

/*
 * POST /webhooks/twilio/voice (Twilio-signed, form): an incoming call.
 * 200 text/xml TwiML (also when the call cannot be recorded); 400 for a
 * missing or malformed CallSid.  Before this runs the router answers 403
 * for a bad signature and 400/413/415 for a bad body.
 */
enum nf_err
h_webhooks_voice_incoming(struct nf_req *r, struct nf_error *e)
{
	struct call	 c;
	struct nf_error	 se;
	struct nf_twiml	*tw;
	const char	*doc;
	size_t		 len;
	int		 fresh = 0, k;
	enum nf_err	 rc;

	memset(&c, 0, sizeof(c));
	if ((rc = get_call_sid(r, &c.sid, e)) != NF_OK)
		return rc;
	c.from = party(r, "From", "anonymous");
	c.to = party(r, "To", "unknown");
	c.direction = "inbound";
	k = nf_valid_enum(nf_pairs_get(&r->form, "CallStatus"), statuses);
	c.status = k >= 0 ? statuses[k] : "ringing";
	c.rank = k >= 0 ? status_rank[k] : status_rank[2];
	c.sequence = NO_SEQUENCE;
	c.duration = -1;

	nf_error_clear(&se);
	if (incoming_record(r, &c, &fresh, &se) != NF_OK) {
		/* Answer anyway: the caller must not hear an application error. */
		nf_error("call %s not recorded, answered anyway: %s", c.sid,
		    se.message[0] ? se.message : se.code);
		fresh = 1;
	}
	if (fresh)
		publish(r, "call.incoming", &c);
	tw = answer(r->tenant, &c);
	doc = nf_twiml_finish(tw, &len);
	nf_resp_text(r, 200, TWIML_TYPE, doc, len);
	nf_twiml_free(tw);
	return NF_OK;
}

/* ---- status callbacks -------------------------------------------------- */

/*
 * POST /webhooks/twilio/voice/status (Twilio-signed, form): CallSid,
 * CallStatus, optional SequenceNumber, CallDuration, Timestamp, From, To,
 * Direction.  204 whether or not the status was newer than the stored one;
 * 400 for a missing or malformed CallSid, an unknown CallStatus or a
 * non-integer SequenceNumber / CallDuration; 503 when the store is down.
 */
enum nf_err
h_webhooks_voice_status(struct nf_req *r, struct nf_error *e)
{
	struct nf_store	*st;
	struct call	 c;
	const char	*s;
	int		 k, applied = 0;
	enum nf_err	 rc;

	memset(&c, 0, sizeof(c));
	c.sequence = NO_SEQUENCE;
	c.duration = -1;
	if ((rc = get_call_sid(r, &c.sid, e)) != NF_OK ||
	    (rc = get_uint(r, "SequenceNumber", INT32_MAX, &c.sequence, e)) != NF_OK ||
	    (rc = get_uint(r, "CallDuration", INT32_MAX, &c.duration, e)) != NF_OK)
		return rc;
	if ((s = nf_pairs_get(&r->form, "CallStatus")) == NULL)
		return nf_error_set(e, NF_EINVAL, "missing_field", "CallStatus",
		    "CallStatus is required");
	if ((k = nf_valid_enum(s, statuses)) < 0)
		return nf_error_set(e, NF_EINVAL, "invalid_field", "CallStatus",
		    "CallStatus is not a Twilio call status");
	c.status = statuses[k];
	c.rank = status_rank[k];
	c.from = party(r, "From", "anonymous");
	c.to = party(r, "To", "unknown");
	c.direction = get_direction(r);
	c.timestamp = get_timestamp(r);

	if ((rc = calls_store(r, &st, e)) != NF_OK ||
	    (rc = status_record(st, r->tenant->id, &c, &applied, e)) != NF_OK)
		return rc;
	if (applied)
		publish(r, "call.status", &c);
	nf_resp_empty(r, 204);
	return NF_OK;
}
