/*
 * valid.h - pure validators for client input (no I/O, no allocation).
 *
 * DESIGN: as kcgi's kvalid_*, each function answers yes (1) or no (0) and
 * never changes global state, so they can be tested with tables and
 * fuzzed.  Strings are NUL-terminated unless a length is passed; a NULL
 * string is never valid.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_VALID_H
#define NF_VALID_H

#include <stddef.h>
#include <stdint.h>

int	nf_valid_slug(const char *);        /* [a-z0-9-]{1,63}, no leading/trailing '-' */
int	nf_valid_hex24(const char *);       /* 24 hex digits (ObjectId shaped) */
int	nf_valid_uuid(const char *);        /* 8-4-4-4-12 hex */
int	nf_valid_e164(const char *);        /* '+', first digit 1-9, 8..15 digits in all */
int	nf_valid_email(const char *);       /* pragmatic: local@domain.tld, <= 254 bytes */
/* Valid UTF-8 (no overlongs, surrogates or > U+10FFFF), no NUL byte, and
 * min <= len <= max bytes. */
int	nf_valid_utf8(const char *s, size_t len, size_t min, size_t max);
/* Whole string is a base-10 integer in [min, max]; *out (may be NULL) gets it. */
int	nf_valid_int(const char *s, int64_t min, int64_t max, int64_t *out);
/* Index of s in the NULL-terminated table, or -1. */
int	nf_valid_enum(const char *s, const char *const *table);
/* Twilio SID: prefix (two upper-case letters; NULL = any) + 32 hex. */
int	nf_valid_twilio_sid(const char *s, const char *prefix);
int	nf_valid_request_id(const char *);  /* [A-Za-z0-9._:-]{1,128} */
/* 1..max bytes, each [a-z0-9] or one of the bytes in extra (NULL = none):
 * the one check behind topic, tenant, job type and index names. */
int	nf_valid_charset(const char *s, size_t max, const char *extra);

#endif
