/*
 * json.c - strict JSON parsing and typed getters (see json.h).
 *
 * DESIGN: json-c does the parsing (strict mode, UTF-8 validation, depth
 * 16).  Two things it does not check are done here:
 * - duplicate keys: json-c replaces an earlier value in place.  After a
 *   successful parse the input is known to be valid JSON, so every ':'
 *   outside a string introduces exactly one object member.  Counting those
 *   colons and comparing with the sum of member counts of every object in
 *   the parsed tree detects any duplicate anywhere: each duplicate lowers
 *   the tree's sum by at least one and nothing raises it.
 * - NUL: a raw 0 byte is refused before parsing and "\u0000" is refused by
 *   the same scan, because json-c would truncate keys at it.
 * - leniency: even in strict mode json-c 0.16 accepts 'single-quoted'
 *   strings, NaN/Infinity, raw control characters inside strings and
 *   overlong UTF-8; the whole text is checked with nf_valid_utf8 first and
 *   the scan refuses the rest (tests/unit/t_json.c lists each case).
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <string.h>

#include <json-c/json.h>

#include "json.h"
#include "nonflex.h"
#include "valid.h"

static int
alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A letter outside a string must be an exponent or start true, false or
 * null; on success *i is left on the last character of the word. */
static int
literal(const char *p, size_t len, size_t *i)
{
	static const char *const words[] = { "true", "false", "null" };
	size_t	 k, n;

	if ((p[*i] == 'e' || p[*i] == 'E') && *i > 0 &&
	    ((p[*i - 1] >= '0' && p[*i - 1] <= '9') || p[*i - 1] == '.'))
		return 1;
	for (n = 0; *i + n < len && alpha(p[*i + n]); n++)
		;
	for (k = 0; k < NF_ARRAY_LEN(words); k++)
		if (n == strlen(words[k]) && memcmp(p + *i, words[k], n) == 0) {
			*i += n - 1;
			return 1;
		}
	return 0;
}

/*
 * One pass over already-validated JSON text: count member colons and
 * look for a \u0000 escape or a single-quoted string.  Returns -1 on
 * \u0000, -2 on a single quote outside a string, else the colon count.
 */
static long
scan(const char *p, size_t len)
{
	long	 colons = 0;
	size_t	 i;
	int	 instr = 0;

	for (i = 0; i < len; i++) {
		if (!instr) {
			if (p[i] == '"')
				instr = 1;
			else if (p[i] == ':')
				colons++;
			else if (p[i] == '\'')
				return -2;   /* json-c accepts 'single quotes' even when strict */
			else if (alpha(p[i]) && !literal(p, len, &i))
				return -2;   /* ... and NaN, Infinity */
			continue;
		}
		if (p[i] == '"') {
			instr = 0;
		} else if ((unsigned char)p[i] < 0x20) {
			return -2;   /* raw control character, json-c lets it pass */
		} else if (p[i] == '\\' && i + 1 < len) {
			if (p[i + 1] == 'u' && i + 5 < len && memcmp(p + i + 2, "0000", 4) == 0)
				return -1;
			i++;  /* skip the escaped character */
		}
	}
	return colons;
}

/* Sum of member counts of every object in the tree (depth <= 16). */
static long
members(struct json_object *o)
{
	long	 n = 0;
	size_t	 i, len;

	switch (json_object_get_type(o)) {
	case json_type_object:
		n = json_object_object_length(o);
		json_object_object_foreach(o, k, v) {
			(void)k;
			n += members(v);
		}
		break;
	case json_type_array:
		len = json_object_array_length(o);
		for (i = 0; i < len; i++)
			n += members(json_object_array_get_idx(o, i));
		break;
	default:
		break;
	}
	return n;
}

static enum nf_err
bad(struct nf_error *e, const char *msg)
{
	return nf_error_set(e, NF_EINVAL, "invalid_json", NULL, "%s", msg);
}

