/*
 * registry.h - the model registry: models, their numbered versions (each a
 * content hash, never the same one twice) and aliases (free names pointing
 * at a version), with the history of every alias move. Kept in SQLite;
 * registry/ (views/registry.c) shows it and a step's "register" key
 * (run/record.c) adds to it.
 *
 * Every function takes the db lock itself (it is recursive) and runs in a
 * transaction of its own, or in the caller's when one is open. They return
 * 0 (or 1 where said) on success, -errno on failure.
 */
#ifndef FLOWYFS_REGISTRY_H
#define FLOWYFS_REGISTRY_H

#include <stdint.h>
#include <sys/types.h>

#include "flowyfs/cas.h"
#include "flowyfs/db.h"

#define REGISTRY_NAME_MAX 128

/* Where a version came from; all NULL / 0 for one added by hand. */
struct registry_origin {
	const char *pipeline;
	int64_t run;
	const char *step;
	const char *output;
};

/* Is name a valid model name ([A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128
 * bytes)? */
int registry_model_name_valid(const char *name);
/* Is name a valid alias: a model name that is not a version name (v<N>)
 * nor one of the model directory's own files (versions.tsv, history, .ctl,
 * .status)? With why, a refusal sets *why to a static reason. */
int registry_alias_name_valid(const char *name, const char **why);
/* "v3" -> 3 in *out: 0; -EINVAL when name is not a version name. */
int registry_version_parse(const char *name, int64_t *out);

/* Does model exist? 1 yes, 0 no, -errno. */
int registry_model_exists(db *d, const char *model);
/* Create model: 0, -EEXIST, -EINVAL (bad name), -errno. */
int registry_model_create(db *d, const char *model);
/* Remove model when it has no versions: 0, -ENOENT, -ENOTEMPTY. */
int registry_model_remove(db *d, const char *model);

/* Add hex as the next version of model: 0 with the new number in *out, 1
 * when hex already is a version of model (its number in *out, nothing
 * added). With create, a missing model is made; else -ENOENT. o may be
 * NULL (added by hand). out may be NULL. */
int registry_version_add(db *d, const char *model, const char *hex,
                         const struct registry_origin *o, int create, int64_t *out);
/* The hash of version v of model into hex: 0, -ENOENT. */
int registry_version_hash(db *d, const char *model, int64_t v,
                          char hex[CAS_HEX_LEN + 1]);

/* Point alias at version v of model, recording the move (uid: who) in the
 * history; setting it to where it already points records nothing. 0,
 * -EINVAL (bad alias name), -ENOENT (no such model or version). */
int registry_alias_set(db *d, const char *model, const char *alias, int64_t v,
                       uid_t uid);
/* Remove alias, recording the move to nothing: 0, -ENOENT. */
int registry_alias_remove(db *d, const char *model, const char *alias, uid_t uid);
/* rename(from, to) of two aliases of model: to takes from's version and
 * from goes away. An alias made just before and never moved (how `ln -sfn`
 * replaces a link: a temporary name, then a rename over) leaves no trace in
 * the history; the move of to is recorded once. 0, -ENOENT, -EINVAL. */
int registry_alias_rename(db *d, const char *model, const char *from,
                          const char *to, uid_t uid);
/* The version alias points at (in *v) and its hash (hex may be NULL): 0,
 * -ENOENT. */
int registry_alias_get(db *d, const char *model, const char *alias, int64_t *v,
                       char hex[CAS_HEX_LEN + 1]);

#endif
