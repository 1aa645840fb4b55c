/*
 * jobs.h - the reliable job queue on Redis: enqueue from workers, runners
 * that reserve, run and acknowledge jobs, retries with backoff, dead
 * letters, and counts for /api/health and metrics.
 *
 * DESIGN: one queue for all tenants; every job carries its tenant.  Keys:
 *   nf:jobs:data       hash id -> job JSON {id,type,tenant,payload,
 *                      [maxAttempts],enqueuedAt} (immutable)
 *   nf:jobs:attempts   hash id -> finished or lost runs so far
 *   nf:jobs:error      hash id -> last error text
 *   nf:jobs:ready      list of ids (LPUSH in, taken from the right)
 *   nf:jobs:delayed    zset id -> due time (ms since epoch)
 *   nf:jobs:processing:<runner>  list of ids a runner has reserved
 *   nf:jobs:runner:<runner>      heartbeat key, TTL 3 x heartbeat
 *   nf:jobs:runners    set of runner ids
 *   nf:jobs:dead       list of dead-lettered ids
 *   nf:jobs:seen:<id>  set when an id is pushed by nf_jobs_push_once (TTL
 *                      3 days), so a job kept in the store's outbox is
 *                      queued at most once however often it is pushed
 * A runner moves an id from ready to its processing list with one BLMOVE,
 * so a job in flight is never only in a dead process's memory.  Every
 * runner periodically reaps runners whose heartbeat expired: their jobs go
 * back to ready, the lost run counting as an attempt, so a job that kills
 * runners ends in the dead letters instead of looping.  All other
 * multi-key transitions are Lua scripts, hence atomic.  Delivery is at least
 * once: a job runs again only when its runner was lost (or presumed lost
 * after 3 missed heartbeats) before acknowledging it.
 *
 * OUTBOX (RELIABILITY battery 55): nf_jobs_submit is the enqueue for
 * workers that must not lose a job while Redis is down.  When the push to
 * Redis fails it writes the job (same id, type, tenant, payload, due time)
 * into the store's tenant-scoped "outbox" collection and reports it as
 * deferred.  nonflex-jobs drains the outbox once Redis is reachable: it
 * claims a document with a lease (atomic find-and-modify, so two runners
 * never hold the same one), pushes it with nf_jobs_push_once (SET NX on
 * the seen key and the push in one script) and deletes it.  A runner that
 * dies between push and delete leaves the document to be claimed again
 * when its lease ends; the seen key turns that second push into a no-op.
 * The same holds for a submit whose push reached Redis but whose reply was
 * lost: the job is in both places and is still queued once.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_JOBS_H
#define NF_JOBS_H

#include <stdint.h>

#include "nonflex.h"

struct nf_kv;
struct nf_store;
struct json_object;
struct nf_jobs_runner;

/* Settings, from the environment by nf_jobs_config_env. */
struct nf_jobs_config {
	int	 max_attempts;          /* NONFLEX_JOBS_MAX_ATTEMPTS, 5 (1..100) */
	int64_t	 backoff_base_ms;       /* NONFLEX_JOBS_BACKOFF_BASE_MS, 1000 (1..3600000) */
	int64_t	 backoff_max_ms;        /* NONFLEX_JOBS_BACKOFF_MAX_MS, 300000 (base..86400000) */
	int64_t	 heartbeat_ms;          /* NONFLEX_JOBS_HEARTBEAT_MS, 5000 (50..600000); TTL 3x */
};

/* A reserved job.  All fields belong to the job (nf_jobs_job_free). */
struct nf_job {
	char			 id[25];        /* 24 hex */
	char			*type;          /* handler name, e.g. "event.publish" */
	char			*tenant;        /* tenant id */
	struct json_object	*payload;       /* a JSON object; handlers borrow it */
	int			 attempts;      /* failed or lost runs before this one */
	int			 max_attempts;  /* runs allowed in all (the job's or
						   the runner's setting) */
	int64_t			 enqueued_at;   /* ms since epoch */
	char			*last_error;    /* previous run's error, or NULL */
};

