/*
 * twilio_sig.h - X-Twilio-Signature: is this webhook really from Twilio,
 * for this tenant?
 *
 * DESIGN: computed exactly as Twilio does (RELIABILITY.md 1.1): the full
 * URL Twilio requested - PUBLIC_URL when set, otherwise the scheme, host
 * and port our nginx forwards (never headers a client could forge) - plus
 * the raw REQUEST_URI bytes as received; for a form POST, the parameters
 * sorted by name (byte order) with each name immediately followed by its
 * value (a repeated name: one name+value per value, values sorted);
 * HMAC-SHA1 with the tenant's auth token; base64.  JSON bodies are signed
 * over the URL alone, which carries bodySHA256 = hex SHA-256 of the raw
 * body.  The URL is tried with and without the default port, as Twilio's
 * own libraries do.  Comparison is constant-time.
 *
 * The router calls nf_twsig_check for routes flagged
 * NF_ROUTE_TWILIO_SIGNED, after tenant resolution and before the handler.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_TWILIO_SIG_H
#define NF_TWILIO_SIG_H

#include <stddef.h>

#include "nonflex.h"

struct nf_pairs;
struct nf_req;

/* Base64 HMAC-SHA1 signature of url followed by params (sorted as
 * above; params may be NULL), into out (29 bytes with NUL). */
void		 nf_twsig_compute(const char *auth_token, const char *url,
		    const struct nf_pairs *params, char out[29]);

/*
 * 1 when signature is valid for url + params under auth_token, trying the
 * URL as given and its other form, as Twilio's helpers do: without its
 * port when it has one, with the scheme's default port (443/80) when it
 * has none.  When body is not NULL (a JSON body), params must be NULL and
 * the URL's query must carry exactly one bodySHA256 equal to the
 * lower-case hex SHA-256 of body[0..body_len) (upper case is refused).
 * A signature that is not 1..64 bytes of base64 is never valid.
 */
int		 nf_twsig_valid(const char *auth_token, const char *url,
		    const struct nf_pairs *params, const char *body, size_t body_len,
		    const char *signature);

/*
 * The URL Twilio requested for this request, as a new string: PUBLIC_URL
 * (without trailing '/') + the raw REQUEST_URI when PUBLIC_URL is set (no
 * request header is consulted then), otherwise nginx's scheme
 * (REQUEST_SCHEME / HTTPS) + "://" + the Host header when it is a plain
 * host[:port] (else SERVER_NAME[:SERVER_PORT]) + REQUEST_URI.  See
 * twilio_sig.c for why.  Cannot fail.
 */
char		*nf_twsig_request_url(const struct nf_req *);

/*
 * The router's check for a signed route: NF_OK, or NF_EFORBIDDEN with
 * code "invalid_signature" (header missing, empty, over 64 bytes, not
 * base64, or not matching; a missing header is 403 too, not the 400 of
 * Twilio's node middleware), "account_mismatch" (an AccountSid in the
 * form or query that is not the resolved tenant's: a cross-tenant
 * attempt) or "twilio_not_configured" (the tenant has no auth token: fail
 * closed).  Each failure is logged and audited as twilio.signature_failed
 * with its reason (missing, oversized, malformed, mismatch, cross_tenant,
 * no_auth_token), rate-limited per client address; neither the header
 * nor the token is ever logged.  With NONFLEX_DEV_SKIP_TWILIO_SIGNATURE=1
 * it logs a warning and returns NF_OK, on every request.  Needs the
 * tenant resolved and the body already read (r->form, or r->body for a
 * NF_BODY_JSON route).
 */
enum nf_err	 nf_twsig_check(struct nf_req *, struct nf_error *);

#endif
