/*
 * t_agents.c - handler-level tests of the agent routes (h_agents.c), the
 * audit log (audit.c, h_audit.c) and the password policy (passwd.c).
 *
 * Handlers are called directly with a request built here: the tenant and
 * r->principal are set by hand (the router's authorize() is tested with
 * AUTH's code), the store is a temporary SQLite file and Redis a private
 * redis-server (testutil), so presence mirroring is checked for real.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>

#include "app.h"
#include "audit.h"
#include "handlers.h"
#include "json.h"
#include "kv.h"
#include "nonflex.h"
#include "passwd.h"
#include "req.h"
#include "router.h"
#include "store.h"
#include "tenant.h"
#include "testutil.h"

static char		*redis_url;
static char		*dir;
static struct nf_app	 app;
static char		 admin_id[25];

typedef enum nf_err (*handler_fn)(struct nf_req *, struct nf_error *);

/* Who calls: an agent id and its role bits (0: anonymous). */
struct who {
	const char	*id;
	unsigned	 roles;
};

struct res {
	int			 status;
	struct json_object	*body;   /* parsed JSON or NULL */
	char			*raw;    /* raw body text */
	const char		*type;   /* Content-Type of the body */
};

static void
res_free(struct res *x)
{
	json_object_put(x->body);
	free(x->raw);
	memset(x, 0, sizeof(*x));
}

/*
 * Run handler h for tenant with path param id (may be NULL), query string
 * (may be NULL), JSON body text (may be NULL) as caller w.
 */
static struct res
call(handler_fn h, const char *tenant, const char *id, const char *query,
    const char *body, struct who w)
{
	char *const	 env[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/api/test",
		"REMOTE_ADDR=127.0.0.9", NULL };
	struct nf_req	 r;
	struct nf_error	 e;
	struct res	 x;
	enum nf_err	 rc;

	memset(&x, 0, sizeof(x));
	nf_error_clear(&e);
	nf_req_init(&r, &app, env, NULL, NULL);
	nf_request_id_choose("test-req-1", r.request_id);
	r.tenant = nf_tenant_find(app.tenants, tenant);
	ck_assert_ptr_nonnull(r.tenant);
	if (id != NULL)
		nf_pairs_add(&r.params, "id", 2, id, strlen(id));
	if (query != NULL)
		ck_assert_int_eq(nf_form_parse(query, strlen(query), 256, "invalid_query",
		    &r.query, &e), NF_OK);
	if (body != NULL)
		ck_assert_int_eq(nf_json_parse(body, strlen(body), &r.json, &e), NF_OK);
	if (w.id != NULL) {
		r.principal.authenticated = 1;
		snprintf(r.principal.agent_id, sizeof(r.principal.agent_id), "%s", w.id);
		r.principal.roles = w.roles;
	}
	if ((rc = h(&r, &e)) != NF_OK)
		nf_resp_error(&r, rc, &e);
	x.status = r.status;
	if (r.out != NULL) {
		x.raw = nf_xstrndup(r.out, r.out_len);
		x.type = r.out_type;
		if (r.out_type == NULL)
			ck_assert_int_eq(nf_json_parse(r.out, r.out_len, &x.body, &e), NF_OK);
	}
	nf_req_cleanup(&r);
	return x;
}

static const char *
jstr(struct json_object *o, const char *path1, const char *path2)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, path1, &v))
		return NULL;
	if (path2 != NULL && !json_object_object_get_ex(v, path2, &v))
		return NULL;
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static struct who
admin(void)
{
	struct who	 w = { admin_id, NF_ROLE_ADMIN };

	return w;
}

/* Create an agent as admin; returns its id (static buffer per call site). */
static void
create(const char *tenant, const char *body, char id[25])
{
	struct res	 x = call(h_agents_create, tenant, NULL, NULL, body, admin());

	ck_assert_msg(x.status == 201, "create: %d %s", x.status, x.raw);
	snprintf(id, 25, "%s", jstr(x.body, "id", NULL));
	ck_assert_ptr_null(strstr(x.raw, "password"));
	ck_assert_ptr_null(strstr(x.raw, "$y$"));
	res_free(&x);
}

