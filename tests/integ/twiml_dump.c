/*
 * twiml_dump.c - test driver for the TwiML builder: reads a JSON array of
 * verb specs on stdin and writes the document nf_twiml_* builds on stdout,
 * so tests/integ/twiml.test.mjs can compare it with the official twilio
 * package's VoiceResponse for the same verbs.
 *
 * Specs (every key but "verb"/"noun" optional):
 *   {"verb":"say"|"play"|"redirect", "text":"..", "attrs":{..}}
 *   {"verb":"pause", "length":n}             {"verb":"hangup"}
 *   {"verb":"enqueue", "text":"queue", "task":"{json}", "attrs":{..}}
 *   {"verb":"gather", "attrs":{..}, "verbs":[say/play/pause specs], "open":true}
 *   {"verb":"dial", "attrs":{..}, "nouns":[{"noun":"client"|"number"|"queue"|
 *       "conference", "text":"..", "attrs":{..}}], "open":true}
 * Attribute values may be strings, numbers or booleans (written as JSON
 * spells them, as JavaScript's String() does); null skips the attribute.
 * "open":true leaves the container open for nf_twiml_finish to close (on
 * the last spec only: a later Say would go inside it).
 *
 * The input is parsed WITHOUT UTF-8 validation on purpose, so tests can
 * hand the builder invalid UTF-8 inside strings.  A string holding NUL
 * (\u0000) is refused: the builder takes C strings.
 * Exit 0 with the document, 2 with a message on stderr for bad specs.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "nonflex.h"
#include "twiml.h"

#define MAX_ATTRS 32

static void
die(const char *what)
{
	fprintf(stderr, "twiml_dump: %s\n", what);
	exit(2);
}

/* A member string (NULL when absent or null); dies when not a string or
 * when it holds NUL. */
static const char *
str(struct json_object *o, const char *key)
{
	struct json_object	*v;
	const char		*s;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return NULL;
	if (!json_object_is_type(v, json_type_string))
		die("a text member is not a string");
	s = json_object_get_string(v);
	if (strlen(s) != (size_t)json_object_get_string_len(v))
		die("a string holds NUL");
	return s;
}

/* attrs object -> name, value, ..., NULL in out (values borrowed). */
static const char *const *
attrs(struct json_object *spec, const char *out[2 * MAX_ATTRS + 1])
{
	struct json_object	*a;
	size_t			 n = 0;

	if (!json_object_object_get_ex(spec, "attrs", &a) || a == NULL)
		return NULL;
	if (!json_object_is_type(a, json_type_object))
		die("attrs is not an object");
	json_object_object_foreach(a, k, v) {
		if (n == 2 * MAX_ATTRS)
			die("too many attrs");
		out[n++] = k;
		if (v == NULL)
			out[n++] = NULL;
		else if (json_object_is_type(v, json_type_string) ||
		    json_object_is_type(v, json_type_int) ||
		    json_object_is_type(v, json_type_boolean))
			out[n++] = json_object_get_string(v);
		else
			die("attribute values must be strings, integers, booleans or null");
	}
	out[n] = NULL;
	return out;
}

static struct json_object *
array(struct json_object *spec, const char *key)
{
	struct json_object	*a;

	if (!json_object_object_get_ex(spec, key, &a) || a == NULL)
		return NULL;
	if (!json_object_is_type(a, json_type_array))
		die("verbs/nouns is not an array");
	return a;
}

static int
left_open(struct json_object *spec)
{
	struct json_object	*v;

	return json_object_object_get_ex(spec, "open", &v) && json_object_get_boolean(v);
}

static void
noun(struct nf_twiml *t, struct json_object *spec)
{
	const char	*a[2 * MAX_ATTRS + 1], *name = str(spec, "noun");
	const char	*const *at = attrs(spec, a);
	const char	*s = str(spec, "text");

	if (name == NULL)
		die("noun missing");
	if (strcmp(name, "client") == 0)
		nf_twiml_dial_client(t, s, at);
	else if (strcmp(name, "number") == 0)
		nf_twiml_dial_number(t, s, at);
	else if (strcmp(name, "queue") == 0)
		nf_twiml_dial_queue(t, s, at);
	else if (strcmp(name, "conference") == 0)
		nf_twiml_dial_conference(t, s, at);
	else
		die("unknown noun");
}

static void verb(struct nf_twiml *, struct json_object *);

static void
each(struct nf_twiml *t, struct json_object *arr, void (*fn)(struct nf_twiml *,
    struct json_object *))
{
	size_t	 i, n;

	if (arr == NULL)
		return;
	n = json_object_array_length(arr);
	for (i = 0; i < n; i++)
		fn(t, json_object_array_get_idx(arr, i));
}

static void
verb(struct nf_twiml *t, struct json_object *spec)
{
	const char		*a[2 * MAX_ATTRS + 1], *name;
	const char *const	*at;
	struct json_object	*v;

	if (!json_object_is_type(spec, json_type_object) || (name = str(spec, "verb")) == NULL)
		die("each spec needs a verb");
	at = attrs(spec, a);
	if (strcmp(name, "say") == 0)
		nf_twiml_say(t, str(spec, "text"), at);
	else if (strcmp(name, "play") == 0)
		nf_twiml_play(t, str(spec, "text"), at);
	else if (strcmp(name, "redirect") == 0)
		nf_twiml_redirect(t, str(spec, "text"), at);
	else if (strcmp(name, "hangup") == 0)
		nf_twiml_hangup(t);
	else if (strcmp(name, "pause") == 0)
		nf_twiml_pause(t, json_object_object_get_ex(spec, "length", &v) ?
		    json_object_get_int(v) : 0);
	else if (strcmp(name, "enqueue") == 0)
		nf_twiml_enqueue(t, str(spec, "text"), str(spec, "task"), at);
	else if (strcmp(name, "gather") == 0) {
		nf_twiml_gather_open(t, at);
		each(t, array(spec, "verbs"), verb);
		if (!left_open(spec))
			nf_twiml_gather_close(t);
	} else if (strcmp(name, "dial") == 0) {
		nf_twiml_dial_open(t, at);
		each(t, array(spec, "nouns"), noun);
		if (!left_open(spec))
			nf_twiml_dial_close(t);
	} else
		die("unknown verb");
}

int
main(void)
{
	struct json_tokener	*tok;
	struct json_object	*root;
	struct nf_twiml		*t;
	const char		*doc;
	char			*in = NULL;
	size_t			 len = 0, cap = 0, n;

	for (;;) {
		if (cap - len < 4096)
			in = nf_xrealloc(in, cap = cap ? cap * 2 : 8192);
		if ((n = fread(in + len, 1, cap - len, stdin)) == 0)
			break;
		len += n;
	}
	if ((tok = json_tokener_new_ex(32)) == NULL)
		die("out of memory");
	root = json_tokener_parse_ex(tok, in, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(root, json_type_array))
		die("stdin is not a JSON array");
	t = nf_twiml_new();
	each(t, root, verb);
	doc = nf_twiml_finish(t, &n);
	fwrite(doc, 1, n, stdout);
	nf_twiml_free(t);
	json_object_put(root);
	json_tokener_free(tok);
	free(in);
	return ferror(stdout) ? 1 : 0;
}
