/*
 * handle.h - open file handles by number. The kernel may send RELEASE for
 * a handle while another thread still answers a READ on it (a reader
 * killed mid-read), so fi->fh holds a number, never a pointer: a request
 * borrows the handle (a reference) and a release only drops the table's
 * reference. Numbers are never reused within a mount.
 */
#ifndef FLOWYFS_HANDLE_H
#define FLOWYFS_HANDLE_H

#include <stddef.h>
#include <stdint.h>

#include "flowyfs/cas.h"

struct dirpack;

enum fh_kind {
	FH_BUF = 1,        /* a rendered buffer */
	FH_FD,             /* a backing file */
	FH_CAS,            /* a blob of the object store */
	FH_CTL,            /* a command sink: writes go to view->write */
	FH_DIR,            /* a directory listing, taken at opendir */
	FH_WAIT            /* runs/<id>/wait: reads answered by waits.c */
};

struct fh {
	enum fh_kind kind;
	char *buf;         /* FH_BUF (malloc'd) */
	size_t len;
	int fd;            /* FH_FD, -1 otherwise */
	cas_reader *reader;/* FH_CAS */
	int direct_io, keep_cache;
	int written;       /* a write or truncate happened through this handle */
	int refs;          /* handle.c: the table and the requests using it */
	char *path;        /* set by the dispatcher */
	struct dirpack *dir; /* FH_DIR: the listing, packed */
	uint64_t ino;      /* set by the dispatcher: the node it was opened as */
	int64_t run;       /* FH_WAIT: the run waited for */
};


/* Register h (the table holds one reference); returns its number. */
uint64_t handle_add(struct fh *h);
/* Borrow the handle numbered id, or NULL when it was released. */
struct fh *handle_get(uint64_t id);
/* Return a borrowed handle; the last reference frees it (handle_free). */
void handle_put(struct fh *h);
/* Drop the table's reference; later handle_get(id) returns NULL. */
void handle_remove(uint64_t id);
/* Borrow an open backing-file handle (FH_FD) of node ino, or NULL: what
 * answers GETATTR for an open file after its name is gone. A linear scan,
 * for that rare case only. */
struct fh *handle_find_fd(uint64_t ino);

/* Free a handle that is in no table (never added, or its last
 * reference gone): its descriptor, reader, listing and buffers. */
void handle_free(struct fh *h);

#endif