enum nf_err
nf_json_parse(const char *buf, size_t len, struct json_object **out, struct nf_error *e)
{
	struct json_tokener	*tok = NULL;
	struct json_object	*o = NULL;
	enum json_tokener_error	 jerr;
	enum nf_err		 rc = NF_OK;
	long			 colons;

	*out = NULL;
	if (len == 0)
		return bad(e, "request body is empty");
	if (len > (size_t)INT32_MAX)
		return bad(e, "JSON text is too large");
	if (memchr(buf, '\0', len) != NULL)
		return bad(e, "JSON text contains a NUL byte");
	/* json-c's own check lets overlong forms and surrogates through. */
	if (!nf_valid_utf8(buf, len, 0, len))
		return bad(e, "JSON text is not valid UTF-8");
	tok = json_tokener_new_ex(NF_JSON_MAX_DEPTH);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	if (o == NULL && jerr == json_tokener_continue &&
	    json_tokener_get_parse_end(tok) == len) {
		/* A bare number or literal needs to see the end of input. */
		o = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
	} else if (o != NULL && json_tokener_get_parse_end(tok) != len) {
		rc = bad(e, "unexpected data after the JSON value");
		goto out;
	}
	if (jerr != json_tokener_success) {
		if (jerr == json_tokener_error_depth)
			rc = bad(e, "JSON nesting is too deep");
		else if (jerr == json_tokener_error_parse_utf8_string)
			rc = bad(e, "JSON text is not valid UTF-8");
		else if (jerr == json_tokener_continue)
			rc = bad(e, "JSON text ends too early");
		else
			rc = bad(e, "malformed JSON");
		goto out;
	}
	if ((colons = scan(buf, len)) == -1) {
		rc = bad(e, "JSON strings may not contain NUL (\\u0000)");
		goto out;
	}
	if (colons < 0) {
		rc = bad(e, "malformed JSON");
		goto out;
	}
	if (o == NULL) {
		/* json-c's null is a NULL pointer; callers want a value. */
		rc = bad(e, "a JSON null document is not accepted");
		goto out;
	}
	if (colons != members(o)) {
		rc = bad(e, "duplicate key in a JSON object");
		goto out;
	}
	*out = o;
	o = NULL;
out:
	json_object_put(o);
	json_tokener_free(tok);
	return rc;
}

/* Field lookup shared by the getters: NF_OK with *v NULL when absent. */
static enum nf_err
lookup(struct json_object *obj, const char *field, int required,
    struct json_object **v, struct nf_error *e)
{
	*v = NULL;
	if (!json_object_is_type(obj, json_type_object))
		return nf_error_set(e, NF_EINVAL, "invalid_json", NULL,
		    "the request body must be a JSON object");
	json_object_object_get_ex(obj, field, v);
	if (*v == NULL && required)
		return nf_error_set(e, NF_EINVAL, "missing_field", field,
		    "%s is required", field);
	return NF_OK;
}

static enum nf_err
wrong(struct nf_error *e, const char *field, const char *what)
{
	return nf_error_set(e, NF_EINVAL, "invalid_field", field, "%s must be %s", field, what);
}

enum nf_err
nf_json_get_string(struct json_object *obj, const char *field, size_t min, size_t max,
    int required, const char **out, struct nf_error *e)
{
	struct json_object	*v;
	enum nf_err		 rc;
	const char		*s;
	size_t			 len;

	if ((rc = lookup(obj, field, required, &v, e)) != NF_OK || v == NULL)
		return rc;
	if (!json_object_is_type(v, json_type_string))
		return wrong(e, field, "a string");
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (!nf_valid_utf8(s, len, 0, SIZE_MAX))
		return wrong(e, field, "valid UTF-8 text without NUL");
	if (len < min || len > max)
		return nf_error_set(e, NF_EINVAL, "invalid_field", field,
		    "%s must be %zu to %zu bytes long", field, min, max);
	*out = s;
	return NF_OK;
}

