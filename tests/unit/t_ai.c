/*
 * t_ai.c - unit tests for ai.c: the content filter on a table of English
 * and Spanish messages (including the look-alikes it must let through),
 * the offline responder (tenant intents, built-in greetings per language,
 * no match), ai.faq validation in the tenants file, the chat/completions
 * request body and the parsing of OpenAI's answers (text, tool calls,
 * garbage), and nf_ai_answer's order - disabled, filter, per-conversation
 * rate limit against a private redis-server, offline responder, OpenAI
 * unreachable as a handoff.  Battery 30: which OpenAI failures are retried
 * and after what wait (backoff, Retry-After and its cap, the deadline,
 * the bound on retries); the daily token budget - ai.dailyTokenBudget in
 * the tenants file, the UTC day, usage.total_tokens parsing, counting in
 * Redis up to the budget with other tenants unaffected, the usage view,
 * and an exhausted or unknown (Redis down) budget answered offline or
 * handed off without calling OpenAI.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "ai.h"
#include "ai_budget.h"
#include "ai_openai.h"
#include "app.h"
#include "json.h"
#include "kv.h"
#include "nonflex.h"
#include "tenant.h"
#include "testutil.h"

static char	*redis_url;

static const struct {
	const char	*text;
	const char	*reason;    /* NULL: no handoff */
} filter_cases[] = {
	/* asking for a person, English and Spanish, any case, plurals */
	{ "I want to talk to an agent", "human_requested" },
	{ "AGENT please", "human_requested" },
	{ "are there any agents?", "human_requested" },
	{ "let me speak with a human.", "human_requested" },
	{ "are you humans?", "human_requested" },
	{ "a real person please", "human_requested" },
	{ "Representative!", "human_requested" },
	{ "quiero hablar con un humano", "human_requested" },
	{ "¿Hay humanos ahí?", "human_requested" },
	{ "Pásame con un AGENTE", "human_requested" },
	{ "con los agentes por favor", "human_requested" },
	{ "necesito un representante", "human_requested" },
	{ "representantes", "human_requested" },
	{ "una persona real", "human_requested" },
	/* complaints and refunds */
	{ "I have a complaint", "complaint" },
	{ "two complaints about ORD-1000", "complaint" },
	{ "Tengo una QUEJA", "complaint" },
	{ "quejas y más quejas", "complaint" },
	{ "I want a refund", "refund" },
	{ "refunds?", "refund" },
	{ "quiero un reembolso", "refund" },
	{ "Quiero un Reembolsó", "refund" },
	{ "¿reembolsos?", "refund" },
	/* personal data */
	{ "my mail is ana.perez@example.com", "personal_data" },
	{ "MAIL: John_Doe+x@Mail.Example.ORG thanks", "personal_data" },
	{ "my card is 4111-1111-1111-1111", "personal_data" },
	{ "call me on 612 345 678", "personal_data" },
	{ "123456789", "personal_data" },
	/* offensive */
	{ "this is shit", "offensive" },
	{ "Eres un CABRÓN", "offensive" },
	{ "qué mierda", "offensive" },
	/* look-alikes that must stay with the assistant */
	{ "can you check my agenda?", NULL },
	{ "agency pricing", NULL },
	{ "humanity is great", NULL },
	{ "personal shopper", NULL },
	{ "personalized gifts", NULL },
	{ "where is ORD-1000?", NULL },
	{ "my zip is 12345678", NULL },
	{ "call 555 1234", NULL },
	{ "1 2 3 4 5 6 7 8", NULL },
	{ "1000 -- 2000 -- 3000", NULL },
	{ "see you @ noon", NULL },
	{ "mail me at home@", NULL },
	{ "quequeja", NULL },
	{ "hola, ¿cuál es el horario?", NULL },
	{ "shiitake mushrooms", NULL },
	{ "", NULL },
};

