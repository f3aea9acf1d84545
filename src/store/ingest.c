/*
 * ingest.c - the put pipeline: content goes through SHA-256 into a temp
 * object and is published under its name, the source read once. The first
 * chunk is the sample: compressed (it becomes the first frames when kept),
 * it decides between raw and the zstd seekable format, and the frame size:
 * CAS_FRAME when it compresses FRAME_BIG_RATIO:1 or better, else
 * CAS_FRAME_SMALL (a chunk then becomes several frames). Bigger content is
 * worked in batches of PIPE_BATCH chunks: the calling thread reads a batch
 * and hashes it while helper threads compress its chunks into frames (or
 * one helper writes the raw batch out and starts its writeback); the
 * caller joins in on what is left, then appends the frames in order.
 * SHA-256 cannot be split, so it is the caller's alone; the helpers live
 * for one put and are joined before it returns. Content of one block or
 * less (INGEST_SMALL: most steps' small outputs) takes none of that: it is
 * read whole, hashed and written raw (compressed, it would take the same
 * block).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "flowyfs/cas.h"
#include "flowyfs/log.h"
#include "flowyfs/ingest.h"
#include "flowyfs/zseek.h"

/* ---- sources ---------------------------------------------------------- */

ssize_t ingest_src_next(struct ingest_src *s, unsigned char *buf,
                        const unsigned char **p, int *hole)
{
	size_t chunk = s->chunk ? s->chunk : CAS_FRAME;
	ssize_t got;

	*hole = 0;
	if (s->fd < 0) {
		size_t n = s->len - s->pos;
		if (n > chunk)
			n = chunk;
		*p = s->mem + s->pos;
		s->pos += n;
		return (ssize_t)n;
	}
	*p = buf;
	if (s->sparse) {
		uint64_t n = s->size - s->off;
		if (s->off >= s->size)
			return 0;
		if (n > chunk)
			n = chunk;
		if (s->data < s->off) {
			off_t d = lseek(s->fd, (off_t)s->off, SEEK_DATA);
			if (d < 0 && errno != ENXIO)
				return -errno;
			s->data = d < 0 ? s->size : (uint64_t)d;
		}
		if (s->data >= s->off + n) {
			memset(buf, 0, n);
			*hole = 1;
			s->off += n;
			return (ssize_t)n;
		}
		chunk = (size_t)n;
	}
	got = cas_pread_full(s->fd, buf, chunk, s->off);
	if (got > 0)
		s->off += (uint64_t)got;
	return got;
}

/* ---- small content ---------------------------------------------------- */

/* Up to this many bytes are stored raw without trying zstd: a block on
 * disk either way. */
#define INGEST_SMALL 4096

/* Put content of at most INGEST_SMALL bytes. An fd source is read whole,
 * one byte past the limit, so one that grew since its size was taken goes
 * to the pipeline after all: returns 1 then (nothing done), else 0 or
 * -errno. */
static int put_small(cas *c, char out[CAS_HEX_LEN + 1], struct ingest_src *s,
                     enum cas_kind kind, uint64_t *size_out)
{
	unsigned char buf[INGEST_SMALL + 1], md[EVP_MAX_MD_SIZE];
	const unsigned char *p = s->mem;
	size_t n = s->len;
	unsigned int mdlen = 0;
	if (s->fd >= 0) {
		ssize_t got = cas_pread_full(s->fd, buf, sizeof buf, 0);
		if (got < 0)
			return (int)got;
		if (got > INGEST_SMALL)
			return 1;
		p = buf;
		n = (size_t)got;
	}
	if (!EVP_Digest(p, n, md, &mdlen, cas_sha256(), NULL) || mdlen != 32)
		return -EIO;
	cas_hex_of(out, md);
	int rc = 0;
	if (!cas_obj_exists(c, out, kind)) {
		struct cas_tmp t = { .fd = -1 };
		rc = cas_tmp_take(c, &t);
		if (!rc)
			rc = cas_write_all(t.fd, p, n);
		if (!rc)
			rc = cas_tmp_commit(c, &t, out, "", kind, s->later);
		cas_tmp_drop(c, &t);
	}
	if (!rc && size_out)
		*size_out = n;
	return rc;
}