static struct nf_store *
store(void)
{
	struct nf_store	*st;
	struct nf_error	 e;

	ck_assert_int_eq(nf_app_store(&app, &st, &e), NF_OK);
	return st;
}

static void
setup(void)
{
	struct json_object	*doc;
	struct nf_error		 e;
	char			*uri, *hash;

	dir = tu_tmpdir("agents");
	uri = nf_xasprintf("sqlite://%s/nf.db", dir);
	setenv("STORE_URI", uri, 1);
	free(uri);
	setenv("REDIS_URL", redis_url, 1);
	setenv("TENANTS_FILE", TOP_SRCDIR "/infra/tenants.json", 1);
	setenv("NONFLEX_LOG_LEVEL", "error", 1);
	setenv("JWT_SECRET", "0123456789abcdef0123456789abcdef-test", 1);
	unsetenv("DEFAULT_TENANT");
	ck_assert_msg(nf_app_init(&app, "t_agents", &e) == NF_OK, "%s", e.message);
	/* The first admin, straight into the store (as the seed does). */
	ck_assert_int_eq(nf_passwd_hash("correct horse battery", &hash), NF_OK);
	doc = json_object_new_object();
	nf_json_add_str(doc, "username", "root");
	nf_json_add_str(doc, "password", hash);
	nf_json_add(doc, "roles", json_tokener_parse("[\"admin\"]"));
	nf_json_add_bool(doc, "disabled", 0);
	nf_json_add_str(doc, "status", "offline");
	ck_assert_int_eq(nf_store_insert(store(), "tenant1", "agents", doc, admin_id, &e),
	    NF_OK);
	json_object_put(doc);
	free(hash);
}

static void
teardown(void)
{
	nf_app_cleanup(&app);
	memset(&app, 0, sizeof(app));
	tu_rmtree(dir);
	free(dir);
	dir = NULL;
}

/* Expect status and, for errors, the code and field. */
static void
expect(struct res x, int status, const char *code, const char *field)
{
	ck_assert_msg(x.status == status, "want %d, got %d: %s", status, x.status,
	    x.raw ? x.raw : "");
	if (code != NULL)
		ck_assert_str_eq(jstr(x.body, "error", "code"), code);
	if (field != NULL)
		ck_assert_str_eq(jstr(x.body, "error", "field"), field);
	res_free(&x);
}

START_TEST(policy_table)
{
	static const struct { const char *pw, *user; int ok; } t[] = {
		{ "password123", "bob", 0 },
		{ "PASSWORD123", "bob", 0 },
		{ "short", "bob", 0 },
		{ "123456789", "bob", 0 },
		{ "averyverylongname", "averyverylongname", 0 },
		{ "AveryVeryLongName", "averyverylongname", 0 },
		{ "qwertyuiop", "bob", 0 },
		{ "\xff\xfe invalid utf8 here", "bob", 0 },
		{ "correct horse battery", "bob", 1 },
		{ "0123456789", "bob", 1 },
	};
	struct nf_error	 e;
	char		 big[NF_PASSWD_MAX + 2];
	size_t		 i;

	for (i = 0; i < NF_ARRAY_LEN(t); i++) {
		nf_error_clear(&e);
		ck_assert_msg((nf_passwd_policy(t[i].pw, t[i].user, "password", &e) ==
		    NF_OK) == t[i].ok, "case %zu", i);
		if (!t[i].ok) {
			ck_assert_str_eq(e.code, "weak_password");
			ck_assert_str_eq(e.field, "password");
			ck_assert_ptr_null(strstr(e.message, t[i].pw));
		}
	}
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(nf_passwd_policy(big, "bob", "password", &e), NF_EINVAL);
	big[NF_PASSWD_MAX] = '\0';
	ck_assert_int_eq(nf_passwd_policy(big, "bob", "password", &e), NF_OK);
	ck_assert_int_eq(nf_passwd_policy(NULL, "bob", "password", &e), NF_EINVAL);
}
END_TEST

