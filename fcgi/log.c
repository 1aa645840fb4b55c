/*
 * log.c - structured logging (see log.h): one JSON object per line on
 * stderr.
 *
 * DESIGN: every line is built as a json-c object and serialized in one
 * piece, so any byte a client controls (CR, LF, quotes, control characters)
 * is escaped by json-c and can never start a forged line.  The line is
 * written with a single write(2) so lines from concurrent worker processes
 * sharing stderr do not interleave.  Context (request id, tenant) is kept in
 * fixed buffers: logging never allocates per field beyond json-c itself.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "log.h"
#include "nonflex.h"

static const char *const levels[NF_LOG__MAX] = {
	"debug",  /* NF_LOG_DEBUG */
	"info",   /* NF_LOG_INFO */
	"warn",   /* NF_LOG_WARN */
	"error",  /* NF_LOG_ERROR */
};

static char			 prog[32] = "nonflex";
static enum nf_log_level	 minlevel = NF_LOG_INFO;
static char			 ctx_rid[129];
static char			 ctx_tenant[64];

void
nf_log_init(const char *name, enum nf_log_level min)
{
	if (name != NULL)
		snprintf(prog, sizeof(prog), "%s", name);
	if ((unsigned)min < NF_LOG__MAX)
		minlevel = min;
}

void
nf_log_context(const char *request_id, const char *tenant)
{
	snprintf(ctx_rid, sizeof(ctx_rid), "%s", request_id != NULL ? request_id : "");
	snprintf(ctx_tenant, sizeof(ctx_tenant), "%s", tenant != NULL ? tenant : "");
}

static void
add_str(struct json_object *o, const char *key, const char *val)
{
	struct json_object	*v = json_object_new_string(val);

	if (json_object_object_add(o, key, v) != 0)
		json_object_put(v);
}

/* Write the whole line, retrying on EINTR and short writes. */
static void
emit(const char *s, size_t len)
{
	ssize_t	 w;

	while (len > 0) {
		w = write(STDERR_FILENO, s, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		s += w;
		len -= (size_t)w;
	}
}

void
nf_log_fields(enum nf_log_level lvl, const char *msg, struct json_object *extra)
{
	struct json_object	*o, *v;
	char			 ts[25];
	const char		*s;
	char			*line;
	size_t			 len;

	if ((unsigned)lvl >= NF_LOG__MAX || lvl < minlevel)
		return;
	o = json_object_new_object();
	nf_iso8601(nf_now_ms(), ts);
	add_str(o, "ts", ts);
	add_str(o, "level", levels[lvl]);
	add_str(o, "prog", prog);
	add_str(o, "msg", msg != NULL ? msg : "");
	if (ctx_rid[0] != '\0')
		add_str(o, "request_id", ctx_rid);
	if (ctx_tenant[0] != '\0')
		add_str(o, "tenant", ctx_tenant);
	if (extra != NULL && json_object_is_type(extra, json_type_object)) {
		json_object_object_foreach(extra, key, val) {
			/* The fixed fields above win over extras of the same name. */
			if (json_object_object_get_ex(o, key, NULL))
				continue;
			v = json_object_get(val); /* second reference: o and extra both hold it */
			if (json_object_object_add(o, key, v) != 0)
				json_object_put(v);
		}
	}
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	len = strlen(s);
	line = nf_xmalloc(len + 2);
	memcpy(line, s, len);
	line[len] = '\n';
	emit(line, len + 1);
	free(line);
	json_object_put(o);
}

void
nf_log(enum nf_log_level lvl, const char *fmt, ...)
{
	char	 msg[2048];
	va_list	 ap;

	if ((unsigned)lvl >= NF_LOG__MAX || lvl < minlevel)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	nf_log_fields(lvl, msg, NULL);
}
