/*
 * test_tree_index.c - unit tests for tree lookups and listings
 * (src/store/tree_index.c): lookups of the first, last and middle names
 * and of missing ones before, between and after them; names with odd
 * bytes (control bytes, bytes above 0x7f, spaces, a name that is a prefix
 * of another, a 255-byte name); listing in order with names copied, and
 * a buffer too small; the empty tree; one index shared by every open
 * (the cache's hits); a tree of 100,000 entries; refusals.
 * Everything happens under a mkdtemp directory in /tmp.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "store_check.h"
#include "flowyfs/cas.h"
#include "flowyfs/lru.h"

static char base[64], store[128];

/* Names in bytewise order, as cas_tree_put wants them. */
static char long_name[256];
static const char *names[] = {
	"\x01", " lead", "-", "A", "a", "a b", "ab", "abc", NULL /* long_name */,
	"z\x7f", "\xc3\xbc", "\xff\xfe",
};
#define NNAMES (sizeof names / sizeof *names)

static int put_names(cas *c, char hex[CAS_HEX_LEN + 1])
{
	char blob[CAS_HEX_LEN + 1];
	struct cas_entry e[NNAMES];
	int rc = cas_put_buf(c, blob, "x", 1);

	if (rc < 0)
		return rc;
	memset(long_name, 'b', 255);
	long_name[255] = '\0';
	names[8] = long_name;
	for (size_t i = 0; i < NNAMES; i++) {
		e[i].type = i == 3 ? 'd' : i == 4 ? 'l' : 'f';
		e[i].mode = i == 5 ? 0755 : 0644;
		memcpy(e[i].hex, blob, sizeof e[i].hex);
		e[i].size = i;
		e[i].name = (char *)names[i];
	}
	return cas_tree_put(c, hex, e, NNAMES);
}

TEST(test_find_edges)
{
	char hex[CAS_HEX_LEN + 1];
	struct cas_entry e;
	tree_index *t = NULL;
	cas *c = NULL;

	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(put_names(c, hex), 0);
	CHECK_INT(tree_index_open(c, hex, &t), 0);
	CHECK_INT(tree_index_count(t), NNAMES);
	for (size_t i = 0; i < NNAMES; i++) {
		memset(&e, 0, sizeof e);
		CHECK_INT(tree_index_find(t, names[i], strlen(names[i]), &e), 0);
		CHECK_INT(e.size, i);
		CHECK_INT(e.type, i == 3 ? 'd' : i == 4 ? 'l' : 'f');
		CHECK_INT(e.mode, i == 5 ? 0755 : 0644);
		CHECK(e.name == NULL);
	}
	/* missing: before the first, between, after the last, prefixes */
	static const char *const missing[] = {
		"", "\x01\x01", "\x00", "0", "B", "a c", "abcd", "ab ", "b", "zz", "\xff\xff",
	};
	for (size_t i = 0; i < sizeof missing / sizeof *missing; i++)
		CHECK_INT(tree_index_find(t, missing[i], strlen(missing[i]), &e), -ENOENT);
	/* a length shorter than the string: only that prefix counts */
	CHECK_INT(tree_index_find(t, "abc/d", 3, &e), 0);
	CHECK_INT(e.size, 7);
	CHECK_INT(tree_index_find(t, "bbbb", 4, &e), -ENOENT);
	tree_index_close(t);
	tree_index_close(NULL);
	cas_close(c);
}

TEST(test_entries_in_order)
{
	char hex[CAS_HEX_LEN + 1], name[256], small[8];
	struct cas_entry e;
	tree_index *t = NULL;
	cas *c = NULL;

	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(put_names(c, hex), 0);
	CHECK_INT(tree_index_open(c, hex, &t), 0);
	for (size_t i = 0; i < NNAMES; i++) {
		CHECK_INT(tree_index_entry(t, i, &e, name, sizeof name), 0);
		CHECK_STR(e.name, names[i]);
		CHECK(e.name == name);
		CHECK_INT(e.size, i);
	}
	CHECK_INT(tree_index_entry(t, 8, &e, name, 255), -ENAMETOOLONG);
	CHECK_INT(tree_index_entry(t, 1, &e, small, 5), -ENAMETOOLONG);
	CHECK_INT(tree_index_entry(t, 0, &e, small, 2), 0);
	CHECK_STR(small, "\x01");
	tree_index_close(t);
	cas_close(c);
}