START_TEST(filter_table)
{
	const char	*reason;
	size_t		 i;
	int		 hit;

	for (i = 0; i < sizeof(filter_cases) / sizeof(filter_cases[0]); i++) {
		reason = "unset";
		hit = nf_ai_filter(filter_cases[i].text, &reason);
		if (filter_cases[i].reason == NULL) {
			ck_assert_msg(hit == 0, "'%s' handed off (%s)", filter_cases[i].text,
			    reason);
			ck_assert_ptr_null(reason);
		} else {
			ck_assert_msg(hit == 1, "'%s' not handed off", filter_cases[i].text);
			ck_assert_msg(strcmp(reason, filter_cases[i].reason) == 0,
			    "'%s': %s, expected %s", filter_cases[i].text, reason,
			    filter_cases[i].reason);
		}
	}
	ck_assert_int_eq(nf_ai_filter(NULL, &reason), 0);
}
END_TEST

static const char tenants_text[] =
    "{\"en1\":{\"name\":\"Acme\",\"ai\":{\"language\":\"en\",\"faq\":["
    "{\"keywords\":[\"opening hours\",\"open\"],\"answer\":\"9 to 5.\"},"
    "{\"keywords\":[\"shipping\",\"deliver\"],\"answer\":\"3 days.\"},"
    "{\"keywords\":[\"shipping cost\",\"shipping\",\"cost\"],\"answer\":\"Free.\"}]}},"
    "\"es1\":{\"name\":\"Tienda\",\"ai\":{\"language\":\"es\",\"faq\":["
    "{\"keywords\":[\"envío\"],\"answer\":\"Tres días.\"}]}},"
    "\"bare\":{\"name\":\"Bare\"}}";

static struct nf_tenants *
load_tenants(void)
{
	struct nf_tenants	*ts = NULL;
	struct nf_error		 e;

	unsetenv("OPENAI_API_KEY");
	ck_assert_msg(nf_tenants_parse(tenants_text, strlen(tenants_text), &ts, &e) == NF_OK,
	    "%s", e.message);
	return ts;
}

static void
offline_is(const struct nf_tenant *t, const char *text, const char *want)
{
	char	*reply = (char *)1;
	int	 hit = nf_ai_offline(t, text, &reply);

	if (want == NULL) {
		ck_assert_msg(hit == 0, "'%s' answered '%s'", text, reply);
		ck_assert_ptr_null(reply);
		return;
	}
	ck_assert_msg(hit == 1, "'%s' not answered", text);
	ck_assert_msg(strcmp(reply, want) == 0, "'%s': '%s'", text, reply);
	free(reply);
}

START_TEST(offline_responder)
{
	struct nf_tenants	*ts = load_tenants();
	const struct nf_tenant	*en = nf_tenant_find(ts, "en1"), *es = nf_tenant_find(ts, "es1");
	const struct nf_tenant	*bare = nf_tenant_find(ts, "bare");

	ck_assert_uint_eq(en->ai.nfaq, 3);
	offline_is(en, "What are your OPENING HOURS?", "9 to 5.");
	offline_is(en, "are you open on sunday", "9 to 5.");
	/* the intent with most keywords wins; the first on a tie */
	offline_is(en, "what is the shipping cost", "Free.");
	offline_is(en, "do you do shipping", "3 days.");
	offline_is(en, "openness", NULL);
	offline_is(en, "hi there", "Hello! How can I help you today?");
	offline_is(en, "thank you!", "You're welcome! Anything else I can help with?");
	offline_is(en, "my blender is broken", NULL);
	/* accents ignored both ways; greetings in the tenant's language */
	offline_is(es, "¿Cuánto tarda el ENVIO?", "Tres días.");
	offline_is(es, "Hola", "¡Hola! ¿En qué puedo ayudarte?");
	offline_is(es, "buenos días", "¡Hola! ¿En qué puedo ayudarte?");
	offline_is(es, "gracias", "¡De nada! ¿Algo más en lo que pueda ayudarte?");
	offline_is(es, "mi licuadora no funciona", NULL);
	offline_is(bare, "hello", "Hello! How can I help you today?");
	offline_is(bare, "shipping", NULL);
	ck_assert_str_eq(nf_ai_handoff_text(es),
	    "Te comunico con un agente que podrá ayudarte. Un momento, por favor.");
	ck_assert_ptr_nonnull(strstr(nf_ai_handoff_text(en), "agent"));
	nf_tenants_free(ts);
}
END_TEST

