/*
 * req.h - one HTTP request and its response, independent of FastCGI.
 *
 * DESIGN: a request is built from the FastCGI parameter list ("NAME=value"
 * strings) and a read callback for the body, and the response is collected
 * in memory, then written by one call.  So the whole pipeline (router,
 * parsing, handlers) runs in unit tests on plain buffers; only
 * nf_req_fcgx_* at the bottom touch libfcgi.  Everything parsed belongs to
 * struct nf_req and nf_req_cleanup releases it (kcgi's struct kreq).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_REQ_H
#define NF_REQ_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "nonflex.h"

struct json_object;
struct nf_app;
struct nf_route;
struct nf_tenant;

enum nf_method {
	NF_GET = 0,
	NF_HEAD,
	NF_POST,
	NF_PUT,
	NF_PATCH,
	NF_DELETE,
	NF_OPTIONS,
	NF_METHOD__MAX   /* also "any other method" */
};

enum nf_body_kind {
	NF_BODY_NONE = 0,  /* no body read */
	NF_BODY_JSON,      /* application/json */
	NF_BODY_FORM,      /* application/x-www-form-urlencoded */
	NF_BODY__MAX
};

/* Limits on what a client can make us hold. */
#define NF_FORM_MAX_FIELDS	256
#define NF_PATH_MAX		2048
#define NF_REQUEST_ID_MAX	128

/* A decoded name/value pair; value may hold any UTF-8 but never NUL. */
struct nf_pair {
	char	*name;
	char	*value;
};

/* Ordered list of pairs; duplicates are kept in arrival order. */
struct nf_pairs {
	struct nf_pair	*v;
	size_t		 n;
	size_t		 cap;
};

/* Read up to len body bytes; 0 at end, -1 on error. */
typedef ssize_t	(*nf_req_read_fn)(void *ctx, char *buf, size_t len);
/* Write len bytes; -1 on error. */
typedef ssize_t	(*nf_req_write_fn)(void *ctx, const char *buf, size_t len);

struct nf_req {
	struct nf_app		*app;           /* process context (borrowed) */
	char *const		*env;           /* FastCGI params, NULL-terminated (borrowed) */
	nf_req_read_fn		 read;          /* body reader */
	void			*read_ctx;
	int64_t			 start_ms;      /* monotonic start, for the access log */
	enum nf_method		 method;
	const char		*method_name;   /* as sent (borrowed from env) */
	char			*path;          /* path without query, as sent (raw) */
	const char		*query_string;  /* raw, borrowed ("" when none) */
	struct nf_pairs		 query;         /* decoded query parameters */
	struct nf_pairs		 params;        /* route :params, decoded */
	const struct nf_route	*route;         /* matched route or NULL */
	char			 request_id[NF_REQUEST_ID_MAX + 1];
	const struct nf_tenant	*tenant;        /* resolved tenant or NULL */
	struct nf_principal	 principal;     /* caller, filled by the router */
	char			*body;          /* raw body, NUL-terminated, or NULL */
	size_t			 body_len;
	struct json_object	*json;          /* parsed JSON body (owned) */
	struct nf_pairs		 form;          /* decoded form body */
	/* Response. */
	int			 status;        /* 0 until a response is set */
	char			*hdrs;          /* "Name: value\r\n"... */
	size_t			 hdrs_len;
	char			*out;           /* body */
	size_t			 out_len;
	const char		*out_type;      /* static Content-Type of out; NULL: JSON */
	char			 err_code[48];  /* error code, for the access log */
	int64_t			 retry_after_ms; /* hint for Retry-After (0: default) */
};

/* Methods. */
enum nf_method	 nf_method_parse(const char *);         /* NF_METHOD__MAX if unknown */
const char	*nf_method_name(enum nf_method);

/* Pairs. */
void		 nf_pairs_add(struct nf_pairs *, const char *name, size_t nlen,
		    const char *value, size_t vlen);
const char	*nf_pairs_get(const struct nf_pairs *, const char *name); /* first match */
void		 nf_pairs_cleanup(struct nf_pairs *);                     /* accepts NULL */

/*
 * Percent-decode src[0..len) ('+' is a space when plus_space) into a new
 * NUL-terminated string in *out (*outlen bytes).  Returns 0 and sets *out
 * NULL for a bad escape, a NUL byte or invalid UTF-8.
 */
int		 nf_url_decode(const char *src, size_t len, int plus_space, char **out,
		    size_t *outlen);

/*
 * Decode application/x-www-form-urlencoded text (also used for query
 * strings) into out, appended in order.  NF_EINVAL with code err_code
 * ("invalid_form" / "invalid_query") on a bad escape, invalid UTF-8, NUL,
 * or more than max_fields fields; out is then emptied.
 */
