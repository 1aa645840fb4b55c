/*
 * json.h - strict JSON parsing and typed field getters.
 *
 * DESIGN: request bodies (and later upstream responses) are untrusted, so
 * nf_json_parse accepts only RFC 8259 JSON in valid UTF-8, at most 16
 * levels deep, with nothing after the value but whitespace, no NUL byte
 * (raw or as \u0000) and no duplicate key in any object (json-c silently
 * keeps the last one; a client could use that to smuggle a second value
 * past a check that reads the first).  The getters check type, bounds and
 * presence and name the field in the error, so a handler reads each field
 * in one line and returns the error unchanged (the router answers 400 with
 * the field in the envelope).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_JSON_H
#define NF_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "nonflex.h"

struct json_object;

#define NF_JSON_MAX_DEPTH 16

/*
 * Parse buf[0..len) strictly (a bare top-level null is refused, as json-c
 * would return it as a NULL object).  On success *out is a new reference the
 * caller owns (json_object_put).  On failure *out is NULL and the error is
 * NF_EINVAL with code "invalid_json" and a message safe to show a client.
 */
enum nf_err	 nf_json_parse(const char *buf, size_t len, struct json_object **out,
		    struct nf_error *);

/*
 * Typed getters on an object.  A missing (or JSON null) field is an error
 * only when required; otherwise the out value is left untouched and NF_OK
 * returned, so callers preset defaults.  Errors are NF_EINVAL with code
 * "invalid_field" (or "missing_field") and e->field set to the name.
 * Strings: valid UTF-8 without NUL, length in bytes within [min, max];
 * *out is borrowed from obj.
 */
enum nf_err	 nf_json_get_string(struct json_object *obj, const char *field,
		    size_t min, size_t max, int required, const char **out, struct nf_error *);
enum nf_err	 nf_json_get_int(struct json_object *obj, const char *field,
		    int64_t min, int64_t max, int required, int64_t *out, struct nf_error *);
enum nf_err	 nf_json_get_bool(struct json_object *obj, const char *field,
		    int required, int *out, struct nf_error *);
/* String member of the NULL-terminated table; *out is its index. */
enum nf_err	 nf_json_get_enum(struct json_object *obj, const char *field,
		    const char *const *table, int required, int *out, struct nf_error *);
/* Any value (borrowed) of the given json_type, or any type when type < 0. */
enum nf_err	 nf_json_get_value(struct json_object *obj, const char *field, int type,
		    int required, struct json_object **out, struct nf_error *);

/* NF_EINVAL "unknown_field" naming the first key of obj not in the
 * NULL-terminated allowed list; NF_EINVAL "invalid_json" when obj is not
 * an object. */
enum nf_err	 nf_json_reject_unknown(struct json_object *obj, const char *const *allowed,
		    struct nf_error *);

/* Compact serialization (no slash escaping) borrowed from obj. */
const char	*nf_json_str(struct json_object *obj, size_t *len);

/* Small builders that never fail and take care of the add/put rule. */
/* The string value of obj[field]; NULL when obj is NULL, the field is
 * absent or not a string.  Borrowed from obj. */
const char	*nf_json_field_str(struct json_object *obj, const char *field);
/* A new object {key: val} (val NULL: null), e.g. a store filter. */
struct json_object *nf_json_pair(const char *key, const char *val);
void		 nf_json_add(struct json_object *obj, const char *key, struct json_object *val);
void		 nf_json_add_str(struct json_object *obj, const char *key, const char *val);
void		 nf_json_add_int(struct json_object *obj, const char *key, int64_t val);
void		 nf_json_add_bool(struct json_object *obj, const char *key, int val);

#endif
