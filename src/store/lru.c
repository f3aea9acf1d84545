/*
 * lru.c - a bounded, thread-safe cache of reference-counted values keyed
 * by string (see lru.h). A hash table with chaining finds an entry; a
 * doubly linked list keeps them in order of use, the most recent at the
 * head. Only entries nobody holds are evicted, from the tail, so a value
 * in use stays valid until its last reference goes (the cache may run
 * over its limit by what is held meanwhile).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/lru.h"

struct lru_ref {
	struct lru_ref *hnext;        /* hash chain */
	struct lru_ref *prev, *next;  /* use order; prev == NULL: the head */
	char *key;
	uint64_t hash;
	void *val;
	size_t bytes;
	int refs;
	int cached;                   /* in the table and list */
};

struct lru {
	pthread_mutex_t mu;
	struct lru_ref **tab;
	size_t nb;                    /* buckets, a power of two */
	struct lru_ref *head, *tail;
	size_t bytes, count, limit;
	uint64_t hits, misses, evictions;
	void (*drop)(void *val);
};

static uint64_t key_hash(const char *k)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211ULL;
	return h;
}

struct lru *lru_new(size_t limit, void (*drop)(void *val))
{
	struct lru *l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->nb = 64;
	l->tab = calloc(l->nb, sizeof *l->tab);
	if (!l->tab || pthread_mutex_init(&l->mu, NULL) != 0) {
		free(l->tab);
		free(l);
		return NULL;
	}
	l->limit = limit;
	l->drop = drop;
	return l;
}

static void ent_free(struct lru *l, struct lru_ref *e)
{
	if (l->drop)
		l->drop(e->val);
	free(e->key);
	free(e);
}

/* ---- table and list (l->mu held) ----------------------------------------- */

static void list_unlink(struct lru *l, struct lru_ref *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		l->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		l->tail = e->prev;
	e->prev = e->next = NULL;
}

static void list_push(struct lru *l, struct lru_ref *e)
{
	e->prev = NULL;
	e->next = l->head;
	if (l->head)
		l->head->prev = e;
	l->head = e;
	if (!l->tail)
		l->tail = e;
}

/* A reference to e, now the most recently used. */
static void ent_hold(struct lru *l, struct lru_ref *e)
{
	e->refs++;
	list_unlink(l, e);
	list_push(l, e);
}

static struct lru_ref *tab_find(struct lru *l, const char *key, uint64_t h)
{
	for (struct lru_ref *e = l->tab[h & (l->nb - 1)]; e; e = e->hnext)
		if (e->hash == h && !strcmp(e->key, key))
			return e;
	return NULL;
}

