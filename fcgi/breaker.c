/*
 * breaker.c - circuit breaker state in Redis (see breaker.h).
 *
 * DESIGN: two keys per (tenant, service): "<name>-fails", a counter that
 * expires with the window, and "<name>-open", present while the breaker is
 * open.  A failure is counted and, at the threshold, the breaker opened in
 * one Lua script, so concurrent workers agree on when it opens.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>

#include <hiredis.h>

#include "breaker.h"
#include "kv.h"
#include "log.h"
#include "nonflex.h"

/* KEYS[1] fails, KEYS[2] open; ARGV failures, window_s, open_s.
 * Returns 1 when this failure opened the breaker. */
static struct nf_kv_script fail_lua = { .src =
	"local n = redis.call('INCR', KEYS[1])\n"
	"if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end\n"
	"if n >= tonumber(ARGV[1]) then\n"
	"  redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])\n"
	"  redis.call('DEL', KEYS[1])\n"
	"  return 1\n"
	"end\n"
	"return 0\n", .sha = "" };

static char *
key_of(const char *tenant, const struct nf_breaker *b, const char *what)
{
	char	 name[80];

	snprintf(name, sizeof(name), "%s-%s", b->name, what);
	return nf_kv_key(tenant, "breaker", name);
}

int
nf_breaker_is_open(struct nf_kv *kv, const char *tenant, const struct nf_breaker *b)
{
	struct redisReply	*rep = NULL;
	struct nf_error		 e;
	char			*key;
	int			 open = 0;

	if (kv == NULL || b->failures <= 0 || (key = key_of(tenant, b, "open")) == NULL)
		return 0;
	if (nf_kv_command(kv, &rep, &e, "EXISTS %s", key) == NF_OK && rep != NULL &&
	    rep->type == REDIS_REPLY_INTEGER)
		open = rep->integer > 0;
	if (rep != NULL)
		freeReplyObject(rep);
	free(key);
	return open;
}

void
nf_breaker_record(struct nf_kv *kv, const char *tenant, const struct nf_breaker *b, int ok)
{
	struct redisReply	*rep = NULL;
	struct nf_error		 e;
	char			*fails, *open, n[3][24];
	const char		*args[5];

	if (kv == NULL || b->failures <= 0)
		return;
	fails = key_of(tenant, b, "fails");
	open = key_of(tenant, b, "open");
	if (fails == NULL || open == NULL)
		goto out;
	if (ok) {
		(void)nf_kv_command(kv, NULL, &e, "DEL %s", fails);
		goto out;
	}
	snprintf(n[0], sizeof(n[0]), "%d", b->failures);
	snprintf(n[1], sizeof(n[1]), "%d", b->window_s > 0 ? b->window_s : 1);
	snprintf(n[2], sizeof(n[2]), "%d", b->open_s > 0 ? b->open_s : 1);
	args[0] = fails;
	args[1] = open;
	args[2] = n[0];
	args[3] = n[1];
	args[4] = n[2];
	if (nf_kv_eval(kv, &fail_lua, &rep, &e, 2, 5, args) == NF_OK && rep != NULL &&
	    rep->type == REDIS_REPLY_INTEGER && rep->integer == 1)
		nf_warn("%s of %s failed %d times: calls skipped for %d s", b->name, tenant,
		    b->failures, b->open_s);
	if (rep != NULL)
		freeReplyObject(rep);
out:
	free(fails);
	free(open);
}
