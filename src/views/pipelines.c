/*
 * views/pipelines.c - pipelines/: the one read-write view.
 *
 * Files are kept in <store>/pipelines and every operation passes through
 * to that backing directory, so content survives remounts. Each pipeline
 * directory also shows generated files: .status and .dag/.dag.dot
 * (rendered by the registry) and .ctl, a write-only command sink. Closing
 * a written file, unlink, rename and mkdir tell the registry the pipeline
 * changed, which revalidates it and, after the change window, queues a run.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowyfs/ctl.h"
#include "flowyfs/log.h"
#include "flowyfs/registry.h"
#include "flowyfs/sched.h"
#include "flowyfs/util.h"
#include "flowyfs/view.h"

enum gen { GEN_NONE, GEN_STATUS, GEN_DAG, GEN_DOT, GEN_CTL };

static const char *const gen_names[] = {
	[GEN_STATUS] = ".status", [GEN_DAG] = ".dag", [GEN_DOT] = ".dag.dot",
	[GEN_CTL] = ".ctl",
};

/* Parsed path: pipelines[/<p>[/<rest>]]. */
struct ppath {
	char p[256];
	const char *rest;   /* after "<p>/", or NULL */
	int depth;          /* 0: pipelines, 1: pipelines/<p>, 2+: inside */
	enum gen gen;
};

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
		if (pp->depth == 2 && registry_is_pipeline(pp->p))
			for (int g = GEN_STATUS; g <= GEN_CTL; g++)
				if (!strcmp(pp->rest, gen_names[g]))
					pp->gen = (enum gen)g;
	}
}

static char *backing(struct flowy *f, const char *path)
{
	const char *s = path + strlen("pipelines");
	return xasprintf("%s%s", f->pipelines_dir, s);
}

static void stat_to_attr(const struct stat *st, struct view_attr *a)
{
	a->mode = st->st_mode;
	a->size = (uint64_t)st->st_size;
	a->mtime = (double)st->st_mtim.tv_sec + (double)st->st_mtim.tv_nsec / 1e9;
}

static int pl_getattr(struct flowy *f, const char *path, struct view_attr *a)
{
	struct ppath pp;
	parse(path, &pp);
	if (pp.gen == GEN_CTL) {
		a->mode = S_IFREG | 0200;
		return 0;
	}
	if (pp.gen) {
		if (view_cached_attr(a, path))
			return 0;
		char *t = registry_render(f, pp.p, pp.gen == GEN_STATUS ? REGISTRY_STATUS :
		                          pp.gen == GEN_DAG ? REGISTRY_DAG : REGISTRY_DOT);
		view_generated_attr(a, path, t);
		return 0;
	}
	char *b = backing(f, path);
	struct stat st;
	int rc = lstat(b, &st) < 0 ? -errno : 0;
	free(b);
	if (!rc)
		stat_to_attr(&st, a);
	return rc;
}

static int pl_readdir(struct flowy *f, const char *path, struct dirlist *l)
{
	struct ppath pp;
	parse(path, &pp);
	char *b = backing(f, path);
	int rc = dirlist_add_dir(l, b);
	free(b);
	if (rc < 0)
		return rc;
	if (pp.depth == 1 && registry_is_pipeline(pp.p))
		for (int g = GEN_STATUS; g <= GEN_CTL; g++)
			dirlist_add(l, gen_names[g], S_IFREG);
	return 0;
}

static void changed(struct flowy *f, const struct ppath *pp)
{
	if (pp->depth >= 1) {
		registry_changed(f, pp->p);
		sched_wake(f);
	}
}

static int pl_open(struct flowy *f, const char *path, int flags, struct fh *h)
{
	struct ppath pp;
	parse(path, &pp);
	int acc = flags & O_ACCMODE;
	if (pp.gen == GEN_CTL) {
		if (acc == O_RDONLY)
			return -EACCES;
		h->kind = FH_CTL;
		h->direct_io = 1;
		return 0;
	}
	if (pp.gen) {
		if (acc != O_RDONLY)
			return -EACCES;
		char *t = view_cache_take(path);
		view_text_fh(h, t ? t : registry_render(f, pp.p, pp.gen == GEN_STATUS ?
		             REGISTRY_STATUS : pp.gen == GEN_DAG ? REGISTRY_DAG : REGISTRY_DOT));
		return 0;
	}
	char *b = backing(f, path);
	int fd = open(b, (flags & ~(O_CREAT | O_EXCL | O_NOCTTY)) | O_NOFOLLOW | O_CLOEXEC);
	free(b);
	if (fd < 0)
		return -errno;
	h->kind = FH_FD;
	h->fd = fd;
	h->direct_io = 1;
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
	char *b = backing(f, path);
	int fd = open(b, ((flags | O_CREAT) & ~O_NOCTTY) | O_NOFOLLOW | O_CLOEXEC, mode & 07777);
	free(b);
	if (fd < 0)
		return -errno;
	h->kind = FH_FD;
	h->fd = fd;
	h->direct_io = 1;
	return 0;
}

