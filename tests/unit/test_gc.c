/* test_gc.c - garbage collection without a mount: the mark set (trees
 * mark what they hold, the empty content as blob and tree), the sweep
 * (unmarked and old objects go, new ones are spared, dry runs remove
 * nothing, bytes as st_blocks), the choice of runs from the database
 * (last N, age, and the runs always kept), forget's refusals, and the
 * .ctl command parser. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "store_check.h"
#include "flowyfs/cas.h"
#include "flowyfs/db.h"
#include "flowyfs/gc.h"
#include "flowyfs/util.h"

static char base[128];
static int seq;
static struct flowy F;

static void store_open(void)
{
	char *err = NULL;
	memset(&F, 0, sizeof F);
	F.store = xasprintf("%s/s%d", base, seq++);
	F.pipelines_dir = xasprintf("%s/pipelines", F.store);
	F.runs_dir = xasprintf("%s/runs", F.store);
	char *objects = xasprintf("%s/objects", F.store), *dbp = xasprintf("%s/db", F.store);
	if (util_mkdir_p(F.pipelines_dir, 0755) < 0 || util_mkdir_p(F.runs_dir, 0755) < 0 ||
	    cas_open(&F.cas, objects) < 0 || db_open(&F.db, dbp, &err) < 0) {
		fprintf(stderr, "store: %s\n", err ? err : "?");
		exit(1);
	}
	free(dbp);
	free(objects);
}

static void store_close(void)
{
	db_close(F.db);
	cas_close(F.cas);
	free(F.runs_dir);
	free(F.pipelines_dir);
	free(F.store);
}

/* Set the mtime of every object to an hour ago (so a sweep may take it). */
static void age_objects(void)
{
	char *cmd = xasprintf("find '%s/objects' -type f -exec touch -d '-1 hour' {} +", F.store);
	if (system(cmd) != 0)
		abort();
	free(cmd);
}

static void put(char hex[65], const char *text)
{
	if (cas_put_buf(F.cas, hex, text, strlen(text)) < 0)
		abort();
}

TEST(mark_follows_trees_and_sweep_takes_the_rest)
{
	store_open();
	char a[65], b[65], c[65], sub[65], top[65], empty[65];
	put(a, "alpha");
	put(b, "beta");
	put(c, "gamma: nobody refers to me");
	put(empty, "");
	struct cas_entry se[] = {{'f', 0644, "", 4, "b"}, {'d', 0755, "", 0, "e"}};
	memcpy(se[0].hex, b, 65);
	memcpy(se[1].hex, empty, 65); /* the empty tree */
	struct cas_entry e0 = {0};
	CHECK_INT(cas_tree_put(F.cas, se[1].hex, &e0, 0), 0);
	CHECK_STR(se[1].hex, empty);
	CHECK_INT(cas_tree_put(F.cas, sub, se, 2), 0);
	struct cas_entry te[] = {{'f', 0644, "", 5, "a"}, {'d', 0755, "", 0, "sub"}};
	memcpy(te[0].hex, a, 65);
	memcpy(te[1].hex, sub, 65);
	CHECK_INT(cas_tree_put(F.cas, top, te, 2), 0);

	struct cas_mark *m = cas_mark_new();
	CHECK_INT(cas_mark_add(F.cas, m, top, 0), 0);
	CHECK(cas_mark_has(m, top, 1) && cas_mark_has(m, sub, 1) && cas_mark_has(m, a, 0) &&
	      cas_mark_has(m, b, 0) && cas_mark_has(m, empty, 1));
	CHECK(!cas_mark_has(m, c, 0) && !cas_mark_has(m, empty, 0) && !cas_mark_has(m, a, 1));
	CHECK_INT(cas_mark_count(m), 5);
	/* a root that is not stored marks nothing; a bad name is refused */
	CHECK_INT(cas_mark_add(F.cas, m, "1111111111111111111111111111111111111111111111111111111111111111", 0), 0);
	CHECK_INT(cas_mark_add(F.cas, m, "nope", 0), -EINVAL);
	CHECK_INT(cas_mark_count(m), 5);

	/* all new: nothing goes */
	struct cas_sweep sw = {0};
	CHECK_INT(cas_sweep(F.cas, m, util_now() - 60, 0, &sw), 0);
	CHECK_INT(sw.objects, 0);
	CHECK_INT(sw.kept, 5);
	CHECK_INT(sw.spared, 2); /* c and the empty blob */
	age_objects();
	struct stat st;
	char name[CAS_NAME_LEN + 64];
	cas_obj_name(name, c, "");
	char *cpath = xasprintf("%s/objects/%s", F.store, name);
	CHECK_INT(stat(cpath, &st), 0);
	uint64_t cbytes = (uint64_t)st.st_blocks * 512;
	cas_obj_name(name, empty, "");
	char *epath = xasprintf("%s/objects/%s", F.store, name);
	CHECK_INT(stat(epath, &st), 0);
	cbytes += (uint64_t)st.st_blocks * 512;
	memset(&sw, 0, sizeof sw);
	CHECK_INT(cas_sweep(F.cas, m, util_now(), 1, &sw), 0);
	CHECK_INT(sw.objects, 2);
	CHECK_INT(sw.bytes, cbytes);
	CHECK_INT(access(cpath, F_OK), 0); /* dry: still there */
	/* a put that finds its content stored makes it new again */
	char again[65];
	put(again, "gamma: nobody refers to me");
	memset(&sw, 0, sizeof sw);
	CHECK_INT(cas_sweep(F.cas, m, util_now() - 30, 0, &sw), 0);
	CHECK_INT(sw.objects, 1); /* the empty blob */
	CHECK_INT(sw.spared, 1);
	CHECK_INT(access(cpath, F_OK), 0);
	CHECK(access(epath, F_OK) < 0);
	age_objects();
	memset(&sw, 0, sizeof sw);
	CHECK_INT(cas_sweep(F.cas, m, util_now(), 0, &sw), 0);
	CHECK_INT(sw.objects, 1);
	CHECK(access(cpath, F_OK) < 0);
	struct cas_stat cs;
	CHECK_INT(cas_stat(F.cas, a, &cs), 0);
	CHECK_INT(cas_stat(F.cas, top, &cs), 0);
	CHECK_INT(cas_stat(F.cas, c, &cs), -ENOENT);
	free(epath);
	free(cpath);
	cas_mark_free(m);
	store_close();
}

