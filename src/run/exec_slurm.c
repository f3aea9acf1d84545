/*
 * exec_slurm.c - the Slurm executor (executor.h, exec_slurm.h).
 *
 * Compute nodes cannot see this machine's mount or store, so a step of
 * this executor gets its scratch under --shared-dir: the snapshot's code
 * files, in/<name> links to its inputs materialized once per content hash
 * in <shared>/<store>/objects/ (raw objects hard-linked or reflinked when
 * the file system allows, compressed ones decompressed once and reused by
 * every later step), an empty out/, and .flowy/ with the batch script,
 * the params, the log and the metrics file the job appends to.
 *
 * start() writes the script and hands the job to the poller, one thread
 * per daemon, which owns every call to Slurm: it submits new jobs with
 * `sbatch --parsable` (the tasks of a foreach step started together as
 * one job array, `concurrency` as its % limit), cancels with one `scancel`
 * per tick, learns states with one `squeue` call for all the daemon's
 * jobs per interval (the interval doubles while nothing changes, up to a
 * maximum), copies what the jobs append to their log and metrics files
 * into the daemon's log pipe and metrics file, and notices a job's end by
 * the exit code file its script renames into place as its last act (or
 * by squeue's final state when it died before). Before an end is told to
 * the scheduler (an eventfd per job: the executor's pollable fd) the
 * poller waits, bounded, until the declared outputs are visible, reopening
 * and stating them (NFS caches attributes and negative lookups).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#include "flowyfs/exec_slurm.h"
#include "flowyfs/executor.h"
#include "flowyfs/log.h"
#include "flowyfs/resources.h"
#include "flowyfs/run.h"
#include "flowyfs/workspace.h"

extern char **environ;

#define TICK 0.5           /* seconds between the poller's rounds */
#define COALESCE 0.1       /* wait for more starts before submitting */
#define BURST 3.0          /* ... but no longer than this */
#define NFS_WAIT 10.0      /* bound on waiting for an exit code or outputs */
#define MAX_IDS 500        /* more jobs than this: squeue -u, not -j */

/* ---- pure parts: script, states, squeue output ----------------------- */

/* Single-quote s for /bin/sh. */
static void sh_quote(struct strbuf *sb, const char *s)
{
	strbuf_puts(sb, "'");
	for (; *s; s++)
		if (*s == '\'')
			strbuf_puts(sb, "'\\''");
		else
			strbuf_add(sb, s, 1);
	strbuf_puts(sb, "'");
}

static const cJSON *res_get(const struct slurm_script *sc, const char *key)
{
	const cJSON *v = sc->resources ?
		cJSON_GetObjectItemCaseSensitive(sc->resources, key) : NULL;
	if (!v && sc->presources)
		v = cJSON_GetObjectItemCaseSensitive(sc->presources, key);
	return v;
}

/* An #SBATCH value must stay on its line. */
static int one_line(const char *s)
{
	return !strchr(s, '\n') && !strchr(s, '\r');
}

int exec_slurm_script(const struct slurm_script *sc, struct strbuf *out, char **err)
{
	const cJSON *v;
	struct strbuf sb = {0};
	int rc = 0;

	strbuf_puts(&sb, "#!/bin/sh\n");
	if (!one_line(sc->name) || !one_line(sc->dir)) {
		*err = xstrdup("slurm: the job's name or directory holds a newline");
		rc = -EINVAL;
		goto out;
	}
	strbuf_printf(&sb, "#SBATCH --job-name=%s\n", sc->name);
	strbuf_printf(&sb, "#SBATCH --output=%s/.flowy/slurm.out\n", sc->dir);
	strbuf_printf(&sb, "#SBATCH --chdir=%s\n", sc->dir);
	if ((v = res_get(sc, "cpus")) && cJSON_IsNumber(v))
		strbuf_printf(&sb, "#SBATCH --cpus-per-task=%d\n", (int)v->valuedouble);
	if ((v = res_get(sc, "mem"))) {
		uint64_t b;
		if (!cJSON_IsString(v) || resources_bytes(v->valuestring, &b) < 0) {
			*err = xstrdup("slurm: resources.mem is not a size such as \"8G\"");
			rc = -EINVAL;
			goto out;
		}
		strbuf_printf(&sb, "#SBATCH --mem=%lluM\n",
		              (unsigned long long)((b + (1 << 20) - 1) >> 20));
	}
	if ((v = res_get(sc, "gpus")) && cJSON_IsNumber(v) && v->valuedouble >= 1)
		strbuf_printf(&sb, "#SBATCH --gpus=%d\n", (int)v->valuedouble);
	double secs = 0;
	if ((v = res_get(sc, "time"))) {
		secs = cJSON_IsString(v) ? resources_seconds(v->valuestring) : -1;
		if (secs <= 0) {
			*err = xstrdup("slurm: resources.time is not a duration such as \"2h\"");
			rc = -EINVAL;
			goto out;
		}
	} else if (sc->timeout > 0) {
		secs = sc->timeout + 60; /* the daemon stops it first; this is for
		                            when the daemon is gone */
	}
	if (secs > 0)
		strbuf_printf(&sb, "#SBATCH --time=%llu\n",
		              (unsigned long long)((secs + 59) / 60));
	const cJSON *part = res_get(sc, "partition");
	if (!part && sc->slurm)
		part = cJSON_GetObjectItemCaseSensitive(sc->slurm, "partition");
	if (cJSON_IsString(part) && one_line(part->valuestring))
		strbuf_printf(&sb, "#SBATCH --partition=%s\n", part->valuestring);
	v = sc->slurm ? cJSON_GetObjectItemCaseSensitive(sc->slurm, "account") : NULL;
	if (cJSON_IsString(v) && one_line(v->valuestring))
		strbuf_printf(&sb, "#SBATCH --account=%s\n", v->valuestring);
	v = sc->slurm ? cJSON_GetObjectItemCaseSensitive(sc->slurm, "args") : NULL;
	for (const cJSON *a = cJSON_IsArray(v) ? v->child : NULL; a; a = a->next) {
		if (!cJSON_IsString(a) || !one_line(a->valuestring)) {
			*err = xstrdup("slurm: an element of slurm.args is not one line of text");
			rc = -EINVAL;
			goto out;
		}
		strbuf_printf(&sb, "#SBATCH %s\n", a->valuestring);
	}
	strbuf_puts(&sb, "# generated by flowyfs: runs the step, then renames its exit "
	            "code into .flowy/exit\n");
	for (char *const *e = sc->env; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq)
			continue;
		strbuf_printf(&sb, "export %.*s=", (int)(eq - *e), *e);
		sh_quote(&sb, eq + 1);
		strbuf_puts(&sb, "\n");
	}
	strbuf_puts(&sb, "d=");
	sh_quote(&sb, sc->dir);
	strbuf_puts(&sb, "\ncd \"$d\" || exit 127\n"
	            "/bin/sh -c ");
	sh_quote(&sb, sc->cmd);
	strbuf_puts(&sb, " </dev/null >>\"$d/.flowy/log\" 2>&1\n"
	            "code=$?\n"
	            "printf '%s\\n' \"$code\" > \"$d/.flowy/exit.tmp\" &&\n"
	            "  mv -f \"$d/.flowy/exit.tmp\" \"$d/.flowy/exit\"\n"
	            "exit \"$code\"\n");
