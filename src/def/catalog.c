/*
 * catalog.c - the catalog of pipelines: per-pipeline validation state
 * and change coalescing ("registry" is the model registry's name).
 * The scheduler thread polls catalog_due(); FUSE threads mark changes and
 * render .status/.dag. One mutex guards the table; validation itself
 * (step_load) runs outside it on a private copy of the result.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/dag.h"
#include "flowyfs/hostfs.h"
#include "flowyfs/catalog.h"
#include "flowyfs/step.h"
#include "flowyfs/util.h"
#include "flowyfs/watch.h"

struct entry {
	char *name;
	int dirty;          /* changed since last validation */
	int validating;     /* a thread validates it now (others wait) */
	int run_wanted;     /* changed since a run was last queued */
	uint64_t gen;       /* counts changes: equal generations, equal files */
	double changed_at;
	double busy_at;     /* last write seen on an input (catalog_busy) */
	int valid;
	char *errors;       /* one per line, when invalid */
	char *dag, *dot;    /* renderings, when valid */
	char **steps;       /* step names, when valid */
	size_t nsteps;
	char **reads;       /* "other/name" inputs of its steps, when valid */
	size_t nreads;
	int autorun;        /* pipeline.json "autorun" (default on) */
	char *stale;        /* autorun off: why a run now would differ, or NULL */
	struct catalog_def *def; /* the valid definition, shared (or NULL) */
	char *last_cmd;     /* "last command: ..." line for .status, or NULL */
	struct entry *next;
};

struct catalog {
	pthread_mutex_t lock;
	pthread_cond_t validated; /* an entry's validating went to 0 */
	struct entry *head;
	catalog_valid_fn on_valid; /* and its argument */
	void *on_valid_arg;
};

/* A validated definition lent to readers (.plan) while the catalog may
 * replace it: the last holder frees it. */
struct catalog_def {
	struct pipeline_def *p;
	int refs;
};

