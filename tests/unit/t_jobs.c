/*
 * t_jobs.c - unit tests for the reliable job queue (jobs.c) against a
 * private redis-server: enqueue/reserve/ack, retries with backoff within
 * bounds, dead letters after max attempts and at once for permanent
 * failures, delayed promotion, a runner SIGKILLed mid-job being reaped and
 * its job completed exactly once by another runner, and three concurrent
 * runner processes completing 300 jobs exactly once each.  The outbox
 * (RELIABILITY battery 55), on a temporary SQLite store: a submit while
 * Redis is down is kept in the store and drained after the restart with
 * its id, payload and due time; a drainer "crashing" between push and
 * delete does not cause a second copy; three drainer processes racing over
 * one outbox queue every job exactly once.
 *
 * Tests run without forking by Check (CK_NOFORK) because the redis-server
 * belongs to this process; the tests that need other runner processes fork
 * them and those children leave with _exit.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <sys/types.h>
#include <sys/wait.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <hiredis.h>
#include <json-c/json.h>

#include "nonflex.h"
#include "kv.h"
#include "jobs.h"
#include "store.h"
#include "testutil.h"

static char		*url;
static struct nf_kv	*kv;
static pid_t		 blocked = -1;  /* child runner stuck in a handler */
static char		*tmp;           /* this test's directory */
static char		*store_uri;     /* sqlite:///<tmp>/store.db */
static struct nf_store	*st;

static void
setup(void)
{
	struct nf_error	err;

	ck_assert_int_eq(nf_kv_open(url, 1000, &kv, &err), NF_OK);
	ck_assert_int_eq(nf_kv_command(kv, NULL, &err, "FLUSHALL"), NF_OK);
	tmp = tu_tmpdir("jobs");
	store_uri = nf_xasprintf("sqlite://%s/store.db", tmp);
	ck_assert_int_eq(nf_store_open(store_uri, &st, &err), NF_OK);
}

/* A failed assertion must not leave a blocked child runner behind. */
static void
kill_blocked(void)
{
	if (blocked > 0) {
		kill(blocked, SIGKILL);
		waitpid(blocked, NULL, 0);
	}
	blocked = -1;
}

static void
teardown(void)
{
	kill_blocked();
	nf_kv_free(kv);
	kv = NULL;
	nf_store_free(st);
	st = NULL;
	tu_rmtree(tmp);
	free(tmp);
	free(store_uri);
	tmp = store_uri = NULL;
}

static struct nf_jobs_config
test_cfg(int max_attempts, int64_t heartbeat_ms)
{
	struct nf_jobs_config	c;

	nf_jobs_config_defaults(&c);
	c.max_attempts = max_attempts;
	c.heartbeat_ms = heartbeat_ms;
	return c;
}

static struct nf_jobs_counts
counts(void)
{
	struct nf_jobs_counts	c;
	struct nf_error		err;

	ck_assert_int_eq(nf_jobs_counts(kv, &c, &err), NF_OK);
	return c;
}

static long long
redis_int(const char *fmt, const char *a, const char *b)
{
	struct redisReply	*r;
	struct nf_error		 err;
	long long		 v = -1;

	ck_assert_int_eq(nf_kv_command(kv, &r, &err, fmt, a, b), NF_OK);
	if (r->type == REDIS_REPLY_INTEGER)
		v = r->integer;
	else if (r->type == REDIS_REPLY_STRING)
		v = atoll(r->str);
	freeReplyObject(r);
	return v;
}

static char *
redis_str(const char *fmt, const char *a, const char *b)
{
	struct redisReply	*r;
	struct nf_error		 err;
	char			*s = NULL;

	ck_assert_int_eq(nf_kv_command(kv, &r, &err, fmt, a, b), NF_OK);
	if (r->type == REDIS_REPLY_STRING)
		s = nf_xstrdup(r->str);
	freeReplyObject(r);
	return s;
}

static struct json_object *
payload(const char *k, const char *v)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, k, json_object_new_string(v));
	return o;
}

START_TEST(t_config)
{
	struct nf_jobs_config	c;
	struct nf_error		err;

	unsetenv("NONFLEX_JOBS_MAX_ATTEMPTS");
	ck_assert_int_eq(nf_jobs_config_env(&c, &err), NF_OK);
	ck_assert_int_eq(c.max_attempts, 5);
	ck_assert_int_eq(c.backoff_base_ms, 1000);
	ck_assert_int_eq(c.backoff_max_ms, 300000);
	ck_assert_int_eq(c.heartbeat_ms, 5000);
	setenv("NONFLEX_JOBS_MAX_ATTEMPTS", "0", 1);
	ck_assert_int_eq(nf_jobs_config_env(&c, &err), NF_EINVAL);
	ck_assert_str_eq(err.field, "NONFLEX_JOBS_MAX_ATTEMPTS");
	setenv("NONFLEX_JOBS_MAX_ATTEMPTS", "7x", 1);
	ck_assert_int_eq(nf_jobs_config_env(&c, &err), NF_EINVAL);
	setenv("NONFLEX_JOBS_MAX_ATTEMPTS", "101", 1);
	ck_assert_int_eq(nf_jobs_config_env(&c, &err), NF_EINVAL);
	setenv("NONFLEX_JOBS_MAX_ATTEMPTS", "9", 1);
	setenv("NONFLEX_JOBS_HEARTBEAT_MS", "-5", 1);
	ck_assert_int_eq(nf_jobs_config_env(&c, &err), NF_EINVAL);
	setenv("NONFLEX_JOBS_HEARTBEAT_MS", "200", 1);
	ck_assert_int_eq(nf_jobs_config_env(&c, &err), NF_OK);
	ck_assert_int_eq(c.max_attempts, 9);
	ck_assert_int_eq(c.heartbeat_ms, 200);
	unsetenv("NONFLEX_JOBS_MAX_ATTEMPTS");
	unsetenv("NONFLEX_JOBS_HEARTBEAT_MS");
	nf_jobs_config_defaults(&c);
	ck_assert_int_eq(nf_jobs_backoff_bound(&c, 1), 1000);
	ck_assert_int_eq(nf_jobs_backoff_bound(&c, 2), 2000);
	ck_assert_int_eq(nf_jobs_backoff_bound(&c, 5), 16000);
	ck_assert_int_eq(nf_jobs_backoff_bound(&c, 9), 256000);
	ck_assert_int_eq(nf_jobs_backoff_bound(&c, 10), 300000);
	ck_assert_int_eq(nf_jobs_backoff_bound(&c, 100), 300000);
}
END_TEST

