/*
 * events.c - publishes live events to nginx's nchan (see events.h) with
 * one short HTTP/1.1 exchange over nchan's loopback-only unix socket.
 *
 * DESIGN: the exchange is written here rather than with libcurl on
 * purpose: it is a fixed request to our own nginx over a unix socket
 * (no TLS, redirects, proxies or chunked uploads), and linking libcurl
 * made every FastCGI worker map libcurl and the ~20 libraries it pulls in
 * (GnuTLS, Kerberos, LDAP, ...) and initialise OpenSSL - about 5.5 MB of
 * the 10 MB per-worker budget (measured with /proc/<pid>/status).  Each
 * exchange is one connection with "Connection: close"; connecting to a
 * unix socket costs microseconds, so nothing is kept open.  Short
 * timeouts (500 ms to connect, 2 s in all) so a stuck nginx costs a
 * webhook or a job at most two seconds.  The channel id "<tenant>.<topic>"
 * is built only from validated parts, so a client can never name another
 * tenant's channel.  Not thread-safe: call it from one thread per process
 * (workers and job runners are single-threaded).
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "nonflex.h"
#include "log.h"
#include "events.h"
#include "valid.h"

#define EV_MAX_BODY	(64 * 1024)     /* an event larger than this is refused */
#define EV_CONNECT_MS	500             /* connecting to nchan's socket */
#define EV_TOTAL_MS	2000            /* the whole exchange */
#define EV_MAX_REPLY	(16 * 1024)     /* nchan's answer: status line + channel info */

static char	*sock_path;             /* NULL: publishing disabled */

void
nf_events_init(const char *socket_path)
{
	nf_events_cleanup();
	if (socket_path == NULL || *socket_path == '\0')
		return;
	sock_path = nf_xstrdup(socket_path);
}

void
nf_events_cleanup(void)
{
	free(sock_path);
	sock_path = NULL;
}

int
nf_events_valid_topic(const char *topic)
{
	return nf_valid_charset(topic, 64, "_-");
}

char *
nf_events_channel(const char *tenant, const char *topic)
{
	if (!nf_valid_charset(tenant, 63, "-") || !nf_events_valid_topic(topic))
		return NULL;
	return nf_xasprintf("%s.%s", tenant, topic);
}

/* Event types name what happened: "message.created", "queue:update". */
static int
valid_type(const char *t)
{
	return nf_valid_charset(t, 64, "ABCDEFGHIJKLMNOPQRSTUVWXYZ._:-");
}

