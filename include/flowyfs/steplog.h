/*
 * steplog.h - a step's log: its stdout and stderr arrive through a pipe
 * that the scheduler pumps into runs/<id>/<step>.log, up to a size cap
 * (STEPLOG_CAP). Past the cap one note says so and further output is read
 * and dropped, so a step that floods (or cats its own log) cannot fill the
 * store's disk, and is never blocked on a full pipe either.
 */
#ifndef FLOWYFS_STEPLOG_H
#define FLOWYFS_STEPLOG_H

#include <stdint.h>

#define STEPLOG_CAP ((uint64_t)64 << 20)

struct steplog {
	int fd;          /* the log file, -1 when not open (or not made yet) */
	char *path;      /* where it goes, until the first byte makes it */
	int rd, wr;      /* the pipe of the current attempt, -1 when none */
	uint64_t off;    /* where the next byte goes */
	uint64_t cap;
	int capped;      /* the cap was reached and noted */
};

/* Make l empty (nothing open); steplog_close() of it is a no-op. */
void steplog_init(struct steplog *l);
/* The log file at path: opened now when it exists (appending to what it
 * holds), else made by the first byte pumped or the first note, so a
 * step that prints nothing leaves no file (readers show it empty). */
int steplog_open(struct steplog *l, const char *path, uint64_t cap);
/* A new pipe for the next attempt: l->wr is for the step (the caller
 * closes it with steplog_close_writer once the step holds it), l->rd for
 * steplog_pump. */
int steplog_pipe(struct steplog *l);
void steplog_close_writer(struct steplog *l);
/* Move what the pipe holds into the file (non-blocking). Returns 1 at end
 * of file (every writer gone), 0 when the pipe is empty for now, -errno. */
int steplog_pump(struct steplog *l);
/* Pump, then append "flowyfs: <message>\n" (notes are never capped). */
void steplog_note(struct steplog *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Drain what is left (without blocking) and close everything. */
void steplog_close(struct steplog *l);

#endif