/* Counts for health and metrics. */
struct nf_jobs_counts {
	int64_t	ready;          /* waiting to run */
	int64_t	delayed;        /* waiting for their due time (retries, delays) */
	int64_t	processing;     /* reserved by a runner */
	int64_t	dead;           /* dead letters */
};

/*
 * A job handler.  Return NF_OK when done; NF_EINVAL for a permanent failure
 * (the job goes to the dead letters at once); any other error is retried
 * with backoff.  err->message (safe text, no secrets) becomes the job's
 * lastError.
 */
typedef enum nf_err (*nf_jobs_fn)(const struct nf_job *, void *arg, struct nf_error *);

/* Defaults; cannot fail. */
void		 nf_jobs_config_defaults(struct nf_jobs_config *);
/* Defaults overridden by the environment; NF_EINVAL (field = variable)
 * when a variable is not an integer within its bounds. */
enum nf_err	 nf_jobs_config_env(struct nf_jobs_config *, struct nf_error *);
/* Upper bound of the retry delay after the n-th failed run:
 * min(max, base * 2^(n-1)).  The delay is uniform in [0, bound]. */
int64_t		 nf_jobs_backoff_bound(const struct nf_jobs_config *, int n);

/*
 * Enqueue a job for tenant (payload borrowed; NULL means {}), due after
 * delay_ms (0 = now).  No maxAttempts is stored: the runners'
 * NONFLEX_JOBS_MAX_ATTEMPTS applies, as it is the runners' setting.
 * id_out (may be NULL) receives the job id.  NF_EINVAL for a bad tenant,
 * type or payload, NF_ETOOBIG over 256 KiB, NF_EUNAVAIL when Redis is down.
 */
enum nf_err	 nf_jobs_enqueue(struct nf_kv *, const char *tenant, const char *type,
		    struct json_object *payload, int64_t delay_ms, char id_out[25],
		    struct nf_error *);
/* The same with an explicit number of attempts for this job (1..100). */
enum nf_err	 nf_jobs_enqueue_max(struct nf_kv *, const char *tenant, const char *type,
		    struct json_object *payload, int64_t delay_ms, int max_attempts,
		    char id_out[25], struct nf_error *);

/*
 * The parts of an enqueue: validate (as nf_jobs_enqueue; max_attempts 0
 * means the runners' setting, else 1..100), make a new id, serialize the
 * job to *json (malloc'd, the caller frees; NULL on error) and compute
 * *due, its due time in ms since epoch (0 = now).
 */
/* The same with a chosen id (24 hex; NULL: a new one). */
enum nf_err	 nf_jobs_prepare_id(const char *tenant, const char *type,
		    struct json_object *payload, int64_t delay_ms, int max_attempts,
		    const char *want_id, char id[25], char **json, int64_t *due,
		    struct nf_error *);
enum nf_err	 nf_jobs_prepare(const char *tenant, const char *type,
		    struct json_object *payload, int64_t delay_ms, int max_attempts,
		    char id[25], char **json, int64_t *due, struct nf_error *);
/*
 * Queue a prepared job unless its id was pushed before (within 3 days):
 * *pushed (may be NULL) is 1 when it was queued now, 0 when it had been
 * already.  NF_EINVAL for a bad id or job text, NF_EUNAVAIL when Redis is
 * down, NF_ESYSTEM when Redis refuses.
 */
enum nf_err	 nf_jobs_push_once(struct nf_kv *, const char *id, const char *json,
		    int64_t due, int *pushed, struct nf_error *);

/* Move due delayed jobs (score <= now_ms) to ready; *promoted (may be NULL)
 * counts them.  Atomic. */
enum nf_err	 nf_jobs_promote(struct nf_kv *, int64_t now_ms, int *promoted,
		    struct nf_error *);
