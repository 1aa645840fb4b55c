/*
 * twiml.c - the TwiML builder (see twiml.h for the output rules).
 *
 * The document is written straight into one buffer.  The element opened
 * last may still lack its closing '>' ("pending"): the first child
 * finishes the start tag, and closing it while still pending writes "/>",
 * which is how xmlbuilder (the twilio package) spells an empty element.
 * Only one container (Gather or Dial) can be open inside <Response>.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nonflex.h"
#include "twiml.h"

#define DECL		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
#define REPLACEMENT	"\xEF\xBF\xBD"          /* U+FFFD in UTF-8 */

enum kind {
	K_NONE = 0,   /* no container open */
	K_GATHER,     /* <Gather> open: Say, Play, Pause may nest */
	K_DIAL,       /* <Dial> open: Client, Number, Queue, Conference */
};

struct nf_twiml {
	char		*buf;
	size_t		 len;
	size_t		 cap;
	enum kind	 open;      /* the container inside <Response>, if any */
	int		 pending;   /* last start tag still lacks its '>' */
	int		 finished;  /* </Response> written */
};

static void
put(struct nf_twiml *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		while (t->len + n + 1 > t->cap)
			t->cap *= 2;
		t->buf = nf_xrealloc(t->buf, t->cap);
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = '\0';
}

static void
puts_(struct nf_twiml *t, const char *s)
{
	put(t, s, strlen(s));
}

/* ---- characters -------------------------------------------------------- */

/*
 * Length of the valid UTF-8 sequence at s[0..n) (its code point in *cp),
 * or 0 when it is invalid; then *bad is the length of its maximal invalid
 * subpart (>= 1), which is replaced by one U+FFFD.
 */
static size_t
utf8_next(const unsigned char *s, size_t n, unsigned *cp, size_t *bad)
{
	unsigned char	 lo = 0x80, hi = 0xBF;
	size_t		 need, i;
	unsigned	 c = s[0];

	*bad = 1;
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		need = 1;
		c &= 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		if (c == 0xE0)
			lo = 0xA0;        /* no overlongs */
		else if (c == 0xED)
			hi = 0x9F;        /* no surrogates */
		c &= 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		if (c == 0xF0)
			lo = 0x90;        /* no overlongs */
		else if (c == 0xF4)
			hi = 0x8F;        /* nothing above U+10FFFF */
		c &= 0x07;
	} else
		return 0;                 /* 80..C1, F5..FF never start one */
	for (i = 1; i <= need; i++) {
		if (i >= n || s[i] < lo || s[i] > hi) {
			*bad = i;
			return 0;
		}
		c = (c << 6) | (s[i] & 0x3F);
		lo = 0x80;
		hi = 0xBF;
	}
	*cp = c;
	return need + 1;
}

/* Can XML 1.0 carry code point cp (its production Char)? */
static int
xml_char(unsigned cp)
{
	if (cp < 0x20)
		return cp == 0x9 || cp == 0xA || cp == 0xD;
	return cp != 0xFFFE && cp != 0xFFFF;
}

/*
 * Append s escaped for text content (attr = 0) or for a double-quoted
 * attribute value (attr = 1), with invalid UTF-8 replaced and characters
 * XML cannot carry dropped.
 */
static void
escape(struct nf_twiml *t, const char *s, int attr)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 n = strlen(s), k, bad;
	unsigned		 cp;
	const char		*rep;

	while (n > 0) {
		if ((k = utf8_next(p, n, &cp, &bad)) == 0) {
			puts_(t, REPLACEMENT);
			p += bad;
			n -= bad;
			continue;
		}
		rep = NULL;
		switch (cp) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = attr ? NULL : "&gt;";
			break;
		case '"':
			rep = attr ? "&quot;" : NULL;
			break;
		case '\t':
			rep = attr ? "&#x9;" : NULL;
			break;
		case '\n':
			rep = attr ? "&#xA;" : NULL;
			break;
		case '\r':
			rep = "&#xD;";
			break;
		default:
			break;
		}
		if (rep != NULL)
			puts_(t, rep);
		else if (xml_char(cp))
			put(t, (const char *)p, k);
		p += k;
		n -= k;
	}
}

/* Is s an XML name we are willing to write ([A-Za-z_][A-Za-z0-9_.:-]*)? */
static int
attr_name_ok(const char *s)
{
	size_t	 i;

	if (s == NULL || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') ||
	    s[0] == '_'))
		return 0;
	for (i = 1; s[i] != '\0'; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || strchr("_.:-", s[i]) != NULL))
			return 0;
	return i <= 64;
}

/* Was name already given a value earlier in attrs (before index i)? */
static int
attr_seen(const char *const *attrs, size_t i, const char *name)
{
	size_t	 j;

	for (j = 0; j < i; j += 2)
		if (attrs[j + 1] != NULL && strcmp(attrs[j], name) == 0)
			return 1;
	return 0;
}

static void
write_attrs(struct nf_twiml *t, const char *const *attrs)
{
	size_t	 i;

	if (attrs == NULL)
		return;
	for (i = 0; attrs[i] != NULL; i += 2) {
		if (attrs[i + 1] == NULL || !attr_name_ok(attrs[i]) ||
		    attr_seen(attrs, i, attrs[i]))
			continue;
		puts_(t, " ");
		puts_(t, attrs[i]);
		puts_(t, "=\"");
		escape(t, attrs[i + 1], 1);
		puts_(t, "\"");
	}
}

/* ---- elements ---------------------------------------------------------- */

