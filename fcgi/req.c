/*
 * req.c - request parsing and response building (see req.h).
 *
 * DESIGN: limits come before parsing (CONTENT_LENGTH against the cap
 * before a byte is read, field counts while decoding); every decoded
 * string is checked for valid UTF-8 and the absence of NUL once, here, so
 * handlers never see raw client bytes.  Responses are assembled in memory
 * and written at once, which lets the router replace a half-built response
 * with an error envelope and lets HEAD send the headers of GET.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <fcgiapp.h>
#include <json-c/json.h>

#include "json.h"
#include "log.h"
#include "nonflex.h"
#include "req.h"
#include "valid.h"

static const char *const methods[NF_METHOD__MAX] = {
	"GET",      /* NF_GET */
	"HEAD",     /* NF_HEAD */
	"POST",     /* NF_POST */
	"PUT",      /* NF_PUT */
	"PATCH",    /* NF_PATCH */
	"DELETE",   /* NF_DELETE */
	"OPTIONS",  /* NF_OPTIONS */
};

enum nf_method
nf_method_parse(const char *s)
{
	int	 i;

	for (i = 0; s != NULL && i < NF_METHOD__MAX; i++)
		if (strcmp(s, methods[i]) == 0)
			return (enum nf_method)i;
	return NF_METHOD__MAX;
}

const char *
nf_method_name(enum nf_method m)
{
	return (unsigned)m < NF_METHOD__MAX ? methods[m] : "OTHER";
}

/* ---- pairs ---------------------------------------------------------- */

void
nf_pairs_add(struct nf_pairs *p, const char *name, size_t nlen, const char *value,
    size_t vlen)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 8;
		p->v = nf_xrealloc(p->v, p->cap * sizeof(*p->v));
	}
	p->v[p->n].name = nf_xstrndup(name, nlen);
	p->v[p->n].value = nf_xstrndup(value, vlen);
	p->n++;
}

const char *
nf_pairs_get(const struct nf_pairs *p, const char *name)
{
	size_t	 i;

	for (i = 0; p != NULL && i < p->n; i++)
		if (strcmp(p->v[i].name, name) == 0)
			return p->v[i].value;
	return NULL;
}

void
nf_pairs_cleanup(struct nf_pairs *p)
{
	size_t	 i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n; i++) {
		free(p->v[i].name);
		free(p->v[i].value);
	}
	free(p->v);
	memset(p, 0, sizeof(*p));
}