START_TEST(faq_validation)
{
	static const struct {
		const char	*ai;
		const char	*field;
	} bad[] = {
		{ "{\"faq\":{}}", "faq" },
		{ "{\"faq\":[1]}", "keywords" },
		{ "{\"faq\":[{\"keywords\":[],\"answer\":\"a\"}]}", "keywords" },
		{ "{\"faq\":[{\"keywords\":[\"\"],\"answer\":\"a\"}]}", "keywords" },
		{ "{\"faq\":[{\"keywords\":[7],\"answer\":\"a\"}]}", "keywords" },
		{ "{\"faq\":[{\"keywords\":[\"a\"]}]}", "answer" },
		{ "{\"faq\":[{\"keywords\":[\"a\"],\"answer\":\"\"}]}", "answer" },
		{ "{\"faq\":[{\"keywords\":[\"a\"],\"answer\":\"ok\"},{\"keywords\":\"b\","
		    "\"answer\":\"x\"}]}", "keywords" },
	};
	struct nf_tenants	*ts = NULL;
	struct nf_error		 e;
	char			*text;
	size_t			 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		text = nf_xasprintf("{\"t\":{\"name\":\"T\",\"ai\":%s}}", bad[i].ai);
		ck_assert_int_eq(nf_tenants_parse(text, strlen(text), &ts, &e), NF_EINVAL);
		ck_assert_msg(strcmp(e.field, bad[i].field) == 0, "%s: field %s", bad[i].ai,
		    e.field);
		ck_assert_ptr_nonnull(strstr(e.message, "ai.faq"));
		ck_assert_ptr_null(ts);
		free(text);
	}
	text = nf_xasprintf("{\"t\":{\"name\":\"T\",\"ai\":{\"faq\":[]}}}");
	ck_assert_int_eq(nf_tenants_parse(text, strlen(text), &ts, &e), NF_OK);
	ck_assert_uint_eq(ts->v[0].ai.nfaq, 0);
	nf_tenants_free(ts);
	free(text);
}
END_TEST

START_TEST(request_body)
{
	struct nf_tenant	 t;
	struct json_object	*msgs = json_object_new_array(), *b, *v, *tools;
	const char		*names[4];
	size_t			 i;

	memset(&t, 0, sizeof(t));
	json_object_array_add(msgs, json_object_new_string("x"));
	b = nf_ai_request_body(&t, msgs);
	ck_assert(json_object_object_get_ex(b, "model", &v));
	ck_assert_str_eq(json_object_get_string(v), "gpt-4o-mini");
	ck_assert(json_object_object_get_ex(b, "messages", &v));
	ck_assert_ptr_eq(v, msgs);
	ck_assert(json_object_object_get_ex(b, "tools", &tools));
	ck_assert_uint_eq(json_object_array_length(tools), 4);
	for (i = 0; i < 4; i++) {
		json_object_object_get_ex(json_object_array_get_idx(tools, i), "function", &v);
		json_object_object_get_ex(v, "name", &v);
		names[i] = json_object_get_string(v);
	}
	ck_assert_str_eq(names[0], "lookup_customer");
	ck_assert_str_eq(names[1], "get_order_by_id");
	ck_assert_str_eq(names[2], "create_ticket");
	ck_assert_str_eq(names[3], "handoff_to_human");
	json_object_put(b);
	t.ai.model = (char *)(uintptr_t)"gpt-x";
	b = nf_ai_request_body(&t, msgs);
	json_object_object_get_ex(b, "model", &v);
	ck_assert_str_eq(json_object_get_string(v), "gpt-x");
	json_object_put(b);
	json_object_put(msgs);
}
END_TEST

static enum nf_err
parse(const char *body, struct json_object **msg, struct nf_error *e)
{
	return nf_ai_parse_response(body, strlen(body), msg, e);
}

