/*
 * cors.h - which website origins may read which answers (CORS).
 *
 * DESIGN: two audiences read the API from a browser.
 *  - Staff: the SPA, served from CLIENT_URL (or the API's own origin), sends
 *    its session cookie.  The staff API and staff event streams admit only
 *    those origins, with Access-Control-Allow-Credentials (router.c).
 *  - Visitors: the web-chat widget runs on a tenant's own website and sends
 *    a bearer token, never a cookie.  The public /api/webchat/ routes and
 *    the "webchat-" event streams also admit the resolved tenant's
 *    webchat.allowedOrigins (tenant.h), and never with Allow-Credentials,
 *    so a tenant's website can never read anything with an agent's cookie.
 * Any other origin gets no CORS header and the browser keeps the answer
 * from the page.  Origins compare as exact strings in the form browsers
 * send them ("https://shop.example", "http://127.0.0.1:8080"): no
 * wildcard, no "null" (sandboxed frames, file: pages), no path.
 *
 * nchan answers the event streams itself; it learns the origin to admit
 * from the authorizer's NF_CORS_EVENTS_HEADER (h_events.c,
 * conf/nginx.conf.in).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_CORS_H
#define NF_CORS_H

struct nf_req;
struct nf_tenant;

#define NF_CORS_ORIGIN_MAX	255     /* bytes of an allowed origin */
#define NF_CORS_ORIGINS_MAX	50      /* webchat.allowedOrigins entries */
/* The event authorizer's answer naming the one origin nchan may admit. */
#define NF_CORS_EVENTS_HEADER	"X-Nf-Allow-Origin"

/*
 * 1 when s is a serialized web origin: "http" or "https", "://", a
 * lower-case host name, IPv4 address or bracketed IPv6 address, and an
 * optional port 1-65535 without leading zeros; nothing else (no path,
 * no trailing '/', no user info).  Pure; cannot fail.
 */
int	 nf_cors_valid_origin(const char *s);

/* 1 for the paths of the widget's public routes ("/api/webchat/..."). */
int	 nf_cors_embed_path(const char *path);

/* 1 when origin is one of tenant t's webchat.allowedOrigins (t may be NULL). */
int	 nf_cors_tenant_allows(const struct nf_tenant *t, const char *origin);

/*
 * 1 when a page on origin may read r's answers: r's own origin (scheme
 * and Host), a CLIENT_URL origin, or - when embed - an allowed origin of
 * r's tenant (r->tenant must then be resolved; NULL admits none of
 * them).  0 for a missing or empty origin.  Cannot fail.
 */
int	 nf_cors_allowed(const struct nf_req *r, int embed, const char *origin);

#endif
