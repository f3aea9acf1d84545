/*
 * tree_index.c - tree objects mapped and indexed once, for lookups in
 * O(log n) and listings without copies (see tree_index.h). Loading maps
 * the object read-only (reads it, when small), checks its hash against its name and parses every
 * line (cas_tree_parse) checking that names strictly increase, recording
 * where each line starts; what the cache keeps is the mapping and that
 * offset array, counted as their bytes. A lookup or a listing entry
 * parses one line again (it was checked when loaded).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowyfs/cas.h"
#include "flowyfs/lru.h"

/* Trees this big are mapped; smaller ones are read into memory, so that
 * a store of many small trees never runs into the kernel's limit on
 * mappings (vm.max_map_count, 65530 by default): the cache holds at most
 * CAS_TREE_CACHE / TREE_MAP_MIN mappings. */
#define TREE_MAP_MIN ((size_t)1 << 20)

/* What the cache holds for one tree. */
struct tidx {
	const char *text;       /* the text (NULL for an empty tree) */
	size_t len;
	int mapped;             /* text is a mapping, else malloc'd */
	size_t n;
	uint64_t *off;          /* n + 1 line starts; off[n] == len */
};

struct tree_index {
	struct lru *cache;
	struct lru_ref *ref;
	const struct tidx *ix;
};

void tree_index_drop(void *val)
{
	struct tidx *x = val;

	if (!x)
		return;
	if (x->mapped) {
		if (munmap((void *)x->text, x->len) < 0)
			abort();  /* our own mapping: only a bug makes this fail */
	} else
		free((void *)x->text);
	free(x->off);
	free(x);
}

/* The name of line i: where it starts and its length. */
static const char *line_name(const struct tidx *x, size_t i, size_t *len)
{
	const char *l = x->text + x->off[i];
	size_t ll = (size_t)(x->off[i + 1] - x->off[i]) - 1;  /* no newline */
	const char *tab = memchr(l, '\t', ll);

	*len = ll - (size_t)(tab + 1 - l);
	return tab + 1;
}

static int name_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : al < bl ? -1 : al > bl;
}

/* Map, check and index tree hex. */
static int tidx_load(cas *c, const char *hex, struct tidx **out)
{
	struct tidx *x = calloc(1, sizeof *x);
	char check[CAS_HEX_LEN + 1];
	struct stat st;
	int fd, rc = 0;

	*out = NULL;
	if (!x)
		return -ENOMEM;
	fd = cas_obj_open(c, hex, ".tree");
	if (fd < 0) {
		free(x);
		return fd;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	x->len = (size_t)st.st_size;
	if (x->len >= TREE_MAP_MIN) {
		void *m = mmap(NULL, x->len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED) {
			rc = -errno;
			goto out;
		}
		x->text = m;
		x->mapped = 1;
	} else if (x->len) {
		char *b = malloc(x->len);
		ssize_t got = b ? cas_pread_full(fd, b, x->len, 0) : -ENOMEM;
		x->text = b;
		if (got != (ssize_t)x->len) {
			rc = got < 0 ? (int)got : -EIO;
			goto out;
		}
	}
	cas_hash_buf(check, x->text ? x->text : "", x->len);
	if (strcmp(check, hex) != 0 || (x->len && x->text[x->len - 1] != '\n')) {
		rc = -EIO;
		goto out;
	}
	size_t cap = x->len / 64 + 16;  /* a guess, grown as needed */
	x->off = malloc(cap * sizeof *x->off);
	if (!x->off) {
		rc = -ENOMEM;
		goto out;
	}
	const char *p = x->text, *end = x->text + x->len, *prev = NULL;
	size_t prev_len = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		struct cas_entry e;
		size_t name_off;
		if (x->n + 2 > cap) {
			uint64_t *o = realloc(x->off, cap * 2 * sizeof *o);
			if (!o) {
				rc = -ENOMEM;
				goto out;
			}
			x->off = o;
			cap *= 2;
		}
		x->off[x->n++] = (uint64_t)(p - x->text);
		rc = cas_tree_parse(p, (size_t)(nl - p), &e, &name_off);
		if (rc < 0)
			goto out;
		const char *name = p + name_off;
		size_t nlen = (size_t)(nl - name);
		if (prev && name_cmp(prev, prev_len, name, nlen) >= 0) {
			rc = -EIO;  /* unsorted or duplicate */
			goto out;
		}
		prev = name;
		prev_len = nlen;
		p = nl + 1;
	}
	x->off[x->n] = x->len;
out:
	close(fd);
	if (rc < 0)
		tree_index_drop(x);
	else
		*out = x;
	return rc;
}

int tree_index_open(cas *c, const char *hex, tree_index **out)
{
	struct lru *cache = cas_tree_cache(c);
	tree_index *t;
	struct tidx *x;
	int rc;

	*out = NULL;
	if (!cas_hex_valid(hex))
		return -EINVAL;
	t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	t->cache = cache;
	t->ix = lru_get(cache, hex, &t->ref);
	if (!t->ix) {
		rc = tidx_load(c, hex, &x);
		if (rc < 0) {
			free(t);
			return rc;
		}
		t->ix = lru_put(cache, hex, x, x->len + (x->n + 1) * sizeof *x->off, &t->ref);
		if (!t->ix) {
			free(t);
			return -ENOMEM;
		}
	}
	*out = t;
	return 0;
}

void tree_index_close(tree_index *t)
{
	if (!t)
		return;
	lru_release(t->cache, t->ref);
	free(t);
}

size_t tree_index_count(const tree_index *t)
{
	return t->ix->n;
}

size_t tree_index_bytes(const tree_index *t)
{
	return t->ix->len;
}

/* Parse line i (checked when loaded, so this cannot fail). */
static void line_entry(const struct tidx *x, size_t i, struct cas_entry *e)
{
	size_t name_off;

	(void)cas_tree_parse(x->text + x->off[i],
	                     (size_t)(x->off[i + 1] - x->off[i]) - 1, e, &name_off);
}

int tree_index_find(const tree_index *t, const char *name, size_t len,
                    struct cas_entry *e)
{
	const struct tidx *x = t->ix;
	size_t lo = 0, hi = x->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2, ml;
		const char *m = line_name(x, mid, &ml);
		int c = name_cmp(name, len, m, ml);
		if (c == 0) {
			line_entry(x, mid, e);
			return 0;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -ENOENT;
}

int tree_index_entry(const tree_index *t, size_t i, struct cas_entry *e,
                     char *name, size_t cap)
{
	size_t nl;
	const char *n = line_name(t->ix, i, &nl);

	if (nl + 1 > cap)
		return -ENAMETOOLONG;
	line_entry(t->ix, i, e);
	memcpy(name, n, nl);
	name[nl] = '\0';
	e->name = name;
	return 0;
}
