/*
 * views/lineage.c - lineage/: where every artifact came from and what was
 * made from it, as files and symlinks.
 *
 *   lineage/sha256/<hex>/producer     key<TAB>value: pipeline, step, run,
 *                                     output (or source, for a file: input)
 *   lineage/sha256/<hex>/run          -> ../../../runs/<id>
 *   lineage/sha256/<hex>/params       the producing step's params (JSON)
 *   lineage/sha256/<hex>/parents/<in> -> ../../<parent hex>
 *   lineage/sha256/<hex>/children/<pipeline>:<step>:<output>
 *                                     -> ../../<child hex>
 *   lineage/sha256/<hex>/ancestors    the whole chain up, indented text:
 *   lineage/sha256/<hex>/descendants  name<TAB>pipeline<TAB>step<TAB>run<TAB>hash
 *   lineage/sha256/<hex>/registry     model<TAB>version<TAB>aliases: the
 *                                     registry versions it is (live)
 *   lineage/<p>/<name>                -> ../sha256/<hex>, the latest
 *
 * The producer of an artifact is the first run that computed it (not one
 * that reused it from the cache). What made an artifact never changes, so
 * producer, run, params, parents and ancestors are immutable to the
 * kernel; children, descendants and registry change and are rendered
 * fresh.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/util.h"
#include "flowyfs/view.h"

struct origin {
	int produced;
	int64_t run;
	char *pipeline, *step, *name;
	char *source;     /* the reference an unproduced artifact came in by */
};

static void origin_free(struct origin *o)
{
	free(o->pipeline);
	free(o->step);
	free(o->name);
	free(o->source);
	memset(o, 0, sizeof *o);
}

/* Who made hex; lock held. 0 or -ENOENT when flowyfs never saw it. */
static int origin_of(struct flowy *f, const char *hex, struct origin *o)
{
	memset(o, 0, sizeof *o);
	sqlite3_stmt *st = db_prepare(f->db,
		"SELECT io.run_id, r.pipeline, io.step, io.name FROM step_io io "
		"JOIN runs r ON r.id=io.run_id JOIN steps s ON s.run_id=io.run_id AND "
		"s.name=io.step WHERE io.hash=? AND io.dir='out' "
		"ORDER BY s.cached, io.run_id LIMIT 1", "t", hex);
	if (st && sqlite3_step(st) == SQLITE_ROW) {
		o->produced = 1;
		o->run = sqlite3_column_int64(st, 0);
		o->pipeline = xstrdup((const char *)sqlite3_column_text(st, 1));
		o->step = xstrdup((const char *)sqlite3_column_text(st, 2));
		o->name = xstrdup((const char *)sqlite3_column_text(st, 3));
	}
	db_finish(f->db, st);
	if (o->produced)
		return 0;
	st = db_prepare(f->db, "SELECT ref, name FROM step_io WHERE hash=? AND dir='in' "
	                "ORDER BY run_id LIMIT 1", "t", hex);
	int rc = -ENOENT;
	if (st && sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *ref = sqlite3_column_text(st, 0);
		o->source = xstrdup(ref ? (const char *)ref : "");
		o->name = xstrdup((const char *)sqlite3_column_text(st, 1));
		rc = 0;
	}
	db_finish(f->db, st);
	return rc;
}

static void line_of(struct strbuf *sb, int depth, const char *name,
                    const struct origin *o, const char *hex)
{
	for (int i = 0; i < depth; i++)
		strbuf_puts(sb, "  ");
	if (o->produced)
		strbuf_printf(sb, "%s\t%s\t%s\t%lld\t%s\n", name, o->pipeline, o->step,
		              (long long)o->run, hex);
	else
		strbuf_printf(sb, "%s\t%s\t-\t-\t%s\n", name, o->source ? o->source : "-", hex);
}

struct seen {
	char **v;
	size_t n;
};

static int seen_add(struct seen *s, const char *hex)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], hex))
			return 0;
	s->v = xrealloc(s->v, (s->n + 1) * sizeof *s->v);
	s->v[s->n++] = xstrdup(hex);
	return 1;
}

