/*
 * ai_openai.h - one chat/completions exchange with OpenAI for the AI
 * assistant (ai.c), with bounded retries, and the tokens it used counted
 * against the tenant's daily budget (ai_budget.h).
 *
 * DESIGN (RELIABILITY battery 30): a 429, a 5xx, a timeout or a failed
 * connection is retried at most NONFLEX_AI_RETRIES times, each attempt
 * given at most NONFLEX_OPENAI_ATTEMPT_TIMEOUT_MS, all of it inside the
 * caller's deadline (NONFLEX_OPENAI_TIMEOUT_MS for a whole answer), so
 * neither a job nor the synchronous POST /api/ai/reply can loop or wait
 * without end.  The wait before retry n is 250 ms * 2^(n-1), capped at
 * 2 s, with "equal jitter" (half fixed, half random) so runners hit by the
 * same outage do not return in step; a Retry-After from OpenAI replaces it
 * when it fits (up to 5 s), and one longer than that, or a wait that would
 * leave less than 200 ms for the attempt, ends the retries at once: the
 * caller hands the conversation to a human rather than keep the customer
 * waiting.  Other answers (401, 400, an unreadable 200) are not retried:
 * they would fail the same way again.  The request body is capped (the
 * prompt is bounded: ai.c sends a bounded history window) and every 200's
 * usage.total_tokens is added to the tenant's count, even when the
 * message itself is unusable, since OpenAI bills it anyway.
 *
 * The key is put in one header buffer, wiped after use; log lines give
 * the failure, the status and the attempt, never the key or the text.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_AI_OPENAI_H
#define NF_AI_OPENAI_H

#include <stdint.h>

#include "nonflex.h"

struct json_object;
struct nf_app;
struct nf_tenant;

#define NF_AI_OPENAI_MAX_REQUEST	(256 * 1024)   /* request body cap, bytes */

/*
 * POST chat/completions with messages msgs (borrowed) for tenant t, retried
 * as in DESIGN until deadline (monotonic ms).  *reply receives the
 * assistant message (nf_ai_parse_response's shape).  Errors (all mean
 * "hand off"): NF_EUPSTREAM "ai_error" (a status other than 200, retries
 * spent), "ai_bad_response", "upstream_timeout"; NF_EUNAVAIL
 * "upstream_unreachable"; NF_ETOOBIG "ai_prompt_too_large".
 */
enum nf_err	 nf_ai_openai_chat(struct nf_app *, const struct nf_tenant *,
		    struct json_object *msgs, int64_t deadline, struct json_object **reply,
		    struct nf_error *);

/* ---- the pure parts, exposed for the unit tests ---- */

/* 1 when a failed attempt may succeed if tried again: rc NF_EUNAVAIL, or
 * NF_EUPSTREAM with code "upstream_timeout" or "upstream_error" (no or a
 * broken answer), or an HTTP status 429 or 5xx (rc NF_OK). */
int		 nf_ai_openai_transient(enum nf_err rc, const char *code, int status);

/*
 * The wait in ms before the next attempt after retries_done retries
 * (0 before the first retry) of at most max_retries, or -1: no retry.
 * retry_after_ms is the answer's Retry-After (0: none), left_ms the time
 * to the deadline, rnd any random number (the jitter).
 */
int64_t		 nf_ai_openai_retry_delay(int retries_done, int max_retries,
		    int64_t retry_after_ms, int64_t left_ms, uint32_t rnd);

#endif
