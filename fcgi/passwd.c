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
#include <strings.h>

#include "log.h"
#include "nonflex.h"
#include "passwd.h"
#include "valid.h"

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

/* Very common passwords of policy length (from public breach top lists);
 * shorter ones fail the length rule anyway. */
static const char *const common_passwords[] = {
	"password123", "password1234", "password12345", "1234567890",
	"12345678910", "123456789a", "qwertyuiop", "qwerty12345",
	"qwerty123456", "1q2w3e4r5t", "1qaz2wsx3edc", "iloveyou123",
	"passw0rd123", "administrator", "letmein123", "welcome123",
	"changeme123", "abc1234567", "0987654321", "1111111111",
	"0000000000", "football123", "baseball123", "superman123",
	"trustno1234", "p@ssw0rd123", "password!", "password1!",
	"Password123!", "aaaaaaaaaa", "abcdefghij", "asdfghjkl1",
	NULL
};

enum nf_err
nf_passwd_policy(const char *password, const char *username, const char *field,
    struct nf_error *e)
{
	size_t	 len, i;

	if (password == NULL)
		return nf_error_set(e, NF_EINVAL, "weak_password", field,
		    "password is required");
	len = strlen(password);
	if (!nf_valid_utf8(password, len, NF_PASSWD_MIN, NF_PASSWD_MAX))
		return nf_error_set(e, NF_EINVAL, "weak_password", field,
		    "password must be %d to %d bytes of text", NF_PASSWD_MIN,
		    NF_PASSWD_MAX);
	if (username != NULL && strcasecmp(password, username) == 0)
		return nf_error_set(e, NF_EINVAL, "weak_password", field,
		    "password must not equal the username");
	for (i = 0; common_passwords[i] != NULL; i++)
		if (strcasecmp(password, common_passwords[i]) == 0)
			return nf_error_set(e, NF_EINVAL, "weak_password", field,
			    "password is too common");
	return NF_OK;
}
