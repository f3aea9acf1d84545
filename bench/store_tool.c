/*
 * store_tool.c - the object store's halves as commands, for bench/run.sh
 * to time as whole processes against the tools they compete with:
 *   store_tool hash FILE           SHA-256 of FILE (vs openssl dgst -sha256)
 *   store_tool put STORE FILE      ingest FILE into STORE (vs cp + sha256sum)
 *   store_tool randread FILE N [SEED]
 *                                  N reads of 4 KiB at random 4 KiB-aligned
 *                                  offsets of FILE opened O_DIRECT (through a
 *                                  FUSE mount each read reaches the daemon);
 *                                  prints the mean and the 99th percentile in ms
 *   store_tool listdir DIR N       open and read DIR whole N times (what ls
 *                                  asks of the file system, without ls's
 *                                  sorting and printing); prints the entries
 *                                  and the best time in ms
 * Prints the hash for hash and put, so the bench checks they agree.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "flowyfs/cas.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int randread(const char *path, long n, unsigned seed)
{
	struct stat st;
	void *buf = NULL;
	double *lat = NULL, sum = 0;
	int fd, rc = 1;

	fd = open(path, O_RDONLY | O_DIRECT);
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < 4096 || n < 1) {
		fprintf(stderr, "store_tool: %s: %s\n", path, strerror(errno));
		goto out;
	}
	lat = calloc((size_t)n, sizeof *lat);
	if (!lat || posix_memalign(&buf, 4096, 4096) != 0)
		goto out;
	srand(seed);
	uint64_t pages = (uint64_t)st.st_size / 4096;
	for (long i = 0; i < n; i++) {
		uint64_t pg = ((uint64_t)rand() << 31 ^ (uint64_t)rand()) % pages;
		double t0 = now();
		if (pread(fd, buf, 4096, (off_t)(pg * 4096)) != 4096) {
			fprintf(stderr, "store_tool: read at %llu: %s\n",
			        (unsigned long long)pg * 4096, strerror(errno));
			goto out;
		}
		lat[i] = now() - t0;
		sum += lat[i];
	}
	qsort(lat, (size_t)n, sizeof *lat, cmp_double);
	printf("%.4f %.4f\n", sum / (double)n * 1000, lat[(size_t)((double)n * 0.99)] * 1000);
	rc = 0;
out:
	free(buf);
	free(lat);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int listdir(const char *path, long n)
{
	double best = -1;
	long entries = 0;
	for (long k = 0; k < n; k++) {
		double t0 = now();
		DIR *d = opendir(path);
		if (!d) {
			fprintf(stderr, "store_tool: %s: %s\n", path, strerror(errno));
			return 1;
		}
		entries = 0;
		errno = 0;
		while (readdir(d))
			entries++;
		int err = errno;
		if (closedir(d) < 0 && !err)
			err = errno;
		if (err) {
			fprintf(stderr, "store_tool: reading %s: %s\n", path, strerror(err));
			return 1;
		}
		double t = (now() - t0) * 1000;
		if (best < 0 || t < best)
			best = t;
	}
	printf("%ld %.1f\n", entries, best);
	return 0;
}

int main(int argc, char **argv)
{
	char hex[CAS_HEX_LEN + 1];
	cas *c = NULL;
	int rc;

	if (argc == 3 && !strcmp(argv[1], "hash")) {
		rc = cas_hash_file(hex, argv[2]);
	} else if (argc == 4 && !strcmp(argv[1], "put")) {
		rc = cas_open(&c, argv[2]);
		if (rc == 0)
			rc = cas_put_file(c, hex, argv[3]);
		cas_close(c);
	} else if ((argc == 4 || argc == 5) && !strcmp(argv[1], "randread")) {
		return randread(argv[2], atol(argv[3]), argc == 5 ? (unsigned)atoi(argv[4]) : 1);
	} else if (argc == 4 && !strcmp(argv[1], "listdir")) {
		return listdir(argv[2], atol(argv[3]));
	} else {
		fprintf(stderr, "usage: store_tool hash FILE | put STORE FILE | "
		        "randread FILE N [SEED] | listdir DIR N\n");
		return 2;
	}
	if (rc < 0) {
		fprintf(stderr, "store_tool: %s\n", strerror(-rc));
		return 1;
	}
	printf("%s\n", hex);
	return 0;
}
