/*
 * listing.h - one page of a collection as an API answer, shared by the
 * list handlers (GET /api/agents, GET /api/audit, ...): reads ?limit= and
 * ?cursor= from the query, pages with nf_store_page and answers
 * 200 {<key>: [view(doc), ...], next: cursor|null}.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_LISTING_H
#define NF_LISTING_H

#include <stdint.h>

#include "nonflex.h"

struct json_object;
struct nf_req;
struct nf_store;

/* What a client may see of one stored document (new object). */
typedef struct json_object *(*nf_view_fn)(struct json_object *doc);

struct nf_listing {
	const char	*coll;           /* collection */
	const char	*field;          /* ordering field (dotted path) */
	int		 dir;            /* 1 ascending, -1 descending */
	int64_t		 limit_default;
	int64_t		 limit_max;
	const char	*key;            /* name of the array in the answer */
	nf_view_fn	 view;
	/* Optional, instead of view: turns a page's document into its view
	 * in place.  A page's documents are the listing's own, and reshaping
	 * them spares a copy of every field (the inbox lists 50 of them). */
	void		(*shape)(struct json_object *doc);
};

/* Answer one page of filter (borrowed, already tenant-free: the store adds
 * the tenant).  400 naming "limit" or "cursor" for bad paging input. */
enum nf_err	nf_listing_respond(struct nf_req *, struct nf_store *,
		    struct json_object *filter, const struct nf_listing *,
		    struct nf_error *);

#endif
