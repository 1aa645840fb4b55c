/*
 * passwd.h - password hashing through libxcrypt's crypt(3) family.
 *
 * DESIGN: new hashes use yescrypt ("$y$", memory-hard, libxcrypt's
 * default); verification accepts every prefix libxcrypt knows, notably
 * bcrypt ($2a$, $2b$, $2y$), so agents imported from the original Node app
 * (bcryptjs hashes) can log in and be upgraded on their next login.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_PASSWD_H
#define NF_PASSWD_H

#include "nonflex.h"

/* Hash password with a fresh yescrypt salt; *out is malloc'd.
 * NF_ESYSTEM if libxcrypt fails (logged). */
enum nf_err	nf_passwd_hash(const char *password, char **out);
/* 1 when password matches hash (any supported scheme), 0 otherwise,
 * including for malformed or unsupported hashes.  Comparison is constant
 * time over the computed hash. */
int		nf_passwd_verify(const char *password, const char *hash);
/* 1 when hash should be replaced by nf_passwd_hash (not yescrypt). */
int		nf_passwd_needs_upgrade(const char *hash);

#define NF_PASSWD_MIN 10
#define NF_PASSWD_MAX 128
/*
 * Minimum policy for a new or changed password: NF_PASSWD_MIN..NF_PASSWD_MAX
 * bytes of valid UTF-8, not equal to the username (any case) and not one
 * of a small list of very common passwords (any case).  NF_EINVAL
 * "weak_password" with e->field set to field and a message saying which
 * rule failed (never the password).  The demo seed does not go through it.
 */
enum nf_err	nf_passwd_policy(const char *password, const char *username,
		    const char *field, struct nf_error *e);

#endif
