/*
 * t_customers.c - the customers module (customers.c) without the HTTP
 * layer: phone normalization by table, validation of customer, order and
 * ticket bodies (the field named, nothing stored), search filters, and
 * that migrate and the demo seed are idempotent.  Each test gets a fresh
 * in-memory SQLite store.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "customers.h"
#include "json.h"
#include "nonflex.h"
#include "store.h"
#include "testutil.h"

#define T1 "tenant1"
#define T2 "tenant2"

static struct nf_store	*S;

static struct json_object *
J(const char *s)
{
	struct json_object	*o = json_tokener_parse(s);

	ck_assert_msg(o != NULL, "bad test JSON: %s", s);
	return o;
}

static void
setup(void)
{
	struct nf_error	 e;

	ck_assert_int_eq(nf_store_open("sqlite://:memory:", &S, &e), NF_OK);
	ck_assert_int_eq(nf_customers_migrate(S, &e), NF_OK);
}

static void
teardown(void)
{
	nf_store_free(S);
	S = NULL;
}

static int64_t
count(const char *tenant, const char *coll, const char *filter)
{
	struct json_object	*f = J(filter);
	struct nf_error		 e;
	int64_t			 n = -1;

	ck_assert_int_eq(nf_store_count(S, tenant, coll, f, &n, &e), NF_OK);
	json_object_put(f);
	return n;
}

static const char *
str_at(struct json_object *o, const char *a, const char *b)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, a, &v))
		return NULL;
	if (b != NULL && !json_object_object_get_ex(v, b, &v))
		return NULL;
	return json_object_get_string(v);
}

static const char *michael = "{\"externalId\":\"CUST-1\",\"profile\":{\"firstName\":"
    "\"Michael\",\"lastName\":\"Johnson\",\"email\":\"mj@example.com\","
    "\"phone\":\"(555) 555-1234\"},\"phones\":[\"+1 555 555 0100\",\"15555550100\"],"
    "\"language\":\"en\",\"tier\":\"gold\"}";

static void
create(const char *tenant, const char *body)
{
	struct json_object	*b = J(body), *out = NULL;
	struct nf_error		 e;
	enum nf_err		 rc;

	rc = nf_customers_create(S, tenant, "1", b, &out, &e);
	ck_assert_msg(rc == NF_OK, "create %s: %s %s", body, e.code, e.message);
	json_object_put(out);
	json_object_put(b);
}

/* ---- phones --------------------------------------------------------- */

START_TEST(t_phone_table)
{
	static const struct { const char *in, *cc, *want; } ok[] = {
		{ "+1 (555) 555-1234", "1", "+15555551234" },
		{ "15555551234", "1", "+15555551234" },
		{ "+15555551234", "1", "+15555551234" },
		{ "555-555-1234", "1", "+15555551234" },
		{ "(555) 555.1234", "1", "+15555551234" },
		{ "001 555 555 1234", "1", "+15555551234" },
		{ "0034 612 345 678", "1", "+34612345678" },
		{ "612 345 678", "34", "+34612345678" },
		{ "34612345678", "34", "+34612345678" },
		{ "5555551234", NULL, "+15555551234" },          /* default "1" */
	};
	static const char *const bad[] = { "", "abc", "555-CALL-NOW", "+", "++15555551234",
		"1555+5551234", "+0 555 555 1234", "123456", "+1234567890123456",
		"5555555555555555", "00", "+1 555 555 1234 ext 5", "555\n5551234", NULL };
	char		 out[NF_PHONE_MAX + 1];
	struct nf_error	 e;
	size_t		 i;

	for (i = 0; i < NF_ARRAY_LEN(ok); i++) {
		ck_assert_msg(nf_phone_e164(ok[i].in, ok[i].cc, out, &e) == NF_OK,
		    "%s refused: %s", ok[i].in, e.message);
		ck_assert_str_eq(out, ok[i].want);
	}
	for (i = 0; bad[i] != NULL; i++) {
		nf_error_clear(&e);
		ck_assert_msg(nf_phone_e164(bad[i], "1", out, &e) == NF_EINVAL,
		    "%s accepted as %s", bad[i], out);
		ck_assert_str_eq(e.code, "invalid_phone");
		ck_assert_str_eq(e.field, "phone");
	}
	ck_assert_int_eq(nf_phone_e164(NULL, "1", out, &e), NF_EINVAL);
}
END_TEST

/* ---- customers ------------------------------------------------------ */

