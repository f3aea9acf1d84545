/*
 * recheck.h - a run in which nothing changed, recorded as one row.
 *
 * Re-running a pipeline whose files, params and inputs are all as they
 * were in an earlier run that succeeded makes every step a cache hit.
 * Such a run is recorded as one runs row whose same_as names that earlier
 * run; its step, input and output rows are derived from that run's when
 * read (the views of db.h), the same rows the full path would have
 * written, and the metric rows its steps carry are copied in one
 * statement (none for steps that report none). The decision is made in
 * two halves: at capture, what costs one query (the same snapshot, params
 * and workdir state as the newest such run, no rerun or retry, every step
 * with outputs); at the run's start, in the scheduler, the rest (every
 * output of that run still in the store, still what the cache gives for
 * its key and still the pipeline's latest, every input from outside the
 * pipeline still of the same content, registered outputs still versions
 * of their models). A run that fails the second half, or is stopped
 * before it, records its steps and goes the full path.
 */
#ifndef FLOWYFS_RECHECK_H
#define FLOWYFS_RECHECK_H

#include <stdint.h>

#include "flowyfs/run.h"

/* At capture of r (its snapshot, definition and owner known; git its
 * workdir state as recorded, or NULL): the run r may be the same as, one
 * that has rows of its own, or 0. One query. */
int64_t recheck_candidate(struct run *r, const struct run_request *req, const char *git);

/* At the start of r (r->same_as set): 1 when the run was settled as a
 * re-check (every step done and cached, the run recorded succeeded,
 * run-started and step-cached events emitted; run_end follows), 0 when it
 * goes the full path (its steps recorded pending, same_as cleared), or
 * -errno when recording that failed. */
int recheck_settle(struct run *r);

/* r is stopped: when it was not settled yet, record its steps as the
 * full path would have (pending, to be skipped) and clear same_as. 0 or
 * -errno. */
int recheck_abandon(struct run *r);

#endif
