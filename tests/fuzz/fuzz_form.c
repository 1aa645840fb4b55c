/*
 * fuzz_form.c - libFuzzer harness for the form / query decoder and the
 * Content-Type check (req.c), the parsers that see webhook bodies.
 *
 * Invariants: every decoded name and value is valid UTF-8 without NUL, the
 * field cap holds, and a failed parse leaves no pairs behind.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nonflex.h"
#include "req.h"
#include "valid.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nf_pairs	 p = { 0 };
	struct nf_error	 e;
	char		*s, *d;
	size_t		 i, dlen;

	if (nf_form_parse((const char *)data, size, 16, "invalid_form", &p, &e) == NF_OK) {
		if (p.n > 16)
			abort();
		for (i = 0; i < p.n; i++)
			if (!nf_valid_utf8(p.v[i].name, strlen(p.v[i].name), 0, size) ||
			    !nf_valid_utf8(p.v[i].value, strlen(p.v[i].value), 0, size))
				abort();
	} else if (p.n != 0)
		abort();
	nf_pairs_cleanup(&p);
	if (nf_url_decode((const char *)data, size, 1, &d, &dlen)) {
		if (dlen > size || strlen(d) != dlen)
			abort();
		free(d);
	}
	/* The same bytes as a Content-Type header value. */
	s = nf_xstrndup((const char *)data, size);
	nf_content_type_ok(s, NF_BODY_JSON);
	nf_content_type_ok(s, NF_BODY_FORM);
	free(s);
	return 0;
}
