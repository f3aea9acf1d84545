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
	struct pipeline_def *def;      /* parsed from run's snapshot with the */
	char *def_key;                 /* overrides def_key, held; or NULL */
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
	size_t ncopied;                /* files copied, not linked from prev */
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
		step_free(l->def);
		free(l->def_key);
		snapshot_codes_free(l->code, l->ncode);
		free(l->pipeline);
		free(l);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void snapshot_release(struct snapshot *s)
{
	free(s->deflt);
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
				w->ncopied++;
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
	out->ndeflt = snapshot_default_code(out->code, out->ncode, &out->deflt);
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
	out->ndeflt = snapshot_default_code(out->code, out->ncode, &out->deflt);
	char *msg = xasprintf("run %lld of %s", (long long)run, pipeline), *err = NULL;
	if (vcs_commit_dir(f->vcs, out->commit, pipeline, out->dir, w.ncopied, msg,
	                   &err) < 0) {
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
	step_free(l->def); /* parsed from the snapshot this one replaces */
	l->def = NULL;
	free(l->def_key);
	l->def_key = NULL;
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
	out->ndeflt = snapshot_default_code(out->code, out->ncode, &out->deflt);
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
	if (!rc && !l) {
		/* Remember the hashes for the next plan (and the first snapshot's
		 * hashing); run 0 and no generation: never shared as a snapshot. */
		l = xcalloc(1, sizeof *l);
		l->pipeline = xstrdup(pipeline);
		l->gen = UINT64_MAX;
		l->code = codes_dup(w.code, w.ncode);
		l->ncode = w.ncode;
		l->next = c->head;
		c->head = l;
	}
	pthread_mutex_unlock(&c->lock);
	*out = w.code;
	*n = w.ncode;
	return rc;
}

void snapshot_moved(struct snapshots *c, int64_t from, int64_t to)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	for (struct last *l = c->head; l; l = l->next)
		if (l->run == from) {
			l->run = to;
			if (!to)
				l->gen = UINT64_MAX; /* never shared again */
		}
	pthread_mutex_unlock(&c->lock);
}

size_t snapshot_default_code(const struct codefile *code, size_t n, size_t **out)
{
	size_t k = 0;
	*out = xcalloc(n + 1, sizeof **out);
	for (size_t i = 0; i < n; i++)
		if (step_is_default_code(code[i].rel))
			(*out)[k++] = i;
	return k;
}

static int cmp_index(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

size_t snapshot_step_code(const struct codefile *code, size_t n, const size_t *deflt,
                          size_t ndeflt, const struct step_def *s, size_t **out)
{
	if (s->code_default) {
		*out = xcalloc(ndeflt + 1, sizeof **out);
		memcpy(*out, deflt, ndeflt * sizeof **out);
		return ndeflt;
	}
	size_t k = 0, cap = 0;
	*out = NULL;
	for (size_t c = 0; c < s->n_code; c++) {
		size_t len = strlen(s->code[c]);
		while (len && s->code[c][len - 1] == '/')
			len--;
		/* The first file whose rel is >= the path: the files at or below
		 * it follow, since '/' sorts before every name character. */
		size_t lo = 0, hi = n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (strncmp(code[mid].rel, s->code[c], len) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (size_t i = lo; i < n && !strncmp(code[i].rel, s->code[c], len); i++) {
			char next = code[i].rel[len];
			if (next && next != '/')
				continue; /* "lib.py" when the path is "lib" */
			if (k == cap) {
				cap = cap ? 2 * cap : 8;
				*out = xrealloc(*out, cap * sizeof **out);
			}
			(*out)[k++] = i;
		}
	}
	if (k > 1) { /* paths that overlap ("lib/" and "lib/a.py") count once */
		qsort(*out, k, sizeof **out, cmp_index);
		size_t j = 1;
		for (size_t i = 1; i < k; i++)
			if ((*out)[i] != (*out)[j - 1])
				(*out)[j++] = (*out)[i];
		k = j;
	}
	if (!*out)
		*out = xcalloc(1, sizeof **out);
	return k;
}

struct pipeline_def *snapshot_def_get(struct snapshots *c, const char *pipeline,
                                      int64_t run, const char *key)
{
	struct pipeline_def *p = NULL;
	pthread_mutex_lock(&c->lock);
	struct last *l = find_last(c, pipeline);
	if (l && l->def && l->run == run && !strcmp(l->def_key, key)) {
		p = l->def;
		step_hold(p);
	}
	pthread_mutex_unlock(&c->lock);
	/* Parsing checks that file: inputs exist: so must a parse reused. */
	for (size_t i = 0; p && i < p->n_steps; i++)
		for (size_t k = 0; k < p->steps[i].n_inputs; k++) {
			struct stat st;
			const struct step_input *in = &p->steps[i].inputs[k];
			if (in->kind == STEP_IN_FILE && stat(in->path, &st) < 0) {
				step_free(p);
				return NULL;
			}
		}
	return p;
}

void snapshot_def_keep(struct snapshots *c, const char *pipeline, int64_t run,
                       const char *key, struct pipeline_def *p)
{
	pthread_mutex_lock(&c->lock);
	struct last *l = find_last(c, pipeline);
	if (l && l->run == run) {
		step_hold(p);
		step_free(l->def);
		free(l->def_key);
		l->def = p;
		l->def_key = xstrdup(key);
	}
	pthread_mutex_unlock(&c->lock);
}
