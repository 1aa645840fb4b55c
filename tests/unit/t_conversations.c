/*
 * t_conversations.c - the conversations module (conversations.c) without
 * HTTP, Redis or nchan: opening a conversation once, recording a message
 * exactly once (by Twilio SID and by dedupe key), the state machine with
 * its refused transitions and stale versions, delivery states that never
 * regress, the jobs a send or a handoff leaves (in the store's outbox,
 * since there is no Redis here), views without internals, and tenant
 * isolation.  Each test gets a fresh in-memory SQLite store.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "app.h"
#include "conversations.h"
#include "jobs.h"
#include "json.h"
#include "nonflex.h"
#include "spool.h"
#include "store.h"
#include "tenant.h"
#include "testutil.h"

#define CH1 "CH00000000000000000000000000000001"
#define IM1 "IM00000000000000000000000000000001"
#define IM2 "IM00000000000000000000000000000002"

static struct nf_app	 A;
static struct nf_tenant	 T1, T2;

static void
setup(void)
{
	struct nf_error	 e;

	memset(&A, 0, sizeof(A));
	memset(&T1, 0, sizeof(T1));
	memset(&T2, 0, sizeof(T2));
	T1.id = "tenant1";
	T2.id = "tenant2";
	ck_assert_int_eq(nf_store_open("sqlite://:memory:", &A.store, &e), NF_OK);
}

static void
teardown(void)
{
	nf_store_free(A.store);
	nf_tenants_free(A.tenants);
	A.store = NULL;
	A.tenants = NULL;
}

static int64_t
count(const char *tenant, const char *coll, const char *filter)
{
	struct json_object	*f = json_tokener_parse(filter);
	struct nf_error		 e;
	int64_t			 n = -1;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(nf_store_count(A.store, tenant, coll, f, &n, &e), NF_OK);
	json_object_put(f);
	return n;
}

static const char *
str(struct json_object *o, const char *k)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int64_t
num(struct json_object *o, const char *k)
{
	struct json_object	*v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : -1;
}

/* Open a conversation; its id is copied to id. */
static void
open_conv(const struct nf_tenant *t, const char *channel, const char *address,
    const char *sid, char id[25], int want_created)
{
	struct nf_conv_inbound	 in = { channel, address, sid };
	struct json_object	*c = NULL;
	struct nf_error		 e;
	int			 created = -1;

	ck_assert_int_eq(nf_conv_open(&A, t, &in, &c, &created, &e), NF_OK);
	ck_assert_int_eq(created, want_created);
	snprintf(id, 25, "%s", str(c, "_id"));
	json_object_put(c);
}

static const char *
status_of(const char *id, char buf[16])
{
	struct json_object	*c = NULL;
	struct nf_error		 e;

	ck_assert_int_eq(nf_conv_get(&A, &T1, id, &c, &e), NF_OK);
	snprintf(buf, 16, "%s", str(c, "status"));
	json_object_put(c);
	return buf;
}

static struct nf_conv_msg
inbound(const char *body, const char *sid, const char *key)
{
	struct nf_conv_msg	 m = { "inbound", "customer", "whatsapp:+15555550100", body,
		NULL, sid, key, 0 };

	return m;
}

/* ---- opening --------------------------------------------------------------- */

