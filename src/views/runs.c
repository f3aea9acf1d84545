/*
 * views/runs.c - runs/: one directory per run, rendered from SQLite at
 * open (so a new open always shows the current state of a live run).
 *
 *   runs/latest -> <id>
 *   runs/<id>/{status,pipeline,started,finished,duration,params.json,summary,
 *              run.json,git,env,dag.dot,pipeline.commit,error,dag.svg,
 *              report.html,alerts,wait}  (dag.svg, report.html:
 *              render/pictures.c, report.c)
 *   runs/<id>/wait           a read blocks until the run ends (waits.c)
 *   runs/<id>/{note,tags}    writable: free text / one tag a line (kept in
 *                            the runs table; tags are stored trimmed, one
 *                            a line, without blank lines or repeats)
 *   runs/<id>/snapshot/...   the pipeline files the run used (read-only)
 *   runs/<id>/steps/<s>/{status,log,exit_code,attempts,duration,cached,
 *                        reason,error,job}, inputs/<n>, outputs/<n> (symlinks),
 *                        metrics/<m> (index<TAB>value series), <m>.svg,
 *                        items/<item>/{status,log,...} (foreach steps)
 *
 * Times are ISO 8601 UTC; durations are seconds with millisecond
 * precision; a value not known yet renders as an empty line.
 *
 * `rm -r runs/<id>` deletes a run that ended: removing the files below it
 * is accepted and does nothing (they are generated; the directories are
 * 0755 so that the kernel's permission check lets rm walk them, while
 * creating anything in them is EROFS), and the rmdir of
 * runs/<id> deletes its rows and its directory in the store. While the run
 * is queued, running or paused both fail with EBUSY.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <dirent.h>
#include <unistd.h>

#include <cJSON.h>

#include "flowyfs/alerts.h"
#include "flowyfs/gc.h"
#include "flowyfs/log.h"
#include "flowyfs/pictures.h"
#include "flowyfs/report.h"
#include "flowyfs/util.h"
#include "flowyfs/view.h"
#include "flowyfs/workspace.h"

static void fmt_time(struct strbuf *sb, sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL) {
		strbuf_puts(sb, "\n");
		return;
	}
	view_fmt_time(sb, sqlite3_column_double(st, col));
	strbuf_puts(sb, "\n");
}

/* Duration from columns a (start) and b (end) less the seconds paused
 * (column p, or -1); a live one runs to now. */
static void fmt_duration(struct strbuf *sb, sqlite3_stmt *st, int a, int b, int p)
{
	if (sqlite3_column_type(st, a) == SQLITE_NULL) {
		strbuf_puts(sb, "\n");
		return;
	}
	double end = sqlite3_column_type(st, b) == SQLITE_NULL ? util_now()
	             : sqlite3_column_double(st, b);
	double paused = p >= 0 ? sqlite3_column_double(st, p) : 0;
	view_fmt_secs(sb, end - sqlite3_column_double(st, a) - paused);
	strbuf_puts(sb, "\n");
}

static void fmt_col(struct strbuf *sb, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	strbuf_printf(sb, "%s\n", t ? (const char *)t : "");
}

/* ---- run files -------------------------------------------------------- */

static const char *const run_files[] = {
	"status", "pipeline", "started", "finished", "duration", "params.json",
	"summary", "error", "run.json", "git", "env", "dag.dot", "pipeline.commit",
	"dag.svg", "report.html", "alerts", "wait", NULL,
};

static const char *const note_files[] = {"note", "tags", NULL};

static int note_open(struct flowy *f, const char *path, int flags, struct fh *h);

static cJSON *json_time(sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return cJSON_CreateNull();
	struct strbuf sb = {0};
	view_fmt_time(&sb, sqlite3_column_double(st, col));
	cJSON *j = cJSON_CreateString(sb.buf);
	strbuf_release(&sb);
	return j;
}

static cJSON *json_text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return t ? cJSON_CreateString((const char *)t) : cJSON_CreateNull();
}

static cJSON *json_duration(sqlite3_stmt *st, int a, int b, int p)
{
	if (sqlite3_column_type(st, a) == SQLITE_NULL)
		return cJSON_CreateNull();
	double end = sqlite3_column_type(st, b) == SQLITE_NULL ? util_now()
	             : sqlite3_column_double(st, b);
	double paused = p >= 0 ? sqlite3_column_double(st, p) : 0;
	return cJSON_CreateNumber((double)(long long)((end - sqlite3_column_double(st, a)
	                                               - paused) * 1000) / 1000);
}

/* key<TAB>value lines as a JSON object. */
static cJSON *json_kv(const unsigned char *text)
{
	cJSON *o = cJSON_CreateObject();
	char *copy = xstrdup(text ? (const char *)text : ""), *save = NULL;
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *tab = strchr(l, '\t');
		if (tab) {
			*tab = '\0';
			cJSON_AddStringToObject(o, l, tab + 1);
		}
	}
	free(copy);
	return o;
}

static cJSON *json_parsed(const unsigned char *text)
{
	cJSON *j = text ? cJSON_Parse((const char *)text) : NULL;
	return j ? j : cJSON_CreateObject();
}

