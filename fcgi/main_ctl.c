/*
 * main_ctl.c - `nonflexctl`, the administration CLI.
 *
 * Commands read the same environment as the workers (config.c), so
 * "nonflexctl check-config" run with the service's environment file tells
 * exactly what the workers will see.  Later modules add commands to the
 * table below.
 *
 * `agent` manages agents with the same rules as the admin routes
 * (h_agents.c's nf_agents_create/nf_agents_update) and audits every change
 * with the actor "nonflexctl".  Passwords are read from one line of stdin,
 * never from the command line, where ps(1) and shell history would keep
 * them; no prompt is printed, so it works in scripts.
 *
 * `provision` (provision.h) opens no store: it applies
 * infra/taskrouter.json to the tenant's Twilio account with the tenant's
 * own credentials and prints one line per resource.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "audit.h"
#include "authcache.h"
#include "config.h"
#include "customers.h"
#include "handlers.h"
#include "json.h"
#include "kv.h"
#include "log.h"
#include "nonflex.h"
#include "passwd.h"
#include "provision.h"
#include "seed.h"
#include "store.h"
#include "tenant.h"
#include "twilio_rest.h"
#include "valid.h"

struct ctl {
	struct nf_config	 cfg;
	struct nf_tenants	*tenants;
	struct nf_store		*store;
};

static int	cmd_check_config(struct ctl *, int, char **);
static int	cmd_migrate(struct ctl *, int, char **);
static int	cmd_seed(struct ctl *, int, char **);
static int	cmd_agent(struct ctl *, int, char **);
static int	cmd_provision(struct ctl *, int, char **);

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
	{ "agent", cmd_agent, 1,
	  "agent add --tenant ID [--role R]... [--skill S]... [--language L]...\n"
	  "          [--level N] [--name NAME] [--password-stdin] USERNAME\n"
	  "agent passwd --tenant ID [--password-stdin] USERNAME\n"
	  "agent disable|enable --tenant ID USERNAME\n"
	  "agent list --tenant ID\n"
	  "                        manage agents; passwords come from one line of stdin" },
	{ "provision", cmd_provision, 0,
	  "provision --tenant ID [--file FILE] [--dry-run]\n"
	  "                        create or update the tenant's Twilio TaskRouter\n"
	  "                        resources and Conversations webhook from FILE\n"
	  "                        (default infra/taskrouter.json); needs PUBLIC_URL" },
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
	if (nf_seed_indexes(c->store, &err) != NF_OK ||
	    nf_customers_migrate(c->store, &err) != NF_OK) {
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

/* ---- agent ---------------------------------------------------------- */

struct agent_args {
	const char		*tenant;
	const char		*username;
	struct json_object	*body;     /* fields for create/update */
};

/* Append s to the array field of body (created on first use). */
static void
body_push(struct json_object *body, const char *field, const char *s)
{
	struct json_object	*arr;

	if (!json_object_object_get_ex(body, field, &arr)) {
		arr = json_object_new_array();
		nf_json_add(body, field, arr);
	}
	json_object_array_add(arr, json_object_new_string(s));
}

/* Parse the options of `agent SUB`; 0 on success, 2 after a message. */
static int
agent_parse(int argc, char **argv, struct agent_args *a)
{
	static const struct option	 opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "role", required_argument, NULL, 'r' },
		{ "skill", required_argument, NULL, 's' },
		{ "language", required_argument, NULL, 'l' },
		{ "level", required_argument, NULL, 'v' },
		{ "name", required_argument, NULL, 'n' },
		{ "password-stdin", no_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t	 level;
	int	 ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "t:r:s:l:v:n:p", opts, NULL)) != -1) {
		switch (ch) {
		case 't': a->tenant = optarg; break;
		case 'r': body_push(a->body, "roles", optarg); break;
		case 's': body_push(a->body, "skills", optarg); break;
		case 'l': body_push(a->body, "languages", optarg); break;
		case 'n': nf_json_add_str(a->body, "name", optarg); break;
		case 'p': break;        /* the default: the password is on stdin */
		case 'v':
			if (!nf_valid_int(optarg, 1, 10, &level)) {
				fprintf(stderr, "nonflexctl: --level must be 1 to 10\n");
				return 2;
			}
			nf_json_add_int(a->body, "level", level);
			break;
		default:
			return 2;
		}
	}
	if (a->tenant == NULL) {
		fprintf(stderr, "nonflexctl: agent: --tenant is required\n");
		return 2;
	}
	if (optind < argc)
		a->username = argv[optind++];
	if (optind != argc) {
		fprintf(stderr, "nonflexctl: agent: one username only (passwords come "
		    "from stdin)\n");
		return 2;
	}
	return 0;
}

