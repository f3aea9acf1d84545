/*
 * sched.c - the queue, its control, and the scheduler thread (sched.h).
 *
 * The thread holds every captured run in one list, oldest first. Each
 * pass it carries out requests (cancel, pause, resume) taken from the
 * runs' flags under the lock, lets each run advance within the slots
 * left (oldest first, so a sweep fills the slots in order and a long
 * run never blocks another pipeline), ends the runs that settled, then
 * sleeps in one poll() over every running step's exit and log
 * descriptors, the wake-up eventfd and the nearest timer. Changes that
 * passed their window, and inputs of other pipelines that got a new
 * latest version (an event it subscribes to), are queued here too.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "flowyfs/catalog.h"
#include "flowyfs/events.h"
#include "flowyfs/exec.h"
#include "flowyfs/log.h"
#include "flowyfs/run.h"
#include "flowyfs/sched.h"
#include "flowyfs/slots.h"
#include "flowyfs/snapshot.h"
#include "flowyfs/syncer.h"
#include "flowyfs/util.h"
#include "flowyfs/workspace.h"

#define METRICS_TICK 0.2   /* seconds between reads of running steps' metrics */

/* A pipeline to queue because an input of it changed. */
struct trigger {
	char *pipeline, *reason;
	struct trigger *next;
};

/* A run being captured (its snapshot taken), so it can be cancelled
 * before it joins the list. */
struct capture {
	int64_t id;
	const char *pipeline;
	int stop;                 /* set by cancel or by the daemon's stop */
	int cancelled;
	struct capture *next;
};

struct sched {
	pthread_t thread;
	pthread_mutex_t lock;
	int wake_fd;
	int stop;
	int abort_io;             /* set on stop */
	struct run *runs;         /* the thread's runs, oldest first: changed
	                             by it only, under the lock */
	struct run *incoming;     /* captured, not yet taken by the thread (lock) */
	struct capture *capturing; /* runs being captured (lock) */
	struct trigger *triggers; /* scheduler thread only */
	/* Runs asked for by changes and triggers are captured on a thread
	 * of their own, so a long snapshot never holds up running steps. */
	pthread_t capturer;
	pthread_cond_t work_cv;
	struct trigger *work;     /* waiting to be queued (lock) */
	struct trigger *moves;    /* alias moves not yet announced (lock):
	                             pipeline holds the reference */
};

/* ---- the queue -------------------------------------------------------- */

void sched_wake(struct flowy *f)
{
	uint64_t one = 1;
	if (f->sched && write(f->sched->wake_fd, &one, sizeof one) < 0)
		log_debug("wake: %s", strerror(errno));
}

static void wake_sched(void *arg)
{
	sched_wake(arg);
}

/* Bytes free for an unprivileged writer on the file system of path, or
 * UINT64_MAX when it cannot be told. */
