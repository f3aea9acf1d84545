/*
 * cas.h - the content-addressed object store: names, opening, hashing,
 * stat, and the temp-file-then-publish step every put ends with. The
 * store's other parts have headers of their own, included at the end, so
 * a user of the store includes this one only:
 *   cas_put.h     storing buffers, files and directories (src/store/cas_put.c)
 *   cas_tree.h    tree objects (src/store/cas_tree.c)
 *   cas_reader.h  reading blobs, with parallel read-ahead (src/store/cas_reader.c)
 *   cas_export.h  copying an object out as plain files (src/store/cas_export.c)
 *   cas_gc.h      marking what is referenced, sweeping the rest (src/store/cas_gc.c)
 * and, inside the store only, zseek.h (the zstd seekable format) and
 * ingest.h (the parallel hash/compress/write pipeline).
 *
 * Every object is named by the SHA-256 (lowercase hex) of its uncompressed
 * content. Objects live under <dir>/<hex[0..2]>/<hex[2..]> with a suffix
 * telling how they are stored:
 *   ""       raw bytes, exactly the content (served by splice)
 *   ".zst"   zstd seekable format (zseek.h): independent frames of
 *            CAS_FRAME or CAS_FRAME_SMALL bytes of content, then a
 *            skippable frame holding the seek table (readers take any
 *            frame sizes the table lists, so objects written by older
 *            stores, with 1 MiB zstd -3 frames, read the same)
 *   ".tree"  a tree object (a directory), raw text, see cas_tree.h
 * Writes are atomic (temp file in <dir>/tmp, fsync, link into place) and
 * idempotent: putting content that already exists only returns its name.
 */
#ifndef FLOWYFS_CAS_H
#define FLOWYFS_CAS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CAS_HEX_LEN 64
/* The chunk a put reads, and the content bytes per frame of a new .zst
 * object whose sample compresses 8:1 or better; other compressible
 * content gets frames of CAS_FRAME_SMALL (random reads decode less). */
#define CAS_FRAME (2 * 1024 * 1024)
#define CAS_FRAME_SMALL (128 * 1024)
/* The store's shared caches (lru.h), per cas handle: decoded frames of
 * .zst objects, which serve random reads from every open of an object,
 * and mapped, indexed tree objects. Bytes each may hold (what is in use
 * at the moment may add to it); the frame cache holds every frame of a
 * 256 MiB object with room to spare. */
#define CAS_FRAME_CACHE ((size_t)384 << 20)
#define CAS_TREE_CACHE ((size_t)512 << 20)
/* "ab/<62 hex>.tree" and a NUL. */
#define CAS_NAME_LEN 80

typedef struct cas cas;

enum cas_kind { CAS_BLOB = 1, CAS_TREE = 2 };

struct cas_stat {
	enum cas_kind kind;
	int compressed;        /* 1 when stored as .zst */
	uint64_t size;         /* uncompressed content size */
	uint64_t stored_size;  /* bytes on disk */
};

/* Open (creating when missing) the store rooted at dir; 0 or -errno.
 * cas_close(NULL) is a no-op. */
int cas_open(cas **out, const char *dir);
void cas_close(cas *c);
/* The caches of the store's parts (cas_reader.c, tree_index.c); they live
 * until cas_close, so every reader and tree index must be closed first. */
struct lru;
struct lru *cas_frame_cache(cas *c);
struct lru *cas_tree_cache(cas *c);

/* Is hex a well-formed object name (64 lowercase hex digits)? */
int cas_hex_valid(const char *hex);

/* SHA-256 of a buffer or of a file's content, as hex (libcrypto EVP). */
void cas_hash_buf(char out[CAS_HEX_LEN + 1], const void *buf, size_t len);
/* SHA-256 as libcrypto's provider gives it, fetched once: EVP_sha256()
 * makes every digest init fetch it again (a tenth of a small put). */
struct evp_md_st;
const struct evp_md_st *cas_sha256(void);
int cas_hash_file(char out[CAS_HEX_LEN + 1], const char *path);
/* The same, reading no holes and giving up with -ECANCELED once *stop is
 * set by another thread (stop may be NULL). */
