/*
 * h_webhooks_conversations.c - Twilio Conversations' post-event webhook
 * (POST /webhooks/twilio/conversations) and message status callbacks
 * (POST /webhooks/twilio/conversations/status).  Both routes are
 * NF_ROUTE_TWILIO_SIGNED: the router has checked X-Twilio-Signature with
 * the tenant's auth token before these handlers run.
 *
 * DESIGN: Twilio waits for the answer, so a webhook validates, makes the
 * event durable and answers; it never calls Twilio, OpenAI or the CRM
 * (DESIGN.md "Processes").  A customer's message and a close are handed to
 * conversations.c (nf_conv_accept, nf_conv_accept_closed), which appends
 * them to the inbound spool (spool.h) when NONFLEX_SPOOL_DIR is set - one
 * write, so the webhook keeps pace with Twilio whatever the store's writer
 * does - or records them at once.  Either way the message is stored once
 * through conversations.c's unique indexes (MessageSid, and the
 * I-Twilio-Idempotency-Token as the dedupe key), so a replay, a
 * fallback-URL copy or 20 concurrent copies store one message (battery
 * 10-12), and its AI job is submitted under the message's id, so it is
 * queued once.  With Redis down jobs wait in the store's outbox (battery
 * 55).  Nothing is answered 2xx before the durable write: a spool that
 * cannot take the event falls back to the store, and the store being down
 * then is 503 (battery 17).
 *
 * Loops (battery 20): a message authored by "bot", "agent:<x>" or one of
 * the tenant's agent usernames is never answered.  One that we sent
 * ourselves (its Attributes carry nonflex_message_id) only gives our
 * stored message its Twilio SID and "sent"; others (an agent writing
 * through the Conversations SDK) are recorded as outbound.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "app.h"
#include "conversations.h"
#include "handlers.h"
#include "jobs.h"
#include "json.h"
#include "log.h"
#include "nonflex.h"
#include "req.h"
#include "store.h"
#include "tenant.h"
#include "valid.h"

#define MSGS		"messages"
#define EVENT_TYPE_MAX	64
#define AUTHOR_MAX	256
#define ATTRS_MAX	(16 * 1024)
#define MEDIA_TEXT_MAX	(16 * 1024)
#define MEDIA_MAX	10
#define TOKEN_MAX	128             /* I-Twilio-Idempotency-Token */
#define STATUS_MAX	32
#define ERROR_MAX	200

/* ---- form fields ---------------------------------------------------------- */

/* A field holding a JSON value of the given type (NULL when absent). */
static enum nf_err
json_field(const struct nf_req *r, const char *name, size_t max, json_type type,
    struct json_object **out, struct nf_error *e)
{
	const char	*txt;
	enum nf_err	 rc;

	*out = NULL;
	if ((rc = nf_req_form_one(r, name, max, 0, &txt, e)) != NF_OK || txt == NULL)
		return rc;
	if (nf_json_parse(txt, strlen(txt), out, e) != NF_OK ||
	    !json_object_is_type(*out, type)) {
		json_object_put(*out);
		*out = NULL;
		return nf_error_set(e, NF_EINVAL, "invalid_field", name,
		    "%s must be a JSON %s", name, type == json_type_array ? "array" : "object");
	}
	return NF_OK;
}

/* ---- who wrote it --------------------------------------------------------- */

enum author {
	AUTHOR_CUSTOMER = 0,
	AUTHOR_BOT,
	AUTHOR_AGENT,
};

/* 1 when name is an agent username of the tenant. */
static enum nf_err
is_agent(struct nf_store *st, const char *tenant, const char *name, int *yes,
    struct nf_error *e)
{
	struct json_object	*f = json_object_new_object();
	int64_t			 n = 0;
	enum nf_err		 rc;

	nf_json_add_str(f, "username", name);
	rc = nf_store_count(st, tenant, "agents", f, &n, e);
	json_object_put(f);
	*yes = n > 0;
	return rc;
}

/*
 * A customer writes from a phone address ("whatsapp:+1...", "+1...") or,
 * through the SDK, as any other identity that is not ours: "bot",
 * "agent:<x>" and the tenant's agent usernames are ours.
 */
