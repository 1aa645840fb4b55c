/* tenant.c - placeholder until written. */
#include "config.h"
