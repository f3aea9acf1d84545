/*
 * views/registry.c - registry/: models, their versions and aliases, from
 * the registry tables (registry.c).
 *
 *   registry/<model>/            mkdir makes a model, rmdir removes an
 *                                empty one (no versions)
 *   registry/<model>/v<N>        symlink -> ../../artifacts/sha256/<hex>
 *   registry/<model>/<alias>     symlink -> v<N>: made with ln -s, moved
 *                                with ln -sfn (a temporary link renamed
 *                                over), removed with rm
 *   registry/<model>/versions.tsv  version hash pipeline run step output
 *                                created, then the producing run's last
 *                                value of every metric
 *   registry/<model>/history     time alias from to uid: every alias move
 *   registry/<model>/.ctl        write-only: add sha256:<hex>
 *   registry/<model>/.status     the model's counts and the last refused
 *                                change, with its reason
 *
 * Anything else is refused: a version cannot be removed or replaced
 * (EACCES), an alias must point at an existing version (ENOENT) by its
 * name v<N> (EINVAL), and plain files cannot be made (EACCES). Refusals
 * are also written to the daemon's log.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/log.h"
#include "flowyfs/registry.h"
#include "flowyfs/sched.h"
#include "flowyfs/util.h"
#include "flowyfs/view.h"

enum rfile { RF_NONE, RF_VERSIONS, RF_HISTORY, RF_CTL, RF_STATUS };

static const char *const rfile_names[] = {
	[RF_VERSIONS] = "versions.tsv", [RF_HISTORY] = "history", [RF_CTL] = ".ctl",
	[RF_STATUS] = ".status",
};

/* Parsed path: registry[/<model>[/<name>]]. */
struct rpath {
	char model[REGISTRY_NAME_MAX + 1];
	char name[REGISTRY_NAME_MAX + 1];
	int depth;          /* 0, 1 or 2; -1: deeper or too long */
	enum rfile file;
	int64_t version;    /* name is v<N> */
};

static void parse(const char *path, struct rpath *rp)
{
	char buf[512], *parts[3];
	memset(rp, 0, sizeof *rp);
	int n = view_split(path, buf, sizeof buf, parts, 3);
	rp->depth = n < 1 || n > 3 ? -1 : n - 1;
	if (rp->depth >= 1 && strlen(parts[1]) > REGISTRY_NAME_MAX)
		rp->depth = -1;
	if (rp->depth >= 2 && strlen(parts[2]) > REGISTRY_NAME_MAX)
		rp->depth = -1;
	if (rp->depth >= 1)
		snprintf(rp->model, sizeof rp->model, "%s", parts[1]);
	if (rp->depth < 2)
		return;
	snprintf(rp->name, sizeof rp->name, "%s", parts[2]);
	for (int k = RF_VERSIONS; k <= RF_STATUS; k++)
		if (!strcmp(rp->name, rfile_names[k]))
			rp->file = (enum rfile)k;
	if (registry_version_parse(rp->name, &rp->version) < 0)
		rp->version = 0;
}

/* ---- the last refusal of each model, for .status ---------------------- */

static struct refusal {
	char *model, *line;
	struct refusal *next;
} *refusals;
static pthread_mutex_t refusal_lock = PTHREAD_MUTEX_INITIALIZER;

/* Remember (and log) that what on model was refused with rc for why. */
static int refuse(const char *model, const char *what, int rc, const char *why)
{
	char *line = xasprintf("last refusal: %s: %s: %s", what, strerror(-rc), why);
	log_info("registry/%s: %s", model, line + strlen("last refusal: "));
	pthread_mutex_lock(&refusal_lock);
	struct refusal *r = refusals;
	while (r && strcmp(r->model, model))
		r = r->next;
	if (!r) {
		r = xcalloc(1, sizeof *r);
		r->model = xstrdup(model);
		r->next = refusals;
		refusals = r;
	}
	free(r->line);
	r->line = line;
	pthread_mutex_unlock(&refusal_lock);
	return rc;
}

