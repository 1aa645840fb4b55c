/*
 * jobs.c - the reliable job queue on Redis (see jobs.h for the key layout
 * and delivery guarantees): enqueue, promotion of due jobs, runners with a
 * heartbeat thread, reserve/ack/fail, the reaper, dead letters and counts.
 *
 * DESIGN: a job's JSON is written once; its attempt count and last error
 * live in their own hashes so that state changes never rewrite the job.
 * Attempts count finished failed runs and runs lost with their runner, so
 * the reaper and fail() agree and a job that crashes runners still reaches
 * the dead letters.  When Redis goes away between running a job and
 * acknowledging it, the runner keeps the outcome and settles it first once
 * Redis is back, so a finished job is not run twice because of an outage.
 * Keys are global ("nf:jobs:..."): the queue is shared by all tenants.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis.h>
#include <json-c/json.h>

#include "nonflex.h"
#include "log.h"
#include "kv.h"
#include "jobs.h"
#include "valid.h"

#define K_DATA		"nf:jobs:data"
#define K_ATTEMPTS	"nf:jobs:attempts"
#define K_ERROR		"nf:jobs:error"
#define K_READY		"nf:jobs:ready"
#define K_DELAYED	"nf:jobs:delayed"
#define K_DEAD		"nf:jobs:dead"
#define K_RUNNERS	"nf:jobs:runners"
#define K_PROC_PFX	"nf:jobs:processing:"
#define K_HB_PFX	"nf:jobs:runner:"
#define K_SEEN_PFX	"nf:jobs:seen:"

/* How long a pushed job id is remembered: far longer than any outbox drain
 * can take between its push and its delete. */
#define SEEN_TTL_MS	(3LL * 86400000)

#define JOB_MAX_BYTES	(256 * 1024)
#define ERR_MAX		500             /* bytes of lastError kept */
#define PROMOTE_BATCH	"500"
#define RUNNER_TIMEOUT	1500            /* ms; above the longest BLMOVE wait */

struct handler {
	char		*type;
	nf_jobs_fn	 fn;
	void		*arg;
	struct handler	*next;
};

struct nf_jobs_runner {
	char			 id[128];       /* host-pid-random */
	char			*proc_key;      /* nf:jobs:processing:<id> */
	char			*hb_key;        /* nf:jobs:runner:<id> */
	struct nf_jobs_config	 cfg;
	struct nf_kv		*kv;            /* work connection (runner thread) */
	struct nf_kv		*hbkv;          /* heartbeat thread's connection */
	struct handler		*handlers;
	int			 registered;    /* first heartbeat done */
	int			 dirty;         /* a reserve may have been lost */
	struct nf_job		*pending;       /* outcome not yet written */
	int			 pending_ok;
	int			 pending_perm;
	char			 pending_why[ERR_MAX + 1];
	pthread_t		 hb_thread;
	int			 hb_started;
	int			 hb_stop;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
};

/* --- Lua scripts ------------------------------------------------------ */

/* KEYS data attempts ready delayed; ARGV id json due (0 = now) */
static struct nf_kv_script enqueue_lua = { .src =
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "redis.call('HSET', KEYS[2], ARGV[1], 0)\n"
    "if tonumber(ARGV[3]) > 0 then\n"
    "  redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])\n"
    "else\n"
    "  redis.call('LPUSH', KEYS[3], ARGV[1])\n"
    "end\n"
    "return 1\n" };

/*
 * KEYS seen data attempts ready delayed; ARGV id json due ttl.  The enqueue
 * of a job that may have been pushed before (outbox): SET NX on the seen key
 * and the push happen in one script, so an id is queued at most once.
 * 0 when it was seen already.
 */
static struct nf_kv_script push_once_lua = { .src =
    "if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[4]) then\n"
    "  return 0\n"
    "end\n"
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])\n"
    "redis.call('HSET', KEYS[3], ARGV[1], 0)\n"
    "if tonumber(ARGV[3]) > 0 then\n"
    "  redis.call('ZADD', KEYS[5], ARGV[3], ARGV[1])\n"
    "else\n"
    "  redis.call('LPUSH', KEYS[4], ARGV[1])\n"
    "end\n"
    "return 1\n" };

/* KEYS delayed ready; ARGV now batch */
static struct nf_kv_script promote_lua = { .src =
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1],\n"
    "  'LIMIT', 0, tonumber(ARGV[2]))\n"
    "for _, id in ipairs(ids) do\n"
    "  redis.call('ZREM', KEYS[1], id)\n"
    "  redis.call('LPUSH', KEYS[2], id)\n"
    "end\n"
    "return #ids\n" };

/* KEYS data attempts error; ARGV id -> {json, attempts, error} */
static struct nf_kv_script load_lua = { .src =
    "return {redis.call('HGET', KEYS[1], ARGV[1]),\n"
    "  redis.call('HGET', KEYS[2], ARGV[1]),\n"
    "  redis.call('HGET', KEYS[3], ARGV[1])}\n" };

/* KEYS proc data attempts error; ARGV id */
static struct nf_kv_script ack_lua = { .src =
    "if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end\n"
    "redis.call('HDEL', KEYS[2], ARGV[1])\n"
    "redis.call('HDEL', KEYS[3], ARGV[1])\n"
    "redis.call('HDEL', KEYS[4], ARGV[1])\n"
    "return 1\n" };

