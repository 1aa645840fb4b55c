/*
 * t_twsig.c - unit tests for twilio_sig.c: the published test vectors
 * (RELIABILITY.md 1.1 item 6), signatures computed by the official
 * `twilio` npm package (6.2.0, webhooks.getExpectedTwilioSignature) for raw
 * query strings, repeated parameters and UTF-8 values, every kind of
 * tampering, the URL a request is checked against, and the router's check
 * (nf_twsig_check) on requests built here: outcomes, audit rows, the dev
 * bypass.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "app.h"
#include "fakereq.h"
#include "json.h"
#include "nonflex.h"
#include "req.h"
#include "router.h"
#include "store.h"
#include "tenant.h"
#include "testutil.h"
#include "twilio_sig.h"

#define TOKEN		"12345"
#define VEC_URL		"https://mycompany.com/myapp.php?foo=1&bar=2"
#define VEC_URL_443	"https://mycompany.com:443/myapp.php?foo=1&bar=2"
#define VEC_SIG		"0/KCTR6DLpKmkAf8muzZqo1nDgQ="
#define VEC_SIG_443	"EpDEmp1PyjDYp77YxYU3GILBWzE="
#define JSON_BODY	"{\"property\": \"value\", \"boolean\": true}"
#define JSON_HASH	"0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
#define JSON_SIG	"a9nBmqA0ju/hNViExpshrM61xv4="

#define T1_TOKEN	"unit-tenant1-auth-token-7f3a"
#define PUBLIC		"https://hooks.example.com"

static struct nf_app	 app;

/* The five parameters of the published vector. */
static void
vector_params(struct nf_pairs *p)
{
	static const char *const kv[][2] = {
		{ "CallSid", "CA1234567890ABCDE" }, { "Caller", "+12349013030" },
		{ "Digits", "1234" }, { "From", "+12349013030" }, { "To", "+18005551212" },
	};
	size_t	 i;

	for (i = 0; i < NF_ARRAY_LEN(kv); i++)
		nf_pairs_add(p, kv[i][0], strlen(kv[i][0]), kv[i][1], strlen(kv[i][1]));
}

static void
add(struct nf_pairs *p, const char *name, const char *value)
{
	nf_pairs_add(p, name, strlen(name), value, strlen(value));
}

START_TEST(published_vectors)
{
	struct nf_pairs	 p = { 0 };
	char		 sig[29];

	vector_params(&p);
	nf_twsig_compute(TOKEN, VEC_URL, &p, sig);
	ck_assert_str_eq(sig, VEC_SIG);
	nf_twsig_compute(TOKEN, VEC_URL_443, &p, sig);
	ck_assert_str_eq(sig, VEC_SIG_443);
	/* Either signature is accepted for either form of the URL. */
	ck_assert_int_eq(nf_twsig_valid(TOKEN, VEC_URL, &p, NULL, 0, VEC_SIG), 1);
	ck_assert_int_eq(nf_twsig_valid(TOKEN, VEC_URL, &p, NULL, 0, VEC_SIG_443), 1);
	ck_assert_int_eq(nf_twsig_valid(TOKEN, VEC_URL_443, &p, NULL, 0, VEC_SIG), 1);
	ck_assert_int_eq(nf_twsig_valid(TOKEN, VEC_URL_443, &p, NULL, 0, VEC_SIG_443), 1);
	/* Only the scheme's default port is ever added. */
	ck_assert_int_eq(nf_twsig_valid(TOKEN,
	    "https://mycompany.com:80/myapp.php?foo=1&bar=2", &p, NULL, 0, VEC_SIG_443), 0);
	ck_assert_int_eq(nf_twsig_valid(TOKEN,
	    "http://mycompany.com/myapp.php?foo=1&bar=2", &p, NULL, 0, VEC_SIG_443), 0);
	nf_pairs_cleanup(&p);
}
END_TEST

