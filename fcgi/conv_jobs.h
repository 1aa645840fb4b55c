/*
 * conv_jobs.h - the conversation jobs nonflex-jobs runs: "ai.reply" (the
 * assistant answers or hands off: ai.h), "conv.deliver" (a bot or agent
 * message to Twilio, never twice: delivery.h) and "conv.task" (the
 * TaskRouter task of a handoff: delivery.h).  Each handler gets the
 * runner's struct nf_app (app.h) as its argument.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_CONV_JOBS_H
#define NF_CONV_JOBS_H

struct nf_app;
struct nf_jobs_runner;

void	nf_conv_jobs_register(struct nf_jobs_runner *, struct nf_app *);

#endif
