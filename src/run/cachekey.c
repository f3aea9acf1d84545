/*
 * cachekey.c - cache keys, miss reasons and lookups (cachekey.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "flowyfs/cachekey.h"
#include "flowyfs/util.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void cachekey_compute(const struct step_def *d, const cJSON *pv,
                      const struct codefile *code, const size_t *idx,
                      size_t nidx, const char *workdir_code, char *const *in_hex,
                      const char *item, char **key, char **parts_out)
{
	if (!pv)
		pv = d->params;
	struct strbuf kt = {0};
	cJSON *parts = cJSON_CreateObject();
	char defhash[CAS_HEX_LEN + 1];
	if (!parts)
		util_oom();
	cas_hash_buf(defhash, d->canonical, strlen(d->canonical));
	strbuf_printf(&kt, "flowyfs-cache-v1\ndef %s\n", defhash);
	cJSON_AddStringToObject(parts, "definition", defhash);

	cJSON *cj = cJSON_AddObjectToObject(parts, "code");
	if (d->code_default && workdir_code) {
		strbuf_printf(&kt, "code workdir %s\n", workdir_code);
		cJSON_AddStringToObject(cj, "workdir", workdir_code);
	}
	for (size_t k = 0; k < nidx; k++) {
		const struct codefile *c = &code[idx[k]];
		strbuf_printf(&kt, "code %s %s\n", c->rel, c->hex);
		cJSON_AddStringToObject(cj, c->rel, c->hex);
	}

	cJSON *params = cJSON_AddObjectToObject(parts, "params");
	size_t np = (size_t)cJSON_GetArraySize(pv), k = 0;
	char **names = xcalloc(np + 1, sizeof *names);
	for (cJSON *p = pv->child; p; p = p->next)
		names[k++] = p->string;
	qsort(names, np, sizeof *names, cmp_str);
	for (k = 0; k < np; k++) {
		cJSON *v = cJSON_GetObjectItemCaseSensitive(pv, names[k]);
		char *txt = cJSON_PrintUnformatted(v);
		if (!txt)
			util_oom();
		strbuf_printf(&kt, "param %s %s\n", names[k], txt);
		cJSON_AddStringToObject(params, names[k], txt);
		free(txt);
	}
	free(names);

	cJSON *inputs = cJSON_AddObjectToObject(parts, "inputs");
	for (k = 0; k < d->n_inputs; k++) {
		strbuf_printf(&kt, "input %s %s\n", d->inputs[k].as, in_hex[k]);
		cJSON_AddStringToObject(inputs, d->inputs[k].as, in_hex[k]);
	}
	if (item) {
		strbuf_printf(&kt, "item %s\n", item);
		cJSON_AddStringToObject(parts, "item", item);
	}
	*key = xmalloc(CAS_HEX_LEN + 1);
	cas_hash_buf(*key, kt.buf, kt.len);
	*parts_out = cJSON_PrintUnformatted(parts);
	if (!*parts_out)
		util_oom();
	cJSON_Delete(parts);
	strbuf_release(&kt);
}

/* Compare one section of the key parts with the earlier run's. */
static void diff_section(struct strbuf *why, const cJSON *now, const cJSON *before,
                         const char *fmt_changed, const char *fmt_added,
                         const char *fmt_removed)
{
	for (const cJSON *a = now ? now->child : NULL; a; a = a->next) {
		const cJSON *b = cJSON_GetObjectItemCaseSensitive(before, a->string);
		const char *fmt = !b ? fmt_added :
		                  !cJSON_IsString(b) || strcmp(a->valuestring, b->valuestring)
		                  ? fmt_changed : NULL;
		if (fmt) {
			if (why->len)
				strbuf_puts(why, ", ");
			strbuf_printf(why, fmt, a->string);
		}
	}
	for (const cJSON *b = before ? before->child : NULL; b; b = b->next)
		if (!cJSON_GetObjectItemCaseSensitive(now, b->string)) {
			if (why->len)
				strbuf_puts(why, ", ");
			strbuf_printf(why, fmt_removed, b->string);
		}
}

