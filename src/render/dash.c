/*
 * render/dash.c - the pages of the --http dashboard (the URL map is in
 * dash.h). Every page is built from the tree: files read through the
 * views (page_read), directory lists from the views' readdir, and the
 * same renderers as the mounted files (pictures, report). Nothing reads
 * the host filesystem, so no URL can reach outside the tree; /file/ is
 * limited further to generated files (no pipeline code, no artifacts).
 *
 * Live pages long-poll: the page's script asks for its own path with
 * ?live=<version>, and the request waits, re-rendering the live part every
 * quarter second, until it differs from that version.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flowyfs/catalog.h"
#include "flowyfs/dash.h"
#include "flowyfs/page.h"
#include "flowyfs/report.h"
#include "flowyfs/svg.h"
#include "flowyfs/util.h"
#include "flowyfs/view.h"

/* Largest file /file/ serves (the first bytes of a longer one). */
#define FILE_MAX (16u << 20)

/* The scripts of the dashboard (the report has none): follow the live
 * part, and sort a table by the column clicked. */
static const char script[] =
	"<script>\n"
	"(function(){\n"
	"var live=document.getElementById('live');\n"
	"if(live){var v=live.getAttribute('data-version');\n"
	"function next(){fetch(location.pathname+'?live='+encodeURIComponent(v),"
	"{cache:'no-store'}).then(function(r){if(!r.ok)throw r.status;"
	"var nv=r.headers.get('X-Version');return r.text().then(function(t){"
	"if(nv&&nv!==v){v=nv;live.innerHTML=t;live.setAttribute('data-version',v);}"
	"});}).then(next,function(){setTimeout(next,2000);});}\n"
	"next();}\n"
	"document.querySelectorAll('table.sortable').forEach(function(t){\n"
	"t.querySelectorAll('th').forEach(function(th,i){th.classList.add('sortable');"
	"th.addEventListener('click',function(){\n"
	"var asc=th.getAttribute('data-sort')!=='asc';"
	"t.querySelectorAll('th').forEach(function(o){o.removeAttribute('data-sort');});"
	"th.setAttribute('data-sort',asc?'asc':'desc');\n"
	"var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows);\n"
	"rows.sort(function(x,y){var a=x.cells[i].textContent,c=y.cells[i].textContent;"
	"var na=parseFloat(a),nc=parseFloat(c);var r;"
	"if(a===''&&c!=='')r=1;else if(c===''&&a!=='')r=-1;"
	"else if(!isNaN(na)&&!isNaN(nc)&&isFinite(a)&&isFinite(c))r=(na-nc)*(asc?1:-1);"
	"else r=a.localeCompare(c)*(asc?1:-1);return r;});\n"
	"rows.forEach(function(r){b.appendChild(r);});});});});\n"
	"})();\n"
	"</script>\n";

/* ---- small pieces --------------------------------------------------------- */

/* Append s percent-encoded for a URL path component. */
static void url_comp(struct strbuf *sb, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			strbuf_add(sb, p, 1);
		} else {
			char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			strbuf_add(sb, e, 3);
		}
	}
}

/* <a href="PREFIX<s encoded>">TEXT</a>, text escaped. */
static void link(struct strbuf *sb, const char *prefix, const char *s, const char *text)
{
	strbuf_puts(sb, "<a href=\"");
	strbuf_puts(sb, prefix);
	url_comp(sb, s);
	strbuf_puts(sb, "\">");
	svg_escape(sb, text);
	strbuf_puts(sb, "</a>");
}

static void run_link(struct strbuf *sb, long long id)
{
	char num[32];
	snprintf(num, sizeof num, "%lld", id);
	link(sb, "/run/", num, num);
}

static void version_of(const char *s, size_t n, char out[17])
{
	unsigned long long h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	snprintf(out, 17, "%016llx", h);
}

static const char *col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : "";
}

