/*
 * syncer.h - a thread that makes published objects durable (syncfs) while
 * the scheduler goes on: a run hands it the count of outputs its steps
 * published, and records the rows naming them only once the job is done,
 * so no step waits for the disk before the next one starts.
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

/* Start the thread; wake(arg) is called after every finished job. */
int syncer_start(struct syncer **out, void (*wake)(void *), void *arg);
/* Finish every queued job, then stop the thread and free it. */
void syncer_stop(struct syncer *s);
/* Queue j (state SYNC_IDLE, pending moved in from from, which is left empty). */
void syncer_submit(struct syncer *s, struct sync_job *j, struct cas_syncs *from);
/* Whether j is done (without waiting), or (wait) once it is. Returns its
 * state: SYNC_DONE, or SYNC_QUEUED only without wait. */
enum sync_state syncer_check(struct syncer *s, struct sync_job *j, int wait);

#endif
