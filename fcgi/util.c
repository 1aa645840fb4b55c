/*
 * util.c - error table, never-failing allocation, time, randomness and ids
 * shared by all programs (see nonflex.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "nonflex.h"

static const struct {
	const char	*code;
	int		 status;
} errs[NF_ERR__MAX] = {
	{ "ok", 200 },                  /* NF_OK */
	{ "internal_error", 500 },      /* NF_ENOMEM */
	{ "invalid_request", 400 },     /* NF_EINVAL */
	{ "unauthorized", 401 },        /* NF_EAUTH */
	{ "forbidden", 403 },           /* NF_EFORBIDDEN */
	{ "not_found", 404 },           /* NF_ENOTFOUND */
	{ "method_not_allowed", 405 },  /* NF_EMETHOD */
	{ "conflict", 409 },            /* NF_ECONFLICT */
	{ "payload_too_large", 413 },   /* NF_ETOOBIG */
	{ "unsupported_media_type", 415 }, /* NF_EMEDIATYPE */
	{ "rate_limited", 429 },        /* NF_ERATE */
	{ "upstream_error", 502 },      /* NF_EUPSTREAM */
	{ "service_unavailable", 503 }, /* NF_EUNAVAIL */
	{ "internal_error", 500 },      /* NF_ESTORE */
	{ "internal_error", 500 },      /* NF_ESYSTEM */
};

const char *
nf_strerror(enum nf_err e)
{
	if ((unsigned)e >= NF_ERR__MAX)
		return "internal_error";
	return errs[e].code;
}

int
nf_err_status(enum nf_err e)
{
	if ((unsigned)e >= NF_ERR__MAX)
		return 500;
	return errs[e].status;
}

void
nf_error_clear(struct nf_error *e)
{
	if (e != NULL)
		memset(e, 0, sizeof(*e));
}

enum nf_err
nf_error_set(struct nf_error *e, enum nf_err rc, const char *code,
    const char *field, const char *fmt, ...)
{
	va_list	 ap;

	if (e == NULL)
		return rc;
	nf_error_clear(e);
	snprintf(e->code, sizeof(e->code), "%s", code != NULL ? code : nf_strerror(rc));
	if (field != NULL)
		snprintf(e->field, sizeof(e->field), "%s", field);
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(e->message, sizeof(e->message), fmt, ap);
		va_end(ap);
	}
	return rc;
}

static void
oom(size_t n)
{
	fprintf(stderr, "{\"level\":\"error\",\"msg\":\"out of memory allocating %zu bytes\"}\n", n);
	abort();
}

void *
nf_xmalloc(size_t n)
{
	void	*p = malloc(n ? n : 1);

	if (p == NULL)
		oom(n);
	return p;
}

void *
nf_xcalloc(size_t n, size_t sz)
{
	void	*p = calloc(n ? n : 1, sz ? sz : 1);

	if (p == NULL)
		oom(n * sz);
	return p;
}

void *
nf_xrealloc(void *old, size_t n)
{
	void	*p = realloc(old, n ? n : 1);

	if (p == NULL)
		oom(n);
	return p;
}

char *
nf_xstrdup(const char *s)
{
	return nf_xstrndup(s, strlen(s));
}

char *
nf_xstrndup(const char *s, size_t n)
{
	char	*p = nf_xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
nf_xasprintf(const char *fmt, ...)
{
	va_list	 ap;
	char	*p;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom(0);
	p = nf_xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

int64_t
nf_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
nf_mono_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
nf_iso8601(int64_t ms, char buf[25])
{
	time_t		 t = (time_t)(ms / 1000);
	struct tm	 tm;
	int		 milli = (int)(ms % 1000);

	if (milli < 0)
		milli += 1000;
	gmtime_r(&t, &tm);
	/* strftime cannot overflow silently: 20 characters plus ".mmmZ". */
	if (strftime(buf, 25, "%Y-%m-%dT%H:%M:%S", &tm) != 19) {
		memcpy(buf, "1970-01-01T00:00:00.000Z", 25);
		return;
	}
	buf[19] = '.';
	buf[20] = (char)('0' + milli / 100);
	buf[21] = (char)('0' + milli / 10 % 10);
	buf[22] = (char)('0' + milli % 10);
	buf[23] = 'Z';
	buf[24] = '\0';
}

void
nf_random_bytes(void *buf, size_t n)
{
	unsigned char	*p = buf;
	ssize_t		 r;

	while (n > 0) {
		r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "{\"level\":\"error\",\"msg\":\"getrandom failed\"}\n");
			abort();
		}
		p += r;
		n -= (size_t)r;
	}
}

void
nf_random_hex(char *out, size_t nbytes)
{
	static const char	 hex[] = "0123456789abcdef";
	unsigned char		 b[64];
	size_t			 i, chunk, o = 0;

	while (nbytes > 0) {
		chunk = nbytes < sizeof(b) ? nbytes : sizeof(b);
		nf_random_bytes(b, chunk);
		for (i = 0; i < chunk; i++) {
			out[o++] = hex[b[i] >> 4];
			out[o++] = hex[b[i] & 0xf];
		}
		nbytes -= chunk;
	}
	out[o] = '\0';
}

void
nf_id_new(char out[25])
{
	/* 4 bytes of seconds then 8 random bytes: ids sort by creation time
	 * (to the second) and are valid MongoDB ObjectIds. */
	static const char	 hex[] = "0123456789abcdef";
	uint32_t		 t = (uint32_t)(nf_now_ms() / 1000);
	int			 i;

	for (i = 7; i >= 0; i--, t >>= 4)
		out[i] = hex[t & 0xf];
	nf_random_hex(out + 8, 8);
}

int
nf_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	const unsigned char	*x = a, *y = b;
	unsigned char		 d = 0;
	size_t			 i;

	if (alen != blen)
		return 0;
	for (i = 0; i < alen; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}
