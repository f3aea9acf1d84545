/*
 * report.h - runs/<id>/report.html: one self-contained HTML page about a
 * run (inline CSS and SVG, no scripts, nothing fetched from elsewhere):
 * status, params, the summary, the DAG, metric plots, outputs with hashes,
 * sizes and lineage, the last lines of each step's log, and the errors.
 * The dashboard shows the same sections on its run page.
 */
#ifndef FLOWYFS_REPORT_H
#define FLOWYFS_REPORT_H

#include <stdint.h>

#include "flowyfs/flowy.h"

struct strbuf;

/* Lines of each step's log the report shows. */
#define REPORT_LOG_LINES 20

/* The whole page in *out (malloc'd): 0, or -ENOENT when there is no run
 * id. */
int report_render(struct flowy *f, int64_t id, char **out);

/* Append the report's sections (no page frame) to sb: 0, or -ENOENT. */
int report_body(struct flowy *f, int64_t id, struct strbuf *sb);

#endif
