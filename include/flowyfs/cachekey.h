/*
 * cachekey.h - a step's cache key, the reason it misses, and the lookup.
 *
 * The key is the SHA-256 of a text naming the step's definition hash, its
 * code files' hashes (or the workdir's commit for steps without "code"),
 * the values of its params and the content hashes of its inputs. The same
 * parts are kept as JSON (key_parts) so a miss can say what changed
 * against the last run of the same step: "param lr changed", "train.py
 * changed", "input clean changed", "definition changed". Used by runs and
 * by .plan alike, so both give the same reasons.
 */
#ifndef FLOWYFS_CACHEKEY_H
#define FLOWYFS_CACHEKEY_H

#include <stdint.h>

#include "flowyfs/cas.h"
#include "flowyfs/db.h"
#include "flowyfs/snapshot.h"
#include "flowyfs/step.h"

/* The key (hex, malloc'd) and its parts (JSON text, malloc'd) of step d
 * with the given params (NULL: the step's), code files (code[idx[0..nidx)],
 * from snapshot_step_code), workdir state (or
 * NULL) and input hashes (one per input). item, when not NULL, names a
 * foreach task's item, part of the key (its content is in the inputs or
 * the params). */
void cachekey_compute(const struct step_def *d, const cJSON *params,
                      const struct codefile *code, const size_t *idx,
                      size_t nidx, const char *workdir_code, char *const *in_hex,
                      const char *item, char **key, char **parts);

/* Why step d (or, with item, that foreach task of it) must run, against
 * the last run of the same step (item) of pipeline before run `before`
 * (INT64_MAX: any): malloc'd text. */
char *cachekey_explain(db *d, const char *pipeline, const struct step_def *def,
                       const char *item, int64_t before, const char *parts);

/* A hit: every output of d recorded for key and still in the store, into
 * out_hex (one per output), and the run that made them into *from_run
 * (may be NULL). Returns 1 on a hit, 0 on a miss. Steps without outputs
 * never hit. Takes the db lock. */
int cachekey_lookup(db *d, cas *c, const struct step_def *def, const char *key,
                    char (*out_hex)[CAS_HEX_LEN + 1], int64_t *from_run);

/* The same for a foreach task, whose outputs are kept per item. */
int cachekey_lookup_item(db *d, cas *c, const struct step_def *def, const char *key,
                         char (*out_hex)[CAS_HEX_LEN + 1]);

#endif
