/*
 * step.h - pipeline and step definitions: the API of the definition layer
 * (src/def/: parsing with cJSON, validation, the dag).
 *
 * A pipeline is a directory: optional pipeline.json (params = the context,
 * description, workdir, autorun, executor, resources, slurm, alerts) and
 * one step per top-level *.json file, named after the file (the keys of
 * each are in docs/steps.md). step_load() reads such a directory and
 * returns the parsed definition together with every problem found; it
 * never fails on bad input (only on I/O or memory trouble). Errors are
 * formatted
 *     <file>:<line>:<col>: <message>
 * with file relative to the pipeline directory (e.g. "train.json:3:5:
 * unknown key \"foo\""), or "<file>: <message>" when no position applies.
 */
#ifndef FLOWYFS_STEP_H
#define FLOWYFS_STEP_H

#include <stddef.h>
#include <cJSON.h>

#define STEP_NAME_MAX 128

enum step_input_kind {
	STEP_IN_LOCAL = 1,   /* "name": an output of a step of this pipeline */
	STEP_IN_PIPELINE,    /* "other/name": latest output of pipeline other */
	STEP_IN_FILE,        /* "file:/abs/path": a host file or directory */
	STEP_IN_PINNED,      /* "sha256:<hex>": a pinned artifact */
	STEP_IN_REGISTRY     /* "registry:<model>@<alias>": the version the
	                        alias points at (as: the model's name) */
};

struct step_input {
	enum step_input_kind kind;
	char *ref;           /* as written */
	char *as;            /* its name under in/: the artifact name, the
	                        basename of a file: path, or the hex */
	char *pipeline;      /* STEP_IN_PIPELINE */
	char *artifact;      /* LOCAL and PIPELINE: the output name */
	char *path;          /* STEP_IN_FILE: absolute path */
	char *hex;           /* STEP_IN_PINNED */
	char *model;         /* STEP_IN_REGISTRY: the model ... */
	char *alias;         /* ... and the alias */
	int producer;        /* LOCAL: index of the producing step, else -1 */
};

enum step_foreach {
	STEP_FOREACH_NONE = 0,
	STEP_FOREACH_INPUT,  /* "foreach": "<input>": one task per entry */
	STEP_FOREACH_PARAM   /* "foreach": "param:<name>": one per element */
};

struct step_register {
	char *output;        /* an output of the step */
	char *model;         /* a valid name */
};

struct step_def {
	char *name;          /* file name without .json */
	char *file;          /* "<name>.json" */
	char *run;
	char *description;
	struct step_input *inputs; size_t n_inputs;
	char **outputs; size_t n_outputs;
	cJSON *params;       /* resolved: object name -> value (context values
	                        for listed names, overridden by an object) */
	char **code; size_t n_code; /* as written; n_code == 0 && code_default
	                        means "every file not a top-level *.json" */
	int code_default;
	int retries;         /* default 0 */
	double backoff;      /* seconds before the first retry, doubling each
	                        time; default 0 */
	double timeout;      /* seconds, 0 = none */
	char *when;          /* shell condition run before the step, or NULL */
	enum step_foreach foreach_kind; /* STEP_FOREACH_NONE by default */
	char *foreach;       /* the input name (INPUT) or param name (PARAM) */
	int foreach_input;   /* INPUT: index into inputs, else -1 */
	int concurrency;     /* foreach: tasks at once, 0 = as many as slots */
	double min_success;  /* foreach: fraction that must succeed, 0..1,
	                        default 1 */
	struct step_register *reg; size_t n_reg; /* "register" */
	char *executor;      /* "local", "slurm", or NULL: the pipeline's */
	cJSON *resources;    /* object or NULL: the pipeline's */
	char *canonical;     /* cJSON_PrintUnformatted of the definition (keys
	                        sorted, description left out),
	                        for the cache key */
};

/* One alert of pipeline.json: a metric crossing a bound (above: value >
 * above; below: value < below; one or both), or the run (or, with step,
 * that step) running longer than duration_above seconds. */
struct alert_def {
	char *name;
	char *metric;        /* NULL for a duration alert */
	char *step;          /* only this step's values / time, or NULL */
	double above, below, duration_above;
	int has_above, has_below, has_duration;
};

struct pipeline_def {
	char *name;
	char *dir;
	cJSON *params;       /* the context (object, maybe empty) */
	char *description;
	char *workdir;       /* absolute or NULL */
	int autorun;         /* default 1: a valid change or a trigger queues a run */
	char *executor;      /* default executor of its steps, or NULL (local) */
	cJSON *resources;    /* default resources of its steps, or NULL */
	cJSON *slurm;        /* "slurm": partition, account, args; or NULL */
	struct alert_def *alerts; size_t n_alerts; /* "alerts", checked */
	struct step_def *steps; size_t n_steps; /* sorted by name */
	size_t *order;       /* topological order (indexes into steps), valid
	                        only when n_errors == 0 */
	char **errors; size_t n_errors;
	int holders;         /* holders besides the first (step_hold) */
};

/* Is name a valid pipeline/step/artifact name: [A-Za-z0-9_][A-Za-z0-9_.-]*,
 * at most STEP_NAME_MAX bytes? */
int step_name_valid(const char *name);

/* Parse and validate the pipeline in dir. *out is set even when the
 * pipeline is invalid (then (*out)->n_errors > 0). Returns 0, or -errno
 * when dir cannot be read. Caller frees with step_free(). */
int step_load(struct pipeline_def **out, const char *name, const char *dir);
/* A loaded pipeline is read-only and may be shared between threads:
 * step_hold adds a holder, step_free drops one and frees the pipeline
 * with the last. */
void step_hold(struct pipeline_def *p);
void step_free(struct pipeline_def *p);

/* Checks only the caller can make, reported at the place they concern. */
struct step_checks {
	/* A file: input's path: NULL when fine, else why not (static text). */
	const char *(*file_input)(const char *path, void *arg);
	void *arg;
	/* Run-time param overrides (an object, or NULL): each replaces the
	 * context value of its key (keys not in the context are ignored; the
	 * caller refuses them) before steps take their params, so a step's
	 * own object value still wins. */
	const cJSON *overrides;
};
/* step_load, with checks (NULL: none). */
int step_load_checked(struct pipeline_def **out, const char *name, const char *dir,
                      const struct step_checks *checks);

/* Is rel (a path relative to the pipeline directory, '/'-separated) part
 * of the default code of a step that names no "code"? Every file is,
 * except top-level *.json (the definitions), anything with a component
 * starting with '.' (dotfiles, .git/, .#x, .x.swp), editors' temp files
 * (*~, *.swp, *.swo, *.swx, *.tmp, #x#, vim's probe 4913) and
 * documentation (*.md, *.markdown, *.rst, README*, LICENSE*, LICENCE*,
 * COPYING*), at any depth, any case. Returns 1 or 0. */
int step_is_default_code(const char *rel);

/* Index of the step producing artifact name, or -1. */
int step_producer(const struct pipeline_def *p, const char *artifact);

#endif
