/*
 * route.c - the router: a table from top-level directory to view, like
 * tmux's command table. Adding a view is adding one file and one row.
 * Also the small helpers views share (directory lists, rendered text).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "flowyfs/gencache.h"
#include "flowyfs/log.h"
#include "flowyfs/util.h"
#include "flowyfs/view.h"

const struct view *const route_views[] = {
	&view_pipelines, &view_artifacts, &view_runs, &view_lineage,
	&view_metrics, &view_hooks, &view_registry, &view_store, NULL,
};

static __thread uid_t caller_uid;

void view_caller_set(uid_t uid)
{
	caller_uid = uid;
}

uid_t view_caller_uid(void)
{
	return caller_uid;
}

const struct view *route_find(const char *path)
{
	size_t n = strcspn(path, "/");
	for (const struct view *const *v = route_views; *v; v++)
		if (strlen((*v)->name) == n && !strncmp((*v)->name, path, n))
			return *v;
	return &view_root;
}

void dirlist_add(struct dirlist *l, const char *name, mode_t mode)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->e = xrealloc(l->e, l->cap * sizeof *l->e);
	}
	l->e[l->n].name = xstrdup(name);
	l->e[l->n].mode = mode;
	l->e[l->n].ino = 0;
	l->n++;
}

int dirlist_add_dir(struct dirlist *l, const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return dirlist_add_dirfd(l, fd);
}

int dirlist_add_dirfd(struct dirlist *l, int fd)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	struct dirent *e;
	errno = 0;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			dirlist_add(l, e->d_name, (mode_t)DTTOIF(e->d_type));
			l->e[l->n - 1].ino = (uint64_t)e->d_ino | VIEW_BACKING_INO;
		}
		errno = 0;
	}
	int rc = errno ? -errno : 0;
	if (closedir(d) < 0 && !rc)
		rc = -errno;
	return rc;
}

void dirlist_free(struct dirlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i].name);
	free(l->e);
	l->e = NULL;
	l->n = l->cap = 0;
	if (l->more_free)
		l->more_free(l->more_arg);
	l->more = NULL;
	l->more_free = NULL;
	l->more_arg = NULL;
	l->more_n = 0;
}

void view_text_attr(struct view_attr *a, const char *text, double mtime)
{
	a->mode = S_IFREG | 0444;
	a->size = strlen(text);
	a->mtime = mtime;
	a->immutable = 0;
}

void view_stat_attr(struct view_attr *a, const struct stat *st)
{
	a->mode = st->st_mode;
	a->size = (uint64_t)st->st_size;
	a->mtime = (double)st->st_mtim.tv_sec + (double)st->st_mtim.tv_nsec / 1e9;
	a->has_stat = 1;
	a->st = *st;
}

double view_artifact_time(struct flowy *f, const char *hex)
{
	char h[CAS_HEX_LEN + 1];
	snprintf(h, sizeof h, "%.*s", (int)strcspn(hex, "/"), hex);
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db, "SELECT created FROM artifacts WHERE hash=?",
	                              "t", h);
	double t = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_double(st, 0) : 0;
	db_finish(f->db, st);
	db_unlock(f->db);
	return t;
}

double view_run_time(struct flowy *f, int64_t id)
{
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db, "SELECT finished FROM runs WHERE id=?", "i", id);
	double t = st && sqlite3_step(st) == SQLITE_ROW &&
	           sqlite3_column_type(st, 0) != SQLITE_NULL ? sqlite3_column_double(st, 0) : 0;
	db_finish(f->db, st);
	db_unlock(f->db);
	return t ? t : util_now();
}

void view_generated_attr(struct view_attr *a, const char *path, char *text)
{
	view_text_attr(a, text, util_now());
	view_cache_put(path, text);
}

void view_text_fh(struct fh *h, char *text)
{
	h->kind = FH_BUF;
	h->buf = text;
	h->len = strlen(text);
	h->direct_io = 1;
}

void view_fd_fh(struct fh *h, int fd)
{
	h->kind = FH_FD;
	h->fd = fd;
	h->direct_io = 1;
}

int view_fd_write(struct fh *h, const char *buf, size_t len, off_t off)
{
	if (h->kind != FH_FD)
		return -EBADF;
	ssize_t n = pwrite(h->fd, buf, len, off);
	return n < 0 ? -errno : (int)n;
}

char *view_file_text(const char *header, const char *path)
{
	struct strbuf sb = {0};
	char *text = NULL;
	size_t len = 0;
	strbuf_puts(&sb, header);
	int rc = util_read_file(path, &text, &len);
	if (rc < 0 && rc != -ENOENT)
		log_error("%s: %s", path, strerror(-rc));
	if (text)
		strbuf_add(&sb, text, len);
	free(text);
	return strbuf_detach(&sb, NULL);
}

int view_split(const char *path, char *buf, size_t bufsz, char **parts, int n)
{
	size_t len = strlen(path);
	if (len >= bufsz)
		return -1;
	memcpy(buf, path, len + 1);
	int k = 0;
	char *save = NULL;
	for (char *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (k == n)
			return n + 1; /* deeper than the caller cares about */
		parts[k++] = t;
	}
	return k;
}

