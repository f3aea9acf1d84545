/*
 * test_zseek.c - unit tests for the zstd seekable format (src/store/zseek.c):
 * a written object round-trips frame by frame and by prefixes, the `zstd`
 * command decodes it as a whole, offsets find their frames at and around
 * every boundary, frames of other sizes and tables with per-frame
 * checksums (contrib/seekable_format's other layout) read, and damaged
 * tables are refused. Files live under a mkdtemp directory in /tmp.
 */
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
#include "flowyfs/zseek.h"

static char base[64];

static void fill_text(unsigned char *b, size_t n, unsigned salt)
{
	size_t off = 0;

	for (unsigned line = 0; off < n; line++) {
		char tmp[96];
		int k = snprintf(tmp, sizeof tmp, "%u,row %u,%u.%03u\n", line,
		                 line * 7919u % 1000 + salt, line % 97, line % 1000);
		for (int j = 0; j < k && off < n; j++)
			b[off++] = (unsigned char)tmp[j];
	}
}

/* Write data as a seekable object at path with frames of the given sizes
 * (the last one takes the rest); fills sk. 0 or -errno. */
static int write_object(const char *path, const unsigned char *data, size_t len,
                        const size_t *sizes, size_t nsizes, struct zseek *sk)
{
	ZSTD_CCtx *z = NULL;
	unsigned char *out = NULL;
	size_t off = 0, k = 0;
	int fd, rc = 0;

	memset(sk, 0, sizeof *sk);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -errno;
	rc = zseek_cctx(&z);
	while (rc == 0 && off < len) {
		size_t n = k < nsizes ? sizes[k++] : len - off;
		if (n > len - off)
			n = len - off;
		size_t cap = zseek_bound(n);
		free(out);
		out = malloc(cap);
		ssize_t zl = out ? zseek_compress(z, out, cap, data + off, n) : -ENOMEM;
		if (zl < 0) {
			rc = (int)zl;
			break;
		}
		rc = zseek_add(sk, (size_t)zl, n);
		if (rc == 0)
			rc = cas_write_all(fd, out, (size_t)zl);
		off += n;
	}
	if (rc == 0)
		rc = zseek_write(sk, fd);
	free(out);
	ZSTD_freeCCtx(z);
	close(fd);
	return rc;
}

static int load(const char *path, struct zseek *sk, int *fd_out)
{
	struct stat st;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -errno;
	}
	int rc = zseek_load(sk, fd, (uint64_t)st.st_size);
	if (rc < 0)
		close(fd);
	else
		*fd_out = fd;
	return rc;
}

TEST(test_roundtrip_frames_and_prefixes)
{
	size_t len = 3 * 100000 + 4321;
	const size_t sizes[] = { 100000, 100000, 100000 };
	unsigned char *data = malloc(len), *buf = malloc(len), *cbuf = NULL;
	struct zseek w, r = { 0 };
	ZSTD_DCtx *d = ZSTD_createDCtx();
	char path[128];
	int fd = -1;

	fill_text(data, len, 0);
	snprintf(path, sizeof path, "%s/rt.zst", base);
	CHECK_INT(write_object(path, data, len, sizes, 3, &w), 0);
	CHECK_INT(w.n, 4);
	CHECK_INT(load(path, &r, &fd), 0);
	CHECK_INT(r.n, 4);
	CHECK_INT(zseek_size(&r), len);
	CHECK_INT(r.max_d, 100000);
	for (uint32_t i = 0; i <= r.n; i++) {
		CHECK_INT(r.coff[i], w.coff[i]);
		CHECK_INT(r.doff[i], w.doff[i]);
	}
	cbuf = malloc(r.max_c);
	for (uint32_t i = 0; i < r.n; i++) {
		size_t dl = (size_t)(r.doff[i + 1] - r.doff[i]);
		CHECK_INT(zseek_decode(&r, fd, i, d, cbuf, buf, dl), 0);
		CHECK(memcmp(buf, data + r.doff[i], dl) == 0);
		/* prefixes: a byte, a block's worth, all but one byte */
		const size_t pre[] = { 1, 4096, 131072 + 5, dl - 1 };
		for (size_t k = 0; k < sizeof pre / sizeof *pre; k++) {
			if (pre[k] > dl)
				continue;
			memset(buf, 0xee, dl);
			CHECK_INT(zseek_decode(&r, fd, i, d, cbuf, buf, pre[k]), 0);
			CHECK(memcmp(buf, data + r.doff[i], pre[k]) == 0);
			if (pre[k] < dl)
				CHECK_INT(buf[pre[k]], 0xee);  /* nothing past the prefix */
		}
		CHECK_INT(zseek_decode(&r, fd, i, d, cbuf, buf, dl + 1), -EINVAL);
	}
	zseek_free(&r);
	zseek_free(&r);  /* a zeroed table frees to nothing */
	zseek_free(&w);
	close(fd);
	ZSTD_freeDCtx(d);
	free(cbuf);
	free(buf);
	free(data);
}