START_TEST(t_open_once)
{
	char	 a[25], b[25], c[25], d[25], buf[16];

	open_conv(&T1, "whatsapp", "whatsapp:+15555550100", CH1, a, 1);
	open_conv(&T1, "whatsapp", "whatsapp:+15555550100", CH1, b, 0);
	ck_assert_str_eq(a, b);
	open_conv(&T1, "webchat", "s1", NULL, c, 1);
	open_conv(&T1, "webchat", "s1", NULL, d, 0);
	ck_assert_str_eq(c, d);
	ck_assert_int_eq(count("tenant1", "conversations", "{}"), 2);
	/* Another tenant's customer with the same keys is another conversation. */
	open_conv(&T2, "webchat", "s1", NULL, d, 1);
	ck_assert_str_ne(c, d);
	/* Closed: a web-chat session opens a new one, a Twilio SID reopens. */
	ck_assert_int_eq(nf_conv_close(&A, &T1, c, "done", NULL, NULL, &(struct nf_error){0}),
	    NF_OK);
	open_conv(&T1, "webchat", "s1", NULL, d, 1);
	ck_assert_str_ne(c, d);
	ck_assert_int_eq(nf_conv_close(&A, &T1, a, "done", NULL, NULL, &(struct nf_error){0}),
	    NF_OK);
	open_conv(&T1, "whatsapp", "whatsapp:+15555550100", CH1, b, 0);
	ck_assert_str_eq(a, b);
	ck_assert_str_eq(status_of(a, buf), "ai");
}
END_TEST

START_TEST(t_open_bad)
{
	struct nf_conv_inbound	 in = { "fax", "x", NULL };
	struct json_object	*c = NULL;
	struct nf_error		 e;
	int			 created;

	ck_assert_int_eq(nf_conv_open(&A, &T1, &in, &c, &created, &e), NF_EINVAL);
	ck_assert_str_eq(e.field, "channel");
	in.channel = "sms";
	in.twilio_sid = "CH123";
	ck_assert_int_eq(nf_conv_open(&A, &T1, &in, &c, &created, &e), NF_EINVAL);
	ck_assert_str_eq(e.field, "twilioSid");
	ck_assert_int_eq(count("tenant1", "conversations", "{}"), 0);
}
END_TEST

/* ---- messages ----------------------------------------------------------------- */

START_TEST(t_message_dedupe)
{
	struct nf_conv_msg	 m;
	struct json_object	*msg = NULL, *again = NULL, *c = NULL;
	struct nf_error		 e;
	char			 id[25];
	int			 dup = -1;

	open_conv(&T1, "whatsapp", "whatsapp:+15555550100", CH1, id, 1);
	m = inbound("hola", IM1, "twilio:tok-1");
	ck_assert_int_eq(nf_conv_add_message(&A, &T1, id, &m, &msg, &dup, &e), NF_OK);
	ck_assert_int_eq(dup, 0);
	ck_assert_str_eq(str(msg, "delivery"), "received");
	/* Same SID, other token (fallback URL): a duplicate. */
	m = inbound("hola", IM1, "twilio:tok-2");
	ck_assert_int_eq(nf_conv_add_message(&A, &T1, id, &m, &again, &dup, &e), NF_OK);
	ck_assert_int_eq(dup, 1);
	ck_assert_str_eq(str(again, "_id"), str(msg, "_id"));
	json_object_put(again);
	/* Same token, no SID: a duplicate too. */
	m = inbound("hola", NULL, "twilio:tok-1");
	ck_assert_int_eq(nf_conv_add_message(&A, &T1, id, &m, &again, &dup, &e), NF_OK);
	ck_assert_int_eq(dup, 1);
	json_object_put(again);
	ck_assert_int_eq(count("tenant1", "messages", "{}"), 1);
	/* Messages without keys are all kept. */
	m = inbound("uno", NULL, NULL);
	ck_assert_int_eq(nf_conv_add_message(&A, &T1, id, &m, NULL, &dup, &e), NF_OK);
	m = inbound("dos", NULL, NULL);
	ck_assert_int_eq(nf_conv_add_message(&A, &T1, id, &m, NULL, &dup, &e), NF_OK);
	ck_assert_int_eq(dup, 0);
	ck_assert_int_eq(count("tenant1", "messages", "{}"), 3);
	/* The conversation shows the last one. */
	ck_assert_int_eq(nf_conv_get(&A, &T1, id, &c, &e), NF_OK);
	ck_assert_str_eq(str(c, "preview"), "dos");
	ck_assert_ptr_null(str(c, "firstResponseAt"));
	json_object_put(c);
	json_object_put(msg);
}
END_TEST

