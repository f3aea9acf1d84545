/*
 * fs.c - FUSE low-level callbacks: only dispatch to views.
 *
 * Each request turns its inode into a path, asks route_find() for the view
 * owning that path and calls it. Immutable nodes get day-long entry and
 * attribute timeouts and keep_cache; everything generated gets timeout 0
 * and direct_io, so a new open() always sees fresh data. Data of backing
 * files and raw objects goes out by splice from the file descriptor.
 * Backing objects report their own stat (st_ino with VIEW_BACKING_INO set).
 * When the daemon runs as root (allow_other mounts), what a request creates
 * is given the caller's uid and gid; the kernel checks permissions
 * (default_permissions) and has applied the caller's umask to the modes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "flowyfs/dirpack.h"
#include "flowyfs/fs.h"
#include "flowyfs/handle.h"
#include "flowyfs/inode.h"
#include "flowyfs/log.h"
#include "flowyfs/util.h"
#include "flowyfs/view.h"
#include "flowyfs/waits.h"

#define IMMUTABLE_TIMEOUT 86400.0

static struct flowy *F(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static double mount_time;

static void attr_to_stat(struct stat *st, uint64_t ino, const struct view_attr *a)
{
	if (a->has_stat) {
		*st = a->st;
		st->st_ino = (ino_t)((uint64_t)a->st.st_ino | VIEW_BACKING_INO);
		return;
	}
	memset(st, 0, sizeof *st);
	double mtime = a->mtime ? a->mtime : mount_time;
	st->st_ino = ino;
	st->st_mode = a->mode;
	st->st_nlink = S_ISDIR(a->mode) ? 2 : 1;
	st->st_size = (off_t)a->size;
	st->st_uid = a->has_owner ? a->uid : getuid();
	st->st_gid = a->has_owner ? a->gid : getgid();
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
	st->st_mtim.tv_sec = (time_t)mtime;
	st->st_mtim.tv_nsec = (long)((mtime - (double)(time_t)mtime) * 1e9);
	st->st_atim = st->st_ctim = st->st_mtim;
}

/* Resolve path's attributes and hand the kernel an entry (adding a lookup). */
static void reply_entry(fuse_req_t req, const char *path)
{
	struct view_attr a = {0};
	int rc = route_find(path)->getattr(F(req), path, &a);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	struct fuse_entry_param e = {0};
	e.ino = inode_ref(F(req)->inodes, path);
	e.generation = 1;
	e.attr_timeout = e.entry_timeout = a.immutable ? IMMUTABLE_TIMEOUT : 0;
	attr_to_stat(&e.attr, e.ino, &a);
	if (fuse_reply_entry(req, &e) != 0)
		inode_unref(F(req)->inodes, e.ino, 1);
}

static int valid_name(const char *name)
{
	return *name && strlen(name) < 256 && !strchr(name, '/');
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	char *path = inode_child_path(F(req)->inodes, parent, name);
	if (!path) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	reply_entry(req, path);
	free(path);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	inode_unref(F(req)->inodes, ino, nlookup);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count,
                            struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		inode_unref(F(req)->inodes, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

/* The attributes of an open backing file, from its descriptor. */
static int fd_attr(int fd, struct view_attr *a)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	view_stat_attr(a, &st);
	return 0;
}

/* A node's path is gone (unlinked, or renamed over): an open file of it
 * still answers, from the handle of this request (fi) or any other. */
static int orphan_attr(fuse_ino_t ino, struct fuse_file_info *fi, struct view_attr *a)
{
	struct fh *h = fi ? handle_get(fi->fh) : NULL;
	if (!h || h->kind != FH_FD) {
		handle_put(h);
		h = handle_find_fd(ino);
	}
	int rc = h ? fd_attr(h->fd, a) : -ENOENT;
	handle_put(h);
	return rc;
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	char *path = inode_path(F(req)->inodes, ino);
	struct view_attr a = {.reuse = 1};
	int rc = path ? route_find(path)->getattr(F(req), path, &a) : -ENOENT;
	if (rc == -ENOENT)
		rc = orphan_attr(ino, fi, &a);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
	} else {
		struct stat st;
		attr_to_stat(&st, ino, &a);
		fuse_reply_attr(req, &st, a.immutable ? IMMUTABLE_TIMEOUT : 0);
	}
	free(path);
}

