/*
 * t_bsonjson.c - unit tests for the json-c <-> BSON converters used by the
 * MongoDB store backend (fcgi/bsonjson.c).  Needs no server: documents are
 * built and inspected in memory with libbson.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <json-c/json.h>

#include "bsonjson.h"
#include "testutil.h"

static const char *OID = "5f1d7c2e9a3b4c5d6e7f8091";

static struct json_object *
parse(const char *txt)
{
	struct json_object *o = json_tokener_parse(txt);

	ck_assert_msg(o != NULL, "test JSON does not parse: %s", txt);
	return o;
}

/* JSON text -> BSON (into *b, initialised here) -> rc. */
static enum nf_err
to_bson(const char *txt, bson_t *b, struct nf_error *e)
{
	struct json_object	*o = parse(txt);
	enum nf_err		 rc;

	bson_init(b);
	nf_error_clear(e);
	rc = nf_bsonjson_from_json(o, b, e);
	json_object_put(o);
	return rc;
}

/* Type of the element at dotted path in b (BSON_TYPE_EOD when absent). */
static bson_type_t
type_at(const bson_t *b, const char *path)
{
	bson_iter_t	 it, sub;

	if (!bson_iter_init(&it, b) || !bson_iter_find_descendant(&it, path, &sub))
		return BSON_TYPE_EOD;
	return bson_iter_type(&sub);
}

/* JSON -> BSON -> JSON must give back an equal value. */
static void
roundtrip(const char *txt)
{
	struct json_object	*in = parse(txt), *back = NULL;
	struct nf_error		 e;
	bson_t			 b;

	bson_init(&b);
	ck_assert_int_eq(nf_bsonjson_from_json(in, &b, &e), NF_OK);
	ck_assert_int_eq(nf_bsonjson_to_json(&b, &back, &e), NF_OK);
	ck_assert_msg(json_object_equal(in, back), "round trip changed %s into %s", txt,
	    json_object_to_json_string(back));
	json_object_put(in);
	json_object_put(back);
	bson_destroy(&b);
}

