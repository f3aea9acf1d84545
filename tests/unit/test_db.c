/* test_db.c - the SQLite store: migrations, versions, recovery, error
 * translation and sticky nested transactions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "flowyfs/db.h"
#include "flowyfs/util.h"

static char dir[] = "/tmp/flowyfs-test-db-XXXXXX";

static char *dbpath(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

TEST(fresh_store_is_at_latest_schema)
{
	char *p = dbpath("a.db"), *err = NULL;
	db *d = NULL;
	CHECK_INT(db_open(&d, p, &err), 0);
	db_lock(d);
	char *v = db_text(d, "SELECT value FROM meta WHERE key='schema_version'", "");
	db_unlock(d);
	char *want = xasprintf("%d", DB_SCHEMA_VERSION);
	CHECK_STR(v, want);
	free(want);
	free(v);
	db_close(d);
	/* Reopening does not migrate again. */
	CHECK_INT(db_open(&d, p, &err), 0);
	db_close(d);
	free(p);
}

TEST(newer_store_is_refused)
{
	char *p = dbpath("b.db"), *err = NULL;
	db *d = NULL;
	CHECK_INT(db_open(&d, p, &err), 0);
	CHECK_INT(db_exec(d, "UPDATE meta SET value='99' WHERE key='schema_version'", ""), 0);
	db_close(d);
	CHECK_INT(db_open(&d, p, &err), -EPROTO);
	CHECK_CONTAINS(err, "schema version 99 is newer");
	free(err);
	free(p);
}

TEST(binding_types)
{
	char *p = dbpath("c.db"), *err = NULL;
	db *d = NULL;
	CHECK_INT(db_open(&d, p, &err), 0);
	int64_t id = 0;
	CHECK_INT(db_run_create(d, &id, "demo", "ctl"), 0);
	CHECK_INT(id, 1);
	CHECK_INT(db_run_create(d, &id, "demo", "ctl"), 0);
	CHECK_INT(id, 2);
	db_lock(d);
	CHECK_INT(db_int(d, -1, "SELECT count(*) FROM runs WHERE pipeline=?", "t", "demo"), 2);
	CHECK_INT(db_int(d, -1, "SELECT ? + ?", "ii", (int64_t)40, (int64_t)2), 42);
	CHECK_INT(db_int(d, -1, "SELECT NULL", ""), -1);
	char *s = db_text(d, "SELECT status FROM runs WHERE id=?", "i", (int64_t)1);
	CHECK_STR(s, "queued");
	free(s);
	db_unlock(d);
	CHECK_INT(db_exec(d, "SELECT * FROM no_such_table", ""), -EIO);
	db_close(d);
	free(p);
}

static int strays, stray_pid;
static char stray_step[16];

static void note_stray(int64_t run, const char *step, int pid, void *arg)
{
	strays++;
	stray_pid = pid;
	snprintf(stray_step, sizeof stray_step, "%s", step);
}

TEST(recover_marks_unfinished_runs_interrupted)
{
	char *p = dbpath("d.db"), *err = NULL;
	db *d = NULL;
	CHECK_INT(db_open(&d, p, &err), 0);
	int64_t id;
	db_run_create(d, &id, "demo", "ctl");
	db_exec(d, "UPDATE runs SET status='running' WHERE id=?", "i", id);
	db_exec(d, "INSERT INTO steps(run_id, name, status, pid) VALUES(?, 'a', 'running', 4242)", "i", id);
	db_exec(d, "INSERT INTO steps(run_id, name, status) VALUES(?, 'b', 'pending')", "i", id);
	db_exec(d, "INSERT INTO steps(run_id, name, status) VALUES(?, 'c', 'succeeded')", "i", id);
	CHECK_INT(db_recover(d, note_stray, NULL), 0);
	CHECK_INT(strays, 1);
	CHECK_INT(stray_pid, 4242);
	CHECK_STR(stray_step, "a");
	db_lock(d);
	char *s = db_text(d, "SELECT status FROM runs WHERE id=?", "i", id);
	char *a = db_text(d, "SELECT status FROM steps WHERE name='a'", "");
	char *b = db_text(d, "SELECT status FROM steps WHERE name='b'", "");
	char *c = db_text(d, "SELECT status FROM steps WHERE name='c'", "");
	db_unlock(d);
	CHECK_STR(s, "interrupted");
	CHECK_STR(a, "failed");
	CHECK_STR(b, "skipped");
	CHECK_STR(c, "succeeded");
	free(s); free(a); free(b); free(c);
	db_close(d);
	free(p);
}

