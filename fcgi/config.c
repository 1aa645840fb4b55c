/*
 * config.c - the settings table and its loader (see config.h).
 *
 * DESIGN: each row names a field of struct nf_config by offset, so loading,
 * cleaning up and checking are three loops over one table and a new setting
 * is one new row.  Secrets (JWT_SECRET) are marked so no message ever
 * quotes their value.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config.h"
#include "log.h"
#include "nonflex.h"
#include "tenant.h"
#include "valid.h"

enum kind {
	K_STRING,   /* any string */
	K_INT,      /* integer within [min, max] */
	K_BOOL,     /* 0/1, true/false, yes/no, on/off */
	K_LEVEL,    /* log level name */
};

struct setting {
	const char	*env;       /* environment variable */
	const char	*def;       /* default (NULL: empty/unset) */
	int64_t		 min, max;  /* bounds for K_INT */
	enum kind	 kind;
	size_t		 off;       /* offset in struct nf_config */
	int		 secret;    /* never quote the value */
};

#define OFF(f) offsetof(struct nf_config, f)

/* fastcgi_read_timeout in conf/nginx.conf.in and conf/nginx-site.conf. */
#define NF_NGINX_READ_TIMEOUT_MS 30000

static const struct setting settings[] = {
	{ "STORE_URI", NULL, 0, 0, K_STRING, OFF(store_uri), 1 },
	{ "REDIS_URL", "redis://127.0.0.1:6379", 0, 0, K_STRING, OFF(redis_url), 1 },
	{ "NONFLEX_REDIS_TIMEOUT_MS", "500", 10, 60000, K_INT, OFF(redis_timeout_ms), 0 },
	{ "TENANTS_FILE", "infra/tenants.json", 0, 0, K_STRING, OFF(tenants_file), 0 },
	{ "DEFAULT_TENANT", "tenant1", 0, 0, K_STRING, OFF(default_tenant), 0 },
	{ "NONFLEX_NCHAN_SOCKET", "", 0, 0, K_STRING, OFF(nchan_socket), 0 },
	{ "NONFLEX_SPOOL_DIR", "", 0, 0, K_STRING, OFF(spool_dir), 0 },
	{ "PUBLIC_URL", "", 0, 0, K_STRING, OFF(public_url), 0 },
	{ "CLIENT_URL", "", 0, 0, K_STRING, OFF(client_url), 0 },
	{ "JWT_SECRET", "", 0, 0, K_STRING, OFF(jwt_secret), 1 },
	{ "NONFLEX_BODY_MAX", "65536", 1024, 16777216, K_INT, OFF(body_max), 0 },
	{ "NONFLEX_LOG_LEVEL", "info", 0, 0, K_LEVEL, OFF(log_level), 0 },
	{ "NONFLEX_DEV_ROUTES", "0", 0, 1, K_BOOL, OFF(dev_routes), 0 },
	{ "NONFLEX_REQUEST_TIMEOUT_MS", "25000", 100, 600000, K_INT, OFF(request_timeout_ms), 0 },
	{ "NONFLEX_JWT_TTL_S", "3600", 60, 86400, K_INT, OFF(jwt_ttl_s), 0 },
	{ "NONFLEX_DEV_INSECURE_JWT", "0", 0, 1, K_BOOL, OFF(dev_insecure_jwt), 0 },
	{ "NONFLEX_LOGIN_USER_MAX", "10", 1, 1000000, K_INT, OFF(login_user_max), 0 },
	{ "NONFLEX_LOGIN_IP_MAX", "10", 1, 1000000, K_INT, OFF(login_ip_max), 0 },
	{ "NONFLEX_LOGIN_WINDOW_S", "900", 1, 86400, K_INT, OFF(login_window_s), 0 },
	{ "TWILIO_API_BASE_URL", "https://api.twilio.com", 0, 0, K_STRING,
	    OFF(twilio_api_base), 0 },
	{ "TWILIO_CONVERSATIONS_BASE_URL", "https://conversations.twilio.com", 0, 0, K_STRING,
	    OFF(twilio_conversations_base), 0 },
	{ "TWILIO_TASKROUTER_BASE_URL", "https://taskrouter.twilio.com", 0, 0, K_STRING,
	    OFF(twilio_taskrouter_base), 0 },
	{ "TWILIO_VIDEO_BASE_URL", "https://video.twilio.com", 0, 0, K_STRING,
	    OFF(twilio_video_base), 0 },
	{ "TWILIO_STUDIO_BASE_URL", "https://studio.twilio.com", 0, 0, K_STRING,
	    OFF(twilio_studio_base), 0 },
	{ "NONFLEX_TWILIO_CONNECT_TIMEOUT_MS", "5000", 100, 60000, K_INT,
	    OFF(twilio_connect_timeout_ms), 0 },
	{ "NONFLEX_TWILIO_TIMEOUT_MS", "15000", 100, 120000, K_INT, OFF(twilio_timeout_ms), 0 },
	{ "NONFLEX_TWILIO_MAX_ATTEMPTS", "4", 1, 10, K_INT, OFF(twilio_max_attempts), 0 },
	{ "NONFLEX_TWILIO_TOKEN_TTL_S", "3600", 60, 86400, K_INT, OFF(twilio_token_ttl_s), 0 },
	{ "NONFLEX_DEV_SKIP_TWILIO_SIGNATURE", "0", 0, 1, K_BOOL, OFF(dev_skip_twilio_sig), 0 },
	{ "NONFLEX_CRM_CONNECT_TIMEOUT_MS", "2000", 50, 60000, K_INT,
	    OFF(crm_connect_timeout_ms), 0 },
	{ "NONFLEX_CRM_TIMEOUT_MS", "5000", 100, 120000, K_INT, OFF(crm_timeout_ms), 0 },
	{ "NONFLEX_CRM_CACHE_TTL_S", "300", 0, 86400, K_INT, OFF(crm_cache_ttl_s), 0 },
	{ "NONFLEX_CRM_ALLOW_PRIVATE", "0", 0, 1, K_BOOL, OFF(crm_allow_private), 0 },
	{ "NONFLEX_CRM_BREAKER_FAILURES", "5", 0, 1000, K_INT, OFF(crm_breaker_failures), 0 },
	{ "NONFLEX_CRM_BREAKER_WINDOW_S", "60", 1, 86400, K_INT, OFF(crm_breaker_window_s), 0 },
	{ "NONFLEX_CRM_BREAKER_OPEN_S", "30", 1, 86400, K_INT, OFF(crm_breaker_open_s), 0 },
	{ "OPENAI_BASE_URL", "https://api.openai.com/v1", 0, 0, K_STRING,
	    OFF(openai_base_url), 0 },
	{ "NONFLEX_OPENAI_TIMEOUT_MS", "20000", 100, 120000, K_INT, OFF(openai_timeout_ms), 0 },
	{ "NONFLEX_OPENAI_ALLOW_PRIVATE", "0", 0, 1, K_BOOL, OFF(openai_allow_private), 0 },
	{ "NONFLEX_AI_RATE_PER_MIN", "20", 1, 10000, K_INT, OFF(ai_rate_per_min), 0 },
	{ "NONFLEX_AI_TOOL_ROUNDS", "3", 0, 10, K_INT, OFF(ai_tool_rounds), 0 },
	{ "NONFLEX_AI_RETRIES", "2", 0, 5, K_INT, OFF(ai_retries), 0 },
	{ "NONFLEX_OPENAI_ATTEMPT_TIMEOUT_MS", "10000", 100, 120000, K_INT,
	    OFF(openai_attempt_ms), 0 },
	{ "NONFLEX_AI_DAILY_TOKEN_BUDGET", "1000000", 0, 1000000000000, K_INT,
	    OFF(ai_daily_token_budget), 0 },
	{ "NONFLEX_CLAIM_TTL_S", "3600", 10, 86400, K_INT, OFF(claim_ttl_s), 0 },
	{ "NONFLEX_PHONE_COUNTRY_CODE", "1", 0, 0, K_STRING, OFF(phone_default_cc), 0 },
	{ "NONFLEX_WEBCHAT_TTL_S", "86400", 300, 2592000, K_INT, OFF(webchat_ttl_s), 0 },
	{ "NONFLEX_WEBCHAT_SESSIONS_PER_MIN", "10", 1, 100000, K_INT,
	    OFF(webchat_sessions_per_min), 0 },
	{ "NONFLEX_WEBCHAT_MSGS_PER_MIN", "20", 1, 100000, K_INT, OFF(webchat_msgs_per_min), 0 },
	{ "NONFLEX_WEBCHAT_IP_MSGS_PER_MIN", "120", 1, 1000000, K_INT,
	    OFF(webchat_ip_msgs_per_min), 0 },
};

