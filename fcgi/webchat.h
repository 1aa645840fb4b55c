/*
 * webchat.h - web-chat sessions for the embeddable widget: who may post
 * into and read one web-chat conversation, and subscribe to its events.
 *
 * DESIGN: a visitor has no account.  POST /api/webchat/sessions creates a
 * session document
 *   webchat_sessions {tenant, sessionId (32 random hex), name, email,
 *     tokenHash (hex SHA-256 of the token's secret), createdAt, expiresAt}
 * and hands back a bearer token "wc1.<sessionId>.<secret>" (secret: 64
 * random hex).  The token is opaque and stored hashed rather than being a
 * JWT: the session has to be read from the store on every use anyway (its
 * conversation, its expiry), a stolen database holds no usable token, and
 * nothing is shared with the agents' JWT verifier (auth.c, whose claim set
 * is strict), so an agent token can never pass for a web-chat token or
 * the other way round: an agent token has no "wc1." prefix and a web-chat
 * token is not a three-segment JWT (auth.c answers "malformed").  The
 * session id is the conversation's address (channel "webchat") and the
 * event topic "webchat-<sessionId>" is the session's own channel.
 * Verification reads the session by sessionId within the request's tenant
 * (another tenant's session is simply not found) and compares hashes in
 * constant time.  Tokens expire after NONFLEX_WEBCHAT_TTL_S.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_WEBCHAT_H
#define NF_WEBCHAT_H

#include <stdint.h>

#include "nonflex.h"

struct json_object;
struct nf_app;
struct nf_store;
struct nf_tenant;

#define NF_WEBCHAT_SID_LEN	32      /* hex digits of a session id */
#define NF_WEBCHAT_SECRET_LEN	64      /* hex digits of a token's secret */
#define NF_WEBCHAT_TOKEN_PREFIX	"wc1."
/* "wc1." sid "." secret */
#define NF_WEBCHAT_TOKEN_LEN	(4 + NF_WEBCHAT_SID_LEN + 1 + NF_WEBCHAT_SECRET_LEN)
#define NF_WEBCHAT_NAME_MAX	100     /* bytes of a visitor's name */
#define NF_WEBCHAT_EMAIL_MAX	254
#define NF_WEBCHAT_MSG_MAX	2000    /* bytes of a visitor's message */

/*
 * Split a token into its session id (sid, NUL-terminated).  Returns 1 when
 * token has exactly the shape "wc1." + 32 lower-case hex + "." + 64
 * lower-case hex, 0 otherwise.  Pure; cannot fail.
 */
int		 nf_webchat_token_parse(const char *token, char sid[NF_WEBCHAT_SID_LEN + 1]);

/* The store with this module's index (unique (tenant, sessionId)). */
enum nf_err	 nf_webchat_store(struct nf_app *, struct nf_store **, struct nf_error *);

/*
 * New session for a visitor (name, email: may be NULL; already
 * validated by the caller) valid ttl_s seconds.  *session: new reference
 * to the stored document; *token: malloc'd, shown to the visitor once and
 * never stored or logged.  NF_EUNAVAIL/NF_ESTORE when the store fails.
 */
enum nf_err	 nf_webchat_create(struct nf_app *, const struct nf_tenant *, const char *name,
		    const char *email, int64_t ttl_s, struct json_object **session, char **token,
		    struct nf_error *);

/*
 * The session a token grants, in the given tenant.  NF_EAUTH
 * "invalid_token" for a malformed, unknown, expired or wrong token (one
 * answer for all, so a prober learns nothing); *session is then NULL.
 * On success *session is a new reference.
 */
enum nf_err	 nf_webchat_verify(struct nf_app *, const struct nf_tenant *, const char *token,
		    struct json_object **session, struct nf_error *);

/* The session's id (borrowed from the document), or NULL. */
const char	*nf_webchat_session_id(struct json_object *session);

/*
 * The ids of the session's conversations (channel "webchat", address =
 * session id, any status), newest first, at most max: a new JSON array in
 * *ids.  A closed conversation stays part of the visitor's history.
 */
enum nf_err	 nf_webchat_conversations(struct nf_app *, const struct nf_tenant *,
		    const char *sid, int max, struct json_object **ids, struct nf_error *);

/* What a visitor sees of a message (new object): id, direction,
 * authorKind, body, media, createdAt; never agent usernames or internal
 * delivery details. */
struct json_object *nf_webchat_message_view(struct json_object *msg);

#endif
