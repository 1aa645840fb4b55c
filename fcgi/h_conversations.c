/*
 * h_conversations.c - the agent inbox: list and read conversations, reply,
 * claim and release (POST /api/tasks/claim|release), close and transfer.
 *
 * Thin handlers over conversations.c, which owns the documents, the state
 * machine and the events; this file adds who may do what and the claim.
 * Every staff role may list and read the tenant's conversations (the queue
 * is shared); writes are for the agent holding the conversation or a
 * supervisor/admin.  The store scopes every query to the request's tenant,
 * so another tenant's ids answer 404 like unknown ones.
 *
 * DESIGN (claims, RELIABILITY battery 4 and 56): a claim takes the Redis
 * lock "claim:<id>" (TTL NONFLEX_CLAIM_TTL_S) and then assigns the
 * conversation with a conditional write on the version read before, so
 * two agents never both win.  The lock is only the fast mutex; the
 * authority is the stored conversation's version, which moves on every
 * state change and is the fencing token.  The claim token handed to the
 * agent is "<lock token>.<version>": a release must present it, and it
 * commits only when the lock is not held by someone else and the stored
 * version is still the one the claim produced.  So a holder whose lock
 * expired and was taken over (the takeover moved the version) cannot
 * commit, whatever its lock says.  Replies check that the caller is the
 * assignee, and the token's version too when the token is sent.  Close and
 * transfer drop the lock: the version they move already fences the old
 * token, and the new assignee of a transfer claims to get a token of its
 * own (claiming a conversation already assigned to you is allowed).
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>

#include "app.h"
#include "audit.h"
#include "conversations.h"
#include "handlers.h"
#include "json.h"
#include "kv.h"
#include "listing.h"
#include "log.h"
#include "nonflex.h"
#include "req.h"
#include "router.h"
#include "store.h"
#include "tenant.h"
#include "valid.h"

/* An inbox page: what a desk shows at once (Front, Intercom and Zendesk
 * load 20 to 30); more with ?limit=, up to LIST_MAX. */
#define LIST_DEFAULT	25
#define LIST_MAX	200
#define MSGS_DEFAULT	50
#define MSGS_MAX	200
#define TOKEN_MAX	64      /* "<32 hex>.<version>" */
#define DISPOSITION_MAX	64
#define NOTE_MAX	4096

static const char *const statuses[] = { "ai", "queued", "assigned", "closed", NULL };
static const char *const channels[] = { "whatsapp", "sms", "webchat", NULL };

/* ---- small helpers ------------------------------------------------------ */

static int64_t
doc_int(struct json_object *doc, const char *field, int64_t def)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(doc, field, &v) ||
	    !json_object_is_type(v, json_type_int))
		return def;
	return json_object_get_int64(v);
}

static int
is_supervisor(const struct nf_req *r)
{
	return (r->principal.roles & (NF_ROLE_SUPERVISOR | NF_ROLE_ADMIN)) != 0;
}

/* 1 when conv is assigned to the caller. */
static int
is_holder(const struct nf_req *r, struct json_object *conv)
{
	const char	*status = nf_json_field_str(conv, "status");
	const char	*to = nf_json_field_str(conv, "assignedTo");

	return status != NULL && strcmp(status, "assigned") == 0 && to != NULL &&
	    strcmp(to, r->principal.agent_id) == 0;
}

static int
is_closed(struct json_object *conv)
{
	const char	*status = nf_json_field_str(conv, "status");

	return status != NULL && strcmp(status, "closed") == 0;
}

static enum nf_err
closed_error(struct nf_error *e)
{
	return nf_error_set(e, NF_ECONFLICT, "conversation_closed", NULL,
	    "the conversation is closed");
}

static enum nf_err
not_holder(struct nf_error *e)
{
	return nf_error_set(e, NF_EFORBIDDEN, "not_claim_holder", NULL,
	    "only the agent holding the conversation or a supervisor may do this");
}

static enum nf_err
claim_lost(struct nf_error *e)
{
	return nf_error_set(e, NF_ECONFLICT, "claim_lost", "token",
	    "this claim is no longer valid: the conversation was released, "
	    "transferred or claimed again");
}

/* Redis failures are 503 with a clear code; other errors pass through. */
static enum nf_err
kv_error(enum nf_err rc, struct nf_error *e)
{
	if (rc == NF_EUNAVAIL || rc == NF_ESYSTEM)
		return nf_error_set(e, NF_EUNAVAIL, "redis_unavailable", NULL,
		    "Redis is unavailable");
	return rc;
}

/* The lock name of conversation id ("claim:<24 hex>"). */
static void
lock_name(const char *id, char out[48])
{
	snprintf(out, 48, "claim:%s", id);
}

