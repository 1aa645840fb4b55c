/*
 * t_twtoken.c - unit tests for twilio_token.c: a minted Twilio Access Token
 * has exactly Twilio's header (alg HS256, typ JWT, cty twilio-fpa;v=1) and
 * claims (jti "<SK>-<iat>", iss, sub, iat, exp = iat + ttl, no nbf, grants
 * {identity, one grant} with the grant's shape kept), verifies with the
 * tenant's API secret through libjwt and through a plain HMAC-SHA256 and
 * not with another secret; a tenant lacking a credential gets 400
 * twilio_not_configured naming the setting; misuse by a caller (unknown
 * grant, bad ttl, empty identity) issues nothing.  Tenants are built from
 * tenants-file text, as the worker builds them.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "json.h"
#include "nonflex.h"
#include "tenant.h"
#include "testutil.h"
#include "twilio_token.h"

#define AC	"AC0123456789abcdef0123456789abcdef"
#define SK	"SK0123456789abcdef0123456789abcdef"
#define SECRET	"unit-test-api-secret-0f1e2d3c4b5a"
#define IS	"IS0123456789abcdef0123456789abcdef"
#define NOW	1764000000LL

static const char *const env_names[] = { "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
	"TWILIO_API_KEY", "TWILIO_API_SECRET" };

/* One tenant "t" whose twilio object is {twilio}. */
static struct nf_tenants *
tenants(const char *twilio)
{
	struct nf_tenants	*t = NULL;
	struct nf_error		 e;
	char			*text;

	text = nf_xasprintf("{\"t\":{\"id\":\"t\",\"name\":\"T\",\"twilio\":{%s}}}", twilio);
	nf_error_clear(&e);
	ck_assert_msg(nf_tenants_parse(text, strlen(text), &t, &e) == NF_OK, "%s", e.message);
	free(text);
	return t;
}

static struct nf_tenants *
full_tenant(void)
{
	return tenants("\"accountSid\":\"" AC "\",\"apiKey\":\"" SK "\","
	    "\"apiSecret\":\"" SECRET "\"");
}