/* Everything about a run in one JSON document. Lock held. */
static void render_run_json(struct flowy *f, int64_t id, sqlite3_stmt *run,
                            struct strbuf *sb)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "id", (double)id);
	cJSON_AddItemToObject(o, "pipeline", json_text(run, 1));
	cJSON_AddItemToObject(o, "status", json_text(run, 0));
	cJSON_AddItemToObject(o, "trigger", json_text(run, 11));
	cJSON_AddItemToObject(o, "retry_of", sqlite3_column_type(run, 12) == SQLITE_NULL ?
	                      cJSON_CreateNull() :
	                      cJSON_CreateNumber((double)sqlite3_column_int64(run, 12)));
	cJSON_AddItemToObject(o, "started", json_time(run, 2));
	cJSON_AddItemToObject(o, "finished", json_time(run, 3));
	cJSON_AddItemToObject(o, "duration", json_duration(run, 2, 3, 10));
	cJSON_AddItemToObject(o, "params", json_parsed(sqlite3_column_text(run, 4)));
	cJSON_AddItemToObject(o, "commit", json_text(run, 6));
	cJSON_AddItemToObject(o, "git", json_kv(sqlite3_column_text(run, 7)));
	cJSON_AddItemToObject(o, "env", json_kv(sqlite3_column_text(run, 8)));
	cJSON_AddItemToObject(o, "error", json_text(run, 5));
	cJSON *steps = cJSON_AddArrayToObject(o, "steps");
	sqlite3_stmt *st = db_prepare(f->db, "SELECT name, status, exit_code, attempts, "
	                              "started, finished, cached, reason, error, params, "
	                              "paused FROM steps WHERE run_id=? ORDER BY name", "i",
	                              id);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		cJSON *s = cJSON_CreateObject();
		const char *name = (const char *)sqlite3_column_text(st, 0);
		cJSON_AddStringToObject(s, "name", name);
		cJSON_AddItemToObject(s, "status", json_text(st, 1));
		cJSON_AddItemToObject(s, "exit_code", sqlite3_column_type(st, 2) == SQLITE_NULL ?
		                      cJSON_CreateNull() :
		                      cJSON_CreateNumber(sqlite3_column_int(st, 2)));
		cJSON_AddNumberToObject(s, "attempts", sqlite3_column_int(st, 3));
		cJSON_AddItemToObject(s, "started", json_time(st, 4));
		cJSON_AddItemToObject(s, "finished", json_time(st, 5));
		cJSON_AddItemToObject(s, "duration", json_duration(st, 4, 5, 10));
		cJSON_AddBoolToObject(s, "cached", sqlite3_column_int(st, 6));
		cJSON_AddItemToObject(s, "reason", json_text(st, 7));
		cJSON_AddItemToObject(s, "error", json_text(st, 8));
		cJSON_AddItemToObject(s, "params", json_parsed(sqlite3_column_text(st, 9)));
		cJSON *in = cJSON_AddObjectToObject(s, "inputs");
		cJSON *out = cJSON_AddObjectToObject(s, "outputs");
		sqlite3_stmt *io = db_prepare(f->db, "SELECT dir, name, hash FROM step_io WHERE "
		                              "run_id=? AND step=? ORDER BY dir, name", "it",
		                              id, name);
		while (io && sqlite3_step(io) == SQLITE_ROW)
			cJSON_AddStringToObject(strcmp((const char *)sqlite3_column_text(io, 0), "in")
			                        ? out : in,
			                        (const char *)sqlite3_column_text(io, 1),
			                        (const char *)sqlite3_column_text(io, 2));
		db_finish(f->db, io);
		cJSON *metrics = cJSON_AddObjectToObject(s, "metrics");
		sqlite3_stmt *m = db_prepare(f->db, "SELECT name, value FROM metrics WHERE "
		                             "run_id=? AND step=? ORDER BY name, idx", "it",
		                             id, name);
		while (m && sqlite3_step(m) == SQLITE_ROW) {
			const char *mn = (const char *)sqlite3_column_text(m, 0);
			cJSON *series = cJSON_GetObjectItemCaseSensitive(metrics, mn);
			if (!series)
				series = cJSON_AddArrayToObject(metrics, mn);
			cJSON_AddItemToArray(series, cJSON_CreateNumber(sqlite3_column_double(m, 1)));
		}
		db_finish(f->db, m);
		cJSON_AddItemToArray(steps, s);
	}
	db_finish(f->db, st);
	view_json_numbers(o);
	char *text = cJSON_Print(o);
	strbuf_printf(sb, "%s\n", text);
	free(text);
	cJSON_Delete(o);
}

static void render_summary(struct flowy *f, int64_t id, struct strbuf *sb)
{
	sqlite3_stmt *st = db_prepare(f->db,
		"SELECT s.name, s.status, s.started, s.finished, s.cached, "
		"(SELECT group_concat(name, ',') FROM (SELECT name FROM step_io WHERE "
		"run_id=s.run_id AND step=s.name AND dir='out' ORDER BY name)) "
		"FROM steps s WHERE s.run_id=? ORDER BY coalesce(s.seq, 1e9), s.name", "i", id);
	strbuf_puts(sb, "step\tstatus\tduration\tcached\toutputs\n");
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		strbuf_printf(sb, "%s\t%s\t", sqlite3_column_text(st, 0),
		              sqlite3_column_text(st, 1));
		struct strbuf d = {0};
		fmt_duration(&d, st, 2, 3, -1);
		d.buf[d.len - 1] = '\0';
		const unsigned char *outs = sqlite3_column_text(st, 5);
		/* An unknown value is an empty field, as in every TSV view. */
		strbuf_printf(sb, "%s\t%s\t%s\n", d.buf,
		              sqlite3_column_int(st, 4) ? "yes" : "no",
		              outs ? (const char *)outs : "");
		strbuf_release(&d);
	}
	db_finish(f->db, st);
}