static uint64_t disk_free(const char *path)
{
	struct statvfs sv;
	if (statvfs(path, &sv) < 0)
		return UINT64_MAX;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

/* The free space under which no new run starts: 64 MiB, or 5% of a
 * smaller file system. */
static uint64_t reserve_for(const char *path)
{
	struct statvfs sv;
	if (statvfs(path, &sv) < 0)
		return 0;
	uint64_t size = (uint64_t)sv.f_blocks * sv.f_frsize, want = (uint64_t)64 << 20;
	return size / 20 < want ? size / 20 : want;
}

/* A run that could not be captured: gone when the request was wrong (it
 * never existed for the user), else ended failed, or interrupted when a
 * stop cut its capture short. */
static void capture_failed(struct flowy *f, int64_t id, const char *pipeline,
                           int refused, int cancelled, const char *why)
{
	if (refused) {
		int rc = db_exec(f->db, "DELETE FROM steps WHERE run_id=?", "i", id);
		if (!rc)
			rc = db_exec(f->db, "DELETE FROM runs WHERE id=?", "i", id);
		char *dir = xasprintf("%s/%lld", f->runs_dir, (long long)id);
		int rm = util_rm_rf(dir);
		if (rc < 0 || (rm < 0 && rm != -ENOENT))
			log_error("run %lld: cannot remove the refused run: %s", (long long)id,
			          strerror(-(rc < 0 ? rc : rm)));
		free(dir);
		return;
	}
	const char *status = cancelled ? "cancelled" :
	                     __atomic_load_n(&f->sched->abort_io, __ATOMIC_RELAXED)
	                     ? "interrupted" : "failed";
	log_info("run %lld %s: %s", (long long)id, status, why);
	if (db_exec(f->db, "UPDATE runs SET status=?, finished=?, error=? WHERE id=?",
	            "tdti", status, util_now(), why, id) < 0)
		log_error("run %lld: cannot record that it %s; a restart marks it "
		          "interrupted", (long long)id, status);
	events_emit(f, &(struct event){
		.kind = cancelled ? EV_RUN_CANCELLED : !strcmp(status, "interrupted") ?
		        EV_RUN_INTERRUPTED : EV_RUN_FAILED,
		.pipeline = pipeline, .run = id, .status = status, .error = why});
}

int sched_queue(struct flowy *f, const struct run_request *req, int64_t *out_id,
                char **why)
{
	struct sched *sc = f->sched;
	int64_t id;
	uint64_t avail = disk_free(f->store), need = reserve_for(f->store);
	*why = NULL;
	if (avail < need) {
		*why = xasprintf("only %.1f MiB free on the store's disk (%s); "
		                 "a run needs at least %.1f MiB: free some space first",
		                 (double)avail / 1048576, f->store, (double)need / 1048576);
		return -ENOSPC;
	}
	int rc = db_run_create(f->db, &id, req->pipeline, req->trigger);
	if (rc < 0) {
		*why = xasprintf("cannot record the run: %s", rc == -ENOSPC ?
		                 "no space left on device" : strerror(-rc));
		return rc;
	}
	if (req->retry_of &&
	    (rc = db_exec(f->db, "UPDATE runs SET retry_of=? WHERE id=?", "ii",
	                  req->retry_of, id)) < 0) {
		*why = xasprintf("cannot record the run: %s", strerror(-rc));
		capture_failed(f, id, req->pipeline, -EIO, 0, *why);
		return rc;
	}
	int refused = 0;
	struct capture cap = {.id = id, .pipeline = req->pipeline};
	pthread_mutex_lock(&sc->lock);
	cap.stop = sc->stop;
	cap.next = sc->capturing;
	sc->capturing = &cap;
	pthread_mutex_unlock(&sc->lock);
	struct run *r = run_capture(f, id, req, &cap.stop, why, &refused);
	pthread_mutex_lock(&sc->lock);
	for (struct capture **c = &sc->capturing; *c; c = &(*c)->next)
		if (*c == &cap) {
			*c = cap.next;
			break;
		}
	pthread_mutex_unlock(&sc->lock);
	if (!r) {
		capture_failed(f, id, req->pipeline, refused, cap.cancelled, *why);
		if (refused)
			return refused;
		/* The run exists, ended failed: what the user asked was done. */
		free(*why);
		*why = NULL;
		if (out_id)
			*out_id = id;
		return 0;
	}
	catalog_queued(f, req->pipeline);
	workspace_forget_kept(f, req->pipeline, id);
	pthread_mutex_lock(&sc->lock);
	int stopped = sc->stop;
	if (!stopped) {
		r->next = sc->incoming;
		sc->incoming = r;
	}
	pthread_mutex_unlock(&sc->lock);
	if (stopped) {
		run_stop(r, "interrupted", "interrupted: flowyfs stopped");
		run_end(r);
		run_free(r);
	}
	sched_wake(f);
	if (out_id)
		*out_id = id;
	log_debug("queued run %lld of %s (%s)", (long long)id, req->pipeline, req->trigger);
	return 0;
}

/* What became of a run the scheduler no longer holds. */
static int ended_run(struct flowy *f, const char *pipeline, int64_t run, const char *verb,
                     char **why)
{
	char *p = NULL, *status = NULL;
	db_lock(f->db);
	sqlite3_stmt *st = db_prepare(f->db, "SELECT pipeline, status FROM runs WHERE id=?",
	                              "i", run);
	if (st && sqlite3_step(st) == SQLITE_ROW) {
		p = xstrdup((const char *)sqlite3_column_text(st, 0));
		status = xstrdup((const char *)sqlite3_column_text(st, 1));
	}
	db_finish(f->db, st);
	db_unlock(f->db);
	int rc;
	if (!p || strcmp(p, pipeline)) {
		*why = xasprintf("%s: no run %lld of this pipeline", verb, (long long)run);
		rc = -ESRCH;
	} else {
		*why = xasprintf("%s: run %lld has already ended (%s)", verb, (long long)run,
		                 status);
		rc = -EINVAL;
	}
	free(p);
	free(status);
	return rc;
}

int sched_control(struct flowy *f, const char *pipeline, const char *verb,
                  int64_t run, char **why)
{
	struct sched *sc = f->sched;
	int found = 0;
	*why = NULL;
	if (strcmp(verb, "cancel") && strcmp(verb, "pause") && strcmp(verb, "resume")) {
		*why = xasprintf("unknown command %s", verb);
		return -EINVAL;
	}
	pthread_mutex_lock(&sc->lock);
	for (struct capture *c = sc->capturing; c && !strcmp(verb, "cancel"); c = c->next)
		if (!strcmp(c->pipeline, pipeline) && (!run || c->id == run)) {
			c->cancelled = 1;
			__atomic_store_n(&c->stop, 1, __ATOMIC_RELAXED);
			found++;
		}
	struct run *lists[2] = {sc->runs, sc->incoming};
	for (int k = 0; k < 2; k++)
	for (struct run *r = lists[k]; r; r = r->next) {
		if (strcmp(r->pipeline, pipeline) || (run && r->id != run) || r->end)
			continue;
		if (!strcmp(verb, "cancel"))
			r->want_cancel = 1;
		else
			r->want_pause = !strcmp(verb, "pause");
		if (r->want_cancel)
			__atomic_store_n(&r->abort_io, 1, __ATOMIC_RELAXED);
		found++;
	}
	pthread_mutex_unlock(&sc->lock);
	if (!found) {
		if (run)
			return ended_run(f, pipeline, run, verb, why);
		*why = xstrdup("no queued or running run of this pipeline");
		return -ESRCH;
	}
	sched_wake(f);
	return 0;
}

/* ---- triggers ---------------------------------------------------------- */

/* A new latest version of pipeline/name: queue the pipelines reading it
 * (those with autorun off are only marked stale, by the catalog). */
void sched_alias_moved(struct flowy *f, const char *model, const char *alias)
{
	struct sched *sc = f->sched;
	if (!sc)
		return;
	struct trigger *t = xcalloc(1, sizeof *t);
	t->pipeline = xasprintf("registry:%s@%s", model, alias);
	pthread_mutex_lock(&sc->lock);
	struct trigger **at = &sc->moves;
	while (*at)
		at = &(*at)->next;
	*at = t;
	pthread_mutex_unlock(&sc->lock);
	sched_wake(f);
}

/* Announce the alias moves made since the last pass (scheduler thread). */
static void take_moves(struct flowy *f, struct sched *sc)
{
	pthread_mutex_lock(&sc->lock);
	struct trigger *t = sc->moves;
	sc->moves = NULL;
	pthread_mutex_unlock(&sc->lock);
	while (t) {
		struct trigger *next = t->next;
		events_emit(f, &(struct event){.kind = EV_ALIAS_MOVED, .ref = t->pipeline});
		free(t->pipeline);
		free(t);
		t = next;
	}
}

static void on_event(struct flowy *f, const struct event *ev, void *arg)
{
	struct sched *sc = arg;
	if (ev->kind != EV_ARTIFACT_PUBLISHED && ev->kind != EV_ALIAS_MOVED)
		return;
	char **readers = NULL;
	size_t n = 0;
	char *ref = ev->kind == EV_ALIAS_MOVED ? xstrdup(ev->ref)
	            : xasprintf("%s/%s", ev->pipeline, ev->name);
	catalog_readers_ref(f, ref, ev->pipeline, &readers, &n);
	for (size_t i = 0; i < n; i++) {
		struct trigger **t = &sc->triggers;
		while (*t && strcmp((*t)->pipeline, readers[i]))
			t = &(*t)->next;
		if (*t) { /* already waiting: one run covers both */
			free(readers[i]);
			continue;
		}
		*t = xcalloc(1, sizeof **t);
		(*t)->pipeline = readers[i];
		(*t)->reason = xasprintf("input %s changed", ref);
	}
	free(readers);
	free(ref);
}

/* Hand pipeline to the capturer thread (takes both strings). */
static void queue_later(struct sched *sc, char *pipeline, char *trigger)
{
	struct trigger *t = xcalloc(1, sizeof *t);
	t->pipeline = pipeline;
	t->reason = trigger;
	pthread_mutex_lock(&sc->lock);
	struct trigger **at = &sc->work;
	while (*at)
		at = &(*at)->next;
	*at = t;
	pthread_cond_signal(&sc->work_cv);
	pthread_mutex_unlock(&sc->lock);
}

static void *capturer_main(void *arg)
{
	log_thread_name("capture");
	struct flowy *f = arg;
	struct sched *sc = f->sched;
	int urc = util_private_umask(022);
	if (urc < 0)
		log_error("capturer: no umask of its own: %s", strerror(-urc));
	pthread_mutex_lock(&sc->lock);
	for (;;) {
		while (!sc->work && !sc->stop)
			pthread_cond_wait(&sc->work_cv, &sc->lock);
		if (sc->stop)
			break;
		struct trigger *t = sc->work;
		sc->work = t->next;
		pthread_mutex_unlock(&sc->lock);
		char *why = NULL;
		struct run_request req = {.pipeline = t->pipeline, .trigger = t->reason};
		if (catalog_check(f, t->pipeline, NULL) && sched_queue(f, &req, NULL, &why) < 0)
			log_error("%s: %s queues no run: %s", t->pipeline, t->reason, why);
		free(why);
		free(t->pipeline);
		free(t->reason);
		free(t);
		pthread_mutex_lock(&sc->lock);
	}
	pthread_mutex_unlock(&sc->lock);
	return NULL;
}

/* Queue what changed and what was triggered; seconds until the next
 * change is due, or -1. */
static double queue_due(struct flowy *f)
{
	struct sched *sc = f->sched;
	char **due = NULL;
	size_t ndue = 0;
	double next = catalog_due(f, &due, &ndue);
	for (size_t i = 0; i < ndue; i++)
		queue_later(sc, due[i], xstrdup("change"));
	free(due);
	while (sc->triggers) {
		struct trigger *t = sc->triggers;
		sc->triggers = t->next;
		queue_later(sc, t->pipeline, t->reason);
		free(t);
	}
	return next;
}

/* ---- the thread -------------------------------------------------------- */

static void drain_wake(int fd)
{
	uint64_t v;
	if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN)
		log_debug("wake read: %s", strerror(errno));
}

