/*
 * exec.c - step processes, isolated from the store.
 *
 * posix_spawn cannot make a mount namespace, so this does what glibc's
 * posix_spawn does itself: clone(CLONE_VM | CLONE_VFORK) onto a private
 * stack, with every signal blocked around it, and a child that only makes
 * raw system calls (no malloc, no locks, no glibc set*id broadcast: the
 * child shares the daemon's memory until it execs). The child sets up its
 * namespace (see exec.h), drops privileges and execs /bin/sh; a failure is
 * written into the shared argument block, so the parent reports which
 * stage failed and why. CLONE_NEWNS (and CLONE_NEWUSER for a daemon that is
 * not root) are clone flags, so the namespace costs no extra process.
 *
 * Making a namespace is most of a start's cost (the copy of the mount
 * table, two tmpfs superblocks, and their teardown when the step exits),
 * so a root daemon may make one once (exec_ns_make: the same child, which
 * opens its namespace into the shared file table and exits instead of
 * exec'ing) and start many steps in it with setns.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>

#include "flowyfs/exec.h"
#include "flowyfs/util.h"

#define CHILD_STACK (128 * 1024)
#define MAX_MKDIRS 64

/* Capabilities a root step keeps out of: each would let it undo its
 * namespace (mount, umount), reach the daemon (/proc/<pid>/root, ptrace)
 * or the disk under the store. */
static const int dropped_caps[] = {
	CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_SYS_MODULE, CAP_SYS_RAWIO,
	CAP_SYS_BOOT, CAP_MKNOD, CAP_SYS_CHROOT, CAP_MAC_ADMIN,
	CAP_MAC_OVERRIDE, CAP_BPF, CAP_PERFMON, CAP_SETPCAP,
};

int exec_bound_caps(void)
{
	for (size_t i = 0; i < sizeof dropped_caps / sizeof *dropped_caps; i++) {
		int in = prctl(PR_CAPBSET_READ, dropped_caps[i], 0, 0, 0);
		if (in < 0 || (in == 1 && prctl(PR_CAPBSET_DROP, dropped_caps[i], 0, 0, 0) < 0))
			return -errno;
	}
	return 0;
}

/* Everything the child needs, prepared by the parent (the child only
 * reads it, and writes err/stage on failure). */
struct child {
	const struct exec_spec *s;
	int userns;                  /* daemon not root: map our own ids */
	int switch_user;             /* root daemon, other uid */
	int keep_hide;               /* index of the hidden dir holding keep */
	char keep_proc[64];          /* "/proc/self/fd/N" of keep, in the child */
	char uid_map[64], gid_map[64];
	const char *mkdirs[MAX_MKDIRS]; /* keep's parents inside the tmpfs */
	size_t nmkdirs;
	char *argv[4];
	int high[EXEC_MAX_FDS];      /* spec->fds, moved out of the way of 3.. */
	int errpipe;                 /* forked child (no shared memory): where
	                                failures go; -1 with CLONE_VM */
	int make_ns;                 /* exec_ns_make: open the namespace, exit */
	long ns_fd;                  /* what it opened (in the shared fd table) */
	int err;
	const char *stage;
};

/* What a forked child reports before it exits (the stage string lives in
 * the binary, at the same address in both processes). */
struct failure {
	int err;
	const char *stage;
};

/* Every call of the child goes through here: on failure the errno (which
 * lives in the parent thread's memory, shared until exec) is copied at
 * once, with the stage, into the argument block the parent reads. */
#define SYS(c, what, call)                                                     \
	do {                                                                   \
		if ((long)(call) < 0) {                                        \
			(c)->err = errno;                                      \
			(c)->stage = (what);                                   \
			goto fail;                                             \
		}                                                              \
	} while (0)

__attribute__((no_sanitize("address", "undefined")))
static long write_str(const char *path, const char *s)
{
	long fd = syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return fd;
	size_t n = 0;
	while (s[n])
		n++;
	long w = syscall(SYS_write, fd, s, n);
	syscall(SYS_close, fd);
	return w == (long)n ? 0 : -1;
}

/* "/proc/self/fd/<fd>" into buf (no printf in the child). */
__attribute__((no_sanitize("address", "undefined")))
static void fd_path(char *buf, long fd)
{
	static const char pre[] = "/proc/self/fd/";
	char digits[24];
	int n = 0, k = 0;
	do
		digits[n++] = (char)('0' + fd % 10);
	while ((fd /= 10) > 0);
	for (; pre[k]; k++)
		buf[k] = pre[k];
	while (n)
		buf[k++] = digits[--n];
	buf[k] = '\0';
}