enum nf_err	 nf_jobs_counts(struct nf_kv *, struct nf_jobs_counts *, struct nf_error *);
/* Dead letters from index start, at most count (1..1000), oldest last:
 * *out is a new JSON array of {id,type,tenant,payload,attempts,maxAttempts,
 * enqueuedAt,lastError} the caller puts (maxAttempts null: runners'
 * setting). */
enum nf_err	 nf_jobs_dead_list(struct nf_kv *, int64_t start, int64_t count,
		    struct json_object **out, struct nf_error *);
/* Put a dead job back on the ready list with its attempts reset.
 * NF_ENOTFOUND when id is not a dead letter. */
enum nf_err	 nf_jobs_dead_requeue(struct nf_kv *, const char *id, struct nf_error *);
/* Forget a dead job.  NF_ENOTFOUND when id is not a dead letter. */
enum nf_err	 nf_jobs_dead_delete(struct nf_kv *, const char *id, struct nf_error *);
void		 nf_jobs_job_free(struct nf_job *);     /* accepts NULL */

/*
 * A runner: its own Redis connections (one for the work, one for a
 * heartbeat thread that keeps its heartbeat key alive while the process
 * lives, however long a handler runs).  cfg is copied.  Fails only for a
 * bad URL or config; Redis may be down (calls then return NF_EUNAVAIL).
 */
enum nf_err	 nf_jobs_runner_new(const char *redis_url, const struct nf_jobs_config *,
		    struct nf_jobs_runner **, struct nf_error *);
/* Stops the heartbeat, puts unfinished reserved jobs back on the ready list
 * (no attempt counted) and deregisters.  Accepts NULL. */
void		 nf_jobs_runner_free(struct nf_jobs_runner *);
const char	*nf_jobs_runner_id(const struct nf_jobs_runner *);
/* The runner's work connection (for handlers, on the runner's thread). */
struct nf_kv	*nf_jobs_runner_kv(struct nf_jobs_runner *);
/* Register fn for type (type copied, arg borrowed); a later registration of
 * the same type replaces the earlier one.  Cannot fail. */
void		 nf_jobs_runner_register(struct nf_jobs_runner *, const char *type,
		    nf_jobs_fn fn, void *arg);
/* Refresh the heartbeat now (the thread does it every heartbeat_ms). */
enum nf_err	 nf_jobs_runner_heartbeat(struct nf_jobs_runner *, struct nf_error *);
/*
 * Reserve the next ready job, waiting up to wait_ms (0..1000; 0 = no wait).
 * *out is NULL when there is none; otherwise the caller must ack or fail it
 * and free it.
 */
enum nf_err	 nf_jobs_runner_reserve(struct nf_jobs_runner *, int wait_ms,
		    struct nf_job **out, struct nf_error *);
/* Done: forget the job.  NF_ECONFLICT when the job was no longer reserved
 * by this runner (it was reaped and will run again). */
enum nf_err	 nf_jobs_runner_ack(struct nf_jobs_runner *, const struct nf_job *,
		    struct nf_error *);
/* Failed with why (copied, capped): retry after a jittered backoff, or
 * dead-letter when permanent or out of attempts.  *dead (may be NULL) says
 * which.  NF_ECONFLICT as for ack. */
enum nf_err	 nf_jobs_runner_fail(struct nf_jobs_runner *, const struct nf_job *,
		    int permanent, const char *why, int *dead, struct nf_error *);
/* Requeue the jobs of runners whose heartbeat expired (counting the lost
 * run as an attempt); *reaped (may be NULL) counts jobs moved. */
enum nf_err	 nf_jobs_runner_reap(struct nf_jobs_runner *, int *reaped, struct nf_error *);
/*
 * One cycle: settle an acknowledgement left over from a Redis outage,
 * reserve (waiting up to wait_ms), run the handler, ack or fail.  *ran is 1
 * when a job was run.  Returns NF_EUNAVAIL while Redis is down.
 */