TEST(test_zstd_command_decodes)
{
	size_t len = 2 * CAS_FRAME + 777;
	const size_t sizes[] = { CAS_FRAME, CAS_FRAME };
	unsigned char *data = malloc(len);
	char path[128], src[128], cmd[512];
	struct zseek w;
	FILE *f;

	fill_text(data, len, 3);
	snprintf(path, sizeof path, "%s/cli.zst", base);
	snprintf(src, sizeof src, "%s/cli.src", base);
	CHECK_INT(write_object(path, data, len, sizes, 2, &w), 0);
	f = fopen(src, "wb");
	CHECK(f != NULL);
	CHECK_INT(fwrite(data, 1, len, f), len);
	CHECK_INT(fclose(f), 0);
	/* zstd checks every frame's checksum and skips the seek table frame */
	snprintf(cmd, sizeof cmd, "zstd -d -q -c %s | cmp -s - %s", path, src);
	CHECK_INT(system(cmd), 0);
	snprintf(cmd, sizeof cmd, "zstd -t -q %s", path);
	CHECK_INT(system(cmd), 0);
	zseek_free(&w);
	free(data);
}

TEST(test_find_at_boundaries)
{
	size_t len = 50000;
	const size_t sizes[] = { 1, 9999, 20000, 1 };  /* tiny frames too */
	unsigned char *data = malloc(len);
	struct zseek w, r;
	char path[128];
	int fd = -1;

	fill_text(data, len, 5);
	snprintf(path, sizeof path, "%s/find.zst", base);
	CHECK_INT(write_object(path, data, len, sizes, 4, &w), 0);
	CHECK_INT(load(path, &r, &fd), 0);
	CHECK_INT(r.n, 5);
	for (uint32_t i = 0; i < r.n; i++) {
		CHECK_INT(zseek_find(&r, r.doff[i]), i);
		CHECK_INT(zseek_find(&r, r.doff[i + 1] - 1), i);
		if (i > 0)
			CHECK_INT(zseek_find(&r, r.doff[i] - 1), i - 1);
	}
	CHECK_INT(zseek_find(&r, len - 1), r.n - 1);
	zseek_free(&r);
	zseek_free(&w);
	close(fd);
	free(data);
}

/* A table in contrib/seekable_format's checksum layout (descriptor bit 7,
 * 12-byte entries), written by hand around frames from ZSTD_compress. */
