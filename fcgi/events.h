/*
 * events.h - live events for browsers, published to nginx's nchan.
 *
 * DESIGN: workers and job runners POST an event to nchan's publisher
 * location, which listens only on a unix socket under the state dir
 * (NONFLEX_NCHAN_SOCKET); browsers subscribe to /api/events/<topic> through
 * nginx, authorized by a FastCGI subrequest (h_events.c).  Channel ids are
 * "<tenant>.<topic>", so subscribers only ever see their tenant's events.
 * Topics are [a-z0-9_-]{1,64}.  An event is {"type", "at", "data"}.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_EVENTS_H
#define NF_EVENTS_H

#include "nonflex.h"

struct json_object;

/* Socket path of nchan's publisher; NULL or "" disables publishing
 * (nf_events_publish then returns NF_EUNAVAIL). Copies the string. */
void		 nf_events_init(const char *socket_path);
void		 nf_events_cleanup(void);
int		 nf_events_valid_topic(const char *topic);
/* Channel id "<tenant>.<topic>" (malloc'd), or NULL when either is invalid. */
char		*nf_events_channel(const char *tenant, const char *topic);
/* Publish {"type":type,"at":now,"data":data} (data borrowed, may be NULL).
 * NF_EUNAVAIL when nchan cannot be reached. */
enum nf_err	 nf_events_publish(const char *tenant, const char *topic, const char *type,
		    struct json_object *data, struct nf_error *);
/* Checks the publisher answers (GET channel info); for /api/health. */
enum nf_err	 nf_events_ping(struct nf_error *);

#endif
