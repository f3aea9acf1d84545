/*
 * watch.c - one inotify descriptor and a thread that reads it. Each
 * watched path is watched itself (a file's content, or a directory's
 * entries) and through its parent directory (so replacing a file by
 * rename, as editors and `mv` do, is seen too). Events map back to the
 * pipelines that declared the path.
 *
 * The same thread watches the mount table: once the mount is gone from
 * this namespace (fusermount3 -u), the daemon stops as it does on SIGTERM,
 * even while steps, whose namespaces hold copies of the mount, keep the
 * FUSE connection itself alive.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "flowyfs/hostfs.h"
#include "flowyfs/log.h"
#include "flowyfs/slots.h"
#include "flowyfs/util.h"
#include "flowyfs/watch.h"

#define MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | \
              IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB | IN_MODIFY)

struct watched {
	char *pipeline;
	char *path;       /* the declared path */
	char *base;       /* its last component (events on the parent) */
	int wd_self, wd_parent;
};

struct watch {
	int fd, stop_fd;
	int mounts_fd;    /* /proc/self/mountinfo: POLLPRI on a mount change */
	pthread_t thread;
	pthread_mutex_t lock;
	struct watched *w;
	size_t n;
	watch_changed_fn changed; /* main.c's: what a change of an input does */
};

static void unwatch(struct watch *ws, int wd)
{
	if (wd < 0)
		return;
	for (size_t i = 0; i < ws->n; i++) /* shared by another entry? */
		if (ws->w[i].wd_self == wd || ws->w[i].wd_parent == wd)
			return;
	inotify_rm_watch(ws->fd, wd);
}

void watch_set(struct flowy *f, const char *pipeline, char *const *paths, size_t n)
{
	struct watch *ws = f->watch;
	if (!ws)
		return;
	pthread_mutex_lock(&ws->lock);
	for (size_t i = 0; i < ws->n;) {
		if (strcmp(ws->w[i].pipeline, pipeline)) {
			i++;
			continue;
		}
		struct watched old = ws->w[i];
		ws->w[i] = ws->w[--ws->n];
		unwatch(ws, old.wd_self);
		unwatch(ws, old.wd_parent);
		free(old.pipeline);
		free(old.path);
		free(old.base);
	}
	for (size_t i = 0; i < n; i++) {
		char *dir = xstrdup(paths[i]);
		char *slash = strrchr(dir, '/');
		struct watched w = {
			.pipeline = xstrdup(pipeline), .path = xstrdup(paths[i]),
			.base = xstrdup(slash ? slash + 1 : paths[i]),
		};
		if (slash)
			slash[slash == dir ? 1 : 0] = '\0';
		w.wd_self = inotify_add_watch(ws->fd, paths[i], MASK);
		w.wd_parent = inotify_add_watch(ws->fd, dir, IN_CREATE | IN_MOVED_TO |
		                                IN_DELETE | IN_MOVED_FROM | IN_CLOSE_WRITE);
		free(dir);
		ws->w = xrealloc(ws->w, (ws->n + 1) * sizeof *ws->w);
		ws->w[ws->n++] = w;
	}
	pthread_mutex_unlock(&ws->lock);
}

/* Which pipelines an event concerns; re-arms a watch on a replaced file. */
static void dispatch(struct flowy *f, const struct inotify_event *ev)
{
	struct watch *ws = f->watch;
	char **hit = NULL;
	size_t nhit = 0;
	pthread_mutex_lock(&ws->lock);
	for (size_t i = 0; i < ws->n; i++) {
		struct watched *w = &ws->w[i];
		int mine = ev->wd == w->wd_self ||
		           (ev->wd == w->wd_parent && ev->len && !strcmp(ev->name, w->base));
		if (!mine)
			continue;
		if (ev->wd == w->wd_parent) /* the path was replaced: watch the new one */
			w->wd_self = inotify_add_watch(ws->fd, w->path, MASK);
		hit = xrealloc(hit, (nhit + 1) * sizeof *hit);
		hit[nhit++] = xstrdup(w->pipeline);
	}
	pthread_mutex_unlock(&ws->lock);
	/* A write or a new file still being written is activity, not yet a
	 * change: the change is the close after writing, a move or a delete. */
	int busy = (ev->mask & IN_MODIFY) ||
	           ((ev->mask & IN_CREATE) && !(ev->mask & IN_ISDIR));
	for (size_t i = 0; i < nhit; i++) {
		log_debug("watch: input of %s %s", hit[i], busy ? "being written" : "changed");
		ws->changed(f, hit[i], busy);
		free(hit[i]);
	}
	free(hit);
}

