/*
 * t_cors.c - unit tests for the web-chat widget's origin rules (cors.h):
 * which strings are origins a tenant may list, how the tenants file's
 * webchat.allowedOrigins is read (a bad entry refuses the whole file,
 * an unset ${ENV} entry is left out), and that a tenant admits exactly
 * its own origins.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cors.h"
#include "nonflex.h"
#include "tenant.h"
#include "testutil.h"

START_TEST(valid_origins)
{
	static const char *const good[] = {
		"https://shop.example", "http://localhost", "http://127.0.0.1:8080",
		"https://a-b.c.example:443", "http://[::1]:5173", "https://x:65535",
	};
	size_t	 i;

	for (i = 0; i < NF_ARRAY_LEN(good); i++)
		ck_assert_msg(nf_cors_valid_origin(good[i]), "%s", good[i]);
}
END_TEST

START_TEST(invalid_origins)
{
	static const char *const bad[] = {
		"", "*", "null", "shop.example", "ftp://shop.example", "https://",
		"https://shop.example/", "https://shop.example/path", "https://Shop.example",
		"https://shop.example:0", "https://shop.example:65536", "https://shop.example:080",
		"https://shop.example:", "https://user@shop.example", "https://.shop.example",
		"https://shop..example", "https://shop.example.", "https://[]", "https://[::1",
		"https://shop.example ", "https://*.shop.example", "HTTPS://shop.example",
	};
	size_t	 i;

	ck_assert_int_eq(nf_cors_valid_origin(NULL), 0);
	for (i = 0; i < NF_ARRAY_LEN(bad); i++)
		ck_assert_msg(!nf_cors_valid_origin(bad[i]), "%s", bad[i]);
}
END_TEST

START_TEST(embed_paths)
{
	ck_assert(nf_cors_embed_path("/api/webchat/sessions"));
	ck_assert(nf_cors_embed_path("/api/webchat/messages"));
	ck_assert(!nf_cors_embed_path("/api/webchat"));
	ck_assert(!nf_cors_embed_path("/api/conversations"));
	ck_assert(!nf_cors_embed_path("/api/events/webchat-x"));
	ck_assert(!nf_cors_embed_path(NULL));
}
END_TEST

static struct nf_tenants *
parse(const char *text, struct nf_error *e)
{
	struct nf_tenants	*t = NULL;

	nf_error_clear(e);
	if (nf_tenants_parse(text, strlen(text), &t, e) != NF_OK)
		return NULL;
	return t;
}

START_TEST(tenant_origins)
{
	struct nf_tenants	*t;
	const struct nf_tenant	*a, *b;
	struct nf_error		 e;

	setenv("T_CORS_SITE", "https://site.example:8443", 1);
	unsetenv("T_CORS_UNSET");
	t = parse("{\"a\":{\"webchat\":{\"allowedOrigins\":[\"https://shop.example\","
	    "\"${T_CORS_SITE}\",\"${T_CORS_UNSET}\"]}},\"b\":{}}", &e);
	ck_assert_msg(t != NULL, "%s", e.message);
	a = nf_tenant_find(t, "a");
	b = nf_tenant_find(t, "b");
	ck_assert_uint_eq(a->webchat.nallowed_origins, 2);
	ck_assert(nf_cors_tenant_allows(a, "https://shop.example"));
	ck_assert(nf_cors_tenant_allows(a, "https://site.example:8443"));
	/* Exact match only: another scheme, port or a prefix is another site. */
	ck_assert(!nf_cors_tenant_allows(a, "http://shop.example"));
	ck_assert(!nf_cors_tenant_allows(a, "https://shop.example:444"));
	ck_assert(!nf_cors_tenant_allows(a, "https://shop.example.evil.test"));
	ck_assert(!nf_cors_tenant_allows(a, NULL));
	/* Another tenant's list is not this one's. */
	ck_assert(!nf_cors_tenant_allows(b, "https://shop.example"));
	ck_assert(!nf_cors_tenant_allows(NULL, "https://shop.example"));
	/* Secrets never appear, and the origins are not secret but not
	 * needed by the SPA either: the public view has no webchat. */
	ck_assert_ptr_null(strstr(a->public_json, "shop.example"));
	nf_tenants_free(t);
	unsetenv("T_CORS_SITE");
}
END_TEST

START_TEST(tenant_origins_invalid)
{
	static const char *const bad[] = {
		"{\"a\":{\"webchat\":[]}}",
		"{\"a\":{\"webchat\":{\"allowedOrigins\":\"https://shop.example\"}}}",
		"{\"a\":{\"webchat\":{\"allowedOrigins\":[\"*\"]}}}",
		"{\"a\":{\"webchat\":{\"allowedOrigins\":[\"https://shop.example/\"]}}}",
		"{\"a\":{\"webchat\":{\"allowedOrigins\":[\"https://ok.example\",5]}}}",
	};
	struct nf_tenants	*t;
	struct nf_error		 e;
	size_t			 i;

	for (i = 0; i < NF_ARRAY_LEN(bad); i++) {
		t = parse(bad[i], &e);
		ck_assert_msg(t == NULL, "accepted %s", bad[i]);
		ck_assert_str_eq(e.code, "invalid_tenants");
		ck_assert_msg(strstr(e.message, "webchat") != NULL, "%s", e.message);
	}
}
END_TEST

START_TEST(tenant_origins_too_many)
{
	struct nf_tenants	*t;
	struct nf_error		 e;
	char			*text = NULL, *p;
	size_t			 i, cap = 64 + (NF_CORS_ORIGINS_MAX + 1) * 32;

	p = text = malloc(cap);
	ck_assert_ptr_nonnull(text);
	p += sprintf(p, "{\"a\":{\"webchat\":{\"allowedOrigins\":[");
	for (i = 0; i <= NF_CORS_ORIGINS_MAX; i++)
		p += sprintf(p, "%s\"https://s%zu.example\"", i ? "," : "", i);
	sprintf(p, "]}}}");
	t = parse(text, &e);
	ck_assert_ptr_null(t);
	ck_assert_msg(strstr(e.message, "at most") != NULL, "%s", e.message);
	free(text);
}
END_TEST

int
main(void)
{
	TCase	*tc;
	Suite	*s = tu_suite("cors", &tc);

	tcase_add_test(tc, valid_origins);
	tcase_add_test(tc, invalid_origins);
	tcase_add_test(tc, embed_paths);
	tcase_add_test(tc, tenant_origins);
	tcase_add_test(tc, tenant_origins_invalid);
	tcase_add_test(tc, tenant_origins_too_many);
	return tu_run(s);
}
