/*
 * h_tokens.c - POST /api/tokens/{conversations,video,voice,taskrouter}:
 * Twilio Access Tokens for the agent desk (twilio_token.h mints them).
 *
 * DESIGN: the route table lets any staff member in; the handlers add the
 * rules of RELIABILITY battery 41.
 * - identity defaults to the caller's username.  Only an admin may name
 *   another one; anyone else gets 403, audited ("twilio.token_denied"),
 *   because a token for someone else's identity would let an agent read
 *   or answer as that person in Twilio.  An identity is 1..121 bytes of
 *   UTF-8 without control characters: 121 is the Voice SDK's limit, the
 *   strictest of the four products, so one identity works everywhere.
 * - ttl is NONFLEX_TWILIO_TOKEN_TTL_S (default 3600, at most Twilio's
 *   24 h).  A client may ask for a shorter one ({"ttl": 60..configured});
 *   asking for more is 400 naming "ttl", so the operator's setting is the
 *   ceiling nobody can raise.
 * - a TaskRouter token is always for the caller's own worker (the agent's
 *   workerSid, set by an admin) with role "worker", so that route takes no
 *   identity: a worker token under another name would be a lie.
 * Bodies are JSON objects ({} when there is nothing to ask for); unknown
 * fields are 400.  A tenant without the setting a grant needs gets 400
 * "twilio_not_configured" naming it (as in the tenants file).  Every mint
 * is audited ("twilio.token", {grant, identity}); the token itself is
 * never audited or logged, only sent.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "app.h"
#include "audit.h"
#include "handlers.h"
#include "json.h"
#include "nonflex.h"
#include "req.h"
#include "router.h"
#include "tenant.h"
#include "twilio_token.h"
#include "valid.h"

#define IDENTITY_MAX	121    /* Twilio Voice SDK client identity limit */
#define ROOM_MAX	128    /* Twilio Video room UniqueName limit */
#define TTL_MIN_S	60

/* What a token request asked for, after validation. */
struct tok_args {
	const char	*route;      /* "conversations", ... for the audit record */
	const char	*identity;   /* borrowed from the body or the principal */
	int64_t		 ttl_s;
};

/* 1..max bytes of UTF-8 with no control character (C0, DEL or C1). */
static int
printable(const char *s, size_t max)
{
	const unsigned char	*p;

	if (s == NULL || !nf_valid_utf8(s, strlen(s), 1, max))
		return 0;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f || (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
			return 0;
	return 1;
}

static void
audit_token(struct nf_req *r, const char *event, const struct tok_args *a,
    const char *identity, const char *room)
{
	struct json_object	*d = json_object_new_object();

	nf_json_add_str(d, "grant", a->route);
	nf_json_add_str(d, "identity", identity);
	if (room != NULL)
		nf_json_add_str(d, "room", room);
	nf_audit(r, event, NULL, d);
}

/* Another identity than the caller's own: admins only (403, audited). */
static enum nf_err
check_identity(struct nf_req *r, struct tok_args *a, const char *identity,
    struct nf_error *e)
{
	if (!printable(identity, IDENTITY_MAX))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "identity",
		    "identity must be 1 to %d bytes without control characters",
		    IDENTITY_MAX);
	if (strcmp(identity, a->identity) != 0 && !(r->principal.roles & NF_ROLE_ADMIN)) {
		audit_token(r, "twilio.token_denied", a, identity, NULL);
		return nf_error_set(e, NF_EFORBIDDEN, "forbidden", "identity",
		    "only an admin may request a token for another identity");
	}
	a->identity = identity;
	return NF_OK;
}

/*
 * The fields every route shares: reject unknown ones (allowed is the
 * route's list), then ttl and, when allowed, identity.
 */
static enum nf_err
read_args(struct nf_req *r, const char *route, const char *const *allowed,
    struct tok_args *a, struct nf_error *e)
{
	const char	*identity = NULL;
	int64_t		 ttl_max = r->app->cfg.twilio_token_ttl_s;
	enum nf_err	 rc;

	a->route = route;
	a->identity = r->principal.username[0] != '\0' ? r->principal.username :
	    r->principal.agent_id;
	a->ttl_s = ttl_max;
	if ((rc = nf_json_reject_unknown(r->json, allowed, e)) != NF_OK ||
	    (rc = nf_json_get_int(r->json, "ttl", TTL_MIN_S, ttl_max, 0, &a->ttl_s,
	    e)) != NF_OK ||
	    (rc = nf_json_get_string(r->json, "identity", 1, IDENTITY_MAX, 0, &identity,
	    e)) != NF_OK)
		return rc;
	return identity != NULL ? check_identity(r, a, identity, e) : NF_OK;
}

/* 400 twilio_not_configured naming field when the tenant lacks value. */
static enum nf_err
setting(const char *value, const char *field, struct nf_error *e)
{
	if (value != NULL)
		return NF_OK;
	return nf_error_set(e, NF_EINVAL, "twilio_not_configured", field,
	    "the tenant has no %s: this token cannot be issued", field);
}

/*
 * Mint, audit and answer 200 {token, identity, ttl, expiresAt}.  CONSUMES
 * grant.
 */
static enum nf_err
respond(struct nf_req *r, const struct tok_args *a, const char *grant_key,
    struct json_object *grant, const char *room, struct nf_error *e)
{
	struct json_object	*root;
	int64_t			 now_s = nf_now_ms() / 1000;
	char			*tok = NULL, at[25];
	enum nf_err		 rc;

