/*
 * views/store.c - store/: the object store itself.
 *
 *   store/stats   two TSV tables, rendered at open:
 *                 key value: objects, logical_bytes, stored_bytes,
 *                 dedup_ratio, compression_ratio, runs; then, after a blank
 *                 line, pipeline runs cache_hit_rate bytes.
 *   store/.ctl    write-only, one command a line: gc [keep=N]
 *                 [older-than=AGE] [dry-run] | forget <pipeline> [dry-run]
 *                 (gc.c); the write returns when the command is done.
 *   store/.status whether a gc is running, the last command's outcome and
 *                 the last refused one, with the reason.
 *   store/gc.log  TSV, one row per gc or forget (gc_log table), then a
 *                 total row over those that were not dry runs.
 *
 * objects are the distinct objects reachable from the recorded artifacts
 * (blobs and trees, each once), logical_bytes their content, stored_bytes
 * what they take on disk (cas_stat). dedup_ratio is the bytes every step
 * output of every run would take if each were kept whole (a directory
 * counts all its files) over logical_bytes; compression_ratio is
 * logical_bytes over stored_bytes. Per pipeline: its runs, the share of
 * its finished steps taken from the cache, and the whole size of the
 * distinct outputs its runs made. Ratios have three decimals.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "flowyfs/gc.h"
#include "flowyfs/log.h"
#include "flowyfs/util.h"
#include "flowyfs/view.h"

/* A set of object names, with each one's whole content size. */
struct seen {
	struct seen_e {
		char hex[CAS_HEX_LEN + 1];
		uint64_t whole;  /* a tree: all its files' bytes; a blob: its size */
	} *e;
	size_t n, cap;       /* open addressing; cap is a power of two */
};

static size_t slot_of(const struct seen *s, const char *hex)
{
	size_t h = 0;
	for (int k = 0; k < 16 && hex[k]; k++)
		h = h * 16 + (size_t)(hex[k] <= '9' ? hex[k] - '0' : (hex[k] | 0x20) - 'a' + 10);
	size_t i = h & (s->cap - 1);
	while (s->e[i].hex[0] && strcmp(s->e[i].hex, hex))
		i = (i + 1) & (s->cap - 1);
	return i;
}

/* The entry for hex, added (whole 0) when absent; *added says which. */
static struct seen_e *seen_get(struct seen *s, const char *hex, int *added)
{
	if (2 * (s->n + 1) > s->cap) {
		struct seen old = *s;
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->e = xcalloc(s->cap, sizeof *s->e);
		s->n = 0;
		for (size_t i = 0; i < old.cap; i++)
			if (old.e[i].hex[0]) {
				s->e[slot_of(s, old.e[i].hex)] = old.e[i];
				s->n++;
			}
		free(old.e);
	}
	size_t i = slot_of(s, hex);
	*added = !s->e[i].hex[0];
	if (*added) {
		memcpy(s->e[i].hex, hex, CAS_HEX_LEN + 1);
		s->n++;
	}
	return &s->e[i];
}

#define EMPTY_HEX "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct totals {
	uint64_t objects, logical, stored;
};

/* Count object hex (and, for a tree, what it holds) once; its whole size
 * in *whole. 0 or -errno (a missing object: -ENOENT). */
static int visit(cas *c, struct seen *s, struct totals *t, const char *hex, char type,
                 uint64_t *whole)
{
	char key[CAS_HEX_LEN + 1];
	/* The empty content is both a blob and the empty tree: keep them
	 * apart (a key that is no object name). */
	snprintf(key, sizeof key, "%s", hex);
	if (type == 'd' && !strcmp(hex, EMPTY_HEX))
		key[0] = 'x';
	int added;
	struct seen_e *e = seen_get(s, key, &added);
	if (!added) {
		*whole = e->whole;
		return 0;
	}
	struct cas_stat st;
	int rc = cas_stat(c, hex, &st);
	if (rc < 0)
		return rc;
	t->objects++;
	t->logical += st.size;
	t->stored += st.stored_size;
	uint64_t w = st.size;
	if (type == 'd' || (type == 0 && st.kind == CAS_TREE)) {
		struct cas_tree *tree = NULL;
		rc = cas_tree_read(c, hex, &tree);
		w = 0;
		for (size_t i = 0; !rc && i < tree->n; i++) {
			uint64_t sub = 0;
			rc = visit(c, s, t, tree->entries[i].hex, tree->entries[i].type, &sub);
			w += sub;
		}
		cas_tree_free(tree);
		if (rc < 0)
			return rc;
	}
	/* seen_get may have moved the table: look the entry up again */
	e = seen_get(s, key, &added);
	e->whole = w;
	*whole = w;
	return 0;
}

