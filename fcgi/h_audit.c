/*
 * h_audit.c - the admin's view of the audit log (audit.c writes it):
 * a cursor-paginated listing, newest first, and an NDJSON export with the
 * same filters.
 *
 * Filters come from the query string and are validated into a filter
 * built here (event, actor, since, until); since/until are normalized to
 * audit.c's fixed-width ISO-8601 form so that comparing the strings
 * compares the times.  The export is bounded (AUDIT_EXPORT_MAX records,
 * read a page at a time) so one request cannot hold a worker or its
 * memory for long; X-Audit-Truncated says when the bound cut it short.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "app.h"
#include "handlers.h"
#include "json.h"
#include "listing.h"
#include "nonflex.h"
#include "req.h"
#include "store.h"
#include "tenant.h"
#include "valid.h"

#define AUDIT		   "audit"
#define AUDIT_LIST_DEFAULT 50
#define AUDIT_LIST_MAX	   200
#define AUDIT_EXPORT_PAGE  500
#define AUDIT_EXPORT_MAX   10000

/*
 * Parse "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SSZ" or "YYYY-MM-DDTHH:MM:SS.mmmZ"
 * into audit.c's form in out.  0 when s is none of these or out of range.
 */
static int
parse_time(const char *s, char out[25])
{
	struct tm	 tm;
	int		 y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, n = 0;
	size_t		 len = strlen(s);
	time_t		 t;

	if (len == 10) {
		if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
			return 0;
	} else if (len == 20) {
		if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &sec,
		    &n) != 6 || n != 20)
			return 0;
	} else if (len == 24) {
		if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &y, &mo, &d, &h, &mi,
		    &sec, &ms, &n) != 7 || n != 24)
			return 0;
	} else
		return 0;
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
	    h > 23 || mi > 59 || sec > 59 || ms < 0 || h < 0 || mi < 0 || sec < 0)
		return 0;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	if ((t = timegm(&tm)) == (time_t)-1 || tm.tm_mday != d)
		return 0;       /* also refuses Feb 30 (normalized away) */
	nf_iso8601((int64_t)t * 1000 + ms, out);
	return 1;
}

static enum nf_err
time_bound(struct nf_req *r, const char *name, const char *op, struct json_object *at,
    struct nf_error *e)
{
	const char	*s = nf_pairs_get(&r->query, name);
	char		 buf[25];

	if (s == NULL)
		return NF_OK;
	if (!parse_time(s, buf))
		return nf_error_set(e, NF_EINVAL, "invalid_query", name,
		    "%s must be an ISO-8601 UTC date or time", name);
	nf_json_add_str(at, op, buf);
	return NF_OK;
}

/* Build the store filter from ?event=&actor=&since=&until=. */
static enum nf_err
audit_filter(struct nf_req *r, struct json_object **out, struct nf_error *e)
{
	const char		*event = nf_pairs_get(&r->query, "event");
	const char		*actor = nf_pairs_get(&r->query, "actor");
	struct json_object	*f, *at;
	enum nf_err		 rc;

	*out = NULL;
	if (event != NULL && !nf_valid_charset(event, 64, "._-"))
		return nf_error_set(e, NF_EINVAL, "invalid_query", "event",
		    "event must be 1 to 64 of a-z 0-9 . _ -");
	if (actor != NULL && !nf_valid_utf8(actor, strlen(actor), 1, 128))
		return nf_error_set(e, NF_EINVAL, "invalid_query", "actor",
		    "actor must be 1 to 128 bytes");
	f = json_object_new_object();
	at = json_object_new_object();
	if ((rc = time_bound(r, "since", "$gte", at, e)) != NF_OK ||
	    (rc = time_bound(r, "until", "$lt", at, e)) != NF_OK) {
		json_object_put(at);
		json_object_put(f);
		return rc;
	}
	if (event != NULL)
		nf_json_add_str(f, "event", event);
	if (actor != NULL)
		nf_json_add_str(f, "actor", actor);
	if (json_object_object_length(at) > 0)
		nf_json_add(f, "at", at);
	else
		json_object_put(at);
	*out = f;
	return NF_OK;
}

