/*
 * t_auth.c - unit tests for auth.c: tokens made by nf_auth_issue verify;
 * a table of forged, malformed, mistyped and out-of-time tokens (RFC 8725,
 * RELIABILITY battery 33-37) is rejected; clock skew within 60 s passes;
 * the JWT_SECRET policy; and the router's front line on the real route
 * table (401 with WWW-Authenticate, 403 tenant_mismatch, 403 csrf_failed,
 * 503 when Redis cannot confirm a token is not revoked); the times that
 * make a password change end older tokens.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "app.h"
#include "auth.h"
#include "config.h"
#include "fakereq.h"
#include "nonflex.h"
#include "req.h"
#include "router.h"
#include "testutil.h"

#define KEY  "k3J9x-unit-test-key-0123456789abcdefXYZ"
#define KEY2 "another-environment-key-9876543210zyxwv"
#define SUB  "0123456789abcdef01234567"
#define JTI  "0123456789abcdef0123456789abcdef"

static struct nf_app	 app;

static char *
b64url(const char *p, size_t len)
{
	char	*out = nf_xmalloc(len * 4 / 3 + 8), *s;
	int	 n = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)p, (int)len);

	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (s = out; *s; s++)
		*s = *s == '+' ? '-' : *s == '/' ? '_' : *s;
	return out;
}

/* header.payload signed with key (HMAC-SHA256), or with sig as given. */
static char *
mk(const char *hdr, const char *payload, const char *key, const char *sig)
{
	unsigned char	 mac[EVP_MAX_MD_SIZE];
	unsigned int	 maclen = 0;
	char		*h = b64url(hdr, strlen(hdr)), *p = b64url(payload, strlen(payload));
	char		*hp = nf_xasprintf("%s.%s", h, p), *s, *out;

	if (sig == NULL) {
		HMAC(EVP_sha256(), key, (int)strlen(key), (unsigned char *)hp, strlen(hp),
		    mac, &maclen);
		s = b64url((char *)mac, maclen);
	} else
		s = nf_xstrdup(sig);
	out = nf_xasprintf("%s.%s", hp, s);
	free(h), free(p), free(hp), free(s);
	return out;
}

static const char *HS = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static char *
claims(long long iat, long long exp, const char *extra)
{
	return nf_xasprintf("{\"iss\":\"nonflex\",\"aud\":\"nonflex-api\",\"purpose\":\"access\","
	    "\"sub\":\"" SUB "\",\"tenant\":\"tenant1\",\"roles\":[\"agent\"],"
	    "\"iat\":%lld,\"exp\":%lld,\"jti\":\"" JTI "\",\"csrf\":\"" JTI "\"%s}",
	    iat, exp, extra);
}

static int
verifies(const char *tok, int64_t now)
{
	struct nf_auth_claims	 c;
	const char		*why;

	return nf_auth_verify(KEY, tok, now, &c, &why);
}

START_TEST(issue_and_verify)
{
	struct nf_auth_claims	 c, v;
	const char		*why = NULL;
	char			*tok;
	int64_t			 now = nf_now_ms() / 1000;

	ck_assert_int_eq(nf_auth_issue(KEY, "tenant2", SUB, NF_ROLE_AGENT | NF_ROLE_ADMIN,
	    3600, now, &tok, &c, NULL), NF_OK);
	ck_assert_int_eq(nf_auth_verify(KEY, tok, now, &v, &why), 1);
	ck_assert_ptr_null(why);
	ck_assert_str_eq(v.sub, SUB);
	ck_assert_str_eq(v.tenant, "tenant2");
	ck_assert_str_eq(v.jti, c.jti);
	ck_assert_str_eq(v.csrf, c.csrf);
	ck_assert_uint_eq(v.roles, NF_ROLE_AGENT | NF_ROLE_ADMIN);
	ck_assert_int_eq(v.exp, now + 3600);
	/* Other key, later than exp + leeway. */
	ck_assert_int_eq(nf_auth_verify(KEY2, tok, now, &v, &why), 0);
	ck_assert_str_eq(why, "bad_signature");
	ck_assert_int_eq(nf_auth_verify(KEY, tok, now + 3600 + 61, &v, &why), 0);
	ck_assert_str_eq(why, "expired");
	free(tok);
}
END_TEST

