/*
 * views/metrics.c - metrics/: what steps reported, compared across runs.
 *
 *   metrics/<p>/<metric>   TSV, one row per run and step that reported it:
 *                          run, step, value (the last one), time
 *   metrics/<p>/<metric>.svg  its curves, one per run (render/pictures.c)
 *   metrics/<p>/runs.tsv   TSV, one row per run of <p>: run, status, started,
 *                          duration, params.<name> for every param,
 *                          metrics.<name>: the last value of every metric
 *                          (empty where a run has none; metrics.<step>.<name>
 *                          when two steps log the name), input.<ref>: the
 *                          short hash of every external input, commit, and
 *                          tags (the run's tags, comma-separated)
 *
 * Both start with a header row and are sorted by run id, ready for
 * `sort -t$'\t' -k`, `column -t` and awk. Rendered from SQLite at open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "flowyfs/pictures.h"
#include "flowyfs/util.h"
#include "flowyfs/view.h"

static int pipeline_has_runs(struct flowy *f, const char *p)
{
	db_lock(f->db);
	int64_t c = db_int(f->db, 0, "SELECT EXISTS(SELECT 1 FROM runs WHERE pipeline=?)",
	                   "t", p);
	db_unlock(f->db);
	return c > 0;
}

static int metric_exists(struct flowy *f, const char *p, const char *m)
{
	db_lock(f->db);
	int64_t c = db_int(f->db, 0, "SELECT EXISTS(SELECT 1 FROM metrics m JOIN runs r ON "
	                   "r.id=m.run_id WHERE m.name=? AND r.pipeline=?)", "tt", m, p);
	db_unlock(f->db);
	return c > 0;
}

/* Append v in its shortest round-trip form. */
static void fmt_num(struct strbuf *sb, double v)
{
	char buf[UTIL_DOUBLE_LEN];
	strbuf_puts(sb, util_fmt_double(buf, v));
}

static char *render_metric(struct flowy *f, const char *p, const char *m)
{
	struct strbuf sb = {0};
	strbuf_puts(&sb, "run\tstep\tvalue\ttime\n");
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db,
		"SELECT m.run_id, m.step, m.value, m.time FROM metrics m "
		"JOIN runs r ON r.id = m.run_id WHERE r.pipeline=? AND m.name=? AND "
		"m.idx = (SELECT max(idx) FROM metrics x WHERE x.run_id=m.run_id AND "
		"x.step=m.step AND x.name=m.name) ORDER BY m.run_id, m.step", "tt", p, m);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		strbuf_printf(&sb, "%lld\t%s\t", (long long)sqlite3_column_int64(st, 0),
		              sqlite3_column_text(st, 1));
		fmt_num(&sb, sqlite3_column_double(st, 2));
		strbuf_puts(&sb, "\t");
		view_fmt_time(&sb, sqlite3_column_double(st, 3));
		strbuf_puts(&sb, "\n");
	}
	db_finish(f->db, st);
	db_unlock(f->db);
	return strbuf_detach(&sb, NULL);
}

struct names {
	char **v;
	size_t n;
};

static void names_add(struct names *ns, const char *s)
{
	for (size_t i = 0; i < ns->n; i++)
		if (!strcmp(ns->v[i], s))
			return;
	ns->v = xrealloc(ns->v, (ns->n + 1) * sizeof *ns->v);
	ns->v[ns->n++] = xstrdup(s);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
}

static size_t names_index(const struct names *ns, const char *s)
{
	char *const *hit = bsearch(&s, ns->v, ns->n, sizeof *ns->v, cmp_str);
	return hit ? (size_t)(hit - ns->v) : (size_t)-1;
}

struct run_row {
	int64_t id;
	char *status;
	double started, finished, paused;
	int has_started, has_finished;
	char *params_text;   /* as stored; rows with equal text share cells */
	char commit[13];     /* the pipeline snapshot's commit, short, or "" */
	char *tags;          /* runs/<id>/tags, comma-separated */
	char (*in)[13];      /* per external input: its content hash, short */
	cJSON *params;
	double *last;        /* per metric */
	unsigned char *has;  /* per metric */
};

