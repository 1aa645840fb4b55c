/*
 * fuzz_route.c - libFuzzer harness for route matching (router.c) on the
 * real route table, and for request-id selection.
 *
 * Input: first byte picks the method and dev flag, the rest is the raw
 * path.  Invariants: a match's :params are valid UTF-8 without NUL, a 405
 * always comes with a non-empty Allow list, and a chosen request id is
 * always sane.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nonflex.h"
#include "req.h"
#include "router.h"
#include "valid.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct nf_route	*rt;
	struct nf_pairs		 p = { 0 };
	enum nf_match		 m;
	char			 allow[96], rid[NF_REQUEST_ID_MAX + 1];
	char			*path;
	size_t			 i;

	if (size == 0)
		return 0;
	path = nf_xstrndup((const char *)data + 1, size - 1);
	m = nf_router_match(nf_routes, nf_routes_len, data[0] & 1,
	    (enum nf_method)((data[0] >> 1) % (NF_METHOD__MAX + 1)), path, &rt, &p,
	    allow, sizeof(allow));
	if (m == NF_MATCH_OK) {
		if (rt == NULL)
			abort();
		for (i = 0; i < p.n; i++)
			if (!nf_valid_utf8(p.v[i].value, strlen(p.v[i].value), 1, size))
				abort();
	} else if (rt != NULL || p.n != 0 || (m == NF_MATCH_METHOD && allow[0] == '\0'))
		abort();
	nf_pairs_cleanup(&p);
	nf_request_id_choose(path, rid);
	if (!nf_valid_request_id(rid))
		abort();
	free(path);
	return 0;
}
