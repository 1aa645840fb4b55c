/*
 * router.c - route matching and the request pipeline (see router.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "app.h"
#include "audit.h"
#include "auth.h"
#include "cors.h"
#include "json.h"
#include "log.h"
#include "nonflex.h"
#include "req.h"
#include "router.h"
#include "tenant.h"
#include "twilio_sig.h"

struct segs {
	const char	*s[NF_ROUTE_MAX_SEGS];
	size_t		 len[NF_ROUTE_MAX_SEGS];
	size_t		 n;
};

/* Split "/a/b" into segments; 0 when the path breaks the policy. */
static int
split(const char *path, struct segs *sg)
{
	const char	*p, *slash;
	size_t		 len;

	sg->n = 0;
	if (path == NULL || path[0] != '/' || strlen(path) > NF_PATH_MAX)
		return 0;
	for (p = path + 1;; p = slash + 1) {
		slash = strchr(p, '/');
		len = slash ? (size_t)(slash - p) : strlen(p);
		if (len == 0 || sg->n == NF_ROUTE_MAX_SEGS ||
		    (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		sg->s[sg->n] = p;
		sg->len[sg->n++] = len;
		if (slash == NULL)
			return 1;
	}
}

/* Does route rt's pattern match the path segments?  When params is not
 * NULL the decoded :params are appended to it. */
static int
path_matches(const struct nf_route *rt, const struct segs *path, struct nf_pairs *params)
{
	struct segs	 pat;
	char		*val;
	size_t		 i, vlen;

	if (!split(rt->pattern, &pat) || pat.n != path->n)
		return 0;
	for (i = 0; i < pat.n; i++) {
		if (pat.s[i][0] != ':') {
			if (pat.len[i] != path->len[i] ||
			    memcmp(pat.s[i], path->s[i], pat.len[i]) != 0)
				return 0;
			continue;
		}
		if (!nf_url_decode(path->s[i], path->len[i], 0, &val, &vlen))
			return 0;
		if (vlen == 0 || params == NULL) {
			free(val);
			if (vlen == 0)
				return 0;
			continue;
		}
		nf_pairs_add(params, pat.s[i] + 1, pat.len[i] - 1, val, vlen);
		free(val);
	}
	return 1;
}

static void
allow_list(unsigned mask, char *allow, size_t allowsz)
{
	size_t	 o = 0;
	int	 m;

	if (allow == NULL || allowsz == 0)
		return;
	allow[0] = '\0';
	if (mask & (1u << NF_GET))
		mask |= 1u << NF_HEAD;
	mask |= 1u << NF_OPTIONS;
	for (m = 0; m < NF_METHOD__MAX; m++) {
		if (!(mask & (1u << m)))
			continue;
		o += (size_t)snprintf(allow + o, o < allowsz ? allowsz - o : 0, "%s%s",
		    o ? ", " : "", nf_method_name((enum nf_method)m));
		if (o >= allowsz)
			break;
	}
}

enum nf_match
nf_router_match(const struct nf_route *routes, size_t n, int dev, enum nf_method m,
    const char *path, const struct nf_route **out, struct nf_pairs *params, char *allow,
    size_t allowsz)
{
	struct segs		 sg;
	const struct nf_route	*hit = NULL;
	unsigned		 mask = 0;
	size_t			 i;

	*out = NULL;
	if (allow != NULL && allowsz > 0)
		allow[0] = '\0';
	if (!split(path, &sg))
		return NF_MATCH_NOPATH;
	for (i = 0; i < n; i++) {
		if ((routes[i].flags & NF_ROUTE_DEV) && !dev)
			continue;
		if (!path_matches(&routes[i], &sg, NULL))
			continue;
		mask |= 1u << routes[i].method;
		if (hit == NULL && (routes[i].method == m ||
		    (m == NF_HEAD && routes[i].method == NF_GET)))
			hit = &routes[i];
	}
	if (mask == 0)
		return NF_MATCH_NOPATH;
	allow_list(mask, allow, allowsz);
	if (hit == NULL)
		return NF_MATCH_METHOD;
	if (params != NULL)
		path_matches(hit, &sg, params);
	*out = hit;
	return NF_MATCH_OK;
}

/* ---- pipeline -------------------------------------------------------- */

static enum nf_err	resolve_tenant(struct nf_req *, struct nf_error *);

/*
 * CORS (cors.h): the staff API admits CLIENT_URL's origins with
 * credentials (the SPA's cookie).  The widget's public routes also admit
 * the tenant's webchat.allowedOrigins, never with credentials: it sends a
 * bearer token.  Their tenant is resolved here already because a preflight
 * carries no X-Tenant-Id: Host or DEFAULT_TENANT decide, as they will for
 * the request that follows (a failure just means no CORS headers; the
 * pipeline reports it later).
 */
static int
cors(struct nf_req *r)
{
	const char	*origin = nf_req_header(r, "Origin");
	struct nf_error	 ignored;
	int		 embed = nf_cors_embed_path(r->path);

	if (embed && r->tenant == NULL && resolve_tenant(r, &ignored) != NF_OK)
		r->tenant = NULL;
	if (!nf_cors_allowed(r, embed, origin))
		return 0;
	nf_resp_header(r, "Access-Control-Allow-Origin", origin);
	if (!embed)
		nf_resp_header(r, "Access-Control-Allow-Credentials", "true");
	nf_resp_header(r, "Vary", "Origin");
	return 1;
}

static void
preflight(struct nf_req *r, const char *allow, int allowed_origin)
{
	nf_resp_header(r, "Allow", allow);
	if (allowed_origin) {
		nf_resp_header(r, "Access-Control-Allow-Methods", allow);
		nf_resp_header(r, "Access-Control-Allow-Headers",
		    "Authorization, Content-Type, X-Request-Id, X-Tenant-Id");
		nf_resp_header(r, "Access-Control-Max-Age", "600");
	}
	nf_resp_empty(r, 204);
}

static enum nf_err
resolve_tenant(struct nf_req *r, struct nf_error *e)
{
	struct nf_tenant_hints	 h;
	enum nf_err		 rc;

	memset(&h, 0, sizeof(h));
	h.host = nf_req_param(r, "HTTP_HOST");
	h.header = nf_req_header(r, "X-Tenant-Id");
	h.path = r->path;
	h.account_sid = nf_pairs_get(&r->form, "AccountSid");
	if (h.account_sid == NULL)
		h.account_sid = nf_pairs_get(&r->query, "AccountSid");
	h.default_tenant = r->app->cfg.default_tenant;
	if ((rc = nf_tenant_resolve(r->app->tenants, &h, &r->tenant, e)) != NF_OK)
		return rc;
	nf_log_context(r->request_id, r->tenant->id);
	return NF_OK;
}

/*
 * The one place where access is decided: a route with roles needs a valid
 * session (auth.c: token, tenant, CSRF, revocation, agent still enabled)
 * and one of the route's roles as the store has them now.
 */
static enum nf_err
authorize(struct nf_req *r, unsigned roles, struct nf_error *e)
{
	struct json_object	*data;
	enum nf_err		 rc;

	if (roles == NF_ROLE_NONE)
		return NF_OK;
	if ((rc = nf_auth_request(r, e)) != NF_OK)
		return rc;
	if (r->principal.roles & roles)
		return NF_OK;
	data = json_object_new_object();
	nf_json_add_str(data, "method", r->method_name);
	nf_json_add_str(data, "route", r->route->pattern);
	nf_audit(r, "forbidden", NULL, data);
	return nf_error_set(e, NF_EFORBIDDEN, "forbidden", NULL,
	    "your role does not allow this");
}

static enum nf_err
read_body(struct nf_req *r, struct nf_error *e)
{
	size_t	 cap = (size_t)r->app->cfg.body_max;

	if (r->route->body_max != 0 && r->route->body_max < cap)
		cap = r->route->body_max;
	return nf_req_body(r, r->route->body, cap, e);
}

static enum nf_err
dependencies(struct nf_req *r, struct nf_error *e)
{
	struct nf_store	*st;
	enum nf_err	 rc;

	if ((r->route->flags & NF_ROUTE_NEEDS_STORE) &&
	    (rc = nf_app_store(r->app, &st, e)) != NF_OK)
		return rc;
	if ((r->route->flags & NF_ROUTE_NEEDS_KV) && nf_app_kv(r->app) == NULL)
		return nf_error_set(e, NF_EUNAVAIL, "redis_unavailable", NULL,
		    "Redis is unavailable");
	return NF_OK;
}

static enum nf_err
dispatch(struct nf_req *r, const struct nf_route *routes, size_t n, struct nf_error *e)
{
	char		 allow[96];
	enum nf_match	 m;
	enum nf_err	 rc;
	int		 origin_ok, webhook;

	m = nf_router_match(routes, n, (int)r->app->cfg.dev_routes, r->method, r->path,
	    &r->route, &r->params, allow, sizeof(allow));
	origin_ok = cors(r);
	if (m != NF_MATCH_NOPATH && r->method == NF_OPTIONS) {
		preflight(r, allow, origin_ok);
		return NF_OK;
	}
	if (m == NF_MATCH_NOPATH)
		return nf_error_set(e, NF_ENOTFOUND, "route_not_found", NULL, "no such route");
	if (m == NF_MATCH_METHOD) {
		nf_resp_header(r, "Allow", allow);
		return nf_error_set(e, NF_EMETHOD, "method_not_allowed", NULL,
		    "method not allowed; see the Allow header");
	}
	if ((rc = nf_form_parse(r->query_string, strlen(r->query_string), NF_FORM_MAX_FIELDS,
	    "invalid_query", &r->query, e)) != NF_OK)
		return rc;
	/* A webhook's tenant may come from its body (AccountSid). */
	webhook = strncmp(r->path, "/webhooks/", 10) == 0;
	if (webhook && (rc = read_body(r, e)) != NF_OK)
		return rc;
	if (!(r->route->flags & NF_ROUTE_NO_TENANT) && (rc = resolve_tenant(r, e)) != NF_OK)
		return rc;
	if ((rc = authorize(r, r->route->roles, e)) != NF_OK)
		return rc;
	if (!webhook && (rc = read_body(r, e)) != NF_OK)
		return rc;
	/* Tenant known, body read: a Twilio-signed route's signature is checked
	 * now, before anything of the request is used or stored. */
	if ((r->route->flags & NF_ROUTE_TWILIO_SIGNED) && (rc = nf_twsig_check(r, e)) != NF_OK)
		return rc;
	if ((rc = dependencies(r, e)) != NF_OK)
		return rc;
	if ((rc = r->route->handler(r, e)) != NF_OK)
		return rc;
	if (r->status == 0) {
		nf_error("handler for %s left no response", r->route->pattern);
		return nf_error_set(e, NF_ESYSTEM, NULL, NULL, "no response");
	}
	return NF_OK;
}

static void
access_log(struct nf_req *r)
{
	struct json_object	*f = json_object_new_object();
	char			*path;
	size_t			 len = strlen(r->path);

	/* Paths are client text: JSON-escaped by the logger, and capped. */
	path = nf_xstrndup(r->path, len > 512 ? 512 : len);
	nf_json_add_str(f, "method", r->method_name);
	nf_json_add_str(f, "path", path);
	nf_json_add_int(f, "status", r->status);
	nf_json_add_int(f, "duration_ms", nf_mono_ms() - r->start_ms);
	nf_json_add_int(f, "bytes", (int64_t)r->out_len);
	if (r->err_code[0] != '\0')
		nf_json_add_str(f, "error", r->err_code);
	nf_log_fields(NF_LOG_INFO, "request", f);
	json_object_put(f);
	free(path);
}

void
nf_router_handle(struct nf_req *r, const struct nf_route *routes, size_t n)
{
	struct nf_error	 e;
	enum nf_err	 rc;

	nf_error_clear(&e);
	nf_log_context(r->request_id, NULL);
	if ((rc = dispatch(r, routes, n, &e)) != NF_OK) {
		if (nf_err_status(rc) >= 500)
			nf_error("%s: %s (%s)", r->route ? r->route->pattern : "-",
			    e.code[0] ? e.code : nf_strerror(rc), e.message);
		nf_resp_error(r, rc, &e);
	}
	access_log(r);
	nf_log_context(NULL, NULL);
}