/* BSON -> JSON text (plain), caller frees. */
static char *
json_of(const bson_t *b)
{
	struct json_object	*o = NULL;
	struct nf_error		 e;
	char			*s;

	ck_assert_int_eq(nf_bsonjson_to_json(b, &o, &e), NF_OK);
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

START_TEST(test_roundtrip_scalars)
{
	roundtrip("{}");
	roundtrip("{\"s\":\"hello\",\"i\":42,\"n\":-7,\"z\":0,\"t\":true,\"f\":false,\"nul\":null}");
	roundtrip("{\"d\":1.5,\"e\":-0.25,\"big\":1e300,\"tiny\":5e-324}");
	roundtrip("{\"empty\":\"\",\"ea\":[],\"eo\":{}}");
}
END_TEST

START_TEST(test_roundtrip_nested)
{
	roundtrip("{\"a\":{\"b\":{\"c\":[1,[2,[3,{\"d\":[]}]],{\"e\":null}]}}}");
	roundtrip("{\"orders\":[{\"sku\":\"A1\",\"qty\":2,\"price\":9.99},"
	    "{\"sku\":\"B2\",\"qty\":1,\"price\":100}],\"tags\":[\"vip\",\"new\"]}");
}
END_TEST

START_TEST(test_roundtrip_utf8)
{
	struct json_object	*in, *back = NULL;
	struct nf_error		 e;
	bson_t			 b;
	bson_iter_t		 it;
	uint32_t		 len;

	roundtrip("{\"name\":\"J\\u00fcrgen M\\u00fcller\",\"cjk\":\"\\u6f22\\u5b57\","
	    "\"emoji\":\"\\ud83d\\ude00 ok\",\"\\u00e9t\\u00e9\":\"key too\"}");
	/* An embedded NUL survives both ways (BSON strings carry a length). */
	in = json_object_new_object();
	json_object_object_add(in, "z", json_object_new_string_len("a\0b", 3));
	bson_init(&b);
	ck_assert_int_eq(nf_bsonjson_from_json(in, &b, &e), NF_OK);
	ck_assert(bson_iter_init_find(&it, &b, "z"));
	bson_iter_utf8(&it, &len);
	ck_assert_uint_eq(len, 3);
	ck_assert_int_eq(nf_bsonjson_to_json(&b, &back, &e), NF_OK);
	ck_assert(json_object_equal(in, back));
	json_object_put(in);
	json_object_put(back);
	bson_destroy(&b);
}
END_TEST

START_TEST(test_invalid_utf8_rejected)
{
	struct json_object	*in = json_object_new_object();
	struct nf_error		 e;
	bson_t			 b;

	json_object_object_add(in, "bad", json_object_new_string_len("a\xff\xfe", 3));
	bson_init(&b);
	nf_error_clear(&e);
	ck_assert_int_eq(nf_bsonjson_from_json(in, &b, &e), NF_EINVAL);
	ck_assert_str_eq(e.code, "invalid_utf8");
	ck_assert_str_eq(e.field, "bad");
	json_object_put(in);
	bson_destroy(&b);
}
END_TEST

START_TEST(test_invalid_utf8_from_server_is_null)
{
	bson_t	 b = BSON_INITIALIZER;
	char	*s;

	bson_append_utf8(&b, "bad", -1, "a\xff", 2);
	s = json_of(&b);
	ck_assert_str_eq(s, "{\"bad\":null}");
	free(s);
	bson_destroy(&b);
}
END_TEST

START_TEST(test_large_ints)
{
	struct json_object	*back = NULL, *v;
	struct nf_error		 e;
	bson_t			 b;
	bson_iter_t		 it;

	roundtrip("{\"max\":9223372036854775807,\"min\":-9223372036854775808,"
	    "\"p32\":2147483648,\"n32\":-2147483649}");
	ck_assert_int_eq(to_bson("{\"max\":9223372036854775807}", &b, &e), NF_OK);
	ck_assert(bson_iter_init_find(&it, &b, "max"));
	ck_assert_int_eq(bson_iter_type(&it), BSON_TYPE_INT64);
	ck_assert(bson_iter_int64(&it) == INT64_MAX);
	bson_destroy(&b);
	/* Above INT64_MAX: BSON has no uint64, so it is stored as a double. */
	ck_assert_int_eq(to_bson("{\"u\":18446744073709551615}", &b, &e), NF_OK);
	ck_assert(bson_iter_init_find(&it, &b, "u"));
	ck_assert_int_eq(bson_iter_type(&it), BSON_TYPE_DOUBLE);
	ck_assert(bson_iter_double(&it) == 18446744073709551615.0);
	ck_assert_int_eq(nf_bsonjson_to_json(&b, &back, &e), NF_OK);
	ck_assert(json_object_object_get_ex(back, "u", &v));
	ck_assert(json_object_is_type(v, json_type_double));
	json_object_put(back);
	bson_destroy(&b);
}
END_TEST

START_TEST(test_doubles)
{
	struct json_object	*in, *back = NULL, *v;
	struct nf_error		 e;
	bson_t			 b;
	static const double	 vals[] = { 0.1, -2.5e-10, 1.7976931348623157e308,
	    4.9406564584124654e-324, 123456789.125, -0.0 };
	size_t			 i;

	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		in = json_object_new_object();
		json_object_object_add(in, "d", json_object_new_double(vals[i]));
		bson_init(&b);
		ck_assert_int_eq(nf_bsonjson_from_json(in, &b, &e), NF_OK);
		ck_assert_int_eq(type_at(&b, "d"), BSON_TYPE_DOUBLE);
		ck_assert_int_eq(nf_bsonjson_to_json(&b, &back, &e), NF_OK);
		ck_assert(json_object_object_get_ex(back, "d", &v));
		ck_assert(json_object_is_type(v, json_type_double));
		ck_assert_msg(memcmp(&vals[i], &(double){ json_object_get_double(v) },
		    sizeof(double)) == 0, "double %zu changed", i);
		json_object_put(in);
		json_object_put(back);
		bson_destroy(&b);
	}
	/* A double that happens to be integral stays a double. */
	ck_assert_int_eq(to_bson("{\"d\":3.0}", &b, &e), NF_OK);
	ck_assert_int_eq(type_at(&b, "d"), BSON_TYPE_DOUBLE);
	bson_destroy(&b);
}
END_TEST

