/*
 * t_json.c - unit tests for json.c: strict parsing (every accepting case
 * has rejecting twins: trailing bytes, duplicate keys at any depth, NUL,
 * invalid UTF-8, depth) and the typed getters.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <check.h>
#include <stdint.h>
#include <string.h>

#include <json-c/json.h>

#include "json.h"
#include "nonflex.h"
#include "testutil.h"

static enum nf_err
parse(const char *s, size_t len, struct json_object **o, struct nf_error *e)
{
	nf_error_clear(e);
	return nf_json_parse(s, len, o, e);
}

static void
accept1(const char *s)
{
	struct json_object	*o = NULL;
	struct nf_error		 e;

	ck_assert_msg(parse(s, strlen(s), &o, &e) == NF_OK, "should accept %s (%s)", s,
	    e.message);
	ck_assert_ptr_nonnull(o);
	json_object_put(o);
}

static void
reject(const char *s, size_t len)
{
	struct json_object	*o = (struct json_object *)1;
	struct nf_error		 e;

	ck_assert_msg(parse(s, len, &o, &e) == NF_EINVAL, "should reject %.*s", (int)len, s);
	ck_assert_ptr_null(o);
	ck_assert_str_eq(e.code, "invalid_json");
	ck_assert(e.message[0] != '\0');
}

#define REJECT(s) reject(s, sizeof(s) - 1)

START_TEST(accepts)
{
	accept1("{}");
	accept1("[]");
	accept1("{\"a\":1,\"b\":[1,2,{\"c\":null}],\"d\":\"x:y\"}");
	accept1(" {\"a\" : true } \n");
	accept1("123");
	accept1("-1.5e3");
	accept1("[1E+2,2e-2,0.5E2,true,false,null]");
	accept1("true");
	accept1("[null]");
	accept1("\"caf\xc3\xa9\"");
	accept1("{\"a\":{\"a\":{\"a\":1}}}");             /* same key, different objects */
	accept1("[{\"a\":1},{\"a\":2}]");
	accept1("{\"k\\\"ey\":1,\"k\\\\ey\":2}");         /* escapes in keys */
	accept1("{\"a\\u0062\":1,\"ac\":2}");
}
END_TEST

START_TEST(rejects)
{
	REJECT("");
	REJECT("{");
	REJECT("{}x");
	REJECT("{} {}");
	REJECT("[1,]");
	REJECT("{\"a\":1,}");
	REJECT("{'a':1}");
	REJECT("{a:1}");
	REJECT("NaN");
	REJECT("nan");
	REJECT("[nan]");
	REJECT("[Infinity]");
	REJECT("[-infinity]");
	REJECT("[1,True]");
	REJECT("[nullx]");
	REJECT("tru");
	REJECT("01");
	REJECT("\"\x01\"");                             /* raw control character */
	REJECT("\"\xff\"");                             /* invalid UTF-8 */
	REJECT("\"\xc0\xaf\"");                         /* overlong */
	REJECT("{\"a\":1}\0");                          /* raw NUL after the value */
	REJECT("{\"a\":\"x\0y\"}");                     /* raw NUL in a string */
	REJECT("\"a\\u0000b\"");                        /* escaped NUL */
	REJECT("{\"a\\u0000b\":1}");                    /* escaped NUL in a key */
	REJECT("/* c */ {}");
	REJECT("null");
	REJECT("[1,'a']");
	REJECT("{\"a\":Infinity}");
	REJECT("{\"a\":-Infinity}");
	REJECT("{\"a\":NaN}");
	REJECT("{\"a\":0x10}");
	REJECT("{\"a\":+1}");
	REJECT("{\"a\":.5}");
	REJECT("[\"a\tb\"]");
	REJECT("\"\\x41\"");
}
END_TEST

START_TEST(duplicates)
{
	REJECT("{\"a\":1,\"a\":2}");
	REJECT("{\"a\":1,\"b\":2,\"a\":1}");
	REJECT("{\"x\":{\"a\":1,\"a\":2}}");
	REJECT("[1,{\"a\":[{\"b\":1,\"b\":1}]}]");
	REJECT("{\"a\":{\"x\":1},\"a\":{\"y\":1,\"z\":2}}");  /* replacement grows a subtree */
	REJECT("{\"a\":1,\"\\u0061\":2}");                    /* same key, escaped */
	REJECT("{\"\":1,\"\":2}");
	REJECT("{\"$gt\":\"\",\"$gt\":1}");
}
END_TEST

START_TEST(depth)
{
	char	 buf[64];
	size_t	 i;

	/* 16 levels are allowed, 17 are not. */
	for (i = 0; i < 16; i++)
		buf[i] = '[';
	for (i = 0; i < 16; i++)
		buf[16 + i] = ']';
	buf[32] = '\0';
	accept1(buf);
	for (i = 0; i < 17; i++)
		buf[i] = '[';
	for (i = 0; i < 17; i++)
		buf[17 + i] = ']';
	reject(buf, 34);
}
END_TEST

static struct json_object *
obj(const char *s)
{
	struct json_object	*o = NULL;
	struct nf_error		 e;

	ck_assert_int_eq(nf_json_parse(s, strlen(s), &o, &e), NF_OK);
	return o;
}

