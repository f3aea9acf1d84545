/*
 * backing.h - read-write views whose files live in a backing directory
 * of the store (pipelines/ in <store>/pipelines, hooks/ in <store>/hooks)
 * pass every operation through with *at() calls from that directory.
 * A path is walked one component at a time without following any symlink,
 * so a symlink swapped into a path cannot make the daemon act outside the
 * store, and paths longer than PATH_MAX work.
 *
 * `root` is the backing directory (absolute); `rel` the path below it
 * ("" for root itself, else "a/b", no leading slash). Every function
 * returns 0 (or a count) or -errno.
 */
#ifndef FLOWYFS_BACKING_H
#define FLOWYFS_BACKING_H

#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

struct dirlist;

/* Where the backing object of a path is: an open directory and the
 * object's name in it; the root itself is AT_FDCWD and root's path. */
struct backing_loc {
	int dirfd;         /* closed by backing_unlocate() when >= 0 */
	const char *name;  /* points into rel, or is root */
};

int backing_locate(const char *root, const char *rel, struct backing_loc *out);
void backing_unlocate(struct backing_loc *l);

/* lstat of the object (a symlink is reported as itself). */
int backing_stat(const char *root, const char *rel, struct stat *out);
/* The stat of the directory holding rel (root's for a top-level name). */
int backing_stat_parent(const char *root, const char *rel, struct stat *out);
/* Add the entries of directory rel to out. */
int backing_readdir(const char *root, const char *rel, struct dirlist *out);
/* openat with O_NOFOLLOW|O_CLOEXEC added and O_NOCTTY dropped; *out the fd. */
int backing_open(const char *root, const char *rel, int flags, mode_t mode, int *out);
int backing_mkdir(const char *root, const char *rel, mode_t mode);
/* unlinkat; dir set: a directory (AT_REMOVEDIR). */
int backing_remove(const char *root, const char *rel, int dir);
int backing_rename(const char *root, const char *from, const char *to, unsigned flags);
int backing_truncate(const char *root, const char *rel, off_t size);
int backing_chmod(const char *root, const char *rel, mode_t mode);
int backing_chown(const char *root, const char *rel, uid_t uid, gid_t gid);
int backing_utimens(const char *root, const char *rel, const struct timespec tv[2]);
/* The target of symlink rel, malloc'd into *out. */
int backing_readlink(const char *root, const char *rel, char **out);
int backing_symlink(const char *root, const char *target, const char *rel);
int backing_link(const char *root, const char *from, const char *to);
int backing_mknod(const char *root, const char *rel, mode_t mode);

#endif
