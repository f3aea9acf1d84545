/*
 * resources.h - where and with what a step runs: "executor" ("local" or
 * "slurm") and "resources" ({"cpus": 4, "mem": "8G", "gpus": 1,
 * "time": "2h", "partition": "gpu"}), as a step or pipeline.json writes
 * them; and the conversions an executor needs (time in seconds, memory in
 * bytes). A resource key is one row of the table in resources.c.
 */
#ifndef FLOWYFS_RESOURCES_H
#define FLOWYFS_RESOURCES_H

#include <stdint.h>
#include <cJSON.h>

#include "flowyfs/jpos.h"

struct stepload;

/* Check "executor" (val, key at offset ko of s); on success *out gets a
 * malloc'd copy ("local" or "slurm"; an earlier *out is freed). */
void resources_parse_executor(struct stepload *l, struct jpos_src *s, cJSON *val,
                              size_t ko, char **out);
/* Check the "resources" object val (key at ko, value at vo of s); *out
 * gets a copy of it (cJSON, caller deletes; an earlier *out is deleted)
 * when it is an object, even with bad members (the pipeline is then
 * invalid). */
void resources_parse(struct stepload *l, struct jpos_src *s, cJSON *val,
                     size_t ko, size_t vo, cJSON **out);

/* Seconds of a "time" value: "<n>s", "<n>m", "<n>h", "<n>d" (n a whole
 * number >= 1), "M:SS", "H:MM:SS" or "D-H:MM:SS". Returns -1 when
 * invalid (or 0 long). */
double resources_seconds(const char *time);
/* Bytes of a "mem" value: a whole number >= 1 with K, M, G or T (powers of
 * 1024; lower case too). Returns 0 and sets *out, or -EINVAL. */
int resources_bytes(const char *mem, uint64_t *out);

#endif
