/* delivery.c - placeholder while it is being written. */
#include "autoconfig.h"
#include "delivery.h"
enum nf_err
nf_delivery_job(const struct nf_job *j, void *app, struct nf_error *e)
{
	(void)j; (void)app;
	return nf_error_set(e, NF_ESYSTEM, "not_ready", NULL, "conv.deliver is being written");
}
enum nf_err
nf_delivery_task_job(const struct nf_job *j, void *app, struct nf_error *e)
{
	(void)j; (void)app;
	return nf_error_set(e, NF_ESYSTEM, "not_ready", NULL, "conv.task is being written");
}
