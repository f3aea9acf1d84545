/*
 * slots.c - the local steps' slots (slots.h): a directory and a mount
 * namespace each, made when more steps hold one at once than ever before
 * (or again after the mount table changed), taken before a step's scratch
 * is laid out and given back once it has gone to the pool or home.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowyfs/flowy.h"
#include "flowyfs/log.h"
#include "flowyfs/slots.h"
#include "flowyfs/util.h"

struct slots {
	struct flowy *f;
	pthread_mutex_t lock;
	char *base;                /* <scratch>/.slots */
	struct slot **v;           /* NULL entries: dropped, made again */
	size_t n;
	int off;                   /* no slots here: a namespace per step */
	int mounts_fd;             /* /proc/self/mountinfo, polled for changes */
	unsigned gen;              /* bumped when the mount table changed */
};

struct slots *slots_new(struct flowy *f)
{
	struct slots *sl = xcalloc(1, sizeof *sl);
	sl->f = f;
	pthread_mutex_init(&sl->lock, NULL);
	sl->base = xasprintf("%s/.slots", f->scratch_dir);
	sl->off = geteuid() != 0;
	sl->mounts_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (sl->mounts_fd < 0 && !sl->off) {
		log_error("cannot watch the mount table (%s): every step gets a "
		          "namespace of its own", strerror(errno));
		sl->off = 1;
	}
	return sl;
}

static void slot_free(struct slot *s)
{
	exec_ns_close(&s->ns);
	free(s->dir);
	free(s->work);
	free(s);
}

void slots_free(struct slots *sl)
{
	if (!sl)
		return;
	for (size_t i = 0; i < sl->n; i++)
		if (sl->v[i])
			slot_free(sl->v[i]);
	free(sl->v);
	free(sl->base);
	if (sl->mounts_fd >= 0)
		close(sl->mounts_fd);
	pthread_mutex_destroy(&sl->lock);
	free(sl);
}

/* Remove everything in dir (a slot's directory, which no step runs in). */
static void empty_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		log_error("cannot list slot %s: %s", dir, strerror(errno));
		return;
	}
	struct dirent *e;
	while ((errno = 0, e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *p = xasprintf("%s/%s", dir, e->d_name);
		int rc = util_rm_rf(p);
		if (rc < 0)
			log_error("cannot remove %s: %s", p, strerror(-rc));
		free(p);
	}
	if (errno)
		log_error("cannot list slot %s: %s", dir, strerror(errno));
	closedir(d);
}

/* Slot n: its directory (emptied) and namespace. NULL when the namespace
 * cannot be made (then no slot will be: off). */
static struct slot *slot_make(struct slots *sl, size_t n)
{
	struct flowy *f = sl->f;
	if (mkdir(sl->base, 0711) < 0 && errno != EEXIST) {
		log_error("cannot make %s (steps get a namespace each): %s", sl->base,
		          strerror(errno));
		return NULL;
	}
	struct slot *s = xcalloc(1, sizeof *s);
	s->ns.fd = -1;
	s->dir = xasprintf("%s/%zu", sl->base, n);
	s->work = xasprintf("%s/work", s->dir);
	if (mkdir(s->dir, 0711) < 0) {
		if (errno != EEXIST) {
			log_error("cannot make %s (steps get a namespace each): %s", s->dir,
			          strerror(errno));
			slot_free(s);
			return NULL;
		}
		empty_dir(s->dir);
	}
	struct exec_spec spec = {
		.hide = {f->store, f->scratch_cover}, .nhide = 2, .keep = s->dir,
		.ro_mount = f->mnt, .ro_flags = f->mnt_flags,
	};
	char *err = NULL;
	if (exec_ns_make(&s->ns, &spec, &err) < 0) {
		log_error("%s: every step gets a namespace of its own", err);
		free(err);
		sl->off = 1;
		slot_free(s);
		return NULL;
	}
	s->gen = sl->gen;
	return s;
}

/* Has the daemon's mount table changed since the last look? A slot's
 * namespace is a copy of it as it was (mounts made since reach it only
 * where they propagate), so slots made before are made again. poll()
 * says so (and forgets it) without reading the table. */
static void check_mounts(struct slots *sl)
{
	struct pollfd pf = {.fd = sl->mounts_fd, .events = POLLPRI};
	if (poll(&pf, 1, 0) > 0 && (pf.revents & (POLLPRI | POLLERR)))
		sl->gen++;
}

/* Drop the free slots made from an older mount table (their namespaces
 * hold what it had mounted, unmounted since or not). */
static void drop_stale(struct slots *sl)
{
	for (size_t i = 0; i < sl->n; i++)
		if (sl->v[i] && !sl->v[i]->busy && sl->v[i]->gen != sl->gen) {
			slot_free(sl->v[i]); /* its directory is emptied when made again */
			sl->v[i] = NULL;
		}
}

void slots_mounts_changed(struct slots *sl)
{
	pthread_mutex_lock(&sl->lock);
	sl->gen++;
	drop_stale(sl);
	pthread_mutex_unlock(&sl->lock);
}

/* A free slot, made when there is none; NULL if none can be. */
static struct slot *free_slot(struct slots *sl)
{
	size_t hole = sl->n;
	check_mounts(sl);
	drop_stale(sl);
	for (size_t i = 0; i < sl->n; i++) {
		if (sl->v[i] && !sl->v[i]->busy)
			return sl->v[i];
		if (!sl->v[i] && hole == sl->n)
			hole = i;
	}
	if (hole == sl->n) {
		sl->v = xrealloc(sl->v, (sl->n + 1) * sizeof *sl->v);
		sl->v[sl->n++] = NULL;
	}
	return sl->v[hole] = slot_make(sl, hole);
}

struct slot *slots_take(struct slots *sl)
{
	pthread_mutex_lock(&sl->lock);
	struct slot *s = sl->off ? NULL : free_slot(sl);
	if (s)
		s->busy = 1;
	pthread_mutex_unlock(&sl->lock);
	return s;
}

int slots_hold(struct slot *s)
{
	struct stat st;
	if (lstat(s->work, &st) < 0)
		return -errno;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	return 0;
}

int slots_check(const struct slot *s, char **why)
{
	struct stat st;
	*why = NULL;
	if (lstat(s->work, &st) == 0 && S_ISDIR(st.st_mode) && st.st_dev == s->dev &&
	    st.st_ino == s->ino)
		return 0;
	*why = xstrdup("the step moved or replaced its own directory (it must stay where "
	               "the step was started)");
	return -EXDEV;
}

void slots_give(struct slots *sl, struct slot *s)
{
	pthread_mutex_lock(&sl->lock);
	/* What the step left beside its directory, and the directory itself
	 * when it was not taken out (a replaced one: never followed). */
	empty_dir(s->dir);
	s->busy = 0;
	s->dev = 0;
	s->ino = 0;
	drop_stale(sl); /* made while the mount table changed */
	pthread_mutex_unlock(&sl->lock);
}
