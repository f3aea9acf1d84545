/*
 * exec.h - starting a step's process: /bin/sh -c CMD in its own process
 * group, in a given directory and environment, stdout and stderr appended
 * to a log, stdin from /dev/null; and waiting for it through a pidfd.
 */
#ifndef FLOWYFS_EXEC_H
#define FLOWYFS_EXEC_H

#include <sys/types.h>

struct exec_proc {
	pid_t pid;          /* also the process group id */
	int pidfd;          /* readable when the process exits */
};

/* Start cmd. Returns 0 or -errno. */
int exec_start(struct exec_proc *out, const char *cmd, const char *cwd,
               char *const envp[], int log_fd);
/* Signal the whole process group. */
void exec_signal(const struct exec_proc *p, int sig);
/* Reap an exited process: its exit code (128+N when killed by signal N);
 * closes the pidfd. */
int exec_reap(struct exec_proc *p);

#endif
