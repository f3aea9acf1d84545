/*
 * render/prerender.c - one thread that lays pipelines' graphs out ahead
 * of their first read (prerender.h). A queue of (pipeline, dot) guarded by
 * a mutex and a condition variable; each entry is drawn by dagsvg_keep,
 * outside the queue's lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/dagsvg.h"
#include "flowyfs/log.h"
#include "flowyfs/prerender.h"
#include "flowyfs/util.h"

struct job {
	char *pipeline, *dot;
	struct job *next;
};

struct prerender {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	pthread_t thread;
	struct job *head, **tail;
	size_t n;
	int stop;
};

static void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->pipeline);
	free(j->dot);
	free(j);
}

static void *prerender_main(void *arg)
{
	log_thread_name("render");
	struct prerender *pr = arg;
	pthread_mutex_lock(&pr->lock);
	for (;;) {
		while (!pr->head && !pr->stop)
			pthread_cond_wait(&pr->cv, &pr->lock);
		if (pr->stop)
			break;
		struct job *j = pr->head;
		pr->head = j->next;
		if (!pr->head)
			pr->tail = &pr->head;
		pr->n--;
		pthread_mutex_unlock(&pr->lock);
		double t0 = util_now();
		int rc = dagsvg_keep(j->pipeline, j->dot);
		if (rc < 0)
			log_debug("prerender: %s: %s", j->pipeline, strerror(-rc));
		else
			log_debug("prerender: %s laid out in %.3f s", j->pipeline, util_now() - t0);
		job_free(j);
		pthread_mutex_lock(&pr->lock);
	}
	pthread_mutex_unlock(&pr->lock);
	return NULL;
}

int prerender_start(struct prerender **out)
{
	struct prerender *pr = xcalloc(1, sizeof *pr);
	pr->tail = &pr->head;
	/* Default attributes: nothing to destroy, nothing that can fail. */
	pr->lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	pr->cv = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
	int rc = -pthread_create(&pr->thread, NULL, prerender_main, pr);
	if (rc) {
		free(pr);
		*out = NULL;
		return rc;
	}
	*out = pr;
	return 0;
}

void prerender_stop(struct prerender *pr)
{
	if (!pr)
		return;
	pthread_mutex_lock(&pr->lock);
	pr->stop = 1;
	pthread_cond_signal(&pr->cv);
	pthread_mutex_unlock(&pr->lock);
	int rc = pthread_join(pr->thread, NULL);
	if (rc)
		log_error("prerender: cannot join the thread: %s", strerror(rc));
	while (pr->head) {
		struct job *j = pr->head;
		pr->head = j->next;
		job_free(j);
	}
	free(pr);
}

void prerender_dag(void *arg, const char *pipeline, const char *dot)
{
	struct prerender *pr = arg;
	pthread_mutex_lock(&pr->lock);
	struct job *j;
	for (j = pr->head; j && strcmp(j->pipeline, pipeline); j = j->next)
		;
	if (j) { /* still waiting: draw the newer graph instead */
		free(j->dot);
		j->dot = xstrdup(dot);
	} else if (pr->n < PRERENDER_QUEUE_MAX && !pr->stop) {
		j = xcalloc(1, sizeof *j);
		j->pipeline = xstrdup(pipeline);
		j->dot = xstrdup(dot);
		*pr->tail = j;
		pr->tail = &j->next;
		pr->n++;
		pthread_cond_signal(&pr->cv);
	}
	pthread_mutex_unlock(&pr->lock);
}