/* ---- decoding --------------------------------------------------------- */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
nf_url_decode(const char *src, size_t len, int plus_space, char **out, size_t *outlen)
{
	char	*d = nf_xmalloc(len + 1);
	size_t	 i, o = 0;
	int	 hi, lo;

	for (i = 0; i < len; i++) {
		if (src[i] == '%') {
			if (i + 2 >= len || (hi = hexval((unsigned char)src[i + 1])) < 0 ||
			    (lo = hexval((unsigned char)src[i + 2])) < 0)
				goto bad;
			d[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (src[i] == '+' && plus_space)
			d[o++] = ' ';
		else
			d[o++] = src[i];
	}
	d[o] = '\0';
	if (!nf_valid_utf8(d, o, 0, SIZE_MAX))
		goto bad;
	*out = d;
	if (outlen != NULL)
		*outlen = o;
	return 1;
bad:
	free(d);
	*out = NULL;
	return 0;
}

enum nf_err
nf_form_parse(const char *buf, size_t len, size_t max_fields, const char *code,
    struct nf_pairs *out, struct nf_error *e)
{
	const char	*p = buf, *end = buf + len, *amp, *eq;
	char		*name = NULL, *value = NULL;
	size_t		 nlen, vlen, fields = 0;
	enum nf_err	 rc = NF_OK;

	while (p < end) {
		amp = memchr(p, '&', (size_t)(end - p));
		if (amp == NULL)
			amp = end;
		if (amp == p) {          /* "a=1&&b=2": empty field, skipped */
			p++;
			continue;
		}
		if (++fields > max_fields) {
			rc = nf_error_set(e, NF_EINVAL, code, NULL,
			    "too many fields (at most %zu)", max_fields);
			goto out;
		}
		eq = memchr(p, '=', (size_t)(amp - p));
		if (!nf_url_decode(p, (size_t)((eq ? eq : amp) - p), 1, &name, &nlen) ||
		    (eq != NULL && !nf_url_decode(eq + 1, (size_t)(amp - eq - 1), 1, &value, &vlen))) {
			rc = nf_error_set(e, NF_EINVAL, code, NULL,
			    "bad percent-encoding or invalid UTF-8 in field %zu", fields);
			goto out;
		}
		nf_pairs_add(out, name, nlen, value ? value : "", value ? vlen : 0);
		free(name);
		free(value);
		name = value = NULL;
		p = amp;
	}
out:
	free(name);
	free(value);
	if (rc != NF_OK)
		nf_pairs_cleanup(out);
	return rc;
}

/* ---- content type ------------------------------------------------------- */

static const char *const media[NF_BODY__MAX] = {
	NULL,                                 /* NF_BODY_NONE */
	"application/json",                   /* NF_BODY_JSON */
	"application/x-www-form-urlencoded",  /* NF_BODY_FORM */
};

static const char *
skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* One ";name=value" parameter: only charset=utf-8 (or "utf-8") passes. */
static int
param_ok(const char *p)
{
	const char	*v;
	size_t		 len;

	p = skip_ows(p);
	if (strncasecmp(p, "charset", 7) != 0)
		return 0;
	v = skip_ows(p + 7);
	if (*v++ != '=')
		return 0;
	v = skip_ows(v);
	len = strlen(v);
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len >= 2 && v[0] == '"' && v[len - 1] == '"')
		v++, len -= 2;
	return len == 5 && strncasecmp(v, "utf-8", 5) == 0;
}

int
nf_content_type_ok(const char *ct, enum nf_body_kind kind)
{
	const char	*want, *semi, *p;
	size_t		 len, wlen;

	if (ct == NULL || (unsigned)kind >= NF_BODY__MAX || (want = media[kind]) == NULL)
		return 0;
	ct = skip_ows(ct);
	semi = strchr(ct, ';');
	len = semi ? (size_t)(semi - ct) : strlen(ct);
	while (len > 0 && (ct[len - 1] == ' ' || ct[len - 1] == '\t'))
		len--;
	wlen = strlen(want);
	if (len != wlen || strncasecmp(ct, want, wlen) != 0)
		return 0;
	/* Every parameter must be the one allowed charset. */
	for (p = semi; p != NULL; p = strchr(p + 1, ';')) {
		char	*one;
		size_t	 plen;
		int	 ok;

		semi = strchr(p + 1, ';');
		plen = semi ? (size_t)(semi - p - 1) : strlen(p + 1);
		one = nf_xstrndup(p + 1, plen);
		ok = param_ok(one);
		free(one);
		if (!ok)
			return 0;
	}
	return 1;
}

void
nf_request_id_choose(const char *incoming, char out[NF_REQUEST_ID_MAX + 1])
{
	if (nf_valid_request_id(incoming))
		snprintf(out, NF_REQUEST_ID_MAX + 1, "%s", incoming);
	else
		nf_random_hex(out, 16);
}

/* ---- request ------------------------------------------------------------ */

const char *
nf_req_param(const struct nf_req *r, const char *name)
{
	size_t		 len = strlen(name);
	char *const	*p;

	for (p = r->env; p != NULL && *p != NULL; p++)
		if (strncmp(*p, name, len) == 0 && (*p)[len] == '=')
			return *p + len + 1;
	return NULL;
}

const char *
nf_req_header(const struct nf_req *r, const char *name)
{
	char	 key[128];
	size_t	 i, o;

	/* "X-Tenant-Id" -> "HTTP_X_TENANT_ID", as CGI names headers. */
	o = (size_t)snprintf(key, sizeof(key), "HTTP_");
	for (i = 0; name[i] != '\0' && o + 1 < sizeof(key); i++)
		key[o++] = name[i] == '-' ? '_' :
		    (name[i] >= 'a' && name[i] <= 'z') ? (char)(name[i] - 32) : name[i];
	key[o] = '\0';
	return nf_req_param(r, key);
}

enum nf_err
nf_req_form_one(const struct nf_req *r, const char *name, size_t max, int required,
    const char **out, struct nf_error *e)
{
	size_t	 i, n = 0;

	*out = NULL;
	for (i = 0; i < r->form.n; i++)
		if (strcmp(r->form.v[i].name, name) == 0) {
			n++;
			*out = r->form.v[i].value;
		}
	if (n > 1)
		return nf_error_set(e, NF_EINVAL, "invalid_field", name,
		    "%s is given more than once", name);
	if (*out != NULL && (*out)[0] == '\0')
		*out = NULL;
	if (*out == NULL && required)
		return nf_error_set(e, NF_EINVAL, "missing_field", name, "%s is required", name);
	if (*out != NULL && strlen(*out) > max)
		return nf_error_set(e, NF_EINVAL, "invalid_field", name,
		    "%s is longer than %zu bytes", name, max);
	return NF_OK;
}

enum nf_err
nf_req_form_sid(const struct nf_req *r, const char *name, const char *prefix, int required,
    const char **out, struct nf_error *e)
{
	enum nf_err	 rc;

	if ((rc = nf_req_form_one(r, name, 34, required, out, e)) != NF_OK)
		return rc;
	if (*out != NULL && !nf_valid_twilio_sid(*out, prefix))
		return nf_error_set(e, NF_EINVAL, "invalid_field", name,
		    "%s is not a valid %s SID", name, prefix != NULL ? prefix : "Twilio");
	return NF_OK;
}

const char *
nf_req_path_param(const struct nf_req *r, const char *name)
{
	return nf_pairs_get(&r->params, name);
}

void
nf_req_init(struct nf_req *r, struct nf_app *app, char *const *env, nf_req_read_fn rd,
    void *ctx)
{
	const char	*uri, *q;

	memset(r, 0, sizeof(*r));
	r->app = app;
	r->env = env;
	r->read = rd;
	r->read_ctx = ctx;
	r->start_ms = nf_mono_ms();
	r->method_name = nf_req_param(r, "REQUEST_METHOD");
	if (r->method_name == NULL)
		r->method_name = "GET";
	r->method = nf_method_parse(r->method_name);
	if ((uri = nf_req_param(r, "REQUEST_URI")) != NULL) {
		q = strchr(uri, '?');
		r->path = nf_xstrndup(uri, q ? (size_t)(q - uri) : strlen(uri));
		r->query_string = q ? q + 1 : "";
	} else {
		uri = nf_req_param(r, "DOCUMENT_URI");
		r->path = nf_xstrdup(uri != NULL ? uri : "/");
		q = nf_req_param(r, "QUERY_STRING");
		r->query_string = q != NULL ? q : "";
	}
	nf_request_id_choose(nf_req_header(r, "X-Request-Id"), r->request_id);
}

void
nf_req_cleanup(struct nf_req *r)
{
	if (r == NULL)
		return;
	free(r->path);
	nf_pairs_cleanup(&r->query);
	nf_pairs_cleanup(&r->params);
	free(r->body);
	json_object_put(r->json);
	json_object_put(r->principal.agent);
	nf_pairs_cleanup(&r->form);
	free(r->hdrs);
	free(r->out);
	memset(r, 0, sizeof(*r));
}

/* Read exactly len bytes into a new NUL-terminated r->body. */
static enum nf_err
read_exact(struct nf_req *r, size_t len, struct nf_error *e)
{
	size_t	 got = 0;
	ssize_t	 n;

	r->body = nf_xmalloc(len + 1);
	while (got < len) {
		n = r->read != NULL ? r->read(r->read_ctx, r->body + got, len - got) : 0;
		if (n <= 0)
			return nf_error_set(e, NF_EINVAL, "incomplete_body", NULL,
			    "the request body is shorter than Content-Length");
		got += (size_t)n;
	}
	r->body[len] = '\0';
	r->body_len = len;
	return NF_OK;
}

enum nf_err
nf_req_body(struct nf_req *r, enum nf_body_kind kind, size_t cap, struct nf_error *e)
{
	const char	*cl, *ct;
	int64_t		 len = 0;
	enum nf_err	 rc;

	if (kind == NF_BODY_NONE)
		return NF_OK;
	cl = nf_req_param(r, "CONTENT_LENGTH");
	if (cl != NULL && *cl != '\0' && !nf_valid_int(cl, 0, INT64_MAX, &len))
		return nf_error_set(e, NF_EINVAL, "invalid_content_length", NULL,
		    "Content-Length is not a valid length");
	if ((uint64_t)len > cap)
		return nf_error_set(e, NF_ETOOBIG, "payload_too_large", NULL,
		    "the request body exceeds %zu bytes", cap);
	ct = nf_req_param(r, "CONTENT_TYPE");
	if (!nf_content_type_ok(ct, kind))
		return nf_error_set(e, NF_EMEDIATYPE, "unsupported_media_type", NULL,
		    "Content-Type must be %s (charset utf-8 if any)", media[kind]);
	if ((rc = read_exact(r, (size_t)len, e)) != NF_OK)
		return rc;
	if (kind == NF_BODY_JSON)
		return nf_json_parse(r->body, r->body_len, &r->json, e);
	return nf_form_parse(r->body, r->body_len, NF_FORM_MAX_FIELDS, "invalid_form",
	    &r->form, e);
}

/* ---- response ------------------------------------------------------------ */

static int
clean_header_text(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '\r' || *s == '\n')
			return 0;
	return 1;
}

