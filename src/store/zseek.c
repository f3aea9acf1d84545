/*
 * zseek.c - the zstd seekable format: independent frames and a seek table
 * in a trailing skippable frame, so that a read decodes only the frames it
 * touches (and of the last one only as much as it needs), while the object
 * as a whole stays a plain zstd stream that `zstd -d` decodes. The writer
 * half compresses frames and records their sizes; the reader half loads
 * and checks the table, finds the frame of an offset and decodes frames
 * or their prefixes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "flowyfs/cas.h"
#include "flowyfs/zseek.h"

#define SKIP_MAGIC 0x184D2A5Eu  /* zstd skippable frame (seek table) */
#define SEEK_MAGIC 0x8F92EAB1u  /* seekable format footer */
#define SEEK_FOOTER 9           /* frames u32, descriptor u8, magic u32 */

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

void zseek_free(struct zseek *sk)
{
	free(sk->coff);
	free(sk->doff);
	memset(sk, 0, sizeof *sk);
}

/* ---- writer ------------------------------------------------------------ */

int zseek_cctx(ZSTD_CCtx **z)
{
	size_t r;

	if (*z)
		return 0;
	*z = ZSTD_createCCtx();
	if (!*z)
		return -ENOMEM;
	r = ZSTD_CCtx_setParameter(*z, ZSTD_c_compressionLevel, ZSEEK_LEVEL);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(*z, ZSTD_c_checksumFlag, 1);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(*z, ZSTD_c_contentSizeFlag, 1);
	if (ZSTD_isError(r)) {
		ZSTD_freeCCtx(*z);
		*z = NULL;
		return -EINVAL;
	}
	return 0;
}

size_t zseek_bound(size_t len)
{
	return ZSTD_compressBound(len);
}

ssize_t zseek_compress(ZSTD_CCtx *z, void *dst, size_t cap, const void *src,
                       size_t len)
{
	size_t n = ZSTD_compress2(z, dst, cap, src, len);

	return ZSTD_isError(n) ? -EIO : (ssize_t)n;
}

int zseek_add(struct zseek *sk, size_t clen, size_t dlen)
{
	if (sk->n >= UINT32_MAX - 1 || clen > UINT32_MAX || dlen > ZSEEK_MAX_FRAME)
		return -EFBIG;
	if ((size_t)sk->n + 2 > sk->cap) {
		size_t nc = sk->cap ? sk->cap * 2 : 64;
		uint64_t *c = realloc(sk->coff, nc * sizeof *c);
		if (!c)
			return -ENOMEM;
		sk->coff = c;
		uint64_t *d = realloc(sk->doff, nc * sizeof *d);
		if (!d)
			return -ENOMEM;
		sk->doff = d;
		if (!sk->cap)
			sk->coff[0] = sk->doff[0] = 0;
		sk->cap = nc;
	}
	sk->coff[sk->n + 1] = sk->coff[sk->n] + clen;
	sk->doff[sk->n + 1] = sk->doff[sk->n] + dlen;
	if (clen > sk->max_c)
		sk->max_c = clen;
	if (dlen > sk->max_d)
		sk->max_d = dlen;
	sk->n++;
	return 0;
}

int zseek_write(const struct zseek *sk, int fd)
{
	size_t len = 8 + (size_t)sk->n * 8 + SEEK_FOOTER;
	unsigned char *b = malloc(len), *p;
	int rc;

	if (!b)
		return -ENOMEM;
	put_le32(b, SKIP_MAGIC);
	put_le32(b + 4, (uint32_t)(len - 8));
	p = b + 8;
	for (uint32_t i = 0; i < sk->n; i++, p += 8) {
		put_le32(p, (uint32_t)(sk->coff[i + 1] - sk->coff[i]));
		put_le32(p + 4, (uint32_t)(sk->doff[i + 1] - sk->doff[i]));
	}
	put_le32(p, sk->n);
	p[4] = 0;
	put_le32(p + 5, SEEK_MAGIC);
	rc = cas_write_all(fd, b, len);
	free(b);
	return rc;
}

/* ---- reader ------------------------------------------------------------ */

int zseek_load(struct zseek *sk, int fd, uint64_t fsize)
{
	unsigned char foot[SEEK_FOOTER], *tab = NULL;
	uint64_t tlen, start;
	size_t esz;
	ssize_t got;
	int rc = 0;

	memset(sk, 0, sizeof *sk);
	if (fsize < 8 + SEEK_FOOTER)
		return -EIO;
	got = cas_pread_full(fd, foot, SEEK_FOOTER, fsize - SEEK_FOOTER);
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
	got = cas_pread_full(fd, tab, tlen - SEEK_FOOTER, start);
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
		if (dl > ZSEEK_MAX_FRAME || cl > 2 * ZSEEK_MAX_FRAME) {
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
	sk->cap = (size_t)sk->n + 1;
	if (sk->coff[sk->n] != start)
		rc = -EIO;
out:
	free(tab);
	if (rc < 0)
		zseek_free(sk);
	return rc;
}

uint64_t zseek_size(const struct zseek *sk)
{
	return sk->doff ? sk->doff[sk->n] : 0;
}

uint32_t zseek_find(const struct zseek *sk, uint64_t pos)
{
	/* The last frame starting at or before pos: never an empty one, since
	 * the next frame would then start there too. */
	uint32_t lo = 0, hi = sk->n;

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (sk->doff[mid] <= pos)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

int zseek_decode(const struct zseek *sk, int fd, uint32_t i, ZSTD_DCtx *d,
                 unsigned char *cbuf, unsigned char *dst, size_t upto)
{
	size_t cl = (size_t)(sk->coff[i + 1] - sk->coff[i]);
	size_t dl = (size_t)(sk->doff[i + 1] - sk->doff[i]);
	ssize_t n;
	size_t r;

	if (upto > dl)
		return -EINVAL;
	n = cas_pread_full(fd, cbuf, cl, sk->coff[i]);
	if (n < 0)
		return (int)n;
	if ((size_t)n != cl)
		return -EIO;
	if (upto == dl) {
		r = ZSTD_decompressDCtx(d, dst, dl, cbuf, cl);
		return ZSTD_isError(r) || r != dl ? -EIO : 0;
	}
	/* A prefix: stream until upto bytes are out. */
	r = ZSTD_DCtx_reset(d, ZSTD_reset_session_only);
	if (ZSTD_isError(r))
		return -EIO;
	ZSTD_inBuffer in = { cbuf, cl, 0 };
	ZSTD_outBuffer out = { dst, upto, 0 };
	while (out.pos < upto) {
		size_t in0 = in.pos, out0 = out.pos;
		r = ZSTD_decompressStream(d, &out, &in);
		if (ZSTD_isError(r))
			return -EIO;
		if (out.pos < upto && (r == 0 || (in.pos == in0 && out.pos == out0)))
			return -EIO;  /* the frame ended early, or is cut short */
	}
	return 0;
}