START_TEST(t_message_bad)
{
	struct nf_conv_msg	 m;
	struct nf_error		 e;
	char			 id[25], *big;
	int			 dup;

	open_conv(&T1, "sms", "+15555550100", NULL, id, 1);
	m = inbound("", NULL, NULL);
	ck_assert_int_eq(nf_conv_add_message(&A, &T1, id, &m, NULL, &dup, &e), NF_EINVAL);
	ck_assert_str_eq(e.field, "body");
	big = malloc(NF_CONV_BODY_MAX + 2);
	memset(big, 'a', NF_CONV_BODY_MAX + 1);
	big[NF_CONV_BODY_MAX + 1] = '\0';
	m = inbound(big, NULL, NULL);
	ck_assert_int_eq(nf_conv_add_message(&A, &T1, id, &m, NULL, &dup, &e), NF_EINVAL);
	ck_assert_str_eq(e.field, "body");
	free(big);
	m = inbound("x", "SM00000000000000000000000000000001", NULL);
	ck_assert_int_eq(nf_conv_add_message(&A, &T1, id, &m, NULL, &dup, &e), NF_EINVAL);
	ck_assert_str_eq(e.field, "twilioSid");
	m = inbound("x", NULL, "bad key with spaces");
	ck_assert_int_eq(nf_conv_add_message(&A, &T1, id, &m, NULL, &dup, &e), NF_EINVAL);
	ck_assert_str_eq(e.field, "dedupeKey");
	m = inbound("x", NULL, NULL);
	m.author_kind = "bot";          /* a bot never writes inbound */
	ck_assert_int_eq(nf_conv_add_message(&A, &T1, id, &m, NULL, &dup, &e), NF_EINVAL);
	ck_assert_str_eq(e.field, "authorKind");
	m = inbound("x", NULL, NULL);
	ck_assert_int_eq(nf_conv_add_message(&A, &T1, "0123456789abcdef01234567", &m, NULL,
	    &dup, &e), NF_ENOTFOUND);
	ck_assert_int_eq(count("tenant1", "messages", "{}"), 0);
}
END_TEST

/* ---- the state machine ------------------------------------------------------------ */

