/*
 * t_tenant.c - unit tests for tenant.c: loading the shipped file, ${ENV}
 * references, process-environment defaults, invalid files, every step of
 * the resolution order and its errors, and a public view that contains no
 * secret (checked by searching the serialized JSON for each secret value).
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

/* By path: a plain "config.h" here is the generated autoconf header. */
#include "config.h"   /* fcgi/config.h: the settings module */
#include "json.h"
#include "nonflex.h"
#include "tenant.h"
#include "testutil.h"

static const char *const env_names[] = {
	"TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET",
	"OPENAI_API_KEY", "CRM_BASE_URL", "CRM_API_KEY", "T_SECRET", "T_EMPTY",
	"TENANT1_TWILIO_AUTH_TOKEN", "TENANT1_OPENAI_API_KEY", "TENANT1_API_KEY",
	"TENANT1_CRM_API_KEY", "TENANT1_CRM_BASE_URL", "TENANT1_TWILIO_API_SECRET",
};

static void
clean_env(void)
{
	size_t	 i;

	for (i = 0; i < NF_ARRAY_LEN(env_names); i++)
		unsetenv(env_names[i]);
}

static struct nf_tenants *
parse_ok(const char *text)
{
	struct nf_tenants	*t = NULL;
	struct nf_error		 e;

	nf_error_clear(&e);
	ck_assert_msg(nf_tenants_parse(text, strlen(text), &t, &e) == NF_OK, "%s", e.message);
	return t;
}

START_TEST(shipped_file)
{
	struct nf_tenants	*t = NULL;
	const struct nf_tenant	*a, *b;
	struct nf_error		 e;

	clean_env();
	ck_assert_int_eq(nf_tenants_load(TOP_SRCDIR "/infra/tenants.json", &t, &e), NF_OK);
	ck_assert_uint_eq(t->n, 2);
	a = nf_tenant_find(t, "tenant1");
	b = nf_tenant_find(t, "tenant2");
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_str_eq(a->name, "Acme Retail");
	ck_assert_str_eq(a->ai.language, "en");
	ck_assert_str_eq(b->ai.language, "es");
	ck_assert_str_eq(a->ai.model, "gpt-4o-mini");
	ck_assert_str_eq(a->twilio.workspace_sid, "WS00000000000000000000000000000001");
	/* Secrets are ${ENV} references: unset means absent. */
	ck_assert_ptr_null(a->twilio.auth_token);
	ck_assert_ptr_null(a->ai.openai_api_key);
	ck_assert_ptr_null(nf_tenant_find(t, "tenant3"));
	ck_assert_ptr_eq(nf_tenant_find_by_account_sid(t, "AC00000000000000000000000000000002"), b);
	nf_tenants_free(t);
	ck_assert_int_eq(nf_tenants_load("/nonexistent/tenants.json", &t, &e), NF_ENOTFOUND);
	ck_assert_ptr_null(t);
	nf_tenants_free(NULL);
}
END_TEST

START_TEST(env_refs_and_defaults)
{
	struct nf_tenants	*t;
	const struct nf_tenant	*a;

	clean_env();
	setenv("T_SECRET", "tok-123", 1);
	setenv("T_EMPTY", "", 1);
	setenv("TWILIO_API_SECRET", "proc-secret", 1);
	setenv("OPENAI_API_KEY", "sk-proc", 1);
	setenv("CRM_BASE_URL", "https://crm.example.com", 1);
	t = parse_ok("{\"t1\":{\"id\":\"t1\",\"name\":\"${UNSET_VAR_XYZ}\","
	    "\"twilio\":{\"authToken\":\"${T_SECRET}\",\"apiSecret\":\"${T_EMPTY}\"},"
	    "\"ai\":{\"openaiApiKey\":\"own-key\",\"model\":\"m\"},\"crm\":{}}}");
	a = nf_tenant_find(t, "t1");
	ck_assert_ptr_null(a->name);                       /* unset -> absent */
	ck_assert_str_eq(a->twilio.auth_token, "tok-123"); /* ${ENV} */
	ck_assert_str_eq(a->twilio.api_secret, "proc-secret"); /* empty -> process default */
	ck_assert_str_eq(a->ai.openai_api_key, "own-key"); /* own value wins */
	ck_assert_str_eq(a->crm.base_url, "https://crm.example.com");
	ck_assert_ptr_null(a->crm.api_key);
	nf_tenants_free(t);
	clean_env();
}
END_TEST

