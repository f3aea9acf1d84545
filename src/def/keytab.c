/*
 * keytab.c - walking a definition object against its {key, parser}
 * table. The same walk serves <step>.json, pipeline.json and the
 * "resources" objects of both, so unknown keys, near misses and repeated
 * keys are reported the same way everywhere. Tables are a dozen rows: a
 * linear search per member is cheaper than anything cleverer.
 */
#include <stdlib.h>
#include <string.h>

#include "flowyfs/diag.h"
#include "flowyfs/keytab.h"
#include "flowyfs/stepload.h"
#include "flowyfs/util.h"

void keytab_walk(const struct keytab *rows, size_t n, struct stepload *l,
                 struct jpos_src *s, cJSON *json, size_t at, void *obj,
                 size_t *seen)
{
	size_t *koff = NULL, *voff = NULL, nk, i, k;
	cJSON *it;

	for (k = 0; k < n; k++)
		seen[k] = JPOS_NONE;
	nk = jpos_children(s->text, at, &koff, &voff);
	for (i = 0, it = json->child; it; it = it->next, i++) {
		size_t ko = i < nk ? koff[i] : at, vo = i < nk ? voff[i] : at;

		for (k = 0; k < n && strcmp(it->string, rows[k].key); k++)
			;
		if (k == n) {
			diag_unknown_key(&l->diag, s, ko, it->string, &rows[0].key, n,
			                 sizeof rows[0]);
			continue;
		}
		if (seen[k] != JPOS_NONE) {
			diag_at(&l->diag, s, ko, "duplicate key %s",
			        diag_quote(&l->diag, it->string));
			continue;
		}
		seen[k] = ko;
		if (rows[k].parse)
			rows[k].parse(l, s, obj, it, ko, vo);
	}
	free(voff);
	free(koff);
}

int keytab_walk_member(const struct keytab *rows, size_t n, struct stepload *l,
                       struct jpos_src *s, cJSON *val, size_t ko, size_t vo,
                       void *obj, const char *key)
{
	struct strbuf keys = {0};
	size_t *seen, k;

	if (!cJSON_IsObject(val)) {
		for (k = 0; k < n; k++)
			strbuf_printf(&keys, "%s%s", k ? ", " : "", rows[k].key);
		diag_at(&l->diag, s, ko, "\"%s\" must be an object (keys: %s)", key,
		        keys.buf ? keys.buf : "");
		strbuf_release(&keys);
		return 0;
	}
	seen = xcalloc(n + 1, sizeof *seen);
	keytab_walk(rows, n, l, s, val, vo, obj, seen);
	free(seen);
	return 1;
}
