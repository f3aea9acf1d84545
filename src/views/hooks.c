/*
 * views/hooks.c - hooks/: read-write like a pipeline directory, kept in
 * <store>/hooks (so hooks survive remounts) and passed through by
 * backing.c. Two names are the daemon's: .log (hooks.log with a header
 * row: time event hook exit duration) and .out/<hook> (a hook's output
 * from its last run), both read-only. Symlinks, hard links and device
 * nodes cannot be made here: a hook is a file of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowyfs/backing.h"
#include "flowyfs/hooks.h"
#include "flowyfs/util.h"
#include "flowyfs/view.h"

#define ROOT (f->hooks_dir)

enum hpart { H_FILE, H_ROOT, H_LOG, H_OUT, H_OUTFILE };

/* What path is; *rel the part below hooks/ (or below hooks/.out/). */
static enum hpart classify(const char *path, const char **rel)
{
	const char *r = path + strlen("hooks");
	r += *r == '/';
	*rel = r;
	if (!*r)
		return H_ROOT;
	if (!strcmp(r, ".log"))
		return H_LOG;
	if (!strcmp(r, ".out"))
		return H_OUT;
	if (!strncmp(r, ".out/", 5)) {
		*rel = r + 5;
		return H_OUTFILE;
	}
	return H_FILE;
}

static char *render_log(struct flowy *f)
{
	char *path = xasprintf("%s/hooks.log", f->events_dir);
	char *text = view_file_text(HOOKS_LOG_HEADER, path);
	free(path);
	return text;
}

static char *out_dir(struct flowy *f)
{
	return xasprintf("%s/out", f->events_dir);
}

static int hk_getattr(struct flowy *f, const char *path, struct view_attr *a)
{
	const char *rel;
	struct stat st;
	int rc;
	switch (classify(path, &rel)) {
	case H_LOG:
		if (!view_cached_attr(a, path))
			view_generated_attr(a, path, render_log(f));
		return 0;
	case H_OUT:
		a->mode = S_IFDIR | 0555;
		a->mtime = util_now();
		return 0;
	case H_OUTFILE: {
		char *dir = out_dir(f);
		rc = strchr(rel, '/') ? -ENOENT : backing_stat(dir, rel, &st);
		free(dir);
		if (rc)
			return rc;
		view_stat_attr(a, &st);
		a->st.st_mode = (st.st_mode & S_IFMT) | 0444;
		return 0;
	}
	default:
		rc = backing_stat(ROOT, rel, &st);
		if (!rc)
			view_stat_attr(a, &st);
		return rc;
	}
}

static int hk_readdir(struct flowy *f, const char *path, struct dirlist *l)
{
	const char *rel;
	enum hpart p = classify(path, &rel);
	if (p == H_OUT) {
		char *dir = out_dir(f);
		int rc = dirlist_add_dir(l, dir);
		free(dir);
		return rc == -ENOENT ? 0 : rc;
	}
	if (p == H_LOG || p == H_OUTFILE)
		return -ENOTDIR;
	int rc = backing_readdir(ROOT, rel, l);
	if (!rc && p == H_ROOT) {
		dirlist_add(l, ".log", S_IFREG);
		dirlist_add(l, ".out", S_IFDIR);
	}
	return rc;
}

static int hk_open(struct flowy *f, const char *path, int flags, struct fh *h)
{
	const char *rel;
	enum hpart p = classify(path, &rel);
	int fd = -1, rc;
	if (p == H_LOG || p == H_OUTFILE) {
		if ((flags & O_ACCMODE) != O_RDONLY)
			return -EACCES;
		if (p == H_LOG) {
			char *t = view_cache_take(path);
			view_text_fh(h, t ? t : render_log(f));
			return 0;
		}
		char *dir = out_dir(f);
		rc = strchr(rel, '/') ? -ENOENT : backing_open(dir, rel, O_RDONLY, 0, &fd);
		free(dir);
	} else if (p == H_OUT || p == H_ROOT) {
		return -EISDIR;
	} else {
		rc = backing_open(ROOT, rel, flags & ~(O_CREAT | O_EXCL), 0, &fd);
	}
	if (rc)
		return rc;
	view_fd_fh(h, fd);
	return 0;
}

/* Only hooks/<name> and below may be made or changed by the user. */
static int user_path(const char *path, const char **rel)
{
	enum hpart p = classify(path, rel);
	if (p == H_FILE)
		return 0;
	return p == H_ROOT ? -EPERM : p == H_OUTFILE ? -EACCES : -EEXIST;
}

static int hk_create(struct flowy *f, const char *path, mode_t mode, int flags,
                     struct fh *h)
{
	const char *rel;
	int fd = -1, rc = user_path(path, &rel);
	if (!rc)
		rc = backing_open(ROOT, rel, flags | O_CREAT, mode, &fd);
	if (rc)
		return rc;
	view_fd_fh(h, fd);
	return 0;
}

static int hk_write(struct flowy *f, struct fh *h, const char *buf, size_t len,
                    off_t off)
{
	return view_fd_write(h, buf, len, off);
}

static int hk_mkdir(struct flowy *f, const char *path, mode_t mode)
{
	const char *rel;
	int rc = user_path(path, &rel);
	return rc ? rc : backing_mkdir(ROOT, rel, mode);
}

static int hk_remove(struct flowy *f, const char *path, int dir)
{
	const char *rel;
	int rc = user_path(path, &rel);
	if (rc)
		return rc == -EEXIST ? -EPERM : rc;
	return backing_remove(ROOT, rel, dir);
}

static int hk_unlink(struct flowy *f, const char *path)
{
	return hk_remove(f, path, 0);
}

static int hk_rmdir(struct flowy *f, const char *path)
{
	return hk_remove(f, path, 1);
}

static int hk_rename(struct flowy *f, const char *from, const char *to, unsigned flags)
{
	const char *a, *b;
	if (user_path(from, &a) || user_path(to, &b))
		return -EPERM;
	return backing_rename(ROOT, a, b, flags);
}

static int hk_truncate(struct flowy *f, const char *path, off_t size)
{
	const char *rel;
	int rc = user_path(path, &rel);
	return rc ? -EACCES : backing_truncate(ROOT, rel, size);
}

static int hk_chmod(struct flowy *f, const char *path, mode_t mode)
{
	const char *rel;
	return user_path(path, &rel) ? -EPERM : backing_chmod(ROOT, rel, mode);
}

static int hk_chown(struct flowy *f, const char *path, uid_t uid, gid_t gid)
{
	const char *rel;
	return user_path(path, &rel) ? -EPERM : backing_chown(ROOT, rel, uid, gid);
}

static int hk_utimens(struct flowy *f, const char *path, const struct timespec tv[2])
{
	const char *rel;
	return user_path(path, &rel) ? -EPERM : backing_utimens(ROOT, rel, tv);
}

static int hk_readlink(struct flowy *f, const char *path, char **out)
{
	const char *rel;
	return user_path(path, &rel) ? -EINVAL : backing_readlink(ROOT, rel, out);
}

const struct view view_hooks = {
	.name = "hooks",
	.getattr = hk_getattr,
	.readdir = hk_readdir,
	.open = hk_open,
	.readlink = hk_readlink,
	.create = hk_create,
	.write = hk_write,
	.mkdir = hk_mkdir,
	.unlink = hk_unlink,
	.rmdir = hk_rmdir,
	.rename = hk_rename,
	.truncate = hk_truncate,
	.chmod = hk_chmod,
	.utimens = hk_utimens,
	.chown = hk_chown,
};
