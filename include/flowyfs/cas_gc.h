/*
 * cas_gc.h - the object store's garbage collection: a mark set of the
 * objects still referenced (a tree marks everything it holds), and a sweep
 * that removes every other object not modified since a cutoff. The caller
 * (src/gc.c) decides the roots and the cutoff; this part knows only
 * objects. Included by cas.h.
 */
#ifndef FLOWYFS_CAS_GC_H
#define FLOWYFS_CAS_GC_H

#include <stddef.h>
#include <stdint.h>

struct cas;
struct cas_mark;

/* An empty mark set; cas_mark_free(NULL) is a no-op. */
struct cas_mark *cas_mark_new(void);
void cas_mark_free(struct cas_mark *m);

/* Mark object hex and, when it is a tree, all it holds, recursively.
 * type is a tree entry's ('f' or 'l': a blob, 'd': a tree) or 0 for a
 * root whose kind is not known (then whatever is stored under hex is
 * marked, blob and tree both when both exist, as the empty content may).
 * An object that is not stored marks nothing and is no error (the root
 * points at content already gone). 0, -EIO for a malformed tree, -errno. */
int cas_mark_add(struct cas *c, struct cas_mark *m, const char *hex, char type);

/* Is hex marked as a blob (tree 0) or as a tree (tree 1)? */
int cas_mark_has(const struct cas_mark *m, const char *hex, int tree);

/* Distinct objects marked. */
size_t cas_mark_count(const struct cas_mark *m);

struct cas_sweep {
	uint64_t objects;    /* removed (dry: would be) */
	uint64_t bytes;      /* their disk usage, st_blocks * 512, as du counts */
	uint64_t kept;       /* objects marked */
	uint64_t spared;     /* unmarked but modified at or after the cutoff */
};

/* Remove every object of c that m does not mark and whose mtime is before
 * cutoff (seconds since the epoch), and temp files in tmp/ older than it
 * (left by a crash). With dry, remove nothing and count what would go.
 * The shard directories stay. Counts add to *out; 0 or the first -errno
 * (the sweep goes on past a failed removal and reports it at the end). */
int cas_sweep(struct cas *c, const struct cas_mark *m, double cutoff, int dry,
              struct cas_sweep *out);

#endif
