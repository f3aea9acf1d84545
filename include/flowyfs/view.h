/*
 * view.h - what a view of the tree implements. A view owns one top-level
 * directory (artifacts, runs, ...) and answers for every path below it;
 * paths are relative to the mount root, without a leading slash
 * ("runs/3/status"). Read-only views leave the write operations NULL and
 * the dispatcher answers EROFS. route.c holds the table of views.
 */
#ifndef FLOWYFS_VIEW_H
#define FLOWYFS_VIEW_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "flowyfs/cas.h"
#include "flowyfs/flowy.h"
#include "flowyfs/handle.h"

struct view_attr {
	mode_t mode;       /* S_IFDIR|0555, S_IFREG|0444, S_IFLNK|0777 ... */
	uint64_t size;
	double mtime;
	int immutable;     /* never changes: the kernel may cache it forever */
	int reuse;         /* in: a render cached moments ago will do (GETATTR
	                      of a node already looked up, e.g. fstat) */
	int has_stat;      /* st is the backing object's own stat: the kernel
	                      gets it whole (owner, links, times in ns) and
	                      mode/size/mtime above are ignored */
	struct stat st;
	int has_owner;     /* without has_stat: uid/gid own the node (else
	                      the daemon's) */
	uid_t uid;
	gid_t gid;
};

/* A backing object's st_ino is reported with this bit set, so it cannot
 * collide with the inode numbers of generated nodes (small integers). */
#define VIEW_BACKING_INO (1ULL << 63)

/* Fill a view_attr with the real stat of a backing object. */
void view_stat_attr(struct view_attr *a, const struct stat *st);

struct dirlist {
	struct dir_entry {
		char *name;
		mode_t mode;
		uint64_t ino; /* a backing entry's d_ino, or 0 (generated) */
	} *e;
	size_t n, cap;
	/* Optional: more_n entries after e[], made one at a time as readdir
	 * reaches them (a listing too big to copy whole, such as a huge tree
	 * object): more(arg, i, name, cap, mode) writes entry i's name (cap
	 * bytes) and mode, 0 or -errno; more_free(arg) runs at dirlist_free. */
	size_t more_n;
	int (*more)(void *arg, size_t i, char *name, size_t cap, mode_t *mode);
	void (*more_free)(void *arg);
	void *more_arg;
	int kept;      /* set by a view whose listing is a function of the
	                  database alone: it is kept per generation and the
	                  kernel may cache it (dirpack.h) */
};

void dirlist_add(struct dirlist *l, const char *name, mode_t mode);
/* Add the entries of a real directory (not . and ..); 0 or -errno. */
int dirlist_add_dir(struct dirlist *l, const char *dir);
/* The same for an open directory descriptor, which it takes over. */
int dirlist_add_dirfd(struct dirlist *l, int fd);
void dirlist_free(struct dirlist *l);

/* When artifact hex was first recorded (its files' mtime), or 0 (then
 * the mount's time). Takes the db lock. */
double view_artifact_time(struct flowy *f, const char *hex);
/* A run's files' mtime: its finish time once it ended (so they stay
 * still for tar and ls -lt), else now. Takes the db lock. */
double view_run_time(struct flowy *f, int64_t id);

/* Fill a view_attr for a generated file with the given text. */
void view_text_attr(struct view_attr *a, const char *text, double mtime);
/* The same for a rendered file at path, keeping text (handed over) in the
 * render cache for the open that usually follows. */
void view_generated_attr(struct view_attr *a, const char *path, char *text);
/* Make h an FH_BUF owning text (malloc'd, handed over). */
void view_text_fh(struct fh *h, char *text);
/* Make h an FH_FD of the backing file fd (taken over), direct_io. */
void view_fd_fh(struct fh *h, int fd);
/* A write through an FH_FD handle: bytes written or -errno (-EBADF for
 * other kinds). */
int view_fd_write(struct fh *h, const char *buf, size_t len, off_t off);
/* header followed by the content of the file at path (a daemon-kept
 * record such as hooks.log; missing: header only). malloc'd. */
char *view_file_text(const char *header, const char *path);
/* Append t (seconds since the epoch) as ISO 8601 UTC with milliseconds,
 * without newline. */
struct strbuf;
void view_fmt_time(struct strbuf *sb, double t);
/* Rewrite every finite number in the JSON tree j (in place) as raw text
 * in util_fmt_double's shortest form, so cJSON prints numbers as the TSV
 * views do (cJSON alone writes 0.33333333333333331 for 1/3). */
struct cJSON;
void view_json_numbers(struct cJSON *j);
/* Append a duration in seconds with three decimals ("12.345"). */
void view_fmt_secs(struct strbuf *sb, double secs);
/* A generated file is rendered at lookup (its size) and again at open;
 * the render cache hands the lookup's text to the open that follows it
 * (within VIEW_CACHE_TTL seconds) and to GETATTRs of the open file, so a
 * file is rendered once per `cat`. Every command's path walk looks up
 * afresh (entry timeout 0) and LOOKUP always renders, so what an open gets
 * is never older than that command. put takes ownership of text; take
 * returns a copy (caller frees) or NULL. */
