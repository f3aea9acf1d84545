/*
 * foreach.c - items of foreach steps and merged outputs (foreach.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/foreach.h"
#include "flowyfs/util.h"

void foreach_items_free(struct foreach_item *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].env);
		free(v[i].hex);
		cJSON_Delete(v[i].value);
	}
	free(v);
}

static int from_directory(struct run *r, size_t i, struct foreach_item **out,
                          size_t *n, char **err)
{
	const struct srun *s = &r->s[i];
	int k = s->def->foreach_input;
	struct cas_tree *t = NULL;
	int rc = cas_tree_read(r->f->cas, s->in_hex[k], &t);
	if (rc < 0) {
		*err = xasprintf("foreach: input %s is not a directory",
		                 s->def->inputs[k].as);
		return rc == -ENOENT ? -ENOTDIR : rc;
	}
	struct foreach_item *v = xcalloc(t->n + 1, sizeof *v);
	for (size_t e = 0; e < t->n; e++) {
		v[e].name = xstrdup(t->entries[e].name);
		v[e].env = xstrdup(t->entries[e].name);
		v[e].hex = xstrdup(t->entries[e].hex);
	}
	*out = v;
	*n = t->n;
	cas_tree_free(t);
	return 0;
}

/* The element's text when it makes a file name no other element has. */
static char *element_name(const cJSON *el, size_t idx, const cJSON *list)
{
	char num[UTIL_DOUBLE_LEN];
	const char *text = cJSON_IsString(el) ? el->valuestring :
	                   cJSON_IsNumber(el) ? util_fmt_double(num, el->valuedouble) : NULL;
	int ok = text && step_name_valid(text);
	size_t j = 0;
	for (const cJSON *o = list->child; ok && o; o = o->next, j++)
		if (o != el && j != idx && cJSON_Compare(o, el, 1))
			ok = 0; /* the same value twice: names by index */
	return ok ? xstrdup(text) : xasprintf("%zu", idx);
}

static int from_param(struct run *r, size_t i, struct foreach_item **out, size_t *n,
                      char **err)
{
	const struct srun *s = &r->s[i];
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(s->def->params,
	                                                     s->def->foreach);
	if (!cJSON_IsArray(list)) {
		*err = xasprintf("foreach: param %s is not a list", s->def->foreach);
		return -EINVAL;
	}
	size_t cnt = (size_t)cJSON_GetArraySize(list), idx = 0;
	struct foreach_item *v = xcalloc(cnt + 1, sizeof *v);
	for (const cJSON *el = list->child; el; el = el->next, idx++) {
		char *json = cJSON_PrintUnformatted(el);
		if (!json)
			util_oom();
		v[idx].name = element_name(el, idx, list);
		v[idx].value = cJSON_Duplicate(el, 1);
		if (!v[idx].value)
			util_oom();
		v[idx].env = cJSON_IsString(el) ? xstrdup(el->valuestring) : xstrdup(json);
		free(json);
	}
	*out = v;
	*n = cnt;
	return 0;
}

int foreach_items(struct run *r, size_t i, struct foreach_item **out, size_t *n,
                  char **err)
{
	*out = NULL;
	*n = 0;
	if (r->s[i].def->foreach_kind == STEP_FOREACH_INPUT)
		return from_directory(r, i, out, n, err);
	return from_param(r, i, out, n, err);
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct cas_entry *)a)->name,
	              ((const struct cas_entry *)b)->name);
}

int foreach_merge(struct run *r, size_t i, char **err)
{
	struct srun *s = &r->s[i];
	struct cas_entry *e = xcalloc(s->ntasks + 1, sizeof *e);
	int rc = 0;
	for (size_t o = 0; !rc && o < s->def->n_outputs; o++) {
		size_t n = 0;
		for (size_t t = 0; !rc && t < s->ntasks; t++) {
			const struct srun *task = &r->s[s->task0 + t];
			if (task->state != S_DONE)
				continue;
			struct cas_stat st;
			rc = cas_stat(r->f->cas, task->out_hex[o], &st);
			if (rc < 0)
				break;
			e[n].type = st.kind == CAS_TREE ? 'd' : 'f';
			e[n].mode = st.kind == CAS_TREE ? 0755 : 0644;
			e[n].size = st.kind == CAS_TREE ? 0 : st.size;
			memcpy(e[n].hex, task->out_hex[o], sizeof e[n].hex);
			e[n++].name = task->item;
		}
		if (rc < 0)
			break;
		qsort(e, n, sizeof *e, cmp_entry);
		rc = cas_tree_put(r->f->cas, s->out_hex[o], e, n);
	}
	free(e);
	if (rc < 0)
		*err = xasprintf("foreach: cannot merge the items' outputs: %s", strerror(-rc));
	return rc;
}
