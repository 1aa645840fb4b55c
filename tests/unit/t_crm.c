/*
 * t_crm.c - unit tests for crm.c: the mapping of CRM contacts and orders
 * (flat, nested, mixed, garbage, missing id), URL building with
 * percent-encoding, the cache key's shape, and the cache in front of the
 * CRM against a private redis-server (a hit is served without the CRM, a
 * tenant never reads another's entry, a tenant with cacheTtlS 0 never
 * reads the cache, Redis down is only a miss), and crm.cacheTtlS in the
 * tenants file.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "app.h"
#include "crm.h"
#include "json.h"
#include "kv.h"
#include "nonflex.h"
#include "tenant.h"
#include "testutil.h"

static char	*redis_url;

static struct json_object *
parse(const char *text)
{
	struct json_object	*o = NULL;
	struct nf_error		 e;

	ck_assert_msg(nf_json_parse(text, strlen(text), &o, &e) == NF_OK, "%s: %s", text,
	    e.message);
	return o;
}

/* The string at a dotted path of o ("profile.firstName"), or NULL. */
static const char *
at(struct json_object *o, const char *path)
{
	char		 buf[128], *tok, *save = NULL;
	struct json_object	*v = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok != NULL; tok = strtok_r(NULL, ".", &save)) {
		if (json_object_is_type(v, json_type_array))
			v = json_object_array_get_idx(v, (size_t)atoi(tok));
		else if (!json_object_object_get_ex(v, tok, &v))
			return NULL;
		if (v == NULL)
			return NULL;
	}
	return json_object_is_type(v, json_type_null) ? NULL : json_object_get_string(v);
}

static size_t
len_at(struct json_object *o, const char *key)
{
	struct json_object	*v;

	ck_assert(json_object_object_get_ex(o, key, &v));
	ck_assert(json_object_is_type(v, json_type_array));
	return json_object_array_length(v);
}

/* Map text and check the fields every customer must have. */
static struct json_object *
map_ok(const char *text)
{
	struct json_object	*in = parse(text), *out;

	out = nf_crm_map_customer(in);
	json_object_put(in);
	ck_assert_msg(out != NULL, "not mapped: %s", text);
	len_at(out, "phones");
	len_at(out, "addresses");
	len_at(out, "orders");
	return out;
}

START_TEST(map_flat)
{
	struct json_object	*c = map_ok("{\"external_id\":\"CRM-ED-1002\",\"first_name\":"
	    "\"Emily\",\"last_name\":\"Davis\",\"email\":\"emily@example.com\",\"phone\":"
	    "\"15555555678\",\"language\":\"es\",\"tier\":\"silver\",\"notes\":\"n\","
	    "\"addresses\":[{\"city\":\"Austin\",\"zip\":\"73301\"}],\"orders\":"
	    "[{\"id\":42,\"status\":\"paid\",\"total\":\"19.50\",\"currency\":\"USD\","
	    "\"items\":[{\"sku\":\"A\",\"name\":\"Mug\",\"qty\":2,\"price\":9.75}]}]}");

	ck_assert_str_eq(at(c, "externalId"), "CRM-ED-1002");
	ck_assert_str_eq(at(c, "profile.firstName"), "Emily");
	ck_assert_str_eq(at(c, "profile.lastName"), "Davis");
	ck_assert_str_eq(at(c, "profile.email"), "emily@example.com");
	ck_assert_str_eq(at(c, "profile.phone"), "+15555555678");
	ck_assert_str_eq(at(c, "phones.0"), "+15555555678");
	ck_assert_uint_eq(len_at(c, "phones"), 1);
	ck_assert_str_eq(at(c, "language"), "es");
	ck_assert_str_eq(at(c, "tier"), "silver");
	ck_assert_str_eq(at(c, "addresses.0.city"), "Austin");
	ck_assert_str_eq(at(c, "orders.0.orderId"), "42");
	ck_assert_str_eq(at(c, "orders.0.items.0.sku"), "A");
	ck_assert_str_eq(at(c, "orders.0.items.0.qty"), "2");
	ck_assert(strncmp(at(c, "orders.0.total"), "19.5", 4) == 0);
	json_object_put(c);
}
END_TEST

