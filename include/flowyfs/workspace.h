/*
 * workspace.h - what a step is given: its scratch directory (the
 * snapshot's code files, in/ links to its inputs through the mount, an
 * empty out/), its log, metrics and params files, and its environment.
 */
#ifndef FLOWYFS_WORKSPACE_H
#define FLOWYFS_WORKSPACE_H

#include "flowyfs/run.h"

/* Lay out step i's scratch afresh (a retry starts clean). 0 or -errno. */
int workspace_prepare(struct run *r, size_t i);
/* Open (once) the step's log, runs/<id>/<step>.log in the store. */
int workspace_open_log(struct run *r, struct srun *s);
/* The step's metrics file (fd 3) and params file (fd 4, returned in
 * *params_fd, the caller closes it). 0 or -errno. */
int workspace_open_files(struct run *r, size_t i, int *params_fd);
/* The step's environment: the daemon's without FLOWY_*, then FLOWY_*.
 * Free with workspace_env_free(). */
char **workspace_env(struct run *r, size_t i);
void workspace_env_free(char **env);
/* Remove a scratch directory; a failure is logged (it only costs disk). */
void workspace_remove(const char *dir);
/* A new run of pipeline (id) was queued: remove the scratch its earlier
 * runs kept for their failed steps. */
void workspace_forget_kept(struct flowy *f, const char *pipeline, int64_t id);

#endif
