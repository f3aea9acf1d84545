/*
 * test_ingest.c - unit tests for the put pipeline (src/store/ingest.c):
 * sources in chunks from memory and from files with holes, contents of
 * every size around the chunk and batch boundaries (raw and compressed)
 * named and stored exactly, small contents (one block) stored raw however
 * compressible, a file that grew past the size it was put with, and a put
 * stopped by its flag leaving nothing behind. Everything happens under a mkdtemp directory in /tmp.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "store_check.h"
#include "flowyfs/cas.h"
#include "flowyfs/ingest.h"

static char base[64], store[128];

static void fill(unsigned char *b, size_t n, int noise, uint64_t seed)
{
	uint64_t x = seed | 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = noise ? (unsigned char)x : (unsigned char)("0123456789\n"[x % 11]);
	}
}

TEST(test_src_memory_chunks)
{
	unsigned char data[1000];
	const unsigned char *p;
	struct ingest_src s = { .fd = -1, .mem = data, .len = sizeof data, .chunk = 300 };
	int hole;

	fill(data, sizeof data, 1, 3);
	CHECK_INT(ingest_src_next(&s, NULL, &p, &hole), 300);
	CHECK(p == data && !hole);
	CHECK_INT(ingest_src_next(&s, NULL, &p, &hole), 300);
	CHECK_INT(ingest_src_next(&s, NULL, &p, &hole), 300);
	CHECK_INT(ingest_src_next(&s, NULL, &p, &hole), 100);
	CHECK(p == data + 900);
	CHECK_INT(ingest_src_next(&s, NULL, &p, &hole), 0);
}

TEST(test_src_sparse_file)
{
	char path[256];
	unsigned char buf[65536], want[100];
	const unsigned char *p;
	struct stat st;
	int fd, hole;

	snprintf(path, sizeof path, "%s/sparse", base);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	fill(want, sizeof want, 1, 5);
	CHECK_INT(ftruncate(fd, 16 << 20), 0);  /* 16 MiB of hole, then data */
	CHECK_INT(pwrite(fd, want, sizeof want, 16 << 20), (ssize_t)sizeof want);
	CHECK_INT(fstat(fd, &st), 0);
	struct ingest_src s = { .fd = fd, .sparse = 1, .size = (uint64_t)st.st_size,
	                        .chunk = sizeof buf };
	uint64_t seen = 0, holes = 0;
	ssize_t n;
	while ((n = ingest_src_next(&s, buf, &p, &hole)) > 0) {
		CHECK(p == buf);
		if (hole) {
			holes += (uint64_t)n;
			for (ssize_t i = 0; i < n; i += 4093)
				CHECK_INT(buf[i], 0);
		} else if (seen >= (16u << 20)) {
			CHECK(memcmp(buf, want, (size_t)n) == 0);
		}
		seen += (uint64_t)n;
	}
	CHECK_INT(n, 0);
	CHECK_INT(seen, (uint64_t)st.st_size);
	CHECK(holes >= (8u << 20));  /* most of the hole is not read */
	close(fd);
}

TEST(test_sizes_around_boundaries)
{
	const size_t sizes[] = { 0, 1, 4095, 4096, 4097, CAS_FRAME_SMALL - 1, CAS_FRAME_SMALL + 1,
	                         CAS_FRAME - 1, CAS_FRAME, CAS_FRAME + 1,
	                         4 * CAS_FRAME, 4 * CAS_FRAME + 1, 9 * CAS_FRAME - 7 };
	size_t max = 9 * CAS_FRAME;
	unsigned char *data = malloc(max);
	char hex[CAS_HEX_LEN + 1], want[CAS_HEX_LEN + 1];
	struct cas_stat st;
	cas_reader *r = NULL;
	cas *c = NULL;

	CHECK_INT(cas_open(&c, store), 0);
	for (int noise = 0; noise < 2; noise++) {
		for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
			size_t len = sizes[k];
			uint64_t size = 0;
			fill(data, len, noise, 7 + k);
			struct ingest_src s = { .fd = -1, .mem = data, .len = len };
			CHECK_INT(ingest_put(c, hex, &s, CAS_BLOB, &size), 0);
			cas_hash_buf(want, data, len);
			CHECK_STR(hex, want);
			CHECK_INT(size, len);
			CHECK_INT(cas_stat(c, hex, &st), 0);
			CHECK_INT(st.size, len);
			CHECK_INT(st.compressed, len > 4096 && !noise);  /* a block or less: raw */
			CHECK_INT(cas_reader_open(c, hex, &r), 0);
			CHECK(read_matches(r, data, 0, len));
			cas_reader_close(r);
			r = NULL;
		}
	}
	cas_close(c);
	free(data);
}

/* A file source put with the size it had when opened: small ones read
 * whole; one that grew past a block since goes through the pipeline. */
TEST(test_file_sources_small_and_grown)
{
	char path[256], hex[CAS_HEX_LEN + 1], want[CAS_HEX_LEN + 1];
	size_t big = 3 * CAS_FRAME_SMALL;
	unsigned char *data = malloc(big);
	struct cas_stat st;
	cas *c = NULL;
	uint64_t size = 0;

	CHECK_INT(cas_open(&c, store), 0);
	snprintf(path, sizeof path, "%s/src-file", base);
	fill(data, big, 0, 11);
	for (int grown = 0; grown < 2; grown++) {
		size_t len = grown ? big : 100;
		int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		CHECK(fd >= 0);
		CHECK_INT(cas_write_all(fd, data, len), 0);
		struct ingest_src s = { .fd = fd, .size = 100 };
		CHECK_INT(ingest_put(c, hex, &s, CAS_BLOB, &size), 0);
		close(fd);
		cas_hash_buf(want, data, len);
		CHECK_STR(hex, want);
		CHECK_INT(size, len);
		CHECK_INT(cas_stat(c, hex, &st), 0);
		CHECK_INT(st.size, len);
		CHECK_INT(st.compressed, grown);
		/* put again: found, the same name */
		fd = open(path, O_RDONLY);
		struct ingest_src again = { .fd = fd, .size = len };
		CHECK_INT(ingest_put(c, hex, &again, CAS_BLOB, &size), 0);
		close(fd);
		CHECK_STR(hex, want);
	}
	cas_close(c);
	free(data);
}

TEST(test_stopped_put_leaves_nothing)
{
	size_t len = 12 * CAS_FRAME;
	unsigned char *data = malloc(len);
	char hex[CAS_HEX_LEN + 1], want[CAS_HEX_LEN + 1], tmp[256];
	struct cas_stat st;
	int stop = 1;
	cas *c = NULL;

	fill(data, len, 0, 99);
	cas_hash_buf(want, data, len);
	CHECK_INT(cas_open(&c, store), 0);
	struct ingest_src s = { .fd = -1, .mem = data, .len = len, .stop = &stop };
	CHECK_INT(ingest_put(c, hex, &s, CAS_BLOB, NULL), -ECANCELED);
	CHECK_INT(cas_stat(c, want, &st), -ENOENT);
	snprintf(tmp, sizeof tmp, "%s/tmp", store);
	CHECK_INT(count_entries(tmp), 0);
	cas_close(c);
	free(data);
}

int main(void)
{
	if (scratch_make(base, sizeof base, store, sizeof store, "ingest") < 0)
		return 1;
	RUN(test_src_memory_chunks);
	RUN(test_src_sparse_file);
	RUN(test_sizes_around_boundaries);
	RUN(test_file_sources_small_and_grown);
	RUN(test_stopped_put_leaves_nothing);
	scratch_remove(base);
	return CHECK_DONE();
}
