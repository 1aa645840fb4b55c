/*
 * t_spool.c - the inbound spool (spool.c): records appended by writer
 * processes come out of the drain once each, in the order they were
 * received across files, with their files removed once their writers are
 * gone; failures keep the position, hopeless records are dead-lettered, a
 * record that kills the drainer is dead after NF_SPOOL_TRIES_MAX tries, a
 * torn final line is dropped, one drainer per directory.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "json.h"
#include "nonflex.h"
#include "spool.h"
#include "testutil.h"

static char	*dir;

static void
setup(void)
{
	dir = tu_tmpdir("spool");
}

static void
teardown(void)
{
	tu_rmtree(dir);
	free(dir);
	dir = NULL;
}

static struct nf_spool *
spool(void)
{
	struct nf_spool	*s;
	struct nf_error	 e;

	ck_assert_int_eq(nf_spool_open(dir, &s, &e), NF_OK);
	return s;
}

static void
append(struct nf_spool *s, int64_t at, const char *body)
{
	struct json_object	*o = json_object_new_object();
	struct nf_error		 e;

	nf_json_add_int(o, "at", at);
	nf_json_add_str(o, "body", body);
	ck_assert_int_eq(nf_spool_append(s, o, &e), NF_OK);
	json_object_put(o);
}

/* What the drain handed over: the bodies, comma separated. */
struct seen {
	char		 bodies[4096];
	int		 calls;
	enum nf_err	 answer;        /* what fn returns */
};

static enum nf_err
collect(struct json_object *rec, void *arg, struct nf_error *e)
{
	struct seen	*sn = arg;
	const char	*b = nf_json_field_str(rec, "body");

	sn->calls++;
	if (sn->answer != NF_OK)
		return nf_error_set(e, sn->answer, "no", NULL, "refused: %s", b ? b : "?");
	if (b != NULL && strlen(b) > 64)
		return NF_OK;           /* the rotation test's bulk: counted only */
	if (sn->bodies[0] != '\0')
		strcat(sn->bodies, ",");
	strcat(sn->bodies, b != NULL ? b : "?");
	return NF_OK;
}

static int
drain(struct nf_spool *s, struct seen *sn, enum nf_err want)
{
	struct nf_error	 e;
	int		 done = -1;

	ck_assert_int_eq(nf_spool_drain(s, collect, sn, 1000, &done, &e), want);
	return done;
}

/* Files named like the writers' in dir. */
static int
record_files(void)
{
	struct dirent	*d;
	DIR		*dp = opendir(dir);
	int		 n = 0;

	ck_assert_ptr_nonnull(dp);
	while ((d = readdir(dp)) != NULL)
		n += strncmp(d->d_name, "w-", 2) == 0 &&
		    strcmp(d->d_name + strlen(d->d_name) - 4, ".log") == 0;
	closedir(dp);
	return n;
}

/*
 * A writer process: appends (at, body) pairs; with hold, it then stays
 * until *hold is closed (its file stays locked), else it exits now.
 */
