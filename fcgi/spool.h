/*
 * spool.h - the inbound spool: a directory of append-only record files
 * that lets a webhook answer as soon as its event is durable, with the
 * store's work done moments later by nonflex-jobs' spool drainer.
 *
 * DESIGN: Twilio needs a fast 2xx, and the store's single writer (SQLite)
 * holds a message's unit for most of a millisecond.  A worker instead
 * appends the validated event as one JSON line to a file of its own
 * (NONFLEX_SPOOL_DIR) with one write(2): once that returns, the record
 * survives the worker's crash exactly as a SQLite commit in WAL mode with
 * synchronous=NORMAL does (the kernel holds it; fsync is not paid per
 * record).  The drainer replays each record through the same atomic,
 * deduplicating store unit the synchronous path uses, so a record drained
 * twice (a drainer killed before saving its position) changes nothing.
 *
 * Files: "w-<pid>-<rand>-<seq>.log", created under a temporary name, locked
 * (flock LOCK_EX) and renamed into place, so a file of that name is always
 * locked by its writer until the writer rotates it (past
 * NF_SPOOL_ROTATE_BYTES) or dies.  The drainer keeps its position in
 * "<file>.pos"; a file it can lock has no writer left, so once read to its
 * end it is deleted with its position.  A final line without its newline
 * in such a file was never acknowledged (the write did not complete) and is
 * dropped.  Records that can never be processed (an unknown tenant, a
 * malformed line, one whose handling killed the drainer NF_SPOOL_TRIES_MAX
 * times, counted in "<file>.try") go to "dead.log" with the reason, and
 * are counted.
 * One drainer per directory at a time (flock on ".drain").
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NF_SPOOL_H
#define NF_SPOOL_H

#include <stdint.h>

#include "nonflex.h"

struct json_object;
struct nf_spool;

#define NF_SPOOL_ROTATE_BYTES	(4 * 1024 * 1024)
#define NF_SPOOL_RECORD_MAX	(64 * 1024)
#define NF_SPOOL_TRIES_MAX	3       /* handlings a record may crash before it is dead */

/* A spool on dir (created if missing, mode 0700).  NF_EUNAVAIL
 * "spool_unavailable" when it cannot be used. */
enum nf_err	 nf_spool_open(const char *dir, struct nf_spool **, struct nf_error *);
void		 nf_spool_free(struct nf_spool *);         /* accepts NULL */

/*
 * Append rec (a JSON object) as one line to this process's file.  On NF_OK
 * it is on the spool; on failure nothing of it is (a partial write is cut
 * off again): NF_ETOOBIG past NF_SPOOL_RECORD_MAX, NF_EUNAVAIL
 * "spool_unavailable" on an I/O error (disk full, ...).
 */
enum nf_err	 nf_spool_append(struct nf_spool *, struct json_object *rec,
		    struct nf_error *);

/*
 * Process one record.  NF_OK: done.  NF_EINVAL: it can never succeed (it
 * goes to dead.log with e's message).  Anything else: try again later (the
 * drain stops there and keeps its position).
 */
typedef enum nf_err (*nf_spool_fn)(struct json_object *rec, void *arg,
		    struct nf_error *);

/*
 * Drain: hand every complete record of every file to fn, oldest file
 * first, at most max records; *done counts those handled (dead-lettered
 * ones included).  Returns NF_OK with *done 0 when there is nothing (or
 * another drainer holds the directory), fn's error when it asked to retry.
 */
enum nf_err	 nf_spool_drain(struct nf_spool *, nf_spool_fn, void *arg, int max,
		    int *done, struct nf_error *);

/* An inotify descriptor that becomes readable when a file of the spool
 * changes (the drainer's wake-up; it reads and discards the events), or -1. */
int		 nf_spool_watch_fd(struct nf_spool *);
void		 nf_spool_watch_clear(struct nf_spool *);

/* What waits: bytes not yet drained and the age in ms of the oldest file
 * holding some (0 when none); dead-lettered records so far. */
enum nf_err	 nf_spool_backlog(struct nf_spool *, int64_t *bytes, int64_t *oldest_ms,
		    int64_t *dead, struct nf_error *);

#endif