__attribute__((no_sanitize("address", "undefined")))
static int child_main(void *arg)
{
	struct child *c = arg;
	const struct exec_spec *s = c->s;
	const unsigned long hidden = MS_NOSUID | MS_NODEV | MS_NOEXEC;

	if (s->ns) {
		SYS(c, "enter the steps' namespace",
		    syscall(SYS_setns, s->ns->fd, CLONE_NEWNS));
		goto isolated;
	}
	if (c->userns) {
		/* A non-dumpable process's /proc files belong to root: this child
		 * (its own copy of memory, exec follows) may be dumpable. */
		SYS(c, "allow writing the id maps",
		    syscall(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0));
		SYS(c, "deny setgroups in the user namespace",
		    write_str("/proc/self/setgroups", "deny"));
		SYS(c, "map the user id", write_str("/proc/self/uid_map", c->uid_map));
		SYS(c, "map the group id", write_str("/proc/self/gid_map", c->gid_map));
	}
	SYS(c, "make the mounts private",
	    syscall(SYS_mount, NULL, "/", NULL, MS_REC | MS_SLAVE, NULL));
	if (c->keep_hide >= 0) {
		/* Opened here: a bind source must be in this namespace. */
		long kfd = syscall(SYS_openat, AT_FDCWD, s->keep,
		                   O_PATH | O_DIRECTORY | O_CLOEXEC);
		SYS(c, "open the step's scratch directory", kfd);
		fd_path(c->keep_proc, kfd);
	}
	for (size_t i = 0; i < s->nhide; i++) {
		if ((int)i != c->keep_hide) {
			SYS(c, "cover the store", syscall(SYS_mount, "flowyfs-hidden",
			    s->hide[i], "tmpfs", MS_RDONLY | hidden, "size=4k,mode=000"));
			continue;
		}
		SYS(c, "cover the scratch directory", syscall(SYS_mount,
		    "flowyfs-hidden", s->hide[i], "tmpfs", hidden, "size=64k,mode=755"));
		for (size_t k = 0; k < c->nmkdirs; k++)
			SYS(c, "make the scratch mount point",
			    syscall(SYS_mkdirat, AT_FDCWD, c->mkdirs[k], 0755));
		SYS(c, "bind the step's scratch directory",
		    syscall(SYS_mount, c->keep_proc, s->keep, NULL, MS_BIND, NULL));
		SYS(c, "make the scratch cover read-only",
		    syscall(SYS_mount, NULL, s->hide[i], NULL,
		            MS_REMOUNT | MS_RDONLY | hidden, "size=64k,mode=755"));
	}
	if (s->ro_mount)
		SYS(c, "make the flowyfs mount read-only",
		    syscall(SYS_mount, NULL, s->ro_mount, NULL,
		            MS_REMOUNT | MS_BIND | MS_RDONLY | s->ro_flags, NULL));
	if (c->make_ns) {
		c->ns_fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/ns/mnt",
		                   O_RDONLY | O_CLOEXEC);
		SYS(c, "open the namespace", c->ns_fd);
		syscall(SYS_exit_group, 0);
	}
isolated:
	if (c->switch_user) {
		SYS(c, "set the groups",
		    syscall(SYS_setgroups, s->ngroups, s->groups));
		SYS(c, "set the group id",
		    syscall(SYS_setresgid, s->gid, s->gid, s->gid));
		SYS(c, "set the user id",
		    syscall(SYS_setresuid, s->uid, s->uid, s->uid));
	} else if (!c->userns) {
		for (size_t i = 0; i < sizeof dropped_caps / sizeof *dropped_caps; i++)
			if (syscall(SYS_prctl, PR_CAPBSET_READ, dropped_caps[i], 0, 0, 0) == 1)
				SYS(c, "drop capabilities", syscall(SYS_prctl, PR_CAPBSET_DROP,
				    dropped_caps[i], 0, 0, 0));
	}
	SYS(c, "make a process group", syscall(SYS_setpgid, 0, 0));
	long nul = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY);
	SYS(c, "open /dev/null", nul);
	if (nul != 0)
		SYS(c, "redirect stdin", syscall(SYS_dup3, nul, 0, 0));
	if (s->out_fd != 1)
		SYS(c, "redirect stdout", syscall(SYS_dup3, s->out_fd, 1, 0));
	if (s->out_fd != 2)
		SYS(c, "redirect stderr", syscall(SYS_dup3, s->out_fd, 2, 0));
	for (size_t i = 0; i < s->nfds; i++)
		SYS(c, "pass the step's files", syscall(SYS_dup3, c->high[i], 3 + (int)i, 0));
	SYS(c, "close inherited files", syscall(SYS_close_range, 3 + (unsigned)s->nfds,
	                                        ~0U, 0));
	SYS(c, "enter the scratch directory", syscall(SYS_chdir, s->cwd));
	/* Default dispositions (the daemon ignores SIGPIPE), nothing blocked. */
	struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; }
		dfl = { SIG_DFL, 0, NULL, 0 };
	for (int sig = 1; sig < 65; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);
	uint64_t none = 0;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
	syscall(SYS_execve, "/bin/sh", c->argv, s->envp);
	c->err = errno;
	c->stage = "start /bin/sh";
