/*
 * t_twiml.c - unit tests for the TwiML builder (twiml.c): the exact bytes
 * of every verb and noun (as the twilio package writes them), escaping of
 * text and attributes, characters XML cannot carry, invalid UTF-8,
 * attributes skipped, and containers closed so the structure stays valid
 * whatever the call order.  tests/integ/twiml.test.mjs compares the same
 * output, parsed, with the twilio package itself.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "nonflex.h"
#include "testutil.h"
#include "twiml.h"

#define DECL	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
#define FFFD	"\xEF\xBF\xBD"

/* The whole document must be DECL<Response>body</Response>. */
static void
expect(struct nf_twiml *t, const char *body)
{
	const char	*doc;
	char		*want;
	size_t		 len;

	doc = nf_twiml_finish(t, &len);
	if (body[0] == '\0')
		want = nf_xstrdup(DECL "<Response/>");
	else
		want = nf_xasprintf(DECL "<Response>%s</Response>", body);
	ck_assert_str_eq(doc, want);
	ck_assert_uint_eq(len, strlen(want));
	free(want);
	nf_twiml_free(t);
}

/* One Say holding s: its escaped text must be want. */
static void
say_is(const char *s, const char *want)
{
	struct nf_twiml	*t = nf_twiml_new();
	char		*body = nf_xasprintf("<Say>%s</Say>", want);

	nf_twiml_say(t, s, NULL);
	expect(t, body);
	free(body);
}

/* One Say with attribute a="s": its escaped value must be want. */
static void
attr_is(const char *s, const char *want)
{
	struct nf_twiml	*t = nf_twiml_new();
	const char	*a[] = { "a", s, NULL };
	char		*body = nf_xasprintf("<Say a=\"%s\">x</Say>", want);

	nf_twiml_say(t, "x", a);
	expect(t, body);
	free(body);
}

START_TEST(empty_response)
{
	expect(nf_twiml_new(), "");
}
END_TEST

START_TEST(leaf_verbs)
{
	struct nf_twiml	*t = nf_twiml_new();
	const char	*say[] = { "voice", "alice", "language", "en-US", NULL };
	const char	*play[] = { "loop", "2", NULL };
	const char	*redir[] = { "method", "POST", NULL };

	nf_twiml_say(t, "Hello", say);
	nf_twiml_play(t, "https://example.com/a.mp3", play);
	nf_twiml_pause(t, 3);
	nf_twiml_pause(t, 0);
	nf_twiml_redirect(t, "/next", redir);
	nf_twiml_say(t, NULL, NULL);
	nf_twiml_say(t, "", NULL);
	nf_twiml_hangup(t);
	expect(t, "<Say voice=\"alice\" language=\"en-US\">Hello</Say>"
	    "<Play loop=\"2\">https://example.com/a.mp3</Play>"
	    "<Pause length=\"3\"/><Pause/>"
	    "<Redirect method=\"POST\">/next</Redirect><Say/><Say/><Hangup/>");
}
END_TEST

START_TEST(enqueue)
{
	struct nf_twiml	*t = nf_twiml_new();
	const char	*wf[] = { "workflowSid", "WW00000000000000000000000000000001", NULL };
	const char	*wait[] = { "waitUrl", "/wait", NULL };

	nf_twiml_enqueue(t, "ignored", "{\"call_sid\":\"CA1\",\"from\":\"<x>&'\"}", wf);
	nf_twiml_enqueue(t, "support", NULL, wait);
	nf_twiml_enqueue(t, NULL, NULL, NULL);
	/* JSON quotes stay raw in text; < and & are escaped. */
	expect(t, "<Enqueue workflowSid=\"WW00000000000000000000000000000001\">"
	    "<Task>{\"call_sid\":\"CA1\",\"from\":\"&lt;x&gt;&amp;'\"}</Task></Enqueue>"
	    "<Enqueue waitUrl=\"/wait\">support</Enqueue><Enqueue/>");
}
END_TEST

START_TEST(gather_nesting)
{
	struct nf_twiml	*t = nf_twiml_new();
	const char	*g[] = { "input", "dtmf speech", "numDigits", "1", "action", "/menu",
		NULL };

	nf_twiml_gather_open(t, g);
	nf_twiml_say(t, "Press 1", NULL);
	nf_twiml_play(t, "/beep.mp3", NULL);
	nf_twiml_pause(t, 2);
	nf_twiml_gather_close(t);
	nf_twiml_say(t, "Bye", NULL);
	nf_twiml_gather_open(t, NULL);
	nf_twiml_gather_close(t);
	expect(t, "<Gather input=\"dtmf speech\" numDigits=\"1\" action=\"/menu\">"
	    "<Say>Press 1</Say><Play>/beep.mp3</Play><Pause length=\"2\"/></Gather>"
	    "<Say>Bye</Say><Gather/>");
}
END_TEST

