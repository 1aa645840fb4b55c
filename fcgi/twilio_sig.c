/*
 * twilio_sig.c - X-Twilio-Signature verification (see twilio_sig.h and
 * RELIABILITY.md 1.1).
 *
 * DESIGN: the signed string is rebuilt from exactly the bytes Twilio
 * sent: the raw REQUEST_URI (never decoded, re-sorted or re-encoded, the
 * regressions twilio-node #1183/#621 came from normalising it) behind a
 * base URL this deployment chose, then the decoded form parameters, all
 * of them, sorted by name and then value in byte order.  HMAC-SHA1, SHA-256
 * and base64 come from OpenSSL.  The header is checked for shape (1..64
 * bytes of base64) before any HMAC is computed, so garbage costs nothing.
 *
 * Where the URL's scheme and host come from:
 *   - PUBLIC_URL set (production): PUBLIC_URL, full stop.  No request
 *     header (Host, X-Forwarded-Host, X-Forwarded-Proto) is looked at, so a
 *     client cannot choose the URL being validated (yap #1589).
 *   - PUBLIC_URL unset (development behind our own nginx): the scheme is
 *     nginx's $scheme (REQUEST_SCHEME, or HTTPS=on), which a client cannot
 *     set; the host is the Host header when it is a well-formed host[:port]
 *     (that is the host Twilio put in the URL it signed), otherwise
 *     SERVER_NAME:SERVER_PORT.  The client does choose the Host here, which
 *     lets a request signed by Twilio for another host of the same account
 *     be replayed against this one; the HMAC key (the tenant's token) still
 *     has to match, so nothing can be forged.  Set PUBLIC_URL in
 *     production (conf/stack always does).
 *
 * Outcomes of nf_twsig_check: a missing, empty, oversized (> 64 bytes) or
 * non-base64 header, a wrong signature and a wrong bodySHA256 are all 403
 * "invalid_signature".  Twilio's node middleware answers 400 to a missing
 * header (RELIABILITY 1.1 item 7); we answer 403 as issue 4 asks, so the
 * answer does not tell a prober which check failed.  An AccountSid that
 * is not the resolved tenant's is 403 "account_mismatch" (audited as
 * cross_tenant); a tenant without an auth token is 403
 * "twilio_not_configured": fail closed, never "skip validation".  Every
 * failure is logged with its reason and the client address (never the
 * header or the token) and audited as "twilio.signature_failed", at most
 * AUDIT_PER_MIN times a minute per tenant and client address, so a flood
 * of forged requests cannot fill the audit collection.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "app.h"
#include "audit.h"
#include "json.h"
#include "kv.h"
#include "log.h"
#include "nonflex.h"
#include "req.h"
#include "router.h"
#include "tenant.h"
#include "twilio_sig.h"
#include "valid.h"

#define SIG_HEADER_MAX	64      /* a real signature is 28 bytes */
#define HOST_MAX	255
#define AUDIT_PER_MIN	30      /* signature failures audited per IP per minute */

/* ---- the signature ----------------------------------------------------- */

static int
pair_cmp(const void *a, const void *b)
{
	const struct nf_pair	*x = *(const struct nf_pair *const *)a;
	const struct nf_pair	*y = *(const struct nf_pair *const *)b;
	int			 c;

	/* strcmp compares as unsigned char: byte order, as Twilio sorts. */
	if ((c = strcmp(x->name, y->name)) != 0)
		return c;
	return strcmp(x->value, y->value);
}

/* "name1value1name2value2..." of params in signing order (malloc'd). */
static char *
params_text(const struct nf_pairs *params, size_t *len)
{
	const struct nf_pair	**v;
	char			*out;
	size_t			 i, n = params != NULL ? params->n : 0, o = 0, nl, vl;

	*len = 0;
	if (n == 0)
		return nf_xstrdup("");
	v = nf_xcalloc(n, sizeof(*v));
	for (i = 0; i < n; i++) {
		v[i] = &params->v[i];
		*len += strlen(v[i]->name) + strlen(v[i]->value);
	}
	qsort(v, n, sizeof(*v), pair_cmp);
	out = nf_xmalloc(*len + 1);
	for (i = 0; i < n; i++) {
		nl = strlen(v[i]->name);
		vl = strlen(v[i]->value);
		memcpy(out + o, v[i]->name, nl);
		memcpy(out + o + nl, v[i]->value, vl);
		o += nl + vl;
	}
	out[o] = '\0';
	free(v);
	return out;
}

/* Base64 HMAC-SHA1 of url followed by tail; "" if OpenSSL fails (which
 * then matches no header, since headers are never empty). */
