/*
 * h_customers.c - customer routes for the agent desk: lookups (by phone,
 * by externalId; CRM first, local store as fallback), search, the local
 * store's create and update, orders, tickets and the 360 view.
 *
 * Thin handlers over customers.c: the route table (routes.c) requires a
 * staff session for every route, the store scopes every query to the
 * request's tenant, so another tenant's ids answer 404 like unknown ones.
 * ":id" is the customer's externalId.  Lookups answer the customer with a
 * `source` field ("crm", "cache" or "local").  Creates and updates of
 * customers and tickets are audited with ids and field names only.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "app.h"
#include "audit.h"
#include "conversations.h"
#include "customers.h"
#include "handlers.h"
#include "json.h"
#include "listing.h"
#include "nonflex.h"
#include "req.h"
#include "store.h"
#include "tenant.h"

#define LIST_DEFAULT	50
#define LIST_MAX	200
#define VIEW_TICKETS	50      /* newest tickets in the 360 view */
#define VIEW_CONVERSATIONS 20   /* ... and conversations */

static const char *
cc_of(struct nf_req *r)
{
	return r->app->cfg.phone_default_cc;
}

/* Answer a looked-up customer (consumed) with its source. */
static void
respond_lookup(struct nf_req *r, struct json_object *c, enum nf_customer_source src)
{
	nf_json_add_str(c, "source", nf_customer_source_name(src));
	nf_resp_json(r, 200, c);
}

static void
audit_ids(struct nf_req *r, const char *event, const char *customer,
    const char *ticket, struct json_object *extra)
{
	struct json_object	*d = extra != NULL ? extra : json_object_new_object();

	nf_json_add_str(d, "customerId", customer);
	if (ticket != NULL)
		nf_json_add_str(d, "ticketId", ticket);
	nf_audit(r, event, NULL, d);
}

/*
 * GET /api/customers/phone/:phone (staff): 200 the customer with orders[]
 * and source; 400 invalid_phone; 404 customer_not_found.
 */
enum nf_err
h_customers_by_phone(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*c = NULL;
	enum nf_customer_source	 src;
	enum nf_err		 rc;

	if ((rc = nf_customers_by_phone(r->app, r->tenant, nf_req_path_param(r, "phone"),
	    &c, &src, e)) != NF_OK)
		return rc;
	respond_lookup(r, c, src);
	return NF_OK;
}

/* GET /api/customers/:id (staff): 200 as by phone; 404 customer_not_found. */
enum nf_err
h_customers_get(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*c = NULL;
	enum nf_customer_source	 src;
	enum nf_err		 rc;

	if ((rc = nf_customers_by_id(r->app, r->tenant, nf_req_path_param(r, "id"),
	    &c, &src, e)) != NF_OK)
		return rc;
	respond_lookup(r, c, src);
	return NF_OK;
}

/*
 * GET /api/customers?q=&limit=&cursor= (staff): 200 {customers, next},
 * the local store by externalId; q matches a first, last or full name or
 * an e-mail (whole value, any case) or a phone number in any spelling.
 * 400 naming q, limit or cursor.
 */
enum nf_err
h_customers_list(struct nf_req *r, struct nf_error *e)
{
	static const struct nf_listing	 listing = { "customers", "externalId", 1,
	    LIST_DEFAULT, LIST_MAX, "customers", nf_customer_view, NULL };
	struct json_object		*f = NULL;
	struct nf_store			*st;
	enum nf_err			 rc;

	if ((rc = nf_customers_search_filter(nf_pairs_get(&r->query, "q"), cc_of(r), &f,
	    e)) == NF_OK &&
	    (rc = nf_customers_store(r->app, &st, e)) == NF_OK)
		rc = nf_listing_respond(r, st, f, &listing, e);
	json_object_put(f);
	return rc;
}

/*
 * POST /api/customers (staff) {externalId, profile{firstName, lastName?,
 * email?, phone?}, phones?, language?, tier?, notes?, addresses?}: 201 the
 * customer; 400 naming the field; 409 customer_exists.
 */
