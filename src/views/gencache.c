/*
 * views/gencache.c - rendered files kept per database generation, so that
 * a big view (metrics/<p>/runs.tsv, a lineage 1,000 deep) is rendered once
 * per change of the store rather than once per cat. The generation only
 * grows (db_generation), so an entry found with an older one can never be
 * valid again and is freed on sight. A small table searched linearly:
 * there are few such views, each a whole file.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/gencache.h"
#include "flowyfs/util.h"

static struct entry {
	char *path;
	char *text;
	size_t len;
	uint64_t gen;
	uint64_t used;     /* the tick of its last use (least recent out) */
} slots[GENCACHE_SLOTS];
static size_t held;        /* bytes of text in slots */
static uint64_t tick;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void drop(struct entry *e)
{
	held -= e->len;
	free(e->path);
	free(e->text);
	memset(e, 0, sizeof *e);
}

/* The slot of path (lock held), or NULL. */
static struct entry *find(const char *path)
{
	for (size_t i = 0; i < GENCACHE_SLOTS; i++)
		if (slots[i].path && !strcmp(slots[i].path, path))
			return &slots[i];
	return NULL;
}

/* path's entry at gen (lock held), or NULL; one of another generation is
 * dropped. */
static struct entry *lookup(const char *path, uint64_t gen)
{
	struct entry *e = find(path);
	if (e && e->gen != gen) {
		drop(e);
		e = NULL;
	}
	if (e)
		e->used = ++tick;
	return e;
}

/* The least recently used full slot, or NULL when all are empty; with
 * empty_first, an empty slot when there is one (lock held). */
static struct entry *victim(int empty_first)
{
	struct entry *v = NULL;
	for (size_t i = 0; i < GENCACHE_SLOTS; i++) {
		if (!slots[i].path) {
			if (empty_first)
				return &slots[i];
		} else if (!v || slots[i].used < v->used) {
			v = &slots[i];
		}
	}
	return v;
}

void gencache_put(const char *path, uint64_t gen, const char *text, size_t len)
{
	pthread_mutex_lock(&lock);
	struct entry *e = find(path);
	if (e)
		drop(e);
	if (len > GENCACHE_BYTES / 2)
		goto out;
	while (held + len > GENCACHE_BYTES && (e = victim(0)))
		drop(e);
	e = victim(1);
	if (e->path)
		drop(e);
	e->path = xstrdup(path);
	e->text = xmalloc(len + 1);
	memcpy(e->text, text, len);
	e->text[len] = '\0';
	e->len = len;
	e->gen = gen;
	e->used = ++tick;
	held += len;
out:
	pthread_mutex_unlock(&lock);
}

char *gencache_get(const char *path, uint64_t gen, size_t *len)
{
	char *copy = NULL;
	pthread_mutex_lock(&lock);
	struct entry *e = lookup(path, gen);
	if (e) {
		copy = xmalloc(e->len + 1);
		memcpy(copy, e->text, e->len + 1);
		if (len)
			*len = e->len;
	}
	pthread_mutex_unlock(&lock);
	return copy;
}

int gencache_len(const char *path, uint64_t gen, size_t *len)
{
	pthread_mutex_lock(&lock);
	struct entry *e = lookup(path, gen);
	if (e)
		*len = e->len;
	pthread_mutex_unlock(&lock);
	return e != NULL;
}

void gencache_clear(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < GENCACHE_SLOTS; i++)
		if (slots[i].path)
			drop(&slots[i]);
	pthread_mutex_unlock(&lock);
}

void gencache_usage(size_t *entries, size_t *bytes)
{
	size_t n = 0;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < GENCACHE_SLOTS; i++)
		n += slots[i].path != NULL;
	*entries = n;
	*bytes = held;
	pthread_mutex_unlock(&lock);
}