static void seen_free(struct seen *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

/* Edges of the graph: parents (inputs of the producing step) or children
 * (outputs of steps that read hex), as (name, hash) pairs. Lock held. */
static size_t edges(struct flowy *f, const char *hex, const struct origin *o, int up,
                    char ***names, char ***hashes)
{
	sqlite3_stmt *st;
	*names = NULL;
	*hashes = NULL;
	if (up && !o->produced)
		return 0;
	st = up ? db_prepare(f->db, "SELECT name, hash FROM step_io WHERE run_id=? AND "
	                     "step=? AND dir='in' ORDER BY name", "it", o->run, o->step)
	        : db_prepare(f->db, "SELECT r.pipeline || ':' || o.step || ':' || o.name, "
	                     "o.hash FROM step_io i JOIN step_io o ON o.run_id=i.run_id AND "
	                     "o.step=i.step AND o.dir='out' JOIN runs r ON r.id=o.run_id "
	                     "WHERE i.hash=? AND i.dir='in' ORDER BY o.run_id", "t", hex);
	size_t n = 0;
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *h = (const char *)sqlite3_column_text(st, 1);
		size_t k;
		for (k = 0; k < n && strcmp((*names)[k], name); k++)
			;
		if (k == n) {
			*names = xrealloc(*names, (n + 1) * sizeof **names);
			*hashes = xrealloc(*hashes, (n + 1) * sizeof **hashes);
			(*names)[n] = xstrdup(name);
			(*hashes)[n++] = xstrdup(h);
		} else { /* a later run made a newer child of the same name */
			free((*hashes)[k]);
			(*hashes)[k] = xstrdup(h);
		}
	}
	db_finish(f->db, st);
	return n;
}

static void free_edges(char **names, char **hashes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(names[i]);
		free(hashes[i]);
	}
	free(names);
	free(hashes);
}

/* Depth-first walk; a node already shown is marked and not expanded. */
static void walk(struct flowy *f, struct strbuf *sb, struct seen *seen,
                 const char *name, const char *hex, int depth, int up)
{
	struct origin o;
	if (origin_of(f, hex, &o) < 0)
		memset(&o, 0, sizeof o);
	line_of(sb, depth, name, &o, hex);
	if (!seen_add(seen, hex)) {
		sb->len--; /* mark the repeat on the same line */
		strbuf_puts(sb, "\t(see above)\n");
		origin_free(&o);
		return;
	}
	char **names, **hashes;
	size_t n = edges(f, hex, &o, up, &names, &hashes);
	for (size_t i = 0; i < n; i++)
		walk(f, sb, seen, names[i], hashes[i], depth + 1, up);
	free_edges(names, hashes, n);
	origin_free(&o);
}

enum lfile { L_NONE, L_PRODUCER, L_RUN, L_PARAMS, L_PARENTS, L_CHILDREN,
             L_ANCESTORS, L_DESCENDANTS, L_REGISTRY };

static const char *const lfile_names[] = {
	[L_PRODUCER] = "producer", [L_RUN] = "run", [L_PARAMS] = "params",
	[L_PARENTS] = "parents", [L_CHILDREN] = "children",
	[L_ANCESTORS] = "ancestors", [L_DESCENDANTS] = "descendants",
	[L_REGISTRY] = "registry",
};

struct lpath {
	int n;
	char *part[6];
	char buf[1024];
	enum lfile file;
};

static int parse(const char *path, struct lpath *lp)
{
	lp->n = view_split(path, lp->buf, sizeof lp->buf, lp->part, 6);
	lp->file = L_NONE;
	if (lp->n < 0 || lp->n > 5)
		return -ENOENT;
	if (lp->n >= 3 && !strcmp(lp->part[1], "sha256")) {
		if (!cas_hex_valid(lp->part[2]))
			return -ENOENT;
		if (lp->n >= 4) {
			for (int k = L_PRODUCER; k <= L_REGISTRY; k++)
				if (!strcmp(lp->part[3], lfile_names[k]))
					lp->file = (enum lfile)k;
			if (!lp->file)
				return -ENOENT;
			if (lp->n == 5 && lp->file != L_PARENTS && lp->file != L_CHILDREN)
				return -ENOENT;
		}
	} else if (lp->n > 3) {
		return -ENOENT;
	}
	return 0;
}

/* registry: model, version and the aliases pointing at it (comma
 * separated), one line per model the artifact is a version of. */
static void render_registry(struct flowy *f, const char *hex, struct strbuf *sb)
{
	strbuf_puts(sb, "model\tversion\taliases\n");
	sqlite3_stmt *st = db_prepare(f->db, "SELECT v.model, v.version, (SELECT "
	                              "group_concat(alias, ',') FROM (SELECT alias FROM "
	                              "registry_aliases a WHERE a.model=v.model AND "
	                              "a.version=v.version ORDER BY alias)) FROM "
	                              "registry_versions v WHERE v.hash=? ORDER BY v.model",
	                              "t", hex);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *al = sqlite3_column_text(st, 2);
		strbuf_printf(sb, "%s\tv%lld\t%s\n", sqlite3_column_text(st, 0),
		              (long long)sqlite3_column_int64(st, 1), al ? (const char *)al : "");
	}
	db_finish(f->db, st);
}

/* The file which of hex, at path: every one is a function of the
 * database alone, so a text kept for this generation is taken as it is,
 * and what is rendered is kept. NULL when flowyfs never saw hex. */
