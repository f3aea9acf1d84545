/*
 * pipecheck.h - the checks across the steps of a pipeline: every output
 * produced by one step, every local input produced by some step, no
 * cycle (named), and the topological order of a pipeline that has none.
 */
#ifndef FLOWYFS_PIPECHECK_H
#define FLOWYFS_PIPECHECK_H

#include "flowyfs/stepload.h"

/* Resolve each LOCAL input to its producer (step_input.producer) and
 * report outputs produced twice, inputs nobody produces, and steps that
 * read their own output. Returns how many such self-cycles it reported. */
size_t pipecheck_link(struct stepload *l);
/* Order the steps (l->p->order, malloc'd) or report one cycle, named
 * "a -> b -> a", at the file of its first step. */
void pipecheck_cycles(struct stepload *l);

#endif
