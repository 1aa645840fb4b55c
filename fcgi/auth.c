/*
 * auth.c - login tokens: signing with libjwt, strict verification, the
 * per-request check the router calls, revocation (see auth.h).
 *
 * DESIGN: verification does not hand the token to a general JWT library
 * that would honour the header's "alg": the token is split and decoded
 * here (three canonical base64url segments, bounded length), the header
 * must be exactly {"alg":"HS256","typ":"JWT"}, the HMAC-SHA256 is computed
 * with OpenSSL and compared in constant time, and only then are the claims
 * parsed - strictly, with nf_json_parse (UTF-8, depth, duplicate keys) and
 * a fixed set of allowed claims (RFC 8725 2.1, 3.1, 3.11, 3.12).  Signing
 * uses libjwt.  Authorization decisions re-read the agent from the store
 * on every request, so disabling or deleting an agent, changing its roles
 * or its password applies at once; the token's own roles are not trusted
 * for that.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <jwt.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "app.h"
#include "audit.h"
#include "auth.h"
#include "authcache.h"
#include "json.h"
#include "kv.h"
#include "log.h"
#include "nonflex.h"
#include "req.h"
#include "router.h"
#include "store.h"
#include "tenant.h"
#include "valid.h"

static const char *const role_names[] = { "agent", "supervisor", "admin" };
static const unsigned role_bits[] = { NF_ROLE_AGENT, NF_ROLE_SUPERVISOR, NF_ROLE_ADMIN };

unsigned
nf_auth_role_bit(const char *name)
{
	size_t	 i;

	for (i = 0; name != NULL && i < NF_ARRAY_LEN(role_names); i++)
		if (strcmp(name, role_names[i]) == 0)
			return role_bits[i];
	return 0;
}

struct json_object *
nf_auth_roles_json(unsigned bits)
{
	struct json_object	*a = json_object_new_array();
	size_t			 i;

	for (i = 0; i < NF_ARRAY_LEN(role_names); i++)
		if (bits & role_bits[i])
			json_object_array_add(a, json_object_new_string(role_names[i]));
	return a;
}

unsigned
nf_auth_doc_roles(struct json_object *agent)
{
	struct json_object	*roles;
	unsigned		 bits = 0;
	size_t			 i, n;

	if (!json_object_object_get_ex(agent, "roles", &roles) ||
	    !json_object_is_type(roles, json_type_array))
		return NF_ROLE_AGENT;
	n = json_object_array_length(roles);
	for (i = 0; i < n; i++)
		bits |= nf_auth_role_bit(json_object_get_string(
		    json_object_array_get_idx(roles, i)));
	return bits;
}

/* ---- password changes ---------------------------------------------------- */

int64_t
nf_auth_pw_changed_ms(struct json_object *agent)
{
	struct json_object	*v;
	int64_t			 ms;

	if (agent == NULL || !json_object_object_get_ex(agent, "passwordChangedAt", &v) ||
	    !json_object_is_type(v, json_type_int))
		return 0;
	ms = json_object_get_int64(v);
	return ms > 0 ? ms : 0;
}

int64_t
nf_auth_issue_time(int64_t now_s, int64_t pw_changed_ms)
{
	int64_t	 floor_s = pw_changed_ms / 1000 + (pw_changed_ms % 1000 != 0);

	return now_s > floor_s ? now_s : floor_s;
}

int
nf_auth_iat_current(int64_t iat_s, int64_t pw_changed_ms)
{
	return pw_changed_ms <= 0 || iat_s >= nf_auth_issue_time(0, pw_changed_ms);
}

/* ---- base64url ------------------------------------------------------- */

static int
b64url_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Decode unpadded base64url s[0..len) into a new buffer (NUL-terminated,
 * *outlen bytes).  NULL for any other character, padding, an impossible
 * length or non-zero leftover bits (one encoding per value: RFC 8725 2.6).
 */
