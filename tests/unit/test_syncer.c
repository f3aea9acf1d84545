/* test_syncer.c - the syncer thread: a job's descriptors are fsync'd and
 * closed, the job reads done and the wake-up comes after it; jobs finish
 * in the order given; stopping finishes what was queued. */
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

/* n new files' descriptors appended to s. */
static int add_files(struct cas_syncs *s, int n, const char *tag)
{
	for (int i = 0; i < n; i++) {
		char *p = xasprintf("%s/%s%d", dir, tag, i);
		int fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		free(p);
		if (fd < 0 || write(fd, "x", 1) != 1)
			return -1;
		s->fd = xrealloc(s->fd, (s->n + 1) * sizeof *s->fd);
		s->fd[s->n++] = fd;
		s->cap = s->n;
	}
	return 0;
}

TEST(a_job_is_synced_closed_and_announced)
{
	struct syncer *sy = NULL;
	struct cas_syncs fds = {0};
	struct sync_job job = {0};
	CHECK_INT(syncer_start(&sy, on_wake, NULL), 0);
	CHECK_INT(add_files(&fds, 3, "a"), 0);
	int first = fds.fd[0], last = fds.fd[2];
	syncer_submit(sy, &job, &fds);
	CHECK_INT(fds.n, 0);          /* moved into the job */
	CHECK(fds.fd == NULL);
	CHECK_INT(syncer_check(sy, &job, 1), SYNC_DONE);
	CHECK_INT(job.rc, 0);
	CHECK(fcntl(first, F_GETFD) < 0 && errno == EBADF);
	CHECK(fcntl(last, F_GETFD) < 0 && errno == EBADF);
	syncer_stop(sy); /* joins: the wake-up of the job has happened */
	pthread_mutex_lock(&wake_lock);
	int w = wakes;
	pthread_mutex_unlock(&wake_lock);
	CHECK(w >= 1);
}

TEST(jobs_finish_in_order_and_stop_finishes_the_queue)
{
	struct syncer *sy = NULL;
	struct cas_syncs a = {0}, b = {0};
	struct sync_job ja = {0}, jb = {0};
	CHECK_INT(syncer_start(&sy, on_wake, NULL), 0);
	CHECK_INT(add_files(&a, 20, "b"), 0);
	CHECK_INT(add_files(&b, 1, "c"), 0);
	syncer_submit(sy, &ja, &a);
	syncer_submit(sy, &jb, &b);
	CHECK_INT(syncer_check(sy, &jb, 1), SYNC_DONE);
	CHECK_INT(syncer_check(sy, &ja, 0), SYNC_DONE); /* the earlier one, too */

	/* A bad descriptor: the job still ends, with the error. */
	struct cas_syncs bad = {0};
	struct sync_job jbad = {0};
	bad.fd = xcalloc(1, sizeof *bad.fd);
	bad.fd[0] = 1000000;
	bad.n = bad.cap = 1;
	syncer_submit(sy, &jbad, &bad);
	syncer_stop(sy); /* finishes the queue before it returns */
	CHECK_INT(jbad.state, SYNC_DONE);
	CHECK_INT(jbad.rc, -EBADF);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(a_job_is_synced_closed_and_announced);
	RUN(jobs_finish_in_order_and_stop_finishes_the_queue);
	util_rm_rf(dir);
	return CHECK_DONE();
}