/* The row of run id in rows (sorted by id), or nrows. */
static size_t row_of(const struct run_row *rows, size_t nrows, int64_t id)
{
	size_t lo = 0, hi = nrows;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (rows[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < nrows && rows[lo].id == id ? lo : nrows;
}

/* runs.tsv of pipeline p: the newest limit runs (all: -1) below run
 * before; *live says a row shows a run still going (its duration runs
 * with the clock, so the text is not kept). */
static char *render_runs_tsv(struct flowy *f, const char *p, int64_t before, int64_t limit,
                             int *live)
{
	struct names params = {0}, metrics = {0};
	struct run_row *rows = NULL;
	size_t nrows = 0, caprows = 0;
	db_lock(f->db);
	/* The newest limit runs below before (all: -1), oldest first. */
	sqlite3_stmt *st = db_prepare(f->db, "SELECT * FROM (SELECT id, status, started, "
	                              "finished, params, paused, commit_id, tags FROM runs "
	                              "WHERE pipeline=? AND id<? ORDER BY id DESC LIMIT ?) "
	                              "ORDER BY id", "tii", p, before, limit);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		if (nrows == caprows) {
			caprows = caprows ? caprows * 2 : 256;
			rows = xrealloc(rows, caprows * sizeof *rows);
		}
		struct run_row *r = &rows[nrows++];
		memset(r, 0, sizeof *r);
		r->id = sqlite3_column_int64(st, 0);
		r->status = xstrdup((const char *)sqlite3_column_text(st, 1));
		r->has_started = sqlite3_column_type(st, 2) != SQLITE_NULL;
		r->started = sqlite3_column_double(st, 2);
		r->has_finished = sqlite3_column_type(st, 3) != SQLITE_NULL;
		r->finished = sqlite3_column_double(st, 3);
		if (r->has_started && !r->has_finished)
			*live = 1;
		r->paused = sqlite3_column_double(st, 5);
		const unsigned char *cm = sqlite3_column_text(st, 6);
		snprintf(r->commit, sizeof r->commit, "%s", cm ? (const char *)cm : "");
		const unsigned char *tg = sqlite3_column_text(st, 7);
		r->tags = xstrdup(tg ? (const char *)tg : "");
		size_t tn = strlen(r->tags);
		if (tn && r->tags[tn - 1] == '\n')
			r->tags[tn - 1] = '\0';
		for (char *c = r->tags; *c; c++)
			if (*c == '\n')
				*c = ',';
		const unsigned char *pj = sqlite3_column_text(st, 4);
		r->params_text = xstrdup(pj ? (const char *)pj : "");
		r->params = nrows > 1 && !strcmp(rows[nrows - 2].params_text, r->params_text) ?
		            NULL : cJSON_Parse(r->params_text);
		for (cJSON *c = r->params ? r->params->child : NULL; c; c = c->next)
			names_add(&params, c->string);
	}
	db_finish(f->db, st);
	/* The rows' ids span lo..hi: the queries below read no other runs. */
	int64_t lo = nrows ? rows[0].id : 0, hi = nrows ? rows[nrows - 1].id : -1;
	/* One pass over the metrics of these runs, in whatever order SQLite
	 * finds them: keep the latest value per run and name. */
	struct mval { size_t row, name; double value, time; } *vals = NULL;
	size_t nvals = 0, capvals = 0, hint = 0;
	/* Keyed by "<step>\t<name>": a name two steps log gets a column each. */
	st = db_prepare(f->db, "SELECT m.run_id, m.step || char(9) || m.name, m.value, "
	                "m.time FROM metrics m JOIN runs r ON r.id=m.run_id WHERE "
	                "r.pipeline=? AND m.run_id BETWEEN ? AND ?", "tii", p, lo, hi);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		size_t lo = row_of(rows, nrows, id);
		if (lo == nrows)
			continue;
		const char *name = (const char *)sqlite3_column_text(st, 1);
		if (hint >= metrics.n || strcmp(metrics.v[hint], name)) {
			names_add(&metrics, name);
			for (hint = 0; strcmp(metrics.v[hint], name); hint++)
				;
		}
		if (nvals == capvals) {
			capvals = capvals ? capvals * 2 : 256;
			vals = xrealloc(vals, capvals * sizeof *vals);
		}
		vals[nvals++] = (struct mval){lo, hint, sqlite3_column_double(st, 2),
		                              sqlite3_column_double(st, 3)};
	}
	db_finish(f->db, st);
	/* External inputs (file:, other/name, sha256:) of each run, by ref. */
	struct names inputs = {0};
	struct ival { size_t row; char *ref; char hex[13]; } *ivals = NULL;
	size_t nivals = 0;
	st = db_prepare(f->db, "SELECT DISTINCT io.run_id, io.ref, io.hash FROM step_io io "
	                "JOIN runs r ON r.id=io.run_id WHERE r.pipeline=? AND io.dir='in' "
	                "AND io.run_id BETWEEN ? AND ? AND (instr(io.ref, ':') > 0 OR "
	                "instr(io.ref, '/') > 0)", "tii", p, lo, hi);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		size_t lo = row_of(rows, nrows, id);
		if (lo == nrows)
			continue;
		const char *ref = (const char *)sqlite3_column_text(st, 1);
		names_add(&inputs, ref);
		ivals = xrealloc(ivals, (nivals + 1) * sizeof *ivals);
		ivals[nivals].row = lo;
		ivals[nivals].ref = xstrdup(ref);
		snprintf(ivals[nivals++].hex, 13, "%s", (const char *)sqlite3_column_text(st, 2));
	}
	db_finish(f->db, st);
	db_unlock(f->db);
	if (inputs.n)
		qsort(inputs.v, inputs.n, sizeof *inputs.v, cmp_str);
	for (size_t i = 0; i < nrows; i++)
		rows[i].in = xcalloc(inputs.n + 1, sizeof *rows[i].in);
	for (size_t v = 0; v < nivals; v++) {
		memcpy(rows[ivals[v].row].in[names_index(&inputs, ivals[v].ref)], ivals[v].hex, 13);
		free(ivals[v].ref);
	}
	free(ivals);

	/* A metric's column is metrics.<name>, or metrics.<step>.<name> when
	 * two steps log that name; columns in that name's order. */
	char **disp = xcalloc(metrics.n + 1, sizeof *disp);
	for (size_t k = 0; k < metrics.n; k++) {
		const char *tab = strchr(metrics.v[k], '\t'), *name = tab + 1;
		int clash = 0;
		for (size_t j = 0; j < metrics.n && !clash; j++)
			clash = j != k && !strcmp(strchr(metrics.v[j], '\t') + 1, name);
		disp[k] = clash ? xasprintf("%.*s.%s", (int)(tab - metrics.v[k]), metrics.v[k],
		                            name) : xstrdup(name);
	}
	struct names shown = {0};
	for (size_t k = 0; k < metrics.n; k++)
		names_add(&shown, disp[k]);
	if (shown.n)
		qsort(shown.v, shown.n, sizeof *shown.v, cmp_str);
	size_t *col = xcalloc(metrics.n + 1, sizeof *col);
	for (size_t k = 0; k < metrics.n; k++) {
		col[k] = names_index(&shown, disp[k]);
		free(disp[k]);
	}
	free(disp);
	names_free(&metrics);
	metrics = shown;
	if (params.n)
		qsort(params.v, params.n, sizeof *params.v, cmp_str);
	double *at = xcalloc(nrows * (metrics.n + 1) + 1, sizeof *at);
	for (size_t i = 0; i < nrows; i++) {
		rows[i].last = xcalloc(metrics.n + 1, sizeof *rows[i].last);
		rows[i].has = xcalloc(metrics.n + 1, 1);
	}
	for (size_t v = 0; v < nvals; v++) {
		struct run_row *r = &rows[vals[v].row];
		size_t k = col[vals[v].name];
		double *t = &at[vals[v].row * (metrics.n + 1) + k];
		if (!r->has[k] || vals[v].time >= *t) {
			r->last[k] = vals[v].value;
			r->has[k] = 1;
			*t = vals[v].time;
		}
	}
	free(at);
	free(col);
	free(vals);

	struct strbuf sb = {0}, cells = {0};
	strbuf_puts(&sb, "run\tstatus\tstarted\tduration");
	for (size_t i = 0; i < params.n; i++)
		strbuf_printf(&sb, "\tparams.%s", params.v[i]);
	for (size_t i = 0; i < metrics.n; i++)
		strbuf_printf(&sb, "\tmetrics.%s", metrics.v[i]);
	for (size_t i = 0; i < inputs.n; i++)
		strbuf_printf(&sb, "\tinput.%s", inputs.v[i]);
	strbuf_puts(&sb, "\tcommit\ttags\n");
	for (size_t i = 0; i < nrows; i++) {
		struct run_row *r = &rows[i];
		fmt_num(&sb, (double)r->id);
		strbuf_puts(&sb, "\t");
		strbuf_puts(&sb, r->status);
		strbuf_puts(&sb, "\t");
		if (r->has_started)
			view_fmt_time(&sb, r->started);
		strbuf_puts(&sb, "\t");
		if (r->has_started)
			view_fmt_secs(&sb, (r->has_finished ? r->finished : util_now()) - r->started -
			              r->paused);
		if (r->params || !i) { /* else: the same params as the row before */
			strbuf_release(&cells);
			for (size_t k = 0; k < params.n; k++) {
				cJSON *v = cJSON_GetObjectItemCaseSensitive(r->params, params.v[k]);
				strbuf_puts(&cells, "\t");
				if (cJSON_IsString(v)) {
					strbuf_puts(&cells, v->valuestring);
				} else if (cJSON_IsNumber(v)) {
					fmt_num(&cells, v->valuedouble);
				} else if (v) {
					view_json_numbers(v);
					char *t = cJSON_PrintUnformatted(v);
					strbuf_puts(&cells, t);
					free(t);
				}
			}
		}
		strbuf_add(&sb, cells.buf ? cells.buf : "", cells.len);
		for (size_t k = 0; k < metrics.n; k++) {
			strbuf_puts(&sb, "\t");
			if (r->has[k])
				fmt_num(&sb, r->last[k]);
		}
		for (size_t k = 0; k < inputs.n; k++)
			strbuf_printf(&sb, "\t%s", r->in[k]);
		strbuf_printf(&sb, "\t%s\t%s\n", r->commit, r->tags);
		free(r->tags);
		free(r->in);
		free(r->status);
		free(r->params_text);
		cJSON_Delete(r->params);
		free(r->last);
		free(r->has);
	}
	free(rows);
	strbuf_release(&cells);
	names_free(&params);
	names_free(&metrics);
	names_free(&inputs);
	return strbuf_detach(&sb, NULL);
}

