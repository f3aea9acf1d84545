/*
 * hooks.c - the hook runner (hooks.h): an event subscriber that only
 * copies, and one thread that matches, starts, watches and records hooks.
 *
 * The thread keeps one slot per hook name with that hook's queue of
 * events, so a slow or hung hook delays only its own later events. It
 * sleeps in one poll() over the wake-up eventfd and every running hook's
 * exit (pidfd) and output pipe, with the nearest deadline as timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "flowyfs/exec.h"
#include "flowyfs/flowy.h"
#include "flowyfs/hooks.h"
#include "flowyfs/log.h"
#include "flowyfs/util.h"
#include "flowyfs/view.h"

struct hjob {
	struct event *ev;     /* own copy */
	char *json;           /* the event as the hook reads it */
	struct hjob *next;
};

struct hslot {
	char *name;
	struct hjob *head, *tail;
	size_t queued;
	struct hjob *job;     /* running, or NULL */
	struct exec_proc proc;
	int out_fd;           /* read end of its output pipe, -1 at EOF */
	struct strbuf out;
	uint64_t cut;         /* output bytes past HOOKS_OUT_MAX, dropped */
	double started, deadline;
	int term_sent, timed_out;
	struct hslot *next;
};

struct hooks {
	struct flowy *f;
	pthread_t thread;
	pthread_mutex_t lock;
	int wake_fd;
	int stop;                     /* lock */
	struct hjob *inbox, **inbox_end; /* events not yet dispatched (lock) */
	struct hslot *slots;          /* runner thread only */
	/* The names in hooks/, sorted, and the directory's state when they
	 * were read (runner thread only; see list_hooks). */
	char **names;
	size_t nnames;
	int names_ok;
	struct stat names_st;
	double names_at;
	/* What the last listing says no hook matches, for the subscriber
	 * (lock): a bit per event kind, with the directory's state it holds
	 * for (quiet 0: none known). */
	uint32_t quiet;
	struct stat quiet_st;
	double quiet_at;
	double timeout;
	char *log_path, *out_dir;
};

/* ---- pure parts -------------------------------------------------------- */

int hooks_match(const char *hook, const char *event)
{
	size_t n = strlen(hook), e = strlen(event);
	if (!n || hook[0] == '.' || hook[n - 1] == '~')
		return 0;
	if (!strcmp(hook, event))
		return 1;
	if (n > e + 1 && !strncmp(hook, event, e) && hook[e] == '.')
		return 1;
	return n > 4 && !strncmp(hook, "any.", 4);
}

static void add_time(cJSON *o, const char *key, double t)
{
	struct strbuf sb = {0};
	view_fmt_time(&sb, t);
	cJSON_AddStringToObject(o, key, sb.buf);
	strbuf_release(&sb);
}

static void add_string_or_null(cJSON *o, const char *key, const char *v)
{
	if (v)
		cJSON_AddStringToObject(o, key, v);
	else
		cJSON_AddNullToObject(o, key);
}

char *hooks_json(const struct event *ev, const char *params_json,
                 const cJSON *outputs, const cJSON *metrics)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "event", events_name(ev->kind));
	add_time(o, "time", ev->time);
	add_string_or_null(o, "pipeline", ev->pipeline);
	cJSON_AddNumberToObject(o, "run", (double)ev->run);
	add_string_or_null(o, "step", ev->step);
	add_string_or_null(o, "status", ev->status);
	add_string_or_null(o, "error", ev->error);
	cJSON *params = params_json ? cJSON_Parse(params_json) : NULL;
	cJSON_AddItemToObject(o, "params", params ? params : cJSON_CreateObject());
	cJSON_AddItemToObject(o, "outputs", outputs ? cJSON_Duplicate(outputs, 1)
	                                            : cJSON_CreateObject());
	cJSON_AddItemToObject(o, "metrics", metrics ? cJSON_Duplicate(metrics, 1)
	                                            : cJSON_CreateObject());
	if (ev->kind == EV_ARTIFACT_PUBLISHED) {
		add_string_or_null(o, "output", ev->name);
		if (ev->hash) {
			char *h = xasprintf("sha256:%s", ev->hash);
			cJSON_AddStringToObject(o, "hash", h);
			free(h);
		} else {
			cJSON_AddNullToObject(o, "hash");
		}
	}
	if (ev->kind == EV_ALERT) {
		add_string_or_null(o, "alert", ev->alert);
		add_string_or_null(o, "metric", ev->metric);
		cJSON_AddNumberToObject(o, "value", ev->value);
		cJSON_AddNumberToObject(o, "threshold", ev->threshold);
	}
	view_json_numbers(o);
	char *text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!text)
		util_oom();
	char *line = xasprintf("%s\n", text);
	cJSON_free(text);
	return line;
}

