/*
 * main.c - flowyfs [--store DIR] [--scratch DIR] [-j N] [--executor local|slurm]
 *           [--shared-dir DIR] [--http ADDR:PORT] [-f] [-d] [-o OPTS] MOUNTPOINT
 *
 * Checks the command line (every error one line starting "flowyfs: "; usage
 * only for --help), checks the mountpoint from the mount table before any
 * stat of it, opens the store (mode 0700, taking its lock so
 * only one daemon serves it), makes the scratch directory outside it,
 * checks that steps can be isolated from both, mounts, starts the
 * scheduler, then the watches that feed it, and serves FUSE with the
 * multithreaded loop; with --http, the dashboard (its socket bound before
 * the mount, its threads started once the mount is up); with
 * --shared-dir, the Slurm poller, just before the scheduler. Teardown runs
 * in reverse: the dashboard stops, then watches, then the scheduler
 * (steps killed, their run marked interrupted), then the Slurm poller
 * (what is left of its jobs cancelled), then the mount,
 * then the store. Every startup error is one line naming the problem, and
 * exit status 1.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flowyfs/envinfo.h"
#include "flowyfs/exec.h"
#include "flowyfs/exec_slurm.h"
#include "flowyfs/fs.h"
#include "flowyfs/hostfs.h"
#include "flowyfs/http.h"
#include "flowyfs/log.h"
#include "flowyfs/catalog.h"
#include "flowyfs/alerts.h"
#include "flowyfs/events.h"
#include "flowyfs/dagsvg.h"
#include "flowyfs/hooks.h"
#include "flowyfs/prerender.h"
#include "flowyfs/sched.h"
#include "flowyfs/util.h"
#include "flowyfs/waits.h"
#include "flowyfs/watch.h"

#define FLOWYFS_VERSION "0.1.0"

struct options {
	const char *store, *mnt, *scratch, *http, *executor, *shared;
	char *store_opt, *scratch_opt; /* -o store=, scratch= (owned) */
	int jobs, foreground, debug;
	double hook_timeout;
	struct strbuf fuse_opts;
};

