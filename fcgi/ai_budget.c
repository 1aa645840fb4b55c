/*
 * ai_budget.c - per-tenant daily OpenAI token budget (ai_budget.h).
 *
 * DESIGN: see ai_budget.h.  The counter and the "exhausted" marker are
 * Redis keys built by kv.c (nf_kv_key), so they carry the tenant; the
 * audit record goes to the store outside any request (nf_audit_store),
 * as the job runner has none.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>

#include "ai_budget.h"
#include "app.h"
#include "audit.h"
#include "conversations.h"
#include "json.h"
#include "kv.h"
#include "log.h"
#include "tenant.h"

#define KEEP_MS		(48LL * 3600 * 1000)   /* a day's keys outlive the day */
#define DAY_MS		(86400LL * 1000)
#define TOKENS_MAX	1000000000LL           /* one answer's plausible maximum */

/* INCRBY and a first expiry in one step: concurrent adders all count. */
static struct nf_kv_script incr_lua = { .src =
    "local n = redis.call('INCRBY', KEYS[1], ARGV[1]) "
    "if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end "
    "return n" };

void
nf_ai_budget_day(int64_t now_ms, char out[9])
{
	time_t		 s = (time_t)(now_ms / 1000);
	struct tm	 tm;

	if (gmtime_r(&s, &tm) == NULL || strftime(out, 9, "%Y%m%d", &tm) != 8)
		memcpy(out, "19700101", 9);
}

int64_t
nf_ai_budget_tokens(const char *body, size_t len)
{
	struct json_object	*root = NULL, *usage, *total;
	struct nf_error		 e;
	int64_t			 n = 0;

	if (body == NULL || nf_json_parse(body, len, &root, &e) != NF_OK)
		return 0;
	if (json_object_object_get_ex(root, "usage", &usage) &&
	    json_object_is_type(usage, json_type_object) &&
	    json_object_object_get_ex(usage, "total_tokens", &total) &&
	    json_object_is_type(total, json_type_int)) {
		n = json_object_get_int64(total);
		n = n < 0 ? 0 : n > TOKENS_MAX ? TOKENS_MAX : n;
	}
	json_object_put(root);
	return n;
}

int64_t
nf_ai_budget_limit(const struct nf_app *app, const struct nf_tenant *t)
{
	return t->ai.daily_token_budget >= 0 ? t->ai.daily_token_budget :
	    app->cfg.ai_daily_token_budget;
}

/* "aitokens" key of today (suffix "" or "-exhausted"), malloc'd or NULL. */
static char *
day_key(const struct nf_tenant *t, int64_t now_ms, const char *suffix)
{
	char	 day[9], name[32];

	nf_ai_budget_day(now_ms, day);
	snprintf(name, sizeof(name), "%s%s", day, suffix);
	return nf_kv_key(t->id, "aitokens", name);
}

static enum nf_err
no_redis(struct nf_error *e)
{
	return nf_error_set(e, NF_EUNAVAIL, "redis_unavailable", NULL,
	    "the AI budget cannot be checked");
}

/* The integer at today's key with suffix (0 when none yet). */
static enum nf_err
day_int(struct nf_kv *kv, const struct nf_tenant *t, int64_t now_ms, const char *suffix,
    int64_t *out, struct nf_error *e)
{
	redisReply	*r = NULL;
	char		*k = day_key(t, now_ms, suffix);
	enum nf_err	 rc;

	*out = 0;
	if (k == NULL)
		return nf_error_set(e, NF_EINVAL, "invalid_key", NULL, "bad budget key");
	rc = nf_kv_command(kv, &r, e, "GET %s", k);
	if (rc == NF_OK && r->type == REDIS_REPLY_STRING)
		*out = strtoll(r->str, NULL, 10);
	if (r != NULL)
		freeReplyObject(r);
	free(k);
	return rc;
}

/* Today's count (0 when none yet). */
static enum nf_err
used_today(struct nf_kv *kv, const struct nf_tenant *t, int64_t now_ms, int64_t *used,
    struct nf_error *e)
{
	return day_int(kv, t, now_ms, "", used, e);
}

