/*
 * spool.c - see spool.h.  Writers are the FastCGI workers (one file each),
 * the reader is nonflex-jobs' spool drainer.
 *
 * SPDX-License-Identifier: MIT
 */
#include "autoconfig.h"

#include <sys/types.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "log.h"
#include "spool.h"

#define DEAD		"dead.log"
#define DRAIN_LOCK	".drain"
#define POS_WIDTH	20
#define READ_CHUNK	(256 * 1024)

struct nf_spool {
	char	*dir;
	int	 dirfd;
	/* writer */
	int	 fd;            /* this process's file, -1 until the first append */
	pid_t	 pid;           /* who opened fd: a forked child starts its own */
	off_t	 size;
	unsigned seq;
	char	 tag[9];        /* random, so a reused pid never meets its old files */
	/* reader */
	int	 drain_fd;      /* the held ".drain" lock, -1 until taken */
	int	 watch_fd;
};

static enum nf_err
unavailable(struct nf_error *e, const char *what)
{
	int	 saved = errno;

	nf_error("spool: %s: %s", what, strerror(saved));
	return nf_error_set(e, NF_EUNAVAIL, "spool_unavailable", NULL,
	    "The inbound spool is unavailable");
}

enum nf_err
nf_spool_open(const char *dir, struct nf_spool **out, struct nf_error *e)
{
	struct nf_spool	*s;

	*out = NULL;
	if (dir == NULL || *dir == '\0')
		return nf_error_set(e, NF_EUNAVAIL, "spool_unavailable", NULL,
		    "No spool directory is configured");
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return unavailable(e, "mkdir");
	s = nf_xcalloc(1, sizeof(*s));
	s->dir = nf_xstrdup(dir);
	s->fd = s->drain_fd = s->watch_fd = -1;
	if ((s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		nf_spool_free(s);
		return unavailable(e, "open");
	}
	*out = s;
	return NF_OK;
}

void
nf_spool_free(struct nf_spool *s)
{
	if (s == NULL)
		return;
	if (s->fd >= 0 && s->pid == getpid())
		close(s->fd);
	if (s->drain_fd >= 0)
		close(s->drain_fd);
	if (s->watch_fd >= 0)
		close(s->watch_fd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->dir);
	free(s);
}

/* ---- writer --------------------------------------------------------------- */

/* A new file of ours, locked before it gets its real name. */
static int
writer_open(struct nf_spool *s)
{
	char	 tmp[96], name[96];
	int	 fd;

	if (s->pid != getpid()) {
		s->pid = getpid();
		s->seq = 0;
		nf_random_hex(s->tag, 4);
	}
	s->seq++;
	snprintf(tmp, sizeof(tmp), ".t-%ld-%s-%u", (long)s->pid, s->tag, s->seq);
	snprintf(name, sizeof(name), "w-%ld-%s-%06u.log", (long)s->pid, s->tag, s->seq);
	if ((fd = openat(s->dirfd, tmp, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) < 0)
		return -1;
	if (flock(fd, LOCK_EX) != 0 || renameat(s->dirfd, tmp, s->dirfd, name) != 0) {
		unlinkat(s->dirfd, tmp, 0);
		close(fd);
		return -1;
	}
	s->fd = fd;
	s->size = 0;
	return 0;
}

static void
writer_close(struct nf_spool *s)
{
	if (s->fd >= 0 && s->pid == getpid())
		close(s->fd);   /* releases the lock: the drainer may finish it */
	s->fd = -1;
}

enum nf_err
nf_spool_append(struct nf_spool *s, struct json_object *rec, struct nf_error *e)
{
	const char	*js;
	char		*line;
	size_t		 len, off = 0;
	ssize_t		 n;

	js = json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN);
	if ((len = strlen(js)) > NF_SPOOL_RECORD_MAX)
		return nf_error_set(e, NF_ETOOBIG, "too_large", NULL, "The event is too large");
	if (s->fd >= 0 && (s->pid != getpid() || s->size >= NF_SPOOL_ROTATE_BYTES))
		writer_close(s);
	if (s->fd < 0 && writer_open(s) != 0)
		return unavailable(e, "create");
	line = nf_xasprintf("%s\n", js);
	len++;
	while (off < len) {
		if ((n = write(s->fd, line + off, len - off)) < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			enum nf_err rc = unavailable(e, "write");

			/* Cut the partial line off; a file we cannot repair is left
			 * behind (the drainer drops its torn tail) for a new one. */
			if (off > 0 && ftruncate(s->fd, s->size) != 0)
				writer_close(s);
			free(line);
			return rc;
		}
		off += (size_t)n;
	}
	free(line);
	s->size += (off_t)len;
	return NF_OK;
}

/* ---- reader --------------------------------------------------------------- */

struct entry {
	char	 name[96];
	time_t	 mtime;
};

static int
entry_cmp(const void *a, const void *b)
{
	const struct entry	*x = a, *y = b;

	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int
is_record_file(const char *name)
{
	size_t	 n = strlen(name);

	return strncmp(name, "w-", 2) == 0 && n > 6 && n < 96 &&
	    strcmp(name + n - 4, ".log") == 0;
}

/* The record files, oldest change first; *n entries in a new array. */
static int
list_files(struct nf_spool *s, struct entry **out, size_t *n)
{
	struct dirent	*d;
	struct stat	 st;
	struct entry	*v = NULL;
	size_t		 cap = 0;
	DIR		*dp;
	int		 fd;

	*out = NULL;
	*n = 0;
	if ((fd = dup(s->dirfd)) < 0 || (dp = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	rewinddir(dp);
	while ((d = readdir(dp)) != NULL) {
		if (!is_record_file(d->d_name) || fstatat(s->dirfd, d->d_name, &st, 0) != 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			v = nf_xrealloc(v, cap * sizeof(*v));
		}
		snprintf(v[*n].name, sizeof(v[*n].name), "%s", d->d_name);
		v[*n].mtime = st.st_mtime;
		(*n)++;
	}
	closedir(dp);
	if (*n > 1)
		qsort(v, *n, sizeof(*v), entry_cmp);
	*out = v;
	return 0;
}

static off_t
pos_read(struct nf_spool *s, const char *name)
{
	char	 pname[112], buf[POS_WIDTH + 1];
	ssize_t	 n;
	int	 fd;

	snprintf(pname, sizeof(pname), "%s.pos", name);
	if ((fd = openat(s->dirfd, pname, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, POS_WIDTH);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return (off_t)strtoll(buf, NULL, 10);
}

static int
pos_write(struct nf_spool *s, const char *name, off_t pos)
{
	char	 pname[112], buf[POS_WIDTH + 1];
	int	 fd, ok;

	snprintf(pname, sizeof(pname), "%s.pos", name);
	if ((fd = openat(s->dirfd, pname, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return -1;
	snprintf(buf, sizeof(buf), "%0*lld", POS_WIDTH, (long long)pos);
	ok = pwrite(fd, buf, POS_WIDTH, 0) == POS_WIDTH;
	close(fd);
	return ok ? 0 : -1;
}

/* dead.log gets {at, error, record}: the line kept as text, never logged. */
static void
dead_letter(struct nf_spool *s, const char *line, size_t len, const char *why)
{
	struct json_object	*o = json_object_new_object();
	char			 at[25];
	const char		*js;
	int			 fd;

	nf_iso8601(nf_now_ms(), at);
	json_object_object_add(o, "at", json_object_new_string(at));
	json_object_object_add(o, "error", json_object_new_string(why));
	json_object_object_add(o, "record", json_object_new_string_len(line, (int)len));
	js = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if ((fd = openat(s->dirfd, DEAD, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0 ||
	    write(fd, js, strlen(js)) < 0 || write(fd, "\n", 1) < 0)
		nf_error("spool: cannot write %s: %s", DEAD, strerror(errno));
	if (fd >= 0)
		close(fd);
	nf_warn("spool: a record was dead-lettered: %s", why);
	json_object_put(o);
}

/* A record's parse, or NULL with the reason when it is not a JSON object. */
static struct json_object *
parse_line(const char *line, size_t len)
{
	struct json_tokener	*tok = json_tokener_new();
	struct json_object	*rec;

	rec = json_tokener_parse_ex(tok, line, (int)len);
	if (rec != NULL && (json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(rec, json_type_object))) {
		json_object_put(rec);
		rec = NULL;
	}
	json_tokener_free(tok);
	return rec;
}

/*
 * One file being read: its next complete record (head), parsed, with the
 * time it carries ("at"), so the drain can take the records of all files
 * in the order they were received.
 */
struct cursor {
	const char		*name;
	int			 fd;
	off_t			 pos;           /* of buf[0] in the file */
	char			*buf;
	size_t			 have;
	int			 eof;           /* nothing more to read for now */
	size_t			 len;           /* head line's length, without its newline */
	struct json_object	*rec;           /* head record, NULL if malformed */
	int64_t			 at;
	int			 head;          /* 1 when buf holds a complete line */
};

/* Make c->head describe the next complete line, reading as needed. */
static int
cursor_fill(struct nf_spool *s, struct cursor *c)
{
	struct json_object	*v;
	char			*nl;
	ssize_t			 n;

	if (c->head)
		return 0;
	for (;;) {
		if ((nl = memchr(c->buf, '\n', c->have)) != NULL)
			break;
		if (c->have == READ_CHUNK) {    /* no newline in it: never a record */
			dead_letter(s, c->buf, 64, "a line longer than the read buffer");
			c->pos += (off_t)c->have;
			c->have = 0;
			pos_write(s, c->name, c->pos);
		}
		if (c->eof)
			return 0;
		if ((n = pread(c->fd, c->buf + c->have, READ_CHUNK - c->have,
		    c->pos + (off_t)c->have)) < 0)
			return -1;
		if (n == 0) {
			c->eof = 1;
			return 0;
		}
		c->have += (size_t)n;
	}
	c->len = (size_t)(nl - c->buf);
	c->rec = parse_line(c->buf, c->len);
	c->at = c->rec != NULL && json_object_object_get_ex(c->rec, "at", &v) ?
	    json_object_get_int64(v) : 0;
	c->head = 1;
	return 0;
}

/* The head was handled: step over it and save the position. */
static void
cursor_next(struct nf_spool *s, struct cursor *c)
{
	json_object_put(c->rec);
	c->rec = NULL;
	memmove(c->buf, c->buf + c->len + 1, c->have - c->len - 1);
	c->have -= c->len + 1;
	c->pos += (off_t)c->len + 1;
	c->head = 0;
	pos_write(s, c->name, c->pos);
}

/*
 * Count a try of the record at pos in "<name>.try" ("<pos> <tries>"), kept
 * across drainer restarts; returns the tries before this one.  A record
 * that kills the drainer is seen here again after the restart.
 */
static int
try_mark(struct nf_spool *s, const char *name, off_t pos)
{
	char		 tname[112], buf[64];
	long long	 p = -1;
	ssize_t		 n;
	int		 fd, tries = 0;

	snprintf(tname, sizeof(tname), "%s.try", name);
	if ((fd = openat(s->dirfd, tname, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return 0;
	if ((n = pread(fd, buf, sizeof(buf) - 1, 0)) > 0) {
		buf[n] = '\0';
		if (sscanf(buf, "%lld %d", &p, &tries) != 2 || p != (long long)pos)
			tries = 0;
	}
	n = snprintf(buf, sizeof(buf), "%020lld %06d", (long long)pos, tries + 1);
	if (pwrite(fd, buf, (size_t)n, 0) != n)
		nf_warn("spool: cannot count a try in %s", tname);
	close(fd);
	return tries;
}

/* Hand c's head to fn: NF_OK when handled (done or dead-lettered). */
static enum nf_err
cursor_handle(struct nf_spool *s, struct cursor *c, nf_spool_fn fn, void *arg,
    struct nf_error *e)
{
	enum nf_err	 rc;

	if (c->rec == NULL) {
		dead_letter(s, c->buf, c->len, "not a JSON object");
		return NF_OK;
	}
	if (try_mark(s, c->name, c->pos) >= NF_SPOOL_TRIES_MAX) {
		dead_letter(s, c->buf, c->len, "the drainer died while handling it, "
		    "too many times");
		return NF_OK;
	}
	nf_error_clear(e);
	if ((rc = fn(c->rec, arg, e)) == NF_EINVAL) {
		dead_letter(s, c->buf, c->len, e->message[0] ? e->message : "invalid record");
		nf_error_clear(e);
		rc = NF_OK;
	}
	return rc;
}

static void
remove_file(struct nf_spool *s, const char *name)
{
	char	 pname[112];

	snprintf(pname, sizeof(pname), "%s.pos", name);
	unlinkat(s->dirfd, name, 0);
	unlinkat(s->dirfd, pname, 0);
	snprintf(pname, sizeof(pname), "%s.try", name);
	unlinkat(s->dirfd, pname, 0);
}

/*
 * A file read to its end whose writer is gone (we can lock it) gets no
 * more records: remove it.  Bytes after the last newline are a record
 * whose write never completed (never acknowledged): dropped.
 */
static void
cursor_finish(struct nf_spool *s, struct cursor *c)
{
	struct stat	 st;

	if (c->head || flock(c->fd, LOCK_EX | LOCK_NB) != 0 || fstat(c->fd, &st) != 0)
		return;
	if (st.st_size > c->pos + (off_t)c->have)
		return;         /* written to before it ended: the next drain */
	if (c->have > 0)
		nf_warn("spool: %s ends in %zu bytes of an unfinished record (never "
		    "acknowledged): dropped", c->name, c->have);
	remove_file(s, c->name);
}

/* Take the directory's drainer lock once and keep it; 0 when another has it. */
static int
drainer_lock(struct nf_spool *s)
{
	int	 fd;

	if (s->drain_fd >= 0)
		return 1;
	if ((fd = openat(s->dirfd, DRAIN_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return 0;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		return 0;
	}
	s->drain_fd = fd;
	return 1;
}

/* Open a cursor on each file; *n of them. */
static struct cursor *
cursors_open(struct nf_spool *s, struct entry *v, size_t nv, size_t *n)
{
	struct cursor	*c = nf_xcalloc(nv ? nv : 1, sizeof(*c));
	size_t		 i;
	int		 fd;

	*n = 0;
	for (i = 0; i < nv; i++) {
		/* (a file this process writes to is locked through another open
		 * file description: cursor_finish never takes it for ended) */
		if ((fd = openat(s->dirfd, v[i].name, O_RDONLY | O_CLOEXEC)) < 0)
			continue;       /* removed meanwhile */
		c[*n].name = v[i].name;
		c[*n].fd = fd;
		c[*n].pos = pos_read(s, v[i].name);
		c[*n].buf = nf_xmalloc(READ_CHUNK);
		(*n)++;
	}
	return c;
}

static void
cursors_close(struct cursor *c, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		json_object_put(c[i].rec);
		free(c[i].buf);
		close(c[i].fd);
	}
	free(c);
}

enum nf_err
nf_spool_drain(struct nf_spool *s, nf_spool_fn fn, void *arg, int max, int *done,
    struct nf_error *e)
{
	struct cursor	*c, *best;
	struct entry	*v;
	enum nf_err	 rc = NF_OK;
	size_t		 i, n, nv;

	*done = 0;
	if (!drainer_lock(s))
		return NF_OK;
	if (list_files(s, &v, &nv) != 0)
		return unavailable(e, "list");
	c = cursors_open(s, v, nv, &n);
	while (*done < max) {
		best = NULL;
		for (i = 0; i < n; i++) {
			if (cursor_fill(s, &c[i]) != 0) {
				rc = unavailable(e, "read");
				goto out;
			}
			if (c[i].head && (best == NULL || c[i].at < best->at))
				best = &c[i];
		}
		if (best == NULL)
			break;
		if ((rc = cursor_handle(s, best, fn, arg, e)) != NF_OK)
			goto out;
		cursor_next(s, best);
		(*done)++;
	}
	if (*done < max)
		for (i = 0; i < n; i++)
			cursor_finish(s, &c[i]);
out:
	cursors_close(c, n);
	free(v);
	return rc;
}

int
nf_spool_watch_fd(struct nf_spool *s)
{
	if (s->watch_fd >= 0)
		return s->watch_fd;
	if ((s->watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
		return -1;
	if (inotify_add_watch(s->watch_fd, s->dir, IN_MODIFY | IN_CLOSE_WRITE |
	    IN_MOVED_TO | IN_CREATE) < 0) {
		close(s->watch_fd);
		s->watch_fd = -1;
	}
	return s->watch_fd;
}

void
nf_spool_watch_clear(struct nf_spool *s)
{
	char	 buf[4096];

	if (s->watch_fd < 0)
		return;
	while (read(s->watch_fd, buf, sizeof(buf)) > 0)
		;
}

static int64_t
dead_count(struct nf_spool *s)
{
	char	 buf[8192];
	ssize_t	 n, i;
	int64_t	 lines = 0;
	int	 fd;

	if ((fd = openat(s->dirfd, DEAD, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (i = 0; i < n; i++)
			lines += buf[i] == '\n';
	close(fd);
	return lines;
}

enum nf_err
nf_spool_backlog(struct nf_spool *s, int64_t *bytes, int64_t *oldest_ms, int64_t *dead,
    struct nf_error *e)
{
	struct entry	*v;
	struct stat	 st;
	size_t		 i, n;
	int64_t		 oldest = 0, mtime;

	*bytes = 0;
	*oldest_ms = 0;
	if (list_files(s, &v, &n) != 0)
		return unavailable(e, "list");
	for (i = 0; i < n; i++) {
		off_t	 pos = pos_read(s, v[i].name);

		if (fstatat(s->dirfd, v[i].name, &st, 0) != 0 || st.st_size <= pos)
			continue;
		*bytes += st.st_size - pos;
		mtime = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
		if (oldest == 0 || mtime < oldest)
			oldest = mtime;
	}
	free(v);
	if (oldest > 0)
		*oldest_ms = nf_now_ms() > oldest ? nf_now_ms() - oldest : 0;
	*dead = dead_count(s);
	return NF_OK;
}
