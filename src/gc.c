/*
 * gc.c - housekeeping of the store (gc.h): which runs a gc keeps, deleting
 * runs, and handing the object store the set of objects still referenced
 * (cas_gc.h sweeps the rest).
 *
 * A gc keeps, per pipeline, its last N runs and those that ended less than
 * the age ago, and always: live runs (queued, running, paused), runs that
 * made a registry version or a latest artifact, runs tagged `keep`, the
 * first run that made a pinned `sha256:` input of a current definition (or
 * of a live run's snapshot), runs whose snapshot a live run reads, and
 * every run of a pipeline while one of its runs is being captured (it may
 * be about to share an earlier run's snapshot). A deleted run's snapshot
 * that later runs share moves to the oldest of them, and the snapshot
 * cache follows (snapshot_moved). forget deletes every run of a pipeline
 * that no longer exists, and its latest links.
 *
 * Order, and why a crash (kill -9) anywhere loses nothing referenced:
 *  1. Under the database lock, in one transaction: the victims' rows go
 *     (steps, inputs and outputs, metrics, items, cache, the run), so do
 *     artifact rows nothing refers to any more, and the roots (every hash
 *     a remaining row names) are read. A snapshot later runs share is
 *     first hard-linked into the oldest of them, before the commit. A
 *     crash before the commit leaves every row (and at worst a spare
 *     snapshot copy that the next gc replaces).
 *  2. After the commit, objects are removed: only those no root reaches
 *     and modified before the cutoff. A crash here leaves objects no row
 *     names, which the next gc removes; every object a row names is
 *     still there, because rows went first. (Objects first would leave
 *     rows naming objects that are gone: never do that.)
 *  3. Then the victims' directories (logs, snapshots) and any run
 *     directory with no row (left by an earlier crash in 2 or 3).
 *  4. Then the gc.log row.
 * The cutoff protects what runs are writing while the gc goes on: it is
 * the gc's start, or the queue time of the oldest live run when earlier,
 * less GC_SLACK. Everything a live run puts (or finds already stored:
 * cas_obj_exists sets the mtime) has a later mtime, so an output that is
 * recorded only after the roots were read survives. A cache hit looks its
 * outputs up and records them under one hold of the database lock
 * (run.c), so it either sees the victims' rows gone or is a root.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowyfs/cas.h"
#include "flowyfs/gc.h"
#include "flowyfs/log.h"
#include "flowyfs/snapshot.h"
#include "flowyfs/step.h"
#include "flowyfs/util.h"

#define LIVE "('queued', 'running', 'paused')"

/* One gc or forget at a time. */
static pthread_mutex_t gc_busy = PTHREAD_MUTEX_INITIALIZER;

/* ---- parsing -------------------------------------------------------- */

/* "30d" -> seconds; 0 or -EINVAL. */
static int parse_age(const char *s, double *out)
{
	char *end = NULL;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || v > 100000000000ULL)
		return -EINVAL;
	double unit = 1;
	switch (*end) {
	case '\0': case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	case 'w': unit = 7 * 86400; break;
	default: return -EINVAL;
	}
	if (*end && end[1])
		return -EINVAL;
	*out = (double)v * unit;
	return 0;
}