static char *render(struct flowy *f, const char *path, const char *hex, enum lfile which)
{
	struct strbuf sb = {0};
	struct origin o;
	uint64_t gen;
	char *kept = view_kept_text(f, path, &gen);
	if (kept)
		return kept;
	if (origin_of(f, hex, &o) < 0)
		return NULL;
	if (which == L_PRODUCER) {
		if (o.produced)
			strbuf_printf(&sb, "pipeline\t%s\nstep\t%s\nrun\t%lld\noutput\t%s\n",
			              o.pipeline, o.step, (long long)o.run, o.name);
		else
			strbuf_printf(&sb, "source\t%s\n", o.source);
	} else if (which == L_REGISTRY) {
		render_registry(f, hex, &sb);
	} else if (which == L_PARAMS) {
		char *p = o.produced ? db_text(f->db, "SELECT params FROM steps WHERE "
		                               "run_id=? AND name=?", "it", o.run, o.step) : NULL;
		strbuf_printf(&sb, "%s\n", p ? p : "{}");
		free(p);
	} else {
		struct seen seen = {0};
		walk(f, &sb, &seen, o.name, hex, 0, which == L_ANCESTORS);
		seen_free(&seen);
	}
	origin_free(&o);
	view_keep(path, gen, sb.buf ? sb.buf : "");
	return strbuf_detach(&sb, NULL);
}

static char *latest(struct flowy *f, const char *p, const char *name)
{
	return db_text(f->db, "SELECT hash FROM latest WHERE pipeline=? AND name=?",
	               "tt", p, name);
}

/* Everything below runs with the database lock held. */
static int getattr_locked(struct flowy *f, const char *path, struct lpath *lp,
                          struct view_attr *a)
{
	if (lp->n == 1 || (lp->n == 2 && !strcmp(lp->part[1], "sha256"))) {
		a->mode = S_IFDIR | 0555;
		return 0;
	}
	if (lp->n == 2) {
		if (!db_int(f->db, 0, "SELECT count(*) FROM latest WHERE pipeline=?", "t",
		            lp->part[1]))
			return -ENOENT;
		a->mode = S_IFDIR | 0555;
		return 0;
	}
	if (lp->n == 3 && strcmp(lp->part[1], "sha256")) {
		char *h = latest(f, lp->part[1], lp->part[2]);
		if (!h)
			return -ENOENT;
		a->mode = S_IFLNK | 0777;
		a->size = strlen("../sha256/") + strlen(h);
		free(h);
		return 0;
	}
	const char *hex = lp->part[2];
	struct origin o;
	if (origin_of(f, hex, &o) < 0)
		return -ENOENT;
	int rc = 0;
	a->immutable = lp->file != L_CHILDREN && lp->file != L_DESCENDANTS &&
	               lp->file != L_REGISTRY;
	if (lp->n == 3 || (lp->n == 4 && (lp->file == L_PARENTS || lp->file == L_CHILDREN))) {
		a->mode = S_IFDIR | 0555;
		a->immutable = lp->n == 3 || lp->file == L_PARENTS;
	} else if (lp->file == L_RUN) {
		if (o.produced) {
			a->mode = S_IFLNK | 0777;
			a->size = (uint64_t)snprintf(NULL, 0, "../../../runs/%lld", (long long)o.run);
		} else {
			rc = -ENOENT;
		}
	} else if (lp->n == 5) {
		char **names, **hashes;
		size_t n = edges(f, hex, &o, lp->file == L_PARENTS, &names, &hashes);
		rc = -ENOENT;
		for (size_t i = 0; i < n; i++)
			if (!strcmp(names[i], lp->part[4])) {
				a->mode = S_IFLNK | 0777;
				a->size = strlen("../../") + strlen(hashes[i]);
				rc = 0;
			}
		free_edges(names, hashes, n);
	} else {
		if (!view_cached_attr(a, path) && !view_kept_attr(f, path, a)) {
			char *t = render(f, path, hex, lp->file);
			view_generated_attr(a, path, t ? t : xstrdup(""));
		}
		a->immutable = lp->file != L_DESCENDANTS && lp->file != L_REGISTRY;
	}
	origin_free(&o);
	return rc;
}

static int lineage_getattr(struct flowy *f, const char *path, struct view_attr *a)
{
	struct lpath lp;
	if (parse(path, &lp) < 0)
		return -ENOENT;
	db_lock(f->db);
	int rc = getattr_locked(f, path, &lp, a);
	db_unlock(f->db);
	/* An artifact's lineage has its creation time (descendants grow, but
	 * that is a change worth an mtime). */
	if (!rc && lp.n >= 3 && !strcmp(lp.part[1], "sha256"))
		a->mtime = view_artifact_time(f, lp.part[2]);
	return rc;
}