/* A fresh store with a table t(k INTEGER PRIMARY KEY). */
static db *open_t(const char *name)
{
	char *p = dbpath(name), *err = NULL;
	db *d = NULL;

	if (db_open(&d, p, &err) || db_exec(d, "CREATE TABLE t(k INTEGER PRIMARY KEY)", "")) {
		fprintf(stderr, "open %s: %s\n", p, err ? err : "?");
		exit(2);
	}
	free(p);
	return d;
}

static int64_t rows(db *d, const char *table)
{
	char *sql = xasprintf("SELECT count(*) FROM %s", table);
	int64_t n = db_int(d, -1, sql, "");

	free(sql);
	return n;
}

TEST(nested_failure_rolls_back_everything)
{
	db *d = open_t("e.db");

	db_lock(d);
	CHECK_INT(db_begin(d), 0);
	CHECK_INT(db_exec(d, "INSERT INTO t VALUES(1)", ""), 0);
	CHECK_INT(db_begin(d), 0);
	CHECK_INT(db_exec(d, "INSERT INTO t VALUES(2)", ""), 0);
	CHECK_INT(db_exec(d, "INSERT INTO t VALUES(1)", ""), -EEXIST);
	CHECK_CONTAINS(db_errmsg(d), "UNIQUE constraint failed: t.k");
	/* Doomed: nothing more runs, every level reports it. */
	CHECK_INT(db_exec(d, "INSERT INTO t VALUES(3)", ""), -EEXIST);
	CHECK_INT(db_begin(d), -EEXIST);
	CHECK_INT(db_commit(d), -EEXIST);
	CHECK_INT(db_commit(d), -EEXIST);
	CHECK_INT(db_commit(d), -EEXIST);
	CHECK_INT(rows(d, "t"), 0);
	/* The next transaction starts clean. */
	CHECK_INT(db_begin(d), 0);
	CHECK_INT(db_exec(d, "INSERT INTO t VALUES(4)", ""), 0);
	CHECK_INT(db_commit(d), 0);
	CHECK_INT(rows(d, "t"), 1);
	db_unlock(d);
	db_close(d);
}

TEST(inner_rollback_fails_the_outer_commit)
{
	db *d = open_t("f.db");

	db_lock(d);
	CHECK_INT(db_begin(d), 0);
	CHECK_INT(db_exec(d, "INSERT INTO t VALUES(1)", ""), 0);
	CHECK_INT(db_begin(d), 0);
	CHECK_INT(db_exec(d, "INSERT INTO t VALUES(2)", ""), 0);
	db_rollback(d);
	CHECK_INT(db_exec(d, "INSERT INTO t VALUES(3)", ""), -ECANCELED);
	CHECK_INT(db_commit(d), -ECANCELED);
	CHECK_STR(db_errmsg(d), "a nested transaction was rolled back");
	CHECK_INT(rows(d, "t"), 0);
	/* An outermost rollback is just a rollback. */
	CHECK_INT(db_begin(d), 0);
	CHECK_INT(db_exec(d, "INSERT INTO t VALUES(5)", ""), 0);
	db_rollback(d);
	CHECK_INT(rows(d, "t"), 0);
	/* Unbalanced ends are refused, not miscounted. */
	CHECK_INT(db_commit(d), -EINVAL);
	db_rollback(d);
	CHECK_INT(db_begin(d), 0);
	CHECK_INT(db_exec(d, "INSERT INTO t VALUES(6)", ""), 0);
	CHECK_INT(db_commit(d), 0);
	CHECK_INT(rows(d, "t"), 1);
	db_unlock(d);
	db_close(d);
}

