/*
 * twilio_token.c - Twilio Access Tokens signed with libjwt (see
 * twilio_token.h).
 *
 * DESIGN: the claims are built as one json-c object and handed to libjwt
 * in one piece (as auth.c does for login tokens), so nested grants keep
 * their shape; libjwt adds "alg" and "typ" to the header and we add the
 * "cty" Twilio requires.  No "nbf": twilio's own helpers set it only when
 * asked and Twilio does not need it.  The secret goes only to libjwt,
 * which scrubs its copy in jwt_free; nothing here logs a claim or a key.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <jwt.h>

#include "json.h"
#include "log.h"
#include "nonflex.h"
#include "tenant.h"
#include "twilio_token.h"
#include "valid.h"

#define TWILIO_CTY	"twilio-fpa;v=1"
#define TTL_MAX_S	(24 * 3600)     /* Twilio refuses longer tokens */

static const char *const grant_keys[] = { "chat", "voice", "video", "task_router",
	NULL };

/* The credentials a token needs, each named as in the tenants file. */
static enum nf_err
credentials(const struct nf_tenant *t, struct nf_error *e)
{
	const char	*field = NULL;

	if (t->twilio.api_key == NULL)
		field = "twilio.apiKey";
	else if (t->twilio.api_secret == NULL)
		field = "twilio.apiSecret";
	else if (t->twilio.account_sid == NULL)
		field = "twilio.accountSid";
	if (field == NULL)
		return NF_OK;
	return nf_error_set(e, NF_EINVAL, "twilio_not_configured", field,
	    "the tenant has no %s: Twilio tokens cannot be issued", field);
}

/* {jti, iss, sub, iat, exp, grants{identity, <grant_key>: grant}}. */
static struct json_object *
claims_json(const struct nf_tenant *t, const char *identity, const char *grant_key,
    struct json_object *grant, int64_t now_s, int64_t ttl_s)
{
	struct json_object	*o = json_object_new_object();
	struct json_object	*g = json_object_new_object();
	char			*jti;

	jti = nf_xasprintf("%s-%lld", t->twilio.api_key, (long long)now_s);
	nf_json_add_str(o, "jti", jti);
	nf_json_add_str(o, "iss", t->twilio.api_key);
	nf_json_add_str(o, "sub", t->twilio.account_sid);
	nf_json_add_int(o, "iat", now_s);
	nf_json_add_int(o, "exp", now_s + ttl_s);
	nf_json_add_str(g, "identity", identity);
	nf_json_add(g, grant_key, json_object_get(grant));   /* grant is borrowed */
	nf_json_add(o, "grants", g);
	free(jti);
	return o;
}

enum nf_err
nf_twtoken_mint(const struct nf_tenant *t, const char *identity, const char *grant_key,
    struct json_object *grant, int64_t now_s, int64_t ttl_s, char **out,
    struct nf_error *e)
{
	struct json_object	*claims = NULL;
	const char		*secret;
	jwt_t			*jwt = NULL;
	char			*s = NULL;
	enum nf_err		 rc;

	*out = NULL;
	if ((rc = credentials(t, e)) != NF_OK)
		return rc;
	/* The handlers validate all of these; a failure here is a bug. */
	if (identity == NULL || *identity == '\0' || nf_valid_enum(grant_key, grant_keys) < 0 ||
	    !json_object_is_type(grant, json_type_object) || ttl_s <= 0 || ttl_s > TTL_MAX_S)
		return nf_error_set(e, NF_ESYSTEM, NULL, NULL, "cannot issue a Twilio token");
	secret = t->twilio.api_secret;
	claims = claims_json(t, identity, grant_key, grant, now_s, ttl_s);
	if (jwt_new(&jwt) != 0 ||
	    jwt_add_grants_json(jwt, nf_json_str(claims, NULL)) != 0 ||
	    jwt_add_header(jwt, "cty", TWILIO_CTY) != 0 ||
	    jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret,
	    (int)strlen(secret)) != 0 ||
	    (s = jwt_encode_str(jwt)) == NULL) {
		nf_error("libjwt could not sign a Twilio access token");
		rc = nf_error_set(e, NF_ESYSTEM, NULL, NULL, "cannot issue a Twilio token");
		goto out;
	}
	*out = nf_xstrdup(s);
out:
	free(s);
	jwt_free(jwt);
	json_object_put(claims);
	return rc;
}