START_TEST(skew_accepted)
{
	int64_t	 now = 1800000000;
	char	*p, *t;

	/* Issued 50 s "in the future" (issuer clock ahead). */
	p = claims(now + 50, now + 3600, "");
	t = mk(HS, p, KEY, NULL);
	ck_assert_int_eq(verifies(t, now), 1);
	free(p), free(t);
	/* Expired 50 s ago: still within the leeway. */
	p = claims(now - 3600, now - 50, "");
	t = mk(HS, p, KEY, NULL);
	ck_assert_int_eq(verifies(t, now), 1);
	free(p), free(t);
	p = claims(now - 10, now + 10, ",\"nbf\":1800000040");
	t = mk(HS, p, KEY, NULL);
	ck_assert_int_eq(verifies(t, now), 1);
	free(p), free(t);
	/* Header keys in the other order are the same header. */
	p = claims(now, now + 60, "");
	t = mk("{\"typ\":\"JWT\",\"alg\":\"HS256\"}", p, KEY, NULL);
	ck_assert_int_eq(verifies(t, now), 1);
	free(p), free(t);
}
END_TEST

START_TEST(rejected_table)
{
	const int64_t	 now = 1800000000;
	char		*good = claims(now, now + 3600, ""), *tmp, *big, *deep, *t;
	char		*list[64];
	size_t		 n = 0, i;
	const char	*twilio = "{\"jti\":\"SKxx-1\",\"iss\":\"SK0123456789abcdef0123456789abcdef\","
	    "\"sub\":\"AC0123\",\"exp\":1800003600,\"grants\":{\"identity\":\"sarah\"}}";

	/* alg none, with and without a signature. */
	list[n++] = mk("{\"alg\":\"none\",\"typ\":\"JWT\"}", good, KEY, "");
	list[n++] = mk("{\"alg\":\"none\",\"typ\":\"JWT\"}", good, KEY, NULL);
	list[n++] = mk("{\"alg\":\"none\"}", good, KEY, "x");
	/* Other algorithms, even when the HMAC is right. */
	list[n++] = mk("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", good, KEY, NULL);
	list[n++] = mk("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", good, KEY, NULL);
	list[n++] = mk("{\"alg\":\"hs256\",\"typ\":\"JWT\"}", good, KEY, NULL);
	/* Extra header parameters an attacker controls. */
	list[n++] = mk("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"../../etc/passwd\"}", good,
	    KEY, NULL);
	list[n++] = mk("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"jku\":\"http://x/\"}", good, KEY, NULL);
	list[n++] = mk("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"cty\":\"twilio-fpa;v=1\"}", good,
	    KEY, NULL);
	list[n++] = mk("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"alg\":\"HS256\"}", good, KEY, NULL);
	/* Twilio Access Token shape, signed with our key. */
	list[n++] = mk("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"cty\":\"twilio-fpa;v=1\"}", twilio,
	    KEY, NULL);
	list[n++] = mk(HS, twilio, KEY, NULL);
	/* Another key; payload edited after signing. */
	list[n++] = mk(HS, good, KEY2, NULL);
	t = mk(HS, good, KEY, NULL);
	tmp = claims(now, now + 3600, ",\"x\":1");
	{
		char	*forged = mk(HS, tmp, KEY, NULL), *d1 = strchr(t, '.'),
			*d2 = strrchr(t, '.'), *f1 = strchr(forged, '.'), *f2 = strrchr(forged, '.');

		list[n++] = nf_xasprintf("%.*s%.*s%s", (int)(d1 - t), t, (int)(f2 - f1), f1, d2);
		(void)d2;
		free(forged);
	}
	free(tmp);
	{	/* tenant changed in the payload, old signature kept */
		char	*p2 = nf_xstrdup(good), *f, *forged, *d2 = strrchr(t, '.');

		f = strstr(p2, "tenant1");
		f[6] = '2';
		forged = mk(HS, p2, KEY, "");
		list[n++] = nf_xasprintf("%.*s%s", (int)(strrchr(forged, '.') - forged), forged, d2);
		free(p2), free(forged);
	}
	/* Times. */
	tmp = claims(now - 7200, now - 61, ""), list[n++] = mk(HS, tmp, KEY, NULL), free(tmp);
	tmp = nf_xasprintf("{\"iss\":\"nonflex\",\"aud\":\"nonflex-api\",\"purpose\":\"access\","
	    "\"sub\":\"" SUB "\",\"tenant\":\"tenant1\",\"roles\":[\"agent\"],\"iat\":%lld,"
	    "\"jti\":\"" JTI "\",\"csrf\":\"" JTI "\"}", (long long)now);
	list[n++] = mk(HS, tmp, KEY, NULL), free(tmp);
	tmp = claims(now, now + 3600, ",\"nbf\":1800000061");
	list[n++] = mk(HS, tmp, KEY, NULL), free(tmp);
	tmp = claims(now + 3600, now + 7200, ""), list[n++] = mk(HS, tmp, KEY, NULL), free(tmp);
	tmp = claims(now, now + 3600, ",\"exp\":1"), list[n++] = mk(HS, tmp, KEY, NULL), free(tmp);
	/* Issuer, audience, purpose, roles, sub. */
	tmp = nf_xstrdup(good);
	memcpy(strstr(tmp, "nonflex\""), "nonflez", 7);
	list[n++] = mk(HS, tmp, KEY, NULL), free(tmp);
	tmp = nf_xstrdup(good);
	memcpy(strstr(tmp, "nonflex-api"), "nonflex-apX", 11);
	list[n++] = mk(HS, tmp, KEY, NULL), free(tmp);
	tmp = nf_xstrdup(good);
	memcpy(strstr(tmp, "\"aud\""), "\"auX\"", 5);
	list[n++] = mk(HS, tmp, KEY, NULL), free(tmp);
	tmp = nf_xstrdup(good);
	memcpy(strstr(tmp, "access"), "refres", 6);
	list[n++] = mk(HS, tmp, KEY, NULL), free(tmp);
	tmp = nf_xstrdup(good);
	memcpy(strstr(tmp, "\"agent\""), "\"gnome\"", 7);
	list[n++] = mk(HS, tmp, KEY, NULL), free(tmp);
	tmp = nf_xstrdup(good);
	memcpy(strstr(tmp, SUB), "g", 1);
	list[n++] = mk(HS, tmp, KEY, NULL), free(tmp);
	/* Duplicate claim, invalid UTF-8, deep nesting. */
	tmp = claims(now, now + 3600, ",\"tenant\":\"tenant2\"");
	list[n++] = mk(HS, tmp, KEY, NULL), free(tmp);
	tmp = claims(now, now + 3600, ",\"x\":\"\xff\xfe\"");
	list[n++] = mk(HS, tmp, KEY, NULL), free(tmp);
	deep = nf_xmalloc(2 * 5000 + 1);
	memset(deep, '[', 5000), memset(deep + 5000, ']', 5000), deep[10000] = '\0';
	tmp = claims(now, now + 3600, "");
	tmp[strlen(tmp) - 1] = '\0';
	{
		char	*p = nf_xasprintf("%s,\"x\":%.*s}", tmp, 200, deep);
		char	*q = nf_xasprintf("%.*s%s", 100, deep, "");

		list[n++] = mk(HS, p, KEY, NULL);
		(void)q, free(q), free(p);
	}
	free(tmp), free(deep);
	/* Shapes: 2 and 4 segments, bad characters, padding, empty, huge. */
	list[n++] = nf_xasprintf("%.*s", (int)(strrchr(t, '.') - t), t);
	list[n++] = nf_xasprintf("%s.%s", t, "abc");
	list[n++] = nf_xasprintf("%s+", t);
	list[n++] = nf_xasprintf("%s=", t);
	list[n++] = nf_xasprintf("%s%%", t);
	list[n++] = nf_xstrdup("");
	list[n++] = nf_xstrdup("..");
	list[n++] = nf_xstrdup("a.b.c");
	big = nf_xmalloc(100 * 1024 + 1);
	memset(big, 'A', 100 * 1024), big[100 * 1024] = '\0';
	big[10] = '.', big[50000] = '.';
	list[n++] = big;
	/* Non-canonical base64url (leftover bits) of the signature. */
	{
		size_t	 len = strlen(t);
		char	*c = nf_xstrdup(t), last = c[len - 1];

		c[len - 1] = last == 'A' ? 'B' : last == 'E' ? 'F' : (char)(last + 1);
		list[n++] = c;
	}
	ck_assert_uint_lt(n, NF_ARRAY_LEN(list));
	/* The untouched token itself verifies (so the table tests something). */
	ck_assert_int_eq(verifies(t, now), 1);
	for (i = 0; i < n; i++) {
		ck_assert_msg(verifies(list[i], now) == 0, "token %zu was accepted", i);
		free(list[i]);
	}
	free(t);
	free(good);
}
END_TEST