START_TEST(create_validation)
{
	static const struct { const char *body, *code, *field; } t[] = {
		{ "{\"password\":\"correct horse 1\"}", "missing_field", "username" },
		{ "{\"username\":\"x\",\"password\":\"correct horse 1\"}", "invalid_field", "username" },
		{ "{\"username\":\"Bob\",\"password\":\"correct horse 1\"}", "invalid_field", "username" },
		{ "{\"username\":\"a b\",\"password\":\"correct horse 1\"}", "invalid_field", "username" },
		{ "{\"username\":{\"$ne\":\"\"},\"password\":\"correct horse 1\"}", "invalid_field", "username" },
		{ "{\"username\":\"bob\"}", "missing_field", "password" },
		{ "{\"username\":\"bob\",\"password\":null}", "missing_field", "password" },
		{ "{\"username\":\"bob\",\"password\":12345678901}", "invalid_field", "password" },
		{ "{\"username\":\"bob\",\"password\":\"password123\"}", "weak_password", "password" },
		{ "{\"username\":\"bob\",\"password\":\"short\"}", "weak_password", "password" },
		{ "{\"username\":\"bobbobbobbob\",\"password\":\"bobbobbobbob\"}", "weak_password", "password" },
		{ "{\"username\":\"bob\",\"password\":\"correct horse 1\",\"roles\":[\"root\"]}", "invalid_field", "roles" },
		{ "{\"username\":\"bob\",\"password\":\"correct horse 1\",\"roles\":[]}", "invalid_field", "roles" },
		{ "{\"username\":\"bob\",\"password\":\"correct horse 1\",\"roles\":\"admin\"}", "invalid_field", "roles" },
		{ "{\"username\":\"bob\",\"password\":\"correct horse 1\",\"level\":0}", "invalid_field", "level" },
		{ "{\"username\":\"bob\",\"password\":\"correct horse 1\",\"level\":11}", "invalid_field", "level" },
		{ "{\"username\":\"bob\",\"password\":\"correct horse 1\",\"level\":\"5\"}", "invalid_field", "level" },
		{ "{\"username\":\"bob\",\"password\":\"correct horse 1\",\"skills\":\"sales\"}", "invalid_field", "skills" },
		{ "{\"username\":\"bob\",\"password\":\"correct horse 1\",\"skills\":[1]}", "invalid_field", "skills" },
		{ "{\"username\":\"bob\",\"password\":\"correct horse 1\",\"languages\":[\"\"]}", "invalid_field", "languages" },
		{ "{\"username\":\"bob\",\"password\":\"correct horse 1\",\"tenant\":\"tenant2\"}", "unknown_field", "tenant" },
		{ "{\"username\":\"bob\",\"password\":\"correct horse 1\",\"_id\":\"0123456789abcdef01234567\"}", "unknown_field", "_id" },
	};
	struct json_object	*all = NULL;
	struct nf_error		 e;
	size_t			 i;

	for (i = 0; i < NF_ARRAY_LEN(t); i++)
		expect(call(h_agents_create, "tenant1", NULL, NULL, t[i].body, admin()),
		    400, t[i].code, t[i].field);
	/* Nothing was stored by any of them. */
	ck_assert_int_eq(nf_store_find(store(), "tenant1", "agents", NULL, NULL, &all, &e),
	    NF_OK);
	ck_assert_int_eq(json_object_array_length(all), 1);
	json_object_put(all);
}
END_TEST