enum nf_err	 nf_jobs_runner_step(struct nf_jobs_runner *, int wait_ms, int *ran,
		    struct nf_error *);

/* --- outbox (jobs_outbox.c) ------------------------------------------- */

#define NF_JOBS_OUTBOX		"outbox"        /* the store collection */
#define NF_JOBS_OUTBOX_LEASE_MS	30000           /* a drainer's claim */

/*
 * Enqueue for tenant like nf_jobs_enqueue, falling back to the outbox:
 * kv and store may each be NULL (unavailable).  On NF_OK *deferred is 0
 * when the job is in Redis, 1 when it waits in the outbox for
 * nonflex-jobs; id_out (may be NULL) receives its id either way.
 * NF_EINVAL / NF_ETOOBIG as nf_jobs_enqueue; NF_EUNAVAIL
 * ("redis_unavailable") only when neither Redis nor the store took it.
 * The payload is never logged.
 */
enum nf_err	 nf_jobs_submit(struct nf_store *, struct nf_kv *, const char *tenant,
		    const char *type, struct json_object *payload, int64_t delay_ms,
		    char id_out[25], int *deferred, struct nf_error *);
/*
 * nf_jobs_submit under a chosen id (24 hex), at most once per id: a second
 * submit of the same id - a replayed webhook, a concurrent copy, a retry
 * after a crash between recording the cause and submitting - finds it
 * already queued (the "seen" key) or already waiting in the outbox (its
 * unique _id) and is a no-op returning NF_OK.  So the caller may submit
 * again whenever it is unsure, and a job is never lost nor doubled.
 */
enum nf_err	 nf_jobs_submit_id(struct nf_store *, struct nf_kv *, const char *tenant,
		    const char *type, struct json_object *payload, int64_t delay_ms,
		    const char *id, int *deferred, struct nf_error *);
/* Declare the outbox's index (idempotent). */
enum nf_err	 nf_jobs_outbox_index(struct nf_store *, struct nf_error *);
/* Documents waiting in tenant's outbox (claimed ones included). */
enum nf_err	 nf_jobs_outbox_count(struct nf_store *, const char *tenant, int64_t *n,
		    struct nf_error *);
/*
 * Claim the oldest unclaimed (or lease-expired) outbox document of tenant
 * for owner until now + lease_ms.  *doc is a new reference the caller
 * puts: {_id, tenant, type, job (the job's JSON text), due, createdAt,
 * lease, owner}.  NF_ENOTFOUND when there is none.
 */
enum nf_err	 nf_jobs_outbox_claim(struct nf_store *, const char *tenant,
		    const char *owner, int64_t lease_ms, struct json_object **doc,
		    struct nf_error *);
/* Push a claimed document's job (nf_jobs_push_once).  NF_EINVAL when the
 * document is malformed (it can never be pushed). */
enum nf_err	 nf_jobs_outbox_push(struct nf_kv *, struct json_object *doc,
		    int *pushed, struct nf_error *);
/* Delete a pushed document if owner still holds it; *deleted (may be NULL)
 * is 0 when another drainer took it over (it will delete it). */
enum nf_err	 nf_jobs_outbox_done(struct nf_store *, const char *tenant,
		    const char *owner, struct json_object *doc, int *deleted,
		    struct nf_error *);
/* Give a claimed document back at once (its push failed). */
enum nf_err	 nf_jobs_outbox_release(struct nf_store *, const char *tenant,
		    const char *owner, struct json_object *doc, struct nf_error *);
/*
 * Claim, push and delete up to max (1..10000) of tenant's outbox documents
 * as owner.  *moved counts the documents handled (queued now, found queued
 * already, or dropped as malformed).  Stops at the first store or Redis
 * failure and returns it, having given back the document it held.
 */
enum nf_err	 nf_jobs_outbox_drain(struct nf_store *, struct nf_kv *, const char *tenant,
		    const char *owner, int64_t lease_ms, int max, int *moved,
		    struct nf_error *);

#endif