START_TEST(t_enqueue_bad)
{
	struct json_object	*arr = json_object_new_array();
	struct nf_error		 err;
	char			 id[25];

	ck_assert_int_eq(nf_jobs_enqueue(kv, "Bad Tenant", "x", NULL, 0, id, &err), NF_EINVAL);
	ck_assert_str_eq(id, "");
	ck_assert_int_eq(nf_jobs_enqueue(kv, "t1", "", NULL, 0, id, &err), NF_EINVAL);
	ck_assert_int_eq(nf_jobs_enqueue(kv, "t1", "a b", NULL, 0, id, &err), NF_EINVAL);
	ck_assert_int_eq(nf_jobs_enqueue(kv, NULL, "x", NULL, 0, id, &err), NF_EINVAL);
	ck_assert_int_eq(nf_jobs_enqueue(kv, "t1", "x", arr, 0, id, &err), NF_EINVAL);
	ck_assert_str_eq(err.field, "payload");
	ck_assert_int_eq(nf_jobs_enqueue(kv, "t1", "x", NULL, -1, id, &err), NF_EINVAL);
	ck_assert_int_eq(nf_jobs_enqueue_max(kv, "t1", "x", NULL, 0, 0, id, &err), NF_EINVAL);
	json_object_put(arr);
	ck_assert_int_eq(counts().ready + counts().delayed, 0);
}
END_TEST

START_TEST(t_enqueue_reserve_ack)
{
	struct nf_jobs_config	 c = test_cfg(5, 5000);
	struct nf_jobs_runner	*r;
	struct json_object	*p = payload("k", "v\"\n\xc3\xa9");
	struct nf_job		*j;
	struct nf_error		 err;
	char			 id[25];

	ck_assert_int_eq(nf_jobs_enqueue(kv, "tenant1", "demo.job", p, 0, id, &err), NF_OK);
	json_object_put(p);
	ck_assert_uint_eq(strlen(id), 24);
	ck_assert_int_eq(counts().ready, 1);
	ck_assert_int_eq(nf_jobs_runner_new(url, &c, &r, &err), NF_OK);
	ck_assert_int_eq(nf_jobs_runner_reserve(r, 0, &j, &err), NF_OK);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(j->id, id);
	ck_assert_str_eq(j->type, "demo.job");
	ck_assert_str_eq(j->tenant, "tenant1");
	ck_assert_str_eq(json_object_get_string(json_object_object_get(j->payload, "k")),
	    "v\"\n\xc3\xa9");
	ck_assert_int_eq(j->attempts, 0);
	ck_assert_int_eq(j->max_attempts, 5);
	ck_assert_ptr_null(j->last_error);
	ck_assert_int_le(j->enqueued_at, nf_now_ms());
	ck_assert_int_eq(counts().ready, 0);
	ck_assert_int_eq(counts().processing, 1);
	ck_assert_int_eq(nf_jobs_runner_ack(r, j, &err), NF_OK);
	ck_assert_int_eq(counts().processing, 0);
	ck_assert_int_eq(redis_int("HLEN %s", "nf:jobs:data", NULL), 0);
	ck_assert_int_eq(redis_int("HLEN %s", "nf:jobs:attempts", NULL), 0);
	/* a second ack of the same job conflicts */
	ck_assert_int_eq(nf_jobs_runner_ack(r, j, &err), NF_ECONFLICT);
	nf_jobs_job_free(j);
	/* empty queue: no job, no error, and a wait of 100 ms is honoured */
	ck_assert_int_eq(nf_jobs_runner_reserve(r, 100, &j, &err), NF_OK);
	ck_assert_ptr_null(j);
	nf_jobs_runner_free(r);
	/* a freed runner deregisters */
	ck_assert_int_eq(redis_int("SCARD %s", "nf:jobs:runners", NULL), 0);
}
END_TEST

/* Fail the reserved job and check the retry's due time is in its bounds. */
static void
fail_and_check(struct nf_jobs_runner *r, struct nf_job *j, int64_t bound)
{
	struct nf_error	 err;
	int64_t		 t0, t1;
	long long	 due;
	int		 dead = -1;

	t0 = nf_now_ms();
	ck_assert_int_eq(nf_jobs_runner_fail(r, j, 0, "remote said no", &dead, &err), NF_OK);
	t1 = nf_now_ms();
	ck_assert_int_eq(dead, 0);
	due = redis_int("ZSCORE %s %s", "nf:jobs:delayed", j->id);
	ck_assert_int_ge(due, t0);
	ck_assert_int_le(due, t1 + bound);
	ck_assert_int_eq(counts().delayed, 1);
	ck_assert_int_eq(counts().processing, 0);
}

