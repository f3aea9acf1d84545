/*
 * exec.h - starting a step's process, isolated from the store.
 *
 * A step is /bin/sh -c CMD in its own process group, with stdin from
 * /dev/null and stdout/stderr on a given fd (the write end of its log
 * pipe). It runs in a mount namespace of its own in which:
 *   - every directory in `hide` (the store, the scratch root) is covered
 *     by an empty read-only tmpfs, so nothing in it can be read, listed or
 *     deleted, except `keep` (the step's own scratch, bound back in place);
 *   - the flowyfs mount itself is read-only (steps read artifacts and
 *     views through it, and cannot change pipelines behind the user);
 *   - a root daemon runs it as uid/gid (with their groups) or, when it
 *     stays root, without the capabilities that would undo the above
 *     (CAP_SYS_ADMIN, CAP_SYS_PTRACE, ...); a daemon that is not root
 *     makes a user namespace mapping only its own ids, whose mounts the
 *     step cannot unmount.
 * A root daemon may make such a namespace once (exec_ns_make, from a spec's
 * hide, keep and ro_mount) and start many steps in it (spec.ns): entering
 * it costs what a plain spawn does, where making one per step costs about
 * half a millisecond more. Steps that share one must not run at once
 * unless they may see each other's keep.
 * Besides stdin/stdout/stderr the step inherits only `fds`, renumbered
 * from 3. The process is waited for through a pidfd, so the scheduler can poll()
 * exits alongside its timers.
 */
#ifndef FLOWYFS_EXEC_H
#define FLOWYFS_EXEC_H

#include <sys/types.h>

#define EXEC_MAX_HIDE 4
#define EXEC_MAX_FDS 4

/* A mount namespace made by exec_ns_make. */
struct exec_ns {
	int fd;                          /* its nsfs file, or -1 */
};

struct exec_spec {
	const char *cmd;
	const char *cwd;                 /* the step's scratch directory */
	char *const *envp;
	int out_fd;                      /* becomes stdout and stderr */
	const char *hide[EXEC_MAX_HIDE]; /* absolute directories to cover */
	size_t nhide;
	const char *keep;                /* inside a hidden one: stays visible */
	const char *ro_mount;            /* made read-only (NULL: none) */
	unsigned long ro_flags;          /* its mount flags (MS_NOSUID ...) */
	uid_t uid;                       /* run as (when the daemon is root) */
	gid_t gid;
	const gid_t *groups;             /* supplementary groups of uid */
	size_t ngroups;
	int fds[EXEC_MAX_FDS];           /* become the step's fds 3, 4, ... */
	size_t nfds;
	const struct exec_ns *ns;        /* enter this one (hide, keep and
	                                    ro_mount are then its own), or NULL:
	                                    make one for this process */
};

struct exec_proc {
	pid_t pid;          /* also the process group id */
	int pidfd;          /* readable when the process exits */
};

/* Drop, from the calling thread's bounding set, the capabilities no root
 * step may have (its own effective ones stay): the steps this thread then
 * starts inherit the smaller set, so their child need not drop each one
 * (twelve credential changes, 30 us of every start; a child still drops
 * what its parent's set holds). For a root daemon's step-starting thread,
 * once. 0 or -errno. */
int exec_bound_caps(void);
/* Start the step. Returns 0, or -errno with *err (malloc'd) saying which
 * part of the isolation or start failed. */
int exec_start(struct exec_proc *out, const struct exec_spec *spec, char **err);
/* Make a namespace as exec_start would for spec (its hide, keep and
 * ro_mount), for steps to enter. Root only (-EPERM otherwise). Returns 0,
 * or -errno with *err (malloc'd). */
int exec_ns_make(struct exec_ns *out, const struct exec_spec *spec, char **err);
void exec_ns_close(struct exec_ns *ns);
/* Signal the whole process group. */
void exec_signal(const struct exec_proc *p, int sig);
/* Reap an exited process: its exit code (128+N when killed by signal N);
 * closes the pidfd and kills what is left of its process group. */
int exec_reap(struct exec_proc *p);
#endif