out:
	if (rc == 0)
		strbuf_add(out, sb.buf, sb.len);
	strbuf_release(&sb);
	return rc;
}

static const struct {
	const char *state;
	enum slurm_phase phase;
	int code;
	const char *why;
} states[] = {
	{"PENDING", SLURM_WAITING, 0, NULL},
	{"CONFIGURING", SLURM_WAITING, 0, NULL},
	{"REQUEUED", SLURM_WAITING, 0, NULL},
	{"REQUEUE_HOLD", SLURM_WAITING, 0, NULL},
	{"REQUEUE_FED", SLURM_WAITING, 0, NULL},
	{"RESV_DEL_HOLD", SLURM_WAITING, 0, NULL},
	{"SUSPENDED", SLURM_WAITING, 0, NULL},
	{"RUNNING", SLURM_RUNNING, 0, NULL},
	{"COMPLETING", SLURM_RUNNING, 0, NULL},
	{"STAGE_OUT", SLURM_RUNNING, 0, NULL},
	{"SIGNALING", SLURM_RUNNING, 0, NULL},
	{"RESIZING", SLURM_RUNNING, 0, NULL},
	{"COMPLETED", SLURM_ENDED, 1, NULL},
	{"FAILED", SLURM_ENDED, 1, NULL},
	{"CANCELLED", SLURM_ENDED, 128 + SIGTERM,
	 "the job was cancelled (scancel, or an administrator) (Slurm state CANCELLED)"},
	{"TIMEOUT", SLURM_ENDED, 128 + SIGTERM,
	 "the job reached its Slurm time limit (Slurm state TIMEOUT); raise "
	 "resources.time"},
	{"DEADLINE", SLURM_ENDED, 128 + SIGTERM,
	 "the job reached its deadline (Slurm state DEADLINE)"},
	{"OUT_OF_MEMORY", SLURM_ENDED, 128 + SIGKILL,
	 "the job ran out of memory (Slurm state OUT_OF_MEMORY); raise resources.mem"},
	{"NODE_FAIL", SLURM_ENDED, 1,
	 "the node running the job failed (Slurm state NODE_FAIL)"},
	{"BOOT_FAIL", SLURM_ENDED, 1,
	 "the node for the job failed to boot (Slurm state BOOT_FAIL)"},
	{"PREEMPTED", SLURM_ENDED, 128 + SIGTERM,
	 "the job was preempted by a job of higher priority (Slurm state PREEMPTED)"},
	{"REVOKED", SLURM_ENDED, 1,
	 "the job was revoked by another cluster (Slurm state REVOKED)"},
	{"SPECIAL_EXIT", SLURM_ENDED, 1,
	 "the job ended in Slurm state SPECIAL_EXIT"},
};
#define N_STATES (sizeof states / sizeof states[0])

static int state_row(const char *state)
{
	for (size_t k = 0; k < N_STATES; k++)
		if (!strcmp(states[k].state, state))
			return (int)k;
	return -1;
}

enum slurm_phase exec_slurm_phase(const char *state)
{
	int k = state_row(state);
	return k < 0 ? SLURM_RUNNING : states[k].phase;
}

const char *exec_slurm_explain(const char *state)
{
	int k = state_row(state);
	return k < 0 ? NULL : states[k].why;
}

int exec_slurm_code(const char *state)
{
	int k = state_row(state);
	return k < 0 || !states[k].code ? 1 : states[k].code;
}

double exec_slurm_backoff(double interval, int changed, double min, double max)
{
	if (changed)
		return min;
	return interval * 2 > max ? max : interval * 2 < min ? min : interval * 2;
}

