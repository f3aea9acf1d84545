/*
 * cas.c - the content-addressed object store's core: opening a store,
 * object names, SHA-256 hashing, stat, and publishing. Every put ends in
 * a temp file under <dir>/tmp (anonymous where the file system allows)
 * that is fsync'd and linked under its final name only once its hash is
 * known, never replacing an object already there, so a crash or a full
 * disk never leaves a partial object under a final name and two puts of
 * the same content race harmlessly. The rest of the store builds on this:
 * cas_put.c (what to store), ingest.c (how: hash, compress, write),
 * zseek.c (the compressed format), cas_reader.c and cas_tree.c (reading).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "flowyfs/cas.h"
#include "flowyfs/lru.h"
#include "flowyfs/ingest.h"
#include "flowyfs/util.h"
#include "flowyfs/zseek.h"

/* Read size when hashing a file: small enough that the chunk is still in
 * the CPU's cache when SHA-256 reads it. On 512 MiB, against `openssl
 * dgst -sha256` (farm-bench, median wall): 128 KiB 1.37x its time, with
 * 2.4x its system time; 64 KiB 0.88x; 32 KiB 0.93x; 16 KiB 0.97x. */
#define HASH_CHUNK (64 * 1024)

struct cas {
	char *dir;
	int dfd;      /* the store directory */
	int tmpfd;    /* <dir>/tmp */
	struct lru *frames;  /* decoded frames of .zst objects (cas_reader.c) */
	struct lru *trees;   /* indexed tree objects (tree_index.c) */
	pthread_mutex_t spare_lock;
	int spare;    /* an O_TMPFILE made ahead (cas_tmp_stock), or -1 */
};

/* ---- names and small I/O helpers -------------------------------------- */

static const char hexdig[] = "0123456789abcdef";

void cas_hex_of(char out[CAS_HEX_LEN + 1], const unsigned char md[32])
{
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hexdig[md[i] >> 4];
		out[2 * i + 1] = hexdig[md[i] & 15];
	}
	out[CAS_HEX_LEN] = '\0';
}

void cas_obj_name(char out[CAS_NAME_LEN], const char *hex, const char *suffix)
{
	snprintf(out, CAS_NAME_LEN, "%.2s/%s%s", hex, hex + 2, suffix);
}