/* KEYS proc attempts error delayed dead; ARGV id attempts why dead due */
static struct nf_kv_script fail_lua = { .src =
    "if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end\n"
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])\n"
    "redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])\n"
    "if ARGV[4] == '1' then\n"
    "  redis.call('LPUSH', KEYS[5], ARGV[1])\n"
    "else\n"
    "  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])\n"
    "end\n"
    "return 1\n" };

/*
 * KEYS hb proc runners data attempts error ready dead; ARGV runner maxdef.
 * Only when the heartbeat is gone (checked here, atomically): every job
 * of the runner counts a lost run and goes back to ready, or to the dead
 * letters when out of attempts.  -1 means the runner is alive.
 */
static struct nf_kv_script reap_lua = { .src =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end\n"
    "local n = 0\n"
    "while true do\n"
    "  local id = redis.call('RPOP', KEYS[2])\n"
    "  if not id then break end\n"
    "  local a = redis.call('HINCRBY', KEYS[5], id, 1)\n"
    "  local max = tonumber(ARGV[2])\n"
    "  local raw = redis.call('HGET', KEYS[4], id)\n"
    "  if raw then\n"
    "    local ok, j = pcall(cjson.decode, raw)\n"
    "    if ok and type(j) == 'table' and tonumber(j.maxAttempts) then\n"
    "      max = tonumber(j.maxAttempts)\n"
    "    end\n"
    "  end\n"
    "  redis.call('HSET', KEYS[6], id, 'runner lost while running the job')\n"
    "  if a >= max then\n"
    "    redis.call('LPUSH', KEYS[8], id)\n"
    "  else\n"
    "    redis.call('RPUSH', KEYS[7], id)\n"
    "  end\n"
    "  n = n + 1\n"
    "end\n"
    "redis.call('SREM', KEYS[3], ARGV[1])\n"
    "return n\n" };

/* KEYS proc ready: give back reserved jobs without counting an attempt. */
static struct nf_kv_script release_lua = { .src =
    "local n = 0\n"
    "while redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'RIGHT') do\n"
    "  n = n + 1\n"
    "end\n"
    "return n\n" };

/* KEYS dead attempts ready; ARGV id */
static struct nf_kv_script requeue_lua = { .src =
    "if redis.call('LREM', KEYS[1], 0, ARGV[1]) == 0 then return 0 end\n"
    "redis.call('HSET', KEYS[2], ARGV[1], 0)\n"
    "redis.call('LPUSH', KEYS[3], ARGV[1])\n"
    "return 1\n" };

/* KEYS dead data attempts error; ARGV id */
static struct nf_kv_script dead_delete_lua = { .src =
    "if redis.call('LREM', KEYS[1], 0, ARGV[1]) == 0 then return 0 end\n"
    "redis.call('HDEL', KEYS[2], ARGV[1])\n"
    "redis.call('HDEL', KEYS[3], ARGV[1])\n"
    "redis.call('HDEL', KEYS[4], ARGV[1])\n"
    "return 1\n" };

/* Run a script whose reply must be an integer. */
static enum nf_err
eval_int(struct nf_kv *kv, struct nf_kv_script *s, int nkeys, int nargs,
    const char **args, long long *out, struct nf_error *err)
{
	redisReply	*r = NULL;
	enum nf_err	 rc;

	*out = 0;
	rc = nf_kv_eval(kv, s, &r, err, nkeys, nargs, args);
	if (rc == NF_OK && r->type != REDIS_REPLY_INTEGER)
		rc = nf_error_set(err, NF_ESYSTEM, "redis_error", NULL,
		    "Unexpected reply from Redis");
	if (rc == NF_OK)
		*out = r->integer;
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

/* --- configuration ---------------------------------------------------- */

void
nf_jobs_config_defaults(struct nf_jobs_config *c)
{
	c->max_attempts = 5;
	c->backoff_base_ms = 1000;
	c->backoff_max_ms = 300000;
	c->heartbeat_ms = 5000;
}

static enum nf_err
env_int(const char *name, int64_t lo, int64_t hi, int64_t *v, struct nf_error *err)
{
	const char	*s = getenv(name);
	char		*end;
	long long	 n;

	if (s == NULL || *s == '\0')
		return NF_OK;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || n < lo || n > hi)
		return nf_error_set(err, NF_EINVAL, "invalid_config", name,
		    "%s must be an integer from %lld to %lld", name,
		    (long long)lo, (long long)hi);
	*v = n;
	return NF_OK;
}

enum nf_err
nf_jobs_config_env(struct nf_jobs_config *c, struct nf_error *err)
{
	int64_t		max;
	enum nf_err	rc;

	nf_jobs_config_defaults(c);
	max = c->max_attempts;
	if ((rc = env_int("NONFLEX_JOBS_MAX_ATTEMPTS", 1, 100, &max, err)) != NF_OK ||
	    (rc = env_int("NONFLEX_JOBS_BACKOFF_BASE_MS", 1, 3600000,
	    &c->backoff_base_ms, err)) != NF_OK ||
	    (rc = env_int("NONFLEX_JOBS_BACKOFF_MAX_MS", c->backoff_base_ms, 86400000,
	    &c->backoff_max_ms, err)) != NF_OK ||
	    (rc = env_int("NONFLEX_JOBS_HEARTBEAT_MS", 50, 600000,
	    &c->heartbeat_ms, err)) != NF_OK)
		return rc;
	/* a default max below a configured base is raised to the base */
	if (c->backoff_max_ms < c->backoff_base_ms)
		c->backoff_max_ms = c->backoff_base_ms;
	c->max_attempts = (int)max;
	return NF_OK;
}