char *view_metrics_runs_tsv(struct flowy *f, const char *p, int64_t before, int64_t limit)
{
	int live = 0;
	return render_runs_tsv(f, p, before, limit, &live);
}

/* metrics/<p>/<name> at path: a text kept for this generation of the
 * store, else rendered (and kept, unless it shows a live run; the .svg
 * pictures are never kept). */
static int render(struct flowy *f, const char *path, const char *p, const char *name,
                  char **out)
{
	uint64_t gen;
	if ((*out = view_kept_text(f, path, &gen)))
		return 0;
	if (!strcmp(name, "runs.tsv")) {
		int live = 0;
		*out = render_runs_tsv(f, p, INT64_MAX, -1, &live);
		if (!live)
			view_keep(path, gen, *out);
		return 0;
	}
	if (!metric_exists(f, p, name))
		return pictures_metric(f, p, name, 0, out); /* <m>.svg, or -ENOENT */
	*out = render_metric(f, p, name);
	view_keep(path, gen, *out);
	return 0;
}

static int metrics_getattr(struct flowy *f, const char *path, struct view_attr *a)
{
	char buf[4096], *part[3];
	int n = view_split(path, buf, sizeof buf, part, 3);
	if (n == 1) {
		a->mode = S_IFDIR | 0555;
		return 0;
	}
	if (n > 3 || !pipeline_has_runs(f, part[1]))
		return -ENOENT;
	if (n == 2) {
		a->mode = S_IFDIR | 0555;
		return 0;
	}
	if (view_cached_attr(a, path) || view_kept_attr(f, path, a))
		return 0;
	char *text = NULL;
	int rc = render(f, path, part[1], part[2], &text);
	if (rc < 0)
		return rc;
	view_generated_attr(a, path, text);
	return 0;
}