START_TEST(t_states)
{
	struct json_object	*c = NULL;
	struct nf_error		 e;
	char			 id[25], buf[16];
	int64_t			 v;

	open_conv(&T1, "sms", "+15555550100", NULL, id, 1);
	ck_assert_int_eq(nf_conv_assign(&A, &T1, id, "agent1", -1, &c, &e), NF_OK);
	ck_assert_str_eq(str(c, "status"), "assigned");
	ck_assert_str_eq(str(c, "assignedTo"), "agent1");
	v = num(c, "version");
	json_object_put(c);
	/* A second claimer loses. */
	ck_assert_int_eq(nf_conv_assign(&A, &T1, id, "agent2", -1, NULL, &e), NF_ECONFLICT);
	ck_assert_str_eq(e.code, "invalid_state");
	/* Only the holder releases. */
	ck_assert_int_eq(nf_conv_release(&A, &T1, id, "agent2", 0, -1, NULL, &e), NF_ECONFLICT);
	/* A stale version cannot commit (fencing). */
	ck_assert_int_eq(nf_conv_release(&A, &T1, id, "agent1", 0, v - 1, NULL, &e),
	    NF_ECONFLICT);
	ck_assert_int_eq(nf_conv_release(&A, &T1, id, "agent1", 0, v, &c, &e), NF_OK);
	ck_assert_str_eq(str(c, "status"), "queued");
	ck_assert_int_eq(num(c, "version"), v + 1);
	ck_assert_ptr_nonnull(str(c, "queuedAt"));
	json_object_put(c);
	ck_assert_int_eq(nf_conv_handoff(&A, &T1, id, "again", NULL, &e), NF_ECONFLICT);
	ck_assert_int_eq(nf_conv_release(&A, &T1, id, NULL, 1, -1, NULL, &e), NF_ECONFLICT);
	ck_assert_int_eq(nf_conv_transfer(&A, &T1, id, "agent2", &c, &e), NF_OK);
	ck_assert_str_eq(str(c, "assignedTo"), "agent2");
	json_object_put(c);
	ck_assert_int_eq(nf_conv_transfer(&A, &T1, id, NULL, NULL, &e), NF_OK);
	ck_assert_str_eq(status_of(id, buf), "queued");
	ck_assert_int_eq(nf_conv_assign(&A, &T1, id, "agent1", -1, NULL, &e), NF_OK);
	ck_assert_int_eq(nf_conv_release(&A, &T1, id, "agent1", 1, -1, &c, &e), NF_OK);
	ck_assert_str_eq(str(c, "status"), "ai");
	json_object_put(c);
	ck_assert_int_eq(nf_conv_transfer(&A, &T1, id, "agent2", NULL, &e), NF_ECONFLICT);
	ck_assert_int_eq(nf_conv_close(&A, &T1, id, "resolved", "note", &c, &e), NF_OK);
	ck_assert_str_eq(str(c, "disposition"), "resolved");
	ck_assert_ptr_nonnull(str(c, "closedAt"));
	json_object_put(c);
	ck_assert_int_eq(nf_conv_close(&A, &T1, id, "again", NULL, NULL, &e), NF_ECONFLICT);
	ck_assert_int_eq(nf_conv_assign(&A, &T1, id, "agent1", -1, NULL, &e), NF_ECONFLICT);
	ck_assert_int_eq(nf_conv_handoff(&A, &T1, id, "x", NULL, &e), NF_ECONFLICT);
	ck_assert_int_eq(nf_conv_assign(&A, &T1, "0123456789abcdef01234567", "a", -1, NULL, &e),
	    NF_ENOTFOUND);
	ck_assert_int_eq(nf_conv_assign(&A, &T1, "nope", "a", -1, NULL, &e), NF_ENOTFOUND);
}
END_TEST

START_TEST(t_handoff)
{
	struct json_object	*c = NULL;
	struct nf_error		 e;
	char			 id[25], id2[25];

	T1.twilio.workflow_sid = "WW00000000000000000000000000000001";
	T1.twilio.workspace_sid = "WS00000000000000000000000000000001";
	open_conv(&T1, "whatsapp", "whatsapp:+15555550100", CH1, id, 1);
	ck_assert_int_eq(nf_conv_handoff(&A, &T1, id, "refund", &c, &e), NF_OK);
	ck_assert_str_eq(str(c, "status"), "queued");
	ck_assert_int_eq(json_object_get_boolean(json_object_object_get(c, "aiEnabled")), 0);
	ck_assert_str_eq(str(c, "handoffReason"), "refund");
	ck_assert_int_eq(json_object_get_boolean(json_object_object_get(c,
	    "twilioAttributesPending")), 1);
	json_object_put(c);
	ck_assert_int_eq(count("tenant1", "outbox", "{\"type\":\"conv.task\"}"), 1);
	ck_assert_int_eq(count("tenant1", "audit", "{\"event\":\"conversation.handoff\","
	    "\"actor\":\"bot\"}"), 1);
	/* No workflow and no Twilio conversation: nothing to create or write. */
	T1.twilio.workflow_sid = NULL;
	open_conv(&T1, "webchat", "s2", NULL, id2, 1);
	ck_assert_int_eq(nf_conv_handoff(&A, &T1, id2, NULL, NULL, &e), NF_OK);
	ck_assert_int_eq(count("tenant1", "outbox", "{\"type\":\"conv.task\"}"), 1);
}
END_TEST

/* ---- sending and delivery -------------------------------------------------------------- */

