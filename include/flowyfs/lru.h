/*
 * lru.h - a bounded cache of reference-counted values keyed by string,
 * least recently used out first. The store keeps two, one per cas handle:
 * decoded frames of .zst objects (shared by every reader of an object) and
 * indexed tree objects (shared by every lookup and listing). Safe to use
 * from several threads at once (one mutex).
 */
#ifndef FLOWYFS_LRU_H
#define FLOWYFS_LRU_H

#include <stddef.h>
#include <stdint.h>

struct lru;
struct lru_ref;

/* A cache that evicts values, oldest use first, while their bytes add up
 * to more than limit; drop frees a value once it is out of the cache and
 * no reference is held. NULL on out-of-memory. lru_free(NULL) is a no-op;
 * no reference may be held then. */
struct lru *lru_new(size_t limit, void (*drop)(void *val));
void lru_free(struct lru *l);

/* The value under key with a reference held (*ref), counted as a use and
 * a hit; NULL (a miss) when absent. */
void *lru_get(struct lru *l, const char *key, struct lru_ref **ref);
/* Add val (bytes big) under key and return it with a reference held. When
 * another thread added key meanwhile, val is dropped and the value there
 * returned instead. A value bigger than the whole limit is not kept: it
 * is dropped once its reference is released. NULL only on out-of-memory
 * (val is then dropped). */
void *lru_put(struct lru *l, const char *key, void *val, size_t bytes,
              struct lru_ref **ref);
/* Is key in the cache? Neither a use nor a hit or miss. */
int lru_has(struct lru *l, const char *key);
/* Take key out of the cache (its value lives on while held); no-op when
 * absent. */
void lru_remove(struct lru *l, const char *key);
/* Give back a reference from lru_get or lru_put; NULL is a no-op. */
void lru_release(struct lru *l, struct lru_ref *ref);

struct lru_stats {
	uint64_t hits, misses, evictions;
	size_t bytes, count, limit;
};
void lru_stats(struct lru *l, struct lru_stats *out);

#endif