static int metrics_readdir(struct flowy *f, const char *path, struct dirlist *l)
{
	char buf[4096], *part[3];
	int n = view_split(path, buf, sizeof buf, part, 3);
	if (n > 2)
		return -ENOTDIR;
	if (n == 2)
		dirlist_add(l, "runs.tsv", S_IFREG);
	l->kept = 1; /* the database's alone */
	db_lock(f->db);
	/* Distinct names by skipping through the index from one to the next
	 * (a few lookups per name, not a pass over every run or value). */
	sqlite3_stmt *st = n == 1 ?
		db_prepare(f->db, "WITH RECURSIVE p(name) AS (SELECT min(pipeline) FROM runs "
		           "UNION ALL SELECT (SELECT min(pipeline) FROM runs WHERE pipeline > "
		           "p.name) FROM p WHERE p.name IS NOT NULL) SELECT name FROM p WHERE "
		           "name IS NOT NULL", "") :
		db_prepare(f->db, "WITH RECURSIVE n(name) AS (SELECT min(name) FROM metrics "
		           "UNION ALL SELECT (SELECT min(name) FROM metrics WHERE name > n.name) "
		           "FROM n WHERE n.name IS NOT NULL) SELECT name FROM n WHERE name IS "
		           "NOT NULL AND EXISTS(SELECT 1 FROM metrics m JOIN runs r ON "
		           "r.id=m.run_id WHERE m.name=n.name AND r.pipeline=?)", "t", part[1]);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		dirlist_add(l, (const char *)sqlite3_column_text(st, 0),
		            n == 1 ? S_IFDIR : S_IFREG);
		if (n == 2) /* and its plot */
			pictures_list_svg(l, (const char *)sqlite3_column_text(st, 0));
	}
	db_finish(f->db, st);
	db_unlock(f->db);
	return 0;
}

static int metrics_open(struct flowy *f, const char *path, int flags, struct fh *h)
{
	if ((flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	char buf[4096], *part[3];
	int n = view_split(path, buf, sizeof buf, part, 3);
	if (n != 3)
		return n < 3 ? -EISDIR : -ENOENT;
	/* A kept text is of this very generation: better than the lookup's. */
	uint64_t gen;
	char *text = view_kept_text(f, path, &gen);
	if (!text)
		text = view_cache_take(path);
	int rc = text ? 0 : render(f, path, part[1], part[2], &text);
	if (rc < 0)
		return rc;
	view_text_fh(h, text);
	return 0;
}

const struct view view_metrics = {
	.name = "metrics",
	.getattr = metrics_getattr,
	.readdir = metrics_readdir,
	.open = metrics_open,
};
