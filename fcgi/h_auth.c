/*
 * h_auth.c - agent sessions over HTTP: POST /api/agents/login, logout,
 * refresh and GET /api/agents/me.
 *
 * DESIGN: login is the only place a password is checked.  Every outcome
 * that reveals nothing must look the same: unknown user, wrong password
 * and disabled agent all give one 401 body, and an unknown user still
 * costs one yescrypt verification (against a fixed dummy hash) so timing
 * does not tell them apart either.  Failures are counted in Redis per
 * (tenant, username) and per (tenant, client IP); reaching the limit sets
 * a block key whose remaining life is the Retry-After of the 429; a
 * successful login resets its username's count.  Without
 * Redis, login answers 503 rather than run unthrottled.  Tokens are made
 * and checked in auth.c; the router has authenticated logout/refresh/me
 * before these handlers run.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "app.h"
#include "audit.h"
#include "auth.h"
#include "handlers.h"
#include "json.h"
#include "kv.h"
#include "log.h"
#include "nonflex.h"
#include "passwd.h"
#include "req.h"
#include "router.h"
#include "store.h"
#include "tenant.h"

/* A yescrypt hash of a password nobody knows (same cost as real ones):
 * verified when the username is unknown, so that costs the same time. */
#define DUMMY_HASH "$y$j9T$nD/UzXIMlJE1Rgnpm/tTq.$8vq1IEoFMvJ4LNvTqY8Rr9IccJP4RqEs7e4Yw5EqakB"

#define FIELD_MAX 128

struct login {
	const char		*username;
	const char		*password;
	const char		*ip;
	char			 user_bucket[80];  /* "user:<sha256 hex>" */
	char			 ip_bucket[80];    /* "ip:<address>" */
	struct json_object	*agent;            /* found document or NULL */
};

static const char *
client_ip(struct nf_req *r)
{
	const char	*ip = nf_req_param(r, "REMOTE_ADDR");

	return ip != NULL && *ip != '\0' && strlen(ip) < 64 ? ip : "unknown";
}

/* Usernames are any text: hash them so the Redis key stays clean. */
static void
user_bucket(const char *username, char out[80])
{
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 n = 0, i;

	EVP_Digest(username, strlen(username), md, &n, EVP_sha256(), NULL);
	memcpy(out, "user:", 6);
	for (i = 0; i < n && i < 32; i++)
		snprintf(out + 5 + 2 * i, 3, "%02x", md[i]);
}

static void
audit_login(struct nf_req *r, const char *event, const struct login *l, const char *why)
{
	struct json_object	*data = json_object_new_object();

	nf_json_add_str(data, "username", l->username);
	nf_json_add_str(data, "ip", l->ip);
	if (why != NULL)
		nf_json_add_str(data, "reason", why);
	nf_audit(r, event, l->username, data);
}

/* Remaining block time of bucket in ms (0: not blocked). */
static enum nf_err
blocked_ms(struct nf_req *r, const char *bucket, int64_t *ms, struct nf_error *e)
{
	struct redisReply	*rep = NULL;
	char			*key;
	enum nf_err		 rc;

	*ms = 0;
	if ((key = nf_kv_key(r->tenant->id, "loginblock", bucket)) == NULL)
		return nf_error_set(e, NF_ESYSTEM, NULL, NULL, "bad key");
	rc = nf_kv_command(nf_app_kv(r->app), &rep, e, "PTTL %s", key);
	free(key);
	if (rc == NF_OK && rep != NULL && rep->type == REDIS_REPLY_INTEGER && rep->integer > 0)
		*ms = rep->integer;
	if (rep != NULL)
		freeReplyObject(rep);
	return rc;
}

