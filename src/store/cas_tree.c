/*
 * cas_tree.c - tree objects: a directory listed as sorted text lines that
 * name each entry's object (format in cas_tree.h). Reading checks the
 * text against its name and every line and the sort order, so a damaged
 * or planted tree is refused (-EIO) rather than half-served; the entries
 * handed out point into the text, one allocation for names.
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

/* What cas_tree_read hands out: the entries' names point into text. */
struct tree_impl {
	struct cas_tree pub;
	char *text;
};

static int read_object(cas *c, const char *hex, const char *suffix,
                       char **text, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	int fd, rc = 0;

	fd = cas_obj_open(c, hex, suffix);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if ((uint64_t)st.st_size >= SIZE_MAX / 2) {
		rc = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	n = cas_pread_full(fd, buf, (size_t)st.st_size, 0);
	if (n != st.st_size) {
		rc = n < 0 ? (int)n : -EIO;
		goto out;
	}
	buf[n] = '\0';
	*text = buf;
	*len = (size_t)n;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

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
	char check[CAS_HEX_LEN + 1];
	size_t len = 0, n = 0;
	char *p, *end;
	int rc;

	*out = NULL;
	if (!cas_hex_valid(hex))
		return -EINVAL;
	t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	rc = read_object(c, hex, ".tree", &t->text, &len);
	if (rc < 0)
		goto fail;
	cas_hash_buf(check, t->text, len);
	if (strcmp(check, hex) != 0 || memchr(t->text, '\0', len) ||
	    (len && t->text[len - 1] != '\n')) {
		rc = -EIO;
		goto fail;
	}
	for (p = t->text; (p = memchr(p, '\n', len - (size_t)(p - t->text))); p++)
		n++;
	t->pub.entries = calloc(n ? n : 1, sizeof *t->pub.entries);
	if (!t->pub.entries) {
		rc = -ENOMEM;
		goto fail;
	}
	end = t->text + len;
	for (p = t->text; p < end; t->pub.n++) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		struct cas_entry *e = &t->pub.entries[t->pub.n];
		size_t name_off;
		*nl = '\0';
		rc = cas_tree_parse(p, (size_t)(nl - p), e, &name_off);
		if (rc < 0)
			goto fail;
		e->name = p + name_off;
		if (t->pub.n && strcmp(e[-1].name, e->name) >= 0) {
			rc = -EIO;  /* unsorted or duplicate */
			goto fail;
		}
		p = nl + 1;
	}
	*out = &t->pub;
	return 0;
fail:
	cas_tree_free(&t->pub);
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
	free(ti->text);
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
