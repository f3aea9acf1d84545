/*
 * run.c - the run state machine (run.h).
 *
 * Each step of a run is pending, running, done, failed or skipped. A
 * pending step whose dependencies are done has its inputs resolved to
 * content hashes and its cache key computed; a hit (or, in a retry, a
 * step that succeeded in the retried run) settles it at once, a miss
 * waits for a slot and starts its process through the step's executor:
 * first its `when` test when it has one (exit 0 runs the step, 1 skips
 * it, anything else fails it), then the step. An exit with every declared
 * output is ingested and recorded; a failure is retried (after `backoff`
 * seconds, doubling) while retries are left, else it skips what depends
 * on it. Steps settled without running are recorded in one transaction
 * per pass, closed before anything slow.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <math.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "flowyfs/cachekey.h"
#include "flowyfs/dag.h"
#include "flowyfs/events.h"
#include "flowyfs/executor.h"
#include "flowyfs/foreach.h"
#include "flowyfs/stepio.h"
#include "flowyfs/log.h"
#include "flowyfs/recheck.h"
#include "flowyfs/record.h"
#include "flowyfs/run.h"
#include "flowyfs/syncer.h"
#include "flowyfs/util.h"
#include "flowyfs/vcs.h"
#include "flowyfs/workspace.h"

#define KILL_GRACE 2.0

/* ---- capture ---------------------------------------------------------- */

static int inside(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return !strncmp(path, dir, n) && (path[n] == '/' || !path[n]);
}

/* The workdir's git state as TSV (malloc'd, or NULL without a workdir);
 * sets r->workdir_code. */
static int workdir_state(struct run *r, char **git, char **msg)
{
	const char *wd = r->p->workdir;
	char *err = NULL;
	*git = NULL;
	if (!wd)
		return 0;
	if (inside(wd, r->f->mnt) || inside(wd, r->f->store)) {
		*msg = xasprintf("workdir %s: must be outside the mount and the store", wd);
		return -EINVAL;
	}
	struct vcs_workdir w;
	if (vcs_workdir_state(&w, wd, &err) == 0) {
		*git = xasprintf("workdir\t%s\ncommit\t%s\nbranch\t%s\ndirty\t%s\n%s%s%s",
		                 wd, w.commit, w.branch, w.dirty ? "yes" : "no",
		                 w.dirty ? "dirty_hash\t" : "", w.dirty ? w.dirty_hash : "",
		                 w.dirty ? "\n" : "");
		r->workdir_code = xasprintf("%s%s%s", w.commit, w.dirty ? "+" : "",
		                            w.dirty ? w.dirty_hash : "");
	} else {
		*git = xasprintf("workdir\t%s\nerror\t%s\n", wd, err);
		r->workdir_code = xstrdup("not a git repository");
	}
	free(err);
	vcs_workdir_free(&w);
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

/* Every override must name a param of the context. */
static int check_overrides(struct run *r, const cJSON *ov, char **msg)
{
	for (const cJSON *o = ov ? ov->child : NULL; o; o = o->next) {
		if (cJSON_GetObjectItemCaseSensitive(r->p->params, o->string))
			continue;
		struct strbuf sb = {0};
		for (const cJSON *p = r->p->params->child; p; p = p->next)
			strbuf_printf(&sb, "%s%s", sb.len ? ", " : "", p->string);
		*msg = xasprintf("%s is not a param of this pipeline (pipeline.json params: "
		                 "%s)", o->string, sb.len ? sb.buf : "none");
		strbuf_release(&sb);
		return -EINVAL;
	}
	return 0;
}

/* A retry: what run `of` was, to take its snapshot and params and reuse
 * what succeeded in it. */
static int retry_source(struct run *r, int64_t of, cJSON **params, char **msg,
                        int *refused, const int *stop)
{
	db *d = r->f->db;
	db_lock(d);
	sqlite3_stmt *st = db_prepare(d, "SELECT pipeline, status, params, snapshot_run, "
	                              "commit_id FROM runs WHERE id=?", "i", of);
	int rc = -ESRCH;
	char *pipeline = NULL, *status = NULL, *ptext = NULL, *commit = NULL;
	int64_t snap_run = 0;
	if (st && sqlite3_step(st) == SQLITE_ROW) {
		rc = 0;
		pipeline = xstrdup((const char *)sqlite3_column_text(st, 0));
		status = xstrdup((const char *)sqlite3_column_text(st, 1));
		const char *pt = (const char *)sqlite3_column_text(st, 2);
		ptext = pt ? xstrdup(pt) : NULL;
		snap_run = sqlite3_column_int64(st, 3);
		const char *c = (const char *)sqlite3_column_text(st, 4);
		commit = c ? xstrdup(c) : NULL;
	}
	db_finish(d, st);
	db_unlock(d);
	if (rc < 0 || strcmp(pipeline, r->pipeline)) {
		*msg = xasprintf("retry: no run %lld of this pipeline", (long long)of);
		rc = -ESRCH;
	} else if (!strcmp(status, "queued") || !strcmp(status, "running") ||
	           !strcmp(status, "paused")) {
		*msg = xasprintf("retry: run %lld is still %s", (long long)of, status);
		rc = -EINVAL;
	} else if (!strcmp(status, "succeeded")) {
		*msg = xasprintf("retry: run %lld succeeded: nothing to retry", (long long)of);
		rc = -EINVAL;
	} else if (!snap_run) {
		*msg = xasprintf("retry: run %lld never started (it has no snapshot)",
		                 (long long)of);
		rc = -EINVAL;
	} else {
		rc = snapshot_of_run(r->f, snap_run, commit, stop, &r->snap);
		if (rc < 0)
			*msg = xasprintf("retry: cannot read the snapshot of run %lld: %s",
			                 (long long)of, strerror(-rc));
		else if (!(*params = cJSON_Parse(ptext ? ptext : "{}")))
			*params = cJSON_CreateObject();
	}
	if (rc < 0 && !r->snap.dir)
		*refused = rc; /* the request was wrong, not the store */
	free(pipeline);
	free(status);
	free(ptext);
	free(commit);
	return rc;
}

/* In a retry, the steps that succeeded (or were cached) in run `of`. */
static void mark_reused(struct run *r, int64_t of)
{
	db *d = r->f->db;
	db_lock(d);
	sqlite3_stmt *st = db_prepare(d, "SELECT name FROM steps WHERE run_id=? AND "
	                              "status IN ('succeeded','cached')", "i", of);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		for (size_t i = 0; i < r->p->n_steps; i++)
			if (!strcmp(r->p->steps[i].name, name))
				r->s[i].reuse_run = of;
	}
	db_finish(d, st);
	db_unlock(d);
}

