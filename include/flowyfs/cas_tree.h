/*
 * cas_tree.h - tree objects: a directory as text, one line per entry,
 * sorted by name (bytewise):
 *     <type> <mode> <hex> <size>\t<name>\n
 * type is f (file), d (directory, hex names a tree), l (symlink, hex names
 * a blob holding the link target text); mode is octal permission bits
 * (0644/0755 for files, 0755 for d, 0777 for l); size is the content size
 * of a file or link target, 0 for d. The tree's name is the SHA-256 of
 * that text; it is stored raw with the suffix ".tree".
 * Included by cas.h.
 */
#ifndef FLOWYFS_CAS_TREE_H
#define FLOWYFS_CAS_TREE_H

#include <stddef.h>
#include <stdint.h>

struct strbuf;

struct cas_entry {
	char type;             /* 'f', 'd' or 'l' */
	unsigned mode;
	char hex[64 + 1];
	uint64_t size;
	char *name;
};

struct cas_tree {
	struct cas_entry *entries; /* sorted by name */
	size_t n;
};

/* Read and check a tree object (its hash, sort order and every line):
 * 0, -ENOENT, -EIO for a malformed one, -errno. The caller frees *out
 * with cas_tree_free; cas_tree_free(NULL) is a no-op. */
int cas_tree_read(struct cas *c, const char *hex, struct cas_tree **out);
/* The entry called name, or NULL (binary search). */
const struct cas_entry *cas_tree_find(const struct cas_tree *t, const char *name);
void cas_tree_free(struct cas_tree *t);

/* Parse and check one entry line of len bytes (without its newline):
 * fills e but its name (NULL), and *name_off, where the name starts in
 * line (it runs to the end). 0, or -EIO for a malformed line. */
int cas_tree_parse(const char *line, size_t len, struct cas_entry *e,
                   size_t *name_off);

/* Append one entry line to the text of a tree being built (entries must
 * come in name order; the caller checked name has no '/', '\n', '\t'). */
void cas_tree_add(struct strbuf *text, char type, unsigned mode, const char *hex,
                  uint64_t size, const char *name);

/* Store a tree of the n entries e (sorted by name, each name one valid
 * path component) as out: the object a directory of them would be.
 * 0, -EINVAL for bad entries, or -errno. */
int cas_tree_put(struct cas *c, char out[64 + 1], const struct cas_entry *e, size_t n);

#endif
