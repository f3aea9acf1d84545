/*
 * record.c - a run's rows (record.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "flowyfs/dag.h"
#include "flowyfs/envinfo.h"
#include "flowyfs/record.h"
#include "flowyfs/registry.h"
#include "flowyfs/util.h"

struct txn_arg { struct run *r; int (*fn)(struct run *, void *); void *arg; };

static int txn_call(db *d, void *arg)
{
	struct txn_arg *t = arg;
	return t->fn(t->r, t->arg);
}

/* Run fn in a transaction of its own, or in the open batch. */
static int in_txn(struct run *r, int (*fn)(struct run *, void *), void *arg)
{
	if (r->batch)
		return fn(r, arg);
	return db_transaction(r->f->db, txn_call, &(struct txn_arg){r, fn, arg});
}

struct capture_arg { const char *git; };

static int do_capture(struct run *r, void *arg)
{
	struct capture_arg *a = arg;
	db *d = r->f->db;
	const char **cmds = xcalloc(r->p->n_steps + 1, sizeof *cmds);
	for (size_t i = 0; i < r->p->n_steps; i++)
		cmds[i] = r->p->steps[i].run;
	char *env = envinfo_render(cmds, r->p->n_steps);
	free(cmds);
	/* A re-check's graph is that of the run it repeats (the same
	 * definition), read through same_as (DB_RUN_DAG), not copied. */
	char *dot = r->same_as ? NULL : dag_render_dot(r->p);
	char *params = cJSON_PrintUnformatted(r->p->params);
	if (!params)
		util_oom();
	int rc = db_exec(d, "UPDATE runs SET commit_id=nullif(?, ''), git=?, env=?, "
	                 "dag=?, snapshot_run=?, params=?, same_as=nullif(?, 0) WHERE id=?",
	                 "ttttitii", r->snap.commit, a->git ? a->git : "", env, dot,
	                 r->snap.run, params, r->same_as, r->id);
	/* A run the same as an earlier one derives its steps' rows from it. */
	for (size_t k = 0; !rc && !r->same_as && k < r->p->n_steps; k++)
		rc = db_exec(d, "INSERT OR REPLACE INTO steps_recorded(run_id, name, status, "
		             "seq) VALUES(?, ?, 'pending', ?)", "iti", r->id,
		             r->p->steps[r->p->order[k]].name, (int64_t)k);
	free(params);
	free(dot);
	free(env);
	return rc;
}

int record_capture(struct run *r, const char *git)
{
	struct capture_arg a = {git};
	return in_txn(r, do_capture, &a);
}

int record_started(struct run *r)
{
	return db_exec(r->f->db, "UPDATE runs SET status=?, started=? WHERE id=?", "tdi",
	               r->paused ? "paused" : "running", util_now(), r->id);
}

int record_paused(struct run *r, int paused)
{
	if (paused)
		return db_exec(r->f->db, "UPDATE runs SET status='paused' WHERE id=?", "i",
		               r->id);
	return db_exec(r->f->db, "UPDATE runs SET status=?, paused=? WHERE id=?", "tdi",
	               r->started ? "running" : "queued", r->paused_total, r->id);
}

int record_step_running(struct run *r, size_t i)
{
	struct srun *s = &r->s[i];
	if (s->parent >= 0)
		return db_exec(r->f->db, "INSERT INTO items(run_id, step, item, status, "
		               "started, reason, attempts) VALUES(?, ?, ?, 'running', ?, ?, ?) "
		               "ON CONFLICT(run_id, step, item) DO UPDATE SET status='running', "
		               "started=excluded.started, reason=excluded.reason, "
		               "attempts=excluded.attempts", "ittdti", r->id, s->def->name,
		               s->item, s->started, s->reason, (int64_t)s->attempts);
	return db_exec(r->f->db, "UPDATE steps_recorded SET status='running', started=?, "
	               "reason=?, pid=?, attempts=? WHERE run_id=? AND name=?", "dtiiit",
	               s->started, s->reason, (int64_t)s->proc.pid, (int64_t)s->attempts,
	               r->id, s->def->name);
}

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
		rc = db_exec(r->f->db, "INSERT OR REPLACE INTO step_io_recorded(run_id, step, "
		             "dir, name, hash, ref) VALUES(?, ?, 'in', ?, ?, ?)", "itttt", r->id,
		             s->def->name, s->def->inputs[k].as, s->in_hex[k],
		             s->def->inputs[k].ref);
		if (!rc && !s->cached) /* a cache hit saw these inputs before */
			rc = record_artifact(r->f, s->in_hex[k]);
	}
	return rc;
}

struct end_arg { size_t i; const char *status; char *changed; };

/* Is hex already the latest version of the pipeline's output name? */
static int is_latest(db *d, const char *pipeline, const char *name, const char *hex)
{
	char *h = db_text(d, "SELECT hash FROM latest WHERE pipeline=? AND name=?", "tt",
	                  pipeline, name);
	int same = h && !strcmp(h, hex);
	free(h);
	return same;
}

/* A registered output's content becomes the next version of its model
 * (the same content only once), in the step end's transaction. */