/* One record as the client sees it: _id as id, no tenant. */
static struct json_object *
audit_view(struct json_object *doc)
{
	struct json_object	*out = json_object_new_object();

	json_object_object_foreach(doc, k, v) {
		if (strcmp(k, "tenant") == 0)
			continue;
		/* Second reference: doc and out share the value. */
		nf_json_add(out, strcmp(k, "_id") == 0 ? "id" : k, json_object_get(v));
	}
	return out;
}

/*
 * GET /api/audit?event=&actor=&since=&until=&cursor=&limit= (admin):
 * 200 {entries: [...], next: cursor|null}, newest first; 400 naming the
 * bad parameter (a foreign or tampered cursor is 400 invalid_cursor).
 */
enum nf_err
h_audit_list(struct nf_req *r, struct nf_error *e)
{
	static const struct nf_listing	 listing = { AUDIT, "at", -1,
	    AUDIT_LIST_DEFAULT, AUDIT_LIST_MAX, "entries", audit_view, NULL };
	struct json_object		*f = NULL;
	struct nf_store			*st;
	enum nf_err			 rc;

	if ((rc = audit_filter(r, &f, e)) == NF_OK &&
	    (rc = nf_app_store(r->app, &st, e)) == NF_OK)
		rc = nf_listing_respond(r, st, f, &listing, e);
	json_object_put(f);
	return rc;
}

/* Append one page's records as NDJSON lines to buf; returns the count. */
static size_t
append_lines(struct json_object *page, char **buf, size_t *len, size_t *cap)
{
	struct json_object	*v;
	const char		*s;
	size_t			 i, n, sl;

	n = json_object_array_length(page);
	for (i = 0; i < n; i++) {
		v = audit_view(json_object_array_get_idx(page, i));
		s = nf_json_str(v, &sl);
		if (*len + sl + 2 > *cap) {
			*cap = (*len + sl + 2) * 2;
			*buf = nf_xrealloc(*buf, *cap);
		}
		memcpy(*buf + *len, s, sl);
		(*buf)[*len + sl] = '\n';
		*len += sl + 1;
		json_object_put(v);
	}
	return n;
}

/*
 * GET /api/audit/export?event=&actor=&since=&until= (admin): 200
 * application/x-ndjson, one record per line, newest first, at most
 * AUDIT_EXPORT_MAX records (X-Audit-Truncated: 1 when more matched).
 */
enum nf_err
h_audit_export(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*f = NULL, *page = NULL;
	struct nf_store		*st;
	char			*buf = NULL, *cursor = NULL, *next = NULL;
	size_t			 len = 0, cap = 0, total = 0;
	enum nf_err		 rc;

	if ((rc = audit_filter(r, &f, e)) != NF_OK ||
	    (rc = nf_app_store(r->app, &st, e)) != NF_OK)
		goto out;
	do {
		free(cursor);
		cursor = next;
		next = NULL;
		json_object_put(page);
		page = NULL;
		if ((rc = nf_store_page(st, r->tenant->id, AUDIT, f, "at", -1,
		    AUDIT_EXPORT_PAGE, cursor, &page, &next, e)) != NF_OK)
			goto out;
		total += append_lines(page, &buf, &len, &cap);
	} while (next != NULL && total < AUDIT_EXPORT_MAX);
	if (next != NULL)
		nf_resp_header(r, "X-Audit-Truncated", "1");
	nf_resp_header(r, "Content-Disposition", "attachment; filename=\"audit.ndjson\"");
	nf_resp_text(r, 200, "application/x-ndjson; charset=utf-8", buf ? buf : "", len);
out:
	free(buf);
	free(cursor);
	free(next);
	json_object_put(page);
	json_object_put(f);
	return rc;
}