int gc_parse(const char *line, struct gc_opts *out, char **why)
{
	memset(out, 0, sizeof *out);
	out->keep = GC_KEEP_DEFAULT;
	out->older_than = GC_AGE_DEFAULT;
	*why = NULL;
	char *copy = xstrdup(line), *save = NULL;
	char *word = strtok_r(copy, " \t", &save);
	int rc = 0;
	if (!word) {
		*why = xstrdup("empty command (expected gc or forget)");
		rc = -EINVAL;
	} else if (!strcmp(word, "gc")) {
		out->cmd = GC_COLLECT;
	} else if (!strcmp(word, "forget")) {
		out->cmd = GC_FORGET;
		char *p = strtok_r(NULL, " \t", &save);
		if (!p) {
			*why = xstrdup("forget: which pipeline? (forget <pipeline>)");
			rc = -EINVAL;
		} else if (!step_name_valid(p)) {
			*why = xasprintf("forget: \"%s\" is not a pipeline name", p);
			rc = -EINVAL;
		} else {
			snprintf(out->pipeline, sizeof out->pipeline, "%s", p);
		}
	} else {
		*why = xasprintf("unknown command \"%s\" (expected gc or forget)", word);
		rc = -EINVAL;
	}
	while (!rc && (word = strtok_r(NULL, " \t", &save))) {
		char *end = NULL;
		if (!strcmp(word, "dry-run")) {
			out->dry = 1;
		} else if (out->cmd == GC_COLLECT && !strncmp(word, "keep=", 5)) {
			errno = 0;
			long long k = strtoll(word + 5, &end, 10);
			if (word[5] < '0' || word[5] > '9' || *end || errno || k > 1000000000) {
				*why = xasprintf("gc: keep=%s: not a count of runs (keep=N, N >= 0)",
				                 word + 5);
				rc = -EINVAL;
			}
			out->keep = k;
		} else if (out->cmd == GC_COLLECT && !strncmp(word, "older-than=", 11)) {
			if (parse_age(word + 11, &out->older_than) < 0) {
				*why = xasprintf("gc: older-than=%s: not an age (a whole number with "
				                 "s, m, h, d or w, e.g. 30d)", word + 11);
				rc = -EINVAL;
			}
		} else {
			*why = out->cmd == GC_COLLECT
			       ? xasprintf("gc: unknown argument \"%s\" (expected keep=N, "
			                   "older-than=AGE or dry-run)", word)
			       : xasprintf("forget: unknown argument \"%s\" (expected "
			                   "forget <pipeline> [dry-run])", word);
			rc = -EINVAL;
		}
	}
	free(copy);
	return rc;
}

