/*
 * scratchpool.h - a run's pool of step scratch directories.
 *
 * A step's scratch is a directory holding in/ and out/. Making three
 * directories for every step, and deleting them, is most of what the file
 * system's inode allocator does in a long chain; a run instead hands a
 * finished step's directory to the next one. Giving a directory back
 * moves everything in it, in/ and out/ (which stay, emptied), into the
 * pool's trash by rename (no inode is freed while the run goes on: on a
 * file system without a journal a freed inode slows every later create
 * for minutes); taking one renames it into place. The trash and the pool
 * go with the run's scratch at its end.
 *
 * Everything is done through directory descriptors opened with
 * O_NOFOLLOW, so a step that left a symlink for in/ or out/ (or for its
 * whole directory) cannot make the pool touch anything outside it: such a
 * directory is refused and stays where it is.
 */
#ifndef FLOWYFS_SCRATCHPOOL_H
#define FLOWYFS_SCRATCHPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct scratchpool {
	char *base;       /* the run's scratch: .pool and .trash live below */
	char **free;      /* emptied directories, ready to take */
	size_t nfree;
	uint64_t seq;     /* names in the pool and the trash */
	int made;         /* .pool and .trash exist */
};

/* An empty pool below base (nothing is made until a directory is given). */
void scratchpool_init(struct scratchpool *p, const char *base);
/* Rename a pooled directory to dst (whose parent exists), mode 0700 (as
 * given back) and its in/ and out/ empty: 1 when done, 0 when the pool
 * is empty, -errno (the pooled directory is then dropped from the pool). */
int scratchpool_take(struct scratchpool *p, const char *dst);
/* Empty dir (into the trash), keeping in/ (mode 0755) and out/ (out_mode),
 * and keep it for the next take: 0, or -errno with dir left where it is
 * (perhaps partly emptied) and not pooled. */
int scratchpool_give(struct scratchpool *p, const char *dir, mode_t out_mode);
/* Forget the pool (the files stay: they go with the run's scratch). */
void scratchpool_free(struct scratchpool *p);

#endif