START_TEST(t_customer_validation)
{
	static const struct { const char *body, *code, *field; } cases[] = {
		{ "{\"profile\":{\"firstName\":\"A\"}}", "missing_field", "externalId" },
		{ "{\"externalId\":\"bad id\",\"profile\":{\"firstName\":\"A\"}}",
		  "invalid_field", "externalId" },
		{ "{\"externalId\":\"x\"}", "missing_field", "profile" },
		{ "{\"externalId\":\"x\",\"profile\":{}}", "missing_field",
		  "profile.firstName" },
		{ "{\"externalId\":\"x\",\"profile\":{\"firstName\":\"A\",\"email\":\"no\"}}",
		  "invalid_field", "profile.email" },
		{ "{\"externalId\":\"x\",\"profile\":{\"firstName\":\"A\",\"phone\":\"12\"}}",
		  "invalid_phone", "profile.phone" },
		{ "{\"externalId\":\"x\",\"profile\":{\"firstName\":\"A\",\"age\":3}}",
		  "unknown_field", "profile.age" },
		{ "{\"externalId\":\"x\",\"profile\":{\"firstName\":\"A\"},"
		  "\"phones\":[\"+15555551234\",\"nope\"]}", "invalid_phone", "phones[1]" },
		{ "{\"externalId\":\"x\",\"profile\":{\"firstName\":\"A\"},\"language\":\"EN!\"}",
		  "invalid_field", "language" },
		{ "{\"externalId\":\"x\",\"profile\":{\"firstName\":\"A\"},\"tier\":\"Gold Plus\"}",
		  "invalid_field", "tier" },
		{ "{\"externalId\":\"x\",\"profile\":{\"firstName\":\"A\"},"
		  "\"addresses\":[{\"city\":\"X\",\"planet\":\"Mars\"}]}", "unknown_field",
		  "addresses[0].planet" },
		{ "{\"externalId\":\"x\",\"profile\":{\"firstName\":\"A\"},\"tenant\":\"t2\"}",
		  "immutable_field", "tenant" },
		{ "{\"externalId\":\"x\",\"profile\":{\"firstName\":\"A\"},\"_id\":\"1\"}",
		  "immutable_field", "_id" },
		{ "{\"externalId\":\"x\",\"profile\":{\"firstName\":\"A\"},"
		  "\"createdAt\":\"2020\"}", "immutable_field", "createdAt" },
		{ "{\"externalId\":\"x\",\"profile\":{\"firstName\":\"A\"},\"vip\":true}",
		  "unknown_field", "vip" },
	};
	struct json_object	*b, *out;
	struct nf_error		 e;
	size_t			 i;

	for (i = 0; i < NF_ARRAY_LEN(cases); i++) {
		b = J(cases[i].body);
		out = NULL;
		nf_error_clear(&e);
		ck_assert_msg(nf_customers_create(S, T1, "1", b, &out, &e) == NF_EINVAL,
		    "accepted: %s", cases[i].body);
		ck_assert_msg(strcmp(e.code, cases[i].code) == 0 &&
		    strcmp(e.field, cases[i].field) == 0, "%s: got %s/%s", cases[i].body,
		    e.code, e.field);
		ck_assert_ptr_null(out);
		json_object_put(b);
	}
	ck_assert_int_eq(count(T1, "customers", "{}"), 0);
}
END_TEST