/* Copy at most cap-1 bytes of [s, e) into dst, NUL-terminated. */
static void field(char *dst, size_t cap, const char *s, const char *e)
{
	size_t n = (size_t)(e - s) < cap - 1 ? (size_t)(e - s) : cap - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

size_t exec_slurm_parse(const char *text, struct slurm_row **out)
{
	size_t n = 0, cap = 0;
	struct slurm_row *v = NULL;
	for (const char *line = text; line && *line;) {
		const char *end = strchr(line, '\n');
		if (!end)
			end = line + strlen(line);
		const char *b1 = memchr(line, '|', (size_t)(end - line));
		const char *b2 = b1 ? memchr(b1 + 1, '|', (size_t)(end - b1 - 1)) : NULL;
		if (b1 && b1 > line && (size_t)(b1 - line) < sizeof v->id) {
			GROW(v, cap, n);
			struct slurm_row *row = &v[n];
			field(row->id, sizeof row->id, line, b1);
			field(row->state, sizeof row->state, b1 + 1, b2 ? b2 : end);
			field(row->reason, sizeof row->reason, b2 ? b2 + 1 : end, end);
			/* "CANCELLED by 0" is CANCELLED */
			char *sp = strchr(row->state, ' ');
			if (sp)
				*sp = '\0';
			if (row->state[0])
				n++;
		}
		line = *end ? end + 1 : end;
	}
	*out = v;
	return n;
}

/* ---- the poller ------------------------------------------------------ */

enum jphase { J_NEW, J_SUBMITTED, J_DONE, J_ENDED };

struct sjob {
	struct sjob *next;
	char *dir;            /* the step's scratch (shared) */
	char *jobfile;        /* the store's file naming the job id, for runs/ */
	char *group;          /* tasks of one foreach step started together
	                         share an array; NULL for a plain job */
	int index;            /* array index (the task's number), or -1 */
	int limit;            /* array % limit, 0 none */
	char **outputs;       /* names expected in out/ (NULL for a when test) */
	size_t noutputs;
	int efd;              /* readable once the end is known */
	int log_fd;           /* the daemon's log pipe, -1 once closed */
	int metrics_fd;       /* the daemon's metrics file */
	off_t log_off, metrics_off;
	enum jphase phase;
	char id[48];          /* "123" or "123_4" once submitted */
	char state[32];       /* last state squeue gave */
	int absent;           /* no longer listed by squeue */
	int cancel;           /* scancel wanted (and not done yet) */
	int cancelled;        /* scancel done */
	int suspend;          /* 1 suspend, -1 resume wanted */
	int released;         /* reaped: the poller frees it */
	double deadline;      /* bound on waiting for exit code / outputs */
	int code;
	char *why;            /* a person's account of the end, or NULL */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	int open, stop, work;
	char *root;           /* <shared>/<store hash> */
	char *objects;        /* <root>/objects */
	struct sjob *jobs;
	double min, max, interval, next_poll, last_poll;
	long squeue_calls, calls;
	unsigned long seq;
} P = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

long exec_slurm_calls(void)
{
	pthread_mutex_lock(&P.lock);
	long n = P.squeue_calls;
	pthread_mutex_unlock(&P.lock);
	return n;
}

/* Run argv (searched in PATH) with the daemon's environment; its stdout
 * into out, its stderr into err; *status gets its wait status. 0 or
 * -errno when it could not be started. */
static int run_cmd(char *const argv[], struct strbuf *out, struct strbuf *err,
                   int *status)
{
	int po[2] = {-1, -1}, pe[2] = {-1, -1}, rc = 0;
	posix_spawn_file_actions_t fa;
	pid_t pid;

	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
		rc = -rc;
		goto out;
	}
	if ((rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) ||
	    (rc = posix_spawn_file_actions_adddup2(&fa, po[1], 1)) ||
	    (rc = posix_spawn_file_actions_adddup2(&fa, pe[1], 2)) ||
	    (rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ))) {
		posix_spawn_file_actions_destroy(&fa);
		rc = -rc;
		goto out;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	struct pollfd pf[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
	int open_fds = 2;
	while (open_fds > 0) {
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int k = 0; k < 2; k++) {
			if (pf[k].fd < 0 || !pf[k].revents)
				continue;
			char buf[4096];
			ssize_t n = read(pf[k].fd, buf, sizeof buf);
			if (n > 0) {
				strbuf_add(k ? err : out, buf, (size_t)n);
			} else if (n == 0 || errno != EINTR) {
				pf[k].fd = -1;
				open_fds--;
			}
		}
	}
	while (waitpid(pid, status, 0) < 0) {
		if (errno != EINTR) {
			rc = -errno;
			break;
		}
	}
out:
	for (int k = 0; k < 2; k++) {
		if (po[k] >= 0)
			close(po[k]);
		if (pe[k] >= 0)
			close(pe[k]);
	}
	return rc;
}

/* run_cmd for a call to Slurm, made with P.lock held: the lock is let go
 * while the command runs (the scheduler's starts and signals never wait
 * on Slurm), and the call is counted. */
static int slurm_call(char *const argv[], struct strbuf *out, struct strbuf *err,
                      int *status)
{
	pthread_mutex_unlock(&P.lock);
	int rc = run_cmd(argv, out, err, status);
	pthread_mutex_lock(&P.lock);
	P.calls++;
	return rc;
}

/* The first line of text, for an error. */
static char *first_line(const struct strbuf *sb)
{
	const char *t = sb->len ? sb->buf : "";
	return xstrndup(t, strcspn(t, "\n"));
}

/* Copy what path holds beyond *off into fd; a full pipe (EAGAIN) leaves
 * the rest for the next round. */
static void copy_new(const char *path, off_t *off, int fd)
{
	if (fd < 0)
		return;
	int in = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return;
	char buf[65536];
	for (;;) {
		ssize_t n = pread(in, buf, sizeof buf, *off);
		if (n <= 0)
			break;
		ssize_t w = write(fd, buf, (size_t)n);
		if (w <= 0)
			break;
		*off += w;
		if (w < n)
			break;
	}
	close(in);
}

static void copy_files(struct sjob *j)
{
	char *p = xasprintf("%s/.flowy/log", j->dir);
	copy_new(p, &j->log_off, j->log_fd);
	free(p);
	p = xasprintf("%s/.flowy/metrics", j->dir);
	copy_new(p, &j->metrics_off, j->metrics_fd);
	free(p);
}

/* The exit code the job's script renamed into place: 0 and *code, or
 * -ENOENT. Opened afresh each time (close-to-open consistency on NFS). */
static int read_exit(const struct sjob *j, int *code)
{
	char *p = xasprintf("%s/.flowy/exit", j->dir), *text = NULL;
	size_t len;
	int rc = util_read_file(p, &text, &len);
	free(p);
	if (rc < 0)
		return rc;
	char *end;
	long c = strtol(text, &end, 10);
	rc = end == text || c < 0 || c > 255 ? -EINVAL : 0;
	free(text);
	if (rc == 0)
		*code = (int)c;
	return rc;
}

/* Are the declared outputs all there? Reopens out/ and stats each. */
static int outputs_visible(const struct sjob *j)
{
	char *p = xasprintf("%s/out", j->dir);
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(p);
	if (fd < 0)
		return 0;
	int ok = 1;
	struct stat st;
	for (size_t o = 0; ok && o < j->noutputs; o++)
		ok = fstatat(fd, j->outputs[o], &st, AT_SYMLINK_NOFOLLOW) == 0;
	close(fd);
	return ok;
}

