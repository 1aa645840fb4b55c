/*
 * h_tenants.c - tenant routes.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include "handlers.h"
#include "nonflex.h"
#include "req.h"
#include "tenant.h"

/*
 * GET /api/tenants/current, no role (the next issue may require one).
 * 200 the resolved tenant's public view (prebuilt at load, no secret);
 * 400 invalid_tenant_id, 404 tenant_not_found come from the router.
 */
enum nf_err
h_tenants_current(struct nf_req *r, struct nf_error *e)
{
	(void)e;
	nf_resp_json_text(r, 200, r->tenant->public_json, r->tenant->public_len);
	return NF_OK;
}
