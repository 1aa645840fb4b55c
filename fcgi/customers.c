/* customers.c - placeholder while it is being written (see customers.h). */
#include "autoconfig.h"
