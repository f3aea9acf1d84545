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
 *   store_tool gcfill STORE RUN N FILES
 *                                  clone run RUN of the (unmounted) store N
 *                                  times for bench/gc.sh: each clone gets
 *                                  RUN's rows (runs, steps, step_io, cache
 *                                  rows dropped) under a new id, a copy of
 *                                  its directory's files (not the snapshot,
 *                                  which clones share as unchanged reruns
 *                                  do), and FILES new small objects of its
 *                                  own in place of RUN's outputs, written
 *                                  in the store's layout (objects/ab/<rest>,
 *                                  raw) without fsync, with artifact rows
 *                                  (FILES 0: one for each of RUN's outputs,
 *                                  under its name; for bench/run.sh's
 *                                  views), and RUN's metric rows
 *   store_tool tree STORE N        store a tree of N empty files named
 *                                  f0000001... into STORE (cas_tree_put);
 *                                  prints its hash
 *   store_tool files DIR N         create the same N empty files in DIR (the
 *                                  local baseline of tree)
 *   store_tool frames FILE KIB LEVEL [N]
 *                                  the frame-size/level trade: FILE cut into
 *                                  independent zstd frames of KIB KiB at LEVEL
 *                                  (as the store's seekable objects are); prints
 *                                  the bytes they take, the seconds to compress,
 *                                  and the mean ms of N (300) random 4 KiB reads
 *                                  decoding a frame's prefix, and whole frames
 *   store_tool stat PATH...        stat each PATH in turn (through a FUSE
 *                                  mount, each a new lookup); prints the
 *                                  first one's time and the mean of the
 *                                  others, in ms
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

#include <zstd.h>

#include "flowyfs/cas.h"
#include "flowyfs/db.h"
#include "flowyfs/util.h"

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

/* Write content as object hex in the layout of the objects directory
 * odir (its 256 shards made beforehand). */
static int put_raw(int odir, const char *text, char hex[CAS_HEX_LEN + 1])
{
	char name[CAS_NAME_LEN];
	cas_hash_buf(hex, text, strlen(text));
	cas_obj_name(name, hex, "");
	int fd = openat(odir, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, text, strlen(text));
	int rc = n < 0 ? -errno : (size_t)n != strlen(text) ? -EIO : 0;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	return rc;
}

/* Copy the regular files of run from's directory into run to's. */
static int copy_run_dir(const char *store, int64_t from, int64_t to)
{
	char *src = xasprintf("%s/runs/%lld", store, (long long)from);
	char *dst = xasprintf("%s/runs/%lld", store, (long long)to);
	int rc = util_mkdir_p(dst, 0755);
	DIR *d = rc ? NULL : opendir(src);
	struct dirent *e;
	if (!rc && !d)
		rc = -errno;
	while (!rc && d && (e = readdir(d))) {
		char *a = xasprintf("%s/%s", src, e->d_name), *b = xasprintf("%s/%s", dst, e->d_name);
		struct stat st;
		char *text = NULL;
		size_t len = 0;
		if (lstat(a, &st) == 0 && S_ISREG(st.st_mode)) {
			rc = util_read_file(a, &text, &len);
			if (!rc)
				rc = util_put_file(b, text, len);
		}
		free(text);
		free(b);
		free(a);
	}
	if (d)
		closedir(d);
	free(dst);
	free(src);
	return rc;
}

static int gcfill(const char *store, int64_t run, long n, long files)
{
	char *dbp = xasprintf("%s/flowy.db", store), *err = NULL;
	db *d = NULL;
	int rc = db_open(&d, dbp, &err);
	free(dbp);
	if (rc < 0) {
		fprintf(stderr, "store_tool: %s\n", err ? err : strerror(-rc));
		free(err);
		return 1;
	}
	char *objects = xasprintf("%s/objects", store);
	int odir = open(objects, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(objects);
	for (int i = 0; odir >= 0 && i < 256; i++) {
		char shard[3];
		snprintf(shard, sizeof shard, "%02x", i);
		if (mkdirat(odir, shard, 0755) < 0 && errno != EEXIST) {
			close(odir);
			odir = -1;
		}
	}
	if (odir < 0) {
		fprintf(stderr, "store_tool: %s/objects: %s\n", store, strerror(errno));
		db_close(d);
		return 1;
	}
	int64_t next = db_int(d, 0, "SELECT max(id) FROM runs", "") + 1;
	db_lock(d);
	rc = db_begin(d);
	if (!rc)
		rc = db_exec(d, "CREATE TEMP TABLE r AS SELECT * FROM runs WHERE id=?", "i", run);
	if (!rc)
		rc = db_exec(d, "CREATE TEMP TABLE s AS SELECT * FROM steps WHERE run_id=?", "i", run);
	if (!rc)
		rc = db_exec(d, "CREATE TEMP TABLE io AS SELECT * FROM step_io WHERE run_id=?", "i",
		             run);
	long outs = db_int(d, 0, "SELECT count(*) FROM temp.io WHERE dir='out'", "");
	if (!rc && (outs < 1 || !db_int(d, 0, "SELECT count(*) FROM temp.r", "")))
		rc = -ENOENT;
	/* The outputs each clone gets: FILES of the first output's step named
	 * o0, o1, ...; or (FILES 0) one for each of RUN's, under its name. */
	long nout = files > 0 ? files : outs;
	char **ostep = xcalloc((size_t)nout + 1, sizeof *ostep);
	char **oname = xcalloc((size_t)nout + 1, sizeof *oname);
	sqlite3_stmt *q = rc ? NULL : db_prepare(d, "SELECT step, name FROM temp.io WHERE "
	                                         "dir='out' ORDER BY step, name", "");
	for (long f = 0; q && f < nout; f++) {
		if (f < outs && sqlite3_step(q) == SQLITE_ROW) {
			ostep[f] = xstrdup((const char *)sqlite3_column_text(q, 0));
			oname[f] = xstrdup((const char *)sqlite3_column_text(q, 1));
		}
		if (files > 0 && f > 0) { /* all of the first output's step */
			free(ostep[f]);
			ostep[f] = xstrdup(ostep[0]);
		}
		if (files > 0) {
			free(oname[f]);
			oname[f] = xasprintf("o%ld", f);
		}
	}
	db_finish(d, q);
	for (long k = 0; !rc && k < n; k++) {
		int64_t id = next + k;
		rc = db_exec(d, "UPDATE temp.r SET id=?", "i", id);
		if (!rc)
			rc = db_exec(d, "UPDATE temp.s SET run_id=?", "i", id);
		if (!rc)
			rc = db_exec(d, "UPDATE temp.io SET run_id=?", "i", id);
		if (!rc)
			rc = db_exec(d, "INSERT INTO runs SELECT * FROM temp.r", "");
		if (!rc)
			rc = db_exec(d, "INSERT INTO steps SELECT * FROM temp.s", "");
		if (!rc)
			rc = db_exec(d, "INSERT INTO step_io SELECT * FROM temp.io WHERE dir<>'out'", "");
		if (!rc)
			rc = db_exec(d, "INSERT INTO metrics(run_id, step, name, idx, value, time) "
			             "SELECT ?, step, name, idx, value, time FROM metrics WHERE "
			             "run_id=?", "ii", id, run);
		for (long f = 0; !rc && f < nout; f++) {
			char hex[CAS_HEX_LEN + 1];
			char *text = xasprintf("clone %lld output %ld\n", (long long)id, f);
			rc = put_raw(odir, text, hex);
			if (!rc && k == n - 1) /* the newest clone has the latest outputs */
				rc = db_exec(d, "UPDATE latest SET hash=?, run_id=? WHERE run_id=? AND "
				             "name=?", "tiit", hex, id, run, oname[f]);
			if (!rc)
				rc = db_exec(d, "INSERT INTO step_io(run_id, step, dir, name, hash) "
				             "VALUES(?, ?, 'out', ?, ?)", "ittt", id, ostep[f], oname[f],
				             hex);
			if (!rc)
				rc = db_exec(d, "INSERT OR IGNORE INTO artifacts(hash, kind, size, created) "
				             "VALUES(?, 'blob', ?, ?)", "tid", hex, (int64_t)strlen(text),
				             util_now());
			free(text);
		}
		if (!rc)
			rc = copy_run_dir(store, run, id);
	}
	for (long f = 0; f < nout; f++) {
		free(ostep[f]);
		free(oname[f]);
	}
	free(ostep);
	free(oname);
	if (rc)
		db_rollback(d);
	else
		rc = db_commit(d);
	db_unlock(d);
	db_close(d);
	close(odir);
	if (rc < 0) {
		fprintf(stderr, "store_tool: gcfill: %s\n", strerror(-rc));
		return 1;
	}
	printf("%lld %lld\n", (long long)next, (long long)(next + n - 1));
	return 0;
}

static int put_tree(cas *c, char hex[CAS_HEX_LEN + 1], long n)
{
	char empty[CAS_HEX_LEN + 1];
	struct cas_entry *e;
	char *names;
	int rc;

	if (n < 1 || n > 9999999)
		return -EINVAL;  /* names stay 8 bytes */
	rc = cas_put_buf(c, empty, "", 0);
	if (rc < 0)
		return rc;
	e = calloc((size_t)n, sizeof *e);
	names = malloc((size_t)n * 9);
	if (!e || !names) {
		free(e);
		free(names);
		return -ENOMEM;
	}
	for (long i = 0; i < n; i++) {
		e[i].type = 'f';
		e[i].mode = 0644;
		memcpy(e[i].hex, empty, sizeof e[i].hex);
		e[i].name = names + i * 9;
		snprintf(e[i].name, 9, "f%07ld", i + 1);
	}
	rc = cas_tree_put(c, hex, e, (size_t)n);
	free(names);
	free(e);
	return rc;
}

static int make_files(const char *dir, long n)
{
	char name[32];
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0)
		return -errno;
	for (long i = 1; i <= n; i++) {
		snprintf(name, sizeof name, "f%07ld", i);
		int fd = openat(dfd, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0 || close(fd) < 0) {
			int rc = -errno;
			close(dfd);
			return rc;
		}
	}
	return close(dfd) < 0 ? -errno : 0;
}

static int frames(const char *path, size_t fr, int level, long n)
{
	unsigned char *b = NULL, **z = NULL, *o = NULL;
	size_t len, nf, *zl = NULL, total = 0;
	ZSTD_CCtx *cz = ZSTD_createCCtx();
	ZSTD_DCtx *dz = ZSTD_createDCtx();
	double t0, csecs, pre = 0, whole = 0;
	struct stat st;
	int fd = open(path, O_RDONLY), rc = 1;

	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < 4096 || !fr || n < 1 || !cz || !dz) {
		fprintf(stderr, "store_tool: %s: %s\n", path, strerror(errno));
		goto out;
	}
	len = (size_t)st.st_size;
	nf = (len + fr - 1) / fr;
	b = malloc(len);
	o = malloc(fr);
	z = calloc(nf, sizeof *z);
	zl = calloc(nf, sizeof *zl);
	if (!b || !o || !z || !zl || cas_pread_full(fd, b, len, 0) != (ssize_t)len ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cz, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cz, ZSTD_c_checksumFlag, 1)))
		goto out;
	t0 = now();
	for (size_t i = 0; i < nf; i++) {
		size_t k = len - i * fr < fr ? len - i * fr : fr;
		if (!(z[i] = malloc(ZSTD_compressBound(k))))
			goto out;
		zl[i] = ZSTD_compress2(cz, z[i], ZSTD_compressBound(k), b + i * fr, k);
		if (ZSTD_isError(zl[i]))
			goto out;
		total += zl[i];
	}
	csecs = now() - t0;
	srand(1);
	for (long k = 0; k < n; k++) {
		size_t off = ((size_t)rand() << 31 ^ (size_t)rand()) % (len / 4096) * 4096;
		size_t i = off / fr, want = off - i * fr + 4096, dl = len - i * fr < fr ? len - i * fr : fr;
		ZSTD_inBuffer in = { z[i], zl[i], 0 };
		ZSTD_outBuffer out = { o, want, 0 };
		t0 = now();
		if (ZSTD_isError(ZSTD_DCtx_reset(dz, ZSTD_reset_session_only)))
			goto out;
		while (out.pos < want)
			if (ZSTD_isError(ZSTD_decompressStream(dz, &out, &in)))
				goto out;
		pre += now() - t0;
		t0 = now();
		if (ZSTD_decompressDCtx(dz, o, dl, z[i], zl[i]) != dl)
			goto out;
		whole += now() - t0;
	}
	printf("frame %zu KiB level %d: %zu B, compress %.2f s, prefix %.3f ms, whole %.3f ms\n",
	       fr >> 10, level, total, csecs, pre / (double)n * 1000, whole / (double)n * 1000);
	rc = 0;
