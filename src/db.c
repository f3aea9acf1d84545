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
	/* 7: lookups that went through every run of a pipeline: the last
	 * cache key of a step or item (a miss's reason, once per step run),
	 * the runs that keep a failed step's scratch (once per run), the runs
	 * sharing a snapshot (deleting a run). */
	"CREATE INDEX steps_name ON steps(name, run_id);"
	"CREATE INDEX items_step ON items(step, item, run_id);"
	"CREATE INDEX runs_kept ON runs(pipeline, id) WHERE kept_scratch=1;"
	"CREATE INDEX runs_snapshot ON runs(snapshot_run);",
};

#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

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

int db_recover(db *d, void (*stray)(int64_t run, const char *step, int pid, void *arg),
               void *arg)
{
	int rc = 0, s;

	db_lock(d);
	sqlite3_stmt *st = db_prepare(d, "SELECT run_id, name, pid FROM steps WHERE "
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
		rc = db_exec(d, "UPDATE steps SET status='failed', "
		                "error='daemon stopped while the step ran' "
		                "WHERE status='running' AND run_id IN (SELECT id FROM runs "
		                "WHERE status IN ('queued','running','paused'))", "");
	if (!rc)
		rc = db_exec(d, "UPDATE items SET status='failed', "
		                "error='daemon stopped while the item ran' "
		                "WHERE status IN ('running','pending') AND run_id IN (SELECT id "
		                "FROM runs WHERE status IN ('queued','running','paused'))", "");
	if (!rc)
		rc = db_exec(d, "UPDATE steps SET status='skipped' WHERE status='pending' "
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
