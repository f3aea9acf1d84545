/*
 * store_check.h - what the store's unit tests share: a scratch directory
 * under /tmp (made, and removed at the end), counting a directory's
 * entries, and reading a range through
 * a blob reader to compare it with the content it should be.
 */
#ifndef FLOWYFS_STORE_CHECK_H
#define FLOWYFS_STORE_CHECK_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/cas.h"

/* Make the scratch directory base ("/tmp/flowy-<name>.XXXXXX") and name
 * the store below it (store may be NULL); 0, or -1 after saying why. */
static inline int scratch_make(char *base, size_t nbase, char *store,
                               size_t nstore, const char *name)
{
	snprintf(base, nbase, "/tmp/flowy-%s.XXXXXX", name);
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return -1;
	}
	if (store)
		snprintf(store, nstore, "%s/store", base);
	return 0;
}

/* Remove the scratch directory (rm -rf), saying so when it cannot. */
static inline void scratch_remove(const char *base)
{
	char cmd[256];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", base);
}

/* Entries in a directory, not counting . and .. (-1 when unreadable). */
static inline int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Read [off, off+len) through r and compare with want + off; says what
 * came back on a mismatch. */
static inline int read_matches(cas_reader *r, const unsigned char *want,
                               uint64_t off, size_t len)
{
	unsigned char *got = malloc(len ? len : 1);
	ssize_t n = got ? cas_reader_pread(r, got, len, off) : -1;
	int ok = n == (ssize_t)len && memcmp(got, want + off, len) == 0;

	if (!ok)
		fprintf(stderr, "  read at %llu+%zu: got %zd\n", (unsigned long long)off,
		        len, n);
	free(got);
	return ok;
}

#endif
