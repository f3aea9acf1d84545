/*
 * prerender.h - pipelines' graphs laid out in the background, so that the
 * first read of pipelines/<p>/.dag.svg after a change finds it drawn.
 *
 * The catalog calls prerender_dag (a catalog_valid_fn) when a pipeline
 * validates with a new definition; one thread lays each such graph out
 * (dagsvg_keep, under the pipeline's name) in the order they came, the
 * newest graph of a pipeline replacing one that still waits. A read that
 * comes before the thread is done renders the graph itself (or waits for
 * the render under way: Graphviz runs one layout at a time); either way
 * it is laid out once.
 */
#ifndef FLOWYFS_PRERENDER_H
#define FLOWYFS_PRERENDER_H

/* Graphs that may wait; a new pipeline's graph past this is not drawn
 * ahead (its first read draws it). */
#define PRERENDER_QUEUE_MAX 64

struct prerender;

/* Start the thread. 0 with *out set, or -errno. */
int prerender_start(struct prerender **out);
/* Drop what waits, let the layout under way end, stop the thread and
 * free pr. NULL: no-op. */
void prerender_stop(struct prerender *pr);
/* Queue dot (copied), the graph of pipeline, for pr (a struct prerender,
 * void for the catalog's callback type). Returns at once. */
void prerender_dag(void *pr, const char *pipeline, const char *dot);

#endif
