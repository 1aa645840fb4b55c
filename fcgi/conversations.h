/*
 * conversations.h - conversations and their messages: the documents, the
 * state machine, and the one place every channel records a message and
 * tells everyone about it.
 *
 * DESIGN: collections (tenant-scoped like every other):
 *   conversations {tenant, channel "whatsapp"|"sms"|"webchat", address (the
 *     customer's: "whatsapp:+1555...", "+1555...", or the web-chat session
 *     id), customerId (externalId) or null, status "ai"|"queued"|"assigned"|
 *     "closed", assignedTo (agent id) or null, aiEnabled, taskSid, twilioSid
 *     (CH...) or null, priority (int, higher first), preview (last message,
 *     first 120 chars), createdAt, updatedAt, lastMessageAt, queuedAt,
 *     firstResponseAt, closedAt, disposition, note, version (int, +1 on
 *     every state change: the fencing token of claims)}
 *   messages {tenant, conversationId, direction "inbound"|"outbound",
 *     authorKind "customer"|"bot"|"agent", author, body, media[], twilioSid
 *     (IM...) or null, dedupeKey or null, delivery "received" (inbound) |
 *     "queued"|"sent"|"delivered"|"read"|"failed", deliveryError, attempts,
 *     createdAt, updatedAt}
 * with unique indexes (tenant, twilioSid) and (tenant, dedupeKey) on
 * messages, (tenant, twilioSid) on conversations, and the inbox's indexes
 * (status + lastMessageAt, status + priority + queuedAt, assignedTo +
 * lastMessageAt; messages by conversationId + createdAt).  A message is
 * stored once: a replayed webhook (same MessageSid or
 * I-Twilio-Idempotency-Token) hits the unique index and is reported as a
 * duplicate, changing nothing.
 *
 * Every state change is one conditional find-and-modify on (id, expected
 * status or version), so two workers never both win, and publishes an
 * event: topic "queue" for the tenant's agents (conversation.* and
 * message.* events), topic "agent-<agentId>" for the agent holding it,
 * topic "webchat-<sessionId>" for a web-chat customer.  Outbound messages
 * (bot and agent) are recorded with delivery "queued" and handed to
 * nonflex-jobs ("conv.deliver") for Twilio channels; web-chat messages are
 * delivered by the event itself and recorded as "sent".
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_CONVERSATIONS_H
#define NF_CONVERSATIONS_H

#include <stdint.h>

#include "nonflex.h"

struct json_object;
struct nf_app;
struct nf_store;
struct nf_tenant;

#define NF_CONV_BODY_MAX	4096    /* bytes of a message body */

/* Where an inbound message comes from. */
struct nf_conv_inbound {
	const char	*channel;       /* "whatsapp" | "sms" | "webchat" */
	const char	*address;       /* the customer's address or session id */
	const char	*twilio_sid;    /* the Twilio Conversation SID (CH...) or NULL */
};

/* A message to record. */
struct nf_conv_msg {
	const char		*direction;    /* "inbound" | "outbound" */
	const char		*author_kind;  /* "customer" | "bot" | "agent" */
	const char		*author;       /* address, "bot", or agent username */
	const char		*body;         /* 0..NF_CONV_BODY_MAX bytes of UTF-8 */
	struct json_object	*media;        /* array of {url, contentType} or NULL */
	const char		*twilio_sid;   /* IM... or NULL */
	const char		*dedupe_key;   /* idempotency token / client key, or NULL */
	int64_t			 at_ms;        /* when it was received (ms since epoch); 0: now */
};

/* The store with this module's indexes (ensured once per handle). */
enum nf_err	 nf_conv_store(struct nf_app *, struct nf_store **, struct nf_error *);

/*
 * The conversation of an inbound message: found by twilio_sid (when set)
 * or by (channel, address) among those not closed; created in status "ai"
 * (aiEnabled true) when there is none, with customerId looked up by phone
 * in the local store when the address is a phone number.  *conv new
 * reference; *created 1 when it was created now (event
 * conversation.created published).
 */