static void put_age(struct strbuf *sb, double secs)
{
	static const struct { double unit; char c; } units[] = {
		{7 * 86400, 'w'}, {86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
	long long s = (long long)secs;
	if (!s) {
		strbuf_puts(sb, "0");
		return;
	}
	for (size_t i = 0; i < sizeof units / sizeof *units; i++)
		if (s % (long long)units[i].unit == 0) {
			strbuf_printf(sb, "%lld%c", s / (long long)units[i].unit, units[i].c);
			return;
		}
}

char *gc_describe(const struct gc_opts *o)
{
	struct strbuf sb = {0};
	if (o->cmd == GC_FORGET) {
		strbuf_printf(&sb, "forget %s", o->pipeline);
	} else {
		strbuf_printf(&sb, "gc keep=%lld older-than=", (long long)o->keep);
		put_age(&sb, o->older_than);
	}
	if (o->dry)
		strbuf_puts(&sb, " dry-run");
	return strbuf_detach(&sb, NULL);
}

char *gc_ids_text(const int64_t *ids, size_t n)
{
	struct strbuf sb = {0};
	strbuf_puts(&sb, "");
	for (size_t i = 0; i < n; ) {
		size_t j = i;
		while (j + 1 < n && ids[j + 1] == ids[j] + 1)
			j++;
		strbuf_printf(&sb, "%s%lld", i ? "," : "", (long long)ids[i]);
		if (j > i)
			strbuf_printf(&sb, "-%lld", (long long)ids[j]);
		i = j + 1;
	}
	return strbuf_detach(&sb, NULL);
}

void gc_result_release(struct gc_result *r)
{
	free(r->runs);
	memset(r, 0, sizeof *r);
}

/* ---- deleting runs ------------------------------------------------------ */

/* The victims of one pass, as a table the deletes can join. Lock held. */
static int victims_reset(db *d)
{
	int rc = db_exec(d, "CREATE TEMP TABLE IF NOT EXISTS gc_victims(id INTEGER PRIMARY "
	                 "KEY)", "");
	return rc ? rc : db_exec(d, "DELETE FROM temp.gc_victims", "");
}

/* Hand the snapshot of victim id to heir (0: none; it goes with the
 * victim): the heir's hard-linked copy is made now (unless dry), before
 * anything commits, then the rows follow. Lock held. */
static int snapshot_to_heir(struct flowy *f, int64_t id, int64_t heir, int dry,
                            uint64_t *made)
{
	int rc = 0;
	if (!dry)
		snapshot_moved(f->snapshots, id, heir);
	if (!heir)
		return 0;
	rc = db_exec(f->db, "UPDATE runs SET snapshot_run=? WHERE snapshot_run=?", "ii", heir,
	             id);
	if (rc || dry)
		return rc;
	char *from = xasprintf("%s/%lld/snapshot", f->runs_dir, (long long)id);
	char *hdir = xasprintf("%s/%lld", f->runs_dir, (long long)heir);
	char *to = xasprintf("%s/snapshot", hdir);
	struct stat st;
	if (lstat(from, &st) == 0) {
		rc = util_mkdir_p(hdir, 0755);
		if (!rc)
			rc = util_rm_rf(to); /* a copy left by a gc that crashed */
		if (!rc)
			rc = util_link_tree(from, to, made);
		if (rc)
			log_error("runs/%lld: its snapshot cannot go to run %lld: %s",
			          (long long)id, (long long)heir, strerror(-rc));
	} else if (errno != ENOENT) {
		rc = -errno;
	}
	free(to);
	free(hdir);
	free(from);
	return rc;
}

/* Delete the rows of every run in temp.gc_victims (nested in the caller's
 * transaction), each table in one statement. A snapshot that runs which
 * stay share goes to the oldest of them; -EBUSY when one of those is live
 * (it reads that snapshot now). Lock held. */
static int delete_victims(struct flowy *f, int dry, uint64_t *made)
{
	static const char *const tables[] = {"steps", "step_io", "metrics", "items",
	                                     "cache", NULL};
	db *d = f->db;
	int rc = db_begin(d);
	if (!rc && db_int(d, 0, "SELECT count(*) FROM runs WHERE status IN " LIVE " AND "
	                  "snapshot_run IN (SELECT id FROM temp.gc_victims) AND id NOT IN "
	                  "(SELECT id FROM temp.gc_victims)", ""))
		rc = -EBUSY;
	struct heir { int64_t id, heir; } *h = NULL;
	size_t nh = 0;
	sqlite3_stmt *st = rc ? NULL : db_prepare(d, "SELECT v.id, (SELECT min(q.id) FROM "
		"runs q WHERE q.snapshot_run=v.id AND q.id NOT IN (SELECT id FROM "
		"temp.gc_victims)) FROM temp.gc_victims v", "");
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		h = xrealloc(h, (nh + 1) * sizeof *h);
		h[nh].id = sqlite3_column_int64(st, 0);
		h[nh++].heir = sqlite3_column_int64(st, 1); /* NULL: 0 */
	}
	db_finish(d, st);
	if (!rc && !st)
		rc = -EIO;
	for (size_t i = 0; !rc && i < nh; i++)
		rc = snapshot_to_heir(f, h[i].id, h[i].heir, dry, made);
	free(h);
	for (size_t i = 0; !rc && tables[i]; i++) {
		char *sql = xasprintf("DELETE FROM %s WHERE run_id IN (SELECT id FROM "
		                      "temp.gc_victims)", tables[i]);
		rc = db_exec(d, sql, "");
		free(sql);
	}
	if (!rc)
		rc = db_exec(d, "DELETE FROM runs WHERE id IN (SELECT id FROM temp.gc_victims)",
		             "");
	if (rc)
		db_rollback(d);
	else
		rc = db_commit(d);
	return rc;
}

/* Remove the directory of a deleted run, adding what it freed to *bytes. */
static int remove_dir(struct flowy *f, int64_t id, int dry, uint64_t *bytes)
{
	char *dir = xasprintf("%s/%lld", f->runs_dir, (long long)id);
	int rc = util_rm_rf_counted(dir, dry, bytes);
	if (rc < 0)
		log_error("runs/%lld: deleted, but %s stays: %s", (long long)id, dir,
		          strerror(-rc));
	free(dir);
	return rc;
}

int gc_run_delete(struct flowy *f, int64_t id)
{
	db_lock(f->db);
	int rc = db_begin(f->db);
	if (!rc)
		rc = victims_reset(f->db);
	if (!rc)
		rc = db_exec(f->db, "INSERT INTO temp.gc_victims VALUES(?)", "i", id);
	if (!rc)
		rc = delete_victims(f, 0, NULL);
	if (rc)
		db_rollback(f->db);
	else
		rc = db_commit(f->db);
	db_unlock(f->db);
	uint64_t bytes = 0;
	if (!rc && remove_dir(f, id, 0, &bytes) == 0)
		log_info("runs/%lld: deleted", (long long)id);
	return rc;
}

/* ---- roots ------------------------------------------------------------- */

struct strs {
	char **v;
	size_t n;
};

static void strs_add(struct strs *s, const char *t)
{
	s->v = xrealloc(s->v, (s->n + 1) * sizeof *s->v);
	s->v[s->n++] = xstrdup(t);
}

static void strs_free(struct strs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof *s);
}