/* The job has ended (code, why as known): wait, bounded, for its outputs,
 * then tell the scheduler. Called under the lock. */
static void job_done(struct sjob *j, int code, char *why, double now)
{
	if (j->phase < J_DONE) {
		j->phase = J_DONE;
		j->code = code;
		j->why = why;
		if (!j->deadline)
			j->deadline = now + NFS_WAIT;
	} else {
		free(why);
	}
}

static void job_ended(struct sjob *j)
{
	copy_files(j);
	if (j->log_fd >= 0) {
		close(j->log_fd);
		j->log_fd = -1;
	}
	j->phase = J_ENDED;
	uint64_t one = 1;
	if (write(j->efd, &one, sizeof one) != sizeof one)
		log_error("slurm job %s: cannot signal its end: %s", j->id, strerror(errno));
}

/* Jobs known to have ended: hand them over once their outputs show (or
 * the wait is over). */
static void settle(double now)
{
	for (struct sjob *j = P.jobs; j; j = j->next) {
		if (j->phase != J_DONE)
			continue;
		if (j->released || j->code != 0 || !j->outputs || outputs_visible(j) ||
		    now >= j->deadline)
			job_ended(j);
	}
}

/* Submit what start() handed over: one sbatch per plain job, one per
 * group of tasks (a job array). Called under the lock, which it drops
 * around sbatch. */
static void submit(void)
{
	for (;;) {
		struct sjob *first = NULL;
		for (struct sjob *j = P.jobs; j && !first; j = j->next)
			if (j->phase == J_NEW && !j->cancel)
				first = j;
		if (!first)
			break;
		struct strbuf arr = {0}, script = {0};
		char *path;
		int n = 0;
		if (first->group) {
			/* Every new task of its group joins one array. */
			char *slash = strrchr(first->dir, '/');
			path = xasprintf("%.*s/.array-%lu.sh", (int)(slash - first->dir),
			                 first->dir, ++P.seq);
			char *head = xasprintf("%s/.flowy/job.sh", first->dir), *text = NULL;
			size_t len;
			if (util_read_file(head, &text, &len) == 0) {
				/* Its #SBATCH lines (but the output: each task's own). */
				for (char *l = text; *l;) {
					char *e = strchr(l, '\n');
					size_t ll = e ? (size_t)(e - l) : strlen(l);
					if (!strncmp(l, "#SBATCH", 7) && !strstr(l, "--output=") &&
					    !strstr(l, "--chdir="))
						strbuf_printf(&script, "%.*s\n", (int)ll, l);
					l += ll + (e ? 1 : 0);
				}
			}
			free(text);
			free(head);
			struct strbuf body = {0};
			strbuf_puts(&body, "case \"$SLURM_ARRAY_TASK_ID\" in\n");
			for (struct sjob *j = first; j; j = j->next) {
				if (j->phase != J_NEW || j->cancel || !j->group ||
				    strcmp(j->group, first->group))
					continue;
				strbuf_printf(&arr, "%s%d", n++ ? "," : "", j->index);
				strbuf_printf(&body, "%d) exec /bin/sh ", j->index);
				char *js = xasprintf("%s/.flowy/job.sh", j->dir);
				sh_quote(&body, js);
				free(js);
				strbuf_puts(&body, " ;;\n");
			}
			strbuf_puts(&body, "esac\nexit 127\n");
			struct strbuf all = {0};
			strbuf_puts(&all, "#!/bin/sh\n");
			strbuf_add(&all, script.buf ? script.buf : "", script.len);
			strbuf_puts(&all, "#SBATCH --output=/dev/null\n");
			strbuf_add(&all, body.buf, body.len);
			if (first->limit > 0)
				strbuf_printf(&arr, "%%%d", first->limit);
			int rc = util_put_file(path, all.buf, all.len);
			if (rc < 0)
				log_error("slurm: cannot write %s: %s", path, strerror(-rc));
			strbuf_release(&all);
			strbuf_release(&body);
		} else {
			path = xasprintf("%s/.flowy/job.sh", first->dir);
			n = 1;
		}
		char *arrarg = arr.len ? xasprintf("--array=%s", arr.buf) : NULL;
		char *argv[] = {"sbatch", "--parsable", arrarg ? arrarg : path,
		                arrarg ? path : NULL, NULL};
		struct strbuf out = {0}, err = {0};
		int status = 0;
		/* Mark the jobs of this submission, then let go of the lock. */
		for (struct sjob *j = P.jobs; j; j = j->next)
			if (j->phase == J_NEW && !j->cancel &&
			    (j == first || (first->group && j->group &&
			                    !strcmp(j->group, first->group))))
				j->phase = J_SUBMITTED;
		int rc = slurm_call(argv, &out, &err, &status);
		long id = 0;
		char *why = NULL;
		if (rc < 0)
			why = xasprintf("cannot run sbatch: %s", strerror(-rc));
		else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
		         (id = strtol(out.len ? out.buf : "", NULL, 10)) <= 0) {
			char *l = first_line(err.len ? &err : &out);
			why = xasprintf("sbatch failed: %s", l[0] ? l : "no job id");
			free(l);
		}
		double now = util_now();
		for (struct sjob *j = P.jobs; j; j = j->next) {
			if (j->phase != J_SUBMITTED || j->id[0] ||
			    (j != first && (!first->group || !j->group ||
			                    strcmp(j->group, first->group))))
				continue;
			if (why) {
				job_done(j, 1, xstrdup(why), now);
				continue;
			}
			if (j->group)
				snprintf(j->id, sizeof j->id, "%ld_%d", id, j->index);
			else
				snprintf(j->id, sizeof j->id, "%ld", id);
			snprintf(j->state, sizeof j->state, "PENDING");
			char *line = xasprintf("%s\n", j->id);
			int wrc = util_put_file(j->jobfile, line, strlen(line));
			if (wrc < 0)
				log_error("slurm job %s: cannot write %s: %s", j->id, j->jobfile,
				          strerror(-wrc));
			free(line);
		}
		if (why)
			log_error("slurm: %s", why);
		else
			log_debug("slurm: submitted job %ld (%d job%s)", id, n, n == 1 ? "" : "s");
		free(why);
		strbuf_release(&out);
		strbuf_release(&err);
		free(arrarg);
		free(path);
		strbuf_release(&arr);
		strbuf_release(&script);
		P.interval = P.min;
		P.next_poll = now + P.min;
	}
}