/* Take the runs captured since the last pass into the thread's list,
 * in id order. */
static void take_incoming(struct sched *sc)
{
	pthread_mutex_lock(&sc->lock);
	while (sc->incoming) {
		struct run *r = sc->incoming, **t = &sc->runs;
		sc->incoming = r->next;
		while (*t && (*t)->id < r->id)
			t = &(*t)->next;
		r->next = *t;
		*t = r;
	}
	pthread_mutex_unlock(&sc->lock);
}

/* Carry out what was asked of each run since the last pass. */
static void take_requests(struct sched *sc)
{
	pthread_mutex_lock(&sc->lock);
	for (struct run *r = sc->runs; r; r = r->next) {
		int cancel = r->want_cancel && !r->end, pause = r->want_pause;
		pthread_mutex_unlock(&sc->lock);
		if (cancel)
			run_stop(r, "cancelled", "cancelled");
		else if (!r->end)
			run_set_paused(r, pause);
		pthread_mutex_lock(&sc->lock);
	}
	pthread_mutex_unlock(&sc->lock);
}

/* End and drop the runs that settled. Only this thread removes runs, so
 * walking the list without the lock is safe; unlinking takes it. */
static void end_settled(struct sched *sc)
{
	for (struct run **p = &sc->runs; *p;) {
		struct run *r = *p;
		if (!run_settled(r)) {
			p = &r->next;
			continue;
		}
		run_end(r);
		pthread_mutex_lock(&sc->lock);
		*p = r->next;
		pthread_mutex_unlock(&sc->lock);
		log_debug("run %lld: ended", (long long)r->id);
		run_free(r);
	}
}

