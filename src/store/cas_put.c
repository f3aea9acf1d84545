/*
 * cas_put.c - what a put stores: a buffer, a regular file, or a whole
 * directory as trees. A walk never follows a path twice: every entry is
 * reached from the fd of its directory (fstatat/openat with O_NOFOLLOW),
 * so nothing the step swaps in meanwhile can lead it out of the root, and
 * a symlink is kept only when openat2(RESOLVE_BENEATH) from the root's fd
 * agrees that it resolves inside (or, dangling, stays inside lexically).
 * Sources are opened with the reader's file-system ids when given, so a
 * hard link to a file that user could not read is refused. The bytes
 * themselves go through ingest.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "flowyfs/cas.h"
#include "flowyfs/ingest.h"
#include "flowyfs/util.h"

/* ---- blobs -------------------------------------------------------------- */

int cas_put_buf(cas *c, char out[CAS_HEX_LEN + 1], const void *buf, size_t len)
{
	struct ingest_src s = { .fd = -1, .mem = buf, .len = len };

	if (!buf && len)
		return -EINVAL;
	return ingest_put(c, out, &s, CAS_BLOB, NULL);
}

/* Store the regular file open at fd (st: its fstat); *size_out gets the
 * bytes stored. A file with holes is stored raw, holes kept. */
static int put_fd(cas *c, char out[CAS_HEX_LEN + 1], int fd, const struct stat *st,
                  const struct cas_put_opts *o, uint64_t *size_out)
{
	struct ingest_src s = { .fd = fd, .stop = o ? o->stop : NULL,
	                        .later = o ? o->later : NULL,
	                        .size = (uint64_t)st->st_size };

	if ((uint64_t)st->st_blocks * 512 < (uint64_t)st->st_size)
		s.sparse = 1;
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* advice only */
	return ingest_put(c, out, &s, CAS_BLOB, size_out);
}

/* Open path (not following a final symlink, not blocking on a fifo) and
 * make sure it is a regular file. */
static int open_regular(const char *path, int nofollow, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK |
	              (nofollow ? O_NOFOLLOW : 0));
	int rc = 0;

	if (fd < 0)
		return errno == ELOOP && nofollow ? -EINVAL : -errno;
	if (fstat(fd, st) < 0)
		rc = -errno;
	else if (!S_ISREG(st->st_mode))
		rc = S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

int cas_put_file(cas *c, char out[CAS_HEX_LEN + 1], const char *path)
{
	struct stat st;
	int fd, rc;

	memset(&st, 0, sizeof st);
	fd = open_regular(path, 0, &st);
	if (fd < 0)
		return fd;
	rc = put_fd(c, out, fd, &st, NULL, NULL);
	close(fd);
	return rc;
}

/* ---- paths -------------------------------------------------------------- */

struct walk {
	cas *c;
	int rootfd;
	const char *disp;             /* the root as messages name it */
	const struct cas_put_opts *o;
	char **err;
};