START_TEST(getters)
{
	struct json_object	*o = obj("{\"s\":\"hello\",\"n\":42,\"b\":true,\"big\":"
	    "99999999999999999999,\"neg\":-3,\"nul\":null,\"f\":1.5,\"e\":\"job\","
	    "\"bad\":\"a\\u00e9\"}");
	static const char *const vias[] = { "direct", "job", NULL };
	struct nf_error		 e;
	const char		*s = NULL;
	int64_t			 n = -1;
	int			 b = -1, i = -1;

	ck_assert_int_eq(nf_json_get_string(o, "s", 1, 10, 1, &s, &e), NF_OK);
	ck_assert_str_eq(s, "hello");
	ck_assert_int_eq(nf_json_get_string(o, "s", 6, 10, 1, &s, &e), NF_EINVAL);
	ck_assert_str_eq(e.field, "s");
	ck_assert_int_eq(nf_json_get_string(o, "s", 0, 4, 1, &s, &e), NF_EINVAL);
	ck_assert_int_eq(nf_json_get_string(o, "n", 0, 4, 1, &s, &e), NF_EINVAL);
	ck_assert_str_eq(e.code, "invalid_field");
	ck_assert_str_eq(e.field, "n");
	ck_assert_int_eq(nf_json_get_string(o, "missing", 0, 4, 1, &s, &e), NF_EINVAL);
	ck_assert_str_eq(e.code, "missing_field");
	ck_assert_str_eq(e.field, "missing");
	s = "default";
	ck_assert_int_eq(nf_json_get_string(o, "missing", 0, 4, 0, &s, &e), NF_OK);
	ck_assert_str_eq(s, "default");
	/* null counts as absent: an error only when required. */
	ck_assert_int_eq(nf_json_get_string(o, "nul", 0, 4, 0, &s, &e), NF_OK);
	ck_assert_str_eq(s, "default");
	ck_assert_int_eq(nf_json_get_string(o, "nul", 0, 4, 1, &s, &e), NF_EINVAL);
	ck_assert_str_eq(e.code, "missing_field");

	ck_assert_int_eq(nf_json_get_int(o, "n", 0, 100, 1, &n, &e), NF_OK);
	ck_assert_int_eq(n, 42);
	ck_assert_int_eq(nf_json_get_int(o, "n", 0, 41, 1, &n, &e), NF_EINVAL);
	ck_assert_str_eq(e.field, "n");
	ck_assert_int_eq(nf_json_get_int(o, "neg", 0, 100, 1, &n, &e), NF_EINVAL);
	ck_assert_int_eq(nf_json_get_int(o, "big", 0, INT64_MAX - 1, 1, &n, &e), NF_EINVAL);
	ck_assert_int_eq(nf_json_get_int(o, "f", 0, 100, 1, &n, &e), NF_EINVAL);
	ck_assert_int_eq(nf_json_get_int(o, "s", 0, 100, 1, &n, &e), NF_EINVAL);

	ck_assert_int_eq(nf_json_get_bool(o, "b", 1, &b, &e), NF_OK);
	ck_assert_int_eq(b, 1);
	ck_assert_int_eq(nf_json_get_bool(o, "n", 1, &b, &e), NF_EINVAL);

	ck_assert_int_eq(nf_json_get_enum(o, "e", vias, 1, &i, &e), NF_OK);
	ck_assert_int_eq(i, 1);
	ck_assert_int_eq(nf_json_get_enum(o, "s", vias, 1, &i, &e), NF_EINVAL);
	ck_assert_str_eq(e.field, "s");
	ck_assert_int_eq(nf_json_get_string(o, "bad", 0, 10, 1, &s, &e), NF_OK);
	json_object_put(o);

	/* Getters on a non-object never crash. */
	o = obj("[1]");
	ck_assert_int_eq(nf_json_get_string(o, "s", 0, 4, 0, &s, &e), NF_EINVAL);
	json_object_put(o);
	ck_assert_int_eq(nf_json_get_int(NULL, "s", 0, 4, 0, &n, &e), NF_EINVAL);
}
END_TEST

START_TEST(unknown_fields)
{
	static const char *const ok[] = { "a", "b", NULL };
	struct json_object	*o = obj("{\"a\":1,\"b\":2}");
	struct nf_error		 e;

	ck_assert_int_eq(nf_json_reject_unknown(o, ok, &e), NF_OK);
	json_object_put(o);
	o = obj("{\"a\":1,\"$where\":2}");
	ck_assert_int_eq(nf_json_reject_unknown(o, ok, &e), NF_EINVAL);
	ck_assert_str_eq(e.code, "unknown_field");
	ck_assert_str_eq(e.field, "$where");
	json_object_put(o);
	o = obj("\"x\"");
	ck_assert_int_eq(nf_json_reject_unknown(o, ok, &e), NF_EINVAL);
	json_object_put(o);
}
END_TEST

START_TEST(serialize)
{
	struct json_object	*o = json_object_new_object();
	size_t			 len;

	nf_json_add_str(o, "url", "a/b\r\n");
	nf_json_add_int(o, "n", 5);
	nf_json_add_bool(o, "t", 1);
	nf_json_add_str(o, "nul", NULL);
	ck_assert_str_eq(nf_json_str(o, &len), "{\"url\":\"a/b\\r\\n\",\"n\":5,\"t\":true,\"nul\":null}");
	ck_assert_uint_eq(len, strlen(nf_json_str(o, NULL)));
	json_object_put(o);
}
END_TEST

int
main(void)
{
	TCase	*tc;
	Suite	*s = tu_suite("json", &tc);

	tcase_add_test(tc, accepts);
	tcase_add_test(tc, rejects);
	tcase_add_test(tc, duplicates);
	tcase_add_test(tc, depth);
	tcase_add_test(tc, getters);
	tcase_add_test(tc, unknown_fields);
	tcase_add_test(tc, serialize);
	return tu_run(s);
}
