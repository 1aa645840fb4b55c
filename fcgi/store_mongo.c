/* store_mongo.c - placeholder until written. */
#include "config.h"
