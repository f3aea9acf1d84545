/*
 * util.c - allocation, string buffers, recursive directory helpers and
 * time: the small things every module needs, in one place so none of them
 * grows its own copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "flowyfs/util.h"

void util_oom(void)
{
	fputs("flowyfs: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		util_oom();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		util_oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		util_oom();
	return p;
}

char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		util_oom();
	return d;
}

char *xstrndup(const char *s, size_t n)
{
	char *d = strndup(s, n);
	if (!d)
		util_oom();
	return d;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		util_oom();
	va_end(ap);
	return s;
}

void strbuf_grow(struct strbuf *sb, size_t extra)
{
	if (sb->len + extra + 1 <= sb->cap)
		return;
	size_t cap = sb->cap ? sb->cap : 256;
	while (cap < sb->len + extra + 1)
		cap *= 2;
	sb->buf = xrealloc(sb->buf, cap);
	if (!sb->cap)
		sb->buf[0] = '\0';
	sb->cap = cap;
}

void strbuf_add(struct strbuf *sb, const void *data, size_t len)
{
	strbuf_grow(sb, len);
	memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
}

void strbuf_puts(struct strbuf *sb, const char *s)
{
	strbuf_add(sb, s, strlen(s));
}

void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	strbuf_grow(sb, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

char *strbuf_detach(struct strbuf *sb, size_t *len_out)
{
	strbuf_grow(sb, 0);
	char *b = sb->buf;
	if (len_out)
		*len_out = sb->len;
	sb->buf = NULL;
	sb->len = sb->cap = 0;
	return b;
}

void strbuf_release(struct strbuf *sb)
{
	free(sb->buf);
	sb->buf = NULL;
	sb->len = sb->cap = 0;
}

char *util_fmt_double(char buf[UTIL_DOUBLE_LEN], double v)
{
	if (isnan(v)) {
		strcpy(buf, "nan");
		return buf;
	}
	if (isinf(v)) {
		strcpy(buf, v < 0 ? "-inf" : "inf");
		return buf;
	}
	/* Integers below 1e15 print as their digits, which is what the search
	 * below ends with; this is the common case (run ids, counts). -0
	 * keeps its sign there, so it takes the long way. */
	if (fabs(v) < 1e15 && v == (double)(long long)v && !(v == 0 && signbit(v))) {
		snprintf(buf, UTIL_DOUBLE_LEN, "%lld", (long long)v);
		return buf;
	}
	int prec = 1;
	for (; prec < 17; prec++) {   /* 17 digits always read back */
		snprintf(buf, UTIL_DOUBLE_LEN, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	/* Few digits make %g switch to an exponent early (100 is "1e+02" at
	 * precision 1): print plainly wherever %.17g would have. */
	const char *e = strchr(buf, 'e');
	int exp10 = e ? atoi(e + 1) : 0;
	if (prec == 17 || (e && exp10 >= prec && exp10 < 17))
		snprintf(buf, UTIL_DOUBLE_LEN, "%.*g", prec == 17 ? 17 : exp10 + 1, v);
	return buf;
}

double util_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int util_mkdir_p(const char *path, unsigned mode)
{
	if (mkdir(path, mode) == 0)
		return 0;
	if (errno == EEXIST) {
		struct stat st;
		return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	}
	if (errno != ENOENT)
		return -errno;
	char *p = xstrdup(path);
	int rc = 0;
	for (char *s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, mode) < 0 && errno != EEXIST) {
				rc = -errno;
				break;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	free(p);
	return rc;
}

/* Remove name below at (recursively); the disk usage that frees (files
 * with no other link, and directories, at st_blocks * 512) adds to
 * *bytes when bytes is not NULL. With dry, only count. */
static int rm_rf_at(int at, const char *name, int dry, uint64_t *bytes)
{
	struct stat st;
	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (bytes && (S_ISDIR(st.st_mode) || st.st_nlink == 1))
		*bytes += (uint64_t)st.st_blocks * 512;
	if (!S_ISDIR(st.st_mode))
		return dry ? 0 : unlinkat(at, name, 0) < 0 ? -errno : 0;
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	int rc = 0;
	/* Exported inputs are read-only: make room to unlink. A directory of
	 * another user keeps its mode (EPERM); its unlinks say if it mattered. */
	if (!dry && fchmod(fd, 0700) < 0 && errno != EPERM)
		rc = -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		int r = rm_rf_at(dirfd(d), e->d_name, dry, bytes);
		if (r < 0 && !rc)
			rc = r;
	}
	closedir(d);
	if (!dry && unlinkat(at, name, AT_REMOVEDIR) < 0 && !rc)
		rc = -errno;
	return rc;
}