/* The job id Slurm knows a job by for scancel/squeue -j: an array task
 * as itself ("123_4"), which both accept. */
static void run_ids(const char *tool, const char *extra, char **ids, size_t n)
{
	if (!n)
		return;
	char **argv = xcalloc(n + 4, sizeof *argv);
	size_t a = 0;
	argv[a++] = (char *)tool;
	if (extra)
		argv[a++] = (char *)extra;
	for (size_t k = 0; k < n; k++)
		argv[a++] = ids[k];
	struct strbuf out = {0}, err = {0};
	int status = 0;
	int rc = slurm_call(argv, &out, &err, &status);
	if (rc < 0)
		log_error("slurm: cannot run %s: %s", tool, strerror(-rc));
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char *l = first_line(&err);
		log_error("slurm: %s %s failed: %s", tool, extra ? extra : "", l);
		free(l);
	}
	strbuf_release(&out);
	strbuf_release(&err);
	free(argv);
}

/* Carry out cancels, suspends and resumes: one call of each per round. */
static void control(double now)
{
	size_t n = 0, cap = 0;
	char **ids = NULL;
	for (struct sjob *j = P.jobs; j; j = j->next) {
		if (!j->cancel || j->cancelled)
			continue;
		if (j->phase == J_NEW) { /* never submitted: nothing to cancel */
			j->cancelled = 1;
			job_done(j, 128 + SIGTERM, xstrdup("cancelled before it was submitted"),
			         now);
			continue;
		}
		if (!j->id[0] || j->phase >= J_DONE)
			continue;
		GROW(ids, cap, n);
		ids[n++] = xstrdup(j->id);
		j->cancelled = 1;
	}
	if (n) {
		run_ids("scancel", NULL, ids, n);
		P.interval = P.min;
		P.next_poll = now + P.min;
	}
	for (size_t k = 0; k < n; k++)
		free(ids[k]);
	n = 0;
	for (int want = 1; want >= -1; want -= 2) {
		for (struct sjob *j = P.jobs; j; j = j->next)
			if (j->suspend == want && j->id[0] && j->phase == J_SUBMITTED) {
				GROW(ids, cap, n);
				ids[n++] = xstrdup(j->id);
				j->suspend = 0;
			}
		for (size_t k = 0; k < n; k++) {
			char *argv1[] = {ids[k]};
			run_ids("scontrol", want > 0 ? "suspend" : "resume", argv1, 1);
			free(ids[k]);
		}
		n = 0;
	}
	free(ids);
}

/* End a job squeue says ended (or no longer lists): its exit file
 * decides when there is one, else the state does. */
static void ended_by_state(struct sjob *j, double now)
{
	int code;
	const char *st = j->absent ? "" : j->state;
	const char *why = exec_slurm_explain(st);
	if (read_exit(j, &code) == 0) {
		/* The script wrote a code; a TIMEOUT or a cancel may still be why
		 * (the step was killed, the script was not yet). */
		job_done(j, code, code && why ? xasprintf("Slurm job %s: %s", j->id, why)
		                              : NULL, now);
		return;
	}
	if (!why && !j->deadline) {
		/* COMPLETED or FAILED, or gone, without an exit code yet: the
		 * file may not be visible here yet (NFS). Wait, bounded. */
		j->deadline = now + NFS_WAIT;
		return;
	}
	if (!why && now < j->deadline)
		return;
	char *text = why ? xasprintf("Slurm job %s: %s", j->id, why)
	             : !strcmp(st, "FAILED")
	             ? xasprintf("Slurm job %s failed before the step could report its "
	                         "exit code (Slurm state FAILED; see %s/.flowy/slurm.out)",
	                         j->id, j->dir)
	             : xasprintf("Slurm job %s ended (%s) without writing its exit code",
	                         j->id, st[0] ? st : "no longer in the queue");
	j->deadline = 0;
	job_done(j, exec_slurm_code(st), text, now);
}

/* One squeue call for every job of this daemon still in the queue. */
static void poll_queue(double now)
{
	size_t n = 0, cap = 0;
	char **ids = NULL;
	for (struct sjob *j = P.jobs; j; j = j->next) {
		if (j->phase != J_SUBMITTED || !j->id[0] || j->absent)
			continue;
		/* An array's tasks are listed through the array's id. */
		size_t base = strcspn(j->id, "_");
		int dup = 0;
		for (size_t k = 0; k < n && !dup; k++)
			dup = strlen(ids[k]) == base && !strncmp(ids[k], j->id, base);
		if (!dup) {
			GROW(ids, cap, n);
			ids[n++] = xstrndup(j->id, base);
		}
	}
	if (!n) {
		free(ids);
		return;
	}
	struct strbuf list = {0};
	for (size_t k = 0; k < n; k++) {
		strbuf_printf(&list, "%s%s", k ? "," : "", ids[k]);
		free(ids[k]);
	}
	free(ids);
	char *who = NULL;
	char *argv[] = {"squeue", "-h", "-r", "-t", "all", "-o", "%i|%T|%r",
	                n > MAX_IDS ? "-u" : "-j",
	                n > MAX_IDS ? (who = xasprintf("%u", (unsigned)geteuid())) : list.buf,
	                NULL};
	struct strbuf out = {0}, err = {0};
	int status = 0;
	int rc = slurm_call(argv, &out, &err, &status);
	P.squeue_calls++;
	now = P.last_poll = util_now();
	int ok = rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	/* Every id unknown (they all left the queue) is an error to squeue. */
	int none = rc == 0 && !ok && err.len && strstr(err.buf, "Invalid job id");
	int changed = 0;
	if (ok || none) {
		struct slurm_row *rows = NULL;
		size_t nr = ok ? exec_slurm_parse(out.len ? out.buf : "", &rows) : 0;
		for (struct sjob *j = P.jobs; j; j = j->next) {
			if (j->phase != J_SUBMITTED || !j->id[0] || j->absent)
				continue;
			const struct slurm_row *row = NULL;
			for (size_t k = 0; k < nr && !row; k++)
				if (!strcmp(rows[k].id, j->id))
					row = &rows[k];
			if (!row) {
				j->absent = 1;
				changed = 1;
			} else if (strcmp(row->state, j->state)) {
				snprintf(j->state, sizeof j->state, "%s", row->state);
				changed = 1;
			}
		}
		free(rows);
	} else {
		char *l = first_line(rc < 0 ? &out : &err);
		log_error("slurm: squeue failed: %s", rc < 0 ? strerror(-rc) : l);
		free(l);
	}
	free(who);
	strbuf_release(&out);
	strbuf_release(&err);
	strbuf_release(&list);
	P.interval = exec_slurm_backoff(P.interval, changed, P.min, P.max);
	P.next_poll = now + P.interval;
}

