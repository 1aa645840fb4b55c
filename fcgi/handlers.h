/*
 * handlers.h - request handlers named in the route table (routes.c).
 *
 * Each handler runs after the router has matched the route, resolved the
 * tenant, checked the role and parsed the body (router.h); it fills the
 * response or returns an error for the router's envelope.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_HANDLERS_H
#define NF_HANDLERS_H

#include "nonflex.h"

struct nf_req;

/* h_health.c */
enum nf_err	h_health_get(struct nf_req *, struct nf_error *);
/* h_tenants.c */
enum nf_err	h_tenants_current(struct nf_req *, struct nf_error *);
/* h_events.c */
enum nf_err	h_events_auth(struct nf_req *, struct nf_error *);
/* h_dev.c: development and test routes (NONFLEX_DEV_ROUTES=1 only) */
enum nf_err	h_dev_echo(struct nf_req *, struct nf_error *);
enum nf_err	h_dev_echo_form(struct nf_req *, struct nf_error *);
enum nf_err	h_dev_events(struct nf_req *, struct nf_error *);
enum nf_err	h_dev_kv(struct nf_req *, struct nf_error *);
enum nf_err	h_dev_hang(struct nf_req *, struct nf_error *);
enum nf_err	h_dev_crash(struct nf_req *, struct nf_error *);
enum nf_err	h_dev_counter_inc(struct nf_req *, struct nf_error *);
enum nf_err	h_dev_counter_get(struct nf_req *, struct nf_error *);

#endif
