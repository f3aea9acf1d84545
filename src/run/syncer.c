/*
 * syncer.c - the thread that makes published objects durable (syncer.h):
 * a FIFO of jobs; one syncfs of the store's file system serves every job
 * queued when it starts, and the syncs are a set time apart unless
 * somebody waits for one (group commit).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flowyfs/log.h"
#include "flowyfs/syncer.h"
#include "flowyfs/util.h"

struct syncer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t work, done;  /* work: on CLOCK_MONOTONIC */
	struct sync_job *head, **tail;
	int stop;
	int hurry;                  /* somebody waits: sync now */
	int64_t every_ns;           /* from the end of a sync to the next */
	struct timespec next;       /* no sync before (CLOCK_MONOTONIC) */
	unsigned long syncs;        /* syncfs calls made */
	void (*wake)(void *);
	void *arg;
};

/* Hold off until s->next, unless stopping or hurried (lock held). */
static void wait_turn(struct syncer *s)
{
	while (!s->stop && !s->hurry)
		if (pthread_cond_timedwait(&s->work, &s->lock, &s->next) == ETIMEDOUT)
			return;
}

static void set_next(struct syncer *s)
{
	clock_gettime(CLOCK_MONOTONIC, &s->next);
	s->next.tv_sec += (time_t)(s->every_ns / 1000000000);
	s->next.tv_nsec += (long)(s->every_ns % 1000000000);
	if (s->next.tv_nsec >= 1000000000L) {
		s->next.tv_sec++;
		s->next.tv_nsec -= 1000000000L;
	}
}

/* Sync what the jobs of batch published: one syncfs per file system
 * (jobs on one share its result). Returns the syncfs calls made. */
static unsigned long sync_batch(struct sync_job *batch)
{
	struct { int fd, rc; } synced[8];
	size_t nsynced = 0;
	unsigned long made = 0;
	for (struct sync_job *j = batch; j; j = j->next) {
		size_t k = 0;
		while (k < nsynced && synced[k].fd != j->pending.fd)
			k++;
		if (!j->pending.n) {
			j->rc = 0;
		} else if (k < nsynced) {
			j->pending.n = 0; /* its file system was synced just now */
			j->rc = synced[k].rc;
		} else {
			j->rc = cas_syncs_flush(&j->pending);
			made++;
			if (nsynced < sizeof synced / sizeof *synced) {
				synced[nsynced].fd = j->pending.fd;
				synced[nsynced++].rc = j->rc;
			}
		}
	}
	return made;
}

static void *syncer_main(void *arg)
{
	log_thread_name("syncer");
	struct syncer *s = arg;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->head && !s->stop)
			pthread_cond_wait(&s->work, &s->lock);
		if (!s->head)
			break; /* stopping, and nothing left */
		wait_turn(s);
		/* Everything queued now was published before this sync starts. */
		struct sync_job *batch = s->head;
		s->head = NULL;
		s->tail = &s->head;
		s->hurry = 0;
		pthread_mutex_unlock(&s->lock);
		unsigned long made = sync_batch(batch);
		pthread_mutex_lock(&s->lock);
		s->syncs += made;
		set_next(s);
		while (batch) {
			struct sync_job *j = batch;
			batch = j->next;
			j->next = NULL;
			j->state = SYNC_DONE;
		}
		pthread_cond_broadcast(&s->done);
		pthread_mutex_unlock(&s->lock);
		s->wake(s->arg);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int syncer_start(struct syncer **out, double every, void (*wake)(void *), void *arg)
{
	struct syncer *s = xcalloc(1, sizeof *s);
	s->every_ns = (int64_t)(every * 1e9);
	s->tail = &s->head;
	s->wake = wake;
	s->arg = arg;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->work, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&s->done, NULL);
	/* Created with every signal blocked: a SIGTERM for the process must
	 * reach a thread that acts on it (the FUSE loop's), not this one. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&s->thread, NULL, syncer_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		pthread_cond_destroy(&s->done);
		pthread_cond_destroy(&s->work);
		pthread_mutex_destroy(&s->lock);
		free(s);
		return -rc;
	}
	*out = s;
	return 0;
}

void syncer_stop(struct syncer *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = 1;
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	pthread_cond_destroy(&s->done);
	pthread_cond_destroy(&s->work);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void syncer_submit(struct syncer *s, struct sync_job *j, struct cas_syncs *from)
{
	pthread_mutex_lock(&s->lock);
	j->pending = *from;
	memset(from, 0, sizeof *from);
	j->rc = 0;
	j->state = SYNC_QUEUED;
	j->next = NULL;
	/* Only a job into an empty queue wakes the thread: with jobs queued
	 * it is syncing or waiting for its turn, and looks at the queue after
	 * either (a wake-up per job took the scheduler's CPU once a step). */
	int first = !s->head;
	*s->tail = j;
	s->tail = &j->next;
	if (first)
		pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->lock);
}

enum sync_state syncer_check(struct syncer *s, struct sync_job *j, int wait)
{
	pthread_mutex_lock(&s->lock);
	if (wait && j->state == SYNC_QUEUED) {
		s->hurry = 1;
		pthread_cond_signal(&s->work);
	}
	while (wait && j->state == SYNC_QUEUED)
		pthread_cond_wait(&s->done, &s->lock);
	enum sync_state st = j->state;
	pthread_mutex_unlock(&s->lock);
	return st;
}

unsigned long syncer_syncs(struct syncer *s)
{
	pthread_mutex_lock(&s->lock);
	unsigned long n = s->syncs;
	pthread_mutex_unlock(&s->lock);
	return n;
}
