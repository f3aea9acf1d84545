/*
 * metrics.h - ingesting what steps report. A step appends lines to the file
 * $FLOWY_METRICS names, each a JSON object of numbers ({"loss": 0.31}).
 * The scheduler tails that file while the step runs: complete lines become
 * rows of the metrics table (run, step, name, index, value, time), where
 * index counts the values of that name within the step from 0. A line that
 * is not an object of numbers is counted and skipped, never fatal.
 */
#ifndef FLOWYFS_METRICS_H
#define FLOWYFS_METRICS_H

#include <stdint.h>
#include <sys/types.h>
#include "flowyfs/db.h"
#include "flowyfs/util.h"

struct metrics_tail {
	int fd;                  /* the file, -1 when none */
	off_t off;
	off_t punched;           /* bytes before it freed (give_back) */
	struct strbuf partial;   /* an unfinished last line */
	int64_t run_id;
	char *step;
	long line;               /* lines seen */
	long bad;                /* malformed lines */
	char *first_bad;         /* "line N: why" of the first malformed line */
	struct name_count { char *name; long n; } *counts;
	size_t ncounts;
	/* Called for every value as its line is ingested (set after init;
	 * NULL: none). Runs on the caller's thread with the database locked:
	 * it must not block or use the database. */
	void (*on_value)(void *arg, const char *step, const char *name, double v);
	void *arg;
};

/* Tail the file open at fd (owned by t from now on: the daemon made the
 * file and keeps its fd, so what the step does to the path cannot make it
 * read anything else). */
void metrics_tail_init(struct metrics_tail *t, int fd, int64_t run_id,
                       const char *step);
/* Ingest the complete lines appended since the last call; with final set,
 * a trailing line without newline counts too. Returns rows added, or
 * -errno when they could not be recorded (the lines are then lost: a
 * full disk; the caller reports it). */
int metrics_tail_poll(struct metrics_tail *t, db *d, int final);
void metrics_tail_free(struct metrics_tail *t);

/* Parse one line into names/values (malloc'd arrays); 0, or -EINVAL with
 * *why set to a static description. */
int metrics_parse_line(const char *line, char ***names, double **values,
                       size_t *n, const char **why);

#endif