static int walk_err(struct walk *w, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Record the first error message (when the caller wants one). */
static int walk_err(struct walk *w, int rc, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	if (!w->err || *w->err)
		return rc;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	*w->err = msg;
	return rc;
}

static int stopped(const struct walk *w)
{
	return w->o && w->o->stop && __atomic_load_n(w->o->stop, __ATOMIC_RELAXED);
}

/* openat as the reader (file-system ids only, this thread only). */
static int open_as(const struct walk *w, int dfd, const char *name, int flags)
{
	int as = w->o && w->o->as_user && geteuid() == 0, fd, e;

	if (as) {
		setfsgid(w->o->gid);
		setfsuid(w->o->uid);
	}
	fd = openat(dfd, name, flags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	e = errno;
	if (as) {
		setfsuid(0);
		setfsgid(0);
	}
	errno = e;
	return fd;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Store the symlink name in dfd (rel is its path below the root). */
static int walk_link(struct walk *w, int dfd, const char *name, const char *rel,
                     char out[CAS_HEX_LEN + 1], uint64_t *size)
{
	char target[PATH_MAX], *full = NULL;
	int d = 0, rc = 0;
	ssize_t n;

	n = readlinkat(dfd, name, target, sizeof target);
	if (n < 0)
		return walk_err(w, -errno, "%s/%s: %s", w->disp, rel, strerror(errno));
	if ((size_t)n >= sizeof target)
		return walk_err(w, -ENAMETOOLONG, "%s/%s: symlink target too long",
		                w->disp, rel);
	target[n] = '\0';
	if (target[0] == '/')
		return walk_err(w, -EXDEV, "%s/%s: symlink points outside %s/ (-> %s): "
		                "only relative links inside %s/ are kept",
		                w->disp, rel, w->disp, target, w->disp);
	/* Lexically: count the link's own directories, then walk the target. */
	for (const char *p = rel; *p; p++)
		d += *p == '/';
	for (const char *p = target; *p && d >= 0; ) {
		size_t len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.')
			d--;
		else if (len && !(len == 1 && p[0] == '.'))
			d++;
		p += len;
		p += *p == '/';
	}
	if (d >= 0) {
		/* Physically, from the root, never leaving it. */
		const char *slash = strrchr(rel, '/');
		if (asprintf(&full, "%.*s%s", slash ? (int)(slash - rel + 1) : 0, rel,
		             target) < 0) {
			full = NULL;
			rc = -ENOMEM;
			goto out;
		}
		struct open_how how = { .flags = O_PATH | O_CLOEXEC,
		                        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
		long fd = syscall(SYS_openat2, w->rootfd, full, &how, sizeof how);
		if (fd >= 0)
			close((int)fd);
		else if (errno != ENOENT && errno != ENOTDIR)
			d = -1;
	}
	if (d < 0) {
		rc = walk_err(w, -EXDEV, "%s/%s: symlink points outside %s/ (-> %s)",
		              w->disp, rel, w->disp, target);
		goto out;
	}
	rc = cas_put_buf(w->c, out, target, (size_t)n);
	if (rc < 0) {
		walk_err(w, rc, "%s/%s: %s", w->disp, rel, strerror(-rc));
		goto out;
	}
	*size = (uint64_t)n;
out:
	free(full);
	return rc;
}

/* The message for a source that cannot be opened. */
static int open_failed(struct walk *w, int rc, const char *rel, const struct stat *st)
{
	if (rc == -EACCES && st && S_ISREG(st->st_mode) && st->st_nlink > 1)
		return walk_err(w, rc, "%s/%s: a hard link to a file the step's user "
		                "cannot read", w->disp, rel);
	return walk_err(w, rc, "%s/%s: %s", w->disp, rel,
	                rc == -EINVAL ? "not a regular file" : strerror(-rc));
}

/* Store the regular file open at fd (already checked to be one). */
static int walk_fd(struct walk *w, int fd, const char *rel, const struct stat *st,
                   char out[CAS_HEX_LEN + 1], uint64_t *size, unsigned *mode)
{
	int rc = put_fd(w->c, out, fd, st, w->o, size);
	if (rc < 0)
		return walk_err(w, rc, "%s/%s: %s", w->disp, rel, strerror(-rc));
	*mode = (st->st_mode & 0111) ? 0755 : 0644;
	return 0;
}

static int walk_dir(struct walk *w, int dfd, const char *rel,
                    char out[CAS_HEX_LEN + 1]);

/* Store entry name of directory dfd, found to be st by lstat. */
static int walk_entry(struct walk *w, int dfd, const char *name, const char *rel,
                      const struct stat *st, char *type, unsigned *mode,
                      char hex[CAS_HEX_LEN + 1], uint64_t *size)
{
	struct stat fst;
	int fd, rc;

	if (S_ISLNK(st->st_mode)) {
		*type = 'l';
		*mode = 0777;
		return walk_link(w, dfd, name, rel, hex, size);
	}
	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
		return walk_err(w, -EINVAL, "%s/%s: not a regular file, directory or "
		                "symlink", w->disp, rel);
	fd = open_as(w, dfd, name, O_RDONLY | O_NONBLOCK |
	             (S_ISDIR(st->st_mode) ? O_DIRECTORY : 0));
	if (fd < 0)
		return open_failed(w, -errno, rel, st);
	if (fstat(fd, &fst) < 0) {
		rc = walk_err(w, -errno, "%s/%s: %s", w->disp, rel, strerror(errno));
	} else if ((fst.st_mode & S_IFMT) != (st->st_mode & S_IFMT)) {
		rc = walk_err(w, -EAGAIN, "%s/%s: changed while it was stored",
		              w->disp, rel);
	} else if (S_ISDIR(fst.st_mode)) {
		*type = 'd';
		*mode = 0755;
		rc = walk_dir(w, fd, rel, hex);
	} else {
		*type = 'f';
		rc = walk_fd(w, fd, rel, &fst, hex, size, mode);
	}
	close(fd);
	return rc;
}

/* Store the directory open at dfd (rel below the root, "" for the root). */
static int walk_dir(struct walk *w, int dfd, const char *rel,
                    char out[CAS_HEX_LEN + 1])
{
	struct strbuf text = { 0 };
	char **names = NULL, *child = NULL;
	size_t nn = 0, cap = 0;
	struct dirent *de;
	DIR *dir = NULL;
	int rc = 0, dup_fd;

	dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	if (dup_fd < 0 || !(dir = fdopendir(dup_fd))) {
		rc = walk_err(w, -errno, "%s/%s: %s", w->disp, rel, strerror(errno));
		if (dup_fd >= 0)
			close(dup_fd);
		goto out;
	}
	rewinddir(dir);
	while ((errno = 0, de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (w->o && w->o->skip && w->o->skip(rel, de->d_name, w->o->skip_arg))
			continue;
		if (strpbrk(de->d_name, "\n\t")) {
			rc = walk_err(w, -EINVAL, "%s/%s%s%s: file name contains a newline "
			              "or tab", w->disp, rel, *rel ? "/" : "", de->d_name);
			goto out;
		}
		if (nn == cap) {
			size_t nc = cap ? cap * 2 : 32;
			char **nw = realloc(names, nc * sizeof *names);
			if (!nw) {
				rc = -ENOMEM;
				goto out;
			}
			names = nw;
			cap = nc;
		}
		names[nn] = strdup(de->d_name);
		if (!names[nn]) {
			rc = -ENOMEM;
			goto out;
		}
		nn++;
	}
	if (errno) {
		rc = walk_err(w, -errno, "%s/%s: %s", w->disp, rel, strerror(errno));
		goto out;
	}
	if (nn)
		qsort(names, nn, sizeof *names, cmp_name);
	for (size_t i = 0; i < nn; i++) {
		char hex[CAS_HEX_LEN + 1];
		uint64_t size = 0;
		unsigned mode = 0;
		struct stat st;
		char type = 0;

		if (stopped(w)) {
			rc = -ECANCELED;
			goto out;
		}
		free(child);
		if (asprintf(&child, "%s%s%s", rel, *rel ? "/" : "", names[i]) < 0) {
			child = NULL;
			rc = -ENOMEM;
			goto out;
		}
		if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = walk_err(w, -errno, "%s/%s: %s", w->disp, child, strerror(errno));
			goto out;
		}
		rc = walk_entry(w, dfd, names[i], child, &st, &type, &mode, hex, &size);
		if (rc < 0)
			goto out;
		cas_tree_add(&text, type, mode, hex, size, names[i]);
	}
	{
		struct ingest_src s = { .fd = -1, .mem = (const unsigned char *)text.buf,
		                        .len = text.len, .later = w->o ? w->o->later : NULL };
		rc = ingest_put(w->c, out, &s, CAS_TREE, NULL);
		if (rc < 0)
			walk_err(w, rc, "%s/%s: %s", w->disp, rel, strerror(-rc));
	}
out:
	strbuf_release(&text);
	free(child);
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	if (dir)
		closedir(dir);
	return rc;
}

int cas_put_at(cas *c, char out[CAS_HEX_LEN + 1], enum cas_kind *kind_out,
               int rootfd, const char *name, const char *disp,
               const struct cas_put_opts *o, char **err)
{
	struct walk w = { .c = c, .rootfd = rootfd, .disp = disp, .o = o, .err = err };
	struct open_how how = { .flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
	                        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	char linkbuf[64], real[PATH_MAX], rootpath[PATH_MAX], *rel = NULL;
	struct stat lst, st;
	uint64_t size;
	unsigned mode;
	int fd = -1, rc = 0, as;
	ssize_t n;

	if (err)
		*err = NULL;
	if (!name || !*name)
		return walk_err(&w, -EINVAL, "empty path");
	if (fstatat(rootfd, name, &lst, AT_SYMLINK_NOFOLLOW) < 0)
		return walk_err(&w, -errno, "%s/%s: %s", disp, name, strerror(errno));
	as = o && o->as_user && geteuid() == 0;
	if (as) {
		setfsgid(o->gid);
		setfsuid(o->uid);
	}
	fd = (int)syscall(SYS_openat2, rootfd, name, &how, sizeof how);
	int e = errno;
	if (as) {
		setfsuid(0);
		setfsgid(0);
	}
	if (fd < 0) {
		if (S_ISLNK(lst.st_mode) && (e == EXDEV || e == ELOOP)) {
			n = readlinkat(rootfd, name, real, sizeof real - 1);
			real[n < 0 ? 0 : n] = '\0';
			return walk_err(&w, -EXDEV, "%s/%s: symlink points outside %s/ (-> %s)",
			                disp, name, disp, real);
		}
		if (S_ISLNK(lst.st_mode) && e == ENOENT)
			return walk_err(&w, -ENOENT, "%s/%s: dangling symlink", disp, name);
		return open_failed(&w, -e, name, &lst);
	}
	if (fstat(fd, &st) < 0) {
		rc = walk_err(&w, -errno, "%s/%s: %s", disp, name, strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		/* Where the top resolved to, below the root: the links inside
		 * are checked against it. */
		snprintf(linkbuf, sizeof linkbuf, "/proc/self/fd/%d", fd);
		n = readlink(linkbuf, real, sizeof real - 1);
		real[n < 0 ? 0 : n] = '\0';
		snprintf(linkbuf, sizeof linkbuf, "/proc/self/fd/%d", rootfd);
		ssize_t rn = readlink(linkbuf, rootpath, sizeof rootpath - 1);
		rootpath[rn < 0 ? 0 : rn] = '\0';
		size_t rl = strlen(rootpath);
		if (n > 0 && rn > 0 && !strcmp(real, rootpath))
			rel = strdup("");
		else if (n > 0 && rn > 0 && !strncmp(real, rootpath, rl) &&
		         (real[rl] == '/' || rl == 1))
			rel = strdup(real + rl + (rl > 1));
		else
			rel = strdup(name);
		if (!rel) {
			rc = -ENOMEM;
			goto out;
		}
		rc = walk_dir(&w, fd, rel, out);
		if (rc == 0 && kind_out)
			*kind_out = CAS_TREE;
	} else if (S_ISREG(st.st_mode)) {
		rc = walk_fd(&w, fd, name, &st, out, &size, &mode);
		if (rc == 0 && kind_out)
			*kind_out = CAS_BLOB;
	} else {
		rc = walk_err(&w, -EINVAL, "%s/%s: not a regular file, directory or "
		              "symlink", disp, name);
	}
out:
	if (rc == -ECANCELED)
		walk_err(&w, rc, "%s/%s: stopped", disp, name);
	else if (rc < 0)
		walk_err(&w, rc, "%s/%s: %s", disp, name, strerror(-rc));
	free(rel);
	close(fd);
	return rc;
}

/* The canonical path of path itself, resolving its parent but not a final
 * symlink: realpath(dirname) + "/" + basename. */
static char *abs_nofollow(const char *path)
{
	char *copy = strdup(path), *slash, *dir = NULL, *res = NULL;
	const char *base;
	size_t len;

	if (!copy)
		return NULL;
	len = strlen(copy);
	while (len > 1 && copy[len - 1] == '/')
		copy[--len] = '\0';
	slash = strrchr(copy, '/');
	if (!slash) {
		dir = realpath(".", NULL);
		base = copy;
	} else {
		*slash = '\0';
		dir = realpath(slash == copy ? "/" : copy, NULL);
		base = slash + 1;
	}
	if (dir && (!*base || !strcmp(base, ".") || !strcmp(base, ".."))) {
		res = realpath(path, NULL);  /* no final component to keep */
	} else if (dir && asprintf(&res, "%s/%s", strcmp(dir, "/") ? dir : "",
	                           base) < 0) {
		res = NULL;
	}
	free(dir);
	free(copy);
	return res;
}

int cas_put_path(cas *c, char out[CAS_HEX_LEN + 1], enum cas_kind *kind_out,
                 const char *path, const char *root, const struct cas_put_opts *o,
                 char **err)
{
	struct walk w = { .c = c, .err = err };
	char *self = NULL, *rootreal = NULL, *disp = NULL, *slash;
	const char *name;
	struct stat st;
	size_t rl;
	int rootfd = -1, rc = 0;

	if (err)
		*err = NULL;
	if (!path || !*path)
		return walk_err(&w, -EINVAL, "empty path");
	self = abs_nofollow(path);
	if (!self) {
		rc = -errno;
		walk_err(&w, rc, "%s: %s", path, strerror(errno));
		goto out;
	}
	/* No root given: the stored directory (or a file's directory). */
	if (root) {
		rootreal = realpath(root, NULL);
	} else {
		rootreal = realpath(self, NULL);
		if (rootreal && stat(rootreal, &st) == 0 && !S_ISDIR(st.st_mode)) {
			slash = strrchr(rootreal, '/');
			slash[slash == rootreal] = '\0';
		}
	}
	if (!rootreal) {
		rc = errno ? -errno : -ENOMEM;
		walk_err(&w, rc, "%s: %s", root ? root : path, strerror(-rc));
		goto out;
	}
	rl = strlen(rootreal);
	if (rl == 1) {
		name = self + 1;
	} else if (!strncmp(self, rootreal, rl) && self[rl] == '/') {
		name = self + rl + 1;
	} else if (!strcmp(self, rootreal)) {
		name = ".";
	} else {
		rc = walk_err(&w, -EINVAL, "%s: not inside %s", path, rootreal);
		goto out;
	}
	/* Messages name paths from the root's own name: "out/model/x". */
	slash = strrchr(rootreal, '/');
	disp = strdup(rl == 1 ? "" : slash + 1);
	rootfd = open(rootreal, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (!disp || rootfd < 0) {
		rc = disp ? -errno : -ENOMEM;
		walk_err(&w, rc, "%s: %s", rootreal, strerror(-rc));
		goto out;
	}
	rc = cas_put_at(c, out, kind_out, rootfd, name, disp, o, err);
out:
	if (rootfd >= 0)
		close(rootfd);
	free(disp);
	free(rootreal);
	free(self);
	return rc;
}