/* The pinned sha256: inputs of the pipeline in dir, into pins. */
static void pins_of(const char *name, const char *dir, struct strs *pins)
{
	struct pipeline_def *p = NULL;
	if (step_load(&p, name, dir) < 0) {
		step_free(p);
		return; /* gone meanwhile: pins nothing */
	}
	for (size_t s = 0; s < p->n_steps; s++)
		for (size_t i = 0; i < p->steps[s].n_inputs; i++)
			if (p->steps[s].inputs[i].kind == STEP_IN_PINNED &&
			    p->steps[s].inputs[i].hex)
				strs_add(pins, p->steps[s].inputs[i].hex);
	step_free(p);
}

/* Every pinned input of the current definitions and of the snapshots of
 * live runs. 0 or -errno. */
static int collect_pins(struct flowy *f, struct strs *pins)
{
	DIR *d = opendir(f->pipelines_dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	struct dirent *e;
	int rc = 0;
	while ((errno = 0, e = readdir(d))) {
		if (e->d_name[0] == '.' || !step_name_valid(e->d_name))
			continue;
		char *dir = xasprintf("%s/%s", f->pipelines_dir, e->d_name);
		struct stat st;
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
			pins_of(e->d_name, dir, pins);
		free(dir);
	}
	if (errno)
		rc = -errno;
	closedir(d);
	struct strs live = {0};
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db, "SELECT DISTINCT pipeline, snapshot_run FROM "
	                              "runs WHERE status IN " LIVE " AND snapshot_run IS "
	                              "NOT NULL", "");
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		char *dir = xasprintf("%s/%lld/snapshot", f->runs_dir,
		                      (long long)sqlite3_column_int64(st, 1));
		strs_add(&live, (const char *)sqlite3_column_text(st, 0));
		strs_add(&live, dir);
		free(dir);
	}
	db_finish(f->db, st);
	db_unlock(f->db);
	if (!st && !rc)
		rc = -EIO;
	for (size_t i = 0; i + 1 < live.n; i += 2)
		pins_of(live.v[i], live.v[i + 1], pins);
	strs_free(&live);
	return rc;
}

/* ---- one gc --------------------------------------------------------------- */

struct pass {
	struct flowy *f;
	const struct gc_opts *o;
	double cutoff;
	int64_t *victims;        /* ascending */
	size_t nvictims;
	int64_t *known;          /* ids of runs and snapshot owners, ascending */
	size_t nknown;
	struct strs roots;
	uint64_t made;           /* disk usage of snapshot copies made for heirs */
	char *why;
};

static void ids_add(int64_t **v, size_t *n, int64_t id)
{
	*v = xrealloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = id;
}

static int ids_query(db *d, int64_t **v, size_t *n, sqlite3_stmt *st)
{
	while (st && sqlite3_step(st) == SQLITE_ROW)
		ids_add(v, n, sqlite3_column_int64(st, 0));
	db_finish(d, st);
	return st ? 0 : -EIO;
}

/* forget: refuse a pipeline that exists, runs, or was never seen. */
static int forget_check(struct pass *ps)
{
	struct flowy *f = ps->f;
	const char *p = ps->o->pipeline;
	char *dir = xasprintf("%s/%s", f->pipelines_dir, p);
	struct stat st;
	int exists = lstat(dir, &st) == 0;
	free(dir);
	if (exists) {
		ps->why = xasprintf("forget %s: the pipeline still exists (rm -r pipelines/%s "
		                    "first)", p, p);
		return -EEXIST;
	}
	int64_t live = 0;
	int rc = db_get_int(f->db, &live, "SELECT min(id) FROM runs WHERE pipeline=? AND "
	                    "status IN " LIVE, "t", p);
	if (rc < 0)
		return rc;
	if (rc == 0 && live) {
		ps->why = xasprintf("forget %s: run %lld of it is still queued or running", p,
		                    (long long)live);
		return -EBUSY;
	}
	if (!db_int(f->db, 0, "SELECT (SELECT count(*) FROM runs WHERE pipeline=?1) + "
	            "(SELECT count(*) FROM latest WHERE pipeline=?1)", "t", p)) {
		ps->why = xasprintf("forget %s: nothing of that pipeline is stored", p);
		return -ENOENT;
	}
	return 0;
}

