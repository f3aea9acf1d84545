/*
 * jpos.h - source positions for JSON parsed by cJSON.
 *
 * cJSON keeps no source positions, so the definition layer keeps the text
 * of each file with a table of line starts, and a small scanner that walks
 * text already known to be valid JSON to find the offset of each member
 * or element of an object or array. Offsets turn into 1-based line:col
 * for messages. Also here: sorting the keys of a cJSON tree (the
 * canonical form of a definition) and the member order it relies on.
 */
#ifndef FLOWYFS_JPOS_H
#define FLOWYFS_JPOS_H

#include <stddef.h>
#include <cJSON.h>

/* No offset: a key that is absent, a lookup that failed. */
#define JPOS_NONE ((size_t)-1)

/* One definition file. All members are owned (jpos_free frees them). */
struct jpos_src {
	char *disp;             /* file name as shown in messages */
	char *text;             /* contents, NUL-terminated; NULL if unread */
	size_t len;
	size_t *ls;             /* offset of the start of each line */
	size_t n_ls;
	size_t n_errs, dropped; /* messages about this file kept, left out
	                           (counted by diag.c) */
};

/* Build s->ls from s->text/s->len. */
void jpos_lines(struct jpos_src *s);
/* 1-based line and column of offset off (clamped to the end). */
void jpos_at(const struct jpos_src *s, size_t off, int *line, int *col);
/* Free the members of s (not s itself); s may be zeroed. */
void jpos_free(struct jpos_src *s);

/* Offset of the top-level value of s (after a UTF-8 BOM and whitespace). */
size_t jpos_start(const char *s);
/* cJSON reports some errors one byte late ({"a": 1,} points past the
 * '}'): the offset of the offending byte for an error reported at off. */
size_t jpos_error_fix(const char *s, size_t off);
/* The children of the object or array at s[at], in source order: *keys
 * (malloc'd, caller frees) gets the offset of each member's key (or each
 * element), *vals (if not NULL, malloc'd) the offset of each member's
 * value. Returns how many; 0 (and NULL arrays) when s[at] is neither. */
size_t jpos_children(const char *s, size_t at, size_t **keys, size_t **vals);
/* The offsets of the n children of json (an object or array whose text is
 * at offset at of s): malloc'd, n + 1 entries, caller frees; fallback for
 * any the scanner did not find. */
size_t *jpos_offsets(const char *s, const cJSON *json, size_t at, size_t fallback);
/* The offset of the value of the member whose key is at offset key. */
size_t jpos_value(const char *s, size_t key);

/* A member of an object with its index, for stable sorts by key. */
struct jpos_member {
	cJSON *item;
	size_t pos;
};
/* qsort comparator: by key, then by index. */
int jpos_member_cmp(const void *a, const void *b);
/* Sort the keys of every object in j, recursively; members with equal keys
 * keep their order. */
void jpos_sort_keys(cJSON *j);

#endif
