/*
 * handle.c - the table of open file handles: number -> handle, with
 * reference counts, behind one mutex. Chained hash, sized for the open
 * files of a busy mount (thousands); it grows by doubling.
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "flowyfs/dirpack.h"
#include "flowyfs/handle.h"
#include "flowyfs/util.h"
#include "flowyfs/view.h"

struct slot {
	uint64_t id;
	struct fh *h;
	struct slot *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot **buckets;
static size_t nbuckets, count;
static uint64_t next_id = 1;

static void grow(void)
{
	size_t n = nbuckets ? nbuckets * 2 : 256;
	struct slot **b = xcalloc(n, sizeof *b);
	for (size_t i = 0; i < nbuckets; i++)
		for (struct slot *s = buckets[i], *next; s; s = next) {
			next = s->next;
			s->next = b[s->id % n];
			b[s->id % n] = s;
		}
	free(buckets);
	buckets = b;
	nbuckets = n;
}

void handle_free(struct fh *h)
{
	if (!h)
		return;
	if (h->fd >= 0)
		close(h->fd);
	cas_reader_close(h->reader);
	dirpack_free(h->dir);
	free(h->buf);
	free(h->path);
	free(h);
}

uint64_t handle_add(struct fh *h)
{
	pthread_mutex_lock(&lock);
	if (count + 1 > nbuckets)
		grow();
	struct slot *s = xcalloc(1, sizeof *s);
	s->id = next_id++;
	s->h = h;
	h->refs = 1;
	s->next = buckets[s->id % nbuckets];
	buckets[s->id % nbuckets] = s;
	count++;
	uint64_t id = s->id;
	pthread_mutex_unlock(&lock);
	return id;
}

struct fh *handle_get(uint64_t id)
{
	struct fh *h = NULL;
	pthread_mutex_lock(&lock);
	for (struct slot *s = nbuckets ? buckets[id % nbuckets] : NULL; s; s = s->next)
		if (s->id == id) {
			h = s->h;
			h->refs++;
			break;
		}
	pthread_mutex_unlock(&lock);
	return h;
}

void handle_put(struct fh *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&lock);
	int last = --h->refs == 0;
	pthread_mutex_unlock(&lock);
	if (last)
		handle_free(h);
}

void handle_remove(uint64_t id)
{
	struct fh *h = NULL;
	pthread_mutex_lock(&lock);
	for (struct slot **p = nbuckets ? &buckets[id % nbuckets] : NULL; p && *p;
	     p = &(*p)->next)
		if ((*p)->id == id) {
			struct slot *s = *p;
			*p = s->next;
			h = s->h;
			free(s);
			count--;
			break;
		}
	pthread_mutex_unlock(&lock);
	handle_put(h);
}

struct fh *handle_find_fd(uint64_t ino)
{
	struct fh *h = NULL;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nbuckets && !h; i++)
		for (struct slot *s = buckets[i]; s; s = s->next)
			if (s->h->kind == FH_FD && s->h->ino == ino && s->h->fd >= 0) {
				h = s->h;
				h->refs++;
				break;
			}
	pthread_mutex_unlock(&lock);
	return h;
}
