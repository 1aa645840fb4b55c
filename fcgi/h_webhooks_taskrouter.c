/*
 * h_webhooks_taskrouter.c - TaskRouter's two callbacks: the assignment
 * callback (what to do with a new reservation) and the workspace's event
 * callback (every state change).  Both routes are flagged
 * NF_ROUTE_TWILIO_SIGNED, so the router has verified X-Twilio-Signature
 * with the tenant's auth token before either handler runs (twilio_sig.h).
 *
 * DESIGN: TaskRouter waits for these answers, so each one costs one or
 * two store round trips and nothing else: no Twilio call, no job (DESIGN.md
 * "Processes").  Both are idempotent through unique indexes rather than a
 * check-then-write, so overlapping deliveries cannot both act
 * (RELIABILITY 1.2, the eliza #31768 race), and they work with Redis down:
 *   - taskrouter_assignments, unique on reservationSid, records the answer
 *     given to each reservation; a replay gets the recorded answer again.
 *     A reservation whose outcome TaskRouter already reported through the
 *     event callback (accepted, rejected, timed out, canceled, ...) gets
 *     {} instead (battery 22): nothing left to instruct.
 *   - taskrouter_events, unique on eventSid, stores each event once; a
 *     replay answers 200 and changes nothing.  A new event is then
 *     published on the tenant's "queue" topic as "taskrouter.<EventType>"
 *     (best effort: the event is already stored).
 * An answer is only sent after the durable write: the store being down is
 * 503, never a 2xx for an event that was not kept (battery 17).
 *
 * Input is Twilio's, but still checked (battery 47-48): each SID against
 * its pattern, TaskAttributes as a strict JSON object, no field repeated;
 * malformed callbacks are 400 and nothing is stored.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

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
#include "valid.h"

#define ASSIGNMENTS	"taskrouter_assignments"
#define EVENTS		"taskrouter_events"
#define ATTRS_MAX	(16 * 1024)     /* TaskAttributes, bytes */
#define EVENT_TYPE_MAX	64
#define NAME_MAX_LEN	64              /* field names kept in an event's data */
#define TIME_MAX_MS	INT64_C(253402300799999)   /* 9999-12-31T23:59:59.999Z */

static const struct nf_index tr_indexes[] = {
	{ "taskrouter_events_sid", { "eventSid", NULL }, { 1 }, 1 },
	{ "taskrouter_events_reservation", { "reservationSid", NULL }, { 1 }, 0 },
	{ "taskrouter_assignments_reservation", { "reservationSid", NULL }, { 1 }, 1 },
};
static const char *const tr_index_colls[] = { EVENTS, EVENTS, ASSIGNMENTS };

/* Events after which a reservation needs no instruction any more. */
static const char *const settled_events[] = { "reservation.accepted",
	"reservation.rejected", "reservation.timeout", "reservation.canceled",
	"reservation.rescinded", "reservation.completed", "reservation.wrapup", NULL };

/* The store handle this process ensured the indexes on. */
static struct nf_store	*indexed_store;

/* The store, with the unique indexes the dedupe relies on: without them
 * nothing is written. */
static enum nf_err
tr_store(struct nf_req *r, struct nf_store **st, struct nf_error *e)
{
	enum nf_err	 rc;

	if ((rc = nf_app_store(r->app, st, e)) != NF_OK)
		return rc;
	return nf_store_ensure_indexes(*st, tr_index_colls, tr_indexes,
	    NF_ARRAY_LEN(tr_indexes), &indexed_store, e);
}

/* ---- form fields ----------------------------------------------------------- */

/* ---- assignment callback ------------------------------------------------------ */

struct assignment {
	const char		*reservation;   /* WR... */
	const char		*task;          /* WT... */
	const char		*worker;        /* WK... */
	const char		*queue;         /* WQ... or NULL */
	struct json_object	*attrs;         /* TaskAttributes (owned) */
	const char		*call_sid;      /* attrs.call_sid: a voice task */
};

