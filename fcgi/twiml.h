/*
 * twiml.h - a TwiML (Voice) document builder.
 *
 * DESIGN: a response is built verb by verb into a growing buffer; every
 * text and attribute value is XML-escaped (& < > " ' and control
 * characters that XML 1.0 cannot carry are dropped), so no caller text can
 * change the document's structure.  Nouns nest inside Dial and Gather
 * through open/close pairs.  The output matches what the official twilio
 * package's VoiceResponse produces for the same verbs (tests compare them
 * parsed).
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

/* Leaf verbs. */
void	 nf_twiml_say(struct nf_twiml *, const char *text, const char *const *attrs);
void	 nf_twiml_play(struct nf_twiml *, const char *url, const char *const *attrs);
void	 nf_twiml_pause(struct nf_twiml *, int length_s);  /* <Pause length="n"/> */
void	 nf_twiml_redirect(struct nf_twiml *, const char *url, const char *const *attrs);
void	 nf_twiml_hangup(struct nf_twiml *);
/* <Enqueue workflowSid=...><Task>{json}</Task></Enqueue> when task_json is
 * not NULL, otherwise <Enqueue ...>queue name</Enqueue>. */
void	 nf_twiml_enqueue(struct nf_twiml *, const char *queue_name, const char *task_json,
	    const char *const *attrs);

/* Container verbs: open, add nested verbs or nouns, close. */
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
 * closed. */
const char	*nf_twiml_finish(struct nf_twiml *, size_t *len);

#endif
