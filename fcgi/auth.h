/*
 * auth.h - agent sessions: HS256 login tokens (libjwt), their verification
 * on every request, revocation, and the principal handlers see.
 *
 * DESIGN: the router (router.c authorize()) is the only caller of
 * nf_auth_request: it takes the token from "Authorization: Bearer" or the
 * session cookie, verifies it with exactly HS256 and JWT_SECRET, checks
 * iss/aud/typ/exp/iat/nbf (60 s leeway), that the tenant claim equals the
 * resolved tenant (403 otherwise), that the jti is not revoked (Redis) and
 * that the agent still exists, is enabled and has not changed its password
 * since the token was issued (store), then fills
 * r->principal.  Handlers read r->principal and never parse tokens.
 * A worker remembers verified tokens and agent documents between requests
 * only while Redis pushes it every revocation and agent change
 * (authcache.h), so all of the above still holds at once on every worker
 * without a Redis round trip and a store read per request.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_AUTH_H
#define NF_AUTH_H

#include <stdint.h>

#include "nonflex.h"

struct json_object;
struct nf_req;
struct nf_app;
struct json_object;

/* Who is calling (valid for one request; owned by struct nf_req). */
struct nf_principal {
	int	 authenticated;   /* 0 for public routes */
	char	 agent_id[25];    /* sub */
	char	 username[65];
	unsigned roles;           /* NF_ROLE_* bits (router.h) */
	char	 jti[33];
	int64_t	 exp;             /* seconds since epoch */
	int	 via_cookie;      /* token came from the session cookie */
	struct json_object *agent;   /* the agent document read for this request
	                             * (owned; freed with the request) */
	int64_t	 iat;             /* the token's iat: a refresh never goes below it */
};

#define NF_AUTH_COOKIE      "nf_session"
#define NF_AUTH_CSRF_HEADER "X-CSRF-Token"

/* Verification constants (RFC 8725): fixed issuer, audience and purpose,
 * so no other kind of JWT (a Twilio Access Token, a refresh token) is
 * ever taken for a login token. */
#define NF_AUTH_ISS        "nonflex"
#define NF_AUTH_AUD        "nonflex-api"
#define NF_AUTH_PURPOSE    "access"
#define NF_AUTH_LEEWAY_S   60
#define NF_AUTH_TOKEN_MAX  4096    /* longer tokens are refused unread */

/* The claims of a verified (or freshly issued) access token. */
struct nf_auth_claims {
	char	 sub[25];         /* agent id, 24 hex */
	char	 tenant[64];
	unsigned roles;           /* NF_ROLE_* bits */
	char	 jti[33];         /* 32 hex */
	char	 csrf[33];        /* 32 hex: the CSRF value bound to the token */
	int64_t	 iat, exp;        /* seconds since epoch */
};

/*
 * Sign a new access token for agent sub of tenant with roles, valid ttl_s
 * seconds from now_s, with a fresh jti and csrf.  *token is malloc'd;
 * claims (may be NULL) receives what was signed.  NF_ESYSTEM if libjwt
 * fails (logged).
 */
enum nf_err	 nf_auth_issue(const char *secret, const char *tenant, const char *sub,
		    unsigned roles, int64_t ttl_s, int64_t now_s, char **token,
		    struct nf_auth_claims *claims, struct nf_error *);

/*
 * Verify token with exactly HS256 and secret at time now_s: shape (three
 * canonical base64url segments, at most NF_AUTH_TOKEN_MAX bytes), header
 * exactly {"alg":"HS256","typ":"JWT"}, signature (constant time), then
 * the claims strictly (iss, aud, purpose, sub, tenant, roles, iat, exp,
 * optional nbf, jti, csrf; no other claim; 60 s leeway).  Returns 1 and
 * fills *out when valid; 0 with *reason set to a short static word
 * ("malformed", "bad_header", "bad_signature", "expired", ...) otherwise.
 * Pure: no I/O, no logging.
 */
int		 nf_auth_verify(const char *secret, const char *token, int64_t now_s,
		    struct nf_auth_claims *out, const char **reason);

/*
 * Password changes end older sessions (battery 38).  An agent document may
 * carry passwordChangedAt (ms since epoch); a token whose iat (seconds) is
 * earlier, iat * 1000 < passwordChangedAt, is refused ("password_changed").
 * So that a token issued in the same second right after a change is not
 * refused as well, tokens are issued at nf_auth_issue_time(): never before
 * the change, rounded up to the next second (at most 1 s ahead of the
 * clock, far inside the leeway).  No I/O; cannot fail.
 */
int64_t		 nf_auth_pw_changed_ms(struct json_object *agent);   /* 0: never */
int64_t		 nf_auth_issue_time(int64_t now_s, int64_t pw_changed_ms);
int		 nf_auth_iat_current(int64_t iat_s, int64_t pw_changed_ms);

/* "agent" | "supervisor" | "admin" -> NF_ROLE_* bit, 0 when unknown. */
unsigned	 nf_auth_role_bit(const char *);
/* Role bits from an agent document: its "roles" array (unknown names
 * ignored); NF_ROLE_AGENT when it has none (agents of the original). */
unsigned	 nf_auth_doc_roles(struct json_object *agent);
/* New JSON array of the role names in bits. */
struct json_object *nf_auth_roles_json(unsigned bits);

/*
 * Authenticate r for a route that needs one of roles (the router's
 * authorize() calls this only when roles != NF_ROLE_NONE): token from
 * Bearer or cookie, nf_auth_verify, tenant claim == r->tenant (403
 * tenant_mismatch), CSRF header for cookie-authenticated unsafe methods
 * (403 csrf_failed), jti not revoked (Redis; 503 redis_unavailable when
 * Redis cannot be asked: fail closed), agent still present and enabled
 * (one store lookup by _id; its roles there are authoritative), token
 * not older than the agent's last password change.  Fills
 * r->principal.  Every 401 carries WWW-Authenticate and is audited
 * (rate limited per IP and reason).
 */
enum nf_err	 nf_auth_request(struct nf_req *r, struct nf_error *);

/* Deny jti in Redis until exp (plus leeway). */
enum nf_err	 nf_auth_revoke(struct nf_req *r, const char *jti, int64_t exp,
		    struct nf_error *);

/* Audit a rejected token (event "token_rejected" with reason), at most
 * once per client IP and reason per minute; always logged. */
void		 nf_auth_audit_rejection(struct nf_req *r, const char *reason);

#endif
