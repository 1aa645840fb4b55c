/*
 * t_router.c - unit tests for router.c: pure matching (literals, :params,
 * HEAD as GET, 404 and 405 with Allow, dev rows, the path policy for "//",
 * trailing '/', "." and "..", %2F, very long paths) and the pipeline on the
 * real route table run without FastCGI (404/405 envelopes, OPTIONS
 * preflight with and without an allowed origin).
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "fakereq.h"
#include "nonflex.h"
#include "req.h"
#include "router.h"
#include "testutil.h"

static enum nf_err
h_dummy(struct nf_req *r, struct nf_error *e)
{
	(void)e;
	nf_resp_empty(r, 204);
	return NF_OK;
}

static const struct nf_route table[] = {
	{ NF_GET, "/api/items", h_dummy, NF_ROLE_NONE, NF_BODY_NONE, 0, 0 },
	{ NF_POST, "/api/items", h_dummy, NF_ROLE_NONE, NF_BODY_JSON, 0, 0 },
	{ NF_GET, "/api/items/special", h_dummy, NF_ROLE_NONE, NF_BODY_NONE, 0, 0 },
	{ NF_GET, "/api/items/:id", h_dummy, NF_ROLE_NONE, NF_BODY_NONE, 0, 0 },
	{ NF_DELETE, "/api/items/:id", h_dummy, NF_ROLE_NONE, NF_BODY_NONE, 0, 0 },
	{ NF_GET, "/api/items/:id/orders/:order", h_dummy, NF_ROLE_NONE, NF_BODY_NONE, 0, 0 },
	{ NF_POST, "/api/dev/x", h_dummy, NF_ROLE_NONE, NF_BODY_NONE, 0, NF_ROUTE_DEV },
};

static enum nf_match
match(enum nf_method m, const char *path, const struct nf_route **rt, struct nf_pairs *p,
    char *allow, size_t allowsz)
{
	return nf_router_match(table, NF_ARRAY_LEN(table), 0, m, path, rt, p, allow, allowsz);
}

START_TEST(literal_and_params)
{
	const struct nf_route	*rt;
	struct nf_pairs		 p = { 0 };
	char			 allow[64];

	ck_assert_int_eq(match(NF_GET, "/api/items", &rt, &p, allow, sizeof(allow)), NF_MATCH_OK);
	ck_assert_ptr_eq(rt, &table[0]);
	ck_assert_str_eq(allow, "GET, HEAD, POST, OPTIONS");
	ck_assert_int_eq(match(NF_POST, "/api/items", &rt, &p, NULL, 0), NF_MATCH_OK);
	ck_assert_ptr_eq(rt, &table[1]);
	/* A literal row listed first wins over a :param row. */
	ck_assert_int_eq(match(NF_GET, "/api/items/special", &rt, &p, NULL, 0), NF_MATCH_OK);
	ck_assert_ptr_eq(rt, &table[2]);
	ck_assert_uint_eq(p.n, 0);
	ck_assert_int_eq(match(NF_GET, "/api/items/abc", &rt, &p, NULL, 0), NF_MATCH_OK);
	ck_assert_ptr_eq(rt, &table[3]);
	ck_assert_str_eq(nf_pairs_get(&p, "id"), "abc");
	nf_pairs_cleanup(&p);
	ck_assert_int_eq(match(NF_GET, "/api/items/a%20b/orders/7", &rt, &p, NULL, 0),
	    NF_MATCH_OK);
	ck_assert_ptr_eq(rt, &table[5]);
	ck_assert_str_eq(nf_pairs_get(&p, "id"), "a b");
	ck_assert_str_eq(nf_pairs_get(&p, "order"), "7");
	nf_pairs_cleanup(&p);
	/* %2F decodes inside the value; it is not a separator. */
	ck_assert_int_eq(match(NF_GET, "/api/items/a%2Fb", &rt, &p, NULL, 0), NF_MATCH_OK);
	ck_assert_str_eq(nf_pairs_get(&p, "id"), "a/b");
	nf_pairs_cleanup(&p);
}
END_TEST

