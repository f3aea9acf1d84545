/*
 * alerts.c - live alert checks (alerts.h). The subscriber keeps one entry
 * per queued run that has alerts (a copy of them, which fired, when the
 * run and its running steps started, how long it was paused); the thread
 * looks at those times every ALERTS_TICK. Time a run spends paused is not
 * part of a duration, as in runs/<id>/duration. Firing happens outside the
 * lock: the line is appended to <rundir>/alerts, then the alert event is
 * emitted.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "flowyfs/alerts.h"
#include "flowyfs/events.h"
#include "flowyfs/flowy.h"
#include "flowyfs/log.h"
#include "flowyfs/util.h"
#include "flowyfs/view.h"

struct astep {
	char *name;
	double started;
	double paused_before;     /* the run's paused seconds when it started */
};

struct arun {
	int64_t id;
	char *pipeline;
	struct alert_def *defs;
	size_t n;
	unsigned char *fired;
	double started;           /* 0 until run-started */
	double paused_at;         /* when it was paused; 0 while not paused */
	double paused;            /* seconds paused, ended pauses */
	struct astep *steps;      /* running steps */
	size_t nsteps, capsteps;
	struct arun *next;
};

/* An alert to fire, collected under the lock. */
struct afire {
	int64_t run;
	char *pipeline, *step, *name, *metric;
	double value, threshold;
	struct afire *next;
};

struct alerts {
	struct flowy *f;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int stop;
	struct arun *runs;
};

/* ---- pure parts -------------------------------------------------------- */

int alerts_metric_fires(const struct alert_def *a, const char *step,
                        const char *metric, double v, double *threshold)
{
	if (!a->metric || strcmp(a->metric, metric) || (a->step && strcmp(a->step, step)))
		return 0;
	if (a->has_above && v > a->above) {
		*threshold = a->above;
		return 1;
	}
	if (a->has_below && v < a->below) {
		*threshold = a->below;
		return 1;
	}
	return 0;
}

int alerts_duration_fires(const struct alert_def *a, const char *step, double elapsed)
{
	if (a->metric || !a->has_duration)
		return 0;
	if (!a->step != !step || (step && strcmp(a->step, step)))
		return 0;
	return elapsed > a->duration_above;
}

char *alerts_line(double t, const char *name, const char *metric, double value,
                  double threshold)
{
	char v[UTIL_DOUBLE_LEN], th[UTIL_DOUBLE_LEN];
	struct strbuf sb = {0};
	view_fmt_time(&sb, t);
	strbuf_printf(&sb, "\t%s\t%s\t%s\t%s\n", name, metric, util_fmt_double(v, value),
	              util_fmt_double(th, threshold));
	return strbuf_detach(&sb, NULL);
}

/* ---- firing ------------------------------------------------------------ */

static void fire_one(struct flowy *f, const struct afire *a)
{
	double now = util_now();
	char *line = alerts_line(now, a->name, a->metric, a->value, a->threshold);
	char *path = xasprintf("%s/%lld/alerts", f->runs_dir, (long long)a->run);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, line, strlen(line)) != (ssize_t)strlen(line))
		log_error("run %lld: cannot record alert %s in %s: %s", (long long)a->run,
		          a->name, path, strerror(errno));
	if (fd >= 0 && close(fd) < 0)
		log_error("%s: %s", path, strerror(errno));
	char v[UTIL_DOUBLE_LEN], th[UTIL_DOUBLE_LEN];
	log_info("run %lld: alert %s: %s %s (threshold %s)", (long long)a->run, a->name,
	         a->metric, util_fmt_double(v, a->value), util_fmt_double(th, a->threshold));
	free(path);
	free(line);
	events_emit(f, &(struct event){.kind = EV_ALERT, .time = now, .pipeline = a->pipeline,
	                               .run = a->run, .step = a->step, .alert = a->name,
	                               .metric = a->metric, .value = a->value,
	                               .threshold = a->threshold, .status = "fired"});
}

static void fire_all(struct flowy *f, struct afire *list)
{
	while (list) {
		struct afire *next = list->next;
		fire_one(f, list);
		free(list->pipeline);
		free(list->step);
		free(list->name);
		free(list->metric);
		free(list);
		list = next;
	}
}