static char *refusal_of(const char *model)
{
	char *line = NULL;
	pthread_mutex_lock(&refusal_lock);
	for (struct refusal *r = refusals; r; r = r->next)
		if (!strcmp(r->model, model))
			line = r->line ? xstrdup(r->line) : NULL;
	pthread_mutex_unlock(&refusal_lock);
	return line;
}

/* ---- rendering ---------------------------------------------------------- */

static void fmt_version(struct strbuf *sb, sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) != SQLITE_NULL)
		strbuf_printf(sb, "v%lld", (long long)sqlite3_column_int64(st, col));
}

static const char *col_text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return t ? (const char *)t : "";
}

static char *render_versions(struct flowy *f, const char *model)
{
	struct strbuf sb = {0};
	char **names = NULL;
	size_t n = 0;
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db, "SELECT DISTINCT m.name FROM registry_versions v "
	                              "JOIN metrics m ON m.run_id=v.run_id WHERE v.model=? "
	                              "ORDER BY m.name", "t", model);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		names = xrealloc(names, (n + 1) * sizeof *names);
		names[n++] = xstrdup(col_text(st, 0));
	}
	db_finish(f->db, st);
	strbuf_puts(&sb, "version\thash\tpipeline\trun\tstep\toutput\tcreated");
	for (size_t i = 0; i < n; i++)
		strbuf_printf(&sb, "\t%s", names[i]);
	strbuf_puts(&sb, "\n");
	st = db_prepare(f->db, "SELECT version, hash, pipeline, run_id, step, output, created "
	                "FROM registry_versions WHERE model=? ORDER BY version", "t", model);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		int64_t run = sqlite3_column_int64(st, 3);
		strbuf_printf(&sb, "v%lld\t%s\t%s\t", (long long)sqlite3_column_int64(st, 0),
		              col_text(st, 1), col_text(st, 2));
		if (run)
			strbuf_printf(&sb, "%lld", (long long)run);
		strbuf_printf(&sb, "\t%s\t%s\t", col_text(st, 4), col_text(st, 5));
		view_fmt_time(&sb, sqlite3_column_double(st, 6));
		for (size_t i = 0; i < n; i++) {
			strbuf_puts(&sb, "\t");
			sqlite3_stmt *m = run ? db_prepare(f->db, "SELECT value FROM metrics WHERE "
			                                   "run_id=? AND name=? ORDER BY time DESC, "
			                                   "idx DESC LIMIT 1", "it", run, names[i])
			                      : NULL;
			if (m && sqlite3_step(m) == SQLITE_ROW) {
				char buf[UTIL_DOUBLE_LEN];
				strbuf_puts(&sb, util_fmt_double(buf, sqlite3_column_double(m, 0)));
			}
			db_finish(f->db, m);
		}
		strbuf_puts(&sb, "\n");
	}
	db_finish(f->db, st);
	db_unlock(f->db);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return strbuf_detach(&sb, NULL);
}

static char *render_history(struct flowy *f, const char *model)
{
	struct strbuf sb = {0};
	strbuf_puts(&sb, "time\talias\tfrom\tto\tuid\n");
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db, "SELECT time, alias, from_v, to_v, uid FROM "
	                              "registry_history WHERE model=? ORDER BY id", "t", model);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		view_fmt_time(&sb, sqlite3_column_double(st, 0));
		strbuf_printf(&sb, "\t%s\t", col_text(st, 1));
		fmt_version(&sb, st, 2);
		strbuf_puts(&sb, "\t");
		fmt_version(&sb, st, 3);
		strbuf_printf(&sb, "\t%lld\n", (long long)sqlite3_column_int64(st, 4));
	}
	db_finish(f->db, st);
	db_unlock(f->db);
	return strbuf_detach(&sb, NULL);
}

