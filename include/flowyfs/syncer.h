/*
 * syncer.h - a thread that makes published objects durable (syncfs) while
 * the scheduler goes on: a run hands it the count of outputs its steps
 * published, and records the rows naming them only once the job is done,
 * so no step waits for the disk before the next one starts.
 *
 * Group commit: one syncfs serves every job queued when it starts, and
 * the next starts no sooner than `every` seconds after one ended, unless
 * somebody waits for a job (syncer_check with wait), which hurries it.
 * Each syncfs commits the file system's journal and flushes the disk's
 * cache; a chain of short steps would otherwise ask for one every few
 * steps, and the writeback it forces takes the cores the steps run on.
 * What waits meanwhile is the records of finished steps, never a step.
 */
#ifndef FLOWYFS_SYNCER_H
#define FLOWYFS_SYNCER_H

#include "flowyfs/cas.h"

struct syncer;

enum sync_state { SYNC_IDLE, SYNC_QUEUED, SYNC_DONE };

struct sync_job {
	struct cas_syncs pending;  /* what to make durable (moved in when queued) */
	enum sync_state state;     /* read and written under the syncer's lock */
	int rc;                    /* the first failure (-errno), or 0 */
	struct sync_job *next;     /* the syncer's queue */
};

/* The daemon's time between syncs, in seconds. */
#define SYNCER_EVERY 0.1

/* Start the thread (syncs at least every seconds apart, unless hurried);
 * wake(arg) is called after every sync and the jobs it finished. */
int syncer_start(struct syncer **out, double every, void (*wake)(void *), void *arg);
/* Finish every queued job, then stop the thread and free it. */
void syncer_stop(struct syncer *s);
/* Queue j (state SYNC_IDLE, pending moved in from from, which is left empty). */
void syncer_submit(struct syncer *s, struct sync_job *j, struct cas_syncs *from);
/* Whether j is done (without waiting), or (wait) once it is. Returns its
 * state: SYNC_DONE, or SYNC_QUEUED only without wait. */
enum sync_state syncer_check(struct syncer *s, struct sync_job *j, int wait);
/* How many syncfs calls it has made. */
unsigned long syncer_syncs(struct syncer *s);

#endif
