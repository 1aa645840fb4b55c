/*
 * conversations.c - conversations and messages (conversations.h): the
 * documents, their indexes, the state machine and the events every change
 * publishes.  Webhooks, the web chat, the inbox routes and the jobs all
 * record messages and change states through this file only.
 *
 * DESIGN: exactly-once comes from the store, never from a check-then-write:
 *   - a message carries its natural keys (twilioSid, dedupeKey) under
 *     unique indexes, so of any number of concurrent copies one insert
 *     wins and the others read the stored message back as a duplicate;
 *     absent keys are left out of the document (not stored as null),
 *     because the unique indexes constrain only documents that have the
 *     key (store_mongo.c's partial filter, SQLite's NULLs);
 *   - a conversation is found by its Twilio SID (unique) or, without one,
 *     by `openKey` ("<channel>:<address>", unique, removed when it
 *     closes), so the first messages of a new customer racing each other
 *     open one conversation, and a closed one never swallows a new one;
 *   - every state change is one find-and-modify on {_id, status in the
 *     allowed ones[, version]} that increments `version`, so two workers
 *     never both win and a stale claimer cannot commit (battery 56).
 * A message is not a state change: it moves preview/lastMessageAt but not
 * the version, so a customer writing does not break an agent's claim.
 * Events are best effort (the write is durable before anything is
 * published); the web-chat customer's topic gets only the public part of
 * a conversation (no assignee, note or customer id).
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
#include "conversations.h"
#include "customers.h"
#include "events.h"
#include "jobs.h"
#include "json.h"
#include "log.h"
#include "nonflex.h"
#include "spool.h"
#include "store.h"
#include "tenant.h"
#include "valid.h"

#define CONVS		"conversations"
#define MSGS		"messages"
#define PREVIEW_MAX	120     /* bytes of the last message kept on the conversation */
#define AUTHOR_MAX	256
#define ADDRESS_MAX	256
#define KEY_MAX		200     /* dedupe key */
#define MEDIA_MAX	10
#define REASON_MAX	200
#define NOTE_MAX	2000
#define DISPOSITION_MAX	64
#define AGENT_ID_MAX	64

static const struct nf_index indexes[] = {
	{ "messages_twilio_sid", { "twilioSid", NULL }, { 1 }, 1 },
	{ "messages_dedupe", { "dedupeKey", NULL }, { 1 }, 1 },
	{ "messages_conversation", { "conversationId", "createdAt", NULL }, { 1, 1 }, 0 },
	{ "conversations_twilio_sid", { "twilioSid", NULL }, { 1 }, 1 },
	{ "conversations_open_key", { "openKey", NULL }, { 1 }, 1 },
	{ "conversations_status_last", { "status", "lastMessageAt", NULL }, { 1, -1 }, 0 },
	{ "conversations_queue", { "status", "priority", "queuedAt", NULL }, { 1, -1, 1 }, 0 },
	{ "conversations_assigned", { "assignedTo", "lastMessageAt", NULL }, { 1, -1 }, 0 },
	{ "conversations_last", { "lastMessageAt", NULL }, { -1 }, 0 },
	{ "conversations_customer", { "customerId", "lastMessageAt", NULL }, { 1, -1 }, 0 },
};
static const char *const index_colls[] = { MSGS, MSGS, MSGS, CONVS, CONVS, CONVS, CONVS,
	CONVS, CONVS, CONVS };

static const char *const channels[] = { "whatsapp", "sms", "webchat", NULL };
static const char *const directions[] = { "inbound", "outbound", NULL };
static const char *const author_kinds[] = { "customer", "bot", "agent", NULL };
/* Delivery states in precedence order; "failed" is handled apart. */
static const char *const deliveries[] = { "received", "queued", "sent", "delivered",
	"read", NULL };

/* The store handle this process ensured the indexes on. */
static struct nf_store	*indexed_store;

enum nf_err
nf_conv_store(struct nf_app *app, struct nf_store **st, struct nf_error *e)
{
	enum nf_err	 rc;

	_Static_assert(NF_ARRAY_LEN(index_colls) == NF_ARRAY_LEN(indexes), "one per index");
	if ((rc = nf_app_store(app, st, e)) != NF_OK)
		return rc;
	return nf_store_ensure_indexes(*st, index_colls, indexes, NF_ARRAY_LEN(indexes),
	    &indexed_store, e);
}

/* ---- small helpers -------------------------------------------------------- */

/* {"$in": [list...]} for a NULL-terminated list. */
static struct json_object *
in_list(const char *const *list)
{
	struct json_object	*a = json_object_new_array(), *o = json_object_new_object();
	size_t			 i;

	for (i = 0; list[i] != NULL; i++)
		json_object_array_add(a, json_object_new_string(list[i]));
	nf_json_add(o, "$in", a);
	return o;
}

/* {"$exists": yes}. */
static struct json_object *
exists(int yes)
{
	struct json_object	*o = json_object_new_object();

	nf_json_add_bool(o, "$exists", yes);
	return o;
}

static struct json_object *
inc_version(void)
{
	struct json_object	*o = json_object_new_object();

	nf_json_add_int(o, "version", 1);
	return o;
}

static void
now_iso(char at[25])
{
	nf_iso8601(nf_now_ms(), at);
}

/* The first n bytes of s cut back to a UTF-8 character boundary (malloc'd). */
static char *
utf8_prefix(const char *s, size_t n)
{
	size_t	 len = strlen(s);

	if (len <= n)
		return nf_xstrdup(s);
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return nf_xstrndup(s, n);
}

static int
is_closed(struct json_object *conv)
{
	const char	*st = nf_json_field_str(conv, "status");

	return st != NULL && strcmp(st, "closed") == 0;
}

static enum nf_err
not_found(struct nf_error *e)
{
	return nf_error_set(e, NF_ENOTFOUND, "conversation_not_found", NULL,
	    "no such conversation");
}

/* ---- views ----------------------------------------------------------------- */

static struct json_object *
view(struct json_object *doc, const char *const *fields, const char *const *nullable)
{
	struct json_object	*out = json_object_new_object(), *v;
	size_t			 i;

	if (doc == NULL)
		return out;
	nf_json_add_str(out, "id", nf_json_field_str(doc, "_id"));
	for (i = 0; fields[i] != NULL; i++)
		if (json_object_object_get_ex(doc, fields[i], &v))
			nf_json_add(out, fields[i], json_object_get(v));   /* shared */
	for (i = 0; nullable[i] != NULL; i++)
		if (!json_object_object_get_ex(out, nullable[i], NULL))
			nf_json_add(out, nullable[i], NULL);
	return out;
}

static const char *const conv_fields[] = { "channel", "address", "customerId", "status",
	"assignedTo", "aiEnabled", "taskSid", "twilioSid", "priority", "preview",
	"handoffReason", "createdAt", "updatedAt", "lastMessageAt", "queuedAt",
	"assignedAt", "firstResponseAt", "closedAt", "disposition", "note",
	"version", NULL };
static const char *const conv_nullable[] = { "customerId", "assignedTo", "taskSid",
	"twilioSid", NULL };

struct json_object *
nf_conv_view(struct json_object *conv)
{
	return view(conv, conv_fields, conv_nullable);
}

static int
listed(const char *const *list, const char *k)
{
	for (; *list != NULL; list++)
		if (strcmp(*list, k) == 0)
			return 1;
	return 0;
}

void
nf_conv_shape(struct json_object *conv)
{
	const char	*drop[32];
	char		 id[25];
	size_t		 n = 0, i;

	snprintf(id, sizeof(id), "%s", nf_json_field_str(conv, "_id") ?
	    nf_json_field_str(conv, "_id") : "");
	do {            /* again while drop[] was full: nothing internal stays */
		n = 0;
		json_object_object_foreach(conv, k, v) {
			(void)v;
			if (!listed(conv_fields, k) && n < NF_ARRAY_LEN(drop))
				drop[n++] = k;
		}
		/* Deleted after the walk, which deleting would break. */
		for (i = 0; i < n; i++)
			json_object_object_del(conv, drop[i]);
	} while (n == NF_ARRAY_LEN(drop));
	nf_json_add_str(conv, "id", id);
	for (i = 0; conv_nullable[i] != NULL; i++)
		if (!json_object_object_get_ex(conv, conv_nullable[i], NULL))
			nf_json_add(conv, conv_nullable[i], NULL);
}

