/*
 * waits.c - runs/<id>/wait (waits.h): a registry of unanswered reads,
 * a subscriber that answers them when their run ends, and the FUSE
 * interrupt callback that answers one with EINTR.
 *
 * Whoever takes a request out of the registry (under its lock) is the
 * one that answers it, exactly once: the subscriber, the interrupt, the
 * read itself (when it finds the run ended after registering), or the
 * stop. The interrupt callback is keyed by the request, never by a
 * pointer to an entry, so an interrupt racing a reply finds nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/events.h"
#include "flowyfs/flowy.h"
#include "flowyfs/log.h"
#include "flowyfs/util.h"
#include "flowyfs/waits.h"

struct waiter {
	int64_t run;
	struct waits_req r;
	struct waiter *next;
};

struct waits {
	pthread_mutex_t lock;
	struct waiter *head, **tail;
	size_t n;
};

/* ---- the registry ------------------------------------------------------ */

struct waits *waits_new(void)
{
	struct waits *w = xcalloc(1, sizeof *w);
	pthread_mutex_init(&w->lock, NULL);
	w->tail = &w->head;
	return w;
}

void waits_free(struct waits *w)
{
	if (!w)
		return;
	for (struct waiter *e = w->head, *next; e; e = next) {
		next = e->next;
		free(e);
	}
	pthread_mutex_destroy(&w->lock);
	free(w);
}

void waits_add(struct waits *w, int64_t run, void *req, size_t size)
{
	struct waiter *e = xcalloc(1, sizeof *e);
	e->run = run;
	e->r.req = req;
	e->r.size = size;
	pthread_mutex_lock(&w->lock);
	*w->tail = e;
	w->tail = &e->next;
	w->n++;
	pthread_mutex_unlock(&w->lock);
}

/* Unlink *p (lock held). */
static struct waiter *unlink_at(struct waits *w, struct waiter **p)
{
	struct waiter *e = *p;
	*p = e->next;
	if (w->tail == &e->next)
		w->tail = p;
	w->n--;
	return e;
}

size_t waits_take_run(struct waits *w, int64_t run, struct waits_req **out)
{
	size_t n = 0, cap = 0;
	*out = NULL;
	pthread_mutex_lock(&w->lock);
	for (struct waiter **p = &w->head; *p;) {
		if ((*p)->run != run) {
			p = &(*p)->next;
			continue;
		}
		struct waiter *e = unlink_at(w, p);
		GROW(*out, cap, n);
		(*out)[n++] = e->r;
		free(e);
	}
	pthread_mutex_unlock(&w->lock);
	return n;
}

int waits_take_req(struct waits *w, void *req, size_t *size)
{
	int found = 0;
	pthread_mutex_lock(&w->lock);
	for (struct waiter **p = &w->head; *p; p = &(*p)->next)
		if ((*p)->r.req == req) {
			struct waiter *e = unlink_at(w, p);
			if (size)
				*size = e->r.size;
			free(e);
			found = 1;
			break;
		}
	pthread_mutex_unlock(&w->lock);
	return found;
}

size_t waits_count(struct waits *w)
{
	pthread_mutex_lock(&w->lock);
	size_t n = w->n;
	pthread_mutex_unlock(&w->lock);
	return n;
}

/* ---- answering --------------------------------------------------------- */

/* Answer a read at offset 0 with "<status>\n" (cut to size). */
static void reply_status(fuse_req_t req, const char *status, size_t size)
{
	char *text = xasprintf("%s\n", status);
	size_t len = strlen(text);
	if (fuse_reply_buf(req, text, len < size ? len : size) != 0)
		log_debug("wait: the reader went away before its answer");
	free(text);
}

static void on_event(struct flowy *f, const struct event *ev, void *arg)
{
	struct waits *w = arg;
	if (!events_is_run_end(ev->kind))
		return;
	struct waits_req *rs;
	size_t n = waits_take_run(w, ev->run, &rs);
	for (size_t i = 0; i < n; i++)
		reply_status(rs[i].req, ev->status ? ev->status : events_name(ev->kind),
		             rs[i].size);
	free(rs);
}

/* Answer req with an error; a reader that went away is no error of ours. */
static void reply_err(fuse_req_t req, int err)
{
	if (fuse_reply_err(req, err) != 0)
		log_debug("wait: the reader went away before its answer");
}

static void on_interrupt(fuse_req_t req, void *arg)
{
	if (waits_take_req(arg, req, NULL))
		reply_err(req, EINTR);
}

/* The run's status when it has ended (malloc'd), else NULL; *gone set
 * when there is no such run. */
static char *ended_status(struct flowy *f, int64_t run, int *gone)
{
	char *st = db_text(f->db, "SELECT status FROM runs WHERE id=?", "i", run);
	*gone = !st;
	if (st && (!strcmp(st, "succeeded") || !strcmp(st, "failed") ||
	           !strcmp(st, "cancelled") || !strcmp(st, "interrupted")))
		return st;
	free(st);
	return NULL;
}

void waits_read(struct flowy *f, fuse_req_t req, int64_t run, size_t size, off_t off)
{
	int gone = 0;
	char *st;
	if (off > 0) { /* the status was read: EOF, or the rest of it */
		st = ended_status(f, run, &gone);
		char *text = st ? xasprintf("%s\n", st) : NULL;
		size_t len = text ? strlen(text) : 0, n = 0;
		if ((size_t)off < len)
			n = len - (size_t)off < size ? len - (size_t)off : size;
		if (fuse_reply_buf(req, n ? text + off : NULL, n) != 0)
			log_debug("wait: the reader went away before its answer");
		free(text);
		free(st);
		return;
	}
	/* Kept first, looked up after: an end between the two finds it kept. */
	waits_add(f->waits, run, req, size);
	fuse_req_interrupt_func(req, on_interrupt, f->waits);
	st = ended_status(f, run, &gone);
	if ((st || gone) && waits_take_req(f->waits, req, NULL)) {
		if (st)
			reply_status(req, st, size);
		else
			reply_err(req, ENOENT);
	}
	free(st);
}

int waits_start(struct flowy *f)
{
	f->waits = waits_new();
	events_subscribe(f->events, on_event, f->waits);
	return 0;
}

void waits_stop(struct flowy *f)
{
	struct waits *w = f->waits;
	if (!w)
		return;
	events_unsubscribe(f->events, on_event, w);
	pthread_mutex_lock(&w->lock);
	struct waiter *e = w->head;
	w->head = NULL;
	w->tail = &w->head;
	w->n = 0;
	pthread_mutex_unlock(&w->lock);
	while (e) {
		struct waiter *next = e->next;
		reply_err(e->r.req, EINTR);
		free(e);
		e = next;
	}
	waits_free(w);
	f->waits = NULL;
}
