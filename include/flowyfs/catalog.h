/*
 * catalog.h - what the daemon knows about each pipeline between runs:
 * whether it changed since it was last validated, whether a change is
 * waiting to become a run, and the result of the last validation.
 *
 * A write that closes, an unlink, a rename marks the pipeline changed.
 * Validation is lazy: it happens when someone opens .status/.dag or when
 * the change window (f->coalesce) has passed, so a burst of writes costs
 * one validation and queues one run.
 */
#ifndef FLOWYFS_CATALOG_H
#define FLOWYFS_CATALOG_H

#include <stddef.h>
#include <stdint.h>
#include "flowyfs/flowy.h"

enum catalog_doc { CATALOG_STATUS, CATALOG_DAG, CATALOG_DOT };

struct catalog *catalog_new(void);
void catalog_free(struct catalog *r);

/* Called (when set) each time pipeline validates after a change, with
 * its .dag.dot, outside the catalog's lock, from the thread that
 * validated: it must return at once. */
typedef void (*catalog_valid_fn)(void *arg, const char *pipeline, const char *dot);
void catalog_on_valid(struct catalog *r, catalog_valid_fn fn, void *arg);

/* Is name a pipeline directory that runs (valid name, not a dot-dir)? */
int catalog_is_pipeline(const char *name);
/* A file of pipeline changed: revalidate, and queue a run once the change
 * window has passed. */
void catalog_changed(struct flowy *f, const char *pipeline);
/* File rel (NULL: the directory itself) of pipeline changed: as
 * catalog_changed, except that a file no run would see differently (an
 * editor's temp file, a dotfile, documentation: not a definition and not
 * default code) only marks the files changed, queueing no run. */
void catalog_changed_file(struct flowy *f, const char *pipeline, const char *rel);
void catalog_removed(struct flowy *f, const char *pipeline);
/* An input of pipeline is being written: a change waiting to become a run
 * waits until the change window has passed with no more activity. */
void catalog_busy(struct flowy *f, const char *pipeline);
void catalog_renamed(struct flowy *f, const char *from, const char *to);
/* Is step a step of the (valid) pipeline? */
int catalog_has_step(struct flowy *f, const char *pipeline, const char *step);
/* A counter of the pipeline's changes in this daemon: two equal values
 * mean the files did not change in between. */
uint64_t catalog_generation(struct flowy *f, const char *pipeline);
/* Render .status / .dag / .dag.dot; malloc'd text. */
char *catalog_render(struct flowy *f, const char *pipeline, enum catalog_doc doc);
/* Remember the last refused .ctl command of pipeline, shown in .status as
 * "last command: CMD: ERROR"; an accepted one (error NULL) clears it. */
void catalog_command(struct flowy *f, const char *pipeline, const char *cmd,
                      const char *error);
/* 1 when valid, 0 with *errors (malloc'd, one per line) when not. */
int catalog_check(struct flowy *f, const char *pipeline, char **errors);
/* Validate every pipeline of the store (at start: sets up watches). */
void catalog_scan(struct flowy *f);
/* Pipelines whose window has passed and that validated: malloc'd array of
 * malloc'd names in *out. Returns seconds until the next one is due, or
 * -1 when nothing waits. */
double catalog_due(struct flowy *f, char ***out, size_t *n);

/* The pipeline's current definition, validated (NULL when invalid), lent
 * until catalog_def_put(*out): read-only, shared with other readers. */
struct catalog_def;
struct pipeline_def;
const struct pipeline_def *catalog_def_get(struct flowy *f, const char *pipeline,
                                           struct catalog_def **out);
void catalog_def_put(struct catalog_def *d);

/* .status of a staging directory dirname (".p"): validated now, nothing
 * kept; malloc'd. */
char *catalog_render_staging(struct flowy *f, const char *dirname);

/* A run of pipeline was queued: it is no longer stale. */
void catalog_queued(struct flowy *f, const char *pipeline);
/* The valid pipelines (other than pipeline) with autorun on whose steps
 * read pipeline/name: malloc'd array of malloc'd names. Those with
 * autorun off are marked stale instead ("input pipeline/name changed"). */
void catalog_readers(struct flowy *f, const char *pipeline, const char *name,
                     char ***out, size_t *n);
/* The same for any reference as a step writes it ("registry:clf@prod"),
 * leaving out pipeline self (NULL: none). */
void catalog_readers_ref(struct flowy *f, const char *ref, const char *self,
                         char ***out, size_t *n);

#endif