START_TEST(secret_policy)
{
	ck_assert_int_eq(nf_config_jwt_secret_ok(NULL), 0);
	ck_assert_int_eq(nf_config_jwt_secret_ok(""), 0);
	ck_assert_int_eq(nf_config_jwt_secret_ok("short-but-random-Xy7"), 0);
	ck_assert_int_eq(nf_config_jwt_secret_ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 0);
	ck_assert_int_eq(nf_config_jwt_secret_ok("changeme-changeme-changeme-changeme-1"), 0);
	ck_assert_int_eq(nf_config_jwt_secret_ok("your-jwt-secret-goes-here-please-change"), 0);
	ck_assert_int_eq(nf_config_jwt_secret_ok(KEY), 1);
}
END_TEST

/* ---- through the router ------------------------------------------------ */

static char *
run(const char *method, const char *uri, const char *h1, const char *h2)
{
	char	*m = nf_xasprintf("REQUEST_METHOD=%s", method);
	char	*u = nf_xasprintf("REQUEST_URI=%s", uri), *resp;
	char	*env[] = { m, u, "HTTP_X_TENANT_ID=tenant1", "REMOTE_ADDR=127.0.0.1",
	    (char *)h1, (char *)h2, NULL };

	resp = tu_req_run(&app, env, NULL);
	free(m), free(u);
	return resp;
}

