/*
 * main_jobs.c - nonflex-jobs, the job runner: takes jobs from the reliable
 * Redis queue (jobs.h) and runs them, with retry, backoff and dead letters.
 *
 * DESIGN: one job at a time per process; run several processes for more.
 * The loop promotes due delayed jobs, reaps runners that died (every
 * heartbeat period), and reserves/runs/acknowledges the next job.  While
 * Redis is down it keeps trying with a growing pause (up to 5 s), logging
 * the outage once.  SIGTERM/SIGINT let the current job finish, then the
 * runner hands back anything it holds and exits 0.  Job types:
 * "event.publish" (payload {topic, type, data}), which publishes to nchan
 * so slow work can announce results to browsers, and "crm.ticket"
 * (payload {ticketId}), which sends a ticket to the tenant's CRM.
 *
 * The runner also drains the store's outbox (jobs.h, "OUTBOX"), where
 * workers keep jobs they could not push while Redis was down: at start,
 * as soon as Redis is back after an outage, and then every second while
 * there is work, backing off to every 10 s while the outbox stays empty.
 * It reads the tenants file (config.h, tenant.h) to know whose outboxes to
 * look at, re-reads it on SIGHUP, and opens the store from STORE_URI
 * lazily, retrying after a failure; neither being usable stops the queue.
 * Only ids and counts are logged.
 *
 * With NONFLEX_SPOOL_DIR set it also runs the spool drainer, a child
 * process that records the inbound messages the workers spooled
 * (spool_drain.h), restarted when it dies and stopped with the runner.
 *
 * Environment: REDIS_URL (redis://127.0.0.1:6379), STORE_URI, TENANTS_FILE
 * and the rest of config.h's settings, NONFLEX_NCHAN_SOCKET,
 * NONFLEX_JOBS_MAX_ATTEMPTS, NONFLEX_JOBS_BACKOFF_BASE_MS,
 * NONFLEX_JOBS_BACKOFF_MAX_MS, NONFLEX_JOBS_HEARTBEAT_MS, NONFLEX_LOG_LEVEL
 * (debug|info|warn|error).
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "nonflex.h"
#include "app.h"
#include "config.h"
#include "conv_jobs.h"
#include "crm.h"
#include "json.h"
#include "log.h"
#include "spool_drain.h"
#include "events.h"
#include "jobs.h"
#include "store.h"
#include "tenant.h"

#define WAIT_MS		500     /* longest BLMOVE wait: bounds shutdown delay */
#define PAUSE_MAX_MS	5000    /* longest pause between tries while Redis is down */
#define DRAIN_BATCH	100     /* outbox documents per tenant per drain */
#define DRAIN_MIN_MS	1000    /* drain interval while there is work */
#define DRAIN_MAX_MS	10000   /* ... and at most, while the outbox is empty */
#define STORE_RETRY_MS	5000    /* wait after a failed store open */
#define TENANTS_RETRY_MS 30000  /* wait after a failed tenants file load */

/* The outbox drainer's state. */
struct outbox {
	struct nf_config	 cfg;           /* settings (CRM timeouts, ...) */
	char			*store_uri;     /* STORE_URI (a secret: never logged) */
	char			*tenants_file;  /* TENANTS_FILE */
	struct nf_tenants	*tenants;       /* whose outboxes are drained */
	struct nf_store		*store;         /* NULL until opened */
	int64_t			 store_retry;   /* monotonic ms of the next open */
	int64_t			 tenants_retry; /* ... of the next tenants load */
	int64_t			 next;          /* monotonic ms of the next drain */
	int64_t			 every;         /* current drain interval */
};

static volatile sig_atomic_t	stopping;
static volatile sig_atomic_t	reload;

static void
on_signal(int sig)
{
	if (sig == SIGHUP) {
		reload = 1;
		nf_app_request_reload();   /* the conversation jobs' context */
	}
	else
		stopping = 1;
}

static void
signals(void)
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static void
sleep_ms(int64_t ms)
{
	struct timespec	ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000;
	nanosleep(&ts, NULL);   /* a signal cuts it short: fine */
}

/*
 * "event.publish": payload {topic, type, data?}.  A malformed payload can
 * never succeed (permanent, NF_EINVAL); nchan being down or refusing is
 * retried.
 */
