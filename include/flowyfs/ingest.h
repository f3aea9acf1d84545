/*
 * ingest.h - the store's put pipeline: stream content through SHA-256
 * into a temp object, raw or as zstd seekable frames compressed in
 * parallel, and publish it under its name. Used by cas_put.c only.
 */
#ifndef FLOWYFS_INGEST_H
#define FLOWYFS_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cas;
enum cas_kind;
struct cas_syncs;

/* Where a put reads from: a file descriptor or memory. */
struct ingest_src {
	int fd;                    /* >= 0: read from here */
	const unsigned char *mem;  /* else this memory */
	size_t len;                /* memory: its length */
	int sparse;                /* fd has holes: stored raw, holes kept */
	uint64_t size;             /* fd: the file size when opened (0: not
	                              known); a sparse one is read up to it */
	const int *stop;           /* set (by another thread): -ECANCELED */
	size_t chunk;              /* bytes a chunk, 0 for CAS_FRAME */
	struct cas_syncs *later;   /* publish before the fsync (cas_tmp_commit) */
	/* filled in by ingest_put */
	size_t pos;
	uint64_t off, data;
};

/* Store the content of s as an object of kind and name it in out. A blob
 * of 4096 bytes or less is stored raw; a bigger one whose first CAS_FRAME
 * bytes compress below 90% is stored .zst (that frame is kept), others raw; trees are raw with the .tree suffix. Content
 * already stored costs no temp file when it fits one frame. *size_out
 * (may be NULL) gets the content size. 0 or -errno; nothing is left
 * behind on failure. */
int ingest_put(struct cas *c, char out[64 + 1], struct ingest_src *s,
               enum cas_kind kind, uint64_t *size_out);

/* The next chunk of s: s->chunk bytes (fewer only at the end), read
 * into buf (fd sources) or pointed at in memory; *p gets where it is.
 * *hole is set when the chunk lies wholly in a hole of a sparse file (its
 * bytes are zeros in buf, and a raw object need not write them). Bytes in
 * the chunk (0 at the end), or -errno. */
ssize_t ingest_src_next(struct ingest_src *s, unsigned char *buf,
                        const unsigned char **p, int *hole);

#endif
