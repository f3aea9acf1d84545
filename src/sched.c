/*
 * sched.c - the run queue and the scheduler thread.
 *
 * One thread takes queued runs in order. A run snapshots the pipeline's
 * files, parses the snapshot (so edits during a run do not leak into it),
 * then walks the DAG: a step whose dependencies succeeded is looked up in
 * the cache by a key over its definition, code files, params and input
 * content hashes; a hit reuses the recorded outputs, a miss starts the
 * process (exec.c) and, once it exits 0 with every declared output, hashes
 * and commits the outputs (cas.c) and records them (one transaction).
 * The thread sleeps in poll() on the steps' pidfds and an eventfd, so an
 * exit, a cancel or a stop wakes it at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <grp.h>
#include <pwd.h>
#include <sys/statvfs.h>

#include <cJSON.h>

#include "flowyfs/dag.h"
#include "flowyfs/envinfo.h"
#include "flowyfs/exec.h"
#include "flowyfs/hostfs.h"
#include "flowyfs/log.h"
#include "flowyfs/metrics.h"
#include "flowyfs/catalog.h"
#include "flowyfs/sched.h"
#include "flowyfs/step.h"
#include "flowyfs/steplog.h"
#include "flowyfs/util.h"

extern char **environ;

#define KILL_GRACE 2.0
#define METRICS_TICK 0.2   /* seconds between reads of running steps' metrics */

struct job {
	int64_t run_id;
	char *pipeline, *force;
	struct job *next;
};

/* The last snapshot of each pipeline, reused while the pipeline's
 * generation (catalog.c) stays the same. Scheduler thread only. */
