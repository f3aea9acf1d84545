/*
 * workspace.c - a step's scratch, files and environment (workspace.h).
 *
 * Scratch lives outside the store (--scratch), one directory per run and
 * step. The metrics file (a memfd) and the params file (in the store) are
 * opened by the daemon and handed to the step as fds 3 and 4, so a step
 * can neither swap them for links nor reach the store through them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "flowyfs/events.h"
#include "flowyfs/log.h"
#include "flowyfs/scratchpool.h"
#include "flowyfs/util.h"
#include "flowyfs/workspace.h"

extern char **environ;

void workspace_remove(const char *dir)
{
	int rc = util_rm_rf(dir);
	if (rc < 0 && rc != -ENOENT)
		log_error("cannot remove scratch %s: %s", dir, strerror(-rc));
}

static void add_env(char ***env, size_t *n, char *kv)
{
	*env = xrealloc(*env, (*n + 2) * sizeof **env);
	(*env)[(*n)++] = kv;
	(*env)[*n] = NULL;
}

/* The daemon's environment without FLOWY_*, once per run: it does not
 * change while the daemon runs, and copying it was most of a step's
 * environment. */
static void env_base(struct run *r)
{
	if (r->env_base)
		return;
	size_t n = 0;
	for (char **e = environ; *e; e++)
		n += strncmp(*e, "FLOWY_", 6) != 0;
	r->env_base = xcalloc(n + 1, sizeof *r->env_base);
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "FLOWY_", 6))
			r->env_base[r->nenv_base++] = xstrdup(*e);
}

char **workspace_env(struct run *r, size_t i, const char *cwd)
{
	struct srun *s = &r->s[i];
	char **env = NULL;
	size_t n = 0;
	env_base(r);
	add_env(&env, &n, xasprintf("FLOWY_PIPELINE=%s", r->pipeline));
	add_env(&env, &n, xasprintf("FLOWY_STEP=%s", s->def->name));
	add_env(&env, &n, xasprintf("FLOWY_RUN=%lld", (long long)r->id));
	add_env(&env, &n, xasprintf("FLOWY_IN=%s/in", cwd));
	add_env(&env, &n, xasprintf("FLOWY_OUT=%s/out", cwd));
	/* Files the daemon opened for the step: the step's namespace hides the
	 * store, where they live, but not its own descriptors. */
	add_env(&env, &n, xstrdup("FLOWY_METRICS=/dev/fd/3"));
	add_env(&env, &n, xstrdup("FLOWY_PARAMS=/dev/fd/4"));
	add_env(&env, &n, xasprintf("FLOWY_MOUNT=%s", r->f->mnt));
	if (r->p->workdir)
		add_env(&env, &n, xasprintf("FLOWY_WORKDIR=%s", r->p->workdir));
	if (s->item_env)
		add_env(&env, &n, xasprintf("FLOWY_ITEM=%s", s->item_env));
	for (cJSON *p = (s->params ? s->params : s->def->params)->child; p; p = p->next) {
		if (cJSON_IsString(p))
			add_env(&env, &n, xasprintf("FLOWY_PARAM_%s=%s", p->string, p->valuestring));
		else if (cJSON_IsNumber(p)) {
			char num[UTIL_DOUBLE_LEN];
			add_env(&env, &n, xasprintf("FLOWY_PARAM_%s=%s", p->string,
			                            util_fmt_double(num, p->valuedouble)));
		} else if (cJSON_IsBool(p)) {
			char *v = cJSON_PrintUnformatted(p);
			add_env(&env, &n, xasprintf("FLOWY_PARAM_%s=%s", p->string, v));
			free(v);
		}
	}
	/* The run's copy, borrowed: workspace_env_free leaves it. */
	env = xrealloc(env, (n + r->nenv_base + 1) * sizeof *env);
	memcpy(env + n, r->env_base, (r->nenv_base + 1) * sizeof *env);
	return env;
}

void workspace_env_free(struct run *r, char **env)
{
	size_t n = 0;
	while (env && env[n])
		n++;
	for (size_t k = 0; k + r->nenv_base < n; k++)
		free(env[k]);
	free(env);
}

void workspace_env_base_free(struct run *r)
{
	for (size_t k = 0; k < r->nenv_base; k++)
		free(r->env_base[k]);
	free(r->env_base);
	r->env_base = NULL;
	r->nenv_base = 0;
}

/* Where a file of step s lives below base: <base>/<step><suffix>, or for
 * a foreach task <base>/<step>.items/<item><suffix> (the directory made
 * with mode). */
static char *unit_path(const struct srun *s, const char *base, const char *suffix,
                       mode_t mode)
{
	if (s->parent < 0)
		return xasprintf("%s/%s%s", base, s->def->name, suffix);
	char *dir = xasprintf("%s/%s.items", base, s->def->name);
	int rc = util_mkdir_p(dir, mode);
	if (rc < 0)
		log_error("cannot make %s: %s", dir, strerror(-rc));
	char *path = xasprintf("%s/%s%s", dir, s->item, suffix);
	free(dir);
	return path;
}