static enum nf_err
author_of(struct nf_app *app, const char *tenant, const char *author, enum author *out,
    struct nf_error *e)
{
	struct nf_store	*st;
	enum nf_err	 rc;
	int		 agent = 0;

	*out = AUTHOR_CUSTOMER;
	if (strcmp(author, "bot") == 0) {
		*out = AUTHOR_BOT;
		return NF_OK;
	}
	if (strncmp(author, "agent:", 6) == 0) {
		*out = AUTHOR_AGENT;
		return NF_OK;
	}
	if (strncmp(author, "whatsapp:", 9) == 0 || author[0] == '+')
		return NF_OK;
	if ((rc = nf_conv_store(app, &st, e)) != NF_OK ||
	    (rc = is_agent(st, tenant, author, &agent, e)) != NF_OK)
		return rc;
	if (agent)
		*out = AUTHOR_AGENT;
	return NF_OK;
}

static const char *
channel_of(const char *address)
{
	return strncmp(address, "whatsapp:", 9) == 0 ? "whatsapp" : "sms";
}

/* ---- onMessageAdded ------------------------------------------------------- */

struct inmsg {
	const char		*conv;          /* CH... */
	const char		*sid;           /* IM... */
	const char		*author;
	const char		*body;          /* "" when absent */
	struct json_object	*media;         /* [{sid, contentType, filename, size}] or NULL */
	struct json_object	*attrs;         /* Attributes or NULL */
	char			*dedupe;        /* "twilio:<token>" or NULL */
	char			*cut;           /* the body cut to NF_CONV_BODY_MAX */
};

static void
inmsg_cleanup(struct inmsg *m)
{
	json_object_put(m->media);
	json_object_put(m->attrs);
	free(m->dedupe);
	free(m->cut);
}

/* Twilio's Media entries, kept as {sid, contentType, filename, size}. */
static enum nf_err
media_read(const struct nf_req *r, struct inmsg *m, struct nf_error *e)
{
	struct json_object	*raw, *it, *v, *o;
	size_t			 i, n;
	enum nf_err		 rc;

	if ((rc = json_field(r, "Media", MEDIA_TEXT_MAX, json_type_array, &raw, e)) != NF_OK ||
	    raw == NULL)
		return rc;
	if ((n = json_object_array_length(raw)) > MEDIA_MAX) {
		json_object_put(raw);
		return nf_error_set(e, NF_EINVAL, "invalid_field", "Media",
		    "Media has more than %d entries", MEDIA_MAX);
	}
	m->media = json_object_new_array();
	for (i = 0; i < n; i++) {
		it = json_object_array_get_idx(raw, i);
		if (!json_object_is_type(it, json_type_object) ||
		    !json_object_object_get_ex(it, "Sid", &v) ||
		    !nf_valid_twilio_sid(json_object_get_string(v), "ME")) {
			json_object_put(raw);
			return nf_error_set(e, NF_EINVAL, "invalid_field", "Media",
			    "Media entries need a media Sid (ME...)");
		}
		o = json_object_new_object();
		nf_json_add_str(o, "sid", json_object_get_string(v));
		if (json_object_object_get_ex(it, "ContentType", &v) &&
		    json_object_is_type(v, json_type_string))
			nf_json_add_str(o, "contentType", json_object_get_string(v));
		if (json_object_object_get_ex(it, "Filename", &v) &&
		    json_object_is_type(v, json_type_string))
			nf_json_add_str(o, "filename", json_object_get_string(v));
		if (json_object_object_get_ex(it, "Size", &v) &&
		    json_object_is_type(v, json_type_int))
			nf_json_add_int(o, "size", json_object_get_int64(v));
		json_object_array_add(m->media, o);
	}
	json_object_put(raw);
	return NF_OK;
}

/* The idempotency token as a dedupe key; an odd token is ignored (the
 * MessageSid still deduplicates), never a reason to lose the message. */