static void *sched_main(void *arg)
{
	log_thread_name("sched");
	struct flowy *f = arg;
	struct sched *sc = f->sched;
	struct pollfd *pfd = NULL;
	struct run_pollref *ref = NULL;
	size_t cap = 0;
	/* Steps, snapshots and history.git get the usual umask, not the
	 * daemon's 0. */
	int urc = util_private_umask(022);
	if (urc < 0)
		log_error("scheduler: no umask of its own: %s", strerror(-urc));
	/* The steps it starts inherit this thread's bounding set. */
	if (geteuid() == 0 && (urc = exec_bound_caps()) < 0)
		log_error("scheduler: cannot bound its steps' capabilities (each step "
		          "drops them itself): %s", strerror(-urc));
	for (;;) {
		double next = queue_due(f);
		pthread_mutex_lock(&sc->lock);
		int stop = sc->stop;
		pthread_mutex_unlock(&sc->lock);
		if (stop)
			break;
		take_incoming(sc);
		take_requests(sc);
		take_moves(f, sc);

		int slots = f->jobs;
		for (struct run *r = sc->runs; r; r = r->next)
			slots -= (int)(r->running - r->remote);
		for (struct run *r = sc->runs; r; r = r->next)
			if (!r->end)
				run_advance(r, &slots);
		end_settled(sc);
		size_t nsteps = 0; /* steps and foreach tasks, as laid out now */
		for (struct run *r = sc->runs; r; r = r->next)
			nsteps += r->nunits;

		/* Sleep until an exit, a log line, a wake-up or the nearest timer. */
		if (2 * nsteps + 1 > cap) {
			cap = 2 * nsteps + 1;
			pfd = xrealloc(pfd, cap * sizeof *pfd);
			ref = xrealloc(ref, cap * sizeof *ref);
		}
		size_t np = 1;
		double now = util_now();
		pfd[0] = (struct pollfd){.fd = sc->wake_fd, .events = POLLIN};
		for (struct run *r = sc->runs; r; r = r->next)
			np += run_pollfds(r, pfd + np, ref + np, now, &next);
		if (np > 1 && (next < 0 || next > METRICS_TICK))
			next = METRICS_TICK;
		if (next < 0 || next > 1)
			next = 1; /* changes are due by the clock, too */
		if (poll(pfd, np, (int)(next * 1000) + 1) < 0 && errno != EINTR) {
			log_error("scheduler: poll: %s", strerror(errno));
			continue;
		}
		if (pfd[0].revents)
			drain_wake(sc->wake_fd);
		for (size_t p = 1; p < np; p++)
			if (pfd[p].revents && ref[p].what == RUN_FD_LOG)
				run_ready(&ref[p], pfd[p].revents);
		for (struct run *r = sc->runs; r; r = r->next)
			run_tick(r);
		for (size_t p = 1; p < np; p++)
			if (pfd[p].revents && ref[p].what == RUN_FD_EXIT)
				run_ready(&ref[p], pfd[p].revents);
	}
	free(ref);
	free(pfd);
	/* Whatever is still queued or running ends in this daemon. */
	take_incoming(sc);
	for (struct run *r = sc->runs; r; r = r->next)
		if (!r->end)
			run_stop(r, "interrupted", "interrupted: flowyfs stopped");
	end_settled(sc);
	return NULL;
}

