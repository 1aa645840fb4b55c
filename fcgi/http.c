/* http.c - placeholder while it is being written (see http.h). */
#include "autoconfig.h"