/* Where step d runs: its own "executor", else the pipeline's, else the
 * daemon's --executor. */
static const struct executor *pick_executor(const struct run *r, const struct step_def *d)
{
	const char *name = d->executor ? d->executor : r->p->executor ? r->p->executor
	                                                              : r->f->executor;
	return name && !strcmp(name, "slurm") ? &exec_slurm : &exec_local;
}

/* ---- what a pass looks at ---------------------------------------------- */

/* List step i (pending) for the next passes, in order position. */
static void cand_add(struct run *r, size_t i)
{
	if (r->s[i].in_cand)
		return;
	r->s[i].in_cand = 1;
	size_t k = r->pos[i], lo = 0, hi = r->ncand;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r->cand[mid] < k)
			lo = mid + 1;
		else
			hi = mid;
	}
	r->cand = xrealloc(r->cand, (r->ncand + 1) * sizeof *r->cand);
	memmove(r->cand + lo + 1, r->cand + lo, (r->ncand - lo) * sizeof *r->cand);
	r->cand[lo] = k;
	r->ncand++;
}

/* Unit i's process started: poll it. */
static void live_add(struct run *r, size_t i)
{
	if (r->s[i].in_live)
		return;
	r->s[i].in_live = 1;
	if (r->nlive == r->live_cap) {
		r->live_cap = r->live_cap ? 2 * r->live_cap : 8;
		r->live = xrealloc(r->live, r->live_cap * sizeof *r->live);
	}
	r->live[r->nlive++] = i;
}

/* Drop the units whose process no longer runs from r->live. */
static void live_compact(struct run *r)
{
	size_t j = 0;
	for (size_t k = 0; k < r->nlive; k++) {
		struct srun *s = &r->s[r->live[k]];
		if (s->state == S_RUNNING && !s->expanded)
			r->live[j++] = r->live[k];
		else
			s->in_live = 0;
	}
	r->nlive = j;
}

/* Positions, dependents and dependency counts of the steps; the steps
 * without dependencies are the first candidates. */
static void index_steps(struct run *r)
{
	size_t n = r->p->n_steps;
	r->pos = xcalloc(n + 1, sizeof *r->pos);
	r->left = xcalloc(n + 1, sizeof *r->left);
	r->nrdeps = xcalloc(n + 1, sizeof *r->nrdeps);
	r->rdeps = xcalloc(n + 1, sizeof *r->rdeps);
	for (size_t k = 0; k < n; k++)
		r->pos[r->p->order[k]] = k;
	for (size_t i = 0; i < n; i++) {
		r->left[i] = r->ndeps[i];
		for (size_t d = 0; d < r->ndeps[i]; d++)
			r->nrdeps[r->deps[i][d]]++;
	}
	for (size_t i = 0; i < n; i++) {
		r->rdeps[i] = xcalloc(r->nrdeps[i] + 1, sizeof **r->rdeps);
		r->nrdeps[i] = 0;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t d = 0; d < r->ndeps[i]; d++) {
			size_t u = r->deps[i][d];
			r->rdeps[u][r->nrdeps[u]++] = i;
		}
	for (size_t k = 0; k < n; k++)
		if (!r->left[r->p->order[k]])
			cand_add(r, r->p->order[k]);
}

/* Step i settled: its dependents may go next (at once when it failed or
 * was skipped, so the skip reaches them in this pass). */
static void settled(struct run *r, size_t i)
{
	if (i >= r->p->n_steps || !r->rdeps)
		return;
	int bad = r->s[i].state != S_DONE;
	for (size_t k = 0; k < r->nrdeps[i]; k++) {
		size_t j = r->rdeps[i][k];
		if ((--r->left[j] == 0 || bad) && r->s[j].state == S_PENDING)
			cand_add(r, j);
	}
}

struct run *run_capture(struct flowy *f, int64_t id, const struct run_request *req,
                        const int *stop, char **why, int *refused)
{
	struct run *r = xcalloc(1, sizeof *r);
	cJSON *retry_params = NULL;
	char *msg = NULL, *git = NULL;
	int rc;
	*refused = 0;
	r->f = f;
	r->id = id;
	r->pipeline = xstrdup(req->pipeline);
	r->rundir = xasprintf("%s/%lld", f->runs_dir, (long long)id);
	r->scratch = xasprintf("%s/%lld", f->scratch_dir, (long long)id);
	scratchpool_init(&r->pool, r->scratch);
	if (req->retry_of) {
		rc = retry_source(r, req->retry_of, &retry_params, &msg, refused, stop);
		if (rc < 0)
			goto fail;
		rc = util_mkdir_p(r->rundir, 0755);
	} else {
		rc = snapshot_take(f->snapshots, f, r->pipeline, id, stop, &r->snap);
	}
	if (rc < 0) {
		msg = rc == -ECANCELED
			? xasprintf("stopped while copying and hashing pipeline %s", r->pipeline)
			: xasprintf("cannot snapshot pipeline %s: %s", r->pipeline, rc == -ENOSPC ?
			            "no space left on device" : strerror(-rc));
		goto fail;
	}
	struct step_checks checks = {
		.overrides = retry_params ? retry_params : req->overrides,
	};
	char *def_key = req->overrides ? cJSON_PrintUnformatted(req->overrides) : xstrdup("");
	if (!def_key)
		util_oom();
	if (!req->retry_of)
		r->p = snapshot_def_get(f->snapshots, r->pipeline, r->snap.run, def_key);
	rc = r->p ? 0 : step_load_checked(&r->p, r->pipeline, r->snap.dir, &checks);
	if (rc >= 0 && !r->p->n_errors && !req->retry_of)
		snapshot_def_keep(f->snapshots, r->pipeline, r->snap.run, def_key, r->p);
	free(def_key);
	if (rc < 0 || r->p->n_errors) {
		msg = rc < 0 ? xasprintf("cannot read pipeline: %s", strerror(-rc))
		             : xasprintf("pipeline is invalid: %s", r->p->errors[0]);
		*refused = rc >= 0 ? -EINVAL : 0;
		goto fail;
	}
	if ((rc = check_overrides(r, req->overrides, &msg)) < 0) {
		*refused = rc;
		goto fail;
	}
	dag_deps(&r->deps, &r->ndeps, r->p);
	r->s = xcalloc(r->p->n_steps, sizeof *r->s);
	unsigned char *mark = xcalloc(r->p->n_steps + 1, 1);
	if (req->force_step) {
		int i = -1;
		for (size_t k = 0; k < r->p->n_steps; k++)
			if (!strcmp(r->p->steps[k].name, req->force_step))
				i = (int)k;
		if (i < 0) {
			free(mark);
			msg = xasprintf("rerun: no step named %s", req->force_step);
			*refused = -EINVAL;
			rc = -EINVAL;
			goto fail;
		}
		dag_downstream(r->p, (size_t)i, mark);
	}
	r->nunits = r->p->n_steps;
	for (size_t i = 0; i < r->p->n_steps; i++) {
		struct srun *s = &r->s[i];
		s->def = &r->p->steps[i];
		s->parent = -1;
		s->forced = mark[i];
		s->exec = pick_executor(r, s->def);
		steplog_init(&s->log);
		s->in_hex = xcalloc(s->def->n_inputs + 1, sizeof *s->in_hex);
		s->out_hex = xcalloc(s->def->n_outputs + 1, sizeof *s->out_hex);
	}
	free(mark);
	index_steps(r);
	if (req->retry_of)
		mark_reused(r, req->retry_of);
	if ((rc = workdir_state(r, &git, &msg)) < 0 || (rc = run_owner(r, &msg)) < 0)
		goto fail;
	r->same_as = recheck_candidate(r, req, git);
	if ((rc = record_capture(r, git)) < 0) {
		msg = xasprintf("cannot record the run: %s", strerror(-rc));
		goto fail;
	}
	free(git);
	cJSON_Delete(retry_params);
	events_emit(f, &(struct event){.kind = EV_RUN_QUEUED, .pipeline = r->pipeline,
	                               .run = r->id, .status = "queued", .def = r->p});
	return r;
fail:
	cJSON_Delete(retry_params);
	free(git);
	*why = msg ? msg : xasprintf("cannot queue the run: %s", strerror(-rc));
	run_free(r);
	return NULL;
}