START_TEST(t_customer_create_update)
{
	struct json_object	*b, *out = NULL, *fields = NULL, *f;
	struct nf_error		 e;
	enum nf_err		 rc;

	create(T1, michael);
	/* Stored normalized and deduplicated. */
	ck_assert_int_eq(count(T1, "customers", "{\"profile.phone\":\"+15555551234\"}"), 1);
	ck_assert_int_eq(count(T1, "customers", "{\"phones\":\"+15555550100\"}"), 1);
	b = J(michael);
	ck_assert_int_eq(nf_customers_create(S, T1, "1", b, &out, &e), NF_ECONFLICT);
	ck_assert_str_eq(e.code, "customer_exists");
	json_object_put(b);
	/* The same externalId in another tenant is another customer. */
	create(T2, michael);

	b = J("{\"profile\":{\"lastName\":\"Smith\"},\"tier\":\"silver\"}");
	rc = nf_customers_update(S, T1, "1", "CUST-1", b, &out, &fields, &e);
	ck_assert_msg(rc == NF_OK, "%s", e.message);
	ck_assert_str_eq(str_at(out, "profile", "lastName"), "Smith");
	ck_assert_str_eq(str_at(out, "profile", "firstName"), "Michael");   /* kept */
	ck_assert_str_eq(str_at(out, "tier", NULL), "silver");
	ck_assert_str_eq(json_object_to_json_string(fields), "[ \"profile\", \"tier\" ]");
	json_object_put(out);
	json_object_put(fields);
	json_object_put(b);
	/* Search keys follow the update; tenant2's copy is untouched. */
	ck_assert_int_eq(count(T1, "customers", "{\"searchKeys\":\"michael smith\"}"), 1);
	ck_assert_int_eq(count(T2, "customers", "{\"searchKeys\":\"michael johnson\"}"), 1);

	b = J("{\"externalId\":\"CUST-9\"}");
	ck_assert_int_eq(nf_customers_update(S, T1, "1", "CUST-1", b, &out, NULL, &e),
	    NF_EINVAL);
	ck_assert_str_eq(e.field, "externalId");
	json_object_put(b);
	b = J("{\"tier\":\"bronze\"}");
	ck_assert_int_eq(nf_customers_update(S, T1, "1", "CUST-404", b, &out, NULL, &e),
	    NF_ENOTFOUND);
	ck_assert_str_eq(e.code, "customer_not_found");
	json_object_put(b);
	b = J("{}");
	ck_assert_int_eq(nf_customers_update(S, T1, "1", "CUST-1", b, &out, NULL, &e),
	    NF_EINVAL);
	ck_assert_str_eq(e.code, "empty_update");
	json_object_put(b);

	/* Search: name any case, e-mail, phone in another spelling. */
	{
		static const char *const qs[] = { "MICHAEL", "smith", "Michael Smith",
			"mj@example.com", "555.555.0100", "+1 (555) 555-1234" };
		int64_t	 n;
		size_t	 i;

		for (i = 0; i < NF_ARRAY_LEN(qs); i++) {
			ck_assert_int_eq(nf_customers_search_filter(qs[i], "1", &f, &e), NF_OK);
			ck_assert_int_eq(nf_store_count(S, T1, "customers", f, &n, &e), NF_OK);
			ck_assert_msg(n == 1, "q=%s found %lld", qs[i], (long long)n);
			json_object_put(f);
		}
		ck_assert_int_eq(nf_customers_search_filter("Johnson", "1", &f, &e), NF_OK);
		ck_assert_int_eq(nf_store_count(S, T1, "customers", f, &n, &e), NF_OK);
		ck_assert_int_eq(n, 0);     /* renamed */
		json_object_put(f);
	}
}
END_TEST

/* ---- orders and tickets -------------------------------------------- */

START_TEST(t_order_validation)
{
	static const struct { const char *body, *field; } cases[] = {
		{ "{\"total\":1}", "orderId" },
		{ "{\"orderId\":\"O 1\",\"total\":1}", "orderId" },
		{ "{\"orderId\":\"O1\"}", "total" },
		{ "{\"orderId\":\"O1\",\"total\":-1}", "total" },
		{ "{\"orderId\":\"O1\",\"total\":\"10\"}", "total" },
		{ "{\"orderId\":\"O1\",\"total\":1,\"currency\":\"usd\"}", "currency" },
		{ "{\"orderId\":\"O1\",\"total\":1,\"currency\":\"EURO\"}", "currency" },
		{ "{\"orderId\":\"O1\",\"total\":1,\"status\":\"lost\"}", "status" },
		{ "{\"orderId\":\"O1\",\"total\":1,\"items\":{}}", "items" },
		{ "{\"orderId\":\"O1\",\"total\":1,\"items\":[{\"sku\":\"a\",\"name\":\"b\","
		  "\"qty\":0,\"price\":1}]}", "items[0].qty" },
		{ "{\"orderId\":\"O1\",\"total\":1,\"items\":[{\"sku\":\"a\",\"name\":\"b\","
		  "\"qty\":1.5,\"price\":1}]}", "items[0].qty" },
		{ "{\"orderId\":\"O1\",\"total\":1,\"items\":[{\"sku\":\"a\",\"name\":\"b\","
		  "\"qty\":1,\"price\":1},{\"sku\":\"a\",\"name\":\"b\",\"qty\":1,"
		  "\"price\":-2}]}", "items[1].price" },
		{ "{\"orderId\":\"O1\",\"total\":1,\"items\":[{\"name\":\"b\",\"qty\":1,"
		  "\"price\":1}]}", "items[0].sku" },
		{ "{\"orderId\":\"O1\",\"total\":1,\"customerId\":\"CUST-2\"}", "customerId" },
		{ "{\"orderId\":\"O1\",\"total\":1,\"tenant\":\"tenant2\"}", "tenant" },
	};
	struct json_object	*b, *out;
	struct nf_error		 e;
	size_t			 i;

	for (i = 0; i < NF_ARRAY_LEN(cases); i++) {
		b = J(cases[i].body);
		out = NULL;
		nf_error_clear(&e);
		ck_assert_msg(nf_orders_create(S, T1, "CUST-1", b, &out, &e) == NF_EINVAL,
		    "accepted: %s", cases[i].body);
		ck_assert_msg(strcmp(e.field, cases[i].field) == 0, "%s: field %s",
		    cases[i].body, e.field);
		json_object_put(b);
	}
	ck_assert_int_eq(count(T1, "orders", "{}"), 0);
	b = J("{\"orderId\":\"O1\",\"total\":10.5,\"items\":[{\"sku\":\"a\",\"name\":\"b\","
	    "\"qty\":2,\"price\":5.25}]}");
	ck_assert_int_eq(nf_orders_create(S, T1, "CUST-1", b, &out, &e), NF_OK);
	ck_assert_str_eq(str_at(out, "currency", NULL), "USD");
	ck_assert_str_eq(str_at(out, "status", NULL), "pending");
	json_object_put(out);
	ck_assert_int_eq(nf_orders_create(S, T1, "CUST-1", b, &out, &e), NF_ECONFLICT);
	ck_assert_str_eq(e.code, "order_exists");
	json_object_put(b);
}
END_TEST