/* A table of runs from st (id, pipeline, status, started, finished). */
static void runs_table(struct strbuf *sb, sqlite3_stmt *st, const char *id)
{
	strbuf_printf(sb, "<table class=\"runs\" id=\"%s\"><thead><tr><th>run</th>"
	              "<th>pipeline</th><th>status</th><th>started</th><th>duration (s)</th>"
	              "</tr></thead><tbody>\n", id);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		strbuf_printf(sb, "<tr data-run=\"%lld\"><td>",
		              (long long)sqlite3_column_int64(st, 0));
		run_link(sb, (long long)sqlite3_column_int64(st, 0));
		strbuf_puts(sb, "</td><td>");
		link(sb, "/pipeline/", col(st, 1), col(st, 1));
		strbuf_puts(sb, "</td><td class=\"status\">");
		page_status(sb, col(st, 2));
		strbuf_puts(sb, "</td><td>");
		if (sqlite3_column_type(st, 3) != SQLITE_NULL)
			view_fmt_time(sb, sqlite3_column_double(st, 3));
		strbuf_puts(sb, "</td><td>");
		if (sqlite3_column_type(st, 3) != SQLITE_NULL)
			view_fmt_secs(sb, (sqlite3_column_type(st, 4) == SQLITE_NULL ? util_now() :
			              sqlite3_column_double(st, 4)) - sqlite3_column_double(st, 3));
		strbuf_puts(sb, "</td></tr>\n");
	}
	strbuf_puts(sb, "</tbody></table>\n");
}

/* ---- the live parts ----------------------------------------------------- */

/* /: every pipeline with its status, and the newest runs. */
static int live_home(struct flowy *f, const char *arg, struct strbuf *sb)
{
	struct dirlist l = {0};
	int rc = view_pipelines.readdir(f, "pipelines", &l);
	if (rc < 0)
		return rc;
	strbuf_puts(sb, "<h2>Pipelines</h2>\n<table class=\"pipelines\" id=\"pipelines\">"
	            "<thead><tr><th>pipeline</th><th>definition</th><th>last run</th>"
	            "<th>pictures</th></tr></thead><tbody>\n");
	for (size_t i = 0; i < l.n; i++) {
		const char *p = l.e[i].name;
		if (!S_ISDIR(l.e[i].mode) || !catalog_is_pipeline(p))
			continue;
		char *path = xasprintf("pipelines/%s/.status", p), *status = NULL;
		if (page_read(f, path, 65536, 0, &status, NULL) < 0)
			status = xstrdup("");
		free(path);
		strbuf_puts(sb, "<tr data-pipeline=\"");
		svg_escape(sb, p);
		strbuf_puts(sb, "\"><td>");
		link(sb, "/pipeline/", p, p);
		strbuf_puts(sb, "</td><td>");
		page_status(sb, !strncmp(status, "valid\n", 6) ? "valid" : "invalid");
		strbuf_puts(sb, "</td><td class=\"last\">");
		const char *last = strstr(status, "last run: ");
		long long id = 0;
		char st[32] = "";
		if (last && sscanf(last, "last run: %lld %31s", &id, st) == 2) {
			run_link(sb, id);
			strbuf_puts(sb, " ");
			page_status(sb, st);
		} else {
			strbuf_puts(sb, "none");
		}
		strbuf_puts(sb, "</td><td>");
		link(sb, "/metrics/", p, "metrics");
		strbuf_puts(sb, " ");
		link(sb, "/compare/", p, "compare");
		strbuf_puts(sb, "</td></tr>\n");
		free(status);
	}
	strbuf_puts(sb, "</tbody></table>\n<h2>Recent runs</h2>\n");
	dirlist_free(&l);
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db, "SELECT id, pipeline, status, started, finished "
	                              "FROM runs ORDER BY id DESC LIMIT 25", "");
	runs_table(sb, st, "recent");
	db_finish(f->db, st);
	db_unlock(f->db);
	return 0;
}

/* <h1>TITLE P</h1> and links to P's other pages (metrics too when set). */
static void heading(struct strbuf *sb, const char *title, const char *p, int metrics)
{
	strbuf_puts(sb, "<h1>");
	strbuf_puts(sb, title);
	svg_escape(sb, p);
	strbuf_puts(sb, "</h1>\n<p>");
	if (metrics) {
		link(sb, "/metrics/", p, "metrics");
		strbuf_puts(sb, " · ");
	}
	link(sb, "/compare/", p, "compare runs");
	strbuf_puts(sb, "</p>\n");
}

