/* h_events.c - placeholder until written. */
#include "config.h"
