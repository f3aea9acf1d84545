/*
 * cas.h - the content-addressed object store.
 *
 * Every object is named by the SHA-256 (lowercase hex) of its uncompressed
 * content. Objects live under <dir>/<hex[0..2]>/<hex[2..]> with a suffix
 * telling how they are stored:
 *   ""       raw bytes, exactly the content (served by splice)
 *   ".zst"   zstd seekable format: independent frames of CAS_FRAME bytes of
 *            content, then a skippable frame holding the seek table
 *   ".tree"  a tree object (a directory), raw text, see below
 * Writes are atomic (temp file in <dir>/tmp, fsync, rename) and idempotent:
 * putting content that already exists only returns its name.
 *
 * A tree object is text, one line per entry, sorted by name (bytewise):
 *     <type> <mode> <hex> <size>\t<name>\n
 * type is f (file), d (directory, hex names a tree), l (symlink, hex names
 * a blob holding the link target text); mode is octal permission bits
 * (0644/0755 for files, 0755 for d, 0777 for l); size is the content size
 * of a file or link target, 0 for d. The tree's name is the SHA-256 of
 * that text.
 */
#ifndef FLOWYFS_CAS_H
#define FLOWYFS_CAS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CAS_HEX_LEN 64
#define CAS_FRAME (1024 * 1024)

typedef struct cas cas;

enum cas_kind { CAS_BLOB = 1, CAS_TREE = 2 };

struct cas_stat {
	enum cas_kind kind;
	int compressed;        /* 1 when stored as .zst */
	uint64_t size;         /* uncompressed content size */
	uint64_t stored_size;  /* bytes on disk */
};

struct cas_entry {
	char type;             /* 'f', 'd' or 'l' */
	unsigned mode;
	char hex[CAS_HEX_LEN + 1];
	uint64_t size;
	char *name;
};

struct cas_tree {
	struct cas_entry *entries; /* sorted by name */
	size_t n;
};

/* Open (creating when missing) the store rooted at dir. */
int cas_open(cas **out, const char *dir);
void cas_close(cas *c);

/* Is hex a well-formed object name (64 lowercase hex digits)? */
int cas_hex_valid(const char *hex);

/* SHA-256 of a buffer or of a file's content, as hex (libcrypto EVP). */
void cas_hash_buf(char out[CAS_HEX_LEN + 1], const void *buf, size_t len);
int cas_hash_file(char out[CAS_HEX_LEN + 1], const char *path);
/* The same, reading no holes and giving up with -ECANCELED once *stop is
 * set by another thread (stop may be NULL). */
int cas_hash_file_stop(char out[CAS_HEX_LEN + 1], const char *path, const int *stop);

/* Store a buffer / a regular file as a blob. Content that compresses to
 * less than 90% of its size (judged on a sample first) is stored .zst,
 * otherwise raw. Returns 0 or -errno (-ENOSPC on a full disk, leaving no
 * partial object behind). */
int cas_put_buf(cas *c, char out[CAS_HEX_LEN + 1], const void *buf, size_t len);
int cas_put_file(cas *c, char out[CAS_HEX_LEN + 1], const char *path);

/* How a put of a path reads its source. */
struct cas_put_opts {
	int as_user;           /* open sources with these file-system ids */
	uid_t uid;             /* (a root daemon storing a step's outputs or */
	gid_t gid;             /* its file: inputs reads what it may read) */
	const int *stop;       /* nonzero (set by another thread): -ECANCELED */
	/* Leave out entry name of directory rel ("" for the top); NULL: none. */
	int (*skip)(const char *rel, const char *name, void *arg);
	void *skip_arg;
};

/* Store name (a file or a directory, recursively), relative to the
 * directory rootfd, and name it. For a directory the result is a tree.
 * Every entry is reached from its directory's fd, never by a path that
 * could be swapped; a symlink is kept as an 'l' entry only when relative
 * and resolving inside the root (openat2 RESOLVE_BENEATH); a symlink that
 * is absolute or escapes fails with -EXDEV. A top-level name that is a
 * symlink resolving inside the root is followed. Sockets, fifos and
 * devices fail with -EINVAL; a file the reader may not open fails -EACCES
 * ("a hard link to a file the step's user cannot read" when it has other
 * links). A file with holes is stored raw with its holes. With err, every
 * failure sets *err (malloc'd, caller frees), naming paths as
 * "<disp>/<path below root>", e.g. "out/model/link". o may be NULL. */
int cas_put_at(cas *c, char out[CAS_HEX_LEN + 1], enum cas_kind *kind_out,
               int rootfd, const char *name, const char *disp,
               const struct cas_put_opts *o, char **err);

/* The same for a path: root is the directory the output lives in (e.g. a
 * step's out/), NULL for the stored directory itself (or a file's
 * directory); a path outside root fails with -EINVAL. Messages name paths
 * from root's own name ("out/model/link"). */
int cas_put_path(cas *c, char out[CAS_HEX_LEN + 1], enum cas_kind *kind_out,
                 const char *path, const char *root, const struct cas_put_opts *o,
                 char **err);

/* What is stored under hex: 0, -ENOENT when absent, -errno. (Content
 * stored both as a blob and as a tree, like the empty text, reports the
 * blob; tree entries say which one they mean.) */
int cas_stat(cas *c, const char *hex, struct cas_stat *out);

/* Read a tree object; cas_tree_free(NULL) is a no-op. */
int cas_tree_read(cas *c, const char *hex, struct cas_tree **out);
const struct cas_entry *cas_tree_find(const struct cas_tree *t, const char *name);
void cas_tree_free(struct cas_tree *t);
/* Store a tree of the n entries e (sorted by name, each name one valid
 * path component) as out: the object a directory of them would be.
 * 0, -EINVAL for bad entries, or -errno. */
int cas_tree_put(cas *c, char out[CAS_HEX_LEN + 1], const struct cas_entry *e,
                 size_t n);

/* A reader for a blob. For a raw object cas_reader_fd() returns an fd
 * that reads the content directly at the same offsets (for splice);
 * for a .zst object it returns -1 and cas_reader_pread decompresses only
 * the frames the range touches. Readers are safe to use from several
 * threads at once. */
typedef struct cas_reader cas_reader;
int cas_reader_open(cas *c, const char *hex, cas_reader **out);
ssize_t cas_reader_pread(cas_reader *r, void *buf, size_t len, uint64_t off);
int cas_reader_fd(const cas_reader *r);
uint64_t cas_reader_size(const cas_reader *r);
void cas_reader_close(cas_reader *r);

/* Copy an object out to dest: a blob to a file, a tree to a directory
 * (recursively, recreating links, keeping holes). Used to materialize
 * step inputs and code.
 * dest must not exist (-EEXIST). Files come out read-only (0444, 0555
 * when executable), directories 0755. A failed blob leaves no file; a
 * failed tree leaves what was done for the caller to remove. */
int cas_export(cas *c, const char *hex, const char *dest);

#endif
