/*
 * store_check.h - a check the store's unit tests share: reading a range
 * through a blob reader and comparing it with the content it should be.
 */
#ifndef FLOWYFS_STORE_CHECK_H
#define FLOWYFS_STORE_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/cas.h"

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
