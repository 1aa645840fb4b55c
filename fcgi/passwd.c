/*
 * passwd.c - see passwd.h.  crypt_rn/crypt_gensalt_rn are the reentrant,
 * never-NULL-on-success variants, so the worker keeps no static state.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nonflex.h"
#include "passwd.h"

enum nf_err
nf_passwd_hash(const char *password, char **out)
{
	char			 salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data	*cd;
	enum nf_err		 rc = NF_ESYSTEM;

	*out = NULL;
	cd = nf_xcalloc(1, sizeof(*cd));
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL) {
		nf_error("crypt_gensalt_rn failed for yescrypt");
		goto out;
	}
	if (crypt_rn(password, salt, cd, sizeof(*cd)) == NULL ||
	    cd->output[0] == '*') {
		nf_error("crypt_rn failed for yescrypt");
		goto out;
	}
	*out = nf_xstrdup(cd->output);
	rc = NF_OK;
out:
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return rc;
}

int
nf_passwd_verify(const char *password, const char *hash)
{
	struct crypt_data	*cd;
	int			 ok = 0;

	if (password == NULL || hash == NULL || hash[0] != '$')
		return 0;
	cd = nf_xcalloc(1, sizeof(*cd));
	if (crypt_rn(password, hash, cd, sizeof(*cd)) != NULL &&
	    cd->output[0] != '*')
		ok = nf_ct_equal(cd->output, strlen(cd->output), hash, strlen(hash));
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

int
nf_passwd_needs_upgrade(const char *hash)
{
	return hash == NULL || strncmp(hash, "$y$", 3) != 0;
}