void catalog_def_put(struct catalog_def *d)
{
	if (d && __atomic_sub_fetch(&d->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		step_free(d->p);
		free(d);
	}
}

struct catalog *catalog_new(void)
{
	struct catalog *r = xcalloc(1, sizeof *r);
	pthread_mutex_init(&r->lock, NULL);
	r->validated = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
	return r;
}

static void entry_clear(struct entry *e)
{
	for (size_t i = 0; i < e->nsteps; i++)
		free(e->steps[i]);
	free(e->steps);
	e->steps = NULL;
	e->nsteps = 0;
	for (size_t i = 0; i < e->nreads; i++)
		free(e->reads[i]);
	free(e->reads);
	e->reads = NULL;
	e->nreads = 0;
	free(e->errors);
	free(e->dag);
	free(e->dot);
	e->errors = e->dag = e->dot = NULL;
	catalog_def_put(e->def);
	e->def = NULL;
}

void catalog_free(struct catalog *r)
{
	if (!r)
		return;
	for (struct entry *e = r->head, *n; e; e = n) {
		n = e->next;
		entry_clear(e);
		free(e->last_cmd);
		free(e->stale);
		free(e->name);
		free(e);
	}
	pthread_mutex_destroy(&r->lock);
	free(r);
}

int catalog_is_pipeline(const char *name)
{
	return name[0] != '.' && step_name_valid(name);
}

/* The entry for name, created (dirty) when missing. Lock held. */
static struct entry *get(struct catalog *r, const char *name)
{
	for (struct entry *e = r->head; e; e = e->next)
		if (!strcmp(e->name, name))
			return e;
	struct entry *e = xcalloc(1, sizeof *e);
	e->name = xstrdup(name);
	e->dirty = 1;
	e->next = r->head;
	r->head = e;
	return e;
}

void catalog_changed(struct flowy *f, const char *pipeline)
{
	if (!catalog_is_pipeline(pipeline))
		return;
	struct catalog *r = f->catalog;
	pthread_mutex_lock(&r->lock);
	struct entry *e = get(r, pipeline);
	e->dirty = 1;
	e->run_wanted = 1;
	e->gen++;
	e->changed_at = util_now();
	pthread_mutex_unlock(&r->lock);
}

void catalog_changed_file(struct flowy *f, const char *pipeline, const char *rel)
{
	size_t n = rel ? strlen(rel) : 0;
	int definition = rel && !strchr(rel, '/') && n > 5 && !strcmp(rel + n - 5, ".json") &&
	                 rel[0] != '.';
	if (!rel || definition || step_is_default_code(rel)) {
		catalog_changed(f, pipeline);
		return;
	}
	if (!catalog_is_pipeline(pipeline))
		return;
	struct catalog *r = f->catalog;
	pthread_mutex_lock(&r->lock);
	struct entry *e = get(r, pipeline);
	e->dirty = 1;   /* a code path a step names may have come or gone */
	e->gen++;       /* the next run's snapshot must see it */
	pthread_mutex_unlock(&r->lock);
}

static void validate(struct flowy *f, const char *pipeline);

void catalog_busy(struct flowy *f, const char *pipeline)
{
	struct catalog *r = f->catalog;
	pthread_mutex_lock(&r->lock);
	get(r, pipeline)->busy_at = util_now();
	pthread_mutex_unlock(&r->lock);
}

int catalog_has_step(struct flowy *f, const char *pipeline, const char *step)
{
	validate(f, pipeline);
	struct catalog *r = f->catalog;
	int found = 0;
	pthread_mutex_lock(&r->lock);
	struct entry *e = get(r, pipeline);
	for (size_t i = 0; i < e->nsteps && !found; i++)
		found = !strcmp(e->steps[i], step);
	pthread_mutex_unlock(&r->lock);
	return found;
}

uint64_t catalog_generation(struct flowy *f, const char *pipeline)
{
	struct catalog *r = f->catalog;
	pthread_mutex_lock(&r->lock);
	uint64_t g = get(r, pipeline)->gen;
	pthread_mutex_unlock(&r->lock);
	return g;
}

void catalog_removed(struct flowy *f, const char *pipeline)
{
	struct catalog *r = f->catalog;
	watch_set(f, pipeline, NULL, 0);
	pthread_mutex_lock(&r->lock);
	for (struct entry **p = &r->head; *p; p = &(*p)->next)
		if (!strcmp((*p)->name, pipeline)) {
			struct entry *e = *p;
			*p = e->next;
			entry_clear(e);
			free(e->last_cmd);
			free(e->stale);
			free(e->name);
			free(e);
			break;
		}
	pthread_mutex_unlock(&r->lock);
}

void catalog_renamed(struct flowy *f, const char *from, const char *to)
{
	catalog_removed(f, from);
	if (!catalog_is_pipeline(to))
		return;
	/* A directory moved into place is complete: no window to wait for. */
	struct catalog *r = f->catalog;
	pthread_mutex_lock(&r->lock);
	struct entry *e = get(r, to);
	e->dirty = 1;
	e->run_wanted = 1;
	e->gen++;
	e->changed_at = util_now() - f->coalesce;
	pthread_mutex_unlock(&r->lock);
}

/* Watch the host paths of the pipeline's file: inputs (none if invalid). */
static void watch_inputs(struct flowy *f, const char *pipeline,
                         const struct pipeline_def *p)
{
	char **paths = NULL;
	size_t n = 0;
	for (size_t i = 0; p && !p->n_errors && i < p->n_steps; i++)
		for (size_t k = 0; k < p->steps[i].n_inputs; k++)
			if (p->steps[i].inputs[k].kind == STEP_IN_FILE) {
				paths = xrealloc(paths, (n + 1) * sizeof *paths);
				paths[n++] = p->steps[i].inputs[k].path;
			}
	watch_set(f, pipeline, paths, n);
	free(paths);
}

/* A file: input may not lead into the mount: the daemon would read its
 * own mount (and a FUSE worker would watch it). */
static const char *check_file_input(const char *path, void *arg)
{
	struct flowy *f = arg;
	if (hostfs_inside_mount(path, f->mnt, f->mnt_dev))
		return "a file: input may not point into the mount (use other/name or "
		       "sha256:<hex> for artifacts)";
	if (f->store && hostfs_inside_mount(path, f->store, (dev_t)-1))
		return "a file: input may not point into the store";
	return NULL;
}

/* Validate pipeline if it changed; lock not held. While another thread
 * validates it, wait for that result rather than answer from the state
 * before it (for a new pipeline: nothing, not even its errors). */
static void validate(struct flowy *f, const char *pipeline)
{
	struct catalog *r = f->catalog;
	pthread_mutex_lock(&r->lock);
	struct entry *e = get(r, pipeline);
	while (e->validating) {
		pthread_cond_wait(&r->validated, &r->lock);
		e = get(r, pipeline); /* it may have been removed meanwhile */
	}
	int dirty = e->dirty;
	e->dirty = 0;
	e->validating = dirty;
	pthread_mutex_unlock(&r->lock);
	if (!dirty)
		return;

	char *dir = xasprintf("%s/%s", f->pipelines_dir, pipeline);
	struct pipeline_def *p = NULL;
	struct step_checks checks = {.file_input = check_file_input, .arg = f};
	int rc = step_load_checked(&p, pipeline, dir, &checks);
	struct strbuf errs = {0};
	char *dag = NULL, *dot = NULL, **steps = NULL, **reads = NULL;
	size_t nsteps = 0, nreads = 0;
	int autorun = 1;
	if (rc < 0) {
		strbuf_printf(&errs, "%s: cannot read pipeline: %s\n", pipeline, strerror(-rc));
	} else if (p->n_errors) {
		for (size_t i = 0; i < p->n_errors; i++)
			strbuf_printf(&errs, "%s\n", p->errors[i]);
	} else {
		dag = dag_render_text(p);
		dot = dag_render_dot(p);
		steps = xcalloc(p->n_steps + 1, sizeof *steps);
		for (nsteps = 0; nsteps < p->n_steps; nsteps++)
			steps[nsteps] = xstrdup(p->steps[nsteps].name);
		for (size_t i = 0; i < p->n_steps; i++)
			for (size_t k = 0; k < p->steps[i].n_inputs; k++)
				if (p->steps[i].inputs[k].kind == STEP_IN_PIPELINE ||
				    p->steps[i].inputs[k].kind == STEP_IN_REGISTRY) {
					reads = xrealloc(reads, (nreads + 1) * sizeof *reads);
					reads[nreads++] = xstrdup(p->steps[i].inputs[k].ref);
				}
		autorun = p->autorun;
	}
	watch_inputs(f, pipeline, rc < 0 ? NULL : p);
	struct catalog_def *def = NULL;
	if (rc >= 0 && !p->n_errors) {
		def = xcalloc(1, sizeof *def);
		def->p = p;
		def->refs = 1;
	} else {
		step_free(p);
	}
	free(dir);

	pthread_mutex_lock(&r->lock);
	e = get(r, pipeline);
	entry_clear(e);
	e->valid = errs.len == 0;
	e->errors = strbuf_detach(&errs, NULL);
	e->dag = dag;
	e->dot = dot;
	e->steps = steps;
	e->nsteps = nsteps;
	e->reads = reads;
	e->nreads = nreads;
	e->autorun = autorun;
	e->def = def;
	e->validating = 0;
	pthread_cond_broadcast(&r->validated);
	catalog_valid_fn fn = r->on_valid;
	void *arg = r->on_valid_arg;
	char *tell = fn && e->valid ? xstrdup(dot) : NULL;
	pthread_mutex_unlock(&r->lock);
	if (tell)
		fn(arg, pipeline, tell);
	free(tell);
}

void catalog_on_valid(struct catalog *r, catalog_valid_fn fn, void *arg)
{
	pthread_mutex_lock(&r->lock);
	r->on_valid = fn;
	r->on_valid_arg = arg;
	pthread_mutex_unlock(&r->lock);
}

const struct pipeline_def *catalog_def_get(struct flowy *f, const char *pipeline,
                                           struct catalog_def **out)
{
	validate(f, pipeline);
	struct catalog *r = f->catalog;
	pthread_mutex_lock(&r->lock);
	struct entry *e = get(r, pipeline);
	*out = e->valid ? e->def : NULL;
	if (*out)
		__atomic_add_fetch(&(*out)->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&r->lock);
	return *out ? (*out)->p : NULL;
}

static void last_run(struct flowy *f, const char *pipeline, struct strbuf *sb)
{
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db, "SELECT id, status, error FROM runs WHERE "
	                              "pipeline=? ORDER BY id DESC LIMIT 1", "t", pipeline);
	if (st && sqlite3_step(st) == SQLITE_ROW) {
		const char *err = (const char *)sqlite3_column_text(st, 2);
		strbuf_printf(sb, "last run: %lld %s", (long long)sqlite3_column_int64(st, 0),
		              (const char *)sqlite3_column_text(st, 1));
		if (err && *err)
			strbuf_printf(sb, " (%s)", err);
		strbuf_puts(sb, "\n");
	}
	else
		strbuf_puts(sb, "last run: none\n");
	db_finish(f->db, st);
	db_unlock(f->db);
}

