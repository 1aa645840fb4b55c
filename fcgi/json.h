#ifndef NF_JSON_H
#define NF_JSON_H
#endif
