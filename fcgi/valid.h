#ifndef NF_VALID_H
#define NF_VALID_H
#endif
