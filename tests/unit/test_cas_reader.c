/*
 * test_cas_reader.c - unit tests for blob readers (src/store/cas_reader.c):
 * sequential reads in FUSE-sized pieces with frames decoded ahead by
 * helper threads (which close stops), several threads reading one reader
 * forward and at random at once, random 4 KiB reads, a damaged frame
 * failing only the reads that touch it (without hanging read-ahead),
 * objects in the layout older stores wrote (zstd level 3, other frame
 * sizes) reading the same, frame sizes following the content's ratio,
 * raw readers, random reads (two near each other included) shared by
 * readers through the store's cache of decoded frames, and frames filled
 * into that cache ahead of random reads that keep missing.
 * Everything happens under a mkdtemp directory in /tmp.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "proc_self.h"
#include "store_check.h"
#include "flowyfs/cas.h"
#include "flowyfs/lru.h"
#include "flowyfs/zseek.h"

#define FUSE_READ (960 * 1024)  /* what FUSE asks for at most */

static char base[64], store[128];

static void fill_text(unsigned char *b, size_t n)
{
	size_t off = 0;

	for (unsigned line = 0; off < n; line++) {
		char tmp[96];
		int k = snprintf(tmp, sizeof tmp, "%u;sensor-%03u;%u.%02u;%s\n", line,
		                 line * 7919u % 211, line % 1000, line % 100,
		                 line % 3 ? "ok" : "warn");
		for (int j = 0; j < k && off < n; j++)
			b[off++] = (unsigned char)tmp[j];
	}
}

/* Numbers, one a line, like seq: ~20:1, so big frames (CAS_FRAME). */
static void fill_numbers(unsigned char *b, size_t n)
{
	size_t off = 0;

	for (unsigned v = 1; off < n; v++) {
		char t[16];
		int m = snprintf(t, sizeof t, "%u\n", v);
		for (int j = 0; j < m && off < n; j++)
			b[off++] = (unsigned char)t[j];
	}
}

/* The thread count once it is back to want: a joined thread's entry in
 * /proc/self/task goes a moment after pthread_join returns. */
static int threads_settle(int want)
{
	int n = threads_now();

	for (int i = 0; i < 200 && n != want; i++) {
		usleep(5000);
		n = threads_now();
	}
	return n;
}

TEST(test_sequential_read_ahead)
{
	size_t len = 20 * CAS_FRAME + 12345;
	unsigned char *data = malloc(len);
	char hex[CAS_HEX_LEN + 1];
	struct cas_stat st;
	cas_reader *r = NULL;
	cas *c = NULL;
	int before = threads_now(), during = 0;

	fill_text(data, len);
	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(cas_put_buf(c, hex, data, len), 0);
	CHECK_INT(cas_stat(c, hex, &st), 0);
	CHECK(st.compressed);
	CHECK_INT(cas_reader_open(c, hex, &r), 0);
	CHECK_INT(cas_reader_size(r), len);
	for (uint64_t off = 0; off < len; off += FUSE_READ) {
		size_t n = len - off < FUSE_READ ? (size_t)(len - off) : FUSE_READ;
		CHECK(read_matches(r, data, off, n));
		int t = threads_now();
		if (t > during)
			during = t;
	}
	CHECK_INT(cas_reader_pread(r, data, 10, len), 0);  /* at the end */
	CHECK(during > before);  /* helpers decoded ahead */
	cas_reader_close(r);
	CHECK_INT(threads_settle(before), before);  /* and close joined them */
	/* closing while frames are being decoded ahead */
	CHECK_INT(cas_reader_open(c, hex, &r), 0);
	for (uint64_t off = 0; off < 4 * FUSE_READ; off += FUSE_READ)
		CHECK(read_matches(r, data, off, FUSE_READ));
	cas_reader_close(r);
	CHECK_INT(threads_settle(before), before);
	cas_close(c);
	free(data);
}

struct job {
	cas_reader *r;
	const unsigned char *data;
	size_t len;
	uint64_t start;
	unsigned seed;
	int random, ok;
};