/* Decode one base64url segment s[0..len) into a new NUL-terminated string. */
static char *
b64url_decode(const char *s, size_t len)
{
	char	*in = nf_xmalloc(len + 4), *out = nf_xmalloc(len + 4);
	size_t	 i, n = len;
	int	 got;

	for (i = 0; i < len; i++)
		in[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	while (n % 4 != 0)
		in[n++] = '=';
	got = EVP_DecodeBlock((unsigned char *)out, (unsigned char *)in, (int)n);
	ck_assert_int_ge(got, 0);
	got -= (int)(n - len);          /* EVP_DecodeBlock counts the padding */
	out[got] = '\0';
	free(in);
	return out;
}

/* The JSON of segment i (0 header, 1 claims) of token. */
static struct json_object *
segment(const char *token, int i)
{
	struct json_object	*o = NULL;
	struct nf_error		 e;
	const char		*p = token, *end;
	char			*raw;

	for (; i > 0; i--)
		p = strchr(p, '.') + 1;
	end = strchr(p, '.');
	raw = b64url_decode(p, (size_t)(end - p));
	ck_assert_msg(nf_json_parse(raw, strlen(raw), &o, &e) == NF_OK, "%s: %s", raw, e.message);
	free(raw);
	return o;
}

static const char *
str(struct json_object *o, const char *k)
{
	struct json_object	*v;

	ck_assert_msg(json_object_object_get_ex(o, k, &v), "no %s", k);
	return json_object_get_string(v);
}

/* Mint from the full tenant; the caller frees. */
static char *
mint(const char *grant_key, const char *grant_json, const char *identity, int64_t ttl)
{
	struct nf_tenants	*t = full_tenant();
	struct json_object	*g = json_tokener_parse(grant_json);
	struct nf_error		 e;
	char			*tok = NULL;

	nf_error_clear(&e);
	ck_assert_msg(nf_twtoken_mint(&t->v[0], identity, grant_key, g, NOW, ttl, &tok, &e) ==
	    NF_OK, "%s", e.message);
	ck_assert_ptr_nonnull(tok);
	json_object_put(g);
	nf_tenants_free(t);
	return tok;
}

START_TEST(header_is_twilios)
{
	char			*tok = mint("chat", "{\"service_sid\":\"" IS "\"}", "sarah", 3600);
	struct json_object	*h = segment(tok, 0);

	ck_assert_int_eq(json_object_object_length(h), 3);
	ck_assert_str_eq(str(h, "alg"), "HS256");
	ck_assert_str_eq(str(h, "typ"), "JWT");
	ck_assert_str_eq(str(h, "cty"), "twilio-fpa;v=1");
	json_object_put(h);
	free(tok);
}
END_TEST

START_TEST(claims_are_twilios)
{
	char			*tok = mint("chat", "{\"service_sid\":\"" IS "\"}", "sarah", 900);
	struct json_object	*c = segment(tok, 1), *want, *v;

	ck_assert_int_eq(json_object_object_length(c), 6);   /* nothing else, no nbf */
	ck_assert_str_eq(str(c, "jti"), SK "-1764000000");
	ck_assert_str_eq(str(c, "iss"), SK);
	ck_assert_str_eq(str(c, "sub"), AC);
	ck_assert(json_object_object_get_ex(c, "iat", &v) && json_object_is_type(v, json_type_int));
	ck_assert_int_eq(json_object_get_int64(v), NOW);
	ck_assert(json_object_object_get_ex(c, "exp", &v) && json_object_is_type(v, json_type_int));
	ck_assert_int_eq(json_object_get_int64(v), NOW + 900);
	ck_assert(!json_object_object_get_ex(c, "nbf", NULL));
	want = json_tokener_parse("{\"identity\":\"sarah\",\"chat\":{\"service_sid\":\"" IS "\"}}");
	ck_assert(json_object_object_get_ex(c, "grants", &v));
	ck_assert_msg(json_object_equal(v, want), "grants %s", nf_json_str(v, NULL));
	json_object_put(want);
	json_object_put(c);
	free(tok);
}
END_TEST

/* Each grant comes back exactly as given, nested objects included. */
START_TEST(grant_shapes)
{
	static const struct { const char *key, *json; } g[] = {
		{ "chat", "{\"service_sid\":\"" IS "\"}" },
		{ "voice", "{\"incoming\":{\"allow\":true},\"outgoing\":{\"application_sid\":"
		    "\"AP0123456789abcdef0123456789abcdef\"}}" },
		{ "video", "{\"room\":\"support \\\"room\\\" \\u00e9 \\\\ 1\"}" },
		{ "task_router", "{\"workspace_sid\":\"WS0123456789abcdef0123456789abcdef\","
		    "\"worker_sid\":\"WK0123456789abcdef0123456789abcdef\",\"role\":\"worker\"}" },
	};
	struct json_object	*c, *grants, *v, *want;
	char			*tok;
	size_t			 i;

	for (i = 0; i < NF_ARRAY_LEN(g); i++) {
		tok = mint(g[i].key, g[i].json, "agent \"x\" \xc3\xa9", 60);
		c = segment(tok, 1);
		ck_assert(json_object_object_get_ex(c, "grants", &grants));
		ck_assert_int_eq(json_object_object_length(grants), 2);
		ck_assert_str_eq(str(grants, "identity"), "agent \"x\" \xc3\xa9");
		want = json_tokener_parse(g[i].json);
		ck_assert(json_object_object_get_ex(grants, g[i].key, &v));
		ck_assert_msg(json_object_equal(v, want), "%s: %s", g[i].key, nf_json_str(v, NULL));
		json_object_put(want);
		json_object_put(c);
		free(tok);
	}
}
END_TEST

/* libjwt verifies with the API secret and refuses any other key. */
START_TEST(verifies_with_the_secret_only)
{
	char	*tok = mint("video", "{\"room\":\"r1\"}", "sarah", 3600);
	jwt_t	*jwt = NULL;

	ck_assert_int_eq(jwt_decode(&jwt, tok, (const unsigned char *)SECRET,
	    (int)strlen(SECRET)), 0);
	ck_assert_int_eq(jwt_get_alg(jwt), JWT_ALG_HS256);
	ck_assert_str_eq(jwt_get_grant(jwt, "iss"), SK);
	ck_assert_str_eq(jwt_get_header(jwt, "cty"), "twilio-fpa;v=1");
	jwt_free(jwt);
	jwt = NULL;
	ck_assert_int_ne(jwt_decode(&jwt, tok, (const unsigned char *)"another-secret-0000",
	    19), 0);
	jwt_free(jwt);
	free(tok);
}
END_TEST

/* The signature is HMAC-SHA256(secret, header.claims), base64url. */
START_TEST(signature_is_hmac_sha256)
{
	unsigned char	 mac[EVP_MAX_MD_SIZE];
	unsigned int	 maclen = 0;
	char		*tok = mint("chat", "{\"service_sid\":\"" IS "\"}", "sam", 3600);
	char		*dot = strrchr(tok, '.'), *sig;

	HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)tok,
	    (size_t)(dot - tok), mac, &maclen);
	sig = b64url_decode(dot + 1, strlen(dot + 1));
	ck_assert_uint_eq(maclen, 32);
	ck_assert(memcmp(sig, mac, 32) == 0);
	free(sig);
	free(tok);
}
END_TEST