/* The claim token "<lock>.<version>". */
static void
token_make(const char lock[33], int64_t version, char out[TOKEN_MAX])
{
	snprintf(out, TOKEN_MAX, "%s.%" PRId64, lock, version);
}

static int
is_lhex(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

/* Split a claim token; 0 when it is not shaped like one. */
static int
token_parse(const char *tok, char lock[33], int64_t *version)
{
	const char	*dot = strchr(tok, '.');
	size_t		 i;

	if (dot == NULL || dot - tok != 32 ||
	    !nf_valid_int(dot + 1, 0, INT64_MAX, version))
		return 0;
	for (i = 0; i < 32; i++)
		if (!is_lhex(tok[i]))
			return 0;
	memcpy(lock, tok, 32);
	lock[32] = '\0';
	return 1;
}

/* Drop the claim lock whoever holds it (close, transfer).  Best effort:
 * the version those changes move already fences the old token. */
static void
lock_drop(struct nf_req *r, const char *id)
{
	struct nf_error	 e;
	char		 name[48], *key;

	lock_name(id, name);
	if ((key = nf_kv_key(r->tenant->id, "lock", name)) == NULL)
		return;
	if (nf_kv_command(nf_app_kv(r->app), NULL, &e, "DEL %s", key) != NF_OK)
		nf_warn("claim lock of %s not dropped: %s", id, e.code);
	free(key);
}

/* 1 when the claim lock of id exists (held by anyone), 0 when not; -1 on
 * a Redis error. */
static int
lock_exists(struct nf_req *r, const char *id, struct nf_error *e)
{
	redisReply	*rep = NULL;
	char		 name[48], *key;
	int		 held = -1;

	lock_name(id, name);
	if ((key = nf_kv_key(r->tenant->id, "lock", name)) == NULL)
		return -1;
	if (nf_kv_command(nf_app_kv(r->app), &rep, e, "EXISTS %s", key) == NF_OK &&
	    rep->type == REDIS_REPLY_INTEGER)
		held = rep->integer > 0;
	if (rep != NULL)
		freeReplyObject(rep);
	free(key);
	return held;
}

/* Keep an active claim alive: extend the lock when it still holds lock. */
static void
lock_renew(struct nf_req *r, const char *id, const char *lock)
{
	static struct nf_kv_script renew_lua = { .src =
	    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
	    "  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
	    "end\n"
	    "return 0\n" };
	redisReply	*rep = NULL;
	struct nf_error	 e;
	const char	*args[3];
	char		 name[48], ttl[24], *key;

	lock_name(id, name);
	if ((key = nf_kv_key(r->tenant->id, "lock", name)) == NULL)
		return;
	snprintf(ttl, sizeof(ttl), "%" PRId64, r->app->cfg.claim_ttl_s * 1000);
	args[0] = key;
	args[1] = lock;
	args[2] = ttl;
	if (nf_kv_eval(nf_app_kv(r->app), &renew_lua, &rep, &e, 1, 3, args) != NF_OK)
		nf_warn("claim lock of %s not renewed: %s", id, e.code);
	if (rep != NULL)
		freeReplyObject(rep);
	free(key);
}

/* Conversation id (path or body) into *conv; 404 for a malformed id. */
static enum nf_err
conv_load(struct nf_req *r, const char *id, struct json_object **conv,
    struct nf_error *e)
{
	*conv = NULL;
	if (id == NULL || !nf_valid_hex24(id))
		return nf_error_set(e, NF_ENOTFOUND, "conversation_not_found", NULL,
		    "no such conversation");
	return nf_conv_get(r->app, r->tenant, id, conv, e);
}

/* The conversationId of a claim/release body. */
static enum nf_err
body_conv_id(struct nf_req *r, const char **id, struct nf_error *e)
{
	enum nf_err	 rc;

	if ((rc = nf_json_get_string(r->json, "conversationId", 1, 64, 1, id, e)) != NF_OK)
		return rc;
	if (!nf_valid_hex24(*id))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "conversationId",
		    "conversationId must be 24 hex digits");
	return NF_OK;
}

static void
audit_conv(struct nf_req *r, const char *event, const char *id, int64_t version,
    struct json_object *extra)
{
	struct json_object	*d = extra != NULL ? extra : json_object_new_object();

	nf_json_add_str(d, "conversationId", id);
	if (version >= 0)
		nf_json_add_int(d, "version", version);
	nf_audit(r, event, NULL, d);
}

/* 200 {conversation: view(conv)} (conv borrowed). */
static void
respond_conv(struct nf_req *r, int status, struct json_object *conv)
{
	struct json_object	*root = json_object_new_object();

	nf_json_add(root, "conversation", nf_conv_view(conv));
	nf_resp_json(r, status, root);
}

