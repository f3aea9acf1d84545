/*
 * views/pipelines.c - pipelines/: the one read-write view.
 *
 * Files are kept in <store>/pipelines and every operation passes through
 * to that backing directory, so content survives remounts. Each pipeline
 * directory also shows generated files: .status and .dag/.dag.dot
 * (rendered by the catalog), .dag.svg (render/pictures.c) and .ctl, a write-only command sink. Closing
 * a written file, unlink, rename and mkdir tell the catalog the pipeline
 * changed, which revalidates it and, after the change window, queues a run.
 *
 * Backing objects are reached through backing.c, by a walk from the
 * pipelines directory that never follows a symlink. Attributes are the backing objects' own (owner, links,
 * times in nanoseconds). Inside a pipeline, symlinks may be made when their
 * target is relative and stays, read lexically from the link's directory,
 * within the pipeline; hard links within one pipeline, fifos and sockets
 * may be made too; device nodes never.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowyfs/backing.h"
#include "flowyfs/ctl.h"
#include "flowyfs/log.h"
#include "flowyfs/catalog.h"
#include "flowyfs/pictures.h"
#include "flowyfs/plan.h"
#include "flowyfs/sched.h"
#include "flowyfs/util.h"
#include "flowyfs/view.h"

enum gen { GEN_NONE, GEN_STATUS, GEN_DAG, GEN_DOT, GEN_SVG, GEN_PLAN, GEN_CTL, GEN_LATEST };

static const char *const gen_names[] = {
	[GEN_STATUS] = ".status", [GEN_DAG] = ".dag", [GEN_DOT] = ".dag.dot",
	[GEN_SVG] = ".dag.svg", [GEN_PLAN] = ".plan", [GEN_CTL] = ".ctl",
	[GEN_LATEST] = ".latest",
};

/* Parsed path: pipelines[/<p>[/<rest>]]. */
struct ppath {
	char p[256];
	const char *rest;   /* after "<p>/", or NULL */
	int depth;          /* 0: pipelines, 1: pipelines/<p>, 2+: inside */
	enum gen gen;
};

static int is_staging(const char *name)
{
	return name[0] == '.' && catalog_is_pipeline(name + 1);
}

static void parse(const char *path, struct ppath *pp)
{
	memset(pp, 0, sizeof *pp);
	const char *s = path + strlen("pipelines");
	if (*s != '/')
		return;
	s++;
	size_t n = strcspn(s, "/");
	snprintf(pp->p, sizeof pp->p, "%.*s", (int)n, s);
	pp->depth = 1;
	if (s[n] == '/') {
		pp->rest = s + n + 1;
		pp->depth = strchr(pp->rest, '/') ? 3 : 2;
		if (pp->depth == 2 && catalog_is_pipeline(pp->p))
			for (int g = GEN_STATUS; g <= GEN_LATEST; g++)
				if (!strcmp(pp->rest, gen_names[g]))
					pp->gen = (enum gen)g;
		/* A staging directory (.p/, moved into place when complete) says
		 * whether it is valid before it runs anything. */
		if (pp->depth == 2 && is_staging(pp->p) && !strcmp(pp->rest, ".status"))
			pp->gen = GEN_STATUS;
	}
}

/* The path below the backing directory: "" for pipelines itself. */
static const char *rel(const char *path)
{
	const char *r = path + strlen("pipelines");
	return *r == '/' ? r + 1 : r;
}

#define ROOT (f->pipelines_dir)

/* The id of pipeline p's newest run, 0 when it has none. */
static int64_t latest_run(struct flowy *f, const char *p)
{
	int64_t id = 0;
	if (db_get_int(f->db, &id, "SELECT max(id) FROM runs WHERE pipeline=?", "t", p) < 0)
		id = 0; /* logged by db.c; the view shows no link */
	return id;
}

/* .latest: a symlink to runs/<id> of the pipeline's newest run. */
static char *latest_target(struct flowy *f, const char *p)
{
	int64_t id = latest_run(f, p);
	return id > 0 ? xasprintf("../../runs/%lld", (long long)id) : NULL;
}

/* The text of a generated file of pipeline pp->p (malloc'd). */
static char *render(struct flowy *f, const struct ppath *pp)
{
	switch (pp->gen) {
	case GEN_PLAN:
		return plan_render(f, pp->p);
	case GEN_SVG:
		return pictures_pipeline_dag(f, pp->p);
	case GEN_DAG:
		return catalog_render(f, pp->p, CATALOG_DAG);
	case GEN_DOT:
		return catalog_render(f, pp->p, CATALOG_DOT);
	default:
		return is_staging(pp->p) ? catalog_render_staging(f, pp->p)
		                         : catalog_render(f, pp->p, CATALOG_STATUS);
	}
}

