/*
 * render/report.c - runs/<id>/report.html, a page a browser opens from the
 * mount (file://) with nothing to fetch: the stylesheet and every picture
 * are inline, and there is no script.
 *
 * Facts come from SQLite (one lock per section); files that other views
 * already render (the summary, logs, lineage ancestors) are read through
 * those views with page_read, so the page says what the tree says.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "flowyfs/page.h"
#include "flowyfs/pictures.h"
#include "flowyfs/report.h"
#include "flowyfs/svg.h"
#include "flowyfs/util.h"
#include "flowyfs/view.h"

/* Column text or "". */
static const char *col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : "";
}

/* <tr><th>key</th><td>value</td></tr>, escaped. */
static void kv_row(struct strbuf *sb, const char *k, const char *v)
{
	strbuf_puts(sb, "<tr><th>");
	svg_escape(sb, k);
	strbuf_puts(sb, "</th><td>");
	svg_escape(sb, v);
	strbuf_puts(sb, "</td></tr>\n");
}

static void time_row(struct strbuf *sb, const char *k, sqlite3_stmt *st, int i)
{
	struct strbuf t = {0};
	if (sqlite3_column_type(st, i) != SQLITE_NULL)
		view_fmt_time(&t, sqlite3_column_double(st, i));
	kv_row(sb, k, t.buf ? t.buf : "");
	strbuf_release(&t);
}

/* The run's header: status, pipeline, times, error. Lock held. */
static int section_run(struct flowy *f, int64_t id, struct strbuf *sb, char **params)
{
	sqlite3_stmt *st = db_prepare(f->db, "SELECT pipeline, status, started, finished, "
	                              "error, params, trigger FROM runs WHERE id=?", "i", id);
	if (!st || sqlite3_step(st) != SQLITE_ROW) {
		db_finish(f->db, st);
		return -ENOENT;
	}
	strbuf_printf(sb, "<h1>Run %lld of ", (long long)id);
	svg_escape(sb, col(st, 0));
	strbuf_puts(sb, " <span id=\"run-status\">");
	page_status(sb, col(st, 1));
	strbuf_puts(sb, "</span></h1>\n<table class=\"run\">\n");
	kv_row(sb, "pipeline", col(st, 0));
	kv_row(sb, "status", col(st, 1));
	kv_row(sb, "trigger", col(st, 6));
	time_row(sb, "started", st, 2);
	time_row(sb, "finished", st, 3);
	struct strbuf d = {0};
	if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
		double end = sqlite3_column_type(st, 3) == SQLITE_NULL ? util_now()
		             : sqlite3_column_double(st, 3);
		view_fmt_secs(&d, end - sqlite3_column_double(st, 2));
		strbuf_puts(&d, " s");
	}
	kv_row(sb, "duration", d.buf ? d.buf : "");
	strbuf_release(&d);
	if (*col(st, 4)) {
		strbuf_puts(sb, "<tr><th>error</th><td class=\"err\">");
		svg_escape(sb, col(st, 4));
		strbuf_puts(sb, "</td></tr>\n");
	}
	strbuf_puts(sb, "</table>\n");
	*params = xstrdup(col(st, 5));
	db_finish(f->db, st);
	return 0;
}

static void section_params(const char *text, struct strbuf *sb)
{
	cJSON *j = cJSON_Parse(text);
	strbuf_puts(sb, "<h2>Params</h2>\n");
	if (!j || !j->child) {
		strbuf_puts(sb, "<p>none</p>\n");
		cJSON_Delete(j);
		return;
	}
	view_json_numbers(j);
	strbuf_puts(sb, "<table class=\"params\">\n");
	for (cJSON *c = j->child; c; c = c->next) {
		char *v = cJSON_IsString(c) ? NULL : cJSON_PrintUnformatted(c);
		kv_row(sb, c->string ? c->string : "", v ? v : c->valuestring ? c->valuestring : "");
		free(v);
	}
	strbuf_puts(sb, "</table>\n");
	cJSON_Delete(j);
}

