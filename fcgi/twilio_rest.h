/*
 * twilio_rest.h - the Twilio REST client: every Twilio call the product
 * makes goes through nf_tw_request / nf_tw_list.
 *
 * DESIGN: one libcurl easy handle per client, reused across calls
 * (connection reuse), never shared between threads.  Credentials are the
 * tenant's: API key SID + secret when both are set, otherwise account SID
 * + auth token, sent as HTTP Basic auth; they never reach a log line.
 * Bodies are form-encoded (nf_pairs, in order, duplicates kept), answers
 * are JSON.  Each product's base URL comes from the configuration
 * (TWILIO_*_BASE_URL) so tests point the client at Prism mocks.
 *
 * Retries (RELIABILITY.md section 2): 429 and failures where nothing was
 * sent (connect refused, DNS, TLS handshake) are always retried; 5xx,
 * timeouts and resets after the request was sent are retried only for
 * NF_TW_IDEMPOTENT requests, because for a create they are ambiguous.
 * 4xx other than 429 are never retried.  Backoff is exponential with full
 * jitter, capped, and honours Retry-After; a Retry-After longer than
 * NF_TW_RETRY_AFTER_MAX_MS ends the retries at once (NF_ERATE with
 * out->retry_after_ms), so a job runner re-queues the job with that delay
 * instead of blocking on it.  Only nonflex-jobs and nonflexctl link this
 * (libcurl stays out of the FastCGI workers: see events.c).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_TWILIO_REST_H
#define NF_TWILIO_REST_H

#include <stddef.h>
#include <stdint.h>

#include "nonflex.h"

struct json_object;
struct nf_config;
struct nf_pairs;
struct nf_tenant;

enum nf_tw_product {
	NF_TW_API = 0,          /* api.twilio.com (2010-04-01) */
	NF_TW_CONVERSATIONS,    /* conversations.twilio.com/v1 */
	NF_TW_TASKROUTER,       /* taskrouter.twilio.com/v1 */
	NF_TW_VIDEO,            /* video.twilio.com/v1 */
	NF_TW_STUDIO,           /* studio.twilio.com/v2 */
	NF_TW__MAX
};

/* What a retry after an ambiguous failure could do. */
enum nf_tw_retry {
	NF_TW_IDEMPOTENT = 0,   /* GET, DELETE, an update that sets fields: retry
				 * 429, 5xx, network errors */
	NF_TW_CREATE,           /* a create: retry only 429 and failures before the
				 * request was sent; a 5xx/timeout after sending
				 * is reported as ambiguous (out->ambiguous) */
};

/* Production backoff: base and cap of the full-jitter exponential delay. */
#define NF_TW_BACKOFF_BASE_MS	200
#define NF_TW_BACKOFF_CAP_MS	5000
/* A longer Retry-After is not waited for inside a call (see above). */
#define NF_TW_RETRY_AFTER_MAX_MS 10000
/* Largest answer body accepted (a bigger one: NF_EUPSTREAM). */
#define NF_TW_BODY_MAX		(8 * 1024 * 1024)

/* Outcome of one call (filled whatever the return value). */
struct nf_tw_result {
	long			 status;      /* last HTTP status, 0 when none */
	struct json_object	*body;        /* parsed JSON answer of a 2xx, else
					       * NULL (owned: nf_tw_result_cleanup) */
	int			 code;        /* Twilio error code (20429, 21211...), 0 */
	char			 message[256];/* Twilio's error message, "" */
	char			 more_info[160];
	int			 attempts;    /* HTTP attempts made (0: refused
					       * before any request) */
	int			 ambiguous;   /* 1: a create may have taken effect at
					       * Twilio although it failed here */
	int64_t			 retry_after_ms; /* from the last answer, 0 */
};

struct nf_tw_client;

/*
 * New client for this process, reading base URLs (an empty one means
 * Twilio's own host for the product), timeouts and the retry budget from
 * cfg (copied: cfg may change after).  Cannot fail except on a base URL
 * that is not http(s)://host... (NF_EINVAL "invalid_config", field naming
 * the variable).  Free with nf_tw_client_free.
 */
enum nf_err	 nf_tw_client_new(const struct nf_config *cfg, struct nf_tw_client **out,
		    struct nf_error *);
void		 nf_tw_client_free(struct nf_tw_client *);   /* accepts NULL */
/* Backoff base and cap in ms (production: NF_TW_BACKOFF_*; tests shorten
 * them).  Cannot fail. */
void		 nf_tw_client_set_backoff(struct nf_tw_client *, int64_t base_ms,
		    int64_t cap_ms);

