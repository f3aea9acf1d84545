/*
 * stepload.h - the state of one step_load() shared by the modules of the
 * definition layer (src/def/): the pipeline being built, the open
 * directory, the files read, the diagnostics, and the pipeline.json
 * params index. Only src/def/ uses it; the engine uses step.h.
 *
 * The order of a load: step.c lists and reads the files (stepload_read),
 * pipekey.c parses pipeline.json, stepkey.c each <step>.json (the {key,
 * parser} tables are walked by keytab.c), pipecheck.c checks across steps
 * (outputs, inputs, cycles), and diag.c sorts and formats what was found.
 */
#ifndef FLOWYFS_STEPLOAD_H
#define FLOWYFS_STEPLOAD_H

#include <stddef.h>
#include <cJSON.h>

#include "flowyfs/diag.h"
#include "flowyfs/jpos.h"
#include "flowyfs/step.h"

#define STEPLOAD_FILE_MAX (4u << 20)   /* bytes of one JSON file */
#define STEPLOAD_NAME_RULE "names are [A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128 bytes"
#define STEPLOAD_PARAM_RULE "param names are [A-Za-z0-9_]+, at most 128 bytes"

/* One <step>.json being parsed: its text and what the cross-step checks
 * need to point back into it. Owned by the load. */
struct stepfile {
	struct jpos_src src;
	cJSON *root;
	size_t obj;             /* offset of the root value */
	struct step_def *st;    /* the step it defines (in p->steps) */
	size_t *in_pos;         /* offset of each kept input */
	size_t *out_pos;        /* offset of each output */
	int outputs_known;      /* the "outputs" of this step could be read */
};

struct stepload {
	struct pipeline_def *p;
	int dirfd;              /* the pipeline directory */
	struct stepfile *files; /* parallel to p->steps */
	struct diag diag;
	cJSON **ctx_idx;        /* context params sorted by key */
	size_t n_ctx;
	int ctx_ok;             /* pipeline.json params usable for lookups */
	const struct step_checks *checks; /* the caller's, or NULL */
	char **step_files;      /* the <step>.json names, sorted (for pipeline.json's
	                           references to steps) */
	size_t n_step_files;
};

/* cJSON allocation that aborts on out-of-memory. */
cJSON *stepload_json(cJSON *j);

/* A string-valued key: when val is a string (non-empty, if nonempty is
 * set) *out gets a malloc'd copy (an earlier *out is freed); else msg is
 * reported at offset ko of s. */
void stepload_string(struct stepload *l, struct jpos_src *s, cJSON *val, size_t ko,
                     int nonempty, char **out, const char *msg);

/* Read name (in the pipeline directory) into s (s->disp set by the
 * caller). Returns 0, 1 when the file has vanished meanwhile, -1 after
 * reporting why it cannot be used. */
int stepload_read(struct stepload *l, struct jpos_src *s, const char *name);
/* Parse s->text into *out (caller deletes). Returns 0, or -1 after
 * reporting the syntax error at its line and column. */
int stepload_parse(struct stepload *l, struct jpos_src *s, cJSON **out);

/* Index p->params (the context) for stepload_param(); call once, after
 * pipeline.json was parsed. */
void stepload_index_params(struct stepload *l);
/* The context value of param name (first one when repeated), or NULL. */
cJSON *stepload_param(const struct stepload *l, const char *name);
/* Is name valid: [A-Za-z0-9_][A-Za-z0-9_.-]* (step_name_valid), or with
 * param set [A-Za-z0-9_]+ (params become FLOWY_PARAM_<name>); at most
 * STEP_NAME_MAX bytes either way? */
int stepload_name_valid(const char *name, int param);
/* Check the param names of the object obj at offset vo of s (the context
 * or a step's override); dup[i] is set for each member repeating an
 * earlier key (dup has one entry per member). */
void stepload_check_param_keys(struct stepload *l, struct jpos_src *s, cJSON *obj,
                               size_t vo, unsigned char *dup);

/* Names with two indexes, sorted to find repeats and look names up. */
struct stepload_named {
	const char *name;
	size_t i, j;
};
/* qsort comparator: by name, then i, then j. */
int stepload_named_cmp(const void *a, const void *b);
/* First entry of the sorted v[0..n) named name, or JPOS_NONE. */
size_t stepload_named_find(const struct stepload_named *v, size_t n, const char *name);

#endif
