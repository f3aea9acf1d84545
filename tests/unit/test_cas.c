/*
 * test_cas.c - unit tests for the content-addressed store: hashing, blob
 * puts (raw and zstd seekable), readers at odd offsets (more reader
 * tests in test_cas_reader.c), trees with symlinks, the symlink rules, export, and that a
 * failed put leaves nothing behind. Everything happens under a mkdtemp
 * directory in /tmp that is removed at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "store_check.h"
#include "flowyfs/cas.h"
#include "flowyfs/util.h"

static char base[64];   /* the scratch directory */
static char store[128]; /* the store under it */

static void path_of(char *out, size_t n, const char *rel)
{
	snprintf(out, n, "%s/%s", base, rel);
}

static int write_file(const char *rel, const void *data, size_t len, mode_t mode)
{
	char p[512];
	int fd;

	path_of(p, sizeof p, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		return -errno;
	if (write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return -EIO;
	}
	close(fd);
	return chmod(p, mode) < 0 ? -errno : 0;
}

static int make_dir(const char *rel)
{
	char p[512];

	path_of(p, sizeof p, rel);
	return mkdir(p, 0755) < 0 ? -errno : 0;
}

static int make_link(const char *target, const char *rel)
{
	char p[512];

	path_of(p, sizeof p, rel);
	return symlink(target, p) < 0 ? -errno : 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)f;
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static void rm_rf(const char *p)
{
	nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int obj_exists(const char *hex, const char *suffix)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof p, "%s/%.2s/%s%s", store, hex, hex + 2, suffix);
	return stat(p, &st) == 0;
}

/* Number_Of_Frames from a .zst object's footer (-1 on trouble). */
static long zst_frames(const char *hex)
{
	unsigned char tail[9];
	char p[512];
	FILE *f;
	long n = -1;

	snprintf(p, sizeof p, "%s/%.2s/%s.zst", store, hex, hex + 2);
	f = fopen(p, "rb");
	if (!f)
		return -1;
	if (fseek(f, -9, SEEK_END) == 0 && fread(tail, 1, 9, f) == 9)
		n = (long)(tail[0] | tail[1] << 8 | tail[2] << 16 | (uint32_t)tail[3] << 24);
	fclose(f);
	return n;
}

/* Deterministic incompressible bytes (xorshift64*). */
static void fill_random(unsigned char *b, size_t n, uint64_t seed)
{
	uint64_t x = seed | 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		b[i] = (unsigned char)((x * 2685821657736338717ULL) >> 56);
	}
}

/* Compressible but not trivial text: numbered lines. */
static void fill_text(unsigned char *b, size_t n)
{
	size_t off = 0;

	for (unsigned line = 0; off < n; line++) {
		char tmp[96];
		int k = snprintf(tmp, sizeof tmp, "line %u: the quick brown fox %u "
		                 "jumps over the lazy dog\n", line, line * 7919u % 1000);
		for (int j = 0; j < k && off < n; j++)
			b[off++] = (unsigned char)tmp[j];
	}
}

TEST(test_hash_known)
{
	char hex[CAS_HEX_LEN + 1], p[512];

	cas_hash_buf(hex, "abc", 3);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	cas_hash_buf(hex, "", 0);
	CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	CHECK_INT(write_file("abc.txt", "abc", 3, 0644), 0);
	path_of(p, sizeof p, "abc.txt");
	CHECK_INT(cas_hash_file(hex, p), 0);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	path_of(p, sizeof p, "no-such-file");
	CHECK_INT(cas_hash_file(hex, p), -ENOENT);
}