static unsigned char *
b64url_decode(const char *s, size_t len, size_t *outlen)
{
	unsigned char	*out;
	uint32_t	 acc = 0;
	size_t		 i, o = 0;
	int		 bits = 0, v;

	if (len % 4 == 1)
		return NULL;
	out = nf_xmalloc(len * 3 / 4 + 1);
	for (i = 0; i < len; i++) {
		if ((v = b64url_val(s[i])) < 0)
			goto bad;
		acc = (acc << 6) | (uint32_t)v;
		if ((bits += 6) >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)
		goto bad;
	out[o] = '\0';
	*outlen = o;
	return out;
bad:
	free(out);
	return NULL;
}

/* ---- signing ----------------------------------------------------------- */

static struct json_object *
claims_json(const char *tenant, const char *sub, unsigned roles, int64_t ttl_s,
    int64_t now_s, struct nf_auth_claims *c)
{
	struct json_object	*o = json_object_new_object();

	memset(c, 0, sizeof(*c));
	snprintf(c->sub, sizeof(c->sub), "%s", sub);
	snprintf(c->tenant, sizeof(c->tenant), "%s", tenant);
	c->roles = roles;
	nf_random_hex(c->jti, 16);
	nf_random_hex(c->csrf, 16);
	c->iat = now_s;
	c->exp = now_s + ttl_s;
	nf_json_add_str(o, "iss", NF_AUTH_ISS);
	nf_json_add_str(o, "aud", NF_AUTH_AUD);
	nf_json_add_str(o, "purpose", NF_AUTH_PURPOSE);
	nf_json_add_str(o, "sub", c->sub);
	nf_json_add_str(o, "tenant", c->tenant);
	nf_json_add(o, "roles", nf_auth_roles_json(roles));
	nf_json_add_int(o, "iat", c->iat);
	nf_json_add_int(o, "exp", c->exp);
	nf_json_add_str(o, "jti", c->jti);
	nf_json_add_str(o, "csrf", c->csrf);
	return o;
}

enum nf_err
nf_auth_issue(const char *secret, const char *tenant, const char *sub, unsigned roles,
    int64_t ttl_s, int64_t now_s, char **token, struct nf_auth_claims *claims,
    struct nf_error *e)
{
	struct nf_auth_claims	 c;
	struct json_object	*o;
	jwt_t			*jwt = NULL;
	char			*s = NULL;
	enum nf_err		 rc = NF_OK;

	*token = NULL;
	o = claims_json(tenant, sub, roles, ttl_s, now_s, &c);
	if (jwt_new(&jwt) != 0 ||
	    jwt_add_grants_json(jwt, json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN)) != 0 ||
	    jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret,
	    (int)strlen(secret)) != 0 ||
	    (s = jwt_encode_str(jwt)) == NULL) {
		nf_error("libjwt could not sign a token");
		rc = nf_error_set(e, NF_ESYSTEM, NULL, NULL, "cannot issue a token");
		goto out;
	}
	*token = nf_xstrdup(s);
	if (claims != NULL)
		*claims = c;
out:
	if (s != NULL)
		free(s);
	jwt_free(jwt);
	json_object_put(o);
	return rc;
}

/* ---- verification ------------------------------------------------------ */