/* Is pid still the step (run, step) a dead daemon started? Its
 * environment says, so a reused pid is never mistaken for it. */
static int is_our_step(int pid, int64_t run, const char *step)
{
	char *path = xasprintf("/proc/%d/environ", pid), *env = NULL;
	size_t len = 0;
	int rc = util_read_file(path, &env, &len);
	free(path);
	if (rc < 0)
		return 0;
	char *want_run = xasprintf("FLOWY_RUN=%lld", (long long)run);
	char *want_step = xasprintf("FLOWY_STEP=%s", step);
	int run_ok = 0, step_ok = 0;
	for (size_t i = 0; i < len; i += strlen(env + i) + 1) {
		run_ok |= !strcmp(env + i, want_run);
		step_ok |= !strcmp(env + i, want_step);
	}
	free(want_step);
	free(want_run);
	free(env);
	return run_ok && step_ok;
}

void sched_stop_stray(int64_t run, const char *step, int pid, void *arg)
{
	if (pid > 0 && is_our_step(pid, run, step)) {
		log_info("stopping step %s of run %lld left running by a daemon that "
		         "died (pid %d)", step, (long long)run, pid);
		kill(-pid, SIGKILL);
	}
}

int sched_start(struct flowy *f)
{
	struct sched *sc = xcalloc(1, sizeof *sc);
	pthread_mutex_init(&sc->lock, NULL);
	sc->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sc->wake_fd < 0) {
		int rc = -errno;
		pthread_mutex_destroy(&sc->lock);
		free(sc);
		return rc;
	}
	/* The directory holding this store's scratch (and other stores'). */
	f->scratch_cover = xstrdup(f->scratch_dir);
	*strrchr(f->scratch_cover, '/') = '\0';
	f->slots = slots_new(f);
	f->snapshots = snapshot_cache_new();
	f->sched = sc;
	int src = syncer_start(&f->syncer, SYNCER_EVERY, wake_sched, f);
	if (src < 0)
		log_error("no syncer thread (%s): outputs are made durable inline",
		          strerror(-src));
	pthread_cond_init(&sc->work_cv, NULL);
	events_subscribe(f->events, on_event, sc);
	int rc = -pthread_create(&sc->capturer, NULL, capturer_main, f);
	if (!rc && (rc = -pthread_create(&sc->thread, NULL, sched_main, f))) {
		pthread_mutex_lock(&sc->lock);
		sc->stop = 1;
		pthread_cond_signal(&sc->work_cv);
		pthread_mutex_unlock(&sc->lock);
		pthread_join(sc->capturer, NULL);
	}
	if (rc) {
		syncer_stop(f->syncer);
		f->syncer = NULL;
		close(sc->wake_fd);
		pthread_cond_destroy(&sc->work_cv);
		pthread_mutex_destroy(&sc->lock);
		snapshot_cache_free(f->snapshots);
		f->snapshots = NULL;
		slots_free(f->slots);
		f->slots = NULL;
		free(f->scratch_cover);
		f->scratch_cover = NULL;
		free(sc);
		f->sched = NULL;
	}
	return rc;
}