TEST(test_empty_tree)
{
	char hex[CAS_HEX_LEN + 1];
	struct cas_entry e;
	tree_index *t = NULL;
	cas *c = NULL;

	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(cas_tree_put(c, hex, NULL, 0), 0);
	CHECK_INT(tree_index_open(c, hex, &t), 0);
	CHECK_INT(tree_index_count(t), 0);
	CHECK_INT(tree_index_find(t, "a", 1, &e), -ENOENT);
	tree_index_close(t);
	cas_close(c);
}

TEST(test_shared_and_refused)
{
	char hex[CAS_HEX_LEN + 1], none[CAS_HEX_LEN + 1];
	struct lru_stats before, after;
	tree_index *t1 = NULL, *t2 = NULL;
	struct cas_entry e;
	cas *c = NULL;

	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(put_names(c, hex), 0);
	lru_stats(cas_tree_cache(c), &before);
	CHECK_INT(tree_index_open(c, hex, &t1), 0);
	CHECK_INT(tree_index_open(c, hex, &t2), 0);
	lru_stats(cas_tree_cache(c), &after);
	CHECK_INT(after.misses - before.misses, 1);  /* loaded once */
	CHECK_INT(after.hits - before.hits, 1);      /* then shared */
	CHECK_INT(after.count, 1);
	tree_index_close(t1);
	CHECK_INT(tree_index_find(t2, "ab", 2, &e), 0);  /* still good */
	tree_index_close(t2);
	memset(none, 'a', CAS_HEX_LEN);
	none[CAS_HEX_LEN] = '\0';
	CHECK_INT(tree_index_open(c, none, &t1), -ENOENT);
	CHECK_INT(tree_index_open(c, "nothex", &t1), -EINVAL);
	CHECK(t1 == NULL);
	char blob[CAS_HEX_LEN + 1];
	CHECK_INT(cas_put_buf(c, blob, "not a tree", 10), 0);
	CHECK_INT(tree_index_open(c, blob, &t1), -ENOENT);  /* a blob is no tree */
	cas_close(c);
}

TEST(test_big_tree)
{
	size_t n = 100000;
	struct cas_entry *e = calloc(n, sizeof *e), got;
	char *nm = malloc(n * 8), hex[CAS_HEX_LEN + 1], blob[CAS_HEX_LEN + 1], key[16];
	tree_index *t = NULL;
	cas *c = NULL;

	CHECK(e && nm);
	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(cas_put_buf(c, blob, "", 0), 0);
	for (size_t i = 0; i < n; i++) {
		e[i].type = 'f';
		e[i].mode = 0644;
		e[i].size = i;
		memcpy(e[i].hex, blob, sizeof e[i].hex);
		e[i].name = nm + i * 8;
		snprintf(e[i].name, 8, "%07zu", i);
	}
	CHECK_INT(cas_tree_put(c, hex, e, n), 0);
	CHECK_INT(tree_index_open(c, hex, &t), 0);
	CHECK_INT(tree_index_count(t), n);
	for (size_t i = 0; i < n; i += 997) {
		snprintf(key, sizeof key, "%07zu", i);
		CHECK_INT(tree_index_find(t, key, 7, &got), 0);
		CHECK_INT(got.size, i);
	}
	CHECK_INT(tree_index_find(t, "0099999", 7, &got), 0);
	CHECK_INT(got.size, 99999);
	CHECK_INT(tree_index_find(t, "0100000", 7, &got), -ENOENT);
	CHECK_INT(tree_index_find(t, "000000", 6, &got), -ENOENT);
	tree_index_close(t);
	cas_close(c);
	free(nm);
	free(e);
}

int main(void)
{
	if (scratch_make(base, sizeof base, store, sizeof store, "treeidx") < 0)
		return 1;
	RUN(test_find_edges);
	RUN(test_entries_in_order);
	RUN(test_empty_tree);
	RUN(test_shared_and_refused);
	RUN(test_big_tree);
	scratch_remove(base);
	return CHECK_DONE();
}
