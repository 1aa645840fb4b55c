/*
 * provision.c - see provision.h.  One table per kind of resource lists the
 * fields we manage: their key in taskrouter.json, Twilio's form parameter
 * and Twilio's answer attribute.  The same table checks the definition,
 * builds the form we send and compares it with what Twilio has, so the
 * three cannot drift apart.  Fields a definition leaves out are neither
 * sent nor compared (Twilio keeps its own value).
 *
 * Conversations' Filters go as repeated form fields (Filters=a&Filters=b),
 * the encoding Twilio's own helper libraries use and the API reads; Prism
 * 5.16 refuses it ("must be array") although Twilio's definition describes
 * exactly that array (see DESIGN.md and tests/integ/provision.test.mjs).
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "json.h"
#include "nonflex.h"
#include "provision.h"
#include "req.h"
#include "tenant.h"
#include "twilio_rest.h"
#include "valid.h"

#define NAME_MAX_LEN	64          /* Twilio's friendly names */
#define EXPR_MAX_LEN	4096        /* a target workers expression */
#define CONFIG_MAX_LEN	65536       /* a workflow configuration, serialized */
#define ITEMS_MAX	50          /* activities or task queues in a definition */
#define LIST_PAGES_MAX	20          /* pages of one Twilio list we read */
#define SID_LEN		34

/* Twilio's webhook routes Nonflex serves (fcgi/routes.c). */
#define ROUTE_TR_EVENTS		"/webhooks/twilio/taskrouter/events"
#define ROUTE_TR_ASSIGNMENT	"/webhooks/twilio/taskrouter/assignment"
#define ROUTE_CONVERSATIONS	"/webhooks/twilio/conversations"

enum ftype {
	T_STR = 0,      /* text, compared exactly */
	T_ENUM,         /* one of choices, compared ignoring case */
	T_BOOL,
	T_INT,          /* 1..max */
	T_JSON,         /* an object sent as JSON text, compared as JSON */
	T_SET,          /* array of distinct strings sent as repeated fields,
			 * compared as a set */
};

#define F_REQUIRED	0x1     /* must be in the definition */
#define F_CREATE_ONLY	0x2     /* Twilio cannot change it after a create */
#define F_NAME		0x4     /* the friendly name resources are matched by */

struct field {
	const char		*key;     /* in taskrouter.json; NULL: a callback */
	const char		*param;   /* Twilio's form parameter */
	const char		*attr;    /* Twilio's answer attribute */
	enum ftype		 type;
	int			 flags;
	int64_t			 max;     /* bytes (T_STR, T_SET items) or value (T_INT) */
	const char *const	*choices; /* T_ENUM, NULL-terminated */
	const char		*route;   /* key NULL: PUBLIC_URL + route */
};

static const char *const methods[] = { "GET", "POST", NULL };
static const char *const orders[] = { "FIFO", "LIFO", NULL };

#define NAME_FIELD \
	{ "friendlyName", "FriendlyName", "friendly_name", T_STR, \
	  F_REQUIRED | F_NAME, NAME_MAX_LEN, NULL, NULL }

static const struct field ws_fields[] = {
	NAME_FIELD,
	{ "multiTaskEnabled", "MultiTaskEnabled", "multi_task_enabled", T_BOOL, 0, 0,
	  NULL, NULL },
	{ NULL, "EventCallbackUrl", "event_callback_url", T_STR, 0, 0, NULL,
	  ROUTE_TR_EVENTS },
};

static const struct field act_fields[] = {
	NAME_FIELD,
	{ "available", "Available", "available", T_BOOL, F_REQUIRED | F_CREATE_ONLY, 0,
	  NULL, NULL },
};

static const struct field queue_fields[] = {
	NAME_FIELD,
	{ "targetWorkers", "TargetWorkers", "target_workers", T_STR, F_REQUIRED,
	  EXPR_MAX_LEN, NULL, NULL },
	{ "maxReservedWorkers", "MaxReservedWorkers", "max_reserved_workers", T_INT, 0, 50,
	  NULL, NULL },
	{ "taskOrder", "TaskOrder", "task_order", T_ENUM, 0, 0, orders, NULL },
};

static const struct field wf_fields[] = {
	NAME_FIELD,
	{ "configuration", "Configuration", "configuration", T_JSON, F_REQUIRED,
	  CONFIG_MAX_LEN, NULL, NULL },
	{ "taskReservationTimeout", "TaskReservationTimeout", "task_reservation_timeout",
	  T_INT, 0, 86400, NULL, NULL },
	{ NULL, "AssignmentCallbackUrl", "assignment_callback_url", T_STR, 0, 0, NULL,
	  ROUTE_TR_ASSIGNMENT },
};

static const struct field hook_fields[] = {
	{ "method", "Method", "method", T_ENUM, F_REQUIRED, 0, methods, NULL },
	{ "filters", "Filters", "filters", T_SET, F_REQUIRED, NAME_MAX_LEN, NULL, NULL },
	{ NULL, "PostWebhookUrl", "post_webhook_url", T_STR, 0, 0, NULL,
	  ROUTE_CONVERSATIONS },
};