enum nf_err
h_customers_create(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*doc = NULL;
	struct nf_store		*st;
	enum nf_err		 rc;

	if ((rc = nf_customers_store(r->app, &st, e)) != NF_OK ||
	    (rc = nf_customers_create(st, r->tenant->id, cc_of(r), r->json, &doc, e)) != NF_OK)
		return rc;
	audit_ids(r, "customer.create", nf_json_field_str(doc, "externalId"), NULL, NULL);
	nf_resp_json(r, 201, nf_customer_view(doc));
	json_object_put(doc);
	return NF_OK;
}

/* PATCH /api/customers/:id (staff): 200 the customer; 400 naming the field
 * (externalId, tenant, _id, createdAt are immutable); 404. */
enum nf_err
h_customers_update(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*doc = NULL, *fields = NULL, *d;
	struct nf_store		*st;
	const char		*id = nf_req_path_param(r, "id");
	enum nf_err		 rc;

	if ((rc = nf_customers_store(r->app, &st, e)) != NF_OK ||
	    (rc = nf_customers_update(st, r->tenant->id, cc_of(r), id, r->json, &doc,
	    &fields, e)) != NF_OK)
		return rc;
	d = json_object_new_object();
	nf_json_add(d, "fields", fields);
	audit_ids(r, "customer.update", id, NULL, d);
	nf_resp_json(r, 200, nf_customer_view(doc));
	json_object_put(doc);
	return NF_OK;
}

/* 404 unless the customer of the path exists (locally or in the CRM). */
static enum nf_err
path_customer(struct nf_req *r, struct nf_store **st, const char **id, struct nf_error *e)
{
	enum nf_err	 rc;

	*id = nf_req_path_param(r, "id");
	if ((rc = nf_customers_exists(r->app, r->tenant, *id, e)) != NF_OK)
		return rc;
	return nf_customers_store(r->app, st, e);
}

static enum nf_err
list_of(struct nf_req *r, const struct nf_listing *l, struct nf_error *e)
{
	struct json_object	*f;
	struct nf_store		*st;
	const char		*id;
	enum nf_err		 rc;

	if ((rc = path_customer(r, &st, &id, e)) != NF_OK)
		return rc;
	f = nf_json_pair("customerId", id);
	rc = nf_listing_respond(r, st, f, l, e);
	json_object_put(f);
	return rc;
}

/* GET /api/customers/:id/orders (staff): 200 {orders, next}, newest
 * first; 404 customer_not_found. */
enum nf_err
h_customers_orders_list(struct nf_req *r, struct nf_error *e)
{
	static const struct nf_listing	 listing = { "orders", "createdAt", -1,
	    LIST_DEFAULT, LIST_MAX, "orders", nf_order_view, NULL };

	return list_of(r, &listing, e);
}

/* GET /api/customers/:id/tickets (staff): 200 {tickets, next}, newest
 * first; 404 customer_not_found. */
enum nf_err
h_customers_tickets_list(struct nf_req *r, struct nf_error *e)
{
	static const struct nf_listing	 listing = { "tickets", "createdAt", -1,
	    LIST_DEFAULT, LIST_MAX, "tickets", nf_ticket_view, NULL };

	return list_of(r, &listing, e);
}

/*
 * POST /api/customers/:id/orders (staff) {orderId, total, currency?,
 * status?, items?[{sku, name, qty, price}]}: 201 the order; 400 naming the
 * field; 404 customer_not_found; 409 order_exists.
 */
enum nf_err
h_customers_orders_create(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*doc = NULL;
	struct nf_store		*st;
	const char		*id;
	enum nf_err		 rc;

	if ((rc = path_customer(r, &st, &id, e)) != NF_OK ||
	    (rc = nf_orders_create(st, r->tenant->id, id, r->json, &doc, e)) != NF_OK)
		return rc;
	nf_resp_json(r, 201, nf_order_view(doc));
	json_object_put(doc);
	return NF_OK;
}