/* What squeue and the exit files say has ended. A non-zero exit code
 * waits (bounded) for Slurm's final state, which may say why (TIMEOUT,
 * OUT_OF_MEMORY ...): squeue is then asked again after the minimum
 * interval rather than after the backed-off one. */
static void notice_ends(double now)
{
	int ask = 0;
	for (struct sjob *j = P.jobs; j; j = j->next) {
		if (j->phase != J_SUBMITTED || !j->id[0])
			continue;
		int code, ended = j->absent || exec_slurm_phase(j->state) == SLURM_ENDED;
		if (ended || !strcmp(j->state, "PENDING") || read_exit(j, &code) < 0) {
			if (ended)
				ended_by_state(j, now);
			continue;
		}
		if (code == 0) {
			job_done(j, 0, NULL, now);
			continue;
		}
		if (!j->deadline)
			j->deadline = now + NFS_WAIT;
		if (now >= j->deadline)
			job_done(j, code, NULL, now);
		else
			ask = 1;
	}
	if (ask && P.next_poll > P.last_poll + P.min)
		P.next_poll = P.last_poll + P.min;
}

static void job_free(struct sjob *j)
{
	if (j->efd >= 0)
		close(j->efd);
	if (j->log_fd >= 0)
		close(j->log_fd);
	if (j->metrics_fd >= 0)
		close(j->metrics_fd);
	for (size_t o = 0; o < j->noutputs; o++)
		free(j->outputs[o]);
	free(j->outputs);
	free(j->dir);
	free(j->jobfile);
	free(j->group);
	free(j->why);
	free(j);
}

/* Free the jobs the scheduler let go of, once nothing is left to do. */
static void reclaim(void)
{
	for (struct sjob **p = &P.jobs; *p;) {
		struct sjob *j = *p;
		if (j->released && (j->phase >= J_DONE || j->cancelled || !j->id[0])) {
			*p = j->next;
			job_free(j);
		} else {
			p = &j->next;
		}
	}
}

static void *poller(void *arg)
{
	log_thread_name("slurm");
	pthread_mutex_lock(&P.lock);
	while (!P.stop) {
		if (!P.work) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += (long)(TICK * 1e9);
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			int rc = pthread_cond_timedwait(&P.cond, &P.lock, &ts);
			if (rc && rc != ETIMEDOUT)
				log_error("slurm poller: %s", strerror(rc));
		}
		if (P.stop)
			break;
		/* Starts come in bursts (a foreach's tasks, laid out one by one):
		 * wait until none came for COALESCE seconds (at most BURST), so
		 * a burst becomes one array. */
		for (double t0 = util_now(); P.work && util_now() - t0 < BURST;) {
			P.work = 0;
			pthread_mutex_unlock(&P.lock);
			struct timespec c = {0, (long)(COALESCE * 1e9)};
			while (nanosleep(&c, &c) < 0 && errno == EINTR)
				;
			pthread_mutex_lock(&P.lock);
		}
		P.work = 0;
		double now = util_now();
		control(now);
		submit();
		for (struct sjob *j = P.jobs; j; j = j->next)
			if (j->phase == J_SUBMITTED && !j->released)
				copy_files(j);
		if (now >= P.next_poll)
			poll_queue(now);
		now = util_now();
		notice_ends(now);
		settle(now);
		reclaim();
	}
	pthread_mutex_unlock(&P.lock);
	return NULL;
}

int exec_slurm_open(struct flowy *f)
{
	if (!f->shared_dir)
		return -EINVAL;
	const char *hash = strrchr(f->scratch_dir, '/');
	P.root = xasprintf("%s/%s", f->shared_dir, hash ? hash + 1 : "store");
	P.objects = xasprintf("%s/objects", P.root);
	int rc = util_mkdir_p(P.objects, 0755);
	if (rc < 0) {
		log_error("shared dir %s: %s", P.objects, strerror(-rc));
		goto fail;
	}
	P.min = 2;
	P.max = 30;
	const char *ev = getenv("FLOWYFS_SLURM_POLL");
	double a, b;
	if (ev && sscanf(ev, "%lf:%lf", &a, &b) == 2 && a > 0 && b >= a) {
		P.min = a;
		P.max = b;
	}
	P.interval = P.min;
	P.next_poll = 0;
	P.stop = 0;
	rc = pthread_create(&P.thread, NULL, poller, NULL);
	if (rc) {
		rc = -rc;
		goto fail;
	}
	P.open = 1;
	return 0;
fail:
	free(P.objects);
	free(P.root);
	P.objects = P.root = NULL;
	return rc;
}

void exec_slurm_close(void)
{
	if (!P.open)
		return;
	pthread_mutex_lock(&P.lock);
	P.stop = 1;
	pthread_cond_signal(&P.cond);
	pthread_mutex_unlock(&P.lock);
	int rc = pthread_join(P.thread, NULL);
	if (rc)
		log_error("slurm poller: %s", strerror(rc));
	/* What is still in the queue is not this daemon's any more. */
	pthread_mutex_lock(&P.lock);
	for (struct sjob *j = P.jobs; j; j = j->next)
		if (j->id[0] && j->phase == J_SUBMITTED && !j->cancelled)
			j->cancel = 1;
	control(util_now());
	log_info("slurm: %ld squeue calls, %ld Slurm calls in all", P.squeue_calls, P.calls);
	while (P.jobs) {
		struct sjob *j = P.jobs;
		P.jobs = j->next;
		job_free(j);
	}
	P.open = 0;
	pthread_mutex_unlock(&P.lock);
	free(P.objects);
	free(P.root);
	P.objects = P.root = NULL;
}

