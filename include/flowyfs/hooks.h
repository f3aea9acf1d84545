/*
 * hooks.h - running the executables of hooks/ on events.
 *
 * A subscriber to the events copies each event into the runner's inbox
 * and returns; the runner thread turns it into one JSON object, finds the
 * hooks whose name matches (`<event>`, `<event>.<suffix>`, `any.<suffix>`)
 * and queues the event for each. Each hook runs its events one at a time
 * in event order; different hooks run side by side. A hook is started like
 * a step (exec.c: its own mount namespace, the store and every scratch
 * hidden, the mount read-only), with the event on stdin and FLOWY_EVENT
 * FLOWY_RUN FLOWY_PIPELINE FLOWY_STEP FLOWY_HOOK FLOWY_MOUNT in its
 * environment, and is stopped (TERM, then KILL) when it passes the timeout.
 * What happened is one line of <store>/events/hooks.log (hooks/.log) and
 * its output, capped, <store>/events/out/<hook> (hooks/.out/<hook>).
 * Nothing a hook does reaches a run: exits, hangs and floods end up in
 * those two places only. Events are not kept across a stop: those still
 * queued when the daemon stops are logged as dropped.
 */
#ifndef FLOWYFS_HOOKS_H
#define FLOWYFS_HOOKS_H

#include <stdint.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "flowyfs/events.h"

struct flowy;

#define HOOKS_TIMEOUT 30.0          /* seconds, default of --hook-timeout */
#define HOOKS_KILL_GRACE 2.0        /* seconds between TERM and KILL */
#define HOOKS_OUT_MAX (64 * 1024)   /* bytes of a hook's output kept */
#define HOOKS_QUEUE_MAX 1000        /* events waiting for one hook */
#define HOOKS_LOG_MAX (1024 * 1024) /* hooks.log is cut to half past this */

/* Start the runner thread and subscribe it to f->events; timeout is the
 * seconds a hook may run. 0 or -errno. */
int hooks_start(struct flowy *f, double timeout);
/* Stop the runner: running hooks are stopped, queued events dropped (and
 * logged). A no-op when it never started. */
void hooks_stop(struct flowy *f);

/* Does the file name hook run for event (an events_name)? Dot files and
 * editor backups (ending in ~) never do. */
int hooks_match(const char *hook, const char *event);
/* The event kinds (bit 1 << kind) that none of the n hook file names
 * takes. */
uint32_t hooks_untaken(char *const *names, size_t n);
/* Does a listing of a directory, made at time `at` (epoch seconds) when
 * the directory's stat was listed, still hold for its stat st now? The
 * same directory, unchanged, and listed more than a second after its last
 * change (a change within a second of the listing may share its
 * timestamp). */
int hooks_listing_holds(const struct stat *listed, double at, const struct stat *st);
/* The event as the JSON object a hook reads (malloc'd, one line with a
 * newline): event, time, pipeline, run, step, status, error, params
 * (params_json, the run's params as JSON text, or NULL for {}), outputs
 * (name -> "sha256:<hex>", may be NULL for {}), metrics (name -> last
 * value, may be NULL for {}; for an alert the value that fired it), and
 * per kind: output and hash
 * (artifact-published); alert, metric, value, threshold (alert). */
char *hooks_json(const struct event *ev, const char *params_json,
                 const cJSON *outputs, const cJSON *metrics);
/* One line of hooks.log: time event hook exit duration, tab-separated. */
char *hooks_log_line(double start, const char *event, const char *hook,
                     const char *exit, double duration);
/* The header row of hooks/.log (views/hooks.c shows it above the log). */
#define HOOKS_LOG_HEADER "time\tevent\thook\texit\tduration\n"

#endif