void sched_stop(struct flowy *f)
{
	struct sched *sc = f->sched;
	if (!sc)
		return;
	pthread_mutex_lock(&sc->lock);
	sc->stop = 1;
	__atomic_store_n(&sc->abort_io, 1, __ATOMIC_RELAXED);
	for (struct capture *c = sc->capturing; c; c = c->next)
		__atomic_store_n(&c->stop, 1, __ATOMIC_RELAXED);
	for (struct run *r = sc->runs; r; r = r->next)
		__atomic_store_n(&r->abort_io, 1, __ATOMIC_RELAXED);
	for (struct run *r = sc->incoming; r; r = r->next)
		__atomic_store_n(&r->abort_io, 1, __ATOMIC_RELAXED);
	pthread_cond_signal(&sc->work_cv);
	pthread_mutex_unlock(&sc->lock);
	sched_wake(f);
	pthread_join(sc->capturer, NULL);
	pthread_join(sc->thread, NULL);
	syncer_stop(f->syncer); /* after the runs: each waited for its job */
	f->syncer = NULL;
	close(sc->wake_fd);
	for (struct trigger *t = sc->triggers, *next; t; t = next) {
		next = t->next;
		free(t->pipeline);
		free(t->reason);
		free(t);
	}
	for (struct trigger *t = sc->moves, *next; t; t = next) {
		next = t->next;
		free(t->pipeline);
		free(t);
	}
	for (struct trigger *t = sc->work, *next; t; t = next) {
		next = t->next;
		free(t->pipeline);
		free(t->reason);
		free(t);
	}
	pthread_cond_destroy(&sc->work_cv);
	snapshot_cache_free(f->snapshots);
	f->snapshots = NULL;
	slots_free(f->slots); /* their namespaces hold copies of the mount */
	f->slots = NULL;
	free(f->scratch_cover);
	f->scratch_cover = NULL;
	pthread_mutex_destroy(&sc->lock);
	free(sc);
	f->sched = NULL;
}