static enum nf_err
assignment_read(const struct nf_req *r, struct assignment *a, struct nf_error *e)
{
	struct json_object	*v;
	const char		*txt, *ignored;
	enum nf_err		 rc;

	memset(a, 0, sizeof(*a));
	if ((rc = nf_req_form_sid(r, "ReservationSid", "WR", 1, &a->reservation, e)) != NF_OK ||
	    (rc = nf_req_form_sid(r, "TaskSid", "WT", 1, &a->task, e)) != NF_OK ||
	    (rc = nf_req_form_sid(r, "WorkerSid", "WK", 1, &a->worker, e)) != NF_OK ||
	    (rc = nf_req_form_sid(r, "TaskQueueSid", "WQ", 0, &a->queue, e)) != NF_OK ||
	    (rc = nf_req_form_sid(r, "WorkflowSid", "WW", 0, &ignored, e)) != NF_OK ||
	    (rc = nf_req_form_sid(r, "WorkspaceSid", "WS", 0, &ignored, e)) != NF_OK ||
	    (rc = nf_req_form_one(r, "TaskAttributes", ATTRS_MAX, 1, &txt, e)) != NF_OK)
		return rc;
	if (nf_json_parse(txt, strlen(txt), &a->attrs, e) != NF_OK ||
	    !json_object_is_type(a->attrs, json_type_object))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "TaskAttributes",
		    "TaskAttributes must be a JSON object");
	if (json_object_object_get_ex(a->attrs, "call_sid", &v) && v != NULL) {
		if (!json_object_is_type(v, json_type_string) ||
		    !nf_valid_twilio_sid(json_object_get_string(v), "CA"))
			return nf_error_set(e, NF_EINVAL, "invalid_field",
			    "TaskAttributes.call_sid", "call_sid is not a valid call SID");
		a->call_sid = json_object_get_string(v);
	}
	return NF_OK;
}

/*
 * What TaskRouter should do with the reservation (RELIABILITY 2): a voice
 * task (its attributes carry the call_sid <Enqueue> put there) is bridged
 * to the worker with "dequeue", calling from the tenant's voice number;
 * any other task is accepted and the agent app takes it from there.
 * Without a voice number a call cannot be dequeued: {} defers, the
 * reservation times out and TaskRouter offers the task again, which is
 * better than accepting a call nobody will be connected to.
 * post_work_activity_sid belongs in the dequeue once tenants carry a
 * wrap-up activity SID; they do not yet, so it is left out.
 */
static struct json_object *
instruction(const struct nf_tenant *t, const struct assignment *a)
{
	struct json_object	*o = json_object_new_object();

	if (a->call_sid == NULL) {
		nf_json_add_str(o, "instruction", "accept");
		return o;
	}
	if (t->twilio.voice_number == NULL) {
		nf_warn("voice task %s: the tenant has no voice number to dequeue from; "
		    "reservation %s deferred", a->task, a->reservation);
		return o;
	}
	nf_json_add_str(o, "instruction", "dequeue");
	nf_json_add_str(o, "from", t->twilio.voice_number);
	return o;
}

/* *settled is 1 when an event already reported the reservation's outcome. */
static enum nf_err
reservation_settled(struct nf_store *st, const char *tenant, const char *sid,
    int *settled, struct nf_error *e)
{
	struct json_object	*f, *in, *list, *doc = NULL;
	enum nf_err		 rc;
	size_t			 i;

	list = json_object_new_array();
	for (i = 0; settled_events[i] != NULL; i++)
		json_object_array_add(list, json_object_new_string(settled_events[i]));
	in = json_object_new_object();
	nf_json_add(in, "$in", list);
	f = nf_json_pair("reservationSid", sid);
	nf_json_add(f, "eventType", in);
	rc = nf_store_find_one(st, tenant, EVENTS, f, NULL, &doc, e);
	json_object_put(f);
	json_object_put(doc);
	*settled = rc == NF_OK;
	if (rc == NF_ENOTFOUND) {
		nf_error_clear(e);
		rc = NF_OK;
	}
	return rc;
}

/*
 * Record *answer as the reservation's, or, when one is recorded already
 * (a replay, or a concurrent copy that won the unique index), replace
 * *answer with that one and set *replay.
 */
static enum nf_err
answer_once(struct nf_store *st, const struct nf_req *r, const struct assignment *a,
    struct json_object **answer, int *replay, struct nf_error *e)
{
	struct json_object	*doc, *f, *v;
	char			 at[25];
	enum nf_err		 rc;

	*replay = 0;
	nf_iso8601(nf_now_ms(), at);
	doc = json_object_new_object();
	nf_json_add_str(doc, "reservationSid", a->reservation);
	nf_json_add_str(doc, "taskSid", a->task);
	nf_json_add_str(doc, "workerSid", a->worker);
	nf_json_add_str(doc, "taskQueueSid", a->queue);
	nf_json_add_bool(doc, "voice", a->call_sid != NULL);
	nf_json_add(doc, "answer", json_object_get(*answer));   /* shared with the reply */
	nf_json_add_str(doc, "at", at);
	rc = nf_store_insert(st, r->tenant->id, ASSIGNMENTS, doc, NULL, e);
	json_object_put(doc);
	if (rc != NF_ECONFLICT)
		return rc;
	*replay = 1;
	nf_error_clear(e);
	doc = NULL;
	f = nf_json_pair("reservationSid", a->reservation);
	rc = nf_store_find_one(st, r->tenant->id, ASSIGNMENTS, f, NULL, &doc, e);
	json_object_put(f);
	if (rc != NF_OK)
		return rc == NF_ENOTFOUND ? nf_error_set(e, NF_ESTORE, NULL, NULL,
		    "assignment vanished") : rc;
	json_object_put(*answer);
	*answer = json_object_object_get_ex(doc, "answer", &v) &&
	    json_object_is_type(v, json_type_object) ? json_object_get(v) :
	    json_object_new_object();
	json_object_put(doc);
	return NF_OK;
}

