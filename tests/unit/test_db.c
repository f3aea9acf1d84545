/* test_db.c - the SQLite store: migrations, versions, recovery. */
#include <stdlib.h>
#include <unistd.h>

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
	CHECK_STR(v, "4");
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

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	RUN(fresh_store_is_at_latest_schema);
	RUN(newer_store_is_refused);
	RUN(binding_types);
	RUN(recover_marks_unfinished_runs_interrupted);
	util_rm_rf(dir);
	return CHECK_DONE();
}