START_TEST(t_retry_backoff_dead)
{
	struct nf_jobs_config	 c = test_cfg(3, 5000);
	struct nf_jobs_runner	*r;
	struct json_object	*dl, *o;
	struct nf_job		*j;
	struct nf_error		 err;
	char			 id[25];
	int			 n, dead;

	ck_assert_int_eq(nf_jobs_enqueue_max(kv, "t1", "flaky", NULL, 0, 3, id, &err), NF_OK);
	ck_assert_int_eq(nf_jobs_runner_new(url, &c, &r, &err), NF_OK);
	ck_assert_int_eq(nf_jobs_runner_reserve(r, 0, &j, &err), NF_OK);
	fail_and_check(r, j, 1000);
	nf_jobs_job_free(j);
	/* not due yet: nothing to reserve */
	ck_assert_int_eq(nf_jobs_promote(kv, nf_now_ms() - 1, &n, &err), NF_OK);
	ck_assert_int_eq(nf_jobs_runner_reserve(r, 0, &j, &err), NF_OK);
	ck_assert_ptr_null(j);
	ck_assert_int_eq(nf_jobs_promote(kv, nf_now_ms() + 10000, &n, &err), NF_OK);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(nf_jobs_runner_reserve(r, 0, &j, &err), NF_OK);
	ck_assert_int_eq(j->attempts, 1);
	ck_assert_str_eq(j->last_error, "remote said no");
	fail_and_check(r, j, 2000);
	nf_jobs_job_free(j);
	ck_assert_int_eq(nf_jobs_promote(kv, nf_now_ms() + 10000, &n, &err), NF_OK);
	ck_assert_int_eq(nf_jobs_runner_reserve(r, 0, &j, &err), NF_OK);
	ck_assert_int_eq(j->attempts, 2);
	/* third failure of three: dead letter with its last error */
	ck_assert_int_eq(nf_jobs_runner_fail(r, j, 0, "still no", &dead, &err), NF_OK);
	ck_assert_int_eq(dead, 1);
	nf_jobs_job_free(j);
	ck_assert_int_eq(counts().dead, 1);
	ck_assert_int_eq(counts().delayed, 0);
	ck_assert_int_eq(nf_jobs_dead_list(kv, 0, 10, &dl, &err), NF_OK);
	ck_assert_uint_eq(json_object_array_length(dl), 1);
	o = json_object_array_get_idx(dl, 0);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "id")), id);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "lastError")),
	    "still no");
	ck_assert_int_eq(json_object_get_int(json_object_object_get(o, "attempts")), 3);
	json_object_put(dl);
	ck_assert_int_eq(nf_jobs_dead_list(kv, 0, 0, &dl, &err), NF_EINVAL);
	/* requeue from the dead letters with attempts reset */
	ck_assert_int_eq(nf_jobs_dead_requeue(kv, id, &err), NF_OK);
	ck_assert_int_eq(nf_jobs_dead_requeue(kv, id, &err), NF_ENOTFOUND);
	ck_assert_int_eq(nf_jobs_dead_requeue(kv, "not an id", &err), NF_EINVAL);
	ck_assert_int_eq(nf_jobs_runner_reserve(r, 0, &j, &err), NF_OK);
	ck_assert_int_eq(j->attempts, 0);
	ck_assert_int_eq(nf_jobs_runner_fail(r, j, 1, "bad", NULL, &err), NF_OK);
	nf_jobs_job_free(j);
	ck_assert_int_eq(nf_jobs_dead_delete(kv, id, &err), NF_OK);
	ck_assert_int_eq(nf_jobs_dead_delete(kv, id, &err), NF_ENOTFOUND);
	ck_assert_int_eq(redis_int("HLEN %s", "nf:jobs:data", NULL), 0);
	nf_jobs_runner_free(r);
}
END_TEST

static enum nf_err
h_fail(const struct nf_job *j, void *arg, struct nf_error *err)
{
	(void)j;
	return nf_error_set(err, (enum nf_err)(intptr_t)arg, NULL, NULL, "handler failed");
}

