/*
 * fuzz_twsig.c - libFuzzer harness for the X-Twilio-Signature check
 * (twilio_sig.c): the URL splitting behind the port variants, the
 * bodySHA256 lookup, the parameter sort, the header's shape check and the
 * URL a request is checked against.
 *
 * Input: newline-separated fields: auth token, URL, Host header,
 * REQUEST_URI, form body (decoded with nf_form_parse), then everything
 * left is a JSON body.  Invariants: a computed signature is 28 bytes of
 * base64 ending in '=' and is accepted for the URL it was computed over
 * (and so is the other port form's), one changed byte of it is refused,
 * a JSON body is accepted only when the URL's bodySHA256 is its hash, and
 * the request URL always starts with a scheme and ends with REQUEST_URI.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "nonflex.h"
#include "req.h"
#include "twilio_sig.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NFIELDS 5

/* Split data into NFIELDS NUL-free strings and the rest; 0 when too few. */
static int
fields(const uint8_t *data, size_t size, char *f[NFIELDS], const char **rest,
    size_t *rest_len)
{
	const uint8_t	*p = data, *end = data + size, *nl;
	size_t		 i;

	for (i = 0; i < NFIELDS; i++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL || memchr(p, '\0', (size_t)(nl - p)) != NULL) {
			while (i > 0)
				free(f[--i]);
			return 0;
		}
		f[i] = nf_xstrndup((const char *)p, (size_t)(nl - p));
		p = nl + 1;
	}
	*rest = (const char *)p;
	*rest_len = (size_t)(end - p);
	return 1;
}

static void
check_signature(const char *token, const char *url, const struct nf_pairs *params)
{
	char	 sig[29];
	size_t	 len;

	nf_twsig_compute(token, url, params, sig);
	if ((len = strlen(sig)) == 0)           /* HMAC refused the key */
		return;
	if (len != 28 || sig[27] != '=')
		abort();
	if (token[0] == '\0')
		return;                         /* never valid: no token */
	if (!nf_twsig_valid(token, url, params, NULL, 0, sig))
		abort();
	sig[0] = sig[0] == 'A' ? 'B' : 'A';
	if (nf_twsig_valid(token, url, params, NULL, 0, sig))
		abort();
}

static void
check_request_url(const char *host, const char *uri)
{
	struct nf_app	 app;
	struct nf_req	 r;
	char		*env[5], *h, *u, *url;
	size_t		 ulen = strlen(uri), len;

	memset(&app, 0, sizeof(app));
	app.cfg.public_url = (char *)"";
	env[0] = h = nf_xasprintf("HTTP_HOST=%s", host);
	env[1] = u = nf_xasprintf("REQUEST_URI=%s", uri);
	env[2] = (char *)"REQUEST_SCHEME=https";
	env[3] = (char *)"SERVER_PORT=8443";
	env[4] = NULL;
	nf_req_init(&r, &app, env, NULL, NULL);
	url = nf_twsig_request_url(&r);
	len = strlen(url);
	if (strncmp(url, "https://", 8) != 0 || (ulen > 0 && (len < ulen ||
	    strcmp(url + len - ulen, uri) != 0)))
		abort();
	free(url);
	nf_req_cleanup(&r);
	free(h);
	free(u);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nf_pairs	 p = { 0 };
	struct nf_error	 e;
	const char	*body;
	char		*f[NFIELDS], sig[29];
	size_t		 body_len;

	if (!fields(data, size, f, &body, &body_len))
		return 0;
	if (nf_form_parse(f[4], strlen(f[4]), 64, "invalid_form", &p, &e) == NF_OK)
		check_signature(f[0], f[1], &p);
	nf_pairs_cleanup(&p);
	check_signature(f[0], f[1], NULL);
	/* A JSON body: whatever the URL says, no crash; the signature of the
	 * URL alone is only accepted together with the right hash. */
	nf_twsig_compute(f[0], f[1], NULL, sig);
	if (nf_twsig_valid(f[0], f[1], NULL, body, body_len, sig) &&
	    strstr(f[1], "bodySHA256=") == NULL)
		abort();
	check_request_url(f[2], f[3]);
	for (size_t i = 0; i < NFIELDS; i++)
		free(f[i]);
	return 0;
}