struct json_object *
nf_conv_message_view(struct json_object *msg)
{
	static const char *const f[] = { "conversationId", "direction", "authorKind",
		"author", "body", "media", "twilioSid", "delivery", "deliveryError",
		"attempts", "createdAt", "updatedAt", NULL };
	static const char *const n[] = { "twilioSid", NULL };

	return view(msg, f, n);
}

/* What a web-chat customer may see of its conversation. */
static struct json_object *
public_view(struct json_object *conv)
{
	static const char *const f[] = { "channel", "status", "createdAt", "closedAt", NULL };
	static const char *const n[] = { NULL };

	return view(conv, f, n);
}

/* ---- events ---------------------------------------------------------------- */

static void
publish_one(const char *tenant, const char *topic, const char *type,
    struct json_object *data)
{
	struct nf_error	 e;

	nf_error_clear(&e);
	if (!nf_events_valid_topic(topic)) {
		nf_warn("conversation event %s: topic %s is not valid", type, topic);
		return;
	}
	if (nf_events_publish(tenant, topic, type, data, &e) != NF_OK)
		nf_warn("conversation event %s on %s not published: %s", type, topic,
		    e.message[0] != '\0' ? e.message : e.code);
}

/* A message as the web-chat visitor may see it: no agent username, no
 * Twilio or dedupe internals. */
static struct json_object *
visitor_message(struct json_object *msg)
{
	static const char *const keep[] = { "id", "conversationId", "direction",
		"authorKind", "body", "media", "delivery", "createdAt", NULL };
	struct json_object	*out = json_object_new_object(), *v;
	size_t			 i;

	for (i = 0; keep[i] != NULL; i++)
		if (json_object_object_get_ex(msg, keep[i], &v))
			nf_json_add(out, keep[i], json_object_get(v));
	return out;
}

/* data for the web-chat topic: a copy whose "conversation" is public and
 * whose "message" is the visitor's view. */
static struct json_object *
webchat_data(struct json_object *conv, struct json_object *data)
{
	struct json_object	*out = json_object_new_object();

	if (data != NULL) {
		json_object_object_foreach(data, k, v) {
			if (strcmp(k, "message") == 0)
				nf_json_add(out, k, visitor_message(v));
			else if (strcmp(k, "conversation") != 0)
				nf_json_add(out, k, json_object_get(v));   /* shared */
		}
	}
	nf_json_add(out, "conversation", public_view(conv));
	return out;
}

void
nf_conv_publish(const struct nf_tenant *t, struct json_object *conv, const char *type,
    struct json_object *data)
{
	const char		*agent = nf_json_field_str(conv, "assignedTo");
	const char		*channel = nf_json_field_str(conv, "channel");
	struct json_object	*wd;
	char			*topic;

	publish_one(t->id, "queue", type, data);
	if (agent != NULL) {
		topic = nf_xasprintf("agent-%s", agent);
		publish_one(t->id, topic, type, data);
		free(topic);
	}
	if (channel != NULL && strcmp(channel, "webchat") == 0 &&
	    nf_json_field_str(conv, "address") != NULL) {
		topic = nf_xasprintf("webchat-%s", nf_json_field_str(conv, "address"));
		wd = webchat_data(conv, data);
		publish_one(t->id, topic, type, wd);
		json_object_put(wd);
		free(topic);
	}
}

/* Publish type with {conversationId, conversation[, extra fields]}. */
static void
publish_conv(const struct nf_tenant *t, struct json_object *conv, const char *type,
    const char *k, struct json_object *v)
{
	struct json_object	*d = json_object_new_object();

	nf_json_add_str(d, "conversationId", nf_json_field_str(conv, "_id"));
	nf_json_add(d, "conversation", nf_conv_view(conv));
	if (k != NULL)
		nf_json_add(d, k, v);
	else
		json_object_put(v);
	nf_conv_publish(t, conv, type, d);
	json_object_put(d);
}

/* ---- reading ---------------------------------------------------------------- */

enum nf_err
nf_conv_get(struct nf_app *app, const struct nf_tenant *t, const char *id,
    struct json_object **conv, struct nf_error *e)
{
	struct nf_store		*st;
	struct json_object	*f;
	enum nf_err		 rc;

	*conv = NULL;
	if (id == NULL || !nf_valid_hex24(id))
		return not_found(e);
	if ((rc = nf_conv_store(app, &st, e)) != NF_OK)
		return rc;
	f = nf_json_pair("_id", id);
	rc = nf_store_find_one(st, t->id, CONVS, f, NULL, conv, e);
	json_object_put(f);
	return rc == NF_ENOTFOUND ? not_found(e) : rc;
}

/* ---- opening a conversation -------------------------------------------------- */

static enum nf_err
check_inbound(const struct nf_conv_inbound *in, struct nf_error *e)
{
	if (in->channel == NULL || nf_valid_enum(in->channel, channels) < 0)
		return nf_error_set(e, NF_EINVAL, "invalid_field", "channel",
		    "channel must be whatsapp, sms or webchat");
	if (in->address == NULL || !nf_valid_utf8(in->address, strlen(in->address), 1,
	    ADDRESS_MAX))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "address",
		    "address must be 1 to %d bytes of UTF-8", ADDRESS_MAX);
	if (in->twilio_sid != NULL && !nf_valid_twilio_sid(in->twilio_sid, "CH"))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "twilioSid",
		    "twilioSid must be a Conversation SID (CH...)");
	return NF_OK;
}

/*
 * The externalId of the local customer whose phone is the address (after
 * a "whatsapp:" prefix), or NULL.  Only the local store: a webhook never
 * waits on the CRM.  Failures just leave the customer unknown.
 */
static char *
customer_of(struct nf_app *app, struct nf_store *st, const char *tenant,
    const struct nf_conv_inbound *in)
{
	struct json_object	*f, *or, *doc = NULL;
	struct nf_error		 e;
	const char		*a = in->address;
	char			 e164[NF_PHONE_MAX + 1], *id = NULL;

	if (strcmp(in->channel, "webchat") == 0)
		return NULL;
	if (strncmp(a, "whatsapp:", 9) == 0)
		a += 9;
	nf_error_clear(&e);
	if (nf_phone_e164(a, app->cfg.phone_default_cc, e164, &e) != NF_OK ||
	    nf_customers_migrate(st, &e) != NF_OK)
		return NULL;
	or = json_object_new_array();
	json_object_array_add(or, nf_json_pair("profile.phone", e164));
	json_object_array_add(or, nf_json_pair("phones", e164));
	f = json_object_new_object();
	nf_json_add(f, "$or", or);
	if (nf_store_find_one(st, tenant, "customers", f, NULL, &doc, &e) == NF_OK &&
	    nf_json_field_str(doc, "externalId") != NULL)
		id = nf_xstrdup(nf_json_field_str(doc, "externalId"));
	json_object_put(f);
	json_object_put(doc);
	return id;
}

/* The filter that finds in's open conversation. */
static struct json_object *
open_filter(const struct nf_conv_inbound *in)
{
	struct json_object	*f;
	char			*key;

	if (in->twilio_sid != NULL)
		return nf_json_pair("twilioSid", in->twilio_sid);
	key = nf_xasprintf("%s:%s", in->channel, in->address);
	f = nf_json_pair("openKey", key);
	free(key);
	return f;
}