static void *job_main(void *arg)
{
	struct job *j = arg;
	unsigned char *buf = malloc(FUSE_READ);
	unsigned s = j->seed;

	j->ok = buf != NULL;
	if (!j->random) {
		for (uint64_t off = j->start; off < j->len && j->ok; off += FUSE_READ) {
			size_t n = j->len - off < FUSE_READ ? (size_t)(j->len - off) : FUSE_READ;
			j->ok = cas_reader_pread(j->r, buf, n, off) == (ssize_t)n &&
			        memcmp(buf, j->data + off, n) == 0;
		}
	}
	for (int i = 0; j->random && i < 300 && j->ok; i++) {
		s = s * 1103515245u + 12345u;
		uint64_t off = (uint64_t)(s >> 2) % j->len;
		size_t n = (i % 3) ? 4096 : (s >> 7) % FUSE_READ;
		if (n > j->len - off)
			n = j->len - off;
		j->ok = cas_reader_pread(j->r, buf, n, off) == (ssize_t)n &&
		        memcmp(buf, j->data + off, n) == 0;
	}
	free(buf);
	return NULL;
}

TEST(test_threads_forward_and_random)
{
	size_t len = 24 * CAS_FRAME + 999;
	unsigned char *data = malloc(len);
	char hex[CAS_HEX_LEN + 1];
	struct job jobs[6];
	pthread_t th[6];
	cas_reader *r = NULL;
	cas *c = NULL;

	fill_text(data, len);
	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(cas_put_buf(c, hex, data, len), 0);
	for (int round = 0; round < 3; round++) {
		CHECK_INT(cas_reader_open(c, hex, &r), 0);
		for (int i = 0; i < 6; i++) {
			jobs[i] = (struct job){ r, data, len, (uint64_t)i * 3 * CAS_FRAME + 7,
			                        31u * (unsigned)(i + round), i >= 4, 0 };
			CHECK_INT(pthread_create(&th[i], NULL, job_main, &jobs[i]), 0);
		}
		for (int i = 0; i < 6; i++)
			pthread_join(th[i], NULL);
		for (int i = 0; i < 6; i++)
			CHECK(jobs[i].ok);
		cas_reader_close(r);
	}
	cas_close(c);
	free(data);
}

TEST(test_random_small_reads)
{
	size_t len = 6 * CAS_FRAME + 3;
	unsigned char *data = malloc(len);
	char hex[CAS_HEX_LEN + 1];
	cas_reader *r = NULL;
	cas *c = NULL;
	unsigned s = 99;

	fill_text(data, len);
	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(cas_put_buf(c, hex, data, len), 0);
	CHECK_INT(cas_reader_open(c, hex, &r), 0);
	for (int i = 0; i < 200; i++) {
		s = s * 1103515245u + 12345u;
		uint64_t off = (uint64_t)(s >> 2) % len;
		size_t n = len - off < 4096 ? (size_t)(len - off) : 4096;
		CHECK(read_matches(r, data, off, n));
	}
	/* the first and last bytes of every frame, and across each boundary */
	for (uint64_t f = 1; f < 7; f++) {
		uint64_t b = f * CAS_FRAME;
		if (b > len)
			b = len;
		CHECK(read_matches(r, data, b - 1, 1));
		CHECK(read_matches(r, data, b - CAS_FRAME, 1));
		if (b < len)
			CHECK(read_matches(r, data, b - 2048, 4096 < len - b + 2048 ? 4096 : len - b + 2048));
	}
	cas_reader_close(r);
	cas_close(c);
	free(data);
}

/* The object file of hex with suffix. */
static void obj_path(char *out, size_t n, const char *hex, const char *suffix)
{
	snprintf(out, n, "%s/%.2s/%s%s", store, hex, hex + 2, suffix);
}