int util_rm_rf(const char *path)
{
	return rm_rf_at(AT_FDCWD, path, 0, NULL);
}

int util_rm_rf_counted(const char *path, int dry, uint64_t *bytes)
{
	return rm_rf_at(AT_FDCWD, path, dry, bytes);
}

int util_link_tree(const char *src, const char *dst, uint64_t *made)
{
	struct stat st;
	if (lstat(src, &st) < 0)
		return -errno;
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlink(src, target, sizeof target - 1);
		if (n < 0)
			return -errno;
		target[n] = '\0';
		return symlink(target, dst) < 0 ? -errno : 0;
	}
	if (!S_ISDIR(st.st_mode))
		return link(src, dst) < 0 ? -errno : 0;
	if (mkdir(dst, st.st_mode & 07777) < 0)
		return -errno;
	struct stat ds;
	if (made && stat(dst, &ds) == 0)
		*made += (uint64_t)ds.st_blocks * 512;
	DIR *d = opendir(src);
	if (!d)
		return -errno;
	int rc = 0;
	struct dirent *e;
	while (!rc && (errno = 0, e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *a = xasprintf("%s/%s", src, e->d_name), *b = xasprintf("%s/%s", dst, e->d_name);
		rc = util_link_tree(a, b, made);
		free(b);
		free(a);
	}
	if (!rc && errno)
		rc = -errno;
	closedir(d);
	return rc;
}

#define COPY_CHUNK ((uint64_t)64 << 20)  /* between looks at the stop flag */

static int stopped(const int *stop)
{
	return stop && __atomic_load_n(stop, __ATOMIC_RELAXED);
}

/* Copy [off, off+len) of in to the same place in out by pread and pwrite
 * through buf (cap bytes); a source that ends early is -EIO. */
static int copy_rw(int in, int out, uint64_t off, uint64_t len, unsigned char *buf,
                   size_t cap, const int *stop)
{
	uint64_t done = 0;
	int rc = 0;
	while (done < len && !rc) {
		if (stopped(stop))
			return -ECANCELED;
		size_t want = len - done < cap ? (size_t)(len - done) : cap;
		ssize_t r = pread(in, buf, want, (off_t)(off + done));
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		for (ssize_t w = 0; w < r && !rc; ) {
			ssize_t m = pwrite(out, buf + w, (size_t)(r - w), (off_t)(off + done) + w);
			if (m < 0)
				rc = -errno;
			else
				w += m;
		}
		done += (uint64_t)r;
	}
	return rc;
}

/* Copy [off, off+len) of in to the same place in out: in-kernel copy,
 * else read/write. */
