/*
 * main_ctl.c - `nonflexctl`, the administration CLI.
 *
 * Commands read the same environment as the workers (config.c), so
 * "nonflexctl check-config" run with the service's environment file tells
 * exactly what the workers will see.  Later modules add commands to the
 * table below.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "config.h"
#include "json.h"
#include "log.h"
#include "nonflex.h"
#include "seed.h"
#include "store.h"
#include "tenant.h"

struct ctl {
	struct nf_config	 cfg;
	struct nf_tenants	*tenants;
	struct nf_store		*store;
};

static int	cmd_check_config(struct ctl *, int, char **);
static int	cmd_migrate(struct ctl *, int, char **);
static int	cmd_seed(struct ctl *, int, char **);

static const struct {
	const char	*name;
	int		(*fn)(struct ctl *, int, char **);
	int		 needs_store;   /* open config, tenants and store first */
	const char	*usage;
} cmds[] = {
	{ "check-config", cmd_check_config, 0,
	  "check-config            check the environment and tenants file" },
	{ "migrate", cmd_migrate, 1,
	  "migrate                 create the store's indexes" },
	{ "seed", cmd_seed, 1,
	  "seed [--demo FILE] [--tenant ID]...\n"
	  "                        load demo agents into the demo tenants" },
};

static void
usage(FILE *out)
{
	size_t	 i;

	fprintf(out, "usage: nonflexctl COMMAND [ARGS]\n\ncommands:\n");
	for (i = 0; i < NF_ARRAY_LEN(cmds); i++)
		fprintf(out, "  %s\n", cmds[i].usage);
	fprintf(out, "\nSettings come from the environment (see .env.example).\n");
}

static int
cmd_check_config(struct ctl *c, int argc, char **argv)
{
	size_t	 n;

	(void)c; (void)argc; (void)argv;
	n = nf_config_check(stdout);
	if (n == 0)
		printf("configuration OK\n");
	return n == 0 ? 0 : 1;
}

static int
cmd_migrate(struct ctl *c, int argc, char **argv)
{
	struct nf_error	 err;

	(void)argc; (void)argv;
	if (nf_seed_indexes(c->store, &err) != NF_OK) {
		fprintf(stderr, "nonflexctl: migrate: %s\n", err.message);
		return 1;
	}
	printf("indexes ready on %s store\n", nf_store_backend(c->store));
	return 0;
}

static void
seed_report(const char *tenant, const char *kind, const char *key, int created, void *arg)
{
	(void)arg;
	printf("  %-8s %-6s %-12s %s\n", tenant, kind, key,
	    created ? "created" : "already there");
}

/* Read and strictly parse a JSON file; NULL (after a message) on error. */
static struct json_object *
read_json_file(const char *path)
{
	struct json_object	*obj = NULL;
	struct nf_error		 err;
	FILE			*f;
	char			*buf = NULL;
	size_t			 len = 0;

	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "nonflexctl: cannot open %s\n", path);
		return NULL;
	}
	if (getdelim(&buf, &len, '\0', f) < 0) {
		fprintf(stderr, "nonflexctl: cannot read %s\n", path);
	} else if (nf_json_parse(buf, strlen(buf), &obj, &err) != NF_OK) {
		fprintf(stderr, "nonflexctl: %s: %s\n", path, err.message);
		obj = NULL;
	}
	free(buf);
	fclose(f);
	return obj;
}

static int
seed_one(struct ctl *c, const char *tenant, struct json_object *demo)
{
	struct nf_error	 err;

	if (nf_tenant_find(c->tenants, tenant) == NULL) {
		fprintf(stderr, "nonflexctl: unknown tenant %s\n", tenant);
		return 1;
	}
	if (nf_seed_tenant(c->store, tenant, demo, seed_report, NULL, &err) != NF_OK) {
		fprintf(stderr, "nonflexctl: seed %s: %s\n", tenant, err.message);
		return 1;
	}
	return 0;
}

static int
cmd_seed(struct ctl *c, int argc, char **argv)
{
	static const struct option	 opts[] = {
		{ "demo", required_argument, NULL, 'd' },
		{ "tenant", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const char		*demo_path = "infra/seed/demo.json";
	struct json_object	*demo;
	char			**only = nf_xcalloc((size_t)argc + 1, sizeof(char *));
	size_t			 nonly = 0, i;
	int			 ch, rc = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "d:t:", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			demo_path = optarg;
			break;
		case 't':
			only[nonly++] = optarg;
			break;
		default:
			free(only);
			return 2;
		}
	}
	if ((demo = read_json_file(demo_path)) == NULL) {
		free(only);
		return 1;
	}
	printf("seeding %s store:\n", nf_store_backend(c->store));
	if (nonly > 0) {
		for (i = 0; i < nonly && rc == 0; i++)
			rc = seed_one(c, only[i], demo);
	} else {
		for (i = 0; i < c->tenants->n && rc == 0; i++)
			rc = seed_one(c, c->tenants->v[i].id, demo);
	}
	if (rc == 0)
		printf("\nDemo logins (every demo password is password123 - change them):\n"
		    "  agent sarah, supervisor sam, admin admin\n");
	json_object_put(demo);
	free(only);
	return rc;
}

static int
open_all(struct ctl *c)
{
	struct nf_error	 err;

	if (nf_config_load(&c->cfg, &err) != NF_OK) {
		fprintf(stderr, "nonflexctl: %s: %s\n", err.field, err.message);
		return 1;
	}
	if (nf_tenants_load(c->cfg.tenants_file, &c->tenants, &err) != NF_OK) {
		fprintf(stderr, "nonflexctl: tenants file %s: %s\n",
		    c->cfg.tenants_file, err.message);
		return 1;
	}
	if (nf_store_open(c->cfg.store_uri, &c->store, &err) != NF_OK ||
	    nf_store_ping(c->store, &err) != NF_OK) {
		fprintf(stderr, "nonflexctl: store: %s\n", err.message);
		return 1;
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	struct ctl	 c;
	size_t		 i;
	int		 rc;

	memset(&c, 0, sizeof(c));
	nf_log_init("nonflexctl", NF_LOG_WARN);
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("nonflexctl %s\n", PACKAGE_VERSION);
		return 0;
	}
	for (i = 0; i < NF_ARRAY_LEN(cmds); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			break;
	if (i == NF_ARRAY_LEN(cmds)) {
		fprintf(stderr, "nonflexctl: unknown command %s\n", argv[1]);
		usage(stderr);
		return 2;
	}
	rc = cmds[i].needs_store ? open_all(&c) : 0;
	if (rc == 0)
		rc = cmds[i].fn(&c, argc - 1, argv + 1);
	nf_store_free(c.store);
	nf_tenants_free(c.tenants);
	nf_config_cleanup(&c.cfg);
	return rc;
}
