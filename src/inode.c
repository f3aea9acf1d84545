/*
 * inode.c - the inode table. Two chained hash tables index the same nodes,
 * by inode number and by path. Inode numbers are never reused within one
 * mount, so a stale kernel reference can never reach the wrong node.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/inode.h"
#include "flowyfs/util.h"

struct node {
	uint64_t ino;
	uint64_t nlookup;
	char *path;
	struct node *next_ino, *next_path;
};

struct inode_table {
	pthread_mutex_t lock;
	struct node **by_ino, **by_path;
	size_t nbuckets, count;
	uint64_t next_ino;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void index_node(inode_table *t, struct node *n)
{
	size_t bi = n->ino % t->nbuckets, bp = hash_str(n->path) % t->nbuckets;
	n->next_ino = t->by_ino[bi];
	t->by_ino[bi] = n;
	n->next_path = t->by_path[bp];
	t->by_path[bp] = n;
}

static void unindex_path(inode_table *t, struct node *n)
{
	struct node **p = &t->by_path[hash_str(n->path) % t->nbuckets];
	while (*p != n)
		p = &(*p)->next_path;
	*p = n->next_path;
}

static void unindex_ino(inode_table *t, struct node *n)
{
	struct node **p = &t->by_ino[n->ino % t->nbuckets];
	while (*p != n)
		p = &(*p)->next_ino;
	*p = n->next_ino;
}

static void grow(inode_table *t)
{
	size_t old = t->nbuckets;
	struct node **oi = t->by_ino;
	t->nbuckets = old * 2;
	t->by_ino = xcalloc(t->nbuckets, sizeof *t->by_ino);
	t->by_path = (free(t->by_path), xcalloc(t->nbuckets, sizeof *t->by_path));
	for (size_t i = 0; i < old; i++)
		for (struct node *n = oi[i], *next; n; n = next) {
			next = n->next_ino;
			index_node(t, n);
		}
	free(oi);
}

static struct node *find_path(inode_table *t, const char *path)
{
	for (struct node *n = t->by_path[hash_str(path) % t->nbuckets]; n; n = n->next_path)
		if (!strcmp(n->path, path))
			return n;
	return NULL;
}

static struct node *find_ino(inode_table *t, uint64_t ino)
{
	for (struct node *n = t->by_ino[ino % t->nbuckets]; n; n = n->next_ino)
		if (n->ino == ino)
			return n;
	return NULL;
}

inode_table *inode_table_new(void)
{
	inode_table *t = xcalloc(1, sizeof *t);
	pthread_mutex_init(&t->lock, NULL);
	t->nbuckets = 1024;
	t->by_ino = xcalloc(t->nbuckets, sizeof *t->by_ino);
	t->by_path = xcalloc(t->nbuckets, sizeof *t->by_path);
	t->next_ino = INODE_ROOT;
	inode_ref(t, "");
	return t;
}

void inode_table_free(inode_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nbuckets; i++)
		for (struct node *n = t->by_ino[i], *next; n; n = next) {
			next = n->next_ino;
			free(n->path);
			free(n);
		}
	free(t->by_ino);
	free(t->by_path);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

uint64_t inode_ref(inode_table *t, const char *path)
{
	pthread_mutex_lock(&t->lock);
	struct node *n = find_path(t, path);
	if (!n) {
		if (t->count + 1 > t->nbuckets)
			grow(t);
		n = xcalloc(1, sizeof *n);
		n->ino = t->next_ino++;
		n->path = xstrdup(path);
		index_node(t, n);
		t->count++;
	}
	n->nlookup++;
	uint64_t ino = n->ino;
	pthread_mutex_unlock(&t->lock);
	return ino;
}

void inode_unref(inode_table *t, uint64_t ino, uint64_t count)
{
	if (ino == INODE_ROOT)
		return;
	pthread_mutex_lock(&t->lock);
	struct node *n = find_ino(t, ino);
	if (n) {
		n->nlookup = n->nlookup > count ? n->nlookup - count : 0;
		if (!n->nlookup) {
			unindex_ino(t, n);
			unindex_path(t, n);
			t->count--;
			free(n->path);
			free(n);
		}
	}
	pthread_mutex_unlock(&t->lock);
}

char *inode_path(inode_table *t, uint64_t ino)
{
	pthread_mutex_lock(&t->lock);
	struct node *n = find_ino(t, ino);
	char *p = n ? xstrdup(n->path) : NULL;
	pthread_mutex_unlock(&t->lock);
	return p;
}

char *inode_child_path(inode_table *t, uint64_t parent, const char *name)
{
	char *p = inode_path(t, parent);
	if (!p)
		return NULL;
	char *c = *p ? xasprintf("%s/%s", p, name) : xstrdup(name);
	free(p);
	return c;
}

/* Give n a path no lookup can reach: it keeps its ino (the kernel may still
 * use it, e.g. an open file) but a new object at its old path gets a new
 * one. Lock held. */
static void kill_path(inode_table *t, struct node *n)
{
	unindex_path(t, n);
	char *dead = xasprintf("%s%llu", INODE_DEAD_PREFIX, (unsigned long long)n->ino);
	free(n->path);
	n->path = dead;
	struct node **b = &t->by_path[hash_str(dead) % t->nbuckets];
	n->next_path = *b;
	*b = n;
}

void inode_unlinked(inode_table *t, const char *path)
{
	pthread_mutex_lock(&t->lock);
	struct node *n = find_path(t, path);
	if (n && n->ino != INODE_ROOT)
		kill_path(t, n);
	pthread_mutex_unlock(&t->lock);
}

void inode_rename(inode_table *t, const char *from, const char *to)
{
	size_t fl = strlen(from);
	pthread_mutex_lock(&t->lock);
	struct node *target = find_path(t, to);
	if (target) /* the replaced node keeps its ino but becomes unreachable */
		kill_path(t, target);
	for (size_t i = 0; i < t->nbuckets; i++)
		for (struct node *n = t->by_ino[i]; n; n = n->next_ino) {
			if (strncmp(n->path, from, fl) || (n->path[fl] && n->path[fl] != '/'))
				continue;
			unindex_path(t, n);
			char *np = xasprintf("%s%s", to, n->path + fl);
			free(n->path);
			n->path = np;
			struct node **b = &t->by_path[hash_str(np) % t->nbuckets];
			n->next_path = *b;
			*b = n;
		}
	pthread_mutex_unlock(&t->lock);
}

uint64_t inode_count(inode_table *t)
{
	pthread_mutex_lock(&t->lock);
	uint64_t c = t->count;
	pthread_mutex_unlock(&t->lock);
	return c;
}
