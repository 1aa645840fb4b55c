/*
 * h_events.c - nchan subscriber authorization.
 *
 * DESIGN: nginx asks this route (a subrequest) before it lets a browser
 * subscribe to /api/events/<topic>.  The answer names the channel in
 * X-Nchan-Channel as "<tenant>.<topic>" with the tenant resolved here, so
 * a subscriber can only ever join its own tenant's channels, whatever
 * topic text it sends.  The route requires a signed-in agent of that
 * tenant (cookie or bearer token, checked by the router before this
 * runs), so nobody outside the tenant's staff can listen.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdlib.h>

#include "events.h"
#include "handlers.h"
#include "nonflex.h"
#include "req.h"
#include "tenant.h"

/*
 * GET /api/events/auth/:topic, any staff role of the tenant (401 without
 * a session, 403 for another tenant's token: router.c).  204 with X-Nchan-Channel; 400 invalid_topic; tenant
 * errors (400/404) from the router.
 */
enum nf_err
h_events_auth(struct nf_req *r, struct nf_error *e)
{
	const char	*topic = nf_req_path_param(r, "topic");
	char		*chan;

	if (!nf_events_valid_topic(topic) ||
	    (chan = nf_events_channel(r->tenant->id, topic)) == NULL)
		return nf_error_set(e, NF_EINVAL, "invalid_topic", "topic",
		    "topic must match [a-z0-9_-]{1,64}");
	nf_resp_header(r, "X-Nchan-Channel", chan);
	free(chan);
	nf_resp_empty(r, 204);
	return NF_OK;
}