START_TEST(invalid_files)
{
	static const char *const bad[] = {
		"", "[]", "{}", "{\"t1\":1}", "{\"T1\":{}}", "{\"t1\":{\"id\":\"t2\"}}",
		"{\"t1\":{\"name\":5}}", "{\"t1\":{\"twilio\":[]}}",
		"{\"t1\":{\"twilio\":{\"accountSid\":\"XX1\"}}}",
		"{\"t1\":{\"twilio\":{\"workspaceSid\":\"WW00000000000000000000000000000001\"}}}",
		"{\"t1\":{\"twilio\":{\"voiceNumber\":\"555-1234\"}}}",
		"{\"t1\":{\"crm\":{\"baseUrl\":\"ftp://x\"}}}",
		"{\"t1\":{},\"t1\":{}}", "{\"t1\":{}", "{\"bad id\":{}}",
	};
	struct nf_tenants	*t = NULL;
	struct nf_error		 e;
	const char		*bad1;
	size_t			 i;

	clean_env();
	for (i = 0; i < NF_ARRAY_LEN(bad); i++) {
		nf_error_clear(&e);
		ck_assert_msg(nf_tenants_parse(bad[i], strlen(bad[i]), &t, &e) == NF_EINVAL,
		    "should refuse %s", bad[i]);
		ck_assert_ptr_null(t);
		ck_assert_str_eq(e.code, "invalid_tenants");
		ck_assert(e.message[0] != '\0');
	}
	/* A bad secret value is reported without quoting it. */
	setenv("T_SECRET", "AB-not-a-sid-but-secret-looking", 1);
	bad1 = "{\"t1\":{\"twilio\":{\"apiKey\":\"${T_SECRET}\"}}}";
	ck_assert_int_eq(nf_tenants_parse(bad1, strlen(bad1), &t, &e), NF_EINVAL);
	ck_assert_str_eq(e.field, "apiKey");
	ck_assert(strstr(e.message, "secret-looking") == NULL);
	clean_env();
}
END_TEST

static const char *tenants2 =
    "{\"acme\":{\"twilio\":{\"accountSid\":\"AC11111111111111111111111111111111\"}},"
    "\"beta\":{\"twilio\":{\"accountSid\":\"AC22222222222222222222222222222222\"}},"
    "\"tenant1\":{}}";

static enum nf_err
resolve(const struct nf_tenants *t, const char *host, const char *hdr, const char *path,
    const char *sid, const char *def, const char **id, struct nf_error *e)
{
	struct nf_tenant_hints	 h = { host, hdr, path, sid, def };
	const struct nf_tenant	*out = (const struct nf_tenant *)1;
	enum nf_err		 rc;

	nf_error_clear(e);
	rc = nf_tenant_resolve(t, &h, &out, e);
	*id = out != NULL ? out->id : NULL;
	if (rc != NF_OK)
		ck_assert_ptr_null(out);
	return rc;
}

