/*
 * bsonjson.h - json-c <-> BSON conversion for the MongoDB store backend
 * (store_mongo.c).  Internal: only the Mongo backend and its unit test
 * (tests/unit/t_bsonjson.c) include it.
 *
 * DESIGN: values are converted by walking them with typed appends, never
 * through a JSON string, so nothing a client sent can turn into an operator
 * by re-parsing, and types survive exactly.
 *
 * JSON -> BSON:
 *   string  -> utf8 (must be valid UTF-8; embedded NUL allowed), except:
 *              - a lower-case 24-hex string under an "_id" key (or a key
 *                ending in "._id"), including inside that key's operator
 *                objects and arrays ({"_id": {"$in": [...]}}, "$ne", "$gt"
 *                ...), becomes an ObjectId, so data written by the original
 *                Node/Mongoose app (ObjectId _id) is found by our 24-hex ids;
 *              - a string exactly in nf_iso8601 form
 *                ("2026-11-25T10:00:00.000Z") that formats back to itself
 *                becomes a BSON date, so Mongoose's createdAt/updatedAt
 *                dates compare and sort against our timestamps.
 *              Both mappings are undone on the way back, so round trips
 *              are exact.
 *   int     -> int64; an unsigned value above INT64_MAX -> double (BSON has
 *              no unsigned 64-bit type)
 *   double  -> double;  boolean -> bool;  null -> null
 *   object  -> document;  array -> array (keys "0", "1", ...)
 *
 * BSON -> JSON:
 *   utf8 -> string (null when not valid UTF-8); int32/int64 -> int;
 *   double -> double (NaN and infinities -> null, JSON has none);
 *   bool, null -> same; document/array -> object/array;
 *   ObjectId -> 24-hex string; date -> ISO-8601 string (nf_iso8601);
 *   decimal128 -> string ("1.5E+3" style, bson_decimal128_to_string);
 *   binary -> base64 string; regex -> "/pattern/options" string;
 *   JavaScript code (with or without scope) and symbol -> string;
 *   timestamp -> ISO-8601 string of its seconds field;
 *   undefined, DBPointer, MinKey, MaxKey -> null.
 *
 * Nesting deeper than NF_BSONJSON_MAXDEPTH is refused (NF_EINVAL for JSON
 * input, NF_ESTORE for BSON from the server).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_BSONJSON_H
#define NF_BSONJSON_H

#include <bson/bson.h>

#include "nonflex.h"

struct json_object;

#define NF_BSONJSON_MAXDEPTH 100

/*
 * Append the members of obj (borrowed; must be a JSON object) to out, a
 * bson_t the caller initialised (bson_init) and later destroys.  On error
 * (not an object, invalid UTF-8, too deep) returns NF_EINVAL with e filled
 * and out holds a partial document the caller still destroys.
 */
enum nf_err	 nf_bsonjson_from_json(struct json_object *obj, bson_t *out,
		    struct nf_error *e);

/*
 * Append one JSON value v (borrowed; NULL means null) to out under key.
 * id_ctx is 1 when v sits under an "_id" key (24-hex strings become
 * ObjectIds).  Errors as nf_bsonjson_from_json.
 */
enum nf_err	 nf_bsonjson_append(bson_t *out, const char *key, struct json_object *v,
		    int id_ctx, struct nf_error *e);

/*
 * Convert the BSON document doc (borrowed) into a new JSON object in *out
 * (caller puts it).  A structurally invalid or too deep document gives
 * NF_ESTORE and *out NULL.
 */
enum nf_err	 nf_bsonjson_to_json(const bson_t *doc, struct json_object **out,
		    struct nf_error *e);

/* 1 when s[0..len) is exactly 24 lower-case hex digits.  Cannot fail. */
int		 nf_bsonjson_is_oid_hex(const char *s, size_t len);

#endif /* NF_BSONJSON_H */