enum nf_err
nf_json_get_int(struct json_object *obj, const char *field, int64_t min, int64_t max,
    int required, int64_t *out, struct nf_error *e)
{
	struct json_object	*v;
	enum nf_err		 rc;
	int64_t			 n;

	if ((rc = lookup(obj, field, required, &v, e)) != NF_OK || v == NULL)
		return rc;
	if (!json_object_is_type(v, json_type_int))
		return wrong(e, field, "an integer");
	/* json-c clamps out-of-range literals to INT64_MIN/MAX, which the
	 * range check then rejects unless the caller allows the extremes. */
	n = json_object_get_int64(v);
	if (n < min || n > max)
		return nf_error_set(e, NF_EINVAL, "invalid_field", field,
		    "%s must be between %lld and %lld", field, (long long)min, (long long)max);
	*out = n;
	return NF_OK;
}

enum nf_err
nf_json_get_bool(struct json_object *obj, const char *field, int required, int *out,
    struct nf_error *e)
{
	struct json_object	*v;
	enum nf_err		 rc;

	if ((rc = lookup(obj, field, required, &v, e)) != NF_OK || v == NULL)
		return rc;
	if (!json_object_is_type(v, json_type_boolean))
		return wrong(e, field, "true or false");
	*out = json_object_get_boolean(v) ? 1 : 0;
	return NF_OK;
}

enum nf_err
nf_json_get_enum(struct json_object *obj, const char *field, const char *const *table,
    int required, int *out, struct nf_error *e)
{
	struct json_object	*v;
	enum nf_err		 rc;
	int			 i;

	if ((rc = lookup(obj, field, required, &v, e)) != NF_OK || v == NULL)
		return rc;
	if (json_object_is_type(v, json_type_string) &&
	    (i = nf_valid_enum(json_object_get_string(v), table)) >= 0) {
		*out = i;
		return NF_OK;
	}
	return wrong(e, field, "one of the allowed values");
}

enum nf_err
nf_json_get_value(struct json_object *obj, const char *field, int type, int required,
    struct json_object **out, struct nf_error *e)
{
	struct json_object	*v;
	enum nf_err		 rc;

	if ((rc = lookup(obj, field, required, &v, e)) != NF_OK || v == NULL)
		return rc;
	if (type >= 0 && !json_object_is_type(v, (enum json_type)type))
		return wrong(e, field, "of another type");
	*out = v;
	return NF_OK;
}

enum nf_err
nf_json_reject_unknown(struct json_object *obj, const char *const *allowed,
    struct nf_error *e)
{
	if (!json_object_is_type(obj, json_type_object))
		return nf_error_set(e, NF_EINVAL, "invalid_json", NULL,
		    "the request body must be a JSON object");
	json_object_object_foreach(obj, key, val) {
		(void)val;
		if (nf_valid_enum(key, allowed) < 0)
			return nf_error_set(e, NF_EINVAL, "unknown_field",
			    nf_valid_utf8(key, strlen(key), 1, 63) ? key : NULL,
			    "unknown field");
	}
	return NF_OK;
}

const char *
nf_json_str(struct json_object *obj, size_t *len)
{
	const char	*s;
	size_t		 n = 0;

	s = json_object_to_json_string_length(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	if (len != NULL)
		*len = n;
	return s;
}

const char *
nf_json_field_str(struct json_object *obj, const char *field)
{
	struct json_object	*v;

	if (obj == NULL || !json_object_object_get_ex(obj, field, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

struct json_object *
nf_json_pair(const char *key, const char *val)
{
	struct json_object	*o = json_object_new_object();

	nf_json_add_str(o, key, val);
	return o;
}

void
nf_json_add(struct json_object *obj, const char *key, struct json_object *val)
{
	if (json_object_object_add(obj, key, val) != 0)
		json_object_put(val);
}

void
nf_json_add_str(struct json_object *obj, const char *key, const char *val)
{
	nf_json_add(obj, key, val != NULL ? json_object_new_string(val) : NULL);
}

void
nf_json_add_int(struct json_object *obj, const char *key, int64_t val)
{
	nf_json_add(obj, key, json_object_new_int64(val));
}

void
nf_json_add_bool(struct json_object *obj, const char *key, int val)
{
	nf_json_add(obj, key, json_object_new_boolean(val != 0));
}