/* ---- list and read ------------------------------------------------------ */

static enum nf_err
list_filter(struct nf_req *r, struct json_object **out, int *queued,
    struct nf_error *e)
{
	const char	*status = nf_pairs_get(&r->query, "status");
	const char	*channel = nf_pairs_get(&r->query, "channel");
	const char	*to = nf_pairs_get(&r->query, "assignedTo");

	*out = NULL;
	*queued = 0;
	if (status != NULL && nf_valid_enum(status, statuses) < 0)
		return nf_error_set(e, NF_EINVAL, "invalid_query", "status",
		    "status must be ai, queued, assigned or closed");
	if (channel != NULL && nf_valid_enum(channel, channels) < 0)
		return nf_error_set(e, NF_EINVAL, "invalid_query", "channel",
		    "channel must be whatsapp, sms or webchat");
	if (to != NULL && strcmp(to, "me") != 0 && !nf_valid_hex24(to))
		return nf_error_set(e, NF_EINVAL, "invalid_query", "assignedTo",
		    "assignedTo must be \"me\" or an agent id");
	*out = json_object_new_object();
	if (status != NULL)
		nf_json_add_str(*out, "status", status);
	if (channel != NULL)
		nf_json_add_str(*out, "channel", channel);
	if (to != NULL)
		nf_json_add_str(*out, "assignedTo",
		    strcmp(to, "me") == 0 ? r->principal.agent_id : to);
	*queued = status != NULL && strcmp(status, "queued") == 0;
	return NF_OK;
}

/*
 * The queue's order has two keys (priority desc, then queuedAt asc, _id as
 * the tie-breaker), which nf_store_page (one key) cannot page, so the
 * queue pages itself: the cursor is the hex of the JSON [priority,
 * queuedAt, _id] of the last row, and the next page is what sorts after
 * it.  A queued conversation always has both keys (conversations.c sets
 * them on every way into the queue); one that somehow lacks them is
 * listed only on the first page.
 */
#define QCURSOR_MAX	512     /* hex characters */

static char *
qcursor_encode(struct json_object *last)
{
	struct json_object	*arr = json_object_new_array(), *v;
	const char		*txt;
	char			*out;
	size_t			 n, i;

	json_object_array_add(arr, json_object_new_int64(doc_int(last, "priority", 0)));
	json_object_array_add(arr, json_object_object_get_ex(last, "queuedAt", &v) ?
	    json_object_get(v) : NULL);
	json_object_array_add(arr, json_object_new_string(nf_json_field_str(last, "_id")));
	txt = nf_json_str(arr, &n);
	out = nf_xmalloc(2 * n + 1);
	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", (unsigned char)txt[i]);
	json_object_put(arr);
	return out;
}

/* *prio, *at (borrowed from *arr) and *id from a cursor; *arr new. */
static enum nf_err
qcursor_decode(const char *c, struct json_object **arr, int64_t *prio, const char **at,
    const char **id, struct nf_error *e)
{
	char		*raw;
	size_t		 n = strlen(c), i;
	unsigned	 byte;
	enum nf_err	 rc;

	*arr = NULL;
	if (n == 0 || n > QCURSOR_MAX || n % 2 != 0)
		goto bad;
	raw = nf_xmalloc(n / 2 + 1);
	for (i = 0; i < n / 2; i++) {
		if (!is_lhex(c[2 * i]) || !is_lhex(c[2 * i + 1]) ||
		    sscanf(c + 2 * i, "%2x", &byte) != 1) {
			free(raw);
			goto bad;
		}
		raw[i] = (char)byte;
	}
	rc = nf_json_parse(raw, n / 2, arr, e);
	free(raw);
	if (rc != NF_OK || !json_object_is_type(*arr, json_type_array) ||
	    json_object_array_length(*arr) != 3 ||
	    !json_object_is_type(json_object_array_get_idx(*arr, 0), json_type_int) ||
	    !json_object_is_type(json_object_array_get_idx(*arr, 1), json_type_string) ||
	    !json_object_is_type(json_object_array_get_idx(*arr, 2), json_type_string))
		goto bad;
	*prio = json_object_get_int64(json_object_array_get_idx(*arr, 0));
	*at = json_object_get_string(json_object_array_get_idx(*arr, 1));
	*id = json_object_get_string(json_object_array_get_idx(*arr, 2));
	if (!nf_valid_hex24(*id))
		goto bad;
	return NF_OK;
bad:
	json_object_put(*arr);
	*arr = NULL;
	return nf_error_set(e, NF_EINVAL, "invalid_cursor", "cursor",
	    "the page cursor is not valid");
}

