/*
 * cas_reader.c - reading blobs. A raw object is its content: the reader
 * hands out the fd (FUSE splices from it; hints of our own to read ahead
 * measured slower than the kernel's read-ahead alone). A .zst object is
 * read through a small cache of decoded frames of its own (up to
 * RD_BYTES) and the store's shared cache of decoded frames
 * (cas_frame_cache, shared by every open of the object). A read that needs
 * a frame neither holds decodes it whole into a slot when it continues the
 * reads before it (three in a row) or reads to the frame's end; any other
 * (random) read decodes it (a big one whole, of a small one what the read
 * needs) into the shared cache, so the next reads of that frame, from any
 * open, copy; once such reads have missed RD_FILL_AFTER times, each miss
 * of a big frame (of an object the cache can hold) also has a helper
 * decode one frame nobody asked for yet into that cache (fill_request). Once reads keep going forward, the next
 * RD_AHEAD_BYTES of frames are queued for up to RD_HELPERS helper threads
 * (never more than the CPUs), so frames decode in parallel ahead of the
 * reader; a reader needing a frame still queued decodes it itself. One
 * mutex and one condition guard the slots; decoding and copying happen
 * outside it (a slot being decoded is BUSY, one being copied from is
 * pinned). The helpers start with the first read-ahead or fill and are
 * stopped and joined by cas_reader_close.
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

#include <zstd.h>

#include "flowyfs/cas.h"
#include "flowyfs/log.h"
#include "flowyfs/lru.h"
#include "flowyfs/zseek.h"

#define RD_SLOTS 64              /* decoded frames a reader keeps, at most */
#define RD_BYTES (16u << 20)     /* ... and the bytes they may hold */
#define RD_AHEAD_BYTES (8u << 20) /* decoded ahead of a sequential reader */
#define RD_HELPERS 2             /* helper threads per reader, at most */
#define RD_NEAR (4u << 20)       /* how far out of order FUSE's reads arrive */
#define RD_FILL_AFTER 4          /* random misses before frames are filled in */

enum slot_state { SLOT_FREE, SLOT_QUEUED, SLOT_BUSY, SLOT_READY, SLOT_FAILED };

struct rslot {
	int64_t frame;          /* the frame held or coming, -1 for none */
	enum slot_state state;
	int rc;                 /* SLOT_FAILED: why */
	int pins;               /* threads copying out of buf */
	uint64_t used;          /* clock of the last use (eviction order) */
	unsigned char *buf;     /* max_d bytes, allocated by its first decoder */
};

/* A decoder: a zstd context and the buffers of one decode. */
struct dec {
	struct dec *next;       /* in the reader's idle list */
	ZSTD_DCtx *d;
	unsigned char *cbuf;    /* one compressed frame (max_c) */
};

/* A frame in the store's shared cache: its first valid content bytes. */
struct sframe {
	size_t valid;
	unsigned char data[];
};

#define SHARED_WHOLE (CAS_FRAME / 2) /* frames this big are cached whole */
#define SHARED_ROUND (16u << 10)     /* a prefix decode goes on to this boundary */

struct cas_reader {
	int fd;
	char hex[CAS_HEX_LEN + 1];
	struct lru *shared;     /* the store's decoded frames */
	int compressed;
	uint64_t size;
	struct zseek sk;
	pthread_mutex_t mu;
	pthread_cond_t cv;      /* a slot changed state, work queued, or quit */
	struct rslot slot[RD_SLOTS];
	int nslots, ahead;      /* slots in use and frames decoded ahead, by frame size */
	uint64_t clock;
	uint64_t last_end;      /* furthest end of the latest run of near reads */
	int streak;             /* reads in a row near the ones before */
	struct dec *idle;       /* decoders not in use */
	pthread_t th[RD_HELPERS];
	int nth, want_th, quit;
	int misses;             /* random reads the shared cache missed (up to
	                         * RD_FILL_AFTER) */
	int64_t fill, filling;  /* a frame for a helper to decode into the shared
	                         * cache, and the one it is decoding (-1: none) */
	uint32_t fill_next;     /* where the search for the next fill starts */
};

