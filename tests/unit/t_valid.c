/*
 * t_valid.c - table tests for the pure validators in valid.c: each
 * validator gets a table of accepted and a table of rejected inputs.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <check.h>
#include <stdint.h>
#include <string.h>

#include "nonflex.h"
#include "testutil.h"
#include "valid.h"

struct vcase {
	const char	*s;
	int		 ok;
};

static void
run(int (*fn)(const char *), const struct vcase *c, size_t n, const char *name)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		ck_assert_msg(fn(c[i].s) == c[i].ok, "%s(\"%s\") should be %d", name,
		    c[i].s ? c[i].s : "(null)", c[i].ok);
}

#define RUN(fn, tab) run(fn, tab, NF_ARRAY_LEN(tab), #fn)

START_TEST(slug)
{
	static const struct vcase c[] = {
		{ "tenant1", 1 }, { "a", 1 }, { "a-b-c", 1 }, { "0", 1 },
		{ "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij123", 1 },
		{ "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234", 0 },
		{ "", 0 }, { NULL, 0 }, { "-a", 0 }, { "a-", 0 }, { "Tenant1", 0 },
		{ "a_b", 0 }, { "a.b", 0 }, { "a b", 0 }, { "a/b", 0 }, { "é", 0 },
		{ "a\nb", 0 },
	};

	RUN(nf_valid_slug, c);
}
END_TEST

START_TEST(hex24_uuid)
{
	static const struct vcase h[] = {
		{ "507f1f77bcf86cd799439011", 1 }, { "507F1F77BCF86CD799439011", 1 },
		{ "507f1f77bcf86cd79943901", 0 }, { "507f1f77bcf86cd7994390111", 0 },
		{ "507f1f77bcf86cd79943901g", 0 }, { "", 0 }, { NULL, 0 },
		{ "{\"$gt\":\"\"}", 0 },
	};
	static const struct vcase u[] = {
		{ "123e4567-e89b-12d3-a456-426614174000", 1 },
		{ "123E4567-E89B-12D3-A456-426614174000", 1 },
		{ "123e4567e89b12d3a456426614174000", 0 },
		{ "123e4567-e89b-12d3-a456-42661417400", 0 },
		{ "123e4567-e89b-12d3-a456-4266141740000", 0 },
		{ "123e4567-e89b-12d3-a456_426614174000", 0 },
		{ "g23e4567-e89b-12d3-a456-426614174000", 0 }, { NULL, 0 },
	};

	RUN(nf_valid_hex24, h);
	RUN(nf_valid_uuid, u);
}
END_TEST

START_TEST(e164)
{
	static const struct vcase c[] = {
		{ "+14155552671", 1 }, { "+442071838750", 1 }, { "+12345678", 1 },
		{ "+123456789012345", 1 },
		{ "+1234567890123456", 0 }, { "+1234567", 0 }, { "14155552671", 0 },
		{ "+04155552671", 0 }, { "+1 415 555 2671", 0 }, { "+1-415-555-2671", 0 },
		{ "+", 0 }, { "", 0 }, { NULL, 0 }, { "' OR 1=1--", 0 },
		{ "+14155552671\n", 0 },
	};

	RUN(nf_valid_e164, c);
}
END_TEST

START_TEST(email)
{
	static const struct vcase c[] = {
		{ "a@b.co", 1 }, { "first.last+tag@example.com", 1 },
		{ "x@sub.domain-1.example", 1 }, { "o'brien@example.ie", 1 },
		{ "a@b", 0 }, { "@b.com", 0 }, { "a@", 0 }, { "a@@b.com", 0 },
		{ "a@b@c.com", 0 }, { ".a@b.com", 0 }, { "a.@b.com", 0 }, { "a..b@c.com", 0 },
		{ "a@-b.com", 0 }, { "a@b-.com", 0 }, { "a@b..com", 0 }, { "a b@c.com", 0 },
		{ "a@b.com\r\nBcc: x@y.z", 0 }, { "", 0 }, { NULL, 0 },
	};

	RUN(nf_valid_email, c);
}
END_TEST

START_TEST(request_id)
{
	static const struct vcase c[] = {
		{ "abc", 1 }, { "A.b_c:d-e", 1 }, { "0123456789abcdef0123456789abcdef", 1 },
		{ "", 0 }, { NULL, 0 }, { "a b", 0 }, { "a\r\nX-Evil: 1", 0 }, { "a/b", 0 },
		{ "a\"b", 0 },
	};
	char	 lng[131];

	RUN(nf_valid_request_id, c);
	memset(lng, 'a', 128);
	lng[128] = '\0';
	ck_assert(nf_valid_request_id(lng));
	lng[128] = 'a';
	lng[129] = '\0';
	ck_assert(!nf_valid_request_id(lng));
}
END_TEST

START_TEST(charset)
{
	static const struct {
		const char	*s;
		size_t		 max;
		const char	*extra;
		int		 ok;
	} c[] = {
		{ "tenant1", 63, "-", 1 }, { "a", 1, "", 1 }, { "a-b_c", 64, "_-", 1 },
		{ "0123456789abcdef", 16, NULL, 1 }, { "-", 63, "-", 1 },
		{ "Message.Created", 64, "ABCDEFGHIJKLMNOPQRSTUVWXYZ._:-", 1 },
		{ "abc", 2, "", 0 },                       /* one byte over max */
		{ "", 64, "-", 0 }, { NULL, 64, "-", 0 }, { "a-b", 64, "", 0 },
		{ "a-b", 64, NULL, 0 }, { "Tenant1", 63, "-", 0 }, { "a b", 64, "-", 0 },
		{ "a.b", 64, "_-", 0 }, { "a/b", 64, "-", 0 }, { "caf\xc3\xa9", 64, "-", 0 },
		{ "a\nb", 64, "-", 0 }, { "{\"$gt\":\"\"}", 64, "_-", 0 },
	};
	size_t	 i;

	for (i = 0; i < NF_ARRAY_LEN(c); i++)
		ck_assert_msg(nf_valid_charset(c[i].s, c[i].max, c[i].extra) == c[i].ok,
		    "charset case %zu (%s) should be %d", i, c[i].s ? c[i].s : "(null)",
		    c[i].ok);
}
END_TEST

