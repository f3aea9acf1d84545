/*
 * exec.c - step processes. posix_spawn (vfork-fast, safe in a
 * multithreaded daemon) with a new process group so that cancel and
 * timeout reach every child the step started; pidfds let the scheduler
 * poll() for exits alongside its timers.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flowyfs/exec.h"

int exec_start(struct exec_proc *out, const char *cmd, const char *cwd,
               char *const envp[], int log_fd)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dflt;
	int rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_addchdir_np(&fa, cwd);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, log_fd, 1);
	posix_spawn_file_actions_adddup2(&fa, log_fd, 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	sigemptyset(&none);
	sigfillset(&dflt);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dflt);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	                         POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_USEVFORK);
	char *argv[] = {"sh", "-c", (char *)cmd, NULL};
	pid_t pid;
	rc = -posix_spawn(&pid, "/bin/sh", &fa, &at, argv, envp);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		return rc;
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		rc = -errno;
		kill(-pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return rc;
	}
	out->pid = pid;
	out->pidfd = pidfd;
	return 0;
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
	/* Reap stragglers of the group are reparented to init; stop them. */
	kill(-p->pid, SIGKILL);
	p->pid = 0;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}
