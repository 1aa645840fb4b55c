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
 * Backoff is exponential with full jitter, capped, and honours Retry-After.
 * Only nonflex-jobs and nonflexctl link this (libcurl stays out of the
 * FastCGI workers: see events.c).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_TWILIO_REST_H
#define NF_TWILIO_REST_H

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

/* Outcome of one call (filled whatever the return value). */
struct nf_tw_result {
	long			 status;      /* last HTTP status, 0 when none */
	struct json_object	*body;        /* parsed JSON answer or NULL (owned:
					       * nf_tw_result_cleanup) */
	int			 code;        /* Twilio error code (20429, 21211...), 0 */
	char			 message[256];/* Twilio's error message, "" */
	char			 more_info[160];
	int			 attempts;    /* HTTP attempts made */
	int			 ambiguous;   /* 1: a create may have taken effect at
					       * Twilio although it failed here */
	int64_t			 retry_after_ms; /* from the last answer, 0 */
};

struct nf_tw_client;

/*
 * New client for this process, reading base URLs, timeouts and the retry
 * budget from cfg (copied: cfg may change after).  Cannot fail except on a
 * base URL that is not http(s):// (NF_EINVAL naming the variable).
 */
enum nf_err	 nf_tw_client_new(const struct nf_config *cfg, struct nf_tw_client **out,
		    struct nf_error *);
void		 nf_tw_client_free(struct nf_tw_client *);   /* accepts NULL */

/*
 * One REST call: method "GET" | "POST" | "DELETE", path relative to the
 * product's base URL ("/v1/Workspaces/WS.../Tasks"; the query string may
 * be part of it), form the body parameters (POST) or NULL.  Extra headers
 * (e.g. "X-Twilio-Webhook-Enabled: true") may be passed as a
 * NULL-terminated array or NULL.
 *
 * NF_OK for 2xx (out->body holds the answer, NULL for 204).  Otherwise:
 * NF_EINVAL "twilio_missing_credentials" when the tenant has neither
 * credential pair; for a Twilio error answer NF_EUPSTREAM with code
 * "twilio_error" and a message quoting Twilio's code and message (4xx),
 * NF_ENOTFOUND "twilio_not_found" for 404, NF_EAUTH "twilio_auth" for
 * 401/403 (tenant misconfigured); NF_ERATE "twilio_rate_limited" when 429
 * outlasted the retry budget; NF_EUNAVAIL "twilio_unavailable" for network
 * failures and 5xx after retries.  out is always filled.
 */
enum nf_err	 nf_tw_request(struct nf_tw_client *, const struct nf_tenant *,
		    enum nf_tw_product, const char *method, const char *path,
		    const struct nf_pairs *form, const char *const *headers,
		    enum nf_tw_retry, struct nf_tw_result *out, struct nf_error *);
void		 nf_tw_result_cleanup(struct nf_tw_result *);   /* accepts NULL */

/*
 * GET a list and follow its pages to the end: meta.next_page_url (product
 * APIs) or next_page_uri (2010 API), following only links on the same
 * scheme/host as the product's base URL (anything else: NF_EUPSTREAM
 * "twilio_bad_page_link", SSRF).  key is the array's name ("workspaces",
 * "messages"); the items of every page are appended to a new array in
 * *items.  Stops with NF_EUPSTREAM "twilio_page_loop" when a page URL
 * repeats or after max_pages pages.
 */
enum nf_err	 nf_tw_list(struct nf_tw_client *, const struct nf_tenant *,
		    enum nf_tw_product, const char *path, const char *key, int max_pages,
		    struct json_object **items, struct nf_error *);

/* The base URL the client uses for a product (no trailing '/'). */
const char	*nf_tw_base_url(const struct nf_tw_client *, enum nf_tw_product);

/* The backoff before attempt n (1-based retry number) with full jitter:
 * random in [0, min(cap, base * 2^(n-1))], at least retry_after_ms.
 * Exposed for unit tests. */
int64_t		 nf_tw_backoff_ms(int n, int64_t base_ms, int64_t cap_ms, int64_t retry_after_ms);

#endif
