/*
 * config.h - process settings read from the environment.
 *
 * DESIGN: one table (config.c) lists every setting with its environment
 * variable, default, bounds and kind, as redis' static_configs[] does.  A
 * worker reads it once at start and again after SIGHUP (nf_app_reload);
 * nothing reads the environment per request.  A value outside its bounds
 * is an error at load (the caller keeps the previous configuration), and
 * `nonflexctl check-config` lists every problem through nf_config_check().
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_CONFIG_H
#define NF_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "log.h"
#include "nonflex.h"

struct json_object;

struct nf_config {
	char			*store_uri;        /* STORE_URI, else MONGO_URI/MONGO_URL, else sqlite */
	char			*redis_url;        /* REDIS_URL */
	int64_t			 redis_timeout_ms; /* NONFLEX_REDIS_TIMEOUT_MS */
	char			*tenants_file;     /* TENANTS_FILE */
	char			*default_tenant;   /* DEFAULT_TENANT */
	char			*nchan_socket;     /* NONFLEX_NCHAN_SOCKET ("" = no publishing) */
	char			*spool_dir;        /* NONFLEX_SPOOL_DIR ("" = record inbound
						    * messages at once; spool.h) */
	char			*public_url;       /* PUBLIC_URL (Twilio signature base) */
	char			*client_url;       /* CLIENT_URL: CORS origins, comma separated */
	char			*jwt_secret;       /* JWT_SECRET (never logged) */
	int64_t			 body_max;         /* NONFLEX_BODY_MAX, bytes */
	int64_t			 log_level;        /* NONFLEX_LOG_LEVEL as enum nf_log_level */
	int64_t			 dev_routes;       /* NONFLEX_DEV_ROUTES, 0 or 1 */
	int64_t			 request_timeout_ms; /* NONFLEX_REQUEST_TIMEOUT_MS: per-request
						      * deadline (watchdog.h); below nginx's
						      * fastcgi_read_timeout (30 s) */
	int64_t			 jwt_ttl_s;        /* NONFLEX_JWT_TTL_S: login token lifetime */
	int64_t			 dev_insecure_jwt; /* NONFLEX_DEV_INSECURE_JWT: accept a weak
						    * JWT_SECRET (development only, warned) */
	int64_t			 login_user_max;   /* NONFLEX_LOGIN_USER_MAX: failed logins per
						    * (tenant, username) per window */
	int64_t			 login_ip_max;     /* NONFLEX_LOGIN_IP_MAX: failed logins per
						    * client IP per window */
	int64_t			 login_window_s;   /* NONFLEX_LOGIN_WINDOW_S */
	/* Twilio (twilio_rest.h, twilio_sig.h, twilio_token.h).  Base URLs
	 * default to Twilio's hosts; tests point them at Prism mocks. */
	char			*twilio_api_base;           /* TWILIO_API_BASE_URL */
	char			*twilio_conversations_base; /* TWILIO_CONVERSATIONS_BASE_URL */
	char			*twilio_taskrouter_base;    /* TWILIO_TASKROUTER_BASE_URL */
	char			*twilio_video_base;         /* TWILIO_VIDEO_BASE_URL */
	char			*twilio_studio_base;        /* TWILIO_STUDIO_BASE_URL */
	int64_t			 twilio_connect_timeout_ms; /* NONFLEX_TWILIO_CONNECT_TIMEOUT_MS */
	int64_t			 twilio_timeout_ms;         /* NONFLEX_TWILIO_TIMEOUT_MS: total,
						     * per attempt */
	int64_t			 twilio_max_attempts;       /* NONFLEX_TWILIO_MAX_ATTEMPTS */
	int64_t			 twilio_token_ttl_s;        /* NONFLEX_TWILIO_TOKEN_TTL_S: Access
						     * Token lifetime (Twilio caps at 24 h) */
	int64_t			 dev_skip_twilio_sig;       /* NONFLEX_DEV_SKIP_TWILIO_SIGNATURE:
						     * accept unsigned webhooks (development
						     * only, warned on every request) */
	/* Customers and the CRM (customers.h, crm.h, http.h). */
	int64_t			 crm_connect_timeout_ms;    /* NONFLEX_CRM_CONNECT_TIMEOUT_MS */
	int64_t			 crm_timeout_ms;            /* NONFLEX_CRM_TIMEOUT_MS: total */
	int64_t			 crm_cache_ttl_s;           /* NONFLEX_CRM_CACHE_TTL_S: default for
						     * tenants without crm.cacheTtlS */
	int64_t			 crm_allow_private;         /* NONFLEX_CRM_ALLOW_PRIVATE: a CRM on
						     * loopback/private addresses is allowed */
	int64_t			 crm_breaker_failures;      /* NONFLEX_CRM_BREAKER_FAILURES (0: off) */
	int64_t			 crm_breaker_window_s;      /* NONFLEX_CRM_BREAKER_WINDOW_S */
	int64_t			 crm_breaker_open_s;        /* NONFLEX_CRM_BREAKER_OPEN_S */
	char			*phone_default_cc;
	/* Conversations and the AI assistant (conversations.h, ai.h). */
	char			*openai_base_url;           /* OPENAI_BASE_URL (as OpenAI's SDKs) */
	int64_t			 openai_timeout_ms;         /* NONFLEX_OPENAI_TIMEOUT_MS: per call */
	int64_t			 openai_allow_private;      /* NONFLEX_OPENAI_ALLOW_PRIVATE (tests) */
	int64_t			 ai_rate_per_min;           /* NONFLEX_AI_RATE_PER_MIN: AI answers
						     * per conversation per minute, then
						     * handoff */
	int64_t			 ai_tool_rounds;            /* NONFLEX_AI_TOOL_ROUNDS */
	int64_t			 ai_retries;                /* NONFLEX_AI_RETRIES: retries of one
						     * OpenAI call after 429/5xx/timeout/
						     * connection failure (ai_openai.h) */
	int64_t			 openai_attempt_ms;         /* NONFLEX_OPENAI_ATTEMPT_TIMEOUT_MS:
						     * one attempt's share of the deadline */
	int64_t			 ai_daily_token_budget;     /* NONFLEX_AI_DAILY_TOKEN_BUDGET: default
						     * for tenants without
						     * ai.dailyTokenBudget (0: unlimited) */
	int64_t			 claim_ttl_s;               /* NONFLEX_CLAIM_TTL_S: a claim's lock
						     * lifetime (renewed by activity) */          /* NONFLEX_PHONE_COUNTRY_CODE: country
						     * calling code for national numbers */
	/* Web chat (webchat.h). */
	int64_t			 webchat_ttl_s;             /* NONFLEX_WEBCHAT_TTL_S: a web-chat
						     * session token's lifetime */
	int64_t			 webchat_sessions_per_min;  /* NONFLEX_WEBCHAT_SESSIONS_PER_MIN:
						     * new sessions per client IP */
	int64_t			 webchat_msgs_per_min;      /* NONFLEX_WEBCHAT_MSGS_PER_MIN: per
						     * session */
	int64_t			 webchat_ip_msgs_per_min;   /* NONFLEX_WEBCHAT_IP_MSGS_PER_MIN */
	int			 jwt_usable;       /* derived at load: the secret passes
						    * nf_config_jwt_secret_ok or the dev flag
						    * allows it (not re-checked per request) */
};

