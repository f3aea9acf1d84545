/*
 * snapshot.c - the copy of a pipeline's files a run sees (snapshot.h).
 *
 * Copying walks the pipeline directory once, dotfiles left out, and lists
 * every file with its hash. A file unchanged since the last snapshot
 * (same device, inode, size, mtime and ctime) is hard-linked from that
 * copy and keeps its hash, so an untouched data file costs neither a copy
 * nor a hash; others are copied (holes kept) and hashed from the copy, so
 * the hash is of what the run sees. In-pipeline symlinks are kept as
 * links and hashed by their target.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowyfs/catalog.h"
#include "flowyfs/log.h"
#include "flowyfs/snapshot.h"
#include "flowyfs/util.h"

/* The last snapshot of one pipeline. */
struct last {
	char *pipeline;
	uint64_t gen;
	int64_t run;
	char commit[41];
	struct codefile *code;
	size_t ncode;
	struct last *next;
};

struct snapshots {
	pthread_mutex_t lock;
	struct last *head;
};

/* A walk in progress: the list it builds. */
struct walk {
	const struct codefile *prev;   /* the last snapshot's list, sorted */
	size_t nprev;
	const char *prevdir;           /* its directory (NULL: none) */
	const int *stop;
	struct codefile *code;
	size_t ncode;
};

struct snapshots *snapshot_cache_new(void)
{
	struct snapshots *c = xcalloc(1, sizeof *c);
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void snapshot_codes_free(struct codefile *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(c[i].rel);
		free(c[i].link);
	}
	free(c);
}