TEST(full_disk_is_enospc)
{
	db *d = open_t("g.db");
	int64_t pages = 0;

	db_lock(d);
	CHECK_INT(db_exec(d, "CREATE TABLE big(b BLOB)", ""), 0);
	CHECK_INT(db_get_int(d, &pages, "PRAGMA page_count", ""), 0);
	char *limit = xasprintf("PRAGMA max_page_count=%lld", (long long)pages + 4);
	CHECK_INT(db_get_int(d, &pages, limit, ""), 0);
	free(limit);
	/* Outside a transaction. */
	CHECK_INT(db_exec(d, "INSERT INTO big VALUES(zeroblob(1000000))", ""), -ENOSPC);
	CHECK_CONTAINS(db_errmsg(d), "full");
	/* Inside one: the small row before it is not kept either. */
	CHECK_INT(db_begin(d), 0);
	CHECK_INT(db_exec(d, "INSERT INTO t VALUES(1)", ""), 0);
	CHECK_INT(db_exec(d, "INSERT INTO big VALUES(zeroblob(1000000))", ""), -ENOSPC);
	CHECK_INT(db_commit(d), -ENOSPC);
	CHECK_INT(rows(d, "t"), 0);
	CHECK_INT(rows(d, "big"), 0);
	db_unlock(d);
	db_close(d);
}

TEST(failed_commit_is_rolled_back)
{
	db *d = open_t("h.db");

	db_lock(d);
	CHECK_INT(db_exec(d, "CREATE TABLE child(p INTEGER REFERENCES t(k) "
	                     "DEFERRABLE INITIALLY DEFERRED)", ""), 0);
	/* A deferred foreign key is checked by COMMIT, which then fails and
	 * leaves the transaction open: db_commit must end it. */
	CHECK_INT(db_begin(d), 0);
	CHECK_INT(db_exec(d, "INSERT INTO t VALUES(1)", ""), 0);
	CHECK_INT(db_exec(d, "INSERT INTO child VALUES(42)", ""), 0);
	CHECK_INT(db_commit(d), -EEXIST);
	CHECK_CONTAINS(db_errmsg(d), "FOREIGN KEY constraint failed");
	CHECK_INT(rows(d, "t"), 0);
	CHECK_INT(rows(d, "child"), 0);
	CHECK_INT(db_begin(d), 0);
	CHECK_INT(db_exec(d, "INSERT INTO t VALUES(42)", ""), 0);
	CHECK_INT(db_exec(d, "INSERT INTO child VALUES(42)", ""), 0);
	CHECK_INT(db_commit(d), 0);
	CHECK_INT(rows(d, "child"), 1);
	db_unlock(d);
	db_close(d);
}

TEST(statements_after_sqlite_rolled_back_do_not_autocommit)
{
	db *d = open_t("i.db");
	sqlite3_stmt *st;

	db_lock(d);
	CHECK_INT(db_exec(d, "INSERT INTO t VALUES(1)", ""), 0);
	CHECK_INT(db_begin(d), 0);
	CHECK_INT(db_begin(d), 0);
	CHECK_INT(db_exec(d, "INSERT INTO t VALUES(2)", ""), 0);
	/* OR ROLLBACK: SQLite ends the transaction itself. */
	CHECK_INT(db_exec(d, "INSERT OR ROLLBACK INTO t VALUES(1)", ""), -EEXIST);
	CHECK_INT(db_commit(d), -EEXIST);
	/* A caller stepping a statement itself, still inside the nest. */
	st = db_prepare(d, "INSERT INTO t VALUES(3)", "");
	CHECK(st != NULL);
	CHECK_INT(sqlite3_step(st), SQLITE_DONE);
	db_finish(d, st);
	CHECK_INT(db_commit(d), -EEXIST);
	CHECK_INT(rows(d, "t"), 1);
	db_unlock(d);
	db_close(d);
}

TEST(step_errors_seen_by_db_finish_doom_the_transaction)
{
	db *d = open_t("j.db");
	sqlite3_stmt *st;

	db_lock(d);
	CHECK_INT(db_begin(d), 0);
	CHECK_INT(db_exec(d, "INSERT INTO t VALUES(1)", ""), 0);
	st = db_prepare(d, "INSERT INTO t VALUES(?)", "i", (int64_t)1);
	CHECK(st != NULL);
	CHECK_INT(sqlite3_step(st), SQLITE_CONSTRAINT);
	db_finish(d, st);
	CHECK_INT(db_commit(d), -EEXIST);
	CHECK_INT(rows(d, "t"), 0);
	/* A statement that cannot be prepared dooms it too. */
	CHECK_INT(db_begin(d), 0);
	CHECK(db_prepare(d, "SELECT * FROM nowhere", "") == NULL);
	CHECK_CONTAINS(db_errmsg(d), "no such table: nowhere");
	CHECK_INT(db_commit(d), -EIO);
	db_unlock(d);
	db_close(d);
}