START_TEST(resolution)
{
	struct nf_tenants	*t;
	struct nf_error		 e;
	const char		*id;

	clean_env();
	t = parse_ok(tenants2);
	/* 1. Host label. */
	ck_assert_int_eq(resolve(t, "acme.example.com", "beta", "/api/x", NULL, "tenant1", &id,
	    &e), NF_OK);
	ck_assert_str_eq(id, "acme");
	ck_assert_int_eq(resolve(t, "BETA.example.com:8443", NULL, "/api/x", NULL, "tenant1",
	    &id, &e), NF_OK);
	ck_assert_str_eq(id, "beta");
	ck_assert_int_eq(resolve(t, "beta:8080", NULL, "/", NULL, "tenant1", &id, &e), NF_OK);
	ck_assert_str_eq(id, "beta");
	/* localhost / IPs / unknown labels fall through. */
	ck_assert_int_eq(resolve(t, "localhost:8080", NULL, "/api/x", NULL, "tenant1", &id, &e),
	    NF_OK);
	ck_assert_str_eq(id, "tenant1");
	ck_assert_int_eq(resolve(t, "127.0.0.1", "beta", "/api/x", NULL, "tenant1", &id, &e),
	    NF_OK);
	ck_assert_str_eq(id, "beta");
	/* 2. X-Tenant-Id: malformed 400, unknown 404. */
	ck_assert_int_eq(resolve(t, NULL, "Bad Id", "/api/x", NULL, "tenant1", &id, &e),
	    NF_EINVAL);
	ck_assert_str_eq(e.code, "invalid_tenant_id");
	ck_assert_int_eq(resolve(t, NULL, "", "/api/x", NULL, "tenant1", &id, &e), NF_EINVAL);
	ck_assert_int_eq(resolve(t, NULL, "../acme", "/api/x", NULL, "tenant1", &id, &e),
	    NF_EINVAL);
	ck_assert_int_eq(resolve(t, NULL, "nosuch", "/api/x", NULL, "tenant1", &id, &e),
	    NF_ENOTFOUND);
	ck_assert_str_eq(e.code, "tenant_not_found");
	ck_assert_int_eq(nf_err_status(NF_ENOTFOUND), 404);
	/* 3. AccountSid, only on /webhooks/ paths. */
	ck_assert_int_eq(resolve(t, NULL, NULL, "/webhooks/twilio/voice",
	    "AC22222222222222222222222222222222", "tenant1", &id, &e), NF_OK);
	ck_assert_str_eq(id, "beta");
	ck_assert_int_eq(resolve(t, NULL, NULL, "/api/x",
	    "AC22222222222222222222222222222222", "tenant1", &id, &e), NF_OK);
	ck_assert_str_eq(id, "tenant1");
	ck_assert_int_eq(resolve(t, NULL, NULL, "/webhooks/twilio/voice",
	    "AC99999999999999999999999999999999", "tenant1", &id, &e), NF_OK);
	ck_assert_str_eq(id, "tenant1");
	/* 4. Default, and an unknown default. */
	ck_assert_int_eq(resolve(t, NULL, NULL, NULL, NULL, "acme", &id, &e), NF_OK);
	ck_assert_str_eq(id, "acme");
	ck_assert_int_eq(resolve(t, NULL, NULL, NULL, NULL, "gone", &id, &e), NF_ENOTFOUND);
	ck_assert_str_eq(e.code, "tenant_not_found");
	ck_assert_int_eq(resolve(t, NULL, NULL, NULL, NULL, NULL, &id, &e), NF_ENOTFOUND);
	ck_assert_int_eq(resolve(NULL, "acme.x", "acme", NULL, NULL, "acme", &id, &e),
	    NF_ENOTFOUND);
	nf_tenants_free(t);
}
END_TEST

