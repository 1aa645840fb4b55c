#ifndef NF_SEED_H
#define NF_SEED_H
#endif