START_TEST(map_nested)
{
	struct json_object	*c = map_ok("{\"id\":\"CRM-MJ-1001\",\"name\":{\"first\":"
	    "\"Michael\",\"last\":\"Johnson\"},\"contact\":{\"email\":\"mj@example.com\","
	    "\"phone\":\"+1 (555) 555-1234\"},\"phones\":[{\"number\":\"555.555.1234\"},"
	    "{\"number\":\"+44 20 7946 0958\"},\"not a phone\",{\"x\":1},7]}");

	ck_assert_str_eq(at(c, "externalId"), "CRM-MJ-1001");
	ck_assert_str_eq(at(c, "profile.firstName"), "Michael");
	ck_assert_str_eq(at(c, "profile.lastName"), "Johnson");
	ck_assert_str_eq(at(c, "profile.email"), "mj@example.com");
	ck_assert_str_eq(at(c, "profile.phone"), "+15555551234");
	/* normalized, deduplicated, junk dropped */
	ck_assert_uint_eq(len_at(c, "phones"), 2);
	ck_assert_str_eq(at(c, "phones.0"), "+15555551234");
	ck_assert_str_eq(at(c, "phones.1"), "+442079460958");
	ck_assert_ptr_null(at(c, "language"));
	json_object_put(c);

	/* profile{} as the original stored it, phones[] of strings */
	c = map_ok("{\"externalId\":\"E1\",\"profile\":{\"firstName\":\"Ana\",\"lastName\":"
	    "\"Lima\",\"email\":\"ana@example.com\",\"phone\":\"+5511987654321\"},"
	    "\"phones\":[\"+5511987654321\",\"+15550001111\"]}");
	ck_assert_str_eq(at(c, "profile.firstName"), "Ana");
	ck_assert_str_eq(at(c, "profile.phone"), "+5511987654321");
	ck_assert_uint_eq(len_at(c, "phones"), 2);
	json_object_put(c);
}
END_TEST

START_TEST(map_mixed)
{
	/* profile{} wins over flat, flat over name{}; numeric ids become text */
	struct json_object	*c = map_ok("{\"id\":1234,\"profile\":{\"firstName\":\"P\"},"
	    "\"firstName\":\"F\",\"last_name\":\"L\",\"name\":{\"first\":\"N\",\"last\":\"M\"},"
	    "\"contact\":{\"email\":\"c@example.com\"},\"phones\":[\"+15555550000\"],"
	    "\"tier\":5,\"addresses\":\"nope\",\"orders\":[{\"status\":\"no id\"}]}");

	ck_assert_str_eq(at(c, "externalId"), "1234");
	ck_assert_str_eq(at(c, "profile.firstName"), "P");
	ck_assert_str_eq(at(c, "profile.lastName"), "L");
	ck_assert_str_eq(at(c, "profile.email"), "c@example.com");
	ck_assert_str_eq(at(c, "profile.phone"), "+15555550000");
	ck_assert_ptr_null(at(c, "tier"));              /* wrong type: dropped */
	ck_assert_uint_eq(len_at(c, "addresses"), 0);
	ck_assert_uint_eq(len_at(c, "orders"), 0);      /* an order needs an id */
	json_object_put(c);
}
END_TEST

START_TEST(map_rejects)
{
	static const char *const bad[] = {
		"[]", "\"Michael\"", "42", "{}", "{\"firstName\":\"No Id\"}",
		"{\"id\":\"\"}", "{\"id\":{\"x\":1}}", "{\"id\":[1]}", "{\"id\":true}",
	};
	struct json_object	*in, *out;
	size_t			 i;

	ck_assert_ptr_null(nf_crm_map_customer(NULL));
	ck_assert_ptr_null(nf_crm_map_order(NULL));
	for (i = 0; i < NF_ARRAY_LEN(bad); i++) {
		in = parse(bad[i]);
		out = nf_crm_map_customer(in);
		ck_assert_msg(out == NULL, "mapped: %s", bad[i]);
		ck_assert_msg(nf_crm_map_order(in) == NULL, "order mapped: %s", bad[i]);
		json_object_put(in);
	}
}
END_TEST