int cas_hash_file_stop(char out[CAS_HEX_LEN + 1], const char *path, const int *stop);
/* SHA-256 digest bytes as lowercase hex. */
void cas_hex_of(char out[CAS_HEX_LEN + 1], const unsigned char md[32]);

/* What is stored under hex: 0, -ENOENT when absent, -errno. (Content
 * stored both as a blob and as a tree, like the empty text, reports the
 * blob; tree entries say which one they mean.) */
int cas_stat(cas *c, const char *hex, struct cas_stat *out);

/* ---- for the store's own modules (src/store/) ------------------------ */

/* "ab/cdef...<suffix>", relative to the store directory. */
void cas_obj_name(char out[CAS_NAME_LEN], const char *hex, const char *suffix);
/* Open object hex stored with suffix read-only: an fd or -errno. */
int cas_obj_open(cas *c, const char *hex, const char *suffix);
/* Is an object of that kind stored under hex (a blob raw or .zst)? A
 * put asks this before writing; a found object gets its mtime set to
 * now, so a gc running meanwhile (cas_gc.h spares objects modified since
 * it began) keeps the content the put is about to record. */
int cas_obj_exists(cas *c, const char *hex, enum cas_kind kind);
/* The same question without touching anything (a gc's mark). */
int cas_obj_stored(cas *c, const char *hex, enum cas_kind kind);
/* The store directory's descriptor (owned by c), for cas_gc.c's walk. */
int cas_dirfd(cas *c);

/* A temp object being written: anonymous (O_TMPFILE) where the file
 * system allows, else a unique name in <dir>/tmp. */
struct cas_tmp {
	int fd;
	char name[64];  /* named temp in tmp/, else "" */
};
/* Objects published before they were made durable: how many, and a
 * descriptor on their file system (the store's, not owned). One syncfs
 * makes them all durable (cas_syncs_flush), which must come before
 * anything that names them is committed: one flush of the disk for a
 * batch of objects, and no descriptor held per object. */
struct cas_syncs {
	int fd;
	size_t n;
};
/* syncfs when anything is pending; 0 or -errno. Nothing to free. */
int cas_syncs_flush(struct cas_syncs *s);

/* Create a temp object (t->fd open read-write); 0 or -errno. */
int cas_tmp_create(cas *c, struct cas_tmp *t);
/* Make a temp ahead (one at most is kept), for the next cas_tmp_take:
 * its inode is then made off the path of whoever waits for that put.
 * Nothing is kept where the file system has no O_TMPFILE. */
void cas_tmp_stock(cas *c);
/* The temp made ahead if there is one (its time set to now, which a gc
 * takes as its birth, cas_gc.h), else a new one (cas_tmp_create). 0 or
 * -errno. */
int cas_tmp_take(cas *c, struct cas_tmp *t);
/* Give the finished temp its final name hex+suffix: fsync it, then link
 * it in without ever replacing (an existing object of that kind wins,
 * unless its size says it is not this content: what a crash before its
 * fsync leaves, which is replaced). With later, it is linked at once,
 * without its fsync: cas_syncs_flush(later) makes it durable. The temp is gone afterwards
 * whatever happens; 0 or -errno. */
int cas_tmp_commit(cas *c, struct cas_tmp *t, const char *hex,
                   const char *suffix, enum cas_kind kind, struct cas_syncs *later);
/* Throw the temp away (no-op once committed or dropped). */
void cas_tmp_drop(cas *c, struct cas_tmp *t);

/* Write all of buf / read len bytes at off (fewer only at end of file);
 * 0 / bytes read, or -errno. */
int cas_write_all(int fd, const void *buf, size_t len);
ssize_t cas_pread_full(int fd, void *buf, size_t len, uint64_t off);

#include "flowyfs/cas_put.h"
#include "flowyfs/cas_tree.h"
#include "flowyfs/cas_reader.h"
#include "flowyfs/tree_index.h"
#include "flowyfs/cas_export.h"
#include "flowyfs/cas_gc.h"

#endif
