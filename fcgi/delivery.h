/*
 * delivery.h - outbound messages to Twilio Conversations, never twice,
 * never lost; and the TaskRouter task of a handoff.
 *
 * DESIGN: job "conv.deliver" {conversationId, messageId} posts the message
 * to the conversation's Twilio Conversation (author "bot" or the agent's
 * identity, our message id in the message attributes) through
 * twilio_api.h.  429 and failures before the request was sent are retried
 * with backoff; an ambiguous failure (5xx or timeout after sending) first
 * looks the message up by our id (nf_twapi_message_find) and resends only
 * when Twilio does not have it (nf_twapi_message_find_since, bounded by
 * the message's first attempt).  A 401/403 flags the tenant (twhealth.h)
 * and parks its jobs until its credentials work again.  After the last
 * attempt the message is
 * marked failed (visible in the inbox with a retry action) and the job is
 * dead-lettered.  Job "conv.task" {conversationId} creates the TaskRouter
 * task of a handoff when the tenant has a workflow and records its SID.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_DELIVERY_H
#define NF_DELIVERY_H

#include "nonflex.h"

struct nf_job;

enum nf_err	 nf_delivery_job(const struct nf_job *, void *app, struct nf_error *);
enum nf_err	 nf_delivery_task_job(const struct nf_job *, void *app, struct nf_error *);

#endif