static int copy_range(int in, int out, uint64_t off, uint64_t len, const int *stop)
{
	uint64_t done = 0;
	ssize_t n = 0;

	while (done < len) {
		if (stopped(stop))
			return -ECANCELED;
		loff_t a = (loff_t)(off + done), b = a;
		n = copy_file_range(in, &a, out, &b, len - done < COPY_CHUNK ? len - done :
		                    COPY_CHUNK, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (uint64_t)n;
	}
	if (done == len)
		return 0;
	if (n < 0 && errno != EXDEV && errno != EOPNOTSUPP && errno != ENOSYS &&
	    errno != EINVAL)
		return -errno;
	unsigned char *buf = xmalloc(1 << 20);
	int rc = copy_rw(in, out, off + done, len - done, buf, 1 << 20, stop);
	free(buf);
	return rc;
}

/* Content this small is read and written in one go: no hole to keep is
 * worth the lseeks and the kernel's splice set-up (pipeline code files,
 * a step's small inputs). */
#define COPY_SMALL (64 * 1024)

static int copy_small(int in, int out, size_t size)
{
	unsigned char buf[COPY_SMALL];
	return copy_rw(in, out, 0, size, buf, sizeof buf, NULL);
}

/* Give out the size size, unless it has it (a truncate is a metadata
 * write even when the size stays). */
static int set_size(int out, uint64_t size)
{
	struct stat st;
	if (fstat(out, &st) == 0 && (uint64_t)st.st_size == size)
		return 0;
	return ftruncate(out, (off_t)size) < 0 ? -errno : 0;
}

int util_copy_fd(int in, int out, uint64_t size, const int *stop)
{
	uint64_t pos = 0;
	int rc;

	if (size <= COPY_SMALL) {
		rc = copy_small(in, out, (size_t)size);
		return rc < 0 ? rc : set_size(out, size);
	}
	while (pos < size) {
		off_t data = lseek(in, (off_t)pos, SEEK_DATA), hole;
		if (data < 0) {
			if (errno == ENXIO)
				break;  /* a hole up to the end */
			return -errno;
		}
		if ((uint64_t)data >= size)
			break;
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		if ((uint64_t)hole > size)
			hole = (off_t)size;
		rc = copy_range(in, out, (uint64_t)data, (uint64_t)(hole - data), stop);
		if (rc < 0)
			return rc;
		pos = (uint64_t)hole;
	}
	return set_size(out, size);
}

int util_copy_file(const char *src, const char *dst, mode_t mode, const int *stop)
{
	struct stat st;
	int in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (in < 0)
		return -errno;
	if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		int e = S_ISREG(st.st_mode) ? -errno : -EINVAL;
		close(in);
		return e;
	}
	int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode & 0777);
	if (out < 0) {
		int e = -errno;
		close(in);
		return e;
	}
	int rc = util_copy_fd(in, out, (uint64_t)st.st_size, stop);
	if (close(out) < 0 && !rc)
		rc = -errno;
	close(in);
	return rc;
}

static int copy_tree_rel(const char *src, const char *dst, const char *rel,
                         int (*skip)(const char *, int, void *), void *arg)
{
	DIR *d = opendir(src);
	if (!d)
		return -errno;
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) && !rc) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *s = xasprintf("%s/%s", src, e->d_name);
		char *t = xasprintf("%s/%s", dst, e->d_name);
		char *r = *rel ? xasprintf("%s/%s", rel, e->d_name) : xstrdup(e->d_name);
		struct stat st;
		if (lstat(s, &st) == 0) {
			int is_dir = S_ISDIR(st.st_mode);
			if (skip && skip(r, is_dir, arg))
				;
			else if (is_dir) {
				if (mkdir(t, 0755) < 0 && errno != EEXIST)
					rc = -errno;
				else
					rc = copy_tree_rel(s, t, r, skip, arg);
			} else if (S_ISREG(st.st_mode)) {
				rc = util_copy_file(s, t, st.st_mode, NULL);
			} else if (S_ISLNK(st.st_mode)) {
				char target[PATH_MAX];
				ssize_t n = readlink(s, target, sizeof target - 1);
				if (n < 0) {
					rc = -errno;
				} else {
					target[n] = '\0';
					if (symlink(target, t) < 0)
						rc = -errno;
				}
			}
		}
		free(r);
		free(t);
		free(s);
	}
	closedir(d);
	return rc;
}

int util_copy_tree(const char *src, const char *dst,
                   int (*skip)(const char *rel, int is_dir, void *arg), void *arg)
{
	int rc = util_mkdir_p(dst, 0755);
	if (rc < 0)
		return rc;
	return copy_tree_rel(src, dst, "", skip, arg);
}

int util_read_file(const char *path, char **out, size_t *len_out)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	struct strbuf sb = {0};
	char buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		strbuf_add(&sb, buf, (size_t)n);
	int rc = n < 0 ? -errno : 0;
	close(fd);
	if (rc < 0) {
		strbuf_release(&sb);
		return rc;
	}
	*out = strbuf_detach(&sb, len_out);
	return 0;
}

int util_write_file(const char *path, const void *data, size_t len)
{
	char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
	int rc = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			rc = -errno;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
out:
	free(tmp);
	return rc;
}

int util_put_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, data, len);
	int rc = n < 0 ? -errno : (size_t)n != len ? -EIO : 0;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	return rc;
}

void util_strv_free(char **v)
{
	for (char **e = v; e && *e; e++)
		free(*e);
	free(v);
}

int util_private_umask(unsigned mask)
{
	if (unshare(CLONE_FS) < 0)
		return -errno;
	umask((mode_t)mask);
	return 0;
}