/* ---- decoders ------------------------------------------------------------ */

static void dec_free(struct dec *d)
{
	if (!d)
		return;
	free(d->cbuf);
	ZSTD_freeDCtx(d->d);
	free(d);
}

/* An idle decoder, or a new one (NULL on out-of-memory). */
static struct dec *dec_get(cas_reader *r)
{
	struct dec *d;

	pthread_mutex_lock(&r->mu);
	d = r->idle;
	if (d)
		r->idle = d->next;
	pthread_mutex_unlock(&r->mu);
	if (d)
		return d;
	d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	d->d = ZSTD_createDCtx();
	d->cbuf = malloc(r->sk.max_c ? r->sk.max_c : 1);
	if (!d->d || !d->cbuf) {
		dec_free(d);
		return NULL;
	}
	return d;
}

static void dec_put(cas_reader *r, struct dec *d)
{
	pthread_mutex_lock(&r->mu);
	d->next = r->idle;
	r->idle = d;
	pthread_mutex_unlock(&r->mu);
}

/* Decode frame i whole into slot s (owned: BUSY), then publish it READY or
 * FAILED and wake waiters. Called and returns without r->mu. */
static int slot_fill(cas_reader *r, struct rslot *s, uint32_t i, struct dec *d)
{
	int rc = 0;

	if (!s->buf && !(s->buf = malloc(r->sk.max_d ? r->sk.max_d : 1)))
		rc = -ENOMEM;
	if (rc == 0)
		rc = zseek_decode(&r->sk, r->fd, i, d->d, d->cbuf, s->buf,
		                  (size_t)(r->sk.doff[i + 1] - r->sk.doff[i]));
	pthread_mutex_lock(&r->mu);
	s->state = rc < 0 ? SLOT_FAILED : SLOT_READY;
	s->rc = rc;
	s->used = ++r->clock;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return rc;
}

/* ---- slots (r->mu held) -------------------------------------------------- */

static struct rslot *slot_find(cas_reader *r, uint32_t i)
{
	for (int k = 0; k < r->nslots; k++)
		if (r->slot[k].frame == (int64_t)i)
			return &r->slot[k];
	return NULL;
}

/* A slot to reuse for a frame at or after cur: a free one, else the least
 * recently used one that nobody needs (not queued, busy nor pinned, and
 * not one of the frames about to be read, [cur, cur + r->ahead]). */
static struct rslot *slot_take(cas_reader *r, uint32_t cur)
{
	struct rslot *best = NULL;

	for (int k = 0; k < r->nslots; k++) {
		struct rslot *s = &r->slot[k];
		if (s->pins || s->state == SLOT_QUEUED || s->state == SLOT_BUSY)
			continue;
		if (s->frame < 0)
			return s;
		if (s->frame >= (int64_t)cur && s->frame <= (int64_t)cur + r->ahead)
			continue;
		if (!best || s->used < best->used)
			best = s;
	}
	if (best) {
		best->frame = -1;
		best->state = SLOT_FREE;
	}
	return best;
}

static void *helper_main(void *arg);

/* Start the helpers, the first time: 0 when there are none to be had. */
static int helpers_start(cas_reader *r)
{
	while (r->nth < r->want_th &&
	       pthread_create(&r->th[r->nth], NULL, helper_main, r) == 0)
		r->nth++;
	if (r->nth == 0)
		r->want_th = 0;  /* no threads to be had: read without */
	return r->nth > 0;
}

/* Queue the frames after cur that no slot holds, for the helpers. */
static void ahead_queue(cas_reader *r, uint32_t cur)
{
	int queued = 0;

	if (!helpers_start(r))
		return;
	for (uint32_t k = 1; k <= (uint32_t)r->ahead && cur + k < r->sk.n; k++) {
		uint32_t f = cur + k;
		struct rslot *s;
		if (slot_find(r, f))
			continue;
		s = slot_take(r, cur);
		if (!s)
			break;
		s->frame = f;
		s->state = SLOT_QUEUED;
		s->used = ++r->clock;
		queued = 1;
	}
	if (queued)
		pthread_cond_broadcast(&r->cv);
}

