/*
 * fuzz_json.c - libFuzzer harness for the strict JSON parser (json.c) and
 * the typed getters that read request bodies.
 *
 * Invariants checked besides "no crash, no leak": an accepted document
 * serializes and re-parses (our own output is always acceptable), and its
 * serialization is valid UTF-8.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "json.h"
#include "nonflex.h"
#include "valid.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
getters(struct json_object *o)
{
	static const char *const allowed[] = { "a", "b", "topic", NULL };
	static const char *const vias[] = { "direct", "job", NULL };
	struct json_object	*v;
	struct nf_error		 e;
	const char		*s;
	int64_t			 n;
	int			 b, i;

	nf_json_get_string(o, "a", 0, 64, 1, &s, &e);
	nf_json_get_int(o, "b", -5, 5, 0, &n, &e);
	nf_json_get_bool(o, "c", 0, &b, &e);
	nf_json_get_enum(o, "via", vias, 0, &i, &e);
	nf_json_get_value(o, "data", json_type_object, 0, &v, &e);
	nf_json_reject_unknown(o, allowed, &e);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object	*o = NULL, *again = NULL;
	struct nf_error		 e;
	const char		*s;
	size_t			 len;

	if (nf_json_parse((const char *)data, size, &o, &e) != NF_OK)
		return 0;
	getters(o);
	s = nf_json_str(o, &len);
	if (!nf_valid_utf8(s, len, 0, len) || nf_json_parse(s, len, &again, &e) != NF_OK)
		abort();
	json_object_put(again);
	json_object_put(o);
	return 0;
}
