/*
 * ai_budget.h - each tenant's daily budget of OpenAI tokens (RELIABILITY
 * battery 30): what an answer's usage.total_tokens adds up to per UTC day,
 * whether the tenant may still call OpenAI today, and the numbers its
 * admins see (GET /api/ai/usage).
 *
 * DESIGN: one Redis counter per tenant and UTC day,
 * "nf:<tenant>:aitokens:<YYYYMMDD>", raised with INCRBY and given a 48 h
 * expiry in the same Lua script, so concurrent workers and job runners add
 * up exactly and old days vanish by themselves.  The budget is the
 * tenant's ai.dailyTokenBudget, else NONFLEX_AI_DAILY_TOKEN_BUDGET
 * (default 1 000 000; 0 means unlimited).  A finite default because web
 * chat is public: without one, any visitor opening sessions could spend a
 * tenant's OpenAI money without bound; a million tokens a day is a
 * thousand or more typical answers with gpt-4o-mini, which a small
 * contact center rarely reaches, and an operator raises it per tenant.
 * The check happens before each answer and the count after each call, so
 * the last answer of a day may go past the budget by itself (bounded by
 * the rounds and max_completion_tokens of one answer); after that OpenAI
 * is not called until 00:00 UTC.  The first time a tenant is found over
 * its budget on a day, "nf:<tenant>:aitokens:<day>-exhausted" is set (SET
 * NX, holding the time) and that one caller logs a warning and writes an
 * "ai.budget_exhausted" audit record: once per tenant per day, whatever
 * the number of workers.
 *
 * Redis down: a finite budget cannot be checked, so the check reports
 * NF_EUNAVAIL and the assistant treats it as exhausted (offline responder,
 * else a human): an outage of Redis must not become an unbounded bill.
 * An unlimited tenant is never checked.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_AI_BUDGET_H
#define NF_AI_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#include "nonflex.h"

struct json_object;
struct nf_app;
struct nf_tenant;

/* The tenant's daily budget in tokens: its own, else the process-wide
 * default; 0 means unlimited.  Cannot fail. */
int64_t		 nf_ai_budget_limit(const struct nf_app *, const struct nf_tenant *);

/*
 * May the tenant call OpenAI now?  *allowed 1 while today's count is below
 * the budget (always for an unlimited tenant, without touching Redis);
 * otherwise 0, and the first caller of the day logs and audits it.
 * *used (may be NULL) receives today's count (0 when unlimited).
 * NF_EUNAVAIL when Redis cannot be asked (*allowed 0: see DESIGN).
 */
enum nf_err	 nf_ai_budget_check(struct nf_app *, const struct nf_tenant *, int *allowed,
		    int64_t *used, struct nf_error *);

/* Add tokens (> 0) to the tenant's count for today; *total (may be NULL)
 * receives the new count.  NF_EUNAVAIL when Redis is down. */
enum nf_err	 nf_ai_budget_add(struct nf_app *, const struct nf_tenant *, int64_t tokens,
		    int64_t *total, struct nf_error *);

/* Today's numbers for the tenant's admins: a new object {day (YYYY-MM-DD,
 * UTC), tokensUsed, dailyTokenBudget (null: unlimited), remaining (null:
 * unlimited), exhausted, exhaustedAt (ISO time or null), resetsAt}.
 * NF_EUNAVAIL when Redis is down. */
enum nf_err	 nf_ai_budget_usage(struct nf_app *, const struct nf_tenant *,
		    struct json_object **out, struct nf_error *);

/* ---- the pure parts, exposed for the unit tests ---- */

/* The UTC day of now_ms (ms since epoch) as "YYYYMMDD". */
void		 nf_ai_budget_day(int64_t now_ms, char out[9]);
/* usage.total_tokens of a chat/completions answer body[0..len), or 0 when
 * absent, not a non-negative integer, or the body is not JSON.  Capped at
 * 10^9 so a lying answer cannot overflow a counter. */
int64_t		 nf_ai_budget_tokens(const char *body, size_t len);

#endif