static enum nf_err
throttled(struct nf_req *r, const struct login *l, struct nf_error *e)
{
	int64_t		 a, b;
	enum nf_err	 rc;

	if ((rc = blocked_ms(r, l->user_bucket, &a, e)) != NF_OK ||
	    (rc = blocked_ms(r, l->ip_bucket, &b, e)) != NF_OK)
		return rc;
	if (a == 0 && b == 0)
		return NF_OK;
	r->retry_after_ms = a > b ? a : b;
	audit_login(r, "login_throttled", l, a > 0 ? "username" : "ip");
	return nf_error_set(e, NF_ERATE, "too_many_attempts", NULL,
	    "too many failed sign-in attempts; retry later");
}

/* Count a failure in bucket; at the limit, block it for the window. */
static enum nf_err
count_failure(struct nf_req *r, const char *bucket, int64_t max, struct nf_error *e)
{
	int64_t		 window = r->app->cfg.login_window_s * 1000, retry = 0;
	char		*key, px[24];
	int		 allowed = 1;
	enum nf_err	 rc;

	if ((rc = nf_kv_ratelimit_hit(nf_app_kv(r->app), r->tenant->id, bucket, max - 1,
	    window, &allowed, &retry, e)) != NF_OK || allowed)
		return rc;
	if ((key = nf_kv_key(r->tenant->id, "loginblock", bucket)) == NULL)
		return nf_error_set(e, NF_ESYSTEM, NULL, NULL, "bad key");
	snprintf(px, sizeof(px), "%lld", (long long)(retry > 1000 ? retry : 1000));
	rc = nf_kv_command(nf_app_kv(r->app), NULL, e, "SET %s 1 PX %s", key, px);
	free(key);
	return rc;
}

static enum nf_err
find_agent(struct nf_req *r, struct login *l, struct nf_error *e)
{
	struct nf_store		*st;
	struct json_object	*f;
	enum nf_err		 rc;

	if ((rc = nf_app_store(r->app, &st, e)) != NF_OK)
		return rc;
	f = nf_json_pair("username", l->username);
	rc = nf_store_find_one(st, r->tenant->id, "agents", f, NULL, &l->agent, e);
	json_object_put(f);
	if (rc == NF_ENOTFOUND) {
		nf_error_clear(e);
		return NF_OK;
	}
	return rc;
}

/* 1 when l's password opens an enabled agent; always one hash verify. */
static int
credentials_ok(struct login *l)
{
	struct nf_error	 e;
	const char	*hash = NULL;
	int		 disabled = 0, ok;

	if (l->agent != NULL) {
		(void)nf_json_get_string(l->agent, "password", 1, 512, 0, &hash, &e);
		(void)nf_json_get_bool(l->agent, "disabled", 0, &disabled, &e);
	}
	ok = nf_passwd_verify(l->password, hash != NULL ? hash : DUMMY_HASH);
	return ok && hash != NULL && !disabled;
}

/* Replace a legacy (bcrypt) hash after a successful login; a failure is
 * logged only: the agent is signed in either way. */
static void
upgrade_hash(struct nf_req *r, struct login *l, const char *id)
{
	struct nf_store		*st;
	struct json_object	*f, *u, *set;
	struct nf_error		 e;
	const char		*hash = NULL;
	char			*fresh = NULL, now[25];

	if (nf_json_get_string(l->agent, "password", 1, 512, 1, &hash, &e) != NF_OK ||
	    !nf_passwd_needs_upgrade(hash) || nf_app_store(r->app, &st, &e) != NF_OK ||
	    nf_passwd_hash(l->password, &fresh) != NF_OK)
		return;
	nf_iso8601(nf_now_ms(), now);
	f = nf_json_pair("_id", id);
	u = json_object_new_object();
	set = json_object_new_object();
	nf_json_add_str(set, "password", fresh);
	nf_json_add_str(set, "updatedAt", now);
	nf_json_add(u, "$set", set);
	if (nf_store_update(st, r->tenant->id, "agents", f, u, 0, NULL, &e) != NF_OK)
		nf_warn("password hash upgrade failed for an agent: %s", e.message);
	else
		nf_info("upgraded a legacy password hash to yescrypt");
	json_object_put(f);
	json_object_put(u);
	explicit_bzero(fresh, strlen(fresh));
	free(fresh);
}