static void usage(void)
{
	printf("usage: flowyfs [--store DIR] [--scratch DIR] [-j N] [--executor local|slurm]\n"
	            "               [--shared-dir DIR] [--http ADDR:PORT] [--hook-timeout S]\n"
	            "               [-f] [-d] [-o OPTS] [STORE] MOUNTPOINT\n"
	            "  --store DIR  where runs, artifacts and pipelines live (default\n"
	            "               $FLOWYFS_STORE, else $XDG_DATA_HOME/flowyfs)\n"
	            "  --scratch DIR  where steps run, outside the store (default\n"
	            "               $FLOWYFS_SCRATCH, else ${TMPDIR:-/var/tmp}/flowyfs-UID)\n"
	            "  --hook-timeout S  seconds a hook may run before it is stopped\n"
	            "               (default 30)\n"
	            "  -j N         steps that may run at once (default: CPUs)\n"
	            "  --executor local|slurm  where steps run when neither the step\n"
	            "               nor pipeline.json says (default local)\n"
	            "  --shared-dir DIR  a directory every compute node sees: Slurm\n"
	            "               jobs' scratch, inputs and outputs\n"
	            "  --http ADDR:PORT  serve the live dashboard (read-only; ADDR\n"
	            "               defaults to 127.0.0.1)\n"
	            "  -f           stay in the foreground\n"
	            "  -d           debug log (implies -f)\n"
	            "  -o OPTS      mount options: store=DIR, scratch=DIR, jobs=N, and\n"
	            "               FUSE's (e.g. allow_other); as fstab passes them\n"
	            "  STORE        the store, as mount(8) passes it (fstab's first field)\n"
	            "  --help       this text\n"
	            "  --version    the version\n"
	            "stop with: fusermount3 -u MOUNTPOINT (see man flowyfs)\n");
}

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("flowyfs: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

/* How the user spelt the option getopt stopped at. opt is getopt's optopt:
 * 0 for an unknown long option (then arg, without "=VALUE"), the letter
 * of a long-only option (s, S), else a short option's letter. */
static const char *option_name(int opt, const char *arg)
{
	static char name[64];
	if (opt == 's')
		return "--store";
	if (opt == 'S')
		return "--scratch";
	if (opt == 'E')
		return "--executor";
	if (opt == 'D')
		return "--shared-dir";
	if (opt == 'H')
		return "--http";
	if (opt == 'T')
		return "--hook-timeout";
	if (opt)
		snprintf(name, sizeof name, "-%c", opt);
	else
		snprintf(name, sizeof name, "%.*s", (int)strcspn(arg, "="), arg);
	return name;
}

/* -o OPTS: flowyfs's own (store=DIR, scratch=DIR, jobs=N, as mount(8)
 * and fstab pass them through mount.fuse3) are taken; the rest go to
 * FUSE. Returns 0, or 1 after a message. */
static int take_mount_options(struct options *o, const char *opts)
{
	char *copy = xstrdup(opts), *save = NULL;
	int rc = 0;
	for (char *t = strtok_r(copy, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
		if (!strncmp(t, "store=", 6) && t[6]) {
			free(o->store_opt);
			o->store = o->store_opt = xstrdup(t + 6);
		} else if (!strncmp(t, "scratch=", 8) && t[8]) {
			free(o->scratch_opt);
			o->scratch = o->scratch_opt = xstrdup(t + 8);
		} else if (!strncmp(t, "jobs=", 5)) {
			char *end;
			long j = strtol(t + 5, &end, 10);
			if (*end || j < 1 || j > 1024)
				rc = die("-o %s: expected a number of steps from 1 to 1024", t);
			else
				o->jobs = (int)j;
		} else if (!strcmp(t, "store") || !strcmp(t, "scratch")) {
			rc = die("-o %s needs a value: %s=DIR", t, t);
		} else if (*t) {
			strbuf_printf(&o->fuse_opts, ",%s", t);
		}
	}
	free(copy);
	return rc;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{"store", required_argument, NULL, 's'},
		{"scratch", required_argument, NULL, 'S'},
		{"executor", required_argument, NULL, 'E'},
		{"shared-dir", required_argument, NULL, 'D'},
		{"http", required_argument, NULL, 'H'},
		{"hook-timeout", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c;
	o->jobs = (int)sysconf(_SC_NPROCESSORS_ONLN);
	o->hook_timeout = HOOKS_TIMEOUT;
	/* Quiet getopt (the leading ':'): its own messages name the binary by
	 * its full path; ours are one line that starts with "flowyfs: ". */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":j:fdo:hV", longs, NULL)) != -1) {
		switch (c) {
		case 's':
			o->store = optarg;
			break;
		case 'S':
			o->scratch = optarg;
			break;
		case 'E':
			if (strcmp(optarg, "local") && strcmp(optarg, "slurm"))
				return die("--executor %s: expected local or slurm", optarg);
			o->executor = optarg;
			break;
		case 'D':
			o->shared = optarg;
			break;
		case 'H':
			o->http = optarg;
			break;
		case 'T': {
			char *end;
			double t = strtod(optarg, &end);
			if (*end || end == optarg || !(t > 0 && t <= 86400))
				return die("--hook-timeout %s: expected seconds from 0 to 86400 "
				           "(not 0)", optarg);
			o->hook_timeout = t;
			break;
		}
		case 'j': {
			char *end;
			long j = strtol(optarg, &end, 10);
			if (*end || j < 1 || j > 1024)
				return die("-j %s: expected a number of steps from 1 to 1024", optarg);
			o->jobs = (int)j;
			break;
		}
		case 'f':
			o->foreground = 1;
			break;
		case 'd':
			o->debug = o->foreground = 1;
			break;
		case 'o':
			if (take_mount_options(o, optarg))
				return 1;
			break;
		case 'h':
			usage();
			exit(0);
		case 'V':
			printf("flowyfs %s\n", FLOWYFS_VERSION);
			exit(0);
		case ':':
			return die("option %s needs an argument", option_name(optopt, argv[optind - 1]));
		default:
			/* h and V are known short options: this is --help=X. */
			if (optopt == 'h' || optopt == 'V')
				return die("option --%s takes no argument",
				           optopt == 'h' ? "help" : "version");
			return die("unknown option %s (see flowyfs --help)",
			           option_name(optopt, argv[optind - 1]));
		}
	}
	/* mount(8) style: SOURCE MOUNTPOINT, SOURCE being the store (or a
	 * placeholder such as "flowyfs" or "none" when -o store= says it). */
	if (argc - optind == 2) {
		const char *src = argv[optind++];
		int placeholder = !strcmp(src, "flowyfs") || !strcmp(src, "none");
		if (!placeholder && o->store && strcmp(o->store, src))
			return die("two stores: %s and %s (give one)", src, o->store);
		if (!placeholder)
			o->store = src;
	}
	if (optind != argc - 1)
		return die("%s (see flowyfs --help)",
		           optind == argc ? "missing MOUNTPOINT" : "too many arguments");
	o->mnt = argv[optind];
	if (o->executor && !strcmp(o->executor, "slurm") && !o->shared)
		return die("--executor slurm needs --shared-dir (a directory the compute "
		           "nodes share)");
	return 0;
}