static void
sign(const char *token, const char *url, const char *tail, size_t tail_len, char out[29])
{
	unsigned char	 md[EVP_MAX_MD_SIZE];
	char		*data;
	size_t		 ulen = strlen(url), mdlen = 0;

	out[0] = '\0';
	data = nf_xmalloc(ulen + tail_len + 1);
	memcpy(data, url, ulen);
	memcpy(data + ulen, tail, tail_len);
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA1", NULL, token, strlen(token),
	    (const unsigned char *)data, ulen + tail_len, md, sizeof(md), &mdlen) != NULL &&
	    mdlen == 20)
		EVP_EncodeBlock((unsigned char *)out, md, 20);
	OPENSSL_cleanse(md, sizeof(md));
	free(data);
}

void
nf_twsig_compute(const char *auth_token, const char *url, const struct nf_pairs *params,
    char out[29])
{
	char	*tail;
	size_t	 len;

	tail = params_text(params, &len);
	sign(auth_token != NULL ? auth_token : "", url != NULL ? url : "", tail, len, out);
	free(tail);
}

/* ---- URL variants -------------------------------------------------------- */

/*
 * Split url as Twilio's node helper does (splitUrl): "scheme://" prefix,
 * authority up to the first '/', '?' or '#', its port after the last ':'
 * that follows any "]" of an IPv6 literal.  *port_at and *port_end delimit
 * ":port" (equal when there is none); *https tells the default port.
 * 0 when url has no scheme.
 */
static int
split_url(const char *url, size_t *port_at, size_t *port_end, int *https)
{
	const char	*p = url, *auth, *end, *host, *br, *colon;

	if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
		return 0;
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
	    (*p >= '0' && *p <= '9') || *p == '+' || *p == '.' || *p == '-')
		p++;
	if (strncmp(p, "://", 3) != 0)
		return 0;
	*https = (size_t)(p - url) == 5 && strncasecmp(url, "https", 5) == 0;
	auth = p + 3;
	end = auth + strcspn(auth, "/?#");
	for (host = end; host > auth && host[-1] != '@'; host--)
		;
	br = NULL;
	for (p = host; p < end; p++)
		if (*p == ']')
			br = p;
	colon = NULL;
	for (p = br != NULL ? br + 1 : host; p < end; p++)
		if (*p == ':') {
			colon = p;
			break;
		}
	*port_at = (size_t)((colon != NULL ? colon : end) - url);
	*port_end = (size_t)(end - url);
	return 1;
}

/*
 * The other form of url Twilio may have signed: without its port when it
 * has one, with the default port when it has none (both helpers try
 * both: "signature generation on the back end is inconsistent").  NULL
 * when url has no scheme.
 */
static char *
port_variant(const char *url)
{
	size_t	 at, end;
	int	 https;

	if (!split_url(url, &at, &end, &https))
		return NULL;
	if (at != end)
		return nf_xasprintf("%.*s%s", (int)at, url, url + end);
	return nf_xasprintf("%.*s%s%s", (int)at, url, https ? ":443" : ":80", url + at);
}

/* ---- bodySHA256 ------------------------------------------------------------ */

/*
 * 1 when url's query holds exactly one bodySHA256 and it is the lower-case
 * hex SHA-256 of body (the raw bytes: a re-serialised body would differ).
 */