START_TEST(dial_nouns)
{
	struct nf_twiml	*t = nf_twiml_new();
	const char	*d[] = { "callerId", "+15005550001", "timeout", "20", NULL };
	const char	*c[] = { "beep", "false", NULL };

	nf_twiml_dial_open(t, d);
	nf_twiml_dial_client(t, "alice", NULL);
	nf_twiml_dial_number(t, "+15551234567", NULL);
	nf_twiml_dial_queue(t, "support", NULL);
	nf_twiml_dial_conference(t, "room 1", c);
	nf_twiml_dial_close(t);
	nf_twiml_dial_open(t, NULL);
	nf_twiml_dial_close(t);
	expect(t, "<Dial callerId=\"+15005550001\" timeout=\"20\"><Client>alice</Client>"
	    "<Number>+15551234567</Number><Queue>support</Queue>"
	    "<Conference beep=\"false\">room 1</Conference></Dial><Dial/>");
}
END_TEST

START_TEST(escape_text)
{
	say_is("a<b&c>d\"e'f", "a&lt;b&amp;c&gt;d\"e'f");
	say_is("x]]>y", "x]]&gt;y");
	say_is("&amp;", "&amp;amp;");                      /* never double-decoded */
	say_is("</Say><Hangup/>", "&lt;/Say&gt;&lt;Hangup/&gt;");
	/* TAB and LF are plain text; CR would become LF in a parser. */
	say_is("a\tb\nc\rd", "a\tb\nc&#xD;d");
	/* Valid UTF-8 passes unchanged: é, an emoji, €. */
	say_is("caf\xC3\xA9 \xF0\x9F\x98\x80 \xE2\x82\xAC",
	    "caf\xC3\xA9 \xF0\x9F\x98\x80 \xE2\x82\xAC");
}
END_TEST

START_TEST(escape_attr)
{
	attr_is("x\"y<z&w'v>", "x&quot;y&lt;z&amp;w'v>");
	attr_is("a\tb\nc\rd", "a&#x9;b&#xA;c&#xD;d");
	attr_is("\" onload=\"x", "&quot; onload=&quot;x");
	attr_is("\xC3\xB1", "\xC3\xB1");
}
END_TEST

START_TEST(forbidden_chars_dropped)
{
	/* C0 controls other than TAB/LF/CR, U+FFFE and U+FFFF. */
	say_is("a\x01" "b\x08" "c\x0B" "d\x0C" "e\x1F" "f\x7F", "abcdef\x7F");
	say_is("a\xEF\xBF\xBE" "b\xEF\xBF\xBF" "c\xEF\xBF\xBD", "abc" FFFD);
	attr_is("\x01\x02x\x1B", "x");
	say_is("\x01", "");                  /* nothing left: still a Say element */
}
END_TEST

