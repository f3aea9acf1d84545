/*
 * exec_slurm.h - the Slurm executor: a step is a batch job submitted with
 * `sbatch --parsable`, its state learnt by one poller thread per daemon
 * that asks `squeue` about all the daemon's jobs in one call per interval
 * (backing off while nothing changes), stopped with `scancel`. The
 * executor itself (exec_slurm) is declared in executor.h; this header has
 * its lifetime (exec_slurm_open/_close, wired by main.c) and the pure
 * parts the unit tests check: script generation, state mapping and the
 * parsing of squeue's output.
 */
#ifndef FLOWYFS_EXEC_SLURM_H
#define FLOWYFS_EXEC_SLURM_H

#include <stddef.h>
#include <stdint.h>
#include <cJSON.h>

#include "flowyfs/util.h"

struct flowy;

/* Start the poller for the daemon f (f->shared_dir must be set). Poll
 * intervals come from $FLOWYFS_SLURM_POLL ("MIN:MAX" seconds, default
 * 2:30). 0 or -errno. */
int exec_slurm_open(struct flowy *f);
/* Stop the poller: every job of this daemon still queued or running is
 * cancelled (one scancel call), then the thread ends. No-op when not
 * open. */
void exec_slurm_close(void);
/* A daemon that died left step `step` of run `run` running: cancel the
 * Slurm jobs its job files under runs_dir name (the step's, or its
 * foreach tasks'), in one scancel call. Nothing when it has none. */
void exec_slurm_stop_stray(const char *runs_dir, int64_t run, const char *step);
/* squeue and scancel calls made so far (for the daemon's log). */
long exec_slurm_calls(void);

/* What a batch script is made of. */
struct slurm_script {
	const char *name;         /* --job-name */
	const char *dir;          /* the step's scratch (shared) */
	const char *cmd;          /* the step's command, for /bin/sh -c */
	char *const *env;         /* NAME=VALUE exported in the script (or NULL) */
	const cJSON *resources;   /* the step's "resources" (or NULL) */
	const cJSON *presources;  /* the pipeline's "resources" (or NULL) */
	const cJSON *slurm;       /* the pipeline's "slurm" (or NULL) */
	double timeout;           /* the step's timeout in seconds, 0 none */
};

/* Append the batch script for sc to out: #SBATCH lines (job name,
 * output, --cpus-per-task, --mem in MiB, --gpus, --time in minutes
 * (resources.time, else the timeout plus one minute), --partition (the
 * step's, else the pipeline's resources, else slurm.partition),
 * --account, then slurm.args one per line), the exports, then the
 * command, whose exit code the script writes to DIR/.flowy/exit through a
 * temp file and rename as its last act. 0, or -EINVAL with *err
 * (malloc'd) when a value cannot be used. */
int exec_slurm_script(const struct slurm_script *sc, struct strbuf *out, char **err);

/* Where a Slurm state leaves a job. */
enum slurm_phase { SLURM_WAITING, SLURM_RUNNING, SLURM_ENDED };
/* The phase of state (squeue's %T: PENDING, RUNNING, COMPLETED ...);
 * an unknown state counts as running (it is still in the queue). */
enum slurm_phase exec_slurm_phase(const char *state);
/* A person's account of an ended state that is not a plain exit
 * (TIMEOUT, CANCELLED, OUT_OF_MEMORY, NODE_FAIL, PREEMPTED ...), static
 * text; NULL for COMPLETED, FAILED and states that have not ended. */
const char *exec_slurm_explain(const char *state);
/* The exit code a job that never wrote one gets: 128+SIGTERM for a time
 * limit, cancel or preemption, 128+SIGKILL when out of memory, else 1. */
int exec_slurm_code(const char *state);

/* The next poll interval after one that lasted interval: back to min
 * when a job changed state, else doubled, at most max. */
double exec_slurm_backoff(double interval, int changed, double min, double max);

/* One line of `squeue -h -r -t all -o '%i|%T|%r'`. */
struct slurm_row {
	char id[48];              /* "123", or "123_4" for an array task */
	char state[32];
	char reason[64];
};
/* Parse squeue's output (text), one row per well-formed line, into *out
 * (malloc'd, caller frees); returns how many. Malformed lines are
 * skipped. */
size_t exec_slurm_parse(const char *text, struct slurm_row **out);

#endif
