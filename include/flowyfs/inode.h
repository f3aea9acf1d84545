/*
 * inode.h - the inode table: FUSE inode numbers <-> paths inside the mount.
 *
 * Every node the kernel knows about has an inode number, the path it was
 * looked up by ("" is the root, "pipelines/p/train.json" a file) and a
 * lookup count. A node lives while the kernel holds lookups on it; the
 * root lives forever. Renames move a node and everything below it.
 * All functions are thread-safe.
 */
#ifndef FLOWYFS_INODE_H
#define FLOWYFS_INODE_H

#include <stdint.h>

typedef struct inode_table inode_table;

#define INODE_ROOT 1
/* The path of a node whose object was unlinked or renamed over: it starts
 * with a byte no real path has, so no view answers for it. */
#define INODE_DEAD_PREFIX "\001dead/"

inode_table *inode_table_new(void);
void inode_table_free(inode_table *t);

/* The inode of path, created when missing; adds one lookup. */
uint64_t inode_ref(inode_table *t, const char *path);
/* Drop n lookups; the node is forgotten at zero. */
void inode_unref(inode_table *t, uint64_t ino, uint64_t n);
/* A malloc'd copy of the path of ino, or NULL when unknown. */
char *inode_path(inode_table *t, uint64_t ino);
/* The path of a child of ino: malloc'd "<parent>/<name>", or NULL. */
char *inode_child_path(inode_table *t, uint64_t parent, const char *name);
/* The object at path was removed: its node (if any) keeps its number but
 * its path becomes a dead one, so a new object there gets a new node. */
void inode_unlinked(inode_table *t, const char *path);
/* Re-key node at from (and all below it) to to. */
void inode_rename(inode_table *t, const char *from, const char *to);
/* Number of live nodes (for tests and debugging). */
uint64_t inode_count(inode_table *t);

#endif
