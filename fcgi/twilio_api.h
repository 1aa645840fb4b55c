/*
 * twilio_api.h - the Twilio operations Nonflex uses, one typed function
 * each, over nf_tw_request / nf_tw_list (twilio_rest.h).
 *
 * DESIGN: each wrapper knows its product, path, parameters and retry
 * class, so callers (jobs, nonflexctl) never build a Twilio URL.  Every
 * SID - the caller's and the tenant's - is checked against Twilio's
 * pattern (two letters + 32 hex) before anything is sent, so a malformed
 * or hostile value never reaches a URL.  Tenant SIDs come from the
 * tenants file (conversationsServiceSid, workspaceSid, workflowSid,
 * accountSid).  Form parameters are exactly the ones listed below, in that
 * order, and no wrapper sets X-Twilio-Webhook-Enabled: what Nonflex sends
 * through REST must not come back to it as a webhook (RELIABILITY 2, loop
 * prevention).
 *
 * Errors: NF_EINVAL "invalid_sid" (field: the argument) for a malformed
 * SID; NF_EINVAL "twilio_not_configured" (field: "twilio.<setting>") when
 * the tenant lacks a SID the call needs; NF_EINVAL "invalid_field" (field:
 * the argument) for other bad arguments; in all three cases nothing is
 * sent and out->attempts is 0.  Otherwise the errors of nf_tw_request.
 * Every out is filled as nf_tw_request fills it (clean it up with
 * nf_tw_result_cleanup).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_TWILIO_API_H
#define NF_TWILIO_API_H

#include <stdint.h>

#include "nonflex.h"
#include "twilio_rest.h"

struct json_object;
struct nf_tenant;

/* The attribute of a Conversations message that carries our message id,
 * so a message whose create was ambiguous can be found again. */
#define NF_TWAPI_MESSAGE_ID_ATTR	"nonflex_message_id"
/* Conversations: at most 1,600 characters in a message body. */
#define NF_TWAPI_BODY_MAX_CHARS		1600

/* ---- Conversations (the tenant's conversationsServiceSid) ----------- */

/*
 * POST /v1/Services/{IS}/Conversations/{CH}/Messages with Author, Body and
 * Attributes = {"nonflex_message_id": message_id}.  NF_TW_CREATE: a
 * 5xx/timeout sets out->ambiguous; reconcile with nf_twapi_message_find.
 * author: 1..256 bytes of UTF-8; body: UTF-8, 1..1600 characters;
 * message_id: our id ([A-Za-z0-9._:-]{1,128}).  out->body is the message.
 */
enum nf_err	 nf_twapi_message_create(struct nf_tw_client *, const struct nf_tenant *,
		    const char *conversation_sid, const char *author, const char *body,
		    const char *message_id, struct nf_tw_result *out, struct nf_error *);

/*
 * GET /v1/Services/{IS}/Conversations/{CH}/Messages?Order=desc&PageSize=N
 * and the following pages (newest first), at most max_pages pages of
 * page_size (1..100) messages.  *items: a new array the caller puts.
 */
enum nf_err	 nf_twapi_messages_list(struct nf_tw_client *, const struct nf_tenant *,
		    const char *conversation_sid, int page_size, int max_pages,
		    struct json_object **items, struct nf_error *);

/*
 * Reconciliation after an ambiguous create (RELIABILITY battery 25): walk
 * the conversation's messages newest first (Order=desc, pages of 100,
 * following meta.next_page_url) and stop at the first of
 *  - a message whose Attributes carry NF_TWAPI_MESSAGE_ID_ATTR =
 *    message_id: NF_OK, *found a new reference (caller puts it);
 *  - a page holding a message created (date_created) before
 *    not_before_ms, ms since epoch: the caller passes the time of its first
 *    attempt minus a margin for clock skew, so everything older cannot be
 *    ours: NF_OK, *found NULL (Twilio does not have it);
 *  - the end of the list: NF_OK, *found NULL.
 * Long conversations are fine: only the pages newer than the bound are
 * read.  max_pages (>= 1) caps the walk; reaching it before the bound is
 * NF_EUPSTREAM "twilio_find_incomplete" (the outcome stays unknown, which
 * is never reported as "not found").  A next-page link seen before is
 * NF_EUPSTREAM "twilio_page_loop", one leaving the base URL
 * "twilio_bad_page_link" (SSRF).  Other errors: as nf_tw_request.  out
 * (may be NULL) receives the last page request's status, attempts, Twilio
 * code and message (body NULL), e.g. 401 / 20003 for bad credentials.
 */
enum nf_err	 nf_twapi_message_find_since(struct nf_tw_client *, const struct nf_tenant *,
		    const char *conversation_sid, const char *message_id, int64_t not_before_ms,
		    int max_pages, struct json_object **found, struct nf_tw_result *out,
		    struct nf_error *);