static void section_summary(struct flowy *f, int64_t id, struct strbuf *sb)
{
	char *path = xasprintf("runs/%lld/summary", (long long)id), *text = NULL;
	strbuf_puts(sb, "<h2>Steps</h2>\n");
	if (page_read(f, path, 0, 0, &text, NULL) == 0)
		page_tsv_table(sb, text, "summary", "summary");
	free(text);
	free(path);
}

static void section_dag(struct flowy *f, int64_t id, struct strbuf *sb)
{
	char *svg = NULL;
	strbuf_puts(sb, "<h2>Graph</h2>\n<div class=\"pic\" id=\"dag\">");
	if (pictures_run_dag(f, id, &svg) == 0)
		strbuf_puts(sb, svg_inline(svg));
	free(svg);
	strbuf_puts(sb, "</div>\n");
}

struct pair {
	char *a, *b;
};

/* Rows of two text columns. Lock taken here. */
static struct pair *pairs(struct flowy *f, const char *sql, int64_t id, size_t *n)
{
	struct pair *v = NULL;
	size_t cap = 0;
	*n = 0;
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db, sql, "i", id);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		GROW(v, cap, *n);
		v[*n].a = xstrdup(col(st, 0));
		v[(*n)++].b = xstrdup(col(st, 1));
	}
	db_finish(f->db, st);
	db_unlock(f->db);
	return v;
}

static void pairs_free(struct pair *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].a);
		free(v[i].b);
	}
	free(v);
}

static void section_metrics(struct flowy *f, int64_t id, struct strbuf *sb)
{
	size_t n;
	struct pair *m = pairs(f, "SELECT DISTINCT step, name FROM metrics WHERE run_id=? "
	                       "ORDER BY step, name", id, &n);
	strbuf_puts(sb, "<h2>Metrics</h2>\n");
	if (!n)
		strbuf_puts(sb, "<p>none reported</p>\n");
	for (size_t i = 0; i < n; i++) {
		char *file = xasprintf("%s.svg", m[i].b);
		char *svg = pictures_step_metric(f, id, m[i].a, file);
		if (svg) {
			strbuf_puts(sb, "<div class=\"pic metric\">");
			strbuf_puts(sb, svg_inline(svg));
			strbuf_puts(sb, "</div>\n");
		}
		free(svg);
		free(file);
	}
	pairs_free(m, n);
}

static void section_outputs(struct flowy *f, int64_t id, struct strbuf *sb)
{
	struct out {
		char *step, *name, *hash, *kind;
		long long size;
		int has_size;
	} *v = NULL;
	size_t n = 0, cap = 0;
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db, "SELECT io.step, io.name, io.hash, a.size, "
	                              "a.kind FROM step_io io LEFT JOIN artifacts a ON "
	                              "a.hash=io.hash WHERE io.run_id=? AND io.dir='out' "
	                              "ORDER BY io.step, io.name", "i", id);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		GROW(v, cap, n);
		v[n] = (struct out){xstrdup(col(st, 0)), xstrdup(col(st, 1)), xstrdup(col(st, 2)),
		                    xstrdup(col(st, 4)), sqlite3_column_int64(st, 3),
		                    sqlite3_column_type(st, 3) != SQLITE_NULL};
		n++;
	}
	db_finish(f->db, st);
	db_unlock(f->db);
	strbuf_puts(sb, "<h2>Outputs</h2>\n");
	if (!n) {
		strbuf_puts(sb, "<p>none</p>\n");
		free(v);
		return;
	}
	strbuf_puts(sb, "<table class=\"outputs\"><thead><tr><th>step</th><th>output</th>"
	            "<th>kind</th><th>size (bytes)</th><th>sha256</th></tr></thead><tbody>\n");
	for (size_t i = 0; i < n; i++) {
		strbuf_puts(sb, "<tr><td>");
		svg_escape(sb, v[i].step);
		strbuf_puts(sb, "</td><td>");
		svg_escape(sb, v[i].name);
		strbuf_puts(sb, "</td><td>");
		svg_escape(sb, v[i].kind);
		strbuf_puts(sb, "</td><td>");
		if (v[i].has_size)
			strbuf_printf(sb, "%lld", v[i].size);
		strbuf_puts(sb, "</td><td class=\"hash\">");
		svg_escape(sb, v[i].hash);
		strbuf_puts(sb, "</td></tr>\n");
	}
	strbuf_puts(sb, "</tbody></table>\n<h2>Lineage</h2>\n");
	for (size_t i = 0; i < n; i++) {
		char *path = xasprintf("lineage/sha256/%s/ancestors", v[i].hash), *text = NULL;
		strbuf_puts(sb, "<h3>");
		svg_escape(sb, v[i].step);
		strbuf_puts(sb, " / ");
		svg_escape(sb, v[i].name);
		strbuf_puts(sb, "</h3>\n<pre class=\"lineage\">");
		if (page_read(f, path, 65536, 0, &text, NULL) == 0)
			svg_escape(sb, text);
		strbuf_puts(sb, "</pre>\n");
		free(text);
		free(path);
		free(v[i].step);
		free(v[i].name);
		free(v[i].hash);
		free(v[i].kind);
	}
	free(v);
}