TEST(test_damaged_frame)
{
	size_t len = 10 * CAS_FRAME;
	unsigned char *data = malloc(len), *buf = malloc(len);
	char hex[CAS_HEX_LEN + 1], p[512];
	cas_reader *r = NULL;
	struct zseek sk;
	struct stat st;
	cas *c = NULL;
	uint32_t bad;
	int fd;

	fill_text(data, len);
	data[0] = 'D';  /* content of its own, not shared with other tests */
	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(cas_put_buf(c, hex, data, len), 0);
	obj_path(p, sizeof p, hex, ".zst");
	CHECK_INT(chmod(p, 0644), 0);
	fd = open(p, O_RDWR);
	CHECK(fd >= 0);
	CHECK_INT(fstat(fd, &st), 0);
	CHECK_INT(zseek_load(&sk, fd, (uint64_t)st.st_size), 0);
	CHECK(sk.n >= 8);
	/* garble the middle of a frame in the middle */
	bad = sk.n / 2;
	uint64_t b0 = sk.doff[bad], b1 = sk.doff[bad + 1], step = (b1 - b0) / 2;
	off_t at = (off_t)((sk.coff[bad] + sk.coff[bad + 1]) / 2);
	unsigned char junk[64];
	memset(junk, 0x5a, sizeof junk);
	CHECK_INT(pwrite(fd, junk, sizeof junk, at), (ssize_t)sizeof junk);
	close(fd);
	zseek_free(&sk);
	CHECK_INT(cas_reader_open(c, hex, &r), 0);
	/* forward reads: fine up to the bad frame, which fails (read-ahead
	 * must not hang on it), then fine again after it */
	for (uint64_t off = 0; off + step <= b0; off += step)
		CHECK(read_matches(r, data, off, (size_t)step));
	CHECK_INT(cas_reader_pread(r, buf, 4096, b0 + 10), -EIO);
	CHECK_INT(cas_reader_pread(r, buf, 4096, b0 + 10), -EIO);  /* again */
	CHECK(read_matches(r, data, b1, (size_t)(len - b1)));
	/* a read running into it returns what came before */
	CHECK_INT(cas_reader_pread(r, buf, (size_t)(b1 - b0) + 1000, b0 - 1000), 1000);
	CHECK(memcmp(buf, data + b0 - 1000, 1000) == 0);
	cas_reader_close(r);
	cas_close(c);
	free(buf);
	free(data);
}

/* Plant data as a .zst object the way older stores wrote it: zstd level 3
 * frames of frame bytes, then the seek table. */
static int plant_old(const unsigned char *data, size_t len, size_t frame,
                     char hex[CAS_HEX_LEN + 1])
{
	char p[512];
	struct zseek sk = { 0 };
	unsigned char *z = malloc(ZSTD_compressBound(frame));
	int fd, rc = 0;

	cas_hash_buf(hex, data, len);
	snprintf(p, sizeof p, "%s/%.2s", store, hex);
	mkdir(p, 0755);
	obj_path(p, sizeof p, hex, ".zst");
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0444);
	if (fd < 0 || !z) {
		free(z);
		return -errno;
	}
	for (size_t off = 0; off < len && rc == 0; off += frame) {
		size_t n = len - off < frame ? len - off : frame;
		size_t zl = ZSTD_compress(z, ZSTD_compressBound(frame), data + off, n, 3);
		if (ZSTD_isError(zl))
			rc = -EIO;
		if (rc == 0)
			rc = zseek_add(&sk, zl, n);
		if (rc == 0)
			rc = cas_write_all(fd, z, zl);
	}
	if (rc == 0)
		rc = zseek_write(&sk, fd);
	close(fd);
	zseek_free(&sk);
	free(z);
	return rc;
}

TEST(test_old_objects_read)
{
	size_t len = 5 * CAS_FRAME + 4321;
	unsigned char *data = malloc(len);
	const size_t frames[] = { CAS_FRAME, 256 * 1024, 3 * CAS_FRAME };
	char hex[CAS_HEX_LEN + 1], again[CAS_HEX_LEN + 1];
	struct cas_stat st;
	cas_reader *r = NULL;
	cas *c = NULL;

	CHECK_INT(cas_open(&c, store), 0);
	for (size_t k = 0; k < sizeof frames / sizeof *frames; k++) {
		fill_text(data, len);
		data[1] = (unsigned char)('a' + k);  /* a name of its own */
		CHECK_INT(plant_old(data, len, frames[k], hex), 0);
		CHECK_INT(cas_stat(c, hex, &st), 0);
		CHECK(st.compressed);
		CHECK_INT(st.size, len);
		CHECK_INT(cas_reader_open(c, hex, &r), 0);
		for (uint64_t off = 0; off < len; off += FUSE_READ)
			CHECK(read_matches(r, data, off, len - off < FUSE_READ ?
			                   (size_t)(len - off) : FUSE_READ));
		CHECK(read_matches(r, data, frames[k] - 5, 10));
		CHECK(read_matches(r, data, len - 4096, 4096));
		cas_reader_close(r);
		/* storing the same content again keeps the old object */
		CHECK_INT(cas_put_buf(c, again, data, len), 0);
		CHECK_STR(again, hex);
	}
	cas_close(c);
	free(data);
}