START_TEST(response_parsing)
{
	static const char *const garbage[] = {
		"", "<html>502</html>", "{\"choices\":[]}", "{\"choices\":{}}", "[]",
		"{\"choices\":[{\"message\":{\"content\":\"\"}}]}",
		"{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[]}}]}",
		"{\"choices\":[{\"message\":\"hi\"}]}", "{\"error\":{\"message\":\"x\"}}",
		"{\"choices\":[{\"message\":{\"content\":\"a\"}}]} trailing",
	};
	struct json_object	*m = NULL, *v;
	struct nf_error		 e;
	size_t			 i;

	ck_assert_int_eq(parse("{\"id\":\"c\",\"choices\":[{\"index\":0,\"message\":"
	    "{\"role\":\"assistant\",\"content\":\"Hello there\"}}]}", &m, &e), NF_OK);
	ck_assert(json_object_object_get_ex(m, "content", &v));
	ck_assert_str_eq(json_object_get_string(v), "Hello there");
	ck_assert(!json_object_object_get_ex(m, "tool_calls", NULL));
	json_object_put(m);

	ck_assert_int_eq(parse("{\"choices\":[{\"message\":{\"role\":\"assistant\","
	    "\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
	    "\"function\":{\"name\":\"get_order_by_id\",\"arguments\":"
	    "\"{\\\"orderId\\\":\\\"ORD-1000\\\"}\"}}]}}]}", &m, &e), NF_OK);
	ck_assert(json_object_object_get_ex(m, "tool_calls", &v));
	ck_assert_uint_eq(json_object_array_length(v), 1);
	ck_assert(json_object_object_get_ex(m, "content", &v));
	ck_assert_ptr_null(v);
	json_object_put(m);

	for (i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		m = (struct json_object *)1;
		ck_assert_msg(parse(garbage[i], &m, &e) == NF_EUPSTREAM, "%s", garbage[i]);
		ck_assert_str_eq(e.code, "ai_bad_response");
		ck_assert_ptr_null(m);
	}
}
END_TEST

/* An app with Redis, OpenAI on a closed port and a short timeout. */
static void
app_setup(struct nf_app *app)
{
	struct nf_error	 e;

	memset(app, 0, sizeof(*app));
	ck_assert_int_eq(nf_config_load(&app->cfg, &e), NF_OK);
	free(app->cfg.openai_base_url);
	app->cfg.openai_base_url = nf_xstrdup("http://127.0.0.1:9/v1");
	app->cfg.openai_allow_private = 1;
	app->cfg.openai_timeout_ms = 500;
	app->cfg.ai_rate_per_min = 3;
	ck_assert_int_eq(nf_kv_open(redis_url, 300, &app->kv, &e), NF_OK);
}

static void
answer_is(struct nf_app *app, const struct nf_tenant *t, const char *conv, const char *text,
    int enabled, int handoff, const char *reason, const char *source)
{
	struct nf_ai_answer	 a;
	struct nf_error		 e;

	ck_assert_int_eq(nf_ai_answer(app, t, conv, text, NULL, enabled, &a, &e), NF_OK);
	ck_assert_msg(a.handoff == handoff, "'%s': handoff %d", text, a.handoff);
	if (reason != NULL)
		ck_assert_str_eq(a.reason, reason);
	ck_assert_str_eq(a.source, source);
	if (enabled)
		ck_assert_ptr_nonnull(a.reply);
	else
		ck_assert_ptr_null(a.reply);
	nf_ai_answer_cleanup(&a);
}

START_TEST(answer_order)
{
	struct nf_app		 app;
	struct nf_tenants	*ts = load_tenants();
	struct nf_tenant	*en = (struct nf_tenant *)(uintptr_t)nf_tenant_find(ts, "en1");
	struct nf_ai_answer	 a;
	struct nf_error		 e;
	int64_t			 t0;

	app_setup(&app);
	answer_is(&app, en, NULL, "hello", 0, 1, "ai_disabled", "filter");
	answer_is(&app, en, NULL, "agent please", 1, 1, "human_requested", "filter");
	answer_is(&app, en, NULL, "when are you open?", 1, 0, NULL, "offline");
	answer_is(&app, en, NULL, "my blender is broken", 1, 1, "no_answer", "offline");
	/* 3 per minute per conversation, then a handoff; others unaffected */
	answer_is(&app, en, "c1", "hello", 1, 0, NULL, "offline");
	answer_is(&app, en, "c1", "hello", 1, 0, NULL, "offline");
	answer_is(&app, en, "c1", "hello", 1, 0, NULL, "offline");
	answer_is(&app, en, "c1", "hello", 1, 1, "rate_limited", "rate_limit");
	answer_is(&app, en, "c2", "hello", 1, 0, NULL, "offline");
	/* with a key, OpenAI unreachable is a handoff, within the timeout */
	en->ai.openai_api_key = nf_xstrdup("sk-unit");
	t0 = nf_mono_ms();
	answer_is(&app, en, NULL, "when are you open?", 1, 1, "ai_unavailable", "openai");
	ck_assert_int_lt(nf_mono_ms() - t0, 2000);
	/* bad input */
	ck_assert_int_eq(nf_ai_answer(&app, en, NULL, "", NULL, 1, &a, &e), NF_EINVAL);
	ck_assert_int_eq(nf_ai_answer(&app, en, NULL, "\xff", NULL, 1, &a, &e), NF_EINVAL);
	nf_kv_free(app.kv);
	nf_config_cleanup(&app.cfg);
	nf_tenants_free(ts);
}
END_TEST

