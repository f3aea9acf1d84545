/*
 * test_engine.c - the engine's parts on a real store in a temp directory
 * (SQLite file, objects, history.git, real processes): the cache key and
 * its reasons, the run state machine driven by hand with a plain
 * fork/exec executor (the isolation of exec.c is tested through the
 * mount), and the queue and its control with the scheduler thread.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "proc_self.h"
#include "flowyfs/cachekey.h"
#include "flowyfs/catalog.h"
#include "flowyfs/db.h"
#include "flowyfs/events.h"
#include "flowyfs/executor.h"
#include "flowyfs/run.h"
#include "flowyfs/sched.h"
#include "flowyfs/snapshot.h"
#include "flowyfs/util.h"
#include "flowyfs/workspace.h"

static char *root;
static struct flowy F;

static void put(const char *pipeline, const char *name, const char *text)
{
	char *dir = xasprintf("%s/pipelines/%s", F.store, pipeline);
	char *path = xasprintf("%s/%s", dir, name);
	if (util_mkdir_p(dir, 0755) < 0 || util_put_file(path, text, strlen(text)) < 0)
		abort();
	catalog_changed(&F, pipeline);
	free(path);
	free(dir);
}

/* A store of its own for each test. */
static void store_open(const char *name)
{
	char *err = NULL;
	memset(&F, 0, sizeof F);
	F.store = xasprintf("%s/%s", root, name);
	F.mnt = xasprintf("%s/%s-mnt", root, name);
	F.pipelines_dir = xasprintf("%s/pipelines", F.store);
	F.runs_dir = xasprintf("%s/runs", F.store);
	F.scratch_dir = xasprintf("%s/%s-scratch/s", root, name);
	F.scratch_cover = xasprintf("%s/%s-scratch", root, name);
	F.jobs = 2;
	char *objects = xasprintf("%s/objects", F.store), *dbp = xasprintf("%s/db", F.store);
	char *git = xasprintf("%s/history.git", F.store);
	if (util_mkdir_p(F.pipelines_dir, 0755) < 0 || util_mkdir_p(F.runs_dir, 0755) < 0 ||
	    util_mkdir_p(F.mnt, 0755) < 0 || cas_open(&F.cas, objects) < 0 ||
	    db_open(&F.db, dbp, &err) < 0 || vcs_open(&F.vcs, git, &err) < 0)
		abort();
	F.catalog = catalog_new();
	F.events = events_new();
	F.snapshots = snapshot_cache_new();
	free(git);
	free(dbp);
	free(objects);
}

static void store_close(void)
{
	snapshot_cache_free(F.snapshots);
	events_free(F.events);
	catalog_free(F.catalog);
	vcs_close(F.vcs);
	db_close(F.db);
	cas_close(F.cas);
	free(F.scratch_cover);
	free(F.scratch_dir);
	free(F.runs_dir);
	free(F.pipelines_dir);
	free(F.mnt);
	free(F.store);
}

/* ---- a plain executor: fork, sh -c, a pidfd ----------------------------- */

static int most_fds; /* the most open_fds() seen at a start */

static int plain_start(struct run *r, size_t i, const struct exec_spec *spec, char **err)
{
	struct srun *s = &r->s[i];
	int fds = open_fds();
	if (fds > most_fds)
		most_fds = fds;
	pid_t pid = fork();
	if (pid < 0) {
		*err = xstrdup("fork failed");
		return -errno;
	}
	if (pid == 0) {
		setpgid(0, 0);
		dup2(spec->out_fd, 1);
		dup2(spec->out_fd, 2);
		int high[EXEC_MAX_FDS]; /* the step's files, as fds 3, 4, ... */
		for (size_t k = 0; k < spec->nfds; k++)
			high[k] = fcntl(spec->fds[k], F_DUPFD, 100);
		for (size_t k = 0; k < spec->nfds; k++)
			if (high[k] < 0 || dup2(high[k], 3 + (int)k) < 0)
				_exit(125);
		if (chdir(spec->cwd) < 0)
			_exit(126);
		execle("/bin/sh", "sh", "-c", spec->cmd, (char *)NULL, spec->envp);
		_exit(127);
	}
	s->proc.pid = pid;
	s->proc.pidfd = (int)syscall(434 /* pidfd_open */, pid, 0);
	return s->proc.pidfd < 0 ? -errno : 0;
}

static int plain_fd(const struct run *r, size_t i)
{
	return r->s[i].proc.pidfd;
}

static void plain_signal(struct run *r, size_t i, int sig)
{
	kill(-r->s[i].proc.pid, sig);
}