fail:
	if (c->errpipe >= 0) { /* forked: the parent reads the failure here */
		struct failure f = {c->err, c->stage};
		syscall(SYS_write, c->errpipe, &f, sizeof f);
	}
	syscall(SYS_exit_group, 127);
	return 127;
}

static int inside(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return !strncmp(path, dir, n) && (path[n] == '/' || !path[n]);
}

/* Prepare what the child needs to bind keep back inside its cover. */
static int prepare_keep(struct child *c, char ***dirs)
{
	const struct exec_spec *s = c->s;
	c->keep_hide = -1;
	if (!s->keep)
		return 0;
	for (size_t i = 0; i < s->nhide; i++)
		if (inside(s->keep, s->hide[i]) && strcmp(s->keep, s->hide[i]))
			c->keep_hide = (int)i;
	if (c->keep_hide < 0)
		return 0;
	const char *base = s->keep + strlen(s->hide[c->keep_hide]);
	*dirs = xcalloc(MAX_MKDIRS, sizeof **dirs);
	for (const char *p = base; *p; p++) {
		if (p[1] != '/' && p[1])
			continue;
		if (c->nmkdirs == MAX_MKDIRS)
			return -ENAMETOOLONG;
		(*dirs)[c->nmkdirs] = xstrndup(s->keep, (size_t)(p + 1 - s->keep));
		c->mkdirs[c->nmkdirs] = (*dirs)[c->nmkdirs];
		c->nmkdirs++;
	}
	return 0;
}

/* Fill in what the child needs from spec (and its fds moved high). */
static int child_init(struct child *c, const struct exec_spec *spec, char ***dirs,
                      char **err)
{
	memset(c, 0, sizeof *c);
	c->s = spec;
	c->errpipe = -1;
	c->ns_fd = -1;
	c->userns = geteuid() != 0;
	c->switch_user = !c->userns && spec->uid != 0;
	snprintf(c->uid_map, sizeof c->uid_map, "%u %u 1\n", (unsigned)geteuid(),
	         (unsigned)geteuid());
	snprintf(c->gid_map, sizeof c->gid_map, "%u %u 1\n", (unsigned)getegid(),
	         (unsigned)getegid());
	c->argv[0] = "sh";
	c->argv[1] = "-c";
	c->argv[2] = (char *)spec->cmd;
	for (size_t i = 0; i < EXEC_MAX_FDS; i++)
		c->high[i] = -1;
	/* Copies above any slot they go to, so renumbering cannot clobber. */
	for (size_t i = 0; i < spec->nfds && i < EXEC_MAX_FDS; i++)
		if ((c->high[i] = fcntl(spec->fds[i], F_DUPFD_CLOEXEC, 3 + EXEC_MAX_FDS)) < 0) {
			int e = errno;
			*err = xasprintf("cannot pass a file to the step: %s", strerror(e));
			return -e;
		}
	c->keep_hide = -1;
	if (spec->ns) /* the namespace has its mounts already */
		return 0;
	int rc = prepare_keep(c, dirs);
	if (rc < 0)
		*err = xasprintf("scratch directory %s is nested too deep", spec->keep);
	return rc;
}

static void child_free(struct child *c, char **dirs)
{
	for (size_t i = 0; i < EXEC_MAX_FDS; i++)
		if (c->high[i] >= 0)
			close(c->high[i]);
	for (size_t i = 0; dirs && i < c->nmkdirs; i++)
		free(dirs[i]);
	free(dirs);
}

/* The child's stack: one per thread that starts children, kept for the
 * next (mapping and unmapping it was a tenth of a start: the unmap
 * interrupts every core the daemon's threads ran on). A child is done
 * with it when clone returns: it has exec'd or exited (CLONE_VFORK), or
 * it has a copy of its own (no CLONE_VM). NULL with errno when there is
 * none to be had. */
static pthread_key_t stack_key;
static pthread_once_t stack_once = PTHREAD_ONCE_INIT;

static void stack_unmap(void *stack)
{
	munmap(stack, CHILD_STACK);
}

static void stack_key_make(void)
{
	if (pthread_key_create(&stack_key, stack_unmap) != 0)
		util_oom();
}

static char *child_stack(void)
{
	pthread_once(&stack_once, stack_key_make);
	char *stack = pthread_getspecific(stack_key);
	if (stack)
		return stack;
	stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
	             MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		return NULL;
	int rc = pthread_setspecific(stack_key, stack);
	if (rc != 0) {
		munmap(stack, CHILD_STACK);
		errno = rc;
		return NULL;
	}
	return stack;
}

