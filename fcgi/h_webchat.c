/*
 * h_webchat.c - the web-chat widget's public routes: open a session, post
 * a message, read the session's history.
 *
 * DESIGN: these rows are public in the route table (NF_ROLE_NONE: the
 * agents' session check does not apply); each handler checks the visitor's
 * own bearer token (webchat.h) itself, so a token reaches exactly one
 * session's conversations, in its tenant.  A posted message follows the
 * webhook rule: stored (nf_conv_receive, which also publishes it),
 * the assistant's "ai.reply" job queued (nf_conv_ask_ai: Redis, or the
 * store's outbox while Redis is down), then answered; the AI never runs
 * in the request.  Rate limits are Redis counters per client IP (sessions,
 * messages) and per session (messages); they fail closed: with Redis down
 * these routes answer 503 with Retry-After rather than run unthrottled.
 * An optional clientMessageId makes a retried post idempotent.  Tokens are
 * never logged or audited; the audit log gets the session id only.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "app.h"
#include "audit.h"
#include "conversations.h"
#include "handlers.h"
#include "jobs.h"
#include "json.h"
#include "kv.h"
#include "listing.h"
#include "log.h"
#include "nonflex.h"
#include "req.h"
#include "store.h"
#include "tenant.h"
#include "valid.h"
#include "webchat.h"

#define WINDOW_MS	60000
#define HISTORY_CONVS	50      /* conversations of a session shown in its history */
#define CLIENT_ID_MAX	64

static const char *
client_ip(struct nf_req *r)
{
	const char	*ip = nf_req_param(r, "REMOTE_ADDR");

	return ip != NULL && ip[0] != '\0' ? ip : "unknown";
}

/* 429 (with the window's remaining time as Retry-After) once bucket
 * passed limit hits within a minute. */
static enum nf_err
limit(struct nf_req *r, const char *kind, const char *who, int64_t max,
    struct nf_error *e)
{
	char		*bucket = nf_xasprintf("%s:%s", kind, who);
	int64_t		 retry = 0;
	int		 allowed = 1;
	enum nf_err	 rc;

	rc = nf_kv_ratelimit_hit(nf_app_kv(r->app), r->tenant->id, bucket, max, WINDOW_MS,
	    &allowed, &retry, e);
	free(bucket);
	if (rc != NF_OK)
		return rc;
	if (allowed)
		return NF_OK;
	nf_resp_retry_after(r, retry);
	return nf_error_set(e, NF_ERATE, "rate_limited", NULL,
	    "too many requests; retry later");
}

/* The session of the request's "Authorization: Bearer" web-chat token;
 * 401 with WWW-Authenticate otherwise.  *session new reference. */
static enum nf_err
visitor(struct nf_req *r, struct json_object **session, struct nf_error *e)
{
	const char	*h = nf_req_header(r, "Authorization");
	enum nf_err	 rc;

	*session = NULL;
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		rc = nf_error_set(e, NF_EAUTH, "unauthorized", NULL,
		    "a web-chat session token is required");
	else
		rc = nf_webchat_verify(r->app, r->tenant, h + 7, session, e);
	if (rc == NF_EAUTH)
		nf_resp_header(r, "WWW-Authenticate", "Bearer");
	return rc;
}

static enum nf_err
session_fields(struct json_object *body, const char **name, const char **email,
    struct nf_error *e)
{
	static const char *const allowed[] = { "name", "email", NULL };
	enum nf_err	 rc;

	*name = *email = NULL;
	if ((rc = nf_json_reject_unknown(body, allowed, e)) != NF_OK ||
	    (rc = nf_json_get_string(body, "name", 1, NF_WEBCHAT_NAME_MAX, 0, name,
	    e)) != NF_OK ||
	    (rc = nf_json_get_string(body, "email", 3, NF_WEBCHAT_EMAIL_MAX, 0, email,
	    e)) != NF_OK)
		return rc;
	if (*email != NULL && !nf_valid_email(*email))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "email",
		    "email is not a valid e-mail address");
	return NF_OK;
}

/*
 * POST /api/webchat/sessions (public) {name?, email?}: 201 {sessionId,
 * token, expiresAt}; 400 naming the field; 413 body over the route's cap;
 * 429 rate_limited (per client IP) with Retry-After; 503 when the store or
 * Redis is down.
 */
enum nf_err
h_webchat_sessions_create(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*s = NULL, *out, *d;
	const char		*name, *email;
	char			*token = NULL;
	enum nf_err		 rc;

	if ((rc = limit(r, "webchat_session_ip", client_ip(r),
	    r->app->cfg.webchat_sessions_per_min, e)) != NF_OK ||
	    (rc = session_fields(r->json, &name, &email, e)) != NF_OK ||
	    (rc = nf_webchat_create(r->app, r->tenant, name, email,
	    r->app->cfg.webchat_ttl_s, &s, &token, e)) != NF_OK)
		return rc;
	d = json_object_new_object();
	nf_json_add_str(d, "sessionId", nf_webchat_session_id(s));
	nf_audit(r, "webchat.session.create", "webchat", d);
	out = json_object_new_object();
	nf_json_add_str(out, "sessionId", nf_webchat_session_id(s));
	nf_json_add_str(out, "token", token);
	nf_json_add_str(out, "expiresAt", nf_json_field_str(s, "expiresAt"));
	nf_resp_json(r, 201, out);
	free(token);
	json_object_put(s);
	return NF_OK;
}