/* One line of stdin as the "password" field of body; 0 on success. */
static int
read_password(struct json_object *body)
{
	char	*line = NULL;
	size_t	 cap = 0;
	ssize_t	 n;

	if ((n = getline(&line, &cap, stdin)) <= 0) {
		fprintf(stderr, "nonflexctl: expected the password on stdin\n");
		free(line);
		return 1;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	nf_json_add_str(body, "password", line);
	explicit_bzero(line, cap);
	free(line);
	return 0;
}

static void
agent_error(const char *what, const struct nf_error *e)
{
	fprintf(stderr, "nonflexctl: %s: %s%s%s%s\n", what, e->code,
	    e->field[0] ? " (" : "", e->field, e->field[0] ? ")" : "");
	if (e->message[0])
		fprintf(stderr, "  %s\n", e->message);
}

static void
agent_audit(struct ctl *c, const char *tenant, const char *event, const char *id,
    const char *username, struct json_object *fields)
{
	struct json_object	*d = json_object_new_object();

	nf_json_add_str(d, "agentId", id);
	nf_json_add_str(d, "username", username);
	if (fields != NULL)
		nf_json_add(d, "fields", fields);
	nf_audit_store(c->store, tenant, "nonflexctl", event, NULL, d);
}

static int
agent_add(struct ctl *c, struct agent_args *a)
{
	struct json_object	*doc = NULL, *fields;
	struct nf_error		 e;

	nf_json_add_str(a->body, "username", a->username);
	if (read_password(a->body) != 0)
		return 1;
	nf_error_clear(&e);
	if (nf_agents_create(c->store, a->tenant, a->body, &doc, &e) != NF_OK) {
		agent_error("agent add", &e);
		return 1;
	}
	fields = json_object_new_array();
	json_object_object_foreach(a->body, k, v) {
		(void)v;
		json_object_array_add(fields, json_object_new_string(k));
	}
	agent_audit(c, a->tenant, "agent.create",
	    json_object_get_string(json_object_object_get(doc, "_id")), a->username, fields);
	printf("created agent %s (%s) in %s\n", a->username,
	    json_object_get_string(json_object_object_get(doc, "_id")), a->tenant);
	json_object_put(doc);
	return 0;
}

/* The id of tenant's agent username into id; 0 on success. */
static int
agent_id(struct ctl *c, const char *tenant, const char *username, char id[25])
{
	struct json_object	*f = json_object_new_object(), *doc = NULL, *v;
	struct nf_error		 e;
	enum nf_err		 rc;

	nf_json_add_str(f, "username", username);
	rc = nf_store_find_one(c->store, tenant, "agents", f, NULL, &doc, &e);
	json_object_put(f);
	if (rc != NF_OK) {
		fprintf(stderr, "nonflexctl: %s: no agent %s in %s\n",
		    rc == NF_ENOTFOUND ? "not found" : e.message, username, tenant);
		return 1;
	}
	json_object_object_get_ex(doc, "_id", &v);
	snprintf(id, 25, "%s", json_object_get_string(v));
	json_object_put(doc);
	return 0;
}

/* Running workers drop what they cached about the agent (authcache.h);
 * without Redis they notice within NF_AUTHCACHE_MAX_AGE_MS. */
static void
agent_tell_workers(struct ctl *c, const char *tenant, const char *id, const char *username)
{
	struct nf_kv	*kv = NULL;
	struct nf_error	 e;

	nf_error_clear(&e);
	if (nf_kv_open(c->cfg.redis_url, (int)c->cfg.redis_timeout_ms, &kv, &e) != NF_OK ||
	    nf_authcache_publish_agent(kv, tenant, id, &e) != NF_OK)
		fprintf(stderr, "nonflexctl: warning: Redis unreachable; sessions of %s may "
		    "go on for up to %d s\n", username, NF_AUTHCACHE_MAX_AGE_MS / 1000);
	nf_kv_free(kv);
}

/* passwd, disable, enable: a PATCH of body on the named agent. */
static int
agent_change(struct ctl *c, struct agent_args *a, const char *what)
{
	struct json_object	*fields = NULL;
	struct nf_error		 e;
	char			 id[25];

	if (agent_id(c, a->tenant, a->username, id) != 0)
		return 1;
	nf_error_clear(&e);
	if (nf_agents_update(c->store, a->tenant, id, a->body, &fields, &e) != NF_OK) {
		agent_error(what, &e);
		return 1;
	}
	agent_audit(c, a->tenant, "agent.update", id, a->username, fields);
	agent_tell_workers(c, a->tenant, id, a->username);
	printf("%s: agent %s in %s updated\n", what, a->username, a->tenant);
	return 0;
}

static int
agent_list(struct ctl *c, const char *tenant)
{
	struct json_object	*all = NULL, *sort, *d, *v;
	struct nf_find_opts	 o;
	struct nf_error		 e;
	size_t			 i, n;

	memset(&o, 0, sizeof(o));
	sort = json_object_new_object();
	nf_json_add_int(sort, "username", 1);
	o.sort = sort;
	if (nf_store_find(c->store, tenant, "agents", NULL, &o, &all, &e) != NF_OK) {
		json_object_put(sort);
		agent_error("agent list", &e);
		return 1;
	}
	printf("%-24s  %-20s  %-24s  %-9s  %s\n", "ID", "USERNAME", "ROLES", "STATUS",
	    "DISABLED");
	n = json_object_array_length(all);
	for (i = 0; i < n; i++) {
		d = json_object_array_get_idx(all, i);
		json_object_object_get_ex(d, "roles", &v);
		printf("%-24s  %-20s  %-24s  %-9s  %s\n",
		    json_object_get_string(json_object_object_get(d, "_id")),
		    json_object_get_string(json_object_object_get(d, "username")),
		    v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : "[]",
		    json_object_get_string(json_object_object_get(d, "status")),
		    json_object_get_boolean(json_object_object_get(d, "disabled")) ?
		    "yes" : "no");
	}
	json_object_put(all);
	json_object_put(sort);
	return 0;
}

static int
agent_dispatch(struct ctl *c, const char *sub, struct agent_args *a)
{
	if (strcmp(sub, "list") == 0)
		return agent_list(c, a->tenant);
	if (a->username == NULL) {
		fprintf(stderr, "nonflexctl: agent %s: USERNAME is required\n", sub);
		return 2;
	}
	if (strcmp(sub, "add") == 0)
		return agent_add(c, a);
	if (strcmp(sub, "passwd") == 0) {
		if (json_object_object_length(a->body) != 0) {
			fprintf(stderr, "nonflexctl: agent passwd takes no field options\n");
			return 2;
		}
		return read_password(a->body) != 0 ? 1 : agent_change(c, a, "agent passwd");
	}
	if (strcmp(sub, "disable") == 0 || strcmp(sub, "enable") == 0) {
		if (json_object_object_length(a->body) != 0) {
			fprintf(stderr, "nonflexctl: agent %s takes no field options\n", sub);
			return 2;
		}
		nf_json_add_bool(a->body, "disabled", sub[0] == 'd');
		return agent_change(c, a, sub[0] == 'd' ? "agent disable" : "agent enable");
	}
	fprintf(stderr, "nonflexctl: unknown agent command %s\n", sub);
	return 2;
}

static int
cmd_agent(struct ctl *c, int argc, char **argv)
{
	struct agent_args	 a;
	int			 rc;

	if (argc < 2) {
		fprintf(stderr, "nonflexctl: agent add|passwd|disable|enable|list ...\n");
		return 2;
	}
	memset(&a, 0, sizeof(a));
	a.body = json_object_new_object();
	if ((rc = agent_parse(argc - 1, argv + 1, &a)) == 0) {
		if (nf_tenant_find(c->tenants, a.tenant) == NULL) {
			fprintf(stderr, "nonflexctl: unknown tenant %s\n", a.tenant);
			rc = 1;
		} else
			rc = agent_dispatch(c, argv[1], &a);
	}
	json_object_put(a.body);
	return rc;
}

/* Configuration and tenants, for commands that need no store. */
static int
open_config(struct ctl *c)
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
	return 0;
}