START_TEST(t_step_outcomes)
{
	struct nf_jobs_config	 c = test_cfg(2, 5000);
	struct nf_jobs_runner	*r;
	struct nf_error		 err;
	char			 idp[25], idr[25], idu[25], *e;
	int			 ran;

	ck_assert_int_eq(nf_jobs_runner_new(url, &c, &r, &err), NF_OK);
	nf_jobs_runner_register(r, "perm", h_fail, (void *)(intptr_t)NF_EINVAL);
	nf_jobs_runner_register(r, "retry", h_fail, (void *)(intptr_t)NF_EUPSTREAM);
	ck_assert_int_eq(nf_jobs_enqueue_max(kv, "t1", "perm", NULL, 0, 2, idp, &err), NF_OK);
	/* no maxAttempts of its own: the runner's (2) applies */
	ck_assert_int_eq(nf_jobs_enqueue(kv, "t1", "retry", NULL, 0, idr, &err), NF_OK);
	ck_assert_int_eq(nf_jobs_enqueue_max(kv, "t1", "nobody.handles", NULL, 0, 2, idu,
	    &err), NF_OK);
	/* FIFO: perm, retry, unknown */
	ck_assert_int_eq(nf_jobs_runner_step(r, 0, &ran, &err), NF_OK);
	ck_assert_int_eq(ran, 1);
	/* a permanent failure is dead at once, after one attempt */
	ck_assert_int_eq(counts().dead, 1);
	ck_assert_int_eq(redis_int("HGET %s %s", "nf:jobs:attempts", idp), 1);
	ck_assert_int_eq(nf_jobs_runner_step(r, 0, &ran, &err), NF_OK);
	ck_assert_int_eq(counts().delayed, 1);
	e = redis_str("HGET %s %s", "nf:jobs:error", idr);
	ck_assert_str_eq(e, "handler failed");
	free(e);
	ck_assert_int_eq(nf_jobs_runner_step(r, 0, &ran, &err), NF_OK);
	ck_assert_int_eq(counts().dead, 2);
	e = redis_str("HGET %s %s", "nf:jobs:error", idu);
	ck_assert_ptr_nonnull(strstr(e, "No handler"));
	free(e);
	ck_assert_int_eq(nf_jobs_runner_step(r, 0, &ran, &err), NF_OK);
	ck_assert_int_eq(ran, 0);
	/* second (last) attempt of the retryable one */
	ck_assert_int_eq(nf_jobs_promote(kv, nf_now_ms() + 10000, NULL, &err), NF_OK);
	ck_assert_int_eq(nf_jobs_runner_step(r, 0, &ran, &err), NF_OK);
	ck_assert_int_eq(ran, 1);
	ck_assert_int_eq(counts().dead, 3);
	ck_assert_int_eq(counts().delayed, 0);
	nf_jobs_runner_free(r);
}
END_TEST

START_TEST(t_delayed_promotion)
{
	struct nf_jobs_config	 c = test_cfg(5, 5000);
	struct nf_jobs_runner	*r;
	struct nf_job		*j;
	struct nf_error		 err;
	char			 id[25];
	int			 n;

	ck_assert_int_eq(nf_jobs_enqueue(kv, "t1", "later", NULL, 300, id, &err), NF_OK);
	ck_assert_int_eq(counts().delayed, 1);
	ck_assert_int_eq(counts().ready, 0);
	ck_assert_int_eq(nf_jobs_promote(kv, nf_now_ms(), &n, &err), NF_OK);
	ck_assert_int_eq(n, 0);
	usleep(350 * 1000);
	ck_assert_int_eq(nf_jobs_promote(kv, nf_now_ms(), &n, &err), NF_OK);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(counts().delayed, 0);
	ck_assert_int_eq(nf_jobs_runner_new(url, &c, &r, &err), NF_OK);
	ck_assert_int_eq(nf_jobs_runner_reserve(r, 0, &j, &err), NF_OK);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(j->id, id);
	ck_assert_int_eq(nf_jobs_runner_ack(r, j, &err), NF_OK);
	nf_jobs_job_free(j);
	nf_jobs_runner_free(r);
}
END_TEST

/* Handlers for the multi-process tests: count runs in a Redis hash. */
static enum nf_err
h_count(const struct nf_job *j, void *arg, struct nf_error *err)
{
	struct nf_jobs_runner	*r = arg;

	return nf_kv_command(nf_jobs_runner_kv(r), NULL, err, "HINCRBY %s %s 1",
	    "test:done", j->id);
}

static enum nf_err
h_block(const struct nf_job *j, void *arg, struct nf_error *err)
{
	struct nf_jobs_runner	*r = arg;

	nf_kv_command(nf_jobs_runner_kv(r), NULL, err, "RPUSH %s %s", "test:started", j->id);
	for (;;)
		pause();
	return NF_OK;
}

/* Child runner process: run jobs until none is left (or forever for h_block). */
static void
child_runner(const struct nf_jobs_config *c, nf_jobs_fn fn)
{
	struct nf_jobs_runner	*r;
	struct nf_error		 err;
	int			 ran, idle = 0;

	if (nf_jobs_runner_new(url, c, &r, &err) != NF_OK)
		_exit(3);
	nf_jobs_runner_register(r, "work", fn, r);
	while (idle < 3) {
		if (nf_jobs_runner_step(r, 100, &ran, &err) != NF_OK)
			_exit(4);
		idle = ran ? 0 : idle + 1;
	}
	nf_jobs_runner_free(r);
	_exit(0);
}

START_TEST(t_runner_killed)
{
	struct nf_jobs_config	 c = test_cfg(5, 100);
	struct nf_jobs_runner	*r;
	struct nf_error		 err;
	char			 id[25], *e;
	pid_t			 pid;
	int			 i, ran, reaped;

	ck_assert_int_eq(nf_jobs_enqueue(kv, "t1", "work", NULL, 0, id, &err), NF_OK);
	if ((pid = blocked = fork()) == 0)
		child_runner(&c, h_block);
	ck_assert_int_gt(pid, 0);
	for (i = 0; i < 250 && redis_int("LLEN %s", "test:started", NULL) == 0; i++)
		usleep(20 * 1000);
	ck_assert_int_eq(redis_int("LLEN %s", "test:started", NULL), 1);
	ck_assert_int_eq(counts().processing, 1);
	kill_blocked();

	ck_assert_int_eq(nf_jobs_runner_new(url, &c, &r, &err), NF_OK);
	nf_jobs_runner_register(r, "work", h_count, r);
	/* after the heartbeat TTL (3 x 100 ms) the dead runner is reaped */
	usleep(450 * 1000);
	ck_assert_int_eq(nf_jobs_runner_reap(r, &reaped, &err), NF_OK);
	ck_assert_int_eq(reaped, 1);
	ck_assert_int_eq(counts().processing, 0);
	ck_assert_int_eq(counts().ready, 1);
	e = redis_str("HGET %s %s", "nf:jobs:error", id);
	ck_assert_ptr_nonnull(strstr(e, "runner lost"));
	free(e);
	ck_assert_int_eq(redis_int("HGET %s %s", "nf:jobs:attempts", id), 1);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(nf_jobs_runner_step(r, 0, &ran, &err), NF_OK);
	ck_assert_int_eq(redis_int("HGET %s %s", "test:done", id), 1);
	ck_assert_int_eq(redis_int("HLEN %s", "test:done", NULL), 1);
	ck_assert_int_eq(counts().ready + counts().processing + counts().delayed +
	    counts().dead, 0);
	/* our own live runner is never reaped */
	ck_assert_int_eq(nf_jobs_runner_reap(r, &reaped, &err), NF_OK);
	ck_assert_int_eq(reaped, 0);
	ck_assert_int_eq(redis_int("SISMEMBER %s %s", "nf:jobs:runners",
	    nf_jobs_runner_id(r)), 1);
	nf_jobs_runner_free(r);
}
END_TEST