void run_free(struct run *r)
{
	if (!r)
		return;
	for (size_t i = 0; r->s && i < r->nunits; i++) {
		struct srun *s = &r->s[i];
		if (!s->def)
			continue; /* capture failed before the steps were laid out */
		for (size_t k = 0; k < s->def->n_inputs; k++)
			free(s->in_hex[k]);
		free(s->in_hex);
		free(s->out_hex);
		free(s->scratch);
		free(s->key);
		free(s->key_parts);
		free(s->reason);
		free(s->error);
		free(s->exec_why);
		free(s->item);
		free(s->item_env);
		cJSON_Delete(s->params);
		metrics_tail_free(&s->metrics);
		steplog_close(&s->log);
	}
	free(r->s);
	workspace_env_base_free(r);
	for (size_t i = 0; r->rdeps && i < r->p->n_steps; i++)
		free(r->rdeps[i]);
	free(r->rdeps);
	free(r->nrdeps);
	free(r->left);
	free(r->pos);
	free(r->cand);
	free(r->live);
	free(r->recycle);
	free(r->pend);
	if (r->nsub)
		syncer_check(r->f->syncer, &r->sync, 1);
	int src = cas_syncs_flush(&r->syncs);
	if (src < 0)
		log_error("run %lld: cannot make its last outputs durable: %s", (long long)r->id,
		          strerror(-src));
	if (r->deps)
		dag_deps_free(r->deps, r->ndeps, r->p->n_steps);
	snapshot_release(&r->snap);
	free(r->workdir_code);
	free(r->groups);
	step_free(r->p);
	scratchpool_free(&r->pool);
	free(r->scratch);
	free(r->shared_scratch);
	free(r->rundir);
	free(r->pipeline);
	free(r);
}

/* ---- recording a step's end ------------------------------------------- */

/* A failure to record: free what disk the run's scratch holds (a full
 * disk is the usual cause, and the scratch often shares it) and remember
 * the first error so the run ends failed with it. */
static void record_failed(struct run *r, int rc, const char *what)
{
	log_error("run %lld: cannot record %s: %s", (long long)r->id, what,
	          strerror(-rc));
	for (size_t i = 0; i < r->nunits; i++)
		if (r->s[i].state != S_RUNNING && r->s[i].scratch)
			workspace_remove(r->s[i].scratch);
	if (!r->db_error)
		r->db_error = rc;
}

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

/* The run leaves `queued` with its first settled or started step. */
static void mark_started(struct run *r)
{
	if (r->started)
		return;
	r->started = 1;
	int rc = record_started(r);
	if (rc < 0)
		record_failed(r, rc, "its start");
	events_emit(r->f, &(struct event){.kind = EV_RUN_STARTED, .pipeline = r->pipeline,
	                                  .run = r->id, .status = "running"});
}

static void parent_check(struct run *r, size_t i);

/* Step i's end into its row, and its events. */
static void step_record_end(struct run *r, size_t i, const char *status)
{
	struct srun *s = &r->s[i];
	char *changed = xcalloc(s->def->n_outputs + 1, 1);
	int rc = record_step_end(r, i, status, changed);
	if (rc < 0 && !r->batch) {
		/* Make room and try once more (outside a batch, which the failure
		 * has doomed anyway). */
		record_failed(r, rc, s->def->name);
		rc = record_step_end(r, i, status, changed);
	}
	if (rc < 0)
		record_failed(r, rc, s->def->name);
	if (s->parent >= 0) { /* a foreach task: its step may be complete */
		free(changed);
		parent_check(r, (size_t)s->parent);
		return;
	}
	enum event_kind k = !strcmp(status, "succeeded") ? EV_STEP_SUCCEEDED :
	                    !strcmp(status, "cached") ? EV_STEP_CACHED :
	                    !strcmp(status, "skipped") ? EV_STEP_SKIPPED : EV_STEP_FAILED;
	events_emit(r->f, &(struct event){.kind = k, .pipeline = r->pipeline, .run = r->id,
	                                  .step = s->def->name, .status = status,
	                                  .error = s->error});
	for (size_t o = 0; rc == 0 && o < s->def->n_outputs; o++)
		if (changed[o])
			events_emit(r->f, &(struct event){
				.kind = EV_ARTIFACT_PUBLISHED, .pipeline = r->pipeline, .run = r->id,
				.step = s->def->name, .name = s->def->outputs[o],
				.hash = s->out_hex[o]});
	free(changed);
	/* Scratch stays until the run ends: deleting it here makes the file
	 * system search harder for free inodes on the very next creates. */
}