TEST(test_hex_valid)
{
	CHECK(cas_hex_valid("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	CHECK(!cas_hex_valid("E3B0C44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	CHECK(!cas_hex_valid("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"));
	CHECK(!cas_hex_valid("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555"));
	CHECK(!cas_hex_valid("g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	CHECK(!cas_hex_valid("../c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	CHECK(!cas_hex_valid(""));
	CHECK(!cas_hex_valid(NULL));
}

TEST(test_put_buf_dedup)
{
	char hex[CAS_HEX_LEN + 1], hex2[CAS_HEX_LEN + 1], want[CAS_HEX_LEN + 1];
	char shard[512], tmp[512];
	struct cas_stat st;
	cas *c = NULL;

	CHECK_INT(cas_open(&c, store), 0);
	cas_hash_buf(want, "hello, store\n", 13);
	CHECK_INT(cas_put_buf(c, hex, "hello, store\n", 13), 0);
	CHECK_STR(hex, want);
	CHECK_INT(cas_put_buf(c, hex2, "hello, store\n", 13), 0);
	CHECK_STR(hex2, want);
	CHECK(obj_exists(hex, ""));
	CHECK(!obj_exists(hex, ".zst"));
	snprintf(shard, sizeof shard, "%s/%.2s", store, hex);
	CHECK_INT(count_entries(shard), 1);
	snprintf(tmp, sizeof tmp, "%s/tmp", store);
	CHECK_INT(count_entries(tmp), 0);
	CHECK_INT(cas_stat(c, hex, &st), 0);
	CHECK_INT(st.kind, CAS_BLOB);
	CHECK_INT(st.compressed, 0);
	CHECK_INT(st.size, 13);
	CHECK_INT(st.stored_size, 13);

	/* empty content: a raw empty object */
	CHECK_INT(cas_put_buf(c, hex, "", 0), 0);
	CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	CHECK_INT(cas_stat(c, hex, &st), 0);
	CHECK_INT(st.kind, CAS_BLOB);
	CHECK_INT(st.compressed, 0);
	CHECK_INT(st.size, 0);
	cas_close(c);
}

TEST(test_zst_roundtrip)
{
	size_t len = 2 * CAS_FRAME + CAS_FRAME / 2 + 12345;
	unsigned char *data = malloc(len), tail[9];
	char hex[CAS_HEX_LEN + 1], hex2[CAS_HEX_LEN + 1], want[CAS_HEX_LEN + 1];
	char p[512], shard[512];
	struct cas_stat st;
	cas_reader *r = NULL;
	cas *c = NULL;
	FILE *f;

	fill_text(data, len);
	cas_hash_buf(want, data, len);
	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(cas_put_buf(c, hex, data, len), 0);
	CHECK_STR(hex, want);
	CHECK(obj_exists(hex, ".zst"));
	CHECK(!obj_exists(hex, ""));
	CHECK_INT(cas_stat(c, hex, &st), 0);
	CHECK_INT(st.kind, CAS_BLOB);
	CHECK_INT(st.compressed, 1);
	CHECK_INT(st.size, len);
	CHECK(st.stored_size < len / 2);

	/* the footer of the seekable format: 3 frames, descriptor 0, magic */
	snprintf(p, sizeof p, "%s/%.2s/%s.zst", store, hex, hex + 2);
	f = fopen(p, "rb");
	CHECK(f != NULL);
	CHECK_INT(fseek(f, -9, SEEK_END), 0);
	CHECK_INT(fread(tail, 1, 9, f), 9);
	fclose(f);
	CHECK_INT(tail[0] | tail[1] << 8 | tail[2] << 16 | (uint32_t)tail[3] << 24, 3);
	CHECK_INT(tail[4], 0);
	CHECK_INT(tail[5] | tail[6] << 8 | tail[7] << 16 | (uint32_t)tail[8] << 24,
	          0x8F92EAB1u);

	/* the same content from a file: same name, still one object */
	CHECK_INT(write_file("text.bin", data, len, 0644), 0);
	path_of(p, sizeof p, "text.bin");
	CHECK_INT(cas_put_file(c, hex2, p), 0);
	CHECK_STR(hex2, want);
	snprintf(shard, sizeof shard, "%s/%.2s", store, hex);
	CHECK_INT(count_entries(shard), 1);

	CHECK_INT(cas_reader_open(c, hex, &r), 0);
	CHECK_INT(cas_reader_fd(r), -1);
	CHECK_INT(cas_reader_size(r), len);
	CHECK(read_matches(r, data, 0, 1));
	CHECK(read_matches(r, data, 7, 100));
	CHECK(read_matches(r, data, CAS_FRAME - 3, 7));            /* boundary */
	CHECK(read_matches(r, data, CAS_FRAME - 1000, 131072));    /* boundary */
	CHECK(read_matches(r, data, 12345, 2 * CAS_FRAME + 17));   /* 3 frames */
	CHECK(read_matches(r, data, CAS_FRAME, CAS_FRAME));        /* whole frame */
	CHECK(read_matches(r, data, 2 * CAS_FRAME + 5, len - 2 * CAS_FRAME - 5));
	CHECK(read_matches(r, data, 0, len));
	for (uint64_t off = 0; off < len; off += 131072) {         /* sequential */
		size_t n = len - off < 131072 ? len - off : 131072;
		CHECK(read_matches(r, data, off, n));
	}
	{
		unsigned char b[16];
		CHECK_INT(cas_reader_pread(r, b, sizeof b, len), 0);     /* at EOF */
		CHECK_INT(cas_reader_pread(r, b, sizeof b, len - 3), 3); /* clipped */
		CHECK(memcmp(b, data + len - 3, 3) == 0);
	}
	cas_reader_close(r);
	cas_close(c);
	free(data);
}

TEST(test_raw_roundtrip)
{
	size_t len = 2 * CAS_FRAME + 777;
	unsigned char *data = malloc(len);
	char hex[CAS_HEX_LEN + 1], want[CAS_HEX_LEN + 1], p[512];
	struct cas_stat st;
	cas_reader *r = NULL;
	cas *c = NULL;

	fill_random(data, len, 42);
	cas_hash_buf(want, data, len);
	CHECK_INT(write_file("random.bin", data, len, 0644), 0);
	path_of(p, sizeof p, "random.bin");
	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(cas_put_file(c, hex, p), 0);
	CHECK_STR(hex, want);
	CHECK(obj_exists(hex, ""));
	CHECK(!obj_exists(hex, ".zst"));
	CHECK_INT(cas_stat(c, hex, &st), 0);
	CHECK_INT(st.compressed, 0);
	CHECK_INT(st.size, len);
	CHECK_INT(st.stored_size, len);
	CHECK_INT(cas_reader_open(c, hex, &r), 0);
	CHECK(cas_reader_fd(r) >= 0);
	CHECK_INT(cas_reader_size(r), len);
	CHECK(read_matches(r, data, 3, 5));
	CHECK(read_matches(r, data, CAS_FRAME - 11, 4097));
	CHECK(read_matches(r, data, 333, 2 * CAS_FRAME + 1));
	{
		unsigned char b[8];
		CHECK_INT(cas_reader_pread(r, b, sizeof b, len + 100), 0);
		CHECK_INT(pread(cas_reader_fd(r), b, 8, CAS_FRAME), 8);   /* splice-able */
		CHECK(memcmp(b, data + CAS_FRAME, 8) == 0);
	}
	cas_reader_close(r);
	path_of(p, sizeof p, "no-such-file");
	CHECK_INT(cas_put_file(c, hex, p), -ENOENT);
	CHECK_INT(cas_put_file(c, hex, base), -EISDIR);
	cas_close(c);
	free(data);
}

/* More than one batch of frames (puts work 8 MiB at a time), from memory
 * and from a file, compressed and raw. */
TEST(test_large_put)
{
	size_t len = 17 * CAS_FRAME + 5;
	unsigned char *data = malloc(len);
	char hex[CAS_HEX_LEN + 1], want[CAS_HEX_LEN + 1], p[512];
	struct cas_stat st;
	cas_reader *r = NULL;
	cas *c = NULL;

	CHECK_INT(cas_open(&c, store), 0);
	for (int kind = 0; kind < 2; kind++) {
		if (kind == 0)
			fill_text(data, len);
		else
			fill_random(data, len, 1234);
		cas_hash_buf(want, data, len);
		CHECK_INT(cas_put_buf(c, hex, data, len), 0);
		CHECK_STR(hex, want);
		CHECK_INT(cas_stat(c, hex, &st), 0);
		CHECK_INT(st.compressed, kind == 0);
		CHECK_INT(st.size, len);
		if (kind == 0)
			CHECK_INT(zst_frames(hex), 18);
		CHECK_INT(cas_reader_open(c, hex, &r), 0);
		CHECK(read_matches(r, data, 0, len));
		CHECK(read_matches(r, data, 8 * CAS_FRAME - 1, 2));
		CHECK(read_matches(r, data, len - 6, 6));
		cas_reader_close(r);
		r = NULL;
		/* the same from a file: same object, nothing new */
		CHECK_INT(write_file("large.bin", data, len, 0644), 0);
		path_of(p, sizeof p, "large.bin");
		CHECK_INT(cas_put_file(c, hex, p), 0);
		CHECK_STR(hex, want);
		CHECK_INT(cas_hash_file(hex, p), 0);
		CHECK_STR(hex, want);
	}
	/* exactly one frame, and exactly a batch: no empty trailing frame */
	for (size_t n = CAS_FRAME; n <= 8 * CAS_FRAME; n += 7 * CAS_FRAME) {
		fill_text(data, n);
		CHECK_INT(cas_put_buf(c, hex, data, n), 0);
		CHECK_INT(cas_stat(c, hex, &st), 0);
		CHECK_INT(st.compressed, 1);
		CHECK_INT(st.size, n);
		CHECK_INT(zst_frames(hex), n / CAS_FRAME);
		CHECK_INT(cas_reader_open(c, hex, &r), 0);
		CHECK(read_matches(r, data, 0, n));
		cas_reader_close(r);
		r = NULL;
	}
	cas_close(c);
	free(data);
}

/* out/model: files (one executable), an empty dir, a subdir, and links
 * that stay inside out/. */
static int build_model(void)
{
	int rc = 0;

	rc |= make_dir("out");
	rc |= make_dir("out/model");
	rc |= write_file("out/model/B.txt", "upper\n", 6, 0644);
	rc |= write_file("out/model/a.txt", "hello\n", 6, 0600);
	rc |= write_file("out/model/run.sh", "#!/bin/sh\necho hi\n", 18, 0750);
	rc |= make_dir("out/model/empty");
	rc |= make_dir("out/model/sub");
	rc |= write_file("out/model/sub/b.txt", "b\n", 2, 0644);
	rc |= make_link("../a.txt", "out/model/sub/up");
	rc |= make_link("sub/b.txt", "out/model/link");
	rc |= make_link("model", "out/current");
	return rc;
}

static void expected_model(char out[CAS_HEX_LEN + 1], char *text, size_t size)
{
	char h1[CAS_HEX_LEN + 1], h2[CAS_HEX_LEN + 1], h3[CAS_HEX_LEN + 1];
	char h4[CAS_HEX_LEN + 1], h5[CAS_HEX_LEN + 1], h6[CAS_HEX_LEN + 1];
	char sub[CAS_HEX_LEN + 1];
	const char *empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

	cas_hash_buf(h1, "b\n", 2);
	cas_hash_buf(h2, "../a.txt", 8);
	snprintf(text, size, "f 0644 %s 2\tb.txt\nl 0777 %s 8\tup\n", h1, h2);
	cas_hash_buf(sub, text, strlen(text));
	cas_hash_buf(h3, "upper\n", 6);
	cas_hash_buf(h4, "hello\n", 6);
	cas_hash_buf(h5, "sub/b.txt", 9);
	cas_hash_buf(h6, "#!/bin/sh\necho hi\n", 18);
	snprintf(text, size,
	         "f 0644 %s 6\tB.txt\n"
	         "f 0644 %s 6\ta.txt\n"
	         "d 0755 %s 0\tempty\n"
	         "l 0777 %s 9\tlink\n"
	         "f 0755 %s 18\trun.sh\n"
	         "d 0755 %s 0\tsub\n", h3, h4, empty, h5, h6, sub);
	cas_hash_buf(out, text, strlen(text));
}

TEST(test_tree_put)
{
	char hex[CAS_HEX_LEN + 1], hex2[CAS_HEX_LEN + 1], want[CAS_HEX_LEN + 1];
	char p[512], root[512], text[2048], stored[2048], *err = NULL;
	enum cas_kind kind = 0;
	struct cas_tree *t = NULL;
	FILE *f;
	size_t n;
	const struct cas_entry *e;
	struct cas_stat st;
	cas *c = NULL;

	CHECK_INT(build_model(), 0);
	expected_model(want, text, sizeof text);
	path_of(p, sizeof p, "out/model");
	path_of(root, sizeof root, "out");
	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(cas_put_path(c, hex, &kind, p, root, NULL, &err), 0);
	CHECK(err == NULL);
	CHECK_INT(kind, CAS_TREE);
	CHECK_STR(hex, want);
	CHECK(obj_exists(hex, ".tree"));
	snprintf(p, sizeof p, "%s/%.2s/%s.tree", store, hex, hex + 2);
	f = fopen(p, "r");
	CHECK(f != NULL);
	n = fread(stored, 1, sizeof stored - 1, f);
	fclose(f);
	stored[n] = '\0';
	CHECK_STR(stored, text);
	CHECK_INT(cas_stat(c, hex, &st), 0);
	CHECK_INT(st.kind, CAS_TREE);
	CHECK_INT(st.size, strlen(text));

	/* stable: again, and after touching the files */
	path_of(p, sizeof p, "out/model/a.txt");
	CHECK_INT(utimensat(AT_FDCWD, p, NULL, 0), 0);
	path_of(p, sizeof p, "out/model");
	CHECK_INT(cas_put_path(c, hex2, &kind, p, root, NULL, &err), 0);
	CHECK_STR(hex2, want);

	/* a top-level symlink inside root is followed */
	path_of(p, sizeof p, "out/current");
	CHECK_INT(cas_put_path(c, hex2, &kind, p, root, NULL, &err), 0);
	CHECK_INT(kind, CAS_TREE);
	CHECK_STR(hex2, want);

	/* a single file is a blob */
	path_of(p, sizeof p, "out/model/run.sh");
	CHECK_INT(cas_put_path(c, hex2, &kind, p, root, NULL, &err), 0);
	CHECK_INT(kind, CAS_BLOB);
	cas_hash_buf(want, "#!/bin/sh\necho hi\n", 18);
	CHECK_STR(hex2, want);

	CHECK_INT(cas_tree_read(c, hex, &t), 0);
	CHECK_INT(t->n, 6);
	CHECK_STR(t->entries[0].name, "B.txt");
	CHECK_STR(t->entries[5].name, "sub");
	e = cas_tree_find(t, "run.sh");
	CHECK(e != NULL);
	CHECK_INT(e->type, 'f');
	CHECK_INT(e->mode, 0755);
	CHECK_INT(e->size, 18);
	CHECK_STR(e->hex, want);
	e = cas_tree_find(t, "link");
	CHECK(e != NULL);
	CHECK_INT(e->type, 'l');
	CHECK_INT(e->mode, 0777);
	CHECK_INT(e->size, 9);
	e = cas_tree_find(t, "sub");
	CHECK(e != NULL);
	CHECK_INT(e->type, 'd');
	CHECK(cas_tree_find(t, "B.txt") != NULL);
	CHECK(cas_tree_find(t, "a.txt") != NULL);
	CHECK(cas_tree_find(t, "empty") != NULL);
	CHECK(cas_tree_find(t, "zzz") == NULL);
	CHECK(cas_tree_find(t, "A") == NULL);
	cas_tree_free(t);
	cas_tree_free(NULL);
	cas_close(c);
}

TEST(test_symlink_rules)
{
	char hex[CAS_HEX_LEN + 1], p[512], root[512], *err = NULL;
	enum cas_kind kind = 0;
	cas *c = NULL;

	CHECK_INT(make_dir("out2"), 0);
	CHECK_INT(make_dir("out2/model"), 0);
	CHECK_INT(make_dir("out2/model/d"), 0);
	CHECK_INT(write_file("out2/model/d/w", "w", 1, 0644), 0);
	CHECK_INT(make_link("../../../secret", "out2/model/d/evil"), 0);
	path_of(p, sizeof p, "out2/model");
	path_of(root, sizeof root, "out2");
	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(cas_put_path(c, hex, &kind, p, root, NULL, &err), -EXDEV);
	CHECK_CONTAINS(err, "out2/model/d/evil");
	CHECK_CONTAINS(err, "outside out2/");
	CHECK_CONTAINS(err, "-> ../../../secret");
	free(err);
	err = NULL;

	/* the same link is fine when root is one level higher... */
	CHECK_INT(cas_put_path(c, hex, &kind, p, base, NULL, &err), 0);
	CHECK(err == NULL);
	path_of(p, sizeof p, "out2/model/d/evil");
	CHECK_INT(unlink(p), 0);

	/* absolute targets are refused even when they point inside */
	path_of(p, sizeof p, "out2/model/d/w");
	CHECK_INT(make_link(p, "out2/model/abs"), 0);
	path_of(p, sizeof p, "out2/model");
	CHECK_INT(cas_put_path(c, hex, &kind, p, root, NULL, &err), -EXDEV);
	CHECK_CONTAINS(err, "out2/model/abs");
	free(err);
	err = NULL;
	path_of(p, sizeof p, "out2/model/abs");
	CHECK_INT(unlink(p), 0);

	/* lexically inside, physically out: s -> "." makes s/.. the parent */
	CHECK_INT(make_link(".", "out2/s"), 0);
	CHECK_INT(make_link("s/..", "out2/sneaky"), 0);
	path_of(p, sizeof p, "out2");
	CHECK_INT(cas_put_path(c, hex, &kind, p, root, NULL, &err), -EXDEV);
	CHECK_CONTAINS(err, "out2/sneaky");
	free(err);
	err = NULL;
	path_of(p, sizeof p, "out2/sneaky");
	CHECK_INT(unlink(p), 0);

	/* a dangling link that stays inside lexically is kept */
	CHECK_INT(make_link("d/not-yet", "out2/model/later"), 0);
	path_of(p, sizeof p, "out2/model");
	CHECK_INT(cas_put_path(c, hex, &kind, p, root, NULL, &err), 0);

	/* a top-level symlink leading out of root */
	CHECK_INT(make_link("../out/model", "out2/elsewhere"), 0);
	path_of(p, sizeof p, "out2/elsewhere");
	CHECK_INT(cas_put_path(c, hex, &kind, p, root, NULL, &err), -EXDEV);
	CHECK_CONTAINS(err, "out2/elsewhere");
	free(err);
	err = NULL;

	/* names with a newline, and fifos */
	CHECK_INT(make_dir("out3"), 0);
	CHECK_INT(write_file("out3/bad\nname", "x", 1, 0644), 0);
	path_of(p, sizeof p, "out3");
	CHECK_INT(cas_put_path(c, hex, &kind, p, p, NULL, &err), -EINVAL);
	CHECK_CONTAINS(err, "newline");
	free(err);
	err = NULL;
	CHECK_INT(make_dir("out4"), 0);
	path_of(p, sizeof p, "out4/pipe");
	CHECK_INT(mkfifo(p, 0644), 0);
	path_of(p, sizeof p, "out4");
	CHECK_INT(cas_put_path(c, hex, &kind, p, p, NULL, NULL), -EINVAL);
	CHECK_INT(cas_put_path(c, hex, &kind, p, p, NULL, &err), -EINVAL);
	CHECK_CONTAINS(err, "out4/pipe");
	free(err);
	cas_close(c);
}

/* Do the files at a and b have the same bytes? */
static int same_content(const char *a, const char *b)
{
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	int ca, cb, same = fa && fb;

	while (same) {
		ca = getc(fa);
		cb = getc(fb);
		if (ca != cb)
			same = 0;
		if (ca == EOF)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

TEST(test_export)
{
	char hex[CAS_HEX_LEN + 1], hex2[CAS_HEX_LEN + 1], p[512], q[512];
	char root[512], target[64];
	size_t big = 2 * CAS_FRAME + 4321;
	unsigned char *data = malloc(big);
	enum cas_kind kind;
	struct stat st;
	cas *c = NULL;

	CHECK_INT(cas_open(&c, store), 0);
	/* a tree with a compressed and a raw file in it */
	fill_text(data, big);
	CHECK_INT(write_file("out/model/sub/text.log", data, big, 0644), 0);
	fill_random(data, big, 7);
	CHECK_INT(write_file("out/model/sub/noise.bin", data, big, 0755), 0);
	path_of(p, sizeof p, "out/model");
	path_of(root, sizeof root, "out");
	CHECK_INT(cas_put_path(c, hex, &kind, p, root, NULL, NULL), 0);
	path_of(q, sizeof q, "exported");
	CHECK_INT(cas_export(c, hex, q), 0);
	CHECK_INT(cas_export(c, hex, q), -EEXIST);

	static const char *const files[] = { "B.txt", "a.txt", "run.sh",
		"sub/b.txt", "sub/text.log", "sub/noise.bin" };
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		char a[512], b[512];
		snprintf(a, sizeof a, "%s/out/model/%s", base, files[i]);
		snprintf(b, sizeof b, "%s/exported/%s", base, files[i]);
		CHECK(same_content(a, b));
	}
	path_of(p, sizeof p, "exported/run.sh");
	CHECK_INT(lstat(p, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0555);
	path_of(p, sizeof p, "exported/a.txt");
	CHECK_INT(lstat(p, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0444);
	path_of(p, sizeof p, "exported/sub");
	CHECK_INT(lstat(p, &st), 0);
	CHECK(S_ISDIR(st.st_mode));
	CHECK_INT(st.st_mode & 07777, 0755);
	path_of(p, sizeof p, "exported/empty");
	CHECK_INT(count_entries(p), 0);
	path_of(p, sizeof p, "exported/link");
	CHECK_INT(readlink(p, target, sizeof target), 9);
	CHECK(memcmp(target, "sub/b.txt", 9) == 0);
	path_of(p, sizeof p, "exported/sub/up");
	CHECK_INT(readlink(p, target, sizeof target), 8);

	/* single blobs: raw and compressed */
	path_of(p, sizeof p, "out/model/sub/noise.bin");
	CHECK_INT(cas_put_file(c, hex2, p), 0);
	path_of(q, sizeof q, "noise.out");
	CHECK_INT(cas_export(c, hex2, q), 0);
	CHECK(same_content(p, q));
	CHECK_INT(stat(q, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0444);
	path_of(p, sizeof p, "out/model/sub/text.log");
	CHECK_INT(cas_put_file(c, hex2, p), 0);
	CHECK(obj_exists(hex2, ".zst"));
	path_of(q, sizeof q, "text.out");
	CHECK_INT(cas_export(c, hex2, q), 0);
	CHECK(same_content(p, q));

	path_of(q, sizeof q, "nothing");
	CHECK_INT(cas_export(c, "0000000000000000000000000000000000000000000000000000000000000000",
	                     q), -ENOENT);
	cas_close(c);
	free(data);
}

TEST(test_stat_missing)
{
	const char *none = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	struct cas_stat st;
	struct cas_tree *t = NULL;
	cas_reader *r = NULL;
	cas *c = NULL;

	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(cas_stat(c, none, &st), -ENOENT);
	CHECK_INT(cas_stat(c, "../../etc/passwd", &st), -EINVAL);
	CHECK_INT(cas_tree_read(c, none, &t), -ENOENT);
	CHECK(t == NULL);
	CHECK_INT(cas_reader_open(c, none, &r), -ENOENT);
	CHECK(r == NULL);
	cas_reader_close(NULL);
	cas_close(c);
	cas_close(NULL);
}

/* Plant text as a tree object under its own hash. */
static int plant_tree(const char *text, char hex[CAS_HEX_LEN + 1])
{
	char p[512];
	FILE *f;

	cas_hash_buf(hex, text, strlen(text));
	snprintf(p, sizeof p, "%s/%.2s", store, hex);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/%.2s/%s.tree", store, hex, hex + 2);
	f = fopen(p, "w");
	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) ? -errno : 0;
}

TEST(test_tree_malformed)
{
	static const char *const bad[] = {
		"x 0644 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0\ta\n",
		"f 0644 e3b0 0\ta\n",
		"f 0644 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0\ta",
		"f 0644 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 a\n",
		"f 0644 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0\t..\n",
		"f 0644 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0\ta/b\n",
		"f 0644 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 x\ta\n",
		"f 0644 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0\tb\n"
		"f 0644 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0\ta\n",
		"f 0644 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0\ta\n"
		"f 0644 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0\ta\n",
		"f 0644 e3b",
	};
	char hex[CAS_HEX_LEN + 1], p[512];
	struct cas_tree *t = NULL;
	cas *c = NULL;
	FILE *f;

	CHECK_INT(cas_open(&c, store), 0);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		CHECK_INT(plant_tree(bad[i], hex), 0);
		CHECK_INT(cas_tree_read(c, hex, &t), -EIO);
		CHECK(t == NULL);
		tree_index *ti = NULL;  /* the index refuses it too */
		CHECK_INT(tree_index_open(c, hex, &ti), -EIO);
		CHECK(ti == NULL);
	}
	/* a well-formed one parses */
	CHECK_INT(plant_tree("f 0644 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0\ta\n", hex), 0);
	CHECK_INT(cas_tree_read(c, hex, &t), 0);
	CHECK_INT(t->n, 1);
	cas_tree_free(t);
	t = NULL;
	/* content not matching its name is refused too */
	snprintf(p, sizeof p, "%s/%.2s/%s.tree", store, hex, hex + 2);
	f = fopen(p, "a");
	CHECK(f != NULL);
	fputs("f 0644 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0\tb\n", f);
	fclose(f);
	cas_close(c);  /* a new handle: its tree cache has not checked it yet */
	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(cas_tree_read(c, hex, &t), -EIO);
	cas_close(c);
}

TEST(test_failed_put_leaves_nothing)
{
	size_t len = 3 * CAS_FRAME;
	unsigned char *data = malloc(len);
	char hex[CAS_HEX_LEN + 1], want[CAS_HEX_LEN + 1], tmp[512];
	struct rlimit old, lim;
	struct cas_stat st;
	void (*oldsig)(int);
	cas *c = NULL;
	int rc;

	fill_random(data, len, 99);
	cas_hash_buf(want, data, len);
	CHECK_INT(cas_open(&c, store), 0);
	/* writes past 1 MiB fail with EFBIG, as a full disk would with ENOSPC */
	CHECK_INT(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = CAS_FRAME;
	oldsig = signal(SIGXFSZ, SIG_IGN);
	CHECK_INT(setrlimit(RLIMIT_FSIZE, &lim), 0);
	rc = cas_put_buf(c, hex, data, len);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, oldsig);
	CHECK_INT(rc, -EFBIG);
	CHECK_INT(cas_stat(c, want, &st), -ENOENT);
	CHECK(!obj_exists(want, ""));
	CHECK(!obj_exists(want, ".zst"));
	snprintf(tmp, sizeof tmp, "%s/tmp", store);
	CHECK_INT(count_entries(tmp), 0);
	/* and it works once there is room */
	CHECK_INT(cas_put_buf(c, hex, data, len), 0);
	CHECK_STR(hex, want);
	cas_close(c);
	free(data);
}

/* A put told to leave the fsync for later publishes the object at once and
 * counts it; the flush (one syncfs) makes it durable. */
TEST(test_put_later_publishes_before_the_sync)
{
	char hex[CAS_HEX_LEN + 1], want[CAS_HEX_LEN + 1], p[512];
	struct cas_syncs later = {0};
	struct cas_put_opts o = {.later = &later};
	enum cas_kind kind;
	cas *c = NULL;

	CHECK_INT(write_file("later.txt", "published first\n", 16, 0644), 0);
	path_of(p, sizeof p, "later.txt");
	cas_hash_buf(want, "published first\n", 16);
	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(cas_put_path(c, hex, &kind, p, NULL, &o, NULL), 0);
	CHECK_STR(hex, want);
	CHECK(obj_exists(hex, ""));
	CHECK_INT(later.n, 1);
	CHECK(fcntl(later.fd, F_GETFD) >= 0); /* the store's, left open */
	/* the same content again: already there, nothing more to sync */
	CHECK_INT(cas_put_path(c, hex, &kind, p, NULL, &o, NULL), 0);
	CHECK_INT(later.n, 1);
	CHECK_INT(cas_syncs_flush(&later), 0);
	CHECK_INT(later.n, 0);
	CHECK(fcntl(later.fd, F_GETFD) >= 0);
	CHECK_INT(cas_syncs_flush(&later), 0); /* nothing pending: nothing done */
	CHECK_INT(cas_syncs_flush(&later), 0);
	cas_close(c);
}

/* What a crash between publish and fsync leaves (an empty object under its
 * name) is replaced by the next put of that content; a compressed object
 * of another (non-zero) size is taken as an older encoding and kept. */
TEST(test_damaged_object_is_replaced)
{
	char hex[CAS_HEX_LEN + 1], obj[512];
	struct stat st;
	cas *c = NULL;

	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(cas_put_buf(c, hex, "lost to a power cut\n", 20), 0);
	snprintf(obj, sizeof obj, "%s/%.2s/%s", store, hex, hex + 2);
	CHECK_INT(truncate(obj, 0), 0);
	CHECK_INT(cas_put_buf(c, hex, "lost to a power cut\n", 20), 0);
	CHECK_INT(stat(obj, &st), 0);
	CHECK_INT(st.st_size, 20);
	char back[32] = {0};
	int fd = open(obj, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_INT(read(fd, back, sizeof back), 20);
	close(fd);
	CHECK_STR(back, "lost to a power cut\n");

	/* a .zst object of another size stays as it is */
	size_t len = 2 * CAS_FRAME;
	char *text = malloc(len);
	for (size_t i = 0; i < len; i++)
		text[i] = "flowyfs compresses this\n"[i % 24];
	CHECK_INT(cas_put_buf(c, hex, text, len), 0);
	snprintf(obj, sizeof obj, "%s/%.2s/%s.zst", store, hex, hex + 2);
	CHECK_INT(stat(obj, &st), 0);
	off_t zsize = st.st_size;
	CHECK_INT(truncate(obj, zsize + 7), 0);
	CHECK_INT(cas_put_buf(c, hex, text, len), 0);
	CHECK_INT(stat(obj, &st), 0);
	CHECK_INT(st.st_size, zsize + 7);
	CHECK_INT(truncate(obj, 0), 0); /* but an empty one is replaced */
	CHECK_INT(cas_put_buf(c, hex, text, len), 0);
	CHECK_INT(stat(obj, &st), 0);
	CHECK_INT(st.st_size, zsize);
	free(text);
	cas_close(c);
}

/* A store is opened with its 256 shard directories. */
TEST(test_open_makes_every_shard)
{
	char d[512];
	struct stat st;
	cas *c = NULL;

	CHECK_INT(cas_open(&c, store), 0);
	for (int i = 0; i < 256; i++) {
		snprintf(d, sizeof d, "%s/%02x", store, i);
		CHECK_INT(stat(d, &st), 0);
		CHECK(S_ISDIR(st.st_mode));
	}
	cas_close(c);
}

/* A shard directory removed behind the store's back is made again by the
 * put that needs it (puts link first and make the shard only then). */
TEST(test_removed_shard_is_made_again)
{
	char hex[CAS_HEX_LEN + 1], want[CAS_HEX_LEN + 1], shard[512];
	cas *c = NULL;

	CHECK_INT(cas_open(&c, store), 0);
	cas_hash_buf(want, "a shard of its own\n", 19);
	snprintf(shard, sizeof shard, "%s/%.2s", store, want);
	CHECK_INT(util_rm_rf(shard), 0);
	CHECK_INT(cas_put_buf(c, hex, "a shard of its own\n", 19), 0);
	CHECK_STR(hex, want);
	CHECK(obj_exists(hex, ""));
	CHECK_INT(count_entries(shard), 1);
	cas_reader *r = NULL;
	char got[64];
	CHECK_INT(cas_reader_open(c, hex, &r), 0);
	CHECK_INT(cas_reader_pread(r, got, sizeof got, 0), 19);
	CHECK(!memcmp(got, "a shard of its own\n", 19));
	cas_reader_close(r);
	cas_close(c);
}

/* A temp made ahead is what the next take gives (unlinked, writable);
 * the object is of the time it was filled, however old the temp (a gc
 * counts an object's life from then). Without one, take makes a new
 * temp. */
TEST(test_temp_made_ahead)
{
	cas *c = NULL;
	struct cas_tmp t = {.fd = -1}, u = {.fd = -1};
	struct stat st, su;
	char hex[CAS_HEX_LEN + 1], name[CAS_NAME_LEN], path[600];

	CHECK_INT(cas_open(&c, store), 0);
	cas_tmp_stock(c);
	CHECK_INT(cas_tmp_take(c, &t), 0);
	CHECK(t.fd >= 0);
	CHECK_STR(t.name, "");
	CHECK_INT(fstat(t.fd, &st), 0);
	CHECK_INT(st.st_nlink, 0);
	CHECK_INT(cas_tmp_take(c, &u), 0); /* the stock is one: a new temp */
	CHECK_INT(fstat(u.fd, &su), 0);
	CHECK(su.st_ino != st.st_ino);
	cas_tmp_drop(c, &u);
	/* made an hour ago, written now */
	struct timespec old[2] = {{.tv_sec = time(NULL) - 3600}, {.tv_sec = time(NULL) - 3600}};
	CHECK_INT(futimens(t.fd, old), 0);
	time_t before = time(NULL);
	CHECK_INT(cas_write_all(t.fd, "made ahead\n", 11), 0);
	cas_hash_buf(hex, "made ahead\n", 11);
	CHECK_INT(cas_tmp_commit(c, &t, hex, "", CAS_BLOB, NULL), 0);
	cas_obj_name(name, hex, "");
	snprintf(path, sizeof path, "%s/%s", store, name);
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_size, 11);
	CHECK(st.st_mtime >= before);
	cas_close(c);
}

int main(void)
{
	umask(022);
	snprintf(base, sizeof base, "/tmp/test_cas.XXXXXX");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(store, sizeof store, "%s/store", base);

	RUN(test_hash_known);
	RUN(test_hex_valid);
	RUN(test_put_buf_dedup);
	RUN(test_zst_roundtrip);
	RUN(test_raw_roundtrip);
	RUN(test_large_put);
	RUN(test_tree_put);
	RUN(test_symlink_rules);
	RUN(test_export);
	RUN(test_stat_missing);
	RUN(test_tree_malformed);
	RUN(test_failed_put_leaves_nothing);
	RUN(test_put_later_publishes_before_the_sync);
	RUN(test_damaged_object_is_replaced);
	RUN(test_open_makes_every_shard);
	RUN(test_removed_shard_is_made_again);
	RUN(test_temp_made_ahead);

	rm_rf(base);
	return CHECK_DONE();
}