out:
	for (size_t i = 0; z && i < nf; i++)
		free(z[i]);
	free(z);
	free(zl);
	free(o);
	free(b);
	ZSTD_freeDCtx(dz);
	ZSTD_freeCCtx(cz);
	if (fd >= 0)
		close(fd);
	if (rc)
		fprintf(stderr, "store_tool: frames: failed\n");
	return rc;
}

static int stat_paths(int n, char **paths)
{
	double first = 0, rest = 0;
	struct stat st;

	for (int i = 0; i < n; i++) {
		double t0 = now();
		if (stat(paths[i], &st) < 0) {
			fprintf(stderr, "store_tool: %s: %s\n", paths[i], strerror(errno));
			return 1;
		}
		double t = now() - t0;
		if (i == 0)
			first = t;
		else
			rest += t;
	}
	printf("%.4f %.4f\n", first * 1000, n > 1 ? rest / (n - 1) * 1000 : 0.0);
	return 0;
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
	} else if (argc == 6 && !strcmp(argv[1], "gcfill")) {
		return gcfill(argv[2], atoll(argv[3]), atol(argv[4]), atol(argv[5]));
	} else if (argc == 4 && !strcmp(argv[1], "tree")) {
		rc = cas_open(&c, argv[2]);
		if (rc == 0)
			rc = put_tree(c, hex, atol(argv[3]));
		cas_close(c);
	} else if (argc == 4 && !strcmp(argv[1], "files")) {
		rc = make_files(argv[2], atol(argv[3]));
		if (rc < 0) {
			fprintf(stderr, "store_tool: %s: %s\n", argv[2], strerror(-rc));
			return 1;
		}
		return 0;
	} else if ((argc == 5 || argc == 6) && !strcmp(argv[1], "frames")) {
		return frames(argv[2], (size_t)atol(argv[3]) << 10, atoi(argv[4]),
		              argc == 6 ? atol(argv[5]) : 300);
	} else if (argc >= 3 && !strcmp(argv[1], "stat")) {
		return stat_paths(argc - 2, argv + 2);
	} else if ((argc == 4 || argc == 5) && !strcmp(argv[1], "randread")) {
		return randread(argv[2], atol(argv[3]), argc == 5 ? (unsigned)atoi(argv[4]) : 1);
	} else if (argc == 4 && !strcmp(argv[1], "listdir")) {
		return listdir(argv[2], atol(argv[3]));
	} else {
		fprintf(stderr, "usage: store_tool hash FILE | put STORE FILE | "
		        "randread FILE N [SEED] | gcfill STORE RUN N FILES |\n"
		        "       tree STORE N | files DIR N | frames FILE KIB LEVEL [N] | stat PATH... |\n"
		        "       listdir DIR N\n");
		return 2;
	}
	if (rc < 0) {
		fprintf(stderr, "store_tool: %s\n", strerror(-rc));
		return 1;
	}
	printf("%s\n", hex);
	return 0;
}