int
nf_resp_header(struct nf_req *r, const char *name, const char *value)
{
	size_t	 nlen, vlen;

	if (!clean_header_text(name) || !clean_header_text(value) || *name == '\0') {
		nf_warn("refused a response header with CR or LF");
		return -1;
	}
	nlen = strlen(name);
	vlen = strlen(value);
	r->hdrs = nf_xrealloc(r->hdrs, r->hdrs_len + nlen + vlen + 5);
	memcpy(r->hdrs + r->hdrs_len, name, nlen);
	memcpy(r->hdrs + r->hdrs_len + nlen, ": ", 2);
	memcpy(r->hdrs + r->hdrs_len + nlen + 2, value, vlen);
	memcpy(r->hdrs + r->hdrs_len + nlen + 2 + vlen, "\r\n", 3);
	r->hdrs_len += nlen + vlen + 4;
	return 0;
}

void
nf_resp_json_text(struct nf_req *r, int status, const char *json, size_t len)
{
	free(r->out);
	r->out = nf_xstrndup(json, len);
	r->out_len = len;
	r->out_type = NULL;
	r->status = status;
}

void
nf_resp_text(struct nf_req *r, int status, const char *type, const char *body,
    size_t len)
{
	nf_resp_json_text(r, status, body, len);
	r->out_type = type;
}