static int
body_hash_ok(const char *url, const char *body, size_t body_len)
{
	static const char	 hex[] = "0123456789abcdef";
	unsigned char		 md[EVP_MAX_MD_SIZE];
	unsigned int		 mdlen = 0, i;
	const char		*q, *p, *amp, *found = NULL;
	char			 want[65];
	size_t			 qlen, seg, n = 0;

	if ((q = strchr(url, '?')) == NULL)
		return 0;
	q++;
	qlen = strcspn(q, "#");
	for (p = q; p < q + qlen; p = amp + 1) {
		amp = memchr(p, '&', (size_t)(q + qlen - p));
		if (amp == NULL)
			amp = q + qlen;
		seg = (size_t)(amp - p);
		if (seg >= 11 && memcmp(p, "bodySHA256=", 11) == 0) {
			n++;
			found = seg == 11 + 64 ? p + 11 : NULL;
		}
		if (amp == q + qlen)
			break;
	}
	if (n != 1 || found == NULL)
		return 0;
	if (EVP_Digest(body, body_len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return 0;
	for (i = 0; i < 32; i++) {
		want[2 * i] = hex[md[i] >> 4];
		want[2 * i + 1] = hex[md[i] & 0xf];
	}
	want[64] = '\0';
	return nf_ct_equal(found, 64, want, 64);
}

/* ---- validation ------------------------------------------------------------ */

/* 1 when s looks like a signature at all: 1..64 bytes of base64. */
static int
sig_shape_ok(const char *s, size_t len)
{
	size_t	 i, pad = 0;

	if (len == 0 || len > SIG_HEADER_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return 0;
	}
	return pad <= 2;
}

int
nf_twsig_valid(const char *auth_token, const char *url, const struct nf_pairs *params,
    const char *body, size_t body_len, const char *signature)
{
	char	 mine[29], *tail, *other;
	size_t	 len, slen;
	int	 ok;

	if (auth_token == NULL || auth_token[0] == '\0' || url == NULL || signature == NULL)
		return 0;
	slen = strlen(signature);
	if (!sig_shape_ok(signature, slen))
		return 0;
	if (body != NULL && (params != NULL || !body_hash_ok(url, body, body_len)))
		return 0;
	tail = params_text(params, &len);
	sign(auth_token, url, tail, len, mine);
	ok = mine[0] != '\0' && nf_ct_equal(signature, slen, mine, strlen(mine));
	if ((other = port_variant(url)) != NULL) {
		sign(auth_token, other, tail, len, mine);
		ok |= mine[0] != '\0' && nf_ct_equal(signature, slen, mine, strlen(mine));
		free(other);
	}
	OPENSSL_cleanse(mine, sizeof(mine));
	free(tail);
	return ok;
}

/* ---- the URL of this request ---------------------------------------------- */

/* 1 when h is a plain host[:port]: a DNS name or IPv4, or [IPv6]. */
static int
authority_ok(const char *h)
{
	size_t	 i, len;

	if (h == NULL || (len = strlen(h)) == 0 || len > HOST_MAX)
		return 0;
	i = 0;
	if (h[0] == '[') {
		for (i = 1; i < len && h[i] != ']'; i++)
			if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f') ||
			    (h[i] >= 'A' && h[i] <= 'F') || h[i] == ':' || h[i] == '.'))
				return 0;
		if (i == len || i == 1)
			return 0;
		i++;
	} else {
		for (; i < len && h[i] != ':'; i++)
			if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') ||
			    (h[i] >= '0' && h[i] <= '9') || h[i] == '.' || h[i] == '-'))
				return 0;
		if (i == 0)
			return 0;
	}
	if (i == len)
		return 1;
	if (h[i] != ':' || i + 1 == len || len - i - 1 > 5)
		return 0;
	for (i++; i < len; i++)
		if (h[i] < '0' || h[i] > '9')
			return 0;
	return 1;
}

/* The path and query exactly as the client sent them. */
static char *
raw_uri(const struct nf_req *r)
{
	const char	*uri = nf_req_param(r, "REQUEST_URI");

	if (uri != NULL && uri[0] != '\0')
		return nf_xstrdup(uri);
	return nf_xasprintf("%s%s%s", r->path != NULL ? r->path : "/",
	    r->query_string != NULL && r->query_string[0] != '\0' ? "?" : "",
	    r->query_string != NULL ? r->query_string : "");
}

char *
nf_twsig_request_url(const struct nf_req *r)
{
	const char	*pub = r->app != NULL ? r->app->cfg.public_url : NULL;
	const char	*scheme, *host, *name, *port;
	char		*uri, *url;
	size_t		 plen;
	int		 https;

	uri = raw_uri(r);
	if (pub != NULL && pub[0] != '\0') {
		for (plen = strlen(pub); plen > 0 && pub[plen - 1] == '/'; plen--)
			;
		url = nf_xasprintf("%.*s%s", (int)plen, pub, uri);
		free(uri);
		return url;
	}
	scheme = nf_req_param(r, "REQUEST_SCHEME");
	if (scheme == NULL || (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)) {
		scheme = nf_req_param(r, "HTTPS");
		scheme = scheme != NULL && strcasecmp(scheme, "on") == 0 ? "https" : "http";
	}
	https = strcmp(scheme, "https") == 0;
	if (authority_ok(host = nf_req_param(r, "HTTP_HOST")))
		url = nf_xasprintf("%s://%s%s", scheme, host, uri);
	else {
		name = nf_req_param(r, "SERVER_NAME");
		port = nf_req_param(r, "SERVER_PORT");
		if (!authority_ok(name) || strchr(name, ':') != NULL)
			name = "localhost";
		if (port == NULL || !nf_valid_int(port, 1, 65535, NULL) ||
		    strcmp(port, https ? "443" : "80") == 0)
			port = NULL;
		url = nf_xasprintf("%s://%s%s%s%s", scheme, name, port ? ":" : "",
		    port ? port : "", uri);
	}
	free(uri);
	return url;
}

/* ---- the router's check ------------------------------------------------------ */

static const char *
client_ip(const struct nf_req *r)
{
	const char	*ip = nf_req_param(r, "REMOTE_ADDR");

	return ip != NULL && ip[0] != '\0' ? ip : "unknown";
}

/* Audit a failure unless this address already had its share this minute.
 * When Redis cannot say, the record is written: losing a security event
 * is worse than a few extra rows. */
