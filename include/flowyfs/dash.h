/*
 * dash.h - the dashboard's pages, rendered from the tree (views, and the
 * same renderers as the files: pictures, report) for http.c:
 *
 *   /                    pipelines with their status, recent runs (live)
 *   /pipeline/<p>        its DAG, its runs (live)
 *   /run/<id>            the run report, DAG coloured live, logs following
 *   /metrics/<p>         every metric's curves, growing as metrics arrive
 *   /compare/<p>         runs.tsv of the newest DASH_COMPARE_ROWS runs as a
 *                        table sortable by any column, the best run per
 *                        metric marked; ?before=<id>: those before run id
 *   /file/<path>         a generated file of runs/, metrics/, lineage/ or a
 *                        pipeline's .dag, .dag.dot, .dag.svg, .status
 *
 * A live page holds <div id="live" data-version=V>; GET of the same path
 * with ?live=V answers that div's content once it differs from V (or
 * after DASH_WAIT seconds), with its new version in X-Version: long
 * polling, so a page updates without a reload and no poll is wasted.
 */
#ifndef FLOWYFS_DASH_H
#define FLOWYFS_DASH_H

#include <stddef.h>

#include "flowyfs/flowy.h"

/* Seconds a live request waits for a change. */
#define DASH_WAIT 10
/* Runs a comparison page shows. */
#define DASH_COMPARE_ROWS 500

struct dash_reply {
	int status;           /* HTTP status */
	const char *type;     /* Content-Type (static) */
	char *body;           /* malloc'd */
	size_t len;
	char version[17];     /* a live fragment's version, or "" */
};

/* Answer GET url (the path, undecoded). live, before: the ?live= and
 * ?before= values or NULL. stop: when it becomes non-zero a waiting
 * request answers at once. Always fills out (errors are pages too). */
void dash_handle(struct flowy *f, const char *url, const char *live, const char *before,
                 const int *stop, struct dash_reply *out);

#endif
