/* store_sqlite.c - placeholder until written. */
#include "config.h"