static pid_t
child_writes(const int64_t *at, const char *const *body, size_t n, int *hold)
{
	int	 done[2], wait_fd[2], st;
	char	 c;
	pid_t	 pid;
	size_t	 i;

	ck_assert_int_eq(pipe(done), 0);
	ck_assert_int_eq(pipe(wait_fd), 0);
	ck_assert_int_ge(pid = fork(), 0);
	if (pid == 0) {
		struct nf_spool	*s;
		struct nf_error	 e;

		close(done[0]);
		close(wait_fd[1]);
		if (nf_spool_open(dir, &s, &e) != NF_OK)
			_exit(1);
		for (i = 0; i < n; i++)
			append(s, at[i], body[i]);
		if (write(done[1], "w", 1) != 1)
			_exit(1);
		if (hold != NULL && read(wait_fd[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(done[1]);
	close(wait_fd[0]);
	ck_assert_int_eq(read(done[0], &c, 1), 1);     /* all written */
	close(done[0]);
	if (hold != NULL) {
		*hold = wait_fd[1];
		return pid;
	}
	close(wait_fd[1]);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	return pid;
}

START_TEST(once_each_in_order)
{
	static const int64_t	 a1[] = { 10, 30, 50 }, a2[] = { 20, 40 };
	static const char *const b1[] = { "a", "c", "e" }, *const b2[] = { "b", "d" };
	struct nf_spool		*s = spool();
	struct seen		 sn;
	int64_t			 bytes, oldest, dead;
	struct nf_error		 e;

	child_writes(a1, b1, 3, NULL);
	child_writes(a2, b2, 2, NULL);
	ck_assert_int_eq(nf_spool_backlog(s, &bytes, &oldest, &dead, &e), NF_OK);
	ck_assert_int_gt(bytes, 0);
	ck_assert_int_eq(dead, 0);
	memset(&sn, 0, sizeof(sn));
	ck_assert_int_eq(drain(s, &sn, NF_OK), 5);
	/* Across the two writers' files, by the time each was received. */
	ck_assert_str_eq(sn.bodies, "a,b,c,d,e");
	/* Their writers are gone: read to the end, the files are removed. */
	ck_assert_int_eq(record_files(), 0);
	ck_assert_int_eq(nf_spool_backlog(s, &bytes, &oldest, &dead, &e), NF_OK);
	ck_assert_int_eq(bytes, 0);
	memset(&sn, 0, sizeof(sn));
	ck_assert_int_eq(drain(s, &sn, NF_OK), 0);
	ck_assert_int_eq(sn.calls, 0);
	nf_spool_free(s);
}
END_TEST

START_TEST(live_writer_file_stays)
{
	static const int64_t	 at[] = { 1, 2 };
	static const char *const body[] = { "x", "y" };
	struct nf_spool		*s = spool();
	struct seen		 sn;

	int			 hold;
	pid_t			 pid;

	/* The writer lives on: its file is drained, not removed. */
	pid = child_writes(at, body, 2, &hold);
	memset(&sn, 0, sizeof(sn));
	ck_assert_int_eq(drain(s, &sn, NF_OK), 2);
	ck_assert_str_eq(sn.bodies, "x,y");
	ck_assert_int_eq(record_files(), 1);
	close(hold);                    /* now it exits */
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	memset(&sn, 0, sizeof(sn));
	ck_assert_int_eq(drain(s, &sn, NF_OK), 0);
	ck_assert_int_eq(record_files(), 0);
	nf_spool_free(s);
}
END_TEST

START_TEST(failure_keeps_position)
{
	struct nf_spool	*w = spool(), *s = spool();
	struct seen	 sn;

	append(w, 1, "one");
	append(w, 2, "two");
	nf_spool_free(w);
	memset(&sn, 0, sizeof(sn));
	sn.answer = NF_EUNAVAIL;        /* the store is down */
	ck_assert_int_eq(drain(s, &sn, NF_EUNAVAIL), 0);
	ck_assert_int_eq(sn.calls, 1);
	ck_assert_int_eq(record_files(), 1);
	sn.answer = NF_OK;
	sn.calls = 0;
	ck_assert_int_eq(drain(s, &sn, NF_OK), 2);
	ck_assert_str_eq(sn.bodies, "one,two");
	ck_assert_int_eq(record_files(), 0);
	nf_spool_free(s);
}
END_TEST

START_TEST(position_survives_a_new_drainer)
{
	struct nf_spool	*w = spool(), *s = spool();
	struct nf_error	 e;
	struct seen	 sn;
	int		 done;

	append(w, 1, "one");
	append(w, 2, "two");
	append(w, 3, "three");
	nf_spool_free(w);
	memset(&sn, 0, sizeof(sn));
	ck_assert_int_eq(nf_spool_drain(s, collect, &sn, 2, &done, &e), NF_OK);
	ck_assert_int_eq(done, 2);
	nf_spool_free(s);               /* the drainer stops (or dies) */
	s = spool();
	ck_assert_int_eq(drain(s, &sn, NF_OK), 1);
	ck_assert_str_eq(sn.bodies, "one,two,three");
	nf_spool_free(s);
}
END_TEST

static char *
dead_text(void)
{
	char	*path = nf_xasprintf("%s/dead.log", dir), *buf = nf_xcalloc(1, 8192);
	FILE	*f = fopen(path, "r");

	if (f != NULL) {
		ck_assert_uint_gt(fread(buf, 1, 8191, f), 0);
		fclose(f);
	}
	free(path);
	return buf;
}

START_TEST(hopeless_records_are_dead_lettered)
{
	struct nf_spool	*w = spool(), *s = spool();
	struct seen	 sn;
	int64_t		 bytes, oldest, dead;
	struct nf_error	 e;
	char		*path, *text;
	int		 fd;

	append(w, 1, "refused");
	nf_spool_free(w);
	/* A line that is no JSON object, written by hand after it. */
	path = nf_xasprintf("%s/w-1-00000000-000001.log", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "[1,2]\n", 6), 6);
	close(fd);
	free(path);
	memset(&sn, 0, sizeof(sn));
	sn.answer = NF_EINVAL;          /* e.g. a tenant that no longer exists */
	ck_assert_int_eq(drain(s, &sn, NF_OK), 2);
	ck_assert_int_eq(record_files(), 0);
	ck_assert_int_eq(nf_spool_backlog(s, &bytes, &oldest, &dead, &e), NF_OK);
	ck_assert_int_eq(dead, 2);
	text = dead_text();
	ck_assert_ptr_nonnull(strstr(text, "refused: refused"));
	ck_assert_ptr_nonnull(strstr(text, "not a JSON object"));
	ck_assert_ptr_nonnull(strstr(text, "\"record\":\"[1,2]\""));
	free(text);
	nf_spool_free(s);
}
END_TEST

static enum nf_err
crash(struct json_object *rec, void *arg, struct nf_error *e)
{
	(void)rec; (void)arg; (void)e;
	_exit(3);
}

START_TEST(a_record_that_kills_the_drainer_dies)
{
	struct nf_spool	*w = spool(), *s;
	struct seen	 sn;
	char		*text;
	int		 i, st;

	append(w, 1, "poison");
	append(w, 2, "fine");
	nf_spool_free(w);
	for (i = 0; i < NF_SPOOL_TRIES_MAX; i++) {
		pid_t	 pid = fork();

		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			struct nf_error	 e;
			int		 done;

			s = spool();
			nf_spool_drain(s, crash, NULL, 10, &done, &e);
			_exit(0);
		}
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		ck_assert_int_eq(WEXITSTATUS(st), 3);
	}
	s = spool();
	memset(&sn, 0, sizeof(sn));
	ck_assert_int_eq(drain(s, &sn, NF_OK), 2);
	ck_assert_str_eq(sn.bodies, "fine");
	text = dead_text();
	ck_assert_ptr_nonnull(strstr(text, "poison"));
	ck_assert_ptr_nonnull(strstr(text, "died while handling it"));
	free(text);
	nf_spool_free(s);
}
END_TEST

START_TEST(torn_tail_is_dropped)
{
	struct nf_spool	*s = spool();
	struct seen	 sn;
	char		*path;
	int		 fd;

	/* A writer died in the middle of its second record. */
	path = nf_xasprintf("%s/w-2-00000000-000001.log", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "{\"at\":1,\"body\":\"whole\"}\n{\"at\":2,\"bo", 36), 36);
	close(fd);
	free(path);
	memset(&sn, 0, sizeof(sn));
	ck_assert_int_eq(drain(s, &sn, NF_OK), 1);
	ck_assert_str_eq(sn.bodies, "whole");
	ck_assert_int_eq(record_files(), 0);
	nf_spool_free(s);
}
END_TEST

START_TEST(rotation_and_limits)
{
	struct nf_spool		*w = spool(), *s = spool();
	struct json_object	*o;
	struct nf_error		 e;
	struct seen		 sn;
	char			*big = nf_xmalloc(NF_SPOOL_RECORD_MAX + 2);
	int			 i, n = 0;

	/* Too large: refused, nothing written. */
	memset(big, 'x', NF_SPOOL_RECORD_MAX + 1);
	big[NF_SPOOL_RECORD_MAX + 1] = '\0';
	o = json_object_new_object();
	nf_json_add_str(o, "body", big);
	ck_assert_int_eq(nf_spool_append(w, o, &e), NF_ETOOBIG);
	json_object_put(o);
	/* Past NF_SPOOL_ROTATE_BYTES the writer starts a new file. */
	big[NF_SPOOL_RECORD_MAX / 2] = '\0';
	for (i = 0; i < 2 * NF_SPOOL_ROTATE_BYTES / (NF_SPOOL_RECORD_MAX / 2) + 1; i++) {
		o = json_object_new_object();
		nf_json_add_int(o, "at", i);
		nf_json_add_str(o, "body", big);
		ck_assert_int_eq(nf_spool_append(w, o, &e), NF_OK);
		json_object_put(o);
		n++;
	}
	ck_assert_int_ge(record_files(), 3);
	memset(&sn, 0, sizeof(sn));
	/* The rotated files are finished and go; the live one stays. */
	ck_assert_int_eq(drain(s, &sn, NF_OK), n);
	ck_assert_int_eq(record_files(), 1);
	nf_spool_free(w);
	ck_assert_int_eq(drain(s, &sn, NF_OK), 0);
	ck_assert_int_eq(record_files(), 0);
	free(big);
	nf_spool_free(s);
}
END_TEST

START_TEST(one_drainer_per_directory)
{
	struct nf_spool	*w = spool(), *first = spool(), *second = spool();
	struct seen	 sn;

	append(w, 1, "only");
	nf_spool_free(w);
	memset(&sn, 0, sizeof(sn));
	ck_assert_int_eq(drain(first, &sn, NF_OK), 1);
	append(w = spool(), 2, "later");
	nf_spool_free(w);
	/* first holds the directory: second gets nothing. */
	ck_assert_int_eq(drain(second, &sn, NF_OK), 0);
	nf_spool_free(first);
	ck_assert_int_eq(drain(second, &sn, NF_OK), 1);
	ck_assert_str_eq(sn.bodies, "only,later");
	nf_spool_free(second);
}
END_TEST

START_TEST(unusable_directory)
{
	struct nf_spool	*s = NULL;
	struct nf_error	 e;
	char		*file = nf_xasprintf("%s/plain", dir);
	FILE		*f = fopen(file, "w");

	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(nf_spool_open(file, &s, &e), NF_EUNAVAIL);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(nf_spool_open("", &s, &e), NF_EUNAVAIL);
	free(file);
}
END_TEST

int
main(void)
{
	TCase	*tc;
	Suite	*s = tu_suite("spool", &tc);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, once_each_in_order);
	tcase_add_test(tc, live_writer_file_stays);
	tcase_add_test(tc, failure_keeps_position);
	tcase_add_test(tc, position_survives_a_new_drainer);
	tcase_add_test(tc, hopeless_records_are_dead_lettered);
	tcase_add_test(tc, a_record_that_kills_the_drainer_dies);
	tcase_add_test(tc, torn_tail_is_dropped);
	tcase_add_test(tc, rotation_and_limits);
	tcase_add_test(tc, one_drainer_per_directory);
	tcase_add_test(tc, unusable_directory);
	return tu_run(s);
}