static struct json_object *
new_conv(struct nf_app *app, struct nf_store *st, const char *tenant,
    const struct nf_conv_inbound *in)
{
	struct json_object	*d = json_object_new_object();
	char			 id[25], at[25], *cust, *key;

	nf_id_new(id);
	now_iso(at);
	nf_json_add_str(d, "_id", id);
	nf_json_add_str(d, "channel", in->channel);
	nf_json_add_str(d, "address", in->address);
	cust = customer_of(app, st, tenant, in);
	nf_json_add_str(d, "customerId", cust);
	free(cust);
	nf_json_add_str(d, "status", "ai");
	nf_json_add(d, "assignedTo", NULL);
	nf_json_add_bool(d, "aiEnabled", 1);
	nf_json_add(d, "taskSid", NULL);
	if (in->twilio_sid != NULL)
		nf_json_add_str(d, "twilioSid", in->twilio_sid);
	else {
		key = nf_xasprintf("%s:%s", in->channel, in->address);
		nf_json_add_str(d, "openKey", key);
		free(key);
	}
	nf_json_add_int(d, "priority", 0);
	nf_json_add_str(d, "preview", "");
	nf_json_add_str(d, "createdAt", at);
	nf_json_add_str(d, "updatedAt", at);
	nf_json_add_str(d, "lastMessageAt", at);
	nf_json_add_int(d, "version", 1);
	return d;
}

/*
 * A closed conversation that Twilio still writes to (same CH SID) opens
 * again for the AI: its SID is unique, so it cannot get a new document.
 * The caller publishes conversation.updated.
 */
static enum nf_err
reopen(struct nf_store *st, const struct nf_tenant *t, struct json_object **conv,
    struct nf_error *e)
{
	struct json_object	*f, *u, *set, *unset, *out = NULL;
	char			 at[25];
	enum nf_err		 rc;

	now_iso(at);
	f = nf_json_pair("_id", nf_json_field_str(*conv, "_id"));
	nf_json_add_str(f, "status", "closed");
	set = json_object_new_object();
	nf_json_add_str(set, "status", "ai");
	nf_json_add_bool(set, "aiEnabled", 1);
	nf_json_add(set, "assignedTo", NULL);
	nf_json_add_str(set, "updatedAt", at);
	unset = json_object_new_object();
	nf_json_add_str(unset, "closedAt", "");
	nf_json_add_str(unset, "disposition", "");
	nf_json_add_str(unset, "queuedAt", "");
	u = json_object_new_object();
	nf_json_add(u, "$set", set);
	nf_json_add(u, "$unset", unset);
	nf_json_add(u, "$inc", inc_version());
	rc = nf_store_find_and_modify(st, t->id, CONVS, f, NULL, u, NF_STORE_NEW, &out, e);
	json_object_put(f);
	json_object_put(u);
	if (rc == NF_ENOTFOUND) {       /* someone else reopened it: read it again */
		nf_error_clear(e);
		f = nf_json_pair("_id", nf_json_field_str(*conv, "_id"));
		rc = nf_store_find_one(st, t->id, CONVS, f, NULL, &out, e);
		json_object_put(f);
		if (rc != NF_OK)
			return rc == NF_ENOTFOUND ? not_found(e) : rc;
		json_object_put(*conv);
		*conv = out;
		return NF_OK;
	}
	if (rc != NF_OK)
		return rc;
	json_object_put(*conv);
	*conv = out;
	return NF_OK;
}

enum nf_err
nf_conv_open(struct nf_app *app, const struct nf_tenant *t,
    const struct nf_conv_inbound *in, struct json_object **conv, int *created,
    struct nf_error *e)
{
	struct nf_store		*st;
	struct json_object	*f, *doc;
	enum nf_err		 rc;
	int			 attempt;

	*conv = NULL;
	*created = 0;
	if ((rc = check_inbound(in, e)) != NF_OK || (rc = nf_conv_store(app, &st, e)) != NF_OK)
		return rc;
	f = open_filter(in);
	/* Find, else insert; a lost insert race finds the winner's document. */
	for (attempt = 0; attempt < 2; attempt++) {
		rc = nf_store_find_one(st, t->id, CONVS, f, NULL, conv, e);
		if (rc != NF_ENOTFOUND)
			break;
		nf_error_clear(e);
		doc = new_conv(app, st, t->id, in);
		rc = nf_store_insert(st, t->id, CONVS, doc, NULL, e);
		if (rc == NF_OK) {
			*conv = doc;
			*created = 1;
			break;
		}
		json_object_put(doc);
		if (rc != NF_ECONFLICT)
			break;
		nf_error_clear(e);
	}
	json_object_put(f);
	if (rc == NF_ECONFLICT || rc == NF_ENOTFOUND)
		rc = nf_error_set(e, NF_ESTORE, "store_error", NULL,
		    "the conversation could not be opened");
	if (rc != NF_OK)
		return rc;
	if (*created)
		publish_conv(t, *conv, "conversation.created", NULL, NULL);
	else if (is_closed(*conv) && (rc = reopen(st, t, conv, e)) == NF_OK)
		publish_conv(t, *conv, "conversation.updated", NULL, NULL);
	if (rc != NF_OK) {
		json_object_put(*conv);
		*conv = NULL;
	}
	return rc;
}

/* ---- messages ------------------------------------------------------------------- */

/* A dedupe key: [A-Za-z0-9._:-]{1,KEY_MAX}. */
static int
key_ok(const char *s)
{
	size_t	 n;

	for (n = 0; s[n] != '\0'; n++)
		if (n >= KEY_MAX || !((s[n] >= 'a' && s[n] <= 'z') ||
		    (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9') ||
		    strchr("._:-", s[n]) != NULL))
			return 0;
	return n > 0;
}

static enum nf_err
check_msg(const struct nf_conv_msg *m, struct nf_error *e)
{
	size_t	 i, n;

	if (m->direction == NULL || nf_valid_enum(m->direction, directions) < 0)
		return nf_error_set(e, NF_EINVAL, "invalid_field", "direction",
		    "direction must be inbound or outbound");
	if (m->author_kind == NULL || nf_valid_enum(m->author_kind, author_kinds) < 0)
		return nf_error_set(e, NF_EINVAL, "invalid_field", "authorKind",
		    "authorKind must be customer, bot or agent");
	if ((strcmp(m->direction, "inbound") == 0) != (strcmp(m->author_kind, "customer") == 0))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "authorKind",
		    "only customers write inbound messages");
	if (m->author == NULL || !nf_valid_utf8(m->author, strlen(m->author), 1, AUTHOR_MAX))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "author",
		    "author must be 1 to %d bytes of UTF-8", AUTHOR_MAX);
	if (m->body == NULL || !nf_valid_utf8(m->body, strlen(m->body), 0, NF_CONV_BODY_MAX))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "body",
		    "body must be at most %d bytes of UTF-8", NF_CONV_BODY_MAX);
	if (m->media != NULL) {
		if (!json_object_is_type(m->media, json_type_array) ||
		    (n = json_object_array_length(m->media)) > MEDIA_MAX)
			return nf_error_set(e, NF_EINVAL, "invalid_field", "media",
			    "media must be an array of at most %d objects", MEDIA_MAX);
		for (i = 0; i < n; i++)
			if (!json_object_is_type(json_object_array_get_idx(m->media, i),
			    json_type_object))
				return nf_error_set(e, NF_EINVAL, "invalid_field", "media",
				    "media must be an array of objects");
	}
	if (m->body[0] == '\0' && (m->media == NULL || json_object_array_length(m->media) == 0))
		return nf_error_set(e, NF_EINVAL, "missing_field", "body",
		    "a message needs a body or media");
	if (m->twilio_sid != NULL && !nf_valid_twilio_sid(m->twilio_sid, "IM"))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "twilioSid",
		    "twilioSid must be a Conversations message SID (IM...)");
	if (m->dedupe_key != NULL && !key_ok(m->dedupe_key))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "dedupeKey",
		    "dedupeKey must be 1 to %d characters of [A-Za-z0-9:._-]", KEY_MAX);
	return NF_OK;
}

static struct json_object *
new_msg(const char *conv_id, const struct nf_conv_msg *m, const char *delivery)
{
	struct json_object	*d = json_object_new_object();
	char			 id[25], at[25];

	nf_id_new(id);
	nf_iso8601(m->at_ms > 0 ? m->at_ms : nf_now_ms(), at);
	nf_json_add_str(d, "_id", id);
	nf_json_add_str(d, "conversationId", conv_id);
	nf_json_add_str(d, "direction", m->direction);
	nf_json_add_str(d, "authorKind", m->author_kind);
	nf_json_add_str(d, "author", m->author);
	nf_json_add_str(d, "body", m->body);
	nf_json_add(d, "media", m->media != NULL ? json_object_get(m->media) :
	    json_object_new_array());   /* shared with the caller's */
	if (m->twilio_sid != NULL)
		nf_json_add_str(d, "twilioSid", m->twilio_sid);
	if (m->dedupe_key != NULL)
		nf_json_add_str(d, "dedupeKey", m->dedupe_key);
	nf_json_add_str(d, "delivery", delivery);
	nf_json_add(d, "deliveryError", NULL);
	nf_json_add_int(d, "attempts", 0);
	nf_json_add_str(d, "createdAt", at);
	nf_json_add_str(d, "updatedAt", at);
	return d;
}

