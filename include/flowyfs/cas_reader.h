/*
 * cas_reader.h - reading a blob. Included by cas.h.
 *
 * For a raw object cas_reader_fd() returns an fd that reads the content
 * directly at the same offsets (for splice; the kernel's own read-ahead
 * on the object file serves a sequential reader). For a .zst object it
 * returns -1 and cas_reader_pread decodes only what the range needs: a
 * read inside one frame decodes that frame up to the end of the range;
 * once reads go forward frame after frame, a bounded set of helper
 * threads decodes the next frames ahead in parallel. Readers are safe to
 * use from several threads at once (FUSE's multithreaded loop); the
 * helpers are stopped and joined by cas_reader_close, which must not race
 * a pread on the same reader (the caller's handle reference sees to it).
 */
#ifndef FLOWYFS_CAS_READER_H
#define FLOWYFS_CAS_READER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cas;
typedef struct cas_reader cas_reader;

/* Open a reader of blob hex: 0, -ENOENT, -EIO (a damaged .zst), -errno.
 * cas_reader_close(NULL) is a no-op. */
int cas_reader_open(struct cas *c, const char *hex, cas_reader **out);
/* Read up to len content bytes at off: bytes read (short only at the end
 * of the content), or -errno when nothing could be read. */
ssize_t cas_reader_pread(cas_reader *r, void *buf, size_t len, uint64_t off);
int cas_reader_fd(const cas_reader *r);
uint64_t cas_reader_size(const cas_reader *r);
void cas_reader_close(cas_reader *r);

#endif
