/*
 * util.h - small helpers every module uses: allocation that aborts on
 * out-of-memory (bookkeeping only), a growable string buffer, paths and
 * time.
 */
#ifndef FLOWYFS_UTIL_H
#define FLOWYFS_UTIL_H

#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>

/* Report out-of-memory and abort. */
void util_oom(void) __attribute__((noreturn));
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Make room (doubling, aborting on out-of-memory) in the array arr (cap slots) for element n. */
#define GROW(arr, cap, n) do { \
	if ((n) >= (cap)) { \
		(cap) = (cap) ? (cap) * 2 : 8; \
		(arr) = xrealloc((arr), (cap) * sizeof *(arr)); \
	} \
} while (0)

/* A growable, always NUL-terminated byte buffer. */
struct strbuf {
	char *buf;
	size_t len, cap;
};
void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_puts(struct strbuf *sb, const char *s);
void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Hand the buffer to the caller (who frees it) and reset sb. */
char *strbuf_detach(struct strbuf *sb, size_t *len_out);
void strbuf_release(struct strbuf *sb);

/* The longest text util_fmt_double writes, with its NUL. */
#define UTIL_DOUBLE_LEN 32
/* Write v into buf as the shortest "%.*g" text (precision 1..17) that
 * strtod reads back to the same double: 0.9775 -> "0.9775", 3 -> "3",
 * 1e21 -> "1e+21", -0.0 -> "-0"; NaN and infinities as "nan", "inf",
 * "-inf". Returns buf. Every view prints numbers through this. */
char *util_fmt_double(char buf[UTIL_DOUBLE_LEN], double v);

/* Seconds since the epoch, with sub-second precision. */
double util_now(void);
/* mkdir -p; 0 or -errno. */
int util_mkdir_p(const char *path, unsigned mode);
/* rm -rf (does not follow symlinks); 0 or -errno. */
int util_rm_rf(const char *path);
/* The same, adding to *bytes the disk usage it frees (st_blocks * 512 of
 * directories and of files with no other link, as du counts); with dry,
 * only count. */
int util_rm_rf_counted(const char *path, int dry, uint64_t *bytes);
/* Copy the tree src to the new dst with hard links for its files (links
 * as links, directories made with their modes); the disk usage of the
 * directories it made adds to *made (may be NULL). 0 or -errno. */
int util_link_tree(const char *src, const char *dst, uint64_t *made);
/* Copy a directory tree (regular files with their holes, dirs, symlinks
 * as they are; other file types are skipped).
 * skip(rel, is_dir, arg) may exclude entries by their relative path. */
int util_copy_tree(const char *src, const char *dst,
                   int (*skip)(const char *rel, int is_dir, void *arg), void *arg);
/* Copy size bytes of in to out at the same offsets, keeping holes (only
 * data ranges are copied, in the kernel where it can; 64 KiB or less is
 * read and written whole), then set out's size; 0 or -errno (-ECANCELED once *stop, when given, is set by another
 * thread: it is looked at every 64 MiB). */
int util_copy_fd(int in, int out, uint64_t size, const int *stop);
/* Copy the regular file src (not following a symlink) to dst with mode,
 * keeping holes; 0 or -errno, stop as for util_copy_fd. */
int util_copy_file(const char *src, const char *dst, mode_t mode, const int *stop);
/* Read a whole file into a NUL-terminated buffer; 0 or -errno. */
int util_read_file(const char *path, char **out, size_t *len_out);
/* Write a whole file atomically (temp + fsync + rename); 0 or -errno. */
int util_write_file(const char *path, const void *data, size_t len);
/* Write a whole file, no durability promised (scratch data); 0 or -errno. */
int util_put_file(const char *path, const void *data, size_t len);
/* Give the calling thread a umask of its own (unshare(CLONE_FS)) set to
 * mask: the daemon's is 0 (FUSE callers' modes arrive masked already), but
 * libraries that create files with 0666/0777 and the steps it starts want
 * the usual one. Threads this thread creates share it. 0 or -errno. */
int util_private_umask(unsigned mask);

/* Free a NULL-terminated array of malloc'd strings and the array (NULL
 * is nothing). */
void util_strv_free(char **v);

#endif
