/*
 * twhealth.h - whether Twilio accepts a tenant's credentials (RELIABILITY
 * battery 27): a 401 or 403 from any REST call nonflex-jobs makes for a
 * tenant flags the tenant "misconfigured" until its next successful call.
 *
 * DESIGN: the flag is one Redis key per tenant ("nf:<tenant>:twilio:
 * health", a JSON object), shared by every process: the jobs set and clear
 * it, the FastCGI workers show it to the tenant's supervisors and admins.
 * Setting uses SET NX and clearing DEL's count, so among many jobs failing
 * or succeeding at once exactly one announces the change (log line, audit
 * entry, event on the tenant's "queue" topic).  Redis alone is enough: no
 * decision depends on the flag (each delivery reacts to the answer of its
 * own Twilio call, see delivery.c), so a flag lost with Redis only hides
 * the notice until the next refused call sets it again, and the audit
 * entries are the durable record of when it happened.  Nothing here ever
 * sees a credential: only the HTTP status, Twilio's error code and its
 * (control-character-free) message.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_TWHEALTH_H
#define NF_TWHEALTH_H

#include "nonflex.h"

struct json_object;
struct nf_app;
struct nf_kv;
struct nf_tenant;

/*
 * Twilio refused tenant t's credentials (status 401/403, Twilio code and
 * message as answered, message may be NULL).  The first refusal after a
 * success sets the flag {status "misconfigured", code, httpStatus,
 * message, since} and announces it: one error log line naming the tenant
 * and the code, audit "twilio.misconfigured", event
 * "twilio.misconfigured" on the "queue" topic.  Never fails the caller
 * (a Redis or nchan failure is logged).
 */
void		 nf_twhealth_refused(struct nf_app *, const struct nf_tenant *t, long status,
		    int code, const char *message);

/* A Twilio call for t succeeded: clear the flag; when it was set, log,
 * audit and publish "twilio.recovered".  Never fails the caller. */
void		 nf_twhealth_ok(struct nf_app *, const struct nf_tenant *t);

/*
 * The tenant's state for the API: a new object {"status":"ok"} or the
 * flag ({"status":"misconfigured","code","httpStatus","message","since"}).
 * NF_EUNAVAIL when Redis cannot be asked (kv NULL or down).
 */
enum nf_err	 nf_twhealth_get(struct nf_kv *, const char *tenant, struct json_object **out,
		    struct nf_error *);

#endif
