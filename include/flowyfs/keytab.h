/*
 * keytab.h - tables of the keys a definition object may have: one
 * {key, parser} row per key. keytab_walk() goes over the members of an
 * object, reports unknown keys (with a near-miss suggestion) and repeated
 * ones at their position, and hands every other member to its row's
 * parser. A new key of a step, of pipeline.json or of "resources" is one
 * row and one parser.
 */
#ifndef FLOWYFS_KEYTAB_H
#define FLOWYFS_KEYTAB_H

#include <stddef.h>
#include <cJSON.h>

#include "flowyfs/jpos.h"

struct stepload;

/* Parse the value val of one key into obj (what obj is belongs to the
 * table: a struct stepfile for step keys, the pipeline_def for
 * pipeline.json keys); ko and vo are the offsets of the key and the value
 * in s. Problems go to the load's diagnostics. */
typedef void keytab_parser(struct stepload *l, struct jpos_src *s, void *obj,
                           cJSON *val, size_t ko, size_t vo);

struct keytab {
	const char *key;
	keytab_parser *parse;   /* NULL: accepted as it is */
};

/* Walk the object json found at offset at of s against rows[0..n).
 * seen (n entries) gets the key offset of each row's key, JPOS_NONE when
 * absent. */
void keytab_walk(const struct keytab *rows, size_t n, struct stepload *l,
                 struct jpos_src *s, cJSON *json, size_t at, void *obj,
                 size_t *seen);

/* A member whose value must be an object walked against rows (resources,
 * slurm): when val is not an object, report at ko that "key" must be an
 * object and name the table's keys. Returns 1 when val was walked, else 0. */
int keytab_walk_member(const struct keytab *rows, size_t n, struct stepload *l,
                       struct jpos_src *s, cJSON *val, size_t ko, size_t vo,
                       void *obj, const char *key);

#endif