START_TEST(test_oid_in_documents)
{
	struct nf_error	 e;
	bson_t		 b;
	bson_iter_t	 it;
	char		 hex[25];
	char		*txt, *s;

	txt = nf_xasprintf("{\"_id\":\"%s\",\"ref\":\"%s\",\"sub\":{\"_id\":\"%s\"},"
	    "\"items\":[{\"_id\":\"%s\",\"n\":1}]}", OID, OID, OID, OID);
	ck_assert_int_eq(to_bson(txt, &b, &e), NF_OK);
	ck_assert_int_eq(type_at(&b, "_id"), BSON_TYPE_OID);
	ck_assert(bson_iter_init_find(&it, &b, "_id"));
	bson_oid_to_string(bson_iter_oid(&it), hex);
	ck_assert_str_eq(hex, OID);
	/* Only _id keys map; other 24-hex strings stay strings. */
	ck_assert_int_eq(type_at(&b, "ref"), BSON_TYPE_UTF8);
	/* Mongoose sub-documents carry their own ObjectId _id. */
	ck_assert_int_eq(type_at(&b, "sub._id"), BSON_TYPE_OID);
	ck_assert_int_eq(type_at(&b, "items.0._id"), BSON_TYPE_OID);
	/* Back: ObjectIds read as the same 24-hex strings. */
	s = json_of(&b);
	ck_assert_str_eq(s, txt);
	free(s);
	free(txt);
	bson_destroy(&b);
	roundtrip("{\"_id\":\"5f1d7c2e9a3b4c5d6e7f8091\",\"x\":1}");
}
END_TEST

START_TEST(test_oid_not_for_other_strings)
{
	struct nf_error	 e;
	bson_t		 b;

	/* Upper case, short, long, non-hex, numbers: stay what they are. */
	ck_assert_int_eq(to_bson("{\"a\":{\"_id\":\"5F1D7C2E9A3B4C5D6E7F8091\"},"
	    "\"b\":{\"_id\":\"5f1d7c2e9a3b4c5d6e7f809\"},"
	    "\"c\":{\"_id\":\"5f1d7c2e9a3b4c5d6e7f80911\"},"
	    "\"d\":{\"_id\":\"5f1d7c2e9a3b4c5d6e7f809g\"},"
	    "\"_id\":12}", &b, &e), NF_OK);
	ck_assert_int_eq(type_at(&b, "a._id"), BSON_TYPE_UTF8);
	ck_assert_int_eq(type_at(&b, "b._id"), BSON_TYPE_UTF8);
	ck_assert_int_eq(type_at(&b, "c._id"), BSON_TYPE_UTF8);
	ck_assert_int_eq(type_at(&b, "d._id"), BSON_TYPE_UTF8);
	ck_assert_int_eq(type_at(&b, "_id"), BSON_TYPE_INT64);
	bson_destroy(&b);
	ck_assert(nf_bsonjson_is_oid_hex(OID, 24));
	ck_assert(!nf_bsonjson_is_oid_hex(OID, 23));
	ck_assert(!nf_bsonjson_is_oid_hex(NULL, 24));
}
END_TEST

START_TEST(test_oid_in_filters)
{
	struct nf_error	 e;
	bson_t		 b;
	char		*txt;

	txt = nf_xasprintf("{\"tenant\":\"t1\",\"_id\":{\"$in\":[\"%s\",\"plain\"],"
	    "\"$ne\":\"%s\",\"$gt\":\"%s\",\"$nin\":[\"%s\"]},"
	    "\"items._id\":\"%s\",\"$or\":[{\"_id\":\"%s\"},{\"name\":\"%s\"}],"
	    "\"other\":{\"$in\":[\"%s\"]}}", OID, OID, OID, OID, OID, OID, OID, OID);
	ck_assert_int_eq(to_bson(txt, &b, &e), NF_OK);
	ck_assert_int_eq(type_at(&b, "tenant"), BSON_TYPE_UTF8);
	ck_assert_int_eq(type_at(&b, "_id.$in.0"), BSON_TYPE_OID);
	ck_assert_int_eq(type_at(&b, "_id.$in.1"), BSON_TYPE_UTF8);
	ck_assert_int_eq(type_at(&b, "_id.$ne"), BSON_TYPE_OID);
	ck_assert_int_eq(type_at(&b, "_id.$gt"), BSON_TYPE_OID);
	ck_assert_int_eq(type_at(&b, "_id.$nin.0"), BSON_TYPE_OID);
	ck_assert_int_eq(type_at(&b, "$or.0._id"), BSON_TYPE_OID);
	ck_assert_int_eq(type_at(&b, "$or.1.name"), BSON_TYPE_UTF8);
	ck_assert_int_eq(type_at(&b, "other.$in.0"), BSON_TYPE_UTF8);
	free(txt);
	bson_destroy(&b);
	/* A client string that looks like an operator is data, not a query. */
	ck_assert_int_eq(to_bson("{\"name\":\"{\\\"$gt\\\":\\\"\\\"}\"}", &b, &e), NF_OK);
	ck_assert_int_eq(type_at(&b, "name"), BSON_TYPE_UTF8);
	bson_destroy(&b);
}
END_TEST

