/*
 * db.c - the SQLite store. The schema is a list of migrations applied in
 * order inside a transaction; meta.schema_version records how far a store
 * has come, so an older store is upgraded in place at open and a newer one
 * is refused. WAL mode lets a reader never wait on the disk for a writer.
 *
 * Errors are checked on every SQLite call and translated here, at the
 * edge, to -errno. Transactions nest and are sticky: once a statement
 * inside fails (or a nested level rolls back) the outermost commit rolls
 * everything back, so a batch of updates is never half applied. Some
 * errors make SQLite roll the transaction back by itself; a new one is
 * opened then, so that the statements still to come in the nest are
 * discarded with it instead of committing one by one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/db.h"
#include "flowyfs/log.h"
#include "flowyfs/util.h"

#define STMT_CACHE 96

/* Prepared statements are kept by their SQL text: preparing costs more
 * than running most of our statements. A cached statement is lent to one
 * user at a time; a second user of the same SQL (recursion) gets a fresh
 * one that db_finish() finalizes. */
struct cached_stmt {
	const char *sql;
	sqlite3_stmt *st;
	int busy;
};

struct db {
	sqlite3 *conn;
	pthread_mutex_t lock;
	int tx_depth;
	int tx_err;             /* 0, or the -errno that dooms the open
	                           transaction (the first error wins) */
	char errmsg[512];       /* the last error, for db_errmsg() */
	struct cached_stmt cache[STMT_CACHE];
	size_t ncache;
	uint64_t rollbacks;     /* transactions rolled back (db_generation) */
};

/* The rows a run with same_as derives from the rows of run same_as, the
 * same rows the full path records for a run in which every step is a
 * cache hit: each step `cached` (reason "cached", exit code 0, no
 * attempt, started and finished when the run started), with the key,
 * key parts and params it had, and the same inputs and outputs. Until
 * such a run has succeeded its steps read `pending` (queued or running)
 * or `skipped` (it ended otherwise, as db_recover leaves pending steps),
 * without inputs or outputs. Defined once, here; readers only ever see
 * the views. Each is one join of runs with the recorded rows (a run's
 * own, or those of the run it is the same as), not a UNION: SQLite
 * flattens it into the queries that read it and keeps their indexes (a
 * UNION view in a join, a DISTINCT or a correlated subquery is
 * materialized whole). Every row belongs to a run that exists. (Metrics
 * stay a table: a re-check copies the metric rows of
 * the run it repeats, as the full path does for cached steps, in one
 * statement and none for steps that report none; queries across runs'
 * metrics then keep their plans.) */
#define OWN "r.same_as IS NULL"
/* The join is said twice, as one equality and as an OR: the equality
 * lets a query that names the run find its rows by the recorded tables'
 * keys (with only the OR, SQLite cannot carry run_id=? into the OR and
 * went through every run's row of the step by name: 2 ms a lookup at
 * 10,000 runs); the OR lets a query that starts from the rows (by hash)
 * find their runs by rowid or runs_same_as. Both say the same. */
