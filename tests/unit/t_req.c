/*
 * t_req.c - unit tests for req.c and the body stage of the pipeline:
 * content types and charsets, body caps (413 before reading), JSON bodies
 * (duplicates, invalid UTF-8, NUL -> 400 invalid_json), form bodies
 * (order and duplicates kept, bad percent-encoding or UTF-8 -> 400
 * invalid_form, field cap), query strings, request ids, header injection
 * and the error envelope (500 never shows internals).
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "app.h"
#include "fakereq.h"
#include "json.h"
#include "nonflex.h"
#include "req.h"
#include "router.h"
#include "testutil.h"
#include "valid.h"

static struct nf_app	app;

START_TEST(content_types)
{
	static const struct {
		const char		*ct;
		enum nf_body_kind	 kind;
		int			 ok;
	} c[] = {
		{ "application/json", NF_BODY_JSON, 1 },
		{ "Application/JSON", NF_BODY_JSON, 1 },
		{ "application/json; charset=utf-8", NF_BODY_JSON, 1 },
		{ "application/json;charset=UTF-8", NF_BODY_JSON, 1 },
		{ "application/json; charset=\"utf-8\"", NF_BODY_JSON, 1 },
		{ "application/json ; charset = utf-8 ", NF_BODY_JSON, 1 },
		{ "application/json; charset=latin1", NF_BODY_JSON, 0 },
		{ "application/json; charset=utf-16", NF_BODY_JSON, 0 },
		{ "application/json; boundary=x", NF_BODY_JSON, 0 },
		{ "application/json; charset=utf-8; x=y", NF_BODY_JSON, 0 },
		{ "application/jsonx", NF_BODY_JSON, 0 },
		{ "text/json", NF_BODY_JSON, 0 },
		{ "text/plain", NF_BODY_JSON, 0 },
		{ "", NF_BODY_JSON, 0 },
		{ NULL, NF_BODY_JSON, 0 },
		{ "application/x-www-form-urlencoded", NF_BODY_FORM, 1 },
		{ "application/x-www-form-urlencoded; charset=UTF-8", NF_BODY_FORM, 1 },
		{ "application/x-www-form-urlencoded", NF_BODY_JSON, 0 },
		{ "application/json", NF_BODY_FORM, 0 },
		{ "multipart/form-data; boundary=x", NF_BODY_FORM, 0 },
		{ "application/json", NF_BODY_NONE, 0 },
	};
	size_t	 i;

	for (i = 0; i < NF_ARRAY_LEN(c); i++)
		ck_assert_msg(nf_content_type_ok(c[i].ct, c[i].kind) == c[i].ok,
		    "content type case %zu (%s)", i, c[i].ct ? c[i].ct : "(null)");
}
END_TEST

START_TEST(form_decoding)
{
	struct nf_pairs	 p = { 0 };
	struct nf_error	 e;
	const char	*s = "b=2&a=1&b=3&&empty=&flag&sp=a+b%20c&pct=%25%26%3D&utf=caf%C3%A9";

	ck_assert_int_eq(nf_form_parse(s, strlen(s), 100, "invalid_form", &p, &e), NF_OK);
	ck_assert_uint_eq(p.n, 8);
	ck_assert_str_eq(p.v[0].name, "b");
	ck_assert_str_eq(p.v[0].value, "2");
	ck_assert_str_eq(p.v[1].name, "a");
	ck_assert_str_eq(p.v[2].name, "b");
	ck_assert_str_eq(p.v[2].value, "3");
	ck_assert_str_eq(p.v[3].name, "empty");
	ck_assert_str_eq(p.v[3].value, "");
	ck_assert_str_eq(p.v[4].name, "flag");
	ck_assert_str_eq(p.v[4].value, "");
	ck_assert_str_eq(nf_pairs_get(&p, "sp"), "a b c");
	ck_assert_str_eq(nf_pairs_get(&p, "pct"), "%&=");
	ck_assert_str_eq(nf_pairs_get(&p, "utf"), "caf\xc3\xa9");
	ck_assert_str_eq(nf_pairs_get(&p, "b"), "2");
	ck_assert_ptr_null(nf_pairs_get(&p, "nope"));
	nf_pairs_cleanup(&p);
	ck_assert_int_eq(nf_form_parse("", 0, 100, "invalid_form", &p, &e), NF_OK);
	ck_assert_uint_eq(p.n, 0);
}
END_TEST

START_TEST(form_errors)
{
	static const char *const bad[] = {
		"a=%", "a=%2", "a=%zz", "a=%0g", "%=1", "a=%00", "a=%ff", "a=%C0%AF",
		"a=%ED%A0%80", "a=1&b=\xff", "a\xc3=1",
	};
	struct nf_pairs	 p = { 0 };
	struct nf_error	 e;
	size_t		 i;

	for (i = 0; i < NF_ARRAY_LEN(bad); i++) {
		ck_assert_msg(nf_form_parse(bad[i], strlen(bad[i]), 100, "invalid_form", &p, &e) ==
		    NF_EINVAL, "form \"%s\" should fail", bad[i]);
		ck_assert_str_eq(e.code, "invalid_form");
		ck_assert_uint_eq(p.n, 0);
	}
	/* Field cap: 3 allowed, 4 refused. */
	ck_assert_int_eq(nf_form_parse("a&b&c", 5, 3, "invalid_query", &p, &e), NF_OK);
	nf_pairs_cleanup(&p);
	ck_assert_int_eq(nf_form_parse("a&b&c&d", 7, 3, "invalid_query", &p, &e), NF_EINVAL);
	ck_assert_str_eq(e.code, "invalid_query");
	ck_assert_uint_eq(p.n, 0);
}
END_TEST

