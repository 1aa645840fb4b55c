/*
 * crm.h - the tenant's external CRM: the original's endpoints, its answers
 * mapped to the original's customer shape, and a Redis cache in front.
 *
 * DESIGN: per tenant crm.baseUrl / crm.apiKey (CRM_BASE_URL / CRM_API_KEY
 * as defaults) with Bearer auth, through the workers' HTTP client
 * (http.h): GET /contacts/phone/:phone, GET /contacts/:externalId,
 * GET /orders/:orderId, POST /tickets.  Connect and total timeouts from
 * the configuration (NONFLEX_CRM_*); GETs are retried once on a 5xx or a
 * timeout; a 3xx is refused and logged, never followed.  Successful lookups are cached in Redis under the tenant's
 * namespace for crm.cacheTtlS (NONFLEX_CRM_CACHE_TTL_S by default).  The
 * caller (customers.c) decides what to do when the CRM fails: answer from
 * the local store.  The API key never reaches a log line or an answer.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_CRM_H
#define NF_CRM_H

#include "nonflex.h"

struct json_object;
struct nf_app;
struct nf_config;
struct nf_tenant;

enum nf_crm_kind {
	NF_CRM_BY_PHONE = 0,   /* key: E.164 phone -> customer */
	NF_CRM_BY_ID,          /* key: externalId -> customer */
	NF_CRM_ORDER,          /* key: orderId -> order */
};

/* 1 when the tenant has a CRM base URL. */
int		 nf_crm_configured(const struct nf_tenant *);

/*
 * Look up key: the Redis cache first (*from_cache 1), then the CRM.
 * *out is a new object in the original's shape (a customer
 * {externalId, profile{firstName, lastName, email, phone}, phones[],
 * language, tier, notes, addresses[], orders[]}, or an order).
 * NF_ENOTFOUND "customer_not_found" / "order_not_found" when the CRM says
 * it does not know it; NF_EINVAL "crm_not_configured" without a CRM;
 * NF_EUNAVAIL / NF_EUPSTREAM when the CRM failed, stalled or answered
 * garbage (logged without the key), so the caller falls back.
 */
enum nf_err	 nf_crm_get(struct nf_app *, const struct nf_tenant *, enum nf_crm_kind,
		    const char *key, struct json_object **out, int *from_cache,
		    struct nf_error *);

/*
 * Send a locally created ticket to the CRM (POST /tickets, once); run by
 * nonflex-jobs, which retries until the CRM accepts.  *crm_id (may be
 * NULL) receives the CRM's id for it when it answers one (malloc'd).
 * NF_EINVAL (permanent: "crm_not_configured", "crm_rejected" for a 4xx
 * other than 408/429); NF_EUPSTREAM / NF_EUNAVAIL for what a retry may
 * cure (5xx, 408, 429, timeout, unreachable, a refused redirect).
 */
enum nf_err	 nf_crm_ticket_push(const struct nf_config *, const struct nf_tenant *,
		    struct json_object *ticket, char **crm_id, struct nf_error *);

/* Map a CRM contact (flat or nested source fields, as the original
 * accepted) to the customer shape; NULL when it is not a JSON object with
 * at least an id.  Pure, for tests.  The caller puts the result. */
struct json_object *nf_crm_map_customer(struct json_object *contact);
/* The same for an order ({orderId, customerId, status, total, currency,
 * items[{sku, name, qty, price}]}); NULL without an order id. */
struct json_object *nf_crm_map_order(struct json_object *order);

/* The parts of a lookup, pure, for tests.  URL of key under base
 * ("<base>/contacts/phone/%2B1555..."): key percent-encoded except
 * RFC 3986 unreserved characters, one '/' between base and path.  Cache
 * key "nf:<tenant>:crm:<phone|id|order>:<key>".  Both malloc'd; NULL for
 * an empty or over-long (> NF_CRM_KEY_MAX) key, or a key that cannot be a
 * Redis key name (the cache key). */
#define NF_CRM_KEY_MAX 128
char		*nf_crm_url(const char *base, enum nf_crm_kind, const char *key);
char		*nf_crm_cache_key(const char *tenant, enum nf_crm_kind, const char *key);

#endif