START_TEST(public_view)
{
	static const char *const secrets[] = {
		"S3cret-auth-token", "S3cret-api-secret", "sk-S3cret-openai",
		"S3cret-crm-key", "S3cret-tenant-key", "SK33333333333333333333333333333333",
	};
	struct nf_tenants	*t;
	const struct nf_tenant	*a;
	struct json_object	*o, *sec, *v;
	const char		*s;
	size_t			 i;

	clean_env();
	t = parse_ok("{\"t1\":{\"id\":\"t1\",\"name\":\"One\",\"apiKey\":\"S3cret-tenant-key\","
	    "\"twilio\":{\"accountSid\":\"AC33333333333333333333333333333333\","
	    "\"authToken\":\"S3cret-auth-token\",\"apiKey\":\"SK33333333333333333333333333333333\","
	    "\"apiSecret\":\"S3cret-api-secret\",\"voiceNumber\":\"+15005550006\"},"
	    "\"ai\":{\"openaiApiKey\":\"sk-S3cret-openai\",\"model\":\"gpt-4o-mini\","
	    "\"language\":\"es\"},"
	    "\"crm\":{\"baseUrl\":\"https://crm.example.com\",\"apiKey\":\"S3cret-crm-key\"}},"
	    "\"t2\":{}}");
	a = nf_tenant_find(t, "t1");
	for (i = 0; i < NF_ARRAY_LEN(secrets); i++)
		ck_assert_msg(strstr(a->public_json, secrets[i]) == NULL, "leaked %s", secrets[i]);
	o = nf_tenant_public_json(a);
	s = nf_json_str(o, NULL);
	ck_assert_str_eq(s, a->public_json);
	for (i = 0; i < NF_ARRAY_LEN(secrets); i++)
		ck_assert(strstr(s, secrets[i]) == NULL);
	ck_assert(json_object_object_get_ex(o, "name", &v));
	ck_assert_str_eq(json_object_get_string(v), "One");
	ck_assert(json_object_object_get_ex(o, "twilio", &sec));
	ck_assert(json_object_object_get_ex(sec, "configured", &v));
	ck_assert(json_object_get_boolean(v));
	ck_assert(json_object_object_get_ex(sec, "voiceNumber", &v));
	ck_assert_str_eq(json_object_get_string(v), "+15005550006");
	ck_assert(!json_object_object_get_ex(sec, "authToken", NULL));
	ck_assert(json_object_object_get_ex(o, "ai", &sec));
	ck_assert(json_object_object_get_ex(sec, "configured", &v));
	ck_assert(json_object_get_boolean(v));
	ck_assert(json_object_object_get_ex(sec, "language", &v));
	ck_assert_str_eq(json_object_get_string(v), "es");
	ck_assert(json_object_object_get_ex(o, "crm", &sec));
	ck_assert(json_object_object_get_ex(sec, "baseUrl", &v));
	ck_assert(!json_object_object_get_ex(o, "apiKey", NULL));
	json_object_put(o);
	/* Nothing configured: every flag false. */
	o = nf_tenant_public_json(nf_tenant_find(t, "t2"));
	ck_assert(json_object_object_get_ex(o, "twilio", &sec));
	ck_assert(json_object_object_get_ex(sec, "configured", &v));
	ck_assert(!json_object_get_boolean(v));
	json_object_put(o);
	nf_tenants_free(t);
}
END_TEST