int64_t
nf_jobs_backoff_bound(const struct nf_jobs_config *c, int n)
{
	int64_t	b = c->backoff_base_ms;

	while (--n > 0 && b < c->backoff_max_ms)
		b *= 2;
	return b < c->backoff_max_ms ? b : c->backoff_max_ms;
}

/* Uniform in [0, bound] ("full jitter"). */
static int64_t
jitter(int64_t bound)
{
	uint64_t	x;

	if (bound <= 0)
		return 0;
	nf_random_bytes(&x, sizeof(x));
	return (int64_t)(x % ((uint64_t)bound + 1));
}

/* --- enqueue and admin ------------------------------------------------ */

static struct json_object *
job_json(const char *id, const char *tenant, const char *type,
    struct json_object *payload, int max_attempts)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "type", json_object_new_string(type));
	json_object_object_add(o, "tenant", json_object_new_string(tenant));
	/* second reference: the job object keeps the caller's payload alive */
	json_object_object_add(o, "payload", payload != NULL ?
	    json_object_get(payload) : json_object_new_object());
	if (max_attempts > 0)
		json_object_object_add(o, "maxAttempts", json_object_new_int(max_attempts));
	json_object_object_add(o, "enqueuedAt", json_object_new_int64(nf_now_ms()));
	return o;
}

enum nf_err
nf_jobs_prepare(const char *tenant, const char *type, struct json_object *payload,
    int64_t delay_ms, int max_attempts, char id[25], char **json, int64_t *due,
    struct nf_error *err)
{
	return nf_jobs_prepare_id(tenant, type, payload, delay_ms, max_attempts, NULL, id,
	    json, due, err);
}

enum nf_err
nf_jobs_prepare_id(const char *tenant, const char *type, struct json_object *payload,
    int64_t delay_ms, int max_attempts, const char *want_id, char id[25], char **json,
    int64_t *due, struct nf_error *err)
{
	struct json_object	*o = NULL;
	const char		*js;
	enum nf_err		 rc = NF_OK;

	id[0] = '\0';
	*json = NULL;
	*due = 0;
	if (!nf_valid_charset(tenant, 63, "-"))
		return nf_error_set(err, NF_EINVAL, "invalid_tenant", "tenant", "Invalid tenant id");
	if (!nf_valid_charset(type, 64, "._-"))
		return nf_error_set(err, NF_EINVAL, "invalid_job_type", "type", "Invalid job type");
	if (payload != NULL && !json_object_is_type(payload, json_type_object))
		return nf_error_set(err, NF_EINVAL, "invalid_payload", "payload",
		    "Job payload must be a JSON object");
	if (delay_ms < 0 || delay_ms > 365LL * 86400000)
		return nf_error_set(err, NF_EINVAL, "invalid_job", "delay",
		    "Invalid job delay");
	if (max_attempts < 0 || max_attempts > 100)
		return nf_error_set(err, NF_EINVAL, "invalid_job", "maxAttempts",
		    "maxAttempts must be 1..100");
	if (want_id != NULL && !nf_valid_hex24(want_id))
		return nf_error_set(err, NF_EINVAL, "invalid_job", "id", "Invalid job id");
	if (want_id != NULL)
		memcpy(id, want_id, 25);
	else
		nf_id_new(id);
	o = job_json(id, tenant, type, payload, max_attempts);
	js = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (strlen(js) > JOB_MAX_BYTES) {
		id[0] = '\0';
		rc = nf_error_set(err, NF_ETOOBIG, "job_too_large", "payload",
		    "Job payload is too large");
		goto out;
	}
	*json = nf_xstrdup(js);
	*due = delay_ms > 0 ? nf_now_ms() + delay_ms : 0;
out:
	json_object_put(o);
	return rc;
}

/* The arguments of enqueue_lua / push_once_lua after their keys. */
static void
push_args(const char **args, const char *id, const char *json, int64_t due,
    char dbuf[24])
{
	snprintf(dbuf, 24, "%lld", (long long)due);
	args[0] = id; args[1] = json; args[2] = dbuf;
}

enum nf_err
nf_jobs_push_once(struct nf_kv *kv, const char *id, const char *json, int64_t due,
    int *pushed, struct nf_error *err)
{
	const char	*args[9];
	char		*seen, dbuf[24], ttl[24];
	long long	 n = 0;
	enum nf_err	 rc;

	if (pushed != NULL)
		*pushed = 0;
	if (!nf_valid_charset(id, 24, "") || strlen(id) != 24)
		return nf_error_set(err, NF_EINVAL, "invalid_id", "id", "Invalid job id");
	if (json == NULL || *json == '\0' || strlen(json) > JOB_MAX_BYTES || due < 0)
		return nf_error_set(err, NF_EINVAL, "invalid_job", NULL, "Invalid job");
	seen = nf_xasprintf(K_SEEN_PFX "%s", id);
	snprintf(ttl, sizeof(ttl), "%lld", (long long)SEEN_TTL_MS);
	args[0] = seen; args[1] = K_DATA; args[2] = K_ATTEMPTS; args[3] = K_READY;
	args[4] = K_DELAYED;
	push_args(args + 5, id, json, due, dbuf);
	args[8] = ttl;
	rc = eval_int(kv, &push_once_lua, 5, 9, args, &n, err);
	if (rc == NF_OK && pushed != NULL)
		*pushed = n == 1;
	free(seen);
	return rc;
}