static struct json_object *
cmp1(const char *op, struct json_object *v)
{
	struct json_object	*o = json_object_new_object();

	nf_json_add(o, op, v);
	return o;
}

/* filter AND "sorts after (prio, at, id)" in the queue's order. */
static struct json_object *
qafter(struct json_object *filter, int64_t prio, const char *at, const char *id)
{
	struct json_object	*or = json_object_new_array(), *a, *and, *f;

	a = json_object_new_object();
	nf_json_add(a, "priority", cmp1("$lt", json_object_new_int64(prio)));
	json_object_array_add(or, a);
	a = json_object_new_object();
	nf_json_add_int(a, "priority", prio);
	nf_json_add(a, "queuedAt", cmp1("$gt", json_object_new_string(at)));
	json_object_array_add(or, a);
	a = json_object_new_object();
	nf_json_add_int(a, "priority", prio);
	nf_json_add_str(a, "queuedAt", at);
	nf_json_add(a, "_id", cmp1("$gt", json_object_new_string(id)));
	json_object_array_add(or, a);
	and = json_object_new_array();
	json_object_array_add(and, json_object_get(filter));   /* shared with the caller */
	json_object_array_add(and, cmp1("$or", or));
	f = json_object_new_object();
	nf_json_add(f, "$and", and);
	return f;
}

/* 200 {conversations, next} of the queue, in its order (see above). */
static enum nf_err
queue_respond(struct nf_req *r, struct nf_store *st, struct json_object *filter,
    struct nf_error *e)
{
	struct nf_find_opts	 o = { NULL, 0, 0 };
	struct json_object	*cur = NULL, *f = NULL, *docs = NULL, *arr, *root;
	const char		*lim = nf_pairs_get(&r->query, "limit");
	const char		*c = nf_pairs_get(&r->query, "cursor");
	const char		*at = NULL, *id = NULL;
	char			*next = NULL;
	int64_t			 limit = LIST_DEFAULT, prio = 0;
	size_t			 i, n;
	enum nf_err		 rc;

	if (lim != NULL && !nf_valid_int(lim, 1, LIST_MAX, &limit))
		return nf_error_set(e, NF_EINVAL, "invalid_query", "limit",
		    "limit must be an integer from 1 to %d", LIST_MAX);
	if (c != NULL && (rc = qcursor_decode(c, &cur, &prio, &at, &id, e)) != NF_OK)
		return rc;
	f = c != NULL ? qafter(filter, prio, at, id) : json_object_get(filter);
	o.sort = json_object_new_object();
	nf_json_add_int(o.sort, "priority", -1);
	nf_json_add_int(o.sort, "queuedAt", 1);
	nf_json_add_int(o.sort, "_id", 1);
	o.limit = limit + 1;
	rc = nf_store_find(st, r->tenant->id, "conversations", f, &o, &docs, e);
	json_object_put(o.sort);
	json_object_put(f);
	json_object_put(cur);
	if (rc != NF_OK)
		return rc;
	if ((n = json_object_array_length(docs)) > (size_t)limit) {
		n = (size_t)limit;
		next = qcursor_encode(json_object_array_get_idx(docs, n - 1));
	}
	arr = json_object_new_array();
	for (i = 0; i < n; i++)
		json_object_array_add(arr, nf_conv_view(json_object_array_get_idx(docs, i)));
	root = json_object_new_object();
	nf_json_add(root, "conversations", arr);
	nf_json_add(root, "next", next != NULL ? json_object_new_string(next) : NULL);
	nf_resp_json(r, 200, root);
	free(next);
	json_object_put(docs);
	return NF_OK;
}

/*
 * GET /api/conversations?status=&channel=&assignedTo=me|<agentId>&limit=
 * &cursor= (staff): 200 {conversations, next}, newest activity first
 * (lastMessageAt); with status=queued by priority (highest first), then
 * waiting longest first (queuedAt).  400 naming status, channel,
 * assignedTo, limit or cursor.
 */
enum nf_err
h_conversations_list(struct nf_req *r, struct nf_error *e)
{
	static const struct nf_listing	 recent = { "conversations", "lastMessageAt", -1,
	    LIST_DEFAULT, LIST_MAX, "conversations", nf_conv_view, nf_conv_shape };
	struct json_object		*f = NULL;
	struct nf_store			*st;
	int				 queued;
	enum nf_err			 rc;

	if ((rc = list_filter(r, &f, &queued, e)) == NF_OK &&
	    (rc = nf_conv_store(r->app, &st, e)) == NF_OK)
		rc = queued ? queue_respond(r, st, f, e) :
		    nf_listing_respond(r, st, f, &recent, e);
	json_object_put(f);
	return rc;
}