static enum nf_err
job_event_publish(const struct nf_job *j, void *arg, struct nf_error *err)
{
	struct json_object	*topic, *type, *data = NULL;
	enum nf_err		 rc;

	(void)arg;
	if (!json_object_object_get_ex(j->payload, "topic", &topic) ||
	    !json_object_is_type(topic, json_type_string) ||
	    !nf_events_valid_topic(json_object_get_string(topic)))
		return nf_error_set(err, NF_EINVAL, "invalid_payload", "topic",
		    "event.publish needs a valid topic");
	if (!json_object_object_get_ex(j->payload, "type", &type) ||
	    !json_object_is_type(type, json_type_string))
		return nf_error_set(err, NF_EINVAL, "invalid_payload", "type",
		    "event.publish needs an event type");
	json_object_object_get_ex(j->payload, "data", &data);
	rc = nf_events_publish(j->tenant, json_object_get_string(topic),
	    json_object_get_string(type), data, err);
	/* an event too large can never be published either */
	if (rc == NF_ETOOBIG)
		rc = NF_EINVAL;
	return rc;
}

static enum nf_log_level
log_level(void)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	const char	*s = getenv("NONFLEX_LOG_LEVEL");
	size_t		 i;

	for (i = 0; s != NULL && i < NF_ARRAY_LEN(names); i++)
		if (strcmp(s, names[i]) == 0)
			return (enum nf_log_level)i;
	return NF_LOG_INFO;
}

static void
usage(void)
{
	fprintf(stderr, "usage: nonflex-jobs [--once]\n"
	    "  --once  run the jobs that are ready now, then exit\n");
}

static void
outbox_cleanup(struct outbox *ob)
{
	nf_store_free(ob->store);
	nf_tenants_free(ob->tenants);
	nf_config_cleanup(&ob->cfg);
	free(ob->store_uri);
	free(ob->tenants_file);
	memset(ob, 0, sizeof(*ob));
}

/* (Re)read the tenants file, at start and on SIGHUP, so a tenant added
 * later gets its outbox drained too; a file that does not load keeps the
 * tenants read before and is tried again after TENANTS_RETRY_MS. */
static void
outbox_reload(struct outbox *ob)
{
	struct nf_tenants	*t = NULL;
	struct nf_error		 err;

	ob->tenants_retry = nf_mono_ms() + TENANTS_RETRY_MS;
	if (nf_tenants_load(ob->tenants_file, &t, &err) != NF_OK) {
		nf_error("outbox: cannot use the tenants file %s: %s%s", ob->tenants_file,
		    err.message, ob->tenants != NULL ? "; keeping the tenants read before" :
		    "; outboxes are not drained until it loads");
		return;
	}
	nf_tenants_free(ob->tenants);
	ob->tenants = t;
	ob->next = 0;
	nf_info("outbox: %zu tenant(s) read from %s", t->n, ob->tenants_file);
}

/*
 * Read the settings (an invalid one is fatal, as for the workers) and the
 * tenants file.  Without a readable tenants file the runner still runs the
 * queue; the outbox waits until the file loads (retried, and on SIGHUP).
 */
static enum nf_err
outbox_init(struct outbox *ob, struct nf_error *err)
{
	enum nf_err		rc;

	memset(ob, 0, sizeof(*ob));
	if ((rc = nf_config_load(&ob->cfg, err)) != NF_OK)
		return rc;
	ob->store_uri = nf_xstrdup(ob->cfg.store_uri);
	ob->tenants_file = nf_xstrdup(ob->cfg.tenants_file);
	outbox_reload(ob);
	return NF_OK;
}

/* The store, opened on first use and after a failure at most every
 * STORE_RETRY_MS; NULL while it cannot be opened. */
static struct nf_store *
outbox_store(struct outbox *ob)
{
	struct nf_error	 err;

	if (ob->store != NULL || nf_mono_ms() < ob->store_retry)
		return ob->store;
	if (nf_store_open(ob->store_uri, &ob->store, &err) != NF_OK ||
	    nf_jobs_outbox_index(ob->store, &err) != NF_OK) {
		nf_warn("outbox: cannot use the store (%s); retrying in %d s",
		    err.message, STORE_RETRY_MS / 1000);
		nf_store_free(ob->store);
		ob->store = NULL;
		ob->store_retry = nf_mono_ms() + STORE_RETRY_MS;
	}
	return ob->store;
}

/*
 * Drain every tenant's outbox when it is time.  Failures are logged and
 * retried at the next interval; they never stop the job loop.
 */