START_TEST(json_body_vector)
{
	const char	*url = VEC_URL "&bodySHA256=" JSON_HASH;
	const char	*body = JSON_BODY;
	char		 sig[29], *upper, *nohash, *twice;
	size_t		 i;

	nf_twsig_compute(TOKEN, url, NULL, sig);
	ck_assert_str_eq(sig, JSON_SIG);
	ck_assert_int_eq(nf_twsig_valid(TOKEN, url, NULL, body, strlen(body), JSON_SIG), 1);
	/* One extra space in the body: the hash no longer matches. */
	ck_assert_int_eq(nf_twsig_valid(TOKEN, url, NULL,
	    "{\"property\":  \"value\", \"boolean\": true}", strlen(body) + 1, JSON_SIG), 0);
	/* Params with a JSON body are a caller error. */
	{
		struct nf_pairs	 p = { 0 };

		add(&p, "a", "b");
		ck_assert_int_eq(nf_twsig_valid(TOKEN, url, &p, body, strlen(body),
		    JSON_SIG), 0);
		nf_pairs_cleanup(&p);
	}
	/* Upper-case hex, correctly signed over that URL: still refused. */
	upper = nf_xstrdup(url);
	for (i = strlen(VEC_URL "&bodySHA256="); upper[i] != '\0'; i++)
		if (upper[i] >= 'a' && upper[i] <= 'f')
			upper[i] = (char)(upper[i] - 32);
	nf_twsig_compute(TOKEN, upper, NULL, sig);
	ck_assert_int_eq(nf_twsig_valid(TOKEN, upper, NULL, body, strlen(body), sig), 0);
	/* bodySHA256 removed from the URL, or given twice. */
	nohash = nf_xstrdup(VEC_URL);
	nf_twsig_compute(TOKEN, nohash, NULL, sig);
	ck_assert_int_eq(nf_twsig_valid(TOKEN, nohash, NULL, body, strlen(body), sig), 0);
	twice = nf_xasprintf("%s&bodySHA256=%s", url, JSON_HASH);
	nf_twsig_compute(TOKEN, twice, NULL, sig);
	ck_assert_int_eq(nf_twsig_valid(TOKEN, twice, NULL, body, strlen(body), sig), 0);
	free(upper);
	free(nohash);
	free(twice);
}
END_TEST

/* Signatures from twilio@6.2.0 getExpectedTwilioSignature("12345",
 * "https://mycompany.com/hook?" + query, {}). */
START_TEST(raw_query_bytes)
{
	static const char *const cases[][2] = {
		{ "a=b+c", "6E/9IUhlxHqJF4mByNZIwB/4+so=" },
		{ "a=b%20c", "TfhQeFX4E7kF1K34vy2DhBs/TQY=" },
		{ "n=O'Brien", "n/VJlxPCLEVtZiUR0oi9OxkGPMw=" },
		{ "n=O%27Brien", "wG1pHrsgderByxryLlmXr7jKRAw=" },
		{ "sip=sip:alice@example.com", "QSRTehjAy2hs9iAARaKTyk7/250=" },
		{ "u=%C3%BC", "KJ0g2zI3TuHCgWYFlyqF8hZ62ss=" },
	};
	char	 url[128], sig[29];
	size_t	 i, j;

	for (i = 0; i < NF_ARRAY_LEN(cases); i++) {
		snprintf(url, sizeof(url), "https://mycompany.com/hook?%s", cases[i][0]);
		nf_twsig_compute(TOKEN, url, NULL, sig);
		ck_assert_msg(strcmp(sig, cases[i][1]) == 0, "%s: %s", cases[i][0], sig);
		ck_assert_int_eq(nf_twsig_valid(TOKEN, url, NULL, NULL, 0, cases[i][1]), 1);
		/* No two encodings are interchangeable: nothing is normalised. */
		for (j = 0; j < NF_ARRAY_LEN(cases); j++)
			if (j != i)
				ck_assert_int_eq(nf_twsig_valid(TOKEN, url, NULL, NULL, 0,
				    cases[j][1]), 0);
	}
}
END_TEST