START_TEST(t_runner_alive_not_reaped)
{
	struct nf_jobs_config	 c = test_cfg(5, 100);
	struct nf_jobs_runner	*r;
	struct nf_error		 err;
	char			 id[25];
	int			 i, reaped;

	ck_assert_int_eq(nf_jobs_enqueue(kv, "t1", "work", NULL, 0, id, &err), NF_OK);
	if ((blocked = fork()) == 0)
		child_runner(&c, h_block);
	for (i = 0; i < 250 && redis_int("LLEN %s", "test:started", NULL) == 0; i++)
		usleep(20 * 1000);
	ck_assert_int_eq(nf_jobs_runner_new(url, &c, &r, &err), NF_OK);
	/* the handler blocks for far longer than the TTL, but the heartbeat
	 * thread keeps the runner alive: its job must not be taken */
	usleep(800 * 1000);
	ck_assert_int_eq(nf_jobs_runner_reap(r, &reaped, &err), NF_OK);
	ck_assert_int_eq(reaped, 0);
	ck_assert_int_eq(counts().processing, 1);
	kill_blocked();
	nf_jobs_runner_free(r);
}
END_TEST

START_TEST(t_concurrent_runners)
{
	struct nf_jobs_config	 c = test_cfg(5, 1000);
	struct redisReply	*rep;
	struct nf_error		 err;
	pid_t			 pids[3];
	size_t			 i;
	int			 status;

	for (i = 0; i < 300; i++)
		ck_assert_int_eq(nf_jobs_enqueue(kv, "t1", "work", NULL, 0, NULL, &err), NF_OK);
	for (i = 0; i < 3; i++)
		if ((pids[i] = fork()) == 0)
			child_runner(&c, h_count);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	ck_assert_int_eq(redis_int("HLEN %s", "test:done", NULL), 300);
	ck_assert_int_eq(nf_kv_command(kv, &rep, &err, "HVALS %s", "test:done"), NF_OK);
	for (i = 0; i < rep->elements; i++)
		ck_assert_str_eq(rep->element[i]->str, "1");
	freeReplyObject(rep);
	ck_assert_int_eq(counts().ready + counts().processing + counts().delayed +
	    counts().dead, 0);
	ck_assert_int_eq(redis_int("SCARD %s", "nf:jobs:runners", NULL), 0);
}
END_TEST

START_TEST(t_redis_down)
{
	struct nf_jobs_config	 c = test_cfg(5, 5000);
	struct nf_jobs_runner	*r;
	struct nf_error		 err;
	int64_t			 t0;
	char			 id[25];
	int			 ran;

	ck_assert_int_eq(nf_jobs_runner_new(url, &c, &r, &err), NF_OK);
	tu_redis_kill();
	t0 = nf_mono_ms();
	ck_assert_int_eq(nf_jobs_enqueue(kv, "t1", "work", NULL, 0, id, &err), NF_EUNAVAIL);
	ck_assert_str_eq(err.code, "redis_unavailable");
	ck_assert_int_lt(nf_mono_ms() - t0, 1000);
	ck_assert_int_eq(nf_jobs_runner_step(r, 500, &ran, &err), NF_EUNAVAIL);
	ck_assert_int_eq(ran, 0);
	ck_assert_int_eq(tu_redis_restart(), 0);
	usleep(300 * 1000);
	nf_jobs_runner_register(r, "work", h_count, r);
	ck_assert_int_eq(nf_jobs_enqueue(kv, "t1", "work", NULL, 0, id, &err), NF_OK);
	ck_assert_int_eq(nf_jobs_runner_step(r, 0, &ran, &err), NF_OK);
	ck_assert_int_eq(ran, 1);
	ck_assert_int_eq(redis_int("HGET %s %s", "test:done", id), 1);
	nf_jobs_runner_free(r);
}
END_TEST

/* --- outbox ------------------------------------------------------------ */

static int64_t
outbox_n(const char *tenant)
{
	struct nf_error	err;
	int64_t		n = -1;

	ck_assert_int_eq(nf_jobs_outbox_count(st, tenant, &n, &err), NF_OK);
	return n;
}

static long long
seen(const char *id)
{
	char		*k = nf_xasprintf("nf:jobs:seen:%s", id);
	long long	 v = redis_int("EXISTS %s", k, NULL);

	free(k);
	return v;
}