enum nf_err	 nf_conv_open(struct nf_app *, const struct nf_tenant *,
		    const struct nf_conv_inbound *, struct json_object **conv, int *created,
		    struct nf_error *);

/* A conversation by id (24 hex): NF_ENOTFOUND "conversation_not_found". */
enum nf_err	 nf_conv_get(struct nf_app *, const struct nf_tenant *, const char *id,
		    struct json_object **conv, struct nf_error *);

/*
 * Record a message in conversation conv_id exactly once.  *dup 1 (and
 * NF_OK) when the same twilio_sid or dedupe_key was stored before: *msg
 * is then the stored one.  Updates the conversation's preview and
 * lastMessageAt (and firstResponseAt on the first outbound agent/bot
 * message) and publishes message.created.  NF_EINVAL naming the field for
 * a bad message.  *msg (may be NULL) new reference.
 */
enum nf_err	 nf_conv_add_message(struct nf_app *, const struct nf_tenant *,
		    const char *conv_id, const struct nf_conv_msg *, struct json_object **msg,
		    int *dup, struct nf_error *);

/*
 * A customer's message m (direction inbound) from in, as one atomic unit:
 * in's open conversation found or opened (a closed one with the same Twilio
 * SID reopens for the AI), the message recorded exactly once as
 * nf_conv_add_message does, and the conversation moved on; nothing of it is
 * left half-done by a crash.  Events (conversation.created or .updated,
 * message.created) are published after the commit.  *conv (the
 * conversation after the message) and *msg are new references; *dup as for
 * nf_conv_add_message.
 */
enum nf_err	 nf_conv_receive(struct nf_app *, const struct nf_tenant *,
		    const struct nf_conv_inbound *, const struct nf_conv_msg *,
		    struct json_object **conv, struct json_object **msg, int *dup,
		    struct nf_error *);

/*
 * Take a customer's message m from in: with a spool (NONFLEX_SPOOL_DIR) it
 * is appended there as a "conv.inbound" record, which nonflex-jobs' spool
 * drainer hands to nf_conv_apply moments later; without one, or when the
 * spool cannot take it, it is recorded at once (nf_conv_receive) and its
 * answer asked for (nf_conv_ask_ai).  On NF_OK the message is durable
 * either way.  A duplicate (same twilio_sid or dedupe_key) is harmless:
 * still one message and one answer.
 */
enum nf_err	 nf_conv_accept(struct nf_app *, const struct nf_tenant *,
		    const struct nf_conv_inbound *, const struct nf_conv_msg *,
		    struct nf_error *);
/*
 * Twilio closed the conversation with Conversation SID sid at at_ms: ours
 * closes too (disposition "twilio", audited), through the spool when there
 * is one, so it is not overtaken by a message received before it.  A
 * conversation not stored, or already closed, is left alone.
 */
enum nf_err	 nf_conv_accept_closed(struct nf_app *, const struct nf_tenant *,
		    const char *sid, int64_t at_ms, struct nf_error *);
/* The stored conversation with Twilio SID sid, or *conv NULL when none. */
enum nf_err	 nf_conv_by_sid(struct nf_app *, const struct nf_tenant *, const char *sid,
		    struct json_object **conv, struct nf_error *);
/*
 * One spool record (nf_spool_fn's contract): a "conv.inbound" record is
 * recorded and answered as nf_conv_accept does without a spool, a
 * "conv.closed" one closes as nf_conv_accept_closed does.  NF_EINVAL
 * for a record that can never be processed (malformed, unknown tenant).
 */
enum nf_err	 nf_conv_apply(struct nf_app *, struct json_object *rec, struct nf_error *);

/*
 * Queue job type {conversationId[, messageId]} for conversation conv_id
 * (the store's outbox takes it while Redis is down).  once: under msg_id as
 * the job's id, so however often it is submitted it is queued once.
 */
enum nf_err	 nf_conv_submit(struct nf_app *, const struct nf_tenant *, const char *type,
		    const char *conv_id, const char *msg_id, int once, struct nf_error *);

/* While conv is the assistant's (status ai, aiEnabled), queue its answer to
 * msg ("ai.reply", once per message); otherwise NF_OK doing nothing. */