/* max_attempts 0: the runner's setting applies. */
static enum nf_err
enqueue(struct nf_kv *kv, const char *tenant, const char *type,
    struct json_object *payload, int64_t delay_ms, int max_attempts,
    char id_out[25], struct nf_error *err)
{
	const char	*args[7];
	char		 id[25], dbuf[24], *js = NULL;
	int64_t		 due;
	long long	 n;
	enum nf_err	 rc;

	if (id_out != NULL)
		id_out[0] = '\0';
	if ((rc = nf_jobs_prepare(tenant, type, payload, delay_ms, max_attempts, id,
	    &js, &due, err)) != NF_OK)
		return rc;
	args[0] = K_DATA; args[1] = K_ATTEMPTS; args[2] = K_READY; args[3] = K_DELAYED;
	push_args(args + 4, id, js, due, dbuf);
	if ((rc = eval_int(kv, &enqueue_lua, 4, 7, args, &n, err)) == NF_OK &&
	    id_out != NULL)
		memcpy(id_out, id, sizeof(id));
	free(js);
	return rc;
}

enum nf_err
nf_jobs_enqueue(struct nf_kv *kv, const char *tenant, const char *type,
    struct json_object *payload, int64_t delay_ms, char id_out[25],
    struct nf_error *err)
{
	/* 0: no maxAttempts stored, so the runners' NONFLEX_JOBS_MAX_ATTEMPTS
	 * applies (it is their setting, not the enqueuing worker's). */
	return enqueue(kv, tenant, type, payload, delay_ms, 0, id_out, err);
}

enum nf_err
nf_jobs_enqueue_max(struct nf_kv *kv, const char *tenant, const char *type,
    struct json_object *payload, int64_t delay_ms, int max_attempts,
    char id_out[25], struct nf_error *err)
{
	if (max_attempts < 1 || max_attempts > 100)
		return nf_error_set(err, NF_EINVAL, "invalid_job", "maxAttempts",
		    "maxAttempts must be 1..100");
	return enqueue(kv, tenant, type, payload, delay_ms, max_attempts, id_out, err);
}

enum nf_err
nf_jobs_promote(struct nf_kv *kv, int64_t now_ms, int *promoted, struct nf_error *err)
{
	const char	*args[4];
	char		 now[24];
	long long	 n;
	enum nf_err	 rc;

	snprintf(now, sizeof(now), "%lld", (long long)now_ms);
	args[0] = K_DELAYED; args[1] = K_READY; args[2] = now; args[3] = PROMOTE_BATCH;
	rc = eval_int(kv, &promote_lua, 2, 4, args, &n, err);
	if (promoted != NULL)
		*promoted = (int)n;
	return rc;
}

