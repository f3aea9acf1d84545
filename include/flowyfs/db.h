/*
 * db.h - the SQLite store: schema, migrations, and the queries the
 * scheduler and the views share.
 *
 * One connection, serialized by a mutex: db_lock() ... db_unlock() around
 * a group of statements gives that group one consistent snapshot (no writer
 * can interleave). Statements are bound with a tiny type string:
 * 't' text, 'i' int64, 'd' double, 'n' null (no argument consumed).
 */
#ifndef FLOWYFS_DB_H
#define FLOWYFS_DB_H

#include <stdint.h>
#include <sqlite3.h>

typedef struct db db;

#define DB_SCHEMA_VERSION 10

/* Open (creating and migrating) the database at path. *err (malloc'd) says
 * what failed. */
int db_open(db **out, const char *path, char **err);
void db_close(db *d);

void db_lock(db *d);
void db_unlock(db *d);

/* A number that grows whenever the data may have changed: every row
 * inserted, updated or deleted through d and every rolled-back
 * transaction raise it. Equal numbers mean equal contents, so a view
 * rendered from the database alone may be kept until it moves. Statements
 * that change no row leave it. Takes the lock. */
uint64_t db_generation(db *d);

/* Errors. Every failed SQLite call is logged, its message kept for
 * db_errmsg(), and its code translated at this edge to -errno by
 * db_errno(): SQLITE_FULL -ENOSPC, SQLITE_BUSY and SQLITE_LOCKED -EBUSY,
 * SQLITE_NOMEM -ENOMEM, SQLITE_READONLY -EROFS, SQLITE_CONSTRAINT -EEXIST,
 * anything else -EIO. Inside a transaction a failure also dooms it (see
 * db_begin). */
int db_errno(int sqlite_rc);
/* The message of the last error on d ("" before any); valid until the
 * next call on d. Lock held. */
const char *db_errmsg(db *d);

/* Prepare sql (from a cache) and bind args per types. NULL on error
 * (logged, recorded as above). Lock held; hand the statement back with
 * db_finish(), which records an error its last sqlite3_step() hit (so a
 * caller stepping it itself dooms an open transaction like db_exec). */
sqlite3_stmt *db_prepare(db *d, const char *sql, const char *types, ...);
void db_finish(db *d, sqlite3_stmt *st);
/* Run a statement that returns no rows; 0 or -errno. Takes the lock. In a
 * doomed transaction it runs nothing and returns the transaction's error. */
int db_exec(db *d, const char *sql, const char *types, ...);
/* First column of the first row as int64 in *out: 0; 1 when there is no
 * row or the value is NULL (*out left as it was); -errno on error. Lock
 * held (taken again: it is recursive). */
int db_get_int(db *d, int64_t *out, const char *sql, const char *types, ...);
/* The same as malloc'd text in *out (the caller frees it; NULL unless 0). */
int db_get_text(db *d, char **out, const char *sql, const char *types, ...);
/* Shorthands that cannot tell an error from no row: the value, or dflt /
 * NULL for both (an error is still logged and dooms a transaction). */
int64_t db_int(db *d, int64_t dflt, const char *sql, const char *types, ...);
char *db_text(db *d, const char *sql, const char *types, ...);
/* Transactions (lock held by the caller). They nest: only the outermost
 * begin/commit reach SQLite, so a caller can batch work that commits on
 * its own elsewhere. They are sticky: a failed statement (db_exec,
 * db_get_*, db_int, db_text, db_prepare, a step seen by db_finish) or a
 * db_rollback inside a nest dooms the whole transaction; the outermost
 * db_commit then rolls it back and returns the first error (-ECANCELED
 * for a nested rollback), and inner commits return it too. A failed
 * COMMIT is rolled back and its error returned. End every db_begin with
 * db_commit or db_rollback, whatever it returned: db_begin returns 0, the
 * error of a failed BEGIN, or the doom of the transaction it nests in.
 * db_commit or db_rollback without a db_begin is logged (-EINVAL). */
int db_begin(db *d);
int db_commit(db *d);
void db_rollback(db *d);
/* Run fn(d, arg) in a transaction (nested in an open one, if any), the
 * lock taken: committed when fn returns 0, else rolled back; fn's error
 * or the commit's is returned. */
int db_transaction(db *d, int (*fn)(db *d, void *arg), void *arg);

/* Runs and steps. */
int db_run_create(db *d, int64_t *out_id, const char *pipeline,
                  const char *trigger);
/* A run recorded as the same as an earlier one (runs.same_as, the
 * all-cached re-check) has no step, step_io or metrics rows of its own,
 * nor a graph (runs.dag: DB_RUN_DAG reads it through same_as):
 * the views steps, step_io and metrics derive them from the rows of
 * run same_as, and writes through those views reach the *_recorded
 * tables. db_run_materialize copies the rows run id derives into the
 * recorded tables and clears its same_as (a no-op for other runs).
 * db_run_release, before run id's rows are deleted, does that for the
 * oldest run that is the same as id and makes the others the same as
 * it. db_runs_release does so for every run in the SQL set going (e.g.
 * "SELECT id FROM temp.gc_victims"), handing each one's rows to the oldest
 * run outside the set that repeats it. All take the lock, in a
 * transaction of their own (or the caller's); 0 or -errno. */
int db_run_materialize(db *d, int64_t id);
/* The expression for a run's graph in a query FROM runs: its own, or
 * that of the run it is the same as. */
#define DB_RUN_DAG "coalesce(dag, (SELECT s.dag FROM runs s WHERE s.id=runs.same_as))"
int db_run_release(db *d, int64_t id);
int db_runs_release(db *d, const char *going);
/* Runs left queued/running by a daemon that died become interrupted; the
 * process groups of their running steps are handed to stray(run, step,
 * pid, arg) first, so they can be stopped. */
int db_recover(db *d, void (*stray)(int64_t run, const char *step, int pid, void *arg),
               void *arg);

#endif