int cas_obj_open(cas *c, const char *hex, const char *suffix)
{
	char name[CAS_NAME_LEN];
	int fd;

	cas_obj_name(name, hex, suffix);
	fd = openat(c->dfd, name, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int cas_write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t cas_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	unsigned char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, p + got, len - got, (off_t)(off + got));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* ---- open / close ---------------------------------------------------- */

/* The 256 shard directories 00..ff, made once with one fsync of the
 * store directory, so that no publish pays for a mkdir and an fsync of
 * its own (on a fresh store, the first few hundred would). */
static int shards_make(cas *c)
{
	int made = 0;
	for (int i = 0; i < 256; i++) {
		char shard[3];
		snprintf(shard, sizeof shard, "%02x", i);
		if (mkdirat(c->dfd, shard, 0755) == 0)
			made = 1;
		else if (errno != EEXIST)
			return -errno;
	}
	return made && fsync(c->dfd) < 0 ? -errno : 0;
}

int cas_open(cas **out, const char *dir)
{
	cas *c = NULL;
	int rc;

	*out = NULL;
	if (!dir || !*dir)
		return -EINVAL;
	c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->dfd = c->tmpfd = c->spare = -1;
	pthread_mutex_init(&c->spare_lock, NULL);
	c->dir = strdup(dir);
	c->frames = lru_new(CAS_FRAME_CACHE, free);
	c->trees = lru_new(CAS_TREE_CACHE, tree_index_drop);
	if (!c->dir || !c->frames || !c->trees) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = util_mkdir_p(dir, 0755);
	if (rc < 0)
		goto fail;
	c->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->dfd < 0) {
		rc = -errno;
		goto fail;
	}
	if (mkdirat(c->dfd, "tmp", 0755) < 0 && errno != EEXIST) {
		rc = -errno;
		goto fail;
	}
	c->tmpfd = openat(c->dfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->tmpfd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = shards_make(c);
	if (rc < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	cas_close(c);
	return rc;
}

void cas_close(cas *c)
{
	if (!c)
		return;
	if (c->spare >= 0)
		close(c->spare);
	pthread_mutex_destroy(&c->spare_lock);
	if (c->tmpfd >= 0)
		close(c->tmpfd);
	if (c->dfd >= 0)
		close(c->dfd);
	lru_free(c->trees);
	lru_free(c->frames);
	free(c->dir);
	free(c);
}

struct lru *cas_frame_cache(cas *c)
{
	return c->frames;
}

struct lru *cas_tree_cache(cas *c)
{
	return c->trees;
}

/* ---- hashing --------------------------------------------------------- */

int cas_hex_valid(const char *hex)
{
	if (!hex)
		return 0;
	for (int i = 0; i < CAS_HEX_LEN; i++) {
		char ch = hex[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return 0;
	}
	return hex[CAS_HEX_LEN] == '\0';
}

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

const EVP_MD *cas_sha256(void)
{
	pthread_once(&sha256_once, sha256_fetch);
	return sha256_md ? sha256_md : EVP_sha256();  /* none: fetched at each use */
}

void cas_hash_buf(char out[CAS_HEX_LEN + 1], const void *buf, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	/* EVP_Digest only fails on allocation failure; treat as fatal-free. */
	if (!EVP_Digest(buf, len, md, &mdlen, cas_sha256(), NULL) || mdlen != 32)
		memset(md, 0, sizeof md);
	cas_hex_of(out, md);
}

/* SHA-256 of the file open at fd, read in chunks as a put reads it (the
 * zeros of a hole hashed from memory, never read); stop (when set by
 * another thread) gives up with -ECANCELED between chunks. */
static int hash_fd(char out[CAS_HEX_LEN + 1], int fd, const int *stop)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct ingest_src s = { .fd = fd, .stop = stop, .chunk = HASH_CHUNK };
	const unsigned char *p;
	EVP_MD_CTX *ctx = NULL;
	unsigned char *buf = NULL;
	struct stat st;
	int rc = 0, hole;
	ssize_t n;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_blocks * 512 < (uint64_t)st.st_size) {
		s.sparse = 1;
		s.size = (uint64_t)st.st_size;
	}
	ctx = EVP_MD_CTX_new();
	buf = malloc(HASH_CHUNK);
	if (!ctx || !buf || !EVP_DigestInit_ex(ctx, cas_sha256(), NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	do {
		if (stop && __atomic_load_n(stop, __ATOMIC_RELAXED)) {
			rc = -ECANCELED;
			goto out;
		}
		n = ingest_src_next(&s, buf, &p, &hole);
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		if (n > 0 && !EVP_DigestUpdate(ctx, p, (size_t)n)) {
			rc = -EIO;
			goto out;
		}
	} while (n == HASH_CHUNK);
	if (!EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32) {
		rc = -EIO;
		goto out;
	}
	cas_hex_of(out, md);
out:
	free(buf);
	EVP_MD_CTX_free(ctx);
	return rc;
}

int cas_hash_file(char out[CAS_HEX_LEN + 1], const char *path)
{
	return cas_hash_file_stop(out, path, NULL);
}

int cas_hash_file_stop(char out[CAS_HEX_LEN + 1], const char *path, const int *stop)
{
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* advice only */
	rc = hash_fd(out, fd, stop);
	close(fd);
	return rc;
}

/* ---- temp files and publishing ---------------------------------------- */

static atomic_ulong tmp_seq;

/* An anonymous temp in tmp/ (O_TMPFILE), or -1 with errno. */
static int tmpfile_open(cas *c)
{
	return openat(c->tmpfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0444);
}

int cas_tmp_create(cas *c, struct cas_tmp *t)
{
	t->name[0] = '\0';
	t->fd = tmpfile_open(c);
	if (t->fd >= 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -errno;
	/* No O_TMPFILE on this file system: a unique name, unlinked on error. */
	for (int tries = 0; tries < 100; tries++) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(t->name, sizeof t->name, "put.%ld.%lu.%ld", (long)getpid(),
		         atomic_fetch_add(&tmp_seq, 1), (long)ts.tv_nsec);
		t->fd = openat(c->tmpfd, t->name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC,
		               0444);
		if (t->fd >= 0)
			return 0;
		if (errno != EEXIST)
			break;
	}
	t->name[0] = '\0';
	return -errno;
}

void cas_tmp_stock(cas *c)
{
	pthread_mutex_lock(&c->spare_lock);
	int have = c->spare >= 0;
	pthread_mutex_unlock(&c->spare_lock);
	if (have)
		return;
	/* Only where O_TMPFILE works: a named temp left would be litter. */
	int fd = tmpfile_open(c);
	if (fd < 0)
		return; /* the put makes its own */
	pthread_mutex_lock(&c->spare_lock);
	if (c->spare < 0) {
		c->spare = fd;
		fd = -1;
	}
	pthread_mutex_unlock(&c->spare_lock);
	if (fd >= 0)
		close(fd);
}

int cas_tmp_take(cas *c, struct cas_tmp *t)
{
	pthread_mutex_lock(&c->spare_lock);
	t->fd = c->spare;
	c->spare = -1;
	pthread_mutex_unlock(&c->spare_lock);
	t->name[0] = '\0';
	if (t->fd < 0)
		return cas_tmp_create(c, t);
	/* Born now, as a new temp would be: a gc counts an object's life
	 * from its time, and an empty content is never written. */
	if (futimens(t->fd, NULL) < 0) {
		int rc = -errno;
		cas_tmp_drop(c, t);
		return rc;
	}
	return 0;
}

void cas_tmp_drop(cas *c, struct cas_tmp *t)
{
	if (t->fd < 0)
		return;
	if (t->name[0])
		unlinkat(c->tmpfd, t->name, 0);
	close(t->fd);
	t->fd = -1;
	t->name[0] = '\0';
}

int cas_dirfd(cas *c)
{
	return c->dfd;
}

int cas_obj_stored(cas *c, const char *hex, enum cas_kind kind)
{
	static const char *const blob[] = { "", ".zst" };
	char name[CAS_NAME_LEN];
	struct stat st;

	for (size_t i = 0; i < (kind == CAS_TREE ? 1 : 2); i++) {
		cas_obj_name(name, hex, kind == CAS_TREE ? ".tree" : blob[i]);
		if (fstatat(c->dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			return 1;
	}
	return 0;
}

/* Found: its mtime becomes now (the put that found it counts as writing
 * it, which a gc that began earlier respects). An object whose time
 * cannot be set counts as absent: the put then writes a temp and finds
 * it again at the link, which costs time but loses nothing. So does an
 * empty one (other than the empty content's), which the put replaces. */
/* The hash of no bytes: the one content whose object is empty. */
#define EMPTY_HEX "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* What name holds for the content hex: 1 an object that may be used (its
 * time then set to now), 0 none (or its time could not be set), -1 a
 * damaged one, which a crash between its publish and its fsync leaves:
 * empty (only the empty content's object is), or, when want (the size
 * this put stores, -1: unknown) is given, a raw or tree object of another
 * size (their size is their content's; a compressed object of another
 * size may be an older encoding, and is kept). */
static int object_state(cas *c, const char *name, const char *hex, const char *suffix,
                        off_t want)
{
	struct stat st;
	if (fstatat(c->dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if ((st.st_size == 0 && strcmp(hex, EMPTY_HEX)) ||
	    (want >= 0 && st.st_size != want && strcmp(suffix, ".zst")))
		return -1;
	return utimensat(c->dfd, name, NULL, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Is there a usable object for hex under a name other than the one
 * with suffix skip (NULL: none skipped)? */
static int exists_as(cas *c, const char *hex, enum cas_kind kind, const char *skip)
{
	static const char *const blob[] = { "", ".zst" };
	char name[CAS_NAME_LEN];

	if (kind == CAS_TREE) {
		if (skip && !strcmp(skip, ".tree"))
			return 0;
		cas_obj_name(name, hex, ".tree");
		return object_state(c, name, hex, ".tree", -1) > 0;
	}
	for (size_t i = 0; i < sizeof blob / sizeof *blob; i++) {
		if (skip && !strcmp(skip, blob[i]))
			continue;
		cas_obj_name(name, hex, blob[i]);
		if (object_state(c, name, hex, blob[i], -1) > 0)
			return 1;
	}
	return 0;
}

int cas_obj_exists(cas *c, const char *hex, enum cas_kind kind)
{
	return exists_as(c, hex, kind, NULL);
}

/* Make the shard directory "ab"; a new one is made durable in dir. */
static int shard_make(cas *c, const char *hex)
{
	char shard[3] = { hex[0], hex[1], '\0' };

	if (mkdirat(c->dfd, shard, 0755) == 0)
		return fsync(c->dfd) < 0 ? -errno : 0;
	return errno == EEXIST ? 0 : -errno;
}

/* linkat(fd, "", AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH (before Linux
 * 6.10); /proc/self/fd/N, the other way, costs a walk through /proc. The
 * first tells which this daemon has: 1 works, 0 untried, -1 refused. */
static atomic_int empty_path_links;

/* Link the temp under name (never replacing what is there). */
static int link_tmp(cas *c, const struct cas_tmp *t, int dirfd, const char *name)
{
	char proc[64];
	if (t->name[0])
		return linkat(c->tmpfd, t->name, dirfd, name, 0) < 0 ? -errno : 0;
	if (atomic_load(&empty_path_links) >= 0) {
		if (linkat(t->fd, "", dirfd, name, AT_EMPTY_PATH) == 0) {
			atomic_store(&empty_path_links, 1);
			return 0;
		}
		if ((errno != ENOENT && errno != EPERM) || atomic_load(&empty_path_links) > 0)
			return -errno; /* a real failure (EEXIST, ENOSPC...), not the refusal */
		atomic_store(&empty_path_links, -1);
	}
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", t->fd);
	return linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
}

/* Put the temp in place of the damaged object at name: linked under a
 * name of its own in tmp/, then renamed over it. */
static int replace_damaged(cas *c, const struct cas_tmp *t, const char *name)
{
	char tmp[64];
	snprintf(tmp, sizeof tmp, "fix.%ld.%lu", (long)getpid(),
	         atomic_fetch_add(&tmp_seq, 1));
	int rc = link_tmp(c, t, c->tmpfd, tmp);
	if (!rc && renameat(c->tmpfd, tmp, c->dfd, name) < 0) {
		rc = -errno;
		unlinkat(c->tmpfd, tmp, 0);
	}
	return rc;
}

int cas_tmp_commit(cas *c, struct cas_tmp *t, const char *hex,
                   const char *suffix, enum cas_kind kind, struct cas_syncs *later)
{
	char name[CAS_NAME_LEN];
	int rc = 0;

	cas_obj_name(name, hex, suffix);
	struct stat want;
	int same = object_state(c, name, hex, suffix,
	                        fstat(t->fd, &want) == 0 ? want.st_size : -1);
	if (same > 0 || (same == 0 && exists_as(c, hex, kind, suffix)))
		goto out;
	if (!later && fsync(t->fd) < 0) {
		rc = -errno;
		goto out;
	}
	if (same < 0) {
		rc = replace_damaged(c, t, name);
	} else {
		rc = link_tmp(c, t, c->dfd, name);
		if (rc == -ENOENT && !(rc = shard_make(c, hex))) /* its shard was removed */
			rc = link_tmp(c, t, c->dfd, name);
		if (rc == -EEXIST)
			rc = 0;  /* somebody stored the same content meanwhile */
	}
	if (!rc && later) { /* its syncfs comes with the batch's */
		later->fd = c->dfd;
		later->n++;
	}
out:
	cas_tmp_drop(c, t);
	return rc;
}

int cas_syncs_flush(struct cas_syncs *s)
{
	if (!s->n)
		return 0;
	s->n = 0;
	return syncfs(s->fd) < 0 ? -errno : 0;
}

/* ---- stat ------------------------------------------------------------ */

int cas_stat(cas *c, const char *hex, struct cas_stat *out)
{
	char name[CAS_NAME_LEN];
	struct zseek sk;
	struct stat st;
	int fd = -1, rc = 0;

	if (!cas_hex_valid(hex))
		return -EINVAL;
	memset(out, 0, sizeof *out);
	cas_obj_name(name, hex, "");
	if (fstatat(c->dfd, name, &st, 0) == 0) {
		out->kind = CAS_BLOB;
		out->size = out->stored_size = (uint64_t)st.st_size;
		goto out;
	}
	if (errno != ENOENT) {
		rc = -errno;
		goto out;
	}
	cas_obj_name(name, hex, ".zst");
	fd = openat(c->dfd, name, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (fstat(fd, &st) < 0) {
			rc = -errno;
			goto out;
		}
		rc = zseek_load(&sk, fd, (uint64_t)st.st_size);
		if (rc < 0)
			goto out;
		out->kind = CAS_BLOB;
		out->compressed = 1;
		out->size = zseek_size(&sk);
		out->stored_size = (uint64_t)st.st_size;
		zseek_free(&sk);
		goto out;
	}
	if (errno != ENOENT) {
		rc = -errno;
		goto out;
	}
	cas_obj_name(name, hex, ".tree");
	if (fstatat(c->dfd, name, &st, 0) < 0) {
		rc = -errno;
		goto out;
	}
	out->kind = CAS_TREE;
	out->size = out->stored_size = (uint64_t)st.st_size;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