static void fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char *path = inode_path(F(req)->inodes, ino), *target = NULL;
	const struct view *v = path ? route_find(path) : NULL;
	int rc = !v ? -ENOENT : v->readlink ? v->readlink(F(req), path, &target) : -EINVAL;
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_readlink(req, target);
	free(target);
	free(path);
}

static void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	char *path = inode_path(F(req)->inodes, ino);
	uint64_t gen = 0;
	struct dirpack *p = path ? dirpack_kept(F(req), path, &gen) : NULL;
	int rc = 0, kept = p != NULL, same = p != NULL;
	if (!p) {
		struct dirlist l = {0};
		dirlist_add(&l, ".", S_IFDIR);
		dirlist_add(&l, "..", S_IFDIR);
		const struct view *v = path ? route_find(path) : NULL;
		rc = !v ? -ENOENT : v->readdir ? v->readdir(F(req), path, &l) : -ENOTDIR;
		if (rc >= 0 && l.more_n) {
			p = dirpack_stream(&l); /* too big to pack */
		} else if (rc >= 0) {
			p = dirpack_build(&l);
			kept = l.kept;
			same = kept && dirpack_keep(path, gen, p);
		}
		dirlist_free(&l);
	}
	if (rc < 0) {
		fuse_reply_err(req, -rc);
	} else {
		struct fh *h = xcalloc(1, sizeof *h);
		h->kind = FH_DIR;
		h->fd = -1;
		h->dir = p;
		fi->fh = handle_add(h);
		/* A kept listing may live in the kernel's cache; the copy it has
		 * stays while the listing is the one it was handed last. */
		fi->cache_readdir = kept;
		fi->keep_cache = same;
		if (fuse_reply_open(req, fi) != 0)
			handle_remove(fi->fh);
	}
	free(path);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	struct fh *h = handle_get(fi->fh);
	if (!h) {
		fuse_reply_err(req, EBADF);
		return;
	}
	const char *start;
	ssize_t n = dirpack_read(h->dir, off, size, &start);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, start, (size_t)n);
	handle_put(h);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	handle_remove(fi->fh);
	fuse_reply_err(req, 0);
}

static void set_fi(struct fuse_file_info *fi, struct fh *h)
{
	fi->fh = handle_add(h);
	fi->direct_io = h->direct_io;
	fi->keep_cache = h->keep_cache;
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	char *path = inode_path(F(req)->inodes, ino);
	struct fh *h = xcalloc(1, sizeof *h);
	h->fd = -1;
	const struct view *v = path ? route_find(path) : NULL;
	int rc = !v ? -ENOENT : v->open ? v->open(F(req), path, fi->flags, h) : -EISDIR;
	if (rc < 0) {
		handle_free(h);
		free(path);
		fuse_reply_err(req, -rc);
		return;
	}
	h->path = path;
	h->ino = ino;
	if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY)
		h->written = 1;
	set_fi(fi, h);
	if (fuse_reply_open(req, fi) != 0)
		handle_remove(fi->fh);
}

static void reply_fd(fuse_req_t req, int fd, size_t size, off_t off)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);
	bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv.buf[0].fd = fd;
	bv.buf[0].pos = off;
	fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
}

static void read_handle(fuse_req_t req, struct fh *h, size_t size, off_t off);

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	struct fh *h = handle_get(fi->fh);
	if (!h) {
		fuse_reply_err(req, EBADF);
		return;
	}
	read_handle(req, h, size, off);
	handle_put(h);
}

static void read_handle(fuse_req_t req, struct fh *h, size_t size, off_t off)
{
	switch (h->kind) {
	case FH_BUF:
		if ((size_t)off >= h->len)
			fuse_reply_buf(req, NULL, 0);
		else
			fuse_reply_buf(req, h->buf + off,
			               size < h->len - (size_t)off ? size : h->len - (size_t)off);
		return;
	case FH_FD:
		reply_fd(req, h->fd, size, off);
		return;
	case FH_CAS: {
		int fd = cas_reader_fd(h->reader);
		if (fd >= 0) {
			reply_fd(req, fd, size, off);
			return;
		}
		char *buf = xmalloc(size);
		ssize_t n = cas_reader_pread(h->reader, buf, size, (uint64_t)off);
		if (n < 0)
			fuse_reply_err(req, (int)-n);
		else
			fuse_reply_buf(req, buf, (size_t)n);
		free(buf);
		return;
	}
	case FH_WAIT:
		waits_read(F(req), req, h->run, size, off);
		return;
	default:
		fuse_reply_err(req, EBADF);
	}
}