static int pl_getattr(struct flowy *f, const char *path, struct view_attr *a)
{
	struct ppath pp;
	parse(path, &pp);
	if (pp.gen == GEN_LATEST) {
		char *t = latest_target(f, pp.p);
		if (!t)
			return -ENOENT;
		a->mode = S_IFLNK | 0777;
		a->size = strlen(t);
		free(t);
		return 0;
	}
	if (pp.gen) {
		/* Generated files belong to the pipeline directory's owner, who
		 * may then write .ctl. */
		struct stat st;
		int rc = backing_stat_parent(ROOT, rel(path), &st);
		if (rc)
			return rc;
		if (pp.gen == GEN_CTL)
			a->mode = S_IFREG | 0200;
		else if (!view_cached_attr(a, path))
			view_generated_attr(a, path, render(f, &pp));
		a->has_owner = 1;
		a->uid = st.st_uid;
		a->gid = st.st_gid;
		return 0;
	}
	struct stat st;
	int rc = backing_stat(ROOT, rel(path), &st);
	if (!rc)
		view_stat_attr(a, &st);
	return rc;
}

static int pl_readdir(struct flowy *f, const char *path, struct dirlist *l)
{
	struct ppath pp;
	parse(path, &pp);
	int rc = backing_readdir(ROOT, rel(path), l);
	if (rc < 0)
		return rc;
	if (pp.depth == 1 && is_staging(pp.p))
		dirlist_add(l, gen_names[GEN_STATUS], S_IFREG);
	if (pp.depth == 1 && catalog_is_pipeline(pp.p)) {
		for (int g = GEN_STATUS; g <= GEN_CTL; g++)
			dirlist_add(l, gen_names[g], S_IFREG);
		if (latest_run(f, pp.p) > 0)
			dirlist_add(l, gen_names[GEN_LATEST], S_IFLNK);
	}
	return 0;
}

static void changed(struct flowy *f, const struct ppath *pp)
{
	if (pp->depth >= 1) {
		catalog_changed_file(f, pp->p, pp->rest);
		sched_wake(f);
	}
}

static int pl_open(struct flowy *f, const char *path, int flags, struct fh *h)
{
	struct ppath pp;
	parse(path, &pp);
	int acc = flags & O_ACCMODE;
	if (pp.gen == GEN_CTL)
		return view_ctl_open(h, flags);
	if (pp.gen) {
		if (acc != O_RDONLY)
			return -EACCES;
		char *t = view_cache_take(path);
		view_text_fh(h, t ? t : render(f, &pp));
		return 0;
	}
	int fd = -1, rc = backing_open(ROOT, rel(path), flags & ~(O_CREAT | O_EXCL), 0, &fd);
	if (rc)
		return rc;
	view_fd_fh(h, fd);
	return 0;
}

/* Files may only be made inside a pipeline directory, never over a
 * generated name. */
static int may_create(const struct ppath *pp)
{
	if (pp->depth < 2)
		return pp->depth == 1 ? -EPERM : -EEXIST;
	if (pp->gen)
		return -EEXIST;
	return 0;
}

static int pl_create(struct flowy *f, const char *path, mode_t mode, int flags,
                     struct fh *h)
{
	struct ppath pp;
	parse(path, &pp);
	int rc = may_create(&pp);
	if (rc)
		return rc;
	int fd = -1;
	rc = backing_open(ROOT, rel(path), flags | O_CREAT, mode, &fd);
	if (rc)
		return rc;
	view_fd_fh(h, fd);
	return 0;
}

/* Queue the runs of a run, rerun or sweep command: one per combination
 * of the swept values. */
static int queue_runs(struct flowy *f, const char *p, const struct ctl_cmd *cmd,
                      char **why)
{
	cJSON *each = NULL;
	if (ctl_sweep_expand(cmd, &each) < 0) {
		*why = xstrdup("cannot expand the command");
		return -EINVAL;
	}
	const char *trigger = cmd->verb == CTL_SWEEP ? "sweep" :
	                      cmd->verb == CTL_RERUN ? "rerun" : "ctl";
	int rc = 0, queued = 0;
	for (cJSON *ov = each ? each->child : NULL; ov && !rc; ov = ov->next) {
		struct run_request req = {
			.pipeline = p, .trigger = trigger, .overrides = ov,
			.force_step = cmd->verb == CTL_RERUN ? cmd->step : NULL,
		};
		rc = sched_queue(f, &req, NULL, why);
		queued += !rc;
	}
	cJSON_Delete(each);
	if (rc && queued) { /* say what was done before the refusal */
		char *w = xasprintf("%s (after %d of %d runs were queued)", *why, queued,
		                    (int)cmd->n_runs);
		free(*why);
		*why = w;
	}
	return rc;
}

