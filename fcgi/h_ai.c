/* h_ai.c - placeholder while it is being written. */
#include "autoconfig.h"
