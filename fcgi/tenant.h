#ifndef NF_TENANT_H
#define NF_TENANT_H
#endif