static enum nf_err
int_cmd(struct nf_kv *kv, int64_t *out, struct nf_error *err, const char *cmd,
    const char *key)
{
	redisReply	*r = NULL;
	enum nf_err	 rc;

	*out = 0;
	rc = nf_kv_command(kv, &r, err, "%s %s", cmd, key);
	if (rc == NF_OK && r->type == REDIS_REPLY_INTEGER)
		*out = r->integer;
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

enum nf_err
nf_jobs_counts(struct nf_kv *kv, struct nf_jobs_counts *c, struct nf_error *err)
{
	redisReply	*r = NULL;
	char		*key;
	int64_t		 n;
	enum nf_err	 rc;
	size_t		 i;

	memset(c, 0, sizeof(*c));
	if ((rc = int_cmd(kv, &c->ready, err, "LLEN", K_READY)) != NF_OK ||
	    (rc = int_cmd(kv, &c->delayed, err, "ZCARD", K_DELAYED)) != NF_OK ||
	    (rc = int_cmd(kv, &c->dead, err, "LLEN", K_DEAD)) != NF_OK ||
	    (rc = nf_kv_command(kv, &r, err, "SMEMBERS %s", K_RUNNERS)) != NF_OK)
		goto out;
	for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		key = nf_xasprintf(K_PROC_PFX "%s", r->element[i]->str);
		rc = int_cmd(kv, &n, err, "LLEN", key);
		free(key);
		if (rc != NF_OK)
			goto out;
		c->processing += n;
	}
out:
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

void
nf_jobs_job_free(struct nf_job *j)
{
	if (j == NULL)
		return;
	free(j->type);
	free(j->tenant);
	json_object_put(j->payload);
	free(j->last_error);
	free(j);
}

static const char *
str_field(struct json_object *o, const char *name)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Build a job from the stored JSON and its state; NULL when malformed. */
static struct nf_job *
job_parse(const char *id, const char *js, const char *attempts, const char *error,
    int default_max)
{
	struct json_object	*o, *v;
	struct nf_job		*j;

	if (js == NULL || (o = json_tokener_parse(js)) == NULL)
		return NULL;
	j = nf_xcalloc(1, sizeof(*j));
	snprintf(j->id, sizeof(j->id), "%s", id);
	if (str_field(o, "type") == NULL || str_field(o, "tenant") == NULL ||
	    !json_object_object_get_ex(o, "payload", &v) ||
	    !json_object_is_type(v, json_type_object)) {
		json_object_put(o);
		free(j);
		return NULL;
	}
	j->type = nf_xstrdup(str_field(o, "type"));
	j->tenant = nf_xstrdup(str_field(o, "tenant"));
	j->payload = json_object_get(v);        /* outlives o */
	j->max_attempts = json_object_object_get_ex(o, "maxAttempts", &v) ?
	    json_object_get_int(v) : default_max;
	if (j->max_attempts < 0)
		j->max_attempts = 1;
	j->enqueued_at = json_object_object_get_ex(o, "enqueuedAt", &v) ?
	    json_object_get_int64(v) : 0;
	j->attempts = attempts != NULL ? atoi(attempts) : 0;
	j->last_error = error != NULL ? nf_xstrdup(error) : NULL;
	json_object_put(o);
	return j;
}

static const char *
elem_str(const redisReply *r, size_t i)
{
	if (r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
	    r->element[i]->type != REDIS_REPLY_STRING)
		return NULL;
	return r->element[i]->str;
}

/* Read a job's JSON and state; *exists is 0 when no data exists.
 * default_max applies to jobs enqueued without maxAttempts (0: unknown). */
static enum nf_err
job_load(struct nf_kv *kv, const char *id, int default_max, struct nf_job **out,
    int *exists, struct nf_error *err)
{
	redisReply	*r = NULL;
	const char	*args[4];
	enum nf_err	 rc;

	*out = NULL;
	*exists = 0;
	args[0] = K_DATA; args[1] = K_ATTEMPTS; args[2] = K_ERROR; args[3] = id;
	if ((rc = nf_kv_eval(kv, &load_lua, &r, err, 3, 4, args)) != NF_OK)
		goto out;
	*exists = elem_str(r, 0) != NULL;
	*out = job_parse(id, elem_str(r, 0), elem_str(r, 1), elem_str(r, 2),
	    default_max);
out:
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

static struct json_object *
job_to_json(const struct nf_job *j)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(j->id));
	json_object_object_add(o, "type", json_object_new_string(j->type));
	json_object_object_add(o, "tenant", json_object_new_string(j->tenant));
	json_object_object_add(o, "payload", json_object_get(j->payload));
	json_object_object_add(o, "attempts", json_object_new_int(j->attempts));
	json_object_object_add(o, "maxAttempts", j->max_attempts > 0 ?
	    json_object_new_int(j->max_attempts) : NULL);   /* null: runner's setting */
	json_object_object_add(o, "enqueuedAt", json_object_new_int64(j->enqueued_at));
	json_object_object_add(o, "lastError", j->last_error != NULL ?
	    json_object_new_string(j->last_error) : NULL);
	return o;
}

enum nf_err
nf_jobs_dead_list(struct nf_kv *kv, int64_t start, int64_t count,
    struct json_object **out, struct nf_error *err)
{
	redisReply	*r = NULL;
	struct nf_job	*j;
	enum nf_err	 rc;
	size_t		 i;
	int		 exists;

	*out = NULL;
	if (start < 0 || count < 1 || count > 1000)
		return nf_error_set(err, NF_EINVAL, "invalid_range", NULL,
		    "start must be >= 0 and count 1..1000");
	rc = nf_kv_command(kv, &r, err, "LRANGE %s %lld %lld", K_DEAD,
	    (long long)start, (long long)(start + count - 1));
	if (rc != NF_OK)
		goto out;
	*out = json_object_new_array();
	for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		if ((rc = job_load(kv, r->element[i]->str, 0, &j, &exists, err)) != NF_OK)
			goto out;
		if (j != NULL)
			json_object_array_add(*out, job_to_json(j));
		nf_jobs_job_free(j);
	}
out:
	if (rc != NF_OK) {
		json_object_put(*out);
		*out = NULL;
	}
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

static enum nf_err
dead_op(struct nf_kv *kv, struct nf_kv_script *s, const char **args, int nkeys,
    struct nf_error *err)
{
	long long	n;
	enum nf_err	rc;

	if ((rc = eval_int(kv, s, nkeys, nkeys + 1, args, &n, err)) == NF_OK && n == 0)
		rc = nf_error_set(err, NF_ENOTFOUND, "job_not_found", "id",
		    "No such dead job");
	return rc;
}

enum nf_err
nf_jobs_dead_requeue(struct nf_kv *kv, const char *id, struct nf_error *err)
{
	const char	*args[4] = { K_DEAD, K_ATTEMPTS, K_READY, id };

	if (!nf_valid_charset(id, 24, ""))
		return nf_error_set(err, NF_EINVAL, "invalid_id", "id", "Invalid job id");
	return dead_op(kv, &requeue_lua, args, 3, err);
}

enum nf_err
nf_jobs_dead_delete(struct nf_kv *kv, const char *id, struct nf_error *err)
{
	const char	*args[5] = { K_DEAD, K_DATA, K_ATTEMPTS, K_ERROR, id };

	if (!nf_valid_charset(id, 24, ""))
		return nf_error_set(err, NF_EINVAL, "invalid_id", "id", "Invalid job id");
	return dead_op(kv, &dead_delete_lua, args, 4, err);
}

/* --- runner: heartbeat ------------------------------------------------ */