/* One page of conversation id's messages, newest first from the store,
 * answered oldest first. */
static enum nf_err
messages_page(struct nf_req *r, const char *id, struct json_object **msgs, char **before,
    struct nf_error *e)
{
	struct json_object	*f, *page = NULL;
	struct nf_store		*st;
	const char		*lim = nf_pairs_get(&r->query, "limit");
	int64_t			 limit = MSGS_DEFAULT;
	size_t			 n;
	enum nf_err		 rc;

	*msgs = NULL;
	*before = NULL;
	if (lim != NULL && !nf_valid_int(lim, 1, MSGS_MAX, &limit))
		return nf_error_set(e, NF_EINVAL, "invalid_query", "limit",
		    "limit must be an integer from 1 to %d", MSGS_MAX);
	if ((rc = nf_conv_store(r->app, &st, e)) != NF_OK)
		return rc;
	f = nf_json_pair("conversationId", id);
	rc = nf_store_page(st, r->tenant->id, "messages", f, "createdAt", -1, limit,
	    nf_pairs_get(&r->query, "before"), &page, before, e);
	json_object_put(f);
	if (rc != NF_OK) {
		if (rc == NF_EINVAL)
			snprintf(e->field, sizeof(e->field), "before");
		return rc;
	}
	*msgs = json_object_new_array();
	for (n = json_object_array_length(page); n > 0; n--)
		json_object_array_add(*msgs,
		    nf_conv_message_view(json_object_array_get_idx(page, n - 1)));
	json_object_put(page);
	return NF_OK;
}

/*
 * GET /api/conversations/:id?limit=&before= (staff): 200 {conversation,
 * messages (oldest first), before: cursor for older messages|null}; 400
 * naming limit or before; 404 conversation_not_found.
 */
enum nf_err
h_conversations_get(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*conv = NULL, *msgs = NULL, *root;
	const char		*id = nf_req_path_param(r, "id");
	char			*before = NULL;
	enum nf_err		 rc;

	if ((rc = conv_load(r, id, &conv, e)) != NF_OK ||
	    (rc = messages_page(r, id, &msgs, &before, e)) != NF_OK)
		goto out;
	root = json_object_new_object();
	nf_json_add(root, "conversation", nf_conv_view(conv));
	nf_json_add(root, "messages", msgs);
	nf_json_add(root, "before", before != NULL ? json_object_new_string(before) : NULL);
	nf_resp_json(r, 200, root);
out:
	json_object_put(conv);
	free(before);
	return rc;
}

/* ---- reply -------------------------------------------------------------- */

/*
 * POST /api/conversations/:id/messages {body, token?} (staff): 201
 * {message}: an agent reply, delivered by nonflex-jobs (Twilio channels)
 * or live (web chat).  Only the agent the conversation is assigned to, or
 * a supervisor/admin: 403 not_claim_holder otherwise.  A token, when sent,
 * must still fence the claim (409 claim_lost) and keeps its lock alive.
 * 400 naming body or token; 404; 409 conversation_closed.
 */
enum nf_err
h_conversations_reply(struct nf_req *r, struct nf_error *e)
{
	static const char *const allowed[] = { "body", "token", NULL };
	struct json_object	*conv = NULL, *msg = NULL, *root;
	const char		*id = nf_req_path_param(r, "id");
	const char		*body = NULL, *tok = NULL;
	char			 lock[33];
	int64_t			 version = -1;
	enum nf_err		 rc;

	if ((rc = nf_json_reject_unknown(r->json, allowed, e)) != NF_OK ||
	    (rc = nf_json_get_string(r->json, "body", 1, NF_CONV_BODY_MAX, 1, &body,
	    e)) != NF_OK ||
	    (rc = nf_json_get_string(r->json, "token", 1, TOKEN_MAX - 1, 0, &tok,
	    e)) != NF_OK)
		return rc;
	if (tok != NULL && !token_parse(tok, lock, &version))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "token",
		    "token is not a claim token");
	if ((rc = conv_load(r, id, &conv, e)) != NF_OK)
		goto out;
	if (is_closed(conv)) {
		rc = closed_error(e);
		goto out;
	}
	if (!is_holder(r, conv) && !is_supervisor(r)) {
		rc = not_holder(e);
		goto out;
	}
	if (tok != NULL && version != doc_int(conv, "version", -1)) {
		rc = claim_lost(e);
		goto out;
	}
	if ((rc = nf_conv_send(r->app, r->tenant, id, "agent", r->principal.username, body,
	    &msg, e)) != NF_OK)
		goto out;
	if (tok != NULL)
		lock_renew(r, id, lock);
	root = json_object_new_object();
	nf_json_add(root, "message", nf_conv_message_view(msg));
	nf_resp_json(r, 201, root);
