#ifndef NF_HANDLERS_H
#define NF_HANDLERS_H
#endif