/*
 * Recording a message is one atomic unit (nf_store_atomic): the copy
 * check, the message and the conversation's preview, lastMessageAt and
 * firstResponseAt land together or not at all, so a crash can never leave
 * a message the inbox does not show, and the whole costs one commit.
 * With an inbound address the unit also finds or opens the conversation.
 * Events go out after the commit.
 */
struct rec {
	struct nf_app			*app;
	const struct nf_tenant		*t;
	const char			*conv_id;   /* or NULL with in */
	const struct nf_conv_inbound	*in;
	const struct nf_conv_msg	*m;
	const char			*delivery;
	struct json_object		*conv, *msg;
	int				 dup, created, reopened;
};

static void
rec_reset(struct rec *rc)
{
	json_object_put(rc->conv);
	json_object_put(rc->msg);
	rc->conv = rc->msg = NULL;
	rc->dup = rc->created = rc->reopened = 0;
}

/* rc->conv: the conversation by id, or in's open one (found, opened, or a
 * closed one with the same Twilio SID reopened). */
static enum nf_err
rec_conv(struct nf_store *st, struct rec *rc, struct nf_error *e)
{
	struct json_object	*f;
	enum nf_err		 err;

	f = rc->in != NULL ? open_filter(rc->in) : nf_json_pair("_id", rc->conv_id);
	err = nf_store_find_one(st, rc->t->id, CONVS, f, NULL, &rc->conv, e);
	json_object_put(f);
	if (err == NF_ENOTFOUND && rc->in == NULL)
		return not_found(e);
	if (err == NF_ENOTFOUND) {
		nf_error_clear(e);
		rc->conv = new_conv(rc->app, st, rc->t->id, rc->in);
		rc->created = 1;
		return nf_store_insert(st, rc->t->id, CONVS, rc->conv, NULL, e);
	}
	if (err == NF_OK && rc->in != NULL && is_closed(rc->conv)) {
		rc->reopened = 1;
		err = reopen(st, rc->t, &rc->conv, e);
	}
	return err;
}

/* Move the conversation on after rc->msg. */
static enum nf_err
rec_touch(struct nf_store *st, struct rec *rc, struct nf_error *e)
{
	struct json_object	*f, *u, *set, *out = NULL;
	const char		*at = nf_json_field_str(rc->msg, "createdAt");
	char			*preview = utf8_prefix(nf_json_field_str(rc->msg, "body"),
				    PREVIEW_MAX);
	enum nf_err		 err;

	set = json_object_new_object();
	/* A spooled message recorded after a later one does not move the
	 * conversation back (the ISO strings compare as times). */
	if (rc->created || nf_json_field_str(rc->conv, "lastMessageAt") == NULL ||
	    strcmp(at, nf_json_field_str(rc->conv, "lastMessageAt")) >= 0) {
		nf_json_add_str(set, "preview", preview);
		nf_json_add_str(set, "lastMessageAt", at);
	}
	nf_json_add_str(set, "updatedAt", at);
	/* The first answer, once: the unit read the conversation already. */
	if (strcmp(rc->m->author_kind, "customer") != 0 &&
	    nf_json_field_str(rc->conv, "firstResponseAt") == NULL)
		nf_json_add_str(set, "firstResponseAt", at);
	u = json_object_new_object();
	nf_json_add(u, "$set", set);
	f = nf_json_pair("_id", nf_json_field_str(rc->conv, "_id"));
	err = nf_store_find_and_modify(st, rc->t->id, CONVS, f, NULL, u, NF_STORE_NEW, &out,
	    e);
	json_object_put(f);
	json_object_put(u);
	free(preview);
	if (err == NF_ENOTFOUND)
		return not_found(e);
	if (err == NF_OK) {
		json_object_put(rc->conv);
		rc->conv = out;
	}
	return err;
}

static enum nf_err
rec_unit(struct nf_store *st, void *ctx, struct nf_error *e)
{
	struct rec	*rc = ctx;
	struct json_object *f, *or;
	enum nf_err	 err;

	rec_reset(rc);          /* MongoDB may run a unit again */
	if ((err = rec_conv(st, rc, e)) != NF_OK)
		return err;
	/* Look before writing: inside a MongoDB transaction a failed insert
	 * would abort the whole unit. */
	if (rc->m->twilio_sid != NULL || rc->m->dedupe_key != NULL) {
		or = json_object_new_array();
		if (rc->m->twilio_sid != NULL)
			json_object_array_add(or, nf_json_pair("twilioSid", rc->m->twilio_sid));
		if (rc->m->dedupe_key != NULL)
			json_object_array_add(or, nf_json_pair("dedupeKey", rc->m->dedupe_key));
		f = json_object_new_object();
		nf_json_add(f, "$or", or);
		err = nf_store_find_one(st, rc->t->id, MSGS, f, NULL, &rc->msg, e);
		json_object_put(f);
		if (err == NF_OK) {
			rc->dup = 1;
			return NF_OK;
		}
		if (err != NF_ENOTFOUND)
			return err;
		nf_error_clear(e);
	}
	rc->msg = new_msg(nf_json_field_str(rc->conv, "_id"), rc->m, rc->delivery);
	if ((err = nf_store_insert(st, rc->t->id, MSGS, rc->msg, NULL, e)) != NF_OK)
		return err;
	return rec_touch(st, rc, e);
}

/* Run the unit; a conflict (a concurrent copy won an insert race on a
 * store that does not serialize units) runs it once more, to find it. */
static enum nf_err
rec_run(struct nf_store *st, struct rec *rc, struct nf_error *e)
{
	enum nf_err	 err = nf_store_atomic(st, rec_unit, rc, e);

	if (err == NF_ECONFLICT) {
		nf_error_clear(e);
		err = nf_store_atomic(st, rec_unit, rc, e);
		if (err == NF_ECONFLICT)
			err = nf_error_set(e, NF_ESTORE, "store_error", NULL,
			    "the message conflicts with a stored one");
	}
	if (err != NF_OK)
		rec_reset(rc);
	return err;
}

/* After the commit: what happened, to every channel that shows it. */
static void
rec_publish(const struct rec *rc)
{
	struct json_object	*d;

	if (rc->created)
		publish_conv(rc->t, rc->conv, "conversation.created", NULL, NULL);
	else if (rc->reopened)
		publish_conv(rc->t, rc->conv, "conversation.updated", NULL, NULL);
	if (rc->dup)
		return;
	d = json_object_new_object();
	nf_json_add_str(d, "conversationId", nf_json_field_str(rc->conv, "_id"));
	nf_json_add(d, "message", nf_conv_message_view(rc->msg));
	nf_json_add(d, "conversation", nf_conv_view(rc->conv));
	nf_conv_publish(rc->t, rc->conv, "message.created", d);
	json_object_put(d);
}

static struct rec *
rec_init(struct rec *rc, struct nf_app *app, const struct nf_tenant *t,
    const struct nf_conv_msg *m, const char *delivery)
{
	memset(rc, 0, sizeof(*rc));
	rc->app = app;
	rc->t = t;
	rc->m = m;
	rc->delivery = delivery;
	return rc;
}

/* Record in conversation conv_id, or in in's open one, then publish. */
static enum nf_err
rec_record(struct nf_store *st, struct rec *rc, const char *conv_id,
    const struct nf_conv_inbound *in, struct nf_error *e)
{
	enum nf_err	 err;

	rc->conv_id = conv_id;
	rc->in = in;
	if ((err = rec_run(st, rc, e)) == NF_OK)
		rec_publish(rc);
	return err;
}

