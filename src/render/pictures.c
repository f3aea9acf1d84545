/*
 * render/pictures.c - the pictures of the tree: DAGs coloured by status
 * and metric plots, rendered from SQLite at open like any generated file.
 *
 * The DAG of a run is the dot text recorded with the run (runs.dag), with
 * one node statement per step appended to restyle it (dot lets a later
 * statement override attributes): fill by status, dashed when cached, the
 * status and duration under the name. Graphviz lays it out (dagsvg.c).
 * Metric plots gather a series per run and step from the metrics table
 * and hand them to svg.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "flowyfs/catalog.h"
#include "flowyfs/dagsvg.h"
#include "flowyfs/pictures.h"
#include "flowyfs/svg.h"
#include "flowyfs/util.h"
#include "flowyfs/view.h"

int pictures_svg_stem(const char *file, char *stem, size_t n)
{
	size_t len = strlen(file);
	if (len <= 4 || strcmp(file + len - 4, ".svg") || len - 4 >= n)
		return 0;
	memcpy(stem, file, len - 4);
	stem[len - 4] = '\0';
	return 1;
}

void pictures_list_svg(struct dirlist *l, const char *metric)
{
	char *name = xasprintf("%s.svg", metric);
	dirlist_add(l, name, S_IFREG);
	free(name);
}

/* Render dot, or a picture saying why not. */
static char *draw(const char *dot)
{
	char *svg = NULL;
	int rc = dagsvg_render(dot, &svg);
	if (rc < 0)
		return svg_message(rc == -EINVAL ? "the graph could not be laid out (see the log)"
		                   : "out of memory");
	return svg;
}

char *pictures_pipeline_dag(struct flowy *f, const char *p)
{
	char *dot = catalog_render(f, p, CATALOG_DOT);
	char *svg = !strncmp(dot, "//", 2) ? svg_message("invalid pipeline: see .status")
	            : draw(dot);
	free(dot);
	return svg;
}

/* ---- runs ---------------------------------------------------------------- */

static const struct {
	const char *status, *fill;
} fills[] = {
	{"pending", "#eeeeee"}, {"running", "#ffe08a"}, {"succeeded", "#b7e4c7"},
	{"cached", "#cfe3f7"}, {"failed", "#f4a6a6"}, {"skipped", "#f2f2f2"},
	{"cancelled", "#d6d6d6"},
};

static const char *fill_of(const char *status, int cached)
{
	if (cached)
		status = "cached";
	for (size_t i = 0; i < sizeof fills / sizeof *fills; i++)
		if (!strcmp(fills[i].status, status))
			return fills[i].fill;
	return "#ffffff";
}

/* Append one step's restyling node statement. */
static void restyle(struct strbuf *sb, sqlite3_stmt *st)
{
	const char *name = (const char *)sqlite3_column_text(st, 0);
	const char *status = (const char *)sqlite3_column_text(st, 1);
	int cached = sqlite3_column_int(st, 4);
	strbuf_puts(sb, "  \"step:");
	dagsvg_quote(sb, name);
	strbuf_printf(sb, "\" [fillcolor=\"%s\", style=\"%s\", penwidth=%s, label=\"",
	              fill_of(status, cached), cached ? "filled,dashed" : "filled",
	              !strcmp(status, "running") || !strcmp(status, "failed") ? "2" : "1");
	dagsvg_quote(sb, name);
	strbuf_puts(sb, "\\n");
	dagsvg_quote(sb, cached ? "cached" : status);
	if (!cached && sqlite3_column_type(st, 2) != SQLITE_NULL) {
		double end = sqlite3_column_type(st, 3) == SQLITE_NULL ? util_now()
		             : sqlite3_column_double(st, 3);
		strbuf_puts(sb, ", ");
		view_fmt_secs(sb, end - sqlite3_column_double(st, 2));
		strbuf_puts(sb, " s");
	}
	strbuf_puts(sb, "\", tooltip=\"");
	dagsvg_quote(sb, name);
	strbuf_puts(sb, ": ");
	dagsvg_quote(sb, cached ? "cached" : status);
	strbuf_puts(sb, "\"];\n");
}

