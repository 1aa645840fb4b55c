/*
 * audit.h - the append-only security and change log (`audit` collection:
 * {tenant, at, actor, event, ip, requestId, data}).
 *
 * DESIGN: recording never fails the caller's request: a store error is
 * logged (without the data) and the request goes on, because refusing a
 * login because the audit write failed would turn a store hiccup into an
 * outage; the log line keeps the event.  Data must never contain secrets
 * (passwords, tokens): callers pass only ids, names and outcomes.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_AUDIT_H
#define NF_AUDIT_H

#include "nonflex.h"

struct json_object;
struct nf_req;
struct nf_store;

/*
 * Record event for r's tenant; actor is an agent id or username (NULL:
 * r->principal's agent, or "anonymous"); ip from REMOTE_ADDR; data is
 * consumed (may be NULL).
 */
void	nf_audit(struct nf_req *r, const char *event, const char *actor,
	    struct json_object *data);
/* The same outside a request (nonflexctl, jobs); ip may be NULL. */
void	nf_audit_store(struct nf_store *, const char *tenant, const char *actor,
	    const char *event, const char *ip, struct json_object *data);

#endif
