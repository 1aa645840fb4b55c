/*
 * auth.h - agent sessions: HS256 login tokens (libjwt), their verification
 * on every request, revocation, and the principal handlers see.
 *
 * DESIGN: the router (router.c authorize()) is the only caller of
 * nf_auth_request: it takes the token from "Authorization: Bearer" or the
 * session cookie, verifies it with exactly HS256 and JWT_SECRET, checks
 * iss/aud/typ/exp/iat/nbf (60 s leeway), that the tenant claim equals the
 * resolved tenant (403 otherwise), that the jti is not revoked (Redis) and
 * that the agent still exists and is enabled (store), then fills
 * r->principal.  Handlers read r->principal and never parse tokens.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_AUTH_H
#define NF_AUTH_H

#include <stdint.h>

#include "nonflex.h"

struct nf_req;
struct nf_app;

/* Who is calling (valid for one request; owned by struct nf_req). */
struct nf_principal {
	int	 authenticated;   /* 0 for public routes */
	char	 agent_id[25];    /* sub */
	char	 username[65];
	unsigned roles;           /* NF_ROLE_* bits (router.h) */
	char	 jti[33];
	int64_t	 exp;             /* seconds since epoch */
	int	 via_cookie;      /* token came from the session cookie */
};

#define NF_AUTH_COOKIE      "nf_session"
#define NF_AUTH_CSRF_HEADER "X-CSRF-Token"

#endif