START_TEST(t_submit_direct)
{
	struct json_object	*p = payload("k", "v");
	struct nf_error		 err;
	char			 id[25];
	int			 deferred = -1;

	ck_assert_int_eq(nf_jobs_submit(st, kv, "t1", "work", p, 0, id, &deferred, &err),
	    NF_OK);
	ck_assert_int_eq(deferred, 0);
	ck_assert_uint_eq(strlen(id), 24);
	ck_assert_int_eq(counts().ready, 1);
	ck_assert_int_eq(seen(id), 1);
	ck_assert_int_eq(outbox_n("t1"), 0);
	/* bad input is refused before Redis or the store see it */
	ck_assert_int_eq(nf_jobs_submit(st, NULL, "Bad Tenant", "work", p, 0, id, &deferred,
	    &err), NF_EINVAL);
	ck_assert_str_eq(id, "");
	ck_assert_int_eq(nf_jobs_submit(st, NULL, "t1", "a b", p, 0, id, &deferred, &err),
	    NF_EINVAL);
	ck_assert_int_eq(nf_jobs_submit(st, NULL, "t1", "work", p, -5, id, &deferred, &err),
	    NF_EINVAL);
	ck_assert_int_eq(outbox_n("t1"), 0);
	/* neither Redis nor a store: nothing can keep it */
	ck_assert_int_eq(nf_jobs_submit(NULL, NULL, "t1", "work", p, 0, id, &deferred, &err),
	    NF_EUNAVAIL);
	ck_assert_str_eq(err.code, "redis_unavailable");
	ck_assert_int_eq(deferred, 0);
	json_object_put(p);
	ck_assert_int_eq(counts().ready, 1);
}
END_TEST

/* A chosen id is queued once however often it is submitted, whether the
 * copies reach Redis or the outbox or both (a replayed webhook, a retry
 * after a crash). */
START_TEST(t_submit_id_once)
{
	static const char	 id[] = "0123456789abcdef01234567";
	struct json_object	*p = payload("k", "v");
	struct nf_error		 err;
	int			 deferred = -1, moved, i;

	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(nf_jobs_submit_id(st, kv, "t1", "work", p, 0, id, &deferred,
		    &err), NF_OK);
		ck_assert_int_eq(deferred, 0);
	}
	ck_assert_int_eq(counts().ready, 1);
	ck_assert_int_eq(seen(id), 1);
	/* a bad id is refused before anything is written */
	ck_assert_int_eq(nf_jobs_submit_id(st, kv, "t1", "work", p, 0, "nope", &deferred,
	    &err), NF_EINVAL);
	ck_assert_int_eq(nf_jobs_submit_id(st, kv, "t1", "work", p, 0, NULL, &deferred,
	    &err), NF_EINVAL);
	/* Redis down: copies of another id wait in the outbox once... */
	tu_redis_kill();
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(nf_jobs_submit_id(st, kv, "t1", "work", p, 0,
		    "0123456789abcdef01234568", &deferred, &err), NF_OK);
		ck_assert_int_eq(deferred, 1);
	}
	ck_assert_int_eq(outbox_n("t1"), 1);
	/* ...and so does a copy of the id already queued: the drain finds
	 * it seen and queues nothing twice */
	ck_assert_int_eq(nf_jobs_submit_id(st, kv, "t1", "work", p, 0, id, &deferred, &err),
	    NF_OK);
	ck_assert_int_eq(outbox_n("t1"), 2);
	ck_assert_int_eq(tu_redis_restart(), 0);
	usleep(300 * 1000);
	ck_assert_int_eq(nf_jobs_outbox_drain(st, kv, "t1", "drainer", 30000, 10, &moved,
	    &err), NF_OK);
	ck_assert_int_eq(outbox_n("t1"), 0);
	ck_assert_int_eq(counts().ready, 2);
	json_object_put(p);
}
END_TEST

