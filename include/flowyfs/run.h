/*
 * run.h - the run state machine: one struct run per queued or running
 * run, many at once.
 *
 * A run is captured when it is queued (run_capture): the pipeline's files
 * are snapshotted and parsed with the run's params, so later edits never
 * leak into it. The scheduler thread (sched.c) then drives every run it
 * holds: run_advance() settles or starts what may go next within the free
 * slots, the poll loop reports readable descriptors back (run_ready()),
 * and run_settled() tells when the run can be ended (run_end()). Only the
 * scheduler thread touches a struct run after capture; requests from
 * other threads (cancel, pause) reach it as flags under the scheduler's
 * lock.
 *
 * The parts a run is made of live in their own modules: snapshot.c (the
 * pipeline's files), cachekey.c (keys and reasons), workspace.c (a step's
 * scratch and environment), stepio.c (inputs and outputs into the store),
 * record.c (the rows), recheck.c (a run in which nothing changed),
 * executor.h (how a process is started), events.c
 * (what happened, for subscribers).
 */
#ifndef FLOWYFS_RUN_H
#define FLOWYFS_RUN_H

#include <poll.h>
#include <stdint.h>
#include <sys/types.h>
#include <cJSON.h>

#include "flowyfs/cas.h"
#include "flowyfs/exec.h"
#include "flowyfs/flowy.h"
#include "flowyfs/metrics.h"
#include "flowyfs/scratchpool.h"
#include "flowyfs/snapshot.h"
#include "flowyfs/step.h"
#include "flowyfs/steplog.h"
#include "flowyfs/syncer.h"

struct executor;
struct sjob;

/* What a .ctl command, a change or a trigger asks for. */
struct run_request {
	const char *pipeline;
	const char *trigger;     /* "ctl", "change", "rerun", "retry", "sweep",
	                            "input other/name changed" ... */
	const char *force_step;  /* rerun: this step and downstream uncached */
	const cJSON *overrides;  /* object KEY -> VALUE, or NULL */
	int64_t retry_of;        /* retry: the run to retry, else 0 */
};

enum step_state { S_PENDING, S_RUNNING, S_DONE, S_FAILED, S_SKIPPED };

struct srun {                 /* one step within a run, or one foreach task */
	struct step_def *def;
	int parent;               /* a foreach task: index of its step, else -1 */
	char *item;               /* a task: its item's name */
	char *item_env;           /* a task: $FLOWY_ITEM */
	cJSON *params;            /* a task of a list param: its own params */
	size_t task0, ntasks;     /* a foreach step: its tasks, s[task0..+ntasks) */
	int expanded;             /* a foreach step whose tasks are under way */
	enum step_state state;
	int forced, attempts, exit_code, cached;
	int skip_ok;              /* skipped by `when` (or below such a step):
	                             the run still succeeds */
	int in_when;              /* the process running is the `when` test */
	int64_t reuse_run;        /* retry: succeeded in that run, reuse it */
	int64_t from_run;         /* cached: the run that made its outputs */
	const struct executor *exec;
	struct exec_proc proc;
	struct slot *slot;        /* the local slot its process runs in, or NULL */
	struct sjob *job;         /* a remote executor's handle, or NULL */
	char *exec_why;           /* the executor's account of the end, or NULL */
	double started, finished, term_sent, retry_at;
	double paused_at, paused; /* when it was stopped; seconds stopped */
	struct steplog log;
	int in_cand, in_live;     /* listed in r->cand / r->live */
	char *scratch;
	dev_t out_dev;            /* the out/ directory flowyfs made */
	ino_t out_ino;
	char **in_hex;            /* per input */
	char (*out_hex)[CAS_HEX_LEN + 1];
	char *key, *key_parts, *reason, *error;
	struct metrics_tail metrics;
};