static int plain_reap(struct run *r, size_t i)
{
	int st = 0;
	waitpid(r->s[i].proc.pid, &st, 0);
	close(r->s[i].proc.pidfd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int plain_prepare(struct run *r, size_t i, char **err)
{
	int rc = workspace_prepare(r, i, NULL);
	if (rc < 0)
		*err = xstrdup("cannot prepare scratch");
	return rc;
}

static const struct executor plain = {
	.name = "plain", .prepare = plain_prepare, .start = plain_start, .fd = plain_fd,
	.signal = plain_signal, .reap = plain_reap, .remote = 0,
};

/* Capture a run of pipeline and drive it to its end with `slots` slots;
 * *max_running gets the most processes seen at once. Returns its id. */
static int64_t drive(const char *pipeline, const struct run_request *req0, int slots,
                     size_t *max_running)
{
	struct run_request req = req0 ? *req0 : (struct run_request){0};
	req.pipeline = pipeline;
	req.trigger = req.trigger ? req.trigger : "test";
	int64_t id;
	char *why = NULL;
	int refused = 0;
	if (db_run_create(F.db, &id, pipeline, "test") < 0)
		return -1;
	static int stop;
	struct run *r = run_capture(&F, id, &req, &stop, &why, &refused);
	if (!r) {
		fprintf(stderr, "  capture: %s\n", why);
		free(why);
		return -refused;
	}
	for (size_t i = 0; i < r->nunits; i++)
		r->s[i].exec = &plain;
	if (max_running)
		*max_running = 0;
	while (!run_settled(r)) {
		int free_slots = slots - (int)r->running;
		run_advance(r, &free_slots);
		for (size_t i = r->p->n_steps; i < r->nunits; i++)
			r->s[i].exec = &plain; /* foreach tasks laid out just now */
		if (max_running && r->running > *max_running)
			*max_running = r->running;
		struct pollfd pfd[64];
		struct run_pollref ref[64];
		double next = -1;
		size_t n = run_pollfds(r, pfd, ref, util_now(), &next);
		if (!n && run_settled(r))
			break;
		if (poll(pfd, n, 100) < 0)
			break;
		for (size_t k = 0; k < n; k++)
			if (pfd[k].revents && ref[k].what == RUN_FD_LOG)
				run_ready(&ref[k], pfd[k].revents);
		run_tick(r);
		for (size_t k = 0; k < n; k++)
			if (pfd[k].revents && ref[k].what == RUN_FD_EXIT)
				run_ready(&ref[k], pfd[k].revents);
	}
	run_end(r);
	run_free(r);
	return id;
}

/* A value kept in one of a few static buffers (so checks need not free). */
static const char *kept(char *v)
{
	static char ring[8][512];
	static int at;
	char *b = ring[at++ % 8];
	snprintf(b, sizeof ring[0], "%s", v ? v : "(null)");
	free(v);
	return b;
}

static const char *run_col(int64_t id, const char *col)
{
	char *sql = xasprintf("SELECT %s FROM runs WHERE id=?", col);
	char *v = db_text(F.db, sql, "i", id);
	free(sql);
	return kept(v);
}

static const char *step_col(int64_t id, const char *step, const char *col)
{
	char *sql = xasprintf("SELECT %s FROM steps WHERE run_id=? AND name=?", col);
	char *v = db_text(F.db, sql, "it", id, step);
	free(sql);
	return kept(v);
}

/* ---- cache keys ------------------------------------------------------------ */

TEST(key_covers_params_inputs_code_and_item)
{
	struct pipeline_def *p = NULL;
	store_open("key");
	put("k", "pipeline.json", "{\"params\": {\"lr\": 0.1}}");
	put("k", "s.json", "{\"run\": \"true\", \"params\": [\"lr\"], \"outputs\": [\"o\"]}");
	char *dir = xasprintf("%s/k", F.pipelines_dir);
	CHECK_INT(step_load(&p, "k", dir), 0);
	CHECK_INT(p->n_errors, 0);
	struct codefile code[1] = {{.rel = "train.py", .hex = "aa"}};
	char *in[1] = {NULL};
	char *k1, *p1, *k2, *p2, *k3, *p3, *k4, *p4;
	cachekey_compute(&p->steps[0], NULL, code, (size_t[]){0}, 1, NULL, in, NULL, &k1, &p1);
	cachekey_compute(&p->steps[0], NULL, code, (size_t[]){0}, 1, NULL, in, NULL, &k2, &p2);
	CHECK_STR(k1, k2);
	CHECK_CONTAINS(p1, "\"code\":{\"train.py\":\"aa\"},\"params\":{\"lr\":\"0.1\"}");
	free(k2);
	free(p2);
	strcpy(code[0].hex, "bb");
	cachekey_compute(&p->steps[0], NULL, code, (size_t[]){0}, 1, NULL, in, NULL, &k3, &p3);
	CHECK(strcmp(k1, k3));
	cachekey_compute(&p->steps[0], NULL, code, (size_t[]){0}, 1, NULL, in, "item1", &k4, &p4);
	CHECK(strcmp(k3, k4));
	CHECK_CONTAINS(p4, "\"item\":\"item1\"");
	free(k1); free(p1); free(k3); free(p3); free(k4); free(p4);
	step_free(p);
	free(dir);
	store_close();
}

TEST(explain_names_what_changed)
{
	struct pipeline_def *p = NULL;
	store_open("explain");
	put("e", "pipeline.json", "{\"params\": {\"lr\": 0.1}}");
	put("e", "s.json", "{\"run\": \"true\", \"params\": [\"lr\"], \"outputs\": [\"o\"]}");
	char *dir = xasprintf("%s/e", F.pipelines_dir);
	CHECK_INT(step_load(&p, "e", dir), 0);
	const struct step_def *d = &p->steps[0];
	char *r = cachekey_explain(F.db, "e", d, NULL, INT64_MAX, "{}");
	CHECK_STR(r, "no earlier run");
	free(r);
	int64_t id;
	CHECK_INT(db_run_create(F.db, &id, "e", "test"), 0);
	CHECK_INT(db_exec(F.db, "INSERT INTO steps(run_id, name, status, key_parts) VALUES"
	                  "(?, 's', 'succeeded', ?)", "it", id,
	                  "{\"definition\":\"d1\",\"code\":{\"a.py\":\"h1\"},\"params\":"
	                  "{\"lr\":\"0.1\"},\"inputs\":{\"x\":\"i1\"}}"), 0);
	r = cachekey_explain(F.db, "e", d, NULL, INT64_MAX,
	                     "{\"definition\":\"d1\",\"code\":{\"a.py\":\"h2\"},\"params\":"
	                     "{\"lr\":\"0.2\"},\"inputs\":{\"x\":\"i1\"}}");
	CHECK_STR(r, "a.py changed, param lr changed");
	free(r);
	r = cachekey_explain(F.db, "e", d, NULL, INT64_MAX,
	                     "{\"definition\":\"d2\",\"code\":{},\"params\":"
	                     "{\"lr\":\"0.1\"},\"inputs\":{\"x\":\"i2\",\"y\":\"i3\"}}");
	CHECK_STR(r, "definition changed, input x changed, input y added, a.py removed");
	free(r);
	r = cachekey_explain(F.db, "e", d, NULL, id,
	                     "{\"definition\":\"d2\"}");
	CHECK_STR(r, "no earlier run"); /* only runs before `before` count */
	free(r);
	step_free(p);
	free(dir);
	store_close();
}

TEST(step_code_by_prefix)
{
	struct codefile code[] = {
		{.rel = "NOTES.md"}, {.rel = "lib"}, {.rel = "lib.py"}, {.rel = "lib/a.py"},
		{.rel = "lib/sub/b.py"}, {.rel = "libx/c.py"}, {.rel = "train.py"},
	};
	size_t n = sizeof code / sizeof *code, *deflt = NULL, *idx = NULL;
	size_t nd = snapshot_default_code(code, n, &deflt);
	CHECK_INT(nd, 6); /* all but NOTES.md */
	char *paths[] = {"lib/", "lib/a.py", "train.py"};
	struct step_def d = {.code = paths, .n_code = 3};
	size_t k = snapshot_step_code(code, n, deflt, nd, &d, &idx);
	CHECK_INT(k, 4); /* lib, lib/a.py once, lib/sub/b.py, train.py */
	CHECK_INT(idx[0], 1);
	CHECK_INT(idx[1], 3);
	CHECK_INT(idx[2], 4);
	CHECK_INT(idx[3], 6);
	free(idx);
	d.code_default = 1;
	k = snapshot_step_code(code, n, deflt, nd, &d, &idx);
	CHECK_INT(k, 6);
	CHECK_INT(idx[0], 1);
	free(idx);
	d.code_default = 0;
	d.n_code = 0;
	k = snapshot_step_code(code, n, deflt, nd, &d, &idx);
	CHECK_INT(k, 0);
	free(idx);
	free(deflt);
}

/* ---- the state machine ---------------------------------------------------- */

TEST(run_then_cache_then_override)
{
	store_open("sm");
	put("p", "pipeline.json", "{\"params\": {\"v\": 1}}");
	put("p", "a.json", "{\"run\": \"echo $FLOWY_PARAM_v > out/a\", \"params\": [\"v\"], "
	    "\"outputs\": [\"a\"]}");
	put("p", "b.json", "{\"run\": \"readlink in/a > out/b\", \"inputs\": [\"a\"], "
	    "\"outputs\": [\"b\"]}");
	int64_t id = drive("p", NULL, 2, NULL);
	CHECK(id > 0);
	CHECK_STR(run_col(id, "error"), "(null)");
	CHECK_STR(run_col(id, "status"), "succeeded");
	CHECK_STR(step_col(id, "a", "reason"), "no earlier run");
	int64_t id2 = drive("p", NULL, 2, NULL);
	CHECK_STR(run_col(id2, "status"), "succeeded");
	CHECK_STR(step_col(id2, "a", "status"), "cached");
	CHECK_STR(step_col(id2, "b", "status"), "cached");
	cJSON *ov = cJSON_Parse("{\"v\": 2}");
	struct run_request req = {.overrides = ov};
	int64_t id3 = drive("p", &req, 2, NULL);
	CHECK_STR(run_col(id3, "params"), "{\"v\":2}");
	CHECK_STR(step_col(id3, "a", "reason"), "param v changed");
	CHECK_STR(step_col(id3, "b", "reason"), "input a changed");
	cJSON_Delete(ov);
	ov = cJSON_Parse("{\"nope\": 2}");
	req.overrides = ov;
	CHECK_INT(drive("p", &req, 2, NULL), EINVAL);
	cJSON_Delete(ov);
	store_close();
}

/* Every step sees the daemon's environment once, without its FLOWY_*
 * (the run's copy of it, made at its first start), and its own FLOWY_*. */
TEST(steps_see_the_daemons_environment_and_their_own_flowy_vars)
{
	store_open("env");
	CHECK_INT(setenv("TEST_BASE", "kept", 1), 0);
	CHECK_INT(setenv("FLOWY_STRAY", "leaked", 1), 0);
	const char *check = "[ \\\"$TEST_BASE\\\" = kept ] && [ -z \\\"${FLOWY_STRAY+x}\\\" ] && "
	                    "[ $(env | grep -c ^TEST_BASE=) = 1 ] && "
	                    "[ $(env | grep -c ^FLOWY_STEP=) = 1 ] && [ \\\"$FLOWY_PARAM_v\\\" = 1 ]";
	char def[512];
	put("e", "pipeline.json", "{\"params\": {\"v\": 1}}");
	snprintf(def, sizeof def, "{\"run\": \"%s && [ $FLOWY_STEP = a ] && echo 1 > out/a\", "
	         "\"params\": [\"v\"], \"outputs\": [\"a\"]}", check);
	put("e", "a.json", def);
	snprintf(def, sizeof def, "{\"run\": \"%s && [ $FLOWY_STEP = b ] && echo 2 > out/b\", "
	         "\"params\": [\"v\"], \"inputs\": [\"a\"], \"outputs\": [\"b\"]}", check);
	put("e", "b.json", def);
	int64_t id = drive("e", NULL, 1, NULL);
	CHECK_STR(step_col(id, "a", "status"), "succeeded");
	CHECK_STR(step_col(id, "b", "status"), "succeeded");
	CHECK_INT(unsetenv("FLOWY_STRAY"), 0);
	CHECK_INT(unsetenv("TEST_BASE"), 0);
	store_close();
}

TEST(failure_skips_downstream_and_names_the_step)
{
	store_open("fail");
	put("f", "a.json", "{\"run\": \"exit 3\", \"outputs\": [\"a\"]}");
	put("f", "b.json", "{\"run\": \"true\", \"inputs\": [\"a\"], \"outputs\": [\"b\"]}");
	put("f", "c.json", "{\"run\": \"echo c > out/c\", \"outputs\": [\"c\"]}");
	int64_t id = drive("f", NULL, 2, NULL);
	CHECK_STR(run_col(id, "status"), "failed");
	CHECK_STR(run_col(id, "error"), "a: step exited with status 3");
	CHECK_STR(step_col(id, "b", "status"), "skipped");
	CHECK_STR(step_col(id, "b", "reason"), "upstream step a failed");
	CHECK_STR(step_col(id, "c", "status"), "succeeded");
	store_close();
}

/* Every step of a long chain starts in an empty scratch (a pooled one from
 * the second on); a failure skips the rest of the chain in one run, and
 * only the failed step's scratch is kept at the end. */
TEST(chain_steps_start_clean_and_a_failure_keeps_only_its_scratch)
{
	store_open("chain");
	const char *check = "[ -z \\\"$(ls -A out)\\\" ] && [ $(ls -A in | wc -l) -le 1 ] && "
	                    "[ \\\"$(ls -A | tr '\\\\n' ' ')\\\" = 'in out ' ] && "
	                    "echo junk > left && echo x > out/extra";
	char def[512];
	for (int k = 1; k <= 40; k++) {
		char name[32];
		snprintf(name, sizeof name, "s%02d.json", k);
		if (k == 1)
			snprintf(def, sizeof def, "{\"run\": \"%s && echo 1 > out/o01\", "
			         "\"outputs\": [\"o01\"]}", check);
		else
			snprintf(def, sizeof def, "{\"run\": \"%s && echo %d > out/o%02d\", "
			         "\"inputs\": [\"o%02d\"], \"outputs\": [\"o%02d\"]}", check,
			         k, k, k - 1, k);
		put("c", name, def);
	}
	int64_t id = drive("c", NULL, 1, NULL);
	CHECK_STR(run_col(id, "status"), "succeeded");
	CHECK_STR(step_col(id, "s40", "status"), "succeeded");
	/* Now s20 fails: s21..s40 are skipped, its scratch alone stays. */
	put("c", "s20.json", "{\"run\": \"echo half > notes; exit 4\", "
	    "\"inputs\": [\"o19\"], \"outputs\": [\"o20\"]}");
	id = drive("c", NULL, 1, NULL);
	CHECK_STR(run_col(id, "status"), "failed");
	CHECK_STR(step_col(id, "s21", "reason"), "upstream step s20 failed");
	CHECK_STR(step_col(id, "s40", "status"), "skipped");
	CHECK_STR(step_col(id, "s40", "reason"), "upstream step s39 was skipped");
	char *scr = xasprintf("%s/%lld", F.scratch_dir, (long long)id);
	char *notes = xasprintf("%s/s20/notes", scr), *pool = xasprintf("%s/.pool", scr);
	char *trash = xasprintf("%s/.trash", scr), *other = xasprintf("%s/s19", scr);
	struct stat st;
	CHECK_INT(stat(notes, &st), 0);
	CHECK_INT(stat(pool, &st) < 0 && errno == ENOENT, 1);
	CHECK_INT(stat(trash, &st) < 0 && errno == ENOENT, 1);
	CHECK_INT(stat(other, &st) < 0 && errno == ENOENT, 1);
	free(scr); free(notes); free(pool); free(trash); free(other);
	store_close();
}

/* A long run holds no file for a step that is over: each step's start
 * sees as many open as the first one did, give or take its own. */
TEST(a_long_chain_holds_no_file_per_finished_step)
{
	store_open("fds");
	for (int k = 1; k <= 60; k++) {
		char name[32], def[256];
		snprintf(name, sizeof name, "s%02d.json", k);
		/* each writes its log and a metric, so both files are made */
		if (k == 1)
			snprintf(def, sizeof def, "{\"run\": \"echo 1; echo 1 > out/o01\", "
			         "\"outputs\": [\"o01\"]}");
		else
			snprintf(def, sizeof def, "{\"run\": \"echo %d; echo '{\\\"x\\\": %d}' "
			         ">> $FLOWY_METRICS; echo %d > out/o%02d\", \"inputs\": [\"o%02d\"], "
			         "\"outputs\": [\"o%02d\"]}", k, k, k, k, k - 1, k);
		put("f", name, def);
	}
	int before = open_fds();
	most_fds = 0;
	int64_t id = drive("f", NULL, 1, NULL);
	CHECK_STR(run_col(id, "status"), "succeeded");
	CHECK_INT(db_int(F.db, -1, "SELECT count(*) FROM metrics WHERE run_id=?", "i", id), 59);
	/* the run's own (log pipe, metrics and params of the step starting, the
	 * database's journal): a handful, not one per step before it */
	if (most_fds - before > 12)
		fprintf(stderr, "  %d files open at a start, %d before the run\n", most_fds, before);
	CHECK(most_fds - before <= 12);
	store_close();
}

TEST(slots_bound_what_runs_at_once)
{
	store_open("slots");
	for (int k = 0; k < 4; k++) {
		char name[32], def[128];
		snprintf(name, sizeof name, "s%d.json", k);
		snprintf(def, sizeof def, "{\"run\": \"sleep 0.2; echo %d > out/o%d\", "
		         "\"outputs\": [\"o%d\"]}", k, k, k);
		put("j", name, def);
	}
	size_t most = 0;
	int64_t id = drive("j", NULL, 1, &most);
	CHECK_STR(run_col(id, "status"), "succeeded");
	CHECK_INT(most, 1);
	put("j", "s0.json", "{\"run\": \"sleep 0.2; echo x > out/o0\", \"outputs\": [\"o0\"]}");
	put("j", "s1.json", "{\"run\": \"sleep 0.2; echo x > out/o1\", \"outputs\": [\"o1\"]}");
	put("j", "s2.json", "{\"run\": \"sleep 0.2; echo x > out/o2\", \"outputs\": [\"o2\"]}");
	id = drive("j", NULL, 2, &most);
	CHECK_STR(run_col(id, "status"), "succeeded");
	CHECK_INT(most, 2);
	store_close();
}

TEST(retry_reuses_what_succeeded)
{
	store_open("retry");
	char *flag = xasprintf("%s/retry-ok", root);
	char *def = xasprintf("{\"run\": \"[ -e %s ] && echo b > out/b\", \"inputs\": [\"a\"], "
	                      "\"outputs\": [\"b\"]}", flag);
	put("r", "a.json", "{\"run\": \"echo a > out/a\", \"outputs\": [\"a\"]}");
	put("r", "b.json", def);
	int64_t id = drive("r", NULL, 2, NULL);
	CHECK_STR(run_col(id, "status"), "failed");
	CHECK_INT(util_put_file(flag, "", 0), 0);
	struct run_request req = {.retry_of = id};
	int64_t id2 = drive("r", &req, 2, NULL);
	CHECK_STR(run_col(id2, "status"), "succeeded");
	char *want = xasprintf("succeeded in run %lld", (long long)id);
	CHECK_STR(step_col(id2, "a", "reason"), want);
	CHECK_STR(step_col(id2, "b", "status"), "succeeded");
	req.retry_of = id2;
	CHECK_INT(drive("r", &req, 2, NULL), EINVAL); /* it succeeded */
	req.retry_of = 9999;
	CHECK_INT(drive("r", &req, 2, NULL), ESRCH);
	free(want);
	free(def);
	free(flag);
	store_close();
}

/* ---- re-checks: a run in which nothing changed (recheck.c) -------------- */

static int64_t count_rows(const char *table, int64_t id)
{
	char *sql = xasprintf("SELECT count(*) FROM %s WHERE run_id=?", table);
	int64_t n = db_int(F.db, -1, sql, "i", id);
	free(sql);
	return n;
}

/* The rows of run id in table (the steps' view) as one text. */
static const char *rows_of(const char *sql, int64_t id)
{
	struct strbuf sb = {0};
	db_lock(F.db);
	sqlite3_stmt *st = db_prepare(F.db, sql, "i", id);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		for (int c = 0; c < sqlite3_column_count(st); c++) {
			const unsigned char *t = sqlite3_column_text(st, c);
			strbuf_printf(&sb, "%s%s", c ? "|" : "", t ? (const char *)t : "-");
		}
		strbuf_puts(&sb, "\n");
	}
	db_finish(F.db, st);
	db_unlock(F.db);
	return kept(strbuf_detach(&sb, NULL));
}

#define STEP_ROWS "SELECT name, status, cached, reason, exit_code, attempts, " \
	"cache_key, key_parts, params, seq FROM steps WHERE run_id=? ORDER BY name"
#define IO_ROWS "SELECT step, dir, name, hash, ref FROM step_io WHERE run_id=? " \
	"ORDER BY step, dir, name"
#define METRIC_ROWS "SELECT step, name, idx, value FROM metrics WHERE run_id=? " \
	"ORDER BY step, name, idx"

/* a reads a file: input and a param, b reads a. (Metrics need the
 * mount's executor: recheck.bats.) */
/* Pipeline name's files, its step a reading file (a file: input). */
static void recheck_files(const char *name, const char *file)
{
	char *a = xasprintf("{\"run\": \"readlink in/f > out/a && echo $FLOWY_PARAM_v >> out/a\", "
	                    "\"inputs\": [\"file:%s\"], \"params\": [\"v\"], "
	                    "\"outputs\": [\"a\"]}", file);
	put(name, "pipeline.json", "{\"params\": {\"v\": 1}}");
	put(name, "a.json", a);
	put(name, "b.json", "{\"run\": \"readlink in/a > out/b\", \"inputs\": [\"a\"], "
	    "\"outputs\": [\"b\"]}");
	free(a);
}

static char *recheck_pipeline(const char *name)
{
	char *dir = xasprintf("%s/%s-input", root, name), *file = xasprintf("%s/f", dir);
	if (util_mkdir_p(dir, 0755) < 0)
		abort();
	free(dir);
	if (util_put_file(file, "one\n", 4) < 0)
		abort();
	recheck_files(name, file);
	return file;
}

/* A store of its own with recheck_pipeline p run once; that run's id
 * (*file: the file: input, the caller frees it). */
static int64_t recheck_first(const char *store, char **file)
{
	store_open(store);
	*file = recheck_pipeline("p");
	return drive("p", NULL, 2, NULL);
}

/* Delete the object of step's output in run id by hand, as a person
 * might: 0 or -errno. */
static int unlink_output(int64_t id, const char *step)
{
	char *hex = db_text(F.db, "SELECT hash FROM step_io WHERE run_id=? AND step=? "
	                    "AND dir='out'", "it", id, step);
	if (!hex)
		return -ENOENT;
	char *obj = xasprintf("%s/objects/%.2s/%s", F.store, hex, hex + 2);
	int rc = unlink(obj) < 0 ? -errno : 0;
	free(obj);
	free(hex);
	return rc;
}

TEST(recheck_unchanged_is_one_row_reading_as_the_full_path)
{
	char *file;
	int64_t id1 = recheck_first("rc", &file);
	CHECK_STR(run_col(id1, "error"), "(null)");
	/* A full-path run in which every step is cached: the same files in
	 * another pipeline, which has no run of its own to repeat. */
	recheck_files("q", file);
	int64_t id2 = drive("q", NULL, 2, NULL);
	CHECK_STR(run_col(id2, "same_as"), "(null)");
	CHECK_INT(count_rows("steps_recorded", id2), 2);
	CHECK_STR(step_col(id2, "a", "status"), "cached");
	int64_t id3 = drive("q", NULL, 2, NULL);
	CHECK_STR(run_col(id3, "status"), "succeeded");
	CHECK_INT(strtoll(run_col(id3, "same_as"), NULL, 10), id2);
	CHECK_INT(count_rows("steps_recorded", id3), 0);
	CHECK_INT(count_rows("step_io_recorded", id3), 0);
	/* Nor a graph of its own: read through same_as. */
	CHECK_STR(run_col(id3, "dag"), "(null)");
	CHECK_CONTAINS(run_col(id2, "dag"), "digraph");
	CHECK_STR(run_col(id3, DB_RUN_DAG), run_col(id2, "dag"));
	/* Read as the full-path run reads. */
	CHECK_STR(rows_of(STEP_ROWS, id3), rows_of(STEP_ROWS, id2));
	CHECK_STR(rows_of(IO_ROWS, id3), rows_of(IO_ROWS, id2));
	CHECK_STR(rows_of(METRIC_ROWS, id3), rows_of(METRIC_ROWS, id2));
	CHECK_CONTAINS(rows_of(STEP_ROWS, id3), "a|cached|1|cached|0|0|");
	CHECK_STR(step_col(id3, "b", "started"), run_col(id3, "started"));
	/* A re-check of a re-check names the run with the rows. */
	int64_t id4 = drive("q", NULL, 2, NULL);
	CHECK_INT(strtoll(run_col(id4, "same_as"), NULL, 10), id2);
	/* A snapshot of its own (as after a restart), of the same files: the
	 * same commit, so still a re-check. */
	snapshot_cache_free(F.snapshots);
	F.snapshots = snapshot_cache_new();
	int64_t id5 = drive("q", NULL, 2, NULL);
	CHECK(strcmp(run_col(id5, "snapshot_run"), run_col(id2, "snapshot_run")) != 0);
	CHECK_INT(strtoll(run_col(id5, "same_as"), NULL, 10), id2);
	CHECK_INT(count_rows("steps_recorded", id5), 0);
	free(file);
	store_close();
}

TEST(recheck_takes_the_full_path_when_anything_changed)
{
	char *file;
	int64_t id1 = recheck_first("rcf", &file);
	CHECK_STR(run_col(id1, "status"), "succeeded");
	/* A param override: another params text, no candidate. */
	cJSON *ov = cJSON_Parse("{\"v\": 2}");
	struct run_request req = {.overrides = ov};
	int64_t id2 = drive("p", &req, 2, NULL);
	CHECK_STR(run_col(id2, "same_as"), "(null)");
	CHECK_STR(step_col(id2, "a", "reason"), "param v changed");
	cJSON_Delete(ov);
	/* The latest outputs are run 2's now: a run with run 1's params
	 * would publish run 1's again, so it is no re-check of run 1. */
	int64_t id3 = drive("p", NULL, 2, NULL);
	CHECK_STR(run_col(id3, "same_as"), "(null)");
	CHECK_STR(step_col(id3, "a", "status"), "cached");
	CHECK_INT(count_rows("steps_recorded", id3), 2);
	/* A file: input changed: the candidate fails its check at start. */
	CHECK_INT(util_put_file(file, "two\n", 4), 0);
	int64_t id4 = drive("p", NULL, 2, NULL);
	CHECK_STR(run_col(id4, "same_as"), "(null)");
	CHECK_STR(step_col(id4, "a", "status"), "succeeded");
	CHECK_STR(step_col(id4, "a", "reason"), "input f changed");
	CHECK_STR(step_col(id4, "b", "reason"), "input a changed");
	/* rerun STEP forces: never a re-check. */
	req = (struct run_request){.force_step = "b"};
	int64_t id5 = drive("p", &req, 2, NULL);
	CHECK_STR(run_col(id5, "same_as"), "(null)");
	CHECK_STR(step_col(id5, "b", "reason"), "forced");
	/* An output gone from the store: the full path reruns its step. */
	int64_t id6 = drive("p", NULL, 2, NULL);
	CHECK_INT(strtoll(run_col(id6, "same_as"), NULL, 10), id5);
	CHECK_INT(unlink_output(id6, "b"), 0);
	int64_t id7 = drive("p", NULL, 2, NULL);
	CHECK_STR(run_col(id7, "same_as"), "(null)");
	CHECK_STR(step_col(id7, "a", "status"), "cached");
	CHECK_STR(step_col(id7, "b", "status"), "succeeded");
	free(file);
	store_close();
}

/* A pipeline big enough that the store check runs on two threads: an
 * output gone from its second half is still seen. Its steps read nothing
 * from outside, so that query is not made at all. */
TEST(recheck_sees_every_output_of_a_big_pipeline)
{
	store_open("rcb");
	put("big", "pipeline.json", "{}");
	for (int i = 0; i < 300; i++) {
		char name[32], *def = xasprintf("{\"run\": \"echo %d > out/o%03d\", "
		                                "\"outputs\": [\"o%03d\"]}", i, i, i);
		snprintf(name, sizeof name, "s%03d.json", i);
		put("big", name, def);
		free(def);
	}
	int64_t id1 = drive("big", NULL, 2, NULL);
	CHECK_STR(run_col(id1, "status"), "succeeded");
	int64_t id2 = drive("big", NULL, 2, NULL);
	CHECK_INT(strtoll(run_col(id2, "same_as"), NULL, 10), id1);
	CHECK_INT(count_rows("steps_recorded", id2), 0);
	CHECK_INT(unlink_output(id2, "s290"), 0);
	int64_t id3 = drive("big", NULL, 2, NULL);
	CHECK_STR(run_col(id3, "same_as"), "(null)");
	CHECK_STR(step_col(id3, "s290", "status"), "succeeded");
	CHECK_STR(step_col(id3, "s010", "status"), "cached");
	CHECK_STR(step_col(id3, "s299", "status"), "cached");
	/* A re-check of that run: 299 of its steps were cached from run 1,
	 * so the cache is checked by the one whole join. */
	int64_t id4 = drive("big", NULL, 2, NULL);
	CHECK_INT(strtoll(run_col(id4, "same_as"), NULL, 10), id3);
	CHECK_INT(count_rows("steps_recorded", id4), 0);
	CHECK_STR(step_col(id4, "s290", "status"), "cached");
	store_close();
}

TEST(recheck_rows_move_to_a_heir_when_their_run_goes)
{
	char *file;
	int64_t id1 = recheck_first("rch", &file);
	CHECK_STR(run_col(id1, "status"), "succeeded");
	int64_t id2 = drive("p", NULL, 2, NULL);
	int64_t id3 = drive("p", NULL, 2, NULL);
	CHECK_INT(strtoll(run_col(id3, "same_as"), NULL, 10), id1);
	const char *steps3 = rows_of(STEP_ROWS, id3);
	CHECK_CONTAINS(steps3, "b|cached|1|cached|");
	const char *io3 = rows_of(IO_ROWS, id3);
	const char *dag1 = run_col(id1, "dag");
	CHECK_CONTAINS(dag1, "digraph");
	db_lock(F.db);
	CHECK_INT(db_run_release(F.db, id1), 0);
	CHECK_INT(db_exec(F.db, "DELETE FROM steps WHERE run_id=?", "i", id1), 0);
	CHECK_INT(db_exec(F.db, "DELETE FROM step_io WHERE run_id=?", "i", id1), 0);
	db_unlock(F.db);
	CHECK_INT(count_rows("steps_recorded", id1), 0);
	CHECK_STR(run_col(id2, "same_as"), "(null)");
	CHECK_INT(count_rows("steps_recorded", id2), 2);
	CHECK_INT(strtoll(run_col(id3, "same_as"), NULL, 10), id2);
	CHECK_STR(rows_of(STEP_ROWS, id3), steps3);
	CHECK_STR(rows_of(IO_ROWS, id3), io3);
	/* The heir has the graph too (its own now), and id3 reads it. */
	db_lock(F.db);
	CHECK_INT(db_exec(F.db, "DELETE FROM runs WHERE id=?", "i", id1), 0);
	db_unlock(F.db);
	CHECK_STR(run_col(id2, "dag"), dag1);
	CHECK_STR(run_col(id3, DB_RUN_DAG), dag1);
	free(file);
	store_close();
}

/* ---- the queue and its control --------------------------------------------- */

static char *wait_status(int64_t id)
{
	for (int i = 0; i < 200; i++) {
		const char *st = run_col(id, "status");
		if (strcmp(st, "queued") && strcmp(st, "running") && strcmp(st, "paused"))
			return xstrdup(st);
		usleep(50000);
	}
	return xstrdup(run_col(id, "status"));
}

TEST(queue_and_control)
{
	store_open("queue");
	put("q", "pipeline.json", "{\"params\": {\"n\": 1}}");
	put("q", "s.json", "{\"run\": \"echo $FLOWY_PARAM_n > out/o\", \"params\": [\"n\"], "
	    "\"outputs\": [\"o\"]}");
	F.coalesce = 3600; /* no runs from changes here */
	snapshot_cache_free(F.snapshots); /* the scheduler makes its own */
	F.snapshots = NULL;
	free(F.scratch_cover);
	F.scratch_cover = NULL;
	CHECK_INT(sched_start(&F), 0);
	char *why = NULL;
	int64_t id = 0;
	cJSON *bad = cJSON_Parse("{\"m\": 1}");
	struct run_request req = {.pipeline = "q", .trigger = "test", .overrides = bad};
	CHECK_INT(sched_queue(&F, &req, &id, &why), -EINVAL);
	CHECK_STR(why, "m is not a param of this pipeline (pipeline.json params: n)");
	free(why);
	CHECK_INT(db_int(F.db, -1, "SELECT count(*) FROM runs", ""), 0); /* refused: gone */
	cJSON_Delete(bad);
	req.overrides = NULL;
	CHECK_INT(sched_queue(&F, &req, &id, &why), 0);
	CHECK_STR(run_col(id, "params"), "{\"n\":1}"); /* captured when queued */
	/* (it may fail: F.mnt is no mount for exec.c to make read-only) */
	char *end = wait_status(id);
	CHECK(!strcmp(end, "succeeded") || !strcmp(end, "failed"));
	CHECK_INT(sched_control(&F, "q", "cancel", id, &why), -EINVAL);
	char *want = xasprintf("cancel: run %lld has already ended (%s)", (long long)id, end);
	CHECK_STR(why, want);
	free(want);
	free(why);
	CHECK_INT(sched_control(&F, "q", "cancel", 0, &why), -ESRCH);
	CHECK_STR(why, "no queued or running run of this pipeline");
	free(why);
	CHECK_INT(sched_control(&F, "other", "pause", id, &why), -ESRCH);
	free(why);
	sched_stop(&F);
	free(end);
	store_close();
}

int main(void)
{
	char tmpl[] = "/tmp/flowyfs-engine-XXXXXX";
	root = mkdtemp(tmpl);
	if (!root)
		return 1;
	RUN(key_covers_params_inputs_code_and_item);
	RUN(explain_names_what_changed);
	RUN(step_code_by_prefix);
	RUN(run_then_cache_then_override);
	RUN(steps_see_the_daemons_environment_and_their_own_flowy_vars);
	RUN(failure_skips_downstream_and_names_the_step);
	RUN(chain_steps_start_clean_and_a_failure_keeps_only_its_scratch);
	RUN(a_long_chain_holds_no_file_per_finished_step);
	RUN(slots_bound_what_runs_at_once);
	RUN(retry_reuses_what_succeeded);
	RUN(recheck_unchanged_is_one_row_reading_as_the_full_path);
	RUN(recheck_takes_the_full_path_when_anything_changed);
	RUN(recheck_sees_every_output_of_a_big_pipeline);
	RUN(recheck_rows_move_to_a_heir_when_their_run_goes);
	RUN(queue_and_control);
	util_rm_rf(root);
	return CHECK_DONE();
}
