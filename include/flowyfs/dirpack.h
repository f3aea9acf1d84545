/*
 * dirpack.h - a directory listing packed once, at opendir, as the FUSE
 * dirents READDIR answers with (entry i has offset i + 1), so each READDIR
 * is a slice of one buffer rather than a walk over the list. A listing
 * that is a function of the database alone (dirlist.kept) is kept per
 * database generation (gencache.h) and may be cached by the kernel: the
 * next opendir at the same generation takes it as it is, and the kernel
 * keeps its copy while the listing is byte for byte the one it was handed
 * last (so `ls runs/` of 100,000 runs costs an OPENDIR, not 800 READDIRs).
 */
#ifndef FLOWYFS_DIRPACK_H
#define FLOWYFS_DIRPACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct flowy;
struct dirlist;

struct dirpack {
	char *buf;         /* struct fuse_dirent records, back to back */
	size_t len;
	size_t at, pos;    /* a cursor: entry index at begins at byte pos */
	struct dirlist *stream; /* a listing made as READDIR reaches it */
};

/* Pack l into a new dirpack (caller frees with dirpack_free). Entries
 * without an inode number get a hash of their name. */
struct dirpack *dirpack_build(const struct dirlist *l);
/* A listing with entries made one at a time (dirlist.more: a huge tree
 * object) is not packed: dirpack_stream takes l's contents over (l is left
 * empty) and READDIR makes the records it asks for. */
struct dirpack *dirpack_stream(struct dirlist *l);
/* The records of entries from index off on that fit in size bytes, for
 * either kind: *start and the byte count, or -errno when the first of
 * them cannot be made. */
ssize_t dirpack_read(struct dirpack *p, off_t off, size_t size, const char **start);
/* path's listing as packed at generation *gen of f's database, when the
 * store has not changed since: a new dirpack (a copy). Else NULL, with
 * *gen the generation to pass to dirpack_keep. */
struct dirpack *dirpack_kept(struct flowy *f, const char *path, uint64_t *gen);
/* Keep p as path's listing at generation gen. Returns 1 when p is
 * byte for byte the listing handed out for path last time (the kernel's
 * copy of it is still right), else 0. */
int dirpack_keep(const char *path, uint64_t gen, const struct dirpack *p);
/* The records of entries from index off on that fit in size bytes:
 * *start and the byte count returned. Sequential calls are O(1). */
size_t dirpack_slice(struct dirpack *p, off_t off, size_t size, const char **start);
void dirpack_free(struct dirpack *p);

#endif