static enum nf_err
record(struct nf_app *app, const struct nf_tenant *t, const char *conv_id,
    const struct nf_conv_msg *m, const char *delivery, struct json_object **msg, int *dup,
    struct nf_error *e)
{
	struct nf_store	*st;
	struct rec	 rc;
	enum nf_err	 err;

	if (msg != NULL)
		*msg = NULL;
	*dup = 0;
	if (conv_id == NULL || !nf_valid_hex24(conv_id))
		return not_found(e);
	if ((err = check_msg(m, e)) != NF_OK || (err = nf_conv_store(app, &st, e)) != NF_OK)
		return err;
	if ((err = rec_record(st, rec_init(&rc, app, t, m, delivery), conv_id, NULL, e)) != NF_OK)
		return err;
	*dup = rc.dup;
	if (msg != NULL) {
		*msg = rc.msg;
		rc.msg = NULL;
	}
	rec_reset(&rc);
	return NF_OK;
}

enum nf_err
nf_conv_receive(struct nf_app *app, const struct nf_tenant *t,
    const struct nf_conv_inbound *in, const struct nf_conv_msg *m,
    struct json_object **conv, struct json_object **msg, int *dup, struct nf_error *e)
{
	struct nf_store	*st;
	struct rec	 rc;
	enum nf_err	 err;

	*conv = *msg = NULL;
	*dup = 0;
	if ((err = check_inbound(in, e)) != NF_OK || (err = check_msg(m, e)) != NF_OK)
		return err;
	if (strcmp(m->direction, "inbound") != 0)
		return nf_error_set(e, NF_EINVAL, "invalid_field", "direction",
		    "only inbound messages open a conversation");
	/* The customer lookup a new conversation makes must not create
	 * indexes inside the unit. */
	if ((err = nf_conv_store(app, &st, e)) != NF_OK ||
	    (err = nf_customers_migrate(st, e)) != NF_OK)
		return err;
	if ((err = rec_record(st, rec_init(&rc, app, t, m, "received"), NULL, in, e)) != NF_OK)
		return err;
	*dup = rc.dup;
	*conv = rc.conv;
	*msg = rc.msg;
	return NF_OK;
}

enum nf_err
nf_conv_add_message(struct nf_app *app, const struct nf_tenant *t, const char *conv_id,
    const struct nf_conv_msg *m, struct json_object **msg, int *dup, struct nf_error *e)
{
	const char	*delivery = m->direction != NULL &&
			    strcmp(m->direction, "inbound") == 0 ? "received" : "queued";

	return record(app, t, conv_id, m, delivery, msg, dup, e);
}

enum nf_err
nf_conv_submit(struct nf_app *app, const struct nf_tenant *t, const char *type,
    const char *conv_id, const char *msg_id, int once, struct nf_error *e)
{
	struct json_object	*p;
	struct nf_store		*st;
	enum nf_err		 rc;
	int			 deferred = 0;

	if ((rc = nf_conv_store(app, &st, e)) != NF_OK)
		return rc;
	p = json_object_new_object();
	nf_json_add_str(p, "conversationId", conv_id);
	if (msg_id != NULL)
		nf_json_add_str(p, "messageId", msg_id);
	rc = once && msg_id != NULL ?
	    nf_jobs_submit_id(st, nf_app_kv(app), t->id, type, p, 0, msg_id, &deferred, e) :
	    nf_jobs_submit(st, nf_app_kv(app), t->id, type, p, 0, NULL, &deferred, e);
	json_object_put(p);
	if (rc == NF_OK && deferred)
		nf_info("job %s for conversation %s waits in the outbox", type, conv_id);
	return rc;
}

/* ---- accepting a customer's message: spooled or at once -------------------- */

#define REC_INBOUND	"conv.inbound"
#define REC_CLOSED	"conv.closed"

/* The spool record of m from in for tenant. */
static struct json_object *
spool_record(const char *tenant, const struct nf_conv_inbound *in,
    const struct nf_conv_msg *m)
{
	struct json_object	*o = json_object_new_object();

	nf_json_add_str(o, "kind", REC_INBOUND);
	nf_json_add_str(o, "tenant", tenant);
	nf_json_add_int(o, "at", m->at_ms > 0 ? m->at_ms : nf_now_ms());
	nf_json_add_str(o, "channel", in->channel);
	nf_json_add_str(o, "address", in->address);
	if (in->twilio_sid != NULL)
		nf_json_add_str(o, "convSid", in->twilio_sid);
	nf_json_add_str(o, "author", m->author);
	nf_json_add_str(o, "body", m->body);
	if (m->media != NULL)
		nf_json_add(o, "media", json_object_get(m->media));
	if (m->twilio_sid != NULL)
		nf_json_add_str(o, "sid", m->twilio_sid);
	if (m->dedupe_key != NULL)
		nf_json_add_str(o, "dedupe", m->dedupe_key);
	return o;
}

/*
 * Append rec (consumed) to the spool when there is one; 1 when it is
 * there, 0 when the caller must do the work at once (no spool, or one
 * that cannot take it: logged).
 */
static int
spooled(struct nf_app *app, struct json_object *rec, const char *what)
{
	struct nf_spool	*sp = nf_app_spool(app);
	struct nf_error	 e;
	enum nf_err	 rc = NF_EUNAVAIL;

	if (sp != NULL && (rc = nf_spool_append(sp, rec, &e)) != NF_OK)
		nf_warn("the spool cannot take %s (%s): doing it at once", what, e.code);
	json_object_put(rec);
	return rc == NF_OK;
}

/* Record and answer at once. */
static enum nf_err
receive_now(struct nf_app *app, const struct nf_tenant *t, const struct nf_conv_inbound *in,
    const struct nf_conv_msg *m, struct nf_error *e)
{
	struct json_object	*conv = NULL, *msg = NULL;
	enum nf_err		 rc;
	int			 dup = 0;

	if ((rc = nf_conv_receive(app, t, in, m, &conv, &msg, &dup, e)) != NF_OK)
		return rc;
	if (dup)
		nf_info("message %s replayed: already stored", nf_json_field_str(msg, "_id"));
	/* A duplicate still asks: the first copy may have died before. */
	rc = nf_conv_ask_ai(app, t, conv, msg, e);
	json_object_put(conv);
	json_object_put(msg);
	return rc;
}

enum nf_err
nf_conv_accept(struct nf_app *app, const struct nf_tenant *t,
    const struct nf_conv_inbound *in, const struct nf_conv_msg *m, struct nf_error *e)
{
	enum nf_err		 rc;

	if ((rc = check_inbound(in, e)) != NF_OK || (rc = check_msg(m, e)) != NF_OK)
		return rc;
	if (nf_app_spool(app) != NULL && spooled(app, spool_record(t->id, in, m), "a message"))
		return NF_OK;
	return receive_now(app, t, in, m, e);
}

/* A string field of a record: required, or NULL when absent. */
static enum nf_err
rec_str(struct json_object *rec, const char *k, int required, const char **out,
    struct nf_error *e)
{
	return nf_json_get_string(rec, k, 0, NF_SPOOL_RECORD_MAX, required, out, e);
}

enum nf_err
nf_conv_by_sid(struct nf_app *app, const struct nf_tenant *t, const char *sid,
    struct json_object **conv, struct nf_error *e)
{
	struct json_object	*f;
	struct nf_store		*st;
	enum nf_err		 rc;

	*conv = NULL;
	if ((rc = nf_conv_store(app, &st, e)) != NF_OK)
		return rc;
	f = nf_json_pair("twilioSid", sid);
	rc = nf_store_find_one(st, t->id, CONVS, f, NULL, conv, e);
	json_object_put(f);
	if (rc == NF_ENOTFOUND) {
		nf_error_clear(e);
		rc = NF_OK;
	}
	return rc;
}

/* Close ours after Twilio closed it (see nf_conv_accept_closed). */
static enum nf_err
closed_now(struct nf_app *app, const struct nf_tenant *t, const char *sid,
    struct nf_error *e)
{
	struct json_object	*conv = NULL, *data;
	struct nf_store		*st;
	const char		*status;
	enum nf_err		 rc;