static const char *const level_names[NF_LOG__MAX] = { "debug", "info", "warn", "error" };

int
nf_config_log_level(const char *s)
{
	size_t	 i;

	for (i = 0; s != NULL && i < NF_ARRAY_LEN(level_names); i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return (int)i;
	return -1;
}

static int
parse_bool(const char *s, int64_t *out)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off", "" };
	size_t	 i;

	for (i = 0; i < NF_ARRAY_LEN(yes); i++)
		if (strcasecmp(s, yes[i]) == 0)
			return (*out = 1), 1;
	for (i = 0; i < NF_ARRAY_LEN(no); i++)
		if (strcasecmp(s, no[i]) == 0)
			return (*out = 0), 1;
	return 0;
}

/* The store URI default depends on two other variables (the original's
 * MONGO_URI / MONGO_URL), so it is computed rather than tabled. */
static const char *
store_default(void)
{
	const char	*s;

	if ((s = getenv("MONGO_URI")) != NULL && *s != '\0')
		return s;
	if ((s = getenv("MONGO_URL")) != NULL && *s != '\0')
		return s;
	return "sqlite:///var/lib/nonflex/nonflex.db";
}

/* Apply value v (NULL: default) to one setting; on a bad value fill e
 * (never quoting the value, which may be a secret). */
