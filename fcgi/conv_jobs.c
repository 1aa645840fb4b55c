/*
 * conv_jobs.c - registers the conversation jobs (see conv_jobs.h); the
 * handlers live with their modules (ai.c, delivery.c).
 *
 * DESIGN: every handler runs through run(), which makes sure the runner's
 * struct nf_app is loaded (a tenants file that could not be read at start
 * is tried again, at most every CONFIG_RETRY_MS; meanwhile the jobs are
 * retried later, never failed) and applies a pending SIGHUP reload.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include "ai.h"
#include "app.h"
#include "conv_jobs.h"
#include "delivery.h"
#include "jobs.h"
#include "log.h"
#include "nonflex.h"

#define CONFIG_RETRY_MS	30000

struct conv_job {
	nf_jobs_fn	 fn;
	struct nf_app	*app;
};

static struct conv_job	 jobs[3];

/* 1 when app holds a configuration and tenants. */
static int
ready(struct nf_app *app)
{
	static int64_t	 retry_at;
	struct nf_error	 e;

	if (app->tenants != NULL) {
		nf_app_maybe_reload(app);
		return 1;
	}
	if (nf_mono_ms() < retry_at)
		return 0;
	retry_at = nf_mono_ms() + CONFIG_RETRY_MS;
	if (nf_app_init(app, "nonflex-jobs", &e) != NF_OK) {
		nf_error("conversation jobs wait for their configuration: %s", e.message);
		return 0;
	}
	return 1;
}

static enum nf_err
run(const struct nf_job *j, void *arg, struct nf_error *e)
{
	struct conv_job	*cj = arg;

	if (!ready(cj->app))
		return nf_error_set(e, NF_EUNAVAIL, "not_configured", NULL,
		    "the configuration or tenants file is not loaded yet");
	return cj->fn(j, cj->app, e);
}

void
nf_conv_jobs_register(struct nf_jobs_runner *r, struct nf_app *app)
{
	static const struct {
		const char	*type;
		nf_jobs_fn	 fn;
	} table[] = {
		{ "ai.reply", nf_ai_job },
		{ "conv.deliver", nf_delivery_job },
		{ "conv.task", nf_delivery_task_job },
	};
	size_t	 i;

	_Static_assert(NF_ARRAY_LEN(table) == NF_ARRAY_LEN(jobs), "one slot per job");
	for (i = 0; i < NF_ARRAY_LEN(table); i++) {
		jobs[i].fn = table[i].fn;
		jobs[i].app = app;
		nf_jobs_runner_register(r, table[i].type, run, &jobs[i]);
	}
}