#define ROOTS "SELECT hash FROM step_io UNION SELECT hash FROM latest UNION " \
	"SELECT hash FROM registry_versions UNION SELECT hash FROM temp.gc_pins UNION " \
	"SELECT value FROM items, json_each(items.outputs) WHERE json_valid(items.outputs)"

/* Step 1 (see the top): choose the victims, delete their rows, read the
 * roots. Lock held, inside the caller's transaction. */
static int plan_rows(struct pass *ps, const struct strs *pins)
{
	struct flowy *f = ps->f;
	db *d = f->db;
	int rc = 0;
	double oldest = 0;
	sqlite3_stmt *st = db_prepare(d, "SELECT min(queued) FROM runs WHERE status IN "
	                              LIVE, "");
	if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		oldest = sqlite3_column_double(st, 0);
	db_finish(d, st);
	if (!st)
		return -EIO;
	if (oldest > 0 && oldest < ps->cutoff)
		ps->cutoff = oldest;
	ps->cutoff -= GC_SLACK;
	rc = db_exec(d, "CREATE TEMP TABLE IF NOT EXISTS gc_pins(hash TEXT PRIMARY KEY)", "");
	if (!rc)
		rc = db_exec(d, "DELETE FROM temp.gc_pins", "");
	for (size_t i = 0; !rc && i < pins->n; i++)
		rc = db_exec(d, "INSERT OR IGNORE INTO temp.gc_pins VALUES(?)", "t", pins->v[i]);
	if (!rc)
		rc = victims_reset(d);
	if (!rc && ps->o->cmd == GC_FORGET) {
		rc = forget_check(ps);
		if (!rc)
			rc = db_exec(d, "INSERT INTO temp.gc_victims SELECT id FROM runs WHERE "
			             "pipeline=?", "t", ps->o->pipeline);
	} else if (!rc) {
		rc = db_exec(d, "INSERT INTO temp.gc_victims "
			"SELECT id FROM (SELECT id, pipeline, status, tags, "
			"coalesce(finished, started, queued) AS t, row_number() OVER "
			"(PARTITION BY pipeline ORDER BY id DESC) AS rn FROM runs) r "
			"WHERE rn > ? AND (t IS NULL OR t < ?) AND status NOT IN " LIVE
			" AND id NOT IN (SELECT run_id FROM latest)"
			" AND id NOT IN (SELECT run_id FROM registry_versions WHERE run_id IS NOT NULL)"
			" AND instr(char(10) || coalesce(tags, ''), char(10) || 'keep' || char(10)) = 0"
			" AND id NOT IN (SELECT min(io.run_id) FROM step_io io JOIN temp.gc_pins p"
			" ON p.hash=io.hash WHERE io.dir='out' GROUP BY io.hash)"
			" AND id NOT IN (SELECT snapshot_run FROM runs WHERE status IN " LIVE
			" AND snapshot_run IS NOT NULL)"
			" AND pipeline NOT IN (SELECT pipeline FROM runs WHERE status IN " LIVE
			" AND snapshot_run IS NULL)", "id", ps->o->keep,
			util_now() - ps->o->older_than);
	}
	if (!rc)
		rc = ids_query(d, &ps->victims, &ps->nvictims, db_prepare(d,
		               "SELECT id FROM temp.gc_victims ORDER BY id", ""));
	if (!rc)
		rc = delete_victims(f, ps->o->dry, &ps->made);
	if (!rc && ps->o->cmd == GC_FORGET)
		rc = db_exec(d, "DELETE FROM latest WHERE pipeline=?", "t", ps->o->pipeline);
	if (!rc)
		rc = db_exec(d, "DELETE FROM artifacts WHERE hash NOT IN (" ROOTS ")", "");
	if (!rc) {
		st = db_prepare(d, ROOTS, "");
		while (st && sqlite3_step(st) == SQLITE_ROW)
			strs_add(&ps->roots, (const char *)sqlite3_column_text(st, 0));
		db_finish(d, st);
		rc = st ? 0 : -EIO;
	}
	if (!rc)
		rc = ids_query(d, &ps->known, &ps->nknown, db_prepare(d,
		               "SELECT id FROM runs UNION SELECT snapshot_run FROM runs WHERE "
		               "snapshot_run IS NOT NULL ORDER BY 1", ""));
	return rc;
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Step 3's second half: directories of runs without a row, older than the
 * cutoff (left by a crash after a commit). */
static int sweep_orphans(struct pass *ps, uint64_t *bytes)
{
	DIR *d = opendir(ps->f->runs_dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	struct dirent *e;
	int rc = 0;
	while ((errno = 0, e = readdir(d))) {
		const char *n = e->d_name;
		if (!*n || n[0] == '0' || strspn(n, "0123456789") != strlen(n) || strlen(n) > 18)
			continue;
		int64_t id = strtoll(n, NULL, 10);
		if (bsearch(&id, ps->known, ps->nknown, sizeof *ps->known, cmp_id))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode) ||
		    (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9 >= ps->cutoff)
			continue;
		int r = remove_dir(ps->f, id, ps->o->dry, bytes);
		if (r < 0 && !rc)
			rc = r;
	}
	if (errno && !rc)
		rc = -errno;
	closedir(d);
	return rc;
}

int gc_execute(struct flowy *f, const struct gc_opts *o, struct gc_result *out,
               char **why)
{
	memset(out, 0, sizeof *out);
	*why = NULL;
	if (pthread_mutex_trylock(&gc_busy)) {
		*why = xstrdup("another gc or forget is running");
		return -EBUSY;
	}
	double t0 = util_now();
	struct pass ps = {.f = f, .o = o, .cutoff = t0};
	struct strs pins = {0};
	struct cas_mark *m = NULL;
	int rc = collect_pins(f, &pins);

	db_lock(f->db);
	int begun = !rc;
	if (begun)
		rc = db_begin(f->db);
	if (!rc)
		rc = plan_rows(&ps, &pins);
	if (begun && (rc || o->dry))
		db_rollback(f->db);
	else if (begun)
		rc = db_commit(f->db);
	db_unlock(f->db);
	if (rc) {
		if (!ps.why)
			ps.why = xasprintf("the database: %s", strerror(-rc));
		goto out;
	}
	/* 2: objects */
	m = cas_mark_new();
	for (size_t i = 0; !rc && i < ps.roots.n; i++) {
		rc = cas_mark_add(f->cas, m, ps.roots.v[i], 0);
		if (rc == -EINVAL)
			rc = 0; /* a recorded name that is no object name marks nothing */
	}
	if (rc) {
		ps.why = xasprintf("marking: %s (nothing removed)", strerror(-rc));
		goto out;
	}
	struct cas_sweep sw = {0};
	rc = cas_sweep(f->cas, m, ps.cutoff, o->dry, &sw);
	out->objects = sw.objects;
	out->bytes = sw.bytes;
	out->spared = sw.spared;
	/* 3: directories */
	for (size_t i = 0; i < ps.nvictims; i++) {
		int r = remove_dir(f, ps.victims[i], o->dry, &out->bytes);
		if (r < 0 && !rc)
			rc = r;
	}
	for (size_t i = 0; i < ps.nvictims; i++) /* (dry: their rows are back) */
		ids_add(&ps.known, &ps.nknown, ps.victims[i]);
	qsort(ps.known, ps.nknown, sizeof *ps.known, cmp_id);
	int r = sweep_orphans(&ps, &out->bytes);
	if (r < 0 && !rc)
		rc = r;
	out->bytes = out->bytes > ps.made ? out->bytes - ps.made : 0;
	if (rc)
		ps.why = xasprintf("some files could not be removed: %s", strerror(-rc));
	/* 4: the record */
	out->runs = ps.victims;
	out->nruns = ps.nvictims;
	ps.victims = NULL;
	out->duration = util_now() - t0;
	char *cmd = gc_describe(o), *ids = gc_ids_text(out->runs, out->nruns);
	int lr = db_exec(f->db, "INSERT INTO gc_log(time, command, dry, runs, run_ids, "
	                 "objects, bytes, duration) VALUES(?, ?, ?, ?, ?, ?, ?, ?)", "dtiitiid",
	                 t0, cmd, (int64_t)o->dry, (int64_t)out->nruns, ids,
	                 (int64_t)out->objects, (int64_t)out->bytes, out->duration);
	if (lr < 0 && !rc) {
		rc = lr;
		ps.why = xasprintf("done, but gc.log was not written: %s", strerror(-lr));
	}
	free(ids);
	free(cmd);
out:
	cas_mark_free(m);
	strs_free(&ps.roots);
	strs_free(&pins);
	free(ps.victims);
	free(ps.known);
	pthread_mutex_unlock(&gc_busy);
	*why = ps.why;
	return rc;
}