static enum nf_err
apply_value(struct nf_config *cfg, const struct setting *s, const char *v,
    struct nf_error *e)
{
	char		*base = (char *)cfg + s->off;
	int64_t		 n = 0;
	int		 lvl;

	if (v == NULL || (*v == '\0' && s->kind != K_STRING))
		v = s->def;
	if ((v == NULL || *v == '\0') && strcmp(s->env, "STORE_URI") == 0)
		v = store_default();
	switch (s->kind) {
	case K_STRING:
		*(char **)(void *)base = nf_xstrdup(v != NULL ? v : "");
		return NF_OK;
	case K_INT:
		if (!nf_valid_int(v, s->min, s->max, &n))
			return nf_error_set(e, NF_EINVAL, "invalid_config", s->env,
			    "%s must be an integer in %lld..%lld", s->env,
			    (long long)s->min, (long long)s->max);
		break;
	case K_BOOL:
		if (!parse_bool(v, &n))
			return nf_error_set(e, NF_EINVAL, "invalid_config", s->env,
			    "%s must be 0 or 1", s->env);
		break;
	case K_LEVEL:
		if ((lvl = nf_config_log_level(v)) < 0)
			return nf_error_set(e, NF_EINVAL, "invalid_config", s->env,
			    "%s must be debug, info, warn or error", s->env);
		n = lvl;
		break;
	}
	*(int64_t *)(void *)base = n;
	return NF_OK;
}

static enum nf_err
apply(struct nf_config *cfg, const struct setting *s, struct nf_error *e)
{
	return apply_value(cfg, s, getenv(s->env), e);
}