/* Split into three non-empty segments of base64url characters. */
static int
split_token(const char *t, const char *seg[3], size_t len[3])
{
	const char	*d1, *d2;
	size_t		 n = strlen(t), i;

	if (n == 0 || n > NF_AUTH_TOKEN_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (t[i] != '.' && b64url_val(t[i]) < 0)
			return 0;
	if ((d1 = strchr(t, '.')) == NULL || (d2 = strchr(d1 + 1, '.')) == NULL ||
	    strchr(d2 + 1, '.') != NULL)
		return 0;
	seg[0] = t, len[0] = (size_t)(d1 - t);
	seg[1] = d1 + 1, len[1] = (size_t)(d2 - d1 - 1);
	seg[2] = d2 + 1, len[2] = n - (size_t)(d2 + 1 - t);
	return len[0] > 0 && len[1] > 0 && len[2] > 0;
}

/* Decode a segment and parse it strictly as a JSON object. */
static struct json_object *
segment_json(const char *s, size_t len)
{
	struct json_object	*o = NULL;
	struct nf_error		 e;
	unsigned char		*raw;
	size_t			 rlen;

	if ((raw = b64url_decode(s, len, &rlen)) == NULL)
		return NULL;
	if (nf_json_parse((const char *)raw, rlen, &o, &e) == NF_OK &&
	    !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	free(raw);
	return o;
}

/* base64url of {"alg":"HS256","typ":"JWT"}, the header nf_auth_issue
 * writes.  Decoding is canonical (one encoding per value), so a segment
 * equal to this is exactly that header and need not be parsed. */
#define HS256_HEADER_B64 "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

/* Exactly {"alg":"HS256","typ":"JWT"}: any kid/jku/x5u/cty is refused. */
static int
header_ok(struct json_object *h)
{
	struct json_object	*v;

	if (json_object_object_length(h) != 2)
		return 0;
	if (!json_object_object_get_ex(h, "alg", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    strcmp(json_object_get_string(v), "HS256") != 0)
		return 0;
	return json_object_object_get_ex(h, "typ", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    strcmp(json_object_get_string(v), "JWT") == 0;
}

/*
 * HMAC-SHA256 keyed once per secret and copied per token: OpenSSL 3's
 * one-shot HMAC() fetches the algorithm and sets the key on every call,
 * a measured share of every authenticated request (tests/bench).  A
 * different secret (SIGHUP reload, tests) rebuilds the keyed context.
 */
static EVP_MAC_CTX	*hmac_keyed;
static char		*hmac_secret;

static void
hmac_forget(void)
{
	EVP_MAC_CTX_free(hmac_keyed);
	hmac_keyed = NULL;
	if (hmac_secret != NULL) {
		OPENSSL_cleanse(hmac_secret, strlen(hmac_secret));
		free(hmac_secret);
		hmac_secret = NULL;
	}
}

static EVP_MAC_CTX *
hmac_ctx(const char *secret)
{
	OSSL_PARAM	 p[2];
	EVP_MAC		*mac;

	if (hmac_keyed != NULL && strcmp(hmac_secret, secret) == 0)
		return EVP_MAC_CTX_dup(hmac_keyed);
	hmac_forget();
	if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		return NULL;
	hmac_keyed = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac);
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	p[1] = OSSL_PARAM_construct_end();
	if (hmac_keyed == NULL || !EVP_MAC_init(hmac_keyed, (const unsigned char *)secret,
	    strlen(secret), p)) {
		hmac_forget();
		return NULL;
	}
	hmac_secret = nf_xstrdup(secret);
	return EVP_MAC_CTX_dup(hmac_keyed);
}

static int
signature_ok(const char *secret, const char *token, size_t signed_len, const char *sig,
    size_t siglen)
{
	unsigned char	 mac[EVP_MAX_MD_SIZE], *got;
	EVP_MAC_CTX	*ctx;
	size_t		 glen, maclen = 0;
	int		 ok;

	if ((got = b64url_decode(sig, siglen, &glen)) == NULL)
		return 0;
	ok = (ctx = hmac_ctx(secret)) != NULL &&
	    EVP_MAC_update(ctx, (const unsigned char *)token, signed_len) &&
	    EVP_MAC_final(ctx, mac, &maclen, sizeof(mac)) &&
	    glen == 32 && nf_ct_equal(mac, maclen, got, glen);
	EVP_MAC_CTX_free(ctx);
	free(got);
	return ok;
}

static int
str_claim(struct json_object *c, const char *name, const char *want, char *out,
    size_t outsz)
{
	struct json_object	*v;
	const char		*s;

	if (!json_object_object_get_ex(c, name, &v) ||
	    !json_object_is_type(v, json_type_string))
		return 0;
	s = json_object_get_string(v);
	if (want != NULL)
		return strcmp(s, want) == 0;
	if (strlen(s) >= outsz)
		return 0;
	memcpy(out, s, strlen(s) + 1);
	return 1;
}

/* Integer claim; absent is fine when !required (*out untouched). */
static int
int_claim(struct json_object *c, const char *name, int required, int64_t *out)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(c, name, &v))
		return !required;
	if (!json_object_is_type(v, json_type_int))
		return 0;
	*out = json_object_get_int64(v);
	return *out > 0;
}

static int
hex_ok(const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == n;
}

static int
roles_claim(struct json_object *c, unsigned *bits)
{
	struct json_object	*a, *v;
	size_t			 i, n;
	unsigned		 b;

	if (!json_object_object_get_ex(c, "roles", &a) ||
	    !json_object_is_type(a, json_type_array) ||
	    (n = json_object_array_length(a)) > NF_ARRAY_LEN(role_names))
		return 0;
	*bits = 0;
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(a, i);
		if (!json_object_is_type(v, json_type_string) ||
		    (b = nf_auth_role_bit(json_object_get_string(v))) == 0)
			return 0;
		*bits |= b;
	}
	return 1;
}