/* The job id in path (a job file), appended to ids. */
static void add_job_file(const char *path, char ***ids, size_t *n, size_t *cap)
{
	char *text = NULL;
	size_t len;
	if (util_read_file(path, &text, &len) < 0)
		return;
	text[strcspn(text, "\n")] = '\0';
	if (text[0] && strspn(text, "0123456789_") == strlen(text)) {
		GROW(*ids, *cap, *n);
		(*ids)[(*n)++] = text;
	} else {
		free(text);
	}
}

void exec_slurm_stop_stray(const char *runs_dir, int64_t run, const char *step)
{
	char **ids = NULL;
	size_t n = 0, cap = 0;
	char *path = xasprintf("%s/%lld/%s.job", runs_dir, (long long)run, step);
	add_job_file(path, &ids, &n, &cap);
	free(path);
	char *items = xasprintf("%s/%lld/%s.items", runs_dir, (long long)run, step);
	DIR *d = opendir(items);
	for (struct dirent *e; d && (e = readdir(d));) {
		size_t l = strlen(e->d_name);
		if (l > 4 && !strcmp(e->d_name + l - 4, ".job")) {
			path = xasprintf("%s/%s", items, e->d_name);
			add_job_file(path, &ids, &n, &cap);
			free(path);
		}
	}
	if (d)
		closedir(d);
	free(items);
	if (n) {
		log_info("cancelling Slurm job%s of step %s of run %lld left running by a "
		         "daemon that died", n == 1 ? "" : "s", step, (long long)run);
		pthread_mutex_lock(&P.lock);
		run_ids("scancel", NULL, ids, n);
		pthread_mutex_unlock(&P.lock);
	}
	for (size_t k = 0; k < n; k++)
		free(ids[k]);
	free(ids);
}

/* ---- inputs on the shared dir ---------------------------------------- */

/* A raw blob's store file into dest: a hard link, else a reflink. 0 or
 * -errno (the caller then copies). */
static int link_raw(cas *c, const char *hex, const char *dest)
{
	cas_reader *rd = NULL;
	int rc = cas_reader_open(c, hex, &rd);
	if (rc < 0)
		return rc;
	int fd = cas_reader_fd(rd);
	if (fd < 0) {
		rc = -EOPNOTSUPP; /* compressed: decompress */
		goto out;
	}
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, dest, AT_SYMLINK_FOLLOW) == 0)
		goto out;
	int dfd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (dfd < 0) {
		rc = -errno;
		goto out;
	}
	if (ioctl(dfd, FICLONE, fd) < 0) {
		rc = -errno;
		unlink(dest);
	}
	close(dfd);
out:
	cas_reader_close(rd);
	return rc;
}

/* <objects>/<hex>: the content of hex as plain files, made once. */
static int materialize(cas *c, const char *hex, char **err)
{
	char *dest = xasprintf("%s/%s", P.objects, hex);
	char *tmp = NULL;
	struct stat st;
	struct cas_stat cs;
	int rc = 0;
	if (lstat(dest, &st) == 0)
		goto out; /* made for an earlier step */
	if ((rc = cas_stat(c, hex, &cs)) < 0)
		goto out;
	tmp = xasprintf("%s/.tmp-%s-%d-%lu", P.objects, hex, (int)getpid(),
	                (unsigned long)pthread_self());
	rc = util_rm_rf(tmp); /* a dead daemon's half-made copy */
	if (rc < 0 && rc != -ENOENT)
		goto out;
	rc = cs.kind == CAS_BLOB && !cs.compressed ? link_raw(c, hex, tmp) : -EOPNOTSUPP;
	if (rc < 0)
		rc = cas_export(c, hex, tmp);
	if (rc == 0 && rename(tmp, dest) < 0 && errno != EEXIST && errno != ENOTEMPTY)
		rc = -errno;
	if (rc < 0) {
		int rrc = util_rm_rf(tmp);
		if (rrc < 0 && rrc != -ENOENT)
			log_error("cannot remove %s: %s", tmp, strerror(-rrc));
	}
out:
	if (rc < 0)
		*err = xasprintf("cannot materialize input %.12s on the shared dir: %s", hex,
		                 strerror(-rc));
	free(tmp);
	free(dest);
	return rc;
}

/* ---- the executor ---------------------------------------------------- */

static int slurm_prepare(struct run *r, size_t i, char **err)
{
	struct srun *s = &r->s[i];
	if (!P.open) {
		*err = xstrdup("executor slurm: flowyfs was started without --shared-dir "
		               "(where Slurm jobs get their scratch)");
		return -EINVAL;
	}
	if (!r->shared_scratch)
		r->shared_scratch = workspace_shared_dir(r->f, r->id);
	for (size_t k = 0; k < s->def->n_inputs; k++) {
		int rc = materialize(r->f->cas, s->in_hex[k], err);
		if (rc < 0)
			return rc;
	}
	int rc = workspace_prepare_at(r, i, r->shared_scratch, P.objects);
	if (rc < 0)
		*err = xasprintf("cannot prepare scratch directory on the shared dir: %s",
		                 strerror(-rc));
	return rc;
}

/* The params the daemon opened for the step, as a file the job can read. */
static int copy_params(int fd, const char *path)
{
	struct strbuf sb = {0};
	char buf[8192];
	off_t off = 0;
	ssize_t n;
	while ((n = pread(fd, buf, sizeof buf, off)) > 0) {
		strbuf_add(&sb, buf, (size_t)n);
		off += n;
	}
	int rc = n < 0 ? -errno : util_put_file(path, sb.buf ? sb.buf : "", sb.len);
	strbuf_release(&sb);
	return rc;
}