static char *render_status(struct flowy *f, const char *model)
{
	struct strbuf sb = {0};
	db_lock(f->db);
	int64_t nv = db_int(f->db, 0, "SELECT count(*) FROM registry_versions WHERE model=?",
	                    "t", model);
	int64_t na = db_int(f->db, 0, "SELECT count(*) FROM registry_aliases WHERE model=?",
	                    "t", model);
	db_unlock(f->db);
	strbuf_printf(&sb, "model %s\nversions %lld\naliases %lld\n", model, (long long)nv,
	              (long long)na);
	char *line = refusal_of(model);
	if (line)
		strbuf_printf(&sb, "%s\n", line);
	free(line);
	return strbuf_detach(&sb, NULL);
}

static char *render(struct flowy *f, const struct rpath *rp)
{
	switch (rp->file) {
	case RF_VERSIONS: return render_versions(f, rp->model);
	case RF_HISTORY: return render_history(f, rp->model);
	default: return render_status(f, rp->model);
	}
}

/* The link text of registry/<model>/<name> in *out (malloc'd): 0, -ENOENT. */
static int link_of(struct flowy *f, const struct rpath *rp, char **out)
{
	char hex[CAS_HEX_LEN + 1];
	int64_t v = 0;
	int rc;
	if (rp->version) {
		rc = registry_version_hash(f->db, rp->model, rp->version, hex);
		if (!rc)
			*out = xasprintf("../../artifacts/sha256/%s", hex);
		return rc;
	}
	if (rp->file || !registry_alias_name_valid(rp->name, NULL))
		return -ENOENT;
	rc = registry_alias_get(f->db, rp->model, rp->name, &v, NULL);
	if (!rc)
		*out = xasprintf("v%lld", (long long)v);
	return rc;
}

/* ---- the view ----------------------------------------------------------- */

static int rg_getattr(struct flowy *f, const char *path, struct view_attr *a)
{
	struct rpath rp;
	parse(path, &rp);
	if (rp.depth < 0)
		return -ENOENT;
	if (rp.depth == 0) {
		a->mode = S_IFDIR | 0755;
		a->mtime = util_now();
		return 0;
	}
	int rc = registry_model_exists(f->db, rp.model);
	if (rc <= 0)
		return rc < 0 ? rc : -ENOENT;
	if (rp.depth == 1) {
		a->mode = S_IFDIR | 0755;
		a->mtime = util_now();
		return 0;
	}
	if (rp.file == RF_CTL) {
		a->mode = S_IFREG | 0200;
		a->mtime = util_now();
		return 0;
	}
	if (rp.file) {
		if (!view_cached_attr(a, path))
			view_generated_attr(a, path, render(f, &rp));
		return 0;
	}
	char *target = NULL;
	rc = link_of(f, &rp, &target);
	if (rc)
		return rc;
	a->mode = S_IFLNK | 0777;
	a->size = strlen(target);
	a->mtime = util_now();
	free(target);
	return 0;
}

static int rg_readdir(struct flowy *f, const char *path, struct dirlist *l)
{
	struct rpath rp;
	parse(path, &rp);
	if (rp.depth == 0) {
		db_lock(f->db);
		sqlite3_stmt *st = db_prepare(f->db, "SELECT name FROM registry_models "
		                              "ORDER BY name", "");
		while (st && sqlite3_step(st) == SQLITE_ROW)
			dirlist_add(l, col_text(st, 0), S_IFDIR);
		db_finish(f->db, st);
		db_unlock(f->db);
		return st ? 0 : -EIO;
	}
	if (rp.depth != 1)
		return -ENOTDIR;
	int rc = registry_model_exists(f->db, rp.model);
	if (rc <= 0)
		return rc < 0 ? rc : -ENOENT;
	for (int k = RF_VERSIONS; k <= RF_STATUS; k++)
		dirlist_add(l, rfile_names[k], S_IFREG);
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db, "SELECT 'v' || version FROM registry_versions "
	                              "WHERE model=? UNION ALL SELECT alias FROM "
	                              "registry_aliases WHERE model=?", "tt", rp.model,
	                              rp.model);
	while (st && sqlite3_step(st) == SQLITE_ROW)
		dirlist_add(l, col_text(st, 0), S_IFLNK);
	db_finish(f->db, st);
	db_unlock(f->db);
	return st ? 0 : -EIO;
}

