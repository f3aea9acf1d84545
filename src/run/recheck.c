/*
 * recheck.c - a run in which nothing changed, recorded as one row
 * (recheck.h).
 *
 * Why the two halves prove the full path would cache every step: a
 * step's cache key covers its definition, its code files (or the
 * workdir's state), its params and its inputs' content. The same
 * snapshot (shared, or of the same commit: the same files), params and
 * workdir state give the same definitions, code and params; inputs from
 * outside the pipeline are hashed again and compared; inputs from inside
 * are outputs of its steps, the same by induction. So
 * every key is the key the earlier run recorded, and the full path's
 * lookup of it finds the outputs that run had, when the cache still
 * gives them for that key and they are still in the store. The outputs
 * being the pipeline's latest already, the full path would publish
 * nothing new and register no new version. What makes it cheap: the
 * latest rows are checked by one count (those the earlier run wrote), the
 * cache by one pass over the earlier run's steps, its cache rows and its
 * outputs (each read by run id, matched in memory), or, when a step's
 * cache row is another run's, by one join.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "flowyfs/events.h"
#include "flowyfs/log.h"
#include "flowyfs/recheck.h"
#include "flowyfs/stepio.h"
#include "flowyfs/util.h"

int64_t recheck_candidate(struct run *r, const struct run_request *req, const char *git)
{
	if (req->force_step || req->retry_of || !r->p->n_steps)
		return 0;
	for (size_t i = 0; i < r->p->n_steps; i++)
		if (!r->p->steps[i].n_outputs)
			return 0; /* run for its effect every time */
	char *params = cJSON_PrintUnformatted(r->p->params);
	if (!params)
		util_oom();
	int64_t same = 0;
	db_lock(r->f->db);
	/* The same snapshot: the one shared, or one with the same commit (its
	 * files' tree: a daemon started anew snapshots again, to the same
	 * commit when nothing changed). */
	int rc = db_get_int(r->f->db, &same, "SELECT coalesce(same_as, id) FROM runs "
	                    "WHERE pipeline=? AND id<? AND status='succeeded' AND "
	                    "(snapshot_run=? OR (?<>'' AND commit_id=?)) AND params=? AND "
	                    "coalesce(git, '')=? ORDER BY id DESC LIMIT 1", "tiitttt",
	                    r->pipeline, r->id, r->snap.run, r->snap.commit, r->snap.commit,
	                    params, git ? git : "");
	db_unlock(r->f->db);
	free(params);
	return rc == 0 ? same : 0;
}

static int cmp_step(const void *key, const void *elem)
{
	return strcmp(key, ((const struct step_def *)elem)->name);
}

/* The index of step name in r (steps are sorted by name), or -1. *hint
 * is the index found last (-1 at first): rows read by run id come in name
 * order (their keys start with run id and name), so the step is most often
 * that one or the next, two compares instead of a search. */
static long step_index(const struct run *r, const char *name, long *hint)
{
	for (long k = *hint; k <= *hint + 1; k++)
		if (k >= 0 && k < (long)r->p->n_steps && !strcmp(r->p->steps[k].name, name))
			return *hint = k;
	const struct step_def *d = bsearch(name, r->p->steps, r->p->n_steps,
	                                   sizeof *r->p->steps, cmp_step);
	if (d)
		*hint = (long)(d - r->p->steps);
	return d ? *hint : -1;
}

static long output_index(const struct step_def *d, const char *name)
{
	for (size_t o = 0; o < d->n_outputs; o++)
		if (!strcmp(d->outputs[o], name))
			return (long)o;
	return -1;
}

/* Steps [from, to) of r: is every output in the store? */
struct stored_arg {
	struct run *r;
	size_t from, to;
	int ok;
};

static void *steps_stored(void *arg)
{
	log_thread_name("recheck");
	struct stored_arg *a = arg;
	a->ok = 1;
	for (size_t i = a->from; a->ok && i < a->to; i++)
		for (size_t o = 0; a->ok && o < a->r->p->steps[i].n_outputs; o++) {
			struct cas_stat cs;
			a->ok = cas_stat(a->r->f->cas, a->r->s[i].out_hex[o], &cs) == 0;
		}
	return NULL;
}

/* Is every output of r's steps (out_hex filled) in the store? A stat
 * each (a few microseconds); a big pipeline's second half is looked at
 * by a thread of its own, on the other CPU. */