/* Socket send/receive timeout of ms (at least 1 ms: 0 means "none"). */
static void
set_timeout(int fd, int64_t ms)
{
	struct timeval	 tv;

	if (ms < 1)
		ms = 1;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/*
 * A blocking unix-socket connection to nchan, or -1 with errno set.  For
 * AF_UNIX, connect() waits (when nginx's backlog is full) at most the
 * send timeout, so EV_CONNECT_MS bounds it.
 */
static int
connect_nchan(void)
{
	struct sockaddr_un	 sa;
	int			 fd, saved;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(sock_path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	set_timeout(fd, EV_CONNECT_MS);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		saved = errno;
		close(fd);
		errno = saved == EAGAIN || saved == EINPROGRESS ? ETIMEDOUT : saved;
		return -1;
	}
	return fd;
}

/* Writes all of buf before the deadline; 0, or -1 with errno set. */
static int
send_all(int fd, const char *buf, size_t len, int64_t deadline)
{
	ssize_t	 n;

	while (len > 0) {
		if (nf_mono_ms() >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		set_timeout(fd, deadline - nf_mono_ms());
		if ((n = send(fd, buf, len, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				errno = ETIMEDOUT;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Reads the answer until nginx closes (we sent "Connection: close"), the
 * buffer is full or the deadline passes, and parses the status line:
 * "HTTP/1.x NNN ...".  Returns the status, or -1 with errno set (EPROTO:
 * not an HTTP answer).
 */
static long
read_status(int fd, int64_t deadline)
{
	char	 buf[EV_MAX_REPLY + 1];
	size_t	 len = 0;
	ssize_t	 n;

	while (len < EV_MAX_REPLY) {
		if (nf_mono_ms() >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		set_timeout(fd, deadline - nf_mono_ms());
		if ((n = recv(fd, buf + len, EV_MAX_REPLY - len, 0)) < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				errno = ETIMEDOUT;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' ||
	    buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' ||
	    buf[11] < '0' || buf[11] > '9') {
		errno = EPROTO;
		return -1;
	}
	return (buf[9] - '0') * 100L + (buf[10] - '0') * 10L + (buf[11] - '0');
}

/* One request (body NULL: GET); *status receives the HTTP status (0 when none). */
static enum nf_err
request(const char *path, const char *body, long *status, struct nf_error *err)
{
	int64_t	 deadline = nf_mono_ms() + EV_TOTAL_MS;
	char	*msg = NULL;
	int	 fd = -1;
	long	 st = -1;

	*status = 0;
	if (sock_path == NULL)
		return nf_error_set(err, NF_EUNAVAIL, "events_unavailable", NULL,
		    "Event publishing is not configured");
	if (body != NULL)
		msg = nf_xasprintf("POST %s HTTP/1.1\r\nHost: localhost\r\n"
		    "Content-Type: application/json\r\nContent-Length: %zu\r\n"
		    "Connection: close\r\n\r\n%s", path, strlen(body), body);
	else
		msg = nf_xasprintf("GET %s HTTP/1.1\r\nHost: localhost\r\n"
		    "Connection: close\r\n\r\n", path);
	if ((fd = connect_nchan()) >= 0 && send_all(fd, msg, strlen(msg), deadline) == 0)
		st = read_status(fd, deadline);
	if (st < 0)
		nf_warn("nchan %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(msg);
	if (st < 0)
		return nf_error_set(err, NF_EUNAVAIL, "events_unavailable", NULL,
		    "The event publisher is unavailable");
	*status = st;
	return NF_OK;
}

static char *
event_body(const char *type, struct json_object *data)
{
	struct json_object	*o = json_object_new_object();
	char			 at[25], *s;

	nf_iso8601(nf_now_ms(), at);
	json_object_object_add(o, "type", json_object_new_string(type));
	json_object_object_add(o, "at", json_object_new_string(at));
	/* the event holds a second reference; the caller keeps its own */
	json_object_object_add(o, "data", data != NULL ? json_object_get(data) : NULL);
	s = nf_xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

enum nf_err
nf_events_publish(const char *tenant, const char *topic, const char *type,
    struct json_object *data, struct nf_error *err)
{
	char		*chan = NULL, *path = NULL, *body = NULL;
	long		 status;
	enum nf_err	 rc;

	if ((chan = nf_events_channel(tenant, topic)) == NULL)
		return nf_error_set(err, NF_EINVAL, "invalid_topic", "topic",
		    "Invalid event tenant or topic");
	if (!valid_type(type)) {
		rc = nf_error_set(err, NF_EINVAL, "invalid_event_type", "type",
		    "Invalid event type");
		goto out;
	}
	body = event_body(type, data);
	if (strlen(body) > EV_MAX_BODY) {
		rc = nf_error_set(err, NF_ETOOBIG, "event_too_large", "data",
		    "Event is too large");
		goto out;
	}
	path = nf_xasprintf("/pub/%s", chan);
	if ((rc = request(path, body, &status, err)) != NF_OK)
		goto out;
	if (status != 201 && status != 202) {
		nf_warn("nchan publish to %s answered %ld", chan, status);
		rc = nf_error_set(err, NF_EUPSTREAM, "events_failed", NULL,
		    "The event publisher refused the event (HTTP %ld)", status);
	}
out:
	free(chan);
	free(path);
	free(body);
	return rc;
}

enum nf_err
nf_events_ping(struct nf_error *err)
{
	long		status;
	enum nf_err	rc;

	if ((rc = request("/ping", NULL, &status, err)) != NF_OK)
		return rc;
	if (status < 200 || status > 299)
		return nf_error_set(err, NF_EUNAVAIL, "events_unavailable", NULL,
		    "The event publisher answered HTTP %ld", status);
	return NF_OK;
}
