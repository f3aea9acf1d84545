/*
 * exec_local.c - the local executor: a step is a process on this machine,
 * started isolated from the store by exec.c (in a slot's namespace,
 * slots.h, when there is one), its exit seen on a pidfd.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/executor.h"
#include "flowyfs/flowy.h"
#include "flowyfs/run.h"
#include "flowyfs/slots.h"
#include "flowyfs/util.h"
#include "flowyfs/workspace.h"

static int local_prepare(struct run *r, size_t i, char **err)
{
	int rc = workspace_prepare(r, i);
	if (rc < 0)
		*err = rc == -ENOSPC
			? xstrdup("cannot prepare scratch directory: no space left on device")
			: xasprintf("cannot prepare scratch directory: %s", strerror(-rc));
	return rc;
}

static const char *local_enter(struct run *r, size_t i)
{
	struct srun *s = &r->s[i];
	s->slot = r->f->slots ? slots_take(r->f->slots, s->scratch) : NULL;
	return s->slot ? s->slot->work : s->scratch;
}

/* The process is over: its scratch leaves the slot. Returns 0, or -errno
 * with *why (malloc'd) when the scratch did not come back whole. */
static int leave(struct run *r, size_t i, char **why)
{
	struct srun *s = &r->s[i];
	*why = NULL;
	if (!s->slot)
		return 0;
	int rc = slots_give(r->f->slots, s->slot, why);
	s->slot = NULL;
	if (rc < 0 && !*why)
		*why = xasprintf("cannot move the step's directory back: %s", strerror(-rc));
	return rc;
}

static int local_start(struct run *r, size_t i, const struct exec_spec *spec, char **err)
{
	struct srun *s = &r->s[i];
	struct exec_spec in_slot = *spec;
	if (s->slot)
		in_slot.ns = &s->slot->ns;
	int rc = exec_start(&s->proc, &in_slot, err);
	if (rc < 0) {
		char *why;
		leave(r, i, &why);
		free(why);
	}
	return rc;
}

static int local_fd(const struct run *r, size_t i)
{
	return r->s[i].proc.pidfd;
}

static void local_signal(struct run *r, size_t i, int sig)
{
	exec_signal(&r->s[i].proc, sig);
}

static int local_reap(struct run *r, size_t i)
{
	int code = exec_reap(&r->s[i].proc);
	char *why;
	if (leave(r, i, &why) < 0) { /* a failure, whatever the step said */
		free(r->s[i].exec_why);
		r->s[i].exec_why = why;
		if (code == 0 || code == 1) /* 1 would be a `when` test's false */
			code = 126;
	}
	return code;
}

const struct executor exec_local = {
	.name = "local",
	.prepare = local_prepare,
	.enter = local_enter,
	.start = local_start,
	.fd = local_fd,
	.signal = local_signal,
	.reap = local_reap,
};