/* /pipeline/<p>: its DAG and runs. */
static int live_pipeline(struct flowy *f, const char *p, struct strbuf *sb)
{
	if (!catalog_is_pipeline(p))
		return -ENOENT;
	char *path = xasprintf("pipelines/%s/.status", p), *text = NULL;
	int rc = page_read(f, path, 65536, 0, &text, NULL);
	free(path);
	if (rc < 0)
		return rc;
	heading(sb, "Pipeline ", p, 1);
	strbuf_puts(sb, "<pre class=\"status\">");
	svg_escape(sb, text);
	strbuf_puts(sb, "</pre>\n<h2>Graph</h2>\n<div class=\"pic\" id=\"dag\">");
	free(text);
	path = xasprintf("pipelines/%s/.dag.svg", p);
	if (page_read(f, path, 0, 0, &text, NULL) == 0)
		strbuf_puts(sb, svg_inline(text));
	free(text);
	free(path);
	strbuf_puts(sb, "</div>\n<h2>Runs</h2>\n");
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db, "SELECT id, pipeline, status, started, finished "
	                              "FROM runs WHERE pipeline=? ORDER BY id DESC LIMIT 50",
	                              "t", p);
	runs_table(sb, st, "runs");
	db_finish(f->db, st);
	db_unlock(f->db);
	return 0;
}

static int live_run(struct flowy *f, const char *arg, struct strbuf *sb)
{
	char *end;
	long long id = strtoll(arg, &end, 10);
	if (!*arg || *end || id <= 0 || arg[0] == '0')
		return -ENOENT;
	return report_body(f, id, sb);
}

/* /metrics/<p>: the plot of every metric, read through metrics/. */
static int live_metrics(struct flowy *f, const char *p, struct strbuf *sb)
{
	struct dirlist l = {0};
	char *dir = xasprintf("metrics/%s", p);
	struct view_attr a = {0};
	int rc = view_metrics.getattr(f, dir, &a);
	if (!rc)
		rc = view_metrics.readdir(f, dir, &l);
	if (rc < 0) {
		free(dir);
		return rc;
	}
	heading(sb, "Metrics of ", p, 0);
	size_t shown = 0;
	for (size_t i = 0; i < l.n; i++) {
		size_t n = strlen(l.e[i].name);
		if (n < 5 || strcmp(l.e[i].name + n - 4, ".svg"))
			continue;
		char *path = xasprintf("%s/%s", dir, l.e[i].name), *svg = NULL;
		if (page_read(f, path, 0, 0, &svg, NULL) == 0) {
			strbuf_puts(sb, "<div class=\"pic metric\">");
			strbuf_puts(sb, svg_inline(svg));
			strbuf_puts(sb, "</div>\n");
			shown++;
		}
		free(svg);
		free(path);
	}
	if (!shown)
		strbuf_puts(sb, "<p>no metrics reported yet</p>\n");
	dirlist_free(&l);
	free(dir);
	return 0;
}

typedef int (*live_fn)(struct flowy *f, const char *arg, struct strbuf *sb);

/* ---- the comparison table ------------------------------------------------ */

/* Is a smaller value of metric name the better one? */
static int lower_is_better(const char *name)
{
	static const char *const low[] = {"loss", "err", "mse", "mae", "rmse", "time",
	                                  "latency", "duration", "perplexity", NULL};
	for (const char *const *w = low; *w; w++)
		if (strstr(name, *w))
			return 1;
	return 0;
}

struct tsv {
	char *text;
	char ***cell;   /* rows of columns, pointing into text */
	size_t rows, cols;
};

/* Split text (taken over) into rows of cells; the header row fixes the
 * number of columns (a row's extra cells are dropped, missing ones ""). */
