/*
 * views/dirpack.c - directory listings packed as FUSE dirents at opendir,
 * kept per database generation, and the record of what the kernel was
 * handed last for each directory so that it may keep its cached copy.
 * The records are struct fuse_dirent (linux/fuse.h), as
 * fuse_add_direntry() writes them; a READDIR at offset k starts at entry
 * k, found from a cursor (the kernel reads on from where it stopped) or
 * by walking the records. A listing made one entry at a time (a huge
 * tree object) is never packed: each READDIR makes its records.
 */
#include <limits.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/fs.h"        /* fuse_add_direntry */

#include "flowyfs/dirpack.h"
#include "flowyfs/gencache.h"
#include "flowyfs/util.h"
#include "flowyfs/view.h"

/* The listing last handed out per directory, by content hash: a bounded
 * table, oldest entry out. A path not in it is never "the same". */
#define HANDED_SLOTS 64

static struct handed {
	char *path;
	uint64_t hash;
	size_t len;
	uint64_t used;
} handed[HANDED_SLOTS];
static uint64_t tick;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

static uint64_t name_ino(const char *name)
{
	return fnv1a(name, strlen(name)) | 1;
}

struct dirpack *dirpack_build(const struct dirlist *l)
{
	struct dirpack *p = xcalloc(1, sizeof *p);
	size_t cap = 0;
	for (size_t i = 0; i < l->n; i++)
		cap += fuse_add_direntry(NULL, NULL, 0, l->e[i].name, NULL, 0);
	p->buf = xmalloc(cap ? cap : 1);
	for (size_t i = 0; i < l->n; i++) {
		struct stat st = {.st_ino = l->e[i].ino ? l->e[i].ino : name_ino(l->e[i].name),
		                  .st_mode = l->e[i].mode};
		p->len += fuse_add_direntry(NULL, p->buf + p->len, cap - p->len, l->e[i].name,
		                            &st, (off_t)i + 1);
	}
	return p;
}

struct dirpack *dirpack_kept(struct flowy *f, const char *path, uint64_t *gen)
{
	size_t len = 0;
	*gen = db_generation(f->db);
	pthread_mutex_lock(&lock);
	char *buf = gencache_get(path, *gen, &len);
	pthread_mutex_unlock(&lock);
	if (!buf)
		return NULL;
	struct dirpack *p = xcalloc(1, sizeof *p);
	p->buf = buf;
	p->len = len;
	return p;
}

int dirpack_keep(const char *path, uint64_t gen, const struct dirpack *p)
{
	uint64_t h = fnv1a(p->buf, p->len);
	struct handed *e = NULL, *old = &handed[0];
	int same = 0;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < HANDED_SLOTS && !e; i++) {
		if (handed[i].path && !strcmp(handed[i].path, path))
			e = &handed[i];
		else if (handed[i].used < old->used)
			old = &handed[i];
	}
	if (e) {
		same = e->hash == h && e->len == p->len;
	} else {
		e = old;
		free(e->path);
		e->path = xstrdup(path);
	}
	e->hash = h;
	e->len = p->len;
	e->used = ++tick;
	gencache_put(path, gen, p->buf, p->len);
	pthread_mutex_unlock(&lock);
	return same;
}

size_t dirpack_slice(struct dirpack *p, off_t off, size_t size, const char **start)
{
	if (off < 0 || (size_t)off < p->at) {
		p->at = 0;
		p->pos = 0;
	}
	/* Walk to entry off (records are whole: the buffer ends on one). */
	while (p->at < (size_t)off && p->pos < p->len) {
		const struct fuse_dirent *d = (const void *)(p->buf + p->pos);
		p->pos += FUSE_DIRENT_SIZE(d);
		p->at++;
	}
	size_t end = p->pos;
	while (end < p->len) {
		const struct fuse_dirent *d = (const void *)(p->buf + end);
		if (end + FUSE_DIRENT_SIZE(d) - p->pos > size)
			break;
		end += FUSE_DIRENT_SIZE(d);
	}
	*start = p->buf + p->pos;
	return end - p->pos;
}

struct dirpack *dirpack_stream(struct dirlist *l)
{
	struct dirpack *p = xcalloc(1, sizeof *p);
	p->stream = xmalloc(sizeof *p->stream);
	*p->stream = *l;
	*l = (struct dirlist){0};
	return p;
}

/* Records of a streamed listing from entry off on, into p->buf. */
static ssize_t stream_read(struct dirpack *p, off_t off, size_t size, const char **start)
{
	const struct dirlist *l = p->stream;
	char name[NAME_MAX + 1];
	size_t used = 0;
	int rc = 0;
	if (p->len < size) {
		p->buf = xrealloc(p->buf, size);
		p->len = size;
	}
	for (size_t i = off < 0 ? 0 : (size_t)off; i < l->n + l->more_n; i++) {
		const char *nm = i < l->n ? l->e[i].name : name;
		struct stat st = {0};
		if (i < l->n) {
			st.st_ino = l->e[i].ino;
			st.st_mode = l->e[i].mode;
		} else if ((rc = l->more(l->more_arg, i - l->n, name, sizeof name,
		                         &st.st_mode)) < 0) {
			break;
		}
		if (!st.st_ino)
			st.st_ino = name_ino(nm);
		size_t need = fuse_add_direntry(NULL, p->buf + used, size - used, nm, &st,
		                                (off_t)i + 1);
		if (need > size - used)
			break;
		used += need;
	}
	*start = p->buf;
	return rc < 0 && !used ? rc : (ssize_t)used;
}

ssize_t dirpack_read(struct dirpack *p, off_t off, size_t size, const char **start)
{
	if (p->stream)
		return stream_read(p, off, size, start);
	return (ssize_t)dirpack_slice(p, off, size, start);
}

void dirpack_free(struct dirpack *p)
{
	if (!p)
		return;
	if (p->stream) {
		dirlist_free(p->stream);
		free(p->stream);
	}
	free(p->buf);
	free(p);
}
