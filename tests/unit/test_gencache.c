/*
 * test_gencache.c - the generation cache of rendered views: a hit only at
 * the generation the text was kept for, an older entry dropped when seen,
 * replacement, the slot and byte bounds with the least recently used out
 * first, and that texts come back whole (length and NUL).
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "flowyfs/gencache.h"
#include "flowyfs/util.h"

TEST(hit_only_at_its_generation)
{
	gencache_clear();
	size_t len = 0, n = 0, bytes = 0;
	gencache_put("metrics/p/runs.tsv", 7, "run\tstatus\n1\tok\n", 16);
	char *t = gencache_get("metrics/p/runs.tsv", 7, &len);
	CHECK_STR(t, "run\tstatus\n1\tok\n");
	CHECK_INT(len, 16);
	free(t);
	CHECK_INT(gencache_len("metrics/p/runs.tsv", 7, &len), 1);
	CHECK_INT(len, 16);
	CHECK(gencache_get("metrics/p/other", 7, &len) == NULL);
	/* The store moved on: a miss, and the old text is gone for good. */
	CHECK(gencache_get("metrics/p/runs.tsv", 8, &len) == NULL);
	gencache_usage(&n, &bytes);
	CHECK_INT(n, 0);
	CHECK_INT(bytes, 0);
	CHECK(gencache_get("metrics/p/runs.tsv", 7, &len) == NULL);
}

TEST(put_replaces)
{
	gencache_clear();
	size_t n = 0, bytes = 0;
	gencache_put("a", 1, "one", 3);
	gencache_put("a", 2, "second", 6);
	CHECK(gencache_get("a", 1, NULL) == NULL);
	gencache_put("a", 2, "second", 6);
	char *t = gencache_get("a", 2, NULL);
	CHECK_STR(t, "second");
	free(t);
	gencache_usage(&n, &bytes);
	CHECK_INT(n, 1);
	CHECK_INT(bytes, 6);
}

TEST(text_with_nul_comes_back_whole)
{
	gencache_clear();
	size_t len = 0;
	gencache_put("b", 3, "x\0y", 3);
	char *t = gencache_get("b", 3, &len);
	CHECK(t != NULL);
	CHECK_INT(len, 3);
	CHECK(!memcmp(t, "x\0y", 4));
	free(t);
}

TEST(least_recently_used_goes_first)
{
	gencache_clear();
	char path[32];
	for (int i = 0; i < GENCACHE_SLOTS; i++) {
		snprintf(path, sizeof path, "p%d", i);
		gencache_put(path, 1, path, strlen(path));
	}
	size_t len;
	CHECK_INT(gencache_len("p0", 1, &len), 1); /* p0 used: p1 is the oldest */
	gencache_put("new", 1, "new", 3);
	CHECK_INT(gencache_len("p0", 1, &len), 1);
	CHECK_INT(gencache_len("p1", 1, &len), 0);
	CHECK_INT(gencache_len("p2", 1, &len), 1);
	CHECK_INT(gencache_len("new", 1, &len), 1);
	size_t n = 0, bytes = 0;
	gencache_usage(&n, &bytes);
	CHECK_INT(n, GENCACHE_SLOTS);
}

TEST(bytes_are_bounded)
{
	gencache_clear();
	size_t big = GENCACHE_BYTES / 2, n = 0, bytes = 0, len;
	char *text = xmalloc(big + 1);
	memset(text, 'x', big + 1);
	gencache_put("too-big", 1, text, big + 1);      /* over half: not kept */
	CHECK_INT(gencache_len("too-big", 1, &len), 0);
	gencache_put("one", 1, text, big);
	gencache_put("two", 1, text, big);
	gencache_usage(&n, &bytes);
	CHECK_INT(n, 2);
	CHECK_INT(bytes, GENCACHE_BYTES);
	gencache_put("three", 1, "3", 1);               /* "one" makes room */
	CHECK_INT(gencache_len("one", 1, &len), 0);
	CHECK_INT(gencache_len("two", 1, &len), 1);
	CHECK_INT(gencache_len("three", 1, &len), 1);
	gencache_usage(&n, &bytes);
	CHECK(bytes <= GENCACHE_BYTES);
	free(text);
	gencache_clear();
	gencache_usage(&n, &bytes);
	CHECK_INT(n, 0);
	CHECK_INT(bytes, 0);
}

int main(void)
{
	RUN(hit_only_at_its_generation);
	RUN(put_replaces);
	RUN(text_with_nul_comes_back_whole);
	RUN(least_recently_used_goes_first);
	RUN(bytes_are_bounded);
	gencache_clear();
	return CHECK_DONE();
}