enum kind_id { K_WORKSPACE = 0, K_ACTIVITY, K_QUEUE, K_WORKFLOW, K_WEBHOOK, K__MAX };

struct kind {
	const char		*name;        /* in progress lines and errors */
	const char		*section;     /* in taskrouter.json */
	const char		*collection;  /* path under the workspace */
	const char		*list_key;    /* array in Twilio's list answer */
	const char		*prefix;      /* SID prefix */
	const struct field	*fields;
	size_t			 nfields;
};

static const struct kind kinds[K__MAX] = {
	{ "workspace", "workspace", NULL, "workspaces", "WS", ws_fields,
	  NF_ARRAY_LEN(ws_fields) },
	{ "activity", "activities", "Activities", "activities", "WA", act_fields,
	  NF_ARRAY_LEN(act_fields) },
	{ "taskqueue", "taskQueues", "TaskQueues", "task_queues", "WQ", queue_fields,
	  NF_ARRAY_LEN(queue_fields) },
	{ "workflow", "workflow", "Workflows", "workflows", "WW", wf_fields,
	  NF_ARRAY_LEN(wf_fields) },
	{ "webhook", "conversations", NULL, NULL, "IS", hook_fields,
	  NF_ARRAY_LEN(hook_fields) },
};

/* One resource we manage. */
struct res {
	const struct kind	*kind;
	struct json_object	*def;      /* its entry in taskrouter.json (borrowed) */
	char			*name;     /* friendly name, {tenant} replaced */
	struct nf_pairs		 want;     /* the fields we manage, as form parameters */
	char			 sid[SID_LEN + 1]; /* "" while it does not exist */
	enum nf_provision_action action;
};

struct plan {
	struct nf_tw_client		*tw;
	const struct nf_tenant		*t;
	const struct nf_provision_opts	*o;
	char				*base;     /* PUBLIC_URL without trailing '/' */
	struct res			 ws;
	struct res			*acts;
	size_t				 nacts;
	struct res			*queues;
	size_t				 nqueues;
	struct res			 wf;
	struct res			 hook;
};

static const char *const action_names[NF_PROVISION__MAX] = {
	"unchanged",     /* NF_PROVISION_UNCHANGED */
	"created",       /* NF_PROVISION_CREATED */
	"updated",       /* NF_PROVISION_UPDATED */
};

static const char *const dry_action_names[NF_PROVISION__MAX] = {
	"unchanged", "would create", "would update",
};

const char *
nf_provision_action_name(enum nf_provision_action a, int dry_run)
{
	if ((unsigned)a >= NF_PROVISION__MAX)
		return "?";
	return dry_run ? dry_action_names[a] : action_names[a];
}

/* ---- PUBLIC_URL ------------------------------------------------------- */

