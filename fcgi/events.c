/*
 * events.c - publishes live events to nginx's nchan (see events.h) with
 * libcurl over nchan's loopback-only unix socket.
 *
 * DESIGN: one CURL easy handle per process, reused so the connection to
 * nginx stays open between events; short timeouts (500 ms connect, 2 s in
 * all) so a stuck nginx costs a webhook or a job at most two seconds.  The
 * channel id "<tenant>.<topic>" is built only from validated parts, so a
 * client can never name another tenant's channel.  Not thread-safe: call it
 * from one thread per process (workers and job runners are single-threaded).
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "nonflex.h"
#include "log.h"
#include "events.h"

#define EV_MAX_BODY	(64 * 1024)     /* an event larger than this is refused */

static char	*sock_path;             /* NULL: publishing disabled */
static CURL	*curl;

void
nf_events_init(const char *socket_path)
{
	static int	global_done;

	nf_events_cleanup();
	if (socket_path == NULL || *socket_path == '\0')
		return;
	if (!global_done && curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK)
		global_done = 1;
	sock_path = nf_xstrdup(socket_path);
}

void
nf_events_cleanup(void)
{
	if (curl != NULL)
		curl_easy_cleanup(curl);
	curl = NULL;
	free(sock_path);
	sock_path = NULL;
}

static int
in_set(const char *s, size_t max, const char *extra)
{
	size_t	n;

	if (s == NULL)
		return 0;
	for (n = 0; s[n] != '\0'; n++)
		if (n >= max || !((s[n] >= 'a' && s[n] <= 'z') ||
		    (s[n] >= '0' && s[n] <= '9') || strchr(extra, s[n]) != NULL))
			return 0;
	return n > 0;
}

int
nf_events_valid_topic(const char *topic)
{
	return in_set(topic, 64, "_-");
}

char *
nf_events_channel(const char *tenant, const char *topic)
{
	if (!in_set(tenant, 63, "-") || !nf_events_valid_topic(topic))
		return NULL;
	return nf_xasprintf("%s.%s", tenant, topic);
}

/* Event types name what happened: "message.created", "queue:update". */
static int
valid_type(const char *t)
{
	size_t	n;

	if (t == NULL)
		return 0;
	for (n = 0; t[n] != '\0'; n++)
		if (n >= 64 || !((t[n] >= 'a' && t[n] <= 'z') || (t[n] >= 'A' &&
		    t[n] <= 'Z') || (t[n] >= '0' && t[n] <= '9') ||
		    strchr("._:-", t[n]) != NULL))
			return 0;
	return n > 0;
}

/* Discard nchan's answer (channel info); we only need the status. */
static size_t
sink(char *p, size_t sz, size_t n, void *u)
{
	(void)p;
	(void)u;
	return sz * n;
}

/* One request; *status receives the HTTP status (0 when none). */
static enum nf_err
request(const char *path, const char *body, long *status, struct nf_error *err)
{
	struct curl_slist	*hdr = NULL;
	char			*url = NULL, ebuf[CURL_ERROR_SIZE] = "";
	CURLcode		 cc;

	*status = 0;
	if (sock_path == NULL)
		return nf_error_set(err, NF_EUNAVAIL, "events_unavailable", NULL,
		    "Event publishing is not configured");
	if (curl == NULL && (curl = curl_easy_init()) == NULL)
		return nf_error_set(err, NF_ESYSTEM, NULL, NULL, "Cannot start HTTP client");
	curl_easy_reset(curl);
	url = nf_xasprintf("http://localhost%s", path);
	curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, sock_path);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 500L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink);
	if (body != NULL) {
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		hdr = curl_slist_append(hdr, "Expect:");
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	cc = curl_easy_perform(curl);
	if (cc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
	else
		nf_warn("nchan %s: %s", path, ebuf[0] != '\0' ? ebuf : curl_easy_strerror(cc));
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(hdr);
	free(url);
	if (cc != CURLE_OK)
		return nf_error_set(err, NF_EUNAVAIL, "events_unavailable", NULL,
		    "The event publisher is unavailable");
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