TEST(get_int_and_text_tell_errors_from_no_row)
{
	db *d = open_t("k.db");
	int64_t v = 7;
	char *s = (char *)"unset";

	db_lock(d);
	CHECK_INT(db_exec(d, "INSERT INTO t VALUES(5)", ""), 0);
	CHECK_INT(db_get_int(d, &v, "SELECT k FROM t WHERE k=?", "i", (int64_t)5), 0);
	CHECK_INT(v, 5);
	v = 7;
	CHECK_INT(db_get_int(d, &v, "SELECT k FROM t WHERE k=?", "i", (int64_t)6), 1);
	CHECK_INT(v, 7);
	CHECK_INT(db_get_int(d, &v, "SELECT NULL", ""), 1);
	CHECK_INT(v, 7);
	CHECK_INT(db_get_int(d, &v, "SELECT k FROM nowhere", ""), -EIO);
	CHECK_INT(v, 7);
	CHECK_INT(db_get_int(d, &v, "SELECT ?", "ii", (int64_t)1, (int64_t)2), -EIO);
	CHECK_CONTAINS(db_errmsg(d), "column index out of range");
	CHECK_INT(db_get_text(d, &s, "SELECT 'x' || k FROM t", ""), 0);
	CHECK_STR(s, "x5");
	free(s);
	CHECK_INT(db_get_text(d, &s, "SELECT k FROM t WHERE k=6", ""), 1);
	CHECK(s == NULL);
	CHECK_INT(db_get_text(d, &s, "SELECT k FROM nowhere", ""), -EIO);
	CHECK(s == NULL);
	CHECK_INT(db_get_text(d, &s, "   ", ""), -EINVAL);
	CHECK_STR(db_errmsg(d), "empty statement");
	/* The shorthands still give the default for both. */
	CHECK_INT(db_int(d, -1, "SELECT k FROM nowhere", ""), -1);
	CHECK(db_text(d, "SELECT k FROM nowhere", "") == NULL);
	db_unlock(d);
	db_close(d);
}

TEST(sqlite_codes_become_errno)
{
	CHECK_INT(db_errno(SQLITE_OK), 0);
	CHECK_INT(db_errno(SQLITE_DONE), 0);
	CHECK_INT(db_errno(SQLITE_FULL), -ENOSPC);
	CHECK_INT(db_errno(SQLITE_BUSY), -EBUSY);
	CHECK_INT(db_errno(SQLITE_BUSY_SNAPSHOT), -EBUSY);
	CHECK_INT(db_errno(SQLITE_LOCKED), -EBUSY);
	CHECK_INT(db_errno(SQLITE_NOMEM), -ENOMEM);
	CHECK_INT(db_errno(SQLITE_READONLY), -EROFS);
	CHECK_INT(db_errno(SQLITE_CONSTRAINT_UNIQUE), -EEXIST);
	CHECK_INT(db_errno(SQLITE_IOERR_WRITE), -EIO);
	CHECK_INT(db_errno(SQLITE_CORRUPT), -EIO);
	CHECK_INT(db_errno(SQLITE_ERROR), -EIO);
}

