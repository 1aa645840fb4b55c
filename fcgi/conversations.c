/* conversations.c - placeholder while it is being written. */
#include "autoconfig.h"
