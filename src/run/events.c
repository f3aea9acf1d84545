/*
 * events.c - one function every state change goes through (events.h).
 */
#include <stdlib.h>

#include "flowyfs/events.h"
#include "flowyfs/flowy.h"
#include "flowyfs/log.h"
#include "flowyfs/util.h"

struct subscriber {
	event_fn fn;
	void *arg;
};

struct events {
	struct subscriber *subs;
	size_t n;
};

struct events *events_new(void)
{
	return xcalloc(1, sizeof(struct events));
}

void events_free(struct events *e)
{
	if (!e)
		return;
	free(e->subs);
	free(e);
}

void events_subscribe(struct events *e, event_fn fn, void *arg)
{
	e->subs = xrealloc(e->subs, (e->n + 1) * sizeof *e->subs);
	e->subs[e->n++] = (struct subscriber){fn, arg};
}

static const char *const names[] = {
	[EV_RUN_QUEUED] = "run-queued", [EV_RUN_STARTED] = "run-started",
	[EV_RUN_PAUSED] = "run-paused", [EV_RUN_RESUMED] = "run-resumed",
	[EV_RUN_SUCCEEDED] = "run-succeeded", [EV_RUN_FAILED] = "run-failed",
	[EV_RUN_CANCELLED] = "run-cancelled", [EV_RUN_INTERRUPTED] = "run-interrupted",
	[EV_STEP_STARTED] = "step-started", [EV_STEP_SUCCEEDED] = "step-succeeded",
	[EV_STEP_CACHED] = "step-cached", [EV_STEP_SKIPPED] = "step-skipped",
	[EV_STEP_FAILED] = "step-failed", [EV_STEP_RETRY] = "step-retry",
	[EV_ARTIFACT_PUBLISHED] = "artifact-published", [EV_ALIAS_MOVED] = "alias-moved",
};

const char *events_name(enum event_kind kind)
{
	return kind > 0 && (size_t)kind < sizeof names / sizeof *names && names[kind]
	       ? names[kind] : "?";
}

void events_emit(struct flowy *f, struct event *ev)
{
	if (!ev->time)
		ev->time = util_now();
	log_debug("event %s %s run %lld%s%s%s%s", events_name(ev->kind),
	          ev->pipeline ? ev->pipeline : "-", (long long)ev->run,
	          ev->step ? " step " : "", ev->step ? ev->step : "",
	          ev->error ? ": " : "", ev->error ? ev->error : "");
	struct events *e = f->events;
	for (size_t i = 0; e && i < e->n; i++)
		e->subs[i].fn(f, ev, e->subs[i].arg);
}