static int register_output(struct run *r, const struct srun *s, size_t o)
{
	for (size_t k = 0; k < s->def->n_reg; k++) {
		if (strcmp(s->def->reg[k].output, s->def->outputs[o]))
			continue;
		struct registry_origin from = {r->pipeline, s->cached && s->from_run ?
		                               s->from_run : r->id, s->def->name,
		                               s->def->outputs[o]};
		int rc = registry_version_add(r->f->db, s->def->reg[k].model, s->out_hex[o],
		                              &from, 1, NULL);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int do_step_end(struct run *r, void *arg)
{
	struct end_arg *a = arg;
	struct flowy *f = r->f;
	struct srun *s = &r->s[a->i];
	int ok = !strcmp(a->status, "succeeded") || !strcmp(a->status, "cached");
	int rc = record_inputs(r, a->i);
	char *params = cJSON_PrintUnformatted(s->def->params);
	if (!params)
		util_oom();
	if (!rc)
		rc = db_exec(f->db, "UPDATE steps_recorded SET status=?, exit_code=?, "
		             "attempts=?, started=nullif(?, 0), finished=nullif(?, 0), cached=?, "
		             "reason=?, cache_key=?, key_parts=?, error=?, params=?, paused=? "
		             "WHERE run_id=? AND name=?", "tiidditttttdit", a->status,
		             (int64_t)s->exit_code, (int64_t)s->attempts, s->started,
		             s->finished, (int64_t)s->cached, s->reason, s->key, s->key_parts,
		             s->error, params, s->paused, r->id, s->def->name);
	free(params);
	if (!rc && !s->attempts && !s->cached)
		rc = db_exec(f->db, "UPDATE steps_recorded SET exit_code=NULL WHERE run_id=? "
		             "AND name=?", "it", r->id, s->def->name);
	for (size_t o = 0; !rc && ok && o < s->def->n_outputs; o++) {
		rc = db_exec(f->db, "INSERT OR REPLACE INTO step_io_recorded(run_id, step, dir, "
		             "name, hash) VALUES(?, ?, 'out', ?, ?)", "ittt", r->id, s->def->name,
		             s->def->outputs[o], s->out_hex[o]);
		if (!rc && !s->cached)
			rc = record_artifact(f, s->out_hex[o]);
		if (!rc && a->changed)
			a->changed[o] = !is_latest(f->db, r->pipeline, s->def->outputs[o],
			                           s->out_hex[o]);
		if (!rc)
			rc = db_exec(f->db, "INSERT OR REPLACE INTO latest(pipeline, name, hash, "
			             "run_id) VALUES(?, ?, ?, ?)", "ttti", r->pipeline,
			             s->def->outputs[o], s->out_hex[o], r->id);
		if (!rc)
			rc = register_output(r, s, o);
	}
	/* A cached step carries the metrics of the run that made its outputs. */
	if (!rc && s->cached && s->from_run && s->from_run != r->id)
		rc = db_exec(f->db, "INSERT INTO metrics(run_id, step, name, idx, value, "
		             "time) SELECT ?, step, name, idx, value, time FROM metrics WHERE "
		             "run_id=? AND step=?", "iit", r->id, s->from_run, s->def->name);
	if (!rc && ok && !s->cached && s->key)
		rc = db_exec(f->db, "INSERT OR REPLACE INTO cache(key, run_id, step) "
		             "VALUES(?, ?, ?)", "tit", s->key, r->id, s->def->name);
	return rc;
}

/* A foreach task's end: one row of items, its outputs as JSON. */
static int item_end(struct run *r, size_t i, const char *status)
{
	struct srun *s = &r->s[i];
	int ok = !strcmp(status, "succeeded") || !strcmp(status, "cached");
	char *outs = NULL;
	if (ok) {
		cJSON *o = cJSON_CreateObject();
		if (!o)
			util_oom();
		for (size_t k = 0; k < s->def->n_outputs; k++)
			cJSON_AddStringToObject(o, s->def->outputs[k], s->out_hex[k]);
		outs = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		if (!outs)
			util_oom();
	}
	int rc = db_exec(r->f->db, "INSERT OR REPLACE INTO items(run_id, step, item, "
	                 "status, exit_code, attempts, started, finished, cached, reason, "
	                 "error, cache_key, key_parts, outputs) VALUES(?, ?, ?, ?, nullif(?, -1), ?, "
	                 "nullif(?, 0), nullif(?, 0), ?, ?, ?, ?, ?, ?)", "itttiiddittttt",
	                 r->id, s->def->name, s->item, status,
	                 (int64_t)(s->attempts && !s->cached ? s->exit_code : -1),
	                 (int64_t)s->attempts, s->started, s->finished, (int64_t)s->cached,
	                 s->reason, s->error, s->key, s->key_parts, outs);
	free(outs);
	return rc;
}

int record_step_end(struct run *r, size_t i, const char *status, char *changed)
{
	struct end_arg a = {i, status, changed};
	if (changed)
		memset(changed, 0, r->s[i].def->n_outputs);
	if (r->s[i].parent >= 0)
		return item_end(r, i, status);
	return in_txn(r, do_step_end, &a);
}

int record_end(struct run *r, const char *end, const char *error)
{
	double now = util_now();
	if (r->paused)
		r->paused_total += now - r->paused_at;
	return db_exec(r->f->db, "UPDATE runs SET status=?, finished=?, paused=?, "
	               "started=coalesce(started, ?), error=coalesce(?, error), "
	               "kept_scratch=? WHERE id=?", "tdddtii", end, now, r->paused_total,
	               now, error, (int64_t)r->kept_scratch, r->id);
}