/* Mark alert k of r fired and queue it on *out. Lock held. */
static void mark(struct arun *r, size_t k, const char *step, const char *metric,
                 double value, double threshold, struct afire **out)
{
	struct afire *a = xcalloc(1, sizeof *a);
	r->fired[k] = 1;
	a->run = r->id;
	a->pipeline = xstrdup(r->pipeline);
	a->step = step ? xstrdup(step) : NULL;
	a->name = xstrdup(r->defs[k].name);
	a->metric = xstrdup(metric);
	a->value = value;
	a->threshold = threshold;
	a->next = *out;
	*out = a;
}

/* A duration as shown: whole milliseconds, rounded up (so still above
 * the threshold it crossed). */
static double ms_up(double secs)
{
	return ceil(secs * 1000) / 1000;
}

/* Seconds r has been paused since it began, up to now. */
static double paused_until(const struct arun *r, double now)
{
	return r->paused + (r->paused_at > 0 ? now - r->paused_at : 0);
}

/* Queue the duration alerts of r that are due at now. Lock held. */
static void check_times(struct arun *r, double now, struct afire **out)
{
	double paused = paused_until(r, now);
	for (size_t k = 0; k < r->n; k++) {
		const struct alert_def *a = &r->defs[k];
		if (r->fired[k] || !a->has_duration)
			continue;
		double run_secs = now - r->started - paused;
		if (!a->step && r->started && alerts_duration_fires(a, NULL, run_secs))
			mark(r, k, NULL, "duration", ms_up(run_secs), a->duration_above, out);
		for (size_t i = 0; a->step && !r->fired[k] && i < r->nsteps; i++) {
			const struct astep *st = &r->steps[i];
			double step_secs = now - st->started - (paused - st->paused_before);
			if (alerts_duration_fires(a, st->name, step_secs))
				mark(r, k, a->step, "duration", ms_up(step_secs), a->duration_above,
				     out);
		}
	}
}

/* ---- the runs ---------------------------------------------------------- */

