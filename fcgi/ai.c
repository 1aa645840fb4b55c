/* ai.c - placeholder while it is being written. */
#include "autoconfig.h"
#include "ai.h"
enum nf_err
nf_ai_job(const struct nf_job *j, void *app, struct nf_error *e)
{
	(void)j; (void)app;
	return nf_error_set(e, NF_ESYSTEM, "not_ready", NULL, "ai.reply is being written");
}