static void
outbox_drain(struct outbox *ob, struct nf_jobs_runner *r)
{
	struct nf_store	*st;
	struct nf_error	 err;
	size_t		 i;
	int		 n, total = 0, full = 0;

	if (ob->tenants == NULL && nf_mono_ms() >= ob->tenants_retry)
		outbox_reload(ob);
	if (ob->tenants == NULL || nf_mono_ms() < ob->next)
		return;
	if ((st = outbox_store(ob)) == NULL) {
		ob->next = ob->store_retry;
		return;
	}
	for (i = 0; i < ob->tenants->n; i++) {
		if (nf_jobs_outbox_drain(st, nf_jobs_runner_kv(r), ob->tenants->v[i].id,
		    nf_jobs_runner_id(r), NF_JOBS_OUTBOX_LEASE_MS, DRAIN_BATCH, &n,
		    &err) != NF_OK) {
			nf_warn("outbox: tenant %s: %s", ob->tenants->v[i].id, err.message);
			ob->every = DRAIN_MIN_MS;       /* try again soon */
			ob->next = nf_mono_ms() + ob->every;
			return;
		}
		total += n;
		full |= n == DRAIN_BATCH;
	}
	if (total > 0)
		ob->every = DRAIN_MIN_MS;
	else
		ob->every = ob->every < DRAIN_MIN_MS ? DRAIN_MIN_MS :
		    ob->every * 2 > DRAIN_MAX_MS ? DRAIN_MAX_MS : ob->every * 2;
	/* a full batch means more is waiting: go on at once */
	ob->next = nf_mono_ms() + (full ? 0 : ob->every);
}

/*
 * "crm.ticket": payload {ticketId}.  Send the tenant's ticket to its CRM
 * (crm.h) and mark it crm {status: "synced", id}.  A ticket already synced
 * is done (delivery is at least once); a missing ticket, tenant or CRM, or
 * a CRM refusing it (4xx but 408/429) can never succeed: permanent.  The
 * CRM failing, stalling or the store being down is retried with backoff.
 */
static enum nf_err
job_crm_ticket(const struct nf_job *j, void *arg, struct nf_error *err)
{
	struct outbox		*ob = arg;
	const struct nf_tenant	*t;
	struct json_object	*f, *ticket = NULL, *crm, *st, *upd, *set;
	struct nf_store		*store;
	const char		*id = NULL;
	char			*crm_id = NULL;
	enum nf_err		 rc;

	if (nf_json_get_string(j->payload, "ticketId", 1, 64, 1, &id, err) != NF_OK)
		return NF_EINVAL;
	if ((t = nf_tenant_find(ob->tenants, j->tenant)) == NULL)
		return nf_error_set(err, NF_EINVAL, "tenant_not_found", NULL,
		    "crm.ticket: unknown tenant");
	if ((store = outbox_store(ob)) == NULL)
		return nf_error_set(err, NF_EUNAVAIL, "store_unavailable", NULL,
		    "crm.ticket: the store is unavailable");
	f = nf_json_pair("ticketId", id);
	if ((rc = nf_store_find_one(store, t->id, "tickets", f, NULL, &ticket, err)) != NF_OK) {
		if (rc == NF_ENOTFOUND)
			rc = nf_error_set(err, NF_EINVAL, "ticket_not_found", NULL,
			    "crm.ticket: no such ticket");
		goto out;
	}
	if (json_object_object_get_ex(ticket, "crm", &crm) &&
	    json_object_object_get_ex(crm, "status", &st) &&
	    json_object_is_type(st, json_type_string) &&
	    strcmp(json_object_get_string(st), "synced") == 0)
		goto out;
	if ((rc = nf_crm_ticket_push(&ob->cfg, t, ticket, &crm_id, err)) != NF_OK)
		goto out;
	set = json_object_new_object();
	nf_json_add_str(set, "crm.status", "synced");
	nf_json_add(set, "crm.id", crm_id != NULL ? json_object_new_string(crm_id) : NULL);
	upd = json_object_new_object();
	nf_json_add(upd, "$set", set);
	rc = nf_store_update(store, t->id, "tickets", f, upd, 0, NULL, err);
	json_object_put(upd);
	if (rc == NF_OK)
		nf_info("crm.ticket: ticket %s synced", id);
out:
	free(crm_id);
	json_object_put(ticket);
	json_object_put(f);
	return rc;
}

