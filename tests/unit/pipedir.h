/*
 * pipedir.h - unit-test helpers for the definition layer: pipeline
 * directories written under one mkdtemp() directory from (name, content)
 * pairs, loaded with step_load(), their errors joined for exact
 * comparison (file:line:col included: .status shows them verbatim).
 * Header-only (static functions): each test program includes it once.
 */
#ifndef FLOWYFS_TEST_PIPEDIR_H
#define FLOWYFS_TEST_PIPEDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowyfs/step.h"

static char root[64];
static int seq;

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

/* A fresh pipeline directory from (name, content) pairs ending in NULL;
 * a NULL content makes a directory. Returns a static path. */
static const char *mkpipe(const char *const *files)
{
	static char dir[256];
	char path[512];
	size_t i;

	snprintf(dir, sizeof dir, "%s/p%d", root, ++seq);
	if (mkdir(dir, 0755) < 0) {
		perror(dir);
		exit(2);
	}
	for (i = 0; files[i]; i += 2) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		if (!files[i + 1])
			mkdir(path, 0755);
		else
			write_file(path, files[i + 1]);
	}
	return dir;
}

/* The errors of p joined by newlines ("" when none). */
static char *errors(const struct pipeline_def *p)
{
	static char buf[8192];
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < p->n_errors; i++) {
		if (i)
			strncat(buf, "\n", sizeof buf - strlen(buf) - 1);
		strncat(buf, p->errors[i], sizeof buf - strlen(buf) - 1);
	}
	return buf;
}

/* Load the pipeline made of files, expecting step_load() to return 0. */
static struct pipeline_def *load(const char *name, const char *const *files)
{
	struct pipeline_def *p = NULL;

	if (step_load(&p, name, mkpipe(files)) != 0 || !p) {
		fprintf(stderr, "step_load failed\n");
		exit(2);
	}
	return p;
}

/* Load files and check that the errors are exactly want. */
#define CHECK_ERRORS(files, want) do { \
	struct pipeline_def *_p = load("p", files); \
	char *_e = errors(_p); \
	int _ok = !strcmp(_e, want) && !_p->order; \
	if (!_ok) fprintf(stderr, "  got:\n%s\n  want:\n%s\n", _e, want); \
	step_free(_p); \
	CHECK(_ok); \
} while (0)

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Make the temporary root, /tmp/flowyfs-test-<what>-XXXXXX. */
static void pipedir_init(const char *what)
{
	snprintf(root, sizeof root, "/tmp/flowyfs-test-%s-XXXXXX", what);
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		exit(2);
	}
}

/* Remove the temporary root and everything in it. */
static void pipedir_cleanup(void)
{
	if (nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		perror(root);
}

#endif
