/*
 * db.c - the SQLite store. The schema is a list of migrations applied in
 * order inside a transaction; meta.schema_version records how far a store
 * has come, so an older store is upgraded in place at open and a newer one
 * is refused. WAL mode lets a reader never wait on the disk for a writer.
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
	struct cached_stmt cache[STMT_CACHE];
	size_t ncache;
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
};

#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

static int exec_sql(sqlite3 *c, const char *sql, char **err)
{
	char *msg = NULL;
	if (sqlite3_exec(c, sql, NULL, NULL, &msg) != SQLITE_OK) {
		if (err)
			*err = xasprintf("sqlite: %s", msg ? msg : "error");
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

static int migrate(sqlite3 *c, char **err)
{
	int rc = exec_sql(c, "CREATE TABLE IF NOT EXISTS meta("
	                     "key TEXT PRIMARY KEY, value TEXT)", err);
	if (rc < 0)
		return rc;
	sqlite3_stmt *st;
	int version = 0;
	if (sqlite3_prepare_v2(c, "SELECT value FROM meta WHERE key='schema_version'",
	                       -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			version = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
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
		else
			exec_sql(c, "ROLLBACK", NULL);
		free(set);
		if (rc)
			return rc;
	}
	return 0;
}

int db_open(db **out, const char *path, char **err)
{
	*out = NULL;
	*err = NULL;
	sqlite3 *c = NULL;
	int rc = 0;
	/* NOMUTEX: every use of the connection is serialized by d->lock. */
	if (sqlite3_open_v2(path, &c, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	                    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		*err = xasprintf("%s: %s", path, c ? sqlite3_errmsg(c) : "cannot open");
		rc = -EIO;
		goto fail;
	}
	sqlite3_busy_timeout(c, 5000);
	/* One daemon serves a store (main.c holds its flock), so SQLite may
	 * keep its file lock instead of taking it around every transaction. */
	rc = exec_sql(c, "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL;"
	                 "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;", err);
	if (!rc)
		rc = migrate(c, err);
	if (rc)
		goto fail;
	db *d = xcalloc(1, sizeof *d);
	d->conn = c;
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&d->lock, &a);
	pthread_mutexattr_destroy(&a);
	*out = d;
	return 0;
fail:
	sqlite3_close(c);
	return rc;
}

void db_close(db *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->ncache; i++) {
		sqlite3_finalize(d->cache[i].st);
		free((char *)d->cache[i].sql);
	}
	sqlite3_close(d->conn);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

void db_lock(db *d)
{
	pthread_mutex_lock(&d->lock);
}

void db_unlock(db *d)
{
	pthread_mutex_unlock(&d->lock);
}

static sqlite3_stmt *lend(db *d, const char *sql)
{
	struct cached_stmt *free_slot = NULL;
	for (size_t i = 0; i < d->ncache; i++) {
		struct cached_stmt *c = &d->cache[i];
		if (c->sql != sql && strcmp(c->sql, sql))
			continue;
		if (c->busy)
			break;
		c->busy = 1;
		return c->st;
	}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v3(d->conn, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
	                       NULL) != SQLITE_OK) {
		log_error("sqlite prepare: %s: %s", sqlite3_errmsg(d->conn), sql);
		return NULL;
	}
	if (d->ncache < STMT_CACHE) {
		free_slot = &d->cache[d->ncache++];
		free_slot->sql = xstrdup(sql);
		free_slot->st = st;
		free_slot->busy = 1;
	}
	return st;
}

void db_finish(db *d, sqlite3_stmt *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < d->ncache; i++)
		if (d->cache[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			d->cache[i].busy = 0;
			return;
		}
	sqlite3_finalize(st);
}

static sqlite3_stmt *prepare_v(db *d, const char *sql, const char *types, va_list ap)
{
	sqlite3_stmt *st = lend(d, sql);
	if (!st)
		return NULL;
	int i = 1;
	for (const char *t = types ? types : ""; *t; t++, i++) {
		switch (*t) {
		case 't': {
			const char *s = va_arg(ap, const char *);
			if (s)
				sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
			else
				sqlite3_bind_null(st, i);
			break;
		}
		case 'i':
			sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
			break;
		case 'd':
			sqlite3_bind_double(st, i, va_arg(ap, double));
			break;
		default:
			sqlite3_bind_null(st, i);
		}
	}
	return st;
}

sqlite3_stmt *db_prepare(db *d, const char *sql, const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	sqlite3_stmt *st = prepare_v(d, sql, types, ap);
	va_end(ap);
	return st;
}

int db_exec(db *d, const char *sql, const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	db_lock(d);
	sqlite3_stmt *st = prepare_v(d, sql, types, ap);
	int rc = -EIO;
	if (st) {
		int s = sqlite3_step(st);
		if (s == SQLITE_DONE || s == SQLITE_ROW)
			rc = 0;
		else
			log_error("sqlite: %s: %s", sqlite3_errmsg(d->conn), sql);
		db_finish(d, st);
	}
	db_unlock(d);
	va_end(ap);
	return rc;
}

int64_t db_int(db *d, int64_t dflt, const char *sql, const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	sqlite3_stmt *st = prepare_v(d, sql, types, ap);
	va_end(ap);
	int64_t v = dflt;
	if (st && sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(st, 0);
	db_finish(d, st);
	return v;
}

char *db_text(db *d, const char *sql, const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	sqlite3_stmt *st = prepare_v(d, sql, types, ap);
	va_end(ap);
	char *v = NULL;
	if (st && sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = xstrdup((const char *)sqlite3_column_text(st, 0));
	db_finish(d, st);
	return v;
}

int db_begin(db *d)
{
	if (d->tx_depth++)
		return 0;
	return exec_sql(d->conn, "BEGIN IMMEDIATE", NULL);
}

int db_commit(db *d)
{
	if (!d->tx_depth || --d->tx_depth)
		return 0;
	char *err = NULL;
	int rc = exec_sql(d->conn, "COMMIT", &err);
	if (rc) {
		log_error("%s", err);
		free(err);
	}
	return rc;
}

void db_rollback(db *d)
{
	if (d->tx_depth && !--d->tx_depth)
		exec_sql(d->conn, "ROLLBACK", NULL);
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
	db_lock(d);
	sqlite3_stmt *st = db_prepare(d, "SELECT run_id, name, pid FROM steps WHERE "
	                              "status='running' AND pid IS NOT NULL", "");
	while (st && stray && sqlite3_step(st) == SQLITE_ROW)
		stray(sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
		      sqlite3_column_int(st, 2), arg);
	db_finish(d, st);
	db_begin(d);
	int rc = db_exec(d, "UPDATE steps SET status='failed', "
	                    "error='daemon stopped while the step ran' "
	                    "WHERE status='running' AND run_id IN (SELECT id FROM runs "
	                    "WHERE status IN ('queued','running'))", "");
	if (!rc)
		rc = db_exec(d, "UPDATE steps SET status='skipped' WHERE status='pending' "
		                "AND run_id IN (SELECT id FROM runs WHERE status IN "
		                "('queued','running'))", "");
	if (!rc)
		rc = db_exec(d, "UPDATE runs SET status='interrupted', finished=? "
		                "WHERE status IN ('queued','running')", "d", util_now());
	if (rc)
		db_rollback(d);
	else
		rc = db_commit(d);
	db_unlock(d);
	return rc;
}
