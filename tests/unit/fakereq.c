/*
 * fakereq.c - see fakereq.h.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "app.h"
#include "json.h"
#include "nonflex.h"
#include "req.h"
#include "router.h"
#include "fakereq.h"
#include "testutil.h"

int
tu_app_run(struct nf_app *app, const char *name, Suite *s)
{
	struct nf_error	 e;
	int		 rc;

	setenv("TENANTS_FILE", TOP_SRCDIR "/infra/tenants.json", 1);
	setenv("REDIS_URL", "redis://127.0.0.1:1", 1);
	setenv("NONFLEX_LOG_LEVEL", "error", 1);
	unsetenv("DEFAULT_TENANT");
	if (nf_app_init(app, name, &e) != NF_OK) {
		fprintf(stderr, "app init: %s\n", e.message);
		srunner_free(srunner_create(s));        /* frees s */
		return 1;
	}
	rc = tu_run(s);
	nf_app_cleanup(app);
	return rc;
}

ssize_t
tu_src_read(void *ctx, char *buf, size_t n)
{
	struct tu_src	*s = ctx;
	size_t		 k = s->len - s->off;

	if (k > n)
		k = n;
	if (k > 7)
		k = 7;  /* short reads on purpose */
	memcpy(buf, s->p + s->off, k);
	s->off += k;
	return (ssize_t)k;
}

struct sink {
	char	*buf;
	size_t	 len;
};

static ssize_t
sink_write(void *ctx, const char *b, size_t n)
{
	struct sink	*s = ctx;

	s->buf = nf_xrealloc(s->buf, s->len + n + 1);
	memcpy(s->buf + s->len, b, n);
	s->len += n;
	s->buf[s->len] = '\0';
	return (ssize_t)n;
}

char *
tu_resp_text(struct nf_req *r)
{
	struct sink	 out = { NULL, 0 };

	ck_assert_int_eq(nf_resp_write(r, sink_write, &out), 0);
	return out.buf;
}

char *
tu_req_run(struct nf_app *app, char *const *env, struct tu_src *body)
{
	struct nf_req	 r;
	char		*resp;

	nf_req_init(&r, app, env, body != NULL ? tu_src_read : NULL, body);
	nf_router_handle(&r, nf_routes, nf_routes_len);
	resp = tu_resp_text(&r);
	nf_req_cleanup(&r);
	return resp;
}

int
tu_resp_status(const char *resp)
{
	return atoi(resp + 8);
}

struct json_object *
tu_resp_body(const char *resp)
{
	const char		*b = strstr(resp, "\r\n\r\n");
	struct json_object	*o = NULL;
	struct nf_error		 e;

	ck_assert_ptr_nonnull(b);
	b += 4;
	ck_assert_msg(nf_json_parse(b, strlen(b), &o, &e) == NF_OK, "body: %s", b);
	return o;
}

const char *
tu_resp_error(struct json_object *o, const char *name)
{
	struct json_object	*err, *v;

	if (!json_object_object_get_ex(o, "error", &err) ||
	    !json_object_object_get_ex(err, name, &v))
		return NULL;
	return json_object_get_string(v);
}

void
tu_check_error(const char *resp, const char *code)
{
	struct json_object	*o = tu_resp_body(resp);

	ck_assert_str_eq(tu_resp_error(o, "code"), code);
	ck_assert_ptr_nonnull(tu_resp_error(o, "message"));
	ck_assert_ptr_nonnull(tu_resp_error(o, "request_id"));
	json_object_put(o);
	ck_assert(strstr(resp, "Content-Type: application/json; charset=utf-8\r\n") != NULL);
}