START_TEST(request_ids)
{
	char	 out[NF_REQUEST_ID_MAX + 1], lng[200];

	nf_request_id_choose("abc-123.x:y_z", out);
	ck_assert_str_eq(out, "abc-123.x:y_z");
	nf_request_id_choose(NULL, out);
	ck_assert_uint_eq(strlen(out), 32);
	ck_assert(nf_valid_request_id(out));
	nf_request_id_choose("bad id\r\nX-Evil: 1", out);
	ck_assert_uint_eq(strlen(out), 32);
	ck_assert(strchr(out, ' ') == NULL);
	memset(lng, 'a', 150);
	lng[150] = '\0';
	nf_request_id_choose(lng, out);
	ck_assert_uint_eq(strlen(out), 32);
	nf_request_id_choose("", out);
	ck_assert_uint_eq(strlen(out), 32);
}
END_TEST

/* ---- whole requests ---- */

/* POST body (len bytes) to uri with ct; returns the raw response. *nread
 * (may be NULL) receives how many body bytes the pipeline read. */
static char *
post(const char *uri, const char *ct, const char *body, size_t len, const char *cl,
    const char *extra, size_t *nread)
{
	char		*env[8], *u, *c, *l, *resp;
	struct tu_src	 s = { body, len, 0 };
	size_t		 n = 0;

	env[n++] = "REQUEST_METHOD=POST";
	env[n++] = u = nf_xasprintf("REQUEST_URI=%s", uri);
	env[n++] = c = nf_xasprintf("CONTENT_TYPE=%s", ct);
	env[n++] = l = cl ? nf_xasprintf("CONTENT_LENGTH=%s", cl) :
	    nf_xasprintf("CONTENT_LENGTH=%zu", len);
	if (extra != NULL)
		env[n++] = (char *)extra;
	env[n] = NULL;
	resp = tu_req_run(&app, env, &s);
	free(u);
	free(c);
	free(l);
	if (nread != NULL)
		*nread = s.off;
	return resp;
}

/* Expect an error envelope with this status and code; frees resp. */
static void
expect_error(char *resp, int status, const char *code)
{
	ck_assert_msg(tu_resp_status(resp) == status, "want %d got: %s", status, resp);
	tu_check_error(resp, code);
	free(resp);
}

#define JSON_CT "application/json"
#define FORM_CT "application/x-www-form-urlencoded"