char *hooks_log_line(double start, const char *event, const char *hook,
                     const char *exit, double duration)
{
	struct strbuf sb = {0};
	view_fmt_time(&sb, start);
	strbuf_printf(&sb, "\t%s\t%s\t%s\t", event, hook, exit);
	view_fmt_secs(&sb, duration);
	strbuf_puts(&sb, "\n");
	return strbuf_detach(&sb, NULL);
}

/* ---- the record -------------------------------------------------------- */

/* Keep hooks.log under HOOKS_LOG_MAX: past it, keep its newer half. */
static void log_trim(const char *path, off_t size)
{
	if (size <= HOOKS_LOG_MAX)
		return;
	char *text = NULL;
	size_t len = 0;
	int rc = util_read_file(path, &text, &len);
	if (!rc) {
		const char *keep = text + len - HOOKS_LOG_MAX / 2;
		const char *nl = memchr(keep, '\n', (size_t)(text + len - keep));
		keep = nl ? nl + 1 : text + len;
		rc = util_write_file(path, keep, (size_t)(text + len - keep));
	}
	if (rc < 0)
		log_error("%s: cannot shorten it: %s", path, strerror(-rc));
	free(text);
}

static void record(struct hooks *h, const struct hslot *s, const struct event *ev,
                   double start, const char *exit, double duration)
{
	char *line = hooks_log_line(start, events_name(ev->kind), s->name, exit, duration);
	int fd = open(h->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	struct stat st;
	if (fd < 0 || write(fd, line, strlen(line)) != (ssize_t)strlen(line) ||
	    fstat(fd, &st) < 0)
		log_error("%s: %s", h->log_path, strerror(errno));
	else
		log_trim(h->log_path, st.st_size);
	if (fd >= 0 && close(fd) < 0)
		log_error("%s: %s", h->log_path, strerror(errno));
	free(line);
}

/* Replace .out/<hook> with text. */
static void save_output(struct hooks *h, const char *hook, const char *text, size_t len)
{
	char *path = xasprintf("%s/%s", h->out_dir, hook);
	int rc = util_write_file(path, text, len);
	if (rc < 0)
		log_error("%s: %s", path, strerror(-rc));
	free(path);
}

/* ---- the subscriber ---------------------------------------------------- */

static int same_dir(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

int hooks_listing_holds(const struct stat *listed, double at, const struct stat *st)
{
	return same_dir(st, listed) &&
	       at - ((double)st->st_mtim.tv_sec + st->st_mtim.tv_nsec / 1e9) > 1 &&
	       at - ((double)st->st_ctim.tv_sec + st->st_ctim.tv_nsec / 1e9) > 1;
}

/* An event no hook can take is dropped here, in the emitting thread, at
 * the cost of a stat of hooks/: a run's thousand step events then wake
 * the runner never (each wake-up took the scheduler's CPU from it in the
 * middle of starting the next step). When hooks/ changed since the
 * runner's listing, the event goes to the runner, which lists again. */
static void on_event(struct flowy *f, const struct event *ev, void *arg)
{
	struct hooks *h = arg;
	if (ev->kind == EV_METRIC)
		return;
	struct stat st;
	int looked = stat(f->hooks_dir, &st) == 0;
	pthread_mutex_lock(&h->lock);
	int untaken = looked && (h->quiet & (1u << ev->kind)) &&
	              hooks_listing_holds(&h->quiet_st, h->quiet_at, &st);
	pthread_mutex_unlock(&h->lock);
	if (untaken)
		return;
	struct hjob *j = xcalloc(1, sizeof *j);
	j->ev = events_copy(ev);
	pthread_mutex_lock(&h->lock);
	int was_empty = !h->inbox; /* else the runner has a wake-up coming */
	*h->inbox_end = j;
	h->inbox_end = &j->next;
	pthread_mutex_unlock(&h->lock);
	uint64_t one = 1;
	if (was_empty && write(h->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
		log_error("hooks: cannot wake the runner: %s", strerror(errno));
}

/* ---- dispatching ------------------------------------------------------- */

/* The JSON of ev, with the run's params, the step's outputs and its last
 * metric values from the database; an alert's metrics are the value that
 * fired it (later values may have come meanwhile). */
static char *event_json(struct flowy *f, const struct event *ev)
{
	char *params = ev->run ? db_text(f->db, "SELECT params FROM runs WHERE id=?", "i",
	                                 ev->run) : NULL;
	cJSON *outputs = cJSON_CreateObject(), *metrics = cJSON_CreateObject();
	if (ev->kind == EV_ALERT) {
		cJSON_AddNumberToObject(metrics, ev->metric ? ev->metric : "?", ev->value);
	} else if (ev->step) {
		db_lock(f->db);
		sqlite3_stmt *st = db_prepare(f->db, "SELECT name, hash FROM step_io WHERE "
		                              "run_id=? AND step=? AND dir='out' ORDER BY name",
		                              "it", ev->run, ev->step);
		while (st && sqlite3_step(st) == SQLITE_ROW) {
			char *v = xasprintf("sha256:%s", sqlite3_column_text(st, 1));
			cJSON_AddStringToObject(outputs, (const char *)sqlite3_column_text(st, 0), v);
			free(v);
		}
		db_finish(f->db, st);
		st = db_prepare(f->db, "SELECT m.name, m.value FROM metrics m WHERE "
		                "m.run_id=? AND m.step=? AND m.idx=(SELECT max(idx) FROM "
		                "metrics WHERE run_id=m.run_id AND step=m.step AND "
		                "name=m.name) ORDER BY m.name", "it", ev->run, ev->step);
		while (st && sqlite3_step(st) == SQLITE_ROW)
			cJSON_AddNumberToObject(metrics, (const char *)sqlite3_column_text(st, 0),
			                        sqlite3_column_double(st, 1));
		db_finish(f->db, st);
		db_unlock(f->db);
	}
	char *json = hooks_json(ev, params, outputs, metrics);
	cJSON_Delete(outputs);
	cJSON_Delete(metrics);
	free(params);
	return json;
}

static struct hslot *slot_for(struct hooks *h, const char *name)
{
	struct hslot **s = &h->slots;
	for (; *s; s = &(*s)->next)
		if (!strcmp((*s)->name, name))
			return *s;
	*s = xcalloc(1, sizeof **s);
	(*s)->name = xstrdup(name);
	(*s)->out_fd = -1;
	(*s)->proc.pidfd = -1;
	return *s;
}

static void job_free(struct hjob *j)
{
	if (!j)
		return;
	events_free_copy(j->ev);
	free(j->json);
	free(j);
}

_Static_assert(EV_KIND_END <= 32, "an event kind is a bit of hooks_untaken's mask");

uint32_t hooks_untaken(char *const *names, size_t n)
{
	uint32_t untaken = 0;
	for (int k = 1; k < EV_KIND_END; k++) {
		size_t i = 0;
		while (i < n && !hooks_match(names[i], events_name(k)))
			i++;
		if (i == n)
			untaken |= 1u << k;
	}
	return untaken;
}

/* Tell the subscriber which events no hook of the listing takes. */
static void publish_quiet(struct hooks *h)
{
	uint32_t quiet = h->names_ok ? hooks_untaken(h->names, h->nnames) : 0;
	pthread_mutex_lock(&h->lock);
	h->quiet = quiet;
	h->quiet_st = h->names_st;
	h->quiet_at = h->names_at;
	pthread_mutex_unlock(&h->lock);
}

static void names_free(struct hooks *h)
{
	for (size_t i = 0; i < h->nnames; i++)
		free(h->names[i]);
	free(h->names);
	h->names = NULL;
	h->nnames = 0;
	h->names_ok = 0;
	publish_quiet(h);
}

/* The names in hooks/ (not directories), sorted, in h->names: read again
 * only when the directory changed since (a run's thousand events cost
 * one stat each, not a listing each). A change within a second of the
 * last listing may share its timestamp, so a listing that recent is
 * never trusted. 0, or -1 when the directory cannot be read (logged;
 * the events of the batch then run no hook, as before a listing). */
static int list_hooks(struct hooks *h, const char *event)
{
	struct stat st;
	double now = util_now();
	if (stat(h->f->hooks_dir, &st) < 0) {
		log_error("hooks: %s: %s", h->f->hooks_dir, strerror(errno));
		names_free(h);
		return -1;
	}
	if (h->names_ok && hooks_listing_holds(&h->names_st, h->names_at, &st))
		return 0;
	names_free(h);
	DIR *d = opendir(h->f->hooks_dir);
	if (!d) {
		log_error("hooks: %s: %s", h->f->hooks_dir, strerror(errno));
		return -1;
	}
	size_t cap = 0;
	struct dirent *e;
	int ok = 1;
	errno = 0;
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR) {
			GROW(h->names, cap, h->nnames);
			h->names[h->nnames++] = xstrdup(e->d_name);
		}
		errno = 0;
	}
	if (errno) {
		ok = 0;
		log_error("hooks: %s: %s (some hooks may not run for %s)",
		          h->f->hooks_dir, strerror(errno), event);
	}
	if (closedir(d) < 0)
		log_error("hooks: %s: %s", h->f->hooks_dir, strerror(errno));
	/* A stable order: by name. */
	for (size_t a = 1; a < h->nnames; a++)
		for (size_t b = a; b > 0 && strcmp(h->names[b - 1], h->names[b]) > 0; b--) {
			char *t = h->names[b];
			h->names[b] = h->names[b - 1];
			h->names[b - 1] = t;
		}
	h->names_ok = ok; /* a listing cut short is read again next time */
	h->names_st = st;
	h->names_at = now;
	publish_quiet(h);
	return 0;
}

/* Queue event j (taken over) for every matching hook of h->names (as
 * list_hooks left them for the batch j is part of). */
static void dispatch(struct hooks *h, struct hjob *j)
{
	const char *event = events_name(j->ev->kind);
	char **names = NULL;
	size_t n = 0, cap = 0;
	for (size_t i = 0; i < h->nnames; i++)
		if (hooks_match(h->names[i], event)) {
			GROW(names, cap, n);
			names[n++] = xstrdup(h->names[i]);
		}
	if (n)
		j->json = event_json(h->f, j->ev);
	for (size_t i = 0; i < n; i++) {
		struct hslot *s = slot_for(h, names[i]);
		if (s->queued >= HOOKS_QUEUE_MAX) {
			record(h, s, j->ev, util_now(), "dropped", 0);
		} else {
			struct hjob *c = xcalloc(1, sizeof *c);
			c->ev = events_copy(j->ev);
			c->json = xstrdup(j->json);
			if (s->tail)
				s->tail->next = c;
			else
				s->head = c;
			s->tail = c;
			s->queued++;
		}
		free(names[i]);
	}
	free(names);
	job_free(j);
}

/* ---- running one hook -------------------------------------------------- */

static int env_add(char ***env, size_t *n, size_t *cap, const char *key, const char *v)
{
	GROW(*env, *cap, *n + 1);
	(*env)[(*n)++] = xasprintf("%s=%s", key, v ? v : "");
	(*env)[*n] = NULL;
	return 0;
}

static char **hook_env(struct hooks *h, const struct hslot *s, const struct event *ev)
{
	char **env = NULL, run[32];
	size_t n = 0, cap = 0;
	snprintf(run, sizeof run, "%lld", (long long)ev->run);
	const char *home = getenv("HOME");
	env_add(&env, &n, &cap, "PATH", "/usr/local/bin:/usr/bin:/bin");
	env_add(&env, &n, &cap, "HOME", home ? home : "/");
	env_add(&env, &n, &cap, "LANG", "C.UTF-8");
	env_add(&env, &n, &cap, "FLOWY_EVENT", events_name(ev->kind));
	env_add(&env, &n, &cap, "FLOWY_RUN", ev->run ? run : "");
	env_add(&env, &n, &cap, "FLOWY_PIPELINE", ev->pipeline);
	env_add(&env, &n, &cap, "FLOWY_STEP", ev->step);
	env_add(&env, &n, &cap, "FLOWY_HOOK", s->name);
	env_add(&env, &n, &cap, "FLOWY_MOUNT", h->f->mnt);
	return env;
}

/* Record a hook that could not start, with why as its output. */
static void not_started(struct hooks *h, struct hslot *s, const char *exit,
                        const char *why)
{
	log_info("hook %s (%s): %s", s->name, events_name(s->job->ev->kind), why);
	char *text = xasprintf("%s\n", why);
	save_output(h, s->name, text, strlen(text));
	free(text);
	record(h, s, s->job->ev, util_now(), exit, 0);
	job_free(s->job);
	s->job = NULL;
}

/* Start the next job of slot s. */
static void slot_start(struct hooks *h, struct hslot *s)
{
	struct hjob *j = s->head;
	s->head = j->next;
	if (!s->head)
		s->tail = NULL;
	s->queued--;
	j->next = NULL;
	s->job = j;
	int hook_fd = -1, in_fd = -1, pp[2] = {-1, -1}, rc = 0;
	char *why = NULL;
	struct stat st;
	int dfd = open(h->f->hooks_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || (hook_fd = openat(dfd, s->name, O_RDONLY | O_NOFOLLOW |
	                                 O_NONBLOCK | O_CLOEXEC)) < 0 ||
	    fstat(hook_fd, &st) < 0) {
		rc = -errno;
		why = xasprintf("cannot open the hook: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
		rc = -EACCES;
		why = xasprintf("not executable (mode %04o): chmod +x hooks/%s to run it",
		                (unsigned)(st.st_mode & 07777), s->name);
		goto out;
	}
	in_fd = memfd_create("flowyfs-event", MFD_CLOEXEC);
	size_t len = strlen(j->json);
	if (in_fd < 0 || write(in_fd, j->json, len) != (ssize_t)len ||
	    lseek(in_fd, 0, SEEK_SET) < 0 || pipe2(pp, O_CLOEXEC) < 0) {
		rc = -errno;
		why = xasprintf("cannot pass the event to the hook: %s", strerror(errno));
		goto out;
	}
	char **env = hook_env(h, s, j->ev);
	/* fd 3 is the event, fd 4 the hook itself: run it from there, so
	 * it runs although the store is hidden and a rename cannot swap it. */
	struct exec_spec spec = {
		.cmd = "exec /proc/self/fd/4 <&3 3<&-", .cwd = "/", .envp = env,
		.out_fd = pp[1],
		.hide = {h->f->store, h->f->scratch_cover}, .nhide = h->f->scratch_cover ? 2 : 1,
		.ro_mount = h->f->mnt_dev ? h->f->mnt : NULL, .ro_flags = h->f->mnt_flags,
		.uid = geteuid(), .gid = getegid(),
		.fds = {in_fd, hook_fd}, .nfds = 2,
	};
	rc = exec_start(&s->proc, &spec, &why);
	util_strv_free(env);
out:
	if (dfd >= 0)
		close(dfd);
	if (hook_fd >= 0)
		close(hook_fd);
	if (in_fd >= 0)
		close(in_fd);
	if (pp[1] >= 0)
		close(pp[1]);
	if (rc < 0) {
		if (pp[0] >= 0)
			close(pp[0]);
		not_started(h, s, rc == -EACCES ? "not-executable" : "error",
		            why ? why : strerror(-rc));
		free(why);
		return;
	}
	free(why);
	if (fcntl(pp[0], F_SETFL, O_NONBLOCK) < 0)
		log_error("hooks: %s: %s", s->name, strerror(errno));
	s->out_fd = pp[0];
	strbuf_release(&s->out);
	s->cut = 0;
	s->started = util_now();
	s->deadline = s->started + h->timeout;
	s->term_sent = s->timed_out = 0;
}

/* Read what the hook wrote; at EOF close the pipe. */
static void slot_read(struct hslot *s)
{
	char buf[65536];
	for (int k = 0; k < 16; k++) {
		ssize_t n = read(s->out_fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close(s->out_fd);
			s->out_fd = -1;
			return;
		}
		size_t room = s->out.len < HOOKS_OUT_MAX ? HOOKS_OUT_MAX - s->out.len : 0;
		size_t keep = (size_t)n < room ? (size_t)n : room;
		strbuf_add(&s->out, buf, keep);
		s->cut += (size_t)n - keep;
	}
}

/* The hook exited: record it and free the slot for its next event. */
static void slot_finish(struct hooks *h, struct hslot *s)
{
	if (s->out_fd >= 0) {
		slot_read(s);
		if (s->out_fd >= 0) { /* something it left behind holds the pipe */
			close(s->out_fd);
			s->out_fd = -1;
		}
	}
	int code = exec_reap(&s->proc);
	double dur = util_now() - s->started;
	if (s->cut)
		strbuf_printf(&s->out, "\n[flowyfs: output cut at %d bytes, %llu more "
		              "dropped]\n", HOOKS_OUT_MAX, (unsigned long long)s->cut);
	if (s->timed_out)
		strbuf_printf(&s->out, "%s[flowyfs: stopped after the %gs timeout]\n",
		              s->out.len && s->out.buf[s->out.len - 1] != '\n' ? "\n" : "",
		              h->timeout);
	save_output(h, s->name, s->out.buf ? s->out.buf : "", s->out.len);
	char exit[32];
	if (s->timed_out)
		snprintf(exit, sizeof exit, "timeout");
	else
		snprintf(exit, sizeof exit, "%d", code);
	if (s->timed_out || code)
		log_info("hook %s (%s) %s%s", s->name, events_name(s->job->ev->kind),
		         s->timed_out ? "timed out" : "exited ", s->timed_out ? "" : exit);
	record(h, s, s->job->ev, s->started, exit, dur);
	strbuf_release(&s->out);
	job_free(s->job);
	s->job = NULL;
}

static void slot_timer(struct hooks *h, struct hslot *s, double now)
{
	if (now < s->deadline)
		return;
	if (!s->term_sent) {
		s->timed_out = s->term_sent = 1;
		exec_signal(&s->proc, SIGTERM);
		s->deadline = now + HOOKS_KILL_GRACE;
	} else {
		exec_signal(&s->proc, SIGKILL);
		s->deadline = now + 3600; /* the exit follows */
	}
}

/* ---- the thread -------------------------------------------------------- */

static void drop_queued(struct hooks *h, struct hslot *s)
{
	while (s->head) {
		struct hjob *j = s->head;
		s->head = j->next;
		record(h, s, j->ev, util_now(), "dropped", 0);
		job_free(j);
	}
	s->tail = NULL;
	s->queued = 0;
}

static void *runner_main(void *arg)
{
	log_thread_name("hooks");
	struct hooks *h = arg;
	struct pollfd *pfd = NULL;
	struct hslot **who = NULL;
	size_t cap = 0;
	int stopping = 0;
	double stop_at = 0;
	for (;;) {
		pthread_mutex_lock(&h->lock);
		struct hjob *in = h->inbox;
		h->inbox = NULL;
		h->inbox_end = &h->inbox;
		int stop = h->stop;
		pthread_mutex_unlock(&h->lock);
		/* One look at hooks/ for the whole batch. */
		int listed = in ? list_hooks(h, events_name(in->ev->kind)) : 0;
		while (in) {
			struct hjob *next = in->next;
			in->next = NULL;
			if (listed < 0)
				job_free(in);
			else
				dispatch(h, in);
			in = next;
		}
		double now = util_now();
		if (stop && !stopping) {
			stopping = 1;
			stop_at = now;
			for (struct hslot *s = h->slots; s; s = s->next) {
				drop_queued(h, s);
				if (s->job && !s->term_sent) {
					s->timed_out = s->term_sent = 1;
					exec_signal(&s->proc, SIGTERM);
					s->deadline = now + HOOKS_KILL_GRACE;
				}
			}
		}
		size_t n = 0, running = 0;
		double wait = 3600;
		for (struct hslot *s = h->slots; s; s = s->next) {
			if (!s->job && s->head && !stopping)
				slot_start(h, s);
			if (!s->job)
				continue;
			running++;
			slot_timer(h, s, now);
			if (s->deadline - now < wait)
				wait = s->deadline - now;
		}
		if (stopping && (!running || now - stop_at > 2 * HOOKS_KILL_GRACE + 1))
			break;
		if (cap < 2 * running + 1) {
			cap = 2 * running + 1;
			pfd = xrealloc(pfd, cap * sizeof *pfd);
			who = xrealloc(who, cap * sizeof *who);
		}
		pfd[n++] = (struct pollfd){.fd = h->wake_fd, .events = POLLIN};
		for (struct hslot *s = h->slots; s; s = s->next) {
			if (!s->job)
				continue;
			who[n] = s;
			pfd[n++] = (struct pollfd){.fd = s->proc.pidfd, .events = POLLIN};
			if (s->out_fd >= 0) {
				who[n] = s;
				pfd[n++] = (struct pollfd){.fd = s->out_fd, .events = POLLIN};
			}
		}
		int ms = wait < 0 ? 0 : (int)(wait * 1000) + 1;
		if (poll(pfd, n, ms) < 0 && errno != EINTR) {
			log_error("hooks: poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents) {
			uint64_t v;
			if (read(h->wake_fd, &v, sizeof v) < 0 && errno != EAGAIN)
				log_error("hooks: wake: %s", strerror(errno));
		}
		for (size_t i = 1; i < n; i++)
			if (pfd[i].revents && pfd[i].fd == who[i]->out_fd)
				slot_read(who[i]);
		for (size_t i = 1; i < n; i++)
			if (pfd[i].revents && who[i]->job && pfd[i].fd == who[i]->proc.pidfd)
				slot_finish(h, who[i]);
	}
	for (struct hslot *s = h->slots; s; s = s->next)
		if (s->job) { /* past every grace: what is left is killed */
			exec_signal(&s->proc, SIGKILL);
			slot_finish(h, s);
		}
	free(pfd);
	free(who);
	return NULL;
}

int hooks_start(struct flowy *f, double timeout)
{
	struct hooks *h = xcalloc(1, sizeof *h);
	h->f = f;
	h->timeout = timeout;
	h->inbox_end = &h->inbox;
	h->log_path = xasprintf("%s/hooks.log", f->events_dir);
	h->out_dir = xasprintf("%s/out", f->events_dir);
	int rc = util_mkdir_p(h->out_dir, 0755);
	if (rc < 0)
		goto fail;
	h->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->wake_fd < 0) {
		rc = -errno;
		goto fail;
	}
	pthread_mutex_init(&h->lock, NULL);
	if ((rc = -pthread_create(&h->thread, NULL, runner_main, h))) {
		pthread_mutex_destroy(&h->lock);
		close(h->wake_fd);
		goto fail;
	}
	events_subscribe(f->events, on_event, h);
	f->hooks = h;
	return 0;
fail:
	free(h->log_path);
	free(h->out_dir);
	free(h);
	return rc;
}

void hooks_stop(struct flowy *f)
{
	struct hooks *h = f->hooks;
	if (!h)
		return;
	events_unsubscribe(f->events, on_event, h);
	pthread_mutex_lock(&h->lock);
	h->stop = 1;
	pthread_mutex_unlock(&h->lock);
	uint64_t one = 1;
	if (write(h->wake_fd, &one, sizeof one) < 0)
		log_error("hooks: cannot wake the runner: %s", strerror(errno));
	pthread_join(h->thread, NULL);
	/* Events that came in after the thread's last look. */
	for (struct hjob *j = h->inbox, *next; j; j = next) {
		next = j->next;
		job_free(j);
	}
	for (struct hslot *s = h->slots, *next; s; s = next) {
		next = s->next;
		free(s->name);
		free(s);
	}
	names_free(h);
	close(h->wake_fd);
	pthread_mutex_destroy(&h->lock);
	free(h->log_path);
	free(h->out_dir);
	free(h);
	f->hooks = NULL;
}
