/*
 * webchat.c - web-chat sessions and their tokens (see webchat.h for the
 * documents and why the token is opaque and stored hashed).
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "app.h"
#include "json.h"
#include "log.h"
#include "nonflex.h"
#include "store.h"
#include "tenant.h"
#include "webchat.h"

#define SESSIONS	"webchat_sessions"
#define CONVERSATIONS	"conversations"   /* conversations.c's collection (read only) */

static const struct nf_index indexes[] = {
	{ "webchat_sessions_sid", { "sessionId", NULL }, { 1 }, 1 },
};
static const char *const index_colls[] = { SESSIONS };
static struct nf_store	*indexed_store;

static int
lower_hex(const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

int
nf_webchat_token_parse(const char *token, char sid[NF_WEBCHAT_SID_LEN + 1])
{
	const size_t	 pre = sizeof(NF_WEBCHAT_TOKEN_PREFIX) - 1;
	const char	*s;

	sid[0] = '\0';
	if (token == NULL || strlen(token) != NF_WEBCHAT_TOKEN_LEN ||
	    strncmp(token, NF_WEBCHAT_TOKEN_PREFIX, pre) != 0)
		return 0;
	s = token + pre;
	if (!lower_hex(s, NF_WEBCHAT_SID_LEN) || s[NF_WEBCHAT_SID_LEN] != '.' ||
	    !lower_hex(s + NF_WEBCHAT_SID_LEN + 1, NF_WEBCHAT_SECRET_LEN))
		return 0;
	memcpy(sid, s, NF_WEBCHAT_SID_LEN);
	sid[NF_WEBCHAT_SID_LEN] = '\0';
	return 1;
}

/* Hex SHA-256 of the token's secret part into out (65 bytes). */
static enum nf_err
secret_hash(const char *token, char out[65], struct nf_error *e)
{
	static const char	 hex[] = "0123456789abcdef";
	const char		*secret = token + NF_WEBCHAT_TOKEN_LEN - NF_WEBCHAT_SECRET_LEN;
	unsigned char		 md[EVP_MAX_MD_SIZE];
	size_t			 i, n = 0;

	if (!EVP_Q_digest(NULL, "SHA256", NULL, secret, NF_WEBCHAT_SECRET_LEN, md, &n) ||
	    n != 32) {
		nf_error("webchat: SHA-256 failed");
		return nf_error_set(e, NF_ESYSTEM, NULL, NULL, "hash failed");
	}
	for (i = 0; i < n; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[2 * n] = '\0';
	return NF_OK;
}

enum nf_err
nf_webchat_store(struct nf_app *app, struct nf_store **st, struct nf_error *e)
{
	enum nf_err	 rc;

	_Static_assert(NF_ARRAY_LEN(index_colls) == NF_ARRAY_LEN(indexes), "one per index");
	if ((rc = nf_app_store(app, st, e)) != NF_OK)
		return rc;
	return nf_store_ensure_indexes(*st, index_colls, indexes, NF_ARRAY_LEN(indexes),
	    &indexed_store, e);
}

const char *
nf_webchat_session_id(struct json_object *session)
{
	return nf_json_field_str(session, "sessionId");
}

static struct json_object *
session_doc(const char *sid, const char *hash, const char *name, const char *email,
    int64_t ttl_s)
{
	struct json_object	*doc = json_object_new_object();
	int64_t			 now = nf_now_ms();
	char			 ts[25];

	nf_json_add_str(doc, "sessionId", sid);
	nf_json_add(doc, "name", name != NULL ? json_object_new_string(name) : NULL);
	nf_json_add(doc, "email", email != NULL ? json_object_new_string(email) : NULL);
	nf_json_add_str(doc, "tokenHash", hash);
	nf_iso8601(now, ts);
	nf_json_add_str(doc, "createdAt", ts);
	nf_iso8601(now + ttl_s * 1000, ts);
	nf_json_add_str(doc, "expiresAt", ts);
	return doc;
}

enum nf_err
nf_webchat_create(struct nf_app *app, const struct nf_tenant *t, const char *name,
    const char *email, int64_t ttl_s, struct json_object **session, char **token,
    struct nf_error *e)
{
	struct json_object	*doc = NULL;
	struct nf_store		*st;
	char			 sid[NF_WEBCHAT_SID_LEN + 1], secret[NF_WEBCHAT_SECRET_LEN + 1];
	char			 hash[65], *tok = NULL;
	enum nf_err		 rc;

	*session = NULL;
	*token = NULL;
	if ((rc = nf_webchat_store(app, &st, e)) != NF_OK)
		return rc;
	nf_random_hex(sid, NF_WEBCHAT_SID_LEN / 2);
	nf_random_hex(secret, NF_WEBCHAT_SECRET_LEN / 2);
	tok = nf_xasprintf("%s%s.%s", NF_WEBCHAT_TOKEN_PREFIX, sid, secret);
	if ((rc = secret_hash(tok, hash, e)) != NF_OK)
		goto out;
	doc = session_doc(sid, hash, name, email, ttl_s);
	if ((rc = nf_store_insert(st, t->id, SESSIONS, doc, NULL, e)) != NF_OK)
		goto out;
	*session = doc;
	*token = tok;
	doc = NULL;
	tok = NULL;
out:
	json_object_put(doc);
	if (tok != NULL) {
		OPENSSL_cleanse(tok, strlen(tok));
		free(tok);
	}
	OPENSSL_cleanse(secret, sizeof(secret));
	return rc;
}

static enum nf_err
bad_token(struct nf_error *e)
{
	return nf_error_set(e, NF_EAUTH, "invalid_token", NULL,
	    "a valid web-chat session token is required");
}

enum nf_err
nf_webchat_verify(struct nf_app *app, const struct nf_tenant *t, const char *token,
    struct json_object **session, struct nf_error *e)
{
	struct json_object	*f = NULL, *doc = NULL;
	struct nf_store		*st;
	const char		*stored, *exp;
	char			 sid[NF_WEBCHAT_SID_LEN + 1], hash[65], now[25];
	enum nf_err		 rc;

	*session = NULL;
	if (!nf_webchat_token_parse(token, sid))
		return bad_token(e);
	if ((rc = nf_webchat_store(app, &st, e)) != NF_OK ||
	    (rc = secret_hash(token, hash, e)) != NF_OK)
		return rc;
	f = nf_json_pair("sessionId", sid);
	rc = nf_store_find_one(st, t->id, SESSIONS, f, NULL, &doc, e);
	json_object_put(f);
	if (rc == NF_ENOTFOUND)
		return bad_token(e);
	if (rc != NF_OK)
		return rc;
	nf_iso8601(nf_now_ms(), now);
	stored = nf_json_field_str(doc, "tokenHash");
	exp = nf_json_field_str(doc, "expiresAt");
	if (stored == NULL || exp == NULL || strcmp(exp, now) <= 0 ||
	    !nf_ct_equal(stored, strlen(stored), hash, strlen(hash))) {
		json_object_put(doc);
		return bad_token(e);
	}
	*session = doc;
	return NF_OK;
}

enum nf_err
nf_webchat_conversations(struct nf_app *app, const struct nf_tenant *t, const char *sid,
    int max, struct json_object **ids, struct nf_error *e)
{
	struct nf_find_opts	 o;
	struct json_object	*f, *found = NULL;
	struct nf_store		*st;
	const char		*id;
	size_t			 i;
	enum nf_err		 rc;

	*ids = NULL;
	if ((rc = nf_app_store(app, &st, e)) != NF_OK)
		return rc;
	memset(&o, 0, sizeof(o));
	o.sort = json_object_new_object();
	nf_json_add_int(o.sort, "createdAt", -1);
	o.limit = max;
	f = nf_json_pair("channel", "webchat");
	nf_json_add_str(f, "address", sid);
	rc = nf_store_find(st, t->id, CONVERSATIONS, f, &o, &found, e);
	json_object_put(f);
	json_object_put(o.sort);
	if (rc != NF_OK)
		return rc;
	*ids = json_object_new_array();
	for (i = 0; i < json_object_array_length(found); i++)
		if ((id = nf_json_field_str(json_object_array_get_idx(found, i), "_id")) != NULL)
			json_object_array_add(*ids, json_object_new_string(id));
	json_object_put(found);
	return NF_OK;
}

static void
copy(struct json_object *to, struct json_object *from, const char *from_key,
    const char *to_key)
{
	struct json_object	*v;

	if (json_object_object_get_ex(from, from_key, &v))
		nf_json_add(to, to_key, json_object_get(v));   /* shared with from */
}

struct json_object *
nf_webchat_message_view(struct json_object *msg)
{
	struct json_object	*v = json_object_new_object();

	copy(v, msg, "_id", "id");
	copy(v, msg, "conversationId", "conversationId");
	copy(v, msg, "direction", "direction");
	copy(v, msg, "authorKind", "authorKind");
	copy(v, msg, "body", "body");
	copy(v, msg, "media", "media");
	copy(v, msg, "createdAt", "createdAt");
	return v;
}
