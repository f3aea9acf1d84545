/*
 * gencache.h - rendered files kept per database generation. A view whose
 * text is a function of the database alone (no clock, no file on disk)
 * may keep what it rendered under db_generation(); while the generation
 * stays, a later LOOKUP or open takes the text from here instead of
 * rendering again. An entry of an older generation is never handed out
 * (and is dropped when seen). Bounded: GENCACHE_SLOTS entries and
 * GENCACHE_BYTES of text, least recently used out first. Thread-safe.
 */
#ifndef FLOWYFS_GENCACHE_H
#define FLOWYFS_GENCACHE_H

#include <stddef.h>
#include <stdint.h>

#define GENCACHE_SLOTS 16
#define GENCACHE_BYTES ((size_t)64 << 20)

/* Keep a copy of text[0..len) as path's rendering at generation gen,
 * replacing what path had. A text over half of GENCACHE_BYTES is not
 * kept. */
void gencache_put(const char *path, uint64_t gen, const char *text, size_t len);
/* path's rendering at generation gen: a malloc'd NUL-terminated copy (its
 * length in *len when len is not NULL), or NULL. */
char *gencache_get(const char *path, uint64_t gen, size_t *len);
/* The same without the copy: 1 and the length in *len, or 0. */
int gencache_len(const char *path, uint64_t gen, size_t *len);
/* Drop every entry (tests; teardown). */
void gencache_clear(void);
/* Entries and bytes held now (tests). */
void gencache_usage(size_t *entries, size_t *bytes);

#endif