static char *
dedupe_key(const struct nf_req *r)
{
	const char	*tok = nf_req_header(r, "I-Twilio-Idempotency-Token");

	if (tok == NULL || tok[0] == '\0')
		return NULL;
	if (strlen(tok) > TOKEN_MAX || !nf_valid_request_id(tok)) {
		nf_warn("ignoring a malformed I-Twilio-Idempotency-Token");
		return NULL;
	}
	return nf_xasprintf("twilio:%s", tok);
}

/* Cut a body at a character boundary: Twilio accepted it, so a long one is
 * kept (shortened, logged), not refused and lost. */
static void
body_read(const struct nf_req *r, struct inmsg *m)
{
	const char	*b = nf_pairs_get(&r->form, "Body");
	size_t		 n;

	m->body = b != NULL ? b : "";
	if ((n = strlen(m->body)) <= NF_CONV_BODY_MAX)
		return;
	n = NF_CONV_BODY_MAX;
	while (n > 0 && ((unsigned char)m->body[n] & 0xc0) == 0x80)
		n--;
	m->cut = nf_xstrndup(m->body, n);
	m->body = m->cut;
	nf_warn("message %s: body cut to %zu bytes", m->sid, n);
}

static enum nf_err
inmsg_read(const struct nf_req *r, struct inmsg *m, struct nf_error *e)
{
	const char	*body;
	enum nf_err	 rc;

	memset(m, 0, sizeof(*m));
	if ((rc = nf_req_form_sid(r, "ConversationSid", "CH", 1, &m->conv, e)) != NF_OK ||
	    (rc = nf_req_form_sid(r, "MessageSid", "IM", 1, &m->sid, e)) != NF_OK ||
	    (rc = nf_req_form_one(r, "Author", AUTHOR_MAX, 1, &m->author, e)) != NF_OK ||
	    (rc = nf_req_form_one(r, "Body", 64 * 1024, 0, &body, e)) != NF_OK ||
	    (rc = media_read(r, m, e)) != NF_OK ||
	    (rc = json_field(r, "Attributes", ATTRS_MAX, json_type_object, &m->attrs, e))
	    != NF_OK)
		return rc;
	body_read(r, m);
	if (m->body[0] == '\0' && m->media == NULL)
		return nf_error_set(e, NF_EINVAL, "missing_field", "Body",
		    "a message needs a Body or Media");
	m->dedupe = dedupe_key(r);
	return NF_OK;
}