/* ---- the pipeline ----------------------------------------------------- */

/* Helpers start only for content bigger than one chunk. */
#define PIPE_BATCH 4
#define PIPE_THREADS 4  /* helpers at most */
#define FRAME_BIG_RATIO 8  /* compressing this well or better: CAS_FRAME frames */

#define SUBS (CAS_FRAME / CAS_FRAME_SMALL)  /* frames a chunk may become */
#define ZCAP (SUBS * zseek_bound(CAS_FRAME_SMALL))  /* room for them */

struct slot {
	const unsigned char *in;  /* the chunk */
	size_t len;
	unsigned char *buf;       /* CAS_FRAME bytes to read into (fd sources) */
	unsigned char *z;         /* its compressed frames, back to back */
	size_t zlen;
	uint32_t nz, zl[SUBS];    /* how many, and the size of each */
	int hole;                 /* zeros of a hole: raw objects skip them */
};

struct pipeline {
	pthread_mutex_t mu;
	pthread_cond_t work;      /* a task is up for grabs, or quit */
	pthread_cond_t idle;      /* pending reached 0 */
	int ntasks, next, pending, err, quit;
	int zst, fd;
	size_t frame;             /* .zst: content bytes a frame */
	int hashed;               /* content already hashed (all in slot 0) */
	int more;                 /* not the last batch */
	uint64_t woff;            /* raw: bytes written so far */
	struct slot slot[PIPE_BATCH];
	int nslot;
	pthread_t th[PIPE_THREADS];
	int nth;
};

/* Hand the written range to writeback now, so the final fsync has little
 * left to wait for (best effort: not every file system does this). */
static void start_writeback(int fd, uint64_t off, size_t len)
{
	/* Advice only: where it is refused the final fsync does it all. */
	(void)sync_file_range(fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
}

/* Compress the chunk of slot s into frames of p->frame content bytes. */
static int slot_compress(struct pipeline *p, struct slot *s, ZSTD_CCtx **z)
{
	int rc = zseek_cctx(z);

	if (rc < 0)
		return rc;
	s->zlen = 0;
	s->nz = 0;
	for (size_t off = 0; off < s->len; off += p->frame) {
		size_t n = s->len - off < p->frame ? s->len - off : p->frame;
		ssize_t zl = zseek_compress(*z, s->z + s->zlen, ZCAP - s->zlen,
		                            s->in + off, n);
		if (zl < 0)
			return (int)zl;
		s->zl[s->nz++] = (uint32_t)zl;
		s->zlen += (size_t)zl;
	}
	return 0;
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
			rc = cas_write_all(p->fd, p->slot[i].in, p->slot[i].len);
			if (rc < 0)
				return rc;
			if (p->more)
				start_writeback(p->fd, p->woff, p->slot[i].len);
			p->woff += p->slot[i].len;
		}
		return 0;
	}
	return slot_compress(p, s, z);
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
	log_thread_name("ingest");
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