static int
open_all(struct ctl *c)
{
	struct nf_error	 err;

	if (open_config(c) != 0)
		return 1;
	if (nf_store_open(c->cfg.store_uri, &c->store, &err) != NF_OK ||
	    nf_store_ping(c->store, &err) != NF_OK) {
		fprintf(stderr, "nonflexctl: store: %s\n", err.message);
		return 1;
	}
	return 0;
}

/* ---- provision ------------------------------------------------------ */

static void
provision_report(const char *kind, const char *name, const char *sid,
    enum nf_provision_action a, void *arg)
{
	const int	*dry_run = arg;

	printf("%-9s  %-24s  %-34s  %s\n", kind, name, sid[0] != '\0' ? sid : "-",
	    nf_provision_action_name(a, *dry_run));
	fflush(stdout);
}

/* The SIDs the tenants file needs, as a JSON snippet to paste. */
static void
provision_snippet(const char *tenant, const struct nf_provision_sids *s, int dry_run)
{
	struct json_object	*o = json_object_new_object();

	if (s->workspace[0] != '\0')
		nf_json_add_str(o, "workspaceSid", s->workspace);
	if (s->workflow[0] != '\0')
		nf_json_add_str(o, "workflowSid", s->workflow);
	if (dry_run)
		printf("\ndry run: %d resource(s) would change; nothing was written\n",
		    s->changes);
	else
		printf("\n%d resource(s) created or updated\n", s->changes);
	printf("Put into tenant %s's \"twilio\" settings in the tenants file:\n%s\n", tenant,
	    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
	    JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* provision --tenant ID [--file FILE] [--dry-run]: Twilio credentials and
 * PUBLIC_URL come from the environment and the tenants file, as for the
 * workers; needs no store. */
static int
cmd_provision(struct ctl *c, int argc, char **argv)
{
	static const struct option	 opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "file", required_argument, NULL, 'f' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const struct nf_tenant		*t;
	const char			*tenant = NULL, *file = "infra/taskrouter.json";
	struct json_object		*def = NULL;
	struct nf_tw_client		*tw = NULL;
	struct nf_provision_opts	 o;
	struct nf_provision_sids	 sids;
	struct nf_error			 err;
	int				 ch, dry_run = 0, rc = 1;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "t:f:n", opts, NULL)) != -1) {
		switch (ch) {
		case 't': tenant = optarg; break;
		case 'f': file = optarg; break;
		case 'n': dry_run = 1; break;
		default: return 2;
		}
	}
	if (tenant == NULL || optind != argc) {
		fprintf(stderr, "nonflexctl: provision --tenant ID [--file FILE] [--dry-run]\n");
		return 2;
	}
	if (open_config(c) != 0)
		return 1;
	if ((t = nf_tenant_find(c->tenants, tenant)) == NULL) {
		fprintf(stderr, "nonflexctl: unknown tenant %s\n", tenant);
		return 1;
	}
	if ((def = read_json_file(file)) == NULL)
		return 1;
	nf_error_clear(&err);
	if (nf_tw_client_new(&c->cfg, &tw, &err) != NF_OK) {
		fprintf(stderr, "nonflexctl: %s: %s\n", err.field, err.message);
		goto out;
	}
	memset(&o, 0, sizeof(o));
	o.public_url = c->cfg.public_url;
	o.dry_run = dry_run;
	o.report = provision_report;
	o.arg = &dry_run;
	printf("provisioning tenant %s from %s%s\n", tenant, file,
	    dry_run ? " (dry run: nothing is written)" : "");
	if (nf_provision_run(tw, t, def, &o, &sids, &err) != NF_OK) {
		fprintf(stderr, "nonflexctl: provision %s: %s\n", tenant, err.message);
		goto out;
	}
	provision_snippet(tenant, &sids, dry_run);
	rc = 0;
out:
	nf_tw_client_free(tw);
	json_object_put(def);
	return rc;
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
