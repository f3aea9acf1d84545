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
 *   stored:   slot, and after each exit what a content-addressed store
 *             must do before the next step can start, and nothing more:
 *             the output read and hashed (SHA-256), written to an
 *             O_TMPFILE in the objects directory and linked under its hash
 *             (no fsync: the daemon syncs later, off the critical path),
 *             and the next step's in/ link made, its target the output's
 *             name in a mount's artifacts/sha256/ (no database, log,
 *             cache lookup or params: the floor of a scheduler like ours);
 * each waited for before the next; or (fsync) N small files written as
 * the store publishes an object: an O_TMPFILE, written, fsync'd and
 * linked under its name. Prints the milliseconds per process or file
 * (bench/run.sh shows them beside the chain, as what no scheduler can go
 * below on this machine).
 *
 *   exec_floor spawn|isolated|slot|stored|fsync DIR N
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

#include <openssl/evp.h>

#include "flowyfs/exec.h"

extern char **environ;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Publish len bytes as the store does: an O_TMPFILE in dfd, written,
 * fsync'd when durable is set, and linked as name (one already there is
 * the same content). 0, or -1 with the reason printed. */
static int publish(int dfd, const char *name, const void *buf, size_t len, int durable)
{
	char proc[64];
	int fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0444);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len || (durable && fsync(fd) < 0)) {
		perror("publish");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	int rc = linkat(AT_FDCWD, proc, dfd, name, AT_SYMLINK_FOLLOW) < 0 && errno != EEXIST;
	if (rc)
		perror("linkat");
	close(fd);
	return rc ? -1 : 0;
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
		char buf[32], name[32];
		int len = snprintf(buf, sizeof buf, "s%04ld\n", i);
		snprintf(name, sizeof name, "o%ld", i);
		if (publish(dfd, name, buf, (size_t)len, 1) < 0)
			return 1;
	}
	close(dfd);
	printf("%.3f\n", (now() - t0) / (double)n * 1000);
	return 0;
}

/* Store out/o<i> of the step directory at sfd as an object of objects_fd
 * (hex name, no fsync) and link it as in/p<i> for the next step. */
static int store_output(int sfd, int objects_fd, const char *dir, long i)
{
	char name[64], buf[4096], hex[2 * EVP_MAX_MD_SIZE + 1];
	snprintf(name, sizeof name, "out/o%ld", i);
	int fd = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		perror(name);
		return -1;
	}
	ssize_t len = read(fd, buf, sizeof buf);
	close(fd);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (len < 0 || !EVP_Digest(buf, (size_t)len, md, &mdlen, EVP_sha256(), NULL)) {
		fprintf(stderr, "exec_floor: cannot hash %s\n", name);
		return -1;
	}
	for (unsigned k = 0; k < mdlen; k++)
		snprintf(hex + 2 * k, 3, "%02x", md[k]);
	if (publish(objects_fd, hex, buf, (size_t)len, 0) < 0)
		return -1;
	char target[4096];
	snprintf(target, sizeof target, "%s/mnt/artifacts/sha256/%s", dir, hex);
	snprintf(name, sizeof name, "in/p%ld", i);
	if (symlinkat(target, sfd, name) < 0) {
		perror(name);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 4 || (strcmp(argv[1], "spawn") && strcmp(argv[1], "isolated") &&
	                  strcmp(argv[1], "slot") && strcmp(argv[1], "stored") &&
	                  strcmp(argv[1], "fsync"))) {
		fprintf(stderr, "usage: exec_floor spawn|isolated|slot|stored|fsync DIR N\n");
		return 2;
	}
	if (!strcmp(argv[1], "fsync"))
		return publish_files(argv[2], strtol(argv[3], NULL, 10));
	int isolated = !strcmp(argv[1], "isolated"), stored = !strcmp(argv[1], "stored");
	int slot = stored || !strcmp(argv[1], "slot");
	const char *dir = argv[2];
	long n = strtol(argv[3], NULL, 10);
	char store[4096], scratch[4096], step[4096], out[4096], cmd[128];
	char slotdir[4096], work[4096], objects[4096], in[4096];
	snprintf(store, sizeof store, "%s/store", dir);
	snprintf(objects, sizeof objects, "%s/store/objects", dir);
	snprintf(in, sizeof in, "%s/scratch/step/in", dir);
	snprintf(scratch, sizeof scratch, "%s/scratch", dir);
	snprintf(step, sizeof step, "%s/scratch/step", dir);
	snprintf(out, sizeof out, "%s/scratch/step/out", dir);
	snprintf(slotdir, sizeof slotdir, "%s/scratch/slot", dir);
	snprintf(work, sizeof work, "%s/scratch/slot/work", dir);
	const char *mk[] = {dir, store, objects, scratch, step, in, out, slotdir};
	for (size_t i = 0; i < sizeof mk / sizeof *mk; i++)
		if (mkdir(mk[i], 0755) < 0 && errno != EEXIST) {
			perror(mk[i]);
			return 1;
		}
	if (chdir(step) < 0) {
		perror(step);
		return 1;
	}
	/* As the daemon's scheduler thread: its steps inherit a bounding set
	 * without the capabilities they may not have (exec.h). */
	int brc = (isolated || slot) && geteuid() == 0 ? exec_bound_caps() : 0;
	if (brc < 0) {
		fprintf(stderr, "exec_floor: cannot bound capabilities: %s\n", strerror(-brc));
		return 1;
	}
	int objects_fd = open(objects, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int step_fd = open(step, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (objects_fd < 0 || step_fd < 0) {
		perror(dir);
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
		if (stored && store_output(step_fd, objects_fd, dir, i) < 0)
			return 1;
	}
	printf("%.3f\n", (now() - t0) / (double)n * 1000);
	exec_ns_close(&ns);
	close(objects_fd);
	close(step_fd);
	return 0;
}