static int
loopback_host(const char *host)
{
	struct in_addr	 a4;
	struct in6_addr	 a6;
	char		 buf[64];
	size_t		 len = strlen(host);

	if (strcasecmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (len > 2 && len < sizeof(buf) && host[0] == '[' && host[len - 1] == ']') {
		memcpy(buf, host + 1, len - 2);
		buf[len - 2] = '\0';
		return inet_pton(AF_INET6, buf, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
	}
	return 0;
}

/* 1 when the URL part is present (its text is not needed). */
static int
has_part(CURLU *u, CURLUPart part)
{
	char	*s = NULL;
	int	 yes;

	yes = curl_url_get(u, part, &s, 0) == CURLUE_OK && s != NULL && s[0] != '\0';
	curl_free(s);
	return yes;
}

static enum nf_err
url_error(struct nf_error *e, const char *what)
{
	return nf_error_set(e, NF_EINVAL, "invalid_public_url", "PUBLIC_URL",
	    "PUBLIC_URL %s: set it to the https:// address where Twilio reaches this "
	    "Nonflex, e.g. https://cc.example.com (http:// only for a loopback test host)",
	    what);
}

enum nf_err
nf_provision_public_url_check(const char *url, struct nf_error *e)
{
	CURLU		*u;
	char		*scheme = NULL, *host = NULL;
	enum nf_err	 rc;

	if (url == NULL || url[0] == '\0')
		return url_error(e, "is not set");
	if (strpbrk(url, " \t\r\n") != NULL)
		return url_error(e, "contains white space");
	if ((u = curl_url()) == NULL)
		return nf_error_set(e, NF_ENOMEM, NULL, NULL, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		rc = url_error(e, "is not an absolute URL");
	else if (has_part(u, CURLUPART_USER) || has_part(u, CURLUPART_PASSWORD) ||
	    has_part(u, CURLUPART_QUERY) || has_part(u, CURLUPART_FRAGMENT))
		rc = url_error(e, "must not carry user info, a query or a fragment");
	else if (strcasecmp(scheme, "https") == 0)
		rc = NF_OK;
	else if (strcasecmp(scheme, "http") == 0 && loopback_host(host))
		rc = NF_OK;
	else
		rc = url_error(e, "must be an https:// URL (Twilio only calls back over "
		    "TLS)");
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

/* ---- the definition --------------------------------------------------- */

/* An error in the definition: where (an entry) and field say what to fix. */
static enum nf_err
def_error(struct nf_error *e, const char *where, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum nf_err
def_error(struct nf_error *e, const char *where, const char *field, const char *fmt, ...)
{
	char	 msg[sizeof(e->message)], f[sizeof(e->field)];
	va_list	 ap;

	/* fmt's arguments and field may point into e (a json.h getter's
	 * message): copy them before e is overwritten. */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(f, sizeof(f), "%s", field != NULL ? field : "");
	return nf_error_set(e, NF_EINVAL, "invalid_taskrouter", f[0] ? f : NULL,
	    "taskrouter.json %s: %s", where, msg);
}

/* A T_SET value: an array of 1..32 distinct non-empty strings. */
static enum nf_err
check_set(struct json_object *o, const struct field *f, const char *where,
    struct nf_error *e)
{
	struct json_object	*arr = NULL, *v;
	size_t			 i, j, n;

	if (nf_json_get_value(o, f->key, json_type_array, 1, &arr, e) != NF_OK)
		return def_error(e, where, f->key, "%s must be an array of strings", f->key);
	n = json_object_array_length(arr);
	if (n < 1 || n > 32)
		return def_error(e, where, f->key, "%s must list 1 to 32 values", f->key);
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(v, json_type_string) ||
		    !nf_valid_utf8(json_object_get_string(v),
		    (size_t)json_object_get_string_len(v), 1, (size_t)f->max))
			return def_error(e, where, f->key,
			    "%s[%zu] must be a non-empty string", f->key, i);
		for (j = 0; j < i; j++)
			if (strcmp(json_object_get_string(v), json_object_get_string(
			    json_object_array_get_idx(arr, j))) == 0)
				return def_error(e, where, f->key, "%s lists %s twice",
				    f->key, json_object_get_string(v));
	}
	return NF_OK;
}

static enum nf_err
check_field(struct json_object *o, const struct field *f, const char *where,
    struct nf_error *e)
{
	struct json_object	*v = NULL;
	const char		*s;
	int64_t			 n;
	int			 b, i, req = (f->flags & F_REQUIRED) != 0;
	enum nf_err		 rc = NF_OK;

	switch (f->type) {
	case T_STR:
		rc = nf_json_get_string(o, f->key, 1, (size_t)f->max, req, &s, e);
		break;
	case T_ENUM:
		rc = nf_json_get_enum(o, f->key, f->choices, req, &i, e);
		break;
	case T_BOOL:
		rc = nf_json_get_bool(o, f->key, req, &b, e);
		break;
	case T_INT:
		rc = nf_json_get_int(o, f->key, 1, f->max, req, &n, e);
		break;
	case T_JSON:
		rc = nf_json_get_value(o, f->key, -1, req, &v, e);
		if (rc == NF_OK && v != NULL && !json_object_is_type(v, json_type_object))
			return def_error(e, where, f->key, "%s must be a JSON object", f->key);
		if (rc == NF_OK && v != NULL &&
		    strlen(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN)) >
		    (size_t)f->max)
			return def_error(e, where, f->key, "%s is too large", f->key);
		break;
	case T_SET:
		return check_set(o, f, where, e);
	}
	return rc == NF_OK ? NF_OK : def_error(e, where, f->key, "%s", e->message);
}

/* One resource's object against its kind's table. */
static enum nf_err
check_entry(struct json_object *o, const struct kind *k, const char *where,
    struct nf_error *e)
{
	const char	*allowed[8];
	size_t		 i, n = 0;
	enum nf_err	 rc;

	if (!json_object_is_type(o, json_type_object))
		return def_error(e, where, NULL, "must be an object");
	for (i = 0; i < k->nfields; i++)
		if (k->fields[i].key != NULL)
			allowed[n++] = k->fields[i].key;
	allowed[n] = NULL;
	if (nf_json_reject_unknown(o, allowed, e) != NF_OK)
		return def_error(e, where, e->field, "unknown field %s", e->field);
	for (i = 0; i < k->nfields; i++)
		if (k->fields[i].key != NULL &&
		    (rc = check_field(o, &k->fields[i], where, e)) != NF_OK)
			return rc;
	return NF_OK;
}

static const char *
friendly_name(struct json_object *o)
{
	return json_object_get_string(json_object_object_get(o, "friendlyName"));
}

/* A section that is an array of entries with distinct friendly names. */
static enum nf_err
check_list(struct json_object *def, const struct kind *k, struct nf_error *e)
{
	struct json_object	*arr;
	const char		*name;
	char			 where[96];
	size_t			 i, j, n;
	enum nf_err		 rc;

	if (nf_json_get_value(def, k->section, json_type_array, 1, &arr, e) != NF_OK)
		return def_error(e, k->section, k->section, "must be an array");
	if ((n = json_object_array_length(arr)) > ITEMS_MAX)
		return def_error(e, k->section, k->section, "more than %d entries",
		    ITEMS_MAX);
	for (i = 0; i < n; i++) {
		snprintf(where, sizeof(where), "%s[%zu]", k->section, i);
		if ((rc = check_entry(json_object_array_get_idx(arr, i), k, where, e)) != NF_OK)
			return rc;
		name = friendly_name(json_object_array_get_idx(arr, i));
		for (j = 0; j < i; j++)
			if (strcmp(name, friendly_name(json_object_array_get_idx(arr, j))) == 0)
				return def_error(e, where, "friendlyName",
				    "a second %s named \"%s\"", k->name, name);
	}
	return NF_OK;
}

static int
queue_defined(struct json_object *queues, const char *name)
{
	size_t	 i, n = json_object_array_length(queues);

	for (i = 0; i < n; i++)
		if (strcmp(friendly_name(json_object_array_get_idx(queues, i)), name) == 0)
			return 1;
	return 0;
}

/* Every "queue" of the workflow configuration names a defined queue or is a
 * task queue SID; the first one that is not, else NULL. */
static const char *
unknown_queue(struct json_object *o, struct json_object *queues)
{
	const char	*bad;
	size_t		 i, n;

	if (json_object_is_type(o, json_type_array)) {
		n = json_object_array_length(o);
		for (i = 0; i < n; i++)
			if ((bad = unknown_queue(json_object_array_get_idx(o, i), queues)) != NULL)
				return bad;
	} else if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, key, val) {
			if (strcmp(key, "queue") == 0) {
				if (!json_object_is_type(val, json_type_string))
					return "(not a string)";
				if (!queue_defined(queues, json_object_get_string(val)) &&
				    !nf_valid_twilio_sid(json_object_get_string(val), "WQ"))
					return json_object_get_string(val);
			} else if ((bad = unknown_queue(val, queues)) != NULL)
				return bad;
		}
	}
	return NULL;
}