START_TEST(retry_policy)
{
	/* what may pass when tried again, and what would fail the same way */
	ck_assert_int_eq(nf_ai_openai_transient(NF_EUNAVAIL, "upstream_unreachable", 0), 1);
	ck_assert_int_eq(nf_ai_openai_transient(NF_EUPSTREAM, "upstream_timeout", 0), 1);
	ck_assert_int_eq(nf_ai_openai_transient(NF_EUPSTREAM, "upstream_error", 0), 1);
	ck_assert_int_eq(nf_ai_openai_transient(NF_EUPSTREAM, "upstream_bad_response", 0), 0);
	ck_assert_int_eq(nf_ai_openai_transient(NF_EUPSTREAM, "upstream_too_large", 0), 0);
	ck_assert_int_eq(nf_ai_openai_transient(NF_EFORBIDDEN, "destination_refused", 0), 0);
	ck_assert_int_eq(nf_ai_openai_transient(NF_OK, NULL, 429), 1);
	ck_assert_int_eq(nf_ai_openai_transient(NF_OK, NULL, 500), 1);
	ck_assert_int_eq(nf_ai_openai_transient(NF_OK, NULL, 503), 1);
	ck_assert_int_eq(nf_ai_openai_transient(NF_OK, NULL, 400), 0);
	ck_assert_int_eq(nf_ai_openai_transient(NF_OK, NULL, 401), 0);
	ck_assert_int_eq(nf_ai_openai_transient(NF_OK, NULL, 404), 0);
	/* equal jitter around 250 ms * 2^n, capped at 2 s */
	ck_assert_int_eq(nf_ai_openai_retry_delay(0, 2, 0, 60000, 0), 125);
	ck_assert_int_eq(nf_ai_openai_retry_delay(0, 2, 0, 60000, 125), 250);
	ck_assert_int_eq(nf_ai_openai_retry_delay(0, 2, 0, 60000, 126), 125);
	ck_assert_int_eq(nf_ai_openai_retry_delay(1, 2, 0, 60000, 0), 250);
	ck_assert_int_eq(nf_ai_openai_retry_delay(4, 9, 0, 60000, 0), 1000);
	ck_assert_int_eq(nf_ai_openai_retry_delay(8, 9, 0, 60000, 1000), 2000);
	ck_assert_int_eq(nf_ai_openai_retry_delay(8, 9, 0, 60000, 0xffffffffu),
	    1000 + (int64_t)(0xffffffffu % 1001));
	/* bounded: no retry past max_retries, or with none allowed */
	ck_assert_int_eq(nf_ai_openai_retry_delay(2, 2, 0, 60000, 0), -1);
	ck_assert_int_eq(nf_ai_openai_retry_delay(0, 0, 0, 60000, 0), -1);
	/* Retry-After replaces the backoff up to 5 s; longer ends retries */
	ck_assert_int_eq(nf_ai_openai_retry_delay(0, 2, 3000, 60000, 0), 3000);
	ck_assert_int_eq(nf_ai_openai_retry_delay(0, 2, 5000, 60000, 0), 5000);
	ck_assert_int_eq(nf_ai_openai_retry_delay(0, 2, 5001, 60000, 0), -1);
	/* within the deadline, with time left for the attempt itself */
	ck_assert_int_eq(nf_ai_openai_retry_delay(0, 2, 3000, 3199, 0), -1);
	ck_assert_int_eq(nf_ai_openai_retry_delay(0, 2, 3000, 3200, 0), 3000);
	ck_assert_int_eq(nf_ai_openai_retry_delay(0, 2, 0, 324, 0), -1);
	ck_assert_int_eq(nf_ai_openai_retry_delay(0, 2, 0, 325, 0), 125);
	ck_assert_int_eq(nf_ai_openai_retry_delay(0, 2, 0, -5, 0), -1);
}
END_TEST