/* Step i (started) into its row, and its event. */
static void step_record_running(struct run *r, size_t i)
{
	struct srun *s = &r->s[i];
	int rc = record_step_running(r, i);
	if (rc < 0)
		record_failed(r, rc, s->def->name);
	if (s->parent < 0)
		events_emit(r->f, &(struct event){.kind = EV_STEP_STARTED,
		                                  .pipeline = r->pipeline, .run = r->id,
		                                  .step = s->def->name, .status = "running"});
}

/* Recording off the critical path: a step that started, and a step whose
 * process ended well, are recorded once the scheduler's pass has started
 * whatever can run next, in one transaction, and only after the outputs
 * they name are durable: the syncer thread syncs them meanwhile, and its
 * wake-up brings the scheduler back to write the rows. So the next
 * process waits for neither the disk nor the database. Every other record
 * writes what is pending first (waiting for the syncer if need be): rows
 * and events keep the order in which things happened. */
static void pend_add(struct run *r, size_t i, const char *status)
{
	if (r->npend == r->pend_cap) {
		r->pend_cap = r->pend_cap ? 2 * r->pend_cap : 8;
		r->pend = xrealloc(r->pend, r->pend_cap * sizeof *r->pend);
	}
	r->pend[r->npend++] = (struct run_pend){i, status};
}

/* Write the first n pending records (one transaction) and drop them. */
static void record_pending(struct run *r, size_t n)
{
	int own = !r->batch;
	batch_begin(r);
	for (size_t k = 0; k < n; k++) {
		const struct run_pend *p = &r->pend[k];
		if (p->status)
			step_record_end(r, p->i, p->status);
		else
			step_record_running(r, p->i);
	}
	memmove(r->pend, r->pend + n, (r->npend - n) * sizeof *r->pend);
	r->npend -= n;
	if (own)
		batch_end(r);
}

/* Write what is pending whose outputs are durable. The outputs go to the
 * syncer thread (f->syncer) and their records wait for it, unless all is
 * set: then everything is written now, the outputs synced here. */
static void run_flush_some(struct run *r, int all)
{
	struct syncer *sy = r->f->syncer;
	if (r->nsub) { /* the first nsub wait for the syncer's job */
		if (syncer_check(sy, &r->sync, all) != SYNC_DONE)
			return;
		if (r->sync.rc < 0)
			record_failed(r, r->sync.rc, "the steps' outputs");
		r->sync.state = SYNC_IDLE;
		size_t n = r->nsub;
		r->nsub = 0;
		record_pending(r, n);
	}
	if (!r->npend)
		return;
	if (r->syncs.n && sy && !all) {
		r->nsub = r->npend;
		syncer_submit(sy, &r->sync, &r->syncs);
		return;
	}
	int rc = cas_syncs_flush(&r->syncs);
	if (rc < 0)
		record_failed(r, rc, "the steps' outputs");
	record_pending(r, r->npend);
}

static void run_flush(struct run *r)
{
	run_flush_some(r, 1);
}

/* Step i's scratch is done with: for a later step (reuse) or to stay
 * where a person can look at it (see executor.h). */
static void release(struct run *r, size_t i, int reuse)
{
	struct srun *s = &r->s[i];
	if (s->exec && s->exec->release)
		s->exec->release(r, i, reuse);
	else if (reuse)
		workspace_recycle(r, i);
}

/* Step i settled: its state, end time, what it lets go next. A
 * succeeded unit's scratch goes to the pool later (recycle_later); any
 * other's is released now. */
static void step_settle(struct run *r, size_t i, enum step_state st)
{
	struct srun *s = &r->s[i];
	if (st != S_DONE)
		release(r, i, 0);
	if (!r->end)
		mark_started(r);
	s->state = st;
	s->finished = util_now();
	settled(r, i);
	if (s->error)
		steplog_note(&s->log, "%s", s->error);
	/* Its metrics are all read and its log written (retries are over):
	 * their files go now, not with the run, or every later step's start
	 * would close them again in its child (close_range) and a long run
	 * would hold two per step. */
	metrics_tail_free(&s->metrics);
	steplog_close(&s->log);
}

static void step_finish(struct run *r, size_t i, enum step_state st, const char *status)
{
	run_flush(r);
	step_settle(r, i, st);
	step_record_end(r, i, status);
}

/* ---- starting and ending a process ------------------------------------ */

/* Start step i's process: its `when` test first when it has one and it
 * has not passed yet. */
static int start_process(struct run *r, size_t i, int prepare)
{
	struct srun *s = &r->s[i];
	char *why = NULL;
	int rc, params_fd = -1;
	if (prepare && (rc = s->exec->prepare(r, i, &why)) < 0) {
		s->error = why;
		return rc;
	}
	rc = workspace_open_log(r, s);
	if (!rc)
		rc = steplog_pipe(&s->log);
	if (!rc)
		rc = workspace_open_files(r, i, &params_fd);
	if (rc < 0) {
		s->error = rc == -ENOSPC
			? xstrdup("cannot write the step's files: no space left on device")
			: xasprintf("cannot write the step's files: %s", strerror(-rc));
		return rc;
	}
	if (!s->in_when) {
		s->attempts++;
		if (s->attempts > 1)
			steplog_note(&s->log, "attempt %d of %d", s->attempts, s->def->retries + 1);
	}
	const char *cwd = s->scratch;
	char **env = workspace_env(r, i, cwd);
	struct exec_spec spec = {
		.cmd = s->in_when ? s->def->when : s->def->run, .cwd = cwd,
		.envp = env, .out_fd = s->log.wr,
		.hide = {r->f->store, r->f->scratch_cover}, .nhide = 2,
		.keep = cwd,
		.ro_mount = r->f->mnt, .ro_flags = r->f->mnt_flags,
		.uid = r->uid, .gid = r->gid, .groups = r->groups, .ngroups = r->ngroups,
		.fds = {s->metrics.fd, params_fd}, .nfds = 2,
	};
	rc = s->exec->start(r, i, &spec, &why);
	close(params_fd);
	workspace_env_free(r, env);
	steplog_close_writer(&s->log);
	if (rc < 0) {
		s->error = why;
		return rc;
	}
	free(why);
	if (!s->started)
		s->started = util_now();
	s->state = S_RUNNING;
	live_add(r, i);
	s->term_sent = 0;
	r->running++;
	r->remote += s->exec->remote;
	if (s->in_when)
		return 0;
	mark_started(r);
	if (s->parent >= 0) { /* tasks: at once (their step's state is read back) */
		run_flush(r);
		step_record_running(r, i);
	} else {
		pend_add(r, i, NULL);
	}
	return 0;
}

