/*
 * app.c - per-process worker context (see app.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "events.h"
#include "kv.h"
#include "log.h"
#include "spool.h"
#include "nonflex.h"
#include "store.h"

static volatile sig_atomic_t	reload_pending;

/* After a failed open, wait this long before the next attempt so a dead
 * MongoDB does not cost every request a connect timeout. */
#define STORE_RETRY_MS 1000

static void
open_kv(struct nf_app *app)
{
	struct nf_error	 e;

	nf_error_clear(&e);
	if (nf_kv_open(app->cfg.redis_url, (int)app->cfg.redis_timeout_ms, &app->kv, &e) != NF_OK) {
		app->kv = NULL;
		nf_error("cannot use REDIS_URL: %s", e.message);
	}
}

enum nf_err
nf_app_init(struct nf_app *app, const char *prog, struct nf_error *e)
{
	enum nf_err	 rc;

	memset(app, 0, sizeof(*app));
	nf_log_init(prog, NF_LOG_INFO);
	if ((rc = nf_config_load(&app->cfg, e)) != NF_OK)
		return rc;
	nf_log_init(prog, (enum nf_log_level)app->cfg.log_level);
	if ((rc = nf_tenants_load(app->cfg.tenants_file, &app->tenants, e)) != NF_OK) {
		nf_config_cleanup(&app->cfg);
		return rc;
	}
	nf_events_init(app->cfg.nchan_socket);
	open_kv(app);
	return NF_OK;
}

void
nf_app_cleanup(struct nf_app *app)
{
	if (app == NULL)
		return;
	nf_store_free(app->store);
	nf_kv_free(app->kv);
	nf_spool_free(app->spool);
	nf_events_cleanup();
	nf_tenants_free(app->tenants);
	nf_config_cleanup(&app->cfg);
	memset(app, 0, sizeof(*app));
}

static int
changed(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") != 0;
}

void
nf_app_reload(struct nf_app *app)
{
	struct nf_config	 cfg;
	struct nf_tenants	*t = NULL;
	struct nf_error		 e;

	nf_error_clear(&e);
	if (nf_config_load(&cfg, &e) != NF_OK) {
		nf_error("reload: configuration kept: %s", e.message);
	} else {
		if (changed(cfg.store_uri, app->cfg.store_uri)) {
			nf_store_free(app->store);
			app->store = NULL;
			app->store_retry_ms = 0;
		}
		if (changed(cfg.spool_dir, app->cfg.spool_dir)) {
			nf_spool_free(app->spool);
			app->spool = NULL;
			app->spool_retry_ms = 0;
		}
		if (changed(cfg.redis_url, app->cfg.redis_url) ||
		    cfg.redis_timeout_ms != app->cfg.redis_timeout_ms) {
			nf_kv_free(app->kv);
			app->kv = NULL;
		}
		nf_config_cleanup(&app->cfg);
		app->cfg = cfg;
		nf_log_init(NULL, (enum nf_log_level)app->cfg.log_level);
		nf_events_init(app->cfg.nchan_socket);
		if (app->kv == NULL)
			open_kv(app);
	}
	if (nf_tenants_load(app->cfg.tenants_file, &t, &e) != NF_OK) {
		nf_error("reload: tenants kept, %s is invalid: %s", app->cfg.tenants_file,
		    e.message);
		return;
	}
	nf_tenants_free(app->tenants);
	app->tenants = t;
	nf_info("configuration and tenants reloaded");
}

void
nf_app_request_reload(void)
{
	reload_pending = 1;
}

int
nf_app_maybe_reload(struct nf_app *app)
{
	if (!reload_pending)
		return 0;
	reload_pending = 0;
	nf_app_reload(app);
	return 1;
}

enum nf_err
nf_app_store(struct nf_app *app, struct nf_store **out, struct nf_error *e)
{
	struct nf_error	 se;
	int64_t		 now;

	*out = NULL;
	if (app->store == NULL) {
		now = nf_mono_ms();
		if (now < app->store_retry_ms)
			return nf_error_set(e, NF_EUNAVAIL, "store_unavailable", NULL,
			    "the document store is unavailable");
		nf_error_clear(&se);
		if (nf_store_open(app->cfg.store_uri, &app->store, &se) != NF_OK) {
			app->store = NULL;
			app->store_retry_ms = now + STORE_RETRY_MS;
			nf_error("cannot open the store: %s", se.message);
			return nf_error_set(e, NF_EUNAVAIL, "store_unavailable", NULL,
			    "the document store is unavailable");
		}
	}
	*out = app->store;
	return NF_OK;
}

struct nf_spool *
nf_app_spool(struct nf_app *app)
{
	struct nf_error	 e;

	if (app->spool != NULL || app->cfg.spool_dir == NULL || *app->cfg.spool_dir == '\0' ||
	    nf_mono_ms() < app->spool_retry_ms)
		return app->spool;
	if (nf_spool_open(app->cfg.spool_dir, &app->spool, &e) != NF_OK)
		app->spool_retry_ms = nf_mono_ms() + STORE_RETRY_MS;
	return app->spool;
}

struct nf_kv *
nf_app_kv(struct nf_app *app)
{
	return app->kv;
}