START_TEST(router_front_line)
{
	struct nf_auth_claims	 c;
	char			*tok, *tok2, *resp, *hdr, *cookie, *csrf;
	int64_t			 now = nf_now_ms() / 1000;

	resp = run("GET", "/api/agents/me", NULL, NULL);
	ck_assert_int_eq(tu_resp_status(resp), 401);
	tu_check_error(resp, "unauthorized");
	ck_assert_ptr_nonnull(strstr(resp, "WWW-Authenticate: Bearer"));
	free(resp);
	resp = run("GET", "/api/agents/me", "HTTP_AUTHORIZATION=Bearer abc.def.ghi", NULL);
	ck_assert_int_eq(tu_resp_status(resp), 401);
	tu_check_error(resp, "invalid_token");
	ck_assert_ptr_nonnull(strstr(resp, "WWW-Authenticate: Bearer error=\"invalid_token\""));
	ck_assert_ptr_null(strstr(resp, "abc.def"));
	free(resp);
	resp = run("GET", "/api/agents/me", "HTTP_AUTHORIZATION=Basic YTpi", NULL);
	ck_assert_int_eq(tu_resp_status(resp), 401);
	free(resp);
	/* A valid token of tenant2 used against tenant1. */
	ck_assert_int_eq(nf_auth_issue(app.cfg.jwt_secret, "tenant2", SUB, NF_ROLE_ADMIN, 600,
	    now, &tok, &c, NULL), NF_OK);
	hdr = nf_xasprintf("HTTP_AUTHORIZATION=Bearer %s", tok);
	resp = run("GET", "/api/agents/me", hdr, NULL);
	ck_assert_int_eq(tu_resp_status(resp), 403);
	tu_check_error(resp, "tenant_mismatch");
	free(resp), free(hdr), free(tok);
	/* A tenant1 token: Redis is unreachable here, so fail closed (503). */
	ck_assert_int_eq(nf_auth_issue(app.cfg.jwt_secret, "tenant1", SUB, NF_ROLE_AGENT, 600,
	    now, &tok2, &c, NULL), NF_OK);
	hdr = nf_xasprintf("HTTP_AUTHORIZATION=Bearer %s", tok2);
	resp = run("GET", "/api/agents/me", hdr, NULL);
	ck_assert_int_eq(tu_resp_status(resp), 503);
	tu_check_error(resp, "redis_unavailable");
	free(resp), free(hdr);
	/* Cookie on an unsafe method without / with a wrong CSRF header. */
	cookie = nf_xasprintf("HTTP_COOKIE=a=b; " NF_AUTH_COOKIE "=%s; c=d", tok2);
	resp = run("POST", "/api/agents/logout", cookie, NULL);
	ck_assert_int_eq(tu_resp_status(resp), 403);
	tu_check_error(resp, "csrf_failed");
	free(resp);
	resp = run("POST", "/api/agents/logout", cookie, "HTTP_X_CSRF_TOKEN=00");
	ck_assert_int_eq(tu_resp_status(resp), 403);
	free(resp);
	/* With the right one the CSRF check passes (then Redis: 503). */
	csrf = nf_xasprintf("HTTP_X_CSRF_TOKEN=%s", c.csrf);
	resp = run("POST", "/api/agents/logout", cookie, csrf);
	ck_assert_int_eq(tu_resp_status(resp), 503);
	free(resp), free(csrf), free(cookie), free(tok2);
}
END_TEST