char *cachekey_explain(db *d, const char *pipeline, const struct step_def *def,
                       const char *item, int64_t before, const char *parts)
{
	if (!def->n_outputs)
		return xstrdup("no outputs");
	char *prev = NULL, *prev_status = NULL;
	db_lock(d);
	/* Ordered by the runs' id (not the view's run_id, the same value): then
	 * SQLite walks runs_pipeline backwards and stops at the first match,
	 * where it sorted every run's row of the step (20 ms at 10,000 runs). */
	sqlite3_stmt *st = item ? db_prepare(d,
		"SELECT i.key_parts, i.status FROM items i JOIN runs r ON r.id = i.run_id "
		"WHERE r.pipeline=? AND i.step=? AND i.item=? AND i.key_parts IS NOT NULL "
		"AND i.run_id<? ORDER BY i.run_id DESC LIMIT 1", "ttti", pipeline, def->name,
		item, before) : db_prepare(d,
		"SELECT s.key_parts, s.status FROM steps s JOIN runs r ON r.id = s.run_id "
		"WHERE r.pipeline=? AND s.name=? AND s.key_parts IS NOT NULL AND r.id<? "
		"ORDER BY r.id DESC LIMIT 1", "tti", pipeline, def->name, before);
	if (st && sqlite3_step(st) == SQLITE_ROW) {
		prev = xstrdup((const char *)sqlite3_column_text(st, 0));
		prev_status = xstrdup((const char *)sqlite3_column_text(st, 1));
	}
	db_finish(d, st);
	db_unlock(d);
	if (!prev)
		return xstrdup("no earlier run");
	cJSON *now = cJSON_Parse(parts), *was = cJSON_Parse(prev);
	struct strbuf why = {0};
	const cJSON *dn = cJSON_GetObjectItemCaseSensitive(now, "definition");
	const cJSON *dw = cJSON_GetObjectItemCaseSensitive(was, "definition");
	if (!cJSON_IsString(dn) || !cJSON_IsString(dw) ||
	    strcmp(dn->valuestring, dw->valuestring))
		strbuf_puts(&why, "definition changed");
	diff_section(&why, cJSON_GetObjectItemCaseSensitive(now, "inputs"),
	             cJSON_GetObjectItemCaseSensitive(was, "inputs"),
	             "input %s changed", "input %s added", "input %s removed");
	diff_section(&why, cJSON_GetObjectItemCaseSensitive(now, "code"),
	             cJSON_GetObjectItemCaseSensitive(was, "code"),
	             "%s changed", "%s added", "%s removed");
	const cJSON *in = cJSON_GetObjectItemCaseSensitive(now, "item");
	const cJSON *iw = cJSON_GetObjectItemCaseSensitive(was, "item");
	if (cJSON_IsString(in) && (!cJSON_IsString(iw) ||
	                           strcmp(in->valuestring, iw->valuestring))) {
		if (why.len)
			strbuf_puts(&why, ", ");
		strbuf_puts(&why, "item changed");
	}
	diff_section(&why, cJSON_GetObjectItemCaseSensitive(now, "params"),
	             cJSON_GetObjectItemCaseSensitive(was, "params"),
	             "param %s changed", "param %s added", "param %s removed");
	if (!why.len)
		strbuf_puts(&why, strcmp(prev_status, "failed") ? "outputs missing"
		                                                 : "earlier run failed");
	cJSON_Delete(was);
	cJSON_Delete(now);
	free(prev);
	free(prev_status);
	return strbuf_detach(&why, NULL);
}

int cachekey_lookup(db *d, cas *c, const struct step_def *def, const char *key,
                    char (*out_hex)[CAS_HEX_LEN + 1], int64_t *from_run)
{
	size_t found = 0;
	if (!def->n_outputs)
		return 0; /* run for its effect, every time */
	db_lock(d);
	sqlite3_stmt *st = db_prepare(d,
		/* A cache row names the run that ran the step: one with rows of
		 * its own. */
		"SELECT io.name, io.hash, c.run_id FROM cache c JOIN step_io_recorded io "
		"ON io.run_id=c.run_id AND io.step=c.step AND io.dir='out' WHERE c.key=?",
		"t", key);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		if (from_run)
			*from_run = sqlite3_column_int64(st, 2);
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *hex = (const char *)sqlite3_column_text(st, 1);
		struct cas_stat cs;
		for (size_t o = 0; o < def->n_outputs; o++)
			if (!strcmp(def->outputs[o], name) && cas_stat(c, hex, &cs) == 0) {
				snprintf(out_hex[o], CAS_HEX_LEN + 1, "%s", hex);
				found++;
			}
	}
	db_finish(d, st);
	db_unlock(d);
	return found == def->n_outputs;
}

int cachekey_lookup_item(db *d, cas *c, const struct step_def *def, const char *key,
                         char (*out_hex)[CAS_HEX_LEN + 1])
{
	size_t found = 0;
	if (!def->n_outputs)
		return 0;
	char *outs = db_text(d, "SELECT outputs FROM items WHERE cache_key=? AND status "
	                     "IN ('succeeded','cached') AND outputs IS NOT NULL "
	                     "ORDER BY run_id DESC LIMIT 1", "t", key);
	cJSON *o = outs ? cJSON_Parse(outs) : NULL;
	for (size_t k = 0; o && k < def->n_outputs; k++) {
		const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, def->outputs[k]);
		struct cas_stat cs;
		if (cJSON_IsString(h) && cas_hex_valid(h->valuestring) &&
		    cas_stat(c, h->valuestring, &cs) == 0) {
			snprintf(out_hex[k], CAS_HEX_LEN + 1, "%s", h->valuestring);
			found++;
		}
	}
	cJSON_Delete(o);
	free(outs);
	return found == def->n_outputs;
}