START_TEST(t_send)
{
	struct json_object	*m = NULL, *c = NULL;
	struct nf_error		 e;
	char			 wa[25], wc[25];

	open_conv(&T1, "whatsapp", "whatsapp:+15555550100", CH1, wa, 1);
	open_conv(&T1, "webchat", "s1", NULL, wc, 1);
	ck_assert_int_eq(nf_conv_send(&A, &T1, wa, "bot", "bot", "hola", &m, &e), NF_OK);
	ck_assert_str_eq(str(m, "delivery"), "queued");
	ck_assert_str_eq(str(m, "direction"), "outbound");
	json_object_put(m);
	ck_assert_int_eq(count("tenant1", "outbox", "{\"type\":\"conv.deliver\"}"), 1);
	ck_assert_int_eq(nf_conv_send(&A, &T1, wc, "agent", "ana", "hi", &m, &e), NF_OK);
	ck_assert_str_eq(str(m, "delivery"), "sent");
	json_object_put(m);
	ck_assert_int_eq(count("tenant1", "outbox", "{\"type\":\"conv.deliver\"}"), 1);
	ck_assert_int_eq(nf_conv_get(&A, &T1, wc, &c, &e), NF_OK);
	ck_assert_ptr_nonnull(str(c, "firstResponseAt"));
	json_object_put(c);
	ck_assert_int_eq(nf_conv_send(&A, &T1, wc, "customer", "x", "hi", NULL, &e), NF_EINVAL);
	ck_assert_int_eq(nf_conv_close(&A, &T1, wc, NULL, NULL, NULL, &e), NF_OK);
	ck_assert_int_eq(nf_conv_send(&A, &T1, wc, "agent", "ana", "late", NULL, &e),
	    NF_ECONFLICT);
	ck_assert_int_eq(count("tenant1", "messages", "{}"), 2);
}
END_TEST

static const char *
delivery_of(const char *mid, char buf[16])
{
	char	 f[64];

	snprintf(f, sizeof(f), "{\"_id\":\"%s\"}", mid);
	ck_assert_int_eq(count("tenant1", "messages", f), 1);
	{
		struct json_object	*flt = json_tokener_parse(f), *doc = NULL;
		struct nf_error		 e;

		ck_assert_int_eq(nf_store_find_one(A.store, "tenant1", "messages", flt, NULL,
		    &doc, &e), NF_OK);
		snprintf(buf, 16, "%s", str(doc, "delivery"));
		json_object_put(doc);
		json_object_put(flt);
	}
	return buf;
}

START_TEST(t_delivery_precedence)
{
	struct json_object	*m = NULL;
	struct nf_error		 e;
	char			 id[25], mid[25], m2[25], buf[16];

	open_conv(&T1, "whatsapp", "whatsapp:+15555550100", CH1, id, 1);
	ck_assert_int_eq(nf_conv_send(&A, &T1, id, "bot", "bot", "hola", &m, &e), NF_OK);
	snprintf(mid, sizeof(mid), "%s", str(m, "_id"));
	json_object_put(m);
	/* delivered before sent: sent does not take it back. */
	ck_assert_int_eq(nf_conv_delivery(&A, &T1, mid, IM1, "delivered", NULL, &e), NF_OK);
	ck_assert_int_eq(nf_conv_delivery(&A, &T1, NULL, IM1, "sent", NULL, &e), NF_OK);
	ck_assert_str_eq(delivery_of(mid, buf), "delivered");
	/* failed after delivered changes nothing; read moves on. */
	ck_assert_int_eq(nf_conv_delivery(&A, &T1, NULL, IM1, "failed", "x", &e), NF_OK);
	ck_assert_str_eq(delivery_of(mid, buf), "delivered");
	ck_assert_int_eq(nf_conv_delivery(&A, &T1, NULL, IM1, "read", NULL, &e), NF_OK);
	ck_assert_str_eq(delivery_of(mid, buf), "read");
	ck_assert_int_eq(nf_conv_delivery(&A, &T1, mid, NULL, "delivered", NULL, &e), NF_OK);
	ck_assert_str_eq(delivery_of(mid, buf), "read");
	/* failed from sent is final. */
	ck_assert_int_eq(nf_conv_send(&A, &T1, id, "bot", "bot", "dos", &m, &e), NF_OK);
	snprintf(m2, sizeof(m2), "%s", str(m, "_id"));
	json_object_put(m);
	ck_assert_int_eq(nf_conv_delivery(&A, &T1, m2, IM2, "sent", NULL, &e), NF_OK);
	ck_assert_int_eq(nf_conv_delivery(&A, &T1, NULL, IM2, "failed", "30008", &e), NF_OK);
	ck_assert_int_eq(nf_conv_delivery(&A, &T1, NULL, IM2, "delivered", NULL, &e), NF_OK);
	ck_assert_str_eq(delivery_of(m2, buf), "failed");
	ck_assert_int_eq(count("tenant1", "messages", "{\"deliveryError\":\"30008\"}"), 1);
	/* Unknown message, unknown state. */
	ck_assert_int_eq(nf_conv_delivery(&A, &T1, NULL, "IM0000000000000000000000000000000f",
	    "sent", NULL, &e), NF_ENOTFOUND);
	ck_assert_int_eq(nf_conv_delivery(&A, &T1, mid, NULL, "lost", NULL, &e), NF_EINVAL);
	/* Another tenant cannot touch it. */
	ck_assert_int_eq(nf_conv_delivery(&A, &T2, m2, NULL, "read", NULL, &e), NF_ENOTFOUND);
}
END_TEST

