/*
 * stepio.h - what enters the store for a run: the content hashes of a
 * step's inputs (file: inputs are hashed and stored as the steps' user)
 * and a finished step's outputs, hashed and committed from its out/.
 */
#ifndef FLOWYFS_STEPIO_H
#define FLOWYFS_STEPIO_H

#include "flowyfs/run.h"

/* Resolve every input of step i to a content hash (s->in_hex). 0, or
 * -errno with *err (malloc'd) for a person. */
int stepio_inputs(struct run *r, size_t i, char **err);
/* The content hash of input k of step i into hex (CAS_HEX_LEN + 1
 * bytes): an output of this run's step (as far as known), the latest
 * of another pipeline, a file: input hashed and stored, a registry alias,
 * a pinned artifact. 0, or -errno with *err (malloc'd) for a person. */
int stepio_input(struct run *r, size_t i, size_t k, char *hex, char **err);
/* Hash and commit every declared output of step i (s->out_hex); 0, or
 * -errno with s->error set. out/ must still be the directory the
 * workspace made; outputs are read through their fds as the steps' user. */
int stepio_outputs(struct run *r, size_t i);

#endif