/* Config: the table's bounds, the CORS allowlist and check-config's list. */
START_TEST(config_table)
{
	struct nf_config	 c;
	struct nf_error		 e;
	struct json_object	*p;
	const char		*s;

	unsetenv("NONFLEX_BODY_MAX");
	unsetenv("STORE_URI");
	unsetenv("MONGO_URI");
	setenv("MONGO_URL", "mongodb://db.example:27017/nonflex", 1);
	setenv("CLIENT_URL", "https://a.example.com/, http://localhost:5173", 1);
	setenv("NONFLEX_DEV_ROUTES", "yes", 1);
	setenv("JWT_SECRET", "jwt-S3cret-value", 1);
	ck_assert_int_eq(nf_config_load(&c, &e), NF_OK);
	ck_assert_int_eq(c.body_max, 65536);
	ck_assert_int_eq(c.redis_timeout_ms, 500);
	ck_assert_int_eq(c.dev_routes, 1);
	ck_assert_str_eq(c.store_uri, "mongodb://db.example:27017/nonflex");
	ck_assert(nf_config_origin_allowed(&c, "https://a.example.com"));
	ck_assert(nf_config_origin_allowed(&c, "http://localhost:5173"));
	ck_assert(!nf_config_origin_allowed(&c, "https://a.example.com.evil"));
	ck_assert(!nf_config_origin_allowed(&c, "https://evil.example.com"));
	ck_assert(!nf_config_origin_allowed(&c, ""));
	ck_assert(!nf_config_origin_allowed(&c, NULL));
	nf_config_cleanup(&c);
	unsetenv("MONGO_URL");
	setenv("NONFLEX_BODY_MAX", "100", 1);
	ck_assert_int_eq(nf_config_load(&c, &e), NF_EINVAL);
	ck_assert_str_eq(e.field, "NONFLEX_BODY_MAX");
	setenv("NONFLEX_BODY_MAX", "16777217", 1);
	ck_assert_int_eq(nf_config_load(&c, &e), NF_EINVAL);
	setenv("NONFLEX_BODY_MAX", "1048576", 1);
	setenv("NONFLEX_LOG_LEVEL", "loud", 1);
	ck_assert_int_eq(nf_config_load(&c, &e), NF_EINVAL);
	ck_assert_str_eq(e.field, "NONFLEX_LOG_LEVEL");
	/* check-config lists every problem and never a secret value. */
	setenv("TENANTS_FILE", "/nonexistent/tenants.json", 1);
	setenv("REDIS_URL", "http://x", 1);
	p = nf_config_problems();
	s = json_object_to_json_string(p);
	ck_assert_msg(json_object_array_length(p) >= 2, "%s", s);
	ck_assert(strstr(s, "NONFLEX_LOG_LEVEL") != NULL);
	ck_assert(strstr(s, "jwt-S3cret") == NULL);
	json_object_put(p);
	unsetenv("NONFLEX_LOG_LEVEL");
	setenv("TENANTS_FILE", TOP_SRCDIR "/infra/tenants.json", 1);
	setenv("REDIS_URL", "redis://127.0.0.1:6379", 1);
	setenv("JWT_SECRET", "0123456789abcdef0123456789abcdef", 1);
	setenv("STORE_URI", "sqlite:///tmp/x.db", 1);
	p = nf_config_problems();
	ck_assert_msg(json_object_array_length(p) == 0, "%s", json_object_to_json_string(p));
	json_object_put(p);
	setenv("DEFAULT_TENANT", "tenant9", 1);
	p = nf_config_problems();
	ck_assert_uint_eq(json_object_array_length(p), 1);
	json_object_put(p);
	unsetenv("DEFAULT_TENANT");
	/* The spool: absolute, and a directory we may write (or to be made). */
	setenv("NONFLEX_SPOOL_DIR", "var/spool", 1);
	p = nf_config_problems();
	ck_assert_msg(strstr(json_object_to_json_string(p), "NONFLEX_SPOOL_DIR") != NULL, "%s",
	    json_object_to_json_string(p));
	json_object_put(p);
	setenv("NONFLEX_SPOOL_DIR", TOP_BUILDDIR, 1);
	p = nf_config_problems();
	ck_assert_msg(json_object_array_length(p) == 0, "%s", json_object_to_json_string(p));
	json_object_put(p);
	unsetenv("NONFLEX_SPOOL_DIR");
	ck_assert_int_eq(nf_config_log_level("WARN"), 2);
	ck_assert_int_eq(nf_config_log_level("x"), -1);
}
END_TEST

int
main(void)
{
	TCase	*tc;
	Suite	*s = tu_suite("tenant", &tc);

	tcase_add_test(tc, shipped_file);
	tcase_add_test(tc, env_refs_and_defaults);
	tcase_add_test(tc, invalid_files);
	tcase_add_test(tc, resolution);
	tcase_add_test(tc, public_view);
	tcase_add_test(tc, config_table);
	return tu_run(s);
}
