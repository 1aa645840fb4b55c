/*
 * handlers.h - request handlers named in the route table (routes.c).
 *
 * Each handler runs after the router has matched the route, resolved the
 * tenant, checked the role and parsed the body (router.h); it fills the
 * response or returns an error for the router's envelope.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_HANDLERS_H
#define NF_HANDLERS_H

#include "nonflex.h"

struct nf_req;

/* h_health.c */
enum nf_err	h_health_get(struct nf_req *, struct nf_error *);
/* h_tenants.c */
enum nf_err	h_tenants_current(struct nf_req *, struct nf_error *);
/* h_events.c */
enum nf_err	h_events_auth(struct nf_req *, struct nf_error *);
/* h_agents.c: presence, level, admin agent management */
enum nf_err	h_agents_status(struct nf_req *, struct nf_error *);
enum nf_err	h_agents_level(struct nf_req *, struct nf_error *);
enum nf_err	h_agents_list(struct nf_req *, struct nf_error *);
enum nf_err	h_agents_create(struct nf_req *, struct nf_error *);
enum nf_err	h_agents_get(struct nf_req *, struct nf_error *);
enum nf_err	h_agents_update(struct nf_req *, struct nf_error *);
enum nf_err	h_agents_delete(struct nf_req *, struct nf_error *);
/* 1 when s is a valid agent username: [a-z0-9._-]{2,64} (also nonflexctl). */
int		nf_agents_valid_username(const char *s);
/* The rules of POST /api/agents and PATCH /api/agents/:id without a
 * request, shared with nonflexctl (which audits itself).  create: body as
 * the POST body; *out the stored document (with _id and the hash: never
 * send it as is).  update: body as the PATCH body; *fields the changed
 * field names for the audit record.  Errors as the routes answer them. */
struct json_object;
struct nf_store;
enum nf_err	nf_agents_create(struct nf_store *, const char *tenant,
		    struct json_object *body, struct json_object **out, struct nf_error *);
enum nf_err	nf_agents_update(struct nf_store *, const char *tenant, const char *id,
		    struct json_object *body, struct json_object **fields, struct nf_error *);
/* h_customers.c: customers, orders, tickets, 360 view (staff) */
enum nf_err	h_customers_list(struct nf_req *, struct nf_error *);
enum nf_err	h_customers_create(struct nf_req *, struct nf_error *);
enum nf_err	h_customers_by_phone(struct nf_req *, struct nf_error *);
enum nf_err	h_customers_get(struct nf_req *, struct nf_error *);
enum nf_err	h_customers_update(struct nf_req *, struct nf_error *);
enum nf_err	h_customers_orders_list(struct nf_req *, struct nf_error *);
enum nf_err	h_customers_orders_create(struct nf_req *, struct nf_error *);
enum nf_err	h_customers_tickets_list(struct nf_req *, struct nf_error *);
enum nf_err	h_customers_tickets_create(struct nf_req *, struct nf_error *);
enum nf_err	h_customers_tickets_update(struct nf_req *, struct nf_error *);
enum nf_err	h_customers_360(struct nf_req *, struct nf_error *);
/* h_ai.c: the assistant's synchronous answer ("suggest a reply", staff) */
enum nf_err	h_ai_reply(struct nf_req *, struct nf_error *);
/* h_ai.c: today's OpenAI token use against the daily budget (supervisor, admin) */
enum nf_err	h_ai_usage(struct nf_req *, struct nf_error *);
/* h_audit.c: the audit log (admin) */
enum nf_err	h_audit_list(struct nf_req *, struct nf_error *);
enum nf_err	h_audit_export(struct nf_req *, struct nf_error *);
/* h_conversations.c: the agent inbox (staff) */
enum nf_err	h_conversations_list(struct nf_req *, struct nf_error *);
enum nf_err	h_conversations_get(struct nf_req *, struct nf_error *);
enum nf_err	h_conversations_reply(struct nf_req *, struct nf_error *);
enum nf_err	h_conversations_close(struct nf_req *, struct nf_error *);
enum nf_err	h_conversations_transfer(struct nf_req *, struct nf_error *);
enum nf_err	h_tasks_claim(struct nf_req *, struct nf_error *);
enum nf_err	h_tasks_release(struct nf_req *, struct nf_error *);
/* h_delivery.c: retry a failed outbound message (staff) */
enum nf_err	h_delivery_retry(struct nf_req *, struct nf_error *);
/* h_twhealth.c: whether Twilio accepts the tenant's credentials (supervisor, admin) */
enum nf_err	h_twhealth_get(struct nf_req *, struct nf_error *);
/* h_tokens.c: Twilio Access Tokens for the agent desk */
enum nf_err	h_tokens_conversations(struct nf_req *, struct nf_error *);
enum nf_err	h_tokens_video(struct nf_req *, struct nf_error *);
enum nf_err	h_tokens_voice(struct nf_req *, struct nf_error *);
enum nf_err	h_tokens_taskrouter(struct nf_req *, struct nf_error *);
/* h_webhooks_taskrouter.c: TaskRouter callbacks (Twilio-signed) */
enum nf_err	h_webhooks_taskrouter_assignment(struct nf_req *, struct nf_error *);
enum nf_err	h_webhooks_taskrouter_events(struct nf_req *, struct nf_error *);
/* h_webhooks_conversations.c: Conversations webhooks (Twilio-signed) */
enum nf_err	h_webhooks_conversations(struct nf_req *, struct nf_error *);
enum nf_err	h_webhooks_conversations_status(struct nf_req *, struct nf_error *);
/* h_webhooks_voice.c: Voice webhooks (Twilio-signed) */
enum nf_err	h_webhooks_voice_incoming(struct nf_req *, struct nf_error *);
enum nf_err	h_webhooks_voice_status(struct nf_req *, struct nf_error *);
/* h_auth.c: agent sessions */
enum nf_err	h_auth_login(struct nf_req *, struct nf_error *);
enum nf_err	h_auth_logout(struct nf_req *, struct nf_error *);
enum nf_err	h_auth_refresh(struct nf_req *, struct nf_error *);
enum nf_err	h_auth_me(struct nf_req *, struct nf_error *);
/* h_webchat.c: the web-chat widget (public; web-chat session token) */
enum nf_err	h_webchat_sessions_create(struct nf_req *, struct nf_error *);
enum nf_err	h_webchat_messages_create(struct nf_req *, struct nf_error *);
enum nf_err	h_webchat_messages_list(struct nf_req *, struct nf_error *);
/* h_dev.c: development and test routes (NONFLEX_DEV_ROUTES=1 only) */
enum nf_err	h_dev_echo(struct nf_req *, struct nf_error *);
enum nf_err	h_dev_echo_form(struct nf_req *, struct nf_error *);
enum nf_err	h_dev_events(struct nf_req *, struct nf_error *);
enum nf_err	h_dev_kv(struct nf_req *, struct nf_error *);
enum nf_err	h_dev_hang(struct nf_req *, struct nf_error *);
enum nf_err	h_dev_crash(struct nf_req *, struct nf_error *);
enum nf_err	h_dev_counter_inc(struct nf_req *, struct nf_error *);
enum nf_err	h_dev_counter_get(struct nf_req *, struct nf_error *);

#endif