/* 200 {token, csrfToken, expiresAt, agent} and the session cookie; the
 * token is issued at iat_s (nf_auth_issue_time). */
static enum nf_err
session_response(struct nf_req *r, const char *id, const char *username, unsigned roles,
    int64_t iat_s, struct nf_error *e)
{
	struct nf_auth_claims	 c;
	struct json_object	*o, *agent;
	char			*tok = NULL, *cookie, at[25];
	enum nf_err		 rc;

	if ((rc = nf_auth_issue(r->app->cfg.jwt_secret, r->tenant->id, id, roles,
	    r->app->cfg.jwt_ttl_s, iat_s, &tok, &c, e)) != NF_OK)
		return rc;
	nf_iso8601(c.exp * 1000, at);
	o = json_object_new_object();
	nf_json_add_str(o, "token", tok);
	nf_json_add_str(o, "csrfToken", c.csrf);
	nf_json_add_str(o, "expiresAt", at);
	agent = json_object_new_object();
	nf_json_add_str(agent, "id", id);
	nf_json_add_str(agent, "username", username);
	nf_json_add(agent, "roles", nf_auth_roles_json(roles));
	nf_json_add(o, "agent", agent);
	cookie = nf_xasprintf("%s=%s; HttpOnly; Secure; SameSite=Strict; Path=/api; "
	    "Max-Age=%lld", NF_AUTH_COOKIE, tok, (long long)r->app->cfg.jwt_ttl_s);
	nf_resp_json(r, 200, o);
	nf_resp_header(r, "Set-Cookie", cookie);
	nf_resp_header(r, "Cache-Control", "no-store");
	free(cookie);
	free(tok);
	return NF_OK;
}

static enum nf_err
login_fields(struct nf_req *r, struct login *l, struct nf_error *e)
{
	static const char *const allowed[] = { "username", "password", NULL };
	enum nf_err	 rc;

	if ((rc = nf_json_reject_unknown(r->json, allowed, e)) != NF_OK ||
	    (rc = nf_json_get_string(r->json, "username", 1, FIELD_MAX, 1, &l->username,
	    e)) != NF_OK ||
	    (rc = nf_json_get_string(r->json, "password", 1, FIELD_MAX, 1, &l->password,
	    e)) != NF_OK)
		return rc;
	l->ip = client_ip(r);
	user_bucket(l->username, l->user_bucket);
	snprintf(l->ip_bucket, sizeof(l->ip_bucket), "ip:%s", l->ip);
	return NF_OK;
}

/* A successful login forgets the username's failures (not the IP's: one
 * address guessing many accounts must not clear its count with one it
 * knows).  Best effort: the agent is signed in either way. */
static void
forget_failures(struct nf_req *r, const struct login *l)
{
	struct nf_error	 e;

	nf_error_clear(&e);
	if (nf_kv_ratelimit_reset(nf_app_kv(r->app), r->tenant->id, l->user_bucket, &e) !=
	    NF_OK)
		nf_warn("failed-login count not reset after a login: %s", e.message);
}

static enum nf_err
login_failed(struct nf_req *r, struct login *l, struct nf_error *e)
{
	enum nf_err	 rc;

	audit_login(r, "login_failure", l, NULL);
	if ((rc = count_failure(r, l->user_bucket, r->app->cfg.login_user_max, e)) != NF_OK ||
	    (rc = count_failure(r, l->ip_bucket, r->app->cfg.login_ip_max, e)) != NF_OK)
		return rc;
	return nf_error_set(e, NF_EAUTH, "invalid_credentials", NULL,
	    "invalid username or password");
}