START_TEST(create_read_duplicate)
{
	struct res	 x;
	char		 id[25];

	create("tenant1", "{\"username\":\"bob\",\"password\":\"correct horse 1\","
	    "\"skills\":[\"sales\",\"sales\",\"support\"],\"languages\":[\"en\"],"
	    "\"roles\":[\"supervisor\",\"agent\",\"agent\"],\"level\":4,\"name\":\"Bob\"}", id);
	x = call(h_agents_get, "tenant1", id, NULL, NULL, admin());
	ck_assert_int_eq(x.status, 200);
	ck_assert_str_eq(jstr(x.body, "username", NULL), "bob");
	ck_assert_str_eq(jstr(x.body, "status", NULL), "offline");
	ck_assert_str_eq(json_object_to_json_string(json_object_object_get(x.body, "skills")),
	    "[ \"sales\", \"support\" ]");
	ck_assert_str_eq(json_object_to_json_string(json_object_object_get(x.body, "roles")),
	    "[ \"agent\", \"supervisor\" ]");
	ck_assert_ptr_null(strstr(x.raw, "password"));
	ck_assert_ptr_null(strstr(x.raw, "tenant"));
	res_free(&x);
	expect(call(h_agents_create, "tenant1", NULL, NULL,
	    "{\"username\":\"bob\",\"password\":\"another horse 2\"}", admin()),
	    409, "username_taken", "username");
	/* The same username in another tenant is another agent. */
	create("tenant2", "{\"username\":\"bob\",\"password\":\"correct horse 1\"}", id);
	/* The stored password is a yescrypt hash of the given one. */
	{
		struct json_object	*f = json_tokener_parse("{\"username\":\"bob\"}"), *d;
		struct nf_error		 e;

		ck_assert_int_eq(nf_store_find_one(store(), "tenant1", "agents", f, NULL, &d,
		    &e), NF_OK);
		ck_assert_int_eq(nf_passwd_verify("correct horse 1", jstr(d, "password", NULL)), 1);
		ck_assert_int_eq(nf_passwd_needs_upgrade(jstr(d, "password", NULL)), 0);
		json_object_put(d);
		json_object_put(f);
	}
}
END_TEST

static char *
redis_get(const char *key)
{
	struct redisReply	*rep = NULL;
	struct nf_error		 e;
	char			*v = NULL;

	ck_assert_int_eq(nf_kv_command(nf_app_kv(&app), &rep, &e, "GET %s", key), NF_OK);
	if (rep->type == REDIS_REPLY_STRING)
		v = nf_xstrdup(rep->str);
	freeReplyObject(rep);
	return v;
}

START_TEST(status_rules)
{
	struct who	 bob, sam;
	struct res	 x;
	char		 bob_id[25], sam_id[25], *v;

	create("tenant1", "{\"username\":\"bob\",\"password\":\"correct horse 1\"}", bob_id);
	create("tenant1", "{\"username\":\"sam\",\"password\":\"correct horse 1\","
	    "\"roles\":[\"supervisor\"]}", sam_id);
	bob.id = bob_id;
	bob.roles = NF_ROLE_AGENT;
	sam.id = sam_id;
	sam.roles = NF_ROLE_SUPERVISOR;
	/* Own status. */
	x = call(h_agents_status, "tenant1", bob_id, NULL, "{\"status\":\"busy\"}", bob);
	ck_assert_int_eq(x.status, 200);
	ck_assert_str_eq(jstr(x.body, "status", NULL), "busy");
	res_free(&x);
	{
		char *key = nf_xasprintf("nf:tenant1:presence:%s", bob_id);

		v = redis_get(key);
		ck_assert_str_eq(v, "busy");
		free(v);
		free(key);
	}
	/* Someone else's: 403 for agents and supervisors, even for bad bodies. */
	expect(call(h_agents_status, "tenant1", sam_id, NULL, "{\"status\":\"busy\"}", bob),
	    403, "forbidden", NULL);
	expect(call(h_agents_status, "tenant1", bob_id, NULL, "{\"status\":\"busy\"}", sam),
	    403, "forbidden", NULL);
	expect(call(h_agents_status, "tenant1", sam_id, NULL, "{\"status\":\"nope\"}", bob),
	    403, NULL, NULL);
	/* Bad values. */
	expect(call(h_agents_status, "tenant1", bob_id, NULL, "{\"status\":\"away\"}", bob),
	    400, "invalid_field", "status");
	expect(call(h_agents_status, "tenant1", bob_id, NULL, "{\"status\":1}", bob),
	    400, "invalid_field", "status");
	expect(call(h_agents_status, "tenant1", bob_id, NULL, "{}", bob),
	    400, "missing_field", "status");
	expect(call(h_agents_status, "tenant1", bob_id, NULL,
	    "{\"status\":\"busy\",\"level\":9}", bob), 400, "unknown_field", "level");
	/* Admin may set anyone's; unknown and malformed ids are 404. */
	expect(call(h_agents_status, "tenant1", bob_id, NULL, "{\"status\":\"available\"}",
	    admin()), 200, NULL, NULL);
	expect(call(h_agents_status, "tenant1", "0123456789abcdef01234567", NULL,
	    "{\"status\":\"available\"}", admin()), 404, "agent_not_found", NULL);
	expect(call(h_agents_status, "tenant1", "not-an-id", NULL,
	    "{\"status\":\"available\"}", admin()), 404, NULL, NULL);
	/* Tenant 2's admin cannot reach tenant 1's agent, even by id. */
	expect(call(h_agents_status, "tenant2", bob_id, NULL, "{\"status\":\"offline\"}",
	    admin()), 404, NULL, NULL);
	x = call(h_agents_get, "tenant1", bob_id, NULL, NULL, admin());
	ck_assert_str_eq(jstr(x.body, "status", NULL), "available");
	res_free(&x);
	/* Level: own or staff above agent. */
	x = call(h_agents_level, "tenant1", bob_id, NULL, NULL, bob);
	ck_assert_int_eq(x.status, 200);
	ck_assert_int_eq(json_object_get_int(json_object_object_get(x.body, "level")), 1);
	res_free(&x);
	expect(call(h_agents_level, "tenant1", sam_id, NULL, NULL, bob), 403, NULL, NULL);
	expect(call(h_agents_level, "tenant1", bob_id, NULL, NULL, sam), 200, NULL, NULL);
	expect(call(h_agents_level, "tenant2", bob_id, NULL, NULL, admin()), 404, NULL, NULL);
}
END_TEST