enum nf_err
nf_config_load(struct nf_config *cfg, struct nf_error *e)
{
	enum nf_err	 rc = NF_OK;
	size_t		 i;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < NF_ARRAY_LEN(settings); i++)
		if ((rc = apply(cfg, &settings[i], e)) != NF_OK)
			goto out;
	if (!nf_valid_slug(cfg->default_tenant))
		rc = nf_error_set(e, NF_EINVAL, "invalid_config", "DEFAULT_TENANT",
		    "DEFAULT_TENANT must be a tenant id ([a-z0-9-]{1,63})");
	cfg->jwt_usable = nf_config_jwt_secret_ok(cfg->jwt_secret) ||
	    cfg->dev_insecure_jwt != 0;
out:
	if (rc != NF_OK)
		nf_config_cleanup(cfg);
	return rc;
}

void
nf_config_cleanup(struct nf_config *cfg)
{
	size_t	 i;
	char	**p;

	if (cfg == NULL)
		return;
	for (i = 0; i < NF_ARRAY_LEN(settings); i++) {
		if (settings[i].kind != K_STRING)
			continue;
		p = (char **)(void *)((char *)cfg + settings[i].off);
		free(*p);
	}
	memset(cfg, 0, sizeof(*cfg));
}

int
nf_config_origin_allowed(const struct nf_config *cfg, const char *origin)
{
	const char	*p, *end;
	size_t		 len, olen;

	if (cfg == NULL || cfg->client_url == NULL || origin == NULL || *origin == '\0')
		return 0;
	olen = strlen(origin);
	for (p = cfg->client_url; *p != '\0'; p = *end ? end + 1 : end) {
		while (*p == ' ')
			p++;
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		len = (size_t)(end - p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '/'))
			len--;
		if (len > 0 && len == olen && memcmp(p, origin, len) == 0)
			return 1;
	}
	return 0;
}

int
nf_config_jwt_secret_ok(const char *secret)
{
	/* Values people paste from examples; compared without case. */
	static const char *const weak[] = { "changeme", "change-me", "change_me",
	    "secret", "jwt_secret", "jwt-secret", "your-secret", "your_secret",
	    "yoursecret", "supersecret", "password", "example", "placeholder",
	    "your-jwt-secret", "your_jwt_secret", "replace-me", "replace_me" };
	unsigned char	 seen[256];
	size_t		 i, len, distinct = 0;

	if (secret == NULL || (len = strlen(secret)) < 32)
		return 0;
	for (i = 0; i < NF_ARRAY_LEN(weak); i++)
		if (strcasecmp(secret, weak[i]) == 0 ||
		    strncasecmp(secret, weak[i], strlen(weak[i])) == 0)
			return 0;
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < len; i++)
		if (!seen[(unsigned char)secret[i]]++)
			distinct++;
	/* "aaaa...", "abababab..." and the like are not keys. */
	return distinct >= 10;
}

enum nf_err
nf_config_jwt_check(const struct nf_config *cfg, struct nf_error *e)
{
	if (nf_config_jwt_secret_ok(cfg->jwt_secret))
		return NF_OK;
	if (cfg->dev_insecure_jwt) {
		nf_warn("JWT_SECRET is empty, short or a placeholder; accepted only because "
		    "NONFLEX_DEV_INSECURE_JWT=1 - never use this outside development");
		return NF_OK;
	}
	return nf_error_set(e, NF_EINVAL, "insecure_jwt_secret", "JWT_SECRET",
	    "JWT_SECRET must be at least 32 random bytes and not a placeholder "
	    "(set NONFLEX_DEV_INSECURE_JWT=1 only for development)");
}

static void
problem(struct json_object *arr, const char *msg)
{
	struct json_object	*s = json_object_new_string(msg);

	if (json_object_array_add(arr, s) != 0)
		json_object_put(s);
}

static int
has_scheme(const char *s, const char *const *schemes, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strncmp(s, schemes[i], strlen(schemes[i])) == 0)
			return 1;
	return 0;
}