enum nf_err	 nf_conv_ask_ai(struct nf_app *, const struct nf_tenant *,
		    struct json_object *conv, struct json_object *msg, struct nf_error *);

/*
 * Send a bot or agent message: recorded outbound with delivery "queued"
 * and a "conv.deliver" job {conversationId, messageId} submitted (Twilio
 * channels), or published to the web-chat session and marked "sent".
 * author_kind "bot" | "agent"; author "bot" or the agent's username.
 */
enum nf_err	 nf_conv_send(struct nf_app *, const struct nf_tenant *, const char *conv_id,
		    const char *author_kind, const char *author, const char *body,
		    struct json_object **msg, struct nf_error *);

/*
 * nf_conv_send with a dedupe key, for senders that may run twice for the
 * same cause (a retried job): the second call finds the first's message
 * (*dup 1, *msg the stored one) and neither records nor queues anything.
 */
enum nf_err	 nf_conv_send_keyed(struct nf_app *, const struct nf_tenant *,
		    const char *conv_id, const char *author_kind, const char *author,
		    const char *body, const char *dedupe_key, struct json_object **msg,
		    int *dup, struct nf_error *);

/*
 * State changes, each atomic and published ("conversation.updated" with
 * the new status; "conversation.handoff" for a handoff), returning the
 * new document in *conv (may be NULL).  NF_ENOTFOUND for an unknown id,
 * NF_ECONFLICT "invalid_state" when the conversation is not in a state the
 * change applies to (or its version moved: expect_version >= 0).
 *  handoff: ai|assigned -> queued, aiEnabled false, queuedAt now, reason
 *    recorded; a "conv.task" job creates the TaskRouter task when the
 *    tenant has a workflow.
 *  assign:  ai|queued -> assigned to agent_id, aiEnabled false.
 *  release: assigned -> queued (ai_enabled 0) or ai (ai_enabled 1).
 *  close:   any but closed -> closed with disposition and note.
 *  transfer: assigned|queued -> assigned to agent_id, or -> queued.
 */
enum nf_err	 nf_conv_handoff(struct nf_app *, const struct nf_tenant *, const char *conv_id,
		    const char *reason, struct json_object **conv, struct nf_error *);
enum nf_err	 nf_conv_assign(struct nf_app *, const struct nf_tenant *, const char *conv_id,
		    const char *agent_id, int64_t expect_version, struct json_object **conv,
		    struct nf_error *);
enum nf_err	 nf_conv_release(struct nf_app *, const struct nf_tenant *, const char *conv_id,
		    const char *agent_id, int ai_enabled, int64_t expect_version,
		    struct json_object **conv, struct nf_error *);
enum nf_err	 nf_conv_close(struct nf_app *, const struct nf_tenant *, const char *conv_id,
		    const char *disposition, const char *note, struct json_object **conv,
		    struct nf_error *);
enum nf_err	 nf_conv_transfer(struct nf_app *, const struct nf_tenant *, const char *conv_id,
		    const char *agent_id, struct json_object **conv, struct nf_error *);

/* Set a message's delivery state (Twilio status callbacks, the delivery
 * job), never regressing: received < queued < sent < delivered < read;
 * failed only from queued or sent.  Publishes message.updated. */
enum nf_err	 nf_conv_delivery(struct nf_app *, const struct nf_tenant *,
		    const char *message_id, const char *twilio_sid, const char *state,
		    const char *error, struct nf_error *);

/* Publish ev (type, data borrowed) for conv on the tenant's "queue" topic,
 * the assigned agent's topic and the web-chat session's topic.  Best
 * effort: failures are logged. */
void		 nf_conv_publish(const struct nf_tenant *, struct json_object *conv,
		    const char *type, struct json_object *data);

/* The client view of a conversation / message (no tenant, id as "id"). */
struct json_object *nf_conv_view(struct json_object *conv);
struct json_object *nf_conv_message_view(struct json_object *msg);
/* nf_conv_view's fields made of conv itself, in place (listings). */
void		 nf_conv_shape(struct json_object *conv);

#endif