START_TEST(patch_rules)
{
	static const struct { const char *body, *code, *field; } t[] = {
		{ "{\"tenant\":\"tenant2\"}", "immutable_field", "tenant" },
		{ "{\"_id\":\"0123456789abcdef01234567\"}", "immutable_field", "_id" },
		{ "{\"createdAt\":\"2000-01-01T00:00:00.000Z\"}", "immutable_field", "createdAt" },
		{ "{\"username\":\"eve\"}", "immutable_field", "username" },
		{ "{\"level\":3,\"tenant\":\"tenant2\"}", "immutable_field", "tenant" },
		{ "{\"owner_id\":\"x\"}", "unknown_field", "owner_id" },
		{ "{}", "empty_update", NULL },
		{ "{\"level\":99}", "invalid_field", "level" },
		{ "{\"disabled\":\"yes\"}", "invalid_field", "disabled" },
		{ "{\"password\":\"password123\"}", "weak_password", "password" },
		{ "{\"roles\":[\"admin\",\"god\"]}", "invalid_field", "roles" },
	};
	struct res	 x;
	char		 id[25], *before;
	size_t		 i;

	create("tenant1", "{\"username\":\"bob\",\"password\":\"correct horse 1\"}", id);
	x = call(h_agents_get, "tenant1", id, NULL, NULL, admin());
	before = nf_xstrdup(x.raw);
	res_free(&x);
	for (i = 0; i < NF_ARRAY_LEN(t); i++)
		expect(call(h_agents_update, "tenant1", id, NULL, t[i].body, admin()),
		    400, t[i].code, t[i].field);
	x = call(h_agents_get, "tenant1", id, NULL, NULL, admin());
	ck_assert_str_eq(x.raw, before);        /* nothing changed */
	res_free(&x);
	free(before);
	x = call(h_agents_update, "tenant1", id, NULL, "{\"level\":7,\"skills\":[\"billing\"],"
	    "\"name\":\"Robert\",\"password\":\"a brand new secret\"}", admin());
	ck_assert_int_eq(x.status, 200);
	ck_assert_int_eq(json_object_get_int(json_object_object_get(x.body, "level")), 7);
	ck_assert_str_eq(jstr(x.body, "name", NULL), "Robert");
	ck_assert_ptr_null(strstr(x.raw, "password"));
	res_free(&x);
	expect(call(h_agents_update, "tenant1", "0123456789abcdef01234567", NULL,
	    "{\"level\":2}", admin()), 404, "agent_not_found", NULL);
	expect(call(h_agents_update, "tenant2", id, NULL, "{\"level\":2}", admin()),
	    404, NULL, NULL);
	expect(call(h_agents_delete, "tenant2", id, NULL, NULL, admin()), 404, NULL, NULL);
	expect(call(h_agents_get, "tenant2", id, NULL, NULL, admin()), 404, NULL, NULL);
	expect(call(h_agents_delete, "tenant1", id, NULL, NULL, admin()), 204, NULL, NULL);
	expect(call(h_agents_get, "tenant1", id, NULL, NULL, admin()), 404, NULL, NULL);
	expect(call(h_agents_delete, "tenant1", id, NULL, NULL, admin()), 404, NULL, NULL);
}
END_TEST

