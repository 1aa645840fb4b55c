/* h_tenants.c - placeholder until written. */
#include "config.h"