#define VIEW_CACHE_TTL 0.5
void view_cache_put(const char *path, char *text);
char *view_cache_take(const char *path);
/* When a->reuse and a fresh render of path is cached, fill a from it and
 * return 1; else 0 (the caller renders). */
int view_cached_attr(struct view_attr *a, const char *path);
/* Files rendered from the database alone (no clock, no file on disk)
 * are kept per database generation (gencache.h), so a big view is
 * rendered once per change of the store, not once per cat.
 * view_kept_text returns path's kept text (a copy, caller frees) when the
 * generation has not moved, else NULL; either way *gen is the generation
 * to pass to view_keep with what the caller then renders (read before the
 * render, so a change during it only makes the kept text look older).
 * view_kept_attr fills a (as view_text_attr, mtime now) from a kept text
 * without copying it: 1, or 0 when there is none. */
char *view_kept_text(struct flowy *f, const char *path, uint64_t *gen);
void view_keep(const char *path, uint64_t gen, const char *text);
int view_kept_attr(struct flowy *f, const char *path, struct view_attr *a);
/* Split path into at most n components (copied into buf); returns count. */
int view_split(const char *path, char *buf, size_t bufsz, char **parts, int n);

/* The uid of the request this thread answers: fs.c sets it before a
 * write, unlink, rmdir, symlink or rename, for views that record who did
 * something (registry/history). */
/* Open a write-only command file (.ctl): -EACCES for reading, else h
 * becomes an FH_CTL with direct_io; 0. */
int view_ctl_open(struct fh *h, int flags);
/* A write to a command file (.ctl) as lines: each one cut at 256 bytes,
 * control characters made spaces, and handed to apply(arg, line) unless
 * blank. Returns len, or the first -errno apply returned (the lines after
 * it are not run). */
int view_ctl_lines(const char *buf, size_t len, int (*apply)(void *arg, const char *line),
                   void *arg);
void view_caller_set(uid_t uid);
uid_t view_caller_uid(void);

struct view {
	const char *name;  /* top-level directory; "" is the root */
	int (*getattr)(struct flowy *f, const char *path, struct view_attr *out);
	int (*readdir)(struct flowy *f, const char *path, struct dirlist *out);
	int (*open)(struct flowy *f, const char *path, int flags, struct fh *out);
	int (*readlink)(struct flowy *f, const char *path, char **out);
	/* Writable views only. */
	int (*create)(struct flowy *f, const char *path, mode_t mode, int flags,
	              struct fh *out);
	int (*write)(struct flowy *f, struct fh *h, const char *buf, size_t len,
	             off_t off);
	int (*mkdir)(struct flowy *f, const char *path, mode_t mode);
	int (*unlink)(struct flowy *f, const char *path);
	int (*rmdir)(struct flowy *f, const char *path);
	int (*rename)(struct flowy *f, const char *from, const char *to,
	              unsigned flags);
	int (*truncate)(struct flowy *f, const char *path, off_t size);
	int (*chmod)(struct flowy *f, const char *path, mode_t mode);
	int (*utimens)(struct flowy *f, const char *path,
	               const struct timespec tv[2]);
	void (*release)(struct flowy *f, struct fh *h);
	/* Writable views, all optional (NULL: EROFS, or EPERM for symlink,
	 * link and mknod). uid or gid (uid_t)-1 / (gid_t)-1: unchanged. The
	 * dispatcher also calls chown right after a create, mkdir, symlink or
	 * mknod to give the new object the caller's owner (daemon run as root). */
	int (*chown)(struct flowy *f, const char *path, uid_t uid, gid_t gid);
	int (*symlink)(struct flowy *f, const char *target, const char *path);
	int (*link)(struct flowy *f, const char *from, const char *to);
	int (*mknod)(struct flowy *f, const char *path, mode_t mode, dev_t rdev);
};

/* route.c: the view owning path (never NULL for a valid path; the root
 * view answers for "" and unknown top-level names). */
const struct view *route_find(const char *path);
/* The views, in listing order, NULL-terminated (root excluded). */
extern const struct view *const route_views[];

extern const struct view view_root, view_pipelines, view_artifacts,
	view_runs, view_lineage, view_metrics, view_hooks, view_registry, view_store;

/* metrics/<p>/runs.tsv of the newest limit runs of p whose id is below
 * before (INT64_MAX, -1: the whole file), oldest first; its columns are
 * those of the runs it shows. Reads only those runs' rows. malloc'd. */
char *view_metrics_runs_tsv(struct flowy *f, const char *p, int64_t before, int64_t limit);

#endif