static int rg_open(struct flowy *f, const char *path, int flags, struct fh *h)
{
	struct rpath rp;
	parse(path, &rp);
	int acc = flags & O_ACCMODE;
	if (rp.depth != 2 || !rp.file)
		return -EACCES;
	if (rp.file == RF_CTL)
		return view_ctl_open(h, flags);
	if (acc != O_RDONLY)
		return -EACCES;
	char *t = view_cache_take(path);
	view_text_fh(h, t ? t : render(f, &rp));
	return 0;
}

static int rg_readlink(struct flowy *f, const char *path, char **out)
{
	struct rpath rp;
	parse(path, &rp);
	if (rp.depth != 2)
		return -EINVAL;
	return link_of(f, &rp, out);
}

/* One .ctl command of model: add sha256:<hex>. 0 or -errno with *why. */
static int ctl_apply(struct flowy *f, const char *model, const char *line,
                     const char **why, int64_t *v)
{
	const char *p = line;
	struct cas_stat cs;
	if (strncmp(p, "add ", 4)) {
		*why = "the command is: add sha256:<hex>";
		return -EINVAL;
	}
	p += 4;
	while (*p == ' ')
		p++;
	if (strncmp(p, "sha256:", 7) || !cas_hex_valid(p + 7)) {
		*why = "add takes sha256:<64 lowercase hex digits>";
		return -EINVAL;
	}
	int rc = cas_stat(f->cas, p + 7, &cs);
	/* Found, its mtime becomes now: a gc that read the database before
	 * this version is recorded spares it (gc.c). */
	if (!rc && !cas_obj_exists(f->cas, p + 7, cs.kind))
		rc = -ENOENT;
	if (rc < 0) {
		*why = rc == -ENOENT ? "no such artifact in the store" : "cannot read the store";
		return rc;
	}
	rc = registry_version_add(f->db, model, p + 7, NULL, 0, v);
	if (rc == 1) {
		*why = "that content already is a version of the model";
		return -EEXIST;
	}
	if (rc < 0)
		*why = "cannot record the version";
	return rc;
}

struct ctl_arg {
	struct flowy *f;
	const char *model;
};

static int ctl_line(void *arg, const char *cmd)
{
	struct ctl_arg *a = arg;
	const char *why = NULL;
	int64_t v = 0;
	int r = ctl_apply(a->f, a->model, cmd, &why, &v);
	if (r < 0)
		return refuse(a->model, cmd, r, why);
	log_info("registry/%s: %s: v%lld", a->model, cmd, (long long)v);
	return 0;
}

static int rg_write(struct flowy *f, struct fh *h, const char *buf, size_t len,
                    off_t off)
{
	struct rpath rp;
	parse(h->path, &rp);
	if (h->kind != FH_CTL)
		return -EBADF;
	struct ctl_arg a = {f, rp.model};
	return view_ctl_lines(buf, len, ctl_line, &a);
}

static int rg_truncate(struct flowy *f, const char *path, off_t size)
{
	struct rpath rp;
	parse(path, &rp);
	return rp.file == RF_CTL ? 0 : -EACCES;
}

static int rg_create(struct flowy *f, const char *path, mode_t mode, int flags,
                     struct fh *h)
{
	struct rpath rp;
	parse(path, &rp);
	if (rp.depth == 2 && registry_model_exists(f->db, rp.model) == 1)
		return refuse(rp.model, rp.name, -EACCES, "a model holds only versions and "
		              "aliases (symlinks: ln -s v<N> <alias>)");
	return -EACCES;
}

static int rg_mkdir(struct flowy *f, const char *path, mode_t mode)
{
	struct rpath rp;
	parse(path, &rp);
	if (rp.depth != 1)
		return -EACCES;
	int rc = registry_model_create(f->db, rp.model);
	if (rc == -EINVAL)
		log_info("registry/%s: mkdir: a model name is [A-Za-z0-9_][A-Za-z0-9_.-]*, "
		         "at most 128 bytes", rp.model);
	return rc;
}