#define STORED_SPLIT 256
static int outputs_stored(struct run *r)
{
	size_t n = r->p->n_steps, half = n / 2;
	struct stored_arg low = {r, 0, half, 0}, high = {r, half, n, 0};
	pthread_t th;
	if (n < STORED_SPLIT || pthread_create(&th, NULL, steps_stored, &high) != 0) {
		low.to = n;
		steps_stored(&low);
		return low.ok;
	}
	steps_stored(&low);
	int rc = pthread_join(th, NULL);
	if (rc != 0) {
		log_error("run %lld: cannot join the store check: %s", (long long)r->id,
		          strerror(rc));
		return 0;
	}
	return low.ok && high.ok;
}

/* The join that proves outputs of run same_as are what the cache gives
 * for their steps' keys: each row an output of a step that succeeded or
 * was cached there, and whether the cache's row for the step's key names
 * that run's step, or another run's step whose output of that name has
 * the same hash. */
#define CACHE_JOIN \
	"SELECT o.step, o.name, o.hash, (c.run_id=o.run_id AND c.step=o.step) OR " \
	"co.hash=o.hash FROM steps_recorded s JOIN step_io_recorded o ON " \
	"o.run_id=s.run_id AND o.step=s.name AND o.dir='out' LEFT JOIN cache c ON " \
	"c.key=s.cache_key LEFT JOIN step_io_recorded co ON NOT (c.run_id=o.run_id " \
	"AND c.step=o.step) AND co.run_id=c.run_id AND co.step=c.step AND " \
	"co.dir='out' AND co.name=o.name WHERE s.run_id=? AND s.status IN " \
	"('succeeded', 'cached')"

/* What cache_check knows of each step of run same_as. */
struct was {
	char *key;       /* its cache key there */
	int done;        /* it succeeded or was cached there */
	int own;         /* the cache row for key names that run's step */
};

/* Lock held. Run CACHE_JOIN and fill out_hex from its rows: 1 when every
 * row is a proven output, 0 if not; *seen counts the rows. */
