/*
 * log.h - structured logging: one JSON object per line on stderr.
 *
 * Every line carries time, level, program and, while a request is being
 * served, its request id and tenant.  Callers pass values, never secrets;
 * strings are JSON-escaped so CR/LF from clients cannot forge lines.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_LOG_H
#define NF_LOG_H

struct json_object;

enum nf_log_level { NF_LOG_DEBUG = 0, NF_LOG_INFO, NF_LOG_WARN, NF_LOG_ERROR, NF_LOG__MAX };

void	nf_log_init(const char *prog, enum nf_log_level min);
/* Context added to every line until cleared; NULL clears one field. */
void	nf_log_context(const char *request_id, const char *tenant);
void	nf_log(enum nf_log_level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Log msg with extra fields from obj (borrowed; may be NULL). */
void	nf_log_fields(enum nf_log_level, const char *msg, struct json_object *obj);

#define nf_debug(...) nf_log(NF_LOG_DEBUG, __VA_ARGS__)
#define nf_info(...)  nf_log(NF_LOG_INFO, __VA_ARGS__)
#define nf_warn(...)  nf_log(NF_LOG_WARN, __VA_ARGS__)
#define nf_error(...) nf_log(NF_LOG_ERROR, __VA_ARGS__)

#endif