/* The first caller of the day over the budget tells the log and the audit. */
static void
note_exhausted(struct nf_app *app, struct nf_kv *kv, const struct nf_tenant *t,
    int64_t now_ms, int64_t used, int64_t limit)
{
	struct json_object	*data;
	struct nf_store		*st;
	struct nf_error		 e;
	redisReply		*r = NULL;
	char			*k = day_key(t, now_ms, "-exhausted"), day[9];
	int			 first;

	if (k == NULL)
		return;
	first = nf_kv_command(kv, &r, &e, "SET %s %lld NX PX %lld", k, (long long)now_ms,
	    (long long)KEEP_MS) == NF_OK && r->type == REDIS_REPLY_STATUS;
	if (r != NULL)
		freeReplyObject(r);
	free(k);
	if (!first)
		return;
	nf_warn("ai: tenant %s used its daily token budget (%lld of %lld); "
	    "OpenAI is not called again before 00:00 UTC", t->id, (long long)used,
	    (long long)limit);
	if (nf_conv_store(app, &st, &e) != NF_OK)
		return;
	nf_ai_budget_day(now_ms, day);
	data = json_object_new_object();
	nf_json_add_str(data, "day", day);
	nf_json_add_int(data, "tokensUsed", used);
	nf_json_add_int(data, "dailyTokenBudget", limit);
	nf_audit_store(st, t->id, "system", "ai.budget_exhausted", NULL, data);
}

enum nf_err
nf_ai_budget_check(struct nf_app *app, const struct nf_tenant *t, int *allowed,
    int64_t *used, struct nf_error *e)
{
	struct nf_kv	*kv;
	int64_t		 limit = nf_ai_budget_limit(app, t), now = nf_now_ms(), n = 0;
	enum nf_err	 rc;

	*allowed = 1;
	if (used != NULL)
		*used = 0;
	if (limit == 0)
		return NF_OK;
	*allowed = 0;
	if ((kv = nf_app_kv(app)) == NULL)
		return no_redis(e);
	if ((rc = used_today(kv, t, now, &n, e)) != NF_OK)
		return rc;
	if (used != NULL)
		*used = n;
	if (n < limit)
		*allowed = 1;
	else
		note_exhausted(app, kv, t, now, n, limit);
	return NF_OK;
}

enum nf_err
nf_ai_budget_add(struct nf_app *app, const struct nf_tenant *t, int64_t tokens,
    int64_t *total, struct nf_error *e)
{
	struct nf_kv	*kv = nf_app_kv(app);
	redisReply	*r = NULL;
	const char	*args[3];
	char		 n[24], ttl[24], *k;
	enum nf_err	 rc;

	if (total != NULL)
		*total = 0;
	if (tokens <= 0)
		return NF_OK;
	if (kv == NULL)
		return no_redis(e);
	if ((k = day_key(t, nf_now_ms(), "")) == NULL)
		return nf_error_set(e, NF_EINVAL, "invalid_key", NULL, "bad budget key");
	snprintf(n, sizeof(n), "%lld", (long long)tokens);
	snprintf(ttl, sizeof(ttl), "%lld", (long long)KEEP_MS);
	args[0] = k;
	args[1] = n;
	args[2] = ttl;
	rc = nf_kv_eval(kv, &incr_lua, &r, e, 1, 3, args);
	if (rc == NF_OK && total != NULL && r->type == REDIS_REPLY_INTEGER)
		*total = r->integer;
	if (r != NULL)
		freeReplyObject(r);
	free(k);
	return rc;
}

/* When today's budget ran out (ms since epoch), or 0. */
static enum nf_err
exhausted_at(struct nf_kv *kv, const struct nf_tenant *t, int64_t now_ms, int64_t *at,
    struct nf_error *e)
{
	return day_int(kv, t, now_ms, "-exhausted", at, e);
}

enum nf_err
nf_ai_budget_usage(struct nf_app *app, const struct nf_tenant *t, struct json_object **out,
    struct nf_error *e)
{
	struct nf_kv	*kv = nf_app_kv(app);
	int64_t		 limit = nf_ai_budget_limit(app, t), now = nf_now_ms(), used, at;
	char		 day[9], iso[25], pretty[11];
	enum nf_err	 rc;

	*out = NULL;
	if (kv == NULL)
		return no_redis(e);
	if ((rc = used_today(kv, t, now, &used, e)) != NF_OK ||
	    (rc = exhausted_at(kv, t, now, &at, e)) != NF_OK)
		return rc;
	nf_ai_budget_day(now, day);
	snprintf(pretty, sizeof(pretty), "%.4s-%.2s-%.2s", day, day + 4, day + 6);
	*out = json_object_new_object();
	nf_json_add_str(*out, "day", pretty);
	nf_json_add_int(*out, "tokensUsed", used);
	nf_json_add(*out, "dailyTokenBudget", limit > 0 ? json_object_new_int64(limit) : NULL);
	nf_json_add(*out, "remaining", limit > 0 ?
	    json_object_new_int64(used < limit ? limit - used : 0) : NULL);
	nf_json_add_bool(*out, "exhausted", limit > 0 && used >= limit);
	if (at > 0)
		nf_iso8601(at, iso);
	nf_json_add_str(*out, "exhaustedAt", at > 0 ? iso : NULL);
	nf_iso8601((now / DAY_MS + 1) * DAY_MS, iso);
	nf_json_add_str(*out, "resetsAt", iso);
	return NF_OK;
}
