/*
 * cas.c - the content-addressed object store behind every artifact.
 *
 * Content is named by its SHA-256 and written once: a put streams the
 * source through the hash and into an anonymous temp file in <dir>/tmp
 * (compressing it into zstd seekable frames when a 1 MiB sample shows it
 * pays), fsyncs it and links it under its final name only when the hash
 * is known, so the source is read once and a crash or a full disk never
 * leaves a partial object behind. Readers serve raw objects straight from
 * the file (so FUSE can splice them) and decode only the frames a read
 * touches for compressed ones. Trees are plain text listings that name
 * their entries' objects; putting a directory walks it, keeping only the
 * symlinks that stay inside the output's root.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/openat2.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "flowyfs/cas.h"
#include "flowyfs/util.h"

#define CAS_LEVEL 3                 /* zstd level for .zst objects */
#define CAS_IOBUF (1024 * 1024)     /* read size when hashing / copying */
#define CAS_MAX_FRAME (64u << 20)   /* largest frame a reader accepts */
#define SKIP_MAGIC 0x184D2A5Eu      /* zstd skippable frame (seek table) */
#define SEEK_MAGIC 0x8F92EAB1u      /* seekable format footer */
#define SEEK_FOOTER 9               /* frames u32, descriptor u8, magic u32 */
#define NAME_MAX_LEN 80             /* "ab/<62 hex>.tree" and a NUL */

struct cas {
	char *dir;
	int dfd;      /* the store directory */
	int tmpfd;    /* <dir>/tmp */
};

/* ---- small helpers --------------------------------------------------- */

static const char hexdig[] = "0123456789abcdef";

static void to_hex(char out[CAS_HEX_LEN + 1], const unsigned char *md)
{
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hexdig[md[i] >> 4];
		out[2 * i + 1] = hexdig[md[i] & 15];
	}
	out[CAS_HEX_LEN] = '\0';
}

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = v >> 24;
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* "ab/cdef...<suffix>", relative to the store directory. */
static void obj_name(char out[NAME_MAX_LEN], const char *hex,
                     const char *suffix)
{
	snprintf(out, NAME_MAX_LEN, "%.2s/%s%s", hex, hex + 2, suffix);
}

static int write_all(int fd, const void *buf, size_t len)
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

/* Read up to len bytes at off, or from the current position when off is
 * CUR; fewer only at end of file. */
#define CUR UINT64_MAX

static ssize_t read_at(int fd, void *buf, size_t len, uint64_t off)
{
	unsigned char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = off == CUR ? read(fd, p + got, len - got)
		                       : pread(fd, p + got, len - got, (off_t)(off + got));
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

static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	return read_at(fd, buf, len, off);
}

static ssize_t read_full(int fd, void *buf, size_t len)
{
	return read_at(fd, buf, len, CUR);
}

/* A growable text buffer (tree text). */
struct sbuf {
	char *s;
	size_t len, cap;
};

static int sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -EINVAL;
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return 0;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *s = realloc(b->s, cap);
		if (!s)
			return -ENOMEM;
		b->s = s;
		b->cap = cap;
	}
}

/* ---- open / close ---------------------------------------------------- */

static int mkdir_p(const char *dir)
{
	char *p = strdup(dir);
	int rc = 0;

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			rc = -errno;
			goto out;
		}
		*s = c;
		if (c == '\0')
			break;
	}
out:
	free(p);
	return rc;
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
	c->dfd = c->tmpfd = -1;
	c->dir = strdup(dir);
	if (!c->dir) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = mkdir_p(dir);
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
	if (c->tmpfd >= 0)
		close(c->tmpfd);
	if (c->dfd >= 0)
		close(c->dfd);
	free(c->dir);
	free(c);
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