/* Render runs/<id>/<name>; -ENOENT when the run does not exist. */
static int render_run(struct flowy *f, int64_t id, const char *name, char **out)
{
	if (!strcmp(name, "dag.svg"))
		return pictures_run_dag(f, id, out);
	if (!strcmp(name, "report.html"))
		return report_render(f, id, out);
	struct strbuf sb = {0};
	int rc = 0;
	if (!strcmp(name, "alerts")) {
		char *path = xasprintf("%s/%lld/alerts", f->runs_dir, (long long)id);
		*out = view_file_text(ALERTS_HEADER, path);
		free(path);
		return 0;
	}
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db, "SELECT status, pipeline, started, finished, "
	                              "params, error, commit_id, git, env, " DB_RUN_DAG ", paused, "
	                              "trigger, retry_of, note, tags FROM runs WHERE id=?",
	                              "i", id);
	if (!st || sqlite3_step(st) != SQLITE_ROW) {
		rc = -ENOENT;
	} else if (!strcmp(name, "status")) {
		fmt_col(&sb, st, 0);
	} else if (!strcmp(name, "note") || !strcmp(name, "tags")) {
		const unsigned char *t = sqlite3_column_text(st, name[0] == 'n' ? 13 : 14);
		strbuf_puts(&sb, t ? (const char *)t : "");
	} else if (!strcmp(name, "pipeline")) {
		fmt_col(&sb, st, 1);
	} else if (!strcmp(name, "started")) {
		fmt_time(&sb, st, 2);
	} else if (!strcmp(name, "finished")) {
		fmt_time(&sb, st, 3);
	} else if (!strcmp(name, "duration")) {
		fmt_duration(&sb, st, 2, 3, 10);
	} else if (!strcmp(name, "params.json")) {
		const unsigned char *p = sqlite3_column_text(st, 4);
		strbuf_printf(&sb, "%s\n", p ? (const char *)p : "{}");
	} else if (!strcmp(name, "error")) {
		fmt_col(&sb, st, 5);
	} else if (!strcmp(name, "summary")) {
		render_summary(f, id, &sb);
	} else if (!strcmp(name, "run.json")) {
		render_run_json(f, id, st, &sb);
	} else if (!strcmp(name, "pipeline.commit")) {
		fmt_col(&sb, st, 6);
	} else if (!strcmp(name, "git") || !strcmp(name, "env") || !strcmp(name, "dag.dot")) {
		const unsigned char *t = sqlite3_column_text(st, !strcmp(name, "git") ? 7 :
		                                             !strcmp(name, "env") ? 8 : 9);
		/* Without a workdir, git says so rather than being empty. */
		strbuf_puts(&sb, t && *t ? (const char *)t : !strcmp(name, "git") ? "none\n" : "");
	} else {
		rc = -ENOENT;
	}
	db_finish(f->db, st);
	db_unlock(f->db);
	if (rc) {
		strbuf_release(&sb);
		return rc;
	}
	*out = strbuf_detach(&sb, NULL);
	return 0;
}

/* ---- step files ------------------------------------------------------- */

static const char *const step_files[] = {
	"status", "log", "exit_code", "attempts", "duration", "cached", "reason",
	"error", "job", NULL,
};

/* The Slurm job id of a step or item (the executor writes it next to the
 * log), or an empty line. */
static void fmt_job(struct strbuf *sb, struct flowy *f, int64_t id, const char *step,
                    const char *item)
{
	char *path = item ? xasprintf("%s/%lld/%s.items/%s.job", f->runs_dir,
	                              (long long)id, step, item)
	                  : xasprintf("%s/%lld/%s.job", f->runs_dir, (long long)id, step);
	char *text = NULL;
	size_t len = 0;
	if (util_read_file(path, &text, &len) == 0 && len && text[len - 1] == '\n')
		strbuf_add(sb, text, len);
	else
		strbuf_puts(sb, "\n");
	free(text);
	free(path);
}

/* A file of step (item NULL) or of one foreach item of it. */
static int render_step(struct flowy *f, int64_t id, const char *step, const char *item,
                       const char *name, char **out)
{
	struct strbuf sb = {0};
	int rc = 0;
	db_lock(f->db);
	sqlite3_stmt *st = item ? db_prepare(f->db, "SELECT status, exit_code, attempts, "
	                                     "started, finished, cached, reason, error, 0 "
	                                     "FROM items WHERE run_id=? AND step=? AND "
	                                     "item=?", "itt", id, step, item)
	                        : db_prepare(f->db, "SELECT status, exit_code, attempts, "
	                                     "started, finished, cached, reason, error, "
	                                     "paused FROM steps WHERE run_id=? AND name=?",
	                                     "it", id, step);
	if (!st || sqlite3_step(st) != SQLITE_ROW)
		rc = -ENOENT;
	else if (!strcmp(name, "status"))
		fmt_col(&sb, st, 0);
	else if (!strcmp(name, "exit_code"))
		fmt_col(&sb, st, 1);
	else if (!strcmp(name, "attempts"))
		fmt_col(&sb, st, 2);
	else if (!strcmp(name, "duration"))
		fmt_duration(&sb, st, 3, 4, 8);
	else if (!strcmp(name, "cached"))
		strbuf_puts(&sb, sqlite3_column_int(st, 5) ? "yes\n" : "no\n");
	else if (!strcmp(name, "reason"))
		fmt_col(&sb, st, 6);
	else if (!strcmp(name, "error"))
		fmt_col(&sb, st, 7);
	else if (!strcmp(name, "job"))
		fmt_job(&sb, f, id, step, item);
	else
		rc = -ENOENT;
	db_finish(f->db, st);
	db_unlock(f->db);
	if (rc) {
		strbuf_release(&sb);
		return rc;
	}
	*out = strbuf_detach(&sb, NULL);
	return 0;
}

