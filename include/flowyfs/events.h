/*
 * events.h - every change of state of a run or a step, as one event
 * through one function, to the subscribers main.c wired at start-up
 * (hooks, alerts and waiting subscribe here). Most events come from the
 * scheduler thread; run-queued comes from the thread that captured the
 * run (a FUSE request or the capturer) and alert from the alerts module,
 * so subscribers lock what they share. They are called in event order
 * for one run and must not block: they copy what they need and return.
 * EV_METRIC (a metric value a running step reported) is internal: it
 * feeds alerts and is no hook event.
 */
#ifndef FLOWYFS_EVENTS_H
#define FLOWYFS_EVENTS_H

#include <stdint.h>

struct flowy;

enum event_kind {
	EV_RUN_QUEUED = 1, EV_RUN_STARTED, EV_RUN_PAUSED, EV_RUN_RESUMED,
	EV_RUN_SUCCEEDED, EV_RUN_FAILED, EV_RUN_CANCELLED, EV_RUN_INTERRUPTED,
	EV_STEP_STARTED, EV_STEP_SUCCEEDED, EV_STEP_CACHED, EV_STEP_SKIPPED,
	EV_STEP_FAILED, EV_STEP_RETRY, EV_ARTIFACT_PUBLISHED, EV_ALERT, EV_METRIC,
	EV_ALIAS_MOVED, EV_KIND_END
};

struct pipeline_def;

struct event {
	enum event_kind kind;
	double time;
	const char *pipeline;
	int64_t run;
	const char *step;       /* step events, else NULL */
	const char *status;     /* the status it reached */
	const char *error;      /* failures, else NULL */
	const char *name;       /* artifact-published: the output */
	const char *hash;       /* artifact-published: its new hash */
	const char *alert;      /* alert: the alert's name */
	const char *metric;     /* alert, metric: the metric ("duration" for
	                           duration_above) */
	double value;           /* alert, metric: the value seen */
	double threshold;       /* alert: the bound it crossed */
	const struct pipeline_def *def; /* run-queued: the run's definition
	                           (valid during the call only; not copied) */
	const char *ref;        /* alias-moved: "registry:<model>@<alias>" */
};

typedef void (*event_fn)(struct flowy *f, const struct event *ev, void *arg);

struct events;
struct events *events_new(void);
void events_free(struct events *e);
/* Call fn for every later event. At start-up only (not thread-safe). */
void events_subscribe(struct events *e, event_fn fn, void *arg);
/* Stop calling fn with arg. At stop only, once no event can come. */
void events_unsubscribe(struct events *e, event_fn fn, void *arg);
/* Deliver ev (its time is set when 0) to every subscriber, in order. */
void events_emit(struct flowy *f, struct event *ev);
/* The event's name: "run-queued", "step-failed", ... */
const char *events_name(enum event_kind kind);
/* Does the event end a run (succeeded, failed, cancelled, interrupted)? */
int events_is_run_end(enum event_kind kind);
/* A copy of ev whose strings are its own (def is not copied); free it
 * with events_free_copy. */
struct event *events_copy(const struct event *ev);
void events_free_copy(struct event *ev);

#endif