/* ---- views and tenants -------------------------------------------------------------- */

START_TEST(t_views)
{
	struct nf_conv_msg	 m;
	struct json_object	*c = NULL, *msg = NULL, *v;
	struct nf_error		 e;
	char			 id[25];
	int			 dup;

	open_conv(&T1, "webchat", "s1", NULL, id, 1);
	m = inbound("hola", IM1, "twilio:k");
	ck_assert_int_eq(nf_conv_add_message(&A, &T1, id, &m, &msg, &dup, &e), NF_OK);
	ck_assert_int_eq(nf_conv_get(&A, &T1, id, &c, &e), NF_OK);
	v = nf_conv_view(c);
	ck_assert_str_eq(str(v, "id"), id);
	ck_assert(!json_object_object_get_ex(v, "tenant", NULL));
	ck_assert(!json_object_object_get_ex(v, "_id", NULL));
	ck_assert(!json_object_object_get_ex(v, "openKey", NULL));
	ck_assert(json_object_object_get_ex(v, "assignedTo", NULL));  /* null, present */
	json_object_put(v);
	v = nf_conv_message_view(msg);
	ck_assert_str_eq(str(v, "conversationId"), id);
	ck_assert_str_eq(str(v, "twilioSid"), IM1);
	ck_assert(!json_object_object_get_ex(v, "tenant", NULL));
	ck_assert(!json_object_object_get_ex(v, "dedupeKey", NULL));
	json_object_put(v);
	json_object_put(c);
	json_object_put(msg);
}
END_TEST

START_TEST(t_tenants)
{
	struct nf_conv_msg	 m;
	struct json_object	*c = NULL;
	struct nf_error		 e;
	char			 id[25];
	int			 dup;

	open_conv(&T1, "sms", "+15555550100", NULL, id, 1);
	ck_assert_int_eq(nf_conv_get(&A, &T2, id, &c, &e), NF_ENOTFOUND);
	ck_assert_int_eq(nf_conv_assign(&A, &T2, id, "a", -1, NULL, &e), NF_ENOTFOUND);
	ck_assert_int_eq(nf_conv_close(&A, &T2, id, NULL, NULL, NULL, &e), NF_ENOTFOUND);
	ck_assert_int_eq(nf_conv_send(&A, &T2, id, "bot", "bot", "x", NULL, &e), NF_ENOTFOUND);
	m = inbound("x", NULL, NULL);
	ck_assert_int_eq(nf_conv_add_message(&A, &T2, id, &m, NULL, &dup, &e), NF_ENOTFOUND);
	ck_assert_int_eq(count("tenant2", "messages", "{}"), 0);
	ck_assert_int_eq(count("tenant1", "messages", "{}"), 0);
}
END_TEST

