/* crm.c - placeholder while it is being written (see crm.h). */
#include "autoconfig.h"

#include <stddef.h>

#include "crm.h"
#include "tenant.h"

int
nf_crm_configured(const struct nf_tenant *t)
{
	return t != NULL && t->crm.base_url != NULL;
}

enum nf_err
nf_crm_get(struct nf_app *app, const struct nf_tenant *t, enum nf_crm_kind kind,
    const char *key, struct json_object **out, int *from_cache, struct nf_error *e)
{
	(void)app; (void)t; (void)kind; (void)key;
	*out = NULL;
	*from_cache = 0;
	return nf_error_set(e, NF_EINVAL, "crm_not_configured", NULL, "no CRM client yet");
}

enum nf_err
nf_crm_ticket_push(const struct nf_config *cfg, const struct nf_tenant *t,
    struct json_object *ticket, char **crm_id, struct nf_error *e)
{
	(void)cfg; (void)t; (void)ticket;
	if (crm_id != NULL)
		*crm_id = NULL;
	return nf_error_set(e, NF_EINVAL, "crm_not_configured", NULL, "no CRM client yet");
}

struct json_object *
nf_crm_map_customer(struct json_object *contact)
{
	(void)contact;
	return NULL;
}
