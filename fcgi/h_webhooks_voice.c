/* h_webhooks_voice.c - placeholder while it is being written. */
#include "autoconfig.h"