static void tsv_parse(struct tsv *t, char *text)
{
	size_t cap = 0;
	t->text = text;
	t->cols = 1;
	for (const char *c = text; *c && *c != '\n'; c++)
		t->cols += *c == '\t';
	for (char *l = text; *l;) {
		char *nl = strchr(l, '\n');
		if (nl)
			*nl = '\0';
		GROW(t->cell, cap, t->rows);
		char **row = xcalloc(t->cols, sizeof *row);
		size_t n = 0;
		for (char *c = l; c && n < t->cols; n++) {
			row[n] = c;
			c = strchr(c, '\t');
			if (c)
				*c++ = '\0';
		}
		for (; n < t->cols; n++)
			row[n] = "";
		t->cell[t->rows++] = row;
		l = nl ? nl + 1 : l + strlen(l);
	}
}

static void tsv_free(struct tsv *t)
{
	for (size_t i = 0; i < t->rows; i++)
		free(t->cell[i]);
	free(t->cell);
	free(t->text);
}

/* Which runs a comparison page shows, and the link to the ones before. */
static void compare_range(struct flowy *f, const char *p, const struct tsv *t,
                          struct strbuf *sb)
{
	long long first = strtoll(t->cell[1][0], NULL, 10);
	long long last = strtoll(t->cell[t->rows - 1][0], NULL, 10);
	db_lock(f->db);
	int64_t all = db_int(f->db, 0, "SELECT count(*) FROM runs WHERE pipeline=?", "t", p);
	int64_t older = db_int(f->db, 0, "SELECT count(*) FROM runs WHERE pipeline=? AND id<?",
	                       "ti", p, (int64_t)first);
	db_unlock(f->db);
	strbuf_printf(sb, "<p class=\"range\" id=\"range\">Runs %lld to %lld: %zu of %lld",
	              first, last, t->rows - 1, (long long)all);
	if (older > 0) {
		strbuf_puts(sb, " · <a id=\"older\" href=\"/compare/");
		url_comp(sb, p);
		strbuf_printf(sb, "?before=%lld\">the %lld before</a>", first,
		              (long long)(older < DASH_COMPARE_ROWS ? older : DASH_COMPARE_ROWS));
	}
	if (all - older > (int64_t)(t->rows - 1)) {
		strbuf_puts(sb, " · ");
		link(sb, "/compare/", p, "the newest");
	}
	strbuf_puts(sb, "</p>\n");
}

/* /compare/<p>: the newest DASH_COMPARE_ROWS runs below before (0: all). */
static int page_compare(struct flowy *f, const char *p, int64_t before, struct strbuf *sb)
{
	struct view_attr a = {0};
	char *path = xasprintf("metrics/%s", p);
	int rc = view_metrics.getattr(f, path, &a); /* -ENOENT: no runs */
	free(path);
	if (rc < 0)
		return rc;
	struct tsv t = {0};
	tsv_parse(&t, view_metrics_runs_tsv(f, p, before > 0 ? before : INT64_MAX,
	                                    DASH_COMPARE_ROWS));
	if (t.rows < 2) {
		tsv_free(&t);
		return -ENOENT;
	}
	strbuf_puts(sb, "<h1>Runs of ");
	svg_escape(sb, p);
	strbuf_puts(sb, "</h1>\n");
	compare_range(f, p, &t, sb);
	strbuf_puts(sb, "<p>Click a column to sort by it; the best value of each "
	            "metric among these runs is marked.</p>\n"
	            "<table class=\"sortable compare\" id=\"compare\"><thead><tr>");
	size_t *best = xcalloc(t.cols + 1, sizeof *best);
	for (size_t c = 0; c < t.cols; c++) {
		const char *name = t.cell[0][c];
		strbuf_printf(sb, "<th data-col=\"%zu\">", c);
		svg_escape(sb, name);
		strbuf_puts(sb, "</th>");
		if (strncmp(name, "metrics.", 8))
			continue;
		int low = lower_is_better(name + 8);
		double bv = 0;
		for (size_t r = 1; r < t.rows; r++) {
			char *e;
			double v = strtod(t.cell[r][c], &e);
			if (!*t.cell[r][c] || *e)
				continue;
			if (!best[c] || (low ? v < bv : v > bv)) {
				best[c] = r;
				bv = v;
			}
		}
	}
	strbuf_puts(sb, "</tr></thead>\n<tbody>\n");
	for (size_t r = 1; r < t.rows; r++) {
		strbuf_puts(sb, "<tr>");
		for (size_t c = 0; c < t.cols; c++) {
			strbuf_puts(sb, best[c] == r ? "<td class=\"best\">" : "<td>");
			if (c == 0 && *t.cell[r][0])
				run_link(sb, strtoll(t.cell[r][0], NULL, 10));
			else
				svg_escape(sb, t.cell[r][c]);
			strbuf_puts(sb, "</td>");
		}
		strbuf_puts(sb, "</tr>\n");
	}
	strbuf_puts(sb, "</tbody></table>\n");
	free(best);
	tsv_free(&t);
	return 0;
}