static int rg_rmdir(struct flowy *f, const char *path)
{
	struct rpath rp;
	parse(path, &rp);
	if (rp.depth != 1)
		return -ENOTDIR;
	int rc = registry_model_remove(f->db, rp.model);
	if (rc == -ENOTEMPTY)
		return refuse(rp.model, "rmdir", rc, "a model with versions stays");
	return rc;
}

/* Tell the scheduler that alias of model moved (readers queue or go stale). */
static void moved(struct flowy *f, const char *model, const char *alias)
{
	sched_alias_moved(f, model, alias);
}

static int rg_symlink(struct flowy *f, const char *target, const char *path)
{
	struct rpath rp;
	parse(path, &rp);
	const char *why = NULL;
	int64_t v = 0, was = 0;
	if (rp.depth != 2)
		return -EACCES;
	int rc = registry_model_exists(f->db, rp.model);
	if (rc <= 0)
		return rc < 0 ? rc : -ENOENT;
	char *what = xasprintf("ln -s %s %s", target, rp.name);
	char hex[CAS_HEX_LEN + 1];
	if ((rp.version && registry_version_hash(f->db, rp.model, rp.version, hex) == 0) ||
	    rp.file || registry_alias_get(f->db, rp.model, rp.name, &was, NULL) == 0)
		rc = -EEXIST;
	else if (!registry_alias_name_valid(rp.name, &why))
		rc = refuse(rp.model, what, -EINVAL, why);
	else if (registry_version_parse(target, &v) < 0)
		rc = refuse(rp.model, what, -EINVAL, "an alias points at a version: v<N>");
	else if ((rc = registry_alias_set(f->db, rp.model, rp.name, v, view_caller_uid())))
		rc = refuse(rp.model, what, rc, rc == -ENOENT ? "no such version" :
		            "cannot record the alias");
	free(what);
	if (!rc)
		moved(f, rp.model, rp.name);
	return rc;
}

static int rg_unlink(struct flowy *f, const char *path)
{
	struct rpath rp;
	parse(path, &rp);
	if (rp.depth != 2)
		return -EACCES;
	char *what = xasprintf("rm %s", rp.name);
	int rc;
	if (rp.version)
		rc = refuse(rp.model, what, -EACCES, "versions are permanent");
	else if (rp.file)
		rc = refuse(rp.model, what, -EACCES, "the model's own files stay");
	else
		rc = registry_alias_remove(f->db, rp.model, rp.name, view_caller_uid());
	free(what);
	if (!rc)
		moved(f, rp.model, rp.name);
	return rc;
}

static int rg_rename(struct flowy *f, const char *from, const char *to, unsigned flags)
{
	struct rpath a, b;
	parse(from, &a);
	parse(to, &b);
	if (a.depth != 2 || b.depth != 2 || strcmp(a.model, b.model))
		return -EXDEV;
	char *what = xasprintf("mv %s %s", a.name, b.name);
	const char *why = NULL;
	int64_t v = 0;
	int rc = 0;
	if (a.version || b.version || a.file || b.file)
		rc = refuse(a.model, what, -EACCES, "only aliases can be renamed or replaced");
	else if (!registry_alias_name_valid(b.name, &why))
		rc = refuse(a.model, what, -EINVAL, why);
	else if ((flags & RENAME_NOREPLACE) &&
	         registry_alias_get(f->db, b.model, b.name, &v, NULL) == 0)
		rc = -EEXIST;
	else if (flags & ~RENAME_NOREPLACE)
		rc = -EINVAL;
	else
		rc = registry_alias_rename(f->db, a.model, a.name, b.name, view_caller_uid());
	free(what);
	if (!rc)
		moved(f, b.model, b.name);
	return rc;
}

const struct view view_registry = {
	.name = "registry",
	.getattr = rg_getattr,
	.readdir = rg_readdir,
	.open = rg_open,
	.readlink = rg_readlink,
	.create = rg_create,
	.write = rg_write,
	.mkdir = rg_mkdir,
	.rmdir = rg_rmdir,
	.unlink = rg_unlink,
	.rename = rg_rename,
	.truncate = rg_truncate,
	.symlink = rg_symlink,
};