char *catalog_render(struct flowy *f, const char *pipeline, enum catalog_doc doc)
{
	validate(f, pipeline);
	struct catalog *r = f->catalog;
	struct strbuf sb = {0};
	pthread_mutex_lock(&r->lock);
	struct entry *e = get(r, pipeline);
	switch (doc) {
	case CATALOG_STATUS:
		strbuf_printf(&sb, "%s\n%s", e->valid ? "valid" : "invalid", e->errors);
		if (e->valid && e->stale)
			strbuf_printf(&sb, "stale: %s (autorun is off: write \"run\" to .ctl)\n",
			              e->stale);
		if (e->last_cmd)
			strbuf_puts(&sb, e->last_cmd);
		break;
	case CATALOG_DAG:
		strbuf_puts(&sb, e->valid ? e->dag : "invalid: see .status\n");
		break;
	case CATALOG_DOT:
		strbuf_puts(&sb, e->valid ? e->dot : "// invalid: see .status\n");
		break;
	}
	pthread_mutex_unlock(&r->lock);
	if (doc == CATALOG_STATUS)
		last_run(f, pipeline, &sb);
	return strbuf_detach(&sb, NULL);
}

void catalog_command(struct flowy *f, const char *pipeline, const char *cmd,
                      const char *error)
{
	struct catalog *r = f->catalog;
	struct strbuf sb = {0};
	if (!error) { /* accepted: what was refused before no longer stands */
		pthread_mutex_lock(&r->lock);
		struct entry *e = get(r, pipeline);
		free(e->last_cmd);
		e->last_cmd = NULL;
		pthread_mutex_unlock(&r->lock);
		return;
	}
	strbuf_puts(&sb, "last command: ");
	/* The command as typed, made printable and kept to one short line. */
	for (size_t i = 0; cmd[i] && i < 200; i++)
		strbuf_add(&sb, (unsigned char)cmd[i] < 0x20 || cmd[i] == 0x7f ? "?" : cmd + i, 1);
	if (strlen(cmd) > 200)
		strbuf_puts(&sb, "...");
	strbuf_printf(&sb, ": %s\n", error);
	pthread_mutex_lock(&r->lock);
	struct entry *e = get(r, pipeline);
	free(e->last_cmd);
	e->last_cmd = strbuf_detach(&sb, NULL);
	pthread_mutex_unlock(&r->lock);
}

