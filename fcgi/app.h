#ifndef NF_APP_H
#define NF_APP_H
#endif