/* Checks beyond the table's syntax: URL schemes and the tenants file. */
static void
check_values(const struct nf_config *cfg, struct json_object *arr)
{
	static const char *const stores[] = { "sqlite://", "mongodb://", "mongodb+srv://" };
	static const char *const redis[] = { "redis://", "unix://" };
	struct nf_tenants	*t = NULL;
	struct nf_error		 e;
	char			*msg;

	if (!has_scheme(cfg->store_uri, stores, NF_ARRAY_LEN(stores)))
		problem(arr, "STORE_URI must start with sqlite://, mongodb:// or mongodb+srv://");
	if (!has_scheme(cfg->redis_url, redis, NF_ARRAY_LEN(redis)))
		problem(arr, "REDIS_URL must start with redis:// or unix://");
	if (cfg->public_url[0] != '\0' && strncmp(cfg->public_url, "https://", 8) != 0 &&
	    strncmp(cfg->public_url, "http://", 7) != 0)
		problem(arr, "PUBLIC_URL must be an http(s) URL");
	if (cfg->request_timeout_ms >= NF_NGINX_READ_TIMEOUT_MS)
		problem(arr, "NONFLEX_REQUEST_TIMEOUT_MS should stay below nginx's "
		    "fastcgi_read_timeout (30 s), or nginx gives up first and the "
		    "stuck worker is never replaced");
	if (cfg->spool_dir[0] != '\0' && (cfg->spool_dir[0] != '/' ||
	    (access(cfg->spool_dir, W_OK | X_OK) != 0 && errno != ENOENT)))
		problem(arr, "NONFLEX_SPOOL_DIR must be an absolute path to a directory this "
		    "user can write (the workers and nonflex-jobs share it)");
	if (cfg->jwt_secret[0] == '\0')
		problem(arr, "JWT_SECRET is not set (agent login will not work)");
	else if (strlen(cfg->jwt_secret) < 32)
		problem(arr, "JWT_SECRET is shorter than 32 characters");
	else if (!nf_config_jwt_secret_ok(cfg->jwt_secret))
		problem(arr, "JWT_SECRET looks like a placeholder, not 32 random bytes");
	nf_error_clear(&e);
	if (nf_tenants_load(cfg->tenants_file, &t, &e) != NF_OK) {
		msg = nf_xasprintf("TENANTS_FILE %s: %s", cfg->tenants_file, e.message);
		problem(arr, msg);
		free(msg);
	} else if (nf_tenant_find(t, cfg->default_tenant) == NULL) {
		msg = nf_xasprintf("DEFAULT_TENANT %s is not in %s", cfg->default_tenant,
		    cfg->tenants_file);
		problem(arr, msg);
		free(msg);
	}
	nf_tenants_free(t);
}

struct json_object *
nf_config_problems(void)
{
	struct json_object	*arr = json_object_new_array();
	struct nf_config	 cfg;
	struct nf_error		 e;
	size_t			 i;

	/* Report every bad value, going on with its default to check the rest. */
	memset(&cfg, 0, sizeof(cfg));
	for (i = 0; i < NF_ARRAY_LEN(settings); i++) {
		nf_error_clear(&e);
		if (apply(&cfg, &settings[i], &e) != NF_OK) {
			problem(arr, e.message);
			apply_value(&cfg, &settings[i], NULL, NULL);
		}
	}
	if (!nf_valid_slug(cfg.default_tenant))
		problem(arr, "DEFAULT_TENANT must be a tenant id ([a-z0-9-]{1,63})");
	check_values(&cfg, arr);
	nf_config_cleanup(&cfg);
	return arr;
}

size_t
nf_config_check(FILE *out)
{
	struct json_object	*arr = nf_config_problems();
	size_t			 i, n = json_object_array_length(arr);

	for (i = 0; i < n; i++)
		fprintf(out, "%s\n", json_object_get_string(json_object_array_get_idx(arr, i)));
	json_object_put(arr);
	return n;
}
