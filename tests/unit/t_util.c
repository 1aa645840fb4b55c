/*
 * t_util.c - unit tests for the nonflex.h helpers in util.c: the error
 * table, nf_error_set, allocation helpers, ids, hex, ISO-8601 and the
 * constant-time compare.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "nonflex.h"
#include "testutil.h"
#include "valid.h"

START_TEST(errors_table)
{
	ck_assert_int_eq(nf_err_status(NF_OK), 200);
	ck_assert_int_eq(nf_err_status(NF_EINVAL), 400);
	ck_assert_int_eq(nf_err_status(NF_EAUTH), 401);
	ck_assert_int_eq(nf_err_status(NF_EFORBIDDEN), 403);
	ck_assert_int_eq(nf_err_status(NF_ENOTFOUND), 404);
	ck_assert_int_eq(nf_err_status(NF_EMETHOD), 405);
	ck_assert_int_eq(nf_err_status(NF_ECONFLICT), 409);
	ck_assert_int_eq(nf_err_status(NF_ETOOBIG), 413);
	ck_assert_int_eq(nf_err_status(NF_EMEDIATYPE), 415);
	ck_assert_int_eq(nf_err_status(NF_ERATE), 429);
	ck_assert_int_eq(nf_err_status(NF_EUPSTREAM), 502);
	ck_assert_int_eq(nf_err_status(NF_EUNAVAIL), 503);
	ck_assert_int_eq(nf_err_status(NF_ESTORE), 500);
	ck_assert_int_eq(nf_err_status(NF_ESYSTEM), 500);
	ck_assert_int_eq(nf_err_status(NF_ENOMEM), 500);
	/* Out of range never crashes and means "internal". */
	ck_assert_int_eq(nf_err_status((enum nf_err)999), 500);
	ck_assert_int_eq(nf_err_status((enum nf_err)-1), 500);
	ck_assert_str_eq(nf_strerror(NF_ENOTFOUND), "not_found");
	ck_assert_str_eq(nf_strerror(NF_EUNAVAIL), "service_unavailable");
	ck_assert_str_eq(nf_strerror((enum nf_err)999), "internal_error");
}
END_TEST

START_TEST(error_set)
{
	struct nf_error	 e;
	char		 longfield[200];

	ck_assert_int_eq(nf_error_set(&e, NF_EINVAL, "bad_thing", "name", "x=%d", 5), NF_EINVAL);
	ck_assert_str_eq(e.code, "bad_thing");
	ck_assert_str_eq(e.field, "name");
	ck_assert_str_eq(e.message, "x=5");
	/* Defaults: code from the class, no field, no message. */
	nf_error_set(&e, NF_ENOTFOUND, NULL, NULL, NULL);
	ck_assert_str_eq(e.code, "not_found");
	ck_assert_str_eq(e.field, "");
	ck_assert_str_eq(e.message, "");
	/* NULL error is allowed; long texts are truncated, not overflowed. */
	ck_assert_int_eq(nf_error_set(NULL, NF_ESYSTEM, "x", NULL, NULL), NF_ESYSTEM);
	memset(longfield, 'f', sizeof(longfield) - 1);
	longfield[sizeof(longfield) - 1] = '\0';
	nf_error_set(&e, NF_EINVAL, longfield, longfield, "%s", longfield);
	ck_assert_uint_eq(strlen(e.code), sizeof(e.code) - 1);
	ck_assert_uint_eq(strlen(e.field), sizeof(e.field) - 1);
	nf_error_clear(&e);
	ck_assert_str_eq(e.code, "");
}
END_TEST

START_TEST(alloc)
{
	char	*s;

	s = nf_xasprintf("%s-%d", "a", 42);
	ck_assert_str_eq(s, "a-42");
	free(s);
	s = nf_xstrndup("abcdef", 3);
	ck_assert_str_eq(s, "abc");
	free(s);
	s = nf_xmalloc(0);   /* never NULL, even for 0 */
	ck_assert_ptr_nonnull(s);
	free(s);
}
END_TEST

START_TEST(ids_and_hex)
{
	char	 a[25], b[25], h[65];
	size_t	 i;

	nf_id_new(a);
	nf_id_new(b);
	ck_assert(nf_valid_hex24(a));
	ck_assert(nf_valid_hex24(b));
	ck_assert_str_ne(a, b);
	nf_random_hex(h, 32);
	ck_assert_uint_eq(strlen(h), 64);
	for (i = 0; i < 64; i++)
		ck_assert(strchr("0123456789abcdef", h[i]) != NULL);
	nf_random_hex(h, 0);
	ck_assert_str_eq(h, "");
}
END_TEST

START_TEST(iso8601)
{
	char	 buf[25];

	nf_iso8601(0, buf);
	ck_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
	nf_iso8601(1700000000123LL, buf);
	ck_assert_str_eq(buf, "2023-11-14T22:13:20.123Z");
	ck_assert(nf_now_ms() > 1700000000000LL);
	ck_assert(nf_mono_ms() >= 0);
}
END_TEST

START_TEST(ct_equal)
{
	ck_assert_int_eq(nf_ct_equal("abc", 3, "abc", 3), 1);
	ck_assert_int_eq(nf_ct_equal("abc", 3, "abd", 3), 0);
	ck_assert_int_eq(nf_ct_equal("abc", 3, "abcd", 4), 0);
	ck_assert_int_eq(nf_ct_equal("", 0, "", 0), 1);
	ck_assert_int_eq(nf_ct_equal("a\0b", 3, "a\0c", 3), 0);
}
END_TEST

int
main(void)
{
	TCase	*tc;
	Suite	*s = tu_suite("util", &tc);

	tcase_add_test(tc, errors_table);
	tcase_add_test(tc, error_set);
	tcase_add_test(tc, alloc);
	tcase_add_test(tc, ids_and_hex);
	tcase_add_test(tc, iso8601);
	tcase_add_test(tc, ct_equal);
	return tu_run(s);
}