/*
 * One REST call: method "GET" | "POST" | "DELETE", path relative to the
 * product's base URL ("/v1/Workspaces/WS.../Tasks"; the query string may
 * be part of it), form the body parameters (POST) or NULL.  Extra headers
 * (e.g. "X-Twilio-Webhook-Enabled: true") may be passed as a
 * NULL-terminated array or NULL.
 *
 * NF_OK for 2xx (out->body holds the JSON object answered, NULL for 204).
 * Otherwise: NF_EINVAL "twilio_missing_credentials" when the tenant has
 * neither credential pair (nothing sent), NF_EINVAL "invalid_request" for
 * a bad method, path or header; for a Twilio error answer NF_EUPSTREAM with
 * code "twilio_error" and a message quoting Twilio's code and message
 * (4xx), NF_ENOTFOUND "twilio_not_found" for 404, NF_EAUTH "twilio_auth"
 * for 401/403 (tenant misconfigured); NF_ERATE "twilio_rate_limited" when
 * 429 outlasted the retry budget; NF_EUNAVAIL "twilio_unavailable" for
 * network failures and 5xx after retries; NF_EUPSTREAM
 * "twilio_bad_response" for a 2xx that is not a JSON object (a create is
 * then ambiguous: it happened, but we cannot read it) and
 * "twilio_response_too_large" past NF_TW_BODY_MAX.  out is always filled
 * (zeroed first: clean up a previous result before reusing it).  Error
 * messages never contain a credential.
 */
enum nf_err	 nf_tw_request(struct nf_tw_client *, const struct nf_tenant *,
		    enum nf_tw_product, const char *method, const char *path,
		    const struct nf_pairs *form, const char *const *headers,
		    enum nf_tw_retry, struct nf_tw_result *out, struct nf_error *);
void		 nf_tw_result_cleanup(struct nf_tw_result *);   /* accepts NULL */

/*
 * GET a list and follow its pages to the end: meta.next_page_url (product
 * APIs) or next_page_uri (2010 API, relative to the base URL's origin),
 * following only links on the same scheme, host and port as the product's
 * base URL (anything else: NF_EUPSTREAM "twilio_bad_page_link", SSRF).
 * key is the array's name ("workers", "messages"); the items of every page
 * are appended to a new array in *items (caller puts it; NULL on error).
 * Stops with NF_EUPSTREAM "twilio_page_loop" when a page URL repeats or
 * when there are more than max_pages pages.  Other errors: as nf_tw_request
 * (every page is an idempotent GET), or NF_EUPSTREAM "twilio_bad_response"
 * when a page has no array named key.
 */
enum nf_err	 nf_tw_list(struct nf_tw_client *, const struct nf_tenant *,
		    enum nf_tw_product, const char *path, const char *key, int max_pages,
		    struct json_object **items, struct nf_error *);

/* The base URL the client uses for a product (no trailing '/'). */
const char	*nf_tw_base_url(const struct nf_tw_client *, enum nf_tw_product);

/* ---- pure parts, exposed for unit tests ------------------------------ */

/* The backoff before attempt n (1-based retry number) with full jitter:
 * random in [0, min(cap, base * 2^(n-1))], at least retry_after_ms. */
int64_t		 nf_tw_backoff_ms(int n, int64_t base_ms, int64_t cap_ms, int64_t retry_after_ms);

/*
 * The retry decision after one attempt: status is the HTTP status, or 0
 * when no answer came (then nothing_sent says whether the failure happened
 * before the request left: connect refused, DNS, TLS handshake).  Returns
 * 1 when another attempt is allowed (budget permitting); *ambiguous (may
 * be NULL) is 1 when a create may have taken effect although it failed.
 */
int		 nf_tw_retryable(long status, int nothing_sent, enum nf_tw_retry,
		    int *ambiguous);

/*
 * Read a Twilio error answer: {"code","message","more_info","status"} or
 * {"errors":[{"code","message",...}]}, into out->code, message and
 * more_info (control characters replaced, cut on a UTF-8 boundary).
 * Returns 1 when body[0..len) is such an answer; 0 (out's fields empty)
 * for anything else: HTML, empty, truncated or other JSON.
 */
int		 nf_tw_error_parse(const char *body, size_t len, struct nf_tw_result *out);

/*
 * The absolute URL a page link (absolute, or relative to base) points to,
 * as a new string, when it is http(s) on base's scheme, host and port and
 * carries no user info; NULL otherwise.
 */
char		*nf_tw_page_url(const char *base, const char *link);

#endif