out:
	json_object_put(msg);
	json_object_put(conv);
	return rc;
}

/* ---- claim and release -------------------------------------------------- */

/* The 409 of a claim held by someone else, naming the holder when known. */
static enum nf_err
already_claimed(struct nf_req *r, struct json_object *conv, struct nf_error *e)
{
	struct json_object	*f, *agent = NULL;
	struct nf_store		*st;
	struct nf_error		 ignored;
	const char		*to = nf_json_field_str(conv, "assignedTo");
	const char		*who = NULL;
	enum nf_err		 rc;

	if (to != NULL && nf_valid_hex24(to) &&
	    nf_app_store(r->app, &st, &ignored) == NF_OK) {
		f = nf_json_pair("_id", to);
		if (nf_store_find_one(st, r->tenant->id, "agents", f, NULL, &agent,
		    &ignored) == NF_OK)
			who = nf_json_field_str(agent, "username");
		json_object_put(f);
	}
	if (who != NULL)
		rc = nf_error_set(e, NF_ECONFLICT, "already_claimed", NULL,
		    "the conversation is claimed by %s", who);
	else
		rc = nf_error_set(e, NF_ECONFLICT, "already_claimed", NULL,
		    "the conversation is claimed by another agent");
	json_object_put(agent);
	return rc;
}

/*
 * Assign conv to the caller under the lock just taken.  A conversation
 * already assigned to the caller stays as it is (a re-claim, e.g. after a
 * transfer).  One assigned to another agent whose lock expired is taken
 * over in two fenced steps, back to the queue from exactly the version
 * read, then assigned from the version that produced: the version moves
 * twice, so the old holder's token no longer fences anything.  *out the
 * conversation now (new reference).
 */
static enum nf_err
claim_assign(struct nf_req *r, const char *id, struct json_object *conv,
    struct json_object **out, struct nf_error *e)
{
	struct json_object	*queued = NULL;
	const char		*status = nf_json_field_str(conv, "status");
	int64_t			 version = doc_int(conv, "version", 0);
	enum nf_err		 rc;

	*out = NULL;
	if (is_holder(r, conv)) {
		*out = json_object_get(conv);   /* the caller keeps both references */
		return NF_OK;
	}
	if (status != NULL && strcmp(status, "assigned") == 0) {
		rc = nf_conv_release(r->app, r->tenant, id, nf_json_field_str(conv, "assignedTo"), 0,
		    version, &queued, e);
		if (rc == NF_OK)
			version = doc_int(queued, "version", version + 1);
		json_object_put(queued);
		if (rc == NF_ECONFLICT)
			return already_claimed(r, conv, e);
		if (rc != NF_OK)
			return rc;
	}
	rc = nf_conv_assign(r->app, r->tenant, id, r->principal.agent_id, version, out, e);
	if (rc == NF_ECONFLICT)
		return already_claimed(r, conv, e);
	return rc;
}

/*
 * POST /api/tasks/claim {conversationId} (staff): 200 {token,
 * conversation, ttl}: the caller now holds the conversation (assigned, AI
 * off) and the token releases it.  400 naming conversationId; 404
 * conversation_not_found; 409 already_claimed (naming the holder) or
 * conversation_closed; 503 redis_unavailable.
 */
enum nf_err
h_tasks_claim(struct nf_req *r, struct nf_error *e)
{
	static const char *const allowed[] = { "conversationId", NULL };
	struct json_object	*conv = NULL, *now = NULL, *root, *d;
	const char		*id = NULL;
	char			 name[48], lock[33], tok[TOKEN_MAX];
	struct nf_error		 ignored;
	enum nf_err		 rc;

	if ((rc = nf_json_reject_unknown(r->json, allowed, e)) != NF_OK ||
	    (rc = body_conv_id(r, &id, e)) != NF_OK)
		return rc;
	if ((rc = conv_load(r, id, &conv, e)) != NF_OK)
		goto out;
	if (is_closed(conv)) {
		rc = closed_error(e);
		goto out;
	}
	lock_name(id, name);
	rc = nf_kv_lock_acquire(nf_app_kv(r->app), r->tenant->id, name,
	    r->app->cfg.claim_ttl_s * 1000, lock, e);
	if (rc == NF_ECONFLICT) {
		rc = already_claimed(r, conv, e);
		goto out;
	}
	if (rc != NF_OK) {
		rc = kv_error(rc, e);
		goto out;
	}
	if ((rc = claim_assign(r, id, conv, &now, e)) != NF_OK) {
		(void)nf_kv_lock_release(nf_app_kv(r->app), r->tenant->id, name, lock,
		    &ignored);
		goto out;
	}
	token_make(lock, doc_int(now, "version", 0), tok);
	d = json_object_new_object();
	if (!is_holder(r, conv) && nf_json_field_str(conv, "assignedTo") != NULL)
		nf_json_add_str(d, "takenFrom", nf_json_field_str(conv, "assignedTo"));
	audit_conv(r, "claim", id, doc_int(now, "version", 0), d);
	root = json_object_new_object();
	nf_json_add_str(root, "token", tok);
	nf_json_add(root, "conversation", nf_conv_view(now));
	nf_json_add_int(root, "ttl", r->app->cfg.claim_ttl_s);
	nf_resp_json(r, 200, root);
out:
	json_object_put(now);
	json_object_put(conv);
	return rc;
}