/*
 * POST /webhooks/twilio/taskrouter/assignment - public, Twilio-signed.
 * 200 application/json: {"instruction":"dequeue","from":<voice number>}
 * for a voice task, {"instruction":"accept"} for any other, the same
 * answer again for a replayed ReservationSid, {} when the reservation's
 * outcome is already known (or a voice task has no number to call from).
 * 400 malformed or missing field (nothing stored); 403 signature (router);
 * 503 store unavailable.
 */
enum nf_err
h_webhooks_taskrouter_assignment(struct nf_req *r, struct nf_error *e)
{
	struct assignment	 a;
	struct nf_store		*st;
	struct json_object	*answer = NULL;
	enum nf_err		 rc;
	int			 settled = 0, replay = 0;

	if ((rc = assignment_read(r, &a, e)) != NF_OK ||
	    (rc = tr_store(r, &st, e)) != NF_OK ||
	    (rc = reservation_settled(st, r->tenant->id, a.reservation, &settled, e)) != NF_OK)
		goto out;
	if (settled) {
		nf_info("assignment callback for settled reservation %s: nothing to do",
		    a.reservation);
		answer = json_object_new_object();
	} else {
		answer = instruction(r->tenant, &a);
		if ((rc = answer_once(st, r, &a, &answer, &replay, e)) != NF_OK)
			goto out;
		if (replay)
			nf_info("assignment callback replayed for reservation %s",
			    a.reservation);
	}
	nf_resp_json(r, 200, answer);
	answer = NULL;
out:
	json_object_put(answer);
	json_object_put(a.attrs);
	return rc;
}

/* ---- event callback ------------------------------------------------------------ */

struct tr_event {
	const char	*sid;           /* EV... */
	const char	*type;          /* "reservation.created" */
	const char	*task;          /* WT... or NULL, and so on */
	const char	*worker;
	const char	*reservation;
	const char	*queue;
	const char	*resource;
	char		 at[25];        /* when it happened */
};

/* When the event happened: TimestampMs / EventDateMs, else Timestamp
 * (seconds), else now.  Twilio's clock is informational here, so an odd
 * value falls back rather than refusing the event. */
static void
event_time(const struct nf_req *r, char at[25])
{
	const char	*s;
	int64_t		 v;

	if (((s = nf_pairs_get(&r->form, "TimestampMs")) != NULL ||
	    (s = nf_pairs_get(&r->form, "EventDateMs")) != NULL) &&
	    nf_valid_int(s, 0, TIME_MAX_MS, &v))
		nf_iso8601(v, at);
	else if ((s = nf_pairs_get(&r->form, "Timestamp")) != NULL &&
	    nf_valid_int(s, 0, TIME_MAX_MS / 1000, &v))
		nf_iso8601(v * 1000, at);
	else
		nf_iso8601(nf_now_ms(), at);
}

/*
 * The event's id is Twilio's EV SID: TaskRouter sends it as "Sid"; an
 * "EventSid" field is accepted too (and must agree when both are sent).
 */
static enum nf_err
event_read(const struct nf_req *r, struct tr_event *ev, struct nf_error *e)
{
	const char	*alt;
	enum nf_err	 rc;

	memset(ev, 0, sizeof(*ev));
	if ((rc = nf_req_form_sid(r, "Sid", "EV", 0, &ev->sid, e)) != NF_OK ||
	    (rc = nf_req_form_sid(r, "EventSid", "EV", 0, &alt, e)) != NF_OK)
		return rc;
	if (ev->sid != NULL && alt != NULL && strcmp(ev->sid, alt) != 0)
		return nf_error_set(e, NF_EINVAL, "invalid_field", "EventSid",
		    "Sid and EventSid disagree");
	if (ev->sid == NULL && (ev->sid = alt) == NULL)
		return nf_error_set(e, NF_EINVAL, "missing_field", "Sid",
		    "the event's Sid is required");
	if ((rc = nf_req_form_one(r, "EventType", EVENT_TYPE_MAX, 1, &ev->type, e)) != NF_OK)
		return rc;
	if (!nf_valid_charset(ev->type, EVENT_TYPE_MAX, "._-"))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "EventType",
		    "EventType must be [a-z0-9._-]");
	if ((rc = nf_req_form_sid(r, "TaskSid", "WT", 0, &ev->task, e)) != NF_OK ||
	    (rc = nf_req_form_sid(r, "WorkerSid", "WK", 0, &ev->worker, e)) != NF_OK ||
	    (rc = nf_req_form_sid(r, "ReservationSid", "WR", 0, &ev->reservation, e)) != NF_OK ||
	    (rc = nf_req_form_sid(r, "TaskQueueSid", "WQ", 0, &ev->queue, e)) != NF_OK ||
	    (rc = nf_req_form_sid(r, "ResourceSid", NULL, 0, &ev->resource, e)) != NF_OK ||
	    (rc = nf_req_form_sid(r, "WorkspaceSid", "WS", 0, &alt, e)) != NF_OK)
		return rc;
	event_time(r, ev->at);
	return NF_OK;
}