START_TEST(repeated_and_utf8)
{
	struct nf_pairs	 p = { 0 }, q = { 0 };
	char		 sig[29];

	/* twilio@6.2.0: {MediaUrl0: ['b', 'a'], Body: 'x'}. */
	add(&p, "MediaUrl0", "b");
	add(&p, "Body", "x");
	add(&p, "MediaUrl0", "a");
	nf_twsig_compute(TOKEN, "https://mycompany.com/hook", &p, sig);
	ck_assert_str_eq(sig, "98PdL6JgAAfRdyyV4CNRa5/dlkE=");
	/* Arrival order does not matter: values are sorted per name. */
	add(&q, "MediaUrl0", "a");
	add(&q, "MediaUrl0", "b");
	add(&q, "Body", "x");
	ck_assert_int_eq(nf_twsig_valid(TOKEN, "https://mycompany.com/hook", &q, NULL, 0, sig), 1);
	/* A repeated value is not dropped: a third copy changes the string. */
	add(&q, "MediaUrl0", "a");
	ck_assert_int_eq(nf_twsig_valid(TOKEN, "https://mycompany.com/hook", &q, NULL, 0, sig), 0);
	nf_pairs_cleanup(&p);
	nf_pairs_cleanup(&q);
	/* twilio@6.2.0: {Body: '¡Hola, señor! 你好 😀'}. */
	add(&p, "Body", "\xc2\xa1Hola, se\xc3\xb1or! \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80");
	nf_twsig_compute(TOKEN, "https://mycompany.com/hook", &p, sig);
	ck_assert_str_eq(sig, "bvVS8fYzYyhqoss1Mv0BDOiO9Ww=");
	nf_pairs_cleanup(&p);
}
END_TEST

