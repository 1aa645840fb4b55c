/*
 * twiml.h - a TwiML (Voice) document builder.
 *
 * DESIGN: a response is built verb by verb into a growing buffer; every
 * text and attribute value is XML-escaped, so no caller text can change the
 * document's structure.  The output is byte for byte what the official
 * twilio package's VoiceResponse (xmlbuilder) writes for the same verbs,
 * which lets the tests compare raw as well as parsed documents:
 *   - the declaration <?xml version="1.0" encoding="UTF-8"?> directly
 *     followed by <Response>; an element without content is written <X/>;
 *   - text: & < > become &amp; &lt; &gt; (so "]]>" cannot appear) and CR
 *     becomes &#xD; (a parser would turn a raw CR into LF);
 *   - attribute values are always double-quoted: & < " become &amp; &lt;
 *     &quot;, TAB LF CR become &#x9; &#xA; &#xD; (a parser would turn raw
 *     ones into spaces); ' and > need no escape inside double quotes.
 * Characters XML 1.0 cannot carry at all (C0 controls other than TAB, LF,
 * CR; U+FFFE, U+FFFF) are dropped: the twilio package refuses them, so a
 * caller's stray control byte never costs a call its answer.  Invalid
 * UTF-8 is REPLACED by U+FFFD, one per maximal invalid subpart (the rule
 * of the Unicode standard and of WHATWG decoders, so Node's
 * Buffer.toString gives the same text): the listener-visible text keeps a
 * mark where bytes were lost, and the document stays valid UTF-8.
 *
 * Structure is kept valid whatever the call order: Gather holds only Say,
 * Play and Pause, Dial only its nouns; any other verb first closes the
 * open container, a Dial noun outside a Dial opens a plain <Dial>, and
 * nf_twiml_finish closes what is still open.  Attribute names not shaped
 * like XML names ([A-Za-z_][A-Za-z0-9_.:-]*) and repeated names are
 * skipped (the first one wins), so attributes cannot break the document
 * either.  Calls after nf_twiml_finish are ignored.
 *
 * Nothing here fails: memory comes from nf_x* (abort on exhaustion).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_TWIML_H
#define NF_TWIML_H

#include <stddef.h>

struct nf_twiml;

/* Attributes as a NULL-terminated list of name, value pairs: a NULL
 * value skips that attribute.  Example:
 *   const char *a[] = { "voice", "alice", "language", lang, NULL }; */

struct nf_twiml	*nf_twiml_new(void);                       /* <Response> */
void		 nf_twiml_free(struct nf_twiml *);          /* accepts NULL */

/* Leaf verbs.  NULL or empty text gives an empty element (<Say/>). */
void	 nf_twiml_say(struct nf_twiml *, const char *text, const char *const *attrs);
void	 nf_twiml_play(struct nf_twiml *, const char *url, const char *const *attrs);
/* <Pause length="n"/>; n <= 0 gives <Pause/> (Twilio's default, 1 s). */
void	 nf_twiml_pause(struct nf_twiml *, int length_s);
void	 nf_twiml_redirect(struct nf_twiml *, const char *url, const char *const *attrs);
void	 nf_twiml_hangup(struct nf_twiml *);
/* <Enqueue workflowSid=...><Task>{json}</Task></Enqueue> when task_json is
 * not NULL (queue_name is then ignored: TaskRouter's workflow picks the
 * queue), otherwise <Enqueue ...>queue name</Enqueue>. */
void	 nf_twiml_enqueue(struct nf_twiml *, const char *queue_name, const char *task_json,
	    const char *const *attrs);

/* Container verbs: open, add nested verbs or nouns, close.  Closing a
 * container that is not open does nothing. */
void	 nf_twiml_gather_open(struct nf_twiml *, const char *const *attrs);
void	 nf_twiml_gather_close(struct nf_twiml *);
void	 nf_twiml_dial_open(struct nf_twiml *, const char *const *attrs);
void	 nf_twiml_dial_close(struct nf_twiml *);
/* Dial nouns. */
void	 nf_twiml_dial_client(struct nf_twiml *, const char *identity, const char *const *attrs);
void	 nf_twiml_dial_number(struct nf_twiml *, const char *e164, const char *const *attrs);
void	 nf_twiml_dial_queue(struct nf_twiml *, const char *name, const char *const *attrs);
void	 nf_twiml_dial_conference(struct nf_twiml *, const char *name, const char *const *attrs);

/* Close </Response> and return the document (owned by the builder; valid
 * until nf_twiml_free).  *len may be NULL.  Containers left open are
 * closed.  Calling it again returns the same document. */
const char	*nf_twiml_finish(struct nf_twiml *, size_t *len);

#endif