/* A field name the store can hold as a key: [A-Za-z0-9_]{1,64}. */
static int
name_ok(const char *s)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= NAME_MAX_LEN || !((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '_'))
			return 0;
	return i > 0;
}

/* Every field of the callback as Twilio sent it (a repeated name becomes
 * an array); names no store key could be are left out. */
static struct json_object *
event_data(const struct nf_req *r)
{
	struct json_object	*o = json_object_new_object(), *v, *arr;
	size_t			 i;

	for (i = 0; i < r->form.n; i++) {
		const char	*name = r->form.v[i].name;

		if (!name_ok(name))
			continue;
		if (!json_object_object_get_ex(o, name, &v)) {
			nf_json_add_str(o, name, r->form.v[i].value);
			continue;
		}
		if (!json_object_is_type(v, json_type_array)) {
			arr = json_object_new_array();
			json_object_array_add(arr, json_object_get(v));
			nf_json_add(o, name, arr);      /* puts the old v: arr holds it */
			v = arr;
		}
		json_object_array_add(v, json_object_new_string(r->form.v[i].value));
	}
	return o;
}

/* The fields a subscriber needs (no attributes: they may be large). */
static struct json_object *
event_summary(const struct tr_event *ev)
{
	struct json_object	*d = json_object_new_object();

	nf_json_add_str(d, "eventSid", ev->sid);
	nf_json_add_str(d, "eventType", ev->type);
	nf_json_add_str(d, "taskSid", ev->task);
	nf_json_add_str(d, "workerSid", ev->worker);
	nf_json_add_str(d, "reservationSid", ev->reservation);
	nf_json_add_str(d, "taskQueueSid", ev->queue);
	nf_json_add_str(d, "at", ev->at);
	return d;
}

/* Tell the tenant's agents and supervisors (topic "queue").  The event is
 * stored already, so a publisher failure is logged, never the answer. */
static void
publish(const struct nf_req *r, const struct tr_event *ev)
{
	struct json_object	*d = event_summary(ev);
	struct nf_error		 e;
	char			*type = nf_xasprintf("taskrouter.%s", ev->type);

	nf_error_clear(&e);
	if (nf_events_publish(r->tenant->id, "queue", type, d, &e) != NF_OK)
		nf_warn("taskrouter event %s not published: %s", ev->sid, e.message);
	json_object_put(d);
	free(type);
}

/*
 * POST /webhooks/twilio/taskrouter/events - public, Twilio-signed.
 * 200 {"received":true,"duplicate":false} once the event is stored (and
 * then published on "queue"), 200 {"received":true,"duplicate":true} for
 * an EventSid already stored (nothing written or published); 400 malformed
 * or missing field; 403 signature (router); 503 store unavailable.
 */
enum nf_err
h_webhooks_taskrouter_events(struct nf_req *r, struct nf_error *e)
{
	struct tr_event		 ev;
	struct nf_store		*st;
	struct json_object	*doc, *res;
	char			 now[25];
	enum nf_err		 rc;
	int			 dup;

	if ((rc = event_read(r, &ev, e)) != NF_OK || (rc = tr_store(r, &st, e)) != NF_OK)
		return rc;
	nf_iso8601(nf_now_ms(), now);
	doc = event_summary(&ev);
	nf_json_add_str(doc, "resourceSid", ev.resource);
	nf_json_add_str(doc, "receivedAt", now);
	nf_json_add(doc, "data", event_data(r));
	rc = nf_store_insert(st, r->tenant->id, EVENTS, doc, NULL, e);
	json_object_put(doc);
	if (rc != NF_OK && rc != NF_ECONFLICT)
		return rc;
	if ((dup = rc == NF_ECONFLICT)) {
		nf_error_clear(e);
		nf_info("taskrouter event %s replayed: already stored", ev.sid);
	} else
		publish(r, &ev);
	res = json_object_new_object();
	nf_json_add_bool(res, "received", 1);
	nf_json_add_bool(res, "duplicate", dup);
	nf_resp_json(r, 200, res);
	return NF_OK;
}