static int is_one_of(const char *const *list, const char *name)
{
	for (; *list; list++)
		if (!strcmp(*list, name))
			return 1;
	return 0;
}

/* ---- paths ------------------------------------------------------------ */

struct rpath {
	int n;               /* components */
	char *part[8];
	int64_t id;
	char buf[4096];
};

static int parse(const char *path, struct rpath *rp)
{
	rp->n = view_split(path, rp->buf, sizeof rp->buf, rp->part, 8);
	rp->id = 0;
	if (rp->n >= 2 && strcmp(rp->part[1], "latest")) {
		char *end;
		rp->id = strtoll(rp->part[1], &end, 10);
		if (*end || rp->id <= 0 || rp->part[1][0] == '0')
			return -ENOENT;
	}
	return rp->n > 7 ? -ENOENT : 0;
}

static int64_t latest_id(struct flowy *f)
{
	db_lock(f->db);
	int64_t id = db_int(f->db, 0, "SELECT max(id) FROM runs", "");
	db_unlock(f->db);
	return id;
}

static int run_exists(struct flowy *f, int64_t id)
{
	db_lock(f->db);
	int64_t c = db_int(f->db, 0, "SELECT count(*) FROM runs WHERE id=?", "i", id);
	db_unlock(f->db);
	return c > 0;
}

static int step_exists(struct flowy *f, int64_t id, const char *step)
{
	db_lock(f->db);
	int64_t c = db_int(f->db, 0, "SELECT count(*) FROM steps WHERE run_id=? AND name=?",
	                   "it", id, step);
	db_unlock(f->db);
	return c > 0;
}

/* Does the step have foreach items (item NULL), or that item? */
static int item_exists(struct flowy *f, int64_t id, const char *step, const char *item)
{
	db_lock(f->db);
	int64_t c = item ? db_int(f->db, 0, "SELECT count(*) FROM items WHERE run_id=? AND "
	                          "step=? AND item=?", "itt", id, step, item)
	                 : db_int(f->db, 0, "SELECT count(*) FROM items WHERE run_id=? AND "
	                          "step=?", "it", id, step);
	db_unlock(f->db);
	return c > 0;
}

/* runs/<id>/steps/<s>/items/<item>[/<file>]? */
static int is_item_path(const struct rpath *rp)
{
	return rp->n >= 5 && !strcmp(rp->part[4], "items");
}

/* The hash of input/output name of a step, malloc'd, or NULL. */
static char *io_hash(struct flowy *f, int64_t id, const char *step, const char *dir,
                     const char *name)
{
	db_lock(f->db);
	char *h = db_text(f->db, "SELECT hash FROM step_io WHERE run_id=? AND step=? AND "
	                  "dir=? AND name=?", "ittt", id, step, dir, name);
	db_unlock(f->db);
	return h;
}

static const char *io_dir(const char *name)
{
	return !strcmp(name, "inputs") ? "in" : !strcmp(name, "outputs") ? "out" : NULL;
}

/* The log of a step, or of one of its foreach items (item not NULL). */
static char *log_path(struct flowy *f, int64_t id, const char *step, const char *item)
{
	if (item)
		return xasprintf("%s/%lld/%s.items/%s.log", f->runs_dir, (long long)id, step,
		                 item);
	return xasprintf("%s/%lld/%s.log", f->runs_dir, (long long)id, step);
}

/* The scratch a failed step (or item) of run id kept, while it is there:
 * malloc'd absolute path, or NULL. */