/* Carry out one parsed .ctl command of pipeline p; 0 or -errno with *why. */
static int apply(struct flowy *f, const char *p, const struct ctl_cmd *cmd, char **why)
{
	char *errors = NULL;
	int r = 0;
	switch (cmd->verb) {
	case CTL_RUN:
	case CTL_RERUN:
		if (cJSON_GetArraySize(cmd->overrides) > 0) {
			*why = xstrdup("param overrides are not supported yet; write plain "
			               "\"run\" or \"rerun STEP\"");
			return -EINVAL;
		}
		if (!registry_check(f, p, &errors)) {
			free(errors);
			*why = xstrdup("the pipeline is invalid (see above)");
			return -EINVAL;
		}
		free(errors);
		if (cmd->verb == CTL_RERUN && !registry_has_step(f, p, cmd->step)) {
			*why = xasprintf("rerun: no step named %s in this pipeline", cmd->step);
			return -EINVAL;
		}
		return sched_enqueue(f, p, cmd->verb == CTL_RUN ? "ctl" : "rerun",
		                     cmd->step, NULL, why);
	case CTL_CANCEL:
	case CTL_PAUSE:
	case CTL_RESUME: {
		const char *name = cmd->verb == CTL_CANCEL ? "cancel" :
		                   cmd->verb == CTL_PAUSE ? "pause" : "resume";
		if (cmd->run) {
			*why = xasprintf("%s of a given run is not supported yet; write just "
			                 "\"%s\"", name, name);
			return -EINVAL;
		}
		r = sched_control(f, p, name);
		if (r == -ESRCH)
			*why = xstrdup("no queued or running run of this pipeline");
		return r;
	}
	case CTL_SWEEP:
	case CTL_RETRY:
		*why = xasprintf("%s is not supported yet",
		                 cmd->verb == CTL_SWEEP ? "sweep" : "retry");
		return -EINVAL;
	}
	*why = xstrdup("unknown command");
	return -EINVAL;
}

static int pl_write(struct flowy *f, struct fh *h, const char *buf, size_t len,
                    off_t off)
{
	if (h->kind == FH_FD) {
		ssize_t n = pwrite(h->fd, buf, len, off);
		return n < 0 ? -errno : (int)n;
	}
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
		registry_command(f, pp.p, shown, reason);
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
	if (pp.depth == 1 && !registry_is_pipeline(pp.p) && pp.p[0] != '.')
		return -EINVAL;
	if (pp.gen)
		return -EEXIST;
	char *b = backing(f, path);
	int rc = mkdir(b, mode & 07777) < 0 ? -errno : 0;
	free(b);
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
	char *b = backing(f, path);
	int rc = (dir ? rmdir(b) : unlink(b)) < 0 ? -errno : 0;
	free(b);
	if (!rc && pp.depth == 1)
		registry_removed(f, pp.p);
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
	if (b.depth == 1 && !registry_is_pipeline(b.p) && b.p[0] != '.')
		return -EINVAL;
	if (a.depth != 1 && b.depth == 1)
		return -EPERM; /* only directories are pipelines */
	char *fb = backing(f, from), *tb = backing(f, to);
	int rc = renameat2(AT_FDCWD, fb, AT_FDCWD, tb, flags) < 0 ? -errno : 0;
	free(tb);
	free(fb);
	if (rc)
		return rc;
	if (a.depth == 1 && b.depth == 1) {
		registry_renamed(f, a.p, b.p);
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
	char *b = backing(f, path);
	int rc = truncate(b, size) < 0 ? -errno : 0;
	free(b);
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
	char *b = backing(f, path);
	int rc = chmod(b, mode & 07777) < 0 ? -errno : 0;
	free(b);
	return rc;
}

static int pl_utimens(struct flowy *f, const char *path, const struct timespec tv[2])
{
	struct ppath pp;
	parse(path, &pp);
	if (pp.gen)
		return 0;
	char *b = backing(f, path);
	int rc = utimensat(AT_FDCWD, b, tv, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	free(b);
	return rc;
}

const struct view view_pipelines = {
	.name = "pipelines",
	.getattr = pl_getattr,
	.readdir = pl_readdir,
	.open = pl_open,
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
};
