/*
 * alerts.h - the alerts of pipeline.json, checked live. An event
 * subscriber copies a run's alerts when it is queued, checks each metric
 * value as its line arrives (EV_METRIC) and, on a thread of its own, the
 * time of running runs and steps against duration_above. Each alert fires
 * at most once per run: one line of runs/<id>/alerts
 * (<rundir>/alerts: time name metric value threshold, tab-separated) and
 * an `alert` event. Alerts never change a run.
 */
#ifndef FLOWYFS_ALERTS_H
#define FLOWYFS_ALERTS_H

#include "flowyfs/step.h"

struct flowy;

#define ALERTS_TICK 0.1   /* seconds between checks of running times */

/* Subscribe to f->events and start the timer thread. 0 or -errno. */
int alerts_start(struct flowy *f);
/* Stop the thread and forget every run. A no-op when never started.
 * Call it after the scheduler stopped and before the other subscribers
 * unsubscribe: its thread is the last one emitting events. */
void alerts_stop(struct flowy *f);

/* Does value v of metric (reported by step) fire a? Sets *threshold to
 * the bound crossed. Duration alerts never fire here. */
int alerts_metric_fires(const struct alert_def *a, const char *step,
                        const char *metric, double v, double *threshold);
/* Does a duration alert fire after elapsed seconds of step (NULL: the
 * run)? A step alert checks only its step, a run alert only the run. */
int alerts_duration_fires(const struct alert_def *a, const char *step, double elapsed);
/* One line of runs/<id>/alerts (malloc'd, with newline). */
char *alerts_line(double t, const char *name, const char *metric, double value,
                  double threshold);
/* The header row of runs/<id>/alerts (views/runs.c shows it above the
 * lines of <rundir>/alerts). */
#define ALERTS_HEADER "time\tname\tmetric\tvalue\tthreshold\n"

#endif