/* The mount table changed: read it through (which rearms the poll), and
 * stop the daemon if our mount is gone. */
static void check_mount(struct flowy *f, struct watch *ws)
{
	char buf[8192];
	if (lseek(ws->mounts_fd, 0, SEEK_SET) < 0)
		log_error("mountinfo: %s", strerror(errno));
	while (read(ws->mounts_fd, buf, sizeof buf) > 0)
		;
	if (f->slots) /* they hold copies of the old table's mounts */
		slots_mounts_changed(f->slots);
	struct hostfs_mount mi;
	if (hostfs_mount_info(f->mnt, &mi) == -ENOENT || mi.dev != f->mnt_dev) {
		log_info("%s was unmounted: stopping", f->mnt);
		__atomic_store_n(&f->unmounted, 1, __ATOMIC_RELAXED);
		/* To the FUSE loop's own thread: a signal for the process may be
		 * taken by any thread, and the loop only ends when its thread
		 * is woken (libfuse's handler just marks the session). */
		int rc = pthread_kill(f->main_thread, SIGTERM);
		if (rc)
			log_error("cannot stop: %s", strerror(rc));
	}
}

static void *watch_main(void *arg)
{
	log_thread_name("watch");
	struct flowy *f = arg;
	struct watch *ws = f->watch;
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		struct pollfd pf[3] = {{.fd = ws->fd, .events = POLLIN},
		                       {.fd = ws->stop_fd, .events = POLLIN},
		                       {.fd = ws->mounts_fd, .events = POLLPRI}};
		if (poll(pf, 3, -1) < 0 && errno != EINTR)
			break;
		if (pf[1].revents)
			break;
		if (pf[2].revents)
			check_mount(f, ws);
		if (!pf[0].revents)
			continue;
		ssize_t n = read(ws->fd, buf, sizeof buf);
		for (char *p = buf; n > 0 && p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			dispatch(f, ev);
			p += sizeof *ev + ev->len;
		}
	}
	return NULL;
}

int watch_start(struct flowy *f, watch_changed_fn changed)
{
	struct watch *ws = xcalloc(1, sizeof *ws);
	ws->changed = changed;
	ws->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	ws->stop_fd = eventfd(0, EFD_CLOEXEC);
	ws->mounts_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (ws->fd < 0 || ws->stop_fd < 0 || ws->mounts_fd < 0) {
		int rc = -errno;
		if (ws->fd >= 0)
			close(ws->fd);
		if (ws->stop_fd >= 0)
			close(ws->stop_fd);
		if (ws->mounts_fd >= 0)
			close(ws->mounts_fd);
		free(ws);
		return rc;
	}
	char buf[8192];
	while (read(ws->mounts_fd, buf, sizeof buf) > 0)
		; /* read once, so only later changes raise POLLPRI */
	pthread_mutex_init(&ws->lock, NULL);
	f->watch = ws;
	int rc = -pthread_create(&ws->thread, NULL, watch_main, f);
	if (rc) {
		close(ws->fd);
		close(ws->stop_fd);
		close(ws->mounts_fd);
		free(ws);
		f->watch = NULL;
	}
	return rc;
}

void watch_stop(struct flowy *f)
{
	struct watch *ws = f->watch;
	if (!ws)
		return;
	uint64_t one = 1;
	if (write(ws->stop_fd, &one, sizeof one) < 0)
		log_error("watch: cannot stop: %s", strerror(errno));
	pthread_join(ws->thread, NULL);
	f->watch = NULL;
	for (size_t i = 0; i < ws->n; i++) {
		free(ws->w[i].pipeline);
		free(ws->w[i].path);
		free(ws->w[i].base);
	}
	free(ws->w);
	close(ws->fd);
	close(ws->stop_fd);
	close(ws->mounts_fd);
	pthread_mutex_destroy(&ws->lock);
	free(ws);
}