static enum nf_err
beat(struct nf_jobs_runner *r, struct nf_kv *kv, struct nf_error *err)
{
	enum nf_err	rc;

	rc = nf_kv_command(kv, NULL, err, "SET %s %lld PX %lld", r->hb_key,
	    (long long)nf_now_ms(), (long long)(3 * r->cfg.heartbeat_ms));
	if (rc == NF_OK)
		rc = nf_kv_command(kv, NULL, err, "SADD %s %s", K_RUNNERS, r->id);
	return rc;
}

enum nf_err
nf_jobs_runner_heartbeat(struct nf_jobs_runner *r, struct nf_error *err)
{
	enum nf_err	rc;

	if ((rc = beat(r, r->kv, err)) == NF_OK)
		r->registered = 1;
	return rc;
}

static void *
hb_main(void *arg)
{
	struct nf_jobs_runner	*r = arg;
	struct timespec		 ts;
	int64_t			 ns;

	pthread_mutex_lock(&r->mu);
	while (!r->hb_stop) {
		pthread_mutex_unlock(&r->mu);
		beat(r, r->hbkv, NULL);
		pthread_mutex_lock(&r->mu);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ns = ts.tv_nsec + (r->cfg.heartbeat_ms % 1000) * 1000000;
		ts.tv_sec += r->cfg.heartbeat_ms / 1000 + ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		while (!r->hb_stop &&
		    pthread_cond_timedwait(&r->cv, &r->mu, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static int
hb_start(struct nf_jobs_runner *r)
{
	pthread_condattr_t	ca;

	pthread_mutex_init(&r->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&r->hb_thread, NULL, hb_main, r) != 0)
		return -1;
	r->hb_started = 1;
	return 0;
}

static void
hb_stop(struct nf_jobs_runner *r)
{
	if (!r->hb_started)
		return;
	pthread_mutex_lock(&r->mu);
	r->hb_stop = 1;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->hb_thread, NULL);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	r->hb_started = 0;
}

/* --- runner: life cycle ------------------------------------------------ */

static void
make_id(char *out, size_t sz)
{
	char	host[64] = "host", rnd[9];
	size_t	i;

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "host");
	host[sizeof(host) - 1] = '\0';
	for (i = 0; host[i] != '\0'; i++)       /* keep keys printable */
		if (!((host[i] >= 'a' && host[i] <= 'z') || (host[i] >= 'A' &&
		    host[i] <= 'Z') || (host[i] >= '0' && host[i] <= '9') ||
		    host[i] == '-' || host[i] == '.'))
			host[i] = '_';
	nf_random_hex(rnd, 4);
	snprintf(out, sz, "%s-%ld-%s", host, (long)getpid(), rnd);
}

enum nf_err
nf_jobs_runner_new(const char *redis_url, const struct nf_jobs_config *cfg,
    struct nf_jobs_runner **out, struct nf_error *err)
{
	struct nf_jobs_runner	*r;
	enum nf_err		 rc;

	*out = NULL;
	r = nf_xcalloc(1, sizeof(*r));
	if (cfg != NULL)
		r->cfg = *cfg;
	else
		nf_jobs_config_defaults(&r->cfg);
	make_id(r->id, sizeof(r->id));
	r->proc_key = nf_xasprintf(K_PROC_PFX "%s", r->id);
	r->hb_key = nf_xasprintf(K_HB_PFX "%s", r->id);
	if ((rc = nf_kv_open(redis_url, RUNNER_TIMEOUT, &r->kv, err)) != NF_OK ||
	    (rc = nf_kv_open(redis_url, 1000, &r->hbkv, err)) != NF_OK)
		goto out;
	if (r->cfg.max_attempts < 1 || r->cfg.heartbeat_ms < 1 ||
	    r->cfg.backoff_base_ms < 1 || r->cfg.backoff_max_ms < 1) {
		rc = nf_error_set(err, NF_EINVAL, "invalid_config", NULL,
		    "Invalid job runner settings");
		goto out;
	}
	nf_jobs_runner_heartbeat(r, NULL);      /* Redis may be down: fine */
	if (hb_start(r) != 0)
		rc = nf_error_set(err, NF_ESYSTEM, NULL, NULL, "Cannot start heartbeat");
out:
	if (rc != NF_OK)
		nf_jobs_runner_free(r);
	else
		*out = r;
	return rc;
}

static enum nf_err
release_own(struct nf_jobs_runner *r, int *n_out, struct nf_error *err)
{
	const char	*args[2] = { r->proc_key, K_READY };
	long long	 n;
	enum nf_err	 rc;

	rc = eval_int(r->kv, &release_lua, 2, 2, args, &n, err);
	if (rc == NF_OK && n > 0)
		nf_warn("job runner %s gave back %lld reserved job(s)", r->id, n);
	if (n_out != NULL)
		*n_out = (int)n;
	return rc;
}

void
nf_jobs_runner_free(struct nf_jobs_runner *r)
{
	struct handler	*h, *next;

	if (r == NULL)
		return;
	hb_stop(r);
	if (r->kv != NULL && r->registered) {
		/* graceful exit: hand back what we hold, then deregister */
		if (release_own(r, NULL, NULL) == NF_OK) {
			nf_kv_command(r->kv, NULL, NULL, "DEL %s", r->hb_key);
			nf_kv_command(r->kv, NULL, NULL, "SREM %s %s", K_RUNNERS, r->id);
		}
	}
	for (h = r->handlers; h != NULL; h = next) {
		next = h->next;
		free(h->type);
		free(h);
	}
	nf_jobs_job_free(r->pending);
	nf_kv_free(r->kv);
	nf_kv_free(r->hbkv);
	free(r->proc_key);
	free(r->hb_key);
	free(r);
}

const char *
nf_jobs_runner_id(const struct nf_jobs_runner *r)
{
	return r->id;
}

struct nf_kv *
nf_jobs_runner_kv(struct nf_jobs_runner *r)
{
	return r->kv;
}

void
nf_jobs_runner_register(struct nf_jobs_runner *r, const char *type, nf_jobs_fn fn,
    void *arg)
{
	struct handler	*h;

	for (h = r->handlers; h != NULL; h = h->next)
		if (strcmp(h->type, type) == 0)
			break;
	if (h == NULL) {
		h = nf_xcalloc(1, sizeof(*h));
		h->type = nf_xstrdup(type);
		h->next = r->handlers;
		r->handlers = h;
	}
	h->fn = fn;
	h->arg = arg;
}

/* --- runner: reserve, ack, fail, reap -------------------------------- */

static enum nf_err
take(struct nf_jobs_runner *r, int wait_ms, redisReply **rep, struct nf_error *err)
{
	char	secs[16];

	if (wait_ms <= 0)
		return nf_kv_command(r->kv, rep, err, "LMOVE %s %s RIGHT LEFT",
		    K_READY, r->proc_key);
	if (wait_ms > 1000)
		wait_ms = 1000;
	snprintf(secs, sizeof(secs), "%d.%03d", wait_ms / 1000, wait_ms % 1000);
	return nf_kv_command(r->kv, rep, err, "BLMOVE %s %s RIGHT LEFT %s",
	    K_READY, r->proc_key, secs);
}

/* A reserved id whose data is missing or unreadable: drop or dead-letter. */
static void
discard_broken(struct nf_jobs_runner *r, const char *id, int exists)
{
	struct nf_job	j;

	if (!exists) {
		nf_error("job %s has no data; dropped", id);
		nf_kv_command(r->kv, NULL, NULL, "LREM %s 1 %s", r->proc_key, id);
		return;
	}
	memset(&j, 0, sizeof(j));
	snprintf(j.id, sizeof(j.id), "%s", id);
	j.max_attempts = 1;
	nf_error("job %s is malformed; dead-lettered", id);
	nf_jobs_runner_fail(r, &j, 1, "malformed job", NULL, NULL);
}

enum nf_err
nf_jobs_runner_reserve(struct nf_jobs_runner *r, int wait_ms, struct nf_job **out,
    struct nf_error *err)
{
	redisReply	*rep = NULL;
	char		 id[25];
	enum nf_err	 rc;
	int		 exists;

	*out = NULL;
	/* never hold a job Redis does not know we are alive for */
	if (!r->registered && (rc = nf_jobs_runner_heartbeat(r, err)) != NF_OK)
		return rc;
	if ((rc = take(r, wait_ms, &rep, err)) != NF_OK) {
		/* the move may have happened with its reply lost */
		r->dirty = rc == NF_EUNAVAIL;
		goto out;
	}
	if (rep->type != REDIS_REPLY_STRING)
		goto out;               /* nothing ready */
	snprintf(id, sizeof(id), "%s", rep->str);
	if ((rc = job_load(r->kv, id, r->cfg.max_attempts, out, &exists, err)) != NF_OK) {
		r->dirty = 1;
		goto out;
	}
	if (*out == NULL)
		discard_broken(r, id, exists);
out:
	if (rep != NULL)
		freeReplyObject(rep);
	return rc;
}

enum nf_err
nf_jobs_runner_ack(struct nf_jobs_runner *r, const struct nf_job *j,
    struct nf_error *err)
{
	const char	*args[5] = { r->proc_key, K_DATA, K_ATTEMPTS, K_ERROR, j->id };
	long long	 n;
	enum nf_err	 rc;

	if ((rc = eval_int(r->kv, &ack_lua, 4, 5, args, &n, err)) == NF_OK && n == 0)
		rc = nf_error_set(err, NF_ECONFLICT, "job_not_reserved", NULL,
		    "The job is no longer reserved by this runner");
	return rc;
}

enum nf_err
nf_jobs_runner_fail(struct nf_jobs_runner *r, const struct nf_job *j, int permanent,
    const char *why, int *dead, struct nf_error *err)
{
	const char	*args[10];
	char		 att[16], due[24], whybuf[ERR_MAX + 1];
	long long	 n;
	int		 attempts = j->attempts + 1, isdead;
	enum nf_err	 rc;

	isdead = permanent || attempts >= j->max_attempts;
	if (dead != NULL)
		*dead = isdead;
	snprintf(att, sizeof(att), "%d", attempts);
	snprintf(due, sizeof(due), "%lld", (long long)(nf_now_ms() +
	    jitter(nf_jobs_backoff_bound(&r->cfg, attempts))));
	snprintf(whybuf, sizeof(whybuf), "%s", why != NULL && *why != '\0' ? why : "failed");
	args[0] = r->proc_key; args[1] = K_ATTEMPTS; args[2] = K_ERROR;
	args[3] = K_DELAYED; args[4] = K_DEAD;
	args[5] = j->id; args[6] = att; args[7] = whybuf; args[8] = isdead ? "1" : "0";
	args[9] = due;
	if ((rc = eval_int(r->kv, &fail_lua, 5, 10, args, &n, err)) == NF_OK && n == 0)
		rc = nf_error_set(err, NF_ECONFLICT, "job_not_reserved", NULL,
		    "The job is no longer reserved by this runner");
	return rc;
}

static enum nf_err
reap_one(struct nf_jobs_runner *r, const char *rid, int *reaped, struct nf_error *err)
{
	const char	*args[10];
	char		*hb, *proc, maxdef[16];
	long long	 n;
	enum nf_err	 rc;

	hb = nf_xasprintf(K_HB_PFX "%s", rid);
	proc = nf_xasprintf(K_PROC_PFX "%s", rid);
	snprintf(maxdef, sizeof(maxdef), "%d", r->cfg.max_attempts);
	args[0] = hb; args[1] = proc; args[2] = K_RUNNERS; args[3] = K_DATA;
	args[4] = K_ATTEMPTS; args[5] = K_ERROR; args[6] = K_READY; args[7] = K_DEAD;
	args[8] = rid; args[9] = maxdef;
	rc = eval_int(r->kv, &reap_lua, 8, 10, args, &n, err);
	if (rc == NF_OK && n >= 0) {
		nf_warn("job runner %s lost; %lld job(s) requeued", rid, n);
		*reaped += (int)n;
	}
	free(hb);
	free(proc);
	return rc;
}

enum nf_err
nf_jobs_runner_reap(struct nf_jobs_runner *r, int *reaped, struct nf_error *err)
{
	redisReply	*rep = NULL;
	enum nf_err	 rc;
	size_t		 i;
	int		 n = 0;

	if ((rc = nf_kv_command(r->kv, &rep, err, "SMEMBERS %s", K_RUNNERS)) != NF_OK)
		goto out;
	for (i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
		if (rep->element[i]->type != REDIS_REPLY_STRING ||
		    strcmp(rep->element[i]->str, r->id) == 0)
			continue;
		if ((rc = reap_one(r, rep->element[i]->str, &n, err)) != NF_OK)
			goto out;
	}
out:
	if (reaped != NULL)
		*reaped = n;
	if (rep != NULL)
		freeReplyObject(rep);
	return rc;
}

/* --- runner: one cycle ------------------------------------------------ */

static struct handler *
find_handler(struct nf_jobs_runner *r, const char *type)
{
	struct handler	*h;

	for (h = r->handlers; h != NULL; h = h->next)
		if (strcmp(h->type, type) == 0)
			return h;
	return NULL;
}

/* Write the outcome of r->pending; keeps it pending while Redis is down. */
static enum nf_err
settle(struct nf_jobs_runner *r, struct nf_error *err)
{
	struct nf_job	*j = r->pending;
	enum nf_err	 rc;
	int		 dead = 0;

	rc = r->pending_ok ? nf_jobs_runner_ack(r, j, err) :
	    nf_jobs_runner_fail(r, j, r->pending_perm, r->pending_why, &dead, err);
	if (rc == NF_EUNAVAIL)
		return rc;
	if (rc == NF_ECONFLICT)
		nf_warn("job %s was requeued while it ran (runner presumed lost)", j->id);
	else if (rc == NF_OK && !r->pending_ok)
		nf_log(dead ? NF_LOG_ERROR : NF_LOG_WARN, "job %s (%s) attempt %d failed: "
		    "%s; %s", j->id, j->type, j->attempts + 1, r->pending_why,
		    dead ? "dead-lettered" : "will retry");
	nf_jobs_job_free(j);
	r->pending = NULL;
	return rc == NF_ECONFLICT ? NF_OK : rc;
}

/* Run j's handler (j is consumed) and settle the outcome. */
static enum nf_err
run(struct nf_jobs_runner *r, struct nf_job *j, struct nf_error *err)
{
	struct handler	*h = find_handler(r, j->type);
	struct nf_error	 herr;
	int64_t		 t0 = nf_mono_ms();
	enum nf_err	 hrc;

	nf_error_clear(&herr);
	nf_log_context(j->id, j->tenant);
	if (h == NULL)
		hrc = nf_error_set(&herr, NF_EINVAL, "unknown_job_type", NULL,
		    "No handler for job type %.64s", j->type);
	else
		hrc = h->fn(j, h->arg, &herr);
	r->pending = j;
	r->pending_ok = hrc == NF_OK;
	r->pending_perm = hrc == NF_EINVAL;
	snprintf(r->pending_why, sizeof(r->pending_why), "%s",
	    herr.message[0] != '\0' ? herr.message :
	    herr.code[0] != '\0' ? herr.code : nf_strerror(hrc));
	if (hrc == NF_OK)
		nf_info("job %s (%s) done in %lld ms", j->id, j->type,
		    (long long)(nf_mono_ms() - t0));
	hrc = settle(r, err);
	nf_log_context(NULL, NULL);
	return hrc;
}

enum nf_err
nf_jobs_runner_step(struct nf_jobs_runner *r, int wait_ms, int *ran,
    struct nf_error *err)
{
	struct nf_job	*j = NULL;
	enum nf_err	 rc;

	*ran = 0;
	if (r->pending != NULL && (rc = settle(r, err)) != NF_OK)
		return rc;
	if (r->dirty) {
		if ((rc = release_own(r, NULL, err)) != NF_OK)
			return rc;
		r->dirty = 0;
	}
	if ((rc = nf_jobs_runner_reserve(r, wait_ms, &j, err)) != NF_OK || j == NULL)
		return rc;
	*ran = 1;
	return run(r, j, err);
}
