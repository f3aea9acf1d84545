/*
 * cas_export.h - copying an object out of the store (src/store/cas_export.c).
 * Included by cas.h.
 */
#ifndef FLOWYFS_CAS_EXPORT_H
#define FLOWYFS_CAS_EXPORT_H

struct cas;

/* Copy object hex out to dest, which must not exist (-EEXIST): a blob to
 * a file, a tree to a directory, recursively, links as links. Files come
 * out 0444 (0555 when executable), directories 0755. 0, -ENOENT when hex
 * is not stored, or -errno; a failure leaves what was made for the caller
 * to remove. */
int cas_export(struct cas *c, const char *hex, const char *dest);

#endif
