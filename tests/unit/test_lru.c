/*
 * test_lru.c - unit tests for the store's bounded caches (src/store/lru.c):
 * eviction in order of use once over the byte limit, held values never
 * evicted (and freed only at their last release), a value bigger than
 * the limit served but not kept, a second put of a key returning the
 * first value, removal, the counters, and lru_has (which they do not
 * count).
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "flowyfs/lru.h"

static int dropped[16];

/* Values are small ints, boxed; dropping one counts it. */
static void drop(void *v)
{
	dropped[*(int *)v]++;
	free(v);
}

static int *box(int i)
{
	int *p = malloc(sizeof *p);
	*p = i;
	return p;
}

static void put(struct lru *l, const char *key, int i, size_t bytes)
{
	struct lru_ref *ref;
	lru_put(l, key, box(i), bytes, &ref);
	lru_release(l, ref);
}

static int has(struct lru *l, const char *key)
{
	struct lru_ref *ref;
	void *v = lru_get(l, key, &ref);
	lru_release(l, ref);
	return v != NULL;
}

TEST(test_evicts_least_recently_used)
{
	struct lru *l = lru_new(300, drop);
	struct lru_stats st;

	memset(dropped, 0, sizeof dropped);
	put(l, "a", 1, 100);
	put(l, "b", 2, 100);
	put(l, "c", 3, 100);
	CHECK(has(l, "a"));          /* a is now the most recent */
	put(l, "d", 4, 100);         /* over the limit: b goes, not a */
	CHECK_INT(dropped[2], 1);
	CHECK(!has(l, "b"));
	CHECK(has(l, "a") && has(l, "c") && has(l, "d"));
	CHECK(lru_has(l, "c") && !lru_has(l, "b"));  /* no use, no count */
	put(l, "e", 5, 250);         /* needs three out: a, c and d go */
	CHECK_INT(dropped[1] + dropped[3] + dropped[4], 3);
	CHECK(has(l, "e"));
	lru_stats(l, &st);
	CHECK_INT(st.count, 1);
	CHECK_INT(st.bytes, 250);
	CHECK_INT(st.evictions, 4);
	CHECK_INT(st.limit, 300);
	CHECK_INT(st.hits, 5);
	CHECK_INT(st.misses, 1);
	lru_free(l);
	CHECK_INT(dropped[5], 1);    /* freeing drops what is left */
}

TEST(test_held_values_stay)
{
	struct lru *l = lru_new(100, drop);
	struct lru_ref *ra, *rb;
	int *a;

	memset(dropped, 0, sizeof dropped);
	put(l, "a", 1, 60);
	a = lru_get(l, "a", &ra);    /* held */
	CHECK(a && *a == 1);
	put(l, "b", 2, 60);          /* over: a is held, so b goes once released */
	CHECK_INT(dropped[1], 0);
	CHECK_INT(dropped[2], 1);
	CHECK_INT(*a, 1);
	CHECK(!has(l, "b"));
	CHECK(has(l, "a"));
	lru_release(l, ra);          /* now a may go */
	int *b = lru_put(l, "b2", box(3), 60, &rb);
	CHECK(b && *b == 3);
	CHECK_INT(dropped[1], 1);
	lru_release(l, rb);
	lru_free(l);
}

TEST(test_removed_value_lives_while_held)
{
	struct lru *l = lru_new(1000, drop);
	struct lru_ref *r;

	memset(dropped, 0, sizeof dropped);
	put(l, "k", 6, 10);
	int *v = lru_get(l, "k", &r);
	lru_remove(l, "k");
	CHECK(!has(l, "k"));
	CHECK_INT(dropped[6], 0);
	CHECK_INT(*v, 6);
	lru_release(l, r);
	CHECK_INT(dropped[6], 1);
	lru_remove(l, "absent");     /* a no-op */
	lru_free(l);
}

TEST(test_oversize_and_duplicate)
{
	struct lru *l = lru_new(100, drop);
	struct lru_ref *r1, *r2;
	struct lru_stats st;

	memset(dropped, 0, sizeof dropped);
	int *big = lru_put(l, "big", box(7), 101, &r1);
	CHECK(big && *big == 7);
	lru_stats(l, &st);
	CHECK_INT(st.count, 0);      /* served, not kept */
	lru_release(l, r1);
	CHECK_INT(dropped[7], 1);
	put(l, "x", 8, 10);
	int *x = lru_put(l, "x", box(9), 10, &r2);  /* another thread's value won */
	CHECK(x && *x == 8);
	CHECK_INT(dropped[9], 1);
	lru_release(l, r2);
	lru_release(l, NULL);        /* a no-op */
	lru_free(l);
	lru_free(NULL);
}

TEST(test_many_keys)
{
	struct lru *l = lru_new(1 << 20, free);
	char key[32];

	for (int i = 0; i < 5000; i++) {  /* the table grows past 64 buckets */
		snprintf(key, sizeof key, "k%d", i);
		struct lru_ref *r;
		lru_put(l, key, box(0), 1, &r);
		lru_release(l, r);
	}
	for (int i = 0; i < 5000; i += 499) {
		snprintf(key, sizeof key, "k%d", i);
		CHECK(has(l, key));
	}
	CHECK(!has(l, "k5000"));
	lru_free(l);
}

int main(void)
{
	RUN(test_evicts_least_recently_used);
	RUN(test_held_values_stay);
	RUN(test_removed_value_lives_while_held);
	RUN(test_oversize_and_duplicate);
	RUN(test_many_keys);
	return CHECK_DONE();
}