static void
audit_failure(struct nf_req *r, const char *reason, const char *account_sid)
{
	struct json_object	*data;
	struct nf_kv		*kv;
	struct nf_error		 e;
	char			*bucket;
	int64_t			 wait;
	int			 allowed = 1;

	if (r->tenant == NULL)
		return;
	if ((kv = nf_app_kv(r->app)) != NULL) {
		bucket = nf_xasprintf("twsig_audit:%s", client_ip(r));
		nf_error_clear(&e);
		if (nf_kv_ratelimit_hit(kv, r->tenant->id, bucket, AUDIT_PER_MIN, 60000,
		    &allowed, &wait, &e) != NF_OK)
			allowed = 1;
		free(bucket);
	}
	if (!allowed)
		return;
	data = json_object_new_object();
	nf_json_add_str(data, "reason", reason);
	nf_json_add_str(data, "method", r->method_name);
	nf_json_add_str(data, "route", r->route != NULL ? r->route->pattern : r->path);
	if (account_sid != NULL && nf_valid_twilio_sid(account_sid, "AC"))
		nf_json_add_str(data, "accountSid", account_sid);
	nf_audit(r, "twilio.signature_failed", "anonymous", data);
}

static enum nf_err
fail(struct nf_req *r, const char *reason, const char *account_sid, struct nf_error *e)
{
	nf_warn("twilio signature rejected (%s) from %s for %s", reason, client_ip(r),
	    r->route != NULL ? r->route->pattern : "-");
	audit_failure(r, reason, account_sid);
	if (strcmp(reason, "cross_tenant") == 0)
		return nf_error_set(e, NF_EFORBIDDEN, "account_mismatch", NULL,
		    "this webhook's AccountSid does not belong to the tenant");
	if (strcmp(reason, "no_auth_token") == 0)
		return nf_error_set(e, NF_EFORBIDDEN, "twilio_not_configured", NULL,
		    "the tenant has no Twilio auth token to check signatures with");
	return nf_error_set(e, NF_EFORBIDDEN, "invalid_signature", NULL,
	    "X-Twilio-Signature is missing or does not match this request");
}

/* The first AccountSid of the request that is not the tenant's, or NULL
 * when every one (form and query) is.  A tenant without an account SID
 * matches none: which account it is cannot be told. */
static const char *
foreign_account(const struct nf_req *r)
{
	const char		*mine = r->tenant->twilio.account_sid;
	const struct nf_pairs	*lists[2] = { &r->form, &r->query };
	size_t			 i, k;

	for (k = 0; k < 2; k++)
		for (i = 0; i < lists[k]->n; i++)
			if (strcmp(lists[k]->v[i].name, "AccountSid") == 0 &&
			    (mine == NULL || strcmp(lists[k]->v[i].value, mine) != 0))
				return lists[k]->v[i].value;
	return NULL;
}

enum nf_err
nf_twsig_check(struct nf_req *r, struct nf_error *e)
{
	const char	*sig, *token, *other;
	char		*url;
	int		 json, ok;

	if (r->app != NULL && r->app->cfg.dev_skip_twilio_sig) {
		nf_warn("NONFLEX_DEV_SKIP_TWILIO_SIGNATURE=1: %s %s accepted WITHOUT checking "
		    "X-Twilio-Signature (development only, never in production)",
		    r->method_name, r->route != NULL ? r->route->pattern : "-");
		return NF_OK;
	}
	if (r->tenant == NULL)
		return nf_error_set(e, NF_EFORBIDDEN, "invalid_signature", NULL,
		    "X-Twilio-Signature is missing or does not match this request");
	sig = nf_req_header(r, "X-Twilio-Signature");
	if (sig == NULL || sig[0] == '\0')
		return fail(r, "missing", NULL, e);
	if (strlen(sig) > SIG_HEADER_MAX)
		return fail(r, "oversized", NULL, e);
	if (!sig_shape_ok(sig, strlen(sig)))
		return fail(r, "malformed", NULL, e);
	token = r->tenant->twilio.auth_token;
	if (token == NULL || token[0] == '\0')
		return fail(r, "no_auth_token", NULL, e);
	if ((other = foreign_account(r)) != NULL)
		return fail(r, "cross_tenant", other, e);
	/* A JSON body is signed through bodySHA256 in the URL, not as params. */
	json = r->route != NULL && r->route->body == NF_BODY_JSON;
	url = nf_twsig_request_url(r);
	ok = nf_twsig_valid(token, url, json ? NULL : &r->form,
	    json ? (r->body != NULL ? r->body : "") : NULL, json ? r->body_len : 0, sig);
	free(url);
	return ok ? NF_OK : fail(r, "mismatch", NULL, e);
}
