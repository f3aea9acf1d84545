/*
 * main.c - flowyfs [--store DIR] [-j N] [-f] [-d] [-o OPTS] MOUNTPOINT
 *
 * Checks the command line, opens the store (taking its lock so only one
 * daemon serves it), mounts, starts the scheduler and serves FUSE with the
 * multithreaded loop. Teardown runs in reverse: the scheduler stops (steps
 * killed, their run marked interrupted), then the mount, then the store.
 * Every startup error is one line naming the problem, and exit status 1.
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
#include <sys/stat.h>
#include <unistd.h>

#include "flowyfs/envinfo.h"
#include "flowyfs/fs.h"
#include "flowyfs/log.h"
#include "flowyfs/registry.h"
#include "flowyfs/sched.h"
#include "flowyfs/util.h"
#include "flowyfs/watch.h"

#define FLOWYFS_VERSION "0.1.0"

struct options {
	const char *store, *mnt;
	int jobs, foreground, debug;
	struct strbuf fuse_opts;
};

static void usage(FILE *to)
{
	fprintf(to, "usage: flowyfs [--store DIR] [-j N] [-f] [-d] [-o FUSE_OPTS] MOUNTPOINT\n"
	            "  --store DIR  where runs, artifacts and pipelines live (default\n"
	            "               $FLOWYFS_STORE, else $XDG_DATA_HOME/flowyfs)\n"
	            "  -j N         steps that may run at once (default: CPUs)\n"
	            "  -f           stay in the foreground\n"
	            "  -d           debug log (implies -f)\n"
	            "  -o OPTS      FUSE mount options (e.g. allow_other)\n"
	            "stop with: fusermount3 -u MOUNTPOINT\n");
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

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{"store", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c;
	o->jobs = (int)sysconf(_SC_NPROCESSORS_ONLN);
	while ((c = getopt_long(argc, argv, "j:fdo:hV", longs, NULL)) != -1) {
		switch (c) {
		case 's':
			o->store = optarg;
			break;
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
			strbuf_printf(&o->fuse_opts, ",%s", optarg);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("flowyfs %s\n", FLOWYFS_VERSION);
			exit(0);
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return die(optind == argc ? "missing MOUNTPOINT" : "too many arguments");
	}
	o->mnt = argv[optind];
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

static int check_mountpoint(const char *mnt, char **out)
{
	struct stat st;
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

/* Create the store's layout and take its lock; the fd stays open. */
static int open_store(const char *dir, struct flowy *f, int *lock_fd)
{
	int rc = util_mkdir_p(dir, 0755);
	if (rc < 0)
		return die("store %s: %s", dir, strerror(-rc));
	f->store = realpath(dir, NULL);
	if (!f->store)
		return die("store %s: %s", dir, strerror(errno));
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
	f->scratch_dir = xasprintf("%s/scratch", f->store);
	char *objects = xasprintf("%s/objects", f->store);
	char *hooks = xasprintf("%s/hooks", f->store);
	const char *dirs[] = {f->pipelines_dir, f->runs_dir, objects, hooks};
	for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
		if ((rc = util_mkdir_p(dirs[i], 0755)) < 0)
			break;
	util_rm_rf(f->scratch_dir); /* leftovers of a daemon that died */
	if (!rc)
		rc = util_mkdir_p(f->scratch_dir, 0755);
	if (!rc)
		rc = cas_open(&f->cas, objects);
	free(hooks);
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
	db_recover(f->db, sched_stop_stray, NULL);
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

static void write_pid(int lock_fd)
{
	char pid[32];
	int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
	if (ftruncate(lock_fd, 0) < 0 || pwrite(lock_fd, pid, (size_t)n, 0) != n)
		log_error("cannot record pid in the store lock: %s", strerror(errno));
}

/* Larger kernel read-ahead for this mount: +65% sequential reads
 * (DESIGN.md section 6). Found through mountinfo, never through the mount. */
static void raise_readahead(const char *mnt)
{
	FILE *mi = fopen("/proc/self/mountinfo", "r");
	if (!mi)
		return;
	char line[4096], dev[64] = "";
	while (fgets(line, sizeof line, mi)) {
		char mdev[64], point[PATH_MAX];
		if (sscanf(line, "%*s %*s %63s %*s %4095s", mdev, point) == 2 &&
		    !strcmp(point, mnt))
			snprintf(dev, sizeof dev, "%s", mdev);
	}
	fclose(mi);
	if (!*dev)
		return;
	char *path = xasprintf("/sys/class/bdi/%s/read_ahead_kb", dev);
	FILE *ra = fopen(path, "w");
	if (ra) {
		fputs("1024\n", ra);
		fclose(ra);
	}
	free(path);
}

int main(int argc, char **argv)
{
	umask(0);
	struct options o = {0};
	struct flowy f = {0};
	int lock_fd = -1, rc = 1;
	struct fuse_session *se = NULL;
	char *store = NULL;

	if (parse_args(argc, argv, &o))
		goto out;
	if (check_mountpoint(o.mnt, &f.mnt))
		goto out;
	store = o.store ? xstrdup(o.store) : default_store();
	if (open_store(store, &f, &lock_fd))
		goto out;
	size_t sl = strlen(f.store), ml = strlen(f.mnt);
	if ((!strncmp(f.mnt, f.store, sl) && (f.mnt[sl] == '/' || !f.mnt[sl])) ||
	    (!strncmp(f.store, f.mnt, ml) && f.store[ml] == '/')) {
		die("store %s and mountpoint %s may not contain each other", f.store, f.mnt);
		goto out;
	}
	f.jobs = o.jobs;
	f.debug = o.debug;
	f.coalesce = 0.3;
	f.inodes = inode_table_new();
	f.registry = registry_new();
	log_init(o.debug, 0);

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
	raise_readahead(f.mnt);
	if (!o.foreground) {
		log_init(0, 1);
		if (fuse_daemonize(0) != 0)
			goto out_unmount;
	}
	write_pid(lock_fd);
	if ((rc = watch_start(&f)) != 0 || (rc = sched_start(&f)) != 0) {
		log_error("cannot start the scheduler: %s", strerror(-rc));
		watch_stop(&f);
		rc = 1;
		goto out_unmount;
	}
	registry_scan(&f);
	log_info("serving store %s on %s with -j %d", f.store, f.mnt, f.jobs);
	struct fuse_loop_config cfg = {.clone_fd = 0, .max_idle_threads = 16};
	rc = fuse_session_loop_mt(se, &cfg) ? 1 : 0;
	sched_stop(&f);
	watch_stop(&f);
	log_info("stopped");
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
out:
	registry_free(f.registry);
	inode_table_free(f.inodes);
	vcs_close(f.vcs);
	envinfo_free_cache();
	db_close(f.db);
	cas_close(f.cas);
	if (lock_fd >= 0)
		close(lock_fd);
	free(f.pipelines_dir);
	free(f.runs_dir);
	free(f.scratch_dir);
	free(f.store);
	free(f.mnt);
	free(store);
	strbuf_release(&o.fuse_opts);
	return rc;
}
