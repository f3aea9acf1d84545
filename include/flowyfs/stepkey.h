/*
 * stepkey.h - the keys of a <step>.json, one {key, parser} row each:
 * run, inputs, outputs, params, code, retries, backoff, timeout,
 * description, when, foreach, concurrency, min_success, register,
 * executor, resources.
 */
#ifndef FLOWYFS_STEPKEY_H
#define FLOWYFS_STEPKEY_H

#include "flowyfs/stepload.h"

/* Parse and check the step f->st from f (f->src already read; its text
 * NULL when unreadable), filling the step_def and its canonical text;
 * needs pipeline.json parsed first (params). Checks across steps come
 * later (pipecheck.c). The load owns everything f holds. */
void stepkey_parse(struct stepload *l, struct stepfile *f);

#endif