static void fill_frame(cas_reader *r, uint32_t i, struct dec *d);

/* The helpers: decode the lowest queued frame, else the frame to fill in,
 * until the reader closes. */
static void *helper_main(void *arg)
{
	log_thread_name("read");
	cas_reader *r = arg;
	struct dec *d = dec_get(r);  /* NULL: each frame fails with -ENOMEM */

	pthread_mutex_lock(&r->mu);
	for (;;) {
		struct rslot *s = NULL;
		while (!r->quit) {
			for (int k = 0; k < r->nslots; k++)
				if (r->slot[k].state == SLOT_QUEUED &&
				    (!s || r->slot[k].frame < s->frame))
					s = &r->slot[k];
			if (s || r->fill >= 0)
				break;
			pthread_cond_wait(&r->cv, &r->mu);
		}
		if (r->quit)
			break;
		if (!s) {
			uint32_t i = (uint32_t)r->fill;
			r->filling = r->fill;
			r->fill = -1;
			pthread_mutex_unlock(&r->mu);
			if (d)
				fill_frame(r, i, d);
			pthread_mutex_lock(&r->mu);
			r->filling = -1;
			pthread_cond_broadcast(&r->cv);
			continue;
		}
		s->state = SLOT_BUSY;
		uint32_t i = (uint32_t)s->frame;
		pthread_mutex_unlock(&r->mu);
		if (d) {
			slot_fill(r, s, i, d);
		} else {
			pthread_mutex_lock(&r->mu);
			s->state = SLOT_FAILED;
			s->rc = -ENOMEM;
			pthread_cond_broadcast(&r->cv);
			pthread_mutex_unlock(&r->mu);
		}
		pthread_mutex_lock(&r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	dec_free(d);
	return NULL;
}

/* ---- reading a frame ----------------------------------------------------- */

static void shared_key(const cas_reader *r, uint32_t i, char *key, size_t len)
{
	snprintf(key, len, "%s/%u", r->hex, i);
}

/* Copy n bytes at offset in of frame i from the shared cache: 1 when it
 * holds them, else 0 (*had: it holds a shorter prefix). */
static int shared_copy(cas_reader *r, uint32_t i, unsigned char *dst,
                       size_t in, size_t n, int *had)
{
	char key[CAS_HEX_LEN + 16];
	struct lru_ref *ref;
	struct sframe *f;
	int hit;

	shared_key(r, i, key, sizeof key);
	f = lru_get(r->shared, key, &ref);
	hit = f && f->valid >= in + n;
	if (hit)
		memcpy(dst, f->data + in, n);
	*had = f != NULL;
	lru_release(r->shared, ref);
	return hit;
}

/* The first upto bytes of frame i, decoded with d, as a new entry of the
 * shared cache (*out, not kept yet); 0 or -errno. */
static int shared_decode(cas_reader *r, uint32_t i, struct dec *d, size_t upto,
                         struct sframe **out)
{
	struct sframe *f = malloc(sizeof *f + upto);
	int rc = f ? zseek_decode(&r->sk, r->fd, i, d->d, d->cbuf, f->data, upto) : -ENOMEM;

	if (rc < 0) {
		free(f);
		return rc;
	}
	f->valid = upto;
	*out = f;
	return 0;
}

/* Keep f under key in the shared cache (in place of a shorter prefix
 * when replace is set). */
static void shared_keep(cas_reader *r, const char *key, struct sframe *f, int replace)
{
	struct lru_ref *ref;

	if (replace)
		lru_remove(r->shared, key);
	if (lru_put(r->shared, key, f, sizeof *f + f->valid, &ref))
		lru_release(r->shared, ref);
}

/* Decode frame i whole into the shared cache (a helper, without r->mu).
 * A failure keeps nothing: the read that needs the frame meets it. */
static void fill_frame(cas_reader *r, uint32_t i, struct dec *d)
{
	char key[CAS_HEX_LEN + 16];
	struct sframe *f;

	shared_key(r, i, key, sizeof key);
	if (!lru_has(r->shared, key) &&
	    shared_decode(r, i, d, (size_t)(r->sk.doff[i + 1] - r->sk.doff[i]), &f) == 0)
		shared_keep(r, key, f, 0);
}

/* Random reads keep missing the shared cache (a miss on frame i, whole
 * frames): have a helper decode a frame nobody has asked for yet while
 * this read decodes its own, so the machine's other cores decode what
 * the next random reads will want. One fill per miss: the work done
 * ahead never exceeds the work asked for. Only for an object the cache
 * can hold whole: of a bigger one, a frame filled in would mostly be
 * pushed out before a read came for it. */
static void fill_request(cas_reader *r, uint32_t i)
{
	char key[CAS_HEX_LEN + 16];
	int found = 0;

	pthread_mutex_lock(&r->mu);
	if (r->misses < RD_FILL_AFTER)
		r->misses++;  /* counts up to RD_FILL_AFTER, no further */
	int go = r->misses >= RD_FILL_AFTER && r->size <= CAS_FRAME_CACHE && r->fill < 0 &&
	         helpers_start(r);
	uint32_t j = r->fill_next;
	pthread_mutex_unlock(&r->mu);
	for (uint32_t k = 0; go && k < r->sk.n; k++, j++) {
		if (j >= r->sk.n)
			j = 0;
		shared_key(r, j, key, sizeof key);
		if (j != i && !lru_has(r->shared, key)) {
			found = 1;
			break;
		}
	}
	if (!found)
		return;
	pthread_mutex_lock(&r->mu);
	if (r->fill < 0 && r->filling != (int64_t)j) {
		r->fill = j;
		r->fill_next = j + 1;
		pthread_cond_broadcast(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
}

/* A read of n bytes at offset in of frame i that no slot of this reader
 * holds and that does not go on from the reads before (a random read),
 * for the store's shared cache of decoded frames, shared by every
 * reader of the object. A miss decodes and caches a big frame whole: a
 * prefix would cost half as much once, but random reads come back to a
 * frame (a 256 MiB object has 128 frames of 2 MiB) and it would then be
 * decoded again whole. Of a small frame (many of them, each read seldom
 * twice) it caches the prefix the read needs; a read past a cached prefix
 * decodes the frame whole in its place. Called once the cache missed
 * (had: it holds a shorter prefix of the frame). */
static int frame_shared(cas_reader *r, uint32_t i, unsigned char *dst,
                        size_t in, size_t n, int had)
{
	size_t dl = (size_t)(r->sk.doff[i + 1] - r->sk.doff[i]), upto;
	char key[CAS_HEX_LEN + 16];
	struct sframe *f;
	struct dec *d;
	int rc;

	upto = had || dl >= SHARED_WHOLE ? dl :
	       (in + n + SHARED_ROUND - 1) / SHARED_ROUND * SHARED_ROUND;
	if (upto > dl)
		upto = dl;
	if (dl >= SHARED_WHOLE && !had)
		fill_request(r, i);
	if (!(d = dec_get(r)))
		return -ENOMEM;
	rc = shared_decode(r, i, d, upto, &f);
	dec_put(r, d);
	if (rc < 0)
		return rc;
	memcpy(dst, f->data + in, n);
	shared_key(r, i, key, sizeof key);
	shared_keep(r, key, f, had);  /* a shorter prefix makes way */
	return 0;
}

/* Copy n bytes at offset in of frame i to dst; near: the read continues
 * the reads before it (decode whole frames), fwd: it has for a while
 * (decode ahead). */
static int frame_read(cas_reader *r, uint32_t i, unsigned char *dst,
                      size_t in, size_t n, int near, int fwd)
{
	size_t dl = (size_t)(r->sk.doff[i + 1] - r->sk.doff[i]);
	struct rslot *s;
	struct dec *d;
	int rc, had = 0;

	pthread_mutex_lock(&r->mu);
again:
	s = slot_find(r, i);
	if (s && s->state == SLOT_BUSY) {
		while (s->frame == (int64_t)i && s->state == SLOT_BUSY)
			pthread_cond_wait(&r->cv, &r->mu);
		goto again;
	}
	if (s && s->state == SLOT_READY) {
		s->pins++;
		s->used = ++r->clock;
		if (fwd)
			ahead_queue(r, i);
		pthread_mutex_unlock(&r->mu);
		memcpy(dst, s->buf + in, n);
		pthread_mutex_lock(&r->mu);
		s->pins--;
		pthread_mutex_unlock(&r->mu);
		return 0;
	}
	if (s && s->state == SLOT_FAILED) {
		rc = s->rc;
		s->frame = -1;  /* the next read tries again */
		s->state = SLOT_FREE;
		pthread_mutex_unlock(&r->mu);
		return rc;
	}
	/* Absent: the shared cache may hold it (a random read decoded it, or
	 * a read of another open), whatever this read's pattern. */
	if (!s) {
		pthread_mutex_unlock(&r->mu);
		if (shared_copy(r, i, dst, in, n, &had))
			return 0;
		pthread_mutex_lock(&r->mu);
		if (r->fill == (int64_t)i)
			r->fill = -1;  /* asked for ahead, wanted now: ours */
		if (r->filling == (int64_t)i) {
			while (r->filling == (int64_t)i)  /* a helper is on it */
				pthread_cond_wait(&r->cv, &r->mu);
			goto again;
		}
		if ((s = slot_find(r, i)))
			goto again;  /* queued (or decoded) meanwhile */
	}
	/* Queued and not started: ours. Absent: decode it whole into a slot
	 * when the read continues the ones before or reads to its end, else
	 * (a random read) through the shared cache. */
	if (!s && (near || in + n == dl || (in == 0 && n >= dl / 2)))
		s = slot_take(r, i);
	if (!s) {
		pthread_mutex_unlock(&r->mu);
		return frame_shared(r, i, dst, in, n, had);
	}
	s->frame = i;
	s->state = SLOT_BUSY;
	if (fwd)
		ahead_queue(r, i);
	pthread_mutex_unlock(&r->mu);
	d = dec_get(r);
	if (!d) {
		pthread_mutex_lock(&r->mu);
		s->frame = -1;
		s->state = SLOT_FREE;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
		return -ENOMEM;
	}
	/* The slot is BUSY, so ours alone until slot_fill publishes it; the
	 * pin keeps it from being evicted until our copy is out. */
	pthread_mutex_lock(&r->mu);
	s->pins++;
	pthread_mutex_unlock(&r->mu);
	rc = slot_fill(r, s, i, d);
	if (rc == 0)
		memcpy(dst, s->buf + in, n);
	pthread_mutex_lock(&r->mu);
	s->pins--;
	pthread_mutex_unlock(&r->mu);
	dec_put(r, d);
	return rc;
}

/* ---- the reader ------------------------------------------------------------ */

int cas_reader_open(cas *c, const char *hex, cas_reader **out)
{
	cas_reader *r = NULL;
	struct stat st;
	long cpus;
	int rc;

	*out = NULL;
	if (!cas_hex_valid(hex))
		return -EINVAL;
	r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	for (int k = 0; k < RD_SLOTS; k++)
		r->slot[k].frame = -1;
	r->fill = r->filling = -1;
	if (pthread_mutex_init(&r->mu, NULL) != 0) {
		free(r);
		return -ENOMEM;
	}
	if (pthread_cond_init(&r->cv, NULL) != 0) {
		pthread_mutex_destroy(&r->mu);
		free(r);
		return -ENOMEM;
	}
	memcpy(r->hex, hex, sizeof r->hex);
	r->shared = cas_frame_cache(c);
	r->fd = cas_obj_open(c, hex, "");
	if (r->fd == -ENOENT) {
		r->fd = cas_obj_open(c, hex, ".zst");
		r->compressed = 1;
	}
	if (r->fd < 0) {
		rc = r->fd;
		goto fail;
	}
	if (fstat(r->fd, &st) < 0) {
		rc = -errno;
		goto fail;
	}
	r->size = (uint64_t)st.st_size;
	if (r->compressed) {
		rc = zseek_load(&r->sk, r->fd, (uint64_t)st.st_size);
		if (rc < 0)
			goto fail;
		r->size = zseek_size(&r->sk);
		size_t fr = r->sk.max_d ? r->sk.max_d : 1;
		r->nslots = RD_BYTES / fr < 4 ? 4 : RD_BYTES / fr > RD_SLOTS ? RD_SLOTS
		                                                : (int)(RD_BYTES / fr);
		r->ahead = RD_AHEAD_BYTES / fr < 1 ? 1 : (int)(RD_AHEAD_BYTES / fr);
		if (r->ahead > r->nslots / 2)
			r->ahead = r->nslots / 2;
		cpus = sysconf(_SC_NPROCESSORS_ONLN);
		r->want_th = cpus < 1 ? 1 : cpus > RD_HELPERS ? RD_HELPERS : (int)cpus;
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

/* Is a read at [off, off + len) near the ones before (within RD_NEAR of
 * where they got to: FUSE answers its read-ahead requests on several
 * threads, so they arrive out of order)? Counts the streak. */
static void read_track(cas_reader *r, uint64_t off, size_t len, int *near, int *fwd)
{
	uint64_t end = off + len;

	pthread_mutex_lock(&r->mu);
	*near = r->streak > 0 && off + RD_NEAR >= r->last_end &&
	        off <= r->last_end + RD_NEAR;
	if (*near) {
		if (end > r->last_end)
			r->last_end = end;
	} else {
		r->last_end = end;
	}
	r->streak = *near ? r->streak + 1 : 1;
	/* Three near reads in a row: sequential. Random reads rarely are,
	 * even in a small file; two in a row often are (one random read of a
	 * 256 MiB object in 32 lands within RD_NEAR of the one before), and a
	 * frame decoded into this reader's slot for it would be decoded again
	 * for the shared cache. */
	*near = r->streak >= 3;
	*fwd = *near && r->want_th > 0;
	pthread_mutex_unlock(&r->mu);
}

ssize_t cas_reader_pread(cas_reader *r, void *buf, size_t len, uint64_t off)
{
	unsigned char *dst = buf;
	size_t done = 0;
	int near, fwd;

	if (off >= r->size)
		return 0;
	if (len > r->size - off)
		len = (size_t)(r->size - off);
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	if (!r->compressed)
		return cas_pread_full(r->fd, buf, len, off);
	read_track(r, off, len, &near, &fwd);
	while (done < len) {
		uint64_t pos = off + done;
		uint32_t i = zseek_find(&r->sk, pos);
		size_t in = (size_t)(pos - r->sk.doff[i]);
		size_t n = (size_t)(r->sk.doff[i + 1] - pos);
		if (n > len - done)
			n = len - done;
		int rc = frame_read(r, i, dst + done, in, n, near, fwd);
		if (rc < 0)
			return done ? (ssize_t)done : rc;
		done += n;
	}
	return (ssize_t)done;
}

void cas_reader_close(cas_reader *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->quit = 1;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	for (int k = 0; k < r->nth; k++)
		pthread_join(r->th[k], NULL);
	while (r->idle) {
		struct dec *d = r->idle;
		r->idle = d->next;
		dec_free(d);
	}
	for (int k = RD_SLOTS - 1; k >= 0; k--)
		free(r->slot[k].buf);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	zseek_free(&r->sk);
	if (r->fd >= 0)
		close(r->fd);
	free(r);
}
