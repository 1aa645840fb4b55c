#ifndef NF_PASSWD_H
#define NF_PASSWD_H
#endif
