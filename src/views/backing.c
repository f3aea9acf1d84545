/*
 * views/backing.c - the pass-through of read-write views to a backing
 * directory (backing.h): one walk that never follows a symlink, and the
 * *at() call of each operation from the directory it ends in. Shared by
 * views/pipelines.c and views/hooks.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowyfs/backing.h"
#include "flowyfs/util.h"
#include "flowyfs/view.h"

int backing_locate(const char *root, const char *rel, struct backing_loc *l)
{
	l->dirfd = -1;
	if (!*rel) {
		l->dirfd = AT_FDCWD;
		l->name = root;
		return 0;
	}
	int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char name[NAME_MAX + 1];
	for (;;) {
		size_t n = strcspn(rel, "/");
		if (!rel[n]) {
			l->dirfd = fd;
			l->name = rel;
			return 0;
		}
		if (n > NAME_MAX) {
			close(fd);
			return -ENAMETOOLONG;
		}
		memcpy(name, rel, n);
		name[n] = '\0';
		/* A symlink opens as itself here and fails O_DIRECTORY. */
		int next = openat(fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int rc = next < 0 ? -errno : 0;
		close(fd);
		if (rc)
			return rc;
		fd = next;
		rel += n + 1;
	}
}

void backing_unlocate(struct backing_loc *l)
{
	if (l->dirfd >= 0)
		close(l->dirfd);
	l->dirfd = -1;
}

int backing_stat(const char *root, const char *rel, struct stat *st)
{
	struct backing_loc l;
	int rc = backing_locate(root, rel, &l);
	if (!rc && fstatat(l.dirfd, l.name, st, AT_SYMLINK_NOFOLLOW) < 0)
		rc = -errno;
	backing_unlocate(&l);
	return rc;
}

int backing_stat_parent(const char *root, const char *rel, struct stat *st)
{
	struct backing_loc l;
	int rc = backing_locate(root, rel, &l);
	if (!rc && fstatat(l.dirfd, l.dirfd == AT_FDCWD ? root : ".", st, 0) < 0)
		rc = -errno;
	backing_unlocate(&l);
	return rc;
}

int backing_readdir(const char *root, const char *rel, struct dirlist *out)
{
	struct backing_loc l;
	int rc = backing_locate(root, rel, &l);
	if (!rc) {
		int fd = openat(l.dirfd, l.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		                O_CLOEXEC);
		rc = fd < 0 ? -errno : dirlist_add_dirfd(out, fd);
	}
	backing_unlocate(&l);
	return rc;
}

int backing_open(const char *root, const char *rel, int flags, mode_t mode, int *out)
{
	struct backing_loc l;
	int fd = -1, rc = backing_locate(root, rel, &l);
	if (!rc && (fd = openat(l.dirfd, l.name, (flags & ~O_NOCTTY) | O_NOFOLLOW |
	                        O_CLOEXEC, mode & 07777)) < 0)
		rc = -errno;
	backing_unlocate(&l);
	if (!rc)
		*out = fd;
	return rc;
}

int backing_mkdir(const char *root, const char *rel, mode_t mode)
{
	struct backing_loc l;
	int rc = backing_locate(root, rel, &l);
	if (!rc && mkdirat(l.dirfd, l.name, mode & 07777) < 0)
		rc = -errno;
	backing_unlocate(&l);
	return rc;
}

int backing_remove(const char *root, const char *rel, int dir)
{
	struct backing_loc l;
	int rc = backing_locate(root, rel, &l);
	if (!rc && unlinkat(l.dirfd, l.name, dir ? AT_REMOVEDIR : 0) < 0)
		rc = -errno;
	backing_unlocate(&l);
	return rc;
}

int backing_rename(const char *root, const char *from, const char *to, unsigned flags)
{
	struct backing_loc fl = {.dirfd = -1}, tl = {.dirfd = -1};
	int rc = backing_locate(root, from, &fl);
	if (!rc)
		rc = backing_locate(root, to, &tl);
	if (!rc && renameat2(fl.dirfd, fl.name, tl.dirfd, tl.name, flags) < 0)
		rc = -errno;
	backing_unlocate(&tl);
	backing_unlocate(&fl);
	return rc;
}

int backing_truncate(const char *root, const char *rel, off_t size)
{
	int fd = -1;
	int rc = backing_open(root, rel, O_WRONLY | O_NONBLOCK, 0, &fd);
	if (!rc && ftruncate(fd, size) < 0)
		rc = -errno;
	if (fd >= 0 && close(fd) < 0 && !rc)
		rc = -errno;
	return rc;
}

int backing_chmod(const char *root, const char *rel, mode_t mode)
{
	struct backing_loc l;
	int rc = backing_locate(root, rel, &l);
	if (!rc && fchmodat(l.dirfd, l.name, mode & 07777, AT_SYMLINK_NOFOLLOW) < 0)
		rc = -errno;
	backing_unlocate(&l);
	return rc;
}

int backing_chown(const char *root, const char *rel, uid_t uid, gid_t gid)
{
	struct backing_loc l;
	int rc = backing_locate(root, rel, &l);
	if (!rc && fchownat(l.dirfd, l.name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		rc = -errno;
	backing_unlocate(&l);
	return rc;
}

int backing_utimens(const char *root, const char *rel, const struct timespec tv[2])
{
	struct backing_loc l;
	int rc = backing_locate(root, rel, &l);
	if (!rc && utimensat(l.dirfd, l.name, tv, AT_SYMLINK_NOFOLLOW) < 0)
		rc = -errno;
	backing_unlocate(&l);
	return rc;
}

int backing_readlink(const char *root, const char *rel, char **out)
{
	struct backing_loc l;
	char *buf = xmalloc(PATH_MAX);
	ssize_t n = 0;
	int rc = backing_locate(root, rel, &l);
	if (!rc && (n = readlinkat(l.dirfd, l.name, buf, PATH_MAX)) < 0)
		rc = -errno;
	else if (!rc && n == PATH_MAX)
		rc = -ENAMETOOLONG;
	backing_unlocate(&l);
	if (rc) {
		free(buf);
		return rc;
	}
	buf[n] = '\0';
	*out = buf;
	return 0;
}

int backing_symlink(const char *root, const char *target, const char *rel)
{
	struct backing_loc l;
	int rc = backing_locate(root, rel, &l);
	if (!rc && symlinkat(target, l.dirfd, l.name) < 0)
		rc = -errno;
	backing_unlocate(&l);
	return rc;
}

int backing_link(const char *root, const char *from, const char *to)
{
	struct backing_loc fl = {.dirfd = -1}, tl = {.dirfd = -1};
	int rc = backing_locate(root, from, &fl);
	if (!rc)
		rc = backing_locate(root, to, &tl);
	if (!rc && linkat(fl.dirfd, fl.name, tl.dirfd, tl.name, 0) < 0)
		rc = -errno;
	backing_unlocate(&tl);
	backing_unlocate(&fl);
	return rc;
}

int backing_mknod(const char *root, const char *rel, mode_t mode)
{
	struct backing_loc l;
	int rc = backing_locate(root, rel, &l);
	if (!rc && mknodat(l.dirfd, l.name, mode & (S_IFMT | 07777), 0) < 0)
		rc = -errno;
	backing_unlocate(&l);
	return rc;
}
