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

#define DB_SCHEMA_VERSION 4

/* Open (creating and migrating) the database at path. *err (malloc'd) says
 * what failed. */
int db_open(db **out, const char *path, char **err);
void db_close(db *d);

void db_lock(db *d);
void db_unlock(db *d);

/* Prepare sql (from a cache) and bind args per types. NULL on error
 * (logged). Lock held; hand the statement back with db_finish(). */
sqlite3_stmt *db_prepare(db *d, const char *sql, const char *types, ...);
void db_finish(db *d, sqlite3_stmt *st);
/* Run a statement that returns no rows; 0 or -EIO. Takes the lock. */
int db_exec(db *d, const char *sql, const char *types, ...);
/* First column of the first row as int64, or dflt. Lock held. */
int64_t db_int(db *d, int64_t dflt, const char *sql, const char *types, ...);
/* First column of the first row as malloc'd text, or NULL. Lock held. */
char *db_text(db *d, const char *sql, const char *types, ...);
/* Transactions (lock held by the caller). They nest: only the outermost
 * begin/commit reach SQLite, so a caller can batch work that commits on
 * its own elsewhere. A rollback inside a nest rolls back at the outermost
 * level. */
int db_begin(db *d);
int db_commit(db *d);
void db_rollback(db *d);

/* Runs and steps. */
int db_run_create(db *d, int64_t *out_id, const char *pipeline,
                  const char *trigger);
/* Runs left queued/running by a daemon that died become interrupted; the
 * process groups of their running steps are handed to stray(run, step,
 * pid, arg) first, so they can be stopped. */
int db_recover(db *d, void (*stray)(int64_t run, const char *step, int pid, void *arg),
               void *arg);

#endif
