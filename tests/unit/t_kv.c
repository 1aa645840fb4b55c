/*
 * t_kv.c - unit tests for kv.c against a private redis-server: URL parsing,
 * key namespacing, locks, rate limits, dedupe, and behaviour while Redis is
 * down and after it comes back.
 *
 * Tests run without forking (CK_NOFORK): the redis-server started by
 * tu_redis_start belongs to this process and is stopped at exit.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <hiredis.h>

#include "nonflex.h"
#include "kv.h"
#include "testutil.h"

static char		*url;
static struct nf_kv	*kv;

static void
setup(void)
{
	struct nf_error	err;

	ck_assert_int_eq(nf_kv_open(url, 500, &kv, &err), NF_OK);
	ck_assert_int_eq(nf_kv_command(kv, NULL, &err, "FLUSHALL"), NF_OK);
}

static void
teardown(void)
{
	nf_kv_free(kv);
	kv = NULL;
}

START_TEST(t_url)
{
	static const char *good[] = {
		"redis://127.0.0.1", "redis://localhost:6380", "redis://:pw@h:1/2",
		"redis://user:p%40ss@h", "redis://[::1]:6379/0", "unix:///run/r.sock",
		"unix:///run/r.sock?db=3",
	};
	static const char *bad[] = {
		"", "http://x", "redis://", "redis://h:0", "redis://h:99999",
		"redis://h:12x", "redis://h/abc", "redis://pw@h", "unix://", "unix://rel",
		"unix:///s?db=x", "redis://:p%zz@h", "redis://[::1",
	};
	struct nf_kv	*k;
	struct nf_error	 err;
	size_t		 i;

	for (i = 0; i < NF_ARRAY_LEN(good); i++) {
		ck_assert_msg(nf_kv_open(good[i], 0, &k, &err) == NF_OK, "%s", good[i]);
		nf_kv_free(k);
	}
	for (i = 0; i < NF_ARRAY_LEN(bad); i++) {
		ck_assert_msg(nf_kv_open(bad[i], 0, &k, &err) == NF_EINVAL, "%s", bad[i]);
		ck_assert_ptr_null(k);
		ck_assert_str_eq(err.code, "invalid_redis_url");
		ck_assert_ptr_null(strstr(err.message, "p%"));
	}
	ck_assert_int_eq(nf_kv_open(NULL, 0, &k, &err), NF_EINVAL);
}
END_TEST

START_TEST(t_key)
{
	char	*k;

	k = nf_kv_key("tenant1", "lock", "conv:42");
	ck_assert_str_eq(k, "nf:tenant1:lock:conv:42");
	free(k);
	ck_assert_ptr_null(nf_kv_key("ten ant", "lock", "x"));
	ck_assert_ptr_null(nf_kv_key("t", "lock", "a\nb"));
	ck_assert_ptr_null(nf_kv_key("t", "lock", "a\r"));
	ck_assert_ptr_null(nf_kv_key("t", "lock", ""));
	ck_assert_ptr_null(nf_kv_key("", "lock", "x"));
	ck_assert_ptr_null(nf_kv_key("t:x", "lock", "x"));
	ck_assert_ptr_null(nf_kv_key(NULL, "lock", "x"));
}
END_TEST

START_TEST(t_lock)
{
	struct nf_error	 err;
	char		 tok[33], tok2[33];

	ck_assert_int_eq(nf_kv_lock_acquire(kv, "t1", "conv1", 10000, tok, &err), NF_OK);
	ck_assert_uint_eq(strlen(tok), 32);
	/* held: a second acquire conflicts, another tenant's same name does not */
	ck_assert_int_eq(nf_kv_lock_acquire(kv, "t1", "conv1", 10000, tok2, &err),
	    NF_ECONFLICT);
	ck_assert_str_eq(err.code, "lock_held");
	ck_assert_str_eq(tok2, "");
	ck_assert_int_eq(nf_kv_lock_acquire(kv, "t2", "conv1", 10000, tok2, &err), NF_OK);
	/* the wrong token cannot release */
	ck_assert_int_eq(nf_kv_lock_release(kv, "t1", "conv1", tok2, &err), NF_ECONFLICT);
	ck_assert_str_eq(err.code, "lock_not_held");
	ck_assert_int_eq(nf_kv_lock_release(kv, "t1", "conv1", "", &err), NF_ECONFLICT);
	ck_assert_int_eq(nf_kv_lock_release(kv, "t1", "conv1", tok, &err), NF_OK);
	/* released twice: conflict; then free to take again */
	ck_assert_int_eq(nf_kv_lock_release(kv, "t1", "conv1", tok, &err), NF_ECONFLICT);
	ck_assert_int_eq(nf_kv_lock_acquire(kv, "t1", "conv1", 10000, tok, &err), NF_OK);
	/* bad input */
	ck_assert_int_eq(nf_kv_lock_acquire(kv, "t1", "a b", 1000, tok, &err), NF_EINVAL);
	ck_assert_int_eq(nf_kv_lock_acquire(kv, "t1", "x", 0, tok, &err), NF_EINVAL);
}
END_TEST