/* Frames: big for content that compresses 8:1 or better, small for the
 * rest that compresses at all. */
TEST(test_frame_sizes_follow_ratio)
{
	size_t len = 3 * CAS_FRAME + 100;
	unsigned char *data = malloc(len);
	char hex[CAS_HEX_LEN + 1], p[512];
	struct zseek sk;
	struct stat st;
	cas *c = NULL;
	uint64_t x = 12345;
	int fd;

	CHECK_INT(cas_open(&c, store), 0);
	for (int k = 0; k < 2; k++) {
		if (k == 0) {
			fill_numbers(data, len);
		} else {
			for (size_t i = 0; i < len; i++) {  /* 4 random bits a byte: ~2:1 */
				x = x * 6364136223846793005ull + 1442695040888963407ull;
				data[i] = (unsigned char)('a' + (x >> 60));
			}
		}
		CHECK_INT(cas_put_buf(c, hex, data, len), 0);
		obj_path(p, sizeof p, hex, ".zst");
		fd = open(p, O_RDONLY);
		CHECK(fd >= 0);
		CHECK_INT(fstat(fd, &st), 0);
		CHECK_INT(zseek_load(&sk, fd, (uint64_t)st.st_size), 0);
		close(fd);
		size_t want = k == 0 ? CAS_FRAME : CAS_FRAME_SMALL;
		CHECK_INT(sk.max_d, want);
		CHECK_INT(sk.n, (len + want - 1) / want);
		CHECK_INT(zseek_size(&sk), len);
		zseek_free(&sk);
	}
	cas_close(c);
	free(data);
}

TEST(test_raw_reader)
{
	size_t len = 40u << 20;
	unsigned char *data = malloc(len);
	char hex[CAS_HEX_LEN + 1];
	cas_reader *r = NULL;
	cas *c = NULL;
	uint64_t x = 88172645463325252ull;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		data[i] = (unsigned char)x;
	}
	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(cas_put_buf(c, hex, data, len), 0);
	CHECK_INT(cas_reader_open(c, hex, &r), 0);
	CHECK(cas_reader_fd(r) >= 0);
	for (uint64_t off = 0; off < len; off += FUSE_READ) {
		size_t n = len - off < FUSE_READ ? (size_t)(len - off) : FUSE_READ;
		CHECK(read_matches(r, data, off, n));
	}
	CHECK(read_matches(r, data, 12345, 4096));
	CHECK_INT(cas_reader_pread(r, data, 4096, len + 10), 0);  /* past the end */
	unsigned char b[8];
	CHECK_INT(pread(cas_reader_fd(r), b, 8, 4096), 8);  /* the fd is the content */
	cas_reader_close(r);
	cas_close(c);
	free(data);
}

/* Random reads go through the store's shared cache of decoded frames:
 * a second reader of the object, or a later random read of the first,
 * copies what an earlier one decoded. */
