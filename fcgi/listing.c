/*
 * listing.c - see listing.h.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "json.h"
#include "listing.h"
#include "req.h"
#include "store.h"
#include "tenant.h"
#include "valid.h"

enum nf_err
nf_listing_respond(struct nf_req *r, struct nf_store *st, struct json_object *filter,
    const struct nf_listing *l, struct nf_error *e)
{
	struct json_object	*page = NULL, *arr, *root;
	const char		*lim = nf_pairs_get(&r->query, "limit");
	char			*next = NULL;
	int64_t			 limit = l->limit_default;
	size_t			 i, n;
	enum nf_err		 rc;

	if (lim != NULL && !nf_valid_int(lim, 1, l->limit_max, &limit))
		return nf_error_set(e, NF_EINVAL, "invalid_query", "limit",
		    "limit must be an integer from 1 to %lld", (long long)l->limit_max);
	if ((rc = nf_store_page(st, r->tenant->id, l->coll, filter, l->field, l->dir,
	    limit, nf_pairs_get(&r->query, "cursor"), &page, &next, e)) != NF_OK) {
		if (rc == NF_EINVAL)
			snprintf(e->field, sizeof(e->field), "cursor");
		return rc;
	}
	n = json_object_array_length(page);
	if (l->shape != NULL) {
		for (i = 0; i < n; i++)
			l->shape(json_object_array_get_idx(page, i));
		arr = page;
		page = NULL;
	} else {
		arr = json_object_new_array();
		for (i = 0; i < n; i++)
			json_object_array_add(arr, l->view(json_object_array_get_idx(page, i)));
	}
	root = json_object_new_object();
	nf_json_add(root, l->key, arr);
	nf_json_add(root, "next", next != NULL ? json_object_new_string(next) : NULL);
	nf_resp_json(r, 200, root);
	free(next);
	json_object_put(page);
	return NF_OK;
}