/* Each missing credential is named as in the tenants file; no token. */
START_TEST(missing_settings)
{
	static const struct { const char *twilio, *field; } c[] = {
		{ "\"accountSid\":\"" AC "\",\"apiSecret\":\"" SECRET "\"", "twilio.apiKey" },
		{ "\"accountSid\":\"" AC "\",\"apiKey\":\"" SK "\"", "twilio.apiSecret" },
		{ "\"apiKey\":\"" SK "\",\"apiSecret\":\"" SECRET "\"", "twilio.accountSid" },
		{ "", "twilio.apiKey" },
	};
	static char		 unset[] = "unset";
	struct json_object	*g = json_tokener_parse("{\"room\":\"r\"}");
	struct nf_tenants	*t;
	struct nf_error		 e;
	char			*tok;
	size_t			 i;

	for (i = 0; i < NF_ARRAY_LEN(c); i++) {
		t = tenants(c[i].twilio);
		tok = unset;        /* must come back NULL */
		nf_error_clear(&e);
		ck_assert_int_eq(nf_twtoken_mint(&t->v[0], "sarah", "video", g, NOW, 3600,
		    &tok, &e), NF_EINVAL);
		ck_assert_ptr_null(tok);
		ck_assert_str_eq(e.code, "twilio_not_configured");
		ck_assert_str_eq(e.field, c[i].field);
		ck_assert_msg(strstr(e.message, c[i].field) != NULL, "%s", e.message);
		ck_assert_msg(strstr(e.message, SECRET) == NULL, "%s", e.message);
		nf_tenants_free(t);
	}
	json_object_put(g);
}
END_TEST

/* Bad arguments from a caller issue nothing (and never crash). */
START_TEST(bad_arguments)
{
	struct nf_tenants	*t = full_tenant();
	struct json_object	*g = json_tokener_parse("{\"room\":\"r\"}");
	struct json_object	*arr = json_tokener_parse("[1]");
	struct nf_error		 e;
	char			*tok = NULL;

	ck_assert_int_eq(nf_twtoken_mint(&t->v[0], "s", "admin", g, NOW, 60, &tok, &e),
	    NF_ESYSTEM);
	ck_assert_int_eq(nf_twtoken_mint(&t->v[0], "s", "video", g, NOW, 0, &tok, &e),
	    NF_ESYSTEM);
	ck_assert_int_eq(nf_twtoken_mint(&t->v[0], "s", "video", g, NOW, 86401, &tok, &e),
	    NF_ESYSTEM);
	ck_assert_int_eq(nf_twtoken_mint(&t->v[0], "", "video", g, NOW, 60, &tok, &e),
	    NF_ESYSTEM);
	ck_assert_int_eq(nf_twtoken_mint(&t->v[0], NULL, "video", g, NOW, 60, &tok, &e),
	    NF_ESYSTEM);
	ck_assert_int_eq(nf_twtoken_mint(&t->v[0], "s", "video", arr, NOW, 60, &tok, &e),
	    NF_ESYSTEM);
	ck_assert_ptr_null(tok);
	/* Twilio's 24 h cap itself is fine. */
	ck_assert_int_eq(nf_twtoken_mint(&t->v[0], "s", "video", g, NOW, 86400, &tok, &e),
	    NF_OK);
	free(tok);
	json_object_put(arr);
	json_object_put(g);
	nf_tenants_free(t);
}
END_TEST

/* The grant stays the caller's: minting twice from one object works. */
START_TEST(grant_is_borrowed)
{
	struct nf_tenants	*t = full_tenant();
	struct json_object	*g = json_tokener_parse("{\"room\":\"r\"}");
	struct nf_error		 e;
	char			*a = NULL, *b = NULL;

	ck_assert_int_eq(nf_twtoken_mint(&t->v[0], "s", "video", g, NOW, 60, &a, &e), NF_OK);
	ck_assert_int_eq(nf_twtoken_mint(&t->v[0], "s", "video", g, NOW + 1, 60, &b, &e),
	    NF_OK);
	ck_assert_str_ne(a, b);
	ck_assert_str_eq(str(g, "room"), "r");
	free(a);
	free(b);
	json_object_put(g);
	nf_tenants_free(t);
}
END_TEST

int
main(void)
{
	TCase	*tc;
	Suite	*s = tu_suite("twtoken", &tc);
	size_t	 i;

	for (i = 0; i < NF_ARRAY_LEN(env_names); i++)
		unsetenv(env_names[i]);
	tcase_add_test(tc, header_is_twilios);
	tcase_add_test(tc, claims_are_twilios);
	tcase_add_test(tc, grant_shapes);
	tcase_add_test(tc, verifies_with_the_secret_only);
	tcase_add_test(tc, signature_is_hmac_sha256);
	tcase_add_test(tc, missing_settings);
	tcase_add_test(tc, bad_arguments);
	tcase_add_test(tc, grant_is_borrowed);
	return tu_run(s);
}
