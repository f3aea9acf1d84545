/*
 * foreach.h - the items of a foreach step and the merge of its tasks'
 * outputs.
 *
 * "foreach": "<input>" makes one task per entry of that directory input
 * (the task sees the entry as in/<input>); "foreach": "param:<name>" one
 * per element of that list param (the task sees the element as the
 * param's value). Each output of the step is then a directory with one
 * entry per item that succeeded, named after the item.
 */
#ifndef FLOWYFS_FOREACH_H
#define FLOWYFS_FOREACH_H

#include <cJSON.h>
#include "flowyfs/run.h"

struct foreach_item {
	char *name;       /* a valid file name: the entry's, or the element's
	                     text when it is one (else its index) */
	char *env;        /* $FLOWY_ITEM: the entry's name, or the element
	                     (a string as is, else its JSON) */
	char *hex;        /* directory input: the entry's content hash */
	cJSON *value;     /* list param: the element */
};

/* The items of step i of r (its inputs resolved). 0, or -errno with *err
 * (malloc'd) when the input is not a directory or the param not a list. */
int foreach_items(struct run *r, size_t i, struct foreach_item **out, size_t *n,
                  char **err);
void foreach_items_free(struct foreach_item *v, size_t n);

/* Fill step i's out_hex with one directory per output, made of the
 * outputs of its tasks that succeeded. 0, or -errno with *err. */
int foreach_merge(struct run *r, size_t i, char **err);

#endif
