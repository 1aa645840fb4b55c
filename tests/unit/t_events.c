/*
 * t_events.c - tests for events.c and the "event.publish" job of
 * nonflex-jobs against a private nginx with nchan on a unix socket (and a
 * private redis-server for the job runner): channel naming, publish and
 * read back through an nchan subscriber, bad input, publisher down.
 * Skips (77) when nginx or its nchan module is not installed.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <sys/types.h>
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "nonflex.h"
#include "events.h"
#include "jobs.h"
#include "kv.h"
#include "testutil.h"

#define NGINX	"/usr/sbin/nginx"
#define NCHAN	"/usr/lib/nginx/modules/ngx_nchan_module.so"

static char	*dir, *sock, *redis_url;
static pid_t	 nginx_pid = -1;

static void
nginx_start(void)
{
	char	*conf, *err;
	FILE	*f;
	int	 i;

	conf = nf_xasprintf("%s/nginx.conf", dir);
	err = nf_xasprintf("%s/error.log", dir);
	if ((f = fopen(conf, "w")) == NULL)
		abort();
	fprintf(f, "load_module %s;\npid %s/nginx.pid;\nerror_log %s;\n"
	    "daemon off;\nevents { worker_connections 64; }\n"
	    "http {\n access_log off;\n client_body_temp_path %s;\n"
	    " server {\n  listen unix:%s;\n"
	    "  location = /ping { return 204; }\n"
	    "  location ~ ^/pub/([A-Za-z0-9._-]+)$ { nchan_publisher; "
	    "nchan_channel_id $1; }\n"
	    "  location ~ ^/sub/([A-Za-z0-9._-]+)$ { nchan_subscriber longpoll; "
	    "nchan_channel_id $1; nchan_subscriber_first_message oldest; }\n"
	    " }\n}\n", NCHAN, dir, err, dir, sock);
	fclose(f);
	if ((nginx_pid = fork()) == 0) {
		execl(NGINX, "nginx", "-p", dir, "-e", err, "-c", conf, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 100 && access(sock, F_OK) != 0; i++)
		usleep(20 * 1000);
	free(conf);
	free(err);
}

static void
nginx_stop(void)
{
	if (nginx_pid <= 0)
		return;
	kill(nginx_pid, SIGTERM);
	waitpid(nginx_pid, NULL, 0);
	nginx_pid = -1;
	unlink(sock);
}

static size_t
collect(char *p, size_t sz, size_t n, void *u)
{
	struct json_object	**out = u;
	char			 *s = nf_xstrndup(p, sz * n);

	json_object_put(*out);
	*out = json_tokener_parse(s);
	free(s);
	return sz * n;
}

/* The oldest message of a channel, read back through nchan's subscriber. */
static struct json_object *
read_back(const char *chan)
{
	struct json_object	*o = NULL;
	CURL			*c = curl_easy_init();
	char			*url = nf_xasprintf("http://localhost/sub/%s", chan);

	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &o);
	curl_easy_perform(c);
	curl_easy_cleanup(c);
	free(url);
	return o;
}

