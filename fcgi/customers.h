/*
 * customers.h - the tenant's customers, orders and tickets: the local
 * store, phone numbers in E.164, and the lookups the agent desk (and, in
 * the conversations issue, the AI assistant's tools) use, which ask the
 * CRM first when the tenant has one.
 *
 * DESIGN: collections `customers`, `orders` and `tickets` keep the
 * original's field names (an existing Nonflex MongoDB works unchanged):
 *   customers {tenant, externalId, profile{firstName, lastName, email,
 *     phone}, phones[], language, tier, notes, addresses[], createdAt,
 *     updatedAt}
 *   orders {tenant, orderId, customerId (the customer's externalId),
 *     status, total, currency, items[{sku, name, qty, price}], createdAt}
 *   tickets {tenant, ticketId, customerId, subject, description, status
 *     open|pending|solved|closed, priority, createdAt, updatedAt,
 *     crm{status pending|synced, id}}
 * Phone numbers are normalized to E.164 on write and on lookup, and a
 * customer is found by profile.phone or any entry of phones[] (an array
 * of strings: the store's equality matches any element, on SQLite too, so
 * no separate phoneKeys copy is kept).  Customers written here also carry
 * `searchKeys` (lower-cased names and e-mail) for GET /api/customers?q=,
 * since the store has no regular expressions.  Every function is
 * tenant-scoped; validation errors name the field at fault.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_CUSTOMERS_H
#define NF_CUSTOMERS_H

#include "nonflex.h"

struct json_object;
struct nf_app;
struct nf_store;
struct nf_tenant;

#define NF_PHONE_MAX 16   /* "+" and up to 15 digits */

/*
 * "+1 (555) 555-1234", "15555551234", "001 555 555 1234" and, with
 * default_cc "1", "(555) 555-1234" -> "+15555551234".  NF_EINVAL
 * "invalid_phone" (field "phone") when it cannot be an E.164 number.
 */
enum nf_err	 nf_phone_e164(const char *in, const char *default_cc,
		    char out[NF_PHONE_MAX + 1], struct nf_error *);

/* Where an answer came from: the `source` field of the routes. */
enum nf_customer_source {
	NF_SRC_CRM = 0,
	NF_SRC_CACHE,
	NF_SRC_LOCAL,
};
const char	*nf_customer_source_name(enum nf_customer_source);   /* "crm"... */

/*
 * Find a customer by phone / by externalId: the CRM (through its cache)
 * when the tenant has one and it answers, otherwise the local store.
 * *out in the original's shape with orders[]; NF_ENOTFOUND
 * "customer_not_found" when neither knows it.
 */
enum nf_err	 nf_customers_by_phone(struct nf_app *, const struct nf_tenant *,
		    const char *phone, struct json_object **out,
		    enum nf_customer_source *src, struct nf_error *);
enum nf_err	 nf_customers_by_id(struct nf_app *, const struct nf_tenant *,
		    const char *external_id, struct json_object **out,
		    enum nf_customer_source *src, struct nf_error *);
/* An order by its orderId (CRM first, then local): NF_ENOTFOUND
 * "order_not_found". */
enum nf_err	 nf_orders_by_id(struct nf_app *, const struct nf_tenant *,
		    const char *order_id, struct json_object **out,
		    enum nf_customer_source *src, struct nf_error *);

/*
 * Create a ticket for a customer in the local store (validated as POST
 * /api/customers/:id/tickets) and, when the tenant has a CRM, enqueue its
 * push to the CRM (job "crm.ticket", retried until accepted).  *out the
 * stored ticket.  Used by the route and by the AI's create_ticket tool.
 */
enum nf_err	 nf_tickets_create(struct nf_app *, const struct nf_tenant *,
		    const char *customer_id, struct json_object *body,
		    struct json_object **out, struct nf_error *);

/* Create the collections' indexes (idempotent; nonflexctl migrate). */
enum nf_err	 nf_customers_migrate(struct nf_store *, struct nf_error *);

/* ---- the local store, for the routes (h_customers.c) and the seed ---- */

/* The app's store with the indexes ensured once per process and store
 * handle (lazily, as audit.c does). */
enum nf_err	 nf_customers_store(struct nf_app *, struct nf_store **, struct nf_error *);

/* What a client sees of a stored customer / order / ticket (allow-lists:
 * never tenant, _id or internal search keys).  New objects. */
struct json_object *nf_customer_view(struct json_object *doc);
struct json_object *nf_order_view(struct json_object *doc);

/* Customer id's newest documents of coll (orders, tickets, conversations:
 * their "customerId"), by sort_field, at most limit, each through view. */
enum nf_err	 nf_customers_recent(struct nf_store *, const char *tenant, const char *coll,
		    const char *id, const char *sort_field, int64_t limit,
		    struct json_object *(*view_of)(struct json_object *), struct json_object **out,
		    struct nf_error *);
struct json_object *nf_ticket_view(struct json_object *doc);

/* NF_OK when the local store or (for a tenant with a CRM) the CRM knows
 * external_id; NF_ENOTFOUND "customer_not_found" otherwise. */
enum nf_err	 nf_customers_exists(struct nf_app *, const struct nf_tenant *,
		    const char *external_id, struct nf_error *);

/*
 * Create a customer from a POST /api/customers body (borrowed): *out the
 * stored document.  400 naming the field; 409 "customer_exists".
 * default_cc completes national phone numbers (nf_phone_e164).
 */
enum nf_err	 nf_customers_create(struct nf_store *, const char *tenant,
		    const char *default_cc, struct json_object *body,
		    struct json_object **out, struct nf_error *);
/* Apply a PATCH body; *out the document after it, *fields (may be NULL)
 * the names of the changed fields (for the audit).  404, 400. */
enum nf_err	 nf_customers_update(struct nf_store *, const char *tenant,
		    const char *default_cc, const char *external_id,
		    struct json_object *body, struct json_object **out,
		    struct json_object **fields, struct nf_error *);
/* The store filter for GET /api/customers?q= (q may be NULL: all);
 * *out new.  400 "q" when it is too long. */
enum nf_err	 nf_customers_search_filter(const char *q, const char *default_cc,
		    struct json_object **out, struct nf_error *);

/* Create an order for customer_id (the caller checked it exists). */
enum nf_err	 nf_orders_create(struct nf_store *, const char *tenant,
		    const char *customer_id, struct json_object *body,
		    struct json_object **out, struct nf_error *);
/* PATCH a ticket of customer_id ({status?, priority?}): *out after,
 * *old_status (may be NULL; malloc'd) the status before.  404
 * "ticket_not_found", 400. */
enum nf_err	 nf_tickets_update(struct nf_store *, const char *tenant,
		    const char *customer_id, const char *ticket_id,
		    struct json_object *body, struct json_object **out,
		    char **old_status, struct nf_error *);

/* Seed demo.json's "customers" (each with its "orders" and "tickets")
 * into tenant; existing ones are left as they are.  report as seed.h's
 * nf_seed_report_fn (kinds "customer", "order", "ticket"). */
enum nf_err	 nf_customers_seed(struct nf_store *, const char *tenant,
		    struct json_object *demo,
		    void (*report)(const char *, const char *, const char *, int, void *),
		    void *arg, struct nf_error *);

#endif