int pictures_run_dag(struct flowy *f, int64_t id, char **out)
{
	int rc = 0;
	struct strbuf sb = {0};
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db, "SELECT " DB_RUN_DAG " FROM runs WHERE id=?", "i",
	                              id);
	if (!st || sqlite3_step(st) != SQLITE_ROW) {
		rc = -ENOENT;
	} else if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
		const char *dot = (const char *)sqlite3_column_text(st, 0);
		const char *close = strrchr(dot, '}');
		if (close)
			strbuf_add(&sb, dot, (size_t)(close - dot));
	}
	db_finish(f->db, st);
	if (!rc && sb.len) {
		st = db_prepare(f->db, "SELECT name, status, started, finished, cached FROM "
		                "steps WHERE run_id=? ORDER BY name", "i", id);
		while (st && sqlite3_step(st) == SQLITE_ROW)
			restyle(&sb, st);
		db_finish(f->db, st);
		strbuf_puts(&sb, "}\n");
	}
	db_unlock(f->db);
	if (!rc)
		*out = sb.len ? draw(sb.buf) : svg_message("this run recorded no graph");
	strbuf_release(&sb);
	return rc;
}

/* ---- metric plots -------------------------------------------------------- */

struct series {
	int64_t run;
	char *step;
	double *x, *y;
	size_t n, cap;
};

struct plotdata {
	struct series *s;
	size_t n, cap;
};

/* Rows of (run, step, idx, value), ordered by run, step, idx, into one
 * series per run and step. */
static void collect(sqlite3_stmt *st, struct plotdata *pd)
{
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		int64_t run = sqlite3_column_int64(st, 0);
		const char *step = (const char *)sqlite3_column_text(st, 1);
		struct series *s = pd->n ? &pd->s[pd->n - 1] : NULL;
		if (!s || s->run != run || strcmp(s->step, step)) {
			GROW(pd->s, pd->cap, pd->n);
			s = &pd->s[pd->n++];
			memset(s, 0, sizeof *s);
			s->run = run;
			s->step = xstrdup(step);
		}
		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 16;
			s->x = xrealloc(s->x, s->cap * sizeof *s->x);
			s->y = xrealloc(s->y, s->cap * sizeof *s->y);
		}
		s->x[s->n] = (double)sqlite3_column_int64(st, 2);
		s->y[s->n++] = sqlite3_column_double(st, 3);
	}
}

static void plotdata_free(struct plotdata *pd)
{
	for (size_t i = 0; i < pd->n; i++) {
		free(pd->s[i].step);
		free(pd->s[i].x);
		free(pd->s[i].y);
	}
	free(pd->s);
}

/* Draw pd with the given labels; labels[i] for series i. */
static char *plot(const struct plotdata *pd, char **labels, const char *title,
                  const char *ylabel)
{
	struct svg_series *ss = xcalloc(pd->n + 1, sizeof *ss);
	for (size_t i = 0; i < pd->n; i++)
		ss[i] = (struct svg_series){labels[i], pd->s[i].x, pd->s[i].y, pd->s[i].n};
	struct svg_plot p = {.title = title, .xlabel = "index", .ylabel = ylabel,
	                     .series = ss, .n_series = pd->n};
	char *svg = svg_plot_render(&p);
	free(ss);
	return svg;
}

/* The params (a JSON object) as text per name, for comparing runs. */
static char *param_text(cJSON *params, const char *name)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(params, name);
	if (!v)
		return NULL;
	if (cJSON_IsString(v))
		return xstrdup(v->valuestring);
	if (cJSON_IsNumber(v)) {
		char buf[UTIL_DOUBLE_LEN];
		return xstrdup(util_fmt_double(buf, v->valuedouble));
	}
	char *t = cJSON_PrintUnformatted(v);
	if (!t)
		util_oom();
	return t;
}