START_TEST(t_outbox_defer_and_drain)
{
	struct nf_jobs_config	 c = test_cfg(5, 5000);
	struct nf_jobs_runner	*r;
	struct json_object	*p = payload("secret-ish", "value with \"quotes\" and a.b");
	struct nf_job		*j;
	struct nf_error		 err;
	char			 id[25], idl[25], idx[25];
	int64_t			 t0, t1, t2;
	long long		 due;
	int			 deferred = -1, moved;

	/* the payload may hold keys the store refuses as field names */
	json_object_object_add(p, "a.b", json_object_new_string("$ne"));
	tu_redis_kill();
	t0 = nf_now_ms();
	ck_assert_int_eq(nf_jobs_submit(st, kv, "t1", "work", p, 0, id, &deferred, &err),
	    NF_OK);
	ck_assert_int_eq(deferred, 1);
	ck_assert_int_lt(nf_now_ms() - t0, 1000);
	ck_assert_int_eq(nf_jobs_submit(st, kv, "t2", "later", NULL, 60000, idl, &deferred,
	    &err), NF_OK);
	ck_assert_int_eq(deferred, 1);
	t1 = nf_now_ms();
	/* Redis down and no store: refused, quickly */
	ck_assert_int_eq(nf_jobs_submit(NULL, kv, "t1", "work", p, 0, idx, &deferred, &err),
	    NF_EUNAVAIL);
	ck_assert_str_eq(err.code, "redis_unavailable");
	ck_assert_int_lt(nf_now_ms() - t1, 1000);
	ck_assert_int_eq(outbox_n("t1"), 1);
	ck_assert_int_eq(outbox_n("t2"), 1);
	/* a drain while Redis is still down gives the document back at once */
	ck_assert_int_eq(nf_jobs_outbox_drain(st, kv, "t1", "drainer", 30000, 10, &moved,
	    &err), NF_EUNAVAIL);
	ck_assert_int_eq(moved, 0);
	ck_assert_int_eq(outbox_n("t1"), 1);

	ck_assert_int_eq(tu_redis_restart(), 0);
	usleep(300 * 1000);
	t2 = nf_now_ms();
	ck_assert_int_eq(nf_jobs_outbox_drain(st, kv, "t1", "drainer", 30000, 10, &moved,
	    &err), NF_OK);
	ck_assert_int_eq(moved, 1);
	ck_assert_int_eq(nf_jobs_outbox_drain(st, kv, "t2", "drainer", 30000, 10, &moved,
	    &err), NF_OK);
	ck_assert_int_eq(moved, 1);
	ck_assert_int_eq(outbox_n("t1") + outbox_n("t2"), 0);
	ck_assert_int_eq(counts().ready, 1);
	ck_assert_int_eq(counts().delayed, 1);
	/* the delayed job keeps its due time from the submit */
	due = redis_int("ZSCORE %s %s", "nf:jobs:delayed", idl);
	ck_assert_int_ge(due, t0 + 60000);
	ck_assert_int_le(due, t1 + 60000);
	/* nothing left: a second drain moves nothing */
	ck_assert_int_eq(nf_jobs_outbox_drain(st, kv, "t1", "drainer", 30000, 10, &moved,
	    &err), NF_OK);
	ck_assert_int_eq(moved, 0);

	ck_assert_int_eq(nf_jobs_runner_new(url, &c, &r, &err), NF_OK);
	ck_assert_int_eq(nf_jobs_runner_reserve(r, 0, &j, &err), NF_OK);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(j->id, id);
	ck_assert_str_eq(j->type, "work");
	ck_assert_str_eq(j->tenant, "t1");
	ck_assert_str_eq(json_object_to_json_string_ext(j->payload, JSON_C_TO_STRING_PLAIN),
	    json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN));
	ck_assert_int_ge(j->enqueued_at, t0);
	ck_assert_int_lt(j->enqueued_at, t2);
	ck_assert_int_eq(nf_jobs_runner_ack(r, j, &err), NF_OK);
	nf_jobs_job_free(j);
	nf_jobs_runner_free(r);
	json_object_put(p);
}
END_TEST

START_TEST(t_outbox_crash_between_push_and_delete)
{
	struct json_object	*doc, *again;
	struct nf_error		 err;
	char			 id[25];
	int			 deferred, pushed, deleted, moved;

	/* no Redis handle at all: the job goes straight to the outbox */
	ck_assert_int_eq(nf_jobs_submit(st, NULL, "t1", "work", NULL, 0, id, &deferred,
	    &err), NF_OK);
	ck_assert_int_eq(deferred, 1);
	/* drainer A claims it for 200 ms, pushes it and dies before deleting */
	ck_assert_int_eq(nf_jobs_outbox_claim(st, "t1", "A", 200, &doc, &err), NF_OK);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(doc, "_id")), id);
	ck_assert_int_eq(nf_jobs_outbox_push(kv, doc, &pushed, &err), NF_OK);
	ck_assert_int_eq(pushed, 1);
	ck_assert_int_eq(counts().ready, 1);
	/* while A's lease lasts nobody else takes the document */
	ck_assert_int_eq(nf_jobs_outbox_claim(st, "t1", "B", 30000, &again, &err),
	    NF_ENOTFOUND);
	ck_assert_int_eq(nf_jobs_outbox_drain(st, kv, "t1", "B", 30000, 10, &moved, &err),
	    NF_OK);
	ck_assert_int_eq(moved, 0);
	ck_assert_int_eq(outbox_n("t1"), 1);
	/* after the lease B drains it: deleted, and not queued a second time */
	usleep(250 * 1000);
	ck_assert_int_eq(nf_jobs_outbox_drain(st, kv, "t1", "B", 30000, 10, &moved, &err),
	    NF_OK);
	ck_assert_int_eq(moved, 1);
	ck_assert_int_eq(outbox_n("t1"), 0);
	ck_assert_int_eq(counts().ready, 1);
	ck_assert_int_eq(redis_int("HLEN %s", "nf:jobs:data", NULL), 1);
	ck_assert_int_eq(redis_int("LPOS %s %s", "nf:jobs:ready", id), 0);
	/* A coming back late deletes nothing and pushes nothing */
	ck_assert_int_eq(nf_jobs_outbox_done(st, "t1", "A", doc, &deleted, &err), NF_OK);
	ck_assert_int_eq(deleted, 0);
	ck_assert_int_eq(nf_jobs_outbox_push(kv, doc, &pushed, &err), NF_OK);
	ck_assert_int_eq(pushed, 0);
	ck_assert_int_eq(counts().ready, 1);
	json_object_put(doc);
}
END_TEST