void cas_hash_buf(char out[CAS_HEX_LEN + 1], const void *buf, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	/* EVP_Digest only fails on allocation failure; treat as fatal-free. */
	if (!EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		memset(md, 0, sizeof md);
	to_hex(out, md);
}

/* SHA-256 of the file open at fd. The zeros of a hole are hashed from
 * memory, never read; stop (when set by another thread) gives up with
 * -ECANCELED between chunks. */
static int hash_fd(char out[CAS_HEX_LEN + 1], int fd, const int *stop)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	unsigned char *buf = NULL;
	struct stat st;
	uint64_t off = 0, data = 0;
	int rc = 0, sparse;
	ssize_t n = 0;

	if (fstat(fd, &st) < 0)
		return -errno;
	sparse = S_ISREG(st.st_mode) &&
	         (uint64_t)st.st_blocks * 512 < (uint64_t)st.st_size;
	ctx = EVP_MD_CTX_new();
	buf = malloc(CAS_IOBUF);
	if (!ctx || !buf || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		if (stop && __atomic_load_n(stop, __ATOMIC_RELAXED)) {
			rc = -ECANCELED;
			goto out;
		}
		if (!sparse) {
			n = read_full(fd, buf, CAS_IOBUF);
		} else {
			uint64_t want = (uint64_t)st.st_size - off;
			if (want > CAS_IOBUF)
				want = CAS_IOBUF;
			if (want && data < off) {
				off_t d = lseek(fd, (off_t)off, SEEK_DATA);
				if (d < 0 && errno != ENXIO) {
					rc = -errno;
					goto out;
				}
				data = d < 0 ? (uint64_t)st.st_size : (uint64_t)d;
			}
			if (want && data >= off + want) {
				memset(buf, 0, want);
				n = (ssize_t)want;
			} else {
				n = want ? pread_full(fd, buf, want, off) : 0;
			}
			if (n > 0)
				off += (uint64_t)n;
		}
		if (n <= 0)
			break;
		if (!EVP_DigestUpdate(ctx, buf, (size_t)n)) {
			rc = -EIO;
			goto out;
		}
		if (n < CAS_IOBUF)
			break;
	}
	if (n < 0) {
		rc = (int)n;
		goto out;
	}
	if (!EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32) {
		rc = -EIO;
		goto out;
	}
	to_hex(out, md);
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

struct tmpf {
	int fd;
	char name[64];  /* named temp in tmp/ (no O_TMPFILE), else "" */
};

static atomic_ulong tmp_seq;

static int tmp_create(cas *c, struct tmpf *t)
{
	t->name[0] = '\0';
	t->fd = openat(c->tmpfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0444);
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

static void tmp_drop(cas *c, struct tmpf *t)
{
	if (t->fd < 0)
		return;
	if (t->name[0])
		unlinkat(c->tmpfd, t->name, 0);
	close(t->fd);
	t->fd = -1;
	t->name[0] = '\0';
}

static int obj_exists(cas *c, const char *hex, enum cas_kind kind)
{
	static const char *const blob[] = { "", ".zst" };
	char name[NAME_MAX_LEN];
	struct stat st;

	if (kind == CAS_TREE) {
		obj_name(name, hex, ".tree");
		return fstatat(c->dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	}
	for (size_t i = 0; i < sizeof blob / sizeof *blob; i++) {
		obj_name(name, hex, blob[i]);
		if (fstatat(c->dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			return 1;
	}
	return 0;
}

/* Make the shard directory "ab"; a new one is made durable in dir. */
static int shard_make(cas *c, const char *hex)
{
	char shard[3] = { hex[0], hex[1], '\0' };

	if (mkdirat(c->dfd, shard, 0755) == 0)
		return fsync(c->dfd) < 0 ? -errno : 0;
	return errno == EEXIST ? 0 : -errno;
}

/* Give the finished temp its final name: fsync it, then link it in without
 * ever replacing (an existing object with this name wins). The temp is
 * gone afterwards whatever happens. */
static int tmp_commit(cas *c, struct tmpf *t, const char *hex,
                      const char *suffix, enum cas_kind kind)
{
	char name[NAME_MAX_LEN], proc[64];
	int rc = 0;

	if (obj_exists(c, hex, kind))
		goto out;
	if (fsync(t->fd) < 0) {
		rc = -errno;
		goto out;
	}
	rc = shard_make(c, hex);
	if (rc < 0)
		goto out;
	obj_name(name, hex, suffix);
	if (t->name[0]) {
		if (linkat(c->tmpfd, t->name, c->dfd, name, 0) < 0)
			rc = -errno;
	} else {
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", t->fd);
		if (linkat(AT_FDCWD, proc, c->dfd, name, AT_SYMLINK_FOLLOW) < 0) {
			rc = -errno;
			/* No /proc: AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH. */
			if (rc == -ENOENT &&
			    linkat(t->fd, "", c->dfd, name, AT_EMPTY_PATH) == 0)
				rc = 0;
		}
	}
	if (rc == -EEXIST)
		rc = 0;  /* somebody stored the same content meanwhile */
out:
	tmp_drop(c, t);
	return rc;
}

/* ---- putting blobs ---------------------------------------------------- */

/* Where a put reads from: a file descriptor or memory, in chunks of
 * CAS_FRAME bytes (always full but for the last one). */
struct src {
	int fd;                    /* >= 0: read from here */
	const unsigned char *mem;  /* else this memory */
	size_t len, pos;
	int sparse;                /* fd has holes: chunks inside one are not read */
	uint64_t off, size;        /* sparse fd: next offset, file size */
	uint64_t data;             /* sparse fd: next data at or after off */
	const int *stop;           /* set (by another thread): give up */
};

/* The next chunk: read into buf (fd sources) or pointed at in memory.
 * *hole is set when the chunk lies wholly in a hole of a sparse file
 * (its bytes are zeros, and a raw object need not write them). */
static ssize_t src_next(struct src *s, unsigned char *buf,
                        const unsigned char **p, int *hole)
{
	*hole = 0;
	if (s->fd >= 0 && s->sparse) {
		uint64_t n = s->size - s->off;
		ssize_t got;
		if (s->off >= s->size)
			return 0;
		if (n > CAS_FRAME)
			n = CAS_FRAME;
		if (s->data < s->off) {
			off_t d = lseek(s->fd, (off_t)s->off, SEEK_DATA);
			if (d < 0 && errno != ENXIO)
				return -errno;
			s->data = d < 0 ? s->size : (uint64_t)d;
		}
		*p = buf;
		if (s->data >= s->off + n) {
			memset(buf, 0, n);
			*hole = 1;
			got = (ssize_t)n;
		} else {
			got = pread_full(s->fd, buf, n, s->off);
			if (got < 0)
				return got;
		}
		s->off += (uint64_t)got;
		return got;
	}
	if (s->fd >= 0) {
		*p = buf;
		return read_full(s->fd, buf, CAS_FRAME);
	}
	size_t n = s->len - s->pos;
	if (n > CAS_FRAME)
		n = CAS_FRAME;
	*p = s->mem + s->pos;
	s->pos += n;
	return (ssize_t)n;
}

/* The seek table frame: one (compressed, decompressed) size pair per
 * frame, no checksums, then the footer. */
static int write_seek_table(int fd, const uint32_t *pairs, uint32_t nframes)
{
	size_t len = 8 + (size_t)nframes * 8 + SEEK_FOOTER;
	unsigned char *b = malloc(len), *p;
	int rc;

	if (!b)
		return -ENOMEM;
	put_le32(b, SKIP_MAGIC);
	put_le32(b + 4, (uint32_t)(len - 8));
	p = b + 8;
	for (uint32_t i = 0; i < 2 * nframes; i++, p += 4)
		put_le32(p, pairs[i]);
	put_le32(p, nframes);
	p[4] = 0;
	put_le32(p + 5, SEEK_MAGIC);
	rc = write_all(fd, b, len);
	free(b);
	return rc;
}

/*
 * A put works in batches of up to PIPE_BATCH chunks. The calling thread
 * reads a batch and hashes it while helper threads (when the content is
 * big enough to be worth them) do the rest: compress each chunk into a
 * frame, or write the raw batch out and start its writeback. The caller
 * joins in on what is left, waits for the batch, then writes the
 * compressed frames in order. SHA-256 cannot be split, so it is the
 * caller's alone.
 */
#define PIPE_BATCH 8
#define PIPE_THREADS 4  /* helpers at most */

struct slot {
	const unsigned char *in;  /* the chunk */
	size_t len;
	unsigned char *buf;       /* CAS_FRAME bytes to read into (fd sources) */
	unsigned char *z;         /* its compressed frame */
	size_t zlen;
	int hole;                 /* zeros of a hole: raw objects skip them */
};

struct pipeline {
	pthread_mutex_t mu;
	pthread_cond_t work;      /* a task is up for grabs, or quit */
	pthread_cond_t idle;      /* pending reached 0 */
	int ntasks, next, pending, err, quit;
	int zst, fd;
	int hashed;               /* content already hashed (all in slot 0) */
	int more;                 /* not the last batch */
	uint64_t woff;            /* raw: bytes written so far */
	struct slot slot[PIPE_BATCH];
	int nslot;
	pthread_t th[PIPE_THREADS];
	int nth;
};

static int cctx_get(ZSTD_CCtx **z)
{
	if (*z)
		return 0;
	*z = ZSTD_createCCtx();
	if (!*z)
		return -ENOMEM;
	ZSTD_CCtx_setParameter(*z, ZSTD_c_compressionLevel, CAS_LEVEL);
	ZSTD_CCtx_setParameter(*z, ZSTD_c_checksumFlag, 1);
	return 0;
}

/* Hand the written range to writeback now, so the final fsync has little
 * left to wait for (best effort: not every file system does this). */
static void start_writeback(int fd, uint64_t off, size_t len)
{
	sync_file_range(fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
}

/* Task t of the batch: compress chunk t, or (raw) write the batch. */
static int pipe_task(struct pipeline *p, int t, ZSTD_CCtx **z)
{
	struct slot *s = &p->slot[t];
	int rc;

	if (!p->zst) {
		for (int i = 0; i < p->nslot; i++) {
			if (p->slot[i].hole) {
				if (lseek(p->fd, (off_t)p->slot[i].len, SEEK_CUR) < 0)
					return -errno;
				p->woff += p->slot[i].len;
				continue;
			}
			rc = write_all(p->fd, p->slot[i].in, p->slot[i].len);
			if (rc < 0)
				return rc;
			if (p->more)
				start_writeback(p->fd, p->woff, p->slot[i].len);
			p->woff += p->slot[i].len;
		}
		return 0;
	}
	rc = cctx_get(z);
	if (rc < 0)
		return rc;
	s->zlen = ZSTD_compress2(*z, s->z, ZSTD_compressBound(CAS_FRAME), s->in,
	                         s->len);
	return ZSTD_isError(s->zlen) ? -EIO : 0;
}

/* Claim tasks until none is left; called and returns with p->mu held. */
static void pipe_claim(struct pipeline *p, ZSTD_CCtx **z)
{
	while (p->next < p->ntasks) {
		int t = p->next++, rc;
		pthread_mutex_unlock(&p->mu);
		rc = pipe_task(p, t, z);
		pthread_mutex_lock(&p->mu);
		if (rc < 0 && !p->err)
			p->err = rc;
		if (--p->pending == 0)
			pthread_cond_broadcast(&p->idle);
	}
}

static void *pipe_worker(void *arg)
{
	struct pipeline *p = arg;
	ZSTD_CCtx *z = NULL;

	pthread_mutex_lock(&p->mu);
	while (!p->quit) {
		pipe_claim(p, &z);
		if (!p->quit)
			pthread_cond_wait(&p->work, &p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	ZSTD_freeCCtx(z);
	return NULL;
}

/* Start helpers: one to write raw content, up to PIPE_THREADS to compress
 * (never more than the other CPUs). Fewer (even none) is fine. */
static void pipe_start(struct pipeline *p)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int want = p->zst ? (int)(cpus > 1 ? cpus - 1 : 0) : 1;

	if (want > PIPE_THREADS)
		want = PIPE_THREADS;
	while (p->nth < want &&
	       pthread_create(&p->th[p->nth], NULL, pipe_worker, p) == 0)
		p->nth++;
}

static void pipe_stop(struct pipeline *p)
{
	pthread_mutex_lock(&p->mu);
	p->quit = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nth; i++)
		pthread_join(p->th[i], NULL);
	p->nth = 0;
}

/* Run the batch's tasks from first on (helpers and caller), hashing the
 * batch meanwhile; returns the first error. */
static int pipe_batch(struct pipeline *p, int first, EVP_MD_CTX *md,
                      ZSTD_CCtx **z)
{
	int ok = 1, rc;

	pthread_mutex_lock(&p->mu);
	p->ntasks = p->zst ? p->nslot : 1;
	p->next = first;
	p->pending = p->ntasks - first;
	p->err = 0;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);

	for (int i = 0; i < p->nslot && !p->hashed; i++)
		ok &= EVP_DigestUpdate(md, p->slot[i].in, p->slot[i].len);

	pthread_mutex_lock(&p->mu);
	pipe_claim(p, z);
	while (p->pending > 0)
		pthread_cond_wait(&p->idle, &p->mu);
	rc = p->err;
	pthread_mutex_unlock(&p->mu);
	return rc < 0 ? rc : ok ? 0 : -EIO;
}

/* Append the batch's frames to the object and their sizes to *pairs. */
static int pipe_write_frames(struct pipeline *p, uint32_t **pairs,
                             size_t *npairs, size_t *cap)
{
	uint64_t start = p->woff;
	int rc;

	for (int i = 0; i < p->nslot; i++) {
		if (*npairs == *cap) {
			size_t nc = *cap ? *cap * 2 : 64;
			uint32_t *np;
			if (*npairs / 2 >= UINT32_MAX)
				return -EFBIG;  /* the seek table counts in u32 */
			np = realloc(*pairs, nc * sizeof *np);
			if (!np)
				return -ENOMEM;
			*pairs = np;
			*cap = nc;
		}
		(*pairs)[(*npairs)++] = (uint32_t)p->slot[i].zlen;
		(*pairs)[(*npairs)++] = (uint32_t)p->slot[i].len;
		rc = write_all(p->fd, p->slot[i].z, p->slot[i].zlen);
		if (rc < 0)
			return rc;
		p->woff += p->slot[i].zlen;
	}
	if (p->more)
		start_writeback(p->fd, start, (size_t)(p->woff - start));
	return 0;
}

/* Buffers for slot i: to read into (fd sources) and to compress into. */
static int slot_alloc(struct slot *s, int need_buf, int zst)
{
	if (need_buf && !s->buf && !(s->buf = malloc(CAS_FRAME)))
		return -ENOMEM;
	if (zst && !s->z && !(s->z = malloc(ZSTD_compressBound(CAS_FRAME))))
		return -ENOMEM;
	return 0;
}

/* Stream s through SHA-256 into a temp object and publish it. Blobs whose
 * first chunk compresses below 90% become .zst (seekable, that chunk's
 * frame is reused), others raw; trees are raw text with the .tree suffix. */
static int put_stream(cas *c, char out[CAS_HEX_LEN + 1], struct src *s,
                      enum cas_kind kind, uint64_t *size_out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct pipeline *p = NULL;
	EVP_MD_CTX *ctx = NULL;
	ZSTD_CCtx *z = NULL;
	uint32_t *pairs = NULL;
	size_t npairs = 0, cappairs = 0;
	struct tmpf t = { .fd = -1 };
	uint64_t total = 0;
	int first = 1, eof = 0, inited = 0, rc;
	ssize_t n;

	p = calloc(1, sizeof *p);
	ctx = EVP_MD_CTX_new();
	if (!p || !ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->idle, NULL);
	inited = 1;

	/* The first chunk is the sample. */
	rc = slot_alloc(&p->slot[0], s->fd >= 0, 0);
	if (rc < 0)
		goto out;
	n = src_next(s, p->slot[0].buf, &p->slot[0].in, &p->slot[0].hole);
	if (n < 0) {
		rc = (int)n;
		goto out;
	}
	p->slot[0].len = (size_t)n;
	p->nslot = n > 0;
	eof = n < CAS_FRAME;
	if (n > 0 && kind == CAS_BLOB && !s->sparse) {
		struct slot *s0 = &p->slot[0];
		rc = cctx_get(&z);
		if (rc < 0 || (rc = slot_alloc(s0, 0, 1)) < 0)
			goto out;
		s0->zlen = ZSTD_compress2(z, s0->z, ZSTD_compressBound(CAS_FRAME),
		                          s0->in, s0->len);
		p->zst = !ZSTD_isError(s0->zlen) && s0->zlen * 10 < s0->len * 9;
	}
	if (eof) {
		/* All the content is in hand: name it first, so that storing it
		 * again costs no temp file at all. */
		if (!EVP_DigestUpdate(ctx, p->slot[0].in, p->slot[0].len) ||
		    !EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32) {
			rc = -EIO;
			goto out;
		}
		to_hex(out, md);
		p->hashed = 1;
		if (obj_exists(c, out, kind)) {
			if (size_out)
				*size_out = p->slot[0].len;
			rc = 0;
			goto out;
		}
	}
	rc = tmp_create(c, &t);
	if (rc < 0)
		goto out;
	p->fd = t.fd;
	if (!eof)
		pipe_start(p);

	for (;;) {
		if (s->stop && __atomic_load_n(s->stop, __ATOMIC_RELAXED)) {
			rc = -ECANCELED;
			goto out;
		}
		while (!eof && p->nslot < PIPE_BATCH) {
			struct slot *sl = &p->slot[p->nslot];
			rc = slot_alloc(sl, s->fd >= 0, p->zst);
			if (rc < 0)
				goto out;
			n = src_next(s, sl->buf, &sl->in, &sl->hole);
			if (n < 0) {
				rc = (int)n;
				goto out;
			}
			sl->len = (size_t)n;
			eof = n < CAS_FRAME;
			p->nslot += n > 0;
		}
		if (p->nslot == 0)
			break;
		p->more = !eof;
		rc = pipe_batch(p, first && p->zst, ctx, &z);
		if (rc < 0)
			goto out;
		if (p->zst) {
			rc = pipe_write_frames(p, &pairs, &npairs, &cappairs);
			if (rc < 0)
				goto out;
		}
		for (int i = 0; i < p->nslot; i++)
			total += p->slot[i].len;
		first = 0;
		p->nslot = 0;
	}
	if (p->zst) {
		rc = write_seek_table(t.fd, pairs, (uint32_t)(npairs / 2));
		if (rc < 0)
			goto out;
	} else if (s->sparse && ftruncate(t.fd, (off_t)total) < 0) {
		rc = -errno;  /* a trailing hole was skipped, not written */
		goto out;
	}
	if (!p->hashed) {
		if (!EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32) {
			rc = -EIO;
			goto out;
		}
		to_hex(out, md);
	}
	rc = tmp_commit(c, &t, out,
	                kind == CAS_TREE ? ".tree" : p->zst ? ".zst" : "", kind);
	if (rc == 0 && size_out)
		*size_out = total;
out:
	if (inited)
		pipe_stop(p);
	free(pairs);
	tmp_drop(c, &t);
	for (int i = PIPE_BATCH - 1; p && i >= 0; i--) {
		free(p->slot[i].z);
		free(p->slot[i].buf);
	}
	ZSTD_freeCCtx(z);
	if (inited) {
		pthread_cond_destroy(&p->idle);
		pthread_cond_destroy(&p->work);
		pthread_mutex_destroy(&p->mu);
	}
	EVP_MD_CTX_free(ctx);
	free(p);
	return rc;
}

int cas_put_buf(cas *c, char out[CAS_HEX_LEN + 1], const void *buf, size_t len)
{
	struct src s = { .fd = -1, .mem = buf, .len = len };

	if (!buf && len)
		return -EINVAL;
	return put_stream(c, out, &s, CAS_BLOB, NULL);
}

/* Store the regular file open at fd (st: its fstat); *size_out gets the
 * bytes stored. A file with holes is stored raw, holes kept. */
static int put_fd(cas *c, char out[CAS_HEX_LEN + 1], int fd, const struct stat *st,
                  const struct cas_put_opts *o, uint64_t *size_out)
{
	struct src s = { .fd = fd, .stop = o ? o->stop : NULL };

	if ((uint64_t)st->st_blocks * 512 < (uint64_t)st->st_size) {
		s.sparse = 1;
		s.size = (uint64_t)st->st_size;
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* advice only */
	return put_stream(c, out, &s, CAS_BLOB, size_out);
}

/* Open path (not following a final symlink, not blocking on a fifo) and
 * make sure it is a regular file. */
static int open_regular(const char *path, int nofollow, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK |
	              (nofollow ? O_NOFOLLOW : 0));
	int rc = 0;

	if (fd < 0)
		return errno == ELOOP && nofollow ? -EINVAL : -errno;
	if (fstat(fd, st) < 0)
		rc = -errno;
	else if (!S_ISREG(st->st_mode))
		rc = S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

int cas_put_file(cas *c, char out[CAS_HEX_LEN + 1], const char *path)
{
	struct stat st;
	int fd, rc;

	memset(&st, 0, sizeof st);
	fd = open_regular(path, 0, &st);
	if (fd < 0)
		return fd;
	rc = put_fd(c, out, fd, &st, NULL, NULL);
	close(fd);
	return rc;
}

/* ---- stat and readers ------------------------------------------------- */

/* The seek table of a .zst object: frame i covers compressed bytes
 * [coff[i], coff[i+1]) and content bytes [doff[i], doff[i+1]). */
struct seek {
	uint32_t n;
	uint64_t *coff, *doff;
	size_t max_d, max_c;
};

static void seek_free(struct seek *sk)
{
	free(sk->coff);
	free(sk->doff);
	sk->coff = sk->doff = NULL;
}

static int seek_load(int fd, uint64_t fsize, struct seek *sk)
{
	unsigned char foot[SEEK_FOOTER], *tab = NULL;
	uint64_t tlen, start;
	size_t esz;
	ssize_t got;
	int rc = 0;

	memset(sk, 0, sizeof *sk);
	if (fsize < 8 + SEEK_FOOTER)
		return -EIO;
	got = pread_full(fd, foot, SEEK_FOOTER, fsize - SEEK_FOOTER);
	if (got != SEEK_FOOTER)
		return got < 0 ? (int)got : -EIO;
	if (get_le32(foot + 5) != SEEK_MAGIC || (foot[4] & 0x7c))
		return -EIO;
	sk->n = get_le32(foot);
	esz = (foot[4] & 0x80) ? 12 : 8;
	tlen = 8 + (uint64_t)sk->n * esz + SEEK_FOOTER;
	if (tlen > fsize || tlen - 8 > UINT32_MAX)
		return -EIO;
	start = fsize - tlen;
	tab = malloc(tlen - SEEK_FOOTER);
	sk->coff = malloc(((size_t)sk->n + 1) * sizeof *sk->coff);
	sk->doff = malloc(((size_t)sk->n + 1) * sizeof *sk->doff);
	if (!tab || !sk->coff || !sk->doff) {
		rc = -ENOMEM;
		goto out;
	}
	got = pread_full(fd, tab, tlen - SEEK_FOOTER, start);
	if (got != (ssize_t)(tlen - SEEK_FOOTER)) {
		rc = got < 0 ? (int)got : -EIO;
		goto out;
	}
	if (get_le32(tab) != SKIP_MAGIC || get_le32(tab + 4) != tlen - 8) {
		rc = -EIO;
		goto out;
	}
	sk->coff[0] = sk->doff[0] = 0;
	for (uint32_t i = 0; i < sk->n; i++) {
		uint32_t cl = get_le32(tab + 8 + i * esz);
		uint32_t dl = get_le32(tab + 8 + i * esz + 4);
		if (dl > CAS_MAX_FRAME || cl > 2 * CAS_MAX_FRAME) {
			rc = -EIO;
			goto out;
		}
		sk->coff[i + 1] = sk->coff[i] + cl;
		sk->doff[i + 1] = sk->doff[i] + dl;
		if (dl > sk->max_d)
			sk->max_d = dl;
		if (cl > sk->max_c)
			sk->max_c = cl;
	}
	if (sk->coff[sk->n] != start)
		rc = -EIO;
out:
	free(tab);
	if (rc < 0)
		seek_free(sk);
	return rc;
}

int cas_stat(cas *c, const char *hex, struct cas_stat *out)
{
	char name[NAME_MAX_LEN];
	struct seek sk;
	struct stat st;
	int fd = -1, rc = 0;

	if (!cas_hex_valid(hex))
		return -EINVAL;
	memset(out, 0, sizeof *out);
	obj_name(name, hex, "");
	if (fstatat(c->dfd, name, &st, 0) == 0) {
		out->kind = CAS_BLOB;
		out->size = out->stored_size = (uint64_t)st.st_size;
		goto out;
	}
	if (errno != ENOENT) {
		rc = -errno;
		goto out;
	}
	obj_name(name, hex, ".zst");
	fd = openat(c->dfd, name, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (fstat(fd, &st) < 0) {
			rc = -errno;
			goto out;
		}
		rc = seek_load(fd, (uint64_t)st.st_size, &sk);
		if (rc < 0)
			goto out;
		out->kind = CAS_BLOB;
		out->compressed = 1;
		out->size = sk.doff[sk.n];
		out->stored_size = (uint64_t)st.st_size;
		seek_free(&sk);
		goto out;
	}
	if (errno != ENOENT) {
		rc = -errno;
		goto out;
	}
	obj_name(name, hex, ".tree");
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

struct cas_reader {
	int fd;
	int compressed;
	uint64_t size;
	struct seek sk;
	pthread_mutex_t lock;   /* guards the cached frame */
	int64_t cached;         /* frame held in cache, -1 when none */
	unsigned char *cache;
	pthread_mutex_t dlock;  /* guards the shared decoder below */
	ZSTD_DCtx *dctx;
	unsigned char *cbuf;    /* one compressed frame */
	unsigned char *spare;   /* decode target, swapped into cache */
};

int cas_reader_open(cas *c, const char *hex, cas_reader **out)
{
	char name[NAME_MAX_LEN];
	cas_reader *r = NULL;
	struct stat st;
	int rc;

	*out = NULL;
	if (!cas_hex_valid(hex))
		return -EINVAL;
	r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	r->cached = -1;
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->dlock, NULL);
	obj_name(name, hex, "");
	r->fd = openat(c->dfd, name, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0 && errno == ENOENT) {
		obj_name(name, hex, ".zst");
		r->fd = openat(c->dfd, name, O_RDONLY | O_CLOEXEC);
		r->compressed = 1;
	}
	if (r->fd < 0 || fstat(r->fd, &st) < 0) {
		rc = -errno;
		goto fail;
	}
	r->size = (uint64_t)st.st_size;
	if (r->compressed) {
		rc = seek_load(r->fd, (uint64_t)st.st_size, &r->sk);
		if (rc < 0)
			goto fail;
		r->size = r->sk.doff[r->sk.n];
	}
	*out = r;
	return 0;
fail:
	cas_reader_close(r);
	return rc;
}

int cas_reader_fd(const cas_reader *r)
{
	return r->compressed ? -1 : r->fd;
}

uint64_t cas_reader_size(const cas_reader *r)
{
	return r->size;
}

void cas_reader_close(cas_reader *r)
{
	if (!r)
		return;
	ZSTD_freeDCtx(r->dctx);
	free(r->spare);
	free(r->cbuf);
	free(r->cache);
	pthread_mutex_destroy(&r->dlock);
	pthread_mutex_destroy(&r->lock);
	seek_free(&r->sk);
	if (r->fd >= 0)
		close(r->fd);
	free(r);
}

/* Decode frame i into dst (room for the whole frame). */
static int frame_decode(cas_reader *r, uint32_t i, ZSTD_DCtx *d,
                        unsigned char *cbuf, unsigned char *dst)
{
	size_t cl = r->sk.coff[i + 1] - r->sk.coff[i];
	size_t dl = r->sk.doff[i + 1] - r->sk.doff[i];
	ssize_t n = pread_full(r->fd, cbuf, cl, r->sk.coff[i]);
	size_t got;

	if (n < 0)
		return (int)n;
	if ((size_t)n != cl)
		return -EIO;
	got = ZSTD_decompressDCtx(d, dst, dl, cbuf, cl);
	return ZSTD_isError(got) || got != dl ? -EIO : 0;
}

/* Decode frame i with the reader's own decoder (r->dlock held): straight
 * into dst for a whole frame, else into the spare buffer, which then
 * becomes the cached frame. */
static int frame_read_shared(cas_reader *r, uint32_t i, unsigned char *dst,
                             size_t in, size_t n, int whole)
{
	unsigned char *old;
	int rc;

	if (!r->dctx)
		r->dctx = ZSTD_createDCtx();
	if (!r->cbuf)
		r->cbuf = malloc(r->sk.max_c);
	if (!r->spare && !whole)
		r->spare = malloc(r->sk.max_d);
	if (!r->dctx || !r->cbuf || (!whole && !r->spare))
		return -ENOMEM;
	if (whole)
		return frame_decode(r, i, r->dctx, r->cbuf, dst);
	rc = frame_decode(r, i, r->dctx, r->cbuf, r->spare);
	if (rc < 0)
		return rc;
	memcpy(dst, r->spare + in, n);
	pthread_mutex_lock(&r->lock);
	old = r->cache;
	r->cache = r->spare;
	r->cached = i;
	r->spare = old;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* Decode frame i with buffers of our own, when another thread holds the
 * reader's decoder: better than waiting for it. */
static int frame_read_private(cas_reader *r, uint32_t i, unsigned char *dst,
                              size_t in, size_t n, int whole)
{
	size_t dl = r->sk.doff[i + 1] - r->sk.doff[i];
	ZSTD_DCtx *d = NULL;
	unsigned char *cbuf = NULL, *out = NULL;
	int rc;

	d = ZSTD_createDCtx();
	cbuf = malloc(r->sk.max_c);
	out = whole ? NULL : malloc(dl);
	if (!d || !cbuf || (!whole && !out)) {
		rc = -ENOMEM;
		goto out;
	}
	rc = frame_decode(r, i, d, cbuf, whole ? dst : out);
	if (rc == 0 && !whole)
		memcpy(dst, out + in, n);
out:
	free(out);
	free(cbuf);
	ZSTD_freeDCtx(d);
	return rc;
}

/* Copy n bytes at offset in of frame i to dst: from the cache when it
 * holds frame i, else by decoding the frame. */
static int frame_read(cas_reader *r, uint32_t i, unsigned char *dst,
                      size_t in, size_t n)
{
	int whole = in == 0 && n == r->sk.doff[i + 1] - r->sk.doff[i];
	int rc;

	pthread_mutex_lock(&r->lock);
	if (r->cached == (int64_t)i) {
		memcpy(dst, r->cache + in, n);
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	pthread_mutex_unlock(&r->lock);
	if (pthread_mutex_trylock(&r->dlock) != 0)
		return frame_read_private(r, i, dst, in, n, whole);
	rc = frame_read_shared(r, i, dst, in, n, whole);
	pthread_mutex_unlock(&r->dlock);
	return rc;
}

ssize_t cas_reader_pread(cas_reader *r, void *buf, size_t len, uint64_t off)
{
	unsigned char *dst = buf;
	size_t done = 0;

	if (off >= r->size)
		return 0;
	if (len > r->size - off)
		len = (size_t)(r->size - off);
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	if (!r->compressed)
		return pread_full(r->fd, buf, len, off);
	while (done < len) {
		uint64_t pos = off + done;
		/* The last frame starting at or before pos: never an empty one,
		 * since the next frame would then start there too. */
		uint32_t lo = 0, hi = r->sk.n;
		while (hi - lo > 1) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (r->sk.doff[mid] <= pos)
				lo = mid;
			else
				hi = mid;
		}
		size_t in = (size_t)(pos - r->sk.doff[lo]);
		size_t n = (size_t)(r->sk.doff[lo + 1] - pos);
		if (n > len - done)
			n = len - done;
		int rc = frame_read(r, lo, dst + done, in, n);
		if (rc < 0)
			return done ? (ssize_t)done : rc;
		done += n;
	}
	return (ssize_t)done;
}

/* ---- trees ------------------------------------------------------------ */

/* What cas_tree_read hands out: the entries' names point into text. */
struct tree_impl {
	struct cas_tree pub;
	char *text;
};

static int read_object(cas *c, const char *hex, const char *suffix,
                       char **text, size_t *len)
{
	char name[NAME_MAX_LEN];
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	int fd, rc = 0;

	obj_name(name, hex, suffix);
	fd = openat(c->dfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if ((uint64_t)st.st_size >= SIZE_MAX / 2) {
		rc = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	n = pread_full(fd, buf, (size_t)st.st_size, 0);
	if (n != st.st_size) {
		rc = n < 0 ? (int)n : -EIO;
		goto out;
	}
	buf[n] = '\0';
	*text = buf;
	*len = (size_t)n;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

/* Parse "<type> <mode> <hex> <size>\t<name>" (line is NUL-terminated in
 * place of its newline). */
static int parse_entry(char *line, struct cas_entry *e)
{
	char *p = line;
	uint64_t v;

	if ((p[0] != 'f' && p[0] != 'd' && p[0] != 'l') || p[1] != ' ')
		return -EIO;
	e->type = p[0];
	p += 2;
	v = 0;
	for (int k = 0; ; k++, p++) {
		if (*p == ' ' && k > 0)
			break;
		if (*p < '0' || *p > '7' || k >= 6)
			return -EIO;
		v = v * 8 + (uint64_t)(*p - '0');
	}
	if (v > 07777)
		return -EIO;
	e->mode = (unsigned)v;
	p++;
	if (strnlen(p, CAS_HEX_LEN + 1) < CAS_HEX_LEN + 1)
		return -EIO;
	memcpy(e->hex, p, CAS_HEX_LEN);
	e->hex[CAS_HEX_LEN] = '\0';
	if (!cas_hex_valid(e->hex) || p[CAS_HEX_LEN] != ' ')
		return -EIO;
	p += CAS_HEX_LEN + 1;
	v = 0;
	for (int k = 0; ; k++, p++) {
		if (*p == '\t' && k > 0)
			break;
		if (*p < '0' || *p > '9' || k >= 20 ||
		    v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -EIO;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	e->size = v;
	e->name = p + 1;
	if (!*e->name || strchr(e->name, '/') || strchr(e->name, '\t') ||
	    !strcmp(e->name, ".") || !strcmp(e->name, ".."))
		return -EIO;
	return 0;
}

int cas_tree_read(cas *c, const char *hex, struct cas_tree **out)
{
	struct tree_impl *t = NULL;
	char check[CAS_HEX_LEN + 1];
	size_t len = 0, n = 0;
	char *p, *end;
	int rc;

	*out = NULL;
	if (!cas_hex_valid(hex))
		return -EINVAL;
	t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	rc = read_object(c, hex, ".tree", &t->text, &len);
	if (rc < 0)
		goto fail;
	cas_hash_buf(check, t->text, len);
	if (strcmp(check, hex) != 0 || memchr(t->text, '\0', len) ||
	    (len && t->text[len - 1] != '\n')) {
		rc = -EIO;
		goto fail;
	}
	for (p = t->text; (p = memchr(p, '\n', len - (size_t)(p - t->text))); p++)
		n++;
	t->pub.entries = calloc(n ? n : 1, sizeof *t->pub.entries);
	if (!t->pub.entries) {
		rc = -ENOMEM;
		goto fail;
	}
	end = t->text + len;
	for (p = t->text; p < end; t->pub.n++) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		struct cas_entry *e = &t->pub.entries[t->pub.n];
		*nl = '\0';
		rc = parse_entry(p, e);
		if (rc < 0)
			goto fail;
		if (t->pub.n && strcmp(e[-1].name, e->name) >= 0) {
			rc = -EIO;  /* unsorted or duplicate */
			goto fail;
		}
		p = nl + 1;
	}
	*out = &t->pub;
	return 0;
fail:
	cas_tree_free(&t->pub);
	return rc;
}

static int entry_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct cas_entry *)elem)->name);
}

int cas_tree_put(cas *c, char out[CAS_HEX_LEN + 1], const struct cas_entry *e,
                 size_t n)
{
	struct sbuf text = {0};
	int rc = 0;

	for (size_t i = 0; i < n && !rc; i++) {
		if (!e[i].name[0] || strchr(e[i].name, '/') || strchr(e[i].name, '\t') ||
		    strchr(e[i].name, '\n') || !strcmp(e[i].name, ".") ||
		    !strcmp(e[i].name, "..") || (i && strcmp(e[i - 1].name, e[i].name) >= 0))
			rc = -EINVAL;
		else
			rc = sbuf_printf(&text, "%c %04o %s %llu\t%s\n", e[i].type, e[i].mode,
			                 e[i].hex, (unsigned long long)e[i].size, e[i].name);
	}
	if (!rc) {
		struct src s = { .fd = -1, .mem = (const unsigned char *)text.s,
		                 .len = text.len };
		rc = put_stream(c, out, &s, CAS_TREE, NULL);
	}
	free(text.s);
	return rc;
}

const struct cas_entry *cas_tree_find(const struct cas_tree *t,
                                      const char *name)
{
	if (!t || !name || !t->n)
		return NULL;
	return bsearch(name, t->entries, t->n, sizeof *t->entries, entry_cmp);
}

void cas_tree_free(struct cas_tree *t)
{
	struct tree_impl *ti = (struct tree_impl *)t;

	if (!t)
		return;
	free(ti->pub.entries);
	free(ti->text);
	free(ti);
}

/* ---- putting paths ---------------------------------------------------- */

/*
 * A walk never follows a path twice: every entry is reached from the fd of
 * its directory (fstatat/openat with O_NOFOLLOW), so nothing the step
 * swaps in meanwhile can lead it out of the root, and a symlink is kept
 * only when openat2(RESOLVE_BENEATH) from the root's fd agrees that it
 * resolves inside (or, dangling, stays inside lexically). Sources are
 * opened with the reader's file-system ids when given, so a hard link to a
 * file that user could not read is refused.
 */
struct walk {
	cas *c;
	int rootfd;
	const char *disp;             /* the root as messages name it */
	const struct cas_put_opts *o;
	char **err;
};

static int walk_err(struct walk *w, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Record the first error message (when the caller wants one). */
static int walk_err(struct walk *w, int rc, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	if (!w->err || *w->err)
		return rc;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	*w->err = msg;
	return rc;
}

static int stopped(const struct walk *w)
{
	return w->o && w->o->stop && __atomic_load_n(w->o->stop, __ATOMIC_RELAXED);
}

/* openat as the reader (file-system ids only, this thread only). */
static int open_as(const struct walk *w, int dfd, const char *name, int flags)
{
	int as = w->o && w->o->as_user && geteuid() == 0, fd, e;

	if (as) {
		setfsgid(w->o->gid);
		setfsuid(w->o->uid);
	}
	fd = openat(dfd, name, flags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	e = errno;
	if (as) {
		setfsuid(0);
		setfsgid(0);
	}
	errno = e;
	return fd;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Store the symlink name in dfd (rel is its path below the root). */
static int walk_link(struct walk *w, int dfd, const char *name, const char *rel,
                     char out[CAS_HEX_LEN + 1], uint64_t *size)
{
	char target[PATH_MAX], *full = NULL;
	int d = 0, rc = 0;
	ssize_t n;

	n = readlinkat(dfd, name, target, sizeof target);
	if (n < 0)
		return walk_err(w, -errno, "%s/%s: %s", w->disp, rel, strerror(errno));
	if ((size_t)n >= sizeof target)
		return walk_err(w, -ENAMETOOLONG, "%s/%s: symlink target too long",
		                w->disp, rel);
	target[n] = '\0';
	if (target[0] == '/')
		return walk_err(w, -EXDEV, "%s/%s: symlink points outside %s/ (-> %s): "
		                "only relative links inside %s/ are kept",
		                w->disp, rel, w->disp, target, w->disp);
	/* Lexically: count the link's own directories, then walk the target. */
	for (const char *p = rel; *p; p++)
		d += *p == '/';
	for (const char *p = target; *p && d >= 0; ) {
		size_t len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.')
			d--;
		else if (len && !(len == 1 && p[0] == '.'))
			d++;
		p += len;
		p += *p == '/';
	}
	if (d >= 0) {
		/* Physically, from the root, never leaving it. */
		const char *slash = strrchr(rel, '/');
		if (asprintf(&full, "%.*s%s", slash ? (int)(slash - rel + 1) : 0, rel,
		             target) < 0) {
			full = NULL;
			rc = -ENOMEM;
			goto out;
		}
		struct open_how how = { .flags = O_PATH | O_CLOEXEC,
		                        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
		long fd = syscall(SYS_openat2, w->rootfd, full, &how, sizeof how);
		if (fd >= 0)
			close((int)fd);
		else if (errno != ENOENT && errno != ENOTDIR)
			d = -1;
	}
	if (d < 0) {
		rc = walk_err(w, -EXDEV, "%s/%s: symlink points outside %s/ (-> %s)",
		              w->disp, rel, w->disp, target);
		goto out;
	}
	rc = cas_put_buf(w->c, out, target, (size_t)n);
	if (rc < 0) {
		walk_err(w, rc, "%s/%s: %s", w->disp, rel, strerror(-rc));
		goto out;
	}
	*size = (uint64_t)n;
out:
	free(full);
	return rc;
}

/* The message for a source that cannot be opened. */
static int open_failed(struct walk *w, int rc, const char *rel, const struct stat *st)
{
	if (rc == -EACCES && st && S_ISREG(st->st_mode) && st->st_nlink > 1)
		return walk_err(w, rc, "%s/%s: a hard link to a file the step's user "
		                "cannot read", w->disp, rel);
	return walk_err(w, rc, "%s/%s: %s", w->disp, rel,
	                rc == -EINVAL ? "not a regular file" : strerror(-rc));
}

/* Store the regular file open at fd (already checked to be one). */
static int walk_fd(struct walk *w, int fd, const char *rel, const struct stat *st,
                   char out[CAS_HEX_LEN + 1], uint64_t *size, unsigned *mode)
{
	int rc = put_fd(w->c, out, fd, st, w->o, size);
	if (rc < 0)
		return walk_err(w, rc, "%s/%s: %s", w->disp, rel, strerror(-rc));
	*mode = (st->st_mode & 0111) ? 0755 : 0644;
	return 0;
}

static int walk_dir(struct walk *w, int dfd, const char *rel,
                    char out[CAS_HEX_LEN + 1]);

/* Store entry name of directory dfd, found to be st by lstat. */
static int walk_entry(struct walk *w, int dfd, const char *name, const char *rel,
                      const struct stat *st, char *type, unsigned *mode,
                      char hex[CAS_HEX_LEN + 1], uint64_t *size)
{
	struct stat fst;
	int fd, rc;

	if (S_ISLNK(st->st_mode)) {
		*type = 'l';
		*mode = 0777;
		return walk_link(w, dfd, name, rel, hex, size);
	}
	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
		return walk_err(w, -EINVAL, "%s/%s: not a regular file, directory or "
		                "symlink", w->disp, rel);
	fd = open_as(w, dfd, name, O_RDONLY | O_NONBLOCK |
	             (S_ISDIR(st->st_mode) ? O_DIRECTORY : 0));
	if (fd < 0)
		return open_failed(w, -errno, rel, st);
	if (fstat(fd, &fst) < 0) {
		rc = walk_err(w, -errno, "%s/%s: %s", w->disp, rel, strerror(errno));
	} else if ((fst.st_mode & S_IFMT) != (st->st_mode & S_IFMT)) {
		rc = walk_err(w, -EAGAIN, "%s/%s: changed while it was stored",
		              w->disp, rel);
	} else if (S_ISDIR(fst.st_mode)) {
		*type = 'd';
		*mode = 0755;
		rc = walk_dir(w, fd, rel, hex);
	} else {
		*type = 'f';
		rc = walk_fd(w, fd, rel, &fst, hex, size, mode);
	}
	close(fd);
	return rc;
}

/* Store the directory open at dfd (rel below the root, "" for the root). */
static int walk_dir(struct walk *w, int dfd, const char *rel,
                    char out[CAS_HEX_LEN + 1])
{
	struct sbuf text = { 0 };
	char **names = NULL, *child = NULL;
	size_t nn = 0, cap = 0;
	struct dirent *de;
	DIR *dir = NULL;
	int rc = 0, dup_fd;

	dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	if (dup_fd < 0 || !(dir = fdopendir(dup_fd))) {
		rc = walk_err(w, -errno, "%s/%s: %s", w->disp, rel, strerror(errno));
		if (dup_fd >= 0)
			close(dup_fd);
		goto out;
	}
	rewinddir(dir);
	while ((errno = 0, de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (w->o && w->o->skip && w->o->skip(rel, de->d_name, w->o->skip_arg))
			continue;
		if (strpbrk(de->d_name, "\n\t")) {
			rc = walk_err(w, -EINVAL, "%s/%s%s%s: file name contains a newline "
			              "or tab", w->disp, rel, *rel ? "/" : "", de->d_name);
			goto out;
		}
		if (nn == cap) {
			size_t nc = cap ? cap * 2 : 32;
			char **nw = realloc(names, nc * sizeof *names);
			if (!nw) {
				rc = -ENOMEM;
				goto out;
			}
			names = nw;
			cap = nc;
		}
		names[nn] = strdup(de->d_name);
		if (!names[nn]) {
			rc = -ENOMEM;
			goto out;
		}
		nn++;
	}
	if (errno) {
		rc = walk_err(w, -errno, "%s/%s: %s", w->disp, rel, strerror(errno));
		goto out;
	}
	if (nn)
		qsort(names, nn, sizeof *names, cmp_name);
	for (size_t i = 0; i < nn; i++) {
		char hex[CAS_HEX_LEN + 1];
		uint64_t size = 0;
		unsigned mode = 0;
		struct stat st;
		char type = 0;

		if (stopped(w)) {
			rc = -ECANCELED;
			goto out;
		}
		free(child);
		if (asprintf(&child, "%s%s%s", rel, *rel ? "/" : "", names[i]) < 0) {
			child = NULL;
			rc = -ENOMEM;
			goto out;
		}
		if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = walk_err(w, -errno, "%s/%s: %s", w->disp, child, strerror(errno));
			goto out;
		}
		rc = walk_entry(w, dfd, names[i], child, &st, &type, &mode, hex, &size);
		if (rc < 0)
			goto out;
		rc = sbuf_printf(&text, "%c %04o %s %llu\t%s\n", type, mode, hex,
		                 (unsigned long long)size, names[i]);
		if (rc < 0)
			goto out;
	}
	{
		struct src s = { .fd = -1, .mem = (const unsigned char *)text.s,
		                 .len = text.len };
		rc = put_stream(w->c, out, &s, CAS_TREE, NULL);
		if (rc < 0)
			walk_err(w, rc, "%s/%s: %s", w->disp, rel, strerror(-rc));
	}
out:
	free(text.s);
	free(child);
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	if (dir)
		closedir(dir);
	return rc;
}

int cas_put_at(cas *c, char out[CAS_HEX_LEN + 1], enum cas_kind *kind_out,
               int rootfd, const char *name, const char *disp,
               const struct cas_put_opts *o, char **err)
{
	struct walk w = { .c = c, .rootfd = rootfd, .disp = disp, .o = o, .err = err };
	struct open_how how = { .flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
	                        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	char linkbuf[64], real[PATH_MAX], rootpath[PATH_MAX], *rel = NULL;
	struct stat lst, st;
	uint64_t size;
	unsigned mode;
	int fd = -1, rc = 0, as;
	ssize_t n;

	if (err)
		*err = NULL;
	if (!name || !*name)
		return walk_err(&w, -EINVAL, "empty path");
	if (fstatat(rootfd, name, &lst, AT_SYMLINK_NOFOLLOW) < 0)
		return walk_err(&w, -errno, "%s/%s: %s", disp, name, strerror(errno));
	as = o && o->as_user && geteuid() == 0;
	if (as) {
		setfsgid(o->gid);
		setfsuid(o->uid);
	}
	fd = (int)syscall(SYS_openat2, rootfd, name, &how, sizeof how);
	int e = errno;
	if (as) {
		setfsuid(0);
		setfsgid(0);
	}
	if (fd < 0) {
		if (S_ISLNK(lst.st_mode) && (e == EXDEV || e == ELOOP)) {
			n = readlinkat(rootfd, name, real, sizeof real - 1);
			real[n < 0 ? 0 : n] = '\0';
			return walk_err(&w, -EXDEV, "%s/%s: symlink points outside %s/ (-> %s)",
			                disp, name, disp, real);
		}
		if (S_ISLNK(lst.st_mode) && e == ENOENT)
			return walk_err(&w, -ENOENT, "%s/%s: dangling symlink", disp, name);
		return open_failed(&w, -e, name, &lst);
	}
	if (fstat(fd, &st) < 0) {
		rc = walk_err(&w, -errno, "%s/%s: %s", disp, name, strerror(errno));
		goto out;
	}
	/* Where the top resolved to, below the root, for link checks. */
	snprintf(linkbuf, sizeof linkbuf, "/proc/self/fd/%d", fd);
	n = readlink(linkbuf, real, sizeof real - 1);
	real[n < 0 ? 0 : n] = '\0';
	snprintf(linkbuf, sizeof linkbuf, "/proc/self/fd/%d", rootfd);
	ssize_t rn = readlink(linkbuf, rootpath, sizeof rootpath - 1);
	rootpath[rn < 0 ? 0 : rn] = '\0';
	size_t rl = strlen(rootpath);
	if (n > 0 && rn > 0 && !strcmp(real, rootpath))
		rel = strdup("");
	else if (n > 0 && rn > 0 && !strncmp(real, rootpath, rl) &&
	         (real[rl] == '/' || rl == 1))
		rel = strdup(real + rl + (rl > 1));
	else
		rel = strdup(name);
	if (!rel) {
		rc = -ENOMEM;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = walk_dir(&w, fd, rel, out);
		if (rc == 0 && kind_out)
			*kind_out = CAS_TREE;
	} else if (S_ISREG(st.st_mode)) {
		rc = walk_fd(&w, fd, name, &st, out, &size, &mode);
		if (rc == 0 && kind_out)
			*kind_out = CAS_BLOB;
	} else {
		rc = walk_err(&w, -EINVAL, "%s/%s: not a regular file, directory or "
		              "symlink", disp, name);
	}
out:
	if (rc == -ECANCELED)
		walk_err(&w, rc, "%s/%s: stopped", disp, name);
	else if (rc < 0)
		walk_err(&w, rc, "%s/%s: %s", disp, name, strerror(-rc));
	free(rel);
	close(fd);
	return rc;
}

/* The canonical path of path itself, resolving its parent but not a final
 * symlink: realpath(dirname) + "/" + basename. */
static char *abs_nofollow(const char *path)
{
	char *copy = strdup(path), *slash, *dir = NULL, *res = NULL;
	const char *base;
	size_t len;

	if (!copy)
		return NULL;
	len = strlen(copy);
	while (len > 1 && copy[len - 1] == '/')
		copy[--len] = '\0';
	slash = strrchr(copy, '/');
	if (!slash) {
		dir = realpath(".", NULL);
		base = copy;
	} else {
		*slash = '\0';
		dir = realpath(slash == copy ? "/" : copy, NULL);
		base = slash + 1;
	}
	if (dir && (!*base || !strcmp(base, ".") || !strcmp(base, ".."))) {
		res = realpath(path, NULL);  /* no final component to keep */
	} else if (dir && asprintf(&res, "%s/%s", strcmp(dir, "/") ? dir : "",
	                           base) < 0) {
		res = NULL;
	}
	free(dir);
	free(copy);
	return res;
}

int cas_put_path(cas *c, char out[CAS_HEX_LEN + 1], enum cas_kind *kind_out,
                 const char *path, const char *root, const struct cas_put_opts *o,
                 char **err)
{
	struct walk w = { .c = c, .err = err };
	char *self = NULL, *rootreal = NULL, *disp = NULL, *slash;
	const char *name;
	struct stat st;
	size_t rl;
	int rootfd = -1, rc = 0;

	if (err)
		*err = NULL;
	if (!path || !*path)
		return walk_err(&w, -EINVAL, "empty path");
	self = abs_nofollow(path);
	if (!self) {
		rc = -errno;
		walk_err(&w, rc, "%s: %s", path, strerror(errno));
		goto out;
	}
	/* No root given: the stored directory (or a file's directory). */
	if (root) {
		rootreal = realpath(root, NULL);
	} else {
		rootreal = realpath(self, NULL);
		if (rootreal && stat(rootreal, &st) == 0 && !S_ISDIR(st.st_mode)) {
			slash = strrchr(rootreal, '/');
			slash[slash == rootreal] = '\0';
		}
	}
	if (!rootreal) {
		rc = errno ? -errno : -ENOMEM;
		walk_err(&w, rc, "%s: %s", root ? root : path, strerror(-rc));
		goto out;
	}
	rl = strlen(rootreal);
	if (rl == 1) {
		name = self + 1;
	} else if (!strncmp(self, rootreal, rl) && self[rl] == '/') {
		name = self + rl + 1;
	} else if (!strcmp(self, rootreal)) {
		name = ".";
	} else {
		rc = walk_err(&w, -EINVAL, "%s: not inside %s", path, rootreal);
		goto out;
	}
	/* Messages name paths from the root's own name: "out/model/x". */
	slash = strrchr(rootreal, '/');
	disp = strdup(rl == 1 ? "" : slash + 1);
	rootfd = open(rootreal, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (!disp || rootfd < 0) {
		rc = disp ? -errno : -ENOMEM;
		walk_err(&w, rc, "%s: %s", rootreal, strerror(-rc));
		goto out;
	}
	rc = cas_put_at(c, out, kind_out, rootfd, name, disp, o, err);
out:
	if (rootfd >= 0)
		close(rootfd);
	free(disp);
	free(rootreal);
	free(self);
	return rc;
}

/* ---- export ----------------------------------------------------------- */

/* Copy a raw object: reflink, else its data ranges (holes stay holes). */
static int copy_raw(int in, int out, uint64_t size)
{
	if (size == 0 || ioctl(out, FICLONE, in) == 0)
		return 0;
	return util_copy_fd(in, out, size, NULL);
}

/* Write blob hex to a new file dest with mode. */
static int export_blob(cas *c, const char *hex, const char *dest, mode_t mode)
{
	cas_reader *r = NULL;
	unsigned char *buf = NULL;
	int fd = -1, rc;

	rc = cas_reader_open(c, hex, &r);
	if (rc < 0)
		return rc;
	fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (!r->compressed) {
		rc = copy_raw(r->fd, fd, r->size);
	} else {
		buf = malloc(r->sk.max_d ? r->sk.max_d : 1);
		if (!buf) {
			rc = -ENOMEM;
			goto out;
		}
		for (uint32_t i = 0; i < r->sk.n && rc == 0; i++) {
			size_t dl = r->sk.doff[i + 1] - r->sk.doff[i];
			ssize_t n = dl ? cas_reader_pread(r, buf, dl, r->sk.doff[i]) : 0;
			if (n < 0 || (size_t)n != dl)
				rc = n < 0 ? (int)n : -EIO;
			else
				rc = write_all(fd, buf, dl);
		}
	}
	if (rc == 0 && fchmod(fd, mode) < 0)
		rc = -errno;
out:
	free(buf);
	if (fd >= 0) {
		close(fd);
		if (rc < 0)
			unlink(dest);
	}
	cas_reader_close(r);
	return rc;
}

static int export_link(cas *c, const char *hex, const char *dest)
{
	char target[PATH_MAX];
	cas_reader *r = NULL;
	ssize_t n;
	int rc;

	rc = cas_reader_open(c, hex, &r);
	if (rc < 0)
		return rc;
	if (cas_reader_size(r) >= sizeof target) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	n = cas_reader_pread(r, target, sizeof target - 1, 0);
	if (n < 0 || (uint64_t)n != cas_reader_size(r) ||
	    memchr(target, '\0', (size_t)n)) {
		rc = n < 0 ? (int)n : -EIO;
		goto out;
	}
	target[n] = '\0';
	if (symlink(target, dest) < 0)
		rc = -errno;
out:
	cas_reader_close(r);
	return rc;
}

static int export_tree(cas *c, const char *hex, const char *dest)
{
	struct cas_tree *t = NULL;
	char *child = NULL;
	int rc;

	rc = cas_tree_read(c, hex, &t);
	if (rc < 0)
		return rc;
	if (mkdir(dest, 0755) < 0) {
		rc = -errno;
		goto out;
	}
	for (size_t i = 0; i < t->n; i++) {
		const struct cas_entry *e = &t->entries[i];
		free(child);
		if (asprintf(&child, "%s/%s", dest, e->name) < 0) {
			child = NULL;
			rc = -ENOMEM;
			goto out;
		}
		if (e->type == 'f')
			rc = export_blob(c, e->hex, child, (e->mode & 0111) ? 0555 : 0444);
		else if (e->type == 'd')
			rc = export_tree(c, e->hex, child);
		else
			rc = export_link(c, e->hex, child);
		if (rc < 0)
			goto out;
	}
out:
	free(child);
	cas_tree_free(t);
	return rc;
}

int cas_export(cas *c, const char *hex, const char *dest)
{
	struct cas_stat st;
	int rc;

	rc = cas_stat(c, hex, &st);
	if (rc < 0)
		return rc;
	if (st.kind == CAS_TREE)
		return export_tree(c, hex, dest);
	return export_blob(c, hex, dest, 0444);
}
