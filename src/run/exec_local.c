/*
 * exec_local.c - the local executor: a step is a process on this machine,
 * started isolated from the store by exec.c, its exit seen on a pidfd.
 */
#include <errno.h>
#include <string.h>

#include "flowyfs/executor.h"
#include "flowyfs/run.h"
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

static int local_start(struct run *r, size_t i, const struct exec_spec *spec, char **err)
{
	return exec_start(&r->s[i].proc, spec, err);
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
	return exec_reap(&r->s[i].proc);
}

const struct executor exec_local = {
	.name = "local",
	.prepare = local_prepare,
	.start = local_start,
	.fd = local_fd,
	.signal = local_signal,
	.reap = local_reap,
};