/* Why a step that exited non-zero may have failed: a full disk. */
static uint64_t disk_free(const char *path)
{
	struct statvfs sv;
	if (statvfs(path, &sv) < 0)
		return UINT64_MAX;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

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

/* The `when` test of step i ended with code. */
static void when_exited(struct run *r, size_t i, int code)
{
	struct srun *s = &r->s[i];
	s->in_when = 0;
	if (s->term_sent) {
		s->error = xasprintf("when: timed out after %gs", s->def->timeout);
	} else if (code == 1) {
		s->skip_ok = 1;
		free(s->reason);
		s->reason = xstrdup("when: false");
		step_finish(r, i, S_SKIPPED, "skipped");
		return;
	} else if (code != 0) {
		s->error = xasprintf("when: exited with status %d", code);
	} else if (start_process(r, i, 0) == 0) {
		return;
	}
	step_finish(r, i, S_FAILED, "failed");
}

/* A finished unit's scratch goes back to the pool (and its slot, when it
 * has one, is free again) after run_advance has started what could
 * start: emptying it (a rename per file) and the slot's clean-up are then
 * not between one step's end and the next one's start. A run that ends
 * first (or has no step left to run) lets it stay where its unit would
 * keep it, and removes it with the rest: s->scratch is still set. */
static void recycle_later(struct run *r, size_t i)
{
	GROW(r->recycle, r->recycle_cap, r->nrecycle);
	r->recycle[r->nrecycle++] = i;
}

static void recycle_due(struct run *r)
{
	/* With no step left to take them, run_end removes them. */
	int reuse = !run_settled(r);
	if (reuse && r->nrecycle) /* steps store outputs: the next one's temp */
		cas_tmp_stock(r->f->cas);
	for (size_t k = 0; k < r->nrecycle; k++)
		release(r, r->recycle[k], reuse);
	r->nrecycle = 0;
}

static void step_exited(struct run *r, size_t i)
{
	struct srun *s = &r->s[i];
	int code = s->exec->reap(r, i);
	r->running--;
	r->remote -= s->exec->remote;
	s->state = S_PENDING; /* until decided below */
	steplog_pump(&s->log);
	if (metrics_tail_poll(&s->metrics, r->f->db, 1) < 0)
		steplog_note(&s->log, "some metric lines could not be recorded (see the "
		             "daemon's log)");
	if (s->metrics.bad) {
		steplog_note(&s->log, "%ld malformed metric line(s) ignored (first: %s)",
		             s->metrics.bad, s->metrics.first_bad);
		s->metrics.bad = 0;
	}
	if (s->in_when) {
		when_exited(r, i, code);
		return;
	}
	s->exit_code = code;
	free(s->error);
	s->error = NULL;
	int rc = 0;
	if (s->term_sent) {
		s->error = xasprintf("timed out after %gs", s->def->timeout);
		rc = -ETIMEDOUT;
	} else if (s->exit_code != 0 && s->exec_why) {
		s->error = s->exec_why; /* the executor knows better (Slurm's state) */
		s->exec_why = NULL;
		rc = -EIO;
	} else if (s->exit_code != 0) {
		s->error = xasprintf("step exited with status %d", s->exit_code);
		note_full_disk(r, s);
		rc = -EIO;
	} else {
		rc = stepio_outputs(r, i);
	}
	if (rc == -ENOSPC || (rc && strstr(s->error, "no space left")))
		workspace_remove(s->scratch); /* room to record the failure */
	if (!rc) {
		if (!s->exec->remote) /* its outputs are in the store now */
			recycle_later(r, i);
		if (s->parent >= 0) {
			step_finish(r, i, S_DONE, "succeeded");
		} else {
			step_settle(r, i, S_DONE);
			pend_add(r, i, "succeeded");
		}
		return;
	}
	if (rc != -ECANCELED && !r->end && s->attempts <= s->def->retries) {
		double wait = s->def->backoff * pow(2, s->attempts - 1);
		if (wait > 0)
			steplog_note(&s->log, "%s; retrying in %gs", s->error, wait);
		else
			steplog_note(&s->log, "%s; retrying", s->error);
		events_emit(r->f, &(struct event){.kind = EV_STEP_RETRY, .pipeline = r->pipeline,
		                                  .run = r->id, .step = s->def->name,
		                                  .status = "running", .error = s->error});
		free(s->error);
		s->error = NULL;
		s->retry_at = util_now() + wait;
		s->in_when = s->def->when != NULL;
		release(r, i, 0); /* prepare lays it out afresh */
		if (s->parent < 0)
			cand_add(r, i);
		return; /* pending again, with its key: run_advance restarts it */
	}
	step_finish(r, i, S_FAILED, "failed");
}

/* ---- deciding what goes next ------------------------------------------ */

static int has_file_input(const struct step_def *d)
{
	for (size_t k = 0; k < d->n_inputs; k++)
		if (d->inputs[k].kind == STEP_IN_FILE)
			return 1;
	return 0;
}

/* In a retry: take step i's outputs from the run it succeeded in. */
static int reuse_outputs(struct run *r, size_t i)
{
	struct srun *s = &r->s[i];
	size_t found = 0;
	db_lock(r->f->db);
	sqlite3_stmt *st = db_prepare(r->f->db, "SELECT name, hash FROM step_io WHERE "
	                              "run_id=? AND step=? AND dir='out'", "it",
	                              s->reuse_run, s->def->name);
	while (st && sqlite3_step(st) == SQLITE_ROW)
		for (size_t o = 0; o < s->def->n_outputs; o++)
			if (!strcmp(s->def->outputs[o], (const char *)sqlite3_column_text(st, 0))) {
				snprintf(s->out_hex[o], CAS_HEX_LEN + 1, "%s",
				         (const char *)sqlite3_column_text(st, 1));
				found++;
			}
	db_finish(r->f->db, st);
	db_unlock(r->f->db);
	return found == s->def->n_outputs;
}

/* The cache key of step (or task) s, over its own code files. */
static void step_key(struct run *r, struct srun *s)
{
	size_t *idx = NULL;
	size_t n = snapshot_step_code(r->snap.code, r->snap.ncode, r->snap.deflt,
	                              r->snap.ndeflt, s->def, &idx);
	cachekey_compute(s->def, s->params, r->snap.code, idx, n, r->workdir_code,
	                 s->in_hex, s->item, &s->key, &s->key_parts);
	free(idx);
}

/* Lay out the tasks of foreach step i, one per item, after the units
 * already there; the step is then running until its tasks settle. */
static void expand(struct run *r, size_t i)
{
	struct foreach_item *items = NULL;
	size_t n = 0;
	char *err = NULL;
	if (foreach_items(r, i, &items, &n, &err) < 0) {
		r->s[i].error = err;
		if (workspace_open_log(r, &r->s[i]) < 0)
			log_error("run %lld step %s: cannot open its log", (long long)r->id,
			          r->s[i].def->name);
		step_finish(r, i, S_FAILED, "failed");
		return;
	}
	r->s = xrealloc(r->s, (r->nunits + n) * sizeof *r->s);
	struct srun *s = &r->s[i];
	s->task0 = r->nunits;
	s->ntasks = n;
	for (size_t t = 0; t < n; t++) {
		struct srun *task = &r->s[r->nunits + t];
		memset(task, 0, sizeof *task);
		task->def = s->def;
		task->parent = (int)i;
		task->forced = s->forced;
		task->exec = s->exec;
		task->in_when = s->def->when != NULL;
		steplog_init(&task->log);
		task->item = items[t].name;
		task->item_env = items[t].env;
		items[t].name = items[t].env = NULL;
		task->in_hex = xcalloc(s->def->n_inputs + 1, sizeof *task->in_hex);
		for (size_t k = 0; k < s->def->n_inputs; k++)
			task->in_hex[k] = xstrdup((int)k == s->def->foreach_input ? items[t].hex
			                                                           : s->in_hex[k]);
		task->out_hex = xcalloc(s->def->n_outputs + 1, sizeof *task->out_hex);
		if (items[t].value) {
			task->params = cJSON_Duplicate(s->def->params, 1);
			if (!task->params ||
			    !cJSON_ReplaceItemInObjectCaseSensitive(task->params, s->def->foreach,
			                                            items[t].value))
				util_oom();
			items[t].value = NULL;
		}
	}
	r->nunits += n;
	foreach_items_free(items, n);
	s->expanded = 1;
	s->state = S_RUNNING;
	s->started = util_now();
	mark_started(r);
	int rc = record_step_running(r, i);
	if (rc < 0)
		record_failed(r, rc, s->def->name);
	events_emit(r->f, &(struct event){.kind = EV_STEP_STARTED, .pipeline = r->pipeline,
	                                  .run = r->id, .step = s->def->name,
	                                  .status = "running"});
	if (!n)
		parent_check(r, i);
}

/* The tasks of foreach step i all settled: the step succeeds when enough
 * of them did (min_success), with their outputs merged. */
static void parent_check(struct run *r, size_t i)
{
	struct srun *s = &r->s[i];
	size_t ok = 0, ran = 0;
	int code = 0; /* the step's exit code: the first failed task's */
	for (size_t t = 0; t < s->ntasks; t++) {
		const struct srun *task = &r->s[s->task0 + t];
		if (task->state == S_PENDING || task->state == S_RUNNING)
			return;
		ok += task->state == S_DONE;
		ran += task->state == S_DONE && !task->cached;
		if (!code && task->state == S_FAILED && task->attempts)
			code = task->exit_code;
	}
	s->attempts = 1;
	s->exit_code = code;
	size_t need = (size_t)ceil(s->def->min_success * (double)s->ntasks - 1e-9);
	char *err = NULL;
	if (workspace_open_log(r, s) < 0)
		log_error("run %lld step %s: cannot open its log", (long long)r->id,
		          s->def->name);
	if (r->end) {
		s->error = xstrdup(r->end);
	} else if (ok < need) {
		s->error = xasprintf("foreach: %zu of %zu items failed (min_success %g needs "
		                     "%zu)", s->ntasks - ok, s->ntasks, s->def->min_success,
		                     need);
	} else if (foreach_merge(r, i, &err) < 0) {
		s->error = err;
	} else {
		steplog_note(&s->log, "foreach: %zu of %zu items ran, %zu cached, %zu failed",
		             ran, s->ntasks, ok - ran, s->ntasks - ok);
		step_finish(r, i, S_DONE, "succeeded");
		return;
	}
	step_finish(r, i, S_FAILED, "failed");
}

/* Decide what pending foreach task t does next; may take a slot. */
static void consider_task(struct run *r, size_t t, int *slots)
{
	struct srun *s = &r->s[t];
	const struct srun *p = &r->s[s->parent];
	if (r->paused)
		return;
	if (!s->key) {
		step_key(r, s);
		/* The lookup and the record of a hit under one hold of the lock:
		 * a gc (gc.c) sees either the hit recorded or its source gone. */
		db_lock(r->f->db);
		if (!s->forced && cachekey_lookup_item(r->f->db, r->f->cas, s->def, s->key,
		                                       s->out_hex)) {
			s->cached = 1;
			s->reason = xstrdup("cached");
			s->started = util_now();
			step_finish(r, t, S_DONE, "cached");
			db_unlock(r->f->db);
			return;
		}
		db_unlock(r->f->db);
		s->reason = s->forced ? xstrdup("forced")
		                      : cachekey_explain(r->f->db, r->pipeline, s->def, s->item,
		                                         r->id, s->key_parts);
	}
	size_t running = 0;
	for (size_t k = 0; k < p->ntasks; k++)
		running += r->s[p->task0 + k].state == S_RUNNING;
	/* A remote executor takes no slot and applies concurrency itself (a
	 * job array's limit). */
	int slot = !s->exec->remote;
	if ((slot && *slots <= 0) || (s->retry_at && s->retry_at > util_now()) ||
	    (slot && p->def->concurrency > 0 && running >= (size_t)p->def->concurrency))
		return;
	*slots -= slot;
	if (start_process(r, t, 1) < 0) {
		*slots += slot;
		s->in_when = 0;
		step_finish(r, t, S_FAILED, "failed");
	}
}

/* Decide what pending step i does next; may take a slot. */
static void consider(struct run *r, size_t i, int *slots)
{
	struct srun *s = &r->s[i];
	for (size_t d = 0; d < r->ndeps[i]; d++) {
		const struct srun *u = &r->s[r->deps[i][d]];
		if (u->state == S_FAILED || u->state == S_SKIPPED) {
			s->skip_ok = u->skip_ok;
			s->reason = xasprintf("upstream step %s %s", u->def->name,
			                      u->state == S_FAILED ? "failed" :
			                      u->skip_ok ? "was skipped (when: false)" :
			                                   "was skipped");
			batch_begin(r);
			step_finish(r, i, S_SKIPPED, "skipped");
			return;
		}
		if (u->state != S_DONE)
			return;
	}
	if (r->paused)
		return;
	if (!s->key) {
		char *err = NULL;
		if (has_file_input(s->def))
			batch_end(r);
		if (stepio_inputs(r, i, &err) < 0) {
			s->error = err;
			if (workspace_open_log(r, s) < 0)
				log_error("run %lld step %s: cannot open its log", (long long)r->id,
				          s->def->name);
			step_finish(r, i, S_FAILED, "failed");
			return;
		}
		step_key(r, s);
		/* Look up and record a hit under one hold of the lock, so a gc
		 * (gc.c) sees either the hit recorded or its source gone. A hit
		 * joins the pass's batch (one transaction); a miss, the usual
		 * case of a cold run, is two reads and begins none. */
		db_lock(r->f->db);
		if (s->reuse_run && reuse_outputs(r, i)) {
			s->cached = 1;
			s->from_run = s->reuse_run;
			s->reason = xasprintf("succeeded in run %lld", (long long)s->reuse_run);
			s->started = util_now();
			batch_begin(r);
			step_finish(r, i, S_DONE, "cached");
			db_unlock(r->f->db);
			return;
		}
		if (!s->forced && cachekey_lookup(r->f->db, r->f->cas, s->def, s->key,
		                                  s->out_hex, &s->from_run)) {
			s->cached = 1;
			s->reason = xstrdup("cached");
			s->started = util_now();
			batch_begin(r);
			step_finish(r, i, S_DONE, "cached");
			db_unlock(r->f->db);
			return;
		}
		db_unlock(r->f->db);
		s->reason = s->forced ? xstrdup("forced")
		                      : cachekey_explain(r->f->db, r->pipeline, s->def, NULL, r->id,
		                                         s->key_parts);
		s->in_when = s->def->when != NULL;
		if (s->def->foreach_kind != STEP_FOREACH_NONE) {
			batch_end(r);
			expand(r, i);
			return;
		}
	}
	int slot = !s->exec->remote;
	if ((slot && *slots <= 0) || (s->retry_at && s->retry_at > util_now()))
		return;
	batch_end(r);
	*slots -= slot;
	if (start_process(r, i, 1) < 0) {
		*slots += slot;
		s->in_when = 0;
		step_finish(r, i, S_FAILED, "failed");
	}
}

void run_advance(struct run *r, int *slots)
{
	if (r->same_as && !r->started && !r->paused) {
		int rc = recheck_settle(r);
		if (rc < 0)
			record_failed(r, rc, "its steps");
		if (rc > 0)
			return;
	}
	/* cand may grow while it is walked (a skip reaches the dependents),
	 * always after the position being looked at. */
	for (size_t c = 0; c < r->ncand; c++) {
		size_t i = r->p->order[r->cand[c]];
		if (r->s[i].state == S_PENDING)
			consider(r, i, slots);
	}
	batch_end(r);
	size_t j = 0;
	for (size_t c = 0; c < r->ncand; c++) {
		struct srun *s = &r->s[r->p->order[r->cand[c]]];
		if (s->state == S_PENDING)
			r->cand[j++] = r->cand[c];
		else
			s->in_cand = 0;
	}
	r->ncand = j;
	/* Tasks in the order they were laid out: the oldest step's first. */
	for (size_t t = r->p->n_steps; t < r->nunits; t++)
		if (r->s[t].state == S_PENDING)
			consider_task(r, t, slots);
	recycle_due(r);
	run_flush_some(r, 0);
}

int run_settled(struct run *r)
{
	/* A settled unit stays settled: the cursor only moves forward. */
	while (r->settled0 < r->nunits && r->s[r->settled0].state != S_PENDING &&
	       r->s[r->settled0].state != S_RUNNING)
		r->settled0++;
	return r->settled0 == r->nunits;
}

/* ---- polling ----------------------------------------------------------- */

/* A pending unit waiting for its retry: lower *next to when it is due. */
static void retry_due(const struct run *r, const struct srun *s, double now, double *next)
{
	if (s->state == S_PENDING && s->retry_at > now && !r->paused) {
		double due = s->retry_at - now;
		if (*next < 0 || due < *next)
			*next = due;
	}
}

size_t run_pollfds(struct run *r, struct pollfd *pfd, struct run_pollref *ref,
                   double now, double *next)
{
	size_t np = 0;
	for (size_t c = 0; c < r->ncand; c++)
		retry_due(r, &r->s[r->p->order[r->cand[c]]], now, next);
	for (size_t t = r->p->n_steps; t < r->nunits; t++)
		retry_due(r, &r->s[t], now, next);
	live_compact(r);
	for (size_t k = 0; k < r->nlive; k++) {
		size_t i = r->live[k];
		struct srun *s = &r->s[i];
		ref[np] = (struct run_pollref){r, i, RUN_FD_EXIT};
		pfd[np].fd = s->exec->fd(r, i);
		pfd[np++].events = POLLIN;
		if (s->log.rd >= 0) {
			ref[np] = (struct run_pollref){r, i, RUN_FD_LOG};
			pfd[np].fd = s->log.rd;
			pfd[np++].events = POLLIN;
		}
		if (s->def->timeout > 0 && !r->paused) {
			double due = s->term_sent ? s->term_sent + KILL_GRACE
			                          : s->started + s->paused + s->def->timeout;
			if (due <= now) {
				s->exec->signal(r, i, s->term_sent ? SIGKILL : SIGTERM);
				if (!s->term_sent)
					s->term_sent = now;
				due = now + KILL_GRACE;
			}
			if (*next < 0 || due - now < *next)
				*next = due - now;
		}
	}
	return np;
}

void run_ready(const struct run_pollref *ref, short revents)
{
	struct run *r = ref->run;
	struct srun *s = &r->s[ref->step];
	if (s->state != S_RUNNING || !revents)
		return;
	if (ref->what == RUN_FD_LOG) {
		if (s->log.rd >= 0 && steplog_pump(&s->log) != 0) {
			/* End of file or an error: stop polling the pipe. */
			close(s->log.rd);
			s->log.rd = -1;
		}
		return;
	}
	step_exited(r, ref->step);
}

void run_tick(struct run *r)
{
	for (size_t k = 0; k < r->nlive; k++) {
		size_t i = r->live[k];
		struct srun *s = &r->s[i];
		if (s->state == S_RUNNING && !s->expanded &&
		    metrics_tail_poll(&s->metrics, r->f->db, 0) < 0)
			log_error("run %lld step %s: cannot record metrics", (long long)r->id,
			          s->def->name);
	}
}

/* ---- control ------------------------------------------------------------ */

void run_set_paused(struct run *r, int paused)
{
	if (paused == r->paused)
		return;
	double now = util_now();
	r->paused = paused;
	for (size_t i = 0; i < r->nunits; i++) {
		struct srun *s = &r->s[i];
		if (s->state != S_RUNNING || s->expanded)
			continue;
		s->exec->signal(r, i, paused ? SIGSTOP : SIGCONT);
		if (paused)
			s->paused_at = now;
		else
			s->paused += now - s->paused_at;
	}
	if (paused) {
		r->paused_at = now;
	} else {
		r->paused_total += now - r->paused_at;
		for (size_t i = 0; i < r->nunits; i++)
			if (r->s[i].state == S_PENDING && r->s[i].retry_at)
				r->s[i].retry_at += now - r->paused_at;
	}
	int rc = record_paused(r, paused);
	if (rc < 0)
		record_failed(r, rc, paused ? "its pause" : "its resume");
	events_emit(r->f, &(struct event){.kind = paused ? EV_RUN_PAUSED : EV_RUN_RESUMED,
	                                  .pipeline = r->pipeline, .run = r->id,
	                                  .status = paused ? "paused" : "running"});
}

void run_stop(struct run *r, const char *end, const char *why)
{
	run_flush(r);
	int rc = recheck_abandon(r);
	if (rc < 0)
		record_failed(r, rc, "its steps");
	r->end = end;
	__atomic_store_n(&r->abort_io, 1, __ATOMIC_RELAXED);
	if (r->paused)
		run_set_paused(r, 0); /* stopped processes cannot take a TERM */
	for (size_t i = 0; i < r->nunits; i++)
		if (r->s[i].state == S_RUNNING && !r->s[i].expanded)
			r->s[i].exec->signal(r, i, SIGTERM);
	double until = util_now() + KILL_GRACE;
	for (size_t i = 0; i < r->nunits; i++) {
		struct srun *s = &r->s[i];
		if (s->state != S_RUNNING || s->expanded)
			continue;
		double left = until - util_now();
		struct pollfd pf = {.fd = s->exec->fd(r, i), .events = POLLIN};
		if (left <= 0 || poll(&pf, 1, (int)(left * 1000)) <= 0)
			s->exec->signal(r, i, SIGKILL);
		s->exit_code = s->exec->reap(r, i);
		r->running--;
		r->remote -= s->exec->remote;
		s->in_when = 0;
		s->error = xstrdup(why);
		step_finish(r, i, S_FAILED, "failed");
	}
	for (size_t i = 0; i < r->nunits; i++)
		if (r->s[i].state == S_PENDING) {
			free(r->s[i].reason);
			r->s[i].reason = xstrdup(why);
			step_finish(r, i, S_SKIPPED, "skipped");
		}
}

/* Does unit i's scratch stay after the run (a failed step's workdir)? */
static int keeps_scratch(const struct run *r, size_t i)
{
	return r->s[i].scratch && r->s[i].state == S_FAILED && !r->end &&
	       r->db_error != -ENOSPC;
}

/* Remove the run's scratch but the failed steps' (r->kept_scratch). */
static void remove_scratch(struct run *r)
{
	if (r->kept_scratch) { /* the failed steps' stay; the rest and the pool go */
		for (size_t i = 0; i < r->nunits; i++)
			if (r->s[i].scratch && !keeps_scratch(r, i))
				workspace_remove(r->s[i].scratch);
		for (size_t k = 0; k < 2; k++) {
			char *d = xasprintf("%s/%s", r->scratch, k ? ".trash" : ".pool");
			workspace_remove(d);
			free(d);
		}
	} else {
		workspace_remove(r->scratch);
		if (r->shared_scratch)
			workspace_remove(r->shared_scratch);
	}
}

void run_end(struct run *r)
{
	run_flush(r);
	recycle_due(r); /* a run stopped before its recycling: kept for removal */
	size_t n = r->p->n_steps;
	const char *end = r->end;
	if (!end) {
		end = "succeeded";
		for (size_t i = 0; i < n; i++)
			if (r->s[i].state == S_FAILED ||
			    (r->s[i].state == S_SKIPPED && !r->s[i].skip_ok))
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
	/* A failed step's scratch stays (steps/<s>/workdir) until the
	 * pipeline's next run. The rest goes once the end is recorded and
	 * announced (what waits for the run, `wait`, hooks and the views,
	 * need not wait for the removal of every directory its steps left),
	 * or before that when a record failed: it may be what fills the disk
	 * (then everything goes). Slurm steps' scratch is under the shared
	 * dir, the same way. */
	r->kept_scratch = 0;
	for (size_t i = 0; i < r->nunits; i++)
		r->kept_scratch |= keeps_scratch(r, i);
	if (r->db_error)
		remove_scratch(r);
	int rc = record_end(r, end, error);
	if (rc < 0)
		log_error("run %lld: cannot record its end (%s): %s; a restart marks it "
		          "interrupted", (long long)r->id, end, strerror(-rc));
	enum event_kind k = !strcmp(end, "succeeded") ? EV_RUN_SUCCEEDED :
	                    !strcmp(end, "cancelled") ? EV_RUN_CANCELLED :
	                    !strcmp(end, "interrupted") ? EV_RUN_INTERRUPTED : EV_RUN_FAILED;
	events_emit(r->f, &(struct event){.kind = k, .pipeline = r->pipeline, .run = r->id,
	                                  .status = end, .error = error});
	free(error);
	if (!r->db_error)
		remove_scratch(r);
}