START_TEST(map_order)
{
	struct json_object	*in = parse("{\"orderId\":\"ORD-1000\",\"customer_id\":\"C1\","
	    "\"status\":\"shipped\",\"total\":129.9,\"currency\":\"USD\",\"secret\":\"x\","
	    "\"items\":[{\"sku\":\"S\",\"name\":\"Headphones\",\"quantity\":1,\"price\":\"129.90\"},"
	    "\"junk\"]}"), *o;

	o = nf_crm_map_order(in);
	json_object_put(in);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(at(o, "orderId"), "ORD-1000");
	ck_assert_str_eq(at(o, "customerId"), "C1");
	ck_assert_str_eq(at(o, "status"), "shipped");
	ck_assert_str_eq(at(o, "currency"), "USD");
	ck_assert_uint_eq(len_at(o, "items"), 1);
	ck_assert_str_eq(at(o, "items.0.qty"), "1");
	ck_assert(strncmp(at(o, "items.0.price"), "129.9", 5) == 0);
	ck_assert_ptr_null(at(o, "secret"));            /* only known fields */
	json_object_put(o);
}
END_TEST

START_TEST(urls)
{
	static const struct {
		const char	*base;
		enum nf_crm_kind kind;
		const char	*key;
		const char	*url;
	} cases[] = {
		{ "https://crm.example.com", NF_CRM_BY_PHONE, "+15555551234",
		    "https://crm.example.com/contacts/phone/%2B15555551234" },
		{ "https://crm.example.com/api/v1/", NF_CRM_BY_ID, "CRM-MJ_1001.a~b",
		    "https://crm.example.com/api/v1/contacts/CRM-MJ_1001.a~b" },
		{ "http://127.0.0.1:8080//", NF_CRM_ORDER, "ORD/../1000?x=1#f",
		    "http://127.0.0.1:8080/orders/ORD%2F..%2F1000%3Fx%3D1%23f" },
		{ "https://c", NF_CRM_BY_ID, "a b%\xc3\xa9",
		    "https://c/contacts/a%20b%25%C3%A9" },
	};
	char	 longkey[NF_CRM_KEY_MAX + 2];
	char	*u;
	size_t	 i;

	for (i = 0; i < NF_ARRAY_LEN(cases); i++) {
		u = nf_crm_url(cases[i].base, cases[i].kind, cases[i].key);
		ck_assert_ptr_nonnull(u);
		ck_assert_str_eq(u, cases[i].url);
		free(u);
	}
	memset(longkey, 'a', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	ck_assert_ptr_null(nf_crm_url("https://c", NF_CRM_BY_ID, longkey));
	ck_assert_ptr_null(nf_crm_url("https://c", NF_CRM_BY_ID, ""));
	ck_assert_ptr_null(nf_crm_url("https://c", NF_CRM_BY_ID, "\xff"));
	ck_assert_ptr_null(nf_crm_url(NULL, NF_CRM_BY_ID, "a"));
	ck_assert_ptr_null(nf_crm_url("https://c", (enum nf_crm_kind)7, "a"));
}
END_TEST

START_TEST(cache_keys)
{
	char	*k;

	k = nf_crm_cache_key("tenant1", NF_CRM_BY_PHONE, "+15555551234");
	ck_assert_str_eq(k, "nf:tenant1:crm:phone:+15555551234");
	free(k);
	k = nf_crm_cache_key("tenant2", NF_CRM_BY_ID, "CRM-1");
	ck_assert_str_eq(k, "nf:tenant2:crm:id:CRM-1");
	free(k);
	k = nf_crm_cache_key("tenant1", NF_CRM_ORDER, "ORD-1000");
	ck_assert_str_eq(k, "nf:tenant1:crm:order:ORD-1000");
	free(k);
	/* no key that could collide with or escape the namespace */
	ck_assert_ptr_null(nf_crm_cache_key("tenant1", NF_CRM_BY_ID, "a b"));
	ck_assert_ptr_null(nf_crm_cache_key("tenant1", NF_CRM_BY_ID, "a\r\nb"));
	ck_assert_ptr_null(nf_crm_cache_key("tenant1", NF_CRM_BY_ID, ""));
	ck_assert_ptr_null(nf_crm_cache_key("ten:ant", NF_CRM_BY_ID, "x"));
	ck_assert_ptr_null(nf_crm_cache_key(NULL, NF_CRM_BY_ID, "x"));
}
END_TEST

/* An app with the default settings, a CRM on a closed port and Redis. */
static void
app_setup(struct nf_app *app, const char *url)
{
	struct nf_error	 e;

	memset(app, 0, sizeof(*app));
	ck_assert_int_eq(nf_config_load(&app->cfg, &e), NF_OK);
	app->cfg.crm_connect_timeout_ms = 200;
	app->cfg.crm_timeout_ms = 300;
	app->cfg.crm_allow_private = 1;
	ck_assert_int_eq(nf_kv_open(url, 300, &app->kv, &e), NF_OK);
}

static void
app_teardown(struct nf_app *app)
{
	nf_kv_free(app->kv);
	nf_config_cleanup(&app->cfg);
}

static void
tenant_setup(struct nf_tenant *t, const char *id, int64_t ttl)
{
	memset(t, 0, sizeof(*t));
	t->id = (char *)(uintptr_t)id;
	t->crm.base_url = (char *)(uintptr_t)"http://127.0.0.1:9";   /* closed */
	t->crm.api_key = (char *)(uintptr_t)"unit-test-key";
	t->crm.cache_ttl_s = ttl;
}

START_TEST(cache_in_front)
{
	struct nf_app		 app;
	struct nf_tenant	 t1, t2, t3;
	struct json_object	*out = NULL;
	struct nf_error		 e;
	int			 cached = -1;
	enum nf_err		 rc;

	app_setup(&app, redis_url);
	tenant_setup(&t1, "tenant1", -1);
	tenant_setup(&t2, "tenant2", 60);
	tenant_setup(&t3, "tenant1", 0);
	ck_assert_int_eq(nf_kv_command(app.kv, NULL, &e, "SET %s %s EX 60",
	    "nf:tenant1:crm:phone:+15555551234",
	    "{\"externalId\":\"CACHED\",\"profile\":{},\"phones\":[]}"), NF_OK);

	/* a hit, found by any spelling of the number, without the CRM */
	rc = nf_crm_get(&app, &t1, NF_CRM_BY_PHONE, "+1 (555) 555-1234", &out, &cached, &e);
	ck_assert_msg(rc == NF_OK, "%s", e.message);
	ck_assert_int_eq(cached, 1);
	ck_assert_str_eq(at(out, "externalId"), "CACHED");
	json_object_put(out);

	/* tenant2 never reads tenant1's entry: it asks its CRM (closed) */
	rc = nf_crm_get(&app, &t2, NF_CRM_BY_PHONE, "+15555551234", &out, &cached, &e);
	ck_assert_int_eq(rc, NF_EUNAVAIL);
	ck_assert_str_eq(e.code, "crm_unavailable");
	ck_assert_int_eq(cached, 0);
	ck_assert_ptr_null(out);

	/* cacheTtlS 0: no cache at all */
	rc = nf_crm_get(&app, &t3, NF_CRM_BY_PHONE, "+15555551234", &out, &cached, &e);
	ck_assert_int_eq(rc, NF_EUNAVAIL);
	ck_assert_int_eq(cached, 0);

	/* an unreadable entry is a miss, not an answer */
	ck_assert_int_eq(nf_kv_command(app.kv, NULL, &e, "SET %s %s EX 60",
	    "nf:tenant1:crm:id:BROKEN", "{not json"), NF_OK);
	rc = nf_crm_get(&app, &t1, NF_CRM_BY_ID, "BROKEN", &out, &cached, &e);
	ck_assert_int_eq(rc, NF_EUNAVAIL);
	ck_assert_ptr_null(out);

	/* bad input and no CRM */
	rc = nf_crm_get(&app, &t1, NF_CRM_BY_PHONE, "call me", &out, &cached, &e);
	ck_assert_int_eq(rc, NF_EINVAL);
	ck_assert_str_eq(e.code, "invalid_phone");
	t1.crm.base_url = NULL;
	rc = nf_crm_get(&app, &t1, NF_CRM_BY_ID, "X", &out, &cached, &e);
	ck_assert_int_eq(rc, NF_EINVAL);
	ck_assert_str_eq(e.code, "crm_not_configured");
	app_teardown(&app);
}
END_TEST

START_TEST(redis_down_is_a_miss)
{
	struct nf_app		 app;
	struct nf_tenant	 t;
	struct json_object	*out = NULL;
	struct nf_error		 e;
	int			 cached = -1;
	char			*url;

	url = nf_xasprintf("redis://127.0.0.1:%d", tu_free_port());
	app_setup(&app, url);
	tenant_setup(&t, "tenant1", 60);
	ck_assert_int_eq(nf_crm_get(&app, &t, NF_CRM_ORDER, "ORD-1", &out, &cached, &e),
	    NF_EUNAVAIL);
	ck_assert_str_eq(e.code, "crm_unavailable");   /* the CRM was asked */
	ck_assert_int_eq(cached, 0);
	app_teardown(&app);
	free(url);
}
END_TEST

/* crm.cacheTtlS in the tenants file: optional, integer 0..86400. */
START_TEST(tenant_cache_ttl)
{
	static const char *const bad[] = { "-1", "86401", "\"60\"", "1.5", "true" };
	struct nf_tenants	*ts = NULL;
	struct nf_error		 e;
	char			*text;
	size_t			 i;
	const char		*ok = "{\"a\":{\"crm\":{\"baseUrl\":\"https://crm.example.com\","
	    "\"cacheTtlS\":30}},\"b\":{\"crm\":{}},\"c\":{\"crm\":{\"cacheTtlS\":0}}}";

	ck_assert_int_eq(nf_tenants_parse(ok, strlen(ok), &ts, &e), NF_OK);
	ck_assert_int_eq(nf_tenant_find(ts, "a")->crm.cache_ttl_s, 30);
	ck_assert_int_eq(nf_tenant_find(ts, "b")->crm.cache_ttl_s, -1);
	ck_assert_int_eq(nf_tenant_find(ts, "c")->crm.cache_ttl_s, 0);
	nf_tenants_free(ts);
	for (i = 0; i < NF_ARRAY_LEN(bad); i++) {
		text = nf_xasprintf("{\"a\":{\"crm\":{\"cacheTtlS\":%s}}}", bad[i]);
		ts = NULL;
		ck_assert_msg(nf_tenants_parse(text, strlen(text), &ts, &e) == NF_EINVAL,
		    "accepted %s", bad[i]);
		ck_assert_str_eq(e.field, "cacheTtlS");
		ck_assert_ptr_null(ts);
		free(text);
	}
}
END_TEST

static Suite *
make(void)
{
	TCase	*tc;
	Suite	*s = tu_suite("crm", &tc);

	tcase_add_test(tc, map_flat);
	tcase_add_test(tc, map_nested);
	tcase_add_test(tc, map_mixed);
	tcase_add_test(tc, map_rejects);
	tcase_add_test(tc, map_order);
	tcase_add_test(tc, urls);
	tcase_add_test(tc, cache_keys);
	tcase_add_test(tc, cache_in_front);
	tcase_add_test(tc, redis_down_is_a_miss);
	tcase_add_test(tc, tenant_cache_ttl);
	return s;
}

int
main(void)
{
	return tu_main_redis(make, &redis_url);
}