#define ROWS_OF(t) t ".run_id=coalesce(r.same_as, r.id)"
#define OK "r.status='succeeded'"
#define DERIVED_VIEWS \
	"CREATE VIEW steps AS SELECT r.id AS run_id, s.name AS name, " \
	"  CASE WHEN " OWN " THEN s.status WHEN " OK " THEN 'cached' " \
	"  WHEN r.status IN ('queued', 'running', 'paused') THEN 'pending' " \
	"  ELSE 'skipped' END AS status, " \
	"  CASE WHEN " OWN " THEN s.exit_code WHEN " OK " THEN 0 END AS exit_code, " \
	"  CASE WHEN " OWN " THEN s.attempts ELSE 0 END AS attempts, " \
	"  CASE WHEN " OWN " THEN s.started WHEN " OK " THEN r.started END AS started, " \
	"  CASE WHEN " OWN " THEN s.finished WHEN " OK " THEN r.started END AS finished, " \
	"  CASE WHEN " OWN " THEN s.cached ELSE " OK " END AS cached, " \
	"  CASE WHEN " OWN " THEN s.reason WHEN " OK " THEN 'cached' END AS reason, " \
	"  CASE WHEN " OWN " OR " OK " THEN s.cache_key END AS cache_key, " \
	"  CASE WHEN " OWN " OR " OK " THEN s.key_parts END AS key_parts, " \
	"  CASE WHEN " OWN " THEN s.error END AS error, " \
	"  CASE WHEN " OWN " OR " OK " THEN s.params END AS params, " \
	"  CASE WHEN " OWN " THEN s.pid END AS pid, " \
	"  CASE WHEN " OWN " THEN s.paused ELSE 0 END AS paused, s.seq AS seq " \
	"  FROM runs r JOIN steps_recorded s ON " ROWS_OF("s") " AND ((" OWN " AND " \
	"  s.run_id=r.id) OR s.run_id=r.same_as);" \
	"CREATE VIEW step_io AS SELECT r.id AS run_id, io.step AS step, io.dir AS dir, " \
	"  io.name AS name, io.hash AS hash, io.ref AS ref FROM runs r JOIN " \
	"  step_io_recorded io ON " ROWS_OF("io") " AND ((" OWN " AND io.run_id=r.id) " \
	"  OR (io.run_id=r.same_as AND " OK "));" \
	"CREATE TRIGGER steps_insert INSTEAD OF INSERT ON steps BEGIN " \
	"  INSERT INTO steps_recorded(run_id, name, status, exit_code, attempts, " \
	"  started, finished, cached, reason, cache_key, key_parts, error, params, pid, " \
	"  paused, seq) VALUES(NEW.run_id, NEW.name, NEW.status, NEW.exit_code, " \
	"  coalesce(NEW.attempts, 0), NEW.started, NEW.finished, coalesce(NEW.cached, 0), " \
	"  NEW.reason, NEW.cache_key, NEW.key_parts, NEW.error, NEW.params, NEW.pid, " \
	"  coalesce(NEW.paused, 0), NEW.seq); END;" \
	"CREATE TRIGGER steps_update INSTEAD OF UPDATE ON steps BEGIN " \
	"  UPDATE steps_recorded SET run_id=NEW.run_id, name=NEW.name, " \
	"  status=NEW.status, exit_code=NEW.exit_code, attempts=NEW.attempts, " \
	"  started=NEW.started, finished=NEW.finished, cached=NEW.cached, " \
	"  reason=NEW.reason, cache_key=NEW.cache_key, key_parts=NEW.key_parts, " \
	"  error=NEW.error, params=NEW.params, pid=NEW.pid, paused=NEW.paused, " \
	"  seq=NEW.seq WHERE run_id=OLD.run_id AND name=OLD.name; END;" \
	"CREATE TRIGGER steps_delete INSTEAD OF DELETE ON steps BEGIN " \
	"  DELETE FROM steps_recorded WHERE run_id=OLD.run_id AND name=OLD.name; END;" \
	"CREATE TRIGGER step_io_insert INSTEAD OF INSERT ON step_io BEGIN " \
	"  INSERT INTO step_io_recorded(run_id, step, dir, name, hash, ref) " \
	"  VALUES(NEW.run_id, NEW.step, NEW.dir, NEW.name, NEW.hash, NEW.ref); END;" \
	"CREATE TRIGGER step_io_delete INSTEAD OF DELETE ON step_io BEGIN " \
	"  DELETE FROM step_io_recorded WHERE run_id=OLD.run_id AND step=OLD.step " \
	"  AND dir=OLD.dir AND name=OLD.name; END;"