void
nf_resp_json(struct nf_req *r, int status, struct json_object *obj)
{
	const char	*s;
	size_t		 len;

	if (obj == NULL) {
		nf_resp_json_text(r, status, "null", 4);
		return;
	}
	s = nf_json_str(obj, &len);
	nf_resp_json_text(r, status, s, len);
	json_object_put(obj);
}

void
nf_resp_empty(struct nf_req *r, int status)
{
	free(r->out);
	r->out = NULL;
	r->out_len = 0;
	r->out_type = NULL;
	r->status = status;
}

void
nf_resp_error(struct nf_req *r, enum nf_err rc, const struct nf_error *e)
{
	struct json_object	*root, *err;
	int			 status = nf_err_status(rc);
	const char		*code, *msg;

	code = (e != NULL && e->code[0] != '\0') ? e->code : nf_strerror(rc);
	msg = (e != NULL && e->message[0] != '\0') ? e->message : NULL;
	/* Internal failures never describe themselves to the client. */
	if (status == 500) {
		code = "internal_error";
		msg = NULL;
	}
	if (msg == NULL)
		msg = status == 500 ? "internal error" : nf_strerror(rc);
	snprintf(r->err_code, sizeof(r->err_code), "%s", code);
	err = json_object_new_object();
	nf_json_add_str(err, "code", code);
	nf_json_add_str(err, "message", msg);
	nf_json_add_str(err, "request_id", r->request_id);
	if (e != NULL && e->field[0] != '\0' && status != 500)
		nf_json_add_str(err, "field", e->field);
	root = json_object_new_object();
	nf_json_add(root, "error", err);
	nf_resp_json(r, status, root);
}