/*
 * nf_twapi_message_find_since without a time bound: the whole list, at
 * most max_pages pages of 100 (more: NF_EUPSTREAM
 * "twilio_find_incomplete").  NF_OK with *found a new reference (caller
 * puts it), or NULL when no message has our id.
 */
enum nf_err	 nf_twapi_message_find(struct nf_tw_client *, const struct nf_tenant *,
		    const char *conversation_sid, const char *message_id, int max_pages,
		    struct json_object **found, struct nf_error *);

/* GET /v1/Services/{IS}/Conversations/{CH}; out->body is the conversation. */
enum nf_err	 nf_twapi_conversation_fetch(struct nf_tw_client *, const struct nf_tenant *,
		    const char *conversation_sid, struct nf_tw_result *out, struct nf_error *);

/*
 * POST /v1/Services/{IS}/Conversations/{CH} with Attributes = attributes
 * serialized (a JSON object, borrowed; replaces the conversation's
 * attributes).  NF_TW_IDEMPOTENT.
 */
enum nf_err	 nf_twapi_conversation_set_attributes(struct nf_tw_client *,
		    const struct nf_tenant *, const char *conversation_sid,
		    struct json_object *attributes, struct nf_tw_result *out, struct nf_error *);

/* ---- TaskRouter (the tenant's workspaceSid) ------------------------- */

/* A new task.  Unset members keep Twilio's default and are not sent. */
struct nf_twapi_task {
	struct json_object	*attributes;    /* JSON object, required (borrowed) */
	const char		*workflow_sid;  /* WW...; NULL: the tenant's workflowSid */
	int64_t			 priority;      /* 0..2147483647; < 0: not sent */
	const char		*task_channel;  /* unique name or TC...; NULL: not sent */
	int64_t			 timeout_s;     /* 1..1209600; 0: not sent */
};

/*
 * POST /v1/Workspaces/{WS}/Tasks with WorkflowSid, Attributes, then
 * Priority, TaskChannel, Timeout when set.  NF_TW_CREATE.  out->body is
 * the task (its "sid" is WT...).
 */
enum nf_err	 nf_twapi_task_create(struct nf_tw_client *, const struct nf_tenant *,
		    const struct nf_twapi_task *, struct nf_tw_result *out, struct nf_error *);

/*
 * POST /v1/Workspaces/{WS}/Tasks/{WT} with AssignmentStatus = status
 * ("completed" | "canceled" | "wrapping") and Reason (required for
 * completed and canceled, 1..1024 bytes; not sent for wrapping).
 * NF_TW_IDEMPOTENT.
 */
enum nf_err	 nf_twapi_task_update(struct nf_tw_client *, const struct nf_tenant *,
		    const char *task_sid, const char *status, const char *reason,
		    struct nf_tw_result *out, struct nf_error *);

/*
 * POST /v1/Workspaces/{WS}/Tasks/{WT}/Reservations/{WR} with
 * ReservationStatus = status ("accepted" | "rejected").  NF_TW_IDEMPOTENT.
 */
enum nf_err	 nf_twapi_reservation_update(struct nf_tw_client *, const struct nf_tenant *,
		    const char *task_sid, const char *reservation_sid, const char *status,
		    struct nf_tw_result *out, struct nf_error *);

/* POST /v1/Workspaces/{WS}/Workers/{WK} with ActivitySid = WA...
 * NF_TW_IDEMPOTENT. */
enum nf_err	 nf_twapi_worker_set_activity(struct nf_tw_client *, const struct nf_tenant *,
		    const char *worker_sid, const char *activity_sid,
		    struct nf_tw_result *out, struct nf_error *);

/* GET /v1/Workspaces/{WS}/Workers?PageSize=100 and the following pages (at
 * most max_pages).  *items: a new array the caller puts. */
enum nf_err	 nf_twapi_workers_list(struct nf_tw_client *, const struct nf_tenant *,
		    int max_pages, struct json_object **items, struct nf_error *);

/* ---- Voice / Api 2010 (the tenant's accountSid) ---------------------- */

/*
 * GET /2010-04-01/Accounts/{AC}.json: the credential check.  NF_OK proves
 * the tenant's credentials work for its account.  The answer's
 * "auth_token" member is removed from out->body, so the account's secret
 * never travels further.
 */
enum nf_err	 nf_twapi_account_fetch(struct nf_tw_client *, const struct nf_tenant *,
		    struct nf_tw_result *out, struct nf_error *);

/*
 * POST /2010-04-01/Accounts/{AC}/Calls/{CA}.json with Url (absolute
 * http(s) URL, at most 2048 bytes) and Method ("GET" | "POST"; NULL:
 * "POST"): the live call fetches new TwiML from url.  NF_TW_IDEMPOTENT.
 */
enum nf_err	 nf_twapi_call_redirect(struct nf_tw_client *, const struct nf_tenant *,
		    const char *call_sid, const char *url, const char *method,
		    struct nf_tw_result *out, struct nf_error *);

#endif