/* Someone without CAP_FSETID writing a set-user/group-ID file drops those
 * bits (as file_remove_privs() would). For direct_io writes the kernel
 * leaves that to the file system, and the daemon's own write, as root,
 * would keep them. Callers other than root are taken to lack CAP_FSETID. */
static int kill_priv(fuse_req_t req, int fd)
{
	if (geteuid() != 0 || fuse_req_ctx(req)->uid == 0)
		return 0;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	mode_t kill = st.st_mode & S_ISUID;
	if ((st.st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		kill |= S_ISGID;
	if (!kill || !S_ISREG(st.st_mode))
		return 0;
	return fchmod(fd, st.st_mode & 07777 & ~kill) < 0 ? -errno : 0;
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
                     off_t off, struct fuse_file_info *fi)
{
	view_caller_set(fuse_req_ctx(req)->uid);
	struct fh *h = handle_get(fi->fh);
	if (!h) {
		fuse_reply_err(req, EBADF);
		return;
	}
	const struct view *v = route_find(h->path);
	int rc = h->kind == FH_FD ? kill_priv(req, h->fd) : 0;
	if (rc < 0) {
		/* reported below */
	} else if (v->write) {
		rc = v->write(F(req), h, buf, size, off);
	} else if (h->kind == FH_FD) {
		ssize_t n = pwrite(h->fd, buf, size, off);
		rc = n < 0 ? -errno : (int)n;
	} else {
		rc = -EBADF;
	}
	if (rc < 0) {
		fuse_reply_err(req, -rc);
	} else {
		h->written = 1;
		fuse_reply_write(req, (size_t)rc);
	}
	handle_put(h);
}

static void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                     struct fuse_file_info *fi)
{
	struct fh *h = handle_get(fi->fh);
	int rc = h ? 0 : EBADF;
	if (h && h->kind == FH_FD && (datasync ? fdatasync(h->fd) : fsync(h->fd)) < 0)
		rc = errno;
	handle_put(h);
	fuse_reply_err(req, rc);
}

static void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fh *h = handle_get(fi->fh);
	if (h) {
		const struct view *v = route_find(h->path);
		if (v->release)
			v->release(F(req), h);
		handle_put(h);
		handle_remove(fi->fh);
	}
	fuse_reply_err(req, 0);
}

/* Give the object a request just made at path the caller's uid and gid
 * (only a daemon run as root can, and needs to). In a set-group-ID
 * directory the group stays the directory's, as the backing file system
 * chose it. chown clears set-user/group-ID bits, so a mode carrying them
 * is set again. On failure the object is removed again. */
static int own_new(fuse_req_t req, const struct view *v, const char *path, mode_t mode)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	if (geteuid() != 0 || !v->chown || (ctx->uid == 0 && ctx->gid == 0))
		return 0;
	gid_t gid = ctx->gid;
	char *parent = xstrdup(path), *slash = strrchr(parent, '/');
	if (slash) {
		*slash = '\0';
		struct view_attr pa = {0};
		if (v->getattr(F(req), parent, &pa) == 0 && (pa.mode & S_ISGID))
			gid = (gid_t)-1;
	}
	free(parent);
	int rc = v->chown(F(req), path, ctx->uid, gid);
	if (!rc && !S_ISLNK(mode) && (mode & (S_ISUID | S_ISGID)) && v->chmod)
		rc = v->chmod(F(req), path, mode & 07777);
	if (rc) {
		int (*undo)(struct flowy *, const char *) = S_ISDIR(mode) ? v->rmdir : v->unlink;
		if (undo && undo(F(req), path) < 0)
			log_error("%s: cannot remove after a failed chown", path);
	}
	return rc;
}