START_TEST(json_bodies)
{
	const char		*ok = "{\"a\":[1,\"x\"],\"b\":{\"$gt\":\"\"}}";
	struct json_object	*o, *b;
	char			*resp;

	resp = post("/api/dev/echo", JSON_CT "; charset=utf-8", ok, strlen(ok), NULL, NULL, NULL);
	ck_assert_int_eq(tu_resp_status(resp), 200);
	o = tu_resp_body(resp);
	ck_assert(json_object_object_get_ex(o, "body", &b));
	ck_assert_str_eq(nf_json_str(b, NULL), ok);   /* operators are data */
	ck_assert(json_object_object_get_ex(o, "tenant", &b));
	ck_assert_str_eq(json_object_get_string(b), "tenant1");
	json_object_put(o);
	free(resp);

	expect_error(post("/api/dev/echo", JSON_CT, "{\"a\":1,\"a\":2}", 13, NULL, NULL, NULL),
	    400, "invalid_json");
	expect_error(post("/api/dev/echo", JSON_CT, "{\"a\":\"\xff\"}", 9, NULL, NULL, NULL),
	    400, "invalid_json");
	expect_error(post("/api/dev/echo", JSON_CT, "{\"a\":\"x\0\"}", 10, NULL, NULL, NULL),
	    400, "invalid_json");
	expect_error(post("/api/dev/echo", JSON_CT, "{\"a\":", 5, NULL, NULL, NULL),
	    400, "invalid_json");
	expect_error(post("/api/dev/echo", JSON_CT, "", 0, NULL, NULL, NULL),
	    400, "invalid_json");
	expect_error(post("/api/dev/echo", "text/plain", "{}", 2, NULL, NULL, NULL),
	    415, "unsupported_media_type");
	expect_error(post("/api/dev/echo", JSON_CT "; charset=iso-8859-1", "{}", 2, NULL, NULL,
	    NULL), 415, "unsupported_media_type");
	expect_error(post("/api/dev/echo", FORM_CT, "a=1", 3, NULL, NULL, NULL),
	    415, "unsupported_media_type");
}
END_TEST

START_TEST(caps_and_lengths)
{
	size_t	 nread = 99;

	/* Over the cap: 413 without reading a byte. */
	expect_error(post("/api/dev/echo", JSON_CT, "{}", 2, "70000", NULL, &nread),
	    413, "payload_too_large");
	ck_assert_uint_eq(nread, 0);
	expect_error(post("/api/dev/echo", JSON_CT, "{}", 2, "99999999999999999999999", NULL,
	    &nread), 400, "invalid_content_length");
	ck_assert_uint_eq(nread, 0);
	expect_error(post("/api/dev/echo", JSON_CT, "{}", 2, "-1", NULL, NULL),
	    400, "invalid_content_length");
	expect_error(post("/api/dev/echo", JSON_CT, "{}", 2, "abc", NULL, NULL),
	    400, "invalid_content_length");
	/* Body shorter than announced. */
	expect_error(post("/api/dev/echo", JSON_CT, "{}", 2, "10", NULL, NULL),
	    400, "incomplete_body");
	/* Only CONTENT_LENGTH bytes are read: the rest is not part of the body. */
	expect_error(post("/api/dev/echo", JSON_CT, "{}{}", 4, "4", NULL, NULL),
	    400, "invalid_json");
	{
		char	*resp = post("/api/dev/echo", JSON_CT, "{}GARBAGE", 9, "2", NULL, &nread);

		ck_assert_int_eq(tu_resp_status(resp), 200);
		ck_assert_uint_eq(nread, 2);
		free(resp);
	}
}
END_TEST

START_TEST(form_bodies)
{
	const char		*f = "To=%2B15005550006&Body=hi+there&Body=again&AccountSid=AC1";
	struct json_object	*o, *fields, *p;
	char			*resp;

	resp = post("/api/dev/echo-form", FORM_CT, f, strlen(f), NULL, NULL, NULL);
	ck_assert_int_eq(tu_resp_status(resp), 200);
	o = tu_resp_body(resp);
	ck_assert(json_object_object_get_ex(o, "fields", &fields));
	ck_assert_uint_eq(json_object_array_length(fields), 4);
	p = json_object_array_get_idx(fields, 0);
	ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(p, 0)), "To");
	ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(p, 1)), "+15005550006");
	p = json_object_array_get_idx(fields, 2);
	ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(p, 1)), "again");
	json_object_put(o);
	free(resp);
	expect_error(post("/api/dev/echo-form", FORM_CT, "a=%zz", 5, NULL, NULL, NULL),
	    400, "invalid_form");
	expect_error(post("/api/dev/echo-form", FORM_CT, "a=%ff", 5, NULL, NULL, NULL),
	    400, "invalid_form");
	expect_error(post("/api/dev/echo-form", JSON_CT, "{}", 2, NULL, NULL, NULL),
	    415, "unsupported_media_type");
}
END_TEST