START_TEST(test_oid_append_ctx)
{
	struct json_object	*v = json_object_new_string(OID);
	struct nf_error		 e;
	bson_t			 b = BSON_INITIALIZER;

	ck_assert_int_eq(nf_bsonjson_append(&b, "x", v, 1, &e), NF_OK);
	ck_assert_int_eq(nf_bsonjson_append(&b, "y", v, 0, &e), NF_OK);
	ck_assert_int_eq(nf_bsonjson_append(&b, "z", NULL, 0, &e), NF_OK);
	ck_assert_int_eq(type_at(&b, "x"), BSON_TYPE_OID);
	ck_assert_int_eq(type_at(&b, "y"), BSON_TYPE_UTF8);
	ck_assert_int_eq(type_at(&b, "z"), BSON_TYPE_NULL);
	json_object_put(v);
	bson_destroy(&b);
}
END_TEST

START_TEST(test_dates)
{
	struct nf_error	 e;
	bson_t		 b;
	bson_iter_t	 it;
	char		*s;

	ck_assert_int_eq(to_bson("{\"createdAt\":\"2024-02-29T23:59:59.123Z\","
	    "\"feb30\":\"2024-02-30T00:00:00.000Z\",\"nofrac\":\"2024-01-01T00:00:00Z\","
	    "\"old\":\"1969-12-31T23:59:59.999Z\",\"epoch\":\"1970-01-01T00:00:00.000Z\"}",
	    &b, &e), NF_OK);
	ck_assert(bson_iter_init_find(&it, &b, "createdAt"));
	ck_assert_int_eq(bson_iter_type(&it), BSON_TYPE_DATE_TIME);
	ck_assert(bson_iter_date_time(&it) == 1709251199123LL);
	ck_assert_int_eq(type_at(&b, "feb30"), BSON_TYPE_UTF8);
	ck_assert_int_eq(type_at(&b, "nofrac"), BSON_TYPE_UTF8);
	ck_assert_int_eq(type_at(&b, "old"), BSON_TYPE_UTF8);
	ck_assert_int_eq(type_at(&b, "epoch"), BSON_TYPE_DATE_TIME);
	bson_destroy(&b);
	roundtrip("{\"createdAt\":\"2024-02-29T23:59:59.123Z\",\"s\":\"2024-02-30T00:00:00.000Z\"}");

	/* Dates from Mongoose, including before 1970 and out of range. */
	bson_init(&b);
	BSON_APPEND_DATE_TIME(&b, "a", 0);
	BSON_APPEND_DATE_TIME(&b, "b", -1);
	BSON_APPEND_DATE_TIME(&b, "c", -86400001LL);
	BSON_APPEND_DATE_TIME(&b, "d", INT64_MAX);
	BSON_APPEND_DATE_TIME(&b, "e", INT64_MIN);
	s = json_of(&b);
	ck_assert_str_eq(s, "{\"a\":\"1970-01-01T00:00:00.000Z\","
	    "\"b\":\"1969-12-31T23:59:59.999Z\",\"c\":\"1969-12-30T23:59:59.999Z\","
	    "\"d\":null,\"e\":null}");
	free(s);
	bson_destroy(&b);
}
END_TEST