static int cache_join(struct run *r, size_t *seen)
{
	db *d = r->f->db;
	int ok = 1, s = SQLITE_DONE;
	long hint = -1;
	sqlite3_stmt *st = db_prepare(d, CACHE_JOIN, "i", r->same_as);
	if (!st)
		ok = 0;
	while (ok && (s = sqlite3_step(st)) == SQLITE_ROW) {
		const char *step = (const char *)sqlite3_column_text(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		const char *hex = (const char *)sqlite3_column_text(st, 2);
		long i = step ? step_index(r, step, &hint) : -1;
		long o = i >= 0 && name ? output_index(&r->p->steps[i], name) : -1;
		ok = o >= 0 && hex && cas_hex_valid(hex) && sqlite3_column_int(st, 3);
		if (ok)
			memcpy(r->s[i].out_hex[o], hex, CAS_HEX_LEN + 1);
		(*seen)++;
	}
	if (ok && s != SQLITE_DONE)
		ok = 0; /* a failed step: db_finish logs it */
	db_finish(d, st);
	return ok;
}

/* Lock held. What cache_join proves, in one pass over each table by run
 * id (no search by key a row): the steps' keys, the cache rows naming the
 * run, its outputs. When a step's cache row is another run's (the step
 * was cached there, or made again since), the join decides instead. */
static int cache_check(struct run *r, size_t *seen)
{
	db *d = r->f->db;
	size_t n = r->p->n_steps;
	int others = 0;
	struct was *w = xcalloc(n + 1, sizeof *w);
	int ok = 1, rc = SQLITE_DONE;
	long hint = -1;
	sqlite3_stmt *st = db_prepare(d, "SELECT name, status IN ('succeeded', 'cached'), "
	                              "cache_key FROM steps_recorded WHERE run_id=?", "i",
	                              r->same_as);
	while (st && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *key = (const char *)sqlite3_column_text(st, 2);
		long i = name ? step_index(r, name, &hint) : -1;
		if (i < 0 || w[i].key)
			continue; /* not a step now: its outputs are not looked for */
		w[i].done = sqlite3_column_int(st, 1);
		w[i].key = key ? xstrdup(key) : xstrdup("");
	}
	if (!st || rc != SQLITE_DONE)
		ok = 0;
	db_finish(d, st);
	st = ok ? db_prepare(d, "SELECT step, key FROM cache WHERE run_id=?", "i",
	                     r->same_as) : NULL;
	while (st && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *step = (const char *)sqlite3_column_text(st, 0);
		const char *key = (const char *)sqlite3_column_text(st, 1);
		long i = step ? step_index(r, step, &hint) : -1;
		if (i >= 0 && key && w[i].key && !strcmp(w[i].key, key))
			w[i].own = 1;
	}
	if (ok && (!st || rc != SQLITE_DONE))
		ok = 0;
	db_finish(d, st);
	st = ok ? db_prepare(d, "SELECT step, name, hash FROM step_io_recorded WHERE "
	                     "run_id=? AND dir='out'", "i", r->same_as) : NULL;
	while (ok && st && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *step = (const char *)sqlite3_column_text(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		const char *hex = (const char *)sqlite3_column_text(st, 2);
		long i = step ? step_index(r, step, &hint) : -1;
		if (i < 0) {
			ok = 0; /* not a step now (the join fails such a row too) */
			break;
		}
		if (!w[i].done)
			continue; /* as the join: not counted, so seen falls short */
		long o = name ? output_index(&r->p->steps[i], name) : -1;
		ok = o >= 0 && hex && cas_hex_valid(hex);
		if (ok && w[i].own) {
			memcpy(r->s[i].out_hex[o], hex, CAS_HEX_LEN + 1);
			(*seen)++;
		}
		others |= ok && !w[i].own;
	}
	if (ok && (!st || rc != SQLITE_DONE))
		ok = 0;
	db_finish(d, st);
	if (ok && others) {
		*seen = 0;
		ok = cache_join(r, seen);
	}
	for (size_t i = 0; i < n; i++)
		free(w[i].key);
	free(w);
	return ok;
}

/* Every output of run same_as is still the pipeline's latest, written by
 * that run (so a run now would publish nothing), is still what the cache
 * gives for its step's key (the run made it, or the run that did still
 * has the same bytes), and is still in the store. Fills the steps'
 * out_hex. */
static int outputs_unchanged(struct run *r)
{
	db *d = r->f->db;
	size_t want = 0, seen = 0;
	int64_t latest = -1;
	for (size_t i = 0; i < r->p->n_steps; i++)
		want += r->p->steps[i].n_outputs;
	db_lock(d);
	if (db_get_int(d, &latest, "SELECT count(*) FROM latest WHERE pipeline=? AND "
	               "run_id=?", "ti", r->pipeline, r->same_as) != 0 ||
	    latest != (int64_t)want) {
		db_unlock(d);
		return 0;
	}
	int ok = cache_check(r, &seen);
	db_unlock(d);
	/* Then the store, outside the lock. */
	return ok && seen == want && outputs_stored(r);
}

struct in_row { char *step, *name, *hash; };

/* Every input from outside the pipeline (another pipeline's latest, a
 * file:, a registry alias, a pinned artifact) has the content it had in
 * run same_as. One query, and hashing what must be hashed. */
static int inputs_unchanged(struct run *r)
{
	db *d = r->f->db;
	struct in_row *rows = NULL;
	size_t n = 0, cap = 0, outside = 0;
	int ok = 1, s = SQLITE_DONE;
	for (size_t i = 0; i < r->p->n_steps; i++)
		for (size_t k = 0; k < r->p->steps[i].n_inputs; k++)
			outside += r->p->steps[i].inputs[k].kind != STEP_IN_LOCAL;
	if (!outside)
		return 1; /* run same_as had the same definitions: it read none */
	db_lock(d);
	/* A name of this pipeline has neither '/' nor ':'; every other
	 * reference has one of them. */
	sqlite3_stmt *st = db_prepare(d, "SELECT step, name, hash FROM step_io_recorded "
	                              "WHERE run_id=? AND dir='in' AND (instr(ref, '/') > 0 "
	                              "OR instr(ref, ':') > 0)", "i", r->same_as);
	if (!st)
		ok = 0;
	while (ok && (s = sqlite3_step(st)) == SQLITE_ROW) {
		const char *c[3];
		for (int k = 0; k < 3; k++)
			if (!(c[k] = (const char *)sqlite3_column_text(st, k)))
				ok = 0;
		if (!ok)
			break;
		GROW(rows, cap, n);
		rows[n++] = (struct in_row){xstrdup(c[0]), xstrdup(c[1]), xstrdup(c[2])};
	}
	if (ok && s != SQLITE_DONE)
		ok = 0;
	db_finish(d, st);
	db_unlock(d);
	size_t used = 0;
	for (size_t i = 0; ok && i < r->p->n_steps; i++) {
		const struct step_def *def = &r->p->steps[i];
		for (size_t k = 0; ok && k < def->n_inputs; k++) {
			if (def->inputs[k].kind == STEP_IN_LOCAL)
				continue;
			char hex[CAS_HEX_LEN + 1], *err = NULL;
			ok = stepio_input(r, i, k, hex, &err) == 0;
			free(err); /* the full path says it again, in the step's error */
			size_t j = 0;
			while (ok && j < n && (strcmp(rows[j].step, def->name) ||
			                       strcmp(rows[j].name, def->inputs[k].as)))
				j++;
			ok = ok && j < n && !strcmp(rows[j].hash, hex);
			used++;
		}
	}
	ok = ok && used == n;
	for (size_t j = 0; j < n; j++) {
		free(rows[j].step);
		free(rows[j].name);
		free(rows[j].hash);
	}
	free(rows);
	return ok;
}

/* Every registered output is already a version of its model (the full
 * path would add none). */
static int registered(struct run *r)
{
	db *d = r->f->db;
	int ok = 1;
	db_lock(d);
	for (size_t i = 0; ok && i < r->p->n_steps; i++) {
		const struct step_def *def = &r->p->steps[i];
		for (size_t k = 0; ok && k < def->n_reg; k++) {
			long o = output_index(def, def->reg[k].output);
			int64_t n = 0;
			ok = o >= 0 && db_get_int(d, &n, "SELECT count(*) FROM registry_versions "
			                          "WHERE model=? AND hash=?", "tt", def->reg[k].model,
			                          r->s[i].out_hex[o]) == 0 && n == 1;
		}
	}
	db_unlock(d);
	return ok;
}

int recheck_abandon(struct run *r)
{
	if (!r->same_as || r->started)
		return 0; /* none, or settled as a re-check */
	r->same_as = 0;
	return db_run_materialize(r->f->db, r->id);
}

struct settled_arg { int64_t id, same_as; double now; };

/* The run succeeded, its cached steps carrying the metrics of the run
 * they repeat (as the full path copies them): one statement each. */
static int record_settled(db *d, void *arg)
{
	struct settled_arg *a = arg;
	int rc = db_exec(d, "UPDATE runs SET status='succeeded', started=?, finished=? "
	                 "WHERE id=?", "ddi", a->now, a->now, a->id);
	if (!rc)
		rc = db_exec(d, "INSERT INTO metrics(run_id, step, name, idx, value, time) "
		             "SELECT ?, step, name, idx, value, time FROM metrics WHERE "
		             "run_id=?", "ii", a->id, a->same_as);
	return rc;
}

int recheck_settle(struct run *r)
{
	double now = util_now();
	if (!outputs_unchanged(r) || !inputs_unchanged(r) || !registered(r) ||
	    db_transaction(r->f->db, record_settled,
	                   &(struct settled_arg){r->id, r->same_as, now}) < 0) {
		log_debug("run %lld: not the same as run %lld: the full path", (long long)r->id,
		          (long long)r->same_as);
		for (size_t i = 0; i < r->p->n_steps; i++)
			memset(r->s[i].out_hex, 0, r->s[i].def->n_outputs * sizeof *r->s[i].out_hex);
		int rc = recheck_abandon(r);
		return rc < 0 ? rc : 0;
	}
	/* Recorded before the events, so what a hook reads of the run (its
	 * steps' outputs and metrics) is there when it looks. */
	r->started = 1;
	events_emit(r->f, &(struct event){.kind = EV_RUN_STARTED, .pipeline = r->pipeline,
	                                  .run = r->id, .status = "running"});
	for (size_t k = 0; k < r->p->n_steps; k++) {
		struct srun *s = &r->s[r->p->order[k]];
		s->state = S_DONE;
		s->cached = 1;
		s->from_run = r->same_as;
		s->started = s->finished = now;
		events_emit(r->f, &(struct event){.kind = EV_STEP_CACHED,
		                                  .pipeline = r->pipeline, .run = r->id,
		                                  .step = s->def->name, .status = "cached"});
	}
	log_debug("run %lld: the same as run %lld", (long long)r->id, (long long)r->same_as);
	return 1;
}
