/*
 * ai.c - the AI assistant (ai.h): content filter, per-conversation rate
 * limit, OpenAI chat completions with tools, the offline responder, and
 * the "ai.reply" job that answers a stored customer message.
 *
 * DESIGN: nf_ai_answer decides; it never fails for an OpenAI problem, it
 * hands off instead (reason "ai_unavailable"), so a conversation always
 * ends with an answer or a human.  Order: disabled -> filter -> rate limit
 * -> OpenAI (tenant key, daily token budget left: ai_budget.h) or the
 * offline responder (no key, or budget spent or unknown).  Handoff
 * reasons: the filter's ("human_requested", "complaint", "refund",
 * "personal_data", "offensive"), "ai_disabled", "rate_limited",
 * "ai_unavailable" (OpenAI failed after its bounded retries: ai_openai.h),
 * "no_answer" (offline responder found nothing), "budget_exhausted" and
 * "budget_unavailable" (the same, with OpenAI held back by the budget),
 * and "assistant_handoff" (the model called handoff_to_human).  Every handoff
 * except ai_disabled carries a polite reply in the tenant's language, so
 * the customer knows a person is coming.
 *
 * Text is compared after folding: ASCII lower-cased, the accented Latin-1
 * letters Spanish uses reduced to their base letter ("Reembolsó" ->
 * "reembolso", ñ kept), Latin-1 and general punctuation ("¿", "¡", curly
 * quotes) turned into spaces; keywords match whole words or phrases only,
 * so "agenda" is not "agent".
 *
 * OpenAI is called by ai_openai.c through the workers' HTTP client
 * (http.h: the same code runs in nonflex-fcgi for POST /api/ai/reply and
 * in nonflex-jobs), with one deadline of NONFLEX_OPENAI_TIMEOUT_MS for
 * the whole answer, tool rounds and retries included.  The prompt is
 * bounded: the system prompt, at most HISTORY_MAX earlier messages and
 * HISTORY_BYTES_MAX bytes of their text, the message, tool results of at
 * most TOOL_RESULT_MAX bytes each.
 * The tools run through customers.h.  For a customer-facing answer (the
 * job) they are scoped to that customer: lookup_customer only for the
 * conversation's own number, get_order_by_id only for the customer's own
 * orders, create_ticket for that customer; a staff member's "suggest a
 * reply" may look anything of the tenant up, as the agent desk can.
 *
 * The job answers a message once: the bot's reply is recorded with
 * dedupeKey "ai:<messageId>" ("ai-handoff:<messageId>" when a handoff
 * follows), so a retried job finds it and does not answer again (it only
 * completes a handoff still due), and a Redis lock on the message keeps
 * two runners from asking OpenAI at the same time.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "ai.h"
#include "ai_budget.h"
#include "ai_openai.h"
#include "app.h"
#include "conversations.h"
#include "customers.h"
#include "jobs.h"
#include "json.h"
#include "kv.h"
#include "log.h"
#include "store.h"
#include "tenant.h"
#include "valid.h"

#define DEFAULT_MODEL		"gpt-4o-mini"
#define HISTORY_MAX		10            /* earlier messages sent to OpenAI */
#define HISTORY_BYTES_MAX	8192          /* ... and their text, newest kept */
#define ANSWER_TOKENS_MAX	800           /* max_completion_tokens of one call */
#define TOOL_CALLS_MAX		5             /* per round */
#define TOOL_RESULT_MAX		(16 * 1024)   /* bytes of one tool's answer */
#define RATE_WINDOW_MS		60000
#define LOCK_SLACK_MS		30000         /* lock TTL beyond the OpenAI deadline */

/* --- folding and matching --------------------------------------------- */

