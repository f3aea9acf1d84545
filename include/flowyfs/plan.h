/*
 * plan.h - pipelines/<p>/.plan: for each step, whether a run queued now
 * would run it or take it from the cache, and why, with the same reasons
 * a run records. Nothing runs: inputs are resolved (file: inputs hashed),
 * keys computed and looked up in the cache, in dependency order.
 */
#ifndef FLOWYFS_PLAN_H
#define FLOWYFS_PLAN_H

#include "flowyfs/flowy.h"

/* TSV, "step\taction\treason" then one row per step in run order (action
 * "run" or "cached"); malloc'd. An invalid pipeline gives one line saying
 * so. */
char *plan_render(struct flowy *f, const char *pipeline);

#endif
