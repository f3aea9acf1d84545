/*
 * syncer.c - the thread that makes published objects durable (syncer.h):
 * a FIFO of jobs, each one syncfs of the store's file system for what was
 * published since the last, done one after the other.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/syncer.h"
#include "flowyfs/util.h"

struct syncer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	struct sync_job *head, **tail;
	int stop;
	void (*wake)(void *);
	void *arg;
};

static void *syncer_main(void *arg)
{
	struct syncer *s = arg;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->head && !s->stop)
			pthread_cond_wait(&s->work, &s->lock);
		struct sync_job *j = s->head;
		if (!j)
			break; /* stopping, and nothing left */
		pthread_mutex_unlock(&s->lock);
		int rc = cas_syncs_flush(&j->pending);
		pthread_mutex_lock(&s->lock);
		s->head = j->next;
		if (!s->head)
			s->tail = &s->head;
		j->next = NULL;
		j->rc = rc;
		j->state = SYNC_DONE;
		pthread_cond_broadcast(&s->done);
		pthread_mutex_unlock(&s->lock);
		s->wake(s->arg);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int syncer_start(struct syncer **out, void (*wake)(void *), void *arg)
{
	struct syncer *s = xcalloc(1, sizeof *s);
	s->tail = &s->head;
	s->wake = wake;
	s->arg = arg;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->work, NULL);
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
	*s->tail = j;
	s->tail = &j->next;
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->lock);
}

enum sync_state syncer_check(struct syncer *s, struct sync_job *j, int wait)
{
	pthread_mutex_lock(&s->lock);
	while (wait && j->state == SYNC_QUEUED)
		pthread_cond_wait(&s->done, &s->lock);
	enum sync_state st = j->state;
	pthread_mutex_unlock(&s->lock);
	return st;
}