/* Append the batch's frames to the object and their sizes to the table. */
static int pipe_write_frames(struct pipeline *p, struct zseek *sk)
{
	uint64_t start = p->woff;
	int rc;

	for (int i = 0; i < p->nslot; i++) {
		const struct slot *s = &p->slot[i];
		for (uint32_t k = 0; k < s->nz; k++) {
			size_t dl = s->len - k * p->frame;
			rc = zseek_add(sk, s->zl[k], dl < p->frame ? dl : p->frame);
			if (rc < 0)
				return rc;
		}
		rc = cas_write_all(p->fd, p->slot[i].z, p->slot[i].zlen);
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
	if (zst && !s->z && !(s->z = malloc(ZCAP)))
		return -ENOMEM;
	return 0;
}

/* Stream s through SHA-256 into a temp object and publish it. Blobs whose
 * first chunk compresses below 90% become .zst (seekable, that chunk's
 * frame is reused), others raw; trees are raw text with the .tree suffix. */
int ingest_put(cas *c, char out[CAS_HEX_LEN + 1], struct ingest_src *s,
                      enum cas_kind kind, uint64_t *size_out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct pipeline *p = NULL;
	EVP_MD_CTX *ctx = NULL;
	ZSTD_CCtx *z = NULL;
	struct zseek sk = { 0 };
	struct cas_tmp t = { .fd = -1 };
	uint64_t total = 0;
	int first = 1, eof = 0, inited = 0, rc;
	ssize_t n;

	if (kind == CAS_BLOB && !s->sparse &&
	    (s->fd >= 0 ? s->size > 0 && s->size <= INGEST_SMALL : s->len <= INGEST_SMALL) &&
	    (rc = put_small(c, out, s, kind, size_out)) <= 0)
		return rc;
	p = calloc(1, sizeof *p);
	ctx = EVP_MD_CTX_new();
	if (!p || !ctx || !EVP_DigestInit_ex(ctx, cas_sha256(), NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	if (pthread_mutex_init(&p->mu, NULL) != 0) {
		rc = -ENOMEM;
		goto out;
	}
	if (pthread_cond_init(&p->work, NULL) != 0) {
		pthread_mutex_destroy(&p->mu);
		rc = -ENOMEM;
		goto out;
	}
	if (pthread_cond_init(&p->idle, NULL) != 0) {
		pthread_cond_destroy(&p->work);
		pthread_mutex_destroy(&p->mu);
		rc = -ENOMEM;
		goto out;
	}
	inited = 1;

	/* The first chunk is the sample. */
	rc = slot_alloc(&p->slot[0], s->fd >= 0, 0);
	if (rc < 0)
		goto out;
	n = ingest_src_next(s, p->slot[0].buf, &p->slot[0].in, &p->slot[0].hole);
	if (n < 0) {
		rc = (int)n;
		goto out;
	}
	p->slot[0].len = (size_t)n;
	p->nslot = n > 0;
	eof = n < CAS_FRAME;
	if (n > 0 && kind == CAS_BLOB && !s->sparse) {
		struct slot *s0 = &p->slot[0];
		if ((rc = slot_alloc(s0, 0, 1)) < 0)
			goto out;
		p->frame = CAS_FRAME;
		rc = slot_compress(p, s0, &z);
		if (rc < 0)
			goto out;
		p->zst = s0->zlen * 10 < s0->len * 9;
		/* Very compressible content keeps big frames (each new frame
		 * starts without history, which costs such content most); the
		 * rest is framed small, for quick random reads. */
		if (p->zst && s0->zlen * FRAME_BIG_RATIO > s0->len) {
			p->frame = CAS_FRAME_SMALL;
			rc = slot_compress(p, s0, &z);
			if (rc < 0)
				goto out;
		}
	}
	if (eof) {
		/* All the content is in hand: name it first, so that storing it
		 * again costs no temp file at all. */
		if (!EVP_DigestUpdate(ctx, p->slot[0].in, p->slot[0].len) ||
		    !EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32) {
			rc = -EIO;
			goto out;
		}
		cas_hex_of(out, md);
		p->hashed = 1;
		if (cas_obj_exists(c, out, kind)) {
			if (size_out)
				*size_out = p->slot[0].len;
			rc = 0;
			goto out;
		}
	}
	rc = cas_tmp_create(c, &t);
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
			n = ingest_src_next(s, sl->buf, &sl->in, &sl->hole);
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
			rc = pipe_write_frames(p, &sk);
			if (rc < 0)
				goto out;
		}
		for (int i = 0; i < p->nslot; i++)
			total += p->slot[i].len;
		first = 0;
		p->nslot = 0;
	}
	if (p->zst) {
		rc = zseek_write(&sk, t.fd);
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
		cas_hex_of(out, md);
	}
	rc = cas_tmp_commit(c, &t, out,
	                kind == CAS_TREE ? ".tree" : p->zst ? ".zst" : "", kind, s->later);
	if (rc == 0 && size_out)
		*size_out = total;
out:
	if (inited)
		pipe_stop(p);
	zseek_free(&sk);
	cas_tmp_drop(c, &t);
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