/* ---- files --------------------------------------------------------------- */

/* May /file/ show path? Generated files only: runs/ (not snapshots),
 * metrics/, lineage/, and a pipeline's generated dot-files. Components
 * are never empty, "." or "..", nor hold control characters. */
static int file_allowed(const char *path)
{
	static const char *const gen[] = {".dag", ".dag.dot", ".dag.svg", ".status", NULL};
	char buf[4096], *part[8];
	for (const unsigned char *c = (const unsigned char *)path; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return 0;
	size_t len = strlen(path);
	if (!len || len >= sizeof buf || path[0] == '/' || path[len - 1] == '/' ||
	    strstr(path, "//"))
		return 0;
	int n = view_split(path, buf, sizeof buf, part, 8);
	if (n < 2 || n > 7)
		return 0;
	for (int i = 0; i < n; i++)
		if (!strcmp(part[i], ".") || !strcmp(part[i], ".."))
			return 0;
	if (!strcmp(part[0], "runs"))
		return n < 3 || strcmp(part[2], "snapshot");
	if (!strcmp(part[0], "metrics") || !strcmp(part[0], "lineage"))
		return 1;
	if (!strcmp(part[0], "pipelines") && n == 3)
		for (const char *const *g = gen; *g; g++)
			if (!strcmp(part[2], *g))
				return 1;
	return 0;
}

static const char *file_type(const char *path)
{
	size_t n = strlen(path);
	if (n > 4 && !strcmp(path + n - 4, ".svg"))
		return "image/svg+xml";
	if (n > 5 && !strcmp(path + n - 5, ".html"))
		return "text/html; charset=utf-8";
	if (n > 5 && !strcmp(path + n - 5, ".json"))
		return "application/json";
	return "text/plain; charset=utf-8";
}

/* ---- the frame ------------------------------------------------------------ */

static void nav(struct strbuf *sb)
{
	strbuf_puts(sb, "<header><b>flowyfs</b><a href=\"/\">pipelines and runs</a></header>\n"
	            "<main>\n");
}

static void error_page(struct dash_reply *out, int rc)
{
	struct strbuf sb = {0};
	out->status = rc == -ENOENT || rc == -ENOTDIR || rc == -EISDIR ? 404 :
	              rc == -EACCES || rc == -EPERM ? 403 : 500;
	page_begin(&sb, out->status == 404 ? "not found" : "error", NULL);
	nav(&sb);
	strbuf_printf(&sb, "<h1>%s</h1>\n<p>%s</p>\n</main>\n",
	              out->status == 404 ? "Not found" : out->status == 403 ? "Forbidden" :
	              "Error", strerror(-rc));
	page_end(&sb);
	out->type = "text/html; charset=utf-8";
	out->body = strbuf_detach(&sb, &out->len);
}

static void reply_text(struct dash_reply *out, int status, const char *type, char *text,
                       size_t len)
{
	out->status = status;
	out->type = type;
	out->body = text;
	out->len = len;
}

/* A live page, or with live set, its live part once it differs. */
static void serve_live(struct flowy *f, live_fn fn, const char *arg, const char *title,
                       const char *live, const int *stop, struct dash_reply *out)
{
	struct strbuf part = {0};
	int rc = fn(f, arg, &part);
	if (rc < 0) {
		strbuf_release(&part);
		error_page(out, rc);
		return;
	}
	version_of(part.buf, part.len, out->version);
	/* Wait, rendering anew, while the caller already has this version. */
	double until = util_now() + DASH_WAIT;
	while (live && !strcmp(live, out->version) && util_now() < until &&
	       !__atomic_load_n(stop, __ATOMIC_RELAXED)) {
		struct timespec ts = {0, 250 * 1000 * 1000};
		nanosleep(&ts, NULL);
		strbuf_release(&part);
		if ((rc = fn(f, arg, &part)) < 0) {
			strbuf_release(&part);
			error_page(out, rc);
			return;
		}
		version_of(part.buf, part.len, out->version);
	}
	if (live) {
		reply_text(out, 200, "text/html; charset=utf-8", NULL, 0);
		out->body = strbuf_detach(&part, &out->len);
		return;
	}
	struct strbuf sb = {0};
	page_begin(&sb, title, NULL);
	nav(&sb);
	strbuf_printf(&sb, "<div id=\"live\" data-version=\"%s\">\n", out->version);
	strbuf_add(&sb, part.buf, part.len);
	strbuf_puts(&sb, "</div>\n</main>\n");
	strbuf_puts(&sb, script);
	page_end(&sb);
	strbuf_release(&part);
	reply_text(out, 200, "text/html; charset=utf-8", NULL, 0);
	out->body = strbuf_detach(&sb, &out->len);
}

/* url is "/<prefix><arg>": arg (one path component) or NULL. */
static const char *arg_of(const char *url, const char *prefix)
{
	size_t n = strlen(prefix);
	if (strncmp(url, prefix, n) || !url[n] || strchr(url + n, '/'))
		return NULL;
	return url + n;
}

void dash_handle(struct flowy *f, const char *url, const char *live, const char *before,
                 const int *stop, struct dash_reply *out)
{
	const char *arg;
	char title[512];
	memset(out, 0, sizeof *out);
	if (!strcmp(url, "/")) {
		serve_live(f, live_home, "", "flowyfs", live, stop, out);
	} else if ((arg = arg_of(url, "/run/"))) {
		snprintf(title, sizeof title, "run %s", arg);
		serve_live(f, live_run, arg, title, live, stop, out);
	} else if ((arg = arg_of(url, "/pipeline/"))) {
		snprintf(title, sizeof title, "pipeline %s", arg);
		serve_live(f, live_pipeline, arg, title, live, stop, out);
	} else if ((arg = arg_of(url, "/metrics/")) && catalog_is_pipeline(arg)) {
		snprintf(title, sizeof title, "metrics of %s", arg);
		serve_live(f, live_metrics, arg, title, live, stop, out);
	} else if ((arg = arg_of(url, "/compare/")) && catalog_is_pipeline(arg)) {
		struct strbuf sb = {0};
		snprintf(title, sizeof title, "runs of %s", arg);
		page_begin(&sb, title, NULL);
		nav(&sb);
		char *end = NULL;
		long long b = before ? strtoll(before, &end, 10) : 0;
		int rc = before && (!*before || *end || b <= 0) ? -ENOENT :
		         page_compare(f, arg, b, &sb);
		if (rc < 0) {
			strbuf_release(&sb);
			error_page(out, rc);
			return;
		}
		strbuf_puts(&sb, "</main>\n");
		strbuf_puts(&sb, script);
		page_end(&sb);
		reply_text(out, 200, "text/html; charset=utf-8", NULL, 0);
		out->body = strbuf_detach(&sb, &out->len);
	} else if (!strncmp(url, "/file/", 6)) {
		char *text = NULL;
		size_t len = 0;
		int rc = file_allowed(url + 6) ? page_read(f, url + 6, FILE_MAX, 0, &text, &len)
		         : -EACCES;
		if (rc < 0)
			error_page(out, rc);
		else
			reply_text(out, 200, file_type(url + 6), text, len);
	} else {
		error_page(out, -ENOENT);
	}
}