static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode, struct fuse_file_info *fi)
{
	char *path = inode_child_path(F(req)->inodes, parent, name);
	const struct view *v = path ? route_find(path) : NULL;
	struct fh *h = xcalloc(1, sizeof *h);
	h->fd = -1;
	int rc = !v ? -ENOENT : !valid_name(name) ? -EINVAL :
	         v->create ? v->create(F(req), path, mode, fi->flags, h) : -EROFS;
	if (!rc)
		rc = own_new(req, v, path, S_IFREG | (mode & 07777));
	struct view_attr a = {0};
	if (!rc)
		rc = v->getattr(F(req), path, &a);
	if (rc < 0) {
		handle_free(h);
		free(path);
		fuse_reply_err(req, -rc);
		return;
	}
	struct fuse_entry_param e = {0};
	e.ino = inode_ref(F(req)->inodes, path);
	e.generation = 1;
	attr_to_stat(&e.attr, e.ino, &a);
	h->path = path;
	h->ino = e.ino;
	h->written = 1;
	set_fi(fi, h);
	if (fuse_reply_create(req, &e, fi) != 0) {
		inode_unref(F(req)->inodes, e.ino, 1);
		handle_remove(fi->fh);
	}
}

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	char *path = inode_child_path(F(req)->inodes, parent, name);
	const struct view *v = path ? route_find(path) : NULL;
	int rc = !v ? -ENOENT : v->mkdir ? v->mkdir(F(req), path, mode) : -EROFS;
	if (!rc)
		rc = own_new(req, v, path, S_IFDIR | (mode & 07777));
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, path);
	free(path);
}

static void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode, dev_t rdev)
{
	char *path = inode_child_path(F(req)->inodes, parent, name);
	const struct view *v = path ? route_find(path) : NULL;
	int rc = !v ? -ENOENT : !valid_name(name) ? -EINVAL :
	         v->mknod ? v->mknod(F(req), path, mode, rdev) : v->create ? -EPERM : -EROFS;
	if (!rc)
		rc = own_new(req, v, path, mode);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, path);
	free(path);
}

static void fs_remove(fuse_req_t req, fuse_ino_t parent, const char *name, int dir)
{
	view_caller_set(fuse_req_ctx(req)->uid);
	char *path = inode_child_path(F(req)->inodes, parent, name);
	const struct view *v = path ? route_find(path) : NULL;
	int (*op)(struct flowy *, const char *) = !v ? NULL : dir ? v->rmdir : v->unlink;
	int rc = !v ? -ENOENT : op ? op(F(req), path) : -EROFS;
	if (!rc)
		inode_unlinked(F(req)->inodes, path);
	fuse_reply_err(req, -rc);
	free(path);
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs_remove(req, parent, name, 0);
}

static void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs_remove(req, parent, name, 1);
}

static void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
                       const char *name)
{
	view_caller_set(fuse_req_ctx(req)->uid);
	char *path = inode_child_path(F(req)->inodes, parent, name);
	const struct view *v = path ? route_find(path) : NULL;
	int rc = !v ? -ENOENT : !valid_name(name) ? -EINVAL :
	         v->symlink ? v->symlink(F(req), link, path) : v->create ? -EPERM : -EROFS;
	if (!rc)
		rc = own_new(req, v, path, S_IFLNK | 0777);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, path);
	free(path);
}

/* Both ends of a link or rename: known, in one view, a valid new name. */
static int pair_check(const char *from, const char *to, const char *newname,
                      const struct view **v)
{
	if (!from || !to)
		return -ENOENT;
	*v = route_find(from);
	if (*v != route_find(to))
		return -EXDEV;
	return valid_name(newname) ? 0 : -EINVAL;
}

static void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                    const char *newname)
{
	char *from = inode_path(F(req)->inodes, ino);
	char *to = inode_child_path(F(req)->inodes, newparent, newname);
	const struct view *v = NULL;
	int rc = pair_check(from, to, newname, &v);
	if (!rc)
		rc = v->link ? v->link(F(req), from, to) : v->create ? -EPERM : -EROFS;
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, to);
	free(to);
	free(from);
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	view_caller_set(fuse_req_ctx(req)->uid);
	char *from = inode_child_path(F(req)->inodes, parent, name);
	char *to = inode_child_path(F(req)->inodes, newparent, newname);
	const struct view *v = NULL;
	int rc = pair_check(from, to, newname, &v);
	if (!rc)
		rc = v->rename ? v->rename(F(req), from, to, flags) : -EROFS;
	if (!rc)
		inode_rename(F(req)->inodes, from, to);
	fuse_reply_err(req, -rc);
	free(to);
	free(from);
}

/* The times a SETATTR asks for, UTIME_OMIT for those it leaves alone. */
static void setattr_times(const struct stat *attr, int to_set, struct timespec tv[2])
{
	tv[0] = tv[1] = (struct timespec){.tv_nsec = UTIME_OMIT};
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		tv[0].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		tv[0] = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		tv[1].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		tv[1] = attr->st_mtim;
}

