/*
 * executor.h - how a step's process is run: the interface every executor
 * implements, so the run state machine does not care where a step runs.
 *
 * prepare lays out what the step needs (for local: its scratch, in a
 * slot, slots.h; the process runs in s->scratch), start launches it from
 * an exec_spec; fd is readable once it has ended (the
 * scheduler polls it with everything else); signal delivers TERM, KILL,
 * STOP, CONT; reap collects its exit code (128+N when killed by signal N)
 * and releases what start held (an executor may leave a person's account
 * of the end in the step's exec_why); release (optional) says the
 * unit's scratch is done with: for a later step (reuse: it succeeded and
 * its outputs are stored) or to keep (it failed, or settled otherwise;
 * s->scratch then names where it stays, or is NULL). Without release a
 * succeeded unit's scratch goes to the run's pool (workspace_recycle).
 * Each call returns 0 or -errno;
 * start and prepare also set *err (malloc'd) for a person. A remote
 * executor runs steps elsewhere: they take none of the daemon's -j slots
 * and it applies a foreach step's concurrency itself.
 */
#ifndef FLOWYFS_EXECUTOR_H
#define FLOWYFS_EXECUTOR_H

#include "flowyfs/exec.h"

struct run;

struct executor {
	const char *name;
	int (*prepare)(struct run *r, size_t i, char **err);
	int (*start)(struct run *r, size_t i, const struct exec_spec *spec, char **err);
	int (*fd)(const struct run *r, size_t i);
	void (*signal)(struct run *r, size_t i, int sig);
	int (*reap)(struct run *r, size_t i);
	void (*release)(struct run *r, size_t i, int reuse);
	int remote;               /* 1: runs elsewhere (no slot, see above) */
};

/* A process in its own process group and mount namespace on this machine
 * (exec.c). */
extern const struct executor exec_local;
/* A Slurm batch job, its scratch under --shared-dir (exec_slurm.c). */
extern const struct executor exec_slurm;

#endif
