#ifndef NF_REQ_H
#define NF_REQ_H
#endif