/* Battery 38: a token older than the password change is refused; one
 * issued right after it - in the same second - is not. */
START_TEST(password_change_times)
{
	struct json_object	*doc = json_object_new_object();
	const int64_t		 t = 1700000000;    /* a whole second, in s */

	ck_assert_int_eq(nf_auth_pw_changed_ms(NULL), 0);
	ck_assert_int_eq(nf_auth_pw_changed_ms(doc), 0);
	json_object_object_add(doc, "passwordChangedAt", json_object_new_string("x"));
	ck_assert_int_eq(nf_auth_pw_changed_ms(doc), 0);
	json_object_object_add(doc, "passwordChangedAt", json_object_new_int64(-5));
	ck_assert_int_eq(nf_auth_pw_changed_ms(doc), 0);
	json_object_object_add(doc, "passwordChangedAt", json_object_new_int64(t * 1000 + 400));
	ck_assert_int_eq(nf_auth_pw_changed_ms(doc), t * 1000 + 400);
	json_object_put(doc);
	/* never changed: every iat is current */
	ck_assert(nf_auth_iat_current(1, 0));
	/* changed at t.400: a token of second t (issued before it, or in the
	 * same second) is refused; tokens issued from then on carry t + 1. */
	ck_assert(!nf_auth_iat_current(t, t * 1000 + 400));
	ck_assert(!nf_auth_iat_current(t - 3600, t * 1000 + 400));
	ck_assert_int_eq(nf_auth_issue_time(t, t * 1000 + 400), t + 1);
	ck_assert(nf_auth_iat_current(nf_auth_issue_time(t, t * 1000 + 400), t * 1000 + 400));
	/* changed exactly at t.000: a token of second t is not older */
	ck_assert(nf_auth_iat_current(t, t * 1000));
	ck_assert_int_eq(nf_auth_issue_time(t, t * 1000), t);
	/* the clock ahead of the change: now wins */
	ck_assert_int_eq(nf_auth_issue_time(t + 10, t * 1000 + 400), t + 10);
	/* a refresh keeps at least the old iat (the ms floor of a second) */
	ck_assert_int_eq(nf_auth_issue_time(t - 1, t * 1000), t);
}
END_TEST

static Suite *
suite(void)
{
	TCase	*tc;
	Suite	*s = tu_suite("auth", &tc);

	tcase_add_test(tc, issue_and_verify);
	tcase_add_test(tc, skew_accepted);
	tcase_add_test(tc, rejected_table);
	tcase_add_test(tc, secret_policy);
	tcase_add_test(tc, router_front_line);
	tcase_add_test(tc, password_change_times);
	return s;
}

int
main(void)
{
	char	*dir = tu_tmpdir("t_auth"), *uri = nf_xasprintf("sqlite://%s/t.db", dir);
	int	 rc;

	setenv("JWT_SECRET", KEY, 1);
	setenv("STORE_URI", uri, 1);
	rc = tu_app_run(&app, "t_auth", suite());
	tu_rmtree(dir);
	free(dir), free(uri);
	return rc;
}
