/*
 * watch.h - inotify on the host paths pipelines read through file:
 * inputs. When one changes, the pipeline is marked changed, which queues a
 * run after the change window (and the cache reruns only what read it).
 */
#ifndef FLOWYFS_WATCH_H
#define FLOWYFS_WATCH_H

#include <stddef.h>
#include "flowyfs/flowy.h"

struct watch;

int watch_start(struct flowy *f);
void watch_stop(struct flowy *f);
/* Replace the set of paths watched for pipeline (n == 0: none). */
void watch_set(struct flowy *f, const char *pipeline, char *const *paths, size_t n);

#endif