static void arun_free(struct arun *r)
{
	for (size_t k = 0; k < r->n; k++) {
		free(r->defs[k].name);
		free(r->defs[k].metric);
		free(r->defs[k].step);
	}
	for (size_t i = 0; i < r->nsteps; i++)
		free(r->steps[i].name);
	free(r->steps);
	free(r->defs);
	free(r->fired);
	free(r->pipeline);
	free(r);
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static struct arun *arun_new(const struct event *ev)
{
	const struct pipeline_def *p = ev->def;
	struct arun *r = xcalloc(1, sizeof *r);
	r->id = ev->run;
	r->pipeline = xstrdup(ev->pipeline);
	r->n = p->n_alerts;
	r->defs = xcalloc(r->n, sizeof *r->defs);
	r->fired = xcalloc(r->n, 1);
	for (size_t k = 0; k < r->n; k++) {
		r->defs[k] = p->alerts[k];
		r->defs[k].name = xstrdup(p->alerts[k].name);
		r->defs[k].metric = dup_or_null(p->alerts[k].metric);
		r->defs[k].step = dup_or_null(p->alerts[k].step);
	}
	return r;
}

static struct arun **find(struct alerts *al, int64_t id)
{
	struct arun **r = &al->runs;
	while (*r && (*r)->id != id)
		r = &(*r)->next;
	return r;
}

static void step_ended(struct arun *r, const char *step)
{
	for (size_t i = 0; i < r->nsteps; i++)
		if (!strcmp(r->steps[i].name, step)) {
			free(r->steps[i].name);
			r->steps[i] = r->steps[--r->nsteps];
			return;
		}
}

static void on_event(struct flowy *f, const struct event *ev, void *arg)
{
	struct alerts *al = arg;
	struct afire *due = NULL;
	if (ev->kind == EV_ALERT)
		return;
	pthread_mutex_lock(&al->lock);
	if (ev->kind == EV_RUN_QUEUED) {
		if (ev->def && ev->def->n_alerts && !*find(al, ev->run)) {
			struct arun *r = arun_new(ev);
			r->next = al->runs;
			al->runs = r;
		}
		pthread_mutex_unlock(&al->lock);
		return;
	}
	struct arun **rp = find(al, ev->run), *r = *rp;
	if (!r) {
		pthread_mutex_unlock(&al->lock);
		return;
	}
	switch (ev->kind) {
	case EV_RUN_STARTED:
		r->started = ev->time;
		break;
	case EV_RUN_PAUSED:
		if (r->paused_at == 0)
			r->paused_at = ev->time;
		break;
	case EV_RUN_RESUMED:
		if (r->paused_at > 0)
			r->paused += ev->time - r->paused_at;
		r->paused_at = 0;
		break;
	case EV_STEP_STARTED:
		if (ev->step) {
			size_t i;
			for (i = 0; i < r->nsteps && strcmp(r->steps[i].name, ev->step); i++)
				;
			if (i == r->nsteps) { /* a retry keeps its first start */
				GROW(r->steps, r->capsteps, r->nsteps);
				r->steps[r->nsteps].name = xstrdup(ev->step);
				r->steps[r->nsteps].paused_before = paused_until(r, ev->time);
				r->steps[r->nsteps++].started = ev->time;
			}
		}
		break;
	case EV_STEP_SUCCEEDED:
	case EV_STEP_FAILED:
	case EV_STEP_CACHED:
	case EV_STEP_SKIPPED:
		check_times(r, ev->time, &due); /* a last look at its time */
		if (ev->step)
			step_ended(r, ev->step);
		break;
	case EV_METRIC:
		for (size_t k = 0; k < r->n; k++) {
			double th;
			if (!r->fired[k] && ev->step && ev->metric &&
			    alerts_metric_fires(&r->defs[k], ev->step, ev->metric, ev->value, &th))
				mark(r, k, ev->step, ev->metric, ev->value, th, &due);
		}
		break;
	default:
		if (events_is_run_end(ev->kind)) {
			check_times(r, ev->time, &due);
			*rp = r->next;
			arun_free(r);
		}
		break;
	}
	pthread_mutex_unlock(&al->lock);
	fire_all(f, due);
}

static void *ticker_main(void *arg)
{
	log_thread_name("alerts");
	struct alerts *al = arg;
	pthread_mutex_lock(&al->lock);
	while (!al->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(ALERTS_TICK * 1e9);
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&al->cv, &al->lock, &ts);
		if (al->stop)
			break;
		struct afire *due = NULL;
		double now = util_now();
		for (struct arun *r = al->runs; r; r = r->next)
			check_times(r, now, &due);
		if (!due)
			continue;
		pthread_mutex_unlock(&al->lock);
		fire_all(al->f, due);
		pthread_mutex_lock(&al->lock);
	}
	pthread_mutex_unlock(&al->lock);
	return NULL;
}

int alerts_start(struct flowy *f)
{
	struct alerts *al = xcalloc(1, sizeof *al);
	al->f = f;
	pthread_mutex_init(&al->lock, NULL);
	pthread_cond_init(&al->cv, NULL);
	int rc = -pthread_create(&al->thread, NULL, ticker_main, al);
	if (rc) {
		pthread_cond_destroy(&al->cv);
		pthread_mutex_destroy(&al->lock);
		free(al);
		return rc;
	}
	events_subscribe(f->events, on_event, al);
	f->alerts = al;
	return 0;
}

void alerts_stop(struct flowy *f)
{
	struct alerts *al = f->alerts;
	if (!al)
		return;
	pthread_mutex_lock(&al->lock);
	al->stop = 1;
	pthread_cond_signal(&al->cv);
	pthread_mutex_unlock(&al->lock);
	pthread_join(al->thread, NULL); /* first: it emits alert events */
	events_unsubscribe(f->events, on_event, al);
	for (struct arun *r = al->runs, *next; r; r = next) {
		next = r->next;
		arun_free(r);
	}
	pthread_cond_destroy(&al->cv);
	pthread_mutex_destroy(&al->lock);
	free(al);
	f->alerts = NULL;
}
