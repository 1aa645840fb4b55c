/*
 * conv_jobs.c - registers the conversation jobs (see conv_jobs.h); the
 * handlers live with their modules (ai.c, delivery.c).
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include "ai.h"
#include "conv_jobs.h"
#include "delivery.h"
#include "jobs.h"

void
nf_conv_jobs_register(struct nf_jobs_runner *r, struct nf_app *app)
{
	nf_jobs_runner_register(r, "ai.reply", nf_ai_job, app);
	nf_jobs_runner_register(r, "conv.deliver", nf_delivery_job, app);
	nf_jobs_runner_register(r, "conv.task", nf_delivery_task_job, app);
}