/* Carry out one parsed .ctl command of pipeline p; 0 or -errno with *why. */
static int apply(struct flowy *f, const char *p, const struct ctl_cmd *cmd, char **why)
{
	char *errors = NULL;
	switch (cmd->verb) {
	case CTL_RUN:
	case CTL_RERUN:
	case CTL_SWEEP:
		if (!catalog_check(f, p, &errors)) {
			free(errors);
			*why = xstrdup("the pipeline is invalid (see above)");
			return -EINVAL;
		}
		free(errors);
		if (cmd->verb == CTL_RERUN && !catalog_has_step(f, p, cmd->step)) {
			*why = xasprintf("rerun: no step named %s in this pipeline", cmd->step);
			return -EINVAL;
		}
		return queue_runs(f, p, cmd, why);
	case CTL_RETRY: {
		struct run_request req = {.pipeline = p, .trigger = "retry",
		                          .retry_of = cmd->run};
		return sched_queue(f, &req, NULL, why);
	}
	case CTL_CANCEL:
	case CTL_PAUSE:
	case CTL_RESUME:
		return sched_control(f, p, ctl_verb_name(cmd->verb), cmd->run, why);
	}
	*why = xstrdup("unknown command");
	return -EINVAL;
}

static int pl_write(struct flowy *f, struct fh *h, const char *buf, size_t len,
                    off_t off)
{
	if (h->kind == FH_FD)
		return view_fd_write(h, buf, len, off);
	if (h->kind != FH_CTL)
		return -EBADF;
	struct ppath pp;
	parse(h->path, &pp);
	/* One command per line; a write is a batch of whole lines. */
	int rc = (int)len;
	for (size_t at = 0; at < len && rc > 0; ) {
		const char *line = buf + at, *nl = memchr(line, '\n', len - at);
		size_t ll = nl ? (size_t)(nl - line) : len - at;
		at += ll + (nl != NULL);
		struct ctl_cmd cmd;
		char *why = NULL;
		int r = ctl_parse(line, ll, &cmd, &why);
		if (r == 1)
			continue; /* blank or a comment */
		if (r == 0)
			r = apply(f, pp.p, &cmd, &why);
		ctl_cmd_free(&cmd);
		/* The command as typed, for .status (bounded, made printable there). */
		char *shown = xstrndup(line, ll < 256 ? ll : 256);
		for (char *c = shown; *c; c++)
			if ((unsigned char)*c < 0x20)
				*c = ' ';
		char *reason = why ? xasprintf("refused: %s", why) : NULL;
		catalog_command(f, pp.p, shown, reason);
		if (reason)
			log_info("%s/.ctl: %s: %s", pp.p, shown, reason);
		free(reason);
		free(shown);
		free(why);
		if (r < 0)
			rc = r;
	}
	return rc;
}

static void pl_release(struct flowy *f, struct fh *h)
{
	if (h->kind == FH_FD && h->written) {
		struct ppath pp;
		parse(h->path, &pp);
		changed(f, &pp);
	}
}

static int pl_mkdir(struct flowy *f, const char *path, mode_t mode)
{
	struct ppath pp;
	parse(path, &pp);
	if (pp.depth == 1 && !catalog_is_pipeline(pp.p) && pp.p[0] != '.')
		return -EINVAL;
	if (pp.gen)
		return -EEXIST;
	int rc = backing_mkdir(ROOT, rel(path), mode);
	if (!rc)
		changed(f, &pp);
	return rc;
}

static int pl_remove(struct flowy *f, const char *path, int dir)
{
	struct ppath pp;
	parse(path, &pp);
	if (pp.gen) /* regenerated anyway; succeeding lets rm -r remove a pipeline */
		return dir ? -ENOTDIR : 0;
	int rc = backing_remove(ROOT, rel(path), dir);
	if (!rc && pp.depth == 1)
		catalog_removed(f, pp.p);
	else if (!rc)
		changed(f, &pp);
	return rc;
}

static int pl_unlink(struct flowy *f, const char *path)
{
	return pl_remove(f, path, 0);
}

static int pl_rmdir(struct flowy *f, const char *path)
{
	return pl_remove(f, path, 1);
}

static int pl_rename(struct flowy *f, const char *from, const char *to, unsigned flags)
{
	struct ppath a, b;
	parse(from, &a);
	parse(to, &b);
	if (a.gen || b.gen || a.depth == 0 || b.depth == 0)
		return -EPERM;
	if (b.depth == 1 && !catalog_is_pipeline(b.p) && b.p[0] != '.')
		return -EINVAL;
	if (a.depth != 1 && b.depth == 1)
		return -EPERM; /* only directories are pipelines */
	int rc = backing_rename(ROOT, rel(from), rel(to), flags);
	if (rc)
		return rc;
	if (a.depth == 1 && b.depth == 1) {
		catalog_renamed(f, a.p, b.p);
		sched_wake(f);
	} else {
		changed(f, &a);
		if (strcmp(a.p, b.p))
			changed(f, &b);
	}
	return 0;
}