TEST(generation_moves_with_every_change)
{
	char *p = dbpath("gen.db"), *err = NULL;
	db *d = NULL;
	CHECK_INT(db_open(&d, p, &err), 0);
	uint64_t g0 = db_generation(d);
	db_lock(d);
	CHECK_INT(db_int(d, -1, "SELECT count(*) FROM runs", ""), 0);
	db_unlock(d);
	CHECK_INT(db_generation(d), g0);            /* reading changes nothing */
	int64_t id = 0;
	CHECK_INT(db_run_create(d, &id, "demo", "ctl"), 0);
	uint64_t g1 = db_generation(d);
	CHECK(g1 > g0);
	CHECK_INT(db_exec(d, "UPDATE runs SET status='x' WHERE id=?", "i", (int64_t)99), 0);
	CHECK_INT(db_generation(d), g1);            /* no row matched */
	CHECK_INT(db_exec(d, "UPDATE runs SET status='x' WHERE id=?", "i", id), 0);
	uint64_t g2 = db_generation(d);
	CHECK(g2 > g1);
	/* A rolled-back change: the row is back as it was, the number moved. */
	db_lock(d);
	CHECK_INT(db_begin(d), 0);
	CHECK_INT(db_exec(d, "DELETE FROM runs WHERE id=?", "i", id), 0);
	db_rollback(d);
	db_unlock(d);
	uint64_t g3 = db_generation(d);
	CHECK(g3 > g2);
	db_lock(d);
	CHECK_INT(db_int(d, -1, "SELECT count(*) FROM runs", ""), 1);
	db_unlock(d);
	db_close(d);
	free(p);
}

/* The plan SQLite chose for sql, its detail lines joined by "; ". */
static char *plan_of(db *d, const char *sql)
{
	char *q = xasprintf("EXPLAIN QUERY PLAN %s", sql);
	struct strbuf sb = {0};
	strbuf_puts(&sb, "");
	db_lock(d);
	sqlite3_stmt *st = db_prepare(d, q, "");
	while (st && sqlite3_step(st) == SQLITE_ROW)
		strbuf_printf(&sb, "%s; ", (const char *)sqlite3_column_text(st, 3));
	db_finish(d, st);
	db_unlock(d);
	free(q);
	return sb.buf;
}

/* A lookup that names the run reads its rows by the recorded tables' keys
 * through the derived views, not every run's rows of the step by name. */
TEST(derived_views_look_a_run_up_by_key)
{
	char *p = dbpath("plan.db"), *err = NULL;
	db *d = NULL;
	CHECK_INT(db_open(&d, p, &err), 0);
	char *pl = plan_of(d, "SELECT count(*) FROM steps WHERE run_id=7 AND name='train'");
	CHECK_CONTAINS(pl, "steps_recorded_1 (run_id=? AND name=?)");
	CHECK(!strstr(pl, "steps_name"));
	free(pl);
	pl = plan_of(d, "SELECT hash FROM step_io WHERE run_id=7 AND step='train' AND "
	                "dir='out' AND name='model'");
	CHECK_CONTAINS(pl, "step_io_recorded_1 (run_id=? AND step=? AND dir=? AND name=?)");
	free(pl);
	/* From the rows to their runs: by rowid or runs_same_as. */
	pl = plan_of(d, "SELECT run_id FROM step_io WHERE hash='ab' AND dir='in'");
	CHECK_CONTAINS(pl, "step_io_hash (hash=? AND dir=?)");
	CHECK(!strstr(pl, "SCAN"));
	free(pl);
	/* The last key of a step (a miss's reason): no sort of all its rows. */
	pl = plan_of(d, "SELECT s.key_parts FROM steps s JOIN runs r ON r.id = s.run_id "
	                "WHERE r.pipeline='p' AND s.name='train' AND s.key_parts IS NOT NULL "
	                "AND r.id<9 ORDER BY r.id DESC LIMIT 1");
	CHECK(!strstr(pl, "TEMP B-TREE"));
	free(pl);
	db_close(d);
	free(p);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	RUN(fresh_store_is_at_latest_schema);
	RUN(newer_store_is_refused);
	RUN(binding_types);
	RUN(recover_marks_unfinished_runs_interrupted);
	RUN(nested_failure_rolls_back_everything);
	RUN(inner_rollback_fails_the_outer_commit);
	RUN(full_disk_is_enospc);
	RUN(failed_commit_is_rolled_back);
	RUN(statements_after_sqlite_rolled_back_do_not_autocommit);
	RUN(step_errors_seen_by_db_finish_doom_the_transaction);
	RUN(get_int_and_text_tell_errors_from_no_row);
	RUN(sqlite_codes_become_errno);
	RUN(generation_moves_with_every_change);
	RUN(derived_views_look_a_run_up_by_key);
	util_rm_rf(dir);
	return CHECK_DONE();
}
