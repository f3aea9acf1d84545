/*
 * exec_floor.c - the floor of a step's start: N processes of
 * `sh -c 'echo $i > out/o<i>'`, one after the other, started
 *   spawn:    by posix_spawn, as make starts its recipes;
 *   isolated: by exec_start (exec.c), the daemon's own start: a mount
 *             namespace of its own, the store and the scratch root covered
 *             and the step's dir bound back;
 *   slot:     as the daemon starts a step as root: in a namespace made once
 *             for its slot (exec_ns_make), its dir renamed into the slot's
 *             bound directory before and back after;
 * each waited for before the next; or (fsync) N small files written as
 * the store publishes an object: an O_TMPFILE, written, fsync'd and
 * linked under its name. Prints the milliseconds per process or file
 * (bench/run.sh shows them beside the chain, as what no scheduler can go
 * below on this machine).
 *
 *   exec_floor spawn|isolated|slot|fsync DIR N
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "flowyfs/exec.h"

extern char **environ;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* N objects of a few bytes into dir, each fsync'd before it is linked. */
static int publish_files(const char *dir, long n)
{
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		perror(dir);
		return 1;
	}
	double t0 = now();
	for (long i = 0; i < n; i++) {
		char buf[32], name[32], proc[64];
		int len = snprintf(buf, sizeof buf, "s%04ld\n", i);
		int fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0444);
		if (fd < 0 || write(fd, buf, (size_t)len) != len || fsync(fd) < 0) {
			perror("publish");
			return 1;
		}
		snprintf(name, sizeof name, "o%ld", i);
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
		if (linkat(AT_FDCWD, proc, dfd, name, AT_SYMLINK_FOLLOW) < 0) {
			perror("linkat");
			return 1;
		}
		close(fd);
	}
	close(dfd);
	printf("%.3f\n", (now() - t0) / (double)n * 1000);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 4 || (strcmp(argv[1], "spawn") && strcmp(argv[1], "isolated") &&
	                  strcmp(argv[1], "slot") && strcmp(argv[1], "fsync"))) {
		fprintf(stderr, "usage: exec_floor spawn|isolated|slot|fsync DIR N\n");
		return 2;
	}
	if (!strcmp(argv[1], "fsync"))
		return publish_files(argv[2], strtol(argv[3], NULL, 10));
	int isolated = !strcmp(argv[1], "isolated"), slot = !strcmp(argv[1], "slot");
	const char *dir = argv[2];
	long n = strtol(argv[3], NULL, 10);
	char store[4096], scratch[4096], step[4096], out[4096], cmd[128];
	char slotdir[4096], work[4096];
	snprintf(store, sizeof store, "%s/store", dir);
	snprintf(scratch, sizeof scratch, "%s/scratch", dir);
	snprintf(step, sizeof step, "%s/scratch/step", dir);
	snprintf(out, sizeof out, "%s/scratch/step/out", dir);
	snprintf(slotdir, sizeof slotdir, "%s/scratch/slot", dir);
	snprintf(work, sizeof work, "%s/scratch/slot/work", dir);
	const char *mk[] = {dir, store, scratch, step, out, slotdir};
	for (size_t i = 0; i < sizeof mk / sizeof *mk; i++)
		if (mkdir(mk[i], 0755) < 0 && errno != EEXIST) {
			perror(mk[i]);
			return 1;
		}
	if (chdir(step) < 0) {
		perror(step);
		return 1;
	}
	struct exec_ns ns = {-1};
	if (slot) {
		struct exec_spec spec = {
			.hide = {store, scratch}, .nhide = 2, .keep = slotdir,
		};
		char *err = NULL;
		if (exec_ns_make(&ns, &spec, &err) < 0) {
			fprintf(stderr, "exec_floor: %s\n", err);
			free(err);
			return 1;
		}
	}
	double t0 = now();
	for (long i = 0; i < n; i++) {
		snprintf(cmd, sizeof cmd, "echo %ld > out/o%ld", i, i);
		int code;
		if (isolated || slot) {
			struct exec_spec spec = {
				.cmd = cmd, .cwd = step, .envp = environ, .out_fd = 1,
				.hide = {store, scratch}, .nhide = 2, .keep = step,
				.uid = geteuid(), .gid = getegid(),
			};
			if (slot) {
				if (rename(step, work) < 0) {
					perror(work);
					return 1;
				}
				spec.cwd = work;
				spec.ns = &ns;
			}
			struct exec_proc p;
			char *err = NULL;
			if (exec_start(&p, &spec, &err) < 0) {
				fprintf(stderr, "exec_floor: %s\n", err);
				free(err);
				return 1;
			}
			struct pollfd pf = {.fd = p.pidfd, .events = POLLIN};
			if (poll(&pf, 1, -1) < 0) {
				perror("poll");
				return 1;
			}
			code = exec_reap(&p);
			if (slot && rename(work, step) < 0) {
				perror(step);
				return 1;
			}
		} else {
			char *av[] = {"sh", "-c", cmd, NULL};
			pid_t pid;
			int st = 0, rc = posix_spawn(&pid, "/bin/sh", NULL, NULL, av, environ);
			if (rc) {
				fprintf(stderr, "exec_floor: posix_spawn: %s\n", strerror(rc));
				return 1;
			}
			while (waitpid(pid, &st, 0) < 0)
				if (errno != EINTR) {
					perror("waitpid");
					return 1;
				}
			code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
		}
		if (code) {
			fprintf(stderr, "exec_floor: step %ld exited %d\n", i, code);
			return 1;
		}
	}
	printf("%.3f\n", (now() - t0) / (double)n * 1000);
	exec_ns_close(&ns);
	return 0;
}
