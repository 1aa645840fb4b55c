/*
 * provision.h - creates or updates one tenant's Twilio resources from
 * infra/taskrouter.json, for `nonflexctl provision`.
 *
 * DESIGN: two passes.  The plan pass only reads (GET): it finds the
 * workspace (the tenant's twilio.workspaceSid when Twilio knows it, else
 * by friendly name), lists its activities, task queues and workflows, reads
 * the Conversations service's webhook configuration, and decides for each
 * resource: create when missing, update when a field we manage differs,
 * leave it alone when equal.  Everything that can be refused before a
 * write - a bad definition, a non-https PUBLIC_URL, two resources with one
 * name, an activity whose availability Twilio cannot change - is refused
 * in that pass, so a failing run writes nothing it could have avoided.
 * One exception: the children of a workspace this run creates are read
 * right after it is created, since Twilio gives a new workspace default
 * activities (Available, Offline, ...) that must be matched, not created
 * twice; a dry run then reports them as "would create".  The apply pass
 * writes in dependency order (workspace, activities, task queues, workflow
 * with the queues' SIDs, Conversations webhook) and reports each resource;
 * a dry run reports the plan and writes nothing.
 * Running it again changes nothing: every write is a create of something
 * missing or an update of a field that differs.
 *
 * Callback URLs are PUBLIC_URL plus Nonflex's own webhook routes, never
 * taken from the file, so they cannot drift from fcgi/routes.c.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_PROVISION_H
#define NF_PROVISION_H

#include "nonflex.h"

struct json_object;
struct nf_tenant;
struct nf_tw_client;

/* What happened (a dry run: what would happen) to one resource. */
enum nf_provision_action {
	NF_PROVISION_UNCHANGED = 0,  /* Twilio already has what we want */
	NF_PROVISION_CREATED,        /* it was missing */
	NF_PROVISION_UPDATED,        /* a field we manage differed */
	NF_PROVISION__MAX
};

/* "unchanged" | "created" | "updated", or for a dry run "unchanged" |
 * "would create" | "would update". */
const char	*nf_provision_action_name(enum nf_provision_action, int dry_run);

/*
 * Called once per resource, in order, after it was written (a dry run:
 * planned).  kind is "workspace", "activity", "taskqueue", "workflow" or
 * "webhook" (the Conversations service's); name its friendly name (the
 * webhook: the service SID); sid Twilio's SID, "" when a dry run would
 * create it.
 */
typedef void	(*nf_provision_report_fn)(const char *kind, const char *name,
		    const char *sid, enum nf_provision_action, void *arg);

struct nf_provision_opts {
	const char		*public_url;  /* PUBLIC_URL: where Twilio calls back */
	int			 dry_run;     /* plan and report, write nothing */
	nf_provision_report_fn	 report;      /* may be NULL */
	void			*arg;
};

/* The SIDs to put into the tenant's twilio settings ("" when unknown: a
 * dry run that would create the resource). */
struct nf_provision_sids {
	char	workspace[35];     /* workspaceSid, WS... */
	char	workflow[35];      /* workflowSid, WW... */
	int	changes;           /* resources created or updated (or that
				    * would be) */
};

/*
 * PUBLIC_URL as a callback base: an absolute https:// URL with a host and
 * no user info, query or fragment.  http:// is accepted only for a
 * loopback host (localhost, 127.0.0.0/8, [::1]), for tests against local
 * mocks.  NF_EINVAL with field "PUBLIC_URL" and a message saying what to
 * set otherwise.  Pure.
 */
enum nf_err	 nf_provision_public_url_check(const char *url, struct nf_error *);

/*
 * Check a parsed taskrouter.json (borrowed) completely: known keys only,
 * types and ranges, unique friendly names, every queue the workflow names
 * defined.  NF_EINVAL "invalid_taskrouter" with a message naming the
 * entry and field.  Pure.
 */
enum nf_err	 nf_provision_def_check(struct json_object *def, struct nf_error *);

/*
 * Provision tenant t from def (borrowed; checked first with
 * nf_provision_def_check) through tw.  out is always filled with what is
 * known.  Errors: those of the two checks above; NF_EINVAL
 * "missing_setting" when the tenant has no Conversations service SID;
 * NF_ECONFLICT "twilio_conflict" when two resources of a kind share a
 * friendly name or an activity's availability differs (Twilio cannot change
 * it); NF_EUPSTREAM "twilio_bad_response" for an answer without a valid
 * SID; otherwise the REST client's errors (twilio_rest.h), their message
 * prefixed with the step that failed.  No message carries a credential.
 */
enum nf_err	 nf_provision_run(struct nf_tw_client *tw, const struct nf_tenant *t,
		    struct json_object *def, const struct nf_provision_opts *,
		    struct nf_provision_sids *out, struct nf_error *);

#endif
