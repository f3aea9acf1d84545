/*
 * waits.h - reads of runs/<id>/wait answered later. A read of a run that
 * has not ended is kept (its fuse_req_t in a registry) and the FUSE worker
 * thread returns at once; the subscriber to the run's end event replies
 * with the final status, from whatever thread emitted it. An interrupt
 * (Ctrl-C on the reader) takes the request out and answers EINTR. So any
 * number of waiting readers hold no FUSE thread.
 *
 * The registry itself (waits_add/_take_run/_take_req) knows nothing of
 * FUSE: it holds opaque requests, so it is unit-tested alone.
 */
#ifndef FLOWYFS_WAITS_H
#define FLOWYFS_WAITS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 34
#endif
#include <fuse_lowlevel.h>

struct flowy;
struct waits;

/* One request taken out of the registry, to be answered. */
struct waits_req {
	void *req;
	size_t size;        /* bytes the read asked for */
};

struct waits *waits_new(void);
/* Frees the registry; requests still in it are not answered. */
void waits_free(struct waits *w);
/* Keep req, a read of size bytes, until run ends. Thread-safe. */
void waits_add(struct waits *w, int64_t run, void *req, size_t size);
/* Take out every request waiting for run: *out (malloc'd, caller frees)
 * gets them in the order they came; returns how many. */
size_t waits_take_run(struct waits *w, int64_t run, struct waits_req **out);
/* Take out req if it is still there: 1 (then *size is its size), else 0
 * (someone else took it and answers it). */
int waits_take_req(struct waits *w, void *req, size_t *size);
/* Requests kept now. */
size_t waits_count(struct waits *w);

/* Make f->waits and subscribe it to the run-end events. 0 or -errno. */
int waits_start(struct flowy *f);
/* Answer what still waits with EINTR (the daemon stops) and free it all. */
void waits_stop(struct flowy *f);
/* Answer a read of runs/<run>/wait at off: the final status and a
 * newline once the run has ended (at once if it has), EOF past it. */
void waits_read(struct flowy *f, fuse_req_t req, int64_t run, size_t size, off_t off);

#endif