START_TEST(tampering)
{
	struct nf_pairs	 p = { 0 };
	size_t		 i;

	/* One byte of one value changed. */
	vector_params(&p);
	p.v[2].value[0] = '9';
	ck_assert_int_eq(nf_twsig_valid(TOKEN, VEC_URL, &p, NULL, 0, VEC_SIG), 0);
	nf_pairs_cleanup(&p);
	/* A parameter added. */
	vector_params(&p);
	add(&p, "Body", "");
	ck_assert_int_eq(nf_twsig_valid(TOKEN, VEC_URL, &p, NULL, 0, VEC_SIG), 0);
	nf_pairs_cleanup(&p);
	/* A parameter removed (the last one). */
	vector_params(&p);
	free(p.v[4].name);
	free(p.v[4].value);
	p.n--;
	ck_assert_int_eq(nf_twsig_valid(TOKEN, VEC_URL, &p, NULL, 0, VEC_SIG), 0);
	/* ... and moved into the query string instead. */
	ck_assert_int_eq(nf_twsig_valid(TOKEN, VEC_URL "&To=%2B18005551212", &p, NULL, 0,
	    VEC_SIG), 0);
	nf_pairs_cleanup(&p);
	/* URL changes: scheme, host, path, query. */
	vector_params(&p);
	ck_assert_int_eq(nf_twsig_valid(TOKEN, "http://mycompany.com/myapp.php?foo=1&bar=2",
	    &p, NULL, 0, VEC_SIG), 0);
	ck_assert_int_eq(nf_twsig_valid(TOKEN, "https://evil.com/myapp.php?foo=1&bar=2",
	    &p, NULL, 0, VEC_SIG), 0);
	ck_assert_int_eq(nf_twsig_valid(TOKEN, "https://mycompany.com/myapp.php?foo=1&bar=3",
	    &p, NULL, 0, VEC_SIG), 0);
	ck_assert_int_eq(nf_twsig_valid(TOKEN, "https://mycompany.com/myapp.php?bar=2&foo=1",
	    &p, NULL, 0, VEC_SIG), 0);
	/* Wrong token, no token. */
	ck_assert_int_eq(nf_twsig_valid("12346", VEC_URL, &p, NULL, 0, VEC_SIG), 0);
	ck_assert_int_eq(nf_twsig_valid("", VEC_URL, &p, NULL, 0, VEC_SIG), 0);
	ck_assert_int_eq(nf_twsig_valid(NULL, VEC_URL, &p, NULL, 0, VEC_SIG), 0);
	/* Headers that are not signatures. */
	{
		static const char *const bad[] = { "", "0/KCTR6DLpKmkAf8muzZqo1nDgQ",
			"0/KCTR6DLpKmkAf8muzZqo1nDgQ==", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=x",
			"!0/KCTR6DLpKmkAf8muzZqo1nDg=", "0_KCTR6DLpKmkAf8muzZqo1nDgQ=" };
		char	 big[80];

		for (i = 0; i < NF_ARRAY_LEN(bad); i++)
			ck_assert_msg(nf_twsig_valid(TOKEN, VEC_URL, &p, NULL, 0, bad[i]) == 0,
			    "accepted \"%s\"", bad[i]);
		ck_assert_int_eq(nf_twsig_valid(TOKEN, VEC_URL, &p, NULL, 0, NULL), 0);
		memset(big, 'A', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		ck_assert_int_eq(nf_twsig_valid(TOKEN, VEC_URL, &p, NULL, 0, big), 0);
	}
	nf_pairs_cleanup(&p);
}
END_TEST

START_TEST(port_variants)
{
	char	 sig[29];

	/* A non-default port may be dropped (as the helpers do) but no other
	 * port is ever made up. */
	nf_twsig_compute(TOKEN, "https://h.example:8443/x?y=1", NULL, sig);
	ck_assert_int_eq(nf_twsig_valid(TOKEN, "https://h.example:8443/x?y=1", NULL, NULL, 0,
	    sig), 1);
	ck_assert_int_eq(nf_twsig_valid(TOKEN, "https://h.example:9443/x?y=1", NULL, NULL, 0,
	    sig), 0);
	nf_twsig_compute(TOKEN, "https://h.example/x?y=1", NULL, sig);
	ck_assert_int_eq(nf_twsig_valid(TOKEN, "https://h.example:8443/x?y=1", NULL, NULL, 0,
	    sig), 1);
	/* http's default is 80; IPv6 literals keep their colons. */
	nf_twsig_compute(TOKEN, "http://h.example:80/x", NULL, sig);
	ck_assert_int_eq(nf_twsig_valid(TOKEN, "http://h.example/x", NULL, NULL, 0, sig), 1);
	nf_twsig_compute(TOKEN, "https://[2001:db8::1]:443/x", NULL, sig);
	ck_assert_int_eq(nf_twsig_valid(TOKEN, "https://[2001:db8::1]/x", NULL, NULL, 0, sig), 1);
	/* A ':' in the query is not a port. */
	nf_twsig_compute(TOKEN, "https://h.example:443?u=a:1", NULL, sig);
	ck_assert_int_eq(nf_twsig_valid(TOKEN, "https://h.example?u=a:1", NULL, NULL, 0, sig), 1);
}
END_TEST

/* ---- the URL of a request --------------------------------------------- */

static char *
url_of(const char *public_url, char *const *env)
{
	struct nf_app	 a;
	struct nf_req	 r;
	char		*url;

	memset(&a, 0, sizeof(a));
	a.cfg.public_url = (char *)public_url;
	nf_req_init(&r, &a, env, NULL, NULL);
	url = nf_twsig_request_url(&r);
	nf_req_cleanup(&r);
	return url;
}

START_TEST(request_url)
{
	char *const forged[] = { "REQUEST_URI=/webhooks/a?x=O'B%27+%20@:", "REQUEST_SCHEME=http",
		"HTTP_HOST=evil.example", "HTTP_X_FORWARDED_HOST=evil.example",
		"HTTP_X_FORWARDED_PROTO=http", "SERVER_NAME=localhost", "SERVER_PORT=8080", NULL };
	char *const plain[] = { "REQUEST_URI=/webhooks/a?b=1", "REQUEST_SCHEME=https",
		"HTTP_HOST=tenant1.example.com:8443", "HTTP_X_FORWARDED_HOST=evil.example",
		"SERVER_NAME=localhost", "SERVER_PORT=8443", NULL };
	char *const badhost[] = { "REQUEST_URI=/w", "HTTPS=on",
		"HTTP_HOST=evil.example/x?", "SERVER_NAME=nonflex.example.com",
		"SERVER_PORT=443", NULL };
	char *const badhost2[] = { "REQUEST_URI=/w", "REQUEST_SCHEME=http",
		"HTTP_HOST=user@evil.example", "SERVER_NAME=nonflex.example.com",
		"SERVER_PORT=8080", NULL };
	char *const nouri[] = { "DOCUMENT_URI=/w", "QUERY_STRING=a=1", "REQUEST_SCHEME=http",
		"HTTP_HOST=[::1]:8080", NULL };
	char	*u;

	/* PUBLIC_URL decides; Host and X-Forwarded-* are never read. */
	u = url_of(PUBLIC "/", forged);
	ck_assert_str_eq(u, PUBLIC "/webhooks/a?x=O'B%27+%20@:");
	free(u);
	u = url_of(PUBLIC, forged);
	ck_assert_str_eq(u, PUBLIC "/webhooks/a?x=O'B%27+%20@:");
	free(u);
	/* Without it: nginx's scheme, the Host as sent, X-Forwarded-Host ignored. */
	u = url_of("", plain);
	ck_assert_str_eq(u, "https://tenant1.example.com:8443/webhooks/a?b=1");
	free(u);
	u = url_of(NULL, badhost);
	ck_assert_str_eq(u, "https://nonflex.example.com/w");
	free(u);
	u = url_of(NULL, badhost2);
	ck_assert_str_eq(u, "http://nonflex.example.com:8080/w");
	free(u);
	u = url_of(NULL, nouri);
	ck_assert_str_eq(u, "http://[::1]:8080/w?a=1");
	free(u);
}
END_TEST

/* ---- nf_twsig_check ------------------------------------------------------- */

static const struct nf_route form_route = { NF_POST, "/webhooks/test", NULL, NF_ROLE_NONE,
	NF_BODY_FORM, 0, NF_ROUTE_TWILIO_SIGNED };
static const struct nf_route json_route = { NF_POST, "/webhooks/test", NULL, NF_ROLE_NONE,
	NF_BODY_JSON, 0, NF_ROUTE_TWILIO_SIGNED };

struct hook {
	const char		*tenant;     /* tenant id */
	const struct nf_route	*route;
	const char		*uri;        /* REQUEST_URI */
	const char		*body;
	const char		*sig;        /* header value, NULL: none */
};

/* Run nf_twsig_check on the request h describes; code receives the error
 * code ("" on success). */
static enum nf_err
check(const struct hook *h, char code[48])
{
	struct nf_req	 r;
	struct nf_error	 e;
	struct tu_src	 src = { h->body, strlen(h->body), 0 };
	char		*env[8], *own[4];
	enum nf_err	 rc;
	size_t		 n = 0, i;

	env[n++] = "REQUEST_METHOD=POST";
	env[n++] = "REMOTE_ADDR=192.0.2.7";
	env[n++] = own[0] = nf_xasprintf("REQUEST_URI=%s", h->uri);
	env[n++] = own[1] = nf_xasprintf("CONTENT_LENGTH=%zu", strlen(h->body));
	env[n++] = own[2] = nf_xasprintf("CONTENT_TYPE=%s", h->route->body == NF_BODY_JSON ?
	    "application/json" : "application/x-www-form-urlencoded");
	own[3] = NULL;
	if (h->sig != NULL)
		env[n++] = own[3] = nf_xasprintf("HTTP_X_TWILIO_SIGNATURE=%s", h->sig);
	env[n] = NULL;
	nf_req_init(&r, &app, env, tu_src_read, &src);
	r.route = h->route;
	r.tenant = nf_tenant_find(app.tenants, h->tenant);
	ck_assert_ptr_nonnull(r.tenant);
	nf_error_clear(&e);
	ck_assert_int_eq(nf_form_parse(r.query_string, strlen(r.query_string), 64, "q",
	    &r.query, &e), NF_OK);
	ck_assert_int_eq(nf_req_body(&r, h->route->body, 65536, &e), NF_OK);
	rc = nf_twsig_check(&r, &e);
	snprintf(code, 48, "%s", rc == NF_OK ? "" : e.code);
	nf_req_cleanup(&r);
	for (i = 0; i < 4; i++)
		free(own[i]);
	return rc;
}

/* The signature tenant1's Twilio would send for a form POST to uri. */
static void
sign_form(const char *token, const char *uri, const char *body, char sig[29])
{
	struct nf_pairs	 p = { 0 };
	struct nf_error	 e;
	char		*url = nf_xasprintf(PUBLIC "%s", uri);

	ck_assert_int_eq(nf_form_parse(body, strlen(body), 64, "f", &p, &e), NF_OK);
	nf_twsig_compute(token, url, &p, sig);
	nf_pairs_cleanup(&p);
	free(url);
}

/* Audit rows of tenant1 for twilio.signature_failed (new array). */
static struct json_object *
failures(void)
{
	struct nf_store		*st;
	struct nf_error		 e;
	struct json_object	*f = json_object_new_object(), *out = NULL;

	ck_assert_int_eq(nf_app_store(&app, &st, &e), NF_OK);
	nf_json_add_str(f, "event", "twilio.signature_failed");
	ck_assert_int_eq(nf_store_find(st, "tenant1", "audit", f, NULL, &out, &e), NF_OK);
	json_object_put(f);
	return out;
}

static const char *
row_reason(struct json_object *rows, size_t i)
{
	struct json_object	*row = json_object_array_get_idx(rows, i), *d, *v;

	if (row == NULL || !json_object_object_get_ex(row, "data", &d) ||
	    !json_object_object_get_ex(d, "reason", &v))
		return NULL;
	return json_object_get_string(v);
}

#define FORM "AccountSid=AC00000000000000000000000000000001&Body=hi+there&From=%2B15551230000"

START_TEST(check_outcomes)
{
	struct hook		 h = { "tenant1", &form_route, "/webhooks/test?x=1", FORM, NULL };
	struct json_object	*rows;
	char			 sig[29], code[48], big[100];
	const char		*txt;

	sign_form(T1_TOKEN, h.uri, FORM, sig);
	h.sig = sig;
	ck_assert_int_eq(check(&h, code), NF_OK);
	/* Missing, empty, oversized, not base64, wrong. */
	h.sig = NULL;
	ck_assert_int_eq(check(&h, code), NF_EFORBIDDEN);
	ck_assert_str_eq(code, "invalid_signature");
	h.sig = "";
	ck_assert_int_eq(check(&h, code), NF_EFORBIDDEN);
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	h.sig = big;
	ck_assert_int_eq(check(&h, code), NF_EFORBIDDEN);
	h.sig = "not*base64";
	ck_assert_int_eq(check(&h, code), NF_EFORBIDDEN);
	ck_assert_str_eq(code, "invalid_signature");
	h.sig = sig;
	h.body = FORM "&Extra=1";
	ck_assert_int_eq(check(&h, code), NF_EFORBIDDEN);
	ck_assert_str_eq(code, "invalid_signature");
	h.body = FORM;
	h.uri = "/webhooks/test?x=2";
	ck_assert_int_eq(check(&h, code), NF_EFORBIDDEN);
	/* Every failure left an audit row with its reason, and never the
	 * header or the token. */
	rows = failures();
	ck_assert_uint_eq(json_object_array_length(rows), 6);
	ck_assert_str_eq(row_reason(rows, 0), "missing");
	ck_assert_str_eq(row_reason(rows, 1), "missing");
	ck_assert_str_eq(row_reason(rows, 2), "oversized");
	ck_assert_str_eq(row_reason(rows, 3), "malformed");
	ck_assert_str_eq(row_reason(rows, 4), "mismatch");
	ck_assert_str_eq(row_reason(rows, 5), "mismatch");
	txt = json_object_to_json_string(rows);
	ck_assert_ptr_null(strstr(txt, sig));
	ck_assert_ptr_null(strstr(txt, T1_TOKEN));
	ck_assert_ptr_nonnull(strstr(txt, "192.0.2.7"));
	json_object_put(rows);
}
END_TEST

START_TEST(check_cross_tenant_and_unconfigured)
{
	const char		*b2 = "AccountSid=AC00000000000000000000000000000002&Body=x";
	struct hook		 h = { "tenant1", &form_route, "/webhooks/test", b2, NULL };
	struct json_object	*rows;
	char			 sig[29], code[48];

	/* Signed with tenant1's token, but carrying tenant2's account. */
	sign_form(T1_TOKEN, h.uri, b2, sig);
	h.sig = sig;
	ck_assert_int_eq(check(&h, code), NF_EFORBIDDEN);
	ck_assert_str_eq(code, "account_mismatch");
	/* The same account smuggled in through the query string. */
	h.uri = "/webhooks/test?AccountSid=AC00000000000000000000000000000002";
	h.body = "Body=x";
	sign_form(T1_TOKEN, h.uri, h.body, sig);
	ck_assert_int_eq(check(&h, code), NF_EFORBIDDEN);
	ck_assert_str_eq(code, "account_mismatch");
	rows = failures();
	ck_assert_uint_eq(json_object_array_length(rows), 2);
	ck_assert_str_eq(row_reason(rows, 0), "cross_tenant");
	json_object_put(rows);
	/* tenant2 has no auth token in this environment: fail closed, even
	 * for a "signature" made with an empty key. */
	h.tenant = "tenant2";
	h.uri = "/webhooks/test";
	h.body = b2;
	sign_form("", h.uri, b2, sig);
	h.sig = sig[0] != '\0' ? sig : "AAAA";
	ck_assert_int_eq(check(&h, code), NF_EFORBIDDEN);
	ck_assert_str_eq(code, "twilio_not_configured");
}
END_TEST

START_TEST(check_json_body)
{
	struct hook	 h = { "tenant1", &json_route, NULL, JSON_BODY, NULL };
	char		 sig[29], code[48], *url;

	h.uri = "/webhooks/test?bodySHA256=" JSON_HASH;
	url = nf_xasprintf(PUBLIC "%s", h.uri);
	nf_twsig_compute(T1_TOKEN, url, NULL, sig);
	h.sig = sig;
	ck_assert_int_eq(check(&h, code), NF_OK);
	/* Same signature, body changed by one space. */
	h.body = "{\"property\": \"value\",  \"boolean\": true}";
	ck_assert_int_eq(check(&h, code), NF_EFORBIDDEN);
	ck_assert_str_eq(code, "invalid_signature");
	free(url);
	/* No bodySHA256 at all, even correctly signed over the URL. */
	h.body = JSON_BODY;
	h.uri = "/webhooks/test";
	url = nf_xasprintf(PUBLIC "%s", h.uri);
	nf_twsig_compute(T1_TOKEN, url, NULL, sig);
	ck_assert_int_eq(check(&h, code), NF_EFORBIDDEN);
	free(url);
}
END_TEST

START_TEST(check_dev_bypass)
{
	struct hook	 h = { "tenant1", &form_route, "/webhooks/test", FORM, NULL };
	char		 code[48];

	app.cfg.dev_skip_twilio_sig = 1;
	ck_assert_int_eq(check(&h, code), NF_OK);
	h.sig = "garbage";
	ck_assert_int_eq(check(&h, code), NF_OK);
	app.cfg.dev_skip_twilio_sig = 0;
	ck_assert_int_eq(check(&h, code), NF_EFORBIDDEN);
}
END_TEST

int
main(void)
{
	TCase	*tc;
	Suite	*s = tu_suite("twsig", &tc);

	setenv("PUBLIC_URL", PUBLIC, 1);
	setenv("STORE_URI", "sqlite://:memory:", 1);
	setenv("TENANT1_TWILIO_AUTH_TOKEN", T1_TOKEN, 1);
	unsetenv("TENANT2_TWILIO_AUTH_TOKEN");
	unsetenv("TWILIO_AUTH_TOKEN");
	unsetenv("NONFLEX_DEV_SKIP_TWILIO_SIGNATURE");

	tcase_add_test(tc, published_vectors);
	tcase_add_test(tc, json_body_vector);
	tcase_add_test(tc, raw_query_bytes);
	tcase_add_test(tc, repeated_and_utf8);
	tcase_add_test(tc, tampering);
	tcase_add_test(tc, port_variants);
	tcase_add_test(tc, request_url);
	tcase_add_test(tc, check_outcomes);
	tcase_add_test(tc, check_cross_tenant_and_unconfigured);
	tcase_add_test(tc, check_json_body);
	tcase_add_test(tc, check_dev_bypass);
	return tu_app_run(&app, "t_twsig", s);
}
