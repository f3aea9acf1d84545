/*
 * events.h - every change of state of a run or a step, as one event
 * through one function, to the subscribers main.c wired at start-up
 * (hooks and alerts subscribe here). Subscribers are called on the
 * scheduler thread, in event order, and must not block: they copy what
 * they need and return.
 */
#ifndef FLOWYFS_EVENTS_H
#define FLOWYFS_EVENTS_H

#include <stdint.h>

struct flowy;

enum event_kind {
	EV_RUN_QUEUED = 1, EV_RUN_STARTED, EV_RUN_PAUSED, EV_RUN_RESUMED,
	EV_RUN_SUCCEEDED, EV_RUN_FAILED, EV_RUN_CANCELLED, EV_RUN_INTERRUPTED,
	EV_STEP_STARTED, EV_STEP_SUCCEEDED, EV_STEP_CACHED, EV_STEP_SKIPPED,
	EV_STEP_FAILED, EV_STEP_RETRY, EV_ARTIFACT_PUBLISHED, EV_ALIAS_MOVED,
};

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
	const char *ref;        /* alias-moved: "registry:<model>@<alias>" */
};

typedef void (*event_fn)(struct flowy *f, const struct event *ev, void *arg);

struct events;
struct events *events_new(void);
void events_free(struct events *e);
/* Call fn for every later event. At start-up only (not thread-safe). */
void events_subscribe(struct events *e, event_fn fn, void *arg);
/* Deliver ev (its time is set when 0) to every subscriber, in order. */
void events_emit(struct flowy *f, struct event *ev);
/* The event's name: "run-queued", "step-failed", ... */
const char *events_name(enum event_kind kind);

#endif
