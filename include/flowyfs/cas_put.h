/*
 * cas_put.h - storing content: buffers, regular files and whole
 * directories (as trees). Included by cas.h.
 */
#ifndef FLOWYFS_CAS_PUT_H
#define FLOWYFS_CAS_PUT_H

#include <stddef.h>
#include <sys/types.h>

struct cas;
enum cas_kind;

/* Store a buffer / a regular file as a blob. Content whose first frame
 * compresses to less than 90% of its size is stored .zst, otherwise raw.
 * Returns 0 or -errno (-ENOSPC on a full disk, leaving no partial object
 * behind). */
int cas_put_buf(struct cas *c, char out[64 + 1], const void *buf, size_t len);
int cas_put_file(struct cas *c, char out[64 + 1], const char *path);

/* How a put of a path reads its source. */
struct cas_put_opts {
	int as_user;           /* open sources with these file-system ids */
	uid_t uid;             /* (a root daemon storing a step's outputs or */
	gid_t gid;             /* its file: inputs reads what it may read) */
	const int *stop;       /* nonzero (set by another thread): -ECANCELED */
	/* Leave out entry name of directory rel ("" for the top); NULL: none. */
	int (*skip)(const char *rel, const char *name, void *arg);
	void *skip_arg;
	/* Publish each object before its fsync, left to cas_syncs_flush(later)
	 * (NULL: fsync first). */
	struct cas_syncs *later;
};

/* Store name (a file or a directory, recursively), relative to the
 * directory rootfd, and name it. For a directory the result is a tree.
 * Every entry is reached from its directory's fd, never by a path that
 * could be swapped; a symlink is kept as an 'l' entry only when relative
 * and resolving inside the root (openat2 RESOLVE_BENEATH); a symlink that
 * is absolute or escapes fails with -EXDEV. A top-level name that is a
 * symlink resolving inside the root is followed. Sockets, fifos and
 * devices fail with -EINVAL; a file the reader may not open fails -EACCES
 * ("a hard link to a file the step's user cannot read" when it has other
 * links). A file with holes is stored raw with its holes. With err, every
 * failure sets *err (malloc'd, caller frees), naming paths as
 * "<disp>/<path below root>", e.g. "out/model/link". o may be NULL. */
int cas_put_at(struct cas *c, char out[64 + 1], enum cas_kind *kind_out,
               int rootfd, const char *name, const char *disp,
               const struct cas_put_opts *o, char **err);

/* The same for a path: root is the directory the output lives in (e.g. a
 * step's out/), NULL for the stored directory itself (or a file's
 * directory); a path outside root fails with -EINVAL. Messages name paths
 * from root's own name ("out/model/link"). */
int cas_put_path(struct cas *c, char out[64 + 1], enum cas_kind *kind_out,
                 const char *path, const char *root, const struct cas_put_opts *o,
                 char **err);

#endif