/* The last `lines` lines of text (all of it when shorter). */
static const char *last_lines(const char *text, size_t len, int lines)
{
	const char *p = text + len;
	if (p > text && p[-1] == '\n')
		p--;
	while (p > text) {
		if (p[-1] == '\n' && --lines == 0)
			break;
		p--;
	}
	return p;
}

static void section_logs(struct flowy *f, int64_t id, struct strbuf *sb)
{
	size_t n;
	struct pair *s = pairs(f, "SELECT name, coalesce(error, '') FROM steps WHERE "
	                       "run_id=? ORDER BY name", id, &n);
	strbuf_puts(sb, "<h2>Logs</h2>\n");
	for (size_t i = 0; i < n; i++) {
		char *path = xasprintf("runs/%lld/steps/%s/log", (long long)id, s[i].a), *text = NULL;
		size_t len = 0;
		strbuf_puts(sb, "<h3>");
		svg_escape(sb, s[i].a);
		strbuf_puts(sb, "</h3>\n");
		if (*s[i].b) {
			strbuf_puts(sb, "<p class=\"err\">");
			svg_escape(sb, s[i].b);
			strbuf_puts(sb, "</p>\n");
		}
		strbuf_puts(sb, "<pre class=\"log\" data-step=\"");
		svg_escape(sb, s[i].a);
		strbuf_puts(sb, "\">");
		if (page_read(f, path, 16384, 1, &text, &len) == 0)
			svg_escape(sb, last_lines(text, len, REPORT_LOG_LINES));
		strbuf_puts(sb, "</pre>\n");
		free(text);
		free(path);
	}
	pairs_free(s, n);
}

int report_body(struct flowy *f, int64_t id, struct strbuf *sb)
{
	char *params = NULL;
	db_lock(f->db);
	int rc = section_run(f, id, sb, &params);
	db_unlock(f->db);
	if (rc < 0)
		return rc;
	section_params(params, sb);
	free(params);
	section_summary(f, id, sb);
	section_dag(f, id, sb);
	section_metrics(f, id, sb);
	section_outputs(f, id, sb);
	section_logs(f, id, sb);
	return 0;
}

int report_render(struct flowy *f, int64_t id, char **out)
{
	struct strbuf sb = {0};
	char *title = xasprintf("flowyfs run %lld", (long long)id);
	page_begin(&sb, title, NULL);
	free(title);
	strbuf_puts(&sb, "<main>\n");
	int rc = report_body(f, id, &sb);
	if (rc < 0) {
		strbuf_release(&sb);
		return rc;
	}
	strbuf_puts(&sb, "</main>\n");
	page_end(&sb);
	*out = strbuf_detach(&sb, NULL);
	return 0;
}