/* Only these claims may appear (a Twilio token's "grants" cannot). */
static int
claims_known(struct json_object *c)
{
	static const char *const allowed[] = { "iss", "aud", "purpose", "sub", "tenant",
	    "roles", "iat", "exp", "nbf", "jti", "csrf", NULL };
	struct nf_error	 e;

	return nf_json_reject_unknown(c, allowed, &e) == NF_OK;
}

static const char *
claims_check(struct json_object *c, int64_t now, struct nf_auth_claims *out)
{
	int64_t	 nbf = 0;

	if (!claims_known(c))
		return "unknown_claim";
	if (!str_claim(c, "iss", NF_AUTH_ISS, NULL, 0))
		return "bad_issuer";
	if (!str_claim(c, "aud", NF_AUTH_AUD, NULL, 0))
		return "bad_audience";
	if (!str_claim(c, "purpose", NF_AUTH_PURPOSE, NULL, 0))
		return "bad_purpose";
	if (!str_claim(c, "sub", NULL, out->sub, sizeof(out->sub)) || !hex_ok(out->sub, 24) ||
	    !str_claim(c, "tenant", NULL, out->tenant, sizeof(out->tenant)) ||
	    !nf_valid_slug(out->tenant) ||
	    !str_claim(c, "jti", NULL, out->jti, sizeof(out->jti)) || !hex_ok(out->jti, 32) ||
	    !str_claim(c, "csrf", NULL, out->csrf, sizeof(out->csrf)) ||
	    !hex_ok(out->csrf, 32) || !roles_claim(c, &out->roles))
		return "bad_claims";
	if (!int_claim(c, "exp", 1, &out->exp) || !int_claim(c, "iat", 1, &out->iat) ||
	    !int_claim(c, "nbf", 0, &nbf) || out->exp <= out->iat)
		return "bad_times";
	if (out->exp < now - NF_AUTH_LEEWAY_S)
		return "expired";
	if (out->iat > now + NF_AUTH_LEEWAY_S || nbf > now + NF_AUTH_LEEWAY_S)
		return "not_yet_valid";
	return NULL;
}

int
nf_auth_verify(const char *secret, const char *token, int64_t now_s,
    struct nf_auth_claims *out, const char **reason)
{
	struct json_object	*h = NULL, *c = NULL;
	const char		*seg[3];
	size_t			 len[3];

	memset(out, 0, sizeof(*out));
	*reason = "malformed";
	if (secret == NULL || token == NULL || !split_token(token, seg, len))
		goto out;
	*reason = "bad_header";
	if ((len[0] != sizeof(HS256_HEADER_B64) - 1 ||
	    memcmp(seg[0], HS256_HEADER_B64, len[0]) != 0) &&
	    ((h = segment_json(seg[0], len[0])) == NULL || !header_ok(h)))
		goto out;
	*reason = "bad_signature";
	if (!signature_ok(secret, token, len[0] + 1 + len[1], seg[2], len[2]))
		goto out;
	*reason = "bad_claims";
	if ((c = segment_json(seg[1], len[1])) == NULL)
		goto out;
	*reason = claims_check(c, now_s, out);
out:
	json_object_put(h);
	json_object_put(c);
	if (*reason != NULL)
		memset(out, 0, sizeof(*out));
	return *reason == NULL;
}