/*
 * Free the claim's lock if token holds it.  A lock held by another token
 * means someone else claimed since: claim_lost.  A lock that expired with
 * nobody taking it leaves the decision to the version (the caller's
 * conditional release).
 */
static enum nf_err
release_lock(struct nf_req *r, const char *id, const char *lock, struct nf_error *e)
{
	char		 name[48];
	int		 held;
	enum nf_err	 rc;

	lock_name(id, name);
	rc = nf_kv_lock_release(nf_app_kv(r->app), r->tenant->id, name, lock, e);
	if (rc != NF_ECONFLICT)
		return kv_error(rc, e);
	if ((held = lock_exists(r, id, e)) < 0)
		return kv_error(NF_EUNAVAIL, e);
	return held ? claim_lost(e) : NF_OK;
}

/*
 * POST /api/tasks/release {conversationId, token, aiEnabled?} (staff): 200
 * {conversation}, back to the queue (aiEnabled false, the default) or to
 * the AI assistant (true).  The token of the claim is needed: 409
 * claim_lost when it no longer fences the conversation (someone claimed
 * it since, it was transferred or closed, or it is not the caller's).
 * 400 naming conversationId, token or aiEnabled; 404; 503.
 */
enum nf_err
h_tasks_release(struct nf_req *r, struct nf_error *e)
{
	static const char *const allowed[] = { "conversationId", "token", "aiEnabled",
		NULL };
	struct json_object	*conv = NULL, *now = NULL, *d;
	const char		*id = NULL, *tok = NULL;
	char			 lock[33];
	int64_t			 version;
	int			 ai = 0;
	enum nf_err		 rc;

	if ((rc = nf_json_reject_unknown(r->json, allowed, e)) != NF_OK ||
	    (rc = body_conv_id(r, &id, e)) != NF_OK ||
	    (rc = nf_json_get_string(r->json, "token", 1, TOKEN_MAX - 1, 1, &tok,
	    e)) != NF_OK ||
	    (rc = nf_json_get_bool(r->json, "aiEnabled", 0, &ai, e)) != NF_OK)
		return rc;
	if (!token_parse(tok, lock, &version))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "token",
		    "token is not a claim token");
	if ((rc = conv_load(r, id, &conv, e)) != NF_OK)
		goto out;
	if (!is_holder(r, conv) || version != doc_int(conv, "version", -1)) {
		rc = claim_lost(e);
		goto out;
	}
	if ((rc = release_lock(r, id, lock, e)) != NF_OK)
		goto out;
	rc = nf_conv_release(r->app, r->tenant, id, r->principal.agent_id, ai, version,
	    &now, e);
	if (rc == NF_ECONFLICT)
		rc = claim_lost(e);
	if (rc != NF_OK)
		goto out;
	d = json_object_new_object();
	nf_json_add_bool(d, "aiEnabled", ai);
	audit_conv(r, "release", id, version, d);
	respond_conv(r, 200, now);
out:
	json_object_put(now);
	json_object_put(conv);
	return rc;
}

/* ---- close and transfer ------------------------------------------------- */

/* Load :id for a holder-or-supervisor change. */
static enum nf_err
load_for_change(struct nf_req *r, const char *id, struct json_object **conv,
    struct nf_error *e)
{
	enum nf_err	 rc;

	if ((rc = conv_load(r, id, conv, e)) != NF_OK)
		return rc;
	if (is_closed(*conv))
		rc = closed_error(e);
	else if (!is_holder(r, *conv) && !is_supervisor(r))
		rc = not_holder(e);
	if (rc != NF_OK) {
		json_object_put(*conv);
		*conv = NULL;
	}
	return rc;
}

/*
 * POST /api/conversations/:id/close {disposition?, note?} (staff): 200
 * {conversation}; the holder or a supervisor/admin (403 not_claim_holder);
 * the claim lock is dropped.  400 naming disposition or note; 404; 409
 * conversation_closed.
 */