START_TEST(last_admin)
{
	char	 id2[25];

	expect(call(h_agents_update, "tenant1", admin_id, NULL, "{\"roles\":[\"agent\"]}",
	    admin()), 409, "last_admin", NULL);
	expect(call(h_agents_update, "tenant1", admin_id, NULL, "{\"disabled\":true}",
	    admin()), 409, "last_admin", NULL);
	expect(call(h_agents_delete, "tenant1", admin_id, NULL, NULL, admin()),
	    409, "last_admin", NULL);
	/* Harmless changes to the last admin are fine. */
	expect(call(h_agents_update, "tenant1", admin_id, NULL,
	    "{\"roles\":[\"admin\",\"agent\"],\"disabled\":false}", admin()), 200, NULL, NULL);
	/* A disabled second admin does not count. */
	create("tenant1", "{\"username\":\"ada\",\"password\":\"correct horse 1\","
	    "\"roles\":[\"admin\"],\"disabled\":true}", id2);
	expect(call(h_agents_delete, "tenant1", admin_id, NULL, NULL, admin()),
	    409, "last_admin", NULL);
	expect(call(h_agents_update, "tenant1", id2, NULL, "{\"disabled\":false}", admin()),
	    200, NULL, NULL);
	/* With two enabled admins one may go; then the other is the last. */
	expect(call(h_agents_update, "tenant1", admin_id, NULL, "{\"roles\":[\"agent\"]}",
	    admin()), 200, NULL, NULL);
	expect(call(h_agents_delete, "tenant1", id2, NULL, NULL, admin()),
	    409, "last_admin", NULL);
	/* Another tenant's admins are not counted. */
	expect(call(h_agents_update, "tenant1", id2, NULL, "{\"disabled\":true}", admin()),
	    409, "last_admin", NULL);
}
END_TEST

START_TEST(list_filter_page)
{
	struct res	 x;
	char		 id[25], *url;
	const char	*next;

	create("tenant1", "{\"username\":\"bob\",\"password\":\"correct horse 1\","
	    "\"skills\":[\"sales\"]}", id);
	create("tenant1", "{\"username\":\"cat\",\"password\":\"correct horse 1\","
	    "\"skills\":[\"support\",\"sales\"]}", id);
	create("tenant1", "{\"username\":\"dan\",\"password\":\"correct horse 1\"}", id);
	create("tenant2", "{\"username\":\"eve\",\"password\":\"correct horse 1\","
	    "\"skills\":[\"sales\"]}", id);
	x = call(h_agents_list, "tenant1", NULL, "skill=sales", NULL, admin());
	ck_assert_int_eq(x.status, 200);
	ck_assert_int_eq(json_object_array_length(json_object_object_get(x.body, "agents")), 2);
	ck_assert_ptr_null(strstr(x.raw, "password"));
	ck_assert_ptr_null(strstr(x.raw, "\"eve\""));
	res_free(&x);
	x = call(h_agents_list, "tenant1", NULL, "limit=2", NULL, admin());
	ck_assert_int_eq(json_object_array_length(json_object_object_get(x.body, "agents")), 2);
	next = jstr(x.body, "next", NULL);
	ck_assert_ptr_nonnull(next);
	url = nf_xasprintf("limit=2&cursor=%s", next);
	res_free(&x);
	x = call(h_agents_list, "tenant1", NULL, url, NULL, admin());
	free(url);
	ck_assert_int_eq(json_object_array_length(json_object_object_get(x.body, "agents")), 2);
	ck_assert_ptr_null(jstr(x.body, "next", NULL));
	res_free(&x);
	expect(call(h_agents_list, "tenant1", NULL, "status=away", NULL, admin()),
	    400, NULL, "status");
	expect(call(h_agents_list, "tenant1", NULL, "limit=0", NULL, admin()),
	    400, NULL, "limit");
	expect(call(h_agents_list, "tenant1", NULL, "limit=-5", NULL, admin()),
	    400, NULL, "limit");
	expect(call(h_agents_list, "tenant1", NULL, "limit=100000000000", NULL, admin()),
	    400, NULL, "limit");
	expect(call(h_agents_list, "tenant1", NULL, "cursor=garbage", NULL, admin()),
	    400, "invalid_cursor", NULL);
	x = call(h_agents_list, "tenant1", NULL, "status=offline&skill=support", NULL,
	    admin());
	ck_assert_int_eq(json_object_array_length(json_object_object_get(x.body, "agents")), 1);
	res_free(&x);
}
END_TEST