static char *default_store(void)
{
	const char *e = getenv("FLOWYFS_STORE");
	if (e && *e)
		return xstrdup(e);
	e = getenv("XDG_DATA_HOME");
	if (e && *e)
		return xasprintf("%s/flowyfs", e);
	e = getenv("HOME");
	return xasprintf("%s/.local/share/flowyfs", e && *e ? e : "/root");
}

/* The absolute path of mnt found without a stat of mnt itself (a dead
 * FUSE mount there fails one, a hung one blocks it): its parent
 * resolved, its last component appended. NULL with errno on failure. */
static char *mountpoint_path(const char *mnt)
{
	size_t n = strlen(mnt);
	while (n > 1 && mnt[n - 1] == '/')
		n--;
	char *copy = xasprintf("%.*s", (int)n, mnt), *slash = strrchr(copy, '/');
	const char *base = slash ? slash + 1 : copy;
	if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
		char *real = realpath(copy, NULL); /* "/", "." or "..": no mount of ours */
		free(copy);
		return real;
	}
	if (slash)
		*slash = '\0';
	char *parent = realpath(slash ? (*copy ? copy : "/") : ".", NULL), *path = NULL;
	if (parent)
		path = xasprintf("%s/%s", strcmp(parent, "/") ? parent : "", base);
	int err = errno;
	free(parent);
	free(copy);
	errno = err;
	return path;
}

