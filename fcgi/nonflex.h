/*
 * nonflex.h - types and helpers shared by every Nonflex module.
 *
 * DESIGN: functions that can fail return enum nf_err and fill a caller
 * provided struct nf_error with a public code/message (never internals:
 * those go to the log).  Allocation through nf_x* never fails: on
 * exhaustion the process logs and aborts, so callers only check real errors.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NONFLEX_H
#define NONFLEX_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Error classes; each maps to one HTTP status (nf_err_status). */
enum nf_err {
	NF_OK = 0,        /* success */
	NF_ENOMEM,        /* out of memory (500) */
	NF_EINVAL,        /* invalid input (400) */
	NF_EAUTH,         /* not authenticated (401) */
	NF_EFORBIDDEN,    /* authenticated but not allowed (403) */
	NF_ENOTFOUND,     /* no such object or route (404) */
	NF_EMETHOD,       /* method not allowed on this route (405) */
	NF_ECONFLICT,     /* duplicate key, lock held, state conflict (409) */
	NF_ETOOBIG,       /* body or field too large (413) */
	NF_EMEDIATYPE,    /* unsupported content type (415) */
	NF_ERATE,         /* rate limited (429) */
	NF_EUPSTREAM,     /* a remote service failed (502) */
	NF_EUNAVAIL,      /* a dependency (store, Redis) is unavailable (503) */
	NF_ESTORE,        /* store error that is not a client's fault (500) */
	NF_ESYSTEM,       /* any other internal error (500) */
	NF_ERR__MAX
};

/*
 * Public detail of an error.  code is a stable snake_case identifier
 * ("tenant_not_found"), field names the offending input when there is one,
 * message is safe to show to a client.  Empty strings mean "use defaults".
 */
struct nf_error {
	char	code[48];
	char	field[64];
	char	message[256];
};

const char	*nf_strerror(enum nf_err);       /* default public code, e.g. "not_found" */
int		 nf_err_status(enum nf_err);     /* HTTP status for the class */
void		 nf_error_clear(struct nf_error *);
/* Fill e (may be NULL) and return rc, so "return nf_error_set(...)" works. */
enum nf_err	 nf_error_set(struct nf_error *e, enum nf_err rc, const char *code,
		    const char *field, const char *fmt, ...)
		    __attribute__((format(printf, 5, 6)));

/* Allocation: never returns NULL (aborts on exhaustion). */
void	*nf_xmalloc(size_t);
void	*nf_xcalloc(size_t, size_t);
void	*nf_xrealloc(void *, size_t);
char	*nf_xstrdup(const char *);
char	*nf_xstrndup(const char *, size_t);
char	*nf_xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

/* Time. */
int64_t	 nf_now_ms(void);                        /* wall clock, ms since epoch */
int64_t	 nf_mono_ms(void);                       /* monotonic clock, ms */
/* ISO-8601 UTC with milliseconds, "2026-11-25T10:00:00.000Z"; buf >= 25. */
void	 nf_iso8601(int64_t ms, char buf[25]);

/* Randomness from the OS CSPRNG; aborts if the OS cannot provide it. */
void	 nf_random_bytes(void *, size_t);
/* Lower-case hex of n random bytes into out (2n+1 bytes). */
void	 nf_random_hex(char *out, size_t nbytes);
/* New 24-hex document id shaped like a MongoDB ObjectId (time + random). */
void	 nf_id_new(char out[25]);

/* Constant-time comparison of two buffers; 1 when equal. */
int	 nf_ct_equal(const void *, size_t, const void *, size_t);

#define NF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif /* NONFLEX_H */