/* ---- per request --------------------------------------------------------- */

static const char *
client_ip(struct nf_req *r)
{
	const char	*ip = nf_req_param(r, "REMOTE_ADDR");

	return ip != NULL && *ip != '\0' ? ip : "unknown";
}

void
nf_auth_audit_rejection(struct nf_req *r, const char *reason)
{
	struct nf_kv		*kv = nf_app_kv(r->app);
	struct json_object	*data;
	struct nf_error		 e;
	char			*key;
	int			 first = 0;

	nf_warn("token rejected from %s: %s", client_ip(r), reason);
	if (r->tenant == NULL || kv == NULL)
		return;
	/* One audit entry per IP and reason per minute: a flood of garbage
	 * tokens must not fill the audit collection. */
	key = nf_xasprintf("tokrej:%s:%s", client_ip(r), reason);
	if (nf_kv_dedupe(kv, r->tenant->id, key, 60000, &first, &e) == NF_OK && first) {
		data = json_object_new_object();
		nf_json_add_str(data, "reason", reason);
		nf_audit(r, "token_rejected", "anonymous", data);
	}
	free(key);
}

static enum nf_err
reject(struct nf_req *r, const char *reason, struct nf_error *e)
{
	nf_auth_audit_rejection(r, reason);
	nf_resp_header(r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
	return nf_error_set(e, NF_EAUTH, "invalid_token", NULL,
	    "the token is invalid, expired or revoked");
}

/* The value of cookie name in a Cookie header, copied into out. */
static int
cookie_value(const char *hdr, const char *name, char *out, size_t outsz)
{
	const char	*p = hdr, *end;
	size_t		 nlen = strlen(name), vlen;

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ';')
			p++;
		end = strchr(p, ';');
		if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			p += nlen + 1;
			vlen = end ? (size_t)(end - p) : strlen(p);
			if (vlen == 0 || vlen >= outsz)
				return 0;
			memcpy(out, p, vlen);
			out[vlen] = '\0';
			return 1;
		}
		p = end;
	}
	return 0;
}

/* Token from Authorization: Bearer, else the session cookie.  Returns
 * NULL when none was sent, "" when one was sent but is unusable. */
static const char *
find_token(struct nf_req *r, char *buf, size_t bufsz)
{
	const char	*a = nf_req_header(r, "Authorization");
	const char	*c = nf_req_header(r, "Cookie");

	r->principal.via_cookie = 0;
	if (a != NULL) {
		if (strncasecmp(a, "Bearer ", 7) != 0)
			return "";
		for (a += 7; *a == ' '; a++)
			;
		return a;
	}
	if (c != NULL && strstr(c, NF_AUTH_COOKIE "=") != NULL) {
		r->principal.via_cookie = 1;
		return cookie_value(c, NF_AUTH_COOKIE, buf, bufsz) ? buf : "";
	}
	return NULL;
}

static int
unsafe_method(enum nf_method m)
{
	return m == NF_POST || m == NF_PUT || m == NF_PATCH || m == NF_DELETE;
}

static enum nf_err
forbid(struct nf_req *r, const char *event, const char *code, const char *msg,
    struct nf_error *e)
{
	struct json_object	*data = json_object_new_object();

	nf_json_add_str(data, "method", r->method_name);
	nf_json_add_str(data, "route", r->route != NULL ? r->route->pattern : "-");
	nf_audit(r, event, r->principal.agent_id[0] ? r->principal.agent_id : NULL, data);
	return nf_error_set(e, NF_EFORBIDDEN, code, NULL, "%s", msg);
}

