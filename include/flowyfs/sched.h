/*
 * sched.h - the run queue and the scheduler thread: takes queued runs one
 * at a time, runs their steps in dependency order (independent steps in
 * parallel up to -j), with caching, retries, timeouts, cancel and pause.
 */
#ifndef FLOWYFS_SCHED_H
#define FLOWYFS_SCHED_H

#include <stdint.h>
#include "flowyfs/flowy.h"

int sched_start(struct flowy *f);
/* Stop: running steps are killed, their run marked interrupted. */
void sched_stop(struct flowy *f);
/* Queue a run of pipeline; force_step (or NULL) and everything downstream
 * of it run even when cached. *out_id gets the run id. A run is refused
 * (-ENOSPC) while the store's disk is nearly full. On failure *why
 * (malloc'd) says why, for a person. */
int sched_enqueue(struct flowy *f, const char *pipeline, const char *trigger,
                  const char *force_step, int64_t *out_id, char **why);
/* cancel / pause / resume the pipeline's queued and running runs. */
int sched_control(struct flowy *f, const char *pipeline, const char *cmd);
/* For db_recover: kill the process group of a step a dead daemon left
 * running, if pid is still that step. */
void sched_stop_stray(int64_t run, const char *step, int pid, void *arg);
/* Wake the scheduler (a change is waiting). */
void sched_wake(struct flowy *f);

#endif
