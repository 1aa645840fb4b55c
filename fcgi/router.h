/*
 * router.h - the route table's shape, path matching and the request
 * pipeline.
 *
 * DESIGN: routes are declared in one table (routes.c), not coded: each
 * row says method, path pattern (":name" segments capture), handler, the
 * role required, the body kind and cap, and what the handler needs
 * (store, Redis).  nf_router_handle runs the same front line for every
 * request (kcgi-framework's main.c): request id, route match (404/405,
 * HEAD as GET, CORS preflight), tenant, auth (next issue: the single
 * check point is marked in router.c), body, then the handler; it writes
 * the error envelope for every failure and one access-log line.
 *
 * Path policy: the raw path is split on '/'; an empty segment ("//" or a
 * trailing '/'), "." or "..", a path over NF_PATH_MAX bytes or more than
 * NF_ROUTE_MAX_SEGS segments never matches (404).  Literal segments
 * compare with the raw text (so "/api/%68ealth" is not "/api/health");
 * parameter segments are percent-decoded and must be valid UTF-8 without
 * NUL ("%2F" is a '/' inside the value, not a separator).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_ROUTER_H
#define NF_ROUTER_H

#include <stddef.h>

#include "nonflex.h"
#include "req.h"

struct nf_app;

/*
 * Roles an agent holds, as bits.  A route lists the roles allowed to call
 * it (any one suffices); NF_ROLE_NONE means public.  This column is the
 * one place access is decided (router.c authorize()).
 */
#define NF_ROLE_NONE        0x00
#define NF_ROLE_AGENT       0x01
#define NF_ROLE_SUPERVISOR  0x02
#define NF_ROLE_ADMIN       0x04
#define NF_ROLES_STAFF      (NF_ROLE_AGENT | NF_ROLE_SUPERVISOR | NF_ROLE_ADMIN)

/* Route flags. */
#define NF_ROUTE_NEEDS_STORE  0x01  /* 503 store_unavailable before the handler */
#define NF_ROUTE_NEEDS_KV     0x02  /* Redis handle must exist (503 otherwise) */
#define NF_ROUTE_NO_TENANT    0x04  /* no tenant resolution (health) */
#define NF_ROUTE_DEV          0x08  /* only with NONFLEX_DEV_ROUTES=1 */
#define NF_ROUTE_TWILIO_SIGNED 0x10 /* X-Twilio-Signature checked with the
				     * resolved tenant's auth token before the
				     * handler (twilio_sig.h); 403 + audit */

#define NF_ROUTE_MAX_SEGS 16

/* A handler fills the response (nf_resp_*) and returns NF_OK, or returns
 * an error with e filled; the router then writes the envelope. */
typedef enum nf_err (*nf_handler_fn)(struct nf_req *, struct nf_error *);

struct nf_route {
	enum nf_method		 method;    /* NF_GET also answers HEAD */
	const char		*pattern;   /* "/api/events/auth/:topic" */
	nf_handler_fn		 handler;
	unsigned		 roles;     /* NF_ROLE_* bits allowed; NF_ROLE_NONE: public */
	enum nf_body_kind	 body;      /* expected body */
	size_t			 body_max;  /* cap in bytes (0: NONFLEX_BODY_MAX) */
	unsigned		 flags;     /* NF_ROUTE_* */
};

/* The route table (routes.c). */
extern const struct nf_route	nf_routes[];
extern const size_t		nf_routes_len;

enum nf_match {
	NF_MATCH_OK = 0,     /* *out set, params filled */
	NF_MATCH_NOPATH,     /* no route has this path: 404 */
	NF_MATCH_METHOD,     /* path exists, not with this method: 405 */
};

/*
 * Match method and raw path against routes[0..n).  Rows with NF_ROUTE_DEV
 * are skipped unless dev.  On NF_MATCH_OK, *out is the row and params
 * receives the decoded :params.  allow (size allowsz) receives the
 * methods the path accepts, comma separated ("GET, HEAD, OPTIONS"), for
 * both NF_MATCH_OK and NF_MATCH_METHOD.  Pure: no I/O.
 */
enum nf_match	 nf_router_match(const struct nf_route *routes, size_t n, int dev,
		    enum nf_method, const char *path, const struct nf_route **out,
		    struct nf_pairs *params, char *allow, size_t allowsz);

/*
 * Run the whole pipeline for r against the given table and leave the
 * response in r (write it with nf_resp_write).  Logs one access line.
 * Never fails: every failure becomes an error response.
 */
void		 nf_router_handle(struct nf_req *r, const struct nf_route *routes, size_t n);

#endif