static int lineage_readdir(struct flowy *f, const char *path, struct dirlist *l)
{
	struct lpath lp;
	if (parse(path, &lp) < 0)
		return -ENOENT;
	int rc = 0;
	sqlite3_stmt *st = NULL;
	db_lock(f->db);
	l->kept = lp.n <= 2; /* lineage/, sha256/ and <p>/: the database's alone */
	if (lp.n == 1) {
		dirlist_add(l, "sha256", S_IFDIR);
		st = db_prepare(f->db, "SELECT DISTINCT pipeline FROM latest ORDER BY 1", "");
	} else if (lp.n == 2 && !strcmp(lp.part[1], "sha256")) {
		st = db_prepare(f->db, "SELECT hash FROM artifacts ORDER BY 1", "");
	} else if (lp.n == 2) {
		st = db_prepare(f->db, "SELECT name FROM latest WHERE pipeline=? ORDER BY 1",
		                "t", lp.part[1]);
	} else if (lp.n == 3) {
		struct origin o;
		if (origin_of(f, lp.part[2], &o) == 0) {
			for (int k = L_PRODUCER; k <= L_REGISTRY; k++)
				if (k != L_RUN || o.produced) /* a source has no run */
					dirlist_add(l, lfile_names[k], k == L_PARENTS || k == L_CHILDREN ?
					            S_IFDIR : k == L_RUN ? S_IFLNK : S_IFREG);
			origin_free(&o);
		} else {
			rc = -ENOENT;
		}
	} else if (lp.n == 4 && (lp.file == L_PARENTS || lp.file == L_CHILDREN)) {
		struct origin o;
		if (origin_of(f, lp.part[2], &o) == 0) {
			char **names, **hashes;
			size_t n = edges(f, lp.part[2], &o, lp.file == L_PARENTS, &names, &hashes);
			for (size_t i = 0; i < n; i++)
				dirlist_add(l, names[i], S_IFLNK);
			free_edges(names, hashes, n);
			origin_free(&o);
		} else {
			rc = -ENOENT;
		}
	} else {
		rc = -ENOTDIR;
	}
	while (st && sqlite3_step(st) == SQLITE_ROW)
		dirlist_add(l, (const char *)sqlite3_column_text(st, 0),
		            lp.n == 1 || !strcmp(lp.part[1], "sha256") ? S_IFDIR : S_IFLNK);
	db_finish(f->db, st);
	db_unlock(f->db);
	return rc;
}

static int lineage_open(struct flowy *f, const char *path, int flags, struct fh *h)
{
	if ((flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	struct lpath lp;
	if (parse(path, &lp) < 0 || lp.n != 4 || lp.file == L_RUN)
		return -ENOENT;
	if (lp.file == L_PARENTS || lp.file == L_CHILDREN)
		return -EISDIR;
	db_lock(f->db);
	uint64_t gen;
	char *t = view_kept_text(f, path, &gen); /* of this generation: before the lookup's */
	if (!t)
		t = view_cache_take(path);
	if (!t)
		t = render(f, path, lp.part[2], lp.file);
	db_unlock(f->db);
	if (!t)
		return -ENOENT;
	view_text_fh(h, t);
	if (lp.file != L_DESCENDANTS && lp.file != L_REGISTRY) {
		h->direct_io = 0;
		h->keep_cache = 1;
	}
	return 0;
}

static int lineage_readlink(struct flowy *f, const char *path, char **out)
{
	struct lpath lp;
	if (parse(path, &lp) < 0)
		return -ENOENT;
	int rc = -EINVAL;
	db_lock(f->db);
	if (lp.n == 3 && strcmp(lp.part[1], "sha256")) {
		char *h = latest(f, lp.part[1], lp.part[2]);
		if (h) {
			*out = xasprintf("../sha256/%s", h);
			rc = 0;
		}
		free(h);
	} else if (lp.n >= 4) {
		struct origin o;
		if (origin_of(f, lp.part[2], &o) == 0) {
			if (lp.n == 4 && lp.file == L_RUN && o.produced) {
				*out = xasprintf("../../../runs/%lld", (long long)o.run);
				rc = 0;
			} else if (lp.n == 5) {
				char **names, **hashes;
				size_t n = edges(f, lp.part[2], &o, lp.file == L_PARENTS, &names,
				                 &hashes);
				for (size_t i = 0; i < n; i++)
					if (!strcmp(names[i], lp.part[4])) {
						*out = xasprintf("../../%s", hashes[i]);
						rc = 0;
					}
				free_edges(names, hashes, n);
			}
			origin_free(&o);
		}
	}
	db_unlock(f->db);
	return rc;
}

const struct view view_lineage = {
	.name = "lineage",
	.getattr = lineage_getattr,
	.readdir = lineage_readdir,
	.open = lineage_open,
	.readlink = lineage_readlink,
};