/*
 * Fill cfg from the environment (cfg is overwritten, not freed first).
 * On an invalid value returns NF_EINVAL with e naming the variable; cfg is
 * then cleaned up and empty.  Strings are owned by cfg.
 */
enum nf_err	 nf_config_load(struct nf_config *cfg, struct nf_error *e);
void		 nf_config_cleanup(struct nf_config *cfg);   /* accepts NULL */

/* 1 when origin equals one of CLIENT_URL's comma-separated entries
 * (exact match, trailing '/' of an entry ignored); 0 otherwise. */
int		 nf_config_origin_allowed(const struct nf_config *, const char *origin);

/*
 * Every problem with the environment's configuration and the tenants file
 * it names, as a new JSON array of strings (empty when all is well; the
 * caller puts it).  Never contains a secret value.  Cannot fail.
 */
struct json_object *nf_config_problems(void);
/* Print nf_config_problems() one per line to out; returns how many. */
size_t		 nf_config_check(FILE *out);

/*
 * 1 when secret is usable as the HS256 key: at least 32 bytes, not a
 * well-known placeholder ("changeme", "secret", ...) and not made of a
 * handful of distinct characters (RFC 8725 3.5: no human-memorable keys).
 */
int		 nf_config_jwt_secret_ok(const char *secret);
/*
 * Whether nonflex-fcgi may start with cfg's JWT_SECRET: NF_OK when it is
 * good, or when it is weak but NONFLEX_DEV_INSECURE_JWT=1 (a warning is
 * logged); NF_EINVAL "insecure_jwt_secret" otherwise (never quoting it).
 */
enum nf_err	 nf_config_jwt_check(const struct nf_config *, struct nf_error *);

/* "debug" | "info" | "warn" | "error" -> level, or -1. */
int		 nf_config_log_level(const char *);

#endif
