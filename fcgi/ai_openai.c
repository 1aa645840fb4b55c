/*
 * ai_openai.c - OpenAI chat/completions with bounded retries and token
 * counting (ai_openai.h).
 *
 * DESIGN: see ai_openai.h.  Each attempt is one nf_http_do (http.h: the
 * same client in nonflex-fcgi and nonflex-jobs), so the waits here are
 * plain sleeps of the calling process: bounded by the deadline the
 * caller chose, never by OpenAI.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "ai.h"
#include "ai_budget.h"
#include "ai_openai.h"
#include "app.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "tenant.h"

#define MAX_RESPONSE		(512 * 1024)
#define BACKOFF_BASE_MS		250
#define BACKOFF_MAX_MS		2000
#define RETRY_AFTER_MAX_MS	5000
#define MIN_ATTEMPT_MS		200     /* an attempt shorter than this is futile */

int
nf_ai_openai_transient(enum nf_err rc, const char *code, int status)
{
	if (rc == NF_EUNAVAIL)
		return 1;
	if (rc == NF_EUPSTREAM)
		return code != NULL && (strcmp(code, "upstream_timeout") == 0 ||
		    strcmp(code, "upstream_error") == 0);
	return rc == NF_OK && (status == 429 || (status >= 500 && status <= 599));
}

int64_t
nf_ai_openai_retry_delay(int retries_done, int max_retries, int64_t retry_after_ms,
    int64_t left_ms, uint32_t rnd)
{
	int64_t	 bound = BACKOFF_BASE_MS, delay;
	int	 i;

	if (retries_done < 0 || retries_done >= max_retries)
		return -1;
	if (retry_after_ms > RETRY_AFTER_MAX_MS)
		return -1;
	for (i = 0; i < retries_done && bound < BACKOFF_MAX_MS; i++)
		bound *= 2;
	if (bound > BACKOFF_MAX_MS)
		bound = BACKOFF_MAX_MS;
	delay = bound / 2 + (int64_t)(rnd % (uint32_t)(bound / 2 + 1));
	if (retry_after_ms > 0)
		delay = retry_after_ms;
	if (delay + MIN_ATTEMPT_MS > left_ms)
		return -1;
	return delay;
}

static void
sleep_ms(int64_t ms)
{
	struct timespec	 ts, rem;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &rem) == -1 && errno == EINTR)
		ts = rem;
}

/* One exchange of the prepared request, at most timeout_ms. */
static enum nf_err
attempt(struct nf_http_req *req, int64_t timeout_ms, struct nf_http_resp *resp,
    struct nf_error *e)
{
	memset(resp, 0, sizeof(*resp));
	req->connect_timeout_ms = timeout_ms;
	req->total_timeout_ms = timeout_ms;
	return nf_http_do(req, resp, e);
}

/* Count a 200's tokens; a lost count is logged, the answer still used. */
static void
count_tokens(struct nf_app *app, const struct nf_tenant *t, const struct nf_http_resp *resp)
{
	int64_t		 n = nf_ai_budget_tokens(resp->body, resp->body_len);
	struct nf_error	 e;

	if (n > 0 && nf_ai_budget_add(app, t, n, NULL, &e) != NF_OK)
		nf_warn("ai: %lld tokens of tenant %s not counted (%s)", (long long)n, t->id,
		    e.code);
}

/* The retry loop over a prepared request. */
static enum nf_err
exchange(struct nf_app *app, const struct nf_tenant *t, struct nf_http_req *req,
    int64_t deadline, struct json_object **reply, struct nf_error *e)
{
	struct nf_http_resp	 resp;
	int64_t			 left, delay;
	uint32_t		 rnd;
	enum nf_err		 rc;
	int			 retries, status;

	for (retries = 0;; retries++) {
		if ((left = deadline - nf_mono_ms()) <= 0)
			return nf_error_set(e, NF_EUPSTREAM, "upstream_timeout", NULL,
			    "no time left");
		rc = attempt(req, left < app->cfg.openai_attempt_ms ? left :
		    app->cfg.openai_attempt_ms, &resp, e);
		status = rc == NF_OK ? resp.status : 0;
		if (status == 200) {
			count_tokens(app, t, &resp);
			rc = nf_ai_parse_response(resp.body, resp.body_len, reply, e);
			nf_http_resp_cleanup(&resp);
			return rc;
		}
		nf_random_bytes(&rnd, sizeof(rnd));
		delay = nf_ai_openai_transient(rc, rc == NF_OK ? NULL : e->code, status) ?
		    nf_ai_openai_retry_delay(retries, (int)app->cfg.ai_retries,
		    resp.retry_after_ms, deadline - nf_mono_ms(), rnd) : -1;
		if (rc == NF_OK)
			rc = nf_error_set(e, NF_EUPSTREAM, "ai_error", NULL, "status %d", status);
		nf_warn("ai: OpenAI attempt %d failed (%s, status %d%s)%s", retries + 1, e->code,
		    status, resp.timed_out ? ", timed out" : "", delay >= 0 ? ", retrying" :
		    ", giving up");
		nf_http_resp_cleanup(&resp);
		if (delay < 0)
			return rc;
		sleep_ms(delay);
	}
}

enum nf_err
nf_ai_openai_chat(struct nf_app *app, const struct nf_tenant *t, struct json_object *msgs,
    int64_t deadline, struct json_object **reply, struct nf_error *e)
{
	const char		*headers[4], *base = app->cfg.openai_base_url;
	struct json_object	*body = nf_ai_request_body(t, msgs);
	struct nf_http_req	 req;
	char			*auth, *url;
	size_t			 blen = strlen(base);
	enum nf_err		 rc;

	*reply = NULL;
	memset(&req, 0, sizeof(req));
	req.body = nf_json_str(body, &req.body_len);
	if (req.body_len > NF_AI_OPENAI_MAX_REQUEST) {
		nf_warn("ai: prompt of %zu bytes not sent", req.body_len);
		json_object_put(body);
		return nf_error_set(e, NF_ETOOBIG, "ai_prompt_too_large", NULL,
		    "the conversation is too long for the assistant");
	}
	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	url = nf_xasprintf("%.*s/chat/completions", (int)blen, base);
	auth = nf_xasprintf("Authorization: Bearer %s", t->ai.openai_api_key);
	headers[0] = auth;
	headers[1] = "Content-Type: application/json";
	headers[2] = "Accept: application/json";
	headers[3] = NULL;
	req.method = "POST";
	req.url = url;
	req.headers = headers;
	req.max_response = MAX_RESPONSE;
	req.allow_private = app->cfg.openai_allow_private != 0;
	rc = exchange(app, t, &req, deadline, reply, e);
	explicit_bzero(auth, strlen(auth));
	free(auth);
	free(url);
	json_object_put(body);
	return rc;
}