	rc = nf_twtoken_mint(r->tenant, a->identity, grant_key, grant, now_s, a->ttl_s,
	    &tok, e);
	json_object_put(grant);
	if (rc != NF_OK)
		return rc;
	audit_token(r, "twilio.token", a, a->identity, room);
	nf_iso8601((now_s + a->ttl_s) * 1000, at);
	root = json_object_new_object();
	nf_json_add_str(root, "token", tok);
	nf_json_add_str(root, "identity", a->identity);
	nf_json_add_int(root, "ttl", a->ttl_s);
	nf_json_add_str(root, "expiresAt", at);
	nf_resp_json(r, 200, root);
	free(tok);
	return NF_OK;
}

/*
 * POST /api/tokens/conversations {identity?, ttl?}, staff: 200 a token
 * with the chat grant {service_sid}; 400 bad or unknown field, 400
 * twilio_not_configured (twilio.conversationsServiceSid, twilio.apiKey,
 * twilio.apiSecret, twilio.accountSid); 403 another identity (not admin).
 */
enum nf_err
h_tokens_conversations(struct nf_req *r, struct nf_error *e)
{
	static const char *const allowed[] = { "identity", "ttl", NULL };
	const char		*service = r->tenant->twilio.conversations_service_sid;
	struct json_object	*g;
	struct tok_args		 a;
	enum nf_err		 rc;

	if ((rc = read_args(r, "conversations", allowed, &a, e)) != NF_OK ||
	    (rc = setting(service, "twilio.conversationsServiceSid", e)) != NF_OK)
		return rc;
	g = json_object_new_object();
	nf_json_add_str(g, "service_sid", service);
	return respond(r, &a, "chat", g, NULL, e);
}

/*
 * POST /api/tokens/video {room, identity?, ttl?}, staff: 200 a token with
 * the video grant {room}; 400 missing or bad room (1..128 bytes, no
 * control characters) or other field, 400 twilio_not_configured (the
 * credentials); 403 another identity (not admin).
 */
enum nf_err
h_tokens_video(struct nf_req *r, struct nf_error *e)
{
	static const char *const allowed[] = { "identity", "room", "ttl", NULL };
	const char		*room = NULL;
	struct json_object	*g;
	struct tok_args		 a;
	enum nf_err		 rc;

	if ((rc = read_args(r, "video", allowed, &a, e)) != NF_OK ||
	    (rc = nf_json_get_string(r->json, "room", 1, ROOM_MAX, 1, &room, e)) != NF_OK)
		return rc;
	if (!printable(room, ROOM_MAX))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "room",
		    "room must be 1 to %d bytes without control characters", ROOM_MAX);
	g = json_object_new_object();
	nf_json_add_str(g, "room", room);
	return respond(r, &a, "video", g, room, e);
}

/*
 * POST /api/tokens/voice {identity?, ttl?}, staff: 200 a token with the
 * voice grant {incoming {allow: true}, outgoing {application_sid}}; 400
 * bad or unknown field, 400 twilio_not_configured (twilio.twimlAppSid or
 * the credentials); 403 another identity (not admin).
 */
enum nf_err
h_tokens_voice(struct nf_req *r, struct nf_error *e)
{
	static const char *const allowed[] = { "identity", "ttl", NULL };
	const char		*app = r->tenant->twilio.twiml_app_sid;
	struct json_object	*g, *in, *out;
	struct tok_args		 a;
	enum nf_err		 rc;

	if ((rc = read_args(r, "voice", allowed, &a, e)) != NF_OK ||
	    (rc = setting(app, "twilio.twimlAppSid", e)) != NF_OK)
		return rc;
	in = json_object_new_object();
	nf_json_add_bool(in, "allow", 1);
	out = json_object_new_object();
	nf_json_add_str(out, "application_sid", app);
	g = json_object_new_object();
	nf_json_add(g, "incoming", in);
	nf_json_add(g, "outgoing", out);
	return respond(r, &a, "voice", g, NULL, e);
}

/*
 * POST /api/tokens/taskrouter {ttl?}, staff: 200 a token with the
 * task_router grant {workspace_sid, worker_sid (the caller's workerSid),
 * role "worker"} for the caller's own identity; 400 bad or unknown field
 * (identity included), 400 twilio_not_configured (twilio.workspaceSid or
 * the credentials), 400 no_worker when the agent has no workerSid.
 */
enum nf_err
h_tokens_taskrouter(struct nf_req *r, struct nf_error *e)
{
	static const char *const allowed[] = { "ttl", NULL };
	const char		*ws = r->tenant->twilio.workspace_sid, *worker = NULL;
	struct json_object	*g, *v;
	struct tok_args		 a;
	enum nf_err		 rc;

	if ((rc = read_args(r, "taskrouter", allowed, &a, e)) != NF_OK ||
	    (rc = setting(ws, "twilio.workspaceSid", e)) != NF_OK)
		return rc;
	if (r->principal.agent != NULL &&
	    json_object_object_get_ex(r->principal.agent, "workerSid", &v) &&
	    json_object_is_type(v, json_type_string))
		worker = json_object_get_string(v);
	if (!nf_valid_twilio_sid(worker, "WK"))
		return nf_error_set(e, NF_EINVAL, "no_worker", "workerSid",
		    "this agent has no TaskRouter worker: an admin sets its workerSid");
	g = json_object_new_object();
	nf_json_add_str(g, "workspace_sid", ws);
	nf_json_add_str(g, "worker_sid", worker);
	nf_json_add_str(g, "role", "worker");
	return respond(r, &a, "task_router", g, NULL, e);
}
