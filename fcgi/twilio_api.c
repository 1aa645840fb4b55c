/*
 * twilio_api.c - the typed Twilio operations (see twilio_api.h): check
 * every argument and tenant SID, build the path and form, call
 * nf_tw_request / nf_tw_list with the operation's retry class.
 *
 * DESIGN: checks come first and fail before anything is built, so a
 * refused call costs no allocation and no request.  SIDs are validated
 * with nf_valid_twilio_sid (prefix + 32 hex), which also guarantees they
 * need no escaping in a path.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "json.h"
#include "nonflex.h"
#include "req.h"
#include "tenant.h"
#include "twilio_api.h"
#include "twilio_rest.h"
#include "valid.h"

#define AUTHOR_MAX	256
#define REASON_MAX	1024
#define URL_MAX		2048
#define TIMEOUT_MAX_S	1209600         /* Twilio: two weeks */
#define PRIORITY_MAX	2147483647
#define LIST_PAGE_SIZE	100

/* ---- checks ---------------------------------------------------------- */

static enum nf_err
check_sid(const char *sid, const char *prefix, const char *field, struct nf_error *err)
{
	if (nf_valid_twilio_sid(sid, prefix))
		return NF_OK;
	return nf_error_set(err, NF_EINVAL, "invalid_sid", field,
	    "%s must be a Twilio SID: %s followed by 32 hex digits", field, prefix);
}

/* The tenant's SID named setting ("workspaceSid"), present and well formed. */
static enum nf_err
tenant_sid(const struct nf_tenant *t, const char *sid, const char *prefix,
    const char *setting, struct nf_error *err)
{
	char	 field[64];

	snprintf(field, sizeof(field), "twilio.%s", setting);
	if (t == NULL || sid == NULL)
		return nf_error_set(err, NF_EINVAL, "twilio_not_configured", field,
		    "tenant %s has no %s", t != NULL ? t->id : "?", field);
	if (!nf_valid_twilio_sid(sid, prefix))
		return nf_error_set(err, NF_EINVAL, "twilio_not_configured", field,
		    "tenant %s: %s is not a Twilio %s SID", t->id, field, prefix);
	return NF_OK;
}

static enum nf_err
bad_field(struct nf_error *err, const char *field, const char *what)
{
	return nf_error_set(err, NF_EINVAL, "invalid_field", field, "%s %s", field, what);
}

static int
utf8_ok(const char *s, size_t min, size_t max)
{
	return s != NULL && nf_valid_utf8(s, strlen(s), min, max);
}