START_TEST(head_and_405)
{
	const struct nf_route	*rt;
	char			 allow[64];

	ck_assert_int_eq(match(NF_HEAD, "/api/items/x", &rt, NULL, allow, sizeof(allow)),
	    NF_MATCH_OK);
	ck_assert_ptr_eq(rt, &table[3]);
	ck_assert_int_eq(match(NF_PUT, "/api/items/x", &rt, NULL, allow, sizeof(allow)),
	    NF_MATCH_METHOD);
	ck_assert_ptr_null(rt);
	ck_assert_str_eq(allow, "GET, HEAD, DELETE, OPTIONS");
	ck_assert_int_eq(match(NF_METHOD__MAX, "/api/items", &rt, NULL, allow, sizeof(allow)),
	    NF_MATCH_METHOD);
	ck_assert_int_eq(match(NF_DELETE, "/api/items", &rt, NULL, allow, sizeof(allow)),
	    NF_MATCH_METHOD);
	ck_assert_str_eq(allow, "GET, HEAD, POST, OPTIONS");
	/* A tiny buffer is truncated, never overflowed. */
	ck_assert_int_eq(match(NF_PUT, "/api/items", &rt, NULL, allow, 6), NF_MATCH_METHOD);
	ck_assert_uint_lt(strlen(allow), 6);
}
END_TEST

START_TEST(path_policy)
{
	static const char *const nomatch[] = {
		"", "/", "api/items", "/api/items/", "//api/items", "/api//items",
		"/api/items/.", "/api/items/..", "/api/items/../items", "/api/./items",
		"/API/items", "/api/%69tems", "/api/items/%", "/api/items/%zz",
		"/api/items/%00", "/api/items/%ff", "/api/items/%C0%AF", "/api/items?x=1",
		"/api/items/a/b/c", "/api/items/x/orders/", "/api/nothing",
	};
	const struct nf_route	*rt;
	struct nf_pairs		 p = { 0 };
	char			*lng;
	size_t			 i;

	for (i = 0; i < NF_ARRAY_LEN(nomatch); i++)
		ck_assert_msg(match(NF_GET, nomatch[i], &rt, &p, NULL, 0) == NF_MATCH_NOPATH,
		    "should not match \"%s\"", nomatch[i]);
	ck_assert_uint_eq(p.n, 0);
	ck_assert_int_eq(match(NF_GET, NULL, &rt, &p, NULL, 0), NF_MATCH_NOPATH);
	/* Very long paths: a long :param value is fine below the cap... */
	lng = nf_xmalloc(NF_PATH_MAX + 100);
	strcpy(lng, "/api/items/");
	memset(lng + 11, 'a', NF_PATH_MAX - 11);
	lng[NF_PATH_MAX] = '\0';
	ck_assert_int_eq(match(NF_GET, lng, &rt, &p, NULL, 0), NF_MATCH_OK);
	nf_pairs_cleanup(&p);
	/* ...and one byte over never matches. */
	strcat(lng, "a");
	ck_assert_int_eq(match(NF_GET, lng, &rt, &p, NULL, 0), NF_MATCH_NOPATH);
	/* Too many segments. */
	strcpy(lng, "/api");
	for (i = 0; i < 40; i++)
		strcat(lng, "/x");
	ck_assert_int_eq(match(NF_GET, lng, &rt, &p, NULL, 0), NF_MATCH_NOPATH);
	free(lng);
}
END_TEST

START_TEST(dev_rows)
{
	const struct nf_route	*rt;

	ck_assert_int_eq(match(NF_POST, "/api/dev/x", &rt, NULL, NULL, 0), NF_MATCH_NOPATH);
	ck_assert_int_eq(nf_router_match(table, NF_ARRAY_LEN(table), 1, NF_POST, "/api/dev/x",
	    &rt, NULL, NULL, 0), NF_MATCH_OK);
	ck_assert_ptr_eq(rt, &table[6]);
}
END_TEST

/* ---- pipeline on the real route table ---- */

static struct nf_app	app;

/* Run one request; returns the raw response (caller frees). */
static char *
run(char *const *env)
{
	return tu_req_run(&app, env, NULL);
}

/* An error envelope, with the fixed security headers. */
static void
check_error(const char *resp, const char *code)
{
	tu_check_error(resp, code);
	ck_assert(strstr(resp, "X-Content-Type-Options: nosniff\r\n") != NULL);
	ck_assert(strstr(resp, "Cache-Control: no-store\r\n") != NULL);
	ck_assert(strstr(resp, "X-Request-Id: ") != NULL);
}

