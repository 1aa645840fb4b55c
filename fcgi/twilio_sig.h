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
 * URL as given, with the default port added and with it removed.  When
 * body is not NULL (a JSON body), params must be NULL and the URL's
 * bodySHA256 query parameter must equal the lower-case hex SHA-256 of
 * body[0..body_len).
 */
int		 nf_twsig_valid(const char *auth_token, const char *url,
		    const struct nf_pairs *params, const char *body, size_t body_len,
		    const char *signature);

/*
 * The URL Twilio requested for this request, as a new string: PUBLIC_URL
 * (without trailing '/') + REQUEST_URI when PUBLIC_URL is set, otherwise
 * scheme://host[:port] from the FastCGI parameters nginx sets + REQUEST_URI.
 */
char		*nf_twsig_request_url(const struct nf_req *);

/*
 * The router's check for a signed route: NF_OK, or NF_EFORBIDDEN
 * "invalid_signature" (missing, malformed or wrong signature; audited as
 * twilio.signature_failed), or NF_EFORBIDDEN "twilio_not_configured" when
 * the tenant has no auth token (fail closed).  With
 * NONFLEX_DEV_SKIP_TWILIO_SIGNATURE=1 it logs a warning and returns NF_OK.
 * Needs the body already parsed (r->form or r->body).
 */
enum nf_err	 nf_twsig_check(struct nf_req *, struct nf_error *);

#endif