static int slurm_start(struct run *r, size_t i, const struct exec_spec *spec, char **err)
{
	struct srun *s = &r->s[i];
	struct sjob *j = NULL;
	struct strbuf script = {0};
	char **env = NULL, *meta = xasprintf("%s/.flowy", s->scratch), *path = NULL;
	size_t ne = 0;
	int rc;

	if (mkdir(meta, 0755) < 0 && errno != EEXIST) {
		rc = -errno;
		*err = xasprintf("cannot make %s: %s", meta, strerror(-rc));
		goto out;
	}
	static const char *const fresh[] = {"log", "metrics", "exit", "exit.tmp"};
	for (size_t k = 0; k < 4; k++) {
		path = xasprintf("%s/%s", meta, fresh[k]);
		rc = k < 2 ? util_put_file(path, "", 0) : (unlink(path) < 0 && errno != ENOENT
		                                            ? -errno : 0);
		free(path);
		path = NULL;
		if (rc < 0) {
			*err = xasprintf("cannot prepare %s: %s", meta, strerror(-rc));
			goto out;
		}
	}
	path = xasprintf("%s/params.json", meta);
	if ((rc = copy_params(spec->fds[1], path)) < 0) {
		*err = xasprintf("cannot write %s: %s", path, strerror(-rc));
		goto out;
	}
	/* The step's FLOWY_* variables, its files on the shared dir. */
	for (char *const *e = spec->envp; *e; e++) {
		if (strncmp(*e, "FLOWY_", 6))
			continue;
		env = xrealloc(env, (ne + 2) * sizeof *env);
		if (!strncmp(*e, "FLOWY_METRICS=", 14))
			env[ne++] = xasprintf("FLOWY_METRICS=%s/metrics", meta);
		else if (!strncmp(*e, "FLOWY_PARAMS=", 13))
			env[ne++] = xasprintf("FLOWY_PARAMS=%s", path);
		else
			env[ne++] = xstrdup(*e);
		env[ne] = NULL;
	}
	/* Tasks of a foreach step share the name: an array's tasks differ by
	 * index. */
	char *name = xasprintf("flowy-%s-%s", r->pipeline, s->def->name);
	struct slurm_script sc = {
		.name = name, .dir = s->scratch, .cmd = spec->cmd, .env = env,
		.resources = s->def->resources, .presources = r->p->resources,
		.slurm = r->p->slurm, .timeout = s->def->timeout,
	};
	rc = exec_slurm_script(&sc, &script, err);
	free(name);
	if (rc < 0)
		goto out;
	free(path);
	path = xasprintf("%s/job.sh", meta);
	if ((rc = util_put_file(path, script.buf, script.len)) < 0) {
		*err = xasprintf("cannot write %s: %s", path, strerror(-rc));
		goto out;
	}
	j = xcalloc(1, sizeof *j);
	j->efd = j->log_fd = j->metrics_fd = -1;
	j->dir = xstrdup(s->scratch);
	j->jobfile = workspace_unit_file(r, s, ".job");
	j->index = -1;
	if (s->parent >= 0) {
		j->group = xasprintf("%lld/%d/%d", (long long)r->id, s->parent, s->in_when);
		j->index = (int)(i - r->s[s->parent].task0);
		j->limit = s->def->concurrency;
	}
	if (!s->in_when) {
		j->outputs = xcalloc(s->def->n_outputs + 1, sizeof *j->outputs);
		for (size_t o = 0; o < s->def->n_outputs; o++)
			j->outputs[o] = xstrdup(s->def->outputs[o]);
		j->noutputs = s->def->n_outputs;
	}
	if ((j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
	    (j->log_fd = fcntl(spec->out_fd, F_DUPFD_CLOEXEC, 3)) < 0 ||
	    (j->metrics_fd = fcntl(spec->fds[0], F_DUPFD_CLOEXEC, 3)) < 0 ||
	    fcntl(j->log_fd, F_SETFL, O_NONBLOCK) < 0) {
		rc = -errno;
		*err = xasprintf("cannot start the Slurm job: %s", strerror(-rc));
		job_free(j);
		j = NULL;
		goto out;
	}
	if (unlink(j->jobfile) < 0 && errno != ENOENT) /* an earlier attempt's */
		log_error("cannot remove %s: %s", j->jobfile, strerror(errno));
	pthread_mutex_lock(&P.lock);
	struct sjob **tail = &P.jobs;
	while (*tail)
		tail = &(*tail)->next;
	*tail = j;
	P.work = 1;
	pthread_cond_signal(&P.cond);
	pthread_mutex_unlock(&P.lock);
	s->job = j;
	rc = 0;
out:
	util_strv_free(env);
	free(path);
	free(meta);
	strbuf_release(&script);
	return rc;
}

static int slurm_fd(const struct run *r, size_t i)
{
	const struct sjob *j = r->s[i].job;
	return j ? j->efd : -1;
}

static void slurm_signal(struct run *r, size_t i, int sig)
{
	struct sjob *j = r->s[i].job;
	if (!j)
		return;
	pthread_mutex_lock(&P.lock);
	if (sig == SIGTERM || sig == SIGKILL)
		j->cancel = 1;
	else if (sig == SIGSTOP)
		j->suspend = 1;
	else if (sig == SIGCONT)
		j->suspend = -1;
	P.work = 1;
	pthread_cond_signal(&P.cond);
	pthread_mutex_unlock(&P.lock);
}

static int slurm_reap(struct run *r, size_t i)
{
	struct srun *s = &r->s[i];
	struct sjob *j = s->job;
	int code;
	if (!j)
		return 128 + SIGKILL;
	pthread_mutex_lock(&P.lock);
	if (j->phase == J_ENDED) {
		code = j->code;
		free(s->exec_why);
		s->exec_why = j->why;
		j->why = NULL;
	} else {
		/* Stopped before it ended (cancel, daemon stop): the poller
		 * cancels it and lets it go. */
		code = 128 + SIGTERM;
		if (!j->cancelled)
			j->cancel = 1;
		if (j->log_fd >= 0) {
			close(j->log_fd);
			j->log_fd = -1;
		}
	}
	j->released = 1;
	P.work = 1;
	pthread_cond_signal(&P.cond);
	pthread_mutex_unlock(&P.lock);
	s->job = NULL;
	return code;
}

const struct executor exec_slurm = {
	.name = "slurm",
	.remote = 1,
	.prepare = slurm_prepare,
	.start = slurm_start,
	.fd = slurm_fd,
	.signal = slurm_signal,
	.reap = slurm_reap,
};