START_TEST(pipeline_404_405)
{
	char *const	 e404[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/api/nope?x=1", NULL };
	char *const	 e405[] = { "REQUEST_METHOD=DELETE", "REQUEST_URI=/api/health", NULL };
	char *const	 eodd[] = { "REQUEST_METHOD=BREW", "REQUEST_URI=/api/health", NULL };
	char *const	 edev[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/api/dev/echo", NULL };
	char		*resp;

	resp = run(e404);
	ck_assert(strncmp(resp, "Status: 404 ", 12) == 0);
	check_error(resp, "route_not_found");
	free(resp);
	resp = run(e405);
	ck_assert(strncmp(resp, "Status: 405 ", 12) == 0);
	ck_assert(strstr(resp, "\r\nAllow: GET, HEAD, OPTIONS\r\n") != NULL);
	check_error(resp, "method_not_allowed");
	free(resp);
	resp = run(eodd);
	ck_assert(strncmp(resp, "Status: 405 ", 12) == 0);
	free(resp);
	/* Dev routes are absent unless NONFLEX_DEV_ROUTES=1. */
	resp = run(edev);
	ck_assert(strncmp(resp, "Status: 404 ", 12) == 0);
	free(resp);
}
END_TEST

START_TEST(pipeline_head)
{
	char *const	 get[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/api/tenants/current", NULL };
	char *const	 head[] = { "REQUEST_METHOD=HEAD", "REQUEST_URI=/api/tenants/current", NULL };
	char		*g, *h, *cl;

	g = run(get);
	h = run(head);
	ck_assert(strncmp(h, "Status: 200 ", 12) == 0);
	/* Same Content-Length as GET, no body. */
	cl = strstr(g, "Content-Length: ");
	ck_assert_ptr_nonnull(cl);
	ck_assert(strncmp(strstr(h, "Content-Length: "), cl, 20) == 0);
	ck_assert_str_eq(strstr(h, "\r\n\r\n"), "\r\n\r\n");
	free(g);
	free(h);
}
END_TEST

START_TEST(pipeline_cors)
{
	char *const	 good[] = { "REQUEST_METHOD=OPTIONS", "REQUEST_URI=/api/tenants/current",
	    "HTTP_ORIGIN=https://app.example.com", NULL };
	char *const	 bad[] = { "REQUEST_METHOD=OPTIONS", "REQUEST_URI=/api/tenants/current",
	    "HTTP_ORIGIN=https://evil.example.com", NULL };
	char *const	 nopath[] = { "REQUEST_METHOD=OPTIONS", "REQUEST_URI=/api/none",
	    "HTTP_ORIGIN=https://app.example.com", NULL };
	char *const	 get[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/api/tenants/current",
	    "HTTP_ORIGIN=https://app.example.com", NULL };
	char		*resp;

	resp = run(good);
	ck_assert(strncmp(resp, "Status: 204 ", 12) == 0);
	ck_assert(strstr(resp, "Access-Control-Allow-Origin: https://app.example.com\r\n"));
	ck_assert(strstr(resp, "Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n"));
	ck_assert(strstr(resp, "Allow: GET, HEAD, OPTIONS\r\n"));
	free(resp);
	resp = run(bad);
	ck_assert(strncmp(resp, "Status: 204 ", 12) == 0);
	ck_assert(strstr(resp, "Access-Control-Allow-Origin") == NULL);
	ck_assert(strstr(resp, "Access-Control-Allow-Methods") == NULL);
	free(resp);
	resp = run(nopath);
	ck_assert(strncmp(resp, "Status: 404 ", 12) == 0);
	free(resp);
	resp = run(get);
	ck_assert(strncmp(resp, "Status: 200 ", 12) == 0);
	ck_assert(strstr(resp, "Access-Control-Allow-Origin: https://app.example.com\r\n"));
	ck_assert(strstr(resp, "Vary: Origin\r\n"));
	free(resp);
}
END_TEST

int
main(void)
{
	TCase	*tc;
	Suite	*s = tu_suite("router", &tc);

	setenv("CLIENT_URL", "https://app.example.com/, http://localhost:5173", 1);
	setenv("NONFLEX_DEV_ROUTES", "0", 1);

	tcase_add_test(tc, literal_and_params);
	tcase_add_test(tc, head_and_405);
	tcase_add_test(tc, path_policy);
	tcase_add_test(tc, dev_rows);
	tcase_add_test(tc, pipeline_404_405);
	tcase_add_test(tc, pipeline_head);
	tcase_add_test(tc, pipeline_cors);
	return tu_app_run(&app, "t_router", s);
}
