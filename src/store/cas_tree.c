/*
 * cas_tree.c - tree objects: a directory listed as sorted text lines that
 * name each entry's object (format in cas_tree.h): the line parser, the
 * writer, and cas_tree_read, which hands out every entry at once (copied
 * from the tree index, which checked the text against its name and every
 * line and the sort order, so a damaged or planted tree is refused -EIO
 * rather than half-served; one allocation for names).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowyfs/cas.h"
#include "flowyfs/ingest.h"
#include "flowyfs/util.h"

/* What cas_tree_read hands out: the entries' names point into names. */
struct tree_impl {
	struct cas_tree pub;
	char *names;
};

int cas_tree_parse(const char *line, size_t len, struct cas_entry *e,
                   size_t *name_off)
{
	const char *p = line, *end = line + len, *name;
	size_t nlen;
	uint64_t v;

	if (len < 2 + 2 + CAS_HEX_LEN + 4 || (p[0] != 'f' && p[0] != 'd' && p[0] != 'l') ||
	    p[1] != ' ')
		return -EIO;
	e->type = p[0];
	p += 2;
	v = 0;
	for (int k = 0; ; k++, p++) {
		if (p < end && *p == ' ' && k > 0)
			break;
		if (p >= end || *p < '0' || *p > '7' || k >= 6)
			return -EIO;
		v = v * 8 + (uint64_t)(*p - '0');
	}
	if (v > 07777)
		return -EIO;
	e->mode = (unsigned)v;
	p++;
	if ((size_t)(end - p) < CAS_HEX_LEN + 1)
		return -EIO;
	unsigned bad = 0;
	for (int k = 0; k < CAS_HEX_LEN; k++) {  /* no branch a digit: hot in big trees */
		unsigned char ch = (unsigned char)p[k];
		bad |= !((ch >= '0' && ch <= '9') | (ch >= 'a' && ch <= 'f'));
		e->hex[k] = (char)ch;
	}
	e->hex[CAS_HEX_LEN] = '\0';
	if (bad || p[CAS_HEX_LEN] != ' ')
		return -EIO;
	p += CAS_HEX_LEN + 1;
	v = 0;
	for (int k = 0; ; k++, p++) {
		if (p < end && *p == '\t' && k > 0)
			break;
		if (p >= end || *p < '0' || *p > '9' || k >= 20 ||
		    v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -EIO;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	e->size = v;
	name = p + 1;
	nlen = (size_t)(end - name);
	if (!nlen || (nlen == 1 && name[0] == '.') ||
	    (nlen == 2 && name[0] == '.' && name[1] == '.'))
		return -EIO;
	for (size_t k = 0; k < nlen; k++)  /* names are short: one pass */
		if (name[k] == '/' || name[k] == '\t' || name[k] == '\n' || !name[k])
			return -EIO;
	e->name = NULL;
	*name_off = (size_t)(name - line);
	return 0;
}

int cas_tree_read(cas *c, const char *hex, struct cas_tree **out)
{
	struct tree_impl *t = NULL;
	tree_index *ix = NULL;
	size_t n, room, used = 0;
	int rc;

	*out = NULL;
	rc = tree_index_open(c, hex, &ix);  /* checks it, or finds it checked */
	if (rc < 0)
		return rc;
	n = tree_index_count(ix);
	room = tree_index_bytes(ix) + 1;  /* every name is shorter than its line */
	t = calloc(1, sizeof *t);
	if (t) {
		t->pub.entries = calloc(n ? n : 1, sizeof *t->pub.entries);
		t->names = malloc(room);
	}
	if (!t || !t->pub.entries || !t->names) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct cas_entry *e = &t->pub.entries[i];
		rc = tree_index_entry(ix, i, e, t->names + used, room - used);
		if (rc < 0)
			goto out;
		used += strlen(e->name) + 1;
	}
	t->pub.n = n;
	*out = &t->pub;
	t = NULL;
out:
	tree_index_close(ix);
	cas_tree_free(t ? &t->pub : NULL);
	return rc;
}

static int entry_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct cas_entry *)elem)->name);
}

const struct cas_entry *cas_tree_find(const struct cas_tree *t,
                                      const char *name)
{
	if (!t || !name || !t->n)
		return NULL;
	return bsearch(name, t->entries, t->n, sizeof *t->entries, entry_cmp);
}

void cas_tree_free(struct cas_tree *t)
{
	struct tree_impl *ti = (struct tree_impl *)t;

	if (!t)
		return;
	free(ti->pub.entries);
	free(ti->names);
	free(ti);
}


void cas_tree_add(struct strbuf *text, char type, unsigned mode, const char *hex,
                  uint64_t size, const char *name)
{
	strbuf_printf(text, "%c %04o %s %llu\t%s\n", type, mode, hex,
	              (unsigned long long)size, name);
}

int cas_tree_put(cas *c, char out[CAS_HEX_LEN + 1], const struct cas_entry *e, size_t n)
{
	struct strbuf text = {0};
	for (size_t i = 0; i < n; i++) {
		if (!e[i].name[0] || strpbrk(e[i].name, "/\t\n") || !strcmp(e[i].name, ".") ||
		    !strcmp(e[i].name, "..") || (i && strcmp(e[i - 1].name, e[i].name) >= 0)) {
			strbuf_release(&text);
			return -EINVAL;
		}
		cas_tree_add(&text, e[i].type, e[i].mode, e[i].hex, e[i].size, e[i].name);
	}
	struct ingest_src s = { .fd = -1, .mem = (const unsigned char *)(text.buf ? text.buf : ""),
	                        .len = text.len };
	int rc = ingest_put(c, out, &s, CAS_TREE, NULL);
	strbuf_release(&text);
	return rc;
}