/* A finished run of pipeline p with output "o" = text, ended `ago` s ago. */
static int64_t add_run(const char *p, const char *text, double ago, char hex[65])
{
	int64_t id = 0;
	put(hex, text);
	double t = util_now() - ago;
	if (db_exec(F.db, "INSERT INTO runs(pipeline, status, queued, started, finished) "
	            "VALUES(?, 'succeeded', ?, ?, ?)", "tddd", p, t, t, t) < 0 ||
	    db_get_int(F.db, &id, "SELECT max(id) FROM runs", "") != 0 ||
	    db_exec(F.db, "INSERT INTO step_io(run_id, step, dir, name, hash) "
	            "VALUES(?, 'mk', 'out', 'o', ?)", "it", id, hex) < 0 ||
	    db_exec(F.db, "INSERT OR IGNORE INTO artifacts(hash, kind, size, created) "
	            "VALUES(?, 'blob', 1, ?)", "td", hex, t) < 0)
		abort();
	char *dir = xasprintf("%s/%lld", F.runs_dir, (long long)id);
	char *log = xasprintf("%s/mk.log", dir);
	if (util_mkdir_p(dir, 0755) < 0 || util_put_file(log, "log\n", 4) < 0)
		abort();
	free(log);
	free(dir);
	return id;
}

static char *run_ids(void)
{
	return db_text(F.db, "SELECT coalesce(group_concat(id, ' '), '') FROM "
	               "(SELECT id FROM runs ORDER BY id)", "");
}