static int pl_truncate(struct flowy *f, const char *path, off_t size)
{
	struct ppath pp;
	parse(path, &pp);
	if (pp.gen)
		return pp.gen == GEN_CTL ? 0 : -EACCES;
	int rc = backing_truncate(ROOT, rel(path), size);
	if (!rc)
		changed(f, &pp);
	return rc;
}

static int pl_chmod(struct flowy *f, const char *path, mode_t mode)
{
	struct ppath pp;
	parse(path, &pp);
	if (pp.gen)
		return -EPERM;
	return backing_chmod(ROOT, rel(path), mode);
}

static int pl_chown(struct flowy *f, const char *path, uid_t uid, gid_t gid)
{
	struct ppath pp;
	parse(path, &pp);
	if (pp.gen)
		return -EPERM;
	return backing_chown(ROOT, rel(path), uid, gid);
}

static int pl_utimens(struct flowy *f, const char *path, const struct timespec tv[2])
{
	struct ppath pp;
	parse(path, &pp);
	if (pp.gen)
		return 0;
	return backing_utimens(ROOT, rel(path), tv);
}

static int pl_readlink(struct flowy *f, const char *path, char **out)
{
	struct ppath pp;
	parse(path, &pp);
	if (pp.gen == GEN_LATEST)
		return (*out = latest_target(f, pp.p)) ? 0 : -ENOENT;
	if (pp.gen)
		return -EINVAL;
	return backing_readlink(ROOT, rel(path), out);
}

/* A symlink at pp may point at target when target is relative and
 * resolving it lexically from the link's directory never climbs above the
 * pipeline directory. Links on the way are taken as directories, not
 * followed. */
static int target_inside(const struct ppath *pp, const char *target)
{
	if (!*target || *target == '/')
		return 0;
	int depth = 0; /* of the link's directory below pipelines/<p> */
	for (const char *s = pp->rest; (s = strchr(s, '/')); s++)
		depth++;
	for (const char *s = target; *s;) {
		size_t n = strcspn(s, "/");
		if (n == 2 && s[0] == '.' && s[1] == '.') {
			if (--depth < 0)
				return 0;
		} else if (n && !(n == 1 && s[0] == '.')) {
			depth++;
		}
		s += n;
		while (*s == '/')
			s++;
	}
	return 1;
}

static int pl_symlink(struct flowy *f, const char *target, const char *path)
{
	struct ppath pp;
	parse(path, &pp);
	int rc = may_create(&pp);
	if (rc)
		return rc;
	if (!target_inside(&pp, target))
		return -EPERM;
	rc = backing_symlink(ROOT, target, rel(path));
	if (!rc)
		changed(f, &pp);
	return rc;
}

/* Hard links only between two names inside the same pipeline. */
static int pl_link(struct flowy *f, const char *from, const char *to)
{
	struct ppath a, b;
	parse(from, &a);
	parse(to, &b);
	if (a.depth < 2 || a.gen)
		return -EPERM;
	int rc = may_create(&b);
	if (rc)
		return rc;
	if (strcmp(a.p, b.p))
		return -EXDEV;
	rc = backing_link(ROOT, rel(from), rel(to));
	if (!rc)
		changed(f, &b);
	return rc;
}

/* Fifos and sockets (and plain files) inside a pipeline; devices never. */
static int pl_mknod(struct flowy *f, const char *path, mode_t mode, dev_t rdev)
{
	struct ppath pp;
	parse(path, &pp);
	int rc = may_create(&pp);
	if (rc)
		return rc;
	if (!S_ISFIFO(mode) && !S_ISSOCK(mode) && !S_ISREG(mode))
		return -EPERM;
	rc = backing_mknod(ROOT, rel(path), mode);
	if (!rc)
		changed(f, &pp);
	return rc;
}

const struct view view_pipelines = {
	.name = "pipelines",
	.getattr = pl_getattr,
	.readdir = pl_readdir,
	.open = pl_open,
	.readlink = pl_readlink,
	.create = pl_create,
	.write = pl_write,
	.mkdir = pl_mkdir,
	.unlink = pl_unlink,
	.rmdir = pl_rmdir,
	.rename = pl_rename,
	.truncate = pl_truncate,
	.chmod = pl_chmod,
	.utimens = pl_utimens,
	.release = pl_release,
	.chown = pl_chown,
	.symlink = pl_symlink,
	.link = pl_link,
	.mknod = pl_mknod,
};