static void
counting(const char *tenant, const char *kind, const char *key, int created, void *arg)
{
	int	*n = arg;

	(void)tenant; (void)kind; (void)key;
	n[created ? 1 : 0]++;
}

static struct json_object *
demo(void)
{
	struct json_object	*d = json_object_from_file(TOP_SRCDIR "/infra/seed/demo.json");

	ck_assert_ptr_nonnull(d);
	return d;
}

START_TEST(t_seed_idempotent)
{
	struct json_object	*d = demo();
	struct nf_error		 e;
	int			 n[2] = { 0, 0 };

	ck_assert_int_eq(nf_customers_migrate(S, &e), NF_OK);    /* again */
	ck_assert_int_eq(nf_customers_seed(S, T1, d, counting, n, &e), NF_OK);
	ck_assert_int_eq(n[0], 0);
	ck_assert_int_eq(n[1], 2 + 3 + 2);   /* customers, orders, tickets */
	n[0] = n[1] = 0;
	ck_assert_int_eq(nf_customers_seed(S, T1, d, counting, n, &e), NF_OK);
	ck_assert_int_eq(n[1], 0);
	ck_assert_int_eq(n[0], 7);
	ck_assert_int_eq(count(T1, "customers", "{}"), 2);
	ck_assert_int_eq(count(T1, "orders", "{\"customerId\":\"CUST-1001\"}"), 2);
	ck_assert_int_eq(count(T1, "tickets", "{\"status\":\"open\"}"), 2);
	ck_assert_int_eq(count(T2, "customers", "{}"), 0);
	json_object_put(d);
}
END_TEST

START_TEST(t_ticket_update)
{
	struct json_object	*d = demo(), *b, *out = NULL;
	struct nf_error		 e;
	char			*old = NULL;

	ck_assert_int_eq(nf_customers_seed(S, T1, d, NULL, NULL, &e), NF_OK);
	b = J("{\"status\":\"solved\"}");
	ck_assert_int_eq(nf_tickets_update(S, T1, "CUST-1001", "TKT-1001", b, &out, &old, &e),
	    NF_OK);
	ck_assert_str_eq(old, "open");
	ck_assert_str_eq(str_at(out, "status", NULL), "solved");
	free(old);
	json_object_put(out);
	/* Another customer's ticket, another tenant's: 404. */
	ck_assert_int_eq(nf_tickets_update(S, T1, "CUST-1002", "TKT-1001", b, &out, NULL, &e),
	    NF_ENOTFOUND);
	ck_assert_str_eq(e.code, "ticket_not_found");
	ck_assert_int_eq(nf_tickets_update(S, T2, "CUST-1001", "TKT-1001", b, &out, NULL, &e),
	    NF_ENOTFOUND);
	json_object_put(b);
	b = J("{\"status\":\"done\"}");
	ck_assert_int_eq(nf_tickets_update(S, T1, "CUST-1001", "TKT-1001", b, &out, NULL, &e),
	    NF_EINVAL);
	ck_assert_str_eq(e.field, "status");
	json_object_put(b);
	b = J("{\"subject\":\"x\"}");
	ck_assert_int_eq(nf_tickets_update(S, T1, "CUST-1001", "TKT-1001", b, &out, NULL, &e),
	    NF_EINVAL);
	ck_assert_str_eq(e.field, "subject");
	json_object_put(b);
	ck_assert_int_eq(count(T1, "tickets", "{\"status\":\"solved\"}"), 1);
	json_object_put(d);
}
END_TEST

int
main(void)
{
	TCase	*tc;
	Suite	*s = tu_suite("customers", &tc);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_phone_table);
	tcase_add_test(tc, t_customer_validation);
	tcase_add_test(tc, t_customer_create_update);
	tcase_add_test(tc, t_order_validation);
	tcase_add_test(tc, t_seed_idempotent);
	tcase_add_test(tc, t_ticket_update);
	return tu_run(s);
}