START_TEST(twilio_sid)
{
	ck_assert(nf_valid_twilio_sid("AC00000000000000000000000000000001", "AC"));
	ck_assert(nf_valid_twilio_sid("WSabcdefABCDEF0123456789abcdef0123", "WS"));
	ck_assert(nf_valid_twilio_sid("WSabcdefABCDEF0123456789abcdef0123", NULL));
	ck_assert(!nf_valid_twilio_sid("WSabcdefABCDEF0123456789abcdef0123", "AC"));
	ck_assert(!nf_valid_twilio_sid("ws00000000000000000000000000000001", NULL));
	ck_assert(!nf_valid_twilio_sid("AC0000000000000000000000000000001", "AC"));
	ck_assert(!nf_valid_twilio_sid("AC000000000000000000000000000000012", "AC"));
	ck_assert(!nf_valid_twilio_sid("AC0000000000000000000000000000000g", "AC"));
	ck_assert(!nf_valid_twilio_sid("A100000000000000000000000000000001", NULL));
	ck_assert(!nf_valid_twilio_sid(NULL, NULL));
}
END_TEST

START_TEST(utf8)
{
	static const struct {
		const char	*s;
		size_t		 len;
		int		 ok;
	} c[] = {
		{ "plain", 5, 1 }, { "", 0, 1 }, { "caf\xc3\xa9", 5, 1 },
		{ "\xe2\x82\xac", 3, 1 }, { "\xf0\x9f\x98\x80", 4, 1 },
		{ "\xf4\x8f\xbf\xbf", 4, 1 },             /* U+10FFFF */
		{ "a\0b", 3, 0 },                          /* embedded NUL */
		{ "\xc3", 1, 0 },                          /* truncated */
		{ "\xc0\xaf", 2, 0 }, { "\xe0\x80\xaf", 3, 0 },  /* overlong */
		{ "\xed\xa0\x80", 3, 0 },                 /* surrogate */
		{ "\xf4\x90\x80\x80", 4, 0 },             /* > U+10FFFF */
		{ "\xff", 1, 0 }, { "\x80", 1, 0 }, { "\xe2\x28\xa1", 3, 0 },
	};
	size_t	 i;

	for (i = 0; i < NF_ARRAY_LEN(c); i++)
		ck_assert_msg(nf_valid_utf8(c[i].s, c[i].len, 0, SIZE_MAX) == c[i].ok,
		    "utf8 case %zu", i);
	ck_assert(nf_valid_utf8("abc", 3, 1, 3));
	ck_assert(!nf_valid_utf8("abc", 3, 4, 10));
	ck_assert(!nf_valid_utf8("abc", 3, 0, 2));
	ck_assert(!nf_valid_utf8(NULL, 0, 0, 10));
}
END_TEST

