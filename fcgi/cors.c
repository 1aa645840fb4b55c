/*
 * cors.c - origin checks for cross-origin reads (cors.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "app.h"
#include "config.h"
#include "cors.h"
#include "req.h"
#include "tenant.h"

#define EMBED_PREFIX	"/api/webchat/"

static int
host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* ":1".."65535" with no leading zero, or "" (default port). */
static int
valid_port(const char *p)
{
	long	 n = 0;
	size_t	 i;

	if (*p == '\0')
		return 1;
	if (p[0] != ':' || p[1] < '1' || p[1] > '9')
		return 0;
	for (i = 1; p[i] != '\0'; i++) {
		if (p[i] < '0' || p[i] > '9' || i > 5)
			return 0;
		n = n * 10 + (p[i] - '0');
	}
	return n <= 65535;
}

int
nf_cors_valid_origin(const char *s)
{
	const char	*h, *end;

	if (s == NULL || strlen(s) > NF_CORS_ORIGIN_MAX)
		return 0;
	if (strncmp(s, "https://", 8) == 0)
		h = s + 8;
	else if (strncmp(s, "http://", 7) == 0)
		h = s + 7;
	else
		return 0;
	if (*h == '[') {
		/* A browser sends IPv6 hosts bracketed and lower-case. */
		for (end = h + 1; (*end >= '0' && *end <= '9') || (*end >= 'a' && *end <= 'f') ||
		    *end == ':' || *end == '.'; end++)
			;
		if (end == h + 1 || *end != ']')
			return 0;
		return valid_port(end + 1);
	}
	for (end = h; host_char(*end); end++)
		;
	/* No empty host or label, no trailing dot (browsers keep it, but
	 * nobody means it). */
	if (end == h || h[0] == '.' || h[0] == '-' || end[-1] == '.' ||
	    strstr(h, "..") != NULL)
		return 0;
	return valid_port(end);
}

int
nf_cors_embed_path(const char *path)
{
	return path != NULL && strncmp(path, EMBED_PREFIX, strlen(EMBED_PREFIX)) == 0;
}

int
nf_cors_tenant_allows(const struct nf_tenant *t, const char *origin)
{
	size_t	 i;

	if (t == NULL || origin == NULL)
		return 0;
	for (i = 0; i < t->webchat.nallowed_origins; i++)
		if (strcmp(t->webchat.allowed_origins[i], origin) == 0)
			return 1;
	return 0;
}

/* Is origin the request's own "<scheme>://<Host>"? */
static int
same_origin(const struct nf_req *r, const char *origin)
{
	const char	*host = nf_req_param(r, "HTTP_HOST");
	const char	*scheme = nf_req_param(r, "REQUEST_SCHEME");
	char		 own[NF_CORS_ORIGIN_MAX + 1];
	int		 n;

	if (host == NULL || scheme == NULL ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
		return 0;
	n = snprintf(own, sizeof(own), "%s://%s", scheme, host);
	return n > 0 && (size_t)n < sizeof(own) && strcmp(own, origin) == 0;
}

int
nf_cors_allowed(const struct nf_req *r, int embed, const char *origin)
{
	if (origin == NULL || *origin == '\0')
		return 0;
	if (nf_config_origin_allowed(&r->app->cfg, origin) || same_origin(r, origin))
		return 1;
	return embed && nf_cors_tenant_allows(r->tenant, origin);
}