/* ---- the spool's records (nf_conv_accept, nf_conv_apply) ------------------- */

static struct json_object *
record(const char *tenant, int64_t at, const char *sid, const char *body)
{
	struct json_object	*o = json_object_new_object();

	nf_json_add_str(o, "kind", "conv.inbound");
	nf_json_add_str(o, "tenant", tenant);
	nf_json_add_int(o, "at", at);
	nf_json_add_str(o, "channel", "whatsapp");
	nf_json_add_str(o, "address", "whatsapp:+15555550177");
	nf_json_add_str(o, "convSid", CH1);
	nf_json_add_str(o, "author", "whatsapp:+15555550177");
	nf_json_add_str(o, "body", body);
	if (sid != NULL)
		nf_json_add_str(o, "sid", sid);
	return o;
}

static enum nf_err
apply(struct json_object *rec)
{
	struct nf_error	 e;
	enum nf_err	 rc = nf_conv_apply(&A, rec, &e);

	json_object_put(rec);
	return rc;
}

static struct json_object *
the_conv(void)
{
	struct json_object	*c = NULL;
	struct nf_error		 e;

	ck_assert_int_eq(nf_conv_by_sid(&A, nf_tenant_find(A.tenants, "tenant1"), CH1, &c, &e),
	    NF_OK);
	ck_assert_ptr_nonnull(c);
	return c;
}

static void
load_tenants(void)
{
	struct nf_error	 e;

	ck_assert_int_eq(nf_tenants_load(TOP_SRCDIR "/infra/tenants.json", &A.tenants, &e),
	    NF_OK);
}

START_TEST(t_apply)
{
	struct json_object	*c, *o;

	load_tenants();
	/* Received in 2001, recorded now: the message keeps its time. */
	ck_assert_int_eq(apply(record("tenant1", 1000000000000LL, IM1, "hola")), NF_OK);
	ck_assert_int_eq(apply(record("tenant1", 1000000000000LL, IM1, "hola")), NF_OK);
	ck_assert_int_eq(count("tenant1", "messages", "{\"createdAt\":"
	    "\"2001-09-09T01:46:40.000Z\",\"body\":\"hola\"}"), 1);
	/* Its answer is asked for once (Redis absent: the outbox keeps it). */
	ck_assert_int_eq(count("tenant1", "outbox", "{\"type\":\"ai.reply\"}"), 1);
	c = the_conv();
	ck_assert_str_eq(str(c, "lastMessageAt"), "2001-09-09T01:46:40.000Z");
	json_object_put(c);
	/* A later one moves the conversation on; one received before it does not. */
	ck_assert_int_eq(apply(record("tenant1", 1000000002000LL, IM2, "later")), NF_OK);
	ck_assert_int_eq(apply(record("tenant1", 1000000001000LL,
	    "IM00000000000000000000000000000003", "between")), NF_OK);
	c = the_conv();
	ck_assert_str_eq(str(c, "preview"), "later");
	ck_assert_str_eq(str(c, "lastMessageAt"), "2001-09-09T01:46:42.000Z");
	json_object_put(c);
	ck_assert_int_eq(count("tenant1", "messages", "{}"), 3);
	/* Twilio's close, spooled after them. */
	o = json_object_new_object();
	nf_json_add_str(o, "kind", "conv.closed");
	nf_json_add_str(o, "tenant", "tenant1");
	nf_json_add_int(o, "at", 1000000003000LL);
	nf_json_add_str(o, "convSid", CH1);
	ck_assert_int_eq(apply(o), NF_OK);
	c = the_conv();
	ck_assert_str_eq(str(c, "status"), "closed");
	ck_assert_str_eq(str(c, "disposition"), "twilio");
	json_object_put(c);
	ck_assert_int_eq(count("tenant1", "audit", "{\"event\":\"conversation.close\"}"), 1);
}
END_TEST

