/*
 * diag.h - diagnostics of the definition layer: the list of problems
 * found in one pipeline, each "<file>:<line>:<col>: <message>" (or
 * "<file>: <message>" without a position, or just "<message>" about the
 * whole pipeline), sorted by file and position, capped so hostile input
 * stays cheap; quoting of user text in messages; and the near-miss
 * suggestion for unknown keys ("did you mean ...?").
 */
#ifndef FLOWYFS_DIAG_H
#define FLOWYFS_DIAG_H

#include <stddef.h>
#include "flowyfs/jpos.h"

#define DIAG_MAX      1000   /* messages kept per pipeline */
#define DIAG_FILE_MAX 100    /* positioned messages kept per file */
#define DIAG_QUOTE_MAX 80    /* bytes of a value quoted in a message */

struct diag_err;

/* Zero-initialise; release with diag_free() (or diag_finish()). */
struct diag {
	struct diag_err *errs;
	size_t n, cap, dropped;
	char **tmp;             /* quoted strings for the next message */
	size_t n_tmp, cap_tmp;
};

/* s quoted and escaped for a message ("..."; long values cut). The
 * string belongs to d and lives until the next message is added. */
const char *diag_quote(struct diag *d, const char *s);
/* s with control characters escaped, unquoted (names, file names);
 * malloc'd, caller frees. */
char *diag_plain(const char *s);

/* Add a message about file (NULL: about the whole pipeline), without a
 * position. */
void diag_file(struct diag *d, const char *file, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Add a message at offset off of s (at most DIAG_FILE_MAX per file; the
 * rest are counted and reported by diag_dropped()). */
void diag_at(struct diag *d, struct jpos_src *s, size_t off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Say how many messages about s were left out (sorted after the rest). */
void diag_dropped(struct diag *d, const struct jpos_src *s);
/* How many problems were found so far (kept or not). */
size_t diag_count(const struct diag *d);

/* Sort the messages and format them: *out gets a malloc'd array of
 * malloc'd strings (NULL-terminated, *n entries), d is emptied. */
void diag_finish(struct diag *d, char ***out, size_t *n);
void diag_free(struct diag *d);

/* Is word a near miss of known: equal but for case, or at most 2 edits
 * apart (insert, delete, substitute, swap two neighbours), ignoring case? */
int diag_near(const char *word, const char *known);
/* Report the unknown key at offset off of s; known is the key column of a
 * table (n rows, stride bytes apart, each starting with a const char *),
 * searched for the first nearest near miss to suggest. */
void diag_unknown_key(struct diag *d, struct jpos_src *s, size_t off,
                      const char *key, const void *known, size_t n, size_t stride);

#endif