START_TEST(query_and_ids)
{
	char	*resp;

	expect_error(post("/api/dev/echo?x=%zz", JSON_CT, "{}", 2, NULL, NULL, NULL),
	    400, "invalid_query");
	/* A sane incoming request id is kept; an insane one replaced. */
	resp = post("/api/dev/echo", JSON_CT, "{}", 2, NULL, "HTTP_X_REQUEST_ID=trace-42", NULL);
	ck_assert(strstr(resp, "\r\nX-Request-Id: trace-42\r\n") != NULL);
	free(resp);
	resp = post("/api/dev/echo", JSON_CT, "{}", 2, NULL,
	    "HTTP_X_REQUEST_ID=a b\r\nSet-Cookie: x=1", NULL);
	ck_assert(strstr(resp, "Set-Cookie") == NULL);
	ck_assert(strstr(resp, "X-Request-Id: a b") == NULL);
	free(resp);
	/* The envelope carries the request id. */
	resp = post("/api/nope", JSON_CT, "{}", 2, NULL, "HTTP_X_REQUEST_ID=rid-7", NULL);
	ck_assert(strstr(resp, "\"request_id\":\"rid-7\"") != NULL);
	free(resp);
}
END_TEST

START_TEST(envelope)
{
	struct nf_req		 r;
	struct nf_error		 e;
	char			*resp;
	char *const		 env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/x", NULL };
	struct json_object	*o;

	nf_req_init(&r, &app, env, NULL, NULL);
	nf_error_set(&e, NF_ESTORE, "sqlite_busy", "secret_field",
	    "SQL error near 'SELECT password FROM agents'");
	nf_resp_error(&r, NF_ESTORE, &e);
	resp = tu_resp_text(&r);
	ck_assert_int_eq(tu_resp_status(resp), 500);
	ck_assert(strstr(resp, "SELECT") == NULL);
	ck_assert(strstr(resp, "sqlite_busy") == NULL);
	ck_assert(strstr(resp, "secret_field") == NULL);
	o = tu_resp_body(resp);
	ck_assert_str_eq(tu_resp_error(o, "code"), "internal_error");
	json_object_put(o);
	free(resp);
	/* Field is included for client errors; headers never take CR/LF. */
	nf_error_set(&e, NF_EINVAL, "invalid_field", "phone", "phone must be E.164");
	nf_resp_error(&r, NF_EINVAL, &e);
	ck_assert_int_eq(nf_resp_header(&r, "X-Test", "a\r\nSet-Cookie: x"), -1);
	ck_assert_int_eq(nf_resp_header(&r, "X-Bad\n", "a"), -1);
	ck_assert_int_eq(nf_resp_header(&r, "X-Good", "yes"), 0);
	resp = tu_resp_text(&r);
	ck_assert_int_eq(tu_resp_status(resp), 400);
	ck_assert(strstr(resp, "Set-Cookie") == NULL);
	ck_assert(strstr(resp, "\r\nX-Good: yes\r\n") != NULL);
	o = tu_resp_body(resp);
	ck_assert_str_eq(tu_resp_error(o, "field"), "phone");
	json_object_put(o);
	free(resp);
	nf_req_cleanup(&r);
	nf_req_cleanup(NULL);
}
END_TEST

/* The Retry-After header line of a raw response, or NULL. */
static const char *
retry_after_of(const char *resp)
{
	const char	*h = strstr(resp, "\r\nRetry-After: ");

	return h != NULL && h < strstr(resp, "\r\n\r\n") ? h + 2 : NULL;
}