/* Characters (code points) of valid UTF-8 s. */
static size_t
utf8_chars(const char *s)
{
	size_t	 n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* An absolute http(s) URL with a host, no spaces or control bytes. */
static int
url_ok(const char *url)
{
	CURLU	*u;
	char	*host = NULL;
	int	 ok;
	size_t	 i, n;

	if (url == NULL || (n = strlen(url)) == 0 || n > URL_MAX ||
	    (strncasecmp(url, "https://", 8) != 0 && strncasecmp(url, "http://", 7) != 0))
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
			return 0;
	if ((u = curl_url()) == NULL)
		abort();
	ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && *host != '\0';
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

static void
add(struct nf_pairs *f, const char *name, const char *value)
{
	nf_pairs_add(f, name, strlen(name), value, strlen(value));
}

/* Serialized JSON object attrs (borrowed from attrs), or NULL. */
static const char *
attributes_text(struct json_object *attrs)
{
	if (!json_object_is_type(attrs, json_type_object))
		return NULL;
	return nf_json_str(attrs, NULL);
}

/* POST form to path with the retry class, then free the form. */
static enum nf_err
post(struct nf_tw_client *c, const struct nf_tenant *t, enum nf_tw_product p,
    const char *path, struct nf_pairs *form, enum nf_tw_retry retry,
    struct nf_tw_result *out, struct nf_error *err)
{
	enum nf_err	 rc;

	rc = nf_tw_request(c, t, p, "POST", path, form, NULL, retry, out, err);
	nf_pairs_cleanup(form);
	return rc;
}

/* ---- Conversations --------------------------------------------------- */

/* The tenant's service and the conversation, both checked. */
static enum nf_err
conversation_sids(const struct nf_tenant *t, const char *conversation_sid,
    struct nf_error *err)
{
	enum nf_err	 rc;

	if ((rc = check_sid(conversation_sid, "CH", "conversation_sid", err)) != NF_OK)
		return rc;
	return tenant_sid(t, t != NULL ? t->twilio.conversations_service_sid : NULL, "IS",
	    "conversationsServiceSid", err);
}

enum nf_err
nf_twapi_message_create(struct nf_tw_client *c, const struct nf_tenant *t,
    const char *conversation_sid, const char *author, const char *body,
    const char *message_id, struct nf_tw_result *out, struct nf_error *err)
{
	struct json_object	*attrs;
	struct nf_pairs		 form = { 0 };
	char			 path[160];
	enum nf_err		 rc;

	memset(out, 0, sizeof(*out));
	if ((rc = conversation_sids(t, conversation_sid, err)) != NF_OK)
		return rc;
	if (!utf8_ok(author, 1, AUTHOR_MAX))
		return bad_field(err, "author", "must be 1 to 256 bytes of UTF-8");
	if (!utf8_ok(body, 1, 4 * NF_TWAPI_BODY_MAX_CHARS) ||
	    utf8_chars(body) > NF_TWAPI_BODY_MAX_CHARS)
		return bad_field(err, "body", "must be 1 to 1600 characters of UTF-8");
	if (!nf_valid_request_id(message_id))
		return bad_field(err, "message_id", "must be 1 to 128 of [A-Za-z0-9._:-]");
	snprintf(path, sizeof(path), "/v1/Services/%s/Conversations/%s/Messages",
	    t->twilio.conversations_service_sid, conversation_sid);
	attrs = json_object_new_object();
	nf_json_add_str(attrs, NF_TWAPI_MESSAGE_ID_ATTR, message_id);
	add(&form, "Author", author);
	add(&form, "Body", body);
	add(&form, "Attributes", nf_json_str(attrs, NULL));
	json_object_put(attrs);
	return post(c, t, NF_TW_CONVERSATIONS, path, &form, NF_TW_CREATE, out, err);
}

enum nf_err
nf_twapi_messages_list(struct nf_tw_client *c, const struct nf_tenant *t,
    const char *conversation_sid, int page_size, int max_pages,
    struct json_object **items, struct nf_error *err)
{
	char		 path[200];
	enum nf_err	 rc;

	*items = NULL;
	if ((rc = conversation_sids(t, conversation_sid, err)) != NF_OK)
		return rc;
	if (page_size < 1 || page_size > 100)
		return bad_field(err, "page_size", "must be 1 to 100");
	if (max_pages < 1)
		return bad_field(err, "max_pages", "must be at least 1");
	snprintf(path, sizeof(path),
	    "/v1/Services/%s/Conversations/%s/Messages?Order=desc&PageSize=%d",
	    t->twilio.conversations_service_sid, conversation_sid, page_size);
	return nf_tw_list(c, t, NF_TW_CONVERSATIONS, path, "messages", max_pages, items, err);
}

/* 1 when message's attributes (a JSON string) carry our id. */
static int
has_message_id(struct json_object *msg, const char *message_id)
{
	struct json_object	*a, *attrs = NULL, *v;
	const char		*s;
	int			 yes = 0;

	if (!json_object_object_get_ex(msg, "attributes", &a) ||
	    !json_object_is_type(a, json_type_string))
		return 0;
	s = json_object_get_string(a);
	if (nf_json_parse(s, strlen(s), &attrs, NULL) == NF_OK &&
	    json_object_object_get_ex(attrs, NF_TWAPI_MESSAGE_ID_ATTR, &v) &&
	    json_object_is_type(v, json_type_string))
		yes = strcmp(json_object_get_string(v), message_id) == 0;
	json_object_put(attrs);
	return yes;
}

/* ms since epoch of a message's date_created ("2015-12-16T22:18:37Z",
 * fractions allowed), or -1 when absent or unreadable. */
static int64_t
created_ms(struct json_object *msg)
{
	const char	*s = nf_json_field_str(msg, "date_created"), *end;
	struct tm	 tm;
	time_t		 t;

	if (s == NULL)
		return -1;
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*end == '.')
		for (end++; *end >= '0' && *end <= '9'; end++)
			continue;
	if (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0)
		return -1;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	return (int64_t)t * 1000;
}

/* One page of a find: *found when our id is on it, *older when a message
 * on it predates the bound (the walk need not go further). */
static void
scan_page(struct json_object *page, const char *message_id, int64_t not_before_ms,
    struct json_object **found, int *older)
{
	struct json_object	*arr, *m;
	size_t			 i, n;
	int64_t			 at;

	if (!json_object_object_get_ex(page, "messages", &arr))
		return;
	n = json_object_array_length(arr);
	for (i = 0; i < n && *found == NULL; i++) {
		m = json_object_array_get_idx(arr, i);
		if (has_message_id(m, message_id))
			*found = json_object_get(m);    /* outlives the page */
		else if ((at = created_ms(m)) >= 0 && at < not_before_ms)
			*older = 1;
	}
}

/*
 * The next page's path (relative to base, new string) into *next, NULL at
 * the end: meta.next_page_url must stay on base (SSRF) and must not be a
 * page already read (a loop).
 */
static enum nf_err
next_page(const char *base, struct json_object *page, char **seen, int nseen, char **next,
    struct nf_error *err)
{
	struct json_object	*meta, *v;
	char			*url;
	size_t			 blen = strlen(base);
	int			 i;

	*next = NULL;
	if (!json_object_object_get_ex(page, "meta", &meta) ||
	    !json_object_object_get_ex(meta, "next_page_url", &v) ||
	    !json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
		return NF_OK;
	url = nf_tw_page_url(base, json_object_get_string(v));
	if (url == NULL || strncmp(url, base, blen) != 0 || url[blen] != '/') {
		free(url);
		return nf_error_set(err, NF_EUPSTREAM, "twilio_bad_page_link", NULL,
		    "Twilio's next-page link leaves the configured base URL");
	}
	*next = nf_xstrdup(url + blen);
	free(url);
	for (i = 0; i < nseen; i++)
		if (strcmp(seen[i], *next) == 0) {
			free(*next);
			*next = NULL;
			return nf_error_set(err, NF_EUPSTREAM, "twilio_page_loop", NULL,
			    "Twilio's next-page link repeats page %d", i + 1);
		}
	return NF_OK;
}

/* Keep what a caller may report of a page request, without its body. */
static void
keep_outcome(struct nf_tw_result *out, struct nf_tw_result *res)
{
	if (out == NULL)
		return;
	nf_tw_result_cleanup(out);
	*out = *res;
	out->body = NULL;
}

enum nf_err
nf_twapi_message_find_since(struct nf_tw_client *c, const struct nf_tenant *t,
    const char *conversation_sid, const char *message_id, int64_t not_before_ms,
    int max_pages, struct json_object **found, struct nf_tw_result *out,
    struct nf_error *err)
{
	struct nf_tw_result	 res;
	const char		*base = nf_tw_base_url(c, NF_TW_CONVERSATIONS);
	char			**seen = NULL, *path = NULL;
	int			 nseen = 0, older = 0, i;
	enum nf_err		 rc;

	*found = NULL;
	memset(&res, 0, sizeof(res));
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if ((rc = conversation_sids(t, conversation_sid, err)) != NF_OK)
		return rc;
	if (!nf_valid_request_id(message_id))
		return bad_field(err, "message_id", "must be 1 to 128 of [A-Za-z0-9._:-]");
	if (max_pages < 1)
		return bad_field(err, "max_pages", "must be at least 1");
	path = nf_xasprintf("/v1/Services/%s/Conversations/%s/Messages?Order=desc&PageSize=%d",
	    t->twilio.conversations_service_sid, conversation_sid, LIST_PAGE_SIZE);
	seen = nf_xcalloc((size_t)max_pages, sizeof(*seen));
	for (;;) {
		if (nseen == max_pages) {
			rc = nf_error_set(err, NF_EUPSTREAM, "twilio_find_incomplete", NULL,
			    "message %s: not among the newest %d pages of the conversation",
			    message_id, max_pages);
			break;
		}
		rc = nf_tw_request(c, t, NF_TW_CONVERSATIONS, "GET", path, NULL, NULL,
		    NF_TW_IDEMPOTENT, &res, err);
		seen[nseen++] = path;
		path = NULL;
		if (rc == NF_OK && !json_object_is_type(res.body, json_type_object))
			rc = nf_error_set(err, NF_EUPSTREAM, "twilio_bad_response", NULL,
			    "a Twilio list page is not a JSON object");
		if (rc != NF_OK)
			break;
		scan_page(res.body, message_id, not_before_ms, found, &older);
		if (*found != NULL || older ||
		    (rc = next_page(base, res.body, seen, nseen, &path, err)) != NF_OK ||
		    path == NULL)
			break;
		nf_tw_result_cleanup(&res);
	}
	keep_outcome(out, &res);
	nf_tw_result_cleanup(&res);
	for (i = 0; i < nseen; i++)
		free(seen[i]);
	free(seen);
	free(path);
	return rc;
}

enum nf_err
nf_twapi_message_find(struct nf_tw_client *c, const struct nf_tenant *t,
    const char *conversation_sid, const char *message_id, int max_pages,
    struct json_object **found, struct nf_error *err)
{
	return nf_twapi_message_find_since(c, t, conversation_sid, message_id, INT64_MIN,
	    max_pages, found, NULL, err);
}

enum nf_err
nf_twapi_conversation_fetch(struct nf_tw_client *c, const struct nf_tenant *t,
    const char *conversation_sid, struct nf_tw_result *out, struct nf_error *err)
{
	char		 path[160];
	enum nf_err	 rc;

	memset(out, 0, sizeof(*out));
	if ((rc = conversation_sids(t, conversation_sid, err)) != NF_OK)
		return rc;
	snprintf(path, sizeof(path), "/v1/Services/%s/Conversations/%s",
	    t->twilio.conversations_service_sid, conversation_sid);
	return nf_tw_request(c, t, NF_TW_CONVERSATIONS, "GET", path, NULL, NULL,
	    NF_TW_IDEMPOTENT, out, err);
}

enum nf_err
nf_twapi_conversation_set_attributes(struct nf_tw_client *c, const struct nf_tenant *t,
    const char *conversation_sid, struct json_object *attributes,
    struct nf_tw_result *out, struct nf_error *err)
{
	struct nf_pairs	 form = { 0 };
	const char	*text;
	char		 path[160];
	enum nf_err	 rc;

	memset(out, 0, sizeof(*out));
	if ((rc = conversation_sids(t, conversation_sid, err)) != NF_OK)
		return rc;
	if ((text = attributes_text(attributes)) == NULL)
		return bad_field(err, "attributes", "must be a JSON object");
	snprintf(path, sizeof(path), "/v1/Services/%s/Conversations/%s",
	    t->twilio.conversations_service_sid, conversation_sid);
	add(&form, "Attributes", text);
	return post(c, t, NF_TW_CONVERSATIONS, path, &form, NF_TW_IDEMPOTENT, out, err);
}

/* ---- TaskRouter ------------------------------------------------------ */

static enum nf_err
workspace(const struct nf_tenant *t, struct nf_error *err)
{
	return tenant_sid(t, t != NULL ? t->twilio.workspace_sid : NULL, "WS", "workspaceSid",
	    err);
}

/* The arguments of a task create, checked; *workflow gets the SID to send. */
static enum nf_err
task_check(const struct nf_tenant *t, const struct nf_twapi_task *task,
    const char **workflow, struct nf_error *err)
{
	enum nf_err	 rc;
	const char	*ch = task->task_channel;

	if ((rc = workspace(t, err)) != NF_OK)
		return rc;
	if (task->workflow_sid != NULL) {
		if ((rc = check_sid(task->workflow_sid, "WW", "workflow_sid", err)) != NF_OK)
			return rc;
		*workflow = task->workflow_sid;
	} else {
		if ((rc = tenant_sid(t, t->twilio.workflow_sid, "WW", "workflowSid", err)) != NF_OK)
			return rc;
		*workflow = t->twilio.workflow_sid;
	}
	if (attributes_text(task->attributes) == NULL)
		return bad_field(err, "attributes", "must be a JSON object");
	if (task->priority > PRIORITY_MAX)
		return bad_field(err, "priority", "must be 0 to 2147483647");
	if (ch != NULL && !nf_valid_twilio_sid(ch, "TC") && !nf_valid_charset(ch, 64, "_-"))
		return bad_field(err, "task_channel", "must be a TaskChannel unique name or SID");
	if (task->timeout_s < 0 || task->timeout_s > TIMEOUT_MAX_S)
		return bad_field(err, "timeout_s", "must be 1 to 1209600 seconds");
	return NF_OK;
}

enum nf_err
nf_twapi_task_create(struct nf_tw_client *c, const struct nf_tenant *t,
    const struct nf_twapi_task *task, struct nf_tw_result *out, struct nf_error *err)
{
	struct nf_pairs	 form = { 0 };
	const char	*workflow = NULL;
	char		 path[80], num[24];
	enum nf_err	 rc;

	memset(out, 0, sizeof(*out));
	if ((rc = task_check(t, task, &workflow, err)) != NF_OK)
		return rc;
	snprintf(path, sizeof(path), "/v1/Workspaces/%s/Tasks", t->twilio.workspace_sid);
	add(&form, "WorkflowSid", workflow);
	add(&form, "Attributes", attributes_text(task->attributes));
	if (task->priority >= 0) {
		snprintf(num, sizeof(num), "%lld", (long long)task->priority);
		add(&form, "Priority", num);
	}
	if (task->task_channel != NULL)
		add(&form, "TaskChannel", task->task_channel);
	if (task->timeout_s > 0) {
		snprintf(num, sizeof(num), "%lld", (long long)task->timeout_s);
		add(&form, "Timeout", num);
	}
	return post(c, t, NF_TW_TASKROUTER, path, &form, NF_TW_CREATE, out, err);
}

enum nf_err
nf_twapi_task_update(struct nf_tw_client *c, const struct nf_tenant *t,
    const char *task_sid, const char *status, const char *reason,
    struct nf_tw_result *out, struct nf_error *err)
{
	static const char *const statuses[] = { "completed", "canceled", "wrapping", NULL };
	struct nf_pairs	 form = { 0 };
	char		 path[120];
	enum nf_err	 rc;
	int		 st;

	memset(out, 0, sizeof(*out));
	if ((rc = workspace(t, err)) != NF_OK ||
	    (rc = check_sid(task_sid, "WT", "task_sid", err)) != NF_OK)
		return rc;
	if ((st = nf_valid_enum(status, statuses)) < 0)
		return bad_field(err, "status", "must be completed, canceled or wrapping");
	if (st != 2 && !utf8_ok(reason, 1, REASON_MAX))
		return bad_field(err, "reason", "must be 1 to 1024 bytes of UTF-8");
	snprintf(path, sizeof(path), "/v1/Workspaces/%s/Tasks/%s", t->twilio.workspace_sid,
	    task_sid);
	add(&form, "AssignmentStatus", status);
	if (st != 2)
		add(&form, "Reason", reason);
	return post(c, t, NF_TW_TASKROUTER, path, &form, NF_TW_IDEMPOTENT, out, err);
}

enum nf_err
nf_twapi_reservation_update(struct nf_tw_client *c, const struct nf_tenant *t,
    const char *task_sid, const char *reservation_sid, const char *status,
    struct nf_tw_result *out, struct nf_error *err)
{
	static const char *const statuses[] = { "accepted", "rejected", NULL };
	struct nf_pairs	 form = { 0 };
	char		 path[160];
	enum nf_err	 rc;

	memset(out, 0, sizeof(*out));
	if ((rc = workspace(t, err)) != NF_OK ||
	    (rc = check_sid(task_sid, "WT", "task_sid", err)) != NF_OK ||
	    (rc = check_sid(reservation_sid, "WR", "reservation_sid", err)) != NF_OK)
		return rc;
	if (nf_valid_enum(status, statuses) < 0)
		return bad_field(err, "status", "must be accepted or rejected");
	snprintf(path, sizeof(path), "/v1/Workspaces/%s/Tasks/%s/Reservations/%s",
	    t->twilio.workspace_sid, task_sid, reservation_sid);
	add(&form, "ReservationStatus", status);
	return post(c, t, NF_TW_TASKROUTER, path, &form, NF_TW_IDEMPOTENT, out, err);
}

enum nf_err
nf_twapi_worker_set_activity(struct nf_tw_client *c, const struct nf_tenant *t,
    const char *worker_sid, const char *activity_sid, struct nf_tw_result *out,
    struct nf_error *err)
{
	struct nf_pairs	 form = { 0 };
	char		 path[120];
	enum nf_err	 rc;

	memset(out, 0, sizeof(*out));
	if ((rc = workspace(t, err)) != NF_OK ||
	    (rc = check_sid(worker_sid, "WK", "worker_sid", err)) != NF_OK ||
	    (rc = check_sid(activity_sid, "WA", "activity_sid", err)) != NF_OK)
		return rc;
	snprintf(path, sizeof(path), "/v1/Workspaces/%s/Workers/%s", t->twilio.workspace_sid,
	    worker_sid);
	add(&form, "ActivitySid", activity_sid);
	return post(c, t, NF_TW_TASKROUTER, path, &form, NF_TW_IDEMPOTENT, out, err);
}

enum nf_err
nf_twapi_workers_list(struct nf_tw_client *c, const struct nf_tenant *t, int max_pages,
    struct json_object **items, struct nf_error *err)
{
	char		 path[100];
	enum nf_err	 rc;

	*items = NULL;
	if ((rc = workspace(t, err)) != NF_OK)
		return rc;
	if (max_pages < 1)
		return bad_field(err, "max_pages", "must be at least 1");
	snprintf(path, sizeof(path), "/v1/Workspaces/%s/Workers?PageSize=%d",
	    t->twilio.workspace_sid, LIST_PAGE_SIZE);
	return nf_tw_list(c, t, NF_TW_TASKROUTER, path, "workers", max_pages, items, err);
}

/* ---- Api 2010 -------------------------------------------------------- */

static enum nf_err
account(const struct nf_tenant *t, struct nf_error *err)
{
	return tenant_sid(t, t != NULL ? t->twilio.account_sid : NULL, "AC", "accountSid", err);
}

enum nf_err
nf_twapi_account_fetch(struct nf_tw_client *c, const struct nf_tenant *t,
    struct nf_tw_result *out, struct nf_error *err)
{
	char		 path[80];
	enum nf_err	 rc;

	memset(out, 0, sizeof(*out));
	if ((rc = account(t, err)) != NF_OK)
		return rc;
	snprintf(path, sizeof(path), "/2010-04-01/Accounts/%s.json", t->twilio.account_sid);
	rc = nf_tw_request(c, t, NF_TW_API, "GET", path, NULL, NULL, NF_TW_IDEMPOTENT, out,
	    err);
	if (out->body != NULL)
		json_object_object_del(out->body, "auth_token");
	return rc;
}

enum nf_err
nf_twapi_call_redirect(struct nf_tw_client *c, const struct nf_tenant *t,
    const char *call_sid, const char *url, const char *method,
    struct nf_tw_result *out, struct nf_error *err)
{
	static const char *const methods[] = { "GET", "POST", NULL };
	struct nf_pairs	 form = { 0 };
	char		 path[120];
	enum nf_err	 rc;

	memset(out, 0, sizeof(*out));
	if ((rc = account(t, err)) != NF_OK ||
	    (rc = check_sid(call_sid, "CA", "call_sid", err)) != NF_OK)
		return rc;
	if (!url_ok(url))
		return bad_field(err, "url", "must be an absolute http(s) URL of at most 2048 bytes");
	if (method == NULL)
		method = "POST";
	if (nf_valid_enum(method, methods) < 0)
		return bad_field(err, "method", "must be GET or POST");
	snprintf(path, sizeof(path), "/2010-04-01/Accounts/%s/Calls/%s.json",
	    t->twilio.account_sid, call_sid);
	add(&form, "Url", url);
	add(&form, "Method", method);
	return post(c, t, NF_TW_API, path, &form, NF_TW_IDEMPOTENT, out, err);
}