static int
wordch(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* The base letter of a two-byte Latin-1 letter 0xC3 b, or 0 to keep it. */
static char
latin1_base(unsigned char b)
{
	static const struct {
		unsigned char	 lo, hi;
		char		 base;
	} r[] = {
		{ 0x80, 0x85, 'a' }, { 0xa0, 0xa5, 'a' }, { 0x88, 0x8b, 'e' },
		{ 0xa8, 0xab, 'e' }, { 0x8c, 0x8f, 'i' }, { 0xac, 0xaf, 'i' },
		{ 0x92, 0x96, 'o' }, { 0xb2, 0xb6, 'o' }, { 0x99, 0x9c, 'u' },
		{ 0xb9, 0xbc, 'u' }, { 0x87, 0x87, 'c' }, { 0xa7, 0xa7, 'c' },
	};
	size_t	 i;

	for (i = 0; i < NF_ARRAY_LEN(r); i++)
		if (b >= r[i].lo && b <= r[i].hi)
			return r[i].base;
	return 0;
}

/* text folded for matching (see DESIGN); malloc'd, never longer. */
static char *
fold(const char *text)
{
	const unsigned char	*s = (const unsigned char *)text;
	size_t			 n = strlen(text), i = 0, o = 0;
	char			*out = nf_xmalloc(n + 1), base;

	while (i < n) {
		if (s[i] < 0x80) {
			out[o++] = (char)tolower(s[i]);
			i++;
		} else if (s[i] == 0xc3 && i + 1 < n) {
			if ((base = latin1_base(s[i + 1])) != 0)
				out[o++] = base;
			else {
				out[o++] = (char)s[i];
				/* Ñ -> ñ; other capitals to their small letter too. */
				out[o++] = (char)(s[i + 1] >= 0x80 && s[i + 1] <= 0x9e &&
				    s[i + 1] != 0x97 ? s[i + 1] + 0x20 : s[i + 1]);
			}
			i += 2;
		} else if (s[i] == 0xc2 && i + 1 < n) {
			out[o++] = ' ';   /* ¡ ¿ « » and other Latin-1 signs */
			i += 2;
		} else if (s[i] == 0xe2 && i + 2 < n && s[i + 1] == 0x80) {
			out[o++] = ' ';   /* curly quotes, dashes, ellipsis */
			i += 3;
		} else
			out[o++] = (char)s[i++];
	}
	out[o] = '\0';
	return out;
}

/* 1 when folded text holds the folded phrase as whole words. */
static int
has_phrase(const char *text, const char *phrase)
{
	size_t		 plen = strlen(phrase);
	const char	*p = text;

	if (plen == 0)
		return 0;
	while ((p = strstr(p, phrase)) != NULL) {
		if ((p == text || !wordch((unsigned char)p[-1])) &&
		    !wordch((unsigned char)p[plen]))
			return 1;
		p++;
	}
	return 0;
}

/* has_phrase for a keyword that is not folded yet. */
static int
has_keyword(const char *folded, const char *keyword)
{
	char	*k = fold(keyword);
	int	 hit = has_phrase(folded, k);

	free(k);
	return hit;
}

/* --- the filter ------------------------------------------------------- */

struct word {
	const char	*w;
	const char	*reason;
};

/* Folded spellings; each matches as a whole word. */
static const struct word handoff_words[] = {
	{ "agent", "human_requested" }, { "agents", "human_requested" },
	{ "human", "human_requested" }, { "humans", "human_requested" },
	{ "person", "human_requested" }, { "representative", "human_requested" },
	{ "representatives", "human_requested" }, { "operator", "human_requested" },
	{ "agente", "human_requested" }, { "agentes", "human_requested" },
	{ "humano", "human_requested" }, { "humanos", "human_requested" },
	{ "persona", "human_requested" }, { "representante", "human_requested" },
	{ "representantes", "human_requested" }, { "operador", "human_requested" },
	{ "complaint", "complaint" }, { "complaints", "complaint" },
	{ "complain", "complaint" }, { "queja", "complaint" }, { "quejas", "complaint" },
	{ "reclamo", "complaint" }, { "reclamos", "complaint" },
	{ "reclamacion", "complaint" },
	{ "refund", "refund" }, { "refunds", "refund" }, { "refunded", "refund" },
	{ "reembolso", "refund" }, { "reembolsos", "refund" }, { "reembolsar", "refund" },
	/* Offensive words (English, Spanish): a person handles those. */
	{ "fuck", "offensive" }, { "fucking", "offensive" }, { "fucked", "offensive" },
	{ "motherfucker", "offensive" }, { "shit", "offensive" }, { "bullshit", "offensive" },
	{ "bitch", "offensive" }, { "asshole", "offensive" }, { "bastard", "offensive" },
	{ "cunt", "offensive" }, { "idiot", "offensive" }, { "idiots", "offensive" },
	{ "mierda", "offensive" }, { "puta", "offensive" }, { "puto", "offensive" },
	{ "pendejo", "offensive" }, { "pendeja", "offensive" }, { "cabron", "offensive" },
	{ "cabrones", "offensive" }, { "gilipollas", "offensive" }, { "joder", "offensive" },
	{ "idiota", "offensive" }, { "imbecil", "offensive" }, { "coño", "offensive" },
};

static int
local_ch(unsigned char c)
{
	return isalnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

/* 1 when folded text holds something like local@domain.tld. */
static int
has_email(const char *s)
{
	const char	*at, *p, *dot;

	for (at = strchr(s, '@'); at != NULL; at = strchr(at + 1, '@')) {
		if (at == s || !local_ch((unsigned char)at[-1]))
			continue;
		dot = NULL;
		for (p = at + 1; isalnum((unsigned char)*p) || *p == '-' || *p == '.'; p++)
			if (*p == '.' && p > at + 1 && isalnum((unsigned char)p[1]))
				dot = p;
		if (dot != NULL && p - dot > 2)
			return 1;
	}
	return 0;
}

/* 1 when s holds 9 or more digits in a row, spaces and dashes inside a
 * run ignored ("612 345 678", "4111-1111-1111-1111"). */
static int
has_long_number(const char *s)
{
	int	 digits = 0, seps = 0;

	for (; *s != '\0'; s++) {
		if (*s >= '0' && *s <= '9') {
			if (++digits >= 9)
				return 1;
			seps = 0;
		} else if ((*s == ' ' || *s == '-') && digits > 0 && ++seps <= 2)
			continue;
		else
			digits = seps = 0;
	}
	return 0;
}

int
nf_ai_filter(const char *text, const char **reason)
{
	char	*f;
	size_t	 i;
	int	 hit = 0;

	*reason = NULL;
	if (text == NULL)
		return 0;
	f = fold(text);
	for (i = 0; i < NF_ARRAY_LEN(handoff_words) && !hit; i++)
		if (has_phrase(f, handoff_words[i].w)) {
			*reason = handoff_words[i].reason;
			hit = 1;
		}
	if (!hit && (has_email(f) || has_long_number(f))) {
		*reason = "personal_data";
		hit = 1;
	}
	free(f);
	return hit;
}

/* --- the offline responder -------------------------------------------- */

static int
spanish(const struct nf_tenant *t)
{
	return t->ai.language != NULL && strncmp(t->ai.language, "es", 2) == 0;
}

const char *
nf_ai_handoff_text(const struct nf_tenant *t)
{
	return spanish(t) ?
	    "Te comunico con un agente que podrá ayudarte. Un momento, por favor." :
	    "I'll connect you with an agent who can help. One moment, please.";
}

/* Built-in small talk, any language in, the tenant's language out. */
static const struct {
	const char	*keywords[8];
	const char	*en;
	const char	*es;
} builtins[] = {
	{ { "hello", "hi", "hey", "good morning", "good afternoon", "good evening", "hola",
	    NULL }, "Hello! How can I help you today?",
	    "¡Hola! ¿En qué puedo ayudarte?" },
	{ { "buenos dias", "buenas tardes", "buenas noches", "buenas", NULL },
	    "Hello! How can I help you today?",
	    "¡Hola! ¿En qué puedo ayudarte?" },
	{ { "thanks", "thank you", "gracias", NULL },
	    "You're welcome! Anything else I can help with?",
	    "¡De nada! ¿Algo más en lo que pueda ayudarte?" },
};

int
nf_ai_offline(const struct nf_tenant *t, const char *text, char **reply)
{
	const struct nf_tenant_intent	*best = NULL;
	char				*f;
	size_t				 i, k, hits, best_hits = 0;

	*reply = NULL;
	if (text == NULL)
		return 0;
	f = fold(text);
	for (i = 0; i < t->ai.nfaq; i++) {
		for (hits = 0, k = 0; k < t->ai.faq[i].nkeywords; k++)
			hits += (size_t)has_keyword(f, t->ai.faq[i].keywords[k]);
		if (hits > best_hits) {
			best = &t->ai.faq[i];
			best_hits = hits;
		}
	}
	if (best != NULL)
		*reply = nf_xstrdup(best->answer);
	for (i = 0; *reply == NULL && i < NF_ARRAY_LEN(builtins); i++)
		for (k = 0; builtins[i].keywords[k] != NULL && *reply == NULL; k++)
			if (has_phrase(f, builtins[i].keywords[k]))
				*reply = nf_xstrdup(spanish(t) ? builtins[i].es : builtins[i].en);
	free(f);
	return *reply != NULL;
}

/* --- OpenAI: request and response ------------------------------------- */

static const char tools_json[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"lookup_customer\","
    "\"description\":\"Find the customer with this phone number, with their orders.\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"phone\":{\"type\":\"string\","
    "\"description\":\"phone number, E.164 preferred\"}},\"required\":[\"phone\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"get_order_by_id\","
    "\"description\":\"Get an order by its id, such as ORD-1000.\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"orderId\":{\"type\":\"string\"}},"
    "\"required\":[\"orderId\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"create_ticket\","
    "\"description\":\"Open a support ticket for the customer.\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"subject\":{\"type\":\"string\"},"
    "\"description\":{\"type\":\"string\"}},\"required\":[\"subject\",\"description\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"handoff_to_human\","
    "\"description\":\"Hand the conversation to a human agent.\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"reason\":{\"type\":\"string\"}},"
    "\"required\":[\"reason\"]}}}]";

struct json_object *
nf_ai_request_body(const struct nf_tenant *t, struct json_object *messages)
{
	struct json_object	*b = json_object_new_object();

	nf_json_add_str(b, "model", t->ai.model != NULL ? t->ai.model : DEFAULT_MODEL);
	nf_json_add(b, "messages", json_object_get(messages));   /* shared with caller */
	nf_json_add(b, "tools", json_tokener_parse(tools_json));
	/* Bounds what one call can cost, hence how far an answer can pass the
	 * tenant's daily budget (ai_budget.h). */
	nf_json_add_int(b, "max_completion_tokens", ANSWER_TOKENS_MAX);
	return b;
}

static enum nf_err
bad_response(struct nf_error *e, const char *why)
{
	nf_warn("ai: OpenAI's answer is unusable (%s)", why);
	return nf_error_set(e, NF_EUPSTREAM, "ai_bad_response", NULL,
	    "the assistant answered something unreadable");
}

enum nf_err
nf_ai_parse_response(const char *body, size_t len, struct json_object **msg,
    struct nf_error *e)
{
	struct json_object	*root = NULL, *choices, *m, *content = NULL, *calls = NULL;
	struct nf_error		 je;
	enum nf_err		 rc = NF_OK;
	int			 has_text, has_calls;

	*msg = NULL;
	if (body == NULL || nf_json_parse(body, len, &root, &je) != NF_OK)
		return bad_response(e, "not JSON");
	if (!json_object_object_get_ex(root, "choices", &choices) ||
	    !json_object_is_type(choices, json_type_array) ||
	    json_object_array_length(choices) == 0 ||
	    !json_object_object_get_ex(json_object_array_get_idx(choices, 0), "message", &m) ||
	    !json_object_is_type(m, json_type_object)) {
		rc = bad_response(e, "no choices");
		goto out;
	}
	json_object_object_get_ex(m, "content", &content);
	json_object_object_get_ex(m, "tool_calls", &calls);
	has_text = json_object_is_type(content, json_type_string) &&
	    json_object_get_string_len(content) > 0;
	has_calls = json_object_is_type(calls, json_type_array) &&
	    json_object_array_length(calls) > 0;
	if (!has_text && !has_calls) {
		rc = bad_response(e, "empty message");
		goto out;
	}
	*msg = json_object_new_object();
	nf_json_add_str(*msg, "role", "assistant");
	nf_json_add(*msg, "content", has_text ? json_object_get(content) : NULL);
	if (has_calls)
		nf_json_add(*msg, "tool_calls", json_object_get(calls));
out:
	json_object_put(root);
	return rc;
}

/* --- one answer --------------------------------------------------------- */

/* What one answer works with. */
struct turn {
	struct nf_app		*app;
	const struct nf_tenant	*t;
	const char		*conv_id;     /* NULL for a one-off */
	const char		*skip_id;     /* the message answered, not history */
	const char		*from;        /* the customer's address, or NULL */
	char			*customer_id; /* known or looked up (owned), or NULL */
	int			 scoped;      /* customer-facing: tools see only them */
	int64_t			 deadline;    /* monotonic ms for all OpenAI calls */
};

static struct json_object *
chat_msg(const char *role, const char *content)
{
	struct json_object	*m = json_object_new_object();

	nf_json_add_str(m, "role", role);
	nf_json_add_str(m, "content", content);
	return m;
}

static char *
system_prompt(const struct nf_tenant *t)
{
	const char	*base = t->ai.system_prompt;
	char		*own = NULL, *p;

	if (base == NULL)
		base = own = nf_xasprintf("You are the customer service assistant of %s. "
		    "Answer briefly and kindly.", t->name != NULL ? t->name : t->id);
	p = nf_xasprintf("%s%s Use the tools to look up the customer, their orders and to "
	    "open tickets; call handoff_to_human when the customer needs a person.", base,
	    spanish(t) ? " Always answer in Spanish." :
	    t->ai.language != NULL && strncmp(t->ai.language, "en", 2) != 0 ?
	    " Answer in the customer's language." : "");
	free(own);
	return p;
}

/* The body of found[i] to send as history, or NULL when it is not one:
 * no text, the message being answered, or (newest, i 0) a stored copy of
 * text. */
static const char *
history_body(struct turn *tn, struct json_object *m, size_t i, const char *text)
{
	const char	*kind = nf_json_field_str(m, "authorKind");
	const char	*body = nf_json_field_str(m, "body");
	const char	*id = nf_json_field_str(m, "_id");

	if (kind == NULL || body == NULL || *body == '\0' ||
	    (tn->skip_id != NULL && id != NULL && strcmp(id, tn->skip_id) == 0) ||
	    (i == 0 && strcmp(kind, "customer") == 0 && strcmp(body, text) == 0))
		return NULL;
	return body;
}

/* Append the conversation's last messages (oldest first) to msgs: at most
 * HISTORY_MAX of them and HISTORY_BYTES_MAX bytes of text, the newest
 * kept, so the prompt (and what it costs) stays bounded however long the
 * conversation.  The message being answered, or a stored copy of text, is
 * left out.  Best effort: without the store the answer goes without
 * history. */
static void
add_history(struct turn *tn, const char *text, struct json_object *msgs)
{
	struct nf_find_opts	 opts = { NULL, HISTORY_MAX + 1, 0 };
	struct json_object	*f = NULL, *found = NULL, *m;
	struct nf_store		*st;
	struct nf_error		 e;
	const char		*body;
	size_t			 i, n, used = 0, count = 0, len;

	if (tn->conv_id == NULL || !nf_valid_hex24(tn->conv_id) ||
	    nf_conv_store(tn->app, &st, &e) != NF_OK)
		return;
	f = nf_json_pair("conversationId", tn->conv_id);
	opts.sort = json_object_new_object();
	nf_json_add_int(opts.sort, "createdAt", -1);
	if (nf_store_find(st, tn->t->id, "messages", f, &opts, &found, &e) != NF_OK) {
		nf_warn("ai: history unavailable (%s)", e.code);
		goto out;
	}
	/* found is newest first: n becomes the number of entries that fit. */
	for (n = 0; n < json_object_array_length(found) && count < HISTORY_MAX; n++) {
		if ((body = history_body(tn, json_object_array_get_idx(found, n), n,
		    text)) == NULL)
			continue;
		if ((len = strlen(body)) > HISTORY_BYTES_MAX - used)
			break;
		used += len;
		count++;
	}
	for (i = n; i-- > 0;) {
		m = json_object_array_get_idx(found, i);
		if ((body = history_body(tn, m, i, text)) != NULL)
			json_object_array_add(msgs, chat_msg(strcmp(nf_json_field_str(m,
			    "authorKind"), "customer") == 0 ? "user" : "assistant", body));
	}
out:
	json_object_put(f);
	json_object_put(opts.sort);
	json_object_put(found);
}

/* --- tools ------------------------------------------------------------- */

static struct json_object *
tool_error(const char *code)
{
	struct json_object	*o = json_object_new_object();

	nf_json_add_str(o, "error", code);
	return o;
}

/* The E.164 number of an address ("whatsapp:+1555..."), or 0. */
static int
phone_of(struct turn *tn, const char *addr, char out[NF_PHONE_MAX + 1])
{
	struct nf_error	 e;

	if (addr == NULL)
		return 0;
	if (strncmp(addr, "whatsapp:", 9) == 0)
		addr += 9;
	return nf_phone_e164(addr, tn->app->cfg.phone_default_cc, out, &e) == NF_OK;
}

/* The customer's externalId: the conversation's, or found by the number
 * the customer writes from.  NULL when unknown. */
static const char *
customer_of(struct turn *tn)
{
	char			 phone[NF_PHONE_MAX + 1];
	struct json_object	*c = NULL;
	enum nf_customer_source	 src;
	struct nf_error		 e;
	const char		*id;

	if (tn->customer_id != NULL || !phone_of(tn, tn->from, phone))
		return tn->customer_id;
	if (nf_customers_by_phone(tn->app, tn->t, phone, &c, &src, &e) == NF_OK &&
	    (id = nf_json_field_str(c, "externalId")) != NULL)
		tn->customer_id = nf_xstrdup(id);
	json_object_put(c);
	return tn->customer_id;
}

static struct json_object *
tool_lookup_customer(struct turn *tn, struct json_object *args)
{
	char			 want[NF_PHONE_MAX + 1], own[NF_PHONE_MAX + 1];
	struct json_object	*c = NULL;
	enum nf_customer_source	 src;
	struct nf_error		 e;
	const char		*phone = nf_json_field_str(args, "phone");

	if (phone == NULL || !phone_of(tn, phone, want))
		return tool_error("invalid_phone");
	if (tn->scoped && (!phone_of(tn, tn->from, own) || strcmp(own, want) != 0))
		return tool_error("not_allowed: only the customer's own number");
	if (nf_customers_by_phone(tn->app, tn->t, want, &c, &src, &e) != NF_OK)
		return tool_error(e.code);
	return c;
}

static struct json_object *
tool_get_order(struct turn *tn, struct json_object *args)
{
	struct json_object	*o = NULL;
	enum nf_customer_source	 src;
	struct nf_error		 e;
	const char		*id = nf_json_field_str(args, "orderId"), *owner, *cust;

	if (id == NULL || *id == '\0')
		return tool_error("invalid_order_id");
	if (nf_orders_by_id(tn->app, tn->t, id, &o, &src, &e) != NF_OK)
		return tool_error(e.code);
	/* Another customer's order does not exist for this one. */
	if (tn->scoped && ((cust = customer_of(tn)) == NULL ||
	    (owner = nf_json_field_str(o, "customerId")) == NULL || strcmp(owner, cust) != 0)) {
		json_object_put(o);
		return tool_error("order_not_found");
	}
	return o;
}

static struct json_object *
tool_create_ticket(struct turn *tn, struct json_object *args)
{
	struct json_object	*body, *tk = NULL, *out;
	struct nf_error		 e;
	const char		*cust = customer_of(tn);
	enum nf_err		 rc;

	if (cust == NULL)
		return tool_error("customer_unknown");
	body = json_object_new_object();
	nf_json_add_str(body, "subject", nf_json_field_str(args, "subject") ? nf_json_field_str(args, "subject") :
	    "Customer request");
	nf_json_add_str(body, "description", nf_json_field_str(args, "description") ?
	    nf_json_field_str(args, "description") : "");
	rc = nf_tickets_create(tn->app, tn->t, cust, body, &tk, &e);
	json_object_put(body);
	if (rc != NF_OK)
		return tool_error(e.code);
	out = json_object_new_object();
	nf_json_add_str(out, "ticketId", nf_json_field_str(tk, "ticketId"));
	nf_json_add_str(out, "status", nf_json_field_str(tk, "status"));
	json_object_put(tk);
	return out;
}

/* Run one tool call; the result text (malloc'd) for the tool message. */
static char *
run_tool(struct turn *tn, const char *name, struct json_object *args)
{
	struct json_object	*r;
	const char		*s;
	size_t			 len;
	char			*out;

	if (strcmp(name, "lookup_customer") == 0)
		r = tool_lookup_customer(tn, args);
	else if (strcmp(name, "get_order_by_id") == 0)
		r = tool_get_order(tn, args);
	else if (strcmp(name, "create_ticket") == 0)
		r = tool_create_ticket(tn, args);
	else
		r = tool_error("unknown_tool");
	s = nf_json_str(r, &len);
	out = len <= TOOL_RESULT_MAX ? nf_xstrdup(s) : nf_xstrdup("{\"error\":\"too_large\"}");
	json_object_put(r);
	return out;
}

/* A tool call's name and parsed arguments (*args new, {} when bad). */
static const char *
call_parts(struct json_object *call, struct json_object **args)
{
	struct json_object	*fn = NULL;
	const char		*a;
	struct nf_error		 e;

	*args = NULL;
	if (!json_object_object_get_ex(call, "function", &fn) || nf_json_field_str(fn, "name") == NULL)
		return NULL;
	if ((a = nf_json_field_str(fn, "arguments")) == NULL ||
	    nf_json_parse(a, strlen(a), args, &e) != NF_OK ||
	    !json_object_is_type(*args, json_type_object)) {
		json_object_put(*args);
		*args = json_object_new_object();
	}
	return nf_json_field_str(fn, "name");
}

/*
 * Run the tool calls of assistant message m, appending their results to
 * msgs.  1 when one of them was handoff_to_human (the rest are not run).
 */
static int
run_tools(struct turn *tn, struct json_object *m, struct json_object *msgs)
{
	struct json_object	*calls, *call, *args, *tm;
	const char		*name;
	char			*res;
	size_t			 i, n;

	json_object_object_get_ex(m, "tool_calls", &calls);
	n = json_object_array_length(calls);
	for (i = 0; i < n && i < TOOL_CALLS_MAX; i++) {
		call = json_object_array_get_idx(calls, i);
		if ((name = call_parts(call, &args)) != NULL &&
		    strcmp(name, "handoff_to_human") == 0) {
			json_object_put(args);
			return 1;
		}
		res = name != NULL ? run_tool(tn, name, args) : nf_xstrdup("{\"error\":\"bad_call\"}");
		nf_info("ai: tool %s", name != NULL ? name : "(none)");
		tm = json_object_new_object();
		nf_json_add_str(tm, "role", "tool");
		nf_json_add_str(tm, "tool_call_id", nf_json_field_str(call, "id") ? nf_json_field_str(call, "id") : "");
		nf_json_add_str(tm, "content", res);
		json_object_array_add(msgs, tm);
		free(res);
		json_object_put(args);
	}
	return 0;
}

static void
set_handoff(struct nf_ai_answer *a, const struct nf_tenant *t, const char *reason,
    const char *source, const char *reply)
{
	free(a->reply);
	a->reply = nf_xstrdup(reply != NULL ? reply : nf_ai_handoff_text(t));
	a->handoff = 1;
	a->reason = reason;
	a->source = source;
}

/* OpenAI with tool rounds; any failure is a handoff "ai_unavailable". */
static void
answer_openai(struct turn *tn, const char *text, struct nf_ai_answer *a)
{
	struct json_object	*msgs = json_object_new_array(), *m = NULL;
	struct nf_error		 e;
	char			*sys = system_prompt(tn->t);
	int64_t			 round;

	a->source = "openai";
	json_object_array_add(msgs, chat_msg("system", sys));
	free(sys);
	add_history(tn, text, msgs);
	json_object_array_add(msgs, chat_msg("user", text));
	for (round = 0;; round++) {
		if (nf_ai_openai_chat(tn->app, tn->t, msgs, tn->deadline, &m, &e) != NF_OK)
			break;
		if (!json_object_object_get_ex(m, "tool_calls", NULL)) {
			a->reply = nf_xstrdup(nf_json_field_str(m, "content"));
			goto out;
		}
		if (round >= tn->app->cfg.ai_tool_rounds) {
			nf_warn("ai: more than %lld tool rounds", (long long)round);
			break;
		}
		json_object_array_add(msgs, m);
		if (run_tools(tn, m, msgs)) {
			set_handoff(a, tn->t, "assistant_handoff", "openai", nf_json_field_str(m, "content"));
			m = NULL;
			goto out;
		}
		m = NULL;
	}
	set_handoff(a, tn->t, "ai_unavailable", "openai", NULL);
out:
	json_object_put(m);
	json_object_put(msgs);
}

/* 0 when the conversation has had its share of AI answers this minute.
 * Redis down: allowed (the limit guards cost; it must not mute the bot). */
static int
rate_ok(struct turn *tn)
{
	struct nf_kv	*kv = nf_app_kv(tn->app);
	struct nf_error	 e;
	int64_t		 retry;
	char		*bucket;
	int		 allowed = 1;

	if (tn->conv_id == NULL || kv == NULL)
		return 1;
	bucket = nf_xasprintf("ai:%s", tn->conv_id);
	if (nf_kv_ratelimit_hit(kv, tn->t->id, bucket, tn->app->cfg.ai_rate_per_min,
	    RATE_WINDOW_MS, &allowed, &retry, &e) != NF_OK) {
		nf_warn("ai: rate limit not checked (%s)", e.code);
		allowed = 1;
	}
	free(bucket);
	return allowed;
}

/* NULL while the tenant may call OpenAI today; else why not, as a handoff
 * reason: "budget_exhausted", or "budget_unavailable" when Redis cannot
 * tell (fail closed: ai_budget.h). */
static const char *
budget_block(struct turn *tn)
{
	struct nf_error	 e;
	int		 allowed;

	if (nf_ai_budget_check(tn->app, tn->t, &allowed, NULL, &e) != NF_OK) {
		nf_warn("ai: budget of tenant %s unknown (%s): OpenAI not called", tn->t->id,
		    e.code);
		return "budget_unavailable";
	}
	return allowed ? NULL : "budget_exhausted";
}

static enum nf_err
answer(struct turn *tn, const char *text, int ai_enabled, struct nf_ai_answer *a,
    struct nf_error *e)
{
	const char	*reason, *why = NULL;

	memset(a, 0, sizeof(*a));
	if (text == NULL || !nf_valid_utf8(text, strlen(text), 1, NF_CONV_BODY_MAX))
		return nf_error_set(e, NF_EINVAL, "invalid_field", "text",
		    "the message must be 1 to %d bytes of text", NF_CONV_BODY_MAX);
	if (!ai_enabled) {
		a->handoff = 1;
		a->reason = "ai_disabled";
		a->source = "filter";
		return NF_OK;
	}
	if (nf_ai_filter(text, &reason)) {
		set_handoff(a, tn->t, reason, "filter", NULL);
		return NF_OK;
	}
	if (!rate_ok(tn)) {
		set_handoff(a, tn->t, "rate_limited", "rate_limit", NULL);
		return NF_OK;
	}
	if (tn->t->ai.openai_api_key != NULL && (why = budget_block(tn)) == NULL) {
		tn->deadline = nf_mono_ms() + tn->app->cfg.openai_timeout_ms;
		answer_openai(tn, text, a);
	} else {
		a->source = "offline";
		if (!nf_ai_offline(tn->t, text, &a->reply))
			set_handoff(a, tn->t, why != NULL ? why : "no_answer", "offline", NULL);
	}
	return NF_OK;
}

enum nf_err
nf_ai_answer(struct nf_app *app, const struct nf_tenant *t, const char *conv_id,
    const char *text, const char *from, int ai_enabled, struct nf_ai_answer *a,
    struct nf_error *e)
{
	struct turn	 tn;
	enum nf_err	 rc;

	memset(&tn, 0, sizeof(tn));
	tn.app = app;
	tn.t = t;
	tn.conv_id = conv_id;
	tn.from = from;
	rc = answer(&tn, text, ai_enabled, a, e);
	free(tn.customer_id);
	return rc;
}

void
nf_ai_answer_cleanup(struct nf_ai_answer *a)
{
	if (a == NULL)
		return;
	free(a->reply);
	memset(a, 0, sizeof(*a));
}

/* --- the job ------------------------------------------------------------ */

/* One run of "ai.reply". */
struct job {
	struct nf_app		*app;
	const struct nf_tenant	*t;
	struct nf_store		*st;
	const char		*conv_id;
	const char		*msg_id;
	char			*key;          /* dedupe key of a plain reply */
	char			*hkey;         /* ... of a reply followed by a handoff */
};

/* The conversation if it is still the assistant's; *conv NULL otherwise. */
static enum nf_err
conv_if_ai(struct job *jb, struct json_object **conv, struct nf_error *e)
{
	struct json_object	*c = NULL, *en;
	const char		*status;
	enum nf_err		 rc;

	*conv = NULL;
	if ((rc = nf_conv_get(jb->app, jb->t, jb->conv_id, &c, e)) == NF_ENOTFOUND)
		return nf_error_set(e, NF_EINVAL, "conversation_not_found", "conversationId",
		    "no such conversation");
	if (rc != NF_OK)
		return rc;
	status = nf_json_field_str(c, "status");
	if (status == NULL || strcmp(status, "ai") != 0 ||
	    !json_object_object_get_ex(c, "aiEnabled", &en) || !json_object_get_boolean(en)) {
		nf_info("ai.reply: conversation %s is no longer the assistant's", jb->conv_id);
		json_object_put(c);
		return NF_OK;
	}
	*conv = c;
	return NF_OK;
}

/* The bot message recorded for this customer message before, or NULL. */
static enum nf_err
prior_answer(struct job *jb, struct json_object **out, struct nf_error *e)
{
	struct json_object	*f = json_object_new_object(), *in, *keys;
	enum nf_err		 rc;

	nf_json_add_str(f, "conversationId", jb->conv_id);
	keys = json_object_new_array();
	json_object_array_add(keys, json_object_new_string(jb->key));
	json_object_array_add(keys, json_object_new_string(jb->hkey));
	in = json_object_new_object();
	nf_json_add(in, "$in", keys);
	nf_json_add(f, "dedupeKey", in);
	rc = nf_store_find_one(jb->st, jb->t->id, "messages", f, NULL, out, e);
	json_object_put(f);
	return rc == NF_ENOTFOUND ? NF_OK : rc;
}

/* Record the bot's reply once (dedupe key) and start its delivery; a
 * concurrent or earlier run that recorded it also delivers it. */
static enum nf_err
send_once(struct job *jb, const char *body, const char *key, struct nf_error *e)
{
	int	 dup;

	return nf_conv_send_keyed(jb->app, jb->t, jb->conv_id, "bot", "bot", body, key, NULL,
	    &dup, e);
}

static enum nf_err
handoff(struct job *jb, const char *reason, struct nf_error *e)
{
	enum nf_err	 rc = nf_conv_handoff(jb->app, jb->t, jb->conv_id, reason, NULL, e);

	if (rc == NF_ECONFLICT) {
		nf_info("ai.reply: conversation %s already left the assistant", jb->conv_id);
		return NF_OK;
	}
	return rc;
}

/* Answer msg in conv (the lock is held). */
static enum nf_err
reply_to(struct job *jb, struct json_object *conv, struct json_object *msg,
    struct nf_error *e)
{
	struct json_object	*prior = NULL, *again = NULL;
	struct nf_ai_answer	 a;
	struct turn		 tn;
	const char		*k;
	enum nf_err		 rc;

	memset(&a, 0, sizeof(a));
	if ((rc = prior_answer(jb, &prior, e)) != NF_OK)
		return rc;
	if (prior != NULL) {
		/* Answered by an earlier run: only a handoff may still be due. */
		k = nf_json_field_str(prior, "dedupeKey");
		rc = k != NULL && strcmp(k, jb->hkey) == 0 ? handoff(jb, "assistant_retry", e) :
		    NF_OK;
		goto out;
	}
	memset(&tn, 0, sizeof(tn));
	tn.app = jb->app;
	tn.t = jb->t;
	tn.conv_id = jb->conv_id;
	tn.skip_id = jb->msg_id;
	tn.from = nf_json_field_str(conv, "address");
	tn.customer_id = nf_json_field_str(conv, "customerId") ? nf_xstrdup(nf_json_field_str(conv, "customerId")) :
	    NULL;
	tn.scoped = 1;
	rc = answer(&tn, nf_json_field_str(msg, "body"), 1, &a, e);
	free(tn.customer_id);
	if (rc != NF_OK) {
		rc = nf_error_set(e, NF_EINVAL, "invalid_message", "body", "nothing to answer");
		goto out;
	}
	/* An agent may have taken over while the assistant was thinking. */
	if ((rc = conv_if_ai(jb, &again, e)) != NF_OK || again == NULL)
		goto out;
	nf_info("ai.reply: %s (%s%s%s)", a.handoff ? "handoff" : "answer", a.source,
	    a.handoff ? ", " : "", a.handoff ? a.reason : "");
	if (a.reply != NULL &&
	    (rc = send_once(jb, a.reply, a.handoff ? jb->hkey : jb->key, e)) != NF_OK)
		goto out;
	if (a.handoff)
		rc = handoff(jb, a.reason, e);
out:
	nf_ai_answer_cleanup(&a);
	json_object_put(prior);
	json_object_put(again);
	return rc;
}

/* The customer message to answer; NULL (and NF_OK) when it is not one. */
static enum nf_err
load_message(struct job *jb, struct json_object **out, struct nf_error *e)
{
	struct json_object	*f = json_object_new_object();
	const char		*kind;
	enum nf_err		 rc;

	nf_json_add_str(f, "_id", jb->msg_id);
	nf_json_add_str(f, "conversationId", jb->conv_id);
	rc = nf_store_find_one(jb->st, jb->t->id, "messages", f, NULL, out, e);
	json_object_put(f);
	if (rc == NF_ENOTFOUND)
		return nf_error_set(e, NF_EINVAL, "message_not_found", "messageId",
		    "no such message in the conversation");
	if (rc != NF_OK)
		return rc;
	if ((kind = nf_json_field_str(*out, "authorKind")) == NULL || strcmp(kind, "customer") != 0 ||
	    nf_json_field_str(*out, "body") == NULL || *nf_json_field_str(*out, "body") == '\0') {
		nf_info("ai.reply: message %s is not a customer's text", jb->msg_id);
		json_object_put(*out);
		*out = NULL;
	}
	return NF_OK;
}

/* Under a lock on the message: two runners never both ask OpenAI. */
static enum nf_err
run_locked(struct job *jb, struct json_object *conv, struct json_object *msg,
    struct nf_error *e)
{
	struct nf_kv	*kv = nf_app_kv(jb->app);
	struct nf_error	 le;
	char		 token[33], *name;
	enum nf_err	 rc;

	if (kv == NULL)
		return nf_error_set(e, NF_EUNAVAIL, "redis_unavailable", NULL, "no Redis");
	name = nf_xasprintf("ai:%s", jb->msg_id);
	rc = nf_kv_lock_acquire(kv, jb->t->id, name, jb->app->cfg.openai_timeout_ms +
	    LOCK_SLACK_MS, token, e);
	if (rc == NF_ECONFLICT)
		nf_error_set(e, NF_ECONFLICT, "ai_busy", NULL, "another run answers it");
	if (rc == NF_OK) {
		rc = reply_to(jb, conv, msg, e);
		if (nf_kv_lock_release(kv, jb->t->id, name, token, &le) != NF_OK)
			nf_debug("ai.reply: lock not released (%s)", le.code);
	}
	free(name);
	return rc;
}

enum nf_err
nf_ai_job(const struct nf_job *j, void *arg, struct nf_error *e)
{
	struct job		 jb;
	struct json_object	*conv = NULL, *msg = NULL;
	enum nf_err		 rc;

	memset(&jb, 0, sizeof(jb));
	jb.app = arg;
	jb.conv_id = nf_json_field_str(j->payload, "conversationId");
	jb.msg_id = nf_json_field_str(j->payload, "messageId");
	if (jb.conv_id == NULL || !nf_valid_hex24(jb.conv_id) || jb.msg_id == NULL ||
	    !nf_valid_hex24(jb.msg_id))
		return nf_error_set(e, NF_EINVAL, "invalid_payload", NULL,
		    "ai.reply needs conversationId and messageId");
	if ((jb.t = nf_tenant_find(jb.app->tenants, j->tenant)) == NULL)
		return nf_error_set(e, NF_EINVAL, "tenant_not_found", NULL, "unknown tenant");
	if ((rc = nf_conv_store(jb.app, &jb.st, e)) != NF_OK ||
	    (rc = conv_if_ai(&jb, &conv, e)) != NF_OK || conv == NULL ||
	    (rc = load_message(&jb, &msg, e)) != NF_OK || msg == NULL)
		goto out;
	jb.key = nf_xasprintf("ai:%s", jb.msg_id);
	jb.hkey = nf_xasprintf("ai-handoff:%s", jb.msg_id);
	rc = run_locked(&jb, conv, msg, e);
out:
	free(jb.key);
	free(jb.hkey);
	json_object_put(conv);
	json_object_put(msg);
	return rc;
}
