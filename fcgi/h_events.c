/*
 * h_events.c - nchan subscriber authorization.
 *
 * DESIGN: nginx asks this route (a subrequest) before it lets a browser
 * subscribe to /api/events/<topic>.  The answer names the channel in
 * X-Nchan-Channel as "<tenant>.<topic>" with the tenant resolved here, so
 * a subscriber can only ever join its own tenant's channels, whatever
 * topic text it sends.  Who may listen depends on the topic:
 *   "webchat-<sessionId>"  only the bearer of that web-chat session's token
 *                          (webchat.h), passed as ?token= because an
 *                          EventSource cannot set headers; nginx forwards
 *                          only that parameter (conf/nginx.conf.in) and its
 *                          access log records $uri, never the query;
 *   "agent-<agentId>"      that agent, or a supervisor or admin;
 *   anything else ("queue", "agents", ...)  any staff of the tenant.
 * The route is public in the table (a web-chat visitor has no agent
 * session), so this handler runs the agents' check (nf_auth_request:
 * cookie or bearer token, tenant, revocation) itself for staff topics.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "auth.h"
#include "cors.h"
#include "events.h"
#include "handlers.h"
#include "nonflex.h"
#include "req.h"
#include "router.h"
#include "tenant.h"
#include "webchat.h"

#define WEBCHAT_PREFIX	"webchat-"
#define AGENT_PREFIX	"agent-"

static int
has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The web-chat session of ?token= must be the topic's session. */
static enum nf_err
webchat_allowed(struct nf_req *r, const char *sid, struct nf_error *e)
{
	struct json_object	*s = NULL;
	const char		*token = nf_pairs_get(&r->query, "token"), *own;
	enum nf_err		 rc;

	if (token == NULL) {
		nf_resp_header(r, "WWW-Authenticate", "Bearer");
		return nf_error_set(e, NF_EAUTH, "unauthorized", NULL,
		    "a web-chat session token is required");
	}
	if ((rc = nf_webchat_verify(r->app, r->tenant, token, &s, e)) != NF_OK)
		return rc;
	own = nf_webchat_session_id(s);
	rc = own != NULL && strcmp(own, sid) == 0 ? NF_OK :
	    nf_error_set(e, NF_EFORBIDDEN, "forbidden", NULL,
	    "this token does not grant that event stream");
	json_object_put(s);
	return rc;
}

/* Staff of the tenant; "agent-<id>" only that agent or a supervisor/admin. */
static enum nf_err
staff_allowed(struct nf_req *r, const char *topic, struct nf_error *e)
{
	enum nf_err	 rc;

	if ((rc = nf_auth_request(r, e)) != NF_OK)
		return rc;
	if (!(r->principal.roles & NF_ROLES_STAFF))
		return nf_error_set(e, NF_EFORBIDDEN, "forbidden", NULL,
		    "your role does not allow this");
	if (!has_prefix(topic, AGENT_PREFIX) ||
	    (r->principal.roles & (NF_ROLE_SUPERVISOR | NF_ROLE_ADMIN)) ||
	    strcmp(topic + strlen(AGENT_PREFIX), r->principal.agent_id) == 0)
		return NF_OK;
	return nf_error_set(e, NF_EFORBIDDEN, "forbidden", NULL,
	    "another agent's event stream");
}

/*
 * GET /api/events/auth/:topic (public row; checked here): 204 with
 * X-Nchan-Channel (and X-Nf-Allow-Origin when the request's Origin may
 * read the stream, cors.h); 400 invalid_topic; 401 without a session (staff
 * topics) or web-chat token (webchat-*); 403 another tenant's session,
 * another agent's or web-chat session's topic; 503 store/Redis down;
 * tenant errors (400/404) from the router.
 */
enum nf_err
h_events_auth(struct nf_req *r, struct nf_error *e)
{
	const char	*topic = nf_req_path_param(r, "topic");
	char		*chan;
	enum nf_err	 rc;

	if (!nf_events_valid_topic(topic))
		return nf_error_set(e, NF_EINVAL, "invalid_topic", "topic",
		    "topic must match [a-z0-9_-]{1,64}");
	if (has_prefix(topic, WEBCHAT_PREFIX))
		rc = webchat_allowed(r, topic + strlen(WEBCHAT_PREFIX), e);
	else
		rc = staff_allowed(r, topic, e);
	if (rc != NF_OK)
		return rc;
	if ((chan = nf_events_channel(r->tenant->id, topic)) == NULL)
		return nf_error_set(e, NF_EINVAL, "invalid_topic", "topic",
		    "topic must match [a-z0-9_-]{1,64}");
	nf_resp_header(r, "X-Nchan-Channel", chan);
	free(chan);
	/* nchan admits a cross-origin subscriber only from the origin named
	 * here (cors.h): a tenant's website for its visitors' streams. */
	if (nf_cors_allowed(r, has_prefix(topic, WEBCHAT_PREFIX), nf_req_header(r, "Origin")))
		nf_resp_header(r, NF_CORS_EVENTS_HEADER, nf_req_header(r, "Origin"));
	nf_resp_empty(r, 204);
	return NF_OK;
}
