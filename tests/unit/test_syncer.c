/* test_syncer.c - the syncer thread: a job (a count of objects and a
 * descriptor on their file system) is synced, reads done and the wake-up
 * comes after it; jobs finish in the order given; a bad descriptor ends
 * its job with the error; stopping finishes what was queued. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "flowyfs/syncer.h"
#include "flowyfs/util.h"

static char dir[] = "/tmp/flowyfs-test-syncer-XXXXXX";
static int wakes;
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_wake(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&wake_lock);
	wakes++;
	pthread_mutex_unlock(&wake_lock);
}

TEST(a_job_is_synced_and_announced)
{
	struct syncer *sy = NULL;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dfd >= 0);
	char *p = xasprintf("%s/written", dir);
	CHECK_INT(util_put_file(p, "x", 1), 0);
	free(p);
	struct cas_syncs pending = {.fd = dfd, .n = 3};
	struct sync_job job = {0};
	CHECK_INT(syncer_start(&sy, on_wake, NULL), 0);
	syncer_submit(sy, &job, &pending);
	CHECK_INT(pending.n, 0); /* moved into the job */
	CHECK_INT(syncer_check(sy, &job, 1), SYNC_DONE);
	CHECK_INT(job.rc, 0);
	CHECK_INT(job.pending.n, 0);
	syncer_stop(sy); /* joins: the job's wake-up has happened */
	pthread_mutex_lock(&wake_lock);
	int w = wakes;
	pthread_mutex_unlock(&wake_lock);
	CHECK(w >= 1);
	close(dfd);
}

TEST(jobs_finish_in_order_and_stop_finishes_the_queue)
{
	struct syncer *sy = NULL;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dfd >= 0);
	struct cas_syncs a = {.fd = dfd, .n = 20}, b = {.fd = dfd, .n = 1};
	struct sync_job ja = {0}, jb = {0};
	CHECK_INT(syncer_start(&sy, on_wake, NULL), 0);
	syncer_submit(sy, &ja, &a);
	syncer_submit(sy, &jb, &b);
	CHECK_INT(syncer_check(sy, &jb, 1), SYNC_DONE);
	CHECK_INT(syncer_check(sy, &ja, 0), SYNC_DONE); /* the earlier one, too */

	/* A bad descriptor: the job still ends, with the error. */
	struct cas_syncs bad = {.fd = 1000000, .n = 1};
	struct sync_job jbad = {0};
	syncer_submit(sy, &jbad, &bad);
	syncer_stop(sy); /* finishes the queue before it returns */
	CHECK_INT(jbad.state, SYNC_DONE);
	CHECK_INT(jbad.rc, -EBADF);
	close(dfd);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(a_job_is_synced_and_announced);
	RUN(jobs_finish_in_order_and_stop_finishes_the_queue);
	util_rm_rf(dir);
	return CHECK_DONE();
}