START_TEST(integers)
{
	static const struct {
		const char	*s;
		int64_t		 min, max;
		int		 ok;
		int64_t		 v;
	} c[] = {
		{ "0", 0, 10, 1, 0 }, { "10", 0, 10, 1, 10 }, { "-5", -10, 10, 1, -5 },
		{ "9223372036854775807", INT64_MIN, INT64_MAX, 1, INT64_MAX },
		{ "-9223372036854775808", INT64_MIN, INT64_MAX, 1, INT64_MIN },
		{ "9223372036854775808", INT64_MIN, INT64_MAX, 0, 0 },
		{ "11", 0, 10, 0, 0 }, { "-1", 0, 10, 0, 0 }, { "", 0, 10, 0, 0 },
		{ " 1", 0, 10, 0, 0 }, { "1 ", 0, 10, 0, 0 }, { "+1", 0, 10, 0, 0 },
		{ "1.5", 0, 10, 0, 0 }, { "0x10", 0, 100, 0, 0 }, { "1e3", 0, 10000, 0, 0 },
		{ "abc", 0, 10, 0, 0 }, { "-", -10, 10, 0, 0 },
	};
	size_t	 i;
	int64_t	 v;

	for (i = 0; i < NF_ARRAY_LEN(c); i++) {
		v = -42;
		ck_assert_msg(nf_valid_int(c[i].s, c[i].min, c[i].max, &v) == c[i].ok,
		    "int case %zu (%s)", i, c[i].s);
		if (c[i].ok)
			ck_assert(v == c[i].v);
	}
	ck_assert(!nf_valid_int(NULL, 0, 1, &v));
	ck_assert(nf_valid_int("5", 0, 10, NULL));
}
END_TEST

START_TEST(enums)
{
	static const char *const t[] = { "direct", "job", NULL };

	ck_assert_int_eq(nf_valid_enum("direct", t), 0);
	ck_assert_int_eq(nf_valid_enum("job", t), 1);
	ck_assert_int_eq(nf_valid_enum("Job", t), -1);
	ck_assert_int_eq(nf_valid_enum("", t), -1);
	ck_assert_int_eq(nf_valid_enum(NULL, t), -1);
	ck_assert_int_eq(nf_valid_enum("x", NULL), -1);
}
END_TEST

int
main(void)
{
	TCase	*tc;
	Suite	*s = tu_suite("valid", &tc);

	tcase_add_test(tc, slug);
	tcase_add_test(tc, hex24_uuid);
	tcase_add_test(tc, e164);
	tcase_add_test(tc, email);
	tcase_add_test(tc, request_id);
	tcase_add_test(tc, charset);
	tcase_add_test(tc, twilio_sid);
	tcase_add_test(tc, utf8);
	tcase_add_test(tc, integers);
	tcase_add_test(tc, enums);
	return tu_run(s);
}
