/*
 * zseek.h - the zstd seekable format, as the store writes and reads it.
 *
 * An object is a run of independent zstd frames (each with its content
 * size and a checksum, so `zstd -d` decodes the whole object), then one
 * skippable frame holding the seek table (magic 0x184D2A5E):
 *     per frame: compressed size u32le, content size u32le
 *     footer:    number of frames u32le, descriptor u8, magic 0x8F92EAB1 u32le
 * This is the layout of zstd's contrib/seekable_format; a descriptor with
 * bit 7 set (per-frame checksums in the table, 12-byte entries) is read
 * too. Frames may be of any size up to ZSEEK_MAX_FRAME; the table says.
 * Used by the store's ingest (writer) and readers only.
 */
#ifndef FLOWYFS_ZSEEK_H
#define FLOWYFS_ZSEEK_H

#include <stddef.h>
#include <stdint.h>
#include <zstd.h>

#define ZSEEK_LEVEL 4               /* zstd level of new frames */
#define ZSEEK_MAX_FRAME (64u << 20) /* largest content per frame a reader takes */

/* A seek table: frame i covers compressed bytes [coff[i], coff[i+1]) and
 * content bytes [doff[i], doff[i+1]). A zeroed struct is an empty table. */
struct zseek {
	uint32_t n;
	uint64_t *coff, *doff;  /* n + 1 entries each */
	size_t max_c, max_d;    /* the largest frame, compressed / content */
	size_t cap;             /* entries allocated (writer) */
};

/* Free the table's arrays and zero it; zseek_free on a zeroed one is a no-op. */
void zseek_free(struct zseek *sk);

/* Writer: a compressor for frames (level ZSEEK_LEVEL, content size and
 * checksum in every frame), created once into *z; 0 or -ENOMEM. */
int zseek_cctx(ZSTD_CCtx **z);
/* Room a frame of len content bytes may need. */
size_t zseek_bound(size_t len);
/* Compress src into one frame at dst (cap bytes): its size, or -EIO. */
ssize_t zseek_compress(ZSTD_CCtx *z, void *dst, size_t cap, const void *src,
                       size_t len);
/* Record the next frame's sizes; 0, -EFBIG (too many frames, or a frame
 * larger than the format holds), -ENOMEM. */
int zseek_add(struct zseek *sk, size_t clen, size_t dlen);
/* Append the seek table frame for sk to fd; 0 or -errno. */
int zseek_write(const struct zseek *sk, int fd);

/* Reader: load the seek table of the object open at fd (fsize bytes) and
 * check it covers the file exactly; 0, -EIO for a damaged one, -errno. */
int zseek_load(struct zseek *sk, int fd, uint64_t fsize);
/* Content size of the whole object. */
uint64_t zseek_size(const struct zseek *sk);
/* The frame holding content offset pos (pos < zseek_size). */
uint32_t zseek_find(const struct zseek *sk, uint64_t pos);
/* Decode the first upto content bytes of frame i (upto <= its size) into
 * dst, reading the frame from fd into cbuf (max_c bytes) with decoder d.
 * A whole frame is decoded in one call (its checksum checked); a prefix
 * by streaming, stopping once upto bytes are out. 0, -EIO, -errno. */
int zseek_decode(const struct zseek *sk, int fd, uint32_t i, ZSTD_DCtx *d,
                 unsigned char *cbuf, unsigned char *dst, size_t upto);

#endif
