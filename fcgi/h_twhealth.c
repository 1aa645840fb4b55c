/*
 * h_twhealth.c - the tenant's Twilio credential state (twhealth.h) for its
 * supervisors and admins, so a tenant whose credentials Twilio refuses
 * sees why its outbound messages wait.
 *
 * DESIGN: a route of its own rather than a member of GET
 * /api/tenants/current: that route is public (the login page reads it)
 * and answers a view prebuilt at load, while this state is per-moment
 * (Redis) and for staff with the right role only.  The flag carries no
 * secret (status, Twilio code and message, since).
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <json-c/json.h>

#include "app.h"
#include "handlers.h"
#include "json.h"
#include "nonflex.h"
#include "req.h"
#include "tenant.h"
#include "twhealth.h"

/*
 * GET /api/tenants/current/twilio (supervisor, admin): 200
 * {"twilio":{"status":"ok"}} or {"twilio":{"status":"misconfigured",
 * "code":20003,"httpStatus":401,"message":...,"since":...}}; 401/403 from
 * the router; 503 redis_unavailable.
 */
enum nf_err
h_twhealth_get(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*state, *out;
	enum nf_err		 rc;

	if ((rc = nf_twhealth_get(nf_app_kv(r->app), r->tenant->id, &state, e)) != NF_OK)
		return rc;
	out = json_object_new_object();
	nf_json_add(out, "twilio", state);
	nf_resp_json(r, 200, out);
	return NF_OK;
}
