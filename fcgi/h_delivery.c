/*
 * h_delivery.c - the inbox's retry action for an outbound message whose
 * delivery failed (delivery.h): the message goes back to "queued" and a
 * new "conv.deliver" job is submitted.
 *
 * DESIGN: the change failed -> queued is one conditional find-and-modify,
 * so two agents pressing retry queue one job, not two.  The message keeps
 * its attempts count: the job then asks Twilio first whether an earlier
 * attempt reached it, so a retry never sends the customer a duplicate.
 * When the job cannot be queued at all (neither Redis nor the store's
 * outbox took it) the message is put back to failed and the caller gets
 * the error, so the inbox never shows "queued" for a message nobody will
 * send.  This file stays off the Twilio client (libcurl): it runs in the
 * FastCGI workers.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <string.h>

#include <json-c/json.h>

#include "app.h"
#include "audit.h"
#include "conversations.h"
#include "handlers.h"
#include "jobs.h"
#include "json.h"
#include "log.h"
#include "nonflex.h"
#include "req.h"
#include "store.h"
#include "tenant.h"
#include "valid.h"

/*
 * Move message msg_id of conversation conv_id from delivery state from to
 * to (deliveryError set to error, NULL clears it); *out the new document.
 * NF_ENOTFOUND when no such message is in that state.
 */
static enum nf_err
move(struct nf_store *st, const char *tenant, const char *conv_id, const char *msg_id,
    const char *from, const char *to, const char *error, struct json_object **out,
    struct nf_error *e)
{
	struct json_object	*f, *u, *set;
	char			 at[25];
	enum nf_err		 rc;

	f = nf_json_pair("_id", msg_id);
	nf_json_add_str(f, "conversationId", conv_id);
	nf_json_add_str(f, "direction", "outbound");
	nf_json_add_str(f, "delivery", from);
	nf_iso8601(nf_now_ms(), at);
	set = json_object_new_object();
	nf_json_add_str(set, "delivery", to);
	nf_json_add_str(set, "deliveryError", error);
	nf_json_add_str(set, "updatedAt", at);
	u = json_object_new_object();
	nf_json_add(u, "$set", set);
	rc = nf_store_find_and_modify(st, tenant, "messages", f, NULL, u, NF_STORE_NEW, out, e);
	json_object_put(u);
	json_object_put(f);
	return rc;
}

/* Why a message could not be moved: 404 when it is not this
 * conversation's, 409 when it is not failed. */
static enum nf_err
not_movable(struct nf_store *st, const char *tenant, const char *conv_id, const char *msg_id,
    struct nf_error *e)
{
	struct json_object	*f, *doc = NULL;
	enum nf_err		 rc;

	f = nf_json_pair("_id", msg_id);
	nf_json_add_str(f, "conversationId", conv_id);
	rc = nf_store_find_one(st, tenant, "messages", f, NULL, &doc, e);
	json_object_put(f);
	json_object_put(doc);
	if (rc == NF_ENOTFOUND)
		return nf_error_set(e, NF_ENOTFOUND, "message_not_found", NULL, "no such message");
	if (rc != NF_OK)
		return rc;
	return nf_error_set(e, NF_ECONFLICT, "invalid_state", NULL,
	    "only a failed outbound message can be retried");
}

static void
announce(struct nf_req *r, struct json_object *conv, struct json_object *msg)
{
	struct json_object	*d = json_object_new_object();

	nf_json_add_str(d, "conversationId", nf_json_field_str(msg, "conversationId"));
	nf_json_add(d, "message", nf_conv_message_view(msg));
	nf_conv_publish(r->tenant, conv, "message.updated", d);
	json_object_put(d);
	d = json_object_new_object();
	nf_json_add_str(d, "conversationId", nf_json_field_str(msg, "conversationId"));
	nf_json_add_str(d, "messageId", nf_json_field_str(msg, "_id"));
	nf_audit(r, "message.retry", NULL, d);
}

/*
 * POST /api/conversations/:id/messages/:messageId/retry (staff): 202
 * {message} with delivery "queued" and a new delivery job; 404
 * conversation_not_found / message_not_found (also for another tenant's
 * ids); 409 invalid_state when the message is not a failed outbound one,
 * conversation_closed when the conversation is closed; 503 when the job
 * could not be queued (the message stays failed).
 */
enum nf_err
h_delivery_retry(struct nf_req *r, struct nf_error *e)
{
	const char		*conv_id = nf_req_path_param(r, "id");
	const char		*msg_id = nf_req_path_param(r, "messageId");
	const char		*status;
	struct json_object	*conv = NULL, *msg = NULL, *back = NULL;
	struct nf_store		*st;
	enum nf_err		 rc;

	if (msg_id == NULL || !nf_valid_hex24(msg_id))
		return nf_error_set(e, NF_ENOTFOUND, "message_not_found", NULL, "no such message");
	if ((rc = nf_conv_get(r->app, r->tenant, conv_id, &conv, e)) != NF_OK ||
	    (rc = nf_conv_store(r->app, &st, e)) != NF_OK)
		goto out;
	status = nf_json_field_str(conv, "status");
	if (status != NULL && strcmp(status, "closed") == 0) {
		rc = nf_error_set(e, NF_ECONFLICT, "conversation_closed", NULL,
		    "the conversation is closed");
		goto out;
	}
	if ((rc = move(st, r->tenant->id, conv_id, msg_id, "failed", "queued", NULL, &msg,
	    e)) != NF_OK) {
		if (rc == NF_ENOTFOUND)
			rc = not_movable(st, r->tenant->id, conv_id, msg_id, e);
		goto out;
	}
	if ((rc = nf_conv_submit(r->app, r->tenant, "conv.deliver", conv_id, msg_id, 0, e)) !=
	    NF_OK) {
		struct nf_error	e2;

		if (move(st, r->tenant->id, conv_id, msg_id, "queued", "failed",
		    "could not be queued for delivery", &back, &e2) != NF_OK)
			nf_error("retry of message %s: not queued and not put back: %s", msg_id,
			    e2.message);
		goto out;
	}
	announce(r, conv, msg);
	back = json_object_new_object();
	nf_json_add(back, "message", nf_conv_message_view(msg));
	nf_resp_json(r, 202, back);
	back = NULL;
out:
	json_object_put(back);
	json_object_put(msg);
	json_object_put(conv);
	return rc;
}