TEST(gc_keeps_the_last_n_the_young_and_the_runs_that_matter)
{
	store_open();
	char h[10][65];
	int64_t r1 = add_run("p", "p1", 7200, h[1]);  /* registry version */
	int64_t r2 = add_run("p", "p2", 7200, h[2]);  /* tagged keep */
	int64_t r3 = add_run("p", "p3", 7200, h[3]);  /* goes */
	int64_t r4 = add_run("p", "p4", 7200, h[4]);  /* latest */
	add_run("p", "p5", 60, h[5]);                  /* young */
	add_run("q", "q1", 7200, h[6]);                /* goes */
	add_run("q", "p3", 7200, h[7]);                /* goes; the same content as r3 */
	int64_t r8 = add_run("q", "live", 7200, h[8]); /* running: the last of q */
	CHECK_INT(r8, 8);
	CHECK_INT(db_exec(F.db, "UPDATE runs SET status='running', snapshot_run=id, queued=? "
	                  "WHERE id=?", "di", util_now() - 60, r8), 0);
	CHECK_INT(db_exec(F.db, "INSERT INTO registry_versions(model, version, hash, run_id, "
	                  "created) VALUES('clf', 1, ?, ?, 0)", "ti", h[1], r1), 0);
	CHECK_INT(db_exec(F.db, "UPDATE runs SET tags='x\nkeep\n' WHERE id=?", "i", r2), 0);
	CHECK_INT(db_exec(F.db, "INSERT INTO latest VALUES('p', 'o', ?, ?)", "ti", h[4], r4), 0);
	age_objects();
	char orphan[65];
	put(orphan, "an object no row names");
	age_objects();

	struct gc_opts o;
	char *why = NULL;
	CHECK_INT(gc_parse("gc keep=1 older-than=1h dry-run", &o, &why), 0);
	struct gc_result res;
	CHECK_INT(gc_execute(&F, &o, &res, &why), 0);
	char *ids = gc_ids_text(res.runs, res.nruns);
	CHECK_STR(ids, "3,6-7");
	free(ids);
	CHECK_INT(res.objects, 3); /* p3 (of r3 and r7), q1 and the orphan */
	gc_result_release(&res);
	char *left = run_ids();
	CHECK_STR(left, "1 2 3 4 5 6 7 8");
	free(left);

	CHECK_INT(gc_parse("gc keep=1 older-than=1h", &o, &why), 0);
	CHECK_INT(gc_execute(&F, &o, &res, &why), 0);
	CHECK_INT(res.nruns, 3);
	CHECK_INT(res.objects, 3);
	CHECK(res.bytes >= 3 * 512);
	gc_result_release(&res);
	left = run_ids();
	CHECK_STR(left, "1 2 4 5 8");
	free(left);
	struct cas_stat cs;
	CHECK_INT(cas_stat(F.cas, h[3], &cs), -ENOENT);
	CHECK_INT(cas_stat(F.cas, orphan, &cs), -ENOENT);
	for (int k = 1; k <= 8; k++)
		if (k != 3 && k != 6 && k != 7)
			CHECK_INT(cas_stat(F.cas, h[k], &cs), 0);
	char *d3 = xasprintf("%s/%lld", F.runs_dir, (long long)r3);
	CHECK(access(d3, F_OK) < 0);
	free(d3);
	CHECK_INT(db_int(F.db, -1, "SELECT count(*) FROM artifacts WHERE hash=?", "t", h[3]), 0);
	char *log = db_text(F.db, "SELECT group_concat(command || '|' || runs || '|' || run_ids "
	                    "|| '|' || objects, ';') FROM gc_log", "");
	CHECK_STR(log, "gc keep=1 older-than=1h dry-run|3|3,6-7|3;gc keep=1 older-than=1h|3|3,6-7|3");
	free(log);

	/* forget: refused while the pipeline exists or runs, or is unknown */
	CHECK_INT(gc_parse("forget q", &o, &why), 0);
	CHECK_INT(gc_execute(&F, &o, &res, &why), -EBUSY);
	CHECK_STR(why, "forget q: run 8 of it is still queued or running");
	free(why);
	CHECK_INT(db_exec(F.db, "UPDATE runs SET status='failed' WHERE id=?", "i", r8), 0);
	char *pdir = xasprintf("%s/q", F.pipelines_dir);
	CHECK_INT(mkdir(pdir, 0755), 0);
	CHECK_INT(gc_execute(&F, &o, &res, &why), -EEXIST);
	free(why);
	CHECK_INT(rmdir(pdir), 0);
	free(pdir);
	CHECK_INT(gc_execute(&F, &o, &res, &why), 0);
	CHECK_INT(res.nruns, 1);
	gc_result_release(&res);
	left = run_ids();
	CHECK_STR(left, "1 2 4 5");
	free(left);
	CHECK_INT(gc_execute(&F, &o, &res, &why), -ENOENT);
	CHECK_STR(why, "forget q: nothing of that pipeline is stored");
	free(why);
	store_close();
}