	if ((rc = nf_conv_by_sid(app, t, sid, &conv, e)) != NF_OK || conv == NULL)
		return rc;
	status = nf_json_field_str(conv, "status");
	if (status != NULL && strcmp(status, "closed") != 0) {
		rc = nf_conv_close(app, t, nf_json_field_str(conv, "_id"), "twilio", NULL, NULL,
		    e);
		if (rc == NF_ECONFLICT) {       /* closed meanwhile */
			nf_error_clear(e);
			rc = NF_OK;
		} else if (rc == NF_OK && nf_conv_store(app, &st, e) == NF_OK) {
			data = json_object_new_object();
			nf_json_add_str(data, "conversationId", nf_json_field_str(conv, "_id"));
			nf_json_add_str(data, "disposition", "twilio");
			nf_audit_store(st, t->id, "twilio", "conversation.close", NULL, data);
		}
	}
	json_object_put(conv);
	return rc;
}

enum nf_err
nf_conv_accept_closed(struct nf_app *app, const struct nf_tenant *t, const char *sid,
    int64_t at_ms, struct nf_error *e)
{
	struct json_object	*rec;

	if (!nf_valid_twilio_sid(sid, "CH"))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "ConversationSid",
		    "ConversationSid must be a Conversation SID (CH...)");
	if (nf_app_spool(app) != NULL) {
		rec = json_object_new_object();
		nf_json_add_str(rec, "kind", REC_CLOSED);
		nf_json_add_str(rec, "tenant", t->id);
		nf_json_add_int(rec, "at", at_ms);
		nf_json_add_str(rec, "convSid", sid);
		if (spooled(app, rec, "a close"))
			return NF_OK;
	}
	return closed_now(app, t, sid, e);
}

enum nf_err
nf_conv_apply(struct nf_app *app, struct json_object *rec, struct nf_error *e)
{
	struct nf_conv_inbound	 in;
	struct nf_conv_msg	 m;
	const struct nf_tenant	*t;
	const char		*kind = NULL, *tenant = NULL;
	struct json_object	*v;
	enum nf_err		 rc;

	memset(&in, 0, sizeof(in));
	memset(&m, 0, sizeof(m));
	if (rec_str(rec, "kind", 1, &kind, e) != NF_OK ||
	    (strcmp(kind, REC_INBOUND) != 0 && strcmp(kind, REC_CLOSED) != 0))
		return nf_error_set(e, NF_EINVAL, "invalid_record", "kind",
		    "not a conv.inbound or conv.closed record");
	if (rec_str(rec, "tenant", 1, &tenant, e) != NF_OK)
		return NF_EINVAL;
	if (app->tenants == NULL)       /* not loaded (yet): never a reason to drop it */
		return nf_error_set(e, NF_EUNAVAIL, "not_configured", NULL,
		    "the tenants file is not loaded");
	if ((t = nf_tenant_find(app->tenants, tenant)) == NULL)
		return nf_error_set(e, NF_EINVAL, "tenant_not_found", "tenant",
		    "the record's tenant is not in the tenants file");
	if (strcmp(kind, REC_CLOSED) == 0) {
		if (rec_str(rec, "convSid", 1, &in.twilio_sid, e) != NF_OK ||
		    !nf_valid_twilio_sid(in.twilio_sid, "CH"))
			return nf_error_set(e, NF_EINVAL, "invalid_record", "convSid",
			    "a conv.closed record needs a Conversation SID");
		return closed_now(app, t, in.twilio_sid, e);
	}
	if ((rc = rec_str(rec, "channel", 1, &in.channel, e)) != NF_OK ||
	    (rc = rec_str(rec, "address", 1, &in.address, e)) != NF_OK ||
	    (rc = rec_str(rec, "convSid", 0, &in.twilio_sid, e)) != NF_OK ||
	    (rc = rec_str(rec, "author", 1, &m.author, e)) != NF_OK ||
	    (rc = rec_str(rec, "body", 1, &m.body, e)) != NF_OK ||
	    (rc = rec_str(rec, "sid", 0, &m.twilio_sid, e)) != NF_OK ||
	    (rc = rec_str(rec, "dedupe", 0, &m.dedupe_key, e)) != NF_OK ||
	    (rc = nf_json_get_int(rec, "at", 1, INT64_MAX, 1, &m.at_ms, e)) != NF_OK)
		return NF_EINVAL;
	if (json_object_object_get_ex(rec, "media", &v)) {
		if (!json_object_is_type(v, json_type_array))
			return nf_error_set(e, NF_EINVAL, "invalid_record", "media",
			    "media must be an array");
		m.media = v;
	}
	m.direction = "inbound";
	m.author_kind = "customer";
	return receive_now(app, t, &in, &m, e);
}

/*
 * The job's id is the message's, so every copy of the cause (a replayed
 * webhook, a resent web-chat message, Twilio's retry after a worker died
 * between storing the message and queueing its job) may submit it and it
 * is still queued exactly once.
 */
enum nf_err
nf_conv_ask_ai(struct nf_app *app, const struct nf_tenant *t, struct json_object *conv,
    struct json_object *msg, struct nf_error *e)
{
	const char	*status = nf_json_field_str(conv, "status");
	struct json_object *v;

	if (status == NULL || strcmp(status, "ai") != 0 ||
	    !json_object_object_get_ex(conv, "aiEnabled", &v) || !json_object_get_boolean(v))
		return NF_OK;
	return nf_conv_submit(app, t, "ai.reply", nf_json_field_str(conv, "_id"),
	    nf_json_field_str(msg, "_id"), 1, e);
}

enum nf_err
nf_conv_send(struct nf_app *app, const struct nf_tenant *t, const char *conv_id,
    const char *author_kind, const char *author, const char *body,
    struct json_object **msg, struct nf_error *e)
{
	int	 dup;

	return nf_conv_send_keyed(app, t, conv_id, author_kind, author, body, NULL, msg,
	    &dup, e);
}

enum nf_err
nf_conv_send_keyed(struct nf_app *app, const struct nf_tenant *t, const char *conv_id,
    const char *author_kind, const char *author, const char *body,
    const char *dedupe_key, struct json_object **msg, int *dup, struct nf_error *e)
{
	struct nf_conv_msg	 m;
	struct json_object	*conv = NULL, *doc = NULL;
	const char		*channel;
	enum nf_err		 rc;
	int			 webchat;

	*dup = 0;
	if (msg != NULL)
		*msg = NULL;
	if (author_kind == NULL || (strcmp(author_kind, "bot") != 0 &&
	    strcmp(author_kind, "agent") != 0))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "authorKind",
		    "authorKind must be bot or agent");
	if ((rc = nf_conv_get(app, t, conv_id, &conv, e)) != NF_OK)
		return rc;
	if (is_closed(conv)) {
		rc = nf_error_set(e, NF_ECONFLICT, "conversation_closed", NULL,
		    "the conversation is closed");
		goto out;
	}
	channel = nf_json_field_str(conv, "channel");
	webchat = channel != NULL && strcmp(channel, "webchat") == 0;
	memset(&m, 0, sizeof(m));
	m.direction = "outbound";
	m.author_kind = author_kind;
	m.author = author;
	m.body = body;
	m.dedupe_key = dedupe_key;
	/* The event itself delivers a web-chat message. */
	if ((rc = record(app, t, conv_id, &m, webchat ? "sent" : "queued", &doc, dup, e))
	    != NF_OK)
		goto out;
	/* Sent before by the same cause: whoever recorded it delivers it. */
	if (!*dup && !webchat && (rc = nf_conv_submit(app, t, "conv.deliver", conv_id,
	    nf_json_field_str(doc, "_id"), 0, e)) != NF_OK) {
		/* Stored but not queued: say so in the inbox rather than lose it. */
		nf_error("message %s of conversation %s could not be queued for delivery",
		    nf_json_field_str(doc, "_id"), conv_id);
		nf_conv_delivery(app, t, nf_json_field_str(doc, "_id"), NULL, "failed",
		    "could not be queued for delivery", NULL);
		goto out;
	}
	if (msg != NULL) {
		*msg = doc;
		doc = NULL;
	}
