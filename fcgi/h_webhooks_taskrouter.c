/* h_webhooks_taskrouter.c - placeholder while it is being written. */
#include "autoconfig.h"
