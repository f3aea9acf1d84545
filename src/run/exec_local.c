/*
 * exec_local.c - the local executor: a step is a process on this machine,
 * started isolated from the store by exec.c (in a slot's namespace, its
 * scratch laid out in the slot, slots.h, when there is one), its exit
 * seen on a pidfd.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/executor.h"
#include "flowyfs/flowy.h"
#include "flowyfs/log.h"
#include "flowyfs/run.h"
#include "flowyfs/slots.h"
#include "flowyfs/util.h"
#include "flowyfs/workspace.h"

/* Move step i's scratch from its slot to its home (it stays there for a
 * person to look at); when it cannot be moved it is lost with the slot's
 * clean-up (s->scratch NULL). */
static void move_home(struct run *r, size_t i)
{
	struct srun *s = &r->s[i];
	char *home = workspace_home(r, i);
	if (rename(s->scratch, home) < 0) {
		log_error("run %lld step %s: cannot move scratch %s to %s: %s",
		          (long long)r->id, s->def->name, s->scratch, home, strerror(errno));
		free(home);
		home = NULL;
	}
	free(s->scratch);
	s->scratch = home;
}

/* Step i's slot goes back: its scratch to the pool (reuse: it succeeded
 * and its outputs are stored) or home (it failed, or the pool refused
 * it); a directory that is not the one laid out there is left to
 * slots_give, which removes it. */
static void local_release(struct run *r, size_t i, int reuse)
{
	struct srun *s = &r->s[i];
	char *why = NULL;
	if (!s->slot) {
		if (reuse)
			workspace_recycle(r, i);
		return;
	}
	if (!s->scratch || slots_check(s->slot, &why) < 0) {
		free(why);
		free(s->scratch);
		s->scratch = NULL;
	} else {
		if (reuse)
			workspace_recycle(r, i); /* s->scratch NULL when it went */
		if (s->scratch)
			move_home(r, i);
	}
	slots_give(r->f->slots, s->slot);
	s->slot = NULL;
}

/* Lay out step i's scratch: in a slot's work, when there is a slot. */
static int local_prepare(struct run *r, size_t i, char **err)
{
	struct srun *s = &r->s[i];
	if (!s->slot && r->f->slots)
		s->slot = slots_take(r->f->slots);
	int rc = workspace_prepare(r, i, s->slot ? s->slot->work : NULL);
	if (!rc && s->slot)
		rc = slots_hold(s->slot);
	if (rc < 0) {
		*err = rc == -ENOSPC
			? xstrdup("cannot prepare scratch directory: no space left on device")
			: xasprintf("cannot prepare scratch directory: %s", strerror(-rc));
		local_release(r, i, 0);
	}
	return rc;
}

static int local_start(struct run *r, size_t i, const struct exec_spec *spec, char **err)
{
	struct srun *s = &r->s[i];
	struct exec_spec in_slot = *spec;
	if (s->slot)
		in_slot.ns = &s->slot->ns;
	return exec_start(&s->proc, &in_slot, err);
}

static int local_fd(const struct run *r, size_t i)
{
	return r->s[i].proc.pidfd;
}

static void local_signal(struct run *r, size_t i, int sig)
{
	exec_signal(&r->s[i].proc, sig);
}

/* The process is over; its scratch stays in the slot until released
 * (its outputs are read there). A directory the step moved or replaced
 * fails the step, whatever it said. */
static int local_reap(struct run *r, size_t i)
{
	struct srun *s = &r->s[i];
	int code = exec_reap(&s->proc);
	char *why;
	if (s->slot && slots_check(s->slot, &why) < 0) {
		free(s->exec_why);
		s->exec_why = why;
		if (code == 0 || code == 1) /* 1 would be a `when` test's false */
			code = 126;
	}
	return code;
}

const struct executor exec_local = {
	.name = "local",
	.prepare = local_prepare,
	.start = local_start,
	.fd = local_fd,
	.signal = local_signal,
	.reap = local_reap,
	.release = local_release,
};