out:
	json_object_put(doc);
	json_object_put(conv);
	return rc;
}

/* ---- delivery states --------------------------------------------------------------- */

static int
delivery_rank(const char *s)
{
	size_t	 i;

	for (i = 0; s != NULL && deliveries[i] != NULL; i++)
		if (strcmp(deliveries[i], s) == 0)
			return (int)i;
	return -1;
}

/* The states a message may move to state from (NULL-terminated, static). */
static const char *const *
delivery_from(const char *state)
{
	static const char *const from_failed[] = { "queued", "sent", NULL };
	static const char *const from[][6] = {
		{ NULL },                                               /* received */
		{ "received", NULL },                                   /* queued */
		{ "received", "queued", NULL },                         /* sent */
		{ "received", "queued", "sent", NULL },                 /* delivered */
		{ "received", "queued", "sent", "delivered", NULL },    /* read */
	};
	int	 r;

	if (strcmp(state, "failed") == 0)
		return from_failed;
	r = delivery_rank(state);
	return r < 0 ? NULL : from[r];
}

/* Give a message of ours the Twilio SID it got (once; a conflict means an
 * echo recorded it apart, which is logged). */
static void
set_msg_sid(struct nf_store *st, const char *tenant, const char *id, const char *sid)
{
	struct json_object	*f = nf_json_pair("_id", id), *u, *set;
	struct nf_error		 e;

	nf_error_clear(&e);
	nf_json_add(f, "twilioSid", exists(0));
	set = json_object_new_object();
	nf_json_add_str(set, "twilioSid", sid);
	u = json_object_new_object();
	nf_json_add(u, "$set", set);
	if (nf_store_update(st, tenant, MSGS, f, u, 0, NULL, &e) != NF_OK)
		nf_warn("message %s: Twilio SID %s not recorded: %s", id, sid, e.message);
	json_object_put(f);
	json_object_put(u);
}

enum nf_err
nf_conv_delivery(struct nf_app *app, const struct nf_tenant *t, const char *message_id,
    const char *twilio_sid, const char *state, const char *error, struct nf_error *e)
{
	const char *const	*from;
	struct nf_store		*st;
	struct json_object	*f, *u, *set, *msg = NULL, *conv = NULL, *d;
	char			 at[25], *err = NULL;
	enum nf_err		 rc;

	if (state == NULL || (from = delivery_from(state)) == NULL || from[0] == NULL)
		return nf_error_set(e, NF_EINVAL, "invalid_field", "state",
		    "state must be queued, sent, delivered, read or failed");
	if ((message_id == NULL || !nf_valid_hex24(message_id)) &&
	    (twilio_sid == NULL || !nf_valid_twilio_sid(twilio_sid, "IM")))
		return nf_error_set(e, NF_ENOTFOUND, "message_not_found", NULL,
		    "no such message");
	if ((rc = nf_conv_store(app, &st, e)) != NF_OK)
		return rc;
	if (message_id != NULL && twilio_sid != NULL &&
	    nf_valid_twilio_sid(twilio_sid, "IM"))
		set_msg_sid(st, t->id, message_id, twilio_sid);
	f = message_id != NULL ? nf_json_pair("_id", message_id) :
	    nf_json_pair("twilioSid", twilio_sid);
	nf_json_add(f, "delivery", in_list(from));
	now_iso(at);
	set = json_object_new_object();
	nf_json_add_str(set, "delivery", state);
	nf_json_add_str(set, "updatedAt", at);
	if (strcmp(state, "failed") == 0) {
		err = utf8_prefix(error != NULL ? error : "delivery failed", REASON_MAX);
		nf_json_add_str(set, "deliveryError", err);
	}
	u = json_object_new_object();
	nf_json_add(u, "$set", set);
	rc = nf_store_find_and_modify(st, t->id, MSGS, f, NULL, u, NF_STORE_NEW, &msg, e);
	json_object_put(f);
	json_object_put(u);
	free(err);
	if (rc == NF_ENOTFOUND) {
		/* Unknown, or already at or past state: never a regression. */
		nf_error_clear(e);
		f = message_id != NULL ? nf_json_pair("_id", message_id) :
		    nf_json_pair("twilioSid", twilio_sid);
		rc = nf_store_find_one(st, t->id, MSGS, f, NULL, &msg, e);
		json_object_put(f);
		json_object_put(msg);
		if (rc == NF_ENOTFOUND)
			return nf_error_set(e, NF_ENOTFOUND, "message_not_found", NULL,
			    "no such message");
		return rc;
	}
	if (rc != NF_OK)
		return rc;
	if (nf_conv_get(app, t, nf_json_field_str(msg, "conversationId"), &conv, e) == NF_OK) {
		d = json_object_new_object();
		nf_json_add_str(d, "conversationId", nf_json_field_str(msg, "conversationId"));
		nf_json_add(d, "message", nf_conv_message_view(msg));
		nf_conv_publish(t, conv, "message.updated", d);
		json_object_put(d);
	}
	nf_error_clear(e);
	json_object_put(conv);
	json_object_put(msg);
	return NF_OK;
}

/* ---- state changes ------------------------------------------------------------------ */

struct change {
	const char *const	*from;          /* allowed current statuses */
	int64_t			 version;       /* expected version, or < 0 */
	const char		*assigned;      /* required assignee, or NULL */
	struct json_object	*set;           /* $set (consumed) */
	struct json_object	*unset;         /* $unset (consumed), or NULL */
};

/* Apply c atomically; NF_ENOTFOUND / NF_ECONFLICT "invalid_state". */
static enum nf_err
change(struct nf_app *app, const struct nf_tenant *t, const char *id, struct change *c,
    struct json_object **out, struct nf_error *e)
{
	struct nf_store		*st;
	struct json_object	*f = NULL, *u = NULL, *cur = NULL;
	char			 at[25];
	enum nf_err		 rc;

	*out = NULL;
	if (id == NULL || !nf_valid_hex24(id)) {
		rc = not_found(e);
		goto out;
	}
	if ((rc = nf_conv_store(app, &st, e)) != NF_OK)
		goto out;
	f = nf_json_pair("_id", id);
	nf_json_add(f, "status", in_list(c->from));
	if (c->version >= 0)
		nf_json_add_int(f, "version", c->version);
	if (c->assigned != NULL)
		nf_json_add_str(f, "assignedTo", c->assigned);
	now_iso(at);
	nf_json_add_str(c->set, "updatedAt", at);
	u = json_object_new_object();
	nf_json_add(u, "$set", c->set);
	c->set = NULL;
	if (c->unset != NULL) {
		nf_json_add(u, "$unset", c->unset);
		c->unset = NULL;
	}
	nf_json_add(u, "$inc", inc_version());
	rc = nf_store_find_and_modify(st, t->id, CONVS, f, NULL, u, NF_STORE_NEW, out, e);
	if (rc == NF_ENOTFOUND) {
		nf_error_clear(e);
		if ((rc = nf_conv_get(app, t, id, &cur, e)) == NF_OK)
			rc = nf_error_set(e, NF_ECONFLICT, "invalid_state", NULL,
			    "the conversation is %s%s", nf_json_field_str(cur, "status") ?
			    nf_json_field_str(cur, "status") : "in another state",
			    c->version >= 0 || c->assigned != NULL ?
			    " or was changed by someone else" : "");
	}
out:
	json_object_put(c->set);
	json_object_put(c->unset);
	json_object_put(f);
	json_object_put(u);
	json_object_put(cur);
	return rc;
}

/* Hand *conv (new reference, may be NULL) to the caller or put it. */
static void
give(struct json_object *doc, struct json_object **conv)
{
	if (conv != NULL)
		*conv = doc;
	else
		json_object_put(doc);
}

static struct json_object *
unset_of(const char *k1, const char *k2)
{
	struct json_object	*u = json_object_new_object();

	nf_json_add_str(u, k1, "");
	if (k2 != NULL)
		nf_json_add_str(u, k2, "");
	return u;
}

