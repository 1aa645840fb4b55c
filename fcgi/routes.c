/*
 * routes.c - the one route table of nonflex-fcgi (see router.h).
 *
 * Rows are matched in order; put a literal path before a parameter path
 * that could also match it.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include "handlers.h"
#include "router.h"

#define KB 1024

const struct nf_route nf_routes[] = {
	{ NF_GET, "/api/health", h_health_get, NF_ROLE_NONE, NF_BODY_NONE, 0,
	    NF_ROUTE_NO_TENANT },
	{ NF_GET, "/api/tenants/current", h_tenants_current, NF_ROLE_NONE, NF_BODY_NONE, 0, 0 },
	/* Twilio refusing the tenant's credentials (h_twhealth.c). */
	{ NF_GET, "/api/tenants/current/twilio", h_twhealth_get,
	    NF_ROLE_SUPERVISOR | NF_ROLE_ADMIN, NF_BODY_NONE, 0, NF_ROUTE_NEEDS_KV },
	/* nchan's subscriber authorization subrequest (auth_request style).
	 * Public here: a web-chat visitor has no agent session, so the handler
	 * checks the agent session or the web-chat token per topic itself. */
	{ NF_GET, "/api/events/auth/:topic", h_events_auth, NF_ROLE_NONE, NF_BODY_NONE, 0,
	    NF_ROUTE_NEEDS_KV | NF_ROUTE_NEEDS_STORE },
	/* The web-chat widget (h_webchat.c): public rows; the handlers check
	 * the visitor's own session token. */
	{ NF_POST, "/api/webchat/sessions", h_webchat_sessions_create, NF_ROLE_NONE,
	    NF_BODY_JSON, 2 * KB, NF_ROUTE_NEEDS_STORE | NF_ROUTE_NEEDS_KV },
	{ NF_POST, "/api/webchat/messages", h_webchat_messages_create, NF_ROLE_NONE,
	    NF_BODY_JSON, 16 * KB, NF_ROUTE_NEEDS_STORE | NF_ROUTE_NEEDS_KV },
	{ NF_GET, "/api/webchat/messages", h_webchat_messages_list, NF_ROLE_NONE,
	    NF_BODY_NONE, 0, NF_ROUTE_NEEDS_STORE },
	/* Agent sessions (h_auth.c); login is public, the rest need a session. */
	{ NF_POST, "/api/agents/login", h_auth_login, NF_ROLE_NONE, NF_BODY_JSON, 4 * KB,
	    NF_ROUTE_NEEDS_STORE | NF_ROUTE_NEEDS_KV },
	{ NF_POST, "/api/agents/logout", h_auth_logout, NF_ROLES_STAFF, NF_BODY_NONE, 0,
	    NF_ROUTE_NEEDS_KV },
	{ NF_POST, "/api/agents/refresh", h_auth_refresh, NF_ROLES_STAFF, NF_BODY_NONE, 0,
	    NF_ROUTE_NEEDS_KV },
	{ NF_GET, "/api/agents/me", h_auth_me, NF_ROLES_STAFF, NF_BODY_NONE, 0,
	    NF_ROUTE_NEEDS_STORE },

	/* Agents (h_agents.c).  Keep literal /api/agents/<word> rows (login,
	 * me, ...) above these: ":id" would match them too. */
	{ NF_POST, "/api/agents/:id/status", h_agents_status, NF_ROLES_STAFF, NF_BODY_JSON,
	    1 * KB, NF_ROUTE_NEEDS_STORE },
	{ NF_GET, "/api/agents/:id/level", h_agents_level, NF_ROLES_STAFF, NF_BODY_NONE, 0,
	    NF_ROUTE_NEEDS_STORE },
	{ NF_GET, "/api/agents", h_agents_list, NF_ROLE_ADMIN | NF_ROLE_SUPERVISOR,
	    NF_BODY_NONE, 0, NF_ROUTE_NEEDS_STORE },
	{ NF_POST, "/api/agents", h_agents_create, NF_ROLE_ADMIN, NF_BODY_JSON, 16 * KB,
	    NF_ROUTE_NEEDS_STORE },
	{ NF_GET, "/api/agents/:id", h_agents_get, NF_ROLE_ADMIN | NF_ROLE_SUPERVISOR,
	    NF_BODY_NONE, 0, NF_ROUTE_NEEDS_STORE },
	{ NF_PATCH, "/api/agents/:id", h_agents_update, NF_ROLE_ADMIN, NF_BODY_JSON, 16 * KB,
	    NF_ROUTE_NEEDS_STORE },
	{ NF_DELETE, "/api/agents/:id", h_agents_delete, NF_ROLE_ADMIN, NF_BODY_NONE, 0,
	    NF_ROUTE_NEEDS_STORE },
	/* Customers (h_customers.c): every staff role, writes included (the
	 * agent desk creates tickets).  The literal phone row stays above the
	 * ":id" rows, which would match it too. */
	{ NF_GET, "/api/customers", h_customers_list, NF_ROLES_STAFF, NF_BODY_NONE, 0,
	    NF_ROUTE_NEEDS_STORE },
	{ NF_POST, "/api/customers", h_customers_create, NF_ROLES_STAFF, NF_BODY_JSON,
	    32 * KB, NF_ROUTE_NEEDS_STORE },
	{ NF_GET, "/api/customers/phone/:phone", h_customers_by_phone, NF_ROLES_STAFF,
	    NF_BODY_NONE, 0, NF_ROUTE_NEEDS_STORE },
	{ NF_GET, "/api/customers/:id", h_customers_get, NF_ROLES_STAFF, NF_BODY_NONE, 0,
	    NF_ROUTE_NEEDS_STORE },
	{ NF_PATCH, "/api/customers/:id", h_customers_update, NF_ROLES_STAFF, NF_BODY_JSON,
	    32 * KB, NF_ROUTE_NEEDS_STORE },
	{ NF_GET, "/api/customers/:id/orders", h_customers_orders_list, NF_ROLES_STAFF,
	    NF_BODY_NONE, 0, NF_ROUTE_NEEDS_STORE },
	{ NF_POST, "/api/customers/:id/orders", h_customers_orders_create, NF_ROLES_STAFF,
	    NF_BODY_JSON, 64 * KB, NF_ROUTE_NEEDS_STORE },
	{ NF_GET, "/api/customers/:id/tickets", h_customers_tickets_list, NF_ROLES_STAFF,
	    NF_BODY_NONE, 0, NF_ROUTE_NEEDS_STORE },
	{ NF_POST, "/api/customers/:id/tickets", h_customers_tickets_create, NF_ROLES_STAFF,
	    NF_BODY_JSON, 16 * KB, NF_ROUTE_NEEDS_STORE },
	{ NF_PATCH, "/api/customers/:id/tickets/:ticketId", h_customers_tickets_update,
	    NF_ROLES_STAFF, NF_BODY_JSON, 1 * KB, NF_ROUTE_NEEDS_STORE },
	{ NF_GET, "/api/customers/:id/360", h_customers_360, NF_ROLES_STAFF, NF_BODY_NONE, 0,
	    NF_ROUTE_NEEDS_STORE },
	/* The assistant's answer, synchronous (h_ai.c): bounded by
	 * NONFLEX_OPENAI_TIMEOUT_MS, below the request deadline. */
	{ NF_POST, "/api/ai/reply", h_ai_reply, NF_ROLES_STAFF, NF_BODY_JSON, 8 * KB, 0 },
	/* Today's OpenAI tokens against the tenant's daily budget (h_ai.c). */
	{ NF_GET, "/api/ai/usage", h_ai_usage, NF_ROLE_SUPERVISOR | NF_ROLE_ADMIN,
	    NF_BODY_NONE, 0, NF_ROUTE_NEEDS_KV },
	/* Agent inbox (h_conversations.c): every staff role; the handlers let
	 * only the holder or a supervisor/admin change a conversation. */
	{ NF_GET, "/api/conversations", h_conversations_list, NF_ROLES_STAFF, NF_BODY_NONE,
	    0, NF_ROUTE_NEEDS_STORE },
	{ NF_GET, "/api/conversations/:id", h_conversations_get, NF_ROLES_STAFF,
	    NF_BODY_NONE, 0, NF_ROUTE_NEEDS_STORE },
	{ NF_POST, "/api/conversations/:id/messages", h_conversations_reply, NF_ROLES_STAFF,
	    NF_BODY_JSON, 8 * KB, NF_ROUTE_NEEDS_STORE | NF_ROUTE_NEEDS_KV },
	{ NF_POST, "/api/conversations/:id/close", h_conversations_close, NF_ROLES_STAFF,
	    NF_BODY_JSON, 8 * KB, NF_ROUTE_NEEDS_STORE | NF_ROUTE_NEEDS_KV },
	{ NF_POST, "/api/conversations/:id/transfer", h_conversations_transfer,
	    NF_ROLES_STAFF, NF_BODY_JSON, 1 * KB, NF_ROUTE_NEEDS_STORE | NF_ROUTE_NEEDS_KV },
	/* The retry action of a failed outbound message (h_delivery.c). */
	{ NF_POST, "/api/conversations/:id/messages/:messageId/retry", h_delivery_retry,
	    NF_ROLES_STAFF, NF_BODY_NONE, 0, NF_ROUTE_NEEDS_STORE },
	{ NF_POST, "/api/tasks/claim", h_tasks_claim, NF_ROLES_STAFF, NF_BODY_JSON, 1 * KB,
	    NF_ROUTE_NEEDS_STORE | NF_ROUTE_NEEDS_KV },
	{ NF_POST, "/api/tasks/release", h_tasks_release, NF_ROLES_STAFF, NF_BODY_JSON,
	    1 * KB, NF_ROUTE_NEEDS_STORE | NF_ROUTE_NEEDS_KV },
	/* Audit log (h_audit.c). */
	{ NF_GET, "/api/audit", h_audit_list, NF_ROLE_ADMIN, NF_BODY_NONE, 0,
	    NF_ROUTE_NEEDS_STORE },
	{ NF_GET, "/api/audit/export", h_audit_export, NF_ROLE_ADMIN, NF_BODY_NONE, 0,
	    NF_ROUTE_NEEDS_STORE },
	/* Twilio Access Tokens (h_tokens.c): every staff role; the handlers
	 * decide identity (admins only for another) and the agent's worker. */
	{ NF_POST, "/api/tokens/conversations", h_tokens_conversations, NF_ROLES_STAFF,
	    NF_BODY_JSON, 1 * KB, NF_ROUTE_NEEDS_STORE },
	{ NF_POST, "/api/tokens/video", h_tokens_video, NF_ROLES_STAFF, NF_BODY_JSON, 1 * KB,
	    NF_ROUTE_NEEDS_STORE },
	{ NF_POST, "/api/tokens/voice", h_tokens_voice, NF_ROLES_STAFF, NF_BODY_JSON, 1 * KB,
	    NF_ROUTE_NEEDS_STORE },
	{ NF_POST, "/api/tokens/taskrouter", h_tokens_taskrouter, NF_ROLES_STAFF,
	    NF_BODY_JSON, 1 * KB, NF_ROUTE_NEEDS_STORE },
	/* TaskRouter callbacks (h_webhooks_taskrouter.c): public, but the router
	 * checks X-Twilio-Signature with the tenant's auth token first. */
	{ NF_POST, "/webhooks/twilio/taskrouter/assignment", h_webhooks_taskrouter_assignment,
	    NF_ROLE_NONE, NF_BODY_FORM, 32 * KB, NF_ROUTE_TWILIO_SIGNED | NF_ROUTE_NEEDS_STORE },
	{ NF_POST, "/webhooks/twilio/taskrouter/events", h_webhooks_taskrouter_events,
	    NF_ROLE_NONE, NF_BODY_FORM, 32 * KB, NF_ROUTE_TWILIO_SIGNED | NF_ROUTE_NEEDS_STORE },

	/* Conversations webhooks (h_webhooks_conversations.c), Twilio-signed:
	 * make durable, answer; never a 2xx for an event that was not kept.
	 * The post-event hook has no NEEDS_STORE: a customer's message (or a
	 * close) goes to the spool, so it is accepted while the store is down;
	 * its other events ask for the store themselves (503 without it). */
	{ NF_POST, "/webhooks/twilio/conversations", h_webhooks_conversations, NF_ROLE_NONE,
	    NF_BODY_FORM, 64 * KB, NF_ROUTE_TWILIO_SIGNED },
	{ NF_POST, "/webhooks/twilio/conversations/status", h_webhooks_conversations_status,
	    NF_ROLE_NONE, NF_BODY_FORM, 16 * KB, NF_ROUTE_TWILIO_SIGNED | NF_ROUTE_NEEDS_STORE },
	/* Voice webhooks (h_webhooks_voice.c), Twilio-signed.  The incoming call
	 * has no NEEDS_STORE on purpose: it answers TwiML even with the store
	 * down (battery 18); status callbacks need the store (503 otherwise). */
	{ NF_POST, "/webhooks/twilio/voice", h_webhooks_voice_incoming, NF_ROLE_NONE,
	    NF_BODY_FORM, 16 * KB, NF_ROUTE_TWILIO_SIGNED },
	{ NF_POST, "/webhooks/twilio/voice/status", h_webhooks_voice_status, NF_ROLE_NONE,
	    NF_BODY_FORM, 16 * KB, NF_ROUTE_TWILIO_SIGNED | NF_ROUTE_NEEDS_STORE },
	/* Development and integration-test routes: 404 unless NONFLEX_DEV_ROUTES=1. */
	{ NF_POST, "/api/dev/echo", h_dev_echo, NF_ROLE_NONE, NF_BODY_JSON, 0, NF_ROUTE_DEV },
	{ NF_POST, "/api/dev/echo-form", h_dev_echo_form, NF_ROLE_NONE, NF_BODY_FORM, 0,
	    NF_ROUTE_DEV },
	{ NF_POST, "/api/dev/events", h_dev_events, NF_ROLE_NONE, NF_BODY_JSON, 64 * KB,
	    NF_ROUTE_DEV },
	{ NF_GET, "/api/dev/kv", h_dev_kv, NF_ROLE_NONE, NF_BODY_NONE, 0,
	    NF_ROUTE_DEV | NF_ROUTE_NEEDS_KV },
	/* Failure injection for tests/integ/failures.test.mjs. */
	{ NF_POST, "/api/dev/hang", h_dev_hang, NF_ROLE_NONE, NF_BODY_JSON, 1 * KB, NF_ROUTE_DEV },
	{ NF_POST, "/api/dev/crash", h_dev_crash, NF_ROLE_NONE, NF_BODY_JSON, 1 * KB, NF_ROUTE_DEV },
	{ NF_POST, "/api/dev/counter", h_dev_counter_inc, NF_ROLE_NONE, NF_BODY_JSON, 1 * KB,
	    NF_ROUTE_DEV | NF_ROUTE_NEEDS_STORE },
	{ NF_GET, "/api/dev/counter/:name", h_dev_counter_get, NF_ROLE_NONE, NF_BODY_NONE, 0,
	    NF_ROUTE_DEV | NF_ROUTE_NEEDS_STORE },
};

const size_t nf_routes_len = NF_ARRAY_LEN(nf_routes);
