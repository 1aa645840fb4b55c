/*
 * valid.c - pure validators (see valid.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "valid.h"

/* Every byte of s[0..len) is in set (a 256-entry yes/no test). */
static int
all(const char *s, size_t len, int (*ok)(int))
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if (!ok((unsigned char)s[i]))
			return 0;
	return 1;
}

static int
is_slug_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static int
is_hex(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
is_rid_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
	    c == '.' || c == '_' || c == ':' || c == '-';
}

int
nf_valid_slug(const char *s)
{
	size_t	 len;

	if (s == NULL || (len = strlen(s)) == 0 || len > 63)
		return 0;
	return s[0] != '-' && s[len - 1] != '-' && all(s, len, is_slug_char);
}

int
nf_valid_hex24(const char *s)
{
	return s != NULL && strlen(s) == 24 && all(s, 24, is_hex);
}

int
nf_valid_uuid(const char *s)
{
	static const size_t	 dash[] = { 8, 13, 18, 23 };
	size_t			 i, d = 0;

	if (s == NULL || strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (d < 4 && i == dash[d]) {
			if (s[i] != '-')
				return 0;
			d++;
		} else if (!is_hex((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

int
nf_valid_e164(const char *s)
{
	size_t	 len;

	/* ITU-T E.164: at most 15 digits; shorter than 8 is no real number. */
	if (s == NULL || s[0] != '+' || (len = strlen(s + 1)) < 8 || len > 15)
		return 0;
	return s[1] != '0' && all(s + 1, len, is_digit);
}

static int
is_local_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
	    (c != '\0' && strchr("!#$%&'*+/=?^_`{|}~.-", c) != NULL);
}

static int
is_label_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-';
}

/* Domain: dot-separated labels of [A-Za-z0-9-]{1,63}, no '-' at a label's
 * ends, at least two labels. */
static int
valid_domain(const char *d)
{
	const char	*p = d, *dot;
	size_t		 len;
	int		 labels = 0;

	for (;;) {
		dot = strchr(p, '.');
		len = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (len == 0 || len > 63 || p[0] == '-' || p[len - 1] == '-' ||
		    !all(p, len, is_label_char))
			return 0;
		labels++;
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	return labels >= 2;
}

int
nf_valid_email(const char *s)
{
	const char	*at;
	size_t		 len, llen;

	if (s == NULL || (len = strlen(s)) < 3 || len > 254)
		return 0;
	if ((at = strchr(s, '@')) == NULL || strchr(at + 1, '@') != NULL)
		return 0;
	llen = (size_t)(at - s);
	if (llen == 0 || llen > 64 || s[0] == '.' || s[llen - 1] == '.' ||
	    !all(s, llen, is_local_char) || strstr(s, "..") != NULL)
		return 0;
	return valid_domain(at + 1);
}

int
nf_valid_utf8(const char *str, size_t len, size_t min, size_t max)
{
	const unsigned char	*s = (const unsigned char *)str;
	size_t			 i = 0, n, k;
	uint32_t		 cp;

	if (str == NULL || len < min || len > max)
		return 0;
	while (i < len) {
		if (s[i] == 0)
			return 0;
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] >= 0xc2 && s[i] <= 0xdf)
			n = 1, cp = s[i] & 0x1f;
		else if (s[i] >= 0xe0 && s[i] <= 0xef)
			n = 2, cp = s[i] & 0x0f;
		else if (s[i] >= 0xf0 && s[i] <= 0xf4)
			n = 3, cp = s[i] & 0x07;
		else
			return 0;
		if (len - i <= n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		/* Overlong forms, UTF-16 surrogates, beyond U+10FFFF. */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
		i += n + 1;
	}
	return 1;
}

int
nf_valid_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char		*end = NULL;
	long long	 v;

	/* strtoll skips leading space and accepts '+': we do not. */
	if (s == NULL || *s == '\0' || !(is_digit((unsigned char)*s) || *s == '-'))
		return 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return 0;
	if (out != NULL)
		*out = v;
	return 1;
}

int
nf_valid_enum(const char *s, const char *const *table)
{
	int	 i;

	if (s == NULL || table == NULL)
		return -1;
	for (i = 0; table[i] != NULL; i++)
		if (strcmp(s, table[i]) == 0)
			return i;
	return -1;
}

int
nf_valid_twilio_sid(const char *s, const char *prefix)
{
	if (s == NULL || strlen(s) != 34)
		return 0;
	if (prefix != NULL && strncmp(s, prefix, 2) != 0)
		return 0;
	if (!(s[0] >= 'A' && s[0] <= 'Z') || !(s[1] >= 'A' && s[1] <= 'Z'))
		return 0;
	return all(s + 2, 32, is_hex);
}

int
nf_valid_request_id(const char *s)
{
	size_t	 len;

	return s != NULL && (len = strlen(s)) >= 1 && len <= 128 && all(s, len, is_rid_char);
}

int
nf_valid_charset(const char *s, size_t max, const char *extra)
{
	size_t	 n;

	if (s == NULL)
		return 0;
	for (n = 0; s[n] != '\0'; n++)
		if (n >= max || !((s[n] >= 'a' && s[n] <= 'z') ||
		    (s[n] >= '0' && s[n] <= '9') ||
		    (extra != NULL && strchr(extra, s[n]) != NULL)))
			return 0;
	return n > 0;
}
