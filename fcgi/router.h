#ifndef NF_ROUTER_H
#define NF_ROUTER_H
#endif