TEST(test_checksum_layout_reads)
{
	unsigned char data[3000], frame[2][2048], tab[8 + 2 * 12 + 9], out[1500];
	size_t zl[2];
	struct zseek r;
	ZSTD_DCtx *d = ZSTD_createDCtx();
	unsigned char cbuf[2048];
	char path[128];
	int fd = -1;
	FILE *f;

	fill_text(data, sizeof data, 9);
	for (int i = 0; i < 2; i++) {
		zl[i] = ZSTD_compress(frame[i], sizeof frame[i], data + i * 1500, 1500, 3);
		CHECK(!ZSTD_isError(zl[i]));
	}
	unsigned char *p = tab;
	uint32_t v[] = { 0x184D2A5Eu, (uint32_t)(sizeof tab - 8) };
	for (int k = 0; k < 2; k++, p += 4)
		for (int b = 0; b < 4; b++)
			p[b] = (unsigned char)(v[k] >> (8 * b));
	for (int i = 0; i < 2; i++) {
		uint32_t e[] = { (uint32_t)zl[i], 1500, 0xdeadbeef };
		for (int k = 0; k < 3; k++, p += 4)
			for (int b = 0; b < 4; b++)
				p[b] = (unsigned char)(e[k] >> (8 * b));
	}
	p[0] = 2; p[1] = p[2] = p[3] = 0;
	p[4] = 0x80;
	p[5] = 0xB1; p[6] = 0xEA; p[7] = 0x92; p[8] = 0x8F;
	snprintf(path, sizeof path, "%s/ck.zst", base);
	f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK_INT(fwrite(frame[0], 1, zl[0], f), zl[0]);
	CHECK_INT(fwrite(frame[1], 1, zl[1], f), zl[1]);
	CHECK_INT(fwrite(tab, 1, sizeof tab, f), sizeof tab);
	CHECK_INT(fclose(f), 0);
	CHECK_INT(load(path, &r, &fd), 0);
	CHECK_INT(r.n, 2);
	CHECK_INT(zseek_size(&r), 3000);
	CHECK_INT(zseek_decode(&r, fd, 1, d, cbuf, out, 1500), 0);
	CHECK(memcmp(out, data + 1500, 1500) == 0);
	zseek_free(&r);
	close(fd);
	ZSTD_freeDCtx(d);
}

TEST(test_damaged_tables_refused)
{
	size_t len = 30000;
	const size_t sizes[] = { 10000, 10000 };
	unsigned char *data = malloc(len), *file = NULL;
	char path[128], bad[128];
	struct zseek w, r;
	struct stat st;
	int fd = -1;
	FILE *f;

	fill_text(data, len, 11);
	snprintf(path, sizeof path, "%s/dmg.zst", base);
	snprintf(bad, sizeof bad, "%s/bad.zst", base);
	CHECK_INT(write_object(path, data, len, sizes, 2, &w), 0);
	CHECK_INT(stat(path, &st), 0);
	file = malloc((size_t)st.st_size);
	f = fopen(path, "rb");
	CHECK(f && fread(file, 1, (size_t)st.st_size, f) == (size_t)st.st_size);
	fclose(f);
	/* flip: the footer magic, the frame count, a frame size, the skip magic;
	 * then cut the file short */
	const long at[] = { st.st_size - 1, st.st_size - 9, st.st_size - 9 - 8 * 3 + 1,
	                    st.st_size - 9 - 8 * 3 - 8 };
	for (size_t k = 0; k <= sizeof at / sizeof *at; k++) {
		size_t n = (size_t)st.st_size;
		f = fopen(bad, "wb");
		CHECK(f != NULL);
		if (k < sizeof at / sizeof *at)
			file[at[k]] ^= 0x40;
		else
			n -= 100;
		CHECK_INT(fwrite(file, 1, n, f), n);
		CHECK_INT(fclose(f), 0);
		if (k < sizeof at / sizeof *at)
			file[at[k]] ^= 0x40;
		CHECK_INT(load(bad, &r, &fd), -EIO);
		CHECK(r.coff == NULL && r.doff == NULL);
	}
	/* too small to hold a table at all */
	f = fopen(bad, "wb");
	CHECK(f && fwrite("x", 1, 1, f) == 1);
	fclose(f);
	CHECK_INT(load(bad, &r, &fd), -EIO);
	zseek_free(&w);
	free(file);
	free(data);
}

int main(void)
{
	if (scratch_make(base, sizeof base, NULL, 0, "zseek") < 0)
		return 1;
	RUN(test_roundtrip_frames_and_prefixes);
	RUN(test_zstd_command_decodes);
	RUN(test_find_at_boundaries);
	RUN(test_checksum_layout_reads);
	RUN(test_damaged_tables_refused);
	scratch_remove(base);
	return CHECK_DONE();
}
