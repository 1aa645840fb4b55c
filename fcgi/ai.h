/*
 * ai.h - the AI assistant: content filter, per-conversation rate limit,
 * OpenAI chat completions with tools, and the offline responder.
 *
 * DESIGN: see the conversations issue.  The filter runs first and hands
 * off on explicit requests for a human, complaints, refunds (English and
 * Spanish), personal data (e-mail addresses, long digit runs) and
 * offensive words; then a Redis rate limit per conversation
 * (NONFLEX_AI_RATE_PER_MIN) hands off when exceeded; otherwise OpenAI's
 * chat completions (OPENAI_BASE_URL, the tenant's key, model, system
 * prompt and language) with the tools lookup_customer, get_order_by_id and
 * create_ticket run through customers.h, at most NONFLEX_AI_TOOL_ROUNDS
 * rounds, through the workers' HTTP client (http.h).  Without an OpenAI
 * key the tenant's offline responder answers from configured intents/FAQ.
 * Any failure of OpenAI (timeout, 429, 5xx, garbage) hands off: a
 * conversation is never left without an answer or a human.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_AI_H
#define NF_AI_H

#include "nonflex.h"

struct json_object;
struct nf_app;
struct nf_error;
struct nf_job;
struct nf_tenant;

/* The filter alone: 1 (and *reason "human_requested", "complaint",
 * "refund", "personal_data", "offensive") when text must go to a human. */
int		 nf_ai_filter(const char *text, const char **reason);

/* What the assistant decided for one customer message. */
struct nf_ai_answer {
	char		*reply;          /* text to send (malloc'd) or NULL */
	int		 handoff;        /* 1: a human takes over */
	const char	*reason;         /* why (static string) when handoff */
	const char	*source;         /* "openai" | "offline" | "filter" | "rate_limit" */
};

/*
 * Decide the answer to text from a customer (from: address, may be NULL)
 * in conversation conv_id (may be NULL for a one-off), with ai_enabled 0
 * meaning "hand off".  Never fails for an OpenAI problem (that is a
 * handoff); NF_EINVAL for bad input.  answer cleaned up with
 * nf_ai_answer_cleanup.
 */
enum nf_err	 nf_ai_answer(struct nf_app *, const struct nf_tenant *, const char *conv_id,
		    const char *text, const char *from, int ai_enabled,
		    struct nf_ai_answer *answer, struct nf_error *);
void		 nf_ai_answer_cleanup(struct nf_ai_answer *);

/* Job "ai.reply" {conversationId, messageId}: answer the customer's
 * message (nf_conv_send) or hand off (nf_conv_handoff). */
enum nf_err	 nf_ai_job(const struct nf_job *, void *app, struct nf_error *);

/* ---- the pure parts, exposed for the unit tests (no I/O) ---- */

/*
 * The offline responder: 1 and *reply (malloc'd) when one of the tenant's
 * ai.faq intents or a built-in greeting/thanks matches text (the intent
 * with most matching keywords wins, the first on a tie); 0 and *reply
 * NULL otherwise (the caller hands off with reason "no_answer").
 */
int		 nf_ai_offline(const struct nf_tenant *, const char *text, char **reply);
/* What the customer is told on a handoff, in the tenant's language. */
const char	*nf_ai_handoff_text(const struct nf_tenant *);
/* The chat/completions request body: the tenant's model (default
 * gpt-4o-mini), messages (borrowed; shared, not copied) and the tools.
 * New object. */
struct json_object *nf_ai_request_body(const struct nf_tenant *, struct json_object *messages);
/*
 * The assistant message of a chat/completions answer body[0..len): *msg a
 * new {role, content (string or null), tool_calls (array, when any)}.
 * NF_EUPSTREAM "ai_bad_response" when it is not JSON, has no choices, or
 * the message has neither text nor tool calls.
 */
enum nf_err	 nf_ai_parse_response(const char *body, size_t len, struct json_object **msg,
		    struct nf_error *);

#endif
