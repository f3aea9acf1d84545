/*
 * pictures.h - the tree's pictures, rendered from SQLite like every
 * generated file: the DAG of a pipeline and of a run (Graphviz, through
 * dagsvg) and metric plots (svg). The views call these for
 * pipelines/<p>/.dag.svg, runs/<id>/dag.svg, metrics/<p>/<m>.svg and
 * runs/<id>/steps/<s>/metrics/<m>.svg; the report and the dashboard too.
 */
#ifndef FLOWYFS_PICTURES_H
#define FLOWYFS_PICTURES_H

#include <stddef.h>
#include <stdint.h>

#include "flowyfs/flowy.h"

/* Metric plots show the last this many runs that reported the metric. */
#define PICTURES_RUNS 10

/* When file is "<stem>.svg" with a non-empty stem, copy the stem into
 * stem (n bytes) and return 1; else 0. */
int pictures_svg_stem(const char *file, char *stem, size_t n);

/* Add "<metric>.svg" (a regular file) to a directory listing. */
struct dirlist;
void pictures_list_svg(struct dirlist *l, const char *metric);

/* pipelines/<p>/.dag.svg: steps (boxes) and artifacts (ellipses) of the
 * valid pipeline p, or a picture saying it is invalid. Always malloc'd
 * text (the caller frees). */
char *pictures_pipeline_dag(struct flowy *f, const char *p);

/* runs/<id>/dag.svg: the graph the run used, each step filled by its
 * status in that run, cached steps dashed, durations on the nodes. 0 with
 * *out malloc'd, -ENOENT when the run does not exist. */
int pictures_run_dag(struct flowy *f, int64_t id, char **out);

/* metrics/<p>/<m>.svg (file is "<m>.svg"): one curve per run and step
 * that reported m, for the last max_runs runs (0: PICTURES_RUNS), the
 * legend naming the run, the step when several report m, and the params
 * that differ between the runs shown. 0 with *out malloc'd, -ENOENT when
 * no run of p reported m. */
int pictures_metric(struct flowy *f, const char *p, const char *file, int max_runs,
                    char **out);

/* runs/<id>/steps/<s>/metrics/<m>.svg: that one series; malloc'd, or NULL
 * when file is not "<m>.svg" of a metric the step reported. */
char *pictures_step_metric(struct flowy *f, int64_t id, const char *step,
                           const char *file);

#endif