START_TEST(t_lock_expiry)
{
	struct nf_error	 err;
	char		 tok[33], tok2[33];

	ck_assert_int_eq(nf_kv_lock_acquire(kv, "t1", "c", 100, tok, &err), NF_OK);
	usleep(200 * 1000);
	/* expired: someone else takes it and the stale holder cannot release */
	ck_assert_int_eq(nf_kv_lock_acquire(kv, "t1", "c", 10000, tok2, &err), NF_OK);
	ck_assert_int_eq(nf_kv_lock_release(kv, "t1", "c", tok, &err), NF_ECONFLICT);
	ck_assert_int_eq(nf_kv_lock_release(kv, "t1", "c", tok2, &err), NF_OK);
}
END_TEST

START_TEST(t_ratelimit)
{
	struct nf_error	 err;
	int64_t		 ra;
	int		 ok, i;

	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(nf_kv_ratelimit_hit(kv, "t1", "login:1.2.3.4", 3, 1000,
		    &ok, &ra, &err), NF_OK);
		ck_assert_int_eq(ok, 1);
		ck_assert_int_eq(ra, 0);
	}
	ck_assert_int_eq(nf_kv_ratelimit_hit(kv, "t1", "login:1.2.3.4", 3, 1000,
	    &ok, &ra, &err), NF_OK);
	ck_assert_int_eq(ok, 0);
	ck_assert_int_gt(ra, 0);
	ck_assert_int_le(ra, 1000);
	/* other tenant, same bucket: separate counter */
	ck_assert_int_eq(nf_kv_ratelimit_hit(kv, "t2", "login:1.2.3.4", 3, 1000,
	    &ok, &ra, &err), NF_OK);
	ck_assert_int_eq(ok, 1);
	/* a new window opens after the old one ends */
	usleep((useconds_t)(1100 * 1000));
	ck_assert_int_eq(nf_kv_ratelimit_hit(kv, "t1", "login:1.2.3.4", 3, 1000,
	    &ok, &ra, &err), NF_OK);
	ck_assert_int_eq(ok, 1);
	ck_assert_int_eq(nf_kv_ratelimit_hit(kv, "t1", "x", 3, 0, &ok, &ra, &err),
	    NF_EINVAL);
}
END_TEST

START_TEST(t_ratelimit_retry_after)
{
	struct nf_error	 err;
	int64_t		 ra;
	int		 ok;

	ck_assert_int_eq(nf_kv_ratelimit_hit(kv, "t1", "b", 0, 5000, &ok, &ra, &err), NF_OK);
	ck_assert_int_eq(ok, 0);
	ck_assert_int_gt(ra, 4000);
	ck_assert_int_le(ra, 5000);
	usleep(300 * 1000);
	ck_assert_int_eq(nf_kv_ratelimit_hit(kv, "t1", "b", 0, 5000, &ok, &ra, &err), NF_OK);
	/* fixed window: the second hit does not extend it */
	ck_assert_int_le(ra, 4750);
}
END_TEST

/* A reset bucket counts from zero again; other buckets keep their count. */
START_TEST(t_ratelimit_reset)
{
	struct nf_error	 err;
	int64_t		 ra;
	int		 ok, i;

	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(nf_kv_ratelimit_hit(kv, "t1", "r", 2, 60000, &ok, &ra,
		    &err), NF_OK);
		ck_assert_int_eq(nf_kv_ratelimit_hit(kv, "t1", "other", 2, 60000, &ok, &ra,
		    &err), NF_OK);
	}
	ck_assert_int_eq(ok, 0);
	ck_assert_int_eq(nf_kv_ratelimit_reset(kv, "t1", "r", &err), NF_OK);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(nf_kv_ratelimit_hit(kv, "t1", "r", 2, 60000, &ok, &ra,
		    &err), NF_OK);
		ck_assert_int_eq(ok, 1);
	}
	ck_assert_int_eq(nf_kv_ratelimit_hit(kv, "t1", "other", 2, 60000, &ok, &ra, &err),
	    NF_OK);
	ck_assert_int_eq(ok, 0);
	/* resetting a bucket that was never hit is fine */
	ck_assert_int_eq(nf_kv_ratelimit_reset(kv, "t1", "never", &err), NF_OK);
	ck_assert_int_eq(nf_kv_ratelimit_reset(kv, "t1", "bad key", &err), NF_EINVAL);
}
END_TEST

