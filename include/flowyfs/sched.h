/*
 * sched.h - the queue and its control, and the scheduler thread that
 * drives every queued and running run at once.
 *
 * Runs of different pipelines, and several runs of one pipeline, run at
 * the same time and share the daemon's -j slots; slots go to the oldest
 * runs first. A run is captured when it is queued (see run.h), so when
 * sched_queue() returns the run exists with its params and snapshot.
 */
#ifndef FLOWYFS_SCHED_H
#define FLOWYFS_SCHED_H

#include <stdint.h>
#include "flowyfs/flowy.h"
#include "flowyfs/run.h"

int sched_start(struct flowy *f);
/* Stop: running steps are killed, their runs (and queued ones) marked
 * interrupted. */
void sched_stop(struct flowy *f);
/* Queue one run for req. *out_id (may be NULL) gets its id. A run is
 * refused (-ENOSPC) while the store's disk is nearly full, -EINVAL or
 * -ESRCH when the request is wrong; *why (malloc'd) says why, for a
 * person. */
int sched_queue(struct flowy *f, const struct run_request *req, int64_t *out_id,
                char **why);
/* "cancel", "pause" or "resume" run (0: every queued and running run) of
 * pipeline. 0, -ESRCH (no such run, or none) or -EINVAL (it has ended),
 * with *why. */
int sched_control(struct flowy *f, const char *pipeline, const char *verb,
                  int64_t run, char **why);
/* For db_recover: kill the process group of a step a dead daemon left
 * running, if pid is still that step. */
void sched_stop_stray(int64_t run, const char *step, int pid, void *arg);
/* Alias of model moved (set, changed or removed): the scheduler announces
 * it (event alias-moved) and queues the pipelines reading
 * registry:<model>@<alias>, or marks them stale when their autorun is
 * off. Any thread. */
void sched_alias_moved(struct flowy *f, const char *model, const char *alias);
/* Wake the scheduler (a change is waiting). */
void sched_wake(struct flowy *f);

#endif