#define SET_OWNER (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)
#define SET_TIMES (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)

/* SETATTR of an open file whose name is gone (fchmod after unlink): done
 * on its descriptor. */
static int setattr_fd(int fd, const struct stat *attr, int to_set)
{
	if ((to_set & FUSE_SET_ATTR_SIZE) && ftruncate(fd, attr->st_size) < 0)
		return -errno;
	if ((to_set & SET_OWNER) &&
	    fchown(fd, to_set & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1,
	           to_set & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1) < 0)
		return -errno;
	if ((to_set & FUSE_SET_ATTR_MODE) && fchmod(fd, attr->st_mode & 07777) < 0)
		return -errno;
	if (to_set & SET_TIMES) {
		struct timespec tv[2];
		setattr_times(attr, to_set, tv);
		if (futimens(fd, tv) < 0)
			return -errno;
	}
	return 0;
}

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                       int to_set, struct fuse_file_info *fi)
{
	char *path = inode_path(F(req)->inodes, ino);
	const struct view *v = path ? route_find(path) : NULL;
	struct fh *h = fi ? handle_get(fi->fh) : NULL;
	struct view_attr a = {0};
	int rc = v ? 0 : -ENOENT;
	if (path && !strncmp(path, INODE_DEAD_PREFIX, strlen(INODE_DEAD_PREFIX))) {
		struct fh *o = h && h->kind == FH_FD ? NULL : handle_find_fd(ino);
		struct fh *use = o ? o : h && h->kind == FH_FD ? h : NULL;
		rc = use ? setattr_fd(use->fd, attr, to_set) : -ENOENT;
		if (!rc)
			rc = fd_attr(use->fd, &a);
		handle_put(o);
		goto reply;
	}
	if (!rc && (to_set & FUSE_SET_ATTR_SIZE)) {
		if (h && h->kind == FH_FD)
			rc = ftruncate(h->fd, attr->st_size) < 0 ? -errno : 0;
		else
			rc = v->truncate ? v->truncate(F(req), path, attr->st_size) : -EROFS;
		if (!rc && h)
			h->written = 1;
	}
	/* Owner before mode: the backing chown may clear set-ID bits, and a
	 * mode in the same request (the kernel's, with them dropped) stays. */
	if (!rc && (to_set & SET_OWNER))
		rc = v->chown ? v->chown(F(req), path,
		                         to_set & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1,
		                         to_set & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1)
		              : -EROFS;
	if (!rc && (to_set & FUSE_SET_ATTR_MODE))
		rc = v->chmod ? v->chmod(F(req), path, attr->st_mode) : -EROFS;
	if (!rc && (to_set & SET_TIMES)) {
		struct timespec tv[2];
		setattr_times(attr, to_set, tv);
		rc = v->utimens ? v->utimens(F(req), path, tv) : -EROFS;
	}
	if (!rc)
		rc = v->getattr(F(req), path, &a);
reply:
	if (rc < 0) {
		fuse_reply_err(req, -rc);
	} else {
		struct stat st;
		attr_to_stat(&st, ino, &a);
		fuse_reply_attr(req, &st, 0);
	}
	handle_put(h);
	free(path);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	if (statvfs(F(req)->store, &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	mount_time = util_now();
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	if (conn->capable & FUSE_CAP_SPLICE_MOVE)
		conn->want |= FUSE_CAP_SPLICE_MOVE;
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS;
	conn->want &= ~(unsigned)FUSE_CAP_ATOMIC_O_TRUNC;
	/* The kernel drops set-ID bits on chown and truncate itself (the
	 * daemon's own calls, as root, would not); writes see kill_priv(). */
	conn->want &= ~(unsigned)FUSE_CAP_HANDLE_KILLPRIV;
	conn->max_readahead = FS_READAHEAD;
	conn->max_read = FS_MAX_READ;
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.readlink = fs_readlink,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_rmdir,
	.symlink = fs_symlink,
	.link = fs_link,
	.mknod = fs_mknod,
	.rename = fs_rename,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.flush = fs_flush,
	.fsync = fs_fsync,
	.release = fs_release,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.releasedir = fs_releasedir,
	.create = fs_create,
	.statfs = fs_statfs,
};