static char *kept_workdir(struct flowy *f, int64_t id, const char *step, const char *item)
{
	db_lock(f->db);
	int64_t kept = db_int(f->db, 0, "SELECT kept_scratch FROM runs WHERE id=?", "i", id);
	db_unlock(f->db);
	if (!kept)
		return NULL;
	char *dir = item ? xasprintf("%s/%lld/%s.items/%s", f->scratch_dir, (long long)id,
	                             step, item)
	                 : xasprintf("%s/%lld/%s", f->scratch_dir, (long long)id, step);
	struct stat st;
	if (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return dir;
	free(dir);
	/* A Slurm step's, on the shared dir. */
	char *shared = workspace_shared_dir(f, id);
	if (!shared)
		return NULL;
	dir = item ? xasprintf("%s/%s.items/%s", shared, step, item)
	           : xasprintf("%s/%s", shared, step);
	free(shared);
	if (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return dir;
	free(dir);
	return NULL;
}

/* getattr of a workdir link (item NULL: the step's). */
static int workdir_attr(struct flowy *f, int64_t id, const char *step, const char *item,
                        struct view_attr *a)
{
	char *w = kept_workdir(f, id, step, item);
	if (!w)
		return -ENOENT;
	a->mode = S_IFLNK | 0777;
	a->size = strlen(w);
	free(w);
	return 0;
}

/* getattr of a log file: its size and time as the store has them. */
static void log_attr(struct flowy *f, int64_t id, const char *step, const char *item,
                     struct view_attr *a)
{
	char *lp = log_path(f, id, step, item);
	struct stat st;
	int ok = stat(lp, &st) == 0;
	a->mode = S_IFREG | 0444;
	a->size = ok ? (uint64_t)st.st_size : 0;
	a->mtime = ok ? (double)st.st_mtime : 0;
	free(lp);
}

/* Open a log file (an empty text while the step has not written one). */
static int log_open(struct flowy *f, int64_t id, const char *step, const char *item,
                    struct fh *h)
{
	char *lp = log_path(f, id, step, item);
	int fd = open(lp, O_RDONLY | O_CLOEXEC);
	free(lp);
	if (fd >= 0) {
		h->kind = FH_FD;
		h->fd = fd;
		h->direct_io = 1;
	} else {
		view_text_fh(h, xstrdup(""));
	}
	return 0;
}

/* runs/<id>/snapshot[/...] -> its backing path in the store, else NULL. */
static char *snapshot_backing(struct flowy *f, const char *path)
{
	if (strncmp(path, "runs/", 5))
		return NULL;
	const char *p = path + strlen("runs/");
	size_t digits = strspn(p, "0123456789");
	if (!digits || p[0] == '0' || strncmp(p + digits, "/snapshot", 9) ||
	    (p[digits + 9] && p[digits + 9] != '/'))
		return NULL;
	int64_t id = strtoll(p, NULL, 10);
	db_lock(f->db);
	int64_t snap = db_int(f->db, id, "SELECT snapshot_run FROM runs WHERE id=?", "i", id);
	db_unlock(f->db);
	return xasprintf("%s/%lld/snapshot%s", f->runs_dir, (long long)snap,
	                 p + digits + 9);
}

/* The series of metric m of a step: index<TAB>value rows; NULL if none. */
static char *render_series(struct flowy *f, int64_t id, const char *step, const char *m)
{
	struct strbuf sb = {0};
	int rows = 0;
	strbuf_puts(&sb, "index\tvalue\n");
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db, "SELECT idx, value FROM metrics WHERE run_id=? "
	                              "AND step=? AND name=? ORDER BY idx", "itt", id, step, m);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		char num[UTIL_DOUBLE_LEN];
		strbuf_printf(&sb, "%lld\t%s\n", (long long)sqlite3_column_int64(st, 0),
		              util_fmt_double(num, sqlite3_column_double(st, 1)));
		rows++;
	}
	db_finish(f->db, st);
	db_unlock(f->db);
	if (!rows) {
		strbuf_release(&sb);
		return pictures_step_metric(f, id, step, m); /* <m>.svg, or NULL */
	}
	return strbuf_detach(&sb, NULL);
}