START_TEST(test_every_bson_type)
{
	bson_t			 b = BSON_INITIALIZER, sub;
	bson_oid_t		 oid;
	bson_decimal128_t	 dec;
	static const uint8_t	 bin[] = { 'h', 'i', 0, 0xff };
	char			*s;

	bson_oid_init_from_string(&oid, OID);
	bson_decimal128_from_string("1234.5600", &dec);
	BSON_APPEND_DOUBLE(&b, "double", 2.5);
	BSON_APPEND_UTF8(&b, "utf8", "x");
	BSON_APPEND_DOCUMENT_BEGIN(&b, "doc", &sub);
	BSON_APPEND_INT32(&sub, "k", 1);
	bson_append_document_end(&b, &sub);
	BSON_APPEND_ARRAY_BEGIN(&b, "arr", &sub);
	BSON_APPEND_INT32(&sub, "0", 1);
	BSON_APPEND_UTF8(&sub, "1", "two");
	bson_append_array_end(&b, &sub);
	BSON_APPEND_BINARY(&b, "binary", BSON_SUBTYPE_BINARY, bin, sizeof(bin));
	BSON_APPEND_UNDEFINED(&b, "undefined");
	BSON_APPEND_OID(&b, "oid", &oid);
	BSON_APPEND_BOOL(&b, "bool", true);
	BSON_APPEND_DATE_TIME(&b, "date", 1764064800000LL);
	BSON_APPEND_NULL(&b, "null");
	BSON_APPEND_REGEX(&b, "regex", "^a.*b$", "i");
	BSON_APPEND_DBPOINTER(&b, "dbpointer", "coll", &oid);
	BSON_APPEND_CODE(&b, "code", "function(){}");
	BSON_APPEND_SYMBOL(&b, "symbol", "sym");
	bson_init(&sub);
	BSON_APPEND_INT32(&sub, "v", 1);
	BSON_APPEND_CODE_WITH_SCOPE(&b, "codewscope", "return v", &sub);
	bson_destroy(&sub);
	BSON_APPEND_INT32(&b, "int32", -2147483647 - 1);
	BSON_APPEND_TIMESTAMP(&b, "timestamp", 1764064800, 7);
	BSON_APPEND_INT64(&b, "int64", INT64_MIN);
	BSON_APPEND_DECIMAL128(&b, "decimal128", &dec);
	BSON_APPEND_MAXKEY(&b, "maxkey");
	BSON_APPEND_MINKEY(&b, "minkey");
	BSON_APPEND_DOUBLE(&b, "nan", NAN);
	BSON_APPEND_DOUBLE(&b, "inf", INFINITY);
	s = json_of(&b);
	ck_assert_str_eq(s, "{\"double\":2.5,\"utf8\":\"x\",\"doc\":{\"k\":1},"
	    "\"arr\":[1,\"two\"],\"binary\":\"aGkA\\/w==\",\"undefined\":null,"
	    "\"oid\":\"5f1d7c2e9a3b4c5d6e7f8091\",\"bool\":true,"
	    "\"date\":\"2025-11-25T10:00:00.000Z\",\"null\":null,"
	    "\"regex\":\"\\/^a.*b$\\/i\",\"dbpointer\":null,\"code\":\"function(){}\","
	    "\"symbol\":\"sym\",\"codewscope\":\"return v\",\"int32\":-2147483648,"
	    "\"timestamp\":\"2025-11-25T10:00:00.000Z\",\"int64\":-9223372036854775808,"
	    "\"decimal128\":\"1234.5600\",\"maxkey\":null,\"minkey\":null,"
	    "\"nan\":null,\"inf\":null}");
	free(s);
	bson_destroy(&b);
}
END_TEST

START_TEST(test_int32_is_json_int)
{
	struct json_object	*o = NULL, *v;
	struct nf_error		 e;
	bson_t			 b = BSON_INITIALIZER;

	BSON_APPEND_INT32(&b, "__v", 0);
	ck_assert_int_eq(nf_bsonjson_to_json(&b, &o, &e), NF_OK);
	ck_assert(json_object_object_get_ex(o, "__v", &v));
	ck_assert(json_object_is_type(v, json_type_int));
	ck_assert_int_eq(json_object_get_int64(v), 0);
	json_object_put(o);
	bson_destroy(&b);
}
END_TEST

/* Nest n arrays: [[[...]]] under key "a". */
static void
deep_bson(bson_t *b, int n)
{
	bson_t	 child;

	if (n == 0) {
		BSON_APPEND_INT32(b, "0", 1);
		return;
	}
	bson_append_array_begin(b, "0", -1, &child);
	deep_bson(&child, n - 1);
	bson_append_array_end(b, &child);
}

