/*
 * scratchpool.c - a run's pool of step scratch directories
 * (scratchpool.h): give empties a directory into the trash by rename and
 * keeps it, take renames a kept one into place.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowyfs/scratchpool.h"
#include "flowyfs/util.h"

void scratchpool_init(struct scratchpool *p, const char *base)
{
	memset(p, 0, sizeof *p);
	p->base = xstrdup(base);
}

void scratchpool_free(struct scratchpool *p)
{
	for (size_t i = 0; i < p->nfree; i++)
		free(p->free[i]);
	free(p->free);
	free(p->base);
	memset(p, 0, sizeof *p);
}

/* base/.pool and base/.trash, once. */
static int make_dirs(struct scratchpool *p)
{
	if (p->made)
		return 0;
	const char *sub[] = {".pool", ".trash"};
	for (size_t i = 0; i < 2; i++) {
		char *d = xasprintf("%s/%s", p->base, sub[i]);
		int rc = mkdir(d, 0700) < 0 && errno != EEXIST ? -errno : 0;
		free(d);
		if (rc < 0)
			return rc;
	}
	p->made = 1;
	return 0;
}

/* Move every entry of the directory open at dfd into the trash. */
static int empty_into(struct scratchpool *p, int dfd, int trash, int keep_io)
{
	int fd = dup(dfd);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	int rc = 0;
	struct dirent *e;
	errno = 0;
	while (!rc && (e = readdir(d))) {
		const char *n = e->d_name;
		if (!strcmp(n, ".") || !strcmp(n, "..") ||
		    (keep_io && (!strcmp(n, "in") || !strcmp(n, "out"))))
			continue;
		char to[32];
		snprintf(to, sizeof to, "%llu", (unsigned long long)p->seq++);
		if (renameat(dfd, n, trash, to) < 0)
			rc = -errno;
		errno = 0;
	}
	if (!rc && errno)
		rc = -errno;
	closedir(d);
	return rc;
}

/* Open sub (in/ or out/) of dfd as a real directory, never a link. */
static int open_sub(int dfd, const char *sub)
{
	int fd = openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int scratchpool_give(struct scratchpool *p, const char *dir, mode_t out_mode)
{
	int rc = make_dirs(p);
	if (rc < 0)
		return rc;
	char *tpath = xasprintf("%s/.trash", p->base);
	int trash = open(tpath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	free(tpath);
	if (trash < 0)
		return -errno;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int in = -1, out = -1;
	rc = dfd < 0 ? -errno : 0;
	if (!rc && (in = open_sub(dfd, "in")) < 0)
		rc = in;
	if (!rc && (out = open_sub(dfd, "out")) < 0)
		rc = out;
	/* Modes first: a step may have taken its own write permission away. */
	if (!rc && (fchmod(dfd, 0700) < 0 || fchmod(in, 0755) < 0 ||
	            fchmod(out, out_mode) < 0))
		rc = -errno;
	if (!rc)
		rc = empty_into(p, in, trash, 0);
	if (!rc)
		rc = empty_into(p, out, trash, 0);
	if (!rc)
		rc = empty_into(p, dfd, trash, 1);
	char *to = NULL;
	if (!rc) {
		to = xasprintf("%s/.pool/%llu", p->base, (unsigned long long)p->seq++);
		if (rename(dir, to) < 0)
			rc = -errno;
	}
	if (!rc) {
		p->free = xrealloc(p->free, (p->nfree + 1) * sizeof *p->free);
		p->free[p->nfree++] = to;
		to = NULL;
	}
	free(to);
	if (out >= 0)
		close(out);
	if (in >= 0)
		close(in);
	if (dfd >= 0)
		close(dfd);
	close(trash);
	return rc;
}

int scratchpool_take(struct scratchpool *p, const char *dst)
{
	if (!p->nfree)
		return 0;
	char *from = p->free[--p->nfree];
	int rc = rename(from, dst) < 0 ? -errno : 0;
	free(from);
	return rc < 0 ? rc : 1;
}
