/*
 * workspace.h - what a step is given: its scratch directory (the
 * snapshot's code files, in/ links to its inputs through the mount, an
 * empty out/), its log, metrics and params files, and its environment.
 */
#ifndef FLOWYFS_WORKSPACE_H
#define FLOWYFS_WORKSPACE_H

#include "flowyfs/run.h"

/* Lay out step i's scratch afresh (a retry starts clean) at `at` (a
 * slot's work, which must not exist), else at its home under the run's
 * scratch (workspace_home), in/ linking through the mount, in a directory
 * from the run's pool when it has one. 0 or -errno. */
int workspace_prepare(struct run *r, size_t i, const char *at);
/* Where step i's scratch lives when it is not in a slot:
 * <run scratch>/<step> (a foreach task's: <step>.items/<item>). */
char *workspace_home(struct run *r, size_t i);
/* Step i succeeded and its outputs are stored: give its scratch to the
 * run's pool, emptied, for a later step (a failure to only logs: the
 * directory then stays, and goes with the run's scratch). */
void workspace_recycle(struct run *r, size_t i);
/* The same below base, in/<name> linking to <objects>/<hex> when objects
 * is given (inputs materialized there by the caller). */
int workspace_prepare_at(struct run *r, size_t i, const char *base, const char *objects);
/* Where a file of step s of r lives in the store: runs/<id>/<step><suffix>
 * (a foreach task: <step>.items/<item><suffix>); malloc'd. */
char *workspace_unit_file(struct run *r, const struct srun *s, const char *suffix);
/* Open (once) the step's log, runs/<id>/<step>.log in the store. */
int workspace_open_log(struct run *r, struct srun *s);
/* The step's metrics file (fd 3) and params file (fd 4, returned in
 * *params_fd, the caller closes it). 0 or -errno. */
int workspace_open_files(struct run *r, size_t i, int *params_fd);
/* The step's environment: its FLOWY_* ($FLOWY_IN and $FLOWY_OUT below
 * cwd, where its process runs), then the daemon's without FLOWY_* (the
 * run's copy, made once: r->env_base). Free with workspace_env_free(). */
char **workspace_env(struct run *r, size_t i, const char *cwd);
void workspace_env_free(struct run *r, char **env);
/* Drop the run's copy of the daemon's environment (run_free). */
void workspace_env_base_free(struct run *r);
/* Remove a scratch directory; a failure is logged (it only costs disk). */
void workspace_remove(const char *dir);
/* A new run of pipeline (id) was queued: remove the scratch its earlier
 * runs kept for their failed steps. */
void workspace_forget_kept(struct flowy *f, const char *pipeline, int64_t id);

/* Where the Slurm steps of run id have their scratch: <shared-dir>/<store
 * hash>/runs/<id> (malloc'd), or NULL without --shared-dir. */
char *workspace_shared_dir(const struct flowy *f, int64_t id);

#endif