static void put_ratio(struct strbuf *sb, const char *key, double num, double den)
{
	char buf[UTIL_DOUBLE_LEN];
	double r = den > 0 ? round(num / den * 1000) / 1000 : 1;
	strbuf_printf(sb, "%s\t%s\n", key, util_fmt_double(buf, r));
}

/* Every line of stats. Lock held. */
static int render_stats(struct flowy *f, char **out)
{
	struct seen s = {0};
	struct totals t = {0};
	struct strbuf sb = {0}, pl = {0};
	uint64_t referenced = 0;
	int rc = 0;
	sqlite3_stmt *st = db_prepare(f->db, "SELECT hash FROM artifacts ORDER BY hash", "");
	while (st && !rc && sqlite3_step(st) == SQLITE_ROW) {
		uint64_t w;
		rc = visit(f->cas, &s, &t, (const char *)sqlite3_column_text(st, 0), 0, &w);
		if (rc == -ENOENT)
			rc = 0; /* recorded but gone: not part of the store */
	}
	db_finish(f->db, st);
	if (!st)
		rc = -EIO;
	st = rc ? NULL : db_prepare(f->db, "SELECT hash FROM step_io WHERE dir='out'", "");
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		int added;
		struct seen_e *e = seen_get(&s, (const char *)sqlite3_column_text(st, 0), &added);
		referenced += e->whole; /* an output is always a recorded artifact */
	}
	db_finish(f->db, st);
	strbuf_puts(&pl, "pipeline\truns\tcache_hit_rate\tbytes\n");
	st = rc ? NULL : db_prepare(f->db, "SELECT r.pipeline, count(DISTINCT r.id), "
	                            "(SELECT count(*) FROM steps s JOIN runs q ON "
	                            "q.id=s.run_id WHERE q.pipeline=r.pipeline AND "
	                            "s.status='cached'), (SELECT count(*) FROM steps s JOIN "
	                            "runs q ON q.id=s.run_id WHERE q.pipeline=r.pipeline AND "
	                            "s.status IN ('cached', 'succeeded')) FROM runs r GROUP "
	                            "BY r.pipeline ORDER BY r.pipeline", "");
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		const char *p = (const char *)sqlite3_column_text(st, 0);
		double cached = sqlite3_column_double(st, 2), done = sqlite3_column_double(st, 3);
		char buf[UTIL_DOUBLE_LEN];
		uint64_t bytes = 0;
		sqlite3_stmt *o = db_prepare(f->db, "SELECT DISTINCT io.hash FROM step_io io JOIN "
		                             "runs r ON r.id=io.run_id WHERE r.pipeline=? AND "
		                             "io.dir='out'", "t", p);
		while (o && sqlite3_step(o) == SQLITE_ROW) {
			int added;
			bytes += seen_get(&s, (const char *)sqlite3_column_text(o, 0), &added)->whole;
		}
		db_finish(f->db, o);
		strbuf_printf(&pl, "%s\t%lld\t%s\t%llu\n", p,
		              (long long)sqlite3_column_int64(st, 1),
		              util_fmt_double(buf, done > 0 ? round(cached / done * 1000) / 1000 : 0),
		              (unsigned long long)bytes);
	}
	db_finish(f->db, st);
	if (!rc) {
		strbuf_printf(&sb, "key\tvalue\nobjects\t%llu\nlogical_bytes\t%llu\n"
		              "stored_bytes\t%llu\n", (unsigned long long)t.objects,
		              (unsigned long long)t.logical, (unsigned long long)t.stored);
		put_ratio(&sb, "dedup_ratio", (double)referenced, (double)t.logical);
		put_ratio(&sb, "compression_ratio", (double)t.logical, (double)t.stored);
		strbuf_printf(&sb, "runs\t%lld\n\n", (long long)db_int(f->db, 0,
		              "SELECT count(*) FROM runs", ""));
		strbuf_add(&sb, pl.buf, pl.len);
		*out = strbuf_detach(&sb, NULL);
	}
	strbuf_release(&pl);
	strbuf_release(&sb);
	free(s.e);
	return rc;
}