enum nf_err
nf_provision_def_check(struct json_object *def, struct nf_error *e)
{
	static const char *const sections[] = { "description", "workspace", "activities",
	    "taskQueues", "workflow", "conversations", NULL };
	struct json_object	*o, *queues;
	const char		*bad;
	enum nf_err		 rc;
	enum kind_id		 k;
	struct nf_error		 tmp;

	if (e == NULL)
		e = &tmp;
	if (!json_object_is_type(def, json_type_object))
		return def_error(e, "", NULL, "must be a JSON object");
	if (nf_json_reject_unknown(def, sections, e) != NF_OK)
		return def_error(e, "", e->field, "unknown section %s", e->field);
	for (k = 0; k < K__MAX; k++) {
		if (k == K_ACTIVITY || k == K_QUEUE) {
			rc = check_list(def, &kinds[k], e);
		} else if (nf_json_get_value(def, kinds[k].section, json_type_object, 1, &o,
		    e) != NF_OK) {
			rc = def_error(e, kinds[k].section, kinds[k].section,
			    "must be an object");
		} else
			rc = check_entry(o, &kinds[k], kinds[k].section, e);
		if (rc != NF_OK)
			return rc;
	}
	queues = json_object_object_get(def, "taskQueues");
	o = json_object_object_get(json_object_object_get(def, "workflow"), "configuration");
	if ((bad = unknown_queue(o, queues)) != NULL)
		return def_error(e, "workflow.configuration", "queue",
		    "queue \"%s\" is not one of taskQueues", bad);
	return NF_OK;
}

/* ---- desired state ---------------------------------------------------- */

static void
pairs_add(struct nf_pairs *p, const char *name, const char *value)
{
	nf_pairs_add(p, name, strlen(name), value, strlen(value));
}

/* name with every "{tenant}" replaced by the tenant id (new string). */
static char *
subst_tenant(const char *name, const char *tenant)
{
	const char	*at;
	char		*out = nf_xstrdup(""), *next;

	while ((at = strstr(name, "{tenant}")) != NULL) {
		next = nf_xasprintf("%s%.*s%s", out, (int)(at - name), name, tenant);
		free(out);
		out = next;
		name = at + strlen("{tenant}");
	}
	next = nf_xasprintf("%s%s", out, name);
	free(out);
	return next;
}

/* The SID of our queue named name in the definition ({tenant} not yet
 * replaced, as the workflow names it), "" while it does not exist. */
static const char *
queue_sid(const struct plan *p, const char *name)
{
	size_t	 i;

	for (i = 0; i < p->nqueues; i++)
		if (strcmp(friendly_name(p->queues[i].def), name) == 0)
			return p->queues[i].sid;
	return "";
}

/* Put the SIDs of our queues in place of their names, in place.  A queue
 * not created yet keeps its name, so the comparison sees the change that
 * creating it will bring. */
static void
resolve_queues(const struct plan *p, struct json_object *o)
{
	const char	*sid;
	size_t		 i, n;

	if (json_object_is_type(o, json_type_array)) {
		n = json_object_array_length(o);
		for (i = 0; i < n; i++)
			resolve_queues(p, json_object_array_get_idx(o, i));
	} else if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, key, val) {
			if (strcmp(key, "queue") != 0) {
				resolve_queues(p, val);
				continue;
			}
			sid = queue_sid(p, json_object_get_string(val));
			/* Replacing the value of an existing key keeps the entry,
			 * so the iteration is not disturbed. */
			if (sid[0] != '\0')
				nf_json_add_str(o, key, sid);
		}
	}
}