/* Fail closed: without Redis a revoked token cannot be told apart. */
static enum nf_err
check_revoked(struct nf_req *r, const struct nf_auth_claims *c, int *revoked,
    struct nf_error *e)
{
	struct nf_kv		*kv = nf_app_kv(r->app);
	struct redisReply	*rep = NULL;
	char			*key;
	enum nf_err		 rc;

	if (kv == NULL)
		return nf_error_set(e, NF_EUNAVAIL, "redis_unavailable", NULL,
		    "Redis is unavailable");
	if ((key = nf_kv_key(c->tenant, "revoked", c->jti)) == NULL)
		return nf_error_set(e, NF_ESYSTEM, NULL, NULL, "bad key");
	rc = nf_kv_command(kv, &rep, e, "EXISTS %s", key);
	free(key);
	if (rc == NF_OK)
		*revoked = rep != NULL && rep->type == REDIS_REPLY_INTEGER && rep->integer > 0;
	if (rep != NULL)
		freeReplyObject(rep);
	if (rc != NF_OK)
		return nf_error_set(e, NF_EUNAVAIL, "redis_unavailable", NULL,
		    "Redis is unavailable");
	return NF_OK;
}

/* Load the agent: NF_ENOTFOUND for unknown or disabled ones, or when the
 * token predates its last password change (*why says which). */
static enum nf_err
load_agent(struct nf_req *r, const struct nf_auth_claims *c, int cache, const char **why,
    struct nf_error *e)
{
	struct nf_store		*st;
	struct json_object	*f, *doc = NULL;
	const char		*user = "";
	int			 disabled = 0;
	enum nf_err		 rc;

	if (cache)
		doc = nf_authcache_agent_get(c->tenant, c->sub);
	if (doc == NULL) {
		if ((rc = nf_app_store(r->app, &st, e)) != NF_OK)
			return rc;
		f = nf_json_pair("_id", c->sub);
		rc = nf_store_find_one(st, c->tenant, "agents", f, NULL, &doc, e);
		json_object_put(f);
		if (rc != NF_OK)
			return rc;
		if (cache)
			nf_authcache_agent_put(c->tenant, c->sub, doc);
	}
	(void)nf_json_get_bool(doc, "disabled", 0, &disabled, e);
	(void)nf_json_get_string(doc, "username", 0, 64, 0, &user, e);
	*why = "agent_unknown_or_disabled";
	if (disabled) {
		rc = NF_ENOTFOUND;
		goto out;
	}
	if (!nf_auth_iat_current(c->iat, nf_auth_pw_changed_ms(doc))) {
		*why = "password_changed";
		rc = NF_ENOTFOUND;
		goto out;
	}
	snprintf(r->principal.agent_id, sizeof(r->principal.agent_id), "%s", c->sub);
	snprintf(r->principal.username, sizeof(r->principal.username), "%s", user);
	r->principal.roles = nf_auth_doc_roles(doc);
	/* Handlers (e.g. /me) read the agent from here instead of again. */
	json_object_put(r->principal.agent);
	r->principal.agent = doc;
	doc = NULL;
out:
	json_object_put(doc);
	nf_error_clear(e);
	return rc;
}

/*
 * cache: the worker's invalidation feed is up (authcache.h), so the agent
 * may come from the cache; cached: the token itself came from the cache,
 * so it was verified and found not revoked since the feed has been up.
 */