/* stats, kept per generation of the store: the objects it counts are
 * those the database records, and a recorded object does not change. */
static int stats(struct flowy *f, char **out)
{
	uint64_t gen;
	db_lock(f->db);
	int rc = 0;
	*out = view_kept_text(f, "store/stats", &gen);
	if (!*out && !(rc = render_stats(f, out)))
		view_keep("store/stats", gen, *out);
	db_unlock(f->db);
	return rc;
}

/* ---- .ctl and .status ------------------------------------------------ */

static pthread_mutex_t status_lock = PTHREAD_MUTEX_INITIALIZER;
static char *last_done, *last_refused;   /* lines of .status, or NULL */
static int running;                      /* commands in progress */

static void status_set(char **slot, char *line)
{
	pthread_mutex_lock(&status_lock);
	free(*slot);
	*slot = line;
	pthread_mutex_unlock(&status_lock);
}

static char *render_status(void)
{
	struct strbuf sb = {0};
	pthread_mutex_lock(&status_lock);
	strbuf_printf(&sb, "gc %s\n", running ? "running" : "idle");
	strbuf_printf(&sb, "last command: %s\n", last_done ? last_done : "none");
	if (last_refused)
		strbuf_printf(&sb, "last refusal: %s\n", last_refused);
	pthread_mutex_unlock(&status_lock);
	return strbuf_detach(&sb, NULL);
}

/* Run one command line (printable, bounded); 0 or -errno. */
static int ctl_line(void *arg, const char *line)
{
	struct flowy *f = arg;
	struct gc_opts o;
	struct gc_result res;
	char *why = NULL;
	int rc = gc_parse(line, &o, &why);
	if (!rc) {
		pthread_mutex_lock(&status_lock);
		running++;
		pthread_mutex_unlock(&status_lock);
		rc = gc_execute(f, &o, &res, &why);
		pthread_mutex_lock(&status_lock);
		running--;
		pthread_mutex_unlock(&status_lock);
	}
	if (rc) {
		char *msg = xasprintf("%s: %s: %s", line, strerror(-rc), why ? why : "");
		log_info("store/.ctl: %s", msg);
		status_set(&last_refused, msg);
	} else {
		char *cmd = gc_describe(&o), *ids = gc_ids_text(res.runs, res.nruns);
		char *msg = xasprintf("%s: %s%zu runs%s%s%s, %llu objects, %llu bytes", cmd,
		                      o.dry ? "would remove " : "removed ", res.nruns,
		                      res.nruns ? " (" : "", ids, res.nruns ? ")" : "",
		                      (unsigned long long)res.objects,
		                      (unsigned long long)res.bytes);
		log_info("store/.ctl: %s", msg);
		status_set(&last_done, msg);
		free(ids);
		free(cmd);
		gc_result_release(&res);
	}
	free(why);
	return rc;
}

static int store_write(struct flowy *f, struct fh *h, const char *buf, size_t len,
                       off_t off)
{
	if (h->kind != FH_CTL)
		return -EBADF;
	return view_ctl_lines(buf, len, ctl_line, f);
}

/* ---- gc.log ------------------------------------------------------------ */

