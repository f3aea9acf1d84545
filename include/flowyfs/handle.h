/*
 * handle.h - open file handles by number. The kernel may send RELEASE for
 * a handle while another thread still answers a READ on it (a reader
 * killed mid-read), so fi->fh holds a number, never a pointer: a request
 * borrows the handle (a reference) and a release only drops the table's
 * reference. Numbers are never reused within a mount.
 */
#ifndef FLOWYFS_HANDLE_H
#define FLOWYFS_HANDLE_H

#include <stdint.h>

struct fh;

/* Register h (the table holds one reference); returns its number. */
uint64_t handle_add(struct fh *h);
/* Borrow the handle numbered id, or NULL when it was released. */
struct fh *handle_get(uint64_t id);
/* Return a borrowed handle; the last reference frees it (fh_free). */
void handle_put(struct fh *h);
/* Drop the table's reference; later handle_get(id) returns NULL. */
void handle_remove(uint64_t id);
/* Borrow an open backing-file handle (FH_FD) of node ino, or NULL: what
 * answers GETATTR for an open file after its name is gone. A linear scan,
 * for that rare case only. */
struct fh *handle_find_fd(uint64_t ino);

/* Frees a handle's resources; defined by the dispatcher (fs.c). */
void fh_free(struct fh *h);

#endif