START_TEST(audit_records)
{
	struct json_object	*all = NULL, *f;
	struct nf_error		 e;
	struct res		 x;
	struct who		 bob;
	char			 id[25], *nd;
	size_t			 i, lines = 0;

	create("tenant1", "{\"username\":\"bob\",\"password\":\"correct horse 1\"}", id);
	bob.id = id;
	bob.roles = NF_ROLE_AGENT;
	/* 2 ms apart, so "newest first" has one right answer. */
	usleep(2000);
	expect(call(h_agents_status, "tenant1", id, NULL, "{\"status\":\"busy\"}", bob),
	    200, NULL, NULL);
	usleep(2000);
	expect(call(h_agents_update, "tenant1", id, NULL,
	    "{\"password\":\"another secret 99\"}", admin()), 200, NULL, NULL);
	usleep(2000);
	expect(call(h_agents_delete, "tenant1", id, NULL, NULL, admin()), 204, NULL, NULL);
	nf_audit_store(store(), "tenant2", "someone", "agent.create", NULL, NULL);
	/* Stored: the right events, actors, tenant, never a password. */
	ck_assert_int_eq(nf_store_find(store(), "tenant1", "audit", NULL, NULL, &all, &e),
	    NF_OK);
	ck_assert_int_eq(json_object_array_length(all), 4);
	for (i = 0; i < 4; i++) {
		struct json_object *d = json_object_array_get_idx(all, i);
		const char *s = json_object_to_json_string(d);

		ck_assert_ptr_null(strstr(s, "secret"));
		ck_assert_ptr_null(strstr(s, "horse"));
		ck_assert_ptr_null(strstr(s, "$y$"));
		ck_assert_str_eq(jstr(d, "ip", NULL), "127.0.0.9");
		ck_assert_str_eq(jstr(d, "requestId", NULL), "test-req-1");
		ck_assert_uint_eq(strlen(jstr(d, "at", NULL)), 24);
	}
	json_object_put(all);
	f = json_tokener_parse("{\"event\":\"agent.status\"}");
	ck_assert_int_eq(nf_store_find_one(store(), "tenant1", "audit", f, NULL, &all, &e),
	    NF_OK);
	ck_assert_str_eq(jstr(all, "actor", NULL), id);
	ck_assert_str_eq(jstr(all, "data", "to"), "busy");
	ck_assert_str_eq(jstr(all, "data", "from"), "offline");
	json_object_put(all);
	json_object_put(f);

	/* Listing: newest first, filters, tenant-scoped. */
	x = call(h_audit_list, "tenant1", NULL, NULL, NULL, admin());
	ck_assert_int_eq(x.status, 200);
	all = json_object_object_get(x.body, "entries");
	ck_assert_int_eq(json_object_array_length(all), 4);
	ck_assert_str_eq(jstr(json_object_array_get_idx(all, 0), "event", NULL), "agent.delete");
	ck_assert_str_eq(jstr(json_object_array_get_idx(all, 3), "event", NULL), "agent.create");
	ck_assert_ptr_null(strstr(x.raw, "tenant"));
	res_free(&x);
	x = call(h_audit_list, "tenant1", NULL, "event=agent.update", NULL, admin());
	all = json_object_object_get(x.body, "entries");
	ck_assert_int_eq(json_object_array_length(all), 1);
	ck_assert_str_eq(json_object_to_json_string(json_object_object_get(
	    json_object_object_get(json_object_array_get_idx(all, 0), "data"), "fields")),
	    "[ \"password\" ]");
	res_free(&x);
	x = call(h_audit_list, "tenant1", NULL, "actor=nobody", NULL, admin());
	ck_assert_int_eq(json_object_array_length(json_object_object_get(x.body, "entries")), 0);
	res_free(&x);
	x = call(h_audit_list, "tenant1", NULL, "since=2999-01-01", NULL, admin());
	ck_assert_int_eq(json_object_array_length(json_object_object_get(x.body, "entries")), 0);
	res_free(&x);
	x = call(h_audit_list, "tenant1", NULL, "since=2000-01-01T00:00:00Z&until=2999-12-31",
	    NULL, admin());
	ck_assert_int_eq(json_object_array_length(json_object_object_get(x.body, "entries")), 4);
	res_free(&x);
	x = call(h_audit_list, "tenant1", NULL, "limit=3", NULL, admin());
	ck_assert_ptr_nonnull(jstr(x.body, "next", NULL));
	res_free(&x);
	expect(call(h_audit_list, "tenant1", NULL, "since=yesterday", NULL, admin()),
	    400, "invalid_query", "since");
	expect(call(h_audit_list, "tenant1", NULL, "until=2026-02-30", NULL, admin()),
	    400, "invalid_query", "until");
	expect(call(h_audit_list, "tenant1", NULL, "event=A%20B", NULL, admin()),
	    400, "invalid_query", "event");
	expect(call(h_audit_list, "tenant1", NULL, "limit=1000", NULL, admin()),
	    400, "invalid_query", "limit");
	expect(call(h_audit_list, "tenant1", NULL, "cursor=%7B%22%24ne%22%3A1%7D", NULL,
	    admin()), 400, "invalid_cursor", NULL);

	/* Export: NDJSON, one object per line, same filters. */
	x = call(h_audit_export, "tenant1", NULL, NULL, NULL, admin());
	ck_assert_int_eq(x.status, 200);
	ck_assert_str_eq(x.type, "application/x-ndjson; charset=utf-8");
	for (nd = x.raw; *nd != '\0'; nd = strchr(nd, '\n') + 1) {
		struct json_object	*o = NULL;

		ck_assert_ptr_nonnull(strchr(nd, '\n'));
		ck_assert_int_eq(nf_json_parse(nd, (size_t)(strchr(nd, '\n') - nd), &o, &e),
		    NF_OK);
		json_object_put(o);
		lines++;
	}
	ck_assert_uint_eq(lines, 4);
	res_free(&x);
	x = call(h_audit_export, "tenant2", NULL, "event=agent.create", NULL, admin());
	ck_assert_int_eq(x.status, 200);
	ck_assert_ptr_nonnull(strstr(x.raw, "someone"));
	ck_assert_ptr_null(strstr(x.raw, "bob"));
	res_free(&x);
}
END_TEST

static Suite *
agents_suite(void)
{
	Suite	*s = suite_create("agents");
	TCase	*tc = tcase_create("handlers");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, policy_table);
	tcase_add_test(tc, create_validation);
	tcase_add_test(tc, create_read_duplicate);
	tcase_add_test(tc, status_rules);
	tcase_add_test(tc, patch_rules);
	tcase_add_test(tc, last_admin);
	tcase_add_test(tc, list_filter_page);
	tcase_add_test(tc, audit_records);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_main_redis(agents_suite, &redis_url);
}
