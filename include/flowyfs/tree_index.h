/*
 * tree_index.h - fast lookups and listings in tree objects of any size.
 * A tree object (format in cas_tree.h) is mapped (read, below 1 MiB),
 * checked once against its name and line by line (sort order included),
 * and indexed by the offsets of its lines; the index is kept in the store's bounded cache of
 * trees (lru.h), shared by every lookup and listing, so a lookup after the
 * first is a binary search over the mapping and a listing reads entries
 * one at a time, without copying the tree. Included by cas.h.
 */
#ifndef FLOWYFS_TREE_INDEX_H
#define FLOWYFS_TREE_INDEX_H

#include <stddef.h>

struct cas;
struct cas_entry;
typedef struct tree_index tree_index;

/* The indexed tree hex, from the cache or loaded into it: 0, -ENOENT,
 * -EIO (damaged or malformed), -EINVAL (a bad name), -errno. Give it back
 * with tree_index_close (NULL is a no-op); the entry data stays valid
 * until then. */
int tree_index_open(struct cas *c, const char *hex, tree_index **out);
void tree_index_close(tree_index *t);
/* Number of entries, and the size of the tree object's text. */
size_t tree_index_count(const tree_index *t);
size_t tree_index_bytes(const tree_index *t);
/* The entry called name (len bytes, no NUL needed) into *e, its name
 * NULL: 0 or -ENOENT. O(log n). */
int tree_index_find(const tree_index *t, const char *name, size_t len,
                    struct cas_entry *e);
/* Entry i (in name order, i < count) into *e with its name copied into
 * name (cap bytes, NUL-terminated; e->name points at it): 0, or
 * -ENAMETOOLONG when it does not fit. */
int tree_index_entry(const tree_index *t, size_t i, struct cas_entry *e,
                     char *name, size_t cap);

/* Frees a cached index: the drop function of the store's tree cache. */
void tree_index_drop(void *val);

#endif