struct codefile {
	char *rel;
	char hex[CAS_HEX_LEN + 1]; /* of the content, or of a link's target */
	char *link;                /* a symlink's target, else NULL */
	/* The source file when it was copied, to know it unchanged later. */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

struct snap {
	char *pipeline;
	uint64_t gen;
	int64_t run;          /* the run whose snapshot directory it is */
	char commit[41];
	struct codefile *code; /* its files' hashes, computed once */
	size_t ncode;
	struct snap *next;
};

struct sched {
	pthread_t thread;
	struct snap *snaps;
	pthread_mutex_t lock;
	int wake_fd;
	int stop;
	struct job *head;
	/* Control of the run in progress (lock held to touch). */
	char *cur_pipeline;
	int cancel, paused;
	/* Set with stop or cancel: long store operations (hashing, ingesting)
	 * poll it without the lock and give up. */
	int abort_io;
	char *scratch_cover;      /* hidden from steps: the scratch of every store */
};

enum state { S_PENDING, S_RUNNING, S_DONE, S_FAILED, S_SKIPPED };

struct srun {                 /* one step within a run */
	struct step_def *def;
	enum state state;
	int forced, attempts, exit_code, cached;
	struct exec_proc proc;
	double started, finished, term_sent;
	struct steplog log;
	char *scratch;
	dev_t out_dev;            /* the out/ directory flowyfs made */
	ino_t out_ino;
	char **in_hex;            /* per input */
	char (*out_hex)[CAS_HEX_LEN + 1];
	char *key, *key_parts, *reason, *error;
	struct metrics_tail metrics;
};

struct run {
	struct flowy *f;
	int64_t id;
	char *pipeline;
	char *rundir, *snapshot, *scratch;
	struct pipeline_def *p;
	size_t **deps, *ndeps;
	struct srun *s;
	struct codefile *code;
	size_t ncode;
	char *workdir_code;       /* workdir commit (+dirty hash), or NULL */
	int batch;                /* a transaction is open (db lock held) */
	int64_t snap_run;         /* the run whose snapshot this run uses */
	char commit[41];          /* the snapshot's commit in history.git */
	struct snap *snap;        /* set when this run made a new snapshot */
	size_t running;
	/* Who the steps run as: the owner of the pipeline when the daemon is
	 * root and the mount is shared (allow_other), else the daemon's user. */
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	size_t ngroups;
	int db_error;             /* first failure to record (-errno), or 0 */
};

/* Bytes free for an unprivileged writer on the file system of path, or
 * UINT64_MAX when it cannot be told. */
static uint64_t disk_free(const char *path)
{
	struct statvfs sv;
	if (statvfs(path, &sv) < 0)
		return UINT64_MAX;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

/* ---- queue ----------------------------------------------------------- */

void sched_wake(struct flowy *f)
{
	uint64_t one = 1;
	if (f->sched && write(f->sched->wake_fd, &one, sizeof one) < 0)
		log_debug("wake: %s", strerror(errno));
}

/* The free space under which no new run starts: 64 MiB, or 5% of a
 * smaller file system. */
static uint64_t reserve_for(const char *path)
{
	struct statvfs sv;
	if (statvfs(path, &sv) < 0)
		return 0;
	uint64_t size = (uint64_t)sv.f_blocks * sv.f_frsize, want = (uint64_t)64 << 20;
	return size / 20 < want ? size / 20 : want;
}

int sched_enqueue(struct flowy *f, const char *pipeline, const char *trigger,
                  const char *force_step, int64_t *out_id, char **why)
{
	int64_t id;
	uint64_t avail = disk_free(f->store), need = reserve_for(f->store);
	*why = NULL;
	if (avail < need) {
		*why = xasprintf("only %.1f MiB free on the store's disk (%s); "
		                 "a run needs at least %.1f MiB: free some space first",
		                 (double)avail / 1048576, f->store, (double)need / 1048576);
		return -ENOSPC;
	}
	int rc = db_run_create(f->db, &id, pipeline, trigger);
	if (rc < 0) {
		*why = xasprintf("cannot record the run: %s", rc == -ENOSPC ?
		                 "no space left on device" : strerror(-rc));
		return rc;
	}
	struct job *j = xcalloc(1, sizeof *j);
	j->run_id = id;
	j->pipeline = xstrdup(pipeline);
	j->force = force_step ? xstrdup(force_step) : NULL;
	struct sched *s = f->sched;
	pthread_mutex_lock(&s->lock);
	struct job **t = &s->head;
	while (*t)
		t = &(*t)->next;
	*t = j;
	pthread_mutex_unlock(&s->lock);
	sched_wake(f);
	if (out_id)
		*out_id = id;
	log_debug("queued run %lld of %s (%s)", (long long)id, pipeline, trigger);
	return 0;
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->pipeline);
	free(j->force);
	free(j);
}

int sched_control(struct flowy *f, const char *pipeline, const char *cmd)
{
	struct sched *s = f->sched;
	int found = 0;
	pthread_mutex_lock(&s->lock);
	int current = s->cur_pipeline && !strcmp(s->cur_pipeline, pipeline);
	if (!strcmp(cmd, "cancel")) {
		for (struct job **p = &s->head; *p;) {
			if (!strcmp((*p)->pipeline, pipeline)) {
				struct job *j = *p;
				*p = j->next;
				if (db_exec(f->db, "UPDATE runs SET status='cancelled', finished=? "
				            "WHERE id=?", "di", util_now(), j->run_id) < 0)
					log_error("run %lld: cannot record its cancel",
					          (long long)j->run_id);
				job_free(j);
				found = 1;
			} else {
				p = &(*p)->next;
			}
		}
		if (current) {
			s->cancel = found = 1;
			__atomic_store_n(&s->abort_io, 1, __ATOMIC_RELAXED);
		}
	} else if (!strcmp(cmd, "pause") || !strcmp(cmd, "resume")) {
		if (current)
			s->paused = !strcmp(cmd, "pause");
		found = current;
	} else {
		pthread_mutex_unlock(&s->lock);
		return -EINVAL;
	}
	pthread_mutex_unlock(&s->lock);
	sched_wake(f);
	return found ? 0 : -ESRCH;
}

/* ---- run setup -------------------------------------------------------- */

static void codes_free(struct codefile *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(c[i].rel);
		free(c[i].link);
	}
	free(c);
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

static void code_add(struct run *r, const struct codefile *c)
{
	r->code = xrealloc(r->code, (r->ncode + 1) * sizeof *r->code);
	r->code[r->ncode++] = *c;
}

static int cmp_rel(const void *key, const void *elem)
{
	return strcmp(key, ((const struct codefile *)elem)->rel);
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

/* Copy the pipeline directory src into the snapshot dst (rel below it),
 * dotfiles left out, and list every file with its hash in r->code. A file
 * unchanged since the last snapshot (prev, whose copy is in prevdir; its
 * list is sorted) is hard-linked from that copy, with its hash: snapshot
 * files are never written, so sharing them is safe, and an untouched data
 * file costs neither a copy nor a hash. Others are copied (holes kept) and
 * hashed from the copy, so the hash is of what the run sees. */
static int snap_copy(struct run *r, const struct snap *prev, const char *prevdir,
                     const char *src, const char *dst, const char *rel)
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
		char *to = xasprintf("%s/%s", dst, e->d_name);
		struct codefile c = {0};
		c.rel = *rel ? xasprintf("%s/%s", rel, e->d_name) : xstrdup(e->d_name);
		struct stat st;
		char target[PATH_MAX];
		ssize_t tn;
		if (lstat(from, &st) < 0) {
			rc = -errno;
		} else if (S_ISDIR(st.st_mode)) {
			rc = mkdir(to, 0755) < 0 ? -errno : snap_copy(r, prev, prevdir, from, to,
			                                              c.rel);
		} else if (S_ISREG(st.st_mode)) {
			c.dev = st.st_dev;
			c.ino = st.st_ino;
			c.size = st.st_size;
			c.mtime = st.st_mtim;
			c.ctime = st.st_ctim;
			const struct codefile *p = prev && prev->ncode ?
				bsearch(c.rel, prev->code, prev->ncode, sizeof *prev->code, cmp_rel) :
				NULL;
			char *old = p && unchanged(p, &st) ? xasprintf("%s/%s", prevdir, c.rel) : NULL;
			if (old && link(old, to) == 0) {
				memcpy(c.hex, p->hex, sizeof c.hex);
			} else {
				rc = util_copy_file(from, to, st.st_mode, &r->f->sched->abort_io);
				if (!rc)
					rc = cas_hash_file_stop(c.hex, to, &r->f->sched->abort_io);
			}
			free(old);
			if (!rc) {
				code_add(r, &c);
				c.rel = NULL;
			}
		} else if (S_ISLNK(st.st_mode) &&
		           (tn = readlink(from, target, sizeof target - 1)) > 0) {
			/* In-pipeline links (pipelines/ only allows those) are code too. */
			target[tn] = '\0';
			if (symlink(target, to) < 0) {
				rc = -errno;
			} else {
				c.link = xstrdup(target);
				cas_hash_buf(c.hex, target, (size_t)tn);
				code_add(r, &c);
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
	return rc;
}

static int cmp_code(const void *a, const void *b)
{
	return strcmp(((const struct codefile *)a)->rel, ((const struct codefile *)b)->rel);
}

/* The code files of a reused snapshot and their hashes (a new snapshot
 * listed them as it copied them). */
static void snapshot_code(struct run *r)
{
	struct snap *sn;
	if (r->snap)
		return;
	for (sn = r->f->sched->snaps; sn && strcmp(sn->pipeline, r->pipeline); sn = sn->next)
		;
	if (sn && sn->run == r->snap_run) {
		r->code = codes_dup(sn->code, sn->ncode);
		r->ncode = sn->ncode;
	}
}

/* Is code file rel part of step s's code? */
static int in_code(const struct step_def *s, const char *rel)
{
	if (s->code_default) {
		if (strchr(rel, '/'))
			return 1;
		size_t n = strlen(rel);
		return !(n > 5 && !strcmp(rel + n - 5, ".json"));
	}
	for (size_t i = 0; i < s->n_code; i++) {
		size_t n = strlen(s->code[i]);
		while (n && s->code[i][n - 1] == '/')
			n--;
		if (!strncmp(rel, s->code[i], n) && (rel[n] == '\0' || rel[n] == '/'))
			return 1;
	}
	return 0;
}

static void run_free(struct run *r)
{
	if (!r)
		return;
	for (size_t i = 0; r->s && i < r->p->n_steps; i++) {
		struct srun *s = &r->s[i];
		if (!s->def)
			continue; /* setup failed before the steps were laid out */
		for (size_t k = 0; k < s->def->n_inputs; k++)
			free(s->in_hex[k]);
		free(s->in_hex);
		free(s->out_hex);
		free(s->scratch);
		free(s->key);
		free(s->key_parts);
		free(s->reason);
		free(s->error);
		metrics_tail_free(&s->metrics);
		steplog_close(&s->log);
	}
	free(r->s);
	if (r->deps)
		dag_deps_free(r->deps, r->ndeps, r->p->n_steps);
	codes_free(r->code, r->ncode);
	free(r->workdir_code);
	free(r->groups);
	step_free(r->p);
	free(r->scratch);
	free(r->snapshot);
	free(r->rundir);
	free(r->pipeline);
	free(r);
}

/* A run that could not start: failed, or cancelled / interrupted when
 * that is what stopped its setup. */
static void run_fail_setup(struct flowy *f, int64_t id, const char *msg)
{
	struct sched *sc = f->sched;
	pthread_mutex_lock(&sc->lock);
	const char *status = sc->stop ? "interrupted" : sc->cancel ? "cancelled" : "failed";
	pthread_mutex_unlock(&sc->lock);
	log_info("run %lld %s: %s", (long long)id, status, msg);
	if (db_exec(f->db, "UPDATE runs SET status=?, finished=?, error=? WHERE id=?",
	            "tdti", status, util_now(), msg, id) < 0)
		log_error("run %lld: cannot record that it %s; a restart marks it "
		          "interrupted", (long long)id, status);
}

static int inside(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return !strncmp(path, dir, n) && (path[n] == '/' || !path[n]);
}

/* Commit the snapshot to the store's history, read the workdir's git
 * state, and record them with the run's environment and graph. */
static int record_versions(struct run *r, char **msg)
{
	struct flowy *f = r->f;
	char *err = NULL, *git = NULL;
	if (r->snap) {
		char *cmsg = xasprintf("run %lld of %s", (long long)r->id, r->pipeline);
		if (vcs_commit_dir(f->vcs, r->commit, r->pipeline, r->snapshot, cmsg,
		                   &err) < 0) {
			log_error("run %lld: %s", (long long)r->id, err);
			free(err);
			err = NULL;
			r->commit[0] = '\0';
		}
		memcpy(r->snap->commit, r->commit, sizeof r->commit);
		free(cmsg);
	}
	const char *wd = r->p->workdir;
	if (wd && (inside(wd, f->mnt) || inside(wd, f->store))) {
		*msg = xasprintf("workdir %s: must be outside the mount and the store", wd);
		return -EINVAL;
	}
	if (wd) {
		struct vcs_workdir w;
		if (vcs_workdir_state(&w, wd, &err) == 0) {
			git = xasprintf("workdir\t%s\ncommit\t%s\nbranch\t%s\ndirty\t%s\n%s%s%s",
			                wd, w.commit, w.branch, w.dirty ? "yes" : "no",
			                w.dirty ? "dirty_hash\t" : "", w.dirty ? w.dirty_hash : "",
			                w.dirty ? "\n" : "");
			r->workdir_code = xasprintf("%s%s%s", w.commit, w.dirty ? "+" : "",
			                            w.dirty ? w.dirty_hash : "");
		} else {
			git = xasprintf("workdir\t%s\nerror\t%s\n", wd, err);
			r->workdir_code = xstrdup("not a git repository");
		}
		free(err);
		vcs_workdir_free(&w);
	}
	const char **cmds = xcalloc(r->p->n_steps + 1, sizeof *cmds);
	for (size_t i = 0; i < r->p->n_steps; i++)
		cmds[i] = r->p->steps[i].run;
	char *env = envinfo_render(cmds, r->p->n_steps);
	free(cmds);
	char *dot = dag_render_dot(r->p);
	int rc = db_exec(f->db, "UPDATE runs SET commit_id=nullif(?, ''), git=?, env=?, "
	                 "dag=?, snapshot_run=? WHERE id=?", "ttttii", r->commit,
	                 git ? git : "", env, dot, r->snap_run, r->id);
	free(dot);
	free(env);
	free(git);
	if (rc < 0)
		*msg = xasprintf("cannot record the run: %s", strerror(-rc));
	return rc;
}

/* Point r->snapshot at a copy of the pipeline's files: the last one when
 * the pipeline did not change since (r->snap_run says whose), else a new
 * copy in this run's directory. */
static int take_snapshot(struct run *r)
{
	struct sched *sc = r->f->sched;
	int rc = util_mkdir_p(r->rundir, 0755);
	if (rc < 0)
		return rc;
	uint64_t gen = catalog_generation(r->f, r->pipeline);
	struct snap *sn;
	for (sn = sc->snaps; sn && strcmp(sn->pipeline, r->pipeline); sn = sn->next)
		;
	if (sn && sn->gen == gen) {
		char *dir = xasprintf("%s/%lld/snapshot", r->f->runs_dir, (long long)sn->run);
		struct stat st;
		if (stat(dir, &st) == 0) {
			free(r->snapshot);
			r->snapshot = dir;
			r->snap_run = sn->run;
			memcpy(r->commit, sn->commit, sizeof r->commit);
			return 0;
		}
		free(dir);
	}
	char *src = xasprintf("%s/%s", r->f->pipelines_dir, r->pipeline);
	char *prevdir = sn ? xasprintf("%s/%lld/snapshot", r->f->runs_dir,
	                               (long long)sn->run) : NULL;
	rc = mkdir(r->snapshot, 0755) < 0 ? -errno : 0;
	if (!rc)
		rc = snap_copy(r, sn, prevdir, src, r->snapshot, "");
	free(prevdir);
	free(src);
	if (rc < 0)
		return rc;
	if (r->ncode)
		qsort(r->code, r->ncode, sizeof *r->code, cmp_code);
	if (!sn) {
		sn = xcalloc(1, sizeof *sn);
		sn->pipeline = xstrdup(r->pipeline);
		sn->next = sc->snaps;
		sc->snaps = sn;
	}
	sn->gen = gen;
	sn->run = r->snap_run = r->id;
	sn->commit[0] = '\0';
	codes_free(sn->code, sn->ncode);
	sn->code = codes_dup(r->code, r->ncode);
	sn->ncode = r->ncode;
	r->snap = sn;
	return 0;
}

/* Who the steps of r run as (see struct run). */
static int run_owner(struct run *r, char **msg)
{
	struct flowy *f = r->f;
	r->uid = geteuid();
	r->gid = getegid();
	if (r->uid != 0 || !f->allow_other)
		return 0;
	char *dir = xasprintf("%s/%s", f->pipelines_dir, r->pipeline);
	struct stat st;
	int rc = stat(dir, &st) < 0 ? -errno : 0;
	free(dir);
	if (rc < 0) {
		*msg = xasprintf("cannot find the owner of pipeline %s: %s", r->pipeline,
		                 strerror(-rc));
		return rc;
	}
	r->uid = st.st_uid;
	r->gid = st.st_gid;
	if (r->uid == 0)
		return 0;
	struct passwd pw, *found = NULL;
	char buf[4096];
	if (getpwuid_r(r->uid, &pw, buf, sizeof buf, &found) != 0 || !found)
		return 0; /* a uid without a name: its own gid, no other groups */
	r->gid = pw.pw_gid;
	int n = 32;
	r->groups = xcalloc((size_t)n, sizeof *r->groups);
	if (getgrouplist(pw.pw_name, pw.pw_gid, r->groups, &n) < 0) {
		r->groups = xrealloc(r->groups, (size_t)n * sizeof *r->groups);
		if (getgrouplist(pw.pw_name, pw.pw_gid, r->groups, &n) < 0)
			n = 0;
	}
	r->ngroups = (size_t)n;
	return 0;
}

/* Snapshot and parse the pipeline; NULL when the run cannot start (the
 * run row says why). */
static struct run *run_setup(struct flowy *f, struct job *j)
{
	struct run *r = xcalloc(1, sizeof *r);
	r->f = f;
	r->id = j->run_id;
	r->pipeline = xstrdup(j->pipeline);
	r->rundir = xasprintf("%s/%lld", f->runs_dir, (long long)r->id);
	r->snapshot = xasprintf("%s/snapshot", r->rundir);
	r->scratch = xasprintf("%s/%lld", f->scratch_dir, (long long)r->id);
	char *msg = NULL;
	int rc = take_snapshot(r);
	if (rc < 0) {
		msg = rc == -ECANCELED
			? xasprintf("stopped while copying and hashing pipeline %s", r->pipeline)
			: xasprintf("cannot snapshot pipeline %s: %s", r->pipeline, rc == -ENOSPC ?
			            "no space left on device" : strerror(-rc));
		goto fail;
	}
	rc = step_load(&r->p, r->pipeline, r->snapshot);
	if (rc < 0 || r->p->n_errors) {
		msg = rc < 0 ? xasprintf("cannot read pipeline: %s", strerror(-rc))
		             : xasprintf("pipeline is invalid: %s", r->p->errors[0]);
		goto fail;
	}
	snapshot_code(r);
	dag_deps(&r->deps, &r->ndeps, r->p);
	r->s = xcalloc(r->p->n_steps, sizeof *r->s);
	unsigned char *mark = xcalloc(r->p->n_steps, 1);
	if (j->force) {
		int i = -1;
		for (size_t k = 0; k < r->p->n_steps; k++)
			if (!strcmp(r->p->steps[k].name, j->force))
				i = (int)k;
		if (i < 0) {
			free(mark);
			msg = xasprintf("rerun: no step named %s", j->force);
			goto fail;
		}
		dag_downstream(r->p, (size_t)i, mark);
	}
	for (size_t i = 0; i < r->p->n_steps; i++) {
		struct srun *s = &r->s[i];
		s->def = &r->p->steps[i];
		s->forced = mark[i];
		steplog_init(&s->log);
		s->in_hex = xcalloc(s->def->n_inputs + 1, sizeof *s->in_hex);
		s->out_hex = xcalloc(s->def->n_outputs + 1, sizeof *s->out_hex);
	}
	free(mark);

	if (record_versions(r, &msg) < 0)
		goto fail;
	if ((rc = run_owner(r, &msg)) < 0)
		goto fail;
	char *params = cJSON_PrintUnformatted(r->p->params);
	db_lock(f->db);
	rc = db_begin(f->db);
	if (!rc)
		rc = db_exec(f->db, "UPDATE runs SET status='running', started=?, params=? "
		             "WHERE id=?", "dti", util_now(), params, r->id);
	for (size_t i = 0; !rc && i < r->p->n_steps; i++)
		rc = db_exec(f->db, "INSERT OR REPLACE INTO steps(run_id, name, status) "
		             "VALUES(?, ?, 'pending')", "it", r->id, r->p->steps[i].name);
	if (rc)
		db_rollback(f->db);
	else
		rc = db_commit(f->db);
	db_unlock(f->db);
	free(params);
	if (rc < 0) {
		msg = xasprintf("cannot record the run: %s", strerror(-rc));
		goto fail;
	}
	return r;
fail:
	run_fail_setup(f, r->id, msg);
	free(msg);
	run_free(r);
	return NULL;
}

/* ---- cache ------------------------------------------------------------ */

static char *json_value(const cJSON *v)
{
	return cJSON_PrintUnformatted(v);
}

/* How a store operation's failure reads in a step's error. */
static char *store_error(int rc, char *why)
{
	char *msg = rc == -ENOSPC
		? xasprintf("no space left on device while storing %s (the store's disk "
		            "is full)", why ? why : "the outputs")
		: why ? xstrdup(why) : xasprintf("cannot store the outputs: %s",
		                                 strerror(-rc));
	free(why);
	return msg;
}

/* Resolve every input of step i to a content hash. */
static int resolve_inputs(struct run *r, size_t i, char **err)
{
	struct flowy *f = r->f;
	struct srun *s = &r->s[i];
	for (size_t k = 0; k < s->def->n_inputs; k++) {
		const struct step_input *in = &s->def->inputs[k];
		char hex[CAS_HEX_LEN + 1] = "";
		switch (in->kind) {
		case STEP_IN_LOCAL: {
			const struct srun *p = &r->s[in->producer];
			for (size_t o = 0; o < p->def->n_outputs; o++)
				if (!strcmp(p->def->outputs[o], in->artifact))
					memcpy(hex, p->out_hex[o], sizeof hex);
			break;
		}
		case STEP_IN_PIPELINE: {
			db_lock(f->db);
			char *h = db_text(f->db, "SELECT hash FROM latest WHERE pipeline=? AND "
			                  "name=?", "tt", in->pipeline, in->artifact);
			db_unlock(f->db);
			if (!h) {
				*err = xasprintf("input %s: pipeline %s has no artifact %s yet",
				                 in->ref, in->pipeline, in->artifact);
				return -ENOENT;
			}
			snprintf(hex, sizeof hex, "%s", h);
			free(h);
			break;
		}
		case STEP_IN_FILE: {
			if (hostfs_inside_mount(in->path, f->mnt, f->mnt_dev)) {
				*err = xasprintf("input %s: a file: input may not point into "
				                 "the mount (use other/name or sha256:)", in->ref);
				return -EINVAL;
			}
			enum cas_kind kind;
			char *why = NULL;
			/* Read as the steps' user: a file: input publishes nothing that
			 * user could not read itself. */
			struct cas_put_opts opts = {
				.as_user = r->uid != geteuid(), .uid = r->uid, .gid = r->gid,
				.stop = &f->sched->abort_io,
			};
			int rc = cas_put_path(f->cas, hex, &kind, in->path, "/", &opts, &why);
			if (rc < 0) {
				*err = rc == -ENOSPC ? store_error(rc, why) :
				       xasprintf("input %s: %s", in->ref, why ? why : strerror(-rc));
				if (rc != -ENOSPC)
					free(why);
				return rc;
			}
			break;
		}
		case STEP_IN_PINNED: {
			struct cas_stat st;
			if (cas_stat(f->cas, in->hex, &st) < 0) {
				*err = xasprintf("input %s: no such artifact", in->ref);
				return -ENOENT;
			}
			snprintf(hex, sizeof hex, "%s", in->hex);
			break;
		}
		}
		s->in_hex[k] = xstrdup(hex);
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The cache key of step i and its parts as JSON (for reasons). */
static void compute_key(struct run *r, size_t i)
{
	struct srun *s = &r->s[i];
	struct strbuf kt = {0};
	cJSON *parts = cJSON_CreateObject();
	char defhash[CAS_HEX_LEN + 1];
	cas_hash_buf(defhash, s->def->canonical, strlen(s->def->canonical));
	strbuf_printf(&kt, "flowyfs-cache-v1\ndef %s\n", defhash);
	cJSON_AddStringToObject(parts, "definition", defhash);

	cJSON *code = cJSON_AddObjectToObject(parts, "code");
	if (s->def->code_default && r->workdir_code) {
		strbuf_printf(&kt, "code workdir %s\n", r->workdir_code);
		cJSON_AddStringToObject(code, "workdir", r->workdir_code);
	}
	for (size_t c = 0; c < r->ncode; c++)
		if (in_code(s->def, r->code[c].rel)) {
			strbuf_printf(&kt, "code %s %s\n", r->code[c].rel, r->code[c].hex);
			cJSON_AddStringToObject(code, r->code[c].rel, r->code[c].hex);
		}

	cJSON *params = cJSON_AddObjectToObject(parts, "params");
	size_t np = (size_t)cJSON_GetArraySize(s->def->params), k = 0;
	char **names = xcalloc(np + 1, sizeof *names);
	for (cJSON *p = s->def->params->child; p; p = p->next)
		names[k++] = p->string;
	qsort(names, np, sizeof *names, cmp_str);
	for (k = 0; k < np; k++) {
		cJSON *v = cJSON_GetObjectItemCaseSensitive(s->def->params, names[k]);
		char *txt = json_value(v);
		strbuf_printf(&kt, "param %s %s\n", names[k], txt);
		cJSON_AddStringToObject(params, names[k], txt);
		free(txt);
	}
	free(names);

	cJSON *inputs = cJSON_AddObjectToObject(parts, "inputs");
	for (k = 0; k < s->def->n_inputs; k++) {
		strbuf_printf(&kt, "input %s %s\n", s->def->inputs[k].as, s->in_hex[k]);
		cJSON_AddStringToObject(inputs, s->def->inputs[k].as, s->in_hex[k]);
	}
	s->key = xmalloc(CAS_HEX_LEN + 1);
	cas_hash_buf(s->key, kt.buf, kt.len);
	s->key_parts = cJSON_PrintUnformatted(parts);
	cJSON_Delete(parts);
	strbuf_release(&kt);
}

/* Compare one section of the key parts with the earlier run's. */
static void diff_section(struct strbuf *why, const cJSON *now, const cJSON *before,
                         const char *fmt_changed, const char *fmt_added,
                         const char *fmt_removed)
{
	for (const cJSON *a = now ? now->child : NULL; a; a = a->next) {
		const cJSON *b = cJSON_GetObjectItemCaseSensitive(before, a->string);
		const char *fmt = !b ? fmt_added :
		                  strcmp(a->valuestring, b->valuestring) ? fmt_changed : NULL;
		if (fmt) {
			if (why->len)
				strbuf_puts(why, ", ");
			strbuf_printf(why, fmt, a->string);
		}
	}
	for (const cJSON *b = before ? before->child : NULL; b; b = b->next)
		if (!cJSON_GetObjectItemCaseSensitive(now, b->string)) {
			if (why->len)
				strbuf_puts(why, ", ");
			strbuf_printf(why, fmt_removed, b->string);
		}
}

/* Why step i must run: compares its key parts with the last run of the
 * same step of this pipeline. */
static char *explain_miss(struct run *r, size_t i)
{
	struct srun *s = &r->s[i];
	if (s->forced)
		return xstrdup("forced");
	if (!s->def->n_outputs)
		return xstrdup("no outputs");
	struct flowy *f = r->f;
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db,
		"SELECT s.key_parts, s.status FROM steps s JOIN runs r ON r.id = s.run_id "
		"WHERE r.pipeline=? AND s.name=? AND s.key_parts IS NOT NULL AND s.run_id<? "
		"ORDER BY s.run_id DESC LIMIT 1", "tti", r->pipeline, s->def->name, r->id);
	char *prev = NULL, *prev_status = NULL;
	if (st && sqlite3_step(st) == SQLITE_ROW) {
		prev = xstrdup((const char *)sqlite3_column_text(st, 0));
		prev_status = xstrdup((const char *)sqlite3_column_text(st, 1));
	}
	db_finish(f->db, st);
	db_unlock(f->db);
	if (!prev)
		return xstrdup("no earlier run");
	cJSON *now = cJSON_Parse(s->key_parts), *before = cJSON_Parse(prev);
	struct strbuf why = {0};
	const cJSON *dn = cJSON_GetObjectItemCaseSensitive(now, "definition");
	const cJSON *db = cJSON_GetObjectItemCaseSensitive(before, "definition");
	if (!cJSON_IsString(db) || strcmp(dn->valuestring, db->valuestring))
		strbuf_puts(&why, "definition changed");
	diff_section(&why, cJSON_GetObjectItemCaseSensitive(now, "inputs"),
	             cJSON_GetObjectItemCaseSensitive(before, "inputs"),
	             "input %s changed", "input %s added", "input %s removed");
	diff_section(&why, cJSON_GetObjectItemCaseSensitive(now, "code"),
	             cJSON_GetObjectItemCaseSensitive(before, "code"),
	             "%s changed", "%s added", "%s removed");
	diff_section(&why, cJSON_GetObjectItemCaseSensitive(now, "params"),
	             cJSON_GetObjectItemCaseSensitive(before, "params"),
	             "param %s changed", "param %s added", "param %s removed");
	if (!why.len)
		strbuf_puts(&why, strcmp(prev_status, "failed") ? "outputs missing"
		                                                 : "earlier run failed");
	cJSON_Delete(before);
	cJSON_Delete(now);
	free(prev);
	free(prev_status);
	return strbuf_detach(&why, NULL);
}

/* A cache hit fills out_hex from the run that made the key. */
static int cache_lookup(struct run *r, size_t i)
{
	struct flowy *f = r->f;
	struct srun *s = &r->s[i];
	size_t found = 0;
	if (!s->def->n_outputs)
		return 0; /* run for its effect, every time */
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db,
		"SELECT io.name, io.hash FROM cache c JOIN step_io io ON io.run_id=c.run_id "
		"AND io.step=c.step AND io.dir='out' WHERE c.key=?", "t", s->key);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *hex = (const char *)sqlite3_column_text(st, 1);
		struct cas_stat cs;
		for (size_t o = 0; o < s->def->n_outputs; o++)
			if (!strcmp(s->def->outputs[o], name) && cas_stat(f->cas, hex, &cs) == 0) {
				snprintf(s->out_hex[o], CAS_HEX_LEN + 1, "%s", hex);
				found++;
			}
	}
	db_finish(f->db, st);
	db_unlock(f->db);
	return found == s->def->n_outputs;
}

/* ---- recording -------------------------------------------------------- */

/* Make hex known as an artifact (listed in artifacts/sha256, lineage/). */
static int record_artifact(struct flowy *f, const char *hex)
{
	struct cas_stat cs = {0};
	int rc = cas_stat(f->cas, hex, &cs);
	if (rc < 0)
		return rc;
	return db_exec(f->db, "INSERT OR IGNORE INTO artifacts(hash, kind, size, created) "
	               "VALUES(?, ?, ?, ?)", "ttid", hex, cs.kind == CAS_TREE ? "tree" : "blob",
	               (int64_t)cs.size, util_now());
}

static int record_inputs(struct run *r, size_t i)
{
	struct srun *s = &r->s[i];
	int rc = 0;
	for (size_t k = 0; !rc && k < s->def->n_inputs && s->in_hex[k]; k++) {
		rc = db_exec(r->f->db, "INSERT OR REPLACE INTO step_io(run_id, step, dir, "
		             "name, hash, ref) VALUES(?, ?, 'in', ?, ?, ?)", "itttt", r->id,
		             s->def->name, s->def->inputs[k].as, s->in_hex[k],
		             s->def->inputs[k].ref);
		if (!rc && !s->cached) /* a cache hit saw these inputs before */
			rc = record_artifact(r->f, s->in_hex[k]);
	}
	return rc;
}

/* Record the end of step i: status, outputs, latest, cache. One
 * transaction (or part of the open batch); 0 or -errno. */
static int record_end(struct run *r, size_t i, const char *status)
{
	struct flowy *f = r->f;
	struct srun *s = &r->s[i];
	int ok = !strcmp(status, "succeeded") || !strcmp(status, "cached");
	db_lock(f->db);
	int rc = db_begin(f->db);
	if (!rc)
		rc = record_inputs(r, i);
	char *params = cJSON_PrintUnformatted(s->def->params);
	if (!rc)
		rc = db_exec(f->db, "UPDATE steps SET status=?, exit_code=?, attempts=?, "
		             "started=nullif(?, 0), finished=nullif(?, 0), cached=?, reason=?, "
		             "cache_key=?, key_parts=?, error=?, params=? WHERE run_id=? AND "
		             "name=?", "tiidditttttit", status, (int64_t)s->exit_code,
		             (int64_t)s->attempts, s->started, s->finished, (int64_t)s->cached,
		             s->reason, s->key, s->key_parts, s->error, params, r->id,
		             s->def->name);
	free(params);
	if (!rc && !s->attempts && !s->cached)
		rc = db_exec(f->db, "UPDATE steps SET exit_code=NULL WHERE run_id=? AND name=?",
		             "it", r->id, s->def->name);
	for (size_t o = 0; !rc && ok && o < s->def->n_outputs; o++) {
		rc = db_exec(f->db, "INSERT OR REPLACE INTO step_io(run_id, step, dir, name, "
		             "hash) VALUES(?, ?, 'out', ?, ?)", "ittt", r->id, s->def->name,
		             s->def->outputs[o], s->out_hex[o]);
		if (!rc && !s->cached)
			rc = record_artifact(f, s->out_hex[o]);
		if (!rc)
			rc = db_exec(f->db, "INSERT OR REPLACE INTO latest(pipeline, name, hash, "
			             "run_id) VALUES(?, ?, ?, ?)", "ttti", r->pipeline,
			             s->def->outputs[o], s->out_hex[o], r->id);
	}
	if (!rc && ok && !s->cached)
		rc = db_exec(f->db, "INSERT OR REPLACE INTO cache(key, run_id, step) "
		             "VALUES(?, ?, ?)", "tit", s->key, r->id, s->def->name);
	if (rc)
		db_rollback(f->db);
	else
		rc = db_commit(f->db);
	db_unlock(f->db);
	return rc;
}

/* Remove a scratch directory; a failure is logged (it only costs disk). */
static void scratch_remove(const char *dir)
{
	int rc = util_rm_rf(dir);
	if (rc < 0 && rc != -ENOENT)
		log_error("cannot remove scratch %s: %s", dir, strerror(-rc));
}

/* A failure to record: free what disk the run's scratch holds (a full
 * disk is the usual cause, and the scratch often shares it) and remember
 * the first error so the run ends failed with it. */
static void record_failed(struct run *r, int rc, const char *what)
{
	log_error("run %lld: cannot record %s: %s", (long long)r->id, what,
	          strerror(-rc));
	for (size_t i = 0; i < r->p->n_steps; i++)
		if (r->s[i].state != S_RUNNING && r->s[i].scratch)
			scratch_remove(r->s[i].scratch);
	if (!r->db_error)
		r->db_error = rc;
}

static void step_finish(struct run *r, size_t i, enum state st, const char *status)
{
	struct srun *s = &r->s[i];
	s->state = st;
	s->finished = util_now();
	if (s->error)
		steplog_note(&s->log, "%s", s->error);
	int rc = record_end(r, i, status);
	if (rc < 0 && !r->batch) {
		/* Make room and try once more (outside a batch, which the failure
		 * has doomed anyway). */
		record_failed(r, rc, s->def->name);
		rc = record_end(r, i, status);
	}
	if (rc < 0)
		record_failed(r, rc, s->def->name);
	/* Scratch stays until the run ends: deleting it here makes the file
	 * system search harder for free inodes on the very next creates. */
	log_debug("run %lld step %s: %s", (long long)r->id, s->def->name, status);
}

/* ---- starting and ending a process ------------------------------------ */

static void add_env(char ***env, size_t *n, char *kv)
{
	*env = xrealloc(*env, (*n + 2) * sizeof **env);
	(*env)[(*n)++] = kv;
	(*env)[*n] = NULL;
}

static char **build_env(struct run *r, size_t i)
{
	struct srun *s = &r->s[i];
	char **env = NULL;
	size_t n = 0;
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "FLOWY_", 6))
			add_env(&env, &n, xstrdup(*e));
	add_env(&env, &n, xasprintf("FLOWY_PIPELINE=%s", r->pipeline));
	add_env(&env, &n, xasprintf("FLOWY_STEP=%s", s->def->name));
	add_env(&env, &n, xasprintf("FLOWY_RUN=%lld", (long long)r->id));
	add_env(&env, &n, xasprintf("FLOWY_IN=%s/in", s->scratch));
	add_env(&env, &n, xasprintf("FLOWY_OUT=%s/out", s->scratch));
	/* Files the daemon opened for the step: the step's namespace hides the
	 * store, where they live, but not its own descriptors. */
	add_env(&env, &n, xstrdup("FLOWY_METRICS=/dev/fd/3"));
	add_env(&env, &n, xstrdup("FLOWY_PARAMS=/dev/fd/4"));
	add_env(&env, &n, xasprintf("FLOWY_MOUNT=%s", r->f->mnt));
	if (r->p->workdir)
		add_env(&env, &n, xasprintf("FLOWY_WORKDIR=%s", r->p->workdir));
	for (cJSON *p = s->def->params->child; p; p = p->next) {
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
	return env;
}

static void free_env(char **env)
{
	for (char **e = env; e && *e; e++)
		free(*e);
	free(env);
}

/* Open (once) the step's log, runs/<id>/<step>.log in the store. */
static int open_log(struct run *r, struct srun *s)
{
	char *path = xasprintf("%s/%s.log", r->rundir, s->def->name);
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


/* The step's metrics file, runs/<id>/<step>.metrics in the store: made by
 * the daemon and handed to the step as fd 3 ($FLOWY_METRICS=/dev/fd/3);
 * the daemon tails its own descriptor of it. Retries append to it. */
static int open_metrics(struct run *r, struct srun *s)
{
	if (s->metrics.step)
		return 0;
	char *path = xasprintf("%s/%s.metrics", r->rundir, s->def->name);
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	              0644);
	free(path);
	if (fd < 0)
		return -errno;
	/* The step reopens it through /dev/fd/3, which checks its owner. */
	if (r->uid != geteuid() && fchown(fd, r->uid, r->gid) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	metrics_tail_init(&s->metrics, fd, r->id, s->def->name);
	return 0;
}

/* The step's params as JSON, opened read-only for the step (fd 4,
 * $FLOWY_PARAMS=/dev/fd/4); steps with equal params share one file,
 * runs/<id>/params-<hash>.json. Returns the fd or -errno. */
static int open_params(struct run *r, struct srun *s)
{
	char *pj = cJSON_Print(s->def->params), ph[CAS_HEX_LEN + 1];
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

/* Lay out step i's scratch: code files, in/ (links to the inputs through
 * the mount) and an empty out/ (remembered, so a replaced one is noticed). */
static int prepare_scratch(struct run *r, size_t i)
{
	struct srun *s = &r->s[i];
	int rc, dfd = -1;
	if (s->scratch)
		scratch_remove(s->scratch);
	else
		s->scratch = xasprintf("%s/%s", r->scratch, s->def->name);
	rc = util_mkdir_p(r->scratch, 0711);
	if (!rc && mkdir(s->scratch, 0700) < 0)
		rc = -errno;
	if (!rc && r->uid != geteuid() && chown(s->scratch, r->uid, r->gid) < 0)
		rc = -errno;
	if (!rc && (dfd = open(s->scratch, O_PATH | O_DIRECTORY | O_NOFOLLOW |
	                       O_CLOEXEC)) < 0)
		rc = -errno;
	if (!rc && mkdirat(dfd, "in", 0755) < 0)
		rc = -errno;
	if (!rc)
		rc = mkdir_owned(r, dfd, "out");
	struct stat st;
	if (!rc && fstatat(dfd, "out", &st, AT_SYMLINK_NOFOLLOW) < 0)
		rc = -errno;
	s->out_dev = st.st_dev;
	s->out_ino = st.st_ino;
	for (size_t c = 0; !rc && c < r->ncode; c++) {
		if (!in_code(s->def, r->code[c].rel))
			continue;
		char *src = xasprintf("%s/%s", r->snapshot, r->code[c].rel);
		char *dst = xasprintf("%s/%s", s->scratch, r->code[c].rel);
		char *slash = strrchr(dst, '/');
		*slash = '\0';
		rc = util_mkdir_p(dst, 0755);
		*slash = '/';
		if (r->code[c].link) {
			if (!rc && symlink(r->code[c].link, dst) < 0)
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
			                    &r->f->sched->abort_io);
		if (!rc && r->uid != geteuid() && chown(dst, r->uid, r->gid) < 0)
			rc = -errno;
		free(dst);
		free(src);
	}
	/* Inputs are the immutable artifacts, reached through the mount. */
	for (size_t k = 0; !rc && k < s->def->n_inputs; k++) {
		char *link = xasprintf("in/%s", s->def->inputs[k].as);
		char *target = xasprintf("%s/artifacts/sha256/%s", r->f->mnt, s->in_hex[k]);
		if (symlinkat(target, dfd, link) < 0)
			rc = -errno;
		free(target);
		free(link);
	}
	if (dfd >= 0)
		close(dfd);
	return rc;
}

static int start_step(struct run *r, size_t i)
{
	struct srun *s = &r->s[i];
	char *why = NULL;
	int rc = prepare_scratch(r, i);
	if (rc < 0) {
		s->error = rc == -ENOSPC
			? xstrdup("cannot prepare scratch directory: no space left on device")
			: xasprintf("cannot prepare scratch directory: %s", strerror(-rc));
		return rc;
	}
	int params_fd = -1;
	rc = open_log(r, s);
	if (!rc)
		rc = steplog_pipe(&s->log);
	if (!rc)
		rc = open_metrics(r, s);
	if (!rc)
		rc = params_fd = open_params(r, s);
	if (rc < 0) {
		s->error = rc == -ENOSPC
			? xstrdup("cannot write the step's files: no space left on device")
			: xasprintf("cannot write the step's files: %s", strerror(-rc));
		return rc;
	}
	s->attempts++;
	if (s->attempts > 1)
		steplog_note(&s->log, "attempt %d of %d", s->attempts, s->def->retries + 1);
	char **env = build_env(r, i);
	struct exec_spec spec = {
		.cmd = s->def->run, .cwd = s->scratch, .envp = env,
		.out_fd = s->log.wr,
		.hide = {r->f->store, r->f->sched->scratch_cover}, .nhide = 2,
		.keep = s->scratch,
		.ro_mount = r->f->mnt, .ro_flags = r->f->mnt_flags,
		.uid = r->uid, .gid = r->gid, .groups = r->groups, .ngroups = r->ngroups,
		.fds = {s->metrics.fd, params_fd}, .nfds = 2,
	};
	rc = exec_start(&s->proc, &spec, &why);
	close(params_fd);
	free_env(env);
	steplog_close_writer(&s->log);
	if (rc < 0) {
		s->error = why;
		return rc;
	}
	free(why);
	if (s->attempts == 1)
		s->started = util_now();
	rc = db_exec(r->f->db, "UPDATE steps SET status='running', started=?, reason=?, "
	             "pid=?, attempts=? WHERE run_id=? AND name=?", "dtiiit", s->started,
	             s->reason, (int64_t)s->proc.pid, (int64_t)s->attempts, r->id,
	             s->def->name);
	if (rc < 0)
		record_failed(r, rc, s->def->name);
	s->state = S_RUNNING;
	s->term_sent = 0;
	r->running++;
	return 0;
}

/* A top-level output that is a symlink into the artifacts of this mount
 * (e.g. made by `ln -s in/x out/y`) names an existing artifact: reuse it
 * without reading through the mount. Returns 1 when handled. */
static int reuse_linked_artifact(struct run *r, size_t i, size_t o, int outfd)
{
	struct srun *s = &r->s[i];
	char target[PATH_MAX];
	ssize_t n = readlinkat(outfd, s->def->outputs[o], target, sizeof target - 1);
	if (n < 0)
		return 0;
	target[n] = '\0';
	const char *t = target;
	if (!strncmp(t, "../in/", 6)) {
		for (size_t k = 0; k < s->def->n_inputs; k++)
			if (!strcmp(t + 6, s->def->inputs[k].as)) {
				snprintf(s->out_hex[o], CAS_HEX_LEN + 1, "%s", s->in_hex[k]);
				return 1;
			}
		return 0;
	}
	char *prefix = xasprintf("%s/artifacts/sha256/", r->f->mnt);
	size_t pl = strlen(prefix);
	int ok = !strncmp(t, prefix, pl) && cas_hex_valid(t + pl) &&
	         cas_stat(r->f->cas, t + pl, &(struct cas_stat){0}) == 0;
	free(prefix);
	if (ok)
		snprintf(s->out_hex[o], CAS_HEX_LEN + 1, "%s", t + pl);
	return ok;
}

/* Hash and commit every declared output; 0 or -errno with s->error set.
 * out/ must still be the directory prepare_scratch made; every output is
 * read through its fd (see cas_put_at), as the steps' user. */
static int ingest_outputs(struct run *r, size_t i)
{
	struct srun *s = &r->s[i];
	struct stat st;
	int rc = 0;
	char *out = xasprintf("%s/out", s->scratch);
	int outfd = open(out, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	free(out);
	if (outfd < 0 || fstat(outfd, &st) < 0 || st.st_dev != s->out_dev ||
	    st.st_ino != s->out_ino) {
		struct stat lst;
		char *path = xasprintf("%s/out", s->scratch);
		int is_link = lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode);
		free(path);
		s->error = xasprintf("out/ is not the directory flowyfs made (it was %s); "
		                     "write outputs into the out/ directory you are given",
		                     is_link ? "replaced by a symlink" :
		                     outfd < 0 && errno == ENOENT ? "removed" : "replaced");
		if (outfd >= 0)
			close(outfd);
		return -EPERM;
	}
	struct cas_put_opts opts = {
		.as_user = r->uid != geteuid(), .uid = r->uid, .gid = r->gid,
		.stop = &r->f->sched->abort_io,
	};
	for (size_t o = 0; !rc && o < s->def->n_outputs; o++) {
		const char *name = s->def->outputs[o];
		if (fstatat(outfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			s->error = xasprintf("step did not write its output out/%s", name);
			rc = -ENOENT;
		} else if (S_ISLNK(st.st_mode) && reuse_linked_artifact(r, i, o, outfd)) {
			;
		} else {
			enum cas_kind kind;
			char *why = NULL;
			rc = cas_put_at(r->f->cas, s->out_hex[o], &kind, outfd, name, "out",
			                &opts, &why);
			if (rc == -ECANCELED) {
				free(why);
				s->error = xstrdup("stopped while storing the outputs");
			} else if (rc < 0) {
				s->error = store_error(rc, why);
			} else {
				free(why);
			}
		}
	}
	close(outfd);
	return rc;
}

/* Why a step that exited non-zero may have failed: a full disk. */
static void note_full_disk(struct run *r, struct srun *s)
{
	const char *where = disk_free(r->f->scratch_dir) < 1024 * 1024 ? "scratch" :
	                    disk_free(r->f->store) < 1024 * 1024 ? "store" : NULL;
	if (!where)
		return;
	char *e = xasprintf("%s (no space left on device: the %s's disk is full)",
	                    s->error, where);
	free(s->error);
	s->error = e;
}

static void step_exited(struct run *r, size_t i)
{
	struct srun *s = &r->s[i];
	s->exit_code = exec_reap(&s->proc);
	r->running--;
	steplog_pump(&s->log);
	if (metrics_tail_poll(&s->metrics, r->f->db, 1) < 0)
		steplog_note(&s->log, "some metric lines could not be recorded (see the "
		             "daemon's log)");
	if (s->metrics.bad) {
		steplog_note(&s->log, "%ld malformed metric line(s) ignored (first: %s)",
		             s->metrics.bad, s->metrics.first_bad);
		s->metrics.bad = 0;
	}
	int timed_out = s->term_sent > 0;
	free(s->error);
	s->error = NULL;
	int rc = 0;
	if (timed_out) {
		s->error = xasprintf("timed out after %gs", s->def->timeout);
		rc = -ETIMEDOUT;
	} else if (s->exit_code != 0) {
		s->error = xasprintf("step exited with status %d", s->exit_code);
		note_full_disk(r, s);
		rc = -EIO;
	} else {
		rc = ingest_outputs(r, i);
	}
	if (rc == -ENOSPC || (rc && strstr(s->error, "no space left")))
		scratch_remove(s->scratch); /* room to record the failure */
	if (!rc) {
		step_finish(r, i, S_DONE, "succeeded");
		return;
	}
	if (rc != -ECANCELED && s->attempts <= s->def->retries) {
		steplog_note(&s->log, "%s; retrying", s->error);
		free(s->error);
		s->error = NULL;
		if (start_step(r, i) == 0)
			return;
	}
	step_finish(r, i, S_FAILED, "failed");
}

/* ---- the run loop ----------------------------------------------------- */

/* Steps settled without running (cached, skipped) are recorded in one
 * transaction per pass; it is closed before anything slow (hashing host
 * files, starting a process) so readers of the views never wait on it. */
static void batch_begin(struct run *r)
{
	if (r->batch)
		return;
	db_lock(r->f->db);
	int rc = db_begin(r->f->db);
	r->batch = 1;
	if (rc < 0)
		record_failed(r, rc, "the steps' results");
}

static void batch_end(struct run *r)
{
	if (!r->batch)
		return;
	int rc = db_commit(r->f->db);
	db_unlock(r->f->db);
	r->batch = 0;
	if (rc < 0)
		record_failed(r, rc, "the results of cached and skipped steps");
}

static int has_file_input(const struct step_def *d)
{
	for (size_t k = 0; k < d->n_inputs; k++)
		if (d->inputs[k].kind == STEP_IN_FILE)
			return 1;
	return 0;
}

/* Decide what step i does next, when it is pending. */
static void consider(struct run *r, size_t i, int may_start)
{
	struct srun *s = &r->s[i];
	for (size_t d = 0; d < r->ndeps[i]; d++) {
		enum state ds = r->s[r->deps[i][d]].state;
		if (ds == S_FAILED || ds == S_SKIPPED) {
			s->reason = xasprintf("upstream step %s %s", r->s[r->deps[i][d]].def->name,
			                      ds == S_FAILED ? "failed" : "was skipped");
			batch_begin(r);
			step_finish(r, i, S_SKIPPED, "skipped");
			return;
		}
		if (ds != S_DONE)
			return;
	}
	if (!may_start)
		return;
	if (!s->key) {
		char *err = NULL;
		if (has_file_input(s->def))
			batch_end(r);
		if (resolve_inputs(r, i, &err) < 0) {
			s->error = err;
			if (open_log(r, s) < 0)
				log_error("run %lld step %s: cannot open its log", (long long)r->id,
				          s->def->name);
			step_finish(r, i, S_FAILED, "failed");
			return;
		}
		compute_key(r, i);
		if (!s->forced && cache_lookup(r, i)) {
			s->cached = 1;
			s->reason = xstrdup("cached");
			s->started = util_now();
			batch_begin(r);
			step_finish(r, i, S_DONE, "cached");
			return;
		}
		s->reason = explain_miss(r, i);
	}
	batch_end(r);
	if (start_step(r, i) < 0)
		step_finish(r, i, S_FAILED, "failed");
}

static int take_flag(struct sched *sc, int *flag)
{
	pthread_mutex_lock(&sc->lock);
	int v = *flag;
	pthread_mutex_unlock(&sc->lock);
	return v;
}

static void drain_wake(int fd)
{
	uint64_t v;
	if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN)
		log_debug("wake read: %s", strerror(errno));
}

/* Kill what runs and record the ending (status for steps cut short). */
static void stop_running(struct run *r, const char *why)
{
	for (size_t i = 0; i < r->p->n_steps; i++)
		if (r->s[i].state == S_RUNNING)
			exec_signal(&r->s[i].proc, SIGTERM);
	double until = util_now() + KILL_GRACE;
	for (size_t i = 0; i < r->p->n_steps; i++) {
		struct srun *s = &r->s[i];
		if (s->state != S_RUNNING)
			continue;
		double left = until - util_now();
		struct pollfd pf = {.fd = s->proc.pidfd, .events = POLLIN};
		if (left <= 0 || poll(&pf, 1, (int)(left * 1000)) <= 0)
			exec_signal(&s->proc, SIGKILL);
		s->exit_code = exec_reap(&s->proc);
		r->running--;
		s->error = xstrdup(why);
		step_finish(r, i, S_FAILED, "failed");
	}
	for (size_t i = 0; i < r->p->n_steps; i++)
		if (r->s[i].state == S_PENDING) {
			r->s[i].reason = xstrdup(why);
			step_finish(r, i, S_SKIPPED, "skipped");
		}
}

static void set_paused(struct run *r, int paused)
{
	for (size_t i = 0; i < r->p->n_steps; i++)
		if (r->s[i].state == S_RUNNING)
			exec_signal(&r->s[i].proc, paused ? SIGSTOP : SIGCONT);
}

static void execute(struct run *r)
{
	struct flowy *f = r->f;
	struct sched *sc = f->sched;
	size_t n = r->p->n_steps;
	/* The wake-up fd, then per running step its pidfd and its log pipe. */
	struct pollfd *pfd = xcalloc(2 * n + 1, sizeof *pfd);
	size_t *who = xcalloc(2 * n + 1, sizeof *who);
	const char *end = NULL;
	int was_paused = 0;
	for (;;) {
		if (take_flag(sc, &sc->stop)) {
			end = "interrupted";
			stop_running(r, "interrupted: flowyfs stopped");
			break;
		}
		if (take_flag(sc, &sc->cancel)) {
			end = "cancelled";
			stop_running(r, "cancelled");
			break;
		}
		int paused = take_flag(sc, &sc->paused);
		if (paused != was_paused)
			set_paused(r, paused);
		was_paused = paused;

		size_t open = 0;
		for (size_t k = 0; k < n; k++) {
			size_t i = r->p->order[k];
			if (r->s[i].state == S_PENDING)
				consider(r, i, !paused && r->running < (size_t)f->jobs);
			if (r->s[i].state == S_PENDING || r->s[i].state == S_RUNNING)
				open++;
		}
		batch_end(r);
		if (!open)
			break;

		/* Sleep until an exit, a wake-up or the nearest timeout. */
		size_t np = 0;
		double now = util_now(), next = -1;
		pfd[np].fd = sc->wake_fd;
		pfd[np++].events = POLLIN;
		for (size_t i = 0; i < n; i++) {
			struct srun *s = &r->s[i];
			if (s->state != S_RUNNING)
				continue;
			who[np] = i;
			pfd[np].fd = s->proc.pidfd;
			pfd[np++].events = POLLIN;
			if (s->log.rd >= 0) {
				who[np] = i;
				pfd[np].fd = s->log.rd;
				pfd[np++].events = POLLIN;
			}
			if (s->def->timeout > 0 && !paused) {
				double due = s->term_sent ? s->term_sent + KILL_GRACE
				                          : s->started + s->def->timeout;
				if (due <= now) {
					exec_signal(&s->proc, s->term_sent ? SIGKILL : SIGTERM);
					if (!s->term_sent)
						s->term_sent = now;
					due = now + KILL_GRACE;
				}
				if (next < 0 || due - now < next)
					next = due - now;
			}
		}
		if (np > 1 && (next < 0 || next > METRICS_TICK))
			next = METRICS_TICK;
		int ms = next < 0 ? -1 : (int)(next * 1000) + 1;
		if (poll(pfd, np, ms) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			drain_wake(sc->wake_fd);
		for (size_t p = 1; p < np; p++) {
			struct srun *s = &r->s[who[p]];
			if (pfd[p].fd == s->log.rd) {
				if (pfd[p].revents && steplog_pump(&s->log) != 0) {
					/* End of file or an error: stop polling the pipe. */
					close(s->log.rd);
					s->log.rd = -1;
				}
			} else if (metrics_tail_poll(&s->metrics, f->db, 0) < 0) {
				log_error("run %lld step %s: cannot record metrics", (long long)r->id,
				          s->def->name);
			}
		}
		for (size_t p = 1; p < np; p++)
			if (pfd[p].revents && pfd[p].fd == r->s[who[p]].proc.pidfd &&
			    r->s[who[p]].state == S_RUNNING)
				step_exited(r, who[p]);
	}
	free(who);
	free(pfd);
	if (!end) {
		end = "succeeded";
		for (size_t i = 0; i < n; i++)
			if (r->s[i].state != S_DONE)
				end = "failed";
	}
	char *error = NULL;
	/* A failed run names the first step (in run order) that failed, and why. */
	for (size_t k = 0; !error && !strcmp(end, "failed") && k < n; k++) {
		const struct srun *s = &r->s[r->p->order[k]];
		if (s->state == S_FAILED)
			error = xasprintf("%s: %s", s->def->name, s->error ? s->error : "failed");
	}
	if (r->db_error) {
		free(error);
		end = "failed";
		error = xasprintf("cannot record the results: %s", r->db_error == -ENOSPC ?
		                  "no space left on device" : strerror(-r->db_error));
	}
	scratch_remove(r->scratch); /* first: it may be what fills the disk */
	int rc = db_exec(f->db, "UPDATE runs SET status=?, finished=?, "
	                 "error=coalesce(?, error) WHERE id=?", "tdti", end, util_now(),
	                 error, r->id);
	if (rc < 0)
		log_error("run %lld: cannot record its end (%s): %s; a restart marks it "
		          "interrupted", (long long)r->id, end, strerror(-rc));
	free(error);
	log_debug("run %lld: %s", (long long)r->id, end);
}

static void *sched_main(void *arg)
{
	struct flowy *f = arg;
	struct sched *sc = f->sched;
	/* Steps, snapshots and history.git get the usual umask, not the
	 * daemon's 0. */
	int urc = util_private_umask(022);
	if (urc < 0)
		log_error("scheduler: no umask of its own: %s", strerror(-urc));
	for (;;) {
		char **due = NULL;
		size_t ndue = 0;
		double next = catalog_due(f, &due, &ndue);
		for (size_t i = 0; i < ndue; i++) {
			char *why = NULL;
			if (sched_enqueue(f, due[i], "change", NULL, NULL, &why) < 0)
				log_error("%s: the change queues no run: %s", due[i], why);
			free(why);
			free(due[i]);
		}
		free(due);

		pthread_mutex_lock(&sc->lock);
		if (sc->stop) {
			pthread_mutex_unlock(&sc->lock);
			break;
		}
		struct job *j = sc->head;
		if (j) {
			sc->head = j->next;
			sc->cur_pipeline = xstrdup(j->pipeline);
			sc->cancel = sc->paused = 0;
			__atomic_store_n(&sc->abort_io, 0, __ATOMIC_RELAXED);
		}
		pthread_mutex_unlock(&sc->lock);

		if (!j) {
			struct pollfd pf = {.fd = sc->wake_fd, .events = POLLIN};
			if (poll(&pf, 1, next < 0 ? 1000 : (int)(next * 1000) + 1) > 0 &&
			    pf.revents)
				drain_wake(sc->wake_fd);
			continue;
		}
		struct run *r = run_setup(f, j);
		if (r)
			execute(r);
		run_free(r);
		job_free(j);
		pthread_mutex_lock(&sc->lock);
		free(sc->cur_pipeline);
		sc->cur_pipeline = NULL;
		pthread_mutex_unlock(&sc->lock);
	}
	/* Whatever is still queued will not run in this daemon. */
	pthread_mutex_lock(&sc->lock);
	for (struct job *j = sc->head, *next; j; j = next) {
		next = j->next;
		if (db_exec(f->db, "UPDATE runs SET status='interrupted', finished=? "
		            "WHERE id=?", "di", util_now(), j->run_id) < 0)
			log_error("run %lld: cannot mark it interrupted; a restart will",
			          (long long)j->run_id);
		job_free(j);
	}
	sc->head = NULL;
	pthread_mutex_unlock(&sc->lock);
	return NULL;
}

/* Is pid still the step (run, step) a dead daemon started? Its
 * environment says, so a reused pid is never mistaken for it. */
static int is_our_step(int pid, int64_t run, const char *step)
{
	char *path = xasprintf("/proc/%d/environ", pid), *env = NULL;
	size_t len = 0;
	int rc = util_read_file(path, &env, &len);
	free(path);
	if (rc < 0)
		return 0;
	char *want_run = xasprintf("FLOWY_RUN=%lld", (long long)run);
	char *want_step = xasprintf("FLOWY_STEP=%s", step);
	int run_ok = 0, step_ok = 0;
	for (size_t i = 0; i < len; i += strlen(env + i) + 1) {
		run_ok |= !strcmp(env + i, want_run);
		step_ok |= !strcmp(env + i, want_step);
	}
	free(want_step);
	free(want_run);
	free(env);
	return run_ok && step_ok;
}

void sched_stop_stray(int64_t run, const char *step, int pid, void *arg)
{
	if (pid > 0 && is_our_step(pid, run, step)) {
		log_info("stopping step %s of run %lld left running by a daemon that "
		         "died (pid %d)", step, (long long)run, pid);
		kill(-pid, SIGKILL);
	}
}

int sched_start(struct flowy *f)
{
	struct sched *sc = xcalloc(1, sizeof *sc);
	pthread_mutex_init(&sc->lock, NULL);
	sc->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sc->wake_fd < 0) {
		int rc = -errno;
		free(sc);
		return rc;
	}
	/* The directory holding this store's scratch (and other stores'). */
	sc->scratch_cover = xstrdup(f->scratch_dir);
	*strrchr(sc->scratch_cover, '/') = '\0';
	f->sched = sc;
	int rc = -pthread_create(&sc->thread, NULL, sched_main, f);
	if (rc) {
		close(sc->wake_fd);
		free(sc->scratch_cover);
		free(sc);
		f->sched = NULL;
	}
	return rc;
}

void sched_stop(struct flowy *f)
{
	struct sched *sc = f->sched;
	if (!sc)
		return;
	pthread_mutex_lock(&sc->lock);
	sc->stop = 1;
	__atomic_store_n(&sc->abort_io, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&sc->lock);
	sched_wake(f);
	pthread_join(sc->thread, NULL);
	close(sc->wake_fd);
	free(sc->cur_pipeline);
	free(sc->scratch_cover);
	for (struct snap *sn = sc->snaps, *next; sn; sn = next) {
		next = sn->next;
		codes_free(sn->code, sn->ncode);
		free(sn->pipeline);
		free(sn);
	}
	pthread_mutex_destroy(&sc->lock);
	free(sc);
	f->sched = NULL;
}
