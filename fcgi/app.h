/*
 * app.h - the per-process context of a FastCGI worker.
 *
 * DESIGN: one struct nf_app per process holds the configuration, the
 * tenants, and the connections to the store and Redis.  Connections are
 * made once and reused by every request (never per request).  The store is
 * opened lazily and re-tried at most once per second after a failure, so
 * a worker starts even when the store is down and routes that need it
 * answer 503 "store_unavailable" until it is back.  SIGHUP only sets a
 * flag (nf_app_request_reload); the next request reloads.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_APP_H
#define NF_APP_H

#include <stdint.h>

#include "config.h"
#include "nonflex.h"
#include "tenant.h"

struct nf_kv;
struct nf_spool;
struct nf_store;

struct nf_app {
	struct nf_config	 cfg;            /* current configuration */
	struct nf_tenants	*tenants;        /* current tenants (may be NULL if none loaded) */
	struct nf_store		*store;          /* NULL until opened */
	int64_t			 store_retry_ms; /* monotonic time of the next open attempt */
	struct nf_kv		*kv;             /* lazy Redis connection, or NULL */
	struct nf_spool		*spool;          /* NONFLEX_SPOOL_DIR, opened on first use */
	int64_t			 spool_retry_ms; /* monotonic time of the next open attempt */
};

/*
 * Load config and tenants, init logging and events, prepare Redis.  On a
 * bad configuration or tenants file returns the error (logged by the
 * caller) and leaves app empty.
 */
enum nf_err	 nf_app_init(struct nf_app *, const char *prog, struct nf_error *);
void		 nf_app_cleanup(struct nf_app *);   /* accepts NULL */

/*
 * Re-read configuration and tenants.  A part that fails to load keeps the
 * old value and the reason is logged.  Connections whose URL changed are
 * reopened.  Cannot fail.
 */
void		 nf_app_reload(struct nf_app *);
/* Async-signal-safe: ask for a reload before the next request. */
void		 nf_app_request_reload(void);
/* Reload if a reload was asked for; returns 1 when it happened. */
int		 nf_app_maybe_reload(struct nf_app *);

/* The open store; NF_EUNAVAIL "store_unavailable" when it cannot be
 * opened (the reason is logged, not returned). */
enum nf_err	 nf_app_store(struct nf_app *, struct nf_store **, struct nf_error *);
/* The inbound spool (spool.h): NULL when NONFLEX_SPOOL_DIR is unset, or
 * while the directory cannot be used (logged; tried again every second). */
struct nf_spool	*nf_app_spool(struct nf_app *);
/* The Redis handle: NULL only when REDIS_URL could not be used (logged);
 * while Redis is down its commands fail with NF_EUNAVAIL. */
struct nf_kv	*nf_app_kv(struct nf_app *);

#endif