START_TEST(t_dedupe)
{
	struct nf_error	 err;
	int		 first;

	ck_assert_int_eq(nf_kv_dedupe(kv, "t1", "SM123", 60000, &first, &err), NF_OK);
	ck_assert_int_eq(first, 1);
	ck_assert_int_eq(nf_kv_dedupe(kv, "t1", "SM123", 60000, &first, &err), NF_OK);
	ck_assert_int_eq(first, 0);
	ck_assert_int_eq(nf_kv_dedupe(kv, "t2", "SM123", 60000, &first, &err), NF_OK);
	ck_assert_int_eq(first, 1);
	ck_assert_int_eq(nf_kv_dedupe(kv, "t1", "S M", 60000, &first, &err), NF_EINVAL);
}
END_TEST

START_TEST(t_namespacing)
{
	struct nf_error	 err;
	struct redisReply *r;
	char		 tok[33];
	int		 first;

	ck_assert_int_eq(nf_kv_lock_acquire(kv, "t1", "n", 10000, tok, &err), NF_OK);
	ck_assert_int_eq(nf_kv_dedupe(kv, "t1", "n", 10000, &first, &err), NF_OK);
	ck_assert_int_eq(nf_kv_command(kv, &r, &err, "KEYS %s", "*"), NF_OK);
	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	ck_assert_uint_eq(r->elements, 2);
	freeReplyObject(r);
	ck_assert_int_eq(nf_kv_command(kv, &r, &err, "GET %s", "nf:t1:lock:n"), NF_OK);
	ck_assert_str_eq(r->str, tok);
	freeReplyObject(r);
	ck_assert_int_eq(nf_kv_command(kv, &r, &err, "EXISTS %s", "nf:t1:dedupe:n"), NF_OK);
	ck_assert_int_eq(r->integer, 1);
	freeReplyObject(r);
	/* a Redis error reply is NF_ESYSTEM with the reply handed back */
	ck_assert_int_eq(nf_kv_command(kv, &r, &err, "NOSUCHCOMMAND"), NF_ESYSTEM);
	ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);
	/* values with spaces travel as one argument */
	ck_assert_int_eq(nf_kv_command(kv, NULL, &err, "SET %s %s", "nf:t1:x:y",
	    "a b\r\nPING"), NF_OK);
	ck_assert_int_eq(nf_kv_command(kv, &r, &err, "STRLEN %s", "nf:t1:x:y"), NF_OK);
	ck_assert_int_eq(r->integer, 9);
	freeReplyObject(r);
}
END_TEST

START_TEST(t_script_reload)
{
	struct nf_error	 err;
	char		 tok[33];

	/* a flushed script cache is transparently re-sent with EVAL */
	ck_assert_int_eq(nf_kv_lock_acquire(kv, "t1", "s", 10000, tok, &err), NF_OK);
	ck_assert_int_eq(nf_kv_command(kv, NULL, &err, "SCRIPT FLUSH"), NF_OK);
	ck_assert_int_eq(nf_kv_lock_release(kv, "t1", "s", tok, &err), NF_OK);
}
END_TEST

