/*
 * fakereq.h - helpers for the unit tests that run requests through the real
 * pipeline (nf_req_init, nf_router_handle on the real route table,
 * nf_resp_write) without FastCGI: t_req and t_router.  A body source that
 * hands out a few bytes at a time, a response sink that collects the raw
 * answer, and accessors for that answer's status and JSON error envelope.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_FAKEREQ_H
#define NF_FAKEREQ_H

#include <sys/types.h>

#include <stddef.h>

#include <check.h>
#include <json-c/json.h>

struct nf_app;
struct nf_req;

/*
 * main() of a pipeline test program: nf_app_init(app, name) with the
 * shipped tenants file, an unreachable Redis, quiet logs and DEFAULT_TENANT
 * unset (set any other variable before), run s (tu_run), nf_app_cleanup.
 * Returns the exit status; 1 after saying why when the app cannot start.
 */
int	 tu_app_run(struct nf_app *app, const char *name, Suite *s);

/* A request body: tu_src_read returns at most 7 bytes per call, so short
 * reads are exercised on purpose.  off counts what was read. */
struct tu_src {
	const char	*p;     /* body bytes */
	size_t		 len;   /* how many */
	size_t		 off;   /* read so far */
};

ssize_t	 tu_src_read(void *ctx, char *buf, size_t n);

/*
 * The raw response of r (status line, headers, body; NUL-terminated,
 * malloc'd: the caller frees).  Asserts that writing it succeeded.
 */
char	*tu_resp_text(struct nf_req *r);
/*
 * Run one request (env as FastCGI params, body may be NULL) through the
 * router on the real route table; returns the raw response (caller frees).
 */
char	*tu_req_run(struct nf_app *app, char *const *env, struct tu_src *body);

/* The status of a raw response ("Status: NNN ..."). */
int	 tu_resp_status(const char *resp);
/* The parsed JSON body of a raw response (asserts it is JSON; caller puts). */
struct json_object *tu_resp_body(const char *resp);
/* error.<name> of an envelope as a string, or NULL (lent by o). */
const char *tu_resp_error(struct json_object *o, const char *name);
/*
 * Assert that resp is a JSON error envelope with this code, a message and
 * a request id, sent as application/json; charset=utf-8.
 */
void	 tu_check_error(const char *resp, const char *code);

#endif