static const char *
reason(int status)
{
	static const struct { int s; const char *t; } tab[] = {
		{ 200, "OK" }, { 201, "Created" }, { 202, "Accepted" }, { 204, "No Content" },
		{ 400, "Bad Request" }, { 401, "Unauthorized" }, { 403, "Forbidden" },
		{ 404, "Not Found" }, { 405, "Method Not Allowed" }, { 409, "Conflict" },
		{ 413, "Payload Too Large" }, { 415, "Unsupported Media Type" },
		{ 429, "Too Many Requests" }, { 500, "Internal Server Error" },
		{ 502, "Bad Gateway" }, { 503, "Service Unavailable" },
	};
	size_t	 i;

	for (i = 0; i < NF_ARRAY_LEN(tab); i++)
		if (tab[i].s == status)
			return tab[i].t;
	return "Status";
}

void
nf_resp_retry_after(struct nf_req *r, int64_t ms)
{
	r->retry_after_ms = ms;
}

/* Did a handler add header name itself (case-insensitive)? */
static int
has_header(const struct nf_req *r, const char *name)
{
	size_t		 len = strlen(name);
	const char	*p;

	for (p = r->hdrs; p != NULL && *p != '\0'; p = strstr(p, "\r\n") + 2)
		if (strncasecmp(p, name, len) == 0 && p[len] == ':')
			return 1;
	return 0;
}

/*
 * "Retry-After: N\r\n" for 429 and 503 answers, "" otherwise.  Doing it
 * here, where every response is written, covers the router's error
 * envelope and handlers that answer 503 themselves (health) alike.
 */
static void
retry_after(const struct nf_req *r, int status, char *buf, size_t bufsz)
{
	int64_t	 s = NF_RETRY_AFTER_DEFAULT_S;

	buf[0] = '\0';
	if ((status != 429 && status != 503) || has_header(r, "Retry-After"))
		return;
	if (r->retry_after_ms > 0)
		s = (r->retry_after_ms + 999) / 1000;
	if (s > 86400)
		s = 86400;
	snprintf(buf, bufsz, "Retry-After: %lld\r\n", (long long)s);
}

int
nf_resp_write(struct nf_req *r, nf_req_write_fn wr, void *ctx)
{
	char	*head, ra[40];
	int	 rc = 0, status = r->status ? r->status : 500;
	int	 body = r->method != NF_HEAD && status != 204 && status != 304;

	retry_after(r, status, ra, sizeof(ra));
	head = nf_xasprintf("Status: %d %s\r\n"
	    "%s%s%s"
	    "Content-Length: %zu\r\n"
	    "X-Request-Id: %s\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "Cache-Control: no-store\r\n"
	    "%s%s\r\n",
	    status, reason(status),
	    r->out != NULL ? "Content-Type: " : "",
	    r->out == NULL ? "" : r->out_type != NULL ? r->out_type :
	    "application/json; charset=utf-8",
	    r->out != NULL ? "\r\n" : "",
	    status == 204 ? (size_t)0 : r->out_len,
	    r->request_id, ra,
	    r->hdrs != NULL ? r->hdrs : "");
	if (wr(ctx, head, strlen(head)) < 0)
		rc = -1;
	else if (body && r->out_len > 0 && wr(ctx, r->out, r->out_len) < 0)
		rc = -1;
	free(head);
	return rc;
}

ssize_t
nf_req_fcgx_read(void *ctx, char *buf, size_t len)
{
	int	 n;

	if (len > (size_t)INT32_MAX)
		len = INT32_MAX;
	n = FCGX_GetStr(buf, (int)len, ctx);
	return n < 0 ? -1 : n;
}

ssize_t
nf_req_fcgx_write(void *ctx, const char *buf, size_t len)
{
	int	 n;

	if (len > (size_t)INT32_MAX)
		return -1;
	n = FCGX_PutStr(buf, (int)len, ctx);
	return n < 0 || (size_t)n != len ? -1 : n;
}
