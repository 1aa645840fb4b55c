/*
 * main_jobs.c - nonflex-jobs, the job runner: takes jobs from the reliable
 * Redis queue (jobs.h) and runs them, with retry, backoff and dead letters.
 *
 * DESIGN: one job at a time per process; run several processes for more.
 * The loop promotes due delayed jobs, reaps runners that died (every
 * heartbeat period), and reserves/runs/acknowledges the next job.  While
 * Redis is down it keeps trying with a growing pause (up to 5 s), logging
 * the outage once.  SIGTERM/SIGINT let the current job finish, then the
 * runner hands back anything it holds and exits 0.  This stage's one job
 * type is "event.publish" (payload {topic, type, data}), which publishes
 * to nchan so slow work can announce results to browsers.
 *
 * Environment: REDIS_URL (redis://127.0.0.1:6379), NONFLEX_NCHAN_SOCKET,
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
#include "log.h"
#include "events.h"
#include "jobs.h"

#define WAIT_MS		500     /* longest BLMOVE wait: bounds shutdown delay */
#define PAUSE_MAX_MS	5000    /* longest pause between tries while Redis is down */

static volatile sig_atomic_t	stopping;

static void
on_signal(int sig)
{
	(void)sig;
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
loop(struct nf_jobs_runner *r, const struct nf_jobs_config *cfg, int once)
{
	struct nf_error	 err;
	int64_t		 next_reap = 0, pause = 0;
	enum nf_err	 rc;
	int		 ran, down = 0;

	while (!stopping) {
		ran = 0;
		if ((rc = housekeep(r, cfg, &next_reap, &err)) == NF_OK)
			rc = nf_jobs_runner_step(r, once ? 0 : WAIT_MS, &ran, &err);
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
	struct nf_error		 err;
	const char		*url;
	int			 once = 0, status;

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
	if ((url = getenv("REDIS_URL")) == NULL || *url == '\0')
		url = "redis://127.0.0.1:6379";
	if (nf_jobs_runner_new(url, &cfg, &r, &err) != NF_OK) {
		nf_error("%s", err.message);
		return 1;
	}
	signals();
	nf_events_init(getenv("NONFLEX_NCHAN_SOCKET"));
	nf_jobs_runner_register(r, "event.publish", job_event_publish, NULL);
	nf_info("job runner %s started (max attempts %d, heartbeat %lld ms)",
	    nf_jobs_runner_id(r), cfg.max_attempts, (long long)cfg.heartbeat_ms);
	status = loop(r, &cfg, once);
	nf_info("job runner %s stopping", nf_jobs_runner_id(r));
	nf_jobs_runner_free(r);
	nf_events_cleanup();
	return status;
}