enum nf_err
h_conversations_close(struct nf_req *r, struct nf_error *e)
{
	static const char *const allowed[] = { "disposition", "note", NULL };
	struct json_object	*conv = NULL, *now = NULL, *d;
	const char		*id = nf_req_path_param(r, "id");
	const char		*disp = NULL, *note = NULL;
	enum nf_err		 rc;

	if ((rc = nf_json_reject_unknown(r->json, allowed, e)) != NF_OK ||
	    (rc = nf_json_get_string(r->json, "disposition", 1, DISPOSITION_MAX, 0, &disp,
	    e)) != NF_OK ||
	    (rc = nf_json_get_string(r->json, "note", 0, NOTE_MAX, 0, &note, e)) != NF_OK)
		return rc;
	if ((rc = load_for_change(r, id, &conv, e)) != NF_OK)
		goto out;
	rc = nf_conv_close(r->app, r->tenant, id, disp, note, &now, e);
	if (rc == NF_ECONFLICT)
		rc = closed_error(e);
	if (rc != NF_OK)
		goto out;
	lock_drop(r, id);
	d = json_object_new_object();
	if (disp != NULL)
		nf_json_add_str(d, "disposition", disp);
	audit_conv(r, "close", id, doc_int(now, "version", -1), d);
	respond_conv(r, 200, now);
out:
	json_object_put(now);
	json_object_put(conv);
	return rc;
}

/* 404 agent_not_found unless agent id exists (and is enabled) in the
 * tenant. */
static enum nf_err
agent_exists(struct nf_req *r, const char *id, struct nf_error *e)
{
	struct json_object	*f, *agent = NULL, *v;
	struct nf_store		*st;
	enum nf_err		 rc;

	if ((rc = nf_app_store(r->app, &st, e)) != NF_OK)
		return rc;
	f = nf_json_pair("_id", id);
	rc = nf_store_find_one(st, r->tenant->id, "agents", f, NULL, &agent, e);
	json_object_put(f);
	if (rc == NF_OK && json_object_object_get_ex(agent, "disabled", &v) &&
	    json_object_get_boolean(v))
		rc = NF_ENOTFOUND;
	json_object_put(agent);
	if (rc == NF_ENOTFOUND)
		return nf_error_set(e, NF_ENOTFOUND, "agent_not_found", "agentId",
		    "no such agent");
	return rc;
}

/* The transfer target: *agent (borrowed) or NULL for the queue. */
static enum nf_err
transfer_target(struct nf_req *r, const char **agent, struct nf_error *e)
{
	static const char *const allowed[] = { "agentId", "queue", NULL };
	int		 queue = 0;
	enum nf_err	 rc;

	*agent = NULL;
	if ((rc = nf_json_reject_unknown(r->json, allowed, e)) != NF_OK ||
	    (rc = nf_json_get_string(r->json, "agentId", 1, 64, 0, agent, e)) != NF_OK ||
	    (rc = nf_json_get_bool(r->json, "queue", 0, &queue, e)) != NF_OK)
		return rc;
	if ((*agent == NULL) == !queue)
		return nf_error_set(e, NF_EINVAL, "invalid_field", "agentId",
		    "give either agentId or \"queue\": true");
	if (*agent != NULL && !nf_valid_hex24(*agent))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "agentId",
		    "agentId must be 24 hex digits");
	return *agent != NULL ? agent_exists(r, *agent, e) : NF_OK;
}

/*
 * POST /api/conversations/:id/transfer {agentId} | {queue: true} (staff):
 * 200 {conversation} assigned to that agent (who claims it to get a
 * token) or back in the queue; the old claim's lock is dropped.  The
 * holder or a supervisor/admin (403 not_claim_holder).  400 naming agentId
 * or queue; 404 conversation_not_found / agent_not_found; 409
 * conversation_closed or invalid_state.
 */
enum nf_err
h_conversations_transfer(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*conv = NULL, *now = NULL, *d;
	const char		*id = nf_req_path_param(r, "id"), *agent = NULL;
	enum nf_err		 rc;

	if ((rc = transfer_target(r, &agent, e)) != NF_OK ||
	    (rc = load_for_change(r, id, &conv, e)) != NF_OK)
		goto out;
	if ((rc = nf_conv_transfer(r->app, r->tenant, id, agent, &now, e)) != NF_OK)
		goto out;
	lock_drop(r, id);
	d = json_object_new_object();
	nf_json_add_str(d, "from", nf_json_field_str(conv, "assignedTo"));
	nf_json_add_str(d, "to", agent != NULL ? agent : "queue");
	audit_conv(r, "transfer", id, doc_int(now, "version", -1), d);
	respond_conv(r, 200, now);
out:
	json_object_put(now);
	json_object_put(conv);
	return rc;
}