static int same(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* Legend labels: "run N", the step when runs have several series or
 * steps differ, and name=value for every param that differs. */
static char **legend(struct flowy *f, const struct plotdata *pd)
{
	char **labels = xcalloc(pd->n + 1, sizeof *labels);
	cJSON **params = xcalloc(pd->n + 1, sizeof *params);
	int steps_differ = 0;
	db_lock(f->db);
	for (size_t i = 0; i < pd->n; i++) {
		char *pj = db_text(f->db, "SELECT params FROM runs WHERE id=?", "i", pd->s[i].run);
		params[i] = pj ? cJSON_Parse(pj) : NULL;
		free(pj);
		if (i && strcmp(pd->s[i].step, pd->s[0].step))
			steps_differ = 1;
	}
	db_unlock(f->db);
	for (size_t i = 0; i < pd->n; i++) {
		struct strbuf sb = {0};
		strbuf_printf(&sb, "run %lld", (long long)pd->s[i].run);
		if (steps_differ)
			strbuf_printf(&sb, " %s", pd->s[i].step);
		/* Every param of this run that some other shown run has otherwise. */
		for (cJSON *c = params[i] ? params[i]->child : NULL; c; c = c->next) {
			char *mine = param_text(params[i], c->string);
			int differs = 0;
			for (size_t k = 0; k < pd->n && !differs; k++) {
				char *theirs = param_text(params[k], c->string);
				differs = !same(mine, theirs);
				free(theirs);
			}
			if (differs)
				strbuf_printf(&sb, " %s=%s", c->string, mine);
			free(mine);
		}
		labels[i] = strbuf_detach(&sb, NULL);
	}
	for (size_t i = 0; i < pd->n; i++)
		cJSON_Delete(params[i]);
	free(params);
	return labels;
}

int pictures_metric(struct flowy *f, const char *p, const char *file, int max_runs,
                    char **out)
{
	char m[512];
	struct plotdata pd = {0};
	if (!pictures_svg_stem(file, m, sizeof m))
		return -ENOENT;
	if (max_runs <= 0)
		max_runs = PICTURES_RUNS;
	db_lock(f->db);
	/* The oldest of the last max_runs runs that reported m. */
	int64_t from = db_int(f->db, 0, "SELECT min(run_id) FROM (SELECT DISTINCT m.run_id "
	                      "FROM metrics m JOIN runs r ON r.id=m.run_id WHERE "
	                      "r.pipeline=? AND m.name=? ORDER BY m.run_id DESC LIMIT ?)",
	                      "tti", p, m, (int64_t)max_runs);
	sqlite3_stmt *st = from <= 0 ? NULL :
		db_prepare(f->db, "SELECT m.run_id, m.step, m.idx, m.value FROM metrics m "
		           "JOIN runs r ON r.id=m.run_id WHERE r.pipeline=? AND m.name=? AND "
		           "m.run_id>=? ORDER BY m.run_id, m.step, m.idx", "tti", p, m, from);
	collect(st, &pd);
	db_finish(f->db, st);
	db_unlock(f->db);
	if (!pd.n) {
		plotdata_free(&pd);
		return -ENOENT;
	}
	char **labels = legend(f, &pd);
	char *title = xasprintf("%s: %s", p, m);
	*out = plot(&pd, labels, title, m);
	free(title);
	for (size_t i = 0; i < pd.n; i++)
		free(labels[i]);
	free(labels);
	plotdata_free(&pd);
	return 0;
}

char *pictures_step_metric(struct flowy *f, int64_t id, const char *step,
                           const char *file)
{
	char m[512];
	struct plotdata pd = {0};
	if (!pictures_svg_stem(file, m, sizeof m))
		return NULL;
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db, "SELECT run_id, step, idx, value FROM metrics "
	                              "WHERE run_id=? AND step=? AND name=? ORDER BY idx",
	                              "itt", id, step, m);
	collect(st, &pd);
	db_finish(f->db, st);
	db_unlock(f->db);
	char *svg = NULL;
	if (pd.n) {
		char *label = xasprintf("run %lld %s", (long long)id, step);
		char *title = xasprintf("run %lld %s: %s", (long long)id, step, m);
		svg = plot(&pd, &label, title, m);
		free(title);
		free(label);
	}
	plotdata_free(&pd);
	return svg;
}