/* The workflow configuration to send: the definition's, queues resolved. */
static char *
config_text(const struct plan *p, struct json_object *conf)
{
	struct json_object	*copy = NULL;
	char			*s;

	if (json_object_deep_copy(conf, &copy, NULL) != 0)
		abort();        /* only fails on allocation */
	resolve_queues(p, copy);
	s = nf_xstrdup(json_object_to_json_string_ext(copy,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(copy);
	return s;
}

/* Add the form value(s) of one field to r->want (nothing when the
 * definition leaves the field out). */
static void
want_field(const struct plan *p, struct res *r, const struct field *f)
{
	struct json_object	*v;
	char			*s = NULL;
	size_t			 i;

	if (f->key == NULL) {
		s = nf_xasprintf("%s%s", p->base, f->route);
	} else if (f->flags & F_NAME) {
		s = nf_xstrdup(r->name);
	} else if (!json_object_object_get_ex(r->def, f->key, &v) ||
	    json_object_is_type(v, json_type_null)) {
		return;
	} else if (f->type == T_SET) {
		for (i = 0; i < json_object_array_length(v); i++)
			pairs_add(&r->want, f->param,
			    json_object_get_string(json_object_array_get_idx(v, i)));
		return;
	} else if (f->type == T_JSON) {
		s = config_text(p, v);
	} else if (f->type == T_BOOL) {
		s = nf_xstrdup(json_object_get_boolean(v) ? "true" : "false");
	} else
		s = nf_xstrdup(json_object_get_string(v));   /* string, enum, int */
	pairs_add(&r->want, f->param, s);
	free(s);
}

static void
want_build(const struct plan *p, struct res *r)
{
	size_t	 i;

	nf_pairs_cleanup(&r->want);
	for (i = 0; i < r->kind->nfields; i++)
		want_field(p, r, &r->kind->fields[i]);
}

static void
res_init(struct res *r, enum kind_id k, struct json_object *def, const char *tenant)
{
	memset(r, 0, sizeof(*r));
	r->kind = &kinds[k];
	r->def = def;
	r->name = k == K_WEBHOOK ? nf_xstrdup("conversations") :
	    subst_tenant(friendly_name(def), tenant);
}

static void
res_cleanup(struct res *r)
{
	free(r->name);
	nf_pairs_cleanup(&r->want);
}

static struct res *
res_list(struct json_object *arr, enum kind_id k, const char *tenant, size_t *n)
{
	struct res	*v;
	size_t		 i;

	*n = json_object_array_length(arr);
	v = nf_xcalloc(*n + 1, sizeof(*v));
	for (i = 0; i < *n; i++)
		res_init(&v[i], k, json_object_array_get_idx(arr, i), tenant);
	return v;
}

static void
plan_init(struct plan *p, struct nf_tw_client *tw, const struct nf_tenant *t,
    struct json_object *def, const struct nf_provision_opts *o)
{
	size_t	 len;

	memset(p, 0, sizeof(*p));
	p->tw = tw;
	p->t = t;
	p->o = o;
	p->base = nf_xstrdup(o->public_url);
	for (len = strlen(p->base); len > 0 && p->base[len - 1] == '/'; len--)
		p->base[len - 1] = '\0';
	res_init(&p->ws, K_WORKSPACE, json_object_object_get(def, "workspace"), t->id);
	p->acts = res_list(json_object_object_get(def, "activities"), K_ACTIVITY, t->id,
	    &p->nacts);
	p->queues = res_list(json_object_object_get(def, "taskQueues"), K_QUEUE, t->id,
	    &p->nqueues);
	res_init(&p->wf, K_WORKFLOW, json_object_object_get(def, "workflow"), t->id);
	res_init(&p->hook, K_WEBHOOK, json_object_object_get(def, "conversations"), t->id);
	snprintf(p->hook.sid, sizeof(p->hook.sid), "%s",
	    t->twilio.conversations_service_sid);
}

static void
plan_cleanup(struct plan *p)
{
	size_t	 i;

	res_cleanup(&p->ws);
	for (i = 0; i < p->nacts; i++)
		res_cleanup(&p->acts[i]);
	free(p->acts);
	for (i = 0; i < p->nqueues; i++)
		res_cleanup(&p->queues[i]);
	free(p->queues);
	res_cleanup(&p->wf);
	res_cleanup(&p->hook);
	free(p->base);
}

/* ---- comparing with Twilio -------------------------------------------- */

static int
json_text_equal(struct json_object *have, const char *want)
{
	struct json_object	*a = NULL, *b = NULL;
	struct nf_error		 e;
	int			 eq = 0;

	if (have != NULL && json_object_is_type(have, json_type_string))
		(void)nf_json_parse(json_object_get_string(have),
		    (size_t)json_object_get_string_len(have), &a, &e);
	else if (have != NULL)
		a = json_object_get(have);      /* a second reference, put below */
	if (a != NULL && nf_json_parse(want, strlen(want), &b, &e) == NF_OK)
		eq = json_object_equal(a, b);
	json_object_put(a);
	json_object_put(b);
	return eq;
}

/* want's values of param, as a set, equal the strings of array have. */
static int
set_equal(struct json_object *have, const struct nf_pairs *want, const char *param)
{
	size_t	 i, j, n = 0, len;
	int	 found;

	if (!json_object_is_type(have, json_type_array))
		return 0;
	len = json_object_array_length(have);
	for (i = 0; i < want->n; i++) {
		if (strcmp(want->v[i].name, param) != 0)
			continue;
		n++;
		for (found = 0, j = 0; j < len && !found; j++)
			found = strcmp(json_object_get_string(json_object_array_get_idx(have,
			    j)), want->v[i].value) == 0;
		if (!found)
			return 0;
	}
	return n == len;
}

/* Whether Twilio's resource already holds what want says for field f. */
static int
field_equal(const struct field *f, const struct nf_pairs *want, struct json_object *res)
{
	struct json_object	*v = NULL;
	const char		*w;

	if ((w = nf_pairs_get(want, f->param)) == NULL)
		return 1;               /* not managed: the definition leaves it out */
	json_object_object_get_ex(res, f->attr, &v);
	switch (f->type) {
	case T_STR:
		return json_object_is_type(v, json_type_string) &&
		    strcmp(json_object_get_string(v), w) == 0;
	case T_ENUM:
		return json_object_is_type(v, json_type_string) &&
		    strcasecmp(json_object_get_string(v), w) == 0;
	case T_BOOL:
		return json_object_is_type(v, json_type_boolean) &&
		    strcmp(json_object_get_boolean(v) ? "true" : "false", w) == 0;
	case T_INT:
		return json_object_is_type(v, json_type_int) &&
		    json_object_get_int64(v) == strtoll(w, NULL, 10);
	case T_JSON:
		return json_text_equal(v, w);
	case T_SET:
		return set_equal(v, want, f->param);
	}
	return 0;
}

/* Decide what to do with r given Twilio's copy of it (NULL: none). */
static enum nf_err
decide(struct res *r, struct json_object *have, struct nf_error *e)
{
	const struct field	*f;
	const char		*sid;
	size_t			 i;

	if (have == NULL) {
		r->action = NF_PROVISION_CREATED;
		return NF_OK;
	}
	if (r->kind != &kinds[K_WEBHOOK]) {
		sid = json_object_get_string(json_object_object_get(have, "sid"));
		if (!nf_valid_twilio_sid(sid, r->kind->prefix))
			return nf_error_set(e, NF_EUPSTREAM, "twilio_bad_response", NULL,
			    "Twilio's %s \"%s\" has no valid SID", r->kind->name, r->name);
		snprintf(r->sid, sizeof(r->sid), "%s", sid);
	}
	r->action = NF_PROVISION_UNCHANGED;
	for (i = 0; i < r->kind->nfields; i++) {
		f = &r->kind->fields[i];
		if (field_equal(f, &r->want, have))
			continue;
		if (f->flags & F_CREATE_ONLY)
			return nf_error_set(e, NF_ECONFLICT, "twilio_conflict", f->key,
			    "%s \"%s\" (%s) exists with another %s, which Twilio cannot "
			    "change: rename or delete it in the Twilio console",
			    r->kind->name, r->name, r->sid, f->key);
		r->action = NF_PROVISION_UPDATED;
	}
	return NF_OK;
}

/* The one item of the list items named like r, or NULL. */
static enum nf_err
find_named(struct json_object *items, const struct res *r, const char *where,
    struct json_object **have, struct nf_error *e)
{
	struct json_object	*it;
	const char		*name;
	size_t			 i, n = json_object_array_length(items);

	*have = NULL;
	for (i = 0; i < n; i++) {
		it = json_object_array_get_idx(items, i);
		name = json_object_get_string(json_object_object_get(it, "friendly_name"));
		if (name == NULL || strcmp(r->name, name) != 0)
			continue;
		if (*have != NULL)
			return nf_error_set(e, NF_ECONFLICT, "twilio_conflict", NULL,
			    "two %ss named \"%s\" in %s: remove one in the Twilio console%s",
			    r->kind->name, r->name, where, r->kind == &kinds[K_WORKSPACE] ?
			    " or set the tenant's twilio.workspaceSid" : "");
		*have = it;
	}
	return NF_OK;
}

/* ---- talking to Twilio ------------------------------------------------ */

/* Put what step failed in front of the REST client's message. */
static enum nf_err
step_error(struct nf_error *e, enum nf_err rc, const char *doing, const struct res *r)
{
	char	 code[sizeof(e->code)], msg[sizeof(e->message)];

	snprintf(code, sizeof(code), "%s", e->code);
	snprintf(msg, sizeof(msg), "%s", e->message);
	return nf_error_set(e, rc, code, NULL, "%s %s \"%s\": %s", doing, r->kind->name,
	    r->name, msg);
}

static enum nf_tw_product
product(const struct res *r)
{
	return r->kind == &kinds[K_WEBHOOK] ? NF_TW_CONVERSATIONS : NF_TW_TASKROUTER;
}

/* Twilio's path of r's collection (with_sid 0) or of r itself. */
static char *
res_path(const struct plan *p, const struct res *r, int with_sid)
{
	if (r->kind == &kinds[K_WEBHOOK])
		return nf_xasprintf("/v1/Services/%s/Configuration/Webhooks", r->sid);
	if (r->kind == &kinds[K_WORKSPACE])
		return with_sid ? nf_xasprintf("/v1/Workspaces/%s", r->sid) :
		    nf_xstrdup("/v1/Workspaces");
	return with_sid ? nf_xasprintf("/v1/Workspaces/%s/%s/%s", p->ws.sid,
	    r->kind->collection, r->sid) : nf_xasprintf("/v1/Workspaces/%s/%s",
	    p->ws.sid, r->kind->collection);
}

/* GET one resource; NF_OK with *have NULL when Twilio does not know it. */
static enum nf_err
fetch(const struct plan *p, const struct res *r, struct json_object **have,
    struct nf_error *e)
{
	struct nf_tw_result	 out;
	char			*path = res_path(p, r, 1);
	enum nf_err		 rc;

	*have = NULL;
	rc = nf_tw_request(p->tw, p->t, product(r), "GET", path, NULL, NULL,
	    NF_TW_IDEMPOTENT, &out, e);
	if (rc == NF_OK && json_object_is_type(out.body, json_type_object))
		*have = json_object_get(out.body);      /* outlives out */
	else if (rc == NF_OK)
		rc = nf_error_set(e, NF_EUPSTREAM, "twilio_bad_response", NULL,
		    "Twilio answered no object");
	nf_tw_result_cleanup(&out);
	free(path);
	if (rc == NF_ENOTFOUND && r->kind != &kinds[K_WEBHOOK])
		return NF_OK;
	return rc == NF_OK ? NF_OK : step_error(e, rc, "reading", r);
}

/* The workspace: the tenant's workspaceSid when Twilio knows it, else the
 * one with our friendly name. */
static enum nf_err
plan_workspace(struct plan *p, struct nf_error *e)
{
	struct json_object	*have = NULL, *items = NULL, *found;
	enum nf_err		 rc;

	want_build(p, &p->ws);
	if (nf_valid_twilio_sid(p->t->twilio.workspace_sid, "WS")) {
		snprintf(p->ws.sid, sizeof(p->ws.sid), "%s", p->t->twilio.workspace_sid);
		if ((rc = fetch(p, &p->ws, &have, e)) != NF_OK)
			return rc;
		p->ws.sid[0] = '\0';
	}
	if (have != NULL) {
		rc = decide(&p->ws, have, e);
		json_object_put(have);
		return rc;
	}
	if ((rc = nf_tw_list(p->tw, p->t, NF_TW_TASKROUTER, "/v1/Workspaces", "workspaces",
	    LIST_PAGES_MAX, &items, e)) != NF_OK)
		return step_error(e, rc, "listing", &p->ws);
	if ((rc = find_named(items, &p->ws, "this account", &found, e)) == NF_OK)
		rc = decide(&p->ws, found, e);
	json_object_put(items);
	return rc;
}

/* Activities, task queues or the workflow: one list, matched by name. */
static enum nf_err
plan_children(struct plan *p, struct res *v, size_t n, struct nf_error *e)
{
	struct json_object	*items = NULL, *found;
	char			*path, where[64];
	enum nf_err		 rc = NF_OK;
	size_t			 i;

	for (i = 0; i < n; i++)
		want_build(p, &v[i]);
	if (p->ws.sid[0] == '\0') {     /* a dry run creating the workspace */
		for (i = 0; i < n; i++)
			v[i].action = NF_PROVISION_CREATED;
		return NF_OK;
	}
	path = res_path(p, &v[0], 0);
	rc = nf_tw_list(p->tw, p->t, NF_TW_TASKROUTER, path, v[0].kind->list_key,
	    LIST_PAGES_MAX, &items, e);
	free(path);
	if (rc != NF_OK)
		return step_error(e, rc, "listing", &v[0]);
	snprintf(where, sizeof(where), "workspace %s", p->ws.sid);
	for (i = 0; i < n && rc == NF_OK; i++)
		if ((rc = find_named(items, &v[i], where, &found, e)) == NF_OK)
			rc = decide(&v[i], found, e);
	json_object_put(items);
	return rc;
}

static enum nf_err
plan_webhook(struct plan *p, struct nf_error *e)
{
	struct json_object	*have = NULL;
	enum nf_err		 rc;

	want_build(p, &p->hook);
	if ((rc = fetch(p, &p->hook, &have, e)) != NF_OK)
		return rc;
	rc = decide(&p->hook, have, e);
	/* The configuration always exists: at worst it differs. */
	if (rc == NF_OK && p->hook.action == NF_PROVISION_CREATED)
		p->hook.action = NF_PROVISION_UPDATED;
	json_object_put(have);
	return rc;
}

/* Create or update r at Twilio (the action is not UNCHANGED). */
static enum nf_err
write_res(struct plan *p, struct res *r, struct nf_error *e)
{
	struct nf_tw_result	 out;
	struct nf_pairs		 form;
	const struct field	*f;
	const char		*sid;
	char			*path;
	int			 create = r->action == NF_PROVISION_CREATED;
	size_t			 i, j;
	enum nf_err		 rc;

	memset(&form, 0, sizeof(form));
	for (i = 0; i < r->want.n; i++) {
		for (f = NULL, j = 0; j < r->kind->nfields && f == NULL; j++)
			if (strcmp(r->kind->fields[j].param, r->want.v[i].name) == 0)
				f = &r->kind->fields[j];
		if (create || f == NULL || !(f->flags & F_CREATE_ONLY))
			pairs_add(&form, r->want.v[i].name, r->want.v[i].value);
	}
	path = res_path(p, r, !create);
	rc = nf_tw_request(p->tw, p->t, product(r), "POST", path, &form, NULL,
	    create ? NF_TW_CREATE : NF_TW_IDEMPOTENT, &out, e);
	if (rc != NF_OK) {
		rc = step_error(e, rc, create ? "creating" : "updating", r);
	} else if (create) {
		sid = json_object_get_string(json_object_object_get(out.body, "sid"));
		if (nf_valid_twilio_sid(sid, r->kind->prefix))
			snprintf(r->sid, sizeof(r->sid), "%s", sid);
		else
			rc = nf_error_set(e, NF_EUPSTREAM, "twilio_bad_response", NULL,
			    "creating %s \"%s\": Twilio's answer has no valid SID",
			    r->kind->name, r->name);
	}
	nf_tw_result_cleanup(&out);
	nf_pairs_cleanup(&form);
	free(path);
	return rc;
}

static enum nf_err
apply(struct plan *p, struct res *r, struct nf_provision_sids *out, struct nf_error *e)
{
	enum nf_err	 rc;

	if (r->action != NF_PROVISION_UNCHANGED) {
		out->changes++;
		if (!p->o->dry_run && (rc = write_res(p, r, e)) != NF_OK)
			return rc;
	}
	if (p->o->report != NULL)
		p->o->report(r->kind->name, r->name, r->sid, r->action, p->o->arg);
	return NF_OK;
}

/* The workspace's activities, task queues and workflow. */
static enum nf_err
plan_workspace_children(struct plan *p, struct nf_error *e)
{
	enum nf_err	 rc;

	if ((p->nacts > 0 && (rc = plan_children(p, p->acts, p->nacts, e)) != NF_OK) ||
	    (p->nqueues > 0 && (rc = plan_children(p, p->queues, p->nqueues, e)) != NF_OK))
		return rc;
	return plan_children(p, &p->wf, 1, e);
}

/* Every read before the first write.  Only a workspace that does not exist
 * yet leaves its children to be planned after it is created, because
 * Twilio creates default activities with it (Available, Offline, ...),
 * which must be matched, not created twice. */
static enum nf_err
plan_all(struct plan *p, struct nf_error *e)
{
	enum nf_err	 rc;

	if ((rc = plan_workspace(p, e)) != NF_OK || (rc = plan_webhook(p, e)) != NF_OK)
		return rc;
	return p->ws.sid[0] != '\0' ? plan_workspace_children(p, e) : NF_OK;
}

static enum nf_err
apply_all(struct plan *p, struct nf_provision_sids *out, struct nf_error *e)
{
	enum nf_err	 rc;
	size_t		 i;

	if ((rc = apply(p, &p->ws, out, e)) != NF_OK)
		return rc;
	if (p->ws.action == NF_PROVISION_CREATED &&
	    (rc = plan_workspace_children(p, e)) != NF_OK)
		return rc;
	for (i = 0; i < p->nacts; i++)
		if ((rc = apply(p, &p->acts[i], out, e)) != NF_OK)
			return rc;
	for (i = 0; i < p->nqueues; i++)
		if ((rc = apply(p, &p->queues[i], out, e)) != NF_OK)
			return rc;
	/* Queues created above now have SIDs for the configuration. */
	if (p->wf.action != NF_PROVISION_UNCHANGED)
		want_build(p, &p->wf);
	if ((rc = apply(p, &p->wf, out, e)) != NF_OK)
		return rc;
	return apply(p, &p->hook, out, e);
}

enum nf_err
nf_provision_run(struct nf_tw_client *tw, const struct nf_tenant *t,
    struct json_object *def, const struct nf_provision_opts *o,
    struct nf_provision_sids *out, struct nf_error *e)
{
	struct plan	 p;
	struct nf_error	 tmp;
	enum nf_err	 rc;

	if (e == NULL)
		e = &tmp;
	memset(out, 0, sizeof(*out));
	if ((rc = nf_provision_public_url_check(o->public_url, e)) != NF_OK ||
	    (rc = nf_provision_def_check(def, e)) != NF_OK)
		return rc;
	if (!nf_valid_twilio_sid(t->twilio.conversations_service_sid, "IS"))
		return nf_error_set(e, NF_EINVAL, "missing_setting",
		    "twilio.conversationsServiceSid", "tenant %s has no twilio."
		    "conversationsServiceSid (IS...): create a Conversations service in "
		    "the Twilio console and set its SID in the tenants file", t->id);
	plan_init(&p, tw, t, def, o);
	if ((rc = plan_all(&p, e)) == NF_OK)
		rc = apply_all(&p, out, e);
	snprintf(out->workspace, sizeof(out->workspace), "%s", p.ws.sid);
	snprintf(out->workflow, sizeof(out->workflow), "%s", p.wf.sid);
	plan_cleanup(&p);
	return rc;
}
