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
 * customer is found by profile.phone or any entry of phones[].  Every
 * function is tenant-scoped; validation errors name the field at fault.
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

#endif
