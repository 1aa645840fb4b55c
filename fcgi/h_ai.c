/*
 * h_ai.c - POST /api/ai/reply: the agent desk's "suggest a reply", and the
 * original's synchronous AI endpoint; GET /api/ai/usage: the tenant's
 * OpenAI tokens today against its daily budget (ai_budget.h).
 *
 * A thin handler over ai.c's nf_ai_answer, run in the worker through the
 * workers' HTTP client (bounded by NONFLEX_OPENAI_TIMEOUT_MS, below the
 * request deadline).  It never answers an OpenAI failure with an error:
 * that is {handoff: true}, as for the customer.  Nothing is stored: the
 * conversation (when given) only lends its history and its rate limit.
 * It obeys the tenant's daily token budget as the customer-facing
 * assistant does, and its tokens count against it.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <string.h>

#include <json-c/json.h>

#include "ai.h"
#include "ai_budget.h"
#include "app.h"
#include "conversations.h"
#include "customers.h"
#include "handlers.h"
#include "json.h"
#include "nonflex.h"
#include "req.h"
#include "valid.h"

#define ID_MAX		64

static const char *const fields[] = { "userMsg", "fromPhone", "conversationId", "aiEnabled",
    NULL };

/* fromPhone: a phone number in any spelling, optionally "whatsapp:". */
static enum nf_err
check_phone(struct nf_req *r, const char *phone, struct nf_error *e)
{
	char	 e164[NF_PHONE_MAX + 1];

	if (strncmp(phone, "whatsapp:", 9) == 0)
		phone += 9;
	if (nf_phone_e164(phone, r->app->cfg.phone_default_cc, e164, e) != NF_OK)
		return nf_error_set(e, NF_EINVAL, "invalid_phone", "fromPhone",
		    "fromPhone must be a phone number");
	return NF_OK;
}

/*
 * POST /api/ai/reply (staff) {userMsg, fromPhone?, conversationId?,
 * aiEnabled?}: 200 {reply, handoff, reason, source}; reply is null only
 * when aiEnabled is false.  400 naming userMsg, fromPhone, conversationId
 * or aiEnabled (or an unknown field).
 */
enum nf_err
h_ai_reply(struct nf_req *r, struct nf_error *e)
{
	const char		*msg = NULL, *from = NULL, *conv = NULL;
	struct nf_ai_answer	 a;
	struct json_object	*out;
	enum nf_err		 rc;
	int			 enabled = 1;

	if ((rc = nf_json_reject_unknown(r->json, fields, e)) != NF_OK ||
	    (rc = nf_json_get_string(r->json, "userMsg", 1, NF_CONV_BODY_MAX, 1, &msg,
	    e)) != NF_OK ||
	    (rc = nf_json_get_string(r->json, "fromPhone", 1, ID_MAX, 0, &from, e)) != NF_OK ||
	    (rc = nf_json_get_string(r->json, "conversationId", 1, ID_MAX, 0, &conv,
	    e)) != NF_OK ||
	    (rc = nf_json_get_bool(r->json, "aiEnabled", 0, &enabled, e)) != NF_OK)
		return rc;
	if (from != NULL && (rc = check_phone(r, from, e)) != NF_OK)
		return rc;
	if (conv != NULL && !nf_valid_hex24(conv) && !nf_valid_twilio_sid(conv, "CH"))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "conversationId",
		    "conversationId must be a conversation id or a Twilio CH... SID");
	if ((rc = nf_ai_answer(r->app, r->tenant, conv, msg, from, enabled, &a, e)) != NF_OK)
		return rc;
	out = json_object_new_object();
	nf_json_add_str(out, "reply", a.reply);
	nf_json_add_bool(out, "handoff", a.handoff);
	nf_json_add_str(out, "reason", a.handoff ? a.reason : NULL);
	nf_json_add_str(out, "source", a.source);
	nf_ai_answer_cleanup(&a);
	nf_resp_json(r, 200, out);
	return NF_OK;
}

/*
 * GET /api/ai/usage (supervisor, admin): 200 {day, tokensUsed,
 * dailyTokenBudget, remaining, exhausted, exhaustedAt, resetsAt} for the
 * caller's tenant (ai_budget.h); 503 when Redis is down.
 */
enum nf_err
h_ai_usage(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*out = NULL;
	enum nf_err		 rc;

	if ((rc = nf_ai_budget_usage(r->app, r->tenant, &out, e)) != NF_OK)
		return rc;
	nf_resp_json(r, 200, out);
	return NF_OK;
}
