/*
 * views/store.c - store/: the object store itself.
 *
 *   store/stats   two TSV tables, rendered at open:
 *                 key value: objects, logical_bytes, stored_bytes,
 *                 dedup_ratio, compression_ratio, runs; then, after a blank
 *                 line, pipeline runs cache_hit_rate bytes.
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

static int store_getattr(struct flowy *f, const char *path, struct view_attr *a)
{
	if (!strcmp(path, "store")) {
		a->mode = S_IFDIR | 0555;
		return 0;
	}
	if (strcmp(path, "store/stats"))
		return -ENOENT;
	if (view_cached_attr(a, path))
		return 0;
	char *text = NULL;
	int rc = stats(f, &text);
	if (!rc)
		view_generated_attr(a, path, text);
	return rc;
}

static int store_readdir(struct flowy *f, const char *path, struct dirlist *l)
{
	if (strcmp(path, "store"))
		return -ENOTDIR;
	dirlist_add(l, "stats", S_IFREG);
	return 0;
}

static int store_open(struct flowy *f, const char *path, int flags, struct fh *h)
{
	if ((flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	if (strcmp(path, "store/stats"))
		return -EISDIR;
	char *text = view_cache_take(path);
	int rc = text ? 0 : stats(f, &text);
	if (!rc)
		view_text_fh(h, text);
	return rc;
}

const struct view view_store = {
	.name = "store",
	.getattr = store_getattr,
	.readdir = store_readdir,
	.open = store_open,
};