void snapshot_cache_free(struct snapshots *c)
{
	if (!c)
		return;
	for (struct last *l = c->head, *next; l; l = next) {
		next = l->next;
		snapshot_codes_free(l->code, l->ncode);
		free(l->pipeline);
		free(l);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void snapshot_release(struct snapshot *s)
{
	snapshot_codes_free(s->code, s->ncode);
	free(s->dir);
	memset(s, 0, sizeof *s);
}

static struct codefile *codes_dup(const struct codefile *c, size_t n)
{
	struct codefile *d = xcalloc(n + 1, sizeof *d);
	for (size_t i = 0; i < n; i++) {
		d[i] = c[i];
		d[i].rel = xstrdup(c[i].rel);
		d[i].link = c[i].link ? xstrdup(c[i].link) : NULL;
	}
	return d;
}

static void code_add(struct walk *w, const struct codefile *c)
{
	w->code = xrealloc(w->code, (w->ncode + 1) * sizeof *w->code);
	w->code[w->ncode++] = *c;
}

static int cmp_rel(const void *key, const void *elem)
{
	return strcmp(key, ((const struct codefile *)elem)->rel);
}

static int cmp_code(const void *a, const void *b)
{
	return strcmp(((const struct codefile *)a)->rel, ((const struct codefile *)b)->rel);
}

/* The same file, unchanged since the last snapshot copied it? */
static int unchanged(const struct codefile *p, const struct stat *st)
{
	return !p->link && p->dev == st->st_dev && p->ino == st->st_ino &&
	       p->size == st->st_size && p->mtime.tv_sec == st->st_mtim.tv_sec &&
	       p->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       p->ctime.tv_sec == st->st_ctim.tv_sec &&
	       p->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* List (and, with dst, copy) the directory src, rel below the pipeline,
 * into w. */
static int walk_dir(struct walk *w, const char *src, const char *dst, const char *rel)
{
	DIR *d = opendir(src);
	if (!d)
		return -errno;
	struct dirent *e;
	int rc = 0;
	while (!rc && (errno = 0, e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *from = xasprintf("%s/%s", src, e->d_name);
		char *to = dst ? xasprintf("%s/%s", dst, e->d_name) : NULL;
		struct codefile c = {0};
		c.rel = *rel ? xasprintf("%s/%s", rel, e->d_name) : xstrdup(e->d_name);
		struct stat st;
		char target[PATH_MAX];
		ssize_t tn;
		if (lstat(from, &st) < 0) {
			rc = -errno;
		} else if (S_ISDIR(st.st_mode)) {
			rc = to && mkdir(to, 0755) < 0 ? -errno : walk_dir(w, from, to, c.rel);
		} else if (S_ISREG(st.st_mode)) {
			c.dev = st.st_dev;
			c.ino = st.st_ino;
			c.size = st.st_size;
			c.mtime = st.st_mtim;
			c.ctime = st.st_ctim;
			const struct codefile *p = w->nprev ?
				bsearch(c.rel, w->prev, w->nprev, sizeof *w->prev, cmp_rel) : NULL;
			int same = p && unchanged(p, &st);
			char *old = same && to && w->prevdir ?
			            xasprintf("%s/%s", w->prevdir, c.rel) : NULL;
			if (same && (!to || (old && link(old, to) == 0))) {
				memcpy(c.hex, p->hex, sizeof c.hex);
			} else if (to) {
				rc = util_copy_file(from, to, st.st_mode, w->stop);
				if (!rc)
					rc = cas_hash_file_stop(c.hex, to, w->stop);
			} else {
				rc = cas_hash_file_stop(c.hex, from, w->stop);
			}
			free(old);
			if (!rc) {
				code_add(w, &c);
				c.rel = NULL;
			}
		} else if (S_ISLNK(st.st_mode) &&
		           (tn = readlink(from, target, sizeof target - 1)) > 0) {
			target[tn] = '\0';
			if (to && symlink(target, to) < 0) {
				rc = -errno;
			} else {
				c.link = xstrdup(target);
				cas_hash_buf(c.hex, target, (size_t)tn);
				code_add(w, &c);
				c.rel = NULL;
			}
		}
		free(c.rel);
		free(to);
		free(from);
	}
	if (!rc && errno)
		rc = -errno;
	closedir(d);
	if (!rc && !*rel && w->ncode)
		qsort(w->code, w->ncode, sizeof *w->code, cmp_code);
	return rc;
}

static struct last *find_last(struct snapshots *c, const char *pipeline)
{
	struct last *l;
	for (l = c->head; l && strcmp(l->pipeline, pipeline); l = l->next)
		;
	return l;
}

/* Share the last snapshot of the pipeline, when its files did not change
 * since and its directory is still there. Lock held. */
static int share_last(const struct last *l, struct flowy *f, uint64_t gen,
                      struct snapshot *out)
{
	if (!l || l->gen != gen)
		return 0;
	char *dir = xasprintf("%s/%lld/snapshot", f->runs_dir, (long long)l->run);
	struct stat st;
	if (stat(dir, &st) < 0) {
		free(dir);
		return 0;
	}
	out->dir = dir;
	out->run = l->run;
	memcpy(out->commit, l->commit, sizeof out->commit);
	out->code = codes_dup(l->code, l->ncode);
	out->ncode = l->ncode;
	return 1;
}

int snapshot_take(struct snapshots *c, struct flowy *f, const char *pipeline,
                  int64_t run, const int *stop, struct snapshot *out)
{
	memset(out, 0, sizeof *out);
	char *rundir = xasprintf("%s/%lld", f->runs_dir, (long long)run);
	int rc = util_mkdir_p(rundir, 0755);
	free(rundir);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&c->lock);
	uint64_t gen = catalog_generation(f, pipeline);
	struct last *l = find_last(c, pipeline);
	if (share_last(l, f, gen, out)) {
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	char *src = xasprintf("%s/%s", f->pipelines_dir, pipeline);
	char *prevdir = l ? xasprintf("%s/%lld/snapshot", f->runs_dir, (long long)l->run)
	                  : NULL;
	struct walk w = {.prev = l ? l->code : NULL, .nprev = l ? l->ncode : 0,
	                 .prevdir = prevdir, .stop = stop};
	out->dir = xasprintf("%s/%lld/snapshot", f->runs_dir, (long long)run);
	out->run = run;
	out->fresh = 1;
	rc = mkdir(out->dir, 0755) < 0 ? -errno : 0;
	if (!rc)
		rc = walk_dir(&w, src, out->dir, "");
	free(prevdir);
	free(src);
	out->code = w.code;
	out->ncode = w.ncode;
	if (rc < 0) {
		pthread_mutex_unlock(&c->lock);
		return rc;
	}
	char *msg = xasprintf("run %lld of %s", (long long)run, pipeline), *err = NULL;
	if (vcs_commit_dir(f->vcs, out->commit, pipeline, out->dir, msg, &err) < 0) {
		log_error("run %lld: %s", (long long)run, err);
		out->commit[0] = '\0';
	}
	free(err);
	free(msg);
	if (!l) {
		l = xcalloc(1, sizeof *l);
		l->pipeline = xstrdup(pipeline);
		l->next = c->head;
		c->head = l;
	}
	l->gen = gen;
	l->run = run;
	memcpy(l->commit, out->commit, sizeof l->commit);
	snapshot_codes_free(l->code, l->ncode);
	l->code = codes_dup(out->code, out->ncode);
	l->ncode = out->ncode;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int snapshot_of_run(struct flowy *f, int64_t snapshot_run, const char *commit,
                    const int *stop, struct snapshot *out)
{
	memset(out, 0, sizeof *out);
	out->dir = xasprintf("%s/%lld/snapshot", f->runs_dir, (long long)snapshot_run);
	out->run = snapshot_run;
	snprintf(out->commit, sizeof out->commit, "%s", commit ? commit : "");
	struct walk w = {.stop = stop};
	int rc = walk_dir(&w, out->dir, NULL, "");
	out->code = w.code;
	out->ncode = w.ncode;
	return rc;
}

int snapshot_hash_live(struct snapshots *c, struct flowy *f, const char *pipeline,
                       struct codefile **out, size_t *n)
{
	pthread_mutex_lock(&c->lock);
	struct last *l = find_last(c, pipeline);
	/* Hash under the lock: the last list stays valid, and a plan costs a
	 * hash only for what changed since the last snapshot. */
	struct walk w = {.prev = l ? l->code : NULL, .nprev = l ? l->ncode : 0};
	char *src = xasprintf("%s/%s", f->pipelines_dir, pipeline);
	int rc = walk_dir(&w, src, NULL, "");
	free(src);
	pthread_mutex_unlock(&c->lock);
	*out = w.code;
	*n = w.ncode;
	return rc;
}

int snapshot_in_code(const struct step_def *s, const char *rel)
{
	if (s->code_default)
		return step_is_default_code(rel);
	for (size_t i = 0; i < s->n_code; i++) {
		size_t n = strlen(s->code[i]);
		while (n && s->code[i][n - 1] == '/')
			n--;
		if (!strncmp(rel, s->code[i], n) && (rel[n] == '\0' || rel[n] == '/'))
			return 1;
	}
	return 0;
}