START_TEST(budget_parsing)
{
	static const char *const bad[] = {
	    "{\"t\":{\"ai\":{\"dailyTokenBudget\":-1}}}",
	    "{\"t\":{\"ai\":{\"dailyTokenBudget\":\"1000\"}}}",
	    "{\"t\":{\"ai\":{\"dailyTokenBudget\":1.5}}}",
	    "{\"t\":{\"ai\":{\"dailyTokenBudget\":1000000000001}}}",
	};
	struct nf_tenants	*ts = NULL;
	struct nf_error		 e;
	char			 day[9];
	const char		*ok = "{\"a\":{\"ai\":{\"dailyTokenBudget\":5000}},"
	    "\"b\":{\"ai\":{\"dailyTokenBudget\":0}},\"c\":{}}";
	size_t			 i;

	ck_assert_int_eq(nf_tenants_parse(ok, strlen(ok), &ts, &e), NF_OK);
	ck_assert_int_eq(nf_tenant_find(ts, "a")->ai.daily_token_budget, 5000);
	ck_assert_int_eq(nf_tenant_find(ts, "b")->ai.daily_token_budget, 0);
	ck_assert_int_eq(nf_tenant_find(ts, "c")->ai.daily_token_budget, -1);
	nf_tenants_free(ts);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(nf_tenants_parse(bad[i], strlen(bad[i]), &ts, &e) == NF_EINVAL,
		    "accepted %s", bad[i]);
		ck_assert_str_eq(e.field, "dailyTokenBudget");
	}
	/* the UTC day: 2026-11-25T23:59:59.999Z, then midnight */
	nf_ai_budget_day(1795651199999LL, day);
	ck_assert_str_eq(day, "20261125");
	nf_ai_budget_day(1795651200000LL, day);
	ck_assert_str_eq(day, "20261126");
	/* usage.total_tokens, defensively */
#define TOKENS(s) nf_ai_budget_tokens((s), strlen(s))
	ck_assert_int_eq(TOKENS("{\"usage\":{\"total_tokens\":123}}"), 123);
	ck_assert_int_eq(TOKENS("{\"choices\":[]}"), 0);
	ck_assert_int_eq(TOKENS("{\"usage\":{\"total_tokens\":-7}}"), 0);
	ck_assert_int_eq(TOKENS("{\"usage\":{\"total_tokens\":\"99\"}}"), 0);
	ck_assert_int_eq(TOKENS("{\"usage\":7}"), 0);
	ck_assert_int_eq(TOKENS("{\"usage\":{\"total_tokens\":99999999999999}}"), 1000000000);
	ck_assert_int_eq(TOKENS("{\"usage\":{\"total_tok"), 0);
#undef TOKENS
	ck_assert_int_eq(nf_ai_budget_tokens(NULL, 0), 0);
}
END_TEST