/* Our own message id in a message's Attributes, or NULL. */
static const char *
our_id(const struct inmsg *m)
{
	struct json_object	*v;

	if (m->attrs == NULL || !json_object_object_get_ex(m->attrs, "nonflex_message_id", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    !nf_valid_hex24(json_object_get_string(v)))
		return NULL;
	return json_object_get_string(v);
}

/* An echo of a message we sent: it gets its SID and "sent". */
static enum nf_err
echo(struct nf_req *r, const struct inmsg *m, const char *id, struct nf_error *e)
{
	enum nf_err	 rc;

	rc = nf_conv_delivery(r->app, r->tenant, id, m->sid, "sent", NULL, e);
	if (rc == NF_ENOTFOUND) {
		nf_info("echo of message %s (%s): not ours any more; ignored", id, m->sid);
		nf_error_clear(e);
		rc = NF_OK;
	}
	return rc;
}

static const char *
str_of(struct json_object *o, const char *k)
{
	struct json_object	*v;

	return o != NULL && json_object_object_get_ex(o, k, &v) &&
	    json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* A bot or agent message written outside Nonflex: recorded, never answered. */
static enum nf_err
outbound(struct nf_req *r, const struct inmsg *m, enum author a, struct nf_error *e)
{
	struct nf_conv_msg	 cm;
	struct json_object	*conv = NULL, *msg = NULL;
	enum nf_err		 rc;
	int			 dup = 0;

	if ((rc = nf_conv_by_sid(r->app, r->tenant, m->conv, &conv, e)) != NF_OK)
		return rc;
	if (conv == NULL) {
		nf_info("message %s by %s in unknown conversation %s: ignored", m->sid,
		    a == AUTHOR_BOT ? "the bot" : "an agent", m->conv);
		return NF_OK;
	}
	memset(&cm, 0, sizeof(cm));
	cm.direction = "outbound";
	cm.author_kind = a == AUTHOR_BOT ? "bot" : "agent";
	cm.author = m->author;
	cm.body = m->body;
	cm.media = m->media;
	cm.twilio_sid = m->sid;
	cm.dedupe_key = m->dedupe;
	rc = nf_conv_add_message(r->app, r->tenant, str_of(conv, "_id"), &cm, &msg, &dup, e);
	if (rc == NF_OK && !dup)
		rc = nf_conv_delivery(r->app, r->tenant, str_of(msg, "_id"), NULL, "sent",
		    NULL, e);
	json_object_put(conv);
	json_object_put(msg);
	return rc;
}

static enum nf_err
customer(struct nf_req *r, const struct inmsg *m, struct nf_error *e)
{
	struct nf_conv_inbound	 in = { channel_of(m->author), m->author, m->conv };
	struct nf_conv_msg	 cm;

	memset(&cm, 0, sizeof(cm));
	cm.direction = "inbound";
	cm.author_kind = "customer";
	cm.author = m->author;
	cm.body = m->body;
	cm.media = m->media;
	cm.twilio_sid = m->sid;
	cm.dedupe_key = m->dedupe;
	cm.at_ms = nf_now_ms();
	return nf_conv_accept(r->app, r->tenant, &in, &cm, e);
}

static enum nf_err
on_message_added(struct nf_req *r, struct nf_error *e)
{
	struct inmsg	 m;
	enum author	 a = AUTHOR_CUSTOMER;
	enum nf_err	 rc;

	if ((rc = inmsg_read(r, &m, e)) != NF_OK)
		goto out;
	if (our_id(&m) != NULL) {
		rc = echo(r, &m, our_id(&m), e);
		goto out;
	}
	/* A customer's phone is known without the store: the hot path. */
	if ((rc = author_of(r->app, r->tenant->id, m.author, &a, e)) != NF_OK)
		goto out;
	rc = a == AUTHOR_CUSTOMER ? customer(r, &m, e) : outbound(r, &m, a, e);
out:
	inmsg_cleanup(&m);
	return rc;
}

/* ---- conversation and participant events ----------------------------------- */

/* onConversationAdded / onParticipantAdded: a customer's messaging
 * address opens (or finds) the conversation; SDK identities do not. */
static enum nf_err
on_address(struct nf_req *r, struct nf_error *e)
{
	struct nf_conv_inbound	 in;
	struct json_object	*conv = NULL;
	const char		*sid, *addr;
	enum nf_err		 rc;
	int			 created = 0;

	if ((rc = nf_req_form_sid(r, "ConversationSid", "CH", 1, &sid, e)) != NF_OK ||
	    (rc = nf_req_form_one(r, "MessagingBinding.Address", AUTHOR_MAX, 0, &addr, e)) != NF_OK)
		return rc;
	if (addr == NULL)
		return NF_OK;
	in.channel = channel_of(addr);
	in.address = addr;
	in.twilio_sid = sid;
	rc = nf_conv_open(r->app, r->tenant, &in, &conv, &created, e);
	json_object_put(conv);
	return rc;
}

static enum nf_err
on_state_updated(struct nf_req *r, struct nf_error *e)
{
	const char	*sid, *to;
	enum nf_err	 rc;

	if ((rc = nf_req_form_sid(r, "ConversationSid", "CH", 1, &sid, e)) != NF_OK ||
	    (rc = nf_req_form_one(r, "StateTo", 32, 1, &to, e)) != NF_OK)
		return rc;
	if (strcmp(to, "closed") != 0)
		return NF_OK;
	return nf_conv_accept_closed(r->app, r->tenant, sid, nf_now_ms(), e);
}

/* Twilio's delivery words to ours; NULL for one that changes nothing. */
static const char *
delivery_state(const char *s)
{
	static const struct { const char *twilio, *ours; } map[] = {
		{ "sent", "sent" }, { "delivered", "delivered" }, { "read", "read" },
		{ "failed", "failed" }, { "undelivered", "failed" },
	};
	size_t	 i;

	for (i = 0; i < NF_ARRAY_LEN(map); i++)
		if (strcmp(map[i].twilio, s) == 0)
			return map[i].ours;
	return NULL;
}

/* onDeliveryUpdated and the status callbacks: MessageSid + Status
 * (or DeliveryStatus / MessageStatus). */
static enum nf_err
on_delivery(struct nf_req *r, struct nf_error *e)
{
	const char	*sid, *status = NULL, *alt, *code, *state;
	char		*err = NULL;
	enum nf_err	 rc;

	if ((rc = nf_req_form_sid(r, "MessageSid", NULL, 1, &sid, e)) != NF_OK ||
	    (rc = nf_req_form_one(r, "Status", STATUS_MAX, 0, &status, e)) != NF_OK ||
	    (rc = nf_req_form_one(r, "DeliveryStatus", STATUS_MAX, 0, &alt, e)) != NF_OK ||
	    (status == NULL && (status = alt) == NULL &&
	    (rc = nf_req_form_one(r, "MessageStatus", STATUS_MAX, 1, &status, e)) != NF_OK) ||
	    (rc = nf_req_form_one(r, "ErrorCode", 16, 0, &code, e)) != NF_OK)
		return rc;
	if (!nf_valid_charset(status, STATUS_MAX, "_-"))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "Status",
		    "Status must be a delivery status word");
	if ((state = delivery_state(status)) == NULL)
		return NF_OK;
	if (strncmp(sid, "IM", 2) != 0) {
		nf_debug("delivery update for %s: not a Conversations message; ignored", sid);
		return NF_OK;
	}
	if (code != NULL && nf_valid_int(code, 0, 999999, NULL))
		err = nf_xasprintf("Twilio error %s", code);
	rc = nf_conv_delivery(r->app, r->tenant, NULL, sid, state, err, e);
	free(err);
	if (rc == NF_ENOTFOUND) {
		nf_info("delivery update for unknown message %s: ignored", sid);
		nf_error_clear(e);
		rc = NF_OK;
	}
	return rc;
}

/* ---- the routes ------------------------------------------------------------------ */

static void
ok(struct nf_req *r)
{
	nf_resp_json(r, 200, json_object_new_object());
}

/*
 * POST /webhooks/twilio/conversations - public, Twilio-signed.
 * EventType onMessageAdded, onConversationAdded, onParticipantAdded,
 * onConversationStateUpdated, onDeliveryUpdated; any other is ignored.
 * 200 {} once stored (also for a duplicate, which changes nothing, and
 * for an ignored event); 400 malformed or missing field, nothing stored;
 * 403 signature (router); 503 store (or store and Redis) unavailable.
 */
enum nf_err
h_webhooks_conversations(struct nf_req *r, struct nf_error *e)
{
	const char	*type;
	enum nf_err	 rc;

	if ((rc = nf_req_form_one(r, "EventType", EVENT_TYPE_MAX, 1, &type, e)) != NF_OK)
		return rc;
	if (strcmp(type, "onMessageAdded") == 0)
		rc = on_message_added(r, e);
	else if (strcmp(type, "onConversationAdded") == 0 ||
	    strcmp(type, "onParticipantAdded") == 0)
		rc = on_address(r, e);
	else if (strcmp(type, "onConversationStateUpdated") == 0)
		rc = on_state_updated(r, e);
	else if (strcmp(type, "onDeliveryUpdated") == 0)
		rc = on_delivery(r, e);
	else if (nf_valid_request_id(type))
		nf_debug("conversations event %s ignored", type);
	else
		return nf_error_set(e, NF_EINVAL, "invalid_field", "EventType",
		    "EventType must be [A-Za-z0-9._:-]");
	if (rc == NF_OK)
		ok(r);
	return rc;
}

/*
 * POST /webhooks/twilio/conversations/status - public, Twilio-signed.
 * A message status callback: MessageSid + Status / DeliveryStatus /
 * MessageStatus.  200 {} (also for an unknown message or a status that
 * would move a message backwards); 400; 403 (router); 503.
 */
enum nf_err
h_webhooks_conversations_status(struct nf_req *r, struct nf_error *e)
{
	enum nf_err	 rc;

	if ((rc = on_delivery(r, e)) == NF_OK)
		ok(r);
	return rc;
}
