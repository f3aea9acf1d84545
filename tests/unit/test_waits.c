/* test_waits.c - the registry of unanswered wait reads: kept in order,
 * taken out per run or one request at a time, each exactly once, also
 * from many threads at once. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "flowyfs/waits.h"

static int reqs[100]; /* stand-ins for fuse_req_t: only their addresses count */

TEST(take_by_run_in_order)
{
	struct waits *w = waits_new();
	waits_add(w, 1, &reqs[0], 10);
	waits_add(w, 2, &reqs[1], 20);
	waits_add(w, 1, &reqs[2], 30);
	CHECK_INT(waits_count(w), 3);
	struct waits_req *out;
	CHECK_INT(waits_take_run(w, 1, &out), 2);
	CHECK(out[0].req == &reqs[0] && out[0].size == 10);
	CHECK(out[1].req == &reqs[2] && out[1].size == 30);
	free(out);
	CHECK_INT(waits_take_run(w, 1, &out), 0);
	CHECK(out == NULL);
	CHECK_INT(waits_count(w), 1);
	/* adding after a take from the tail keeps the list whole */
	waits_add(w, 3, &reqs[3], 1);
	CHECK_INT(waits_take_run(w, 2, &out), 1);
	free(out);
	CHECK_INT(waits_take_run(w, 3, &out), 1);
	CHECK(out[0].req == &reqs[3]);
	free(out);
	CHECK_INT(waits_count(w), 0);
	waits_free(w);
	waits_free(NULL);
}

TEST(take_one_request_once)
{
	struct waits *w = waits_new();
	size_t size = 0;
	waits_add(w, 5, &reqs[0], 7);
	waits_add(w, 5, &reqs[1], 8);
	CHECK_INT(waits_take_req(w, &reqs[1], &size), 1);
	CHECK_INT(size, 8);
	CHECK_INT(waits_take_req(w, &reqs[1], &size), 0); /* answered already */
	CHECK_INT(waits_take_req(w, &reqs[9], NULL), 0);
	struct waits_req *out;
	CHECK_INT(waits_take_run(w, 5, &out), 1);
	CHECK(out[0].req == &reqs[0]);
	free(out);
	CHECK_INT(waits_take_req(w, &reqs[0], NULL), 0);
	waits_add(w, 6, &reqs[2], 1); /* the tail was reset by the takes */
	CHECK_INT(waits_count(w), 1);
	waits_free(w); /* frees what is still kept */
}

struct race {
	struct waits *w;
	int taken[100];
};

static void *take_each(void *arg)
{
	struct race *r = arg;
	for (int i = 0; i < 100; i++)
		if (waits_take_req(r->w, &reqs[i], NULL))
			__atomic_add_fetch(&r->taken[i], 1, __ATOMIC_RELAXED);
	return NULL;
}

static void *take_runs(void *arg)
{
	struct race *r = arg;
	for (int run = 0; run < 10; run++) {
		struct waits_req *out;
		size_t n = waits_take_run(r->w, run, &out);
		for (size_t i = 0; i < n; i++)
			__atomic_add_fetch(&r->taken[(int *)out[i].req - reqs], 1, __ATOMIC_RELAXED);
		free(out);
	}
	return NULL;
}

TEST(every_request_answered_exactly_once_under_races)
{
	for (int round = 0; round < 50; round++) {
		struct race r = {.w = waits_new()};
		for (int i = 0; i < 100; i++)
			waits_add(r.w, i % 10, &reqs[i], 1);
		pthread_t a, b, c;
		pthread_create(&a, NULL, take_each, &r);
		pthread_create(&b, NULL, take_runs, &r);
		pthread_create(&c, NULL, take_each, &r);
		pthread_join(a, NULL);
		pthread_join(b, NULL);
		pthread_join(c, NULL);
		for (int i = 0; i < 100; i++)
			CHECK_INT(r.taken[i], 1);
		CHECK_INT(waits_count(r.w), 0);
		waits_free(r.w);
	}
}

int main(void)
{
	RUN(take_by_run_in_order);
	RUN(take_one_request_once);
	RUN(every_request_answered_exactly_once_under_races);
	return CHECK_DONE();
}