static int render_gc_log(struct flowy *f, char **out)
{
	struct strbuf sb = {0};
	int64_t runs = 0, objects = 0, bytes = 0;
	double secs = 0;
	strbuf_puts(&sb, "time\tcommand\truns\tobjects\tbytes\tduration\tremoved_runs\n");
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db, "SELECT time, command, dry, runs, objects, "
	                              "bytes, duration, run_ids FROM gc_log ORDER BY id", "");
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		view_fmt_time(&sb, sqlite3_column_double(st, 0));
		strbuf_printf(&sb, "\t%s\t%lld\t%lld\t%lld\t", sqlite3_column_text(st, 1),
		              (long long)sqlite3_column_int64(st, 3),
		              (long long)sqlite3_column_int64(st, 4),
		              (long long)sqlite3_column_int64(st, 5));
		view_fmt_secs(&sb, sqlite3_column_double(st, 6));
		strbuf_printf(&sb, "\t%s\n", sqlite3_column_text(st, 7));
		if (!sqlite3_column_int64(st, 2)) {
			runs += sqlite3_column_int64(st, 3);
			objects += sqlite3_column_int64(st, 4);
			bytes += sqlite3_column_int64(st, 5);
			secs += sqlite3_column_double(st, 6);
		}
	}
	db_finish(f->db, st);
	db_unlock(f->db);
	if (!st) {
		strbuf_release(&sb);
		return -EIO;
	}
	strbuf_printf(&sb, "total\t\t%lld\t%lld\t%lld\t", (long long)runs, (long long)objects,
	              (long long)bytes);
	view_fmt_secs(&sb, secs);
	strbuf_puts(&sb, "\t\n");
	*out = strbuf_detach(&sb, NULL);
	return 0;
}

/* ---- the view ------------------------------------------------------------ */

enum sfile { SF_NONE, SF_STATS, SF_GCLOG, SF_STATUS, SF_CTL };

static enum sfile file_of(const char *path)
{
	static const char *const names[] = {[SF_STATS] = "store/stats",
		[SF_GCLOG] = "store/gc.log", [SF_STATUS] = "store/.status",
		[SF_CTL] = "store/.ctl"};
	for (int k = SF_STATS; k <= SF_CTL; k++)
		if (!strcmp(path, names[k]))
			return (enum sfile)k;
	return SF_NONE;
}

static int render(struct flowy *f, enum sfile k, char **out)
{
	switch (k) {
	case SF_STATS: return stats(f, out);
	case SF_GCLOG: return render_gc_log(f, out);
	case SF_STATUS: *out = render_status(); return 0;
	default: return -ENOENT;
	}
}

static int store_getattr(struct flowy *f, const char *path, struct view_attr *a)
{
	if (!strcmp(path, "store")) {
		a->mode = S_IFDIR | 0555;
		return 0;
	}
	enum sfile k = file_of(path);
	if (k == SF_NONE)
		return -ENOENT;
	if (k == SF_CTL) {
		a->mode = S_IFREG | 0200;
		a->mtime = util_now();
		return 0;
	}
	if (view_cached_attr(a, path))
		return 0;
	char *text = NULL;
	int rc = render(f, k, &text);
	if (!rc)
		view_generated_attr(a, path, text);
	return rc;
}

static int store_readdir(struct flowy *f, const char *path, struct dirlist *l)
{
	if (strcmp(path, "store"))
		return -ENOTDIR;
	dirlist_add(l, "stats", S_IFREG);
	dirlist_add(l, "gc.log", S_IFREG);
	dirlist_add(l, ".status", S_IFREG);
	dirlist_add(l, ".ctl", S_IFREG);
	return 0;
}

static int store_open(struct flowy *f, const char *path, int flags, struct fh *h)
{
	enum sfile k = file_of(path);
	int acc = flags & O_ACCMODE;
	if (k == SF_NONE)
		return strcmp(path, "store") ? -ENOENT : -EISDIR;
	if (k == SF_CTL)
		return view_ctl_open(h, flags);
	if (acc != O_RDONLY)
		return -EROFS;
	char *text = view_cache_take(path);
	int rc = text ? 0 : render(f, k, &text);
	if (!rc)
		view_text_fh(h, text);
	return rc;
}

/* `echo gc > store/.ctl` truncates first. */
static int store_truncate(struct flowy *f, const char *path, off_t size)
{
	return file_of(path) == SF_CTL ? 0 : -EROFS;
}

const struct view view_store = {
	.name = "store",
	.getattr = store_getattr,
	.readdir = store_readdir,
	.open = store_open,
	.write = store_write,
	.truncate = store_truncate,
};
