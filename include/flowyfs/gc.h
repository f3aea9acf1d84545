/*
 * gc.h - housekeeping of the store: which runs a gc keeps, deleting runs
 * (rm -r runs/<id>, gc, forget), and removing the objects no record
 * refers to any more. store/.ctl (views/store.c) is its face.
 */
#ifndef FLOWYFS_GC_H
#define FLOWYFS_GC_H

#include <stddef.h>
#include <stdint.h>

#include "flowyfs/flowy.h"

/* Defaults of a bare `gc`: keep the last 10 runs of every pipeline and
 * every run that ended less than 30 days ago. */
#define GC_KEEP_DEFAULT 10
#define GC_AGE_DEFAULT (30.0 * 86400)

/* Objects modified less than this many seconds before a gc's cutoff are
 * spared too: file times come from the kernel's coarse clock, which may
 * lag the one util_now() reads by a tick. */
#define GC_SLACK 0.25

enum gc_cmd { GC_COLLECT = 1, GC_FORGET };

struct gc_opts {
	enum gc_cmd cmd;
	int64_t keep;        /* GC_COLLECT: runs kept per pipeline by count */
	double older_than;   /* GC_COLLECT: runs younger than this stay (s) */
	int dry;             /* count what would go, remove nothing */
	char pipeline[129];  /* GC_FORGET */
};

/* Parse one store/.ctl line: "gc [keep=N] [older-than=AGE] [dry-run]" or
 * "forget <pipeline> [dry-run]". AGE is a whole number with an optional
 * unit s, m, h, d or w (seconds without one). 0 or -EINVAL with *why
 * (static text naming the problem, or malloc'd into *whybuf) set. */
int gc_parse(const char *line, struct gc_opts *out, char **why);

/* The command as gc.log shows it, defaults spelled out
 * ("gc keep=10 older-than=30d"); malloc'd. */
char *gc_describe(const struct gc_opts *o);

struct gc_result {
	int64_t *runs;       /* the runs removed, ascending (malloc'd) */
	size_t nruns;
	uint64_t objects;    /* objects removed */
	uint64_t bytes;      /* disk usage freed: objects and run directories */
	uint64_t spared;     /* unreferenced objects spared as too new */
	double duration;     /* seconds */
};
void gc_result_release(struct gc_result *r);

/* Run a gc or a forget: delete the runs the options do not keep (rows
 * first, in one transaction), then every object nothing refers to, then
 * the removed runs' directories; record one gc.log row. 0 or -errno with
 * *why (malloc'd) saying why: -EBUSY while another gc runs or (forget)
 * the pipeline has a live run, -EEXIST when the pipeline to forget still
 * exists, -ENOENT when nothing of it is stored. */
int gc_execute(struct flowy *f, const struct gc_opts *o, struct gc_result *out,
               char **why);

/* Delete run id (ended) and its directory, as `rm -r runs/<id>` does:
 * its rows in one transaction; when later runs share its snapshot, the
 * oldest of them gets a hard-linked copy first. 0 or -errno (-EBUSY when
 * a live run reads its snapshot). Objects stay for the next gc. */
int gc_run_delete(struct flowy *f, int64_t id);

/* "1-3,7" for the n ascending ids (malloc'd; "" for none). */
char *gc_ids_text(const int64_t *ids, size_t n);

#endif