static enum nf_err
check_session(struct nf_req *r, const struct nf_auth_claims *c, int cache, int cached,
    const char *tok, struct nf_error *e)
{
	const char	*csrf, *why = "agent_unknown_or_disabled";
	enum nf_err	 rc;
	int		 revoked = 0;

	if (r->tenant == NULL || strcmp(c->tenant, r->tenant->id) != 0) {
		snprintf(r->principal.agent_id, sizeof(r->principal.agent_id), "%s", c->sub);
		return forbid(r, "tenant_mismatch", "tenant_mismatch",
		    "the token belongs to another tenant", e);
	}
	if (r->principal.via_cookie && unsafe_method(r->method)) {
		csrf = nf_req_header(r, NF_AUTH_CSRF_HEADER);
		if (csrf == NULL || !nf_ct_equal(csrf, strlen(csrf), c->csrf, strlen(c->csrf)))
			return forbid(r, "csrf_failed", "csrf_failed",
			    "missing or wrong " NF_AUTH_CSRF_HEADER " header", e);
	}
	if (!cached) {
		if ((rc = check_revoked(r, c, &revoked, e)) != NF_OK)
			return rc;
		if (revoked)
			return reject(r, "revoked", e);
	}
	rc = load_agent(r, c, cache, &why, e);
	if (rc == NF_ENOTFOUND)
		return reject(r, why, e);
	if (rc == NF_OK && cache && !cached)
		nf_authcache_token_put(tok, c);
	return rc;
}

static void
principal_clear(struct nf_req *r)
{
	json_object_put(r->principal.agent);
	memset(&r->principal, 0, sizeof(r->principal));
}

enum nf_err
nf_auth_request(struct nf_req *r, struct nf_error *e)
{
	struct nf_auth_claims	 c;
	const char		*tok, *reason;
	char			 buf[NF_AUTH_TOKEN_MAX + 2];
	int64_t			 now;
	int			 cache, cached = 0;
	enum nf_err		 rc;

	principal_clear(r);
	if ((tok = find_token(r, buf, sizeof(buf))) == NULL) {
		nf_resp_header(r, "WWW-Authenticate", "Bearer");
		return nf_error_set(e, NF_EAUTH, "unauthorized", NULL, "authentication required");
	}
	if (!r->app->cfg.jwt_usable)
		return nf_error_set(e, NF_EUNAVAIL, "auth_unavailable", NULL,
		    "sign-in is not configured");
	/* Drain invalidations first: anything revoked or changed before this
	 * point is then out of the caches. */
	cache = nf_authcache_sync(r->app);
	now = nf_now_ms() / 1000;
	if (cache && nf_authcache_token_get(tok, &c)) {
		cached = 1;
		if (c.exp < now - NF_AUTH_LEEWAY_S)
			return reject(r, "expired", e);
	} else if (!nf_auth_verify(r->app->cfg.jwt_secret, tok, now, &c, &reason))
		return reject(r, reason, e);
	if ((rc = check_session(r, &c, cache, cached, tok, e)) != NF_OK) {
		principal_clear(r);
		return rc;
	}
	snprintf(r->principal.jti, sizeof(r->principal.jti), "%s", c.jti);
	r->principal.exp = c.exp;
	r->principal.iat = c.iat;
	r->principal.authenticated = 1;
	return NF_OK;
}

enum nf_err
nf_auth_revoke(struct nf_req *r, const char *jti, int64_t exp, struct nf_error *e)
{
	struct nf_kv	*kv = nf_app_kv(r->app);
	char		*key, ttl[24];
	int64_t		 ms = exp * 1000 - nf_now_ms() + NF_AUTH_LEEWAY_S * 1000;
	enum nf_err	 rc;

	if (kv == NULL)
		return nf_error_set(e, NF_EUNAVAIL, "redis_unavailable", NULL,
		    "Redis is unavailable");
	if ((key = nf_kv_key(r->tenant->id, "revoked", jti)) == NULL)
		return nf_error_set(e, NF_ESYSTEM, NULL, NULL, "bad key");
	snprintf(ttl, sizeof(ttl), "%lld", (long long)(ms > 1000 ? ms : 1000));
	rc = nf_kv_command(kv, NULL, e, "SET %s 1 PX %s", key, ttl);
	free(key);
	/* Workers that cached the token drop it now; if they cannot be told,
	 * the logout fails and the client repeats it. */
	if (rc == NF_OK)
		rc = nf_authcache_publish_revoke(kv, r->tenant->id, jti, e);
	return rc;
}