/* Take e out of the table and the list (it stays alive while held). */
static void ent_remove(struct lru *l, struct lru_ref *e)
{
	struct lru_ref **pp = &l->tab[e->hash & (l->nb - 1)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	list_unlink(l, e);
	e->cached = 0;
	l->bytes -= e->bytes;
	l->count--;
}

/* Double the buckets when chains grow long; on out-of-memory keep them. */
static void tab_grow(struct lru *l)
{
	size_t nb = l->nb * 2;
	struct lru_ref **t = calloc(nb, sizeof *t);
	if (!t)
		return;
	for (size_t i = 0; i < l->nb; i++) {
		struct lru_ref *e = l->tab[i];
		while (e) {
			struct lru_ref *n = e->hnext;
			e->hnext = t[e->hash & (nb - 1)];
			t[e->hash & (nb - 1)] = e;
			e = n;
		}
	}
	free(l->tab);
	l->tab = t;
	l->nb = nb;
}

/* Evict unheld entries from the tail while over the limit; they are
 * chained on *dead, for the caller to free outside the lock. */
static void evict(struct lru *l, struct lru_ref **dead)
{
	struct lru_ref *e = l->tail;
	while (e && l->bytes > l->limit) {
		struct lru_ref *p = e->prev;
		if (e->refs == 0) {
			ent_remove(l, e);
			l->evictions++;
			e->hnext = *dead;
			*dead = e;
		}
		e = p;
	}
}

static void free_chain(struct lru *l, struct lru_ref *e)
{
	while (e) {
		struct lru_ref *n = e->hnext;
		ent_free(l, e);
		e = n;
	}
}

/* ---- the interface ------------------------------------------------------------ */

void *lru_get(struct lru *l, const char *key, struct lru_ref **ref)
{
	uint64_t h = key_hash(key);
	struct lru_ref *e;

	pthread_mutex_lock(&l->mu);
	e = tab_find(l, key, h);
	if (e) {
		ent_hold(l, e);
		l->hits++;
	} else {
		l->misses++;
	}
	pthread_mutex_unlock(&l->mu);
	*ref = e;
	return e ? e->val : NULL;
}

void *lru_put(struct lru *l, const char *key, void *val, size_t bytes,
              struct lru_ref **ref)
{
	uint64_t h = key_hash(key);
	struct lru_ref *e = calloc(1, sizeof *e), *old, *dead = NULL;

	*ref = NULL;
	if (e)
		e->key = strdup(key);
	if (!e || !e->key) {
		free(e);
		if (l->drop)
			l->drop(val);
		return NULL;
	}
	e->hash = h;
	e->val = val;
	e->bytes = bytes;
	e->refs = 1;
	pthread_mutex_lock(&l->mu);
	old = tab_find(l, key, h);
	if (old) {
		ent_hold(l, old);
		pthread_mutex_unlock(&l->mu);
		ent_free(l, e);
		*ref = old;
		return old->val;
	}
	if (bytes <= l->limit) {
		if (l->count >= l->nb)
			tab_grow(l);
		e->hnext = l->tab[h & (l->nb - 1)];
		l->tab[h & (l->nb - 1)] = e;
		list_push(l, e);
		e->cached = 1;
		l->bytes += bytes;
		l->count++;
		evict(l, &dead);
	}
	pthread_mutex_unlock(&l->mu);
	free_chain(l, dead);
	*ref = e;
	return val;
}

int lru_has(struct lru *l, const char *key)
{
	uint64_t h = key_hash(key);

	pthread_mutex_lock(&l->mu);
	int has = tab_find(l, key, h) != NULL;
	pthread_mutex_unlock(&l->mu);
	return has;
}

void lru_remove(struct lru *l, const char *key)
{
	uint64_t h = key_hash(key);
	struct lru_ref *e;
	int gone = 0;

	pthread_mutex_lock(&l->mu);
	e = tab_find(l, key, h);
	if (e) {
		ent_remove(l, e);
		gone = e->refs == 0;
	}
	pthread_mutex_unlock(&l->mu);
	if (gone)
		ent_free(l, e);
}

void lru_release(struct lru *l, struct lru_ref *ref)
{
	struct lru_ref *dead = NULL;
	int gone;

	if (!ref)
		return;
	pthread_mutex_lock(&l->mu);
	gone = --ref->refs == 0 && !ref->cached;
	if (ref->cached && ref->refs == 0 && l->bytes > l->limit)
		evict(l, &dead);
	pthread_mutex_unlock(&l->mu);
	if (gone)
		ent_free(l, ref);
	free_chain(l, dead);
}

void lru_stats(struct lru *l, struct lru_stats *out)
{
	pthread_mutex_lock(&l->mu);
	out->hits = l->hits;
	out->misses = l->misses;
	out->evictions = l->evictions;
	out->bytes = l->bytes;
	out->count = l->count;
	out->limit = l->limit;
	pthread_mutex_unlock(&l->mu);
}

void lru_free(struct lru *l)
{
	struct lru_ref *e;

	if (!l)
		return;
	for (e = l->head; e; ) {
		struct lru_ref *n = e->next;
		ent_free(l, e);
		e = n;
	}
	free(l->tab);
	pthread_mutex_destroy(&l->mu);
	free(l);
}
