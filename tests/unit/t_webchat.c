/*
 * t_webchat.c - unit tests for the web-chat token's shape check
 * (nf_webchat_token_parse): only "wc1." + 32 lower-case hex + "." + 64
 * lower-case hex passes, so an agent JWT, a truncated, padded or
 * upper-cased token never reaches the store lookup.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "nonflex.h"
#include "testutil.h"
#include "webchat.h"

#define SID	"0123456789abcdef0123456789abcdef"
#define SECRET	"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

START_TEST(good_token)
{
	char	 sid[NF_WEBCHAT_SID_LEN + 1];

	ck_assert_int_eq(nf_webchat_token_parse("wc1." SID "." SECRET, sid), 1);
	ck_assert_str_eq(sid, SID);
}
END_TEST

START_TEST(bad_tokens)
{
	static const char *const bad[] = {
		"",
		"wc1.",
		"wc2." SID "." SECRET,                    /* other version */
		"WC1." SID "." SECRET,
		"wc1." SID "." SECRET "0",                /* too long */
		"wc1." SID "." SECRET "\n",
		"wc1." SID ":" SECRET,                     /* wrong separator */
		"wc1.0123456789ABCDEF0123456789abcdef." SECRET,   /* upper case */
		"wc1." SID ".00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg",
		"wc1.0123456789abcdef0123456789abcde." SECRET "0", /* shifted dot */
		/* An agent token (JWT shaped) is never a web-chat token. */
		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
		NULL,
	};
	char	 sid[NF_WEBCHAT_SID_LEN + 1];
	size_t	 i;

	ck_assert_int_eq(nf_webchat_token_parse(NULL, sid), 0);
	for (i = 0; bad[i] != NULL; i++) {
		ck_assert_msg(nf_webchat_token_parse(bad[i], sid) == 0, "accepted #%zu", i);
		ck_assert_str_eq(sid, "");
	}
}
END_TEST

START_TEST(random_tokens_parse)
{
	char	 sid[NF_WEBCHAT_SID_LEN + 1], s[NF_WEBCHAT_SID_LEN + 1], *tok;
	char	 secret[NF_WEBCHAT_SECRET_LEN + 1];

	nf_random_hex(s, NF_WEBCHAT_SID_LEN / 2);
	nf_random_hex(secret, NF_WEBCHAT_SECRET_LEN / 2);
	tok = nf_xasprintf("%s%s.%s", NF_WEBCHAT_TOKEN_PREFIX, s, secret);
	ck_assert_uint_eq(strlen(tok), NF_WEBCHAT_TOKEN_LEN);
	ck_assert_int_eq(nf_webchat_token_parse(tok, sid), 1);
	ck_assert_str_eq(sid, s);
	free(tok);
}
END_TEST

int
main(void)
{
	TCase	*tc;
	Suite	*s = tu_suite("webchat", &tc);

	tcase_add_test(tc, good_token);
	tcase_add_test(tc, bad_tokens);
	tcase_add_test(tc, random_tokens_parse);
	return tu_run(s);
}