/* Housekeeping: promote due jobs; reap dead runners when it is time. */
static enum nf_err
housekeep(struct nf_jobs_runner *r, const struct nf_jobs_config *cfg,
    int64_t *next_reap, struct nf_error *err)
{
	enum nf_err	rc;

	if ((rc = nf_jobs_promote(nf_jobs_runner_kv(r), nf_now_ms(), NULL, err)) != NF_OK)
		return rc;
	if (nf_mono_ms() < *next_reap)
		return NF_OK;
	if ((rc = nf_jobs_runner_reap(r, NULL, err)) == NF_OK)
		*next_reap = nf_mono_ms() + cfg->heartbeat_ms;
	return rc;
}

/* The main loop; returns the exit status. */
static int
loop(struct nf_jobs_runner *r, const struct nf_jobs_config *cfg, struct outbox *ob,
    int once, pid_t *drainer)
{
	struct nf_error	 err;
	int64_t		 next_reap = 0, pause = 0;
	enum nf_err	 rc;
	int		 ran, down = 0;

	while (!stopping) {
		if (reload) {
			reload = 0;
			outbox_reload(ob);
		}
		ran = 0;
		if (!once)
			nf_spool_drainer_check(drainer);
		if ((rc = housekeep(r, cfg, &next_reap, &err)) == NF_OK) {
			if (down)       /* what the workers kept meanwhile */
				ob->next = 0;
			outbox_drain(ob, r);
			rc = nf_jobs_runner_step(r, once ? 0 : WAIT_MS, &ran, &err);
		}
		if (rc == NF_EUNAVAIL) {
			if (!down)
				nf_warn("redis unavailable; jobs wait until it is back");
			down = 1;
			pause = pause == 0 ? 250 : (pause * 2 > PAUSE_MAX_MS ?
			    PAUSE_MAX_MS : pause * 2);
			if (once)
				return 1;
			sleep_ms(pause);
			continue;
		}
		if (down)
			nf_info("redis back; processing jobs");
		down = 0;
		pause = 0;
		if (rc != NF_OK)
			nf_error("job runner: %s", err.message);
		if (once && !ran && rc == NF_OK)
			break;
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	struct nf_jobs_config	 cfg;
	struct nf_jobs_runner	*r = NULL;
	struct outbox		 ob;
	struct nf_app		 app;
	struct nf_error		 err;
	const char		*url;
	int			 once = 0, status;
	pid_t			 drainer = 0;

	if (argc == 2 && strcmp(argv[1], "--once") == 0)
		once = 1;
	else if (argc != 1) {
		usage();
		return 2;
	}
	nf_log_init("nonflex-jobs", log_level());
	if (nf_jobs_config_env(&cfg, &err) != NF_OK) {
		nf_error("%s", err.message);
		return 1;
	}
	/* Before this process opens anything the child would inherit. */
	signals();
	if (!once)
		drainer = nf_spool_drainer_start(&stopping);
	if (outbox_init(&ob, &err) != NF_OK) {
		nf_error("%s", err.message);
		outbox_cleanup(&ob);
		nf_spool_drainer_stop(drainer);
		return 1;
	}
	/* The context the conversation jobs share with the workers' code
	 * (app.h): configuration, tenants, store and Redis, opened lazily.
	 * Like the outbox, it waits for a tenants file that cannot be read
	 * yet instead of stopping the other jobs (conv_jobs.c retries). */
	if (nf_app_init(&app, "nonflex-jobs", &err) != NF_OK)
		nf_error("conversation jobs wait for their configuration: %s", err.message);
	if ((url = getenv("REDIS_URL")) == NULL || *url == '\0')
		url = "redis://127.0.0.1:6379";
	if (nf_jobs_runner_new(url, &cfg, &r, &err) != NF_OK) {
		nf_error("%s", err.message);
		nf_app_cleanup(&app);
		outbox_cleanup(&ob);
		nf_spool_drainer_stop(drainer);
		return 1;
	}
	nf_events_init(getenv("NONFLEX_NCHAN_SOCKET"));
	nf_jobs_runner_register(r, "event.publish", job_event_publish, NULL);
	nf_jobs_runner_register(r, "crm.ticket", job_crm_ticket, &ob);
	nf_conv_jobs_register(r, &app);
	nf_info("job runner %s started (max attempts %d, heartbeat %lld ms)",
	    nf_jobs_runner_id(r), cfg.max_attempts, (long long)cfg.heartbeat_ms);
	status = loop(r, &cfg, &ob, once, &drainer);
	nf_info("job runner %s stopping", nf_jobs_runner_id(r));
	nf_spool_drainer_stop(drainer);
	nf_jobs_runner_free(r);
	nf_app_cleanup(&app);
	outbox_cleanup(&ob);
	nf_events_cleanup();
	return status;
}