START_TEST(invalid_utf8_replaced)
{
	/* One U+FFFD per maximal invalid subpart (as WHATWG decoders do). */
	say_is("a\xC3", "a" FFFD);                           /* truncated at the end */
	say_is("\xC3(", FFFD "(");                           /* bad continuation */
	say_is("\xC0\x80", FFFD FFFD);                       /* overlong NUL */
	say_is("\xE0\x80\xAF", FFFD FFFD FFFD);              /* overlong '/' */
	say_is("\xED\xA0\x80", FFFD FFFD FFFD);              /* surrogate D800 */
	say_is("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD);     /* above U+10FFFF */
	say_is("\xE2\x82" "A", FFFD "A");                    /* one subpart of two bytes */
	say_is("\xF0\x9F\x98" "x", FFFD "x");                /* one subpart of three */
	say_is("\x80\xBF", FFFD FFFD);                       /* lone continuations */
	say_is("\xFE\xFF", FFFD FFFD);
	say_is("\xF5\x80", FFFD FFFD);
	attr_is("<\xC3", "&lt;" FFFD);
}
END_TEST

START_TEST(attrs_skipped)
{
	struct nf_twiml	*t = nf_twiml_new();
	const char	*a[] = { "voice", NULL, "language", "es-MX", "loop", NULL, NULL };
	const char	*bad[] = { "a b", "1", "x\"=", "2", "1st", "3", "", "4", "ok", "5",
		"ok", "6", NULL };
	const char	*late[] = { "v", NULL, "v", "second", NULL };

	nf_twiml_say(t, "Hola", a);
	nf_twiml_say(t, "x", bad);            /* bad names and the repeat are skipped */
	nf_twiml_say(t, "y", late);           /* a NULL value does not claim the name */
	nf_twiml_say(t, "z", NULL);
	expect(t, "<Say language=\"es-MX\">Hola</Say><Say ok=\"5\">x</Say>"
	    "<Say v=\"second\">y</Say><Say>z</Say>");
}
END_TEST

START_TEST(containers_closed)
{
	struct nf_twiml	*t;

	/* finish closes an open container. */
	t = nf_twiml_new();
	nf_twiml_gather_open(t, NULL);
	nf_twiml_say(t, "x", NULL);
	expect(t, "<Gather><Say>x</Say></Gather>");

	t = nf_twiml_new();
	nf_twiml_dial_open(t, NULL);
	expect(t, "<Dial/>");

	/* A verb Gather cannot hold closes it first. */
	t = nf_twiml_new();
	nf_twiml_gather_open(t, NULL);
	nf_twiml_hangup(t);
	expect(t, "<Gather/><Hangup/>");

	/* Say cannot go into Dial; a noun cannot go into Gather. */
	t = nf_twiml_new();
	nf_twiml_dial_open(t, NULL);
	nf_twiml_dial_client(t, "bob", NULL);
	nf_twiml_say(t, "after", NULL);
	nf_twiml_gather_open(t, NULL);
	nf_twiml_dial_number(t, "+15551234567", NULL);
	expect(t, "<Dial><Client>bob</Client></Dial><Say>after</Say><Gather/>"
	    "<Dial><Number>+15551234567</Number></Dial>");

	/* Opening a container closes the other one; closing the wrong one
	 * or one that is not open does nothing. */
	t = nf_twiml_new();
	nf_twiml_gather_close(t);
	nf_twiml_dial_close(t);
	nf_twiml_gather_open(t, NULL);
	nf_twiml_dial_close(t);
	nf_twiml_play(t, "a", NULL);
	nf_twiml_dial_open(t, NULL);
	nf_twiml_dial_queue(t, "q", NULL);
	nf_twiml_enqueue(t, "q2", NULL, NULL);
	expect(t, "<Gather><Play>a</Play></Gather><Dial><Queue>q</Queue></Dial>"
	    "<Enqueue>q2</Enqueue>");
}
END_TEST

START_TEST(after_finish)
{
	struct nf_twiml	*t = nf_twiml_new();
	const char	*first, *again;
	size_t		 n1, n2;

	nf_twiml_say(t, "one", NULL);
	first = nf_twiml_finish(t, &n1);
	nf_twiml_say(t, "two", NULL);
	nf_twiml_gather_open(t, NULL);
	nf_twiml_dial_client(t, "x", NULL);
	nf_twiml_hangup(t);
	again = nf_twiml_finish(t, &n2);
	ck_assert_ptr_eq(first, again);
	ck_assert_uint_eq(n1, n2);
	ck_assert_str_eq(again, DECL "<Response><Say>one</Say></Response>");
	ck_assert_ptr_eq(nf_twiml_finish(t, NULL), again);
	nf_twiml_free(t);
	nf_twiml_free(NULL);
}
END_TEST

START_TEST(grows)
{
	struct nf_twiml	*t = nf_twiml_new();
	char		 big[5001];
	const char	*doc;
	size_t		 i, len, n = 0;

	/* Every byte expands (& -> &amp;): far past the first buffer. */
	memset(big, '&', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (i = 0; i < 20; i++)
		nf_twiml_say(t, big, NULL);
	doc = nf_twiml_finish(t, &len);
	ck_assert_uint_eq(len, strlen(doc));
	for (i = 0; doc[i] != '\0'; i++)
		if (strncmp(doc + i, "&amp;", 5) == 0)
			n++;
	ck_assert_uint_eq(n, 20 * 5000);
	nf_twiml_free(t);
}
END_TEST

int
main(void)
{
	TCase	*tc;
	Suite	*s = tu_suite("twiml", &tc);

	tcase_add_test(tc, empty_response);
	tcase_add_test(tc, leaf_verbs);
	tcase_add_test(tc, enqueue);
	tcase_add_test(tc, gather_nesting);
	tcase_add_test(tc, dial_nouns);
	tcase_add_test(tc, escape_text);
	tcase_add_test(tc, escape_attr);
	tcase_add_test(tc, forbidden_chars_dropped);
	tcase_add_test(tc, invalid_utf8_replaced);
	tcase_add_test(tc, attrs_skipped);
	tcase_add_test(tc, containers_closed);
	tcase_add_test(tc, after_finish);
	tcase_add_test(tc, grows);
	return tu_run(s);
}
