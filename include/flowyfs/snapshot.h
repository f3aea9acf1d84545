/*
 * snapshot.h - the copy of a pipeline's files a run sees, and the hashes
 * of its code files.
 *
 * A run queued while the pipeline's files are unchanged since the last
 * snapshot (same catalog generation) shares that snapshot; otherwise the
 * files are copied into runs/<id>/snapshot, unchanged files hard-linked
 * from the last copy with their hashes (snapshot files are never
 * written), and the copy is committed to history.git. The cache of last
 * snapshots is guarded by its own lock: runs are captured from the FUSE
 * threads (.ctl writes) and the scheduler thread (changes, triggers).
 */
#ifndef FLOWYFS_SNAPSHOT_H
#define FLOWYFS_SNAPSHOT_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "flowyfs/cas.h"
#include "flowyfs/flowy.h"
#include "flowyfs/step.h"

struct codefile {
	char *rel;
	char hex[CAS_HEX_LEN + 1]; /* of the content, or of a link's target */
	char *link;                /* a symlink's target, else NULL */
	/* The source file when it was copied, to know it unchanged later. */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

struct snapshot {
	char *dir;                 /* runs/<run>/snapshot */
	int64_t run;               /* the run whose directory it is */
	char commit[41];           /* its commit in history.git, or "" */
	struct codefile *code;     /* sorted by rel */
	size_t ncode;
	size_t *deflt;             /* indexes of the default code files */
	size_t ndeflt;
	int fresh;                 /* made for this run (not shared) */
};

struct snapshots;

struct snapshots *snapshot_cache_new(void);
void snapshot_cache_free(struct snapshots *c);

/* Snapshot pipeline for run (its directory runs/<run> is made). stop is
 * polled while copying and hashing (-ECANCELED). Returns 0 with *out
 * filled (free with snapshot_release), or -errno; on a failed commit to
 * history.git, *out->commit stays "" and the run goes on. */
int snapshot_take(struct snapshots *c, struct flowy *f, const char *pipeline,
                  int64_t run, const int *stop, struct snapshot *out);

/* The snapshot of an earlier run (retry): the directory of run's
 * snapshot, its files listed and hashed. */
int snapshot_of_run(struct flowy *f, int64_t snapshot_run, const char *commit,
                    const int *stop, struct snapshot *out);

/* The code files of the live pipeline directory, hashed (unchanged files
 * take the hashes of the last snapshot): for .plan. */
int snapshot_hash_live(struct snapshots *c, struct flowy *f, const char *pipeline,
                       struct codefile **out, size_t *n);

/* Run from is being deleted: its snapshot directory now lives in run to's
 * (0: it goes away), so the next run of its pipeline shares that one, or
 * copies afresh. c may be NULL. */
void snapshot_moved(struct snapshots *c, int64_t from, int64_t to);

void snapshot_release(struct snapshot *s);
void snapshot_codes_free(struct codefile *c, size_t n);

/* Indexes into code[] (n files sorted by rel) of the default code
 * (step_is_default_code): *out malloc'd, the count returned. */
size_t snapshot_default_code(const struct codefile *code, size_t n, size_t **out);
/* Indexes of the code files of step s, in rel order (*out malloc'd, the
 * count returned): deflt for a step that names no code, else the files
 * at or below each path it names, found by binary search, so a run costs
 * O(steps x their code) and not O(steps x files). */
size_t snapshot_step_code(const struct codefile *code, size_t n, const size_t *deflt,
                          size_t ndeflt, const struct step_def *s, size_t **out);

#endif