START_TEST(t_apply_hopeless)
{
	struct json_object	*o;

	/* No tenants loaded yet: try again later, never dead. */
	ck_assert_int_eq(apply(record("tenant1", 1, IM1, "x")), NF_EUNAVAIL);
	load_tenants();
	/* NF_EINVAL: the drainer dead-letters these instead of retrying. */
	ck_assert_int_eq(apply(record("nobody", 1, IM1, "x")), NF_EINVAL);
	ck_assert_int_eq(apply(record("tenant1", 1, "IM123", "x")), NF_EINVAL);
	o = record("tenant1", 1, IM1, "x");
	json_object_object_del(o, "body");
	ck_assert_int_eq(apply(o), NF_EINVAL);
	o = record("tenant1", 1, IM1, "x");
	nf_json_add_str(o, "kind", "conv.other");
	ck_assert_int_eq(apply(o), NF_EINVAL);
	o = record("tenant1", 1, IM1, "x");
	nf_json_add_str(o, "media", "not an array");
	ck_assert_int_eq(apply(o), NF_EINVAL);
	ck_assert_int_eq(count("tenant1", "messages", "{}"), 0);
	ck_assert_int_eq(count("tenant1", "conversations", "{}"), 0);
}
END_TEST

static enum nf_err
drain_fn(struct json_object *rec, void *arg, struct nf_error *e)
{
	return nf_conv_apply(arg, rec, e);
}

START_TEST(t_accept_spooled)
{
	struct nf_conv_inbound	 in = { "whatsapp", "whatsapp:+15555550177", CH1 };
	struct nf_conv_msg	 m = inbound("por favor", IM1, NULL);
	const struct nf_tenant	*t;
	struct nf_spool		*drainer;
	struct nf_error		 e;
	char			*dir = tu_tmpdir("accept");
	int			 done;

	load_tenants();
	t = nf_tenant_find(A.tenants, "tenant1");
	m.author = in.address;
	/* Bad input is refused at the edge, spool or not. */
	m.body = "";
	ck_assert_int_eq(nf_conv_accept(&A, t, &in, &m, &e), NF_EINVAL);
	m.body = "por favor";
	A.cfg.spool_dir = dir;
	ck_assert_int_eq(nf_conv_accept(&A, t, &in, &m, &e), NF_OK);
	ck_assert_int_eq(nf_conv_accept(&A, t, &in, &m, &e), NF_OK);   /* a replay */
	ck_assert_int_eq(count("tenant1", "messages", "{}"), 0);        /* spooled */
	ck_assert_int_eq(nf_spool_open(dir, &drainer, &e), NF_OK);
	ck_assert_int_eq(nf_spool_drain(drainer, drain_fn, &A, 100, &done, &e), NF_OK);
	ck_assert_int_eq(done, 2);
	ck_assert_int_eq(count("tenant1", "messages", "{\"body\":\"por favor\"}"), 1);
	nf_spool_free(drainer);
	nf_spool_free(A.spool);
	A.spool = NULL;
	A.cfg.spool_dir = NULL;
	/* Without a spool it is recorded at once. */
	m.twilio_sid = IM2;
	ck_assert_int_eq(nf_conv_accept(&A, t, &in, &m, &e), NF_OK);
	ck_assert_int_eq(count("tenant1", "messages", "{}"), 2);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

static Suite *
suite(void)
{
	TCase	*tc;
	Suite	*s = tu_suite("conversations", &tc);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_open_once);
	tcase_add_test(tc, t_open_bad);
	tcase_add_test(tc, t_message_dedupe);
	tcase_add_test(tc, t_message_bad);
	tcase_add_test(tc, t_states);
	tcase_add_test(tc, t_handoff);
	tcase_add_test(tc, t_send);
	tcase_add_test(tc, t_delivery_precedence);
	tcase_add_test(tc, t_views);
	tcase_add_test(tc, t_tenants);
	tcase_add_test(tc, t_apply);
	tcase_add_test(tc, t_apply_hopeless);
	tcase_add_test(tc, t_accept_spooled);
	return s;
}

int
main(void)
{
	return tu_run(suite());
}
