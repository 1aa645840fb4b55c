/* twilio_sig.c - placeholder while it is being written. */
#include "autoconfig.h"