START_TEST(budget_counting)
{
	struct nf_app		 app;
	struct nf_tenants	*ts = load_tenants();
	struct nf_tenant	*es = (struct nf_tenant *)(uintptr_t)nf_tenant_find(ts, "es1");
	struct nf_tenant	*en = (struct nf_tenant *)(uintptr_t)nf_tenant_find(ts, "en1");
	struct nf_tenant	*bare = (struct nf_tenant *)(uintptr_t)nf_tenant_find(ts, "bare");
	struct json_object	*u = NULL, *v;
	struct nf_kv		*kv;
	struct nf_error		 e;
	int64_t			 used, total;
	int			 allowed;

	app_setup(&app);
	app.cfg.ai_daily_token_budget = 100;
	es->ai.daily_token_budget = 10;
	bare->ai.daily_token_budget = 0;
	ck_assert_int_eq(nf_ai_budget_limit(&app, es), 10);
	ck_assert_int_eq(nf_ai_budget_limit(&app, en), 100);    /* the default */
	ck_assert_int_eq(nf_ai_budget_limit(&app, bare), 0);
	ck_assert_int_eq(nf_ai_budget_check(&app, es, &allowed, &used, &e), NF_OK);
	ck_assert(allowed && used == 0);
	ck_assert_int_eq(nf_ai_budget_add(&app, es, 6, &total, &e), NF_OK);
	ck_assert_int_eq(total, 6);
	ck_assert_int_eq(nf_ai_budget_check(&app, es, &allowed, &used, &e), NF_OK);
	ck_assert(allowed && used == 6);
	ck_assert_int_eq(nf_ai_budget_add(&app, es, 5, &total, &e), NF_OK);
	ck_assert_int_eq(total, 11);
	ck_assert_int_eq(nf_ai_budget_check(&app, es, &allowed, &used, &e), NF_OK);
	ck_assert(!allowed && used == 11);
	/* the others are unaffected */
	ck_assert_int_eq(nf_ai_budget_check(&app, en, &allowed, &used, &e), NF_OK);
	ck_assert(allowed && used == 0);
	/* the admins' view */
	ck_assert_int_eq(nf_ai_budget_usage(&app, es, &u, &e), NF_OK);
	ck_assert(json_object_object_get_ex(u, "tokensUsed", &v) && json_object_get_int64(v) == 11);
	ck_assert(json_object_object_get_ex(u, "dailyTokenBudget", &v) &&
	    json_object_get_int64(v) == 10);
	ck_assert(json_object_object_get_ex(u, "remaining", &v) && json_object_get_int64(v) == 0);
	ck_assert(json_object_object_get_ex(u, "exhausted", &v) && json_object_get_boolean(v));
	ck_assert(json_object_object_get_ex(u, "exhaustedAt", &v) &&
	    json_object_is_type(v, json_type_string));
	json_object_put(u);
	ck_assert_int_eq(nf_ai_budget_usage(&app, bare, &u, &e), NF_OK);
	ck_assert(json_object_object_get_ex(u, "dailyTokenBudget", &v) && v == NULL);
	ck_assert(json_object_object_get_ex(u, "exhausted", &v) && !json_object_get_boolean(v));
	json_object_put(u);
	/* spent: no OpenAI call (it would be "ai_unavailable": nothing listens) */
	es->ai.openai_api_key = nf_xstrdup("sk-unit");
	answer_is(&app, es, NULL, "¿cuánto tarda el envío?", 1, 0, NULL, "offline");
	answer_is(&app, es, NULL, "mi licuadora no funciona", 1, 1, "budget_exhausted", "offline");
	/* Redis down: a finite budget is unknown, so the same; unlimited calls */
	kv = app.kv;
	app.kv = NULL;
	ck_assert_int_eq(nf_ai_budget_check(&app, en, &allowed, NULL, &e), NF_EUNAVAIL);
	ck_assert_int_eq(allowed, 0);
	en->ai.openai_api_key = nf_xstrdup("sk-unit");
	answer_is(&app, en, NULL, "my blender is broken", 1, 1, "budget_unavailable", "offline");
	answer_is(&app, en, NULL, "when are you open?", 1, 0, NULL, "offline");
	ck_assert_int_eq(nf_ai_budget_check(&app, bare, &allowed, NULL, &e), NF_OK);
	ck_assert_int_eq(allowed, 1);
	bare->ai.openai_api_key = nf_xstrdup("sk-unit");
	answer_is(&app, bare, NULL, "my blender is broken", 1, 1, "ai_unavailable", "openai");
	app.kv = kv;
	nf_kv_free(app.kv);
	nf_config_cleanup(&app.cfg);
	nf_tenants_free(ts);
}
END_TEST

static Suite *
make(void)
{
	TCase	*tc;
	Suite	*s = tu_suite("ai", &tc);

	tcase_add_test(tc, filter_table);
	tcase_add_test(tc, offline_responder);
	tcase_add_test(tc, faq_validation);
	tcase_add_test(tc, request_body);
	tcase_add_test(tc, response_parsing);
	tcase_add_test(tc, answer_order);
	tcase_add_test(tc, retry_policy);
	tcase_add_test(tc, budget_parsing);
	tcase_add_test(tc, budget_counting);
	return s;
}

int
main(void)
{
	return tu_main_redis(make, &redis_url);
}