/* [A-Za-z0-9_-]{1,CLIENT_ID_MAX}: a widget's own message id. */
static int
valid_client_id(const char *s)
{
	size_t	 n;

	for (n = 0; s[n] != '\0'; n++)
		if (n >= CLIENT_ID_MAX || !((s[n] >= 'a' && s[n] <= 'z') ||
		    (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9') ||
		    s[n] == '_' || s[n] == '-'))
			return 0;
	return n > 0;
}

static enum nf_err
message_fields(struct nf_req *r, const char *sid, const char **body, char **dedupe,
    struct nf_error *e)
{
	static const char *const allowed[] = { "body", "clientMessageId", NULL };
	const char	*cid = NULL;
	enum nf_err	 rc;

	*dedupe = NULL;
	if ((rc = nf_json_reject_unknown(r->json, allowed, e)) != NF_OK ||
	    (rc = nf_json_get_string(r->json, "body", 1, NF_WEBCHAT_MSG_MAX, 1, body,
	    e)) != NF_OK ||
	    (rc = nf_json_get_string(r->json, "clientMessageId", 1, CLIENT_ID_MAX, 0, &cid,
	    e)) != NF_OK)
		return rc;
	if (cid != NULL && !valid_client_id(cid))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "clientMessageId",
		    "clientMessageId must match [A-Za-z0-9_-]{1,64}");
	if (cid != NULL)
		*dedupe = nf_xasprintf("webchat:%s:%s", sid, cid);
	return NF_OK;
}

/*
 * POST /api/webchat/messages (web-chat token) {body, clientMessageId?}:
 * 201 {message} (200 with the stored message when clientMessageId was
 * used before); 400 naming body or clientMessageId; 401 without a valid
 * token; 413 body over the route's cap; 429 rate_limited per session or
 * client IP; 503 store or Redis down.
 */
enum nf_err
h_webchat_messages_create(struct nf_req *r, struct nf_error *e)
{
	struct nf_conv_inbound	 in;
	struct nf_conv_msg	 m;
	struct json_object	*s = NULL, *conv = NULL, *msg = NULL, *out;
	const char		*sid, *body;
	char			*dedupe = NULL;
	int			 dup = 0;
	enum nf_err		 rc;

	if ((rc = visitor(r, &s, e)) != NF_OK)
		return rc;
	sid = nf_webchat_session_id(s);
	if ((rc = limit(r, "webchat_msg_session", sid, r->app->cfg.webchat_msgs_per_min,
	    e)) != NF_OK ||
	    (rc = limit(r, "webchat_msg_ip", client_ip(r),
	    r->app->cfg.webchat_ip_msgs_per_min, e)) != NF_OK ||
	    (rc = message_fields(r, sid, &body, &dedupe, e)) != NF_OK)
		goto out;
	memset(&in, 0, sizeof(in));
	in.channel = "webchat";
	in.address = sid;
	memset(&m, 0, sizeof(m));
	m.direction = "inbound";
	m.author_kind = "customer";
	m.author = sid;
	m.body = body;
	m.dedupe_key = dedupe;
	if ((rc = nf_conv_receive(r->app, r->tenant, &in, &m, &conv, &msg, &dup, e)) != NF_OK)
		goto out;
	/* A resent clientMessageId asks again and is still queued once, so a
	 * submit that failed is retried by the widget's retry. */
	if ((rc = nf_conv_ask_ai(r->app, r->tenant, conv, msg, e)) != NF_OK) {
		nf_error("webchat: ai.reply for message %s not queued",
		    nf_json_field_str(msg, "_id"));
		goto out;
	}
	out = json_object_new_object();
	nf_json_add(out, "message", nf_webchat_message_view(msg));
	nf_resp_json(r, dup ? 200 : 201, out);
out:
	free(dedupe);
	json_object_put(msg);
	json_object_put(conv);
	json_object_put(s);
	return rc;
}

/*
 * GET /api/webchat/messages?limit=&cursor= (web-chat token): 200
 * {messages, next}, the session's messages oldest first; 400 naming limit
 * or cursor; 401 without a valid token.
 */
enum nf_err
h_webchat_messages_list(struct nf_req *r, struct nf_error *e)
{
	static const struct nf_listing	 listing = { "messages", "createdAt", 1, 50, 200,
	    "messages", nf_webchat_message_view, NULL };
	struct json_object		*s = NULL, *ids = NULL, *f = NULL, *in, *out;
	struct nf_store			*st;
	enum nf_err			 rc;

	if ((rc = visitor(r, &s, e)) != NF_OK ||
	    (rc = nf_webchat_conversations(r->app, r->tenant, nf_webchat_session_id(s),
	    HISTORY_CONVS, &ids, e)) != NF_OK)
		goto out;
	if (json_object_array_length(ids) == 0) {
		out = json_object_new_object();
		nf_json_add(out, "messages", json_object_new_array());
		nf_json_add(out, "next", NULL);
		nf_resp_json(r, 200, out);
		goto out;
	}
	if ((rc = nf_app_store(r->app, &st, e)) != NF_OK)
		goto out;
	in = json_object_new_object();
	nf_json_add(in, "$in", ids);
	ids = NULL;
	f = json_object_new_object();
	nf_json_add(f, "conversationId", in);
	rc = nf_listing_respond(r, st, f, &listing, e);
out:
	json_object_put(f);
	json_object_put(ids);
	json_object_put(s);
	return rc;
}