enum nf_err	 nf_form_parse(const char *buf, size_t len, size_t max_fields,
		    const char *err_code, struct nf_pairs *out, struct nf_error *);

/* 1 when the Content-Type header value names kind's media type, with no
 * parameter other than charset=utf-8 (any case, optionally quoted). */
int		 nf_content_type_ok(const char *ct, enum nf_body_kind kind);

/* Copy incoming into out when it is a sane request id, else 32 random hex. */
void		 nf_request_id_choose(const char *incoming, char out[NF_REQUEST_ID_MAX + 1]);

/* Request lifecycle.  init cannot fail; path/query are taken from
 * REQUEST_URI (falling back to DOCUMENT_URI / QUERY_STRING). */
void		 nf_req_init(struct nf_req *, struct nf_app *, char *const *env,
		    nf_req_read_fn, void *read_ctx);
void		 nf_req_cleanup(struct nf_req *);                 /* accepts NULL */
/* FastCGI parameter by name ("CONTENT_TYPE"), or NULL. */
const char	*nf_req_param(const struct nf_req *, const char *name);
/* HTTP request header by its HTTP name ("X-Tenant-Id"), or NULL. */
const char	*nf_req_header(const struct nf_req *, const char *name);
/*
 * The one value of form field name in *out (NULL when absent or empty):
 * NF_EINVAL naming the field when it is repeated ("invalid_field"),
 * longer than max, or required and absent ("missing_field").  The sid
 * variant also wants a Twilio SID: prefix + 32 hex (prefix NULL: any two
 * capitals).  For webhooks, whose forms Twilio writes.
 */
enum nf_err	 nf_req_form_one(const struct nf_req *, const char *name, size_t max,
		    int required, const char **out, struct nf_error *);
enum nf_err	 nf_req_form_sid(const struct nf_req *, const char *name, const char *prefix,
		    int required, const char **out, struct nf_error *);
/* Route parameter (":topic" -> "topic"), or NULL. */
const char	*nf_req_path_param(const struct nf_req *, const char *name);

/*
 * Body: check CONTENT_LENGTH against cap (NF_ETOOBIG "payload_too_large"
 * without reading), the content type against kind (NF_EMEDIATYPE), read
 * exactly CONTENT_LENGTH bytes, then parse into r->json or r->form
 * (NF_EINVAL "invalid_json" / "invalid_form").  Nothing happens for
 * NF_BODY_NONE.
 */
enum nf_err	 nf_req_body(struct nf_req *, enum nf_body_kind kind, size_t cap,
		    struct nf_error *);

/* Response.  Each replaces any response set before. */
/* Add a header; refused (returns -1, logged) when name or value has CR, LF
 * or NUL, so no client text can split a header. */
int		 nf_resp_header(struct nf_req *, const char *name, const char *value);
/* JSON response; CONSUMES obj (puts it, even when it is NULL). */
void		 nf_resp_json(struct nf_req *, int status, struct json_object *obj);
/* JSON response from already-serialized text (copied). */
void		 nf_resp_json_text(struct nf_req *, int status, const char *json, size_t len);
/* Non-JSON response body (copied) with Content-Type type, which must be a
 * static string such as "application/x-ndjson; charset=utf-8". */
void		 nf_resp_text(struct nf_req *, int status, const char *type,
		    const char *body, size_t len);
/* Empty response (204, ...). */
void		 nf_resp_empty(struct nf_req *, int status);
/* Error envelope {"error":{"code","message","request_id"[,"field"]}} with
 * the status of rc; e may be NULL (defaults from rc).  For 5xx statuses of
 * internal errors the message is generic whatever e says. */
void		 nf_resp_error(struct nf_req *, enum nf_err rc, const struct nf_error *e);
/*
 * Retry-After for this response, in ms (rounded up to whole seconds, at
 * least 1).  Every 429 and 503 carries Retry-After (nf_resp_write adds
 * it): a handler that knows when to come back (a rate limit's remaining
 * window) says so here; otherwise NF_RETRY_AFTER_DEFAULT_S is sent.
 */
void		 nf_resp_retry_after(struct nf_req *, int64_t ms);
#define NF_RETRY_AFTER_DEFAULT_S 2
/* Write status line, headers (plus the fixed security headers, X-Request-Id
 * and, for 429/503, Retry-After) and body (none for HEAD).  Returns -1 on
 * write error. */
int		 nf_resp_write(struct nf_req *, nf_req_write_fn, void *ctx);

/* libfcgi glue: ctx is an FCGX_Stream *. */
ssize_t		 nf_req_fcgx_read(void *ctx, char *buf, size_t len);
ssize_t		 nf_req_fcgx_write(void *ctx, const char *buf, size_t len);

#endif
