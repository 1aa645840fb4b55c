/*
 * breaker.h - a circuit breaker per tenant and remote service, shared by
 * every worker through Redis (RELIABILITY battery 31).
 *
 * DESIGN: when a remote service (the CRM) keeps failing, every lookup
 * would hold a worker for its full timeout and the pool would run dry.
 * After `failures` failures within `window_s`, the breaker opens for
 * `open_s`: callers skip the service and use their fallback at once.  When
 * it closes again the next call is a trial; a success clears the count.
 * Keys are tenant-namespaced, so one tenant's broken CRM never slows
 * another's.  Redis trouble never opens a breaker (the caller then simply
 * calls the service).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_BREAKER_H
#define NF_BREAKER_H

struct nf_kv;

struct nf_breaker {
	const char	*name;       /* "crm" */
	int		 failures;   /* failures that open it; 0 disables the breaker */
	int		 window_s;   /* ... counted within this window */
	int		 open_s;     /* how long it stays open */
};

/* 1 when calls should be skipped now (kv may be NULL: never open). */
int	nf_breaker_is_open(struct nf_kv *, const char *tenant, const struct nf_breaker *);
/* Record a call's outcome: ok clears the count, a failure counts and may
 * open the breaker (logged once when it opens). */
void	nf_breaker_record(struct nf_kv *, const char *tenant, const struct nf_breaker *, int ok);

#endif