static int check_mountpoint(const char *mnt, char **out)
{
	struct stat st;
	struct hostfs_mount mi;
	char *path = mountpoint_path(mnt);
	if (!path)
		return die("mountpoint %s: %s", mnt, strerror(errno));
	int rc = hostfs_mount_info(path, &mi);
	free(path);
	if (rc == 0)
		return die("mountpoint %s: already a mount point (unmount it first: "
		           "fusermount3 -u %s)", mnt, mnt);
	if (rc != -ENOENT)
		return die("cannot read /proc/self/mountinfo: %s", strerror(-rc));
	if (stat(mnt, &st) < 0) {
		if (errno == ENOTCONN)
			return die("mountpoint %s: a flowyfs that died is still mounted "
			           "there; run: fusermount3 -u %s", mnt, mnt);
		return die("mountpoint %s: %s", mnt, strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		return die("mountpoint %s: not a directory", mnt);
	DIR *d = opendir(mnt);
	if (!d)
		return die("mountpoint %s: %s", mnt, strerror(errno));
	struct dirent *e;
	int empty = 1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = 0;
	closedir(d);
	if (!empty)
		return die("mountpoint %s: not empty", mnt);
	*out = realpath(mnt, NULL);
	return *out ? 0 : die("mountpoint %s: %s", mnt, strerror(errno));
}

/* Remove a directory tree the daemon owns; a failure is only logged. */
static void remove_tree(const char *dir)
{
	int rc = util_rm_rf(dir);
	if (rc < 0 && rc != -ENOENT)
		log_error("cannot remove %s: %s", dir, strerror(-rc));
}

/* Create the store's layout and take its lock; the fd stays open. */
/* A step a dead daemon left running: its local process group, or its
 * Slurm jobs (which have no pid). */
static void stop_stray(int64_t run, const char *step, int pid, void *arg)
{
	const struct flowy *f = arg;
	sched_stop_stray(run, step, pid, NULL);
	if (pid == 0)
		exec_slurm_stop_stray(f->runs_dir, run, step);
}

static int open_store(const char *dir, struct flowy *f, int *lock_fd)
{
	int rc = util_mkdir_p(dir, 0700);
	if (rc < 0)
		return die("store %s: %s", dir, strerror(-rc));
	f->store = realpath(dir, NULL);
	if (!f->store)
		return die("store %s: %s", dir, strerror(errno));
	/* Nobody else may read the objects (the views decide what is shown). */
	if (chmod(f->store, 0700) < 0)
		return die("store %s: %s", f->store, strerror(errno));
	char *lock = xasprintf("%s/lock", f->store);
	*lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	free(lock);
	if (*lock_fd < 0)
		return die("store %s: %s", f->store, strerror(errno));
	if (flock(*lock_fd, LOCK_EX | LOCK_NB) < 0) {
		char pid[32] = "";
		ssize_t n = pread(*lock_fd, pid, sizeof pid - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		return die("store %s is already served by another flowyfs%s%s%s", f->store,
		           *pid ? " (pid " : "", pid, *pid ? ")" : "");
	}
	f->pipelines_dir = xasprintf("%s/pipelines", f->store);
	f->runs_dir = xasprintf("%s/runs", f->store);
	char *objects = xasprintf("%s/objects", f->store);
	f->hooks_dir = xasprintf("%s/hooks", f->store);
	f->events_dir = xasprintf("%s/events", f->store);
	char *old_scratch = xasprintf("%s/scratch", f->store);
	const char *dirs[] = {f->pipelines_dir, f->runs_dir, objects, f->hooks_dir,
	                      f->events_dir};
	for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
		if ((rc = util_mkdir_p(dirs[i], 0755)) < 0)
			break;
	remove_tree(old_scratch); /* where scratch lived before it left the store */
	free(old_scratch);
	if (!rc)
		rc = cas_open(&f->cas, objects);
	free(objects);
	if (rc < 0)
		return die("store %s: %s", f->store, strerror(-rc));
	char *dbpath = xasprintf("%s/flowy.db", f->store), *err = NULL;
	rc = db_open(&f->db, dbpath, &err);
	free(dbpath);
	if (rc < 0) {
		die("store %s: %s", f->store, err ? err : strerror(-rc));
		free(err);
		return 1;
	}
	rc = db_recover(f->db, stop_stray, f);
	if (rc < 0)
		return die("store %s: cannot mark the runs a dead daemon left as "
		           "interrupted: %s", f->store, db_errmsg(f->db));
	char *history = xasprintf("%s/history.git", f->store);
	rc = vcs_open(&f->vcs, history, &err);
	free(history);
	if (rc < 0) {
		die("store %s: %s", f->store, err ? err : strerror(-rc));
		free(err);
		return 1;
	}
	return 0;
}

/* A directory of ours: made when missing, then it must be a real
 * directory owned by us that nobody else can write (it may sit in a
 * world-writable place such as /var/tmp). */
static int own_dir(const char *dir, mode_t mode)
{
	struct stat st;
	int rc = util_mkdir_p(dir, mode);
	if (rc < 0)
		return die("scratch %s: %s", dir, strerror(-rc));
	if (lstat(dir, &st) < 0)
		return die("scratch %s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))
		return die("scratch %s: not a directory of this user that only it can "
		           "write; remove it or choose another with --scratch", dir);
	return 0;
}

static int inside(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return !strncmp(path, dir, n) && (path[n] == '/' || !path[n]);
}

/* The scratch directory of this store: <base>/<first 16 hex of the
 * store's path hash>, emptied of what a dead daemon left. */
static int open_scratch(const char *opt, struct flowy *f)
{
	char *base = NULL;
	const char *e = getenv("FLOWYFS_SCRATCH"), *tmp = getenv("TMPDIR");
	if (opt)
		base = xstrdup(opt);
	else if (e && *e)
		base = xstrdup(e);
	else
		base = xasprintf("%s/flowyfs-%u", tmp && *tmp ? tmp : "/var/tmp",
		                 (unsigned)geteuid());
	int rc = own_dir(base, 0711);
	char *real = rc ? NULL : realpath(base, NULL);
	if (!rc && !real)
		rc = die("scratch %s: %s", base, strerror(errno));
	free(base);
	if (rc)
		return rc;
	if (inside(real, f->store) || inside(f->store, real) || inside(real, f->mnt) ||
	    inside(f->mnt, real)) {
		die("scratch %s: must be outside the store %s and the mountpoint %s", real,
		    f->store, f->mnt);
		free(real);
		return 1;
	}
	char hex[CAS_HEX_LEN + 1];
	cas_hash_buf(hex, f->store, strlen(f->store));
	f->scratch_dir = xasprintf("%s/%.16s", real, hex);
	free(real);
	remove_tree(f->scratch_dir); /* leftovers of a daemon that died */
	return own_dir(f->scratch_dir, 0711);
}

/* Start `true` the way steps start, to learn now (and say once, clearly)
 * when this system cannot hide the store from steps. */
static int check_isolation(struct flowy *f)
{
	char *probe = xasprintf("%s/probe", f->scratch_dir), *err = NULL;
	if (mkdir(probe, 0700) < 0) {
		int rc = die("scratch %s: %s", probe, strerror(errno));
		free(probe);
		return rc;
	}
	char *envp[] = {NULL}, *cover = xstrdup(f->scratch_dir);
	*strrchr(cover, '/') = '\0';
	struct exec_spec spec = {
		.cmd = "true", .cwd = probe, .envp = envp, .out_fd = 2,
		.hide = {f->store, cover}, .nhide = 2, .keep = probe,
		.uid = geteuid(), .gid = getegid(),
	};
	struct exec_proc p;
	int rc = exec_start(&p, &spec, &err), status = -1;
	if (rc == 0)
		status = exec_reap(&p);
	remove_tree(probe);
	free(probe);
	free(cover);
	if (rc < 0 || status != 0) {
		die("cannot run steps apart from the store: %s (flowyfs needs mount "
		    "namespaces: run it as root, or allow unprivileged user namespaces)",
		    err ? err : "the probe step failed");
		free(err);
		return 1;
	}
	return 0;
}

static void write_pid(int lock_fd)
{
	char pid[32];
	int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
	if (ftruncate(lock_fd, 0) < 0 || pwrite(lock_fd, pid, (size_t)n, 0) != n)
		log_error("cannot record pid in the store lock: %s", strerror(errno));
}

/* Larger kernel read-ahead for this mount (FS_READAHEAD, fs.h): +65%
 * sequential reads over the default. Best effort: /sys may be read-only. */
static void raise_readahead(const char *devname)
{
	char *path = xasprintf("/sys/class/bdi/%s/read_ahead_kb", devname);
	FILE *ra = fopen(path, "w");
	if (ra) {
		int bad = fprintf(ra, "%d\n", FS_READAHEAD / 1024) < 0;
		if (fclose(ra) != 0 || bad)
			log_debug("%s: %s", path, strerror(errno));
	}
	free(path);
}

/* A file: input of pipeline changed (the watch thread): revalidate it and
 * let the scheduler queue its run once the input has been quiet for the
 * change window; activity (busy) only holds a queued change back. */
static void input_changed(struct flowy *f, const char *pipeline, int busy)
{
	if (busy) {
		catalog_busy(f, pipeline);
		return;
	}
	catalog_changed(f, pipeline);
	sched_wake(f);
}

int main(int argc, char **argv)
{
	umask(0);
	struct options o = {0};
	struct flowy f = {.main_thread = pthread_self()};
	int lock_fd = -1, rc = 1, http_fd = -1;
	struct http *http = NULL;
	struct prerender *pre = NULL;
	struct fuse_session *se = NULL;
	char *store = NULL;

	if (parse_args(argc, argv, &o))
		goto out;
	if (check_mountpoint(o.mnt, &f.mnt))
		goto out;
	store = o.store ? xstrdup(o.store) : default_store();
	if (open_store(store, &f, &lock_fd))
		goto out;
	if (inside(f.mnt, f.store) || inside(f.store, f.mnt)) {
		die("store %s and mountpoint %s may not contain each other", f.store, f.mnt);
		goto out;
	}
	/* No other process of this user may read the daemon's memory or open
	 * its files through /proc (steps run as this user when not root). */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		die("cannot protect the daemon from its steps: %s", strerror(errno));
		goto out;
	}
	if (open_scratch(o.scratch, &f) || check_isolation(&f))
		goto out;
	char *http_err = NULL;
	if (o.http && http_listen(o.http, &http_fd, &http_err) < 0) {
		die("%s", http_err);
		free(http_err);
		goto out;
	}
	f.allow_other = o.fuse_opts.len && strstr(o.fuse_opts.buf, "allow_other");
	/* On a shared mount every user may make pipelines, and only remove
	 * their own (sticky, like /tmp); a private one is the owner's. */
	if (chmod(f.pipelines_dir, f.allow_other ? 01777 : 0755) < 0) {
		die("store %s: %s", f.pipelines_dir, strerror(errno));
		goto out;
	}
	f.jobs = o.jobs;
	f.executor = o.executor ? o.executor : "local";
	if (o.shared) {
		struct stat sst;
		f.shared_dir = realpath(o.shared, NULL);
		if (!f.shared_dir || stat(f.shared_dir, &sst) < 0 || !S_ISDIR(sst.st_mode)) {
			die("shared dir %s: %s", o.shared, f.shared_dir ? "not a directory" :
			    strerror(errno));
			goto out;
		}
		if (inside(f.shared_dir, f.store) || inside(f.shared_dir, f.mnt)) {
			die("shared dir %s: must be outside the store and the mountpoint",
			    f.shared_dir);
			goto out;
		}
	}
	f.debug = o.debug;
	f.coalesce = 0.3;
	f.inodes = inode_table_new();
	f.catalog = catalog_new();
	f.events = events_new();
	log_init(o.debug, 0);
	char *logfile = xasprintf("%s/daemon.log", f.store);
	int lrc = log_open_file(logfile);
	if (lrc < 0)
		log_error("%s: %s (messages go to stderr or syslog only)", logfile,
		          strerror(-lrc));
	free(logfile);

	/* Reads a little under 1 MiB fit libfuse's splice pipe within the
	 * default pipe-max-size; bigger ones fall back to copying. */
	char *fo = xasprintf("-ofsname=flowyfs,subtype=flowyfs,default_permissions,"
	                     "max_read=%d%s", FS_MAX_READ,
	                     o.fuse_opts.len ? o.fuse_opts.buf : "");
	char *fargv[] = {argv[0], fo, o.debug ? "-d" : NULL, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(o.debug ? 3 : 2, fargv);
	se = fuse_session_new(&args, &fs_ops, sizeof fs_ops, &f);
	free(fo);
	if (!se) {
		die("cannot start FUSE session (bad -o option?)");
		goto out;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		die("cannot install signal handlers");
		goto out_session;
	}
	if (fuse_session_mount(se, f.mnt) != 0) {
		die("cannot mount on %s (is fuse3 installed and /dev/fuse usable?)", f.mnt);
		goto out_signals;
	}
	/* What the mount is, learnt from the mount table (a stat of our own
	 * mount would wait for the loop that has not started). */
	struct hostfs_mount mi;
	if (hostfs_mount_info(f.mnt, &mi) < 0) {
		die("cannot find the new mount %s in /proc/self/mountinfo", f.mnt);
		goto out_unmount;
	}
	f.mnt_dev = mi.dev;
	f.mnt_flags = mi.flags;
	raise_readahead(mi.devname);
	if (!o.foreground) {
		log_init(0, 1);
		if (fuse_daemonize(0) != 0)
			goto out_unmount;
	}
	write_pid(lock_fd);
	/* Hooks before the scheduler (whose events they take); the Slurm
	 * poller after daemonizing (threads do not survive the fork); then the
	 * scheduler, before the watches (which feed it). */
	if ((rc = hooks_start(&f, o.hook_timeout)) != 0 || (rc = alerts_start(&f)) != 0 ||
	    (rc = waits_start(&f)) != 0) {
		log_error("cannot start the hook runner and alerts: %s", strerror(-rc));
		alerts_stop(&f);
		waits_stop(&f);
		hooks_stop(&f);
		rc = 1;
		goto out_unmount;
	}
	if (f.shared_dir && (rc = exec_slurm_open(&f)) != 0) {
		log_error("cannot start the Slurm poller on %s: %s", f.shared_dir,
		          strerror(-rc));
		alerts_stop(&f);
		waits_stop(&f);
		hooks_stop(&f);
		rc = 1;
		goto out_unmount;
	}
	if ((rc = sched_start(&f)) != 0 || (rc = watch_start(&f, input_changed)) != 0) {
		log_error("cannot start the scheduler: %s", strerror(-rc));
		sched_stop(&f);
		exec_slurm_close();
		alerts_stop(&f);
		waits_stop(&f);
		hooks_stop(&f);
		rc = 1;
		goto out_unmount;
	}
	/* Graphs drawn ahead from the first validation on (the scan's). */
	if ((rc = prerender_start(&pre)) != 0)
		log_error("cannot start the background renderer: %s (graphs are drawn "
		          "when first read)", strerror(-rc));
	else
		catalog_on_valid(f.catalog, prerender_dag, pre);
	catalog_scan(&f);
	if (http_fd >= 0) {
		int fd = http_fd;
		http_fd = -1; /* http_start takes it over */
		if (http_start(&http, &f, fd) < 0) {
			rc = 1;
			goto out_stop;
		}
		log_info("dashboard served on %s (--http)", o.http);
	}
	log_info("serving store %s on %s with -j %d", f.store, f.mnt, f.jobs);
	struct fuse_loop_config cfg = {.clone_fd = 0, .max_idle_threads = 16};
	rc = fuse_session_loop_mt(se, &cfg);
	if (rc)
		log_debug("FUSE loop ended with %d", rc);
	/* An unmount is a clean stop however the loop saw it end. */
	rc = rc && !__atomic_load_n(&f.unmounted, __ATOMIC_RELAXED) ? 1 : 0;
out_stop:
	http_stop(http);
	watch_stop(&f);
	/* Every thread that emits events has stopped once the alerts have. */
	sched_stop(&f);
	/* Nothing validates any more: no new graph to draw. */
	catalog_on_valid(f.catalog, NULL, NULL);
	prerender_stop(pre);
	dagsvg_shutdown();
	exec_slurm_close();
	alerts_stop(&f);
	waits_stop(&f);
	hooks_stop(&f);
	log_info("stopped");
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
out:
	log_close_file();
	catalog_free(f.catalog);
	events_free(f.events);
	inode_table_free(f.inodes);
	vcs_close(f.vcs);
	envinfo_free_cache();
	db_close(f.db);
	cas_close(f.cas);
	if (lock_fd >= 0)
		close(lock_fd);
	if (http_fd >= 0)
		close(http_fd);
	free(f.pipelines_dir);
	free(f.runs_dir);
	free(f.hooks_dir);
	free(f.events_dir);
	if (f.scratch_dir)
		remove_tree(f.scratch_dir);
	free(f.scratch_dir);
	free(f.shared_dir);
	free(f.store);
	free(f.mnt);
	free(store);
	free(o.store_opt);
	free(o.scratch_opt);
	strbuf_release(&o.fuse_opts);
	return rc;
}