START_TEST(test_depth_limits)
{
	struct json_object	*root, *cur, *next, *o = NULL;
	struct nf_error		 e;
	bson_t			 b = BSON_INITIALIZER;
	int			 i;

	root = json_object_new_object();
	cur = json_object_new_array();
	json_object_object_add(root, "a", cur);
	for (i = 0; i < NF_BSONJSON_MAXDEPTH + 5; i++) {
		next = json_object_new_array();
		json_object_array_add(cur, next);
		cur = next;
	}
	nf_error_clear(&e);
	ck_assert_int_eq(nf_bsonjson_from_json(root, &b, &e), NF_EINVAL);
	ck_assert_str_eq(e.code, "too_deep");
	json_object_put(root);
	bson_destroy(&b);

	bson_init(&b);
	deep_bson(&b, NF_BSONJSON_MAXDEPTH + 5);
	ck_assert_int_eq(nf_bsonjson_to_json(&b, &o, &e), NF_ESTORE);
	ck_assert_ptr_null(o);
	bson_destroy(&b);

	bson_init(&b);
	deep_bson(&b, 50);
	ck_assert_int_eq(nf_bsonjson_to_json(&b, &o, &e), NF_OK);
	json_object_put(o);
	bson_destroy(&b);
}
END_TEST

START_TEST(test_corrupt_bson)
{
	bson_t			 b = BSON_INITIALIZER, *bad;
	struct json_object	*o = NULL;
	struct nf_error		 e;
	uint8_t			 buf[64];
	uint32_t		 len;

	BSON_APPEND_UTF8(&b, "k", "value");
	len = b.len;
	ck_assert_uint_le(len, sizeof(buf));
	memcpy(buf, bson_get_data(&b), len);
	bson_destroy(&b);
	/* The string's length prefix now points far past the end. */
	buf[7] = 0x7f;
	bad = bson_new_from_data(buf, len);
	ck_assert_ptr_nonnull(bad);
	nf_error_clear(&e);
	ck_assert_int_eq(nf_bsonjson_to_json(bad, &o, &e), NF_ESTORE);
	ck_assert_ptr_null(o);
	ck_assert_str_eq(e.code, "store_error");
	bson_destroy(bad);
	/* An unknown element type byte. */
	bson_init(&b);
	BSON_APPEND_INT32(&b, "k", 1);
	len = b.len;
	memcpy(buf, bson_get_data(&b), len);
	bson_destroy(&b);
	buf[4] = 0x42;
	bad = bson_new_from_data(buf, len);
	ck_assert_ptr_nonnull(bad);
	ck_assert_int_eq(nf_bsonjson_to_json(bad, &o, &e), NF_ESTORE);
	ck_assert_ptr_null(o);
	bson_destroy(bad);
}
END_TEST

START_TEST(test_not_an_object)
{
	struct json_object	*a = json_object_new_array();
	struct nf_error		 e;
	bson_t			 b = BSON_INITIALIZER;

	nf_error_clear(&e);
	ck_assert_int_eq(nf_bsonjson_from_json(a, &b, &e), NF_EINVAL);
	ck_assert_str_eq(e.code, "invalid_document");
	ck_assert_int_eq(nf_bsonjson_from_json(NULL, &b, &e), NF_EINVAL);
	json_object_put(a);
	bson_destroy(&b);
}
END_TEST

static Suite *
suite(void)
{
	Suite	*s = suite_create("bsonjson");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_roundtrip_scalars);
	tcase_add_test(tc, test_roundtrip_nested);
	tcase_add_test(tc, test_roundtrip_utf8);
	tcase_add_test(tc, test_invalid_utf8_rejected);
	tcase_add_test(tc, test_invalid_utf8_from_server_is_null);
	tcase_add_test(tc, test_large_ints);
	tcase_add_test(tc, test_doubles);
	tcase_add_test(tc, test_oid_in_documents);
	tcase_add_test(tc, test_oid_not_for_other_strings);
	tcase_add_test(tc, test_oid_in_filters);
	tcase_add_test(tc, test_oid_append_ctx);
	tcase_add_test(tc, test_dates);
	tcase_add_test(tc, test_every_bson_type);
	tcase_add_test(tc, test_int32_is_json_int);
	tcase_add_test(tc, test_depth_limits);
	tcase_add_test(tc, test_corrupt_bson);
	tcase_add_test(tc, test_not_an_object);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(suite());
}