static const char *const migrations[] = {
	/* 1: runs, steps, their inputs and outputs, artifacts, cache. */
	"CREATE TABLE runs("
	"  id INTEGER PRIMARY KEY, pipeline TEXT NOT NULL, status TEXT NOT NULL,"
	"  trigger TEXT, queued REAL, started REAL, finished REAL,"
	"  params TEXT, commit_id TEXT, error TEXT);"
	"CREATE INDEX runs_pipeline ON runs(pipeline, id);"
	"CREATE TABLE steps("
	"  run_id INTEGER NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,"
	"  exit_code INTEGER, attempts INTEGER NOT NULL DEFAULT 0,"
	"  started REAL, finished REAL, cached INTEGER NOT NULL DEFAULT 0,"
	"  reason TEXT, cache_key TEXT, key_parts TEXT, error TEXT,"
	"  PRIMARY KEY(run_id, name));"
	"CREATE TABLE step_io("
	"  run_id INTEGER NOT NULL, step TEXT NOT NULL, dir TEXT NOT NULL,"
	"  name TEXT NOT NULL, hash TEXT NOT NULL, ref TEXT,"
	"  PRIMARY KEY(run_id, step, dir, name));"
	"CREATE INDEX step_io_hash ON step_io(hash, dir);"
	"CREATE TABLE artifacts("
	"  hash TEXT PRIMARY KEY, kind TEXT NOT NULL, size INTEGER NOT NULL,"
	"  created REAL NOT NULL);"
	"CREATE TABLE latest("
	"  pipeline TEXT NOT NULL, name TEXT NOT NULL, hash TEXT NOT NULL,"
	"  run_id INTEGER NOT NULL, PRIMARY KEY(pipeline, name));"
	"CREATE TABLE cache("
	"  key TEXT PRIMARY KEY, run_id INTEGER NOT NULL, step TEXT NOT NULL);"
	"CREATE TABLE metrics("
	"  run_id INTEGER NOT NULL, step TEXT NOT NULL, name TEXT NOT NULL,"
	"  idx INTEGER NOT NULL, value REAL NOT NULL, time REAL NOT NULL);"
	"CREATE INDEX metrics_run ON metrics(run_id, step, name, idx);",
	/* 2: what tracking shows: resolved params per step, run environment,
	 * git state, the graph, and fast lineage lookups. */
	"ALTER TABLE steps ADD COLUMN params TEXT;"
	"ALTER TABLE runs ADD COLUMN env TEXT;"
	"ALTER TABLE runs ADD COLUMN git TEXT;"
	"ALTER TABLE runs ADD COLUMN dag TEXT;"
	"CREATE INDEX step_io_run ON step_io(run_id, step, dir);"
	"CREATE INDEX metrics_name ON metrics(name, run_id);",
	/* 3: runs of an unchanged pipeline share the snapshot of an earlier run. */
	"ALTER TABLE runs ADD COLUMN snapshot_run INTEGER;",
	/* 4: the process group of a running step, to stop it after a crash. */
	"ALTER TABLE steps ADD COLUMN pid INTEGER;",
	/* 5: seconds a run or step was paused (not part of its duration), and
	 * the run a retry retries. */
	"ALTER TABLE runs ADD COLUMN paused REAL NOT NULL DEFAULT 0;"
	"ALTER TABLE steps ADD COLUMN paused REAL NOT NULL DEFAULT 0;"
	"ALTER TABLE runs ADD COLUMN retry_of INTEGER;"
	/* the scratch of its failed steps is kept until the pipeline's next run */
	"ALTER TABLE runs ADD COLUMN kept_scratch INTEGER NOT NULL DEFAULT 0;"
	/* the position of a step in its run's order, for tables in run order */
	"ALTER TABLE steps ADD COLUMN seq INTEGER;"
	/* the tasks of foreach steps, one row per item, with their outputs
	 * as JSON (name -> hash) and their own cache keys */
	"CREATE TABLE items("
	"  run_id INTEGER NOT NULL, step TEXT NOT NULL, item TEXT NOT NULL,"
	"  status TEXT NOT NULL, exit_code INTEGER, attempts INTEGER NOT NULL DEFAULT 0,"
	"  started REAL, finished REAL, cached INTEGER NOT NULL DEFAULT 0,"
	"  reason TEXT, error TEXT, cache_key TEXT, key_parts TEXT, outputs TEXT,"
	"  PRIMARY KEY(run_id, step, item));"
	"CREATE INDEX items_key ON items(cache_key);",
	/* 6: the model registry (registry.c), and a note and tags per run. */
	"CREATE TABLE registry_models(name TEXT PRIMARY KEY, created REAL NOT NULL);"
	"CREATE TABLE registry_versions("
	"  model TEXT NOT NULL, version INTEGER NOT NULL, hash TEXT NOT NULL,"
	"  pipeline TEXT, run_id INTEGER, step TEXT, output TEXT, created REAL NOT NULL,"
	"  PRIMARY KEY(model, version), UNIQUE(model, hash));"
	"CREATE INDEX registry_versions_hash ON registry_versions(hash);"
	"CREATE TABLE registry_aliases("
	"  model TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL,"
	"  PRIMARY KEY(model, alias));"
	"CREATE TABLE registry_history("
	"  id INTEGER PRIMARY KEY, model TEXT NOT NULL, alias TEXT NOT NULL,"
	"  time REAL NOT NULL, from_v INTEGER, to_v INTEGER, uid INTEGER NOT NULL);"
	"ALTER TABLE runs ADD COLUMN note TEXT;"
	"ALTER TABLE runs ADD COLUMN tags TEXT;",
	/* 7: one row per gc or forget (store/gc.log). */
	"CREATE TABLE gc_log("
	"  id INTEGER PRIMARY KEY, time REAL NOT NULL, command TEXT NOT NULL,"
	"  dry INTEGER NOT NULL, runs INTEGER NOT NULL, run_ids TEXT NOT NULL,"
	"  objects INTEGER NOT NULL, bytes INTEGER NOT NULL, duration REAL NOT NULL);"
	/* a deleted run's snapshot heir and cache rows, found without a scan */
	"CREATE INDEX runs_snapshot ON runs(snapshot_run);"
	"CREATE INDEX cache_run ON cache(run_id);",
	/* 8: a re-check in which nothing changed is one row: runs.same_as
	 * names the run whose recorded rows it repeats (one that has rows of
	 * its own). The rows are kept in steps_recorded and step_io_recorded;
	 * steps and step_io are views adding the rows such runs derive (see
	 * DERIVED_VIEWS above), so every reader sees one set of rows a run,
	 * however it was recorded. Writes through the views reach the
	 * recorded tables (INSTEAD OF triggers). */
	"ALTER TABLE runs ADD COLUMN same_as INTEGER;"
	"CREATE INDEX runs_same_as ON runs(same_as) WHERE same_as IS NOT NULL;"
	"ALTER TABLE steps RENAME TO steps_recorded;"
	"ALTER TABLE step_io RENAME TO step_io_recorded;"
	DERIVED_VIEWS,
	/* 9: lookups that went through every run of a pipeline: the last
	 * cache key of a step or item (a miss's reason, once per step run),
	 * the runs that keep a failed step's scratch (once per run). (The
	 * runs sharing a snapshot have runs_snapshot, of 7.) */
	"CREATE INDEX steps_name ON steps_recorded(name, run_id);"
	"CREATE INDEX items_step ON items(step, item, run_id);"
	"CREATE INDEX runs_kept ON runs(pipeline, id) WHERE kept_scratch=1;",
	/* 10: the derived views join by key when the run is named (see
	 * ROWS_OF); their INSTEAD OF triggers go with them. */
	"DROP VIEW steps;"
	"DROP VIEW step_io;"
	DERIVED_VIEWS,
};