/*
 * POST /api/customers/:id/tickets (staff) {subject, description?,
 * priority?, status?}: 201 the ticket (crm.status "pending" when the
 * tenant has a CRM: a job sends it); 400 naming the field; 404.
 */
enum nf_err
h_customers_tickets_create(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*doc = NULL;
	const char		*id = nf_req_path_param(r, "id");
	enum nf_err		 rc;

	if ((rc = nf_tickets_create(r->app, r->tenant, id, r->json, &doc, e)) != NF_OK)
		return rc;
	audit_ids(r, "ticket.create", id, nf_json_field_str(doc, "ticketId"), NULL);
	nf_resp_json(r, 201, nf_ticket_view(doc));
	json_object_put(doc);
	return NF_OK;
}

/*
 * PATCH /api/customers/:id/tickets/:ticketId (staff) {status?,
 * priority?}: 200 the ticket; 400 naming the field; 404 ticket_not_found
 * (also for another customer's or tenant's ticket).
 */
enum nf_err
h_customers_tickets_update(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*doc = NULL, *d;
	struct nf_store		*st;
	const char		*id = nf_req_path_param(r, "id");
	const char		*tid = nf_req_path_param(r, "ticketId");
	char			*old = NULL;
	enum nf_err		 rc;

	if ((rc = nf_customers_store(r->app, &st, e)) != NF_OK ||
	    (rc = nf_tickets_update(st, r->tenant->id, id, tid, r->json, &doc, &old,
	    e)) != NF_OK)
		return rc;
	d = json_object_new_object();
	nf_json_add_str(d, "from", old);
	nf_json_add_str(d, "to", nf_json_field_str(doc, "status"));
	audit_ids(r, "ticket.update", id, tid, d);
	nf_resp_json(r, 200, nf_ticket_view(doc));
	json_object_put(doc);
	free(old);
	return NF_OK;
}

/*
 * GET /api/customers/:id/360 (staff): 200 {customer, orders, tickets,
 * conversations, source} in one answer for the agent desk; 404.
 */
enum nf_err
h_customers_360(struct nf_req *r, struct nf_error *e)
{
	struct json_object	*c = NULL, *orders = NULL, *tickets = NULL, *convs = NULL;
	struct json_object	*root;
	struct nf_store		*st;
	enum nf_customer_source	 src;
	const char		*id = nf_req_path_param(r, "id");
	enum nf_err		 rc;

	if ((rc = nf_customers_by_id(r->app, r->tenant, id, &c, &src, e)) != NF_OK)
		return rc;
	if ((rc = nf_customers_store(r->app, &st, e)) != NF_OK ||
	    (rc = nf_customers_recent(st, r->tenant->id, "tickets", id, "createdAt", VIEW_TICKETS,
	    nf_ticket_view, &tickets, e)) != NF_OK ||
	    (rc = nf_conv_store(r->app, &st, e)) != NF_OK ||
	    (rc = nf_customers_recent(st, r->tenant->id, "conversations", id, "lastMessageAt",
	    VIEW_CONVERSATIONS, nf_conv_view, &convs, e)) != NF_OK) {
		json_object_put(tickets);
		json_object_put(c);
		return rc;
	}
	/* The lookup carries the orders (the CRM's or the local ones). */
	if (json_object_object_get_ex(c, "orders", &orders))
		json_object_get(orders);
	else
		orders = json_object_new_array();
	json_object_object_del(c, "orders");
	root = json_object_new_object();
	nf_json_add(root, "customer", c);
	nf_json_add(root, "orders", orders);
	nf_json_add(root, "tickets", tickets);
	nf_json_add(root, "conversations", convs);
	nf_json_add_str(root, "source", nf_customer_source_name(src));
	nf_resp_json(r, 200, root);
	return NF_OK;
}
