/*
 * seed.h - loads demo data (infra/seed/demo.json) into a tenant, for
 * `nonflexctl seed` and the quickstart.  Idempotent: existing documents
 * (matched by natural key, e.g. agent username) are left untouched.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_SEED_H
#define NF_SEED_H

#include "nonflex.h"

struct json_object;
struct nf_store;

/* Called once per seeded item: kind ("agent"), key (username), created (1)
 * or already present (0). */
typedef void (*nf_seed_report_fn)(const char *tenant, const char *kind,
    const char *key, int created, void *arg);

/* Seed tenant from the parsed demo document (borrowed). */
enum nf_err	nf_seed_tenant(struct nf_store *, const char *tenant,
		    struct json_object *demo, nf_seed_report_fn, void *arg,
		    struct nf_error *);

/* Indexes every collection needs; run by seed and by `nonflexctl migrate`. */
enum nf_err	nf_seed_indexes(struct nf_store *, struct nf_error *);

#endif