/* Every 503 and 429 carries Retry-After (battery 57, issue 2 item 9). */
START_TEST(retry_after)
{
	char *const	 env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/x", NULL };
	char *const	 kv[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/api/dev/kv", NULL };
	struct nf_req	 r;
	struct nf_error	 e;
	char		*resp;
	const char	*h;

	/* Redis is unreachable here: the router's 503 gets the default. */
	resp = tu_req_run(&app, kv, NULL);
	ck_assert_int_eq(tu_resp_status(resp), 503);
	ck_assert_ptr_nonnull(strstr(resp, "redis_unavailable"));
	ck_assert_ptr_nonnull(h = retry_after_of(resp));
	ck_assert(strncmp(h, "Retry-After: 2\r\n", 16) == 0);
	free(resp);

	/* A rate limit's remaining window, rounded up to whole seconds. */
	nf_req_init(&r, &app, env, NULL, NULL);
	nf_resp_retry_after(&r, 1500);
	nf_error_set(&e, NF_ERATE, "rate_limited", NULL, "slow down");
	nf_resp_error(&r, NF_ERATE, &e);
	resp = tu_resp_text(&r);
	ck_assert_int_eq(tu_resp_status(resp), 429);
	ck_assert(strncmp(retry_after_of(resp), "Retry-After: 2\r\n", 16) == 0);
	free(resp);
	nf_req_cleanup(&r);

	/* A handler's own header is not doubled; a 503 set directly (health)
	 * gets one too; other statuses never do. */
	nf_req_init(&r, &app, env, NULL, NULL);
	ck_assert_int_eq(nf_resp_header(&r, "retry-after", "7"), 0);
	nf_resp_empty(&r, 503);
	resp = tu_resp_text(&r);
	ck_assert_ptr_null(retry_after_of(resp));
	ck_assert_ptr_nonnull(strstr(resp, "\r\nretry-after: 7\r\n"));
	free(resp);
	nf_req_cleanup(&r);
	nf_req_init(&r, &app, env, NULL, NULL);
	nf_resp_retry_after(&r, 400);
	nf_resp_empty(&r, 503);
	resp = tu_resp_text(&r);
	ck_assert(strncmp(retry_after_of(resp), "Retry-After: 1\r\n", 16) == 0);
	free(resp);
	nf_resp_empty(&r, 200);
	resp = tu_resp_text(&r);
	ck_assert_ptr_null(retry_after_of(resp));
	free(resp);
	nf_req_cleanup(&r);
}
END_TEST

START_TEST(params_and_headers)
{
	char *const	 env[] = { "REQUEST_METHOD=GET", "HTTP_X_TENANT_ID=tenant2",
	    "DOCUMENT_URI=/a/b", "QUERY_STRING=q=1", "HTTP_X_TENANT_IDX=no", NULL };
	struct nf_req	 r;

	nf_req_init(&r, &app, env, NULL, NULL);
	ck_assert_str_eq(nf_req_header(&r, "X-Tenant-Id"), "tenant2");
	ck_assert_str_eq(nf_req_header(&r, "x-tenant-id"), "tenant2");
	ck_assert_ptr_null(nf_req_header(&r, "X-Tenant"));
	ck_assert_str_eq(r.path, "/a/b");
	ck_assert_str_eq(r.query_string, "q=1");
	ck_assert_int_eq(r.method, NF_GET);
	nf_req_cleanup(&r);
	ck_assert_int_eq(nf_method_parse("PATCH"), NF_PATCH);
	ck_assert_int_eq(nf_method_parse("get"), NF_METHOD__MAX);
	ck_assert_int_eq(nf_method_parse(NULL), NF_METHOD__MAX);
	ck_assert_str_eq(nf_method_name(NF_OPTIONS), "OPTIONS");
}
END_TEST

int
main(void)
{
	TCase	*tc;
	Suite	*s = tu_suite("req", &tc);

	setenv("NONFLEX_DEV_ROUTES", "1", 1);
	unsetenv("NONFLEX_BODY_MAX");

	tcase_add_test(tc, content_types);
	tcase_add_test(tc, form_decoding);
	tcase_add_test(tc, form_errors);
	tcase_add_test(tc, request_ids);
	tcase_add_test(tc, json_bodies);
	tcase_add_test(tc, caps_and_lengths);
	tcase_add_test(tc, form_bodies);
	tcase_add_test(tc, query_and_ids);
	tcase_add_test(tc, envelope);
	tcase_add_test(tc, params_and_headers);
	tcase_add_test(tc, retry_after);
	return tu_app_run(&app, "t_req", s);
}