void view_json_numbers(cJSON *j)
{
	if (!j)
		return;
	if (cJSON_IsNumber(j) && isfinite(j->valuedouble)) {
		char buf[UTIL_DOUBLE_LEN];
		j->valuestring = xstrdup(util_fmt_double(buf, j->valuedouble));
		j->type = cJSON_Raw;   /* cJSON_Delete frees valuestring */
	}
	for (cJSON *c = j->child; c; c = c->next)
		view_json_numbers(c);
}

/* Append n as exactly width digits. */
static char *digits(char *p, long n, int width)
{
	for (int i = width - 1; i >= 0; i--, n /= 10)
		p[i] = (char)('0' + n % 10);
	return p + width;
}

void view_fmt_time(struct strbuf *sb, double t)
{
	time_t s = (time_t)t;
	long ms = (long)((t - (double)s) * 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	char buf[32], *p = buf;
	p = digits(p, tm.tm_year + 1900, 4);
	*p++ = '-';
	p = digits(p, tm.tm_mon + 1, 2);
	*p++ = '-';
	p = digits(p, tm.tm_mday, 2);
	*p++ = 'T';
	p = digits(p, tm.tm_hour, 2);
	*p++ = ':';
	p = digits(p, tm.tm_min, 2);
	*p++ = ':';
	p = digits(p, tm.tm_sec, 2);
	*p++ = '.';
	p = digits(p, ms, 3);
	*p++ = 'Z';
	strbuf_add(sb, buf, (size_t)(p - buf));
}

void view_fmt_secs(struct strbuf *sb, double secs)
{
	long long ms = (long long)(secs * 1000 + 0.5);
	if (ms < 0)
		ms = 0;
	char buf[32];
	char *p = buf + sizeof buf - 4;
	digits(p, (long)(ms % 1000), 3);
	p[-1] = '.';
	p--;
	long long whole = ms / 1000;
	do
		*--p = (char)('0' + whole % 10);
	while (whole /= 10);
	strbuf_add(sb, p, (size_t)(buf + sizeof buf - 1 - p));
}

#define CACHE_SLOTS 32

static struct {
	char *path, *text;
	double at;
} cache[CACHE_SLOTS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

void view_cache_put(const char *path, char *text)
{
	double now = util_now();
	size_t slot = 0;
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		if (cache[i].path && !strcmp(cache[i].path, path)) {
			slot = i;
			break;
		}
		if (cache[i].at < cache[slot].at)
			slot = i; /* the oldest (or an empty one) */
	}
	free(cache[slot].path);
	free(cache[slot].text);
	cache[slot].path = xstrdup(path);
	cache[slot].text = text;
	cache[slot].at = now;
	pthread_mutex_unlock(&cache_lock);
}

char *view_cache_take(const char *path)
{
	char *text = NULL;
	double now = util_now();
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		if (cache[i].path && !strcmp(cache[i].path, path)) {
			if (now - cache[i].at <= VIEW_CACHE_TTL)
				text = xstrdup(cache[i].text);
			break;
		}
	pthread_mutex_unlock(&cache_lock);
	return text;
}

int view_cached_attr(struct view_attr *a, const char *path)
{
	if (!a->reuse)
		return 0;
	char *text = view_cache_take(path);
	if (!text)
		return 0;
	view_text_attr(a, text, util_now());
	free(text);
	return 1;
}

int view_ctl_lines(const char *buf, size_t len, int (*apply)(void *arg, const char *line),
                   void *arg)
{
	int rc = (int)len;
	for (size_t at = 0; at < len && rc > 0; ) {
		const char *line = buf + at, *nl = memchr(line, '\n', len - at);
		size_t ll = nl ? (size_t)(nl - line) : len - at;
		at += ll + (nl != NULL);
		char *cmd = xstrndup(line, ll < 256 ? ll : 256);
		for (char *c = cmd; *c; c++)
			if ((unsigned char)*c < 0x20)
				*c = ' ';
		int r = cmd[strspn(cmd, " ")] ? apply(arg, cmd) : 0;
		if (r < 0)
			rc = r;
		free(cmd);
	}
	return rc;
}

int view_ctl_open(struct fh *h, int flags)
{
	if ((flags & O_ACCMODE) == O_RDONLY)
		return -EACCES;
	h->kind = FH_CTL;
	h->direct_io = 1;
	return 0;
}

int view_kept_attr(struct flowy *f, const char *path, struct view_attr *a)
{
	size_t len;
	if (!gencache_len(path, db_generation(f->db), &len))
		return 0;
	a->mode = S_IFREG | 0444;
	a->size = len;
	a->mtime = util_now();
	a->immutable = 0;
	return 1;
}

char *view_kept_text(struct flowy *f, const char *path, uint64_t *gen)
{
	*gen = db_generation(f->db);
	return gencache_get(path, *gen, NULL);
}

void view_keep(const char *path, uint64_t gen, const char *text)
{
	gencache_put(path, gen, text, strlen(text));
}