/* Finish a pending start tag before content goes into its element. */
static void
content(struct nf_twiml *t)
{
	if (t->pending) {
		puts_(t, ">");
		t->pending = 0;
	}
}

static void
start(struct nf_twiml *t, const char *name, const char *const *attrs)
{
	content(t);
	puts_(t, "<");
	puts_(t, name);
	write_attrs(t, attrs);
	t->pending = 1;
}

static void
end(struct nf_twiml *t, const char *name)
{
	if (t->pending) {
		puts_(t, "/>");
		t->pending = 0;
		return;
	}
	puts_(t, "</");
	puts_(t, name);
	puts_(t, ">");
}

static void
text(struct nf_twiml *t, const char *s)
{
	if (s == NULL || s[0] == '\0')
		return;
	content(t);
	escape(t, s, 0);
}

static void
leaf(struct nf_twiml *t, const char *name, const char *s, const char *const *attrs)
{
	start(t, name, attrs);
	text(t, s);
	end(t, name);
}

static void
close_container(struct nf_twiml *t)
{
	if (t->open == K_GATHER)
		end(t, "Gather");
	else if (t->open == K_DIAL)
		end(t, "Dial");
	t->open = K_NONE;
}

/*
 * Make room for a verb or noun that may live in container `in` (K_NONE:
 * only directly in <Response>): close another open container.  0 when the
 * document is finished and nothing may be added.
 */
static int
place(struct nf_twiml *t, enum kind in)
{
	if (t == NULL || t->finished)
		return 0;
	if (t->open != K_NONE && t->open != in)
		close_container(t);
	return 1;
}

/* A Dial noun: inside the open <Dial>, or a new plain one. */
static void
noun(struct nf_twiml *t, const char *name, const char *s, const char *const *attrs)
{
	if (!place(t, K_DIAL))
		return;
	if (t->open != K_DIAL) {
		start(t, "Dial", NULL);
		t->open = K_DIAL;
	}
	leaf(t, name, s, attrs);
}

/* ---- public ------------------------------------------------------------ */

struct nf_twiml *
nf_twiml_new(void)
{
	struct nf_twiml	*t = nf_xcalloc(1, sizeof(*t));

	t->cap = 512;
	t->buf = nf_xmalloc(t->cap);
	t->buf[0] = '\0';
	puts_(t, DECL);
	start(t, "Response", NULL);
	return t;
}

void
nf_twiml_free(struct nf_twiml *t)
{
	if (t == NULL)
		return;
	free(t->buf);
	free(t);
}

void
nf_twiml_say(struct nf_twiml *t, const char *s, const char *const *attrs)
{
	if (place(t, K_GATHER))
		leaf(t, "Say", s, attrs);
}

void
nf_twiml_play(struct nf_twiml *t, const char *url, const char *const *attrs)
{
	if (place(t, K_GATHER))
		leaf(t, "Play", url, attrs);
}

void
nf_twiml_pause(struct nf_twiml *t, int length_s)
{
	char		 n[16];
	const char	*a[] = { "length", n, NULL };

	if (!place(t, K_GATHER))
		return;
	snprintf(n, sizeof(n), "%d", length_s);
	leaf(t, "Pause", NULL, length_s > 0 ? a : NULL);
}

void
nf_twiml_redirect(struct nf_twiml *t, const char *url, const char *const *attrs)
{
	if (place(t, K_NONE))
		leaf(t, "Redirect", url, attrs);
}

void
nf_twiml_hangup(struct nf_twiml *t)
{
	if (place(t, K_NONE))
		leaf(t, "Hangup", NULL, NULL);
}

void
nf_twiml_enqueue(struct nf_twiml *t, const char *queue_name, const char *task_json,
    const char *const *attrs)
{
	if (!place(t, K_NONE))
		return;
	start(t, "Enqueue", attrs);
	if (task_json != NULL)
		leaf(t, "Task", task_json, NULL);
	else
		text(t, queue_name);
	end(t, "Enqueue");
}

void
nf_twiml_gather_open(struct nf_twiml *t, const char *const *attrs)
{
	if (!place(t, K_NONE))
		return;
	start(t, "Gather", attrs);
	t->open = K_GATHER;
}

void
nf_twiml_gather_close(struct nf_twiml *t)
{
	if (t != NULL && !t->finished && t->open == K_GATHER)
		close_container(t);
}

void
nf_twiml_dial_open(struct nf_twiml *t, const char *const *attrs)
{
	if (!place(t, K_NONE))
		return;
	start(t, "Dial", attrs);
	t->open = K_DIAL;
}

void
nf_twiml_dial_close(struct nf_twiml *t)
{
	if (t != NULL && !t->finished && t->open == K_DIAL)
		close_container(t);
}

void
nf_twiml_dial_client(struct nf_twiml *t, const char *identity, const char *const *attrs)
{
	noun(t, "Client", identity, attrs);
}

void
nf_twiml_dial_number(struct nf_twiml *t, const char *e164, const char *const *attrs)
{
	noun(t, "Number", e164, attrs);
}

void
nf_twiml_dial_queue(struct nf_twiml *t, const char *name, const char *const *attrs)
{
	noun(t, "Queue", name, attrs);
}

void
nf_twiml_dial_conference(struct nf_twiml *t, const char *name, const char *const *attrs)
{
	noun(t, "Conference", name, attrs);
}

const char *
nf_twiml_finish(struct nf_twiml *t, size_t *len)
{
	if (!t->finished) {
		close_container(t);
		end(t, "Response");
		t->finished = 1;
	}
	if (len != NULL)
		*len = t->len;
	return t->buf;
}
