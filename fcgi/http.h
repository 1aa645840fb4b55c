/*
 * http.h - a small HTTP/1.1 client for calls made from the FastCGI workers
 * (the CRM today; OpenAI's synchronous "suggest a reply" later).
 *
 * DESIGN: libcurl is what nonflex-jobs and nonflexctl use (twilio_rest.c),
 * but mapping it and the ~20 libraries it pulls in costs each worker about
 * 6 MB of its 10 MB RSS budget (measured: see events.c and the README), so
 * the workers use this instead: sockets and poll() for connect and total
 * deadlines, OpenSSL (libssl, next to the libcrypto the workers already
 * map) for TLS with peer and host-name verification and SNI, and
 * libhttp-parser (Debian's http-parser) to parse the response: status,
 * headers, Content-Length, chunked bodies.  One request per connection
 * ("Connection: close"); redirects are never followed (a 3xx is returned
 * as is); the answer is capped in size.  Destinations are checked before
 * connecting: only http/https, and addresses in loopback, private,
 * link-local (169.254/16, metadata services) or unspecified ranges are
 * refused unless the caller allows private destinations (tests, or a CRM
 * deliberately on the LAN) - battery 32, ASVS V1.3.6.
 *
 * Not thread-safe per request object; no global state but OpenSSL's.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_HTTP_H
#define NF_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "nonflex.h"

struct nf_http_req {
	const char	*method;            /* "GET", "POST", ... */
	const char	*url;               /* http(s)://host[:port]/path?query */
	const char *const *headers;         /* "Name: value" lines, NULL-terminated,
					     * or NULL; CR/LF in them is refused */
	const char	*body;              /* request body or NULL */
	size_t		 body_len;
	int64_t		 connect_timeout_ms; /* per address, and the TLS handshake
					     * (<= 0: only the total applies) */
	int64_t		 total_timeout_ms;  /* connect + send + whole answer
					     * (<= 0: 10 s); DNS is not bounded:
					     * see http.c */
	size_t		 max_response;      /* body cap in bytes (0: 1 MiB) */
	int		 allow_private;     /* 1: loopback/private addresses allowed */
	const char	*ca_file;           /* extra CA bundle (tests) or NULL */
};

struct nf_http_resp {
	int		 status;            /* HTTP status, 0 when none */
	char		*body;              /* NUL-terminated, owned; may be NULL */
	size_t		 body_len;
	char		 content_type[128];
	char		 location[512];     /* of a 3xx, for logging only */
	int64_t		 retry_after_ms;    /* Retry-After in ms, 0 when absent */
	int		 sent;              /* 1 once any request byte was written */
	int		 timed_out;         /* 1 when a deadline expired */
};

/*
 * Perform one exchange.  NF_OK whenever an HTTP answer was received (any
 * status: the caller decides); NF_EINVAL "invalid_url" for a malformed or
 * non-http(s) URL (or one with user:password@), "invalid_header" for a
 * header with CR/LF or one the client writes itself (Host,
 * Content-Length, Transfer-Encoding, Connection), "invalid_method" - all
 * before any I/O; NF_EFORBIDDEN "destination_refused" for a refused
 * address; NF_EUNAVAIL "upstream_unreachable" for DNS/connect/TLS failures
 * (resp->sent 0), NF_EUPSTREAM "upstream_timeout" / "upstream_error" /
 * "upstream_too_large" / "upstream_bad_response" after sending.  resp is
 * always filled and must be cleaned up.
 */
enum nf_err	 nf_http_do(const struct nf_http_req *, struct nf_http_resp *resp,
		    struct nf_error *);
void		 nf_http_resp_cleanup(struct nf_http_resp *);   /* accepts NULL */

/* 1 when the address (AF_INET/AF_INET6 sockaddr) is loopback, private,
 * link-local, unique-local, CGNAT, multicast or unspecified.  For tests. */
struct sockaddr;
int		 nf_http_addr_private(const struct sockaddr *);

#endif