static enum nf_err
check_text(const char *v, const char *field, size_t max, int required, struct nf_error *e)
{
	if (v == NULL)
		return required ? nf_error_set(e, NF_EINVAL, "missing_field", field,
		    "%s is required", field) : NF_OK;
	if (!nf_valid_utf8(v, strlen(v), required ? 1 : 0, max))
		return nf_error_set(e, NF_EINVAL, "invalid_field", field,
		    "%s must be %s%zu bytes of UTF-8", field, required ? "1 to " : "at most ",
		    max);
	return NF_OK;
}

enum nf_err
nf_conv_handoff(struct nf_app *app, const struct nf_tenant *t, const char *conv_id,
    const char *reason, struct json_object **conv, struct nf_error *e)
{
	static const char *const from[] = { "ai", "assigned", NULL };
	struct change		 c = { from, -1, NULL, NULL, NULL };
	struct json_object	*doc = NULL, *audit;
	struct nf_store		*st;
	char			 at[25], *why;
	enum nf_err		 rc;
	int			 task;

	if (conv != NULL)
		*conv = NULL;
	why = utf8_prefix(reason != NULL ? reason : "requested", REASON_MAX);
	now_iso(at);
	c.set = json_object_new_object();
	nf_json_add_str(c.set, "status", "queued");
	nf_json_add_bool(c.set, "aiEnabled", 0);
	nf_json_add(c.set, "assignedTo", NULL);
	nf_json_add_str(c.set, "queuedAt", at);
	nf_json_add_str(c.set, "handoffReason", why);
	if ((rc = change(app, t, conv_id, &c, &doc, e)) != NF_OK ||
	    (rc = nf_conv_store(app, &st, e)) != NF_OK)
		goto out;
	/* Twilio's copy of aiEnabled is written by the conv.task job. */
	if (nf_json_field_str(doc, "twilioSid") != NULL) {
		struct json_object *f = nf_json_pair("_id", conv_id), *u = json_object_new_object(),
		    *set = json_object_new_object();

		nf_json_add_bool(set, "twilioAttributesPending", 1);
		nf_json_add(u, "$set", set);
		if (nf_store_update(st, t->id, CONVS, f, u, 0, NULL, e) == NF_OK)
			nf_json_add_bool(doc, "twilioAttributesPending", 1);
		nf_error_clear(e);
		json_object_put(f);
		json_object_put(u);
	}
	task = t->twilio.workflow_sid != NULL && t->twilio.workspace_sid != NULL;
	if ((task || nf_json_field_str(doc, "twilioSid") != NULL) &&
	    nf_conv_submit(app, t, "conv.task", conv_id, NULL, 0, e) != NF_OK) {
		/* The handoff stands (agents see it in the queue); only the
		 * task / attributes are missing, which the log says. */
		nf_error("handoff of conversation %s: conv.task not queued: %s", conv_id,
		    e->message);
		nf_error_clear(e);
	}
	audit = json_object_new_object();
	nf_json_add_str(audit, "conversationId", conv_id);
	nf_json_add_str(audit, "reason", why);
	nf_audit_store(st, t->id, "bot", "conversation.handoff", NULL, audit);
	publish_conv(t, doc, "conversation.handoff", "reason", json_object_new_string(why));
	give(doc, conv);
	doc = NULL;
out:
	free(why);
	json_object_put(doc);
	return rc;
}

static enum nf_err
check_agent(const char *agent_id, struct nf_error *e)
{
	if (agent_id == NULL || !nf_valid_charset(agent_id, AGENT_ID_MAX, "._-"))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "agentId",
		    "agentId must be an agent id");
	return NF_OK;
}

/* Apply c and publish "conversation.updated". */
static enum nf_err
change_publish(struct nf_app *app, const struct nf_tenant *t, const char *id,
    struct change *c, struct json_object **conv, struct nf_error *e)
{
	struct json_object	*doc = NULL;
	enum nf_err		 rc;

	if (conv != NULL)
		*conv = NULL;
	if ((rc = change(app, t, id, c, &doc, e)) != NF_OK)
		return rc;
	publish_conv(t, doc, "conversation.updated", NULL, NULL);
	give(doc, conv);
	return NF_OK;
}

enum nf_err
nf_conv_assign(struct nf_app *app, const struct nf_tenant *t, const char *conv_id,
    const char *agent_id, int64_t expect_version, struct json_object **conv,
    struct nf_error *e)
{
	static const char *const from[] = { "ai", "queued", NULL };
	struct change	 c = { from, expect_version, NULL, NULL, NULL };
	char		 at[25];
	enum nf_err	 rc;

	if ((rc = check_agent(agent_id, e)) != NF_OK)
		return rc;
	now_iso(at);
	c.set = json_object_new_object();
	nf_json_add_str(c.set, "status", "assigned");
	nf_json_add_str(c.set, "assignedTo", agent_id);
	nf_json_add_bool(c.set, "aiEnabled", 0);
	nf_json_add_str(c.set, "assignedAt", at);
	return change_publish(app, t, conv_id, &c, conv, e);
}

enum nf_err
nf_conv_release(struct nf_app *app, const struct nf_tenant *t, const char *conv_id,
    const char *agent_id, int ai_enabled, int64_t expect_version,
    struct json_object **conv, struct nf_error *e)
{
	static const char *const from[] = { "assigned", NULL };
	struct change	 c = { from, expect_version, agent_id, NULL, NULL };
	char		 at[25];
	enum nf_err	 rc;

	if (agent_id != NULL && (rc = check_agent(agent_id, e)) != NF_OK)
		return rc;
	now_iso(at);
	c.set = json_object_new_object();
	nf_json_add_str(c.set, "status", ai_enabled ? "ai" : "queued");
	nf_json_add_bool(c.set, "aiEnabled", ai_enabled);
	nf_json_add(c.set, "assignedTo", NULL);
	if (!ai_enabled)
		nf_json_add_str(c.set, "queuedAt", at);
	c.unset = unset_of("assignedAt", NULL);
	return change_publish(app, t, conv_id, &c, conv, e);
}

enum nf_err
nf_conv_close(struct nf_app *app, const struct nf_tenant *t, const char *conv_id,
    const char *disposition, const char *note, struct json_object **conv,
    struct nf_error *e)
{
	static const char *const from[] = { "ai", "queued", "assigned", NULL };
	struct change	 c = { from, -1, NULL, NULL, NULL };
	char		 at[25];
	enum nf_err	 rc;

	if ((rc = check_text(disposition, "disposition", DISPOSITION_MAX, 0, e)) != NF_OK ||
	    (rc = check_text(note, "note", NOTE_MAX, 0, e)) != NF_OK)
		return rc;
	now_iso(at);
	c.set = json_object_new_object();
	nf_json_add_str(c.set, "status", "closed");
	nf_json_add_bool(c.set, "aiEnabled", 0);
	nf_json_add_str(c.set, "closedAt", at);
	nf_json_add_str(c.set, "disposition", disposition);
	nf_json_add_str(c.set, "note", note);
	/* Free the (channel, address) key: the customer's next message opens
	 * a new conversation. */
	c.unset = unset_of("openKey", NULL);
	return change_publish(app, t, conv_id, &c, conv, e);
}

enum nf_err
nf_conv_transfer(struct nf_app *app, const struct nf_tenant *t, const char *conv_id,
    const char *agent_id, struct json_object **conv, struct nf_error *e)
{
	static const char *const from[] = { "assigned", "queued", NULL };
	struct change	 c = { from, -1, NULL, NULL, NULL };
	char		 at[25];
	enum nf_err	 rc;

	if (agent_id != NULL && (rc = check_agent(agent_id, e)) != NF_OK)
		return rc;
	now_iso(at);
	c.set = json_object_new_object();
	nf_json_add_bool(c.set, "aiEnabled", 0);
	if (agent_id != NULL) {
		nf_json_add_str(c.set, "status", "assigned");
		nf_json_add_str(c.set, "assignedTo", agent_id);
		nf_json_add_str(c.set, "assignedAt", at);
	} else {
		nf_json_add_str(c.set, "status", "queued");
		nf_json_add(c.set, "assignedTo", NULL);
		nf_json_add_str(c.set, "queuedAt", at);
		c.unset = unset_of("assignedAt", NULL);
	}
	return change_publish(app, t, conv_id, &c, conv, e);
}