/* POST /api/agents/login {username, password} (public). */
enum nf_err
h_auth_login(struct nf_req *r, struct nf_error *e)
{
	struct login	 l;
	const char	*id = NULL;
	enum nf_err	 rc;

	memset(&l, 0, sizeof(l));
	if ((rc = login_fields(r, &l, e)) != NF_OK || (rc = throttled(r, &l, e)) != NF_OK ||
	    (rc = find_agent(r, &l, e)) != NF_OK)
		goto out;
	if (!credentials_ok(&l) ||
	    nf_json_get_string(l.agent, "_id", 24, 24, 1, &id, e) != NF_OK) {
		nf_error_clear(e);
		rc = login_failed(r, &l, e);
		goto out;
	}
	upgrade_hash(r, &l, id);
	if ((rc = session_response(r, id, l.username, nf_auth_doc_roles(l.agent),
	    nf_auth_issue_time(nf_now_ms() / 1000, nf_auth_pw_changed_ms(l.agent)),
	    e)) != NF_OK)
		goto out;
	forget_failures(r, &l);
	audit_login(r, "login_success", &l, NULL);
out:
	json_object_put(l.agent);
	return rc;
}

static void
clear_cookie(struct nf_req *r)
{
	nf_resp_header(r, "Set-Cookie", NF_AUTH_COOKIE "=; HttpOnly; Secure; SameSite=Strict; "
	    "Path=/api; Max-Age=0");
}

/* POST /api/agents/logout (any role): the token's jti is denied until it
 * would have expired; 204 and the cookie cleared. */
enum nf_err
h_auth_logout(struct nf_req *r, struct nf_error *e)
{
	enum nf_err	 rc;

	if ((rc = nf_auth_revoke(r, r->principal.jti, r->principal.exp, e)) != NF_OK)
		return rc;
	nf_audit(r, "logout", NULL, NULL);
	nf_resp_empty(r, 204);
	clear_cookie(r);
	return NF_OK;
}

/* POST /api/agents/refresh (any role): a new token like login's; the old
 * one is revoked first, so a stolen old token cannot be refreshed twice.
 * The new iat is never below the old one, which already passed the
 * password-change check. */
enum nf_err
h_auth_refresh(struct nf_req *r, struct nf_error *e)
{
	enum nf_err	 rc;

	if ((rc = nf_auth_revoke(r, r->principal.jti, r->principal.exp, e)) != NF_OK ||
	    (rc = session_response(r, r->principal.agent_id, r->principal.username,
	    r->principal.roles, nf_auth_issue_time(nf_now_ms() / 1000,
	    r->principal.iat * 1000), e)) != NF_OK)
		return rc;
	nf_audit(r, "token_refreshed", NULL, NULL);
	return NF_OK;
}

/* Copy field from agent into o, or def (consumed) when it is absent. */
static void
copy_field(struct json_object *o, struct json_object *agent, const char *field,
    struct json_object *def)
{
	struct json_object	*v;

	if (json_object_object_get_ex(agent, field, &v) && v != NULL) {
		json_object_put(def);
		nf_json_add(o, field, json_object_get(v));
	} else
		nf_json_add(o, field, def);
}

/* GET /api/agents/me (any role). */
enum nf_err
h_auth_me(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*doc = r->principal.agent, *o;

	/* The router loaded and checked the agent for this very request. */
	if (doc == NULL)
		return nf_error_set(e, NF_EAUTH, "invalid_token", NULL,
		    "the agent no longer exists");
	o = json_object_new_object();
	nf_json_add_str(o, "id", r->principal.agent_id);
	nf_json_add_str(o, "username", r->principal.username);
	copy_field(o, doc, "name", json_object_new_string(r->principal.username));
	copy_field(o, doc, "status", json_object_new_string("offline"));
	copy_field(o, doc, "skills", json_object_new_array());
	copy_field(o, doc, "languages", json_object_new_array());
	copy_field(o, doc, "level", json_object_new_int(1));
	nf_json_add(o, "roles", nf_auth_roles_json(r->principal.roles));
	nf_resp_header(r, "Cache-Control", "no-store");
	nf_resp_json(r, 200, o);
	return NF_OK;
}