char *workspace_unit_file(struct run *r, const struct srun *s, const char *suffix)
{
	return unit_path(s, r->rundir, suffix, 0755);
}

/* Open (once) the step's log, runs/<id>/<step>.log in the store. */
int workspace_open_log(struct run *r, struct srun *s)
{
	char *path = unit_path(s, r->rundir, ".log", 0755);
	int rc = steplog_open(&s->log, path, STEPLOG_CAP);
	free(path);
	return rc;
}

/* mkdir owned by the steps' user. */
static int mkdir_owned(struct run *r, int dfd, const char *name)
{
	if (mkdirat(dfd, name, 0755) < 0)
		return -errno;
	if (r->uid != geteuid() && fchownat(dfd, name, r->uid, r->gid,
	                                    AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}


/* Every metric value is an event (alerts check it as it arrives). */
static void metric_value(void *arg, const char *step, const char *name, double v)
{
	struct run *r = arg;
	events_emit(r->f, &(struct event){.kind = EV_METRIC, .pipeline = r->pipeline,
	                                  .run = r->id, .step = step, .metric = name,
	                                  .value = v});
}

/* The step's metrics file: an anonymous memory file (memfd) made by the
 * daemon and handed to the step as fd 3 ($FLOWY_METRICS=/dev/fd/3); the
 * daemon tails its own descriptor of it and frees what it has read. It
 * has no name anywhere, so the step can neither swap it for a link nor
 * reach anything through it, and it costs the disk no inode. Retries
 * append to it. */
static int open_metrics(struct run *r, struct srun *s)
{
	if (s->metrics.step)
		return 0;
	int fd = memfd_create("flowy-metrics", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* The step reopens it through /dev/fd/3, which checks its owner. */
	if (r->uid != geteuid() && fchown(fd, r->uid, r->gid) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	metrics_tail_init(&s->metrics, fd, r->id, s->def->name);
	s->metrics.on_value = metric_value;
	s->metrics.arg = r;
	return 0;
}

/* The step's params as JSON, opened read-only for the step (fd 4,
 * $FLOWY_PARAMS=/dev/fd/4); steps with equal params share one file,
 * runs/<id>/params-<hash>.json. Returns the fd or -errno. */
static int open_params(struct run *r, struct srun *s)
{
	char *pj = cJSON_Print(s->params ? s->params : s->def->params), ph[CAS_HEX_LEN + 1];
	cas_hash_buf(ph, pj, strlen(pj));
	char *path = xasprintf("%s/params-%.16s.json", r->rundir, ph);
	int rc = 0;
	if (access(path, F_OK) != 0)
		rc = util_put_file(path, pj, strlen(pj));
	int fd = rc ? rc : open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		fd = -errno;
	free(path);
	free(pj);
	return fd;
}

/* Step i's scratch directory at s->scratch with an empty in/ and out/:
 * a pooled one (pool given: the run's local scratch) or new ones. */
static int make_scratch(struct run *r, struct srun *s, const char *base,
                        struct scratchpool *pool)
{
	int rc = util_mkdir_p(base, 0711);
	if (!rc && pool && (rc = scratchpool_take(pool, s->scratch)) != 0)
		return rc < 0 ? rc : 0;
	if (!rc && mkdir(s->scratch, 0700) < 0)
		rc = -errno;
	if (!rc && r->uid != geteuid() && chown(s->scratch, r->uid, r->gid) < 0)
		rc = -errno;
	int dfd = -1;
	if (!rc && (dfd = open(s->scratch, O_PATH | O_DIRECTORY | O_NOFOLLOW |
	                       O_CLOEXEC)) < 0)
		rc = -errno;
	if (!rc && mkdirat(dfd, "in", 0755) < 0)
		rc = -errno;
	if (!rc)
		rc = mkdir_owned(r, dfd, "out");
	if (dfd >= 0)
		close(dfd);
	return rc;
}

/* Lay out step i's scratch below base: code files, in/ (links to the
 * inputs through the mount, or into objects) and an empty out/
 * (remembered, so a replaced one is noticed). */
static int prepare(struct run *r, size_t i, const char *base, const char *at,
                   const char *objects, struct scratchpool *pool)
{
	struct srun *s = &r->s[i];
	int rc, dfd = -1;
	if (s->scratch) {
		workspace_remove(s->scratch); /* a retry starts clean */
		pool = NULL;
	}
	if (at) {
		free(s->scratch);
		s->scratch = xstrdup(at);
	} else if (!s->scratch) {
		s->scratch = unit_path(s, base, "", 0711);
	}
	rc = make_scratch(r, s, base, pool);
	if (!rc && (dfd = open(s->scratch, O_PATH | O_DIRECTORY | O_NOFOLLOW |
	                       O_CLOEXEC)) < 0)
		rc = -errno;
	struct stat st;
	if (!rc && fstatat(dfd, "out", &st, AT_SYMLINK_NOFOLLOW) < 0)
		rc = -errno;
	s->out_dev = st.st_dev;
	s->out_ino = st.st_ino;
	size_t *idx = NULL;
	size_t nidx = snapshot_step_code(r->snap.code, r->snap.ncode, r->snap.deflt,
	                                 r->snap.ndeflt, s->def, &idx);
	for (size_t k = 0; !rc && k < nidx; k++) {
		size_t c = idx[k];
		char *src = xasprintf("%s/%s", r->snap.dir, r->snap.code[c].rel);
		char *dst = xasprintf("%s/%s", s->scratch, r->snap.code[c].rel);
		char *slash = strrchr(dst, '/');
		*slash = '\0';
		rc = util_mkdir_p(dst, 0755);
		*slash = '/';
		if (r->snap.code[c].link) {
			if (!rc && symlink(r->snap.code[c].link, dst) < 0)
				rc = -errno;
			if (!rc && r->uid != geteuid() && lchown(dst, r->uid, r->gid) < 0)
				rc = -errno;
			free(dst);
			free(src);
			continue;
		}
		if (!rc && stat(src, &st) < 0)
			rc = -errno;
		if (!rc)
			rc = util_copy_file(src, dst, (st.st_mode & 0777) | 0200,
			                    &r->abort_io);
		if (!rc && r->uid != geteuid() && chown(dst, r->uid, r->gid) < 0)
			rc = -errno;
		free(dst);
		free(src);
	}
	free(idx);
	/* Inputs are the immutable artifacts, reached through the mount (or
	 * materialized where the step runs). */
	for (size_t k = 0; !rc && k < s->def->n_inputs; k++) {
		char *link = xasprintf("in/%s", s->def->inputs[k].as);
		char *target = objects ? xasprintf("%s/%s", objects, s->in_hex[k])
		                       : xasprintf("%s/artifacts/sha256/%s", r->f->mnt,
		                                   s->in_hex[k]);
		if (symlinkat(target, dfd, link) < 0)
			rc = -errno;
		free(target);
		free(link);
	}
	if (dfd >= 0)
		close(dfd);
	return rc;
}

int workspace_prepare_at(struct run *r, size_t i, const char *base, const char *objects)
{
	return prepare(r, i, base, NULL, objects, NULL);
}

int workspace_prepare(struct run *r, size_t i, const char *at)
{
	return prepare(r, i, r->scratch, at, NULL, &r->pool);
}

char *workspace_home(struct run *r, size_t i)
{
	return unit_path(&r->s[i], r->scratch, "", 0711);
}

void workspace_recycle(struct run *r, size_t i)
{
	struct srun *s = &r->s[i];
	if (!s->scratch)
		return;
	int rc = scratchpool_give(&r->pool, s->scratch, 0755);
	if (rc < 0) {
		/* It stays where it is, and goes with the run's scratch. */
		log_debug("run %lld step %s: scratch not reused: %s", (long long)r->id,
		          s->def->name, strerror(-rc));
		return;
	}
	free(s->scratch);
	s->scratch = NULL;
}

int workspace_open_files(struct run *r, size_t i, int *params_fd)
{
	struct srun *s = &r->s[i];
	int rc = open_metrics(r, s);
	if (rc < 0)
		return rc;
	rc = open_params(r, s);
	if (rc < 0)
		return rc;
	*params_fd = rc;
	return 0;
}

char *workspace_shared_dir(const struct flowy *f, int64_t id)
{
	if (!f->shared_dir)
		return NULL;
	const char *h = strrchr(f->scratch_dir, '/');
	return xasprintf("%s/%s/runs/%lld", f->shared_dir, h ? h + 1 : "store",
	                 (long long)id);
}

void workspace_forget_kept(struct flowy *f, const char *pipeline, int64_t id)
{
	int64_t *ids = NULL;
	size_t n = 0;
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db, "SELECT id FROM runs WHERE pipeline=? AND "
	                              "kept_scratch=1 AND id<?", "ti", pipeline, id);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		ids = xrealloc(ids, (n + 1) * sizeof *ids);
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	db_finish(f->db, st);
	db_unlock(f->db);
	for (size_t i = 0; i < n; i++) {
		char *dir = xasprintf("%s/%lld", f->scratch_dir, (long long)ids[i]);
		workspace_remove(dir);
		free(dir);
		if ((dir = workspace_shared_dir(f, ids[i]))) {
			workspace_remove(dir);
			free(dir);
		}
		if (db_exec(f->db, "UPDATE runs SET kept_scratch=0 WHERE id=?", "i", ids[i]) < 0)
			log_error("run %lld: cannot record that its scratch is gone",
			          (long long)ids[i]);
	}
	free(ids);
}