#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))
_Static_assert(sizeof migrations / sizeof migrations[0] == DB_SCHEMA_VERSION,
               "DB_SCHEMA_VERSION (db.h) is the number of migrations");

int db_errno(int sqlite_rc)
{
	switch (sqlite_rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	default:
		return -EIO;
	}
}

const char *db_errmsg(db *d)
{
	return d->errmsg;
}

/* Run sql on a connection without a db (open, migrations); 0 or -errno
 * with *err (when err is not NULL) saying why. */
static int exec_sql(sqlite3 *c, const char *sql, char **err)
{
	char *msg = NULL;
	int rc = sqlite3_exec(c, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		if (err)
			*err = xasprintf("sqlite: %s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return db_errno(rc) ? db_errno(rc) : -EIO;
	}
	return 0;
}

/* Inside a transaction, doom it with err. If SQLite has already rolled it
 * back (it may on SQLITE_FULL, IOERR, BUSY, NOMEM and OR ROLLBACK
 * conflicts), open a new one: the statements until the outermost commit
 * must not autocommit one by one. */
static void tx_doom(db *d, int err)
{
	int rc;

	if (!d->tx_depth)
		return;
	if (!d->tx_err)
		d->tx_err = err;
	if (sqlite3_get_autocommit(d->conn)) {
		rc = sqlite3_exec(d->conn, "BEGIN", NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			log_error("sqlite: cannot reopen a failed transaction: %s",
			          sqlite3_errmsg(d->conn));
	}
}

/* The SQLite call what ("prepare", "step", ...) on sql failed with rc:
 * keep the message, log it, doom an open transaction. Returns -errno. */
static int sql_fail(db *d, int rc, const char *what, const char *sql)
{
	int err = db_errno(rc) ? db_errno(rc) : -EIO;

	snprintf(d->errmsg, sizeof d->errmsg, "%s", sqlite3_errmsg(d->conn));
	log_error("sqlite %s: %s: %s", what, d->errmsg, sql ? sql : "");
	tx_doom(d, err);
	return err;
}

static int migrate(sqlite3 *c, char **err)
{
	sqlite3_stmt *st = NULL;
	int version = 0, rc, s;

	rc = exec_sql(c, "CREATE TABLE IF NOT EXISTS meta("
	                 "key TEXT PRIMARY KEY, value TEXT)", err);
	if (rc < 0)
		return rc;
	s = sqlite3_prepare_v2(c, "SELECT value FROM meta WHERE key='schema_version'",
	                       -1, &st, NULL);
	if (s == SQLITE_OK) {
		s = sqlite3_step(st);
		if (s == SQLITE_ROW)
			version = sqlite3_column_int(st, 0);
		if (s == SQLITE_ROW || s == SQLITE_DONE)
			s = SQLITE_OK;
	}
	if (s != SQLITE_OK) {
		*err = xasprintf("sqlite: reading the schema version: %s",
		                 sqlite3_errmsg(c));
		sqlite3_finalize(st);   /* repeats the error just reported */
		return db_errno(s);
	}
	s = sqlite3_finalize(st);
	if (s != SQLITE_OK) {
		*err = xasprintf("sqlite: %s", sqlite3_errmsg(c));
		return db_errno(s);
	}
	if (version > N_MIGRATIONS) {
		*err = xasprintf("store schema version %d is newer than this "
		                 "flowyfs (%d)", version, N_MIGRATIONS);
		return -EPROTO;
	}
	for (int v = version; v < N_MIGRATIONS; v++) {
		char *set = xasprintf("INSERT OR REPLACE INTO meta VALUES"
		                      "('schema_version', '%d')", v + 1);
		rc = exec_sql(c, "BEGIN IMMEDIATE", err);
		if (!rc)
			rc = exec_sql(c, migrations[v], err);
		if (!rc)
			rc = exec_sql(c, set, err);
		if (!rc)
			rc = exec_sql(c, "COMMIT", err);
		if (rc && !sqlite3_get_autocommit(c) &&
		    (s = sqlite3_exec(c, "ROLLBACK", NULL, NULL, NULL)) != SQLITE_OK)
			log_error("sqlite: rolling back migration %d: %s", v + 1,
			          sqlite3_errstr(s));
		free(set);
		if (rc)
			return rc;
	}
	return 0;
}

int db_open(db **out, const char *path, char **err)
{
	pthread_mutexattr_t a;
	sqlite3 *c = NULL;
	db *d = NULL;
	int rc = 0, s;

	*out = NULL;
	*err = NULL;
	/* NOMUTEX: every use of the connection is serialized by d->lock. */
	s = sqlite3_open_v2(path, &c, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	                    SQLITE_OPEN_NOMUTEX, NULL);
	if (s == SQLITE_OK)
		s = sqlite3_busy_timeout(c, 5000);
	if (s != SQLITE_OK) {
		*err = xasprintf("%s: %s", path, c ? sqlite3_errmsg(c) : sqlite3_errstr(s));
		rc = db_errno(s);
		goto fail;
	}
	/* One daemon serves a store (main.c holds its flock), so SQLite may
	 * keep its file lock instead of taking it around every transaction. */
	rc = exec_sql(c, "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL;"
	                 "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;", err);
	if (!rc)
		rc = migrate(c, err);
	if (rc)
		goto fail;
	d = xcalloc(1, sizeof *d);
	d->conn = c;
	if ((s = pthread_mutexattr_init(&a)) != 0) {
		rc = -s;
		goto fail;
	}
	s = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	if (!s)
		s = pthread_mutex_init(&d->lock, &a);
	pthread_mutexattr_destroy(&a);
	if (s) {
		rc = -s;
		goto fail;
	}
	*out = d;
	return 0;
fail:
	if (rc && !*err)
		*err = xasprintf("%s: %s", path, strerror(-rc));
	free(d);
	if ((s = sqlite3_close(c)) != SQLITE_OK)
		log_error("sqlite: closing %s: %s", path, sqlite3_errstr(s));
	return rc;
}

void db_close(db *d)
{
	int s;

	if (!d)
		return;
	for (size_t i = 0; i < d->ncache; i++) {
		if ((s = sqlite3_finalize(d->cache[i].st)) != SQLITE_OK)
			log_error("sqlite: finalizing %s: %s", d->cache[i].sql,
			          sqlite3_errstr(s));
		free((char *)d->cache[i].sql);
	}
	if ((s = sqlite3_close(d->conn)) != SQLITE_OK)
		log_error("sqlite: closing the store: %s", sqlite3_errstr(s));
	if ((s = pthread_mutex_destroy(&d->lock)) != 0)
		log_error("db_close: the lock: %s", strerror(s));
	free(d);
}

uint64_t db_generation(db *d)
{
	db_lock(d);
	/* Rows changed since open, and rollbacks (their rows were counted,
	 * their undoing is not): either grows with every change. */
	uint64_t g = (uint64_t)sqlite3_total_changes64(d->conn) + d->rollbacks;
	db_unlock(d);
	return g;
}

void db_lock(db *d)
{
	int s = pthread_mutex_lock(&d->lock);

	if (s) {   /* a recursive mutex fails only when used wrongly */
		log_error("db_lock: %s", strerror(s));
		abort();
	}
}

void db_unlock(db *d)
{
	int s = pthread_mutex_unlock(&d->lock);

	if (s) {
		log_error("db_unlock: %s", strerror(s));
		abort();
	}
}

/* The statement for sql in *out: the cached one when it is free, else a
 * new one, cached if there is room and sql has no entry yet. 0 or -errno. */
static int lend(db *d, const char *sql, sqlite3_stmt **out)
{
	struct cached_stmt *slot;
	sqlite3_stmt *st = NULL;
	int known = 0, rc;

	*out = NULL;
	for (size_t i = 0; i < d->ncache; i++) {
		struct cached_stmt *c = &d->cache[i];
		if (c->sql != sql && strcmp(c->sql, sql))
			continue;
		known = 1;
		if (c->busy)
			break;
		c->busy = 1;
		*out = c->st;
		return 0;
	}
	rc = sqlite3_prepare_v3(d->conn, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
	                        NULL);
	if (rc != SQLITE_OK)
		return sql_fail(d, rc, "prepare", sql);
	if (!st) {      /* only blanks or comments */
		snprintf(d->errmsg, sizeof d->errmsg, "empty statement");
		log_error("sqlite prepare: empty statement: %s", sql);
		tx_doom(d, -EINVAL);
		return -EINVAL;
	}
	if (!known && d->ncache < STMT_CACHE) {
		slot = &d->cache[d->ncache++];
		slot->sql = xstrdup(sql);
		slot->st = st;
		slot->busy = 1;
	}
	*out = st;
	return 0;
}

/* Hand st back: reset and unbind a cached statement, finalize another.
 * Both repeat the error of the statement's last step, reported unless
 * report is 0 (the caller did already). Returns 0 or -errno. */
static int finish(db *d, sqlite3_stmt *st, int report)
{
	char *sql;
	int rc, ret = 0;

	if (!st)
		return 0;
	for (size_t i = 0; i < d->ncache; i++)
		if (d->cache[i].st == st) {
			rc = sqlite3_reset(st);
			if (rc != SQLITE_OK && report)
				ret = sql_fail(d, rc, "step", sqlite3_sql(st));
			rc = sqlite3_clear_bindings(st);
			if (rc != SQLITE_OK && !ret)
				ret = sql_fail(d, rc, "clear bindings", sqlite3_sql(st));
			d->cache[i].busy = 0;
			return ret;
		}
	sql = sqlite3_sql(st) ? xstrdup(sqlite3_sql(st)) : NULL;
	rc = sqlite3_finalize(st);
	if (rc != SQLITE_OK && report)
		ret = sql_fail(d, rc, "step", sql);
	free(sql);
	return ret;
}

void db_finish(db *d, sqlite3_stmt *st)
{
	finish(d, st, 1);   /* recorded by sql_fail: nothing more to do */
}

/* The statement for sql with args bound per types in *out; 0 or -errno. */
static int prepare_v(db *d, sqlite3_stmt **out, const char *sql,
                     const char *types, va_list ap)
{
	sqlite3_stmt *st;
	int i = 1, rc;

	*out = NULL;
	rc = lend(d, sql, &st);
	if (rc)
		return rc;
	for (const char *t = types ? types : ""; *t; t++, i++) {
		switch (*t) {
		case 't': {
			const char *s = va_arg(ap, const char *);
			if (s)
				rc = sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
			else
				rc = sqlite3_bind_null(st, i);
			break;
		}
		case 'i':
			rc = sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
			break;
		case 'd':
			rc = sqlite3_bind_double(st, i, va_arg(ap, double));
			break;
		default:
			rc = sqlite3_bind_null(st, i);
		}
		if (rc != SQLITE_OK) {
			rc = sql_fail(d, rc, "bind", sql);
			finish(d, st, 0);
			return rc;
		}
	}
	*out = st;
	return 0;
}

sqlite3_stmt *db_prepare(db *d, const char *sql, const char *types, ...)
{
	sqlite3_stmt *st;
	va_list ap;

	va_start(ap, types);
	prepare_v(d, &st, sql, types, ap);   /* st is NULL on error */
	va_end(ap);
	return st;
}

int db_exec(db *d, const char *sql, const char *types, ...)
{
	sqlite3_stmt *st = NULL;
	va_list ap;
	int rc, s;

	db_lock(d);
	if (d->tx_depth && d->tx_err) {
		rc = d->tx_err;   /* doomed: it would be rolled back anyway */
		goto out;
	}
	va_start(ap, types);
	rc = prepare_v(d, &st, sql, types, ap);
	va_end(ap);
	if (rc)
		goto out;
	s = sqlite3_step(st);
	if (s != SQLITE_DONE && s != SQLITE_ROW)
		rc = sql_fail(d, s, "step", sql);
	s = finish(d, st, !rc);
	if (!rc)
		rc = s;
out:
	db_unlock(d);
	return rc;
}

/* The first column of the first row into *iv or (malloc'd) *tv: 0, 1 for
 * no row or NULL, or -errno. */
static int query_v(db *d, int64_t *iv, char **tv, const char *sql,
                   const char *types, va_list ap)
{
	const unsigned char *text;
	sqlite3_stmt *st = NULL;
	int rc, s;

	if (tv)
		*tv = NULL;
	db_lock(d);
	rc = prepare_v(d, &st, sql, types, ap);
	if (rc)
		goto out;
	s = sqlite3_step(st);
	if (s == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		if (iv) {
			*iv = sqlite3_column_int64(st, 0);
		} else if ((text = sqlite3_column_text(st, 0))) {
			*tv = xstrdup((const char *)text);
		} else {
			rc = sql_fail(d, sqlite3_errcode(d->conn) != SQLITE_OK ?
			              sqlite3_errcode(d->conn) : SQLITE_NOMEM, "column", sql);
		}
	} else if (s == SQLITE_ROW || s == SQLITE_DONE) {
		rc = 1;
	} else {
		rc = sql_fail(d, s, "step", sql);
	}
	s = finish(d, st, rc >= 0);
	if (s && rc >= 0) {
		rc = s;
		if (tv) {
			free(*tv);
			*tv = NULL;
		}
	}
out:
	db_unlock(d);
	return rc;
}

int db_get_int(db *d, int64_t *out, const char *sql, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = query_v(d, out, NULL, sql, types, ap);
	va_end(ap);
	return rc;
}

int db_get_text(db *d, char **out, const char *sql, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = query_v(d, NULL, out, sql, types, ap);
	va_end(ap);
	return rc;
}

int64_t db_int(db *d, int64_t dflt, const char *sql, const char *types, ...)
{
	int64_t v = dflt;
	va_list ap;

	va_start(ap, types);
	query_v(d, &v, NULL, sql, types, ap);   /* v stays dflt unless 0 */
	va_end(ap);
	return v;
}

char *db_text(db *d, const char *sql, const char *types, ...)
{
	char *v = NULL;
	va_list ap;

	va_start(ap, types);
	query_v(d, NULL, &v, sql, types, ap);   /* v is NULL unless 0 */
	va_end(ap);
	return v;
}

/* End the transaction SQLite holds, if it still holds one (a failed
 * statement or COMMIT may have ended it), and clear the doom. */
static void rollback_now(db *d)
{
	int rc;

	d->tx_err = 0;
	d->rollbacks++;
	if (sqlite3_get_autocommit(d->conn))
		return;
	rc = sqlite3_exec(d->conn, "ROLLBACK", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		log_error("sqlite rollback: %s", sqlite3_errmsg(d->conn));
}

int db_begin(db *d)
{
	int rc;

	if (d->tx_depth++)
		return d->tx_err;
	d->tx_err = 0;
	rc = sqlite3_exec(d->conn, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sql_fail(d, rc, "begin", "BEGIN IMMEDIATE");
	return 0;
}

int db_commit(db *d)
{
	int rc;

	if (!d->tx_depth) {
		log_error("db_commit without db_begin");
		return -EINVAL;
	}
	if (--d->tx_depth)
		return d->tx_err;
	if (d->tx_err) {
		rc = d->tx_err;
		log_error("sqlite: transaction rolled back: %s", d->errmsg);
		rollback_now(d);
		return rc;
	}
	rc = sqlite3_exec(d->conn, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		rc = sql_fail(d, rc, "commit", "COMMIT");
		rollback_now(d);
	}
	return rc;
}

void db_rollback(db *d)
{
	if (!d->tx_depth) {
		log_error("db_rollback without db_begin");
		return;
	}
	if (--d->tx_depth) {
		if (!d->tx_err) {
			d->tx_err = -ECANCELED;
			snprintf(d->errmsg, sizeof d->errmsg,
			         "a nested transaction was rolled back");
		}
		return;
	}
	rollback_now(d);
}

int db_run_create(db *d, int64_t *out_id, const char *pipeline,
                  const char *trigger)
{
	db_lock(d);
	int rc = db_exec(d, "INSERT INTO runs(pipeline, status, trigger, queued) "
	                    "VALUES(?, 'queued', ?, ?)", "ttd", pipeline, trigger,
	                 util_now());
	*out_id = rc ? 0 : sqlite3_last_insert_rowid(d->conn);
	db_unlock(d);
	return rc;
}

/* Copy the rows run id derives (see DERIVED_VIEWS) into the recorded
 * tables and clear its same_as: it then stands on its own. Lock held,
 * in the caller's transaction. */
static int materialize(db *d, int64_t id)
{
	int rc = db_exec(d, "INSERT INTO steps_recorded(run_id, name, status, exit_code, "
	                 "attempts, started, finished, cached, reason, cache_key, key_parts, "
	                 "error, params, pid, paused, seq) SELECT run_id, name, status, "
	                 "exit_code, attempts, started, finished, cached, reason, cache_key, "
	                 "key_parts, error, params, pid, paused, seq FROM steps WHERE "
	                 "run_id=?", "i", id);
	if (!rc)
		rc = db_exec(d, "INSERT INTO step_io_recorded(run_id, step, dir, name, hash, "
		             "ref) SELECT run_id, step, dir, name, hash, ref FROM step_io "
		             "WHERE run_id=?", "i", id);
	if (!rc)
		rc = db_exec(d, "UPDATE runs SET dag=" DB_RUN_DAG ", same_as=NULL WHERE id=?",
		             "i", id);
	return rc;
}

int db_transaction(db *d, int (*fn)(db *d, void *arg), void *arg)
{
	db_lock(d);
	int rc = db_begin(d);
	if (!rc)
		rc = fn(d, arg);
	if (rc)
		db_rollback(d);
	else
		rc = db_commit(d);
	db_unlock(d);
	return rc;
}

static int do_materialize(db *d, void *arg)
{
	int64_t id = *(int64_t *)arg;
	return db_int(d, 0, "SELECT same_as FROM runs WHERE id=?", "i", id)
	       ? materialize(d, id) : 0;
}

int db_run_materialize(db *d, int64_t id)
{
	return db_transaction(d, do_materialize, &id);
}

/* Run id's rows go to the oldest run that repeats it and is not in the
 * set going (NULL: none), and the others that stay repeat that one. */
static int release_one(db *d, int64_t id, const char *going)
{
	int64_t heir = 0;
	char *not_going = going ? xasprintf(" AND id NOT IN (%s)", going) : xstrdup("");
	char *sql = xasprintf("SELECT min(id) FROM runs WHERE same_as=?%s", not_going);
	int rc = db_get_int(d, &heir, sql, "i", id);
	free(sql);
	if (rc >= 0 && rc != 1 && heir) {
		rc = materialize(d, heir);
		sql = xasprintf("UPDATE runs SET same_as=? WHERE same_as=?%s", not_going);
		if (!rc)
			rc = db_exec(d, sql, "ii", heir, id);
		free(sql);
	} else if (rc > 0) {
		rc = 0; /* no run repeats id */
	}
	free(not_going);
	return rc;
}

static int do_release(db *d, void *arg)
{
	return release_one(d, *(int64_t *)arg, NULL);
}

int db_run_release(db *d, int64_t id)
{
	return db_transaction(d, do_release, &id);
}

static int do_release_set(db *d, void *arg)
{
	const char *going = arg;
	int64_t *ids = NULL;
	size_t n = 0;
	char *sql = xasprintf("SELECT DISTINCT same_as FROM runs WHERE same_as IN (%s) "
	                      "AND id NOT IN (%s)", going, going);
	sqlite3_stmt *st = db_prepare(d, sql, "");
	free(sql);
	if (!st)
		return -EIO;
	while (sqlite3_step(st) == SQLITE_ROW) {
		ids = xrealloc(ids, (n + 1) * sizeof *ids);
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	int rc = finish(d, st, 1); /* reports a failed step */
	for (size_t i = 0; !rc && i < n; i++)
		rc = release_one(d, ids[i], going);
	free(ids);
	return rc;
}

int db_runs_release(db *d, const char *going)
{
	return db_transaction(d, do_release_set, (void *)going);
}

int db_recover(db *d, void (*stray)(int64_t run, const char *step, int pid, void *arg),
               void *arg)
{
	int rc = 0, s;

	db_lock(d);
	sqlite3_stmt *st = db_prepare(d, "SELECT run_id, name, pid FROM steps_recorded WHERE "
	                              "status='running' AND pid IS NOT NULL", "");
	if (!st) {
		rc = -EIO;
		goto out;
	}
	while (stray && (s = sqlite3_step(st)) == SQLITE_ROW)
		stray(sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
		      sqlite3_column_int(st, 2), arg);
	rc = finish(d, st, 1);   /* reports a failed step */
	if (rc)
		goto out;
	rc = db_begin(d);
	if (!rc)
		rc = db_exec(d, "UPDATE steps_recorded SET status='failed', "
		                "error='daemon stopped while the step ran' "
		                "WHERE status='running' AND run_id IN (SELECT id FROM runs "
		                "WHERE status IN ('queued','running','paused'))", "");
	if (!rc)
		rc = db_exec(d, "UPDATE items SET status='failed', "
		                "error='daemon stopped while the item ran' "
		                "WHERE status IN ('running','pending') AND run_id IN (SELECT id "
		                "FROM runs WHERE status IN ('queued','running','paused'))", "");
	if (!rc)
		rc = db_exec(d, "UPDATE steps_recorded SET status='skipped' WHERE status='pending' "
		                "AND run_id IN (SELECT id FROM runs WHERE status IN "
		                "('queued','running','paused'))", "");
	if (!rc)
		rc = db_exec(d, "UPDATE runs SET status='interrupted', finished=? "
		                "WHERE status IN ('queued','running','paused')", "d", util_now());
	if (rc)
		db_rollback(d);
	else
		rc = db_commit(d);
out:
	db_unlock(d);
	return rc;
}