static int snapshot_getattr(const char *backing, struct view_attr *a)
{
	struct stat st;
	if (lstat(backing, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return -ENOENT;
	/* Files read-only; directories writable by the owner only so that
	 * rm -r can walk them (removing below a run changes nothing). */
	a->mode = (st.st_mode & ~(mode_t)0222) | (S_ISDIR(st.st_mode) ? 0200 : 0);
	a->size = (uint64_t)st.st_size;
	a->mtime = (double)st.st_mtime;
	a->immutable = 1;
	return 0;
}

static int getattr_in_run(struct flowy *f, const char *path, struct view_attr *a);

/* Everything of a run (but its snapshot's real files) has the run's time. */
static int runs_getattr(struct flowy *f, const char *path, struct view_attr *a)
{
	int rc = getattr_in_run(f, path, a);
	struct rpath rp;
	if (!rc && !a->has_stat && parse(path, &rp) == 0 && rp.id)
		a->mtime = view_run_time(f, rp.id);
	return rc;
}

static int getattr_in_run(struct flowy *f, const char *path, struct view_attr *a)
{
	char *snap = snapshot_backing(f, path);
	if (snap) {
		int rc = snapshot_getattr(snap, a);
		free(snap);
		return rc;
	}
	struct rpath rp;
	if (parse(path, &rp) < 0)
		return -ENOENT;
	if (rp.n == 1) {
		a->mode = S_IFDIR | 0755; /* writable: rm -r */
		return 0;
	}
	if (rp.n == 2 && !rp.id) {
		int64_t id = latest_id(f);
		if (!id)
			return -ENOENT;
		char t[32];
		a->mode = S_IFLNK | 0777;
		a->size = (uint64_t)snprintf(t, sizeof t, "%lld", (long long)id);
		return 0;
	}
	if (!rp.id || !run_exists(f, rp.id))
		return -ENOENT;
	if (rp.n == 2 || (rp.n == 3 && !strcmp(rp.part[2], "steps"))) {
		a->mode = S_IFDIR | 0755; /* writable: rm -r */
		return 0;
	}
	if (view_cached_attr(a, path)) {
		if (rp.n == 3 && is_one_of(note_files, rp.part[2]))
			a->mode = S_IFREG | 0644;
		return 0;
	}
	char *text = NULL;
	if (rp.n == 3 && !strcmp(rp.part[2], "wait")) {
		a->mode = S_IFREG | 0444;
		a->mtime = util_now();
		return 0;
	}
	if (rp.n == 3) {
		int rc = is_one_of(run_files, rp.part[2]) || is_one_of(note_files, rp.part[2]) ?
		         render_run(f, rp.id, rp.part[2], &text) : -ENOENT;
		if (rc < 0)
			return rc;
		view_generated_attr(a, path, text);
		if (is_one_of(note_files, rp.part[2]))
			a->mode = S_IFREG | 0644;
		return 0;
	}
	if (strcmp(rp.part[2], "steps") || !step_exists(f, rp.id, rp.part[3]))
		return -ENOENT;
	if (is_item_path(&rp)) {
		if (!item_exists(f, rp.id, rp.part[3], rp.n >= 6 ? rp.part[5] : NULL))
			return -ENOENT;
		if (rp.n <= 6) {
			a->mode = S_IFDIR | 0755; /* writable: rm -r */
			return 0;
		}
		if (!strcmp(rp.part[6], "log")) {
			log_attr(f, rp.id, rp.part[3], rp.part[5], a);
			return 0;
		}
		if (!strcmp(rp.part[6], "workdir"))
			return workdir_attr(f, rp.id, rp.part[3], rp.part[5], a);
		int rc = is_one_of(step_files, rp.part[6]) ?
		         render_step(f, rp.id, rp.part[3], rp.part[5], rp.part[6], &text) :
		         -ENOENT;
		if (rc < 0)
			return rc;
		view_generated_attr(a, path, text);
		return 0;
	}
	if (rp.n == 4 || (rp.n == 5 && (io_dir(rp.part[4]) || !strcmp(rp.part[4], "metrics")))) {
		a->mode = S_IFDIR | 0755; /* writable: rm -r */
		return 0;
	}
	if (rp.n == 6 && !strcmp(rp.part[4], "metrics")) {
		text = render_series(f, rp.id, rp.part[3], rp.part[5]);
		if (!text)
			return -ENOENT;
		view_generated_attr(a, path, text);
		return 0;
	}
	if (rp.n == 5 && !strcmp(rp.part[4], "log")) {
		log_attr(f, rp.id, rp.part[3], NULL, a);
		return 0;
	}
	if (rp.n == 5 && !strcmp(rp.part[4], "workdir"))
		return workdir_attr(f, rp.id, rp.part[3], NULL, a);
	if (rp.n == 5) {
		int rc = is_one_of(step_files, rp.part[4]) ?
		         render_step(f, rp.id, rp.part[3], NULL, rp.part[4], &text) : -ENOENT;
		if (rc < 0)
			return rc;
		view_generated_attr(a, path, text);
		return 0;
	}
	const char *dir = io_dir(rp.part[4]);
	char *h = dir ? io_hash(f, rp.id, rp.part[3], dir, rp.part[5]) : NULL;
	if (!h)
		return -ENOENT;
	a->mode = S_IFLNK | 0777;
	a->size = strlen("../../../../../artifacts/sha256/") + strlen(h);
	free(h);
	return 0;
}

static int runs_readdir(struct flowy *f, const char *path, struct dirlist *l)
{
	char *snap = snapshot_backing(f, path);
	if (snap) {
		int rc = dirlist_add_dir(l, snap);
		free(snap);
		return rc;
	}
	struct rpath rp;
	if (parse(path, &rp) < 0)
		return -ENOENT;
	if (rp.n == 2) {
		for (const char *const *n = run_files; *n; n++)
			dirlist_add(l, *n, S_IFREG);
		for (const char *const *n = note_files; *n; n++)
			dirlist_add(l, *n, S_IFREG);
		dirlist_add(l, "steps", S_IFDIR);
		dirlist_add(l, "snapshot", S_IFDIR);
		return 0;
	}
	if (rp.n == 4 || (rp.n == 6 && is_item_path(&rp))) {
		for (const char *const *n = step_files; *n; n++)
			dirlist_add(l, *n, S_IFREG);
		char *w = kept_workdir(f, rp.id, rp.part[3], rp.n == 6 ? rp.part[5] : NULL);
		if (w)
			dirlist_add(l, "workdir", S_IFLNK);
		free(w);
		if (rp.n == 6)
			return 0;
		dirlist_add(l, "inputs", S_IFDIR);
		dirlist_add(l, "outputs", S_IFDIR);
		dirlist_add(l, "metrics", S_IFDIR);
		if (item_exists(f, rp.id, rp.part[3], NULL))
			dirlist_add(l, "items", S_IFDIR);
		return 0;
	}
	sqlite3_stmt *st = NULL;
	db_lock(f->db);
	if (rp.n == 1) {
		l->kept = 1; /* the database's alone */
		if (db_int(f->db, 0, "SELECT EXISTS(SELECT 1 FROM runs)", ""))
			dirlist_add(l, "latest", S_IFLNK);
		st = db_prepare(f->db, "SELECT id FROM runs ORDER BY id", "");
	} else if (rp.n == 3) {
		st = db_prepare(f->db, "SELECT name FROM steps WHERE run_id=? ORDER BY name",
		                "i", rp.id);
	} else if (rp.n == 5 && io_dir(rp.part[4])) {
		st = db_prepare(f->db, "SELECT name FROM step_io WHERE run_id=? AND step=? "
		                "AND dir=? ORDER BY name", "itt", rp.id, rp.part[3],
		                io_dir(rp.part[4]));
	} else if (rp.n == 5 && !strcmp(rp.part[4], "metrics")) {
		st = db_prepare(f->db, "SELECT DISTINCT name FROM metrics WHERE run_id=? AND "
		                "step=? ORDER BY name", "it", rp.id, rp.part[3]);
	} else if (rp.n == 5 && is_item_path(&rp)) {
		st = db_prepare(f->db, "SELECT item FROM items WHERE run_id=? AND step=? "
		                "ORDER BY item", "it", rp.id, rp.part[3]);
	}
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		dirlist_add(l, (const char *)sqlite3_column_text(st, 0),
		            rp.n == 1 || rp.n == 3 || is_item_path(&rp) ? S_IFDIR :
		            !strcmp(rp.part[4], "metrics") ? S_IFREG : S_IFLNK);
		if (rp.n == 5 && !strcmp(rp.part[4], "metrics")) /* and its plot */
			pictures_list_svg(l, (const char *)sqlite3_column_text(st, 0));
	}
	db_finish(f->db, st);
	db_unlock(f->db);
	return st ? 0 : -ENOTDIR;
}

static int runs_open(struct flowy *f, const char *path, int flags, struct fh *h)
{
	if ((flags & O_ACCMODE) != O_RDONLY)
		return note_open(f, path, flags, h);
	char *snap = snapshot_backing(f, path);
	if (snap) {
		int fd = open(snap, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		free(snap);
		if (fd < 0)
			return -errno;
		h->kind = FH_FD;
		h->fd = fd;
		h->keep_cache = 1;
		return 0;
	}
	struct rpath rp;
	if (parse(path, &rp) < 0 || !rp.id)
		return -ENOENT;
	if (rp.n == 3 && !strcmp(rp.part[2], "wait")) {
		if (!run_exists(f, rp.id))
			return -ENOENT;
		h->kind = FH_WAIT;
		h->run = rp.id;
		h->direct_io = 1;
		return 0;
	}
	char *text = view_cache_take(path);
	int rc;
	if (text) {
		rc = 0;
	} else if (rp.n == 3) {
		rc = is_one_of(run_files, rp.part[2]) || is_one_of(note_files, rp.part[2]) ?
		     render_run(f, rp.id, rp.part[2], &text) : -ENOENT;
	} else if (rp.n == 5 && !strcmp(rp.part[4], "log")) {
		return log_open(f, rp.id, rp.part[3], NULL, h);
	} else if (rp.n == 7 && is_item_path(&rp) && !strcmp(rp.part[6], "log")) {
		return log_open(f, rp.id, rp.part[3], rp.part[5], h);
	} else if (rp.n == 7 && is_item_path(&rp)) {
		rc = render_step(f, rp.id, rp.part[3], rp.part[5], rp.part[6], &text);
	} else if (rp.n == 5) {
		rc = render_step(f, rp.id, rp.part[3], NULL, rp.part[4], &text);
	} else if (rp.n == 6 && !strcmp(rp.part[4], "metrics")) {
		text = render_series(f, rp.id, rp.part[3], rp.part[5]);
		rc = text ? 0 : -ENOENT;
	} else {
		rc = -EISDIR;
	}
	if (rc < 0)
		return rc;
	view_text_fh(h, text);
	return 0;
}

static int runs_readlink(struct flowy *f, const char *path, char **out)
{
	struct rpath rp;
	if (parse(path, &rp) < 0)
		return -ENOENT;
	if (rp.n == 2 && !rp.id) {
		int64_t id = latest_id(f);
		if (!id)
			return -ENOENT;
		*out = xasprintf("%lld", (long long)id);
		return 0;
	}
	if (rp.id && ((rp.n == 5 && !strcmp(rp.part[2], "steps") &&
	               !strcmp(rp.part[4], "workdir")) ||
	              (rp.n == 7 && is_item_path(&rp) && !strcmp(rp.part[6], "workdir")))) {
		*out = kept_workdir(f, rp.id, rp.part[3], rp.n == 7 ? rp.part[5] : NULL);
		return *out ? 0 : -ENOENT;
	}
	const char *dir = rp.n == 6 ? io_dir(rp.part[4]) : NULL;
	char *h = dir ? io_hash(f, rp.id, rp.part[3], dir, rp.part[5]) : NULL;
	if (!h)
		return -EINVAL;
	*out = xasprintf("../../../../../artifacts/sha256/%s", h);
	free(h);
	return 0;
}

/* ---- note, tags and deleting a run ------------------------------------ */

/* runs/<id>/note or runs/<id>/tags: the run's id and which ("note" or
 * "tags"), or 0. */
static int64_t note_path(const char *path, const char **which)
{
	struct rpath rp;
	if (parse(path, &rp) < 0 || rp.n != 3 || !rp.id || !is_one_of(note_files, rp.part[2]))
		return 0;
	*which = !strcmp(rp.part[2], "note") ? "note" : "tags";
	return rp.id;
}

/* Tags as stored: each line trimmed, blank lines and repeats dropped. */
static char *tags_normal(const char *text)
{
	struct strbuf sb = {0};
	char *copy = xstrdup(text), *save = NULL;
	strbuf_puts(&sb, "");
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		while (*l == ' ' || *l == '\t' || *l == '\r')
			l++;
		size_t n = strlen(l);
		while (n && (l[n - 1] == ' ' || l[n - 1] == '\t' || l[n - 1] == '\r'))
			l[--n] = '\0';
		if (!n)
			continue;
		int dup = 0;
		for (const char *p = sb.buf; p && *p && !dup; p = strchr(p, '\n') + 1)
			dup = !strncmp(p, l, n) && p[n] == '\n';
		if (!dup)
			strbuf_printf(&sb, "%s\n", l);
	}
	free(copy);
	return strbuf_detach(&sb, NULL);
}

static int note_save(struct flowy *f, int64_t id, const char *which, const char *text)
{
	char *norm = !strcmp(which, "tags") ? tags_normal(text) : xstrdup(text);
	int rc = db_exec(f->db, !strcmp(which, "tags") ? "UPDATE runs SET tags=? WHERE id=?"
	                 : "UPDATE runs SET note=? WHERE id=?", "ti", norm, id);
	free(norm);
	return rc;
}

static int note_open(struct flowy *f, const char *path, int flags, struct fh *h)
{
	const char *which = NULL;
	int64_t id = note_path(path, &which);
	if (!id)
		return -EROFS;
	if (!run_exists(f, id))
		return -ENOENT;
	char *text = NULL;
	int rc = render_run(f, id, which, &text);
	if (rc < 0)
		return rc;
	h->kind = FH_CTL;
	h->buf = text;
	h->len = strlen(text);
	h->direct_io = 1;
	return 0;
}

static int runs_write(struct flowy *f, struct fh *h, const char *buf, size_t len,
                      off_t off)
{
	const char *which = NULL;
	if (h->kind != FH_CTL || !note_path(h->path, &which))
		return -EBADF;
	if (off < 0 || (uint64_t)off + len > (1 << 20))
		return -EFBIG;
	if (!strcmp(which, "tags") && (memchr(buf, '\t', len) || memchr(buf, ',', len) ||
	                               memchr(buf, '\0', len)))
		return -EINVAL; /* tags are listed comma-separated in runs.tsv */
	if (memchr(buf, '\0', len))
		return -EINVAL;
	size_t end = (size_t)off + len;
	if (end > h->len) {
		h->buf = xrealloc(h->buf, end + 1);
		memset(h->buf + h->len, ' ', end - h->len);
		h->len = end;
		h->buf[end] = '\0';
	}
	memcpy(h->buf + off, buf, len);
	return (int)len;
}

static void runs_release(struct flowy *f, struct fh *h)
{
	const char *which = NULL;
	int64_t id = h->kind == FH_CTL && h->written ? note_path(h->path, &which) : 0;
	if (id && note_save(f, id, which, h->buf ? h->buf : "") < 0)
		log_error("runs/%lld/%s: not saved: %s", (long long)id, which,
		          db_errmsg(f->db));
}

static int runs_truncate(struct flowy *f, const char *path, off_t size)
{
	const char *which = NULL;
	int64_t id = note_path(path, &which);
	if (!id)
		return -EROFS;
	char *text = NULL;
	int rc = render_run(f, id, which, &text);
	if (!rc && (uint64_t)size < strlen(text))
		text[size] = '\0';
	if (!rc)
		rc = (uint64_t)size > strlen(text) ? -EINVAL : note_save(f, id, which, text);
	free(text);
	return rc;
}

/* Is run id still queued, running or paused (-EBUSY), gone (-ENOENT)? */
static int run_ended(struct flowy *f, int64_t id)
{
	char *status = NULL;
	db_lock(f->db);
	int rc = db_get_text(f->db, &status, "SELECT status FROM runs WHERE id=?", "i", id);
	db_unlock(f->db);
	if (rc == 1)
		rc = -ENOENT;
	if (!rc && (!strcmp(status, "queued") || !strcmp(status, "running") ||
	            !strcmp(status, "paused")))
		rc = -EBUSY;
	free(status);
	return rc;
}

/* rm -r runs/<id>: a run that ended goes (gc.c); its objects stay for
 * the next gc. */
static int delete_run(struct flowy *f, int64_t id)
{
	int rc = run_ended(f, id);
	return rc ? rc : gc_run_delete(f, id);
}

/* Removing what lies below a run that ended is accepted (it is generated)
 * so that rm -r reaches the run's own rmdir; runs/latest is refused. */
static int runs_unlink(struct flowy *f, const char *path)
{
	struct rpath rp;
	if (parse(path, &rp) < 0 || !rp.id || rp.n < 3)
		return rp.n == 2 && !rp.id ? -EROFS : -EACCES; /* runs/latest */
	return run_ended(f, rp.id);
}

static int runs_rmdir(struct flowy *f, const char *path)
{
	struct rpath rp;
	if (parse(path, &rp) < 0 || !rp.id || rp.n < 2)
		return -EACCES;
	return rp.n == 2 ? delete_run(f, rp.id) : run_ended(f, rp.id);
}

const struct view view_runs = {
	.name = "runs",
	.getattr = runs_getattr,
	.readdir = runs_readdir,
	.open = runs_open,
	.readlink = runs_readlink,
	.write = runs_write,
	.truncate = runs_truncate,
	.release = runs_release,
	.unlink = runs_unlink,
	.rmdir = runs_rmdir,
};