TEST(test_shared_frames)
{
	size_t len = 12 * CAS_FRAME;
	unsigned char *data = malloc(len);
	uint64_t x1 = 9 * CAS_FRAME + 100, x2 = 100, x4 = x1 + 100 * 1024;
	char hex[CAS_HEX_LEN + 1];
	struct lru_stats a, b;
	cas_reader *r1 = NULL, *r2 = NULL, *r3 = NULL;
	cas *c = NULL;

	fill_text(data, len);
	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(cas_put_buf(c, hex, data, len), 0);
	struct lru *shared = cas_frame_cache(c);
	CHECK_INT(cas_reader_open(c, hex, &r1), 0);
	lru_stats(shared, &a);
	CHECK(read_matches(r1, data, x1, 4096));  /* miss: decoded, kept */
	CHECK(read_matches(r1, data, x2, 4096));  /* far away: another miss */
	CHECK(read_matches(r1, data, x1 + 8, 4096));  /* far from x2: a hit */
	lru_stats(shared, &b);
	CHECK_INT(b.misses - a.misses, 2);
	CHECK_INT(b.hits - a.hits, 1);
	CHECK_INT(b.count - a.count, 2);
	CHECK_INT(cas_reader_open(c, hex, &r2), 0);
	CHECK(read_matches(r2, data, x1, 4096));  /* another open: a hit */
	lru_stats(shared, &a);
	CHECK_INT(a.hits - b.hits, 1);
	CHECK_INT(a.misses, b.misses);
	CHECK_INT(cas_reader_open(c, hex, &r3), 0);
	CHECK(read_matches(r3, data, x4, 4096));  /* elsewhere in x1's frame */
	CHECK(read_matches(r2, data, x2 + 4096, 4096));
	lru_stats(shared, &b);
	CHECK_INT(b.count, a.count);  /* both were hits */
	CHECK_INT(b.hits - a.hits, 2);
	/* Two reads in a row near each other are still random reads: the
	 * second of r2's comes 8 KiB after the first, in a frame the cache
	 * holds (a hit, not a decode into r2's own slot), and r3's second
	 * read is the next frame, which nobody read (decoded for the cache). */
	CHECK(read_matches(r2, data, x2 + 3 * 4096, 4096));
	CHECK(read_matches(r3, data, x4 + CAS_FRAME, 4096));
	lru_stats(shared, &a);
	CHECK_INT(a.hits - b.hits, 1);
	CHECK_INT(a.misses - b.misses, 1);
	CHECK_INT(a.count - b.count, 1);
	cas_reader_close(r3);
	cas_reader_close(r2);
	cas_reader_close(r1);
	cas_close(c);
	free(data);
}

/* Random reads that keep missing have a helper decode frames nobody asked
 * for yet into the shared cache: after four misses (frames 11, 2, 8, 5,
 * each far from the one before), frame 0 comes into the cache by itself,
 * and a read of it is a hit. */
TEST(test_random_misses_fill_in)
{
	size_t len = 12 * CAS_FRAME;
	unsigned char *data = malloc(len);
	static const unsigned frames[] = {11, 2, 8, 5};
	char hex[CAS_HEX_LEN + 1];
	struct lru_stats a, b;
	cas_reader *r = NULL;
	cas *c = NULL;

	fill_numbers(data, len);
	data[0] = 'F';  /* content of its own */
	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(cas_put_buf(c, hex, data, len), 0);
	struct lru *shared = cas_frame_cache(c);
	CHECK_INT(cas_reader_open(c, hex, &r), 0);
	for (size_t k = 0; k < sizeof frames / sizeof *frames; k++)
		CHECK(read_matches(r, data, (uint64_t)frames[k] * CAS_FRAME + 100, 4096));
	lru_stats(shared, &a);
	for (int t = 0; t < 400 && a.count < 5; t++) {
		usleep(5000);
		lru_stats(shared, &a);
	}
	CHECK_INT(a.count, 5);  /* the four read, and one filled in */
	CHECK_INT(a.misses, 4);
	CHECK(read_matches(r, data, 300, 4096));  /* frame 0 */
	lru_stats(shared, &b);
	CHECK_INT(b.hits - a.hits, 1);
	CHECK_INT(b.misses, a.misses);
	cas_reader_close(r);
	cas_close(c);
	free(data);
}

int main(void)
{
	if (scratch_make(base, sizeof base, store, sizeof store, "reader") < 0)
		return 1;
	RUN(test_sequential_read_ahead);
	RUN(test_threads_forward_and_random);
	RUN(test_random_small_reads);
	RUN(test_damaged_frame);
	RUN(test_old_objects_read);
	RUN(test_frame_sizes_follow_ratio);
	RUN(test_raw_reader);
	RUN(test_shared_frames);
	RUN(test_random_misses_fill_in);
	scratch_remove(base);
	return CHECK_DONE();
}
