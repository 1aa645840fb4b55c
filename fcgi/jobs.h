#ifndef NF_JOBS_H
#define NF_JOBS_H
#endif