int catalog_check(struct flowy *f, const char *pipeline, char **errors)
{
	validate(f, pipeline);
	struct catalog *r = f->catalog;
	pthread_mutex_lock(&r->lock);
	struct entry *e = get(r, pipeline);
	int valid = e->valid;
	if (!valid && errors)
		*errors = xstrdup(e->errors);
	pthread_mutex_unlock(&r->lock);
	return valid;
}

void catalog_scan(struct flowy *f)
{
	DIR *d = opendir(f->pipelines_dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		if (catalog_is_pipeline(e->d_name))
			validate(f, e->d_name);
	closedir(d);
}

double catalog_due(struct flowy *f, char ***out, size_t *n)
{
	struct catalog *r = f->catalog;
	double now = util_now(), next = -1;
	char **due = NULL;
	size_t k = 0;
	pthread_mutex_lock(&r->lock);
	for (struct entry *e = r->head; e; e = e->next) {
		if (!e->run_wanted)
			continue;
		double last = e->changed_at > e->busy_at ? e->changed_at : e->busy_at;
		double left = last + f->coalesce - now;
		if (left > 0) {
			if (next < 0 || left < next)
				next = left;
			continue;
		}
		e->run_wanted = 0;
		due = xrealloc(due, (k + 1) * sizeof *due);
		due[k++] = xstrdup(e->name);
	}
	pthread_mutex_unlock(&r->lock);
	/* Keep only those that validate. */
	size_t j = 0;
	for (size_t i = 0; i < k; i++) {
		int keep = catalog_check(f, due[i], NULL);
		if (keep) { /* autorun off: only say that a run would differ */
			pthread_mutex_lock(&r->lock);
			struct entry *e = get(r, due[i]);
			if (!e->autorun && !e->stale)
				e->stale = xstrdup("its files changed since its last run");
			keep = e->autorun;
			pthread_mutex_unlock(&r->lock);
		}
		if (keep)
			due[j++] = due[i];
		else
			free(due[i]);
	}
	*out = due;
	*n = j;
	return next;
}

void catalog_queued(struct flowy *f, const char *pipeline)
{
	struct catalog *r = f->catalog;
	pthread_mutex_lock(&r->lock);
	struct entry *e = get(r, pipeline);
	free(e->stale);
	e->stale = NULL;
	pthread_mutex_unlock(&r->lock);
}

void catalog_readers(struct flowy *f, const char *pipeline, const char *name,
                     char ***out, size_t *n)
{
	char *ref = xasprintf("%s/%s", pipeline, name);
	catalog_readers_ref(f, ref, pipeline, out, n);
	free(ref);
}

void catalog_readers_ref(struct flowy *f, const char *ref, const char *self,
                         char ***out, size_t *n)
{
	struct catalog *r = f->catalog;
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&r->lock);
	for (struct entry *e = r->head; e; e = e->next) {
		int reads = 0;
		for (size_t i = 0; e->valid && i < e->nreads && !reads; i++)
			reads = !strcmp(e->reads[i], ref);
		if (!reads || (self && !strcmp(e->name, self)))
			continue;
		if (!e->autorun) {
			free(e->stale);
			e->stale = xasprintf("input %s changed", ref);
			continue;
		}
		*out = xrealloc(*out, (*n + 1) * sizeof **out);
		(*out)[(*n)++] = xstrdup(e->name);
	}
	pthread_mutex_unlock(&r->lock);
}

char *catalog_render_staging(struct flowy *f, const char *dirname)
{
	char *dir = xasprintf("%s/%s", f->pipelines_dir, dirname);
	struct pipeline_def *p = NULL;
	struct step_checks checks = {.file_input = check_file_input, .arg = f};
	int rc = step_load_checked(&p, dirname + 1, dir, &checks);
	struct strbuf sb = {0};
	if (rc < 0)
		strbuf_printf(&sb, "invalid\n%s: cannot read pipeline: %s\n", dirname,
		              strerror(-rc));
	else if (p->n_errors)
		strbuf_puts(&sb, "invalid\n");
	else
		strbuf_printf(&sb, "valid\nstaging: move it into place to run it: mv %s %s\n",
		              dirname, dirname + 1);
	for (size_t i = 0; rc >= 0 && i < p->n_errors; i++)
		strbuf_printf(&sb, "%s\n", p->errors[i]);
	step_free(p);
	free(dir);
	return strbuf_detach(&sb, NULL);
}
