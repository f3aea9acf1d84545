/*
 * watch.h - inotify on the host paths pipelines read through file:
 * inputs. When one changes, the callback main.c gave watch_start() is
 * told (it marks the pipeline changed, which queues a run after the change
 * window, and the cache reruns only what read it).
 */
#ifndef FLOWYFS_WATCH_H
#define FLOWYFS_WATCH_H

#include <stddef.h>
#include "flowyfs/flowy.h"

struct watch;

/* Called (on the watch thread) with the pipeline whose input changed:
 * busy is 1 for activity (a write, a new file) and 0 for a change that is
 * complete (a close after writing, a move, a delete). */
typedef void (*watch_changed_fn)(struct flowy *f, const char *pipeline, int busy);

int watch_start(struct flowy *f, watch_changed_fn changed);
void watch_stop(struct flowy *f);
/* Replace the set of paths watched for pipeline (n == 0: none). */
void watch_set(struct flowy *f, const char *pipeline, char *const *paths, size_t n);

#endif
