/* test_syncer.c - the syncer thread: a job (a count of objects and a
 * descriptor on their file system) is synced, reads done and the wake-up
 * comes after it; jobs finish in the order given; a bad descriptor ends
 * its job with the error; stopping finishes what was queued; a job waits
 * its turn after a sync (group commit) unless somebody waits for it, and
 * one syncfs serves every job queued meanwhile on one file system. */
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
	CHECK_INT(syncer_start(&sy, 0, on_wake, NULL), 0);
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
	CHECK_INT(syncer_start(&sy, 0, on_wake, NULL), 0);
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

TEST(jobs_queued_during_the_wait_share_one_sync)
{
	struct syncer *sy = NULL;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int other = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dfd >= 0 && other >= 0);
	struct cas_syncs a = {.fd = dfd, .n = 1}, b = {.fd = dfd, .n = 2},
	                 c = {.fd = dfd, .n = 1}, d = {.fd = other, .n = 1}, none = {0};
	struct sync_job ja = {0}, jb = {0}, jc = {0}, jd = {0}, jn = {0};
	/* An hour between syncs: only a waiter gets one sooner. */
	CHECK_INT(syncer_start(&sy, 3600, on_wake, NULL), 0);
	syncer_submit(sy, &ja, &a);
	CHECK_INT(syncer_check(sy, &ja, 1), SYNC_DONE); /* the first is not held */
	CHECK_INT(syncer_syncs(sy), 1);
	syncer_submit(sy, &jb, &b);
	syncer_submit(sy, &jn, &none);
	syncer_submit(sy, &jd, &d);
	syncer_submit(sy, &jc, &c);
	CHECK_INT(syncer_check(sy, &jb, 0), SYNC_QUEUED); /* its turn is an hour off */
	CHECK_INT(syncer_syncs(sy), 1);
	CHECK_INT(syncer_check(sy, &jc, 1), SYNC_DONE); /* waiting hurries it */
	CHECK_INT(syncer_check(sy, &jb, 0), SYNC_DONE);
	CHECK_INT(syncer_check(sy, &jn, 0), SYNC_DONE);
	CHECK_INT(syncer_check(sy, &jd, 0), SYNC_DONE);
	/* b and c share one syncfs, d's file system gets its own, the empty
	 * job none. */
	CHECK_INT(syncer_syncs(sy), 3);
	CHECK_INT(jb.rc, 0);
	CHECK_INT(jc.rc, 0);
	CHECK_INT(jd.rc, 0);
	CHECK_INT(jn.rc, 0);
	syncer_stop(sy);
	close(other);
	close(dfd);
}

TEST(a_failed_sync_fails_the_jobs_it_served)
{
	struct syncer *sy = NULL;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dfd >= 0);
	struct cas_syncs first = {.fd = dfd, .n = 1}, a = {.fd = 1000000, .n = 1},
	                 b = {.fd = 1000000, .n = 3}, c = {.fd = dfd, .n = 1};
	struct sync_job j0 = {0}, ja = {0}, jb = {0}, jc = {0};
	CHECK_INT(syncer_start(&sy, 3600, on_wake, NULL), 0);
	syncer_submit(sy, &j0, &first);
	CHECK_INT(syncer_check(sy, &j0, 1), SYNC_DONE);
	syncer_submit(sy, &ja, &a);
	syncer_submit(sy, &jb, &b);
	syncer_submit(sy, &jc, &c);
	CHECK_INT(syncer_check(sy, &jc, 1), SYNC_DONE);
	CHECK_INT(ja.rc, -EBADF);
	CHECK_INT(jb.rc, -EBADF); /* served by a's sync, which failed */
	CHECK_INT(jc.rc, 0);      /* another file system's sync */
	CHECK_INT(syncer_syncs(sy), 3);
	syncer_stop(sy);
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
	RUN(jobs_queued_during_the_wait_share_one_sync);
	RUN(a_failed_sync_fails_the_jobs_it_served);
	util_rm_rf(dir);
	return CHECK_DONE();
}