struct run {
	struct flowy *f;
	int64_t id;
	char *pipeline;
	char *rundir, *scratch;
	char *shared_scratch;     /* its steps' scratch under --shared-dir, or NULL */
	char **env_base;          /* the daemon's environment without FLOWY_*,
	                             copied at the run's first start (workspace.c) */
	size_t nenv_base;
	struct scratchpool pool;  /* finished steps' scratch, emptied, for reuse */
	size_t *recycle, nrecycle, recycle_cap; /* units whose scratch goes to
	                          the pool once the next steps have started */
	struct snapshot snap;     /* the files the run sees, and their hashes */
	struct pipeline_def *p;
	size_t **deps, *ndeps;
	struct srun *s;           /* the steps (s[0..n_steps)), then tasks */
	size_t nunits;            /* entries of s */
	/* What a pass looks at, so it costs what can change, not the run's
	 * size: cand holds the positions in p->order of pending steps that a
	 * pass should consider (every dependency settled, or one failed),
	 * sorted; live the units whose process runs; settled0 the first unit
	 * that may not be settled (a settled unit stays settled). */
	size_t *pos;              /* per step: its position in p->order */
	size_t *left;             /* per step: dependencies not settled */
	size_t **rdeps, *nrdeps;  /* per step: the steps that depend on it */
	size_t *cand, ncand;
	size_t *live, nlive, live_cap;
	size_t settled0;
	char *workdir_code;       /* workdir commit (+dirty hash), or NULL */
	int batch;                /* a transaction is open (db lock held) */
	struct run_pend {         /* records not written yet (run.c) */
		size_t i;
		const char *status;   /* the step's end; NULL: it started */
	} *pend;
	size_t npend, pend_cap;
	struct cas_syncs syncs;   /* outputs published, not yet durable */
	struct sync_job sync;     /* the syncer's job for the first nsub of pend */
	size_t nsub;
	size_t running;           /* processes running */
	size_t remote;            /* of them, on a remote executor (no slot) */
	int started;              /* it has left `queued` */
	/* Requests (set under the scheduler's lock, taken by its thread). */
	int want_cancel, want_pause;
	int paused;               /* as carried out */
	double paused_at, paused_total;
	int abort_io;             /* stop long store operations of this run */
	/* Who the steps run as: the owner of the pipeline when the daemon is
	 * root and the mount is shared (allow_other), else the daemon's user. */
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	size_t ngroups;
	int64_t same_as;          /* recorded as a re-check of this run, its
	                             rows derived from that run's (recheck.c),
	                             until checked at its start; else 0 */
	int db_error;             /* first failure to record (-errno), or 0 */
	int kept_scratch;         /* failed steps' scratch kept at its end */
	const char *end;          /* set when stopped: "cancelled", "interrupted" */
	struct run *next;         /* the scheduler's list, oldest first */
};

/* Queue-time capture of the run id (whose row exists, status queued) for
 * req: snapshot, parse with the overrides, lay out the steps, record the
 * params and versions. Returns the run, or NULL with *why (malloc'd) when
 * it cannot run. *refused is then -EINVAL or -ESRCH when the request
 * itself is wrong (an unknown param or step, no such run to retry), else
 * 0 (the store failed: the run exists and ends failed). */
struct run *run_capture(struct flowy *f, int64_t id, const struct run_request *req,
                        const int *stop, char **why, int *refused);

/* Settle or start what can go next, taking slots from *slots. */
void run_advance(struct run *r, int *slots);

/* One descriptor the run wants polled: which step, and what it is. */
struct run_pollref {
	struct run *run;
	size_t step;
	int what;                 /* RUN_FD_EXIT or RUN_FD_LOG */
};
enum { RUN_FD_EXIT = 1, RUN_FD_LOG };

/* Add the run's descriptors to pfd/ref (room for 2 per step) and lower
 * *next (seconds, -1 none) to its nearest timer; sends timeout signals
 * that are due. Returns how many were added. */
size_t run_pollfds(struct run *r, struct pollfd *pfd, struct run_pollref *ref,
                   double now, double *next);
/* A descriptor of ref became readable (revents). */
void run_ready(const struct run_pollref *ref, short revents);
/* Read the metrics running steps appended. */
void run_tick(struct run *r);
/* Carry out a pause or resume. */
void run_set_paused(struct run *r, int paused);
/* Stop what runs and skip what waits; end is "cancelled" or
 * "interrupted", why goes into the steps' errors. */
void run_stop(struct run *r, const char *end, const char *why);
/* Nothing pending or running: the run can be ended. */
int run_settled(struct run *r);
/* Record the run's end (status, error), remove its scratch. */
void run_end(struct run *r);
void run_free(struct run *r);

#endif