START_TEST(t_outbox_malformed)
{
	struct json_object	*doc = json_object_new_object();
	struct nf_error		 err;
	int			 moved;

	json_object_object_add(doc, "type", json_object_new_string("work"));
	json_object_object_add(doc, "job", json_object_new_int(5));
	json_object_object_add(doc, "due", json_object_new_int(0));
	json_object_object_add(doc, "lease", json_object_new_int(0));
	ck_assert_int_eq(nf_store_insert(st, "t1", NF_JOBS_OUTBOX, doc, NULL, &err), NF_OK);
	json_object_put(doc);
	ck_assert_int_eq(nf_jobs_outbox_drain(st, kv, "t1", "A", 30000, 10, &moved, &err),
	    NF_OK);
	ck_assert_int_eq(moved, 1);
	ck_assert_int_eq(outbox_n("t1"), 0);
	ck_assert_int_eq(counts().ready + counts().delayed, 0);
	ck_assert_int_eq(nf_jobs_outbox_drain(st, kv, "t1", "A", 30000, 0, &moved, &err),
	    NF_EINVAL);
	ck_assert_int_eq(nf_jobs_push_once(kv, "short", "{}", 0, NULL, &err), NF_EINVAL);
}
END_TEST

/* Child drainer: its own store and Redis connections, small batches, until
 * both tenants' outboxes stay empty. */
static void
child_drainer(int n)
{
	static const char *const tenants[] = { "t1", "t2" };
	struct nf_store	*cst;
	struct nf_kv	*ckv;
	struct nf_error	 err;
	char		 owner[16];
	int		 moved, idle = 0;
	size_t		 i;

	snprintf(owner, sizeof(owner), "drainer-%d", n);
	if (nf_store_open(store_uri, &cst, &err) != NF_OK ||
	    nf_kv_open(url, 1000, &ckv, &err) != NF_OK)
		_exit(3);
	/* start together, so that they really race */
	if (nf_kv_command(ckv, NULL, &err, "BLPOP %s 5", "test:go") != NF_OK)
		_exit(5);
	while (idle < 3) {
		idle++;
		for (i = 0; i < NF_ARRAY_LEN(tenants); i++) {
			if (nf_jobs_outbox_drain(cst, ckv, tenants[i], owner, 30000, 3, &moved,
			    &err) != NF_OK)
				_exit(4);
			if (moved > 0)
				idle = 0;
			if (moved > 0 && nf_kv_command(ckv, NULL, &err, "HINCRBY %s %s %d",
			    "test:drained", owner, moved) != NF_OK)
				_exit(6);
		}
	}
	nf_kv_free(ckv);
	nf_store_free(cst);
	_exit(0);
}

START_TEST(t_outbox_concurrent_drainers)
{
	struct redisReply	*rep;
	struct nf_error		 err;
	char			 ids[200][25];
	pid_t			 pids[3];
	size_t			 i;
	int			 status, deferred;

	for (i = 0; i < 200; i++) {
		ck_assert_int_eq(nf_jobs_submit(st, NULL, i % 2 ? "t2" : "t1", "work", NULL, 0,
		    ids[i], &deferred, &err), NF_OK);
		ck_assert_int_eq(deferred, 1);
	}
	ck_assert_int_eq(outbox_n("t1") + outbox_n("t2"), 200);
	for (i = 0; i < 3; i++)
		if ((pids[i] = fork()) == 0)
			child_drainer((int)i);
	usleep(100 * 1000);
	ck_assert_int_eq(nf_kv_command(kv, NULL, &err, "RPUSH %s 1 1 1", "test:go"), NF_OK);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	ck_assert_int_eq(outbox_n("t1") + outbox_n("t2"), 0);
	/* they did race: more than one drainer handled documents */
	ck_assert_int_ge(redis_int("HLEN %s", "test:drained", NULL), 2);
	/* every id queued exactly once */
	ck_assert_int_eq(counts().ready, 200);
	ck_assert_int_eq(redis_int("HLEN %s", "nf:jobs:data", NULL), 200);
	for (i = 0; i < 200; i++)
		ck_assert_int_eq(redis_int("HEXISTS %s %s", "nf:jobs:data", ids[i]), 1);
	ck_assert_int_eq(nf_kv_command(kv, &rep, &err, "LRANGE %s 0 -1", "nf:jobs:ready"),
	    NF_OK);
	ck_assert_uint_eq(rep->elements, 200);
	freeReplyObject(rep);
	/* and the ready list holds no id twice */
	ck_assert_int_eq(nf_kv_command(kv, NULL, &err, "EVAL %s 1 %s",
	    "local s = {} for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do "
	    "s[v] = 1 end local n = 0 for _ in pairs(s) do n = n + 1 end "
	    "redis.call('SET', 'test:uniq', n)", "nf:jobs:ready"), NF_OK);
	ck_assert_int_eq(redis_int("GET %s", "test:uniq", NULL), 200);
}
END_TEST

static Suite *
jobs_suite(void)
{
	Suite	*s = suite_create("jobs");
	TCase	*tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_config);
	tcase_add_test(tc, t_enqueue_bad);
	tcase_add_test(tc, t_enqueue_reserve_ack);
	tcase_add_test(tc, t_retry_backoff_dead);
	tcase_add_test(tc, t_step_outcomes);
	tcase_add_test(tc, t_delayed_promotion);
	tcase_add_test(tc, t_runner_killed);
	tcase_add_test(tc, t_runner_alive_not_reaped);
	tcase_add_test(tc, t_concurrent_runners);
	tcase_add_test(tc, t_redis_down);
	tcase_add_test(tc, t_submit_direct);
	tcase_add_test(tc, t_submit_id_once);
	tcase_add_test(tc, t_outbox_defer_and_drain);
	tcase_add_test(tc, t_outbox_crash_between_push_and_delete);
	tcase_add_test(tc, t_outbox_malformed);
	tcase_add_test(tc, t_outbox_concurrent_drainers);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_main_redis(jobs_suite, &url);
}
