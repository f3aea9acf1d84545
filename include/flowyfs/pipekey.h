/*
 * pipekey.h - the keys of pipeline.json, one {key, parser} row each:
 * params (the context), description, workdir, autorun, executor,
 * resources, slurm, alerts.
 */
#ifndef FLOWYFS_PIPEKEY_H
#define FLOWYFS_PIPEKEY_H

#include "flowyfs/stepload.h"

/* Read and parse pipeline.json of the load's directory into l->p (when
 * present is set; else only the defaults), then index its params. Sets
 * l->ctx_ok to 0 when the params cannot be trusted for lookups. */
void pipekey_load(struct stepload *l, int present);

#endif
