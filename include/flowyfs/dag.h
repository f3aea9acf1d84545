/*
 * dag.h - the step graph of a pipeline: edges from producers to consumers
 * (inferred from LOCAL inputs), cycle detection that names the cycle,
 * topological order, and text / Graphviz renderings for .dag and .dag.dot.
 */
#ifndef FLOWYFS_DAG_H
#define FLOWYFS_DAG_H

#include <stddef.h>
#include "flowyfs/step.h"

/* Topological order of p's steps into out (n_steps entries, caller
 * allocates), ties broken by name. Returns 0, or -ELOOP with *cycle set
 * (malloc'd) to "a -> b -> c -> a" when there is a cycle. */
int dag_order(size_t *out, const struct pipeline_def *p, char **cycle);

/* For each step i, deps of i = indexes of steps i reads from (sorted,
 * unique). Caller frees with dag_deps_free. */
int dag_deps(size_t ***out_deps, size_t **out_n, const struct pipeline_def *p);
void dag_deps_free(size_t **deps, size_t *n, size_t n_steps);

/* Render the graph; caller frees. Text: one line per step in topological
 * order, "step\tinputs -> outputs" style described in dag.c. Dot: a
 * digraph with steps as boxes and artifacts as ellipses. */
char *dag_render_text(const struct pipeline_def *p);
char *dag_render_dot(const struct pipeline_def *p);

/* Indexes of the steps downstream of step i, including i (mark[] gets 1),
 * mark has n_steps entries. Other entries are left as they are (zero mark
 * first; marks from several calls add up). */
void dag_downstream(const struct pipeline_def *p, size_t i, unsigned char *mark);

#endif
