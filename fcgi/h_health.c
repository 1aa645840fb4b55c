/* h_health.c - placeholder until written. */
#include "config.h"
