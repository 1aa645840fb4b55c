/*
 * twilio_token.h - Twilio Access Tokens for the agent desk (Conversations
 * chat, Voice softphone, Video, TaskRouter worker).
 *
 * DESIGN: a Twilio Access Token is a JWT signed HS256 with the tenant's API
 * key secret (RELIABILITY.md section 3): header {typ JWT, alg HS256, cty
 * "twilio-fpa;v=1"}, claims jti "<API key SID>-<iat>", iss API key SID, sub
 * account SID, iat, exp, grants {identity, one grant}.  Signed with libjwt.
 * These tokens are for Twilio's audience only: our own auth (auth.c)
 * refuses them.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_TWILIO_TOKEN_H
#define NF_TWILIO_TOKEN_H

#include <stdint.h>

#include "nonflex.h"

struct json_object;
struct nf_tenant;

/*
 * Mint a token for identity with one grant (grant_key "chat", "voice",
 * "video", "task_router"; grant the grant's object, borrowed), valid
 * ttl_s seconds from now_s (iat = now_s, exp = now_s + ttl_s, no nbf).
 * NF_EINVAL "twilio_not_configured" naming the missing setting (field
 * "twilio.apiKey", "twilio.apiSecret", "twilio.accountSid") when the
 * tenant lacks a credential; NF_ESYSTEM (logged) for an empty identity, an
 * unknown grant_key, a grant that is not an object, a ttl_s outside
 * 1..86400 (callers validate these first) or a libjwt failure.  On success
 * *out is a new string the caller frees; it is a credential: never log it.
 */
enum nf_err	 nf_twtoken_mint(const struct nf_tenant *, const char *identity,
		    const char *grant_key, struct json_object *grant, int64_t now_s,
		    int64_t ttl_s, char **out, struct nf_error *);

#endif