START_TEST(t_down_and_back)
{
	struct nf_error	 err;
	int64_t		 t0, dt;
	char		 tok[33];
	int		 i, first;

	ck_assert_int_eq(nf_kv_ping(kv, &err), NF_OK);
	tu_redis_kill();
	for (i = 0; i < 5; i++) {
		t0 = nf_mono_ms();
		ck_assert_int_eq(nf_kv_ping(kv, &err), NF_EUNAVAIL);
		ck_assert_str_eq(err.code, "redis_unavailable");
		dt = nf_mono_ms() - t0;
		ck_assert_int_lt(dt, 1000);
	}
	t0 = nf_mono_ms();
	ck_assert_int_eq(nf_kv_lock_acquire(kv, "t1", "x", 1000, tok, &err), NF_EUNAVAIL);
	ck_assert_int_eq(nf_kv_dedupe(kv, "t1", "x", 1000, &first, &err), NF_EUNAVAIL);
	ck_assert_int_lt(nf_mono_ms() - t0, 1000);
	ck_assert_int_eq(tu_redis_restart(), 0);
	/* past the reconnect backoff the very next call succeeds */
	usleep(300 * 1000);
	ck_assert_int_eq(nf_kv_ping(kv, &err), NF_OK);
	ck_assert_int_eq(nf_kv_lock_acquire(kv, "t1", "x", 1000, tok, &err), NF_OK);
	/* a restart under an open connection costs only the call in flight */
	ck_assert_int_eq(tu_redis_restart(), 0);
	if (nf_kv_ping(kv, &err) != NF_OK)
		ck_assert_int_eq(nf_kv_ping(kv, &err), NF_OK);
}
END_TEST

/* Collects what a subscription delivers. */
struct got {
	char	 msgs[8][64];
	int	 n;
};

static void
collect(void *ctx, const char *msg, size_t len)
{
	struct got	*g = ctx;

	if (g->n < 8)
		snprintf(g->msgs[g->n++], sizeof(g->msgs[0]), "%.*s", (int)len, msg);
}

/* Poll until n messages arrived or a second passed. */
static int
poll_for(struct nf_kv_sub *sub, struct got *g, int n)
{
	int64_t	 until = nf_mono_ms() + 1000;
	int	 rc = 0;

	while (g->n < n && nf_mono_ms() < until && (rc = nf_kv_sub_poll(sub, collect, g)) == 0)
		usleep(2000);
	return rc;
}

START_TEST(t_pubsub)
{
	struct nf_kv_sub	*sub = NULL;
	struct nf_error		 err;
	struct got		 g = { .n = 0 };

	ck_assert_int_eq(nf_kv_sub_open(kv, "chan-a", &sub, &err), NF_OK);
	/* nothing pending: returns at once, delivers nothing */
	ck_assert_int_eq(nf_kv_sub_poll(sub, collect, &g), 0);
	ck_assert_int_eq(g.n, 0);
	ck_assert_int_eq(nf_kv_publish(kv, "chan-b", "elsewhere", &err), NF_OK);
	ck_assert_int_eq(nf_kv_publish(kv, "chan-a", "revoke t1 abc", &err), NF_OK);
	ck_assert_int_eq(nf_kv_publish(kv, "chan-a", "agent t1 def", &err), NF_OK);
	ck_assert_int_eq(poll_for(sub, &g, 2), 0);
	ck_assert_int_eq(g.n, 2);
	ck_assert_str_eq(g.msgs[0], "revoke t1 abc");   /* in order, only chan-a */
	ck_assert_str_eq(g.msgs[1], "agent t1 def");
	/* a Redis restart breaks the subscription: the caller must learn it */
	ck_assert_int_eq(tu_redis_restart(), 0);
	ck_assert_int_eq(poll_for(sub, &g, 3), -1);
	nf_kv_sub_free(sub);
	usleep(300 * 1000);
	ck_assert_int_eq(nf_kv_sub_open(kv, "chan-a", &sub, &err), NF_OK);
	nf_kv_sub_free(sub);
	/* and while Redis is down, no subscription can be opened */
	tu_redis_kill();
	ck_assert_int_eq(nf_kv_sub_open(kv, "chan-a", &sub, &err), NF_EUNAVAIL);
	ck_assert_ptr_null(sub);
	ck_assert_int_eq(tu_redis_restart(), 0);
}
END_TEST

static Suite *
kv_suite(void)
{
	Suite	*s = suite_create("kv");
	TCase	*tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, t_url);
	tcase_add_test(tc, t_key);
	tcase_add_test(tc, t_lock);
	tcase_add_test(tc, t_lock_expiry);
	tcase_add_test(tc, t_ratelimit);
	tcase_add_test(tc, t_ratelimit_retry_after);
	tcase_add_test(tc, t_ratelimit_reset);
	tcase_add_test(tc, t_dedupe);
	tcase_add_test(tc, t_namespacing);
	tcase_add_test(tc, t_script_reload);
	tcase_add_test(tc, t_down_and_back);
	tcase_add_test(tc, t_pubsub);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_main_redis(kv_suite, &url);
}
