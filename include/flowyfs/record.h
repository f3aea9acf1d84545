/*
 * record.h - the rows a run writes: its captured setup, each step's end
 * (status, inputs, outputs, latest, cache) and the run's end.
 *
 * Every function returns 0 or -errno and writes one transaction, or joins
 * the run's open batch (r->batch, db lock held) when there is one.
 */
#ifndef FLOWYFS_RECORD_H
#define FLOWYFS_RECORD_H

#include "flowyfs/run.h"

/* The captured run: versions, env, graph, params, and a pending row per
 * step. git (or NULL) is the workdir's state as TSV. */
int record_capture(struct run *r, const char *git);
/* The run left `queued` (its first step starts or settles). */
int record_started(struct run *r);
/* Paused or running again; paused time is added up so it does not count
 * in durations. */
int record_paused(struct run *r, int paused);
/* Step i started its process. */
int record_step_running(struct run *r, size_t i);
/* Step i ended with status ("succeeded", "cached", "failed", "skipped").
 * *changed gets 1 for each output whose latest version this changed
 * (one flag per output; may be NULL). */
int record_step_end(struct run *r, size_t i, const char *status, char *changed);
/* The run ended with status end and error (or NULL). */
int record_end(struct run *r, const char *end, const char *error);

#endif