TEST(a_snapshot_later_runs_share_moves_to_the_oldest_of_them)
{
	store_open();
	char h1[65], h2[65], h3[65];
	int64_t r1 = add_run("p", "a", 7200, h1), r2 = add_run("p", "b", 7200, h2);
	int64_t r3 = add_run("p", "c", 7200, h3);
	CHECK_INT(db_exec(F.db, "UPDATE runs SET snapshot_run=? WHERE pipeline='p'", "i", r1), 0);
	char *snap = xasprintf("%s/%lld/snapshot", F.runs_dir, (long long)r1);
	char *file = xasprintf("%s/s.json", snap);
	CHECK_INT(util_mkdir_p(snap, 0755), 0);
	CHECK_INT(util_put_file(file, "{}\n", 3), 0);
	CHECK_INT(db_exec(F.db, "INSERT INTO latest VALUES('p', 'o', ?, ?)", "ti", h3, r3), 0);
	struct gc_opts o;
	struct gc_result res;
	char *why = NULL;
	CHECK_INT(gc_parse("gc keep=1 older-than=0", &o, &why), 0);
	CHECK_INT(gc_execute(&F, &o, &res, &why), 0);
	char *ids = gc_ids_text(res.runs, res.nruns);
	CHECK_STR(ids, "1-2");
	free(ids);
	gc_result_release(&res);
	CHECK_INT(db_int(F.db, 0, "SELECT snapshot_run FROM runs WHERE id=?", "i", r3), r3);
	char *moved = xasprintf("%s/%lld/snapshot/s.json", F.runs_dir, (long long)r3);
	char *text = NULL;
	CHECK_INT(util_read_file(moved, &text, NULL), 0);
	CHECK_STR(text, "{}\n");
	CHECK(access(file, F_OK) < 0);
	free(text);
	free(moved);
	free(file);
	free(snap);
	(void)r2;
	store_close();
}

TEST(commands_parse_or_say_why)
{
	struct gc_opts o;
	char *why = NULL;
	CHECK_INT(gc_parse("gc", &o, &why), 0);
	CHECK_INT(o.cmd, GC_COLLECT);
	CHECK_INT(o.keep, GC_KEEP_DEFAULT);
	char *d = gc_describe(&o);
	CHECK_STR(d, "gc keep=10 older-than=30d");
	free(d);
	CHECK_INT(gc_parse("gc  older-than=36h keep=0\tdry-run", &o, &why), 0);
	CHECK_INT(o.keep, 0);
	CHECK(o.dry && o.older_than == 36 * 3600);
	d = gc_describe(&o);
	CHECK_STR(d, "gc keep=0 older-than=36h dry-run");
	free(d);
	CHECK_INT(gc_parse("gc older-than=90", &o, &why), 0);
	d = gc_describe(&o);
	CHECK_STR(d, "gc keep=10 older-than=90s");
	free(d);
	CHECK_INT(gc_parse("gc older-than=2w", &o, &why), 0);
	CHECK(o.older_than == 14 * 86400);
	CHECK_INT(gc_parse("forget old.p dry-run", &o, &why), 0);
	CHECK_INT(o.cmd, GC_FORGET);
	CHECK_STR(o.pipeline, "old.p");
	static const char *const bad[][2] = {
		{"gc keep=", "gc: keep=: not a count of runs (keep=N, N >= 0)"},
		{"gc keep=1x", "gc: keep=1x: not a count of runs (keep=N, N >= 0)"},
		{"gc older-than=d", "gc: older-than=d: not an age (a whole number with s, m, h, d or w, e.g. 30d)"},
		{"gc older-than=1dd", "gc: older-than=1dd: not an age (a whole number with s, m, h, d or w, e.g. 30d)"},
		{"gc forget", "gc: unknown argument \"forget\" (expected keep=N, older-than=AGE or dry-run)"},
		{"forget a keep=1", "forget: unknown argument \"keep=1\" (expected forget <pipeline> [dry-run])"},
		{"forget .hidden", "forget: \".hidden\" is not a pipeline name"},
		{"   ", "empty command (expected gc or forget)"},
		{"GC", "unknown command \"GC\" (expected gc or forget)"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		CHECK_INT(gc_parse(bad[i][0], &o, &why), -EINVAL);
		CHECK_STR(why, bad[i][1]);
		free(why);
	}
	int64_t ids[] = {1, 2, 3, 5, 7, 8};
	char *t = gc_ids_text(ids, 6);
	CHECK_STR(t, "1-3,5,7-8");
	free(t);
	t = gc_ids_text(ids, 0);
	CHECK_STR(t, "");
	free(t);
}

int main(void)
{
	if (scratch_make(base, sizeof base, NULL, 0, "gc") < 0)
		return 1;
	RUN(mark_follows_trees_and_sweep_takes_the_rest);
	RUN(gc_keeps_the_last_n_the_young_and_the_runs_that_matter);
	RUN(a_snapshot_later_runs_share_moves_to_the_oldest_of_them);
	RUN(commands_parse_or_say_why);
	scratch_remove(base);
	return CHECK_DONE();
}