/* Clone the child with flags (every signal blocked around it) and collect
 * a forked child's failure. Returns its pid, or -errno with *err set. */
static pid_t child_clone(struct child *c, int flags, char **err)
{
	sigset_t all, old;
	int ep[2] = {-1, -1};
	char *stack = child_stack();
	if (!stack) {
		int e = errno;
		*err = xasprintf("cannot start the step: %s", strerror(e));
		return -e;
	}
	if (!(flags & CLONE_VM)) {
		if (pipe2(ep, O_CLOEXEC) < 0) {
			int e = errno;
			*err = xasprintf("cannot start the step: %s", strerror(e));
			return -e;
		}
		c->errpipe = ep[1];
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = clone(child_main, stack + CHILD_STACK, flags, c);
	int clone_errno = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ep[0] >= 0) {
		close(ep[1]);
		struct failure fl;
		ssize_t n = pid < 0 ? 0 : read(ep[0], &fl, sizeof fl);
		while (n < 0 && errno == EINTR)
			n = read(ep[0], &fl, sizeof fl);
		close(ep[0]);
		if (n == (ssize_t)sizeof fl) {
			c->err = fl.err;
			c->stage = fl.stage;
		}
	}
	if (pid < 0) {
		*err = xasprintf("cannot isolate the step (clone with a new mount "
		                 "namespace): %s", strerror(clone_errno));
		return -clone_errno;
	}
	return pid;
}

static void wait_child(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* child_clone, then the child's own failure (reaped) as -errno with *err
 * "<what> (<stage>): <reason>". Returns the pid otherwise. */
static pid_t child_run(struct child *c, int flags, const char *what, char **err)
{
	pid_t pid = child_clone(c, flags, err);
	if (pid < 0 || !c->stage)
		return pid;
	*err = xasprintf("%s (%s): %s", what, c->stage, strerror(c->err));
	wait_child(pid);
	return -c->err;
}

int exec_start(struct exec_proc *out, const struct exec_spec *spec, char **err)
{
	struct child c;
	char **dirs = NULL;
	*err = NULL;
	int rc = child_init(&c, spec, &dirs, err);
	if (rc < 0)
		goto out;
	/* As root the child shares our memory until it execs (vfork speed).
	 * Without root it must make itself dumpable to write its id maps,
	 * and dumpability belongs to the memory, so it gets a copy (fork) and
	 * reports failures through a pipe that closes on exec. Entering a
	 * namespace made before needs neither. */
	int flags = SIGCHLD;
	if (spec->ns)
		flags |= CLONE_VM | CLONE_VFORK;
	else
		flags |= CLONE_NEWNS | (c.userns ? CLONE_NEWUSER : CLONE_VM | CLONE_VFORK);
	pid_t pid = child_run(&c, flags, "cannot isolate the step", err);
	if (pid < 0) {
		rc = pid;
		goto out;
	}
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		rc = -errno;
		*err = xasprintf("cannot watch the step: %s", strerror(-rc));
		kill(-pid, SIGKILL);
		wait_child(pid);
		goto out;
	}
	out->pid = pid;
	out->pidfd = pidfd;
out:
	child_free(&c, dirs);
	return rc;
}

int exec_ns_make(struct exec_ns *out, const struct exec_spec *spec, char **err)
{
	struct child c;
	char **dirs = NULL;
	*err = NULL;
	out->fd = -1;
	if (geteuid() != 0) {
		*err = xstrdup("a namespace for many steps needs a root daemon");
		return -EPERM;
	}
	int rc = child_init(&c, spec, &dirs, err);
	if (rc < 0)
		goto out;
	c.make_ns = 1;
	/* The child opens its namespace into the file table it shares. */
	pid_t pid = child_run(&c, SIGCHLD | CLONE_NEWNS | CLONE_VM | CLONE_VFORK |
	                      CLONE_FILES, "cannot make the steps' namespace", err);
	if (pid < 0) {
		rc = pid;
		goto out;
	}
	wait_child(pid); /* it exited once the namespace was open */
	out->fd = (int)c.ns_fd;
out:
	child_free(&c, dirs);
	return rc;
}

void exec_ns_close(struct exec_ns *ns)
{
	if (ns->fd >= 0)
		close(ns->fd);
	ns->fd = -1;
}

void exec_signal(const struct exec_proc *p, int sig)
{
	if (p->pid > 0)
		kill(-p->pid, sig);
}

int exec_reap(struct exec_proc *p)
{
	int status = 0;
	while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
		;
	close(p->pidfd);
	p->pidfd = -1;
	/* Stragglers of the group are reparented to init; stop them. */
	kill(-p->pid, SIGKILL);
	p->pid = 0;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}
