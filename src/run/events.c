/*
 * events.c - one function every state change goes through (events.h).
 */
#include <stdlib.h>
#include <string.h>

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

void events_unsubscribe(struct events *e, event_fn fn, void *arg)
{
	for (size_t i = 0; e && i < e->n; i++)
		if (e->subs[i].fn == fn && e->subs[i].arg == arg) {
			memmove(&e->subs[i], &e->subs[i + 1], (e->n - i - 1) * sizeof *e->subs);
			e->n--;
			return;
		}
}

static const char *const names[] = {
	[EV_RUN_QUEUED] = "run-queued", [EV_RUN_STARTED] = "run-started",
	[EV_RUN_PAUSED] = "run-paused", [EV_RUN_RESUMED] = "run-resumed",
	[EV_RUN_SUCCEEDED] = "run-succeeded", [EV_RUN_FAILED] = "run-failed",
	[EV_RUN_CANCELLED] = "run-cancelled", [EV_RUN_INTERRUPTED] = "run-interrupted",
	[EV_STEP_STARTED] = "step-started", [EV_STEP_SUCCEEDED] = "step-succeeded",
	[EV_STEP_CACHED] = "step-cached", [EV_STEP_SKIPPED] = "step-skipped",
	[EV_STEP_FAILED] = "step-failed", [EV_STEP_RETRY] = "step-retry",
	[EV_ARTIFACT_PUBLISHED] = "artifact-published", [EV_ALERT] = "alert",
	[EV_METRIC] = "metric",
	[EV_ALIAS_MOVED] = "alias-moved",
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

int events_is_run_end(enum event_kind kind)
{
	return kind == EV_RUN_SUCCEEDED || kind == EV_RUN_FAILED ||
	       kind == EV_RUN_CANCELLED || kind == EV_RUN_INTERRUPTED;
}

static const char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

struct event *events_copy(const struct event *ev)
{
	struct event *c = xmalloc(sizeof *c);
	*c = *ev;
	c->pipeline = dup_or_null(ev->pipeline);
	c->step = dup_or_null(ev->step);
	c->status = dup_or_null(ev->status);
	c->error = dup_or_null(ev->error);
	c->name = dup_or_null(ev->name);
	c->hash = dup_or_null(ev->hash);
	c->alert = dup_or_null(ev->alert);
	c->metric = dup_or_null(ev->metric);
	c->ref = dup_or_null(ev->ref);
	c->def = NULL;
	return c;
}

void events_free_copy(struct event *ev)
{
	if (!ev)
		return;
	free((char *)ev->pipeline);
	free((char *)ev->step);
	free((char *)ev->status);
	free((char *)ev->error);
	free((char *)ev->name);
	free((char *)ev->hash);
	free((char *)ev->alert);
	free((char *)ev->metric);
	free((char *)ev->ref);
	free(ev);
}