static const char *
get_str(struct json_object *o, const char *k)
{
	struct json_object	*v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

START_TEST(t_channel)
{
	static const char *good[] = { "queue", "agent_42", "a-b", "x" };
	static const char *bad[] = { "", "Queue", "a.b", "a b", "a/b", "../x", "\n" };
	char	*c;
	size_t	 i;

	for (i = 0; i < NF_ARRAY_LEN(good); i++)
		ck_assert_msg(nf_events_valid_topic(good[i]), "%s", good[i]);
	for (i = 0; i < NF_ARRAY_LEN(bad); i++)
		ck_assert_msg(!nf_events_valid_topic(bad[i]), "%s", bad[i]);
	ck_assert(!nf_events_valid_topic(NULL));
	ck_assert(!nf_events_valid_topic(
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	c = nf_events_channel("tenant1", "queue");
	ck_assert_str_eq(c, "tenant1.queue");
	free(c);
	ck_assert_ptr_null(nf_events_channel("Tenant1", "queue"));
	ck_assert_ptr_null(nf_events_channel("t.1", "queue"));
	ck_assert_ptr_null(nf_events_channel("t1", "q.x"));
	ck_assert_ptr_null(nf_events_channel(NULL, "q"));
}
END_TEST

START_TEST(t_publish)
{
	struct json_object	*data = json_object_new_object(), *got, *d;
	struct nf_error		 err;

	json_object_object_add(data, "id", json_object_new_string("c1\"<x>"));
	ck_assert_int_eq(nf_events_ping(&err), NF_OK);
	ck_assert_int_eq(nf_events_publish("tenant1", "queue", "conversation.updated",
	    data, &err), NF_OK);
	json_object_put(data);
	got = read_back("tenant1.queue");
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(get_str(got, "type"), "conversation.updated");
	ck_assert_uint_eq(strlen(get_str(got, "at")), 24);
	ck_assert(json_object_object_get_ex(got, "data", &d));
	ck_assert_str_eq(get_str(d, "id"), "c1\"<x>");
	json_object_put(got);
	/* another tenant's channel did not receive it */
	ck_assert_int_eq(nf_events_publish("tenant2", "other", "x", NULL, &err), NF_OK);
	got = read_back("tenant2.other");
	ck_assert_ptr_nonnull(got);
	ck_assert(json_object_object_get_ex(got, "data", &d));
	ck_assert_ptr_null(d);
	json_object_put(got);
}
END_TEST

START_TEST(t_publish_bad)
{
	struct json_object	*big = json_object_new_object();
	struct nf_error		 err;
	char			*s = nf_xmalloc(70000);

	ck_assert_int_eq(nf_events_publish("tenant1", "bad topic", "x", NULL, &err), NF_EINVAL);
	ck_assert_str_eq(err.field, "topic");
	ck_assert_int_eq(nf_events_publish("Tenant 1", "q", "x", NULL, &err), NF_EINVAL);
	ck_assert_int_eq(nf_events_publish("t1", "q", "", NULL, &err), NF_EINVAL);
	ck_assert_int_eq(nf_events_publish("t1", "q", "a\r\nb", NULL, &err), NF_EINVAL);
	ck_assert_int_eq(nf_events_publish("t1", "q", NULL, NULL, &err), NF_EINVAL);
	memset(s, 'a', 69999);
	s[69999] = '\0';
	json_object_object_add(big, "s", json_object_new_string(s));
	ck_assert_int_eq(nf_events_publish("t1", "q", "x", big, &err), NF_ETOOBIG);
	json_object_put(big);
	free(s);
}
END_TEST

/* The job runner publishes an "event.publish" job; a malformed one is dead. */
START_TEST(t_job_event_publish)
{
	struct nf_jobs_counts	 c;
	struct json_object	*p, *got;
	struct nf_kv		*kv;
	struct nf_error		 err;
	char			*cmd;

	if (redis_url == NULL)
		return;         /* no redis-server: covered by the other tests */
	ck_assert_int_eq(nf_kv_open(redis_url, 500, &kv, &err), NF_OK);
	ck_assert_int_eq(nf_kv_command(kv, NULL, &err, "FLUSHALL"), NF_OK);
	p = json_tokener_parse("{\"topic\":\"jobs\",\"type\":\"job.event\",\"data\":{\"n\":7}}");
	ck_assert_int_eq(nf_jobs_enqueue(kv, "tenant1", "event.publish", p, 0, NULL, &err),
	    NF_OK);
	json_object_put(p);
	p = json_tokener_parse("{\"type\":\"no.topic\"}");
	ck_assert_int_eq(nf_jobs_enqueue(kv, "tenant1", "event.publish", p, 0, NULL, &err),
	    NF_OK);
	json_object_put(p);
	cmd = nf_xasprintf("REDIS_URL='%s' NONFLEX_NCHAN_SOCKET='%s' NONFLEX_LOG_LEVEL=error "
	    "'%s/nonflex-jobs' --once", redis_url, sock, TOP_BUILDDIR);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	got = read_back("tenant1.jobs");
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(get_str(got, "type"), "job.event");
	json_object_put(got);
	ck_assert_int_eq(nf_jobs_counts(kv, &c, &err), NF_OK);
	ck_assert_int_eq(c.ready + c.delayed + c.processing, 0);
	ck_assert_int_eq(c.dead, 1);
	nf_kv_free(kv);
}
END_TEST

START_TEST(t_publisher_down)
{
	struct nf_error	 err;
	int64_t		 t0;

	nginx_stop();
	t0 = nf_mono_ms();
	ck_assert_int_eq(nf_events_publish("tenant1", "queue", "x", NULL, &err), NF_EUNAVAIL);
	ck_assert_int_eq(nf_events_ping(&err), NF_EUNAVAIL);
	ck_assert_int_lt(nf_mono_ms() - t0, 1000);
	nf_events_init(NULL);   /* disabled */
	ck_assert_int_eq(nf_events_publish("tenant1", "queue", "x", NULL, &err), NF_EUNAVAIL);
	ck_assert_int_eq(nf_events_ping(&err), NF_EUNAVAIL);
	nginx_start();
	nf_events_init(sock);
	ck_assert_int_eq(nf_events_ping(&err), NF_OK);
}
END_TEST

static Suite *
events_suite(void)
{
	Suite	*s = suite_create("events");
	TCase	*tc = tcase_create("core");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, t_channel);
	tcase_add_test(tc, t_publish);
	tcase_add_test(tc, t_publish_bad);
	tcase_add_test(tc, t_job_event_publish);
	tcase_add_test(tc, t_publisher_down);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	int	 rc;

	if (access(NGINX, X_OK) != 0 || access(NCHAN, R_OK) != 0)
		return 77;
	dir = tu_tmpdir("events");
	sock = nf_xasprintf("%s/nchan.sock", dir);
	nginx_start();
	if (access(sock, F_OK) != 0) {
		fprintf(stderr, "nginx did not start\n");
		nginx_stop();
		return 1;
	}
	redis_url = tu_redis_start();
	nf_events_init(sock);
	rc = tu_run_nofork(events_suite());
	nf_events_cleanup();
	nginx_stop();
	tu_rmtree(dir);
	free(dir);
	free(sock);
	free(redis_url);
	return rc;
}
