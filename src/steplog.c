/*
 * steplog.c - capped step logs. The step writes into a pipe; splice moves
 * the bytes into the log file without copying them through the daemon,
 * and into /dev/null once the cap is reached. The log file is written at
 * explicit offsets (splice refuses O_APPEND files), by this module only.
 * It is made when the first byte or note arrives: most steps of a long
 * chain print nothing, and a file never made costs no inode.
 */
#include <poll.h>
#include <sys/ioctl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowyfs/log.h"
#include "flowyfs/steplog.h"
#include "flowyfs/util.h"

#define PUMP_CHUNK (1024 * 1024)
#define PIPE_SIZE (256 * 1024)

void steplog_init(struct steplog *l)
{
	l->fd = l->rd = l->wr = -1;
	l->path = NULL;
	l->off = 0;
	l->cap = STEPLOG_CAP;
	l->capped = 0;
}

/* Take fd (open on the log file) as the log, appending after what it holds. */
static int adopt(struct steplog *l, int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	l->fd = fd;
	l->off = (uint64_t)st.st_size;
	l->capped = l->off >= l->cap;
	return 0;
}

int steplog_open(struct steplog *l, const char *path, uint64_t cap)
{
	if (l->fd >= 0 || l->path)
		return 0;
	l->cap = cap;
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0)
		return adopt(l, fd); /* an earlier attempt's, or a task's */
	if (errno != ENOENT)
		return -errno;
	l->path = xstrdup(path);
	l->off = 0;
	l->capped = 0;
	return 0;
}

/* Make the file, on the first byte or note: 0 or -errno. */
static int materialize(struct steplog *l)
{
	if (l->fd >= 0)
		return 0;
	if (!l->path)
		return -EBADF;
	int fd = open(l->path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	int rc = adopt(l, fd);
	if (!rc) {
		free(l->path);
		l->path = NULL;
	}
	return rc;
}

/* Before the file exists: 1 when every writer is gone and the pipe is
 * empty, 0 when it is empty for now, 2 when bytes wait (make the file). */
static int pipe_state(int rd)
{
	int avail = 0;
	if (ioctl(rd, FIONREAD, &avail) == 0 && avail > 0)
		return 2;
	struct pollfd pf = {.fd = rd, .events = POLLIN};
	if (poll(&pf, 1, 0) <= 0)
		return 0;
	if (ioctl(rd, FIONREAD, &avail) == 0 && avail > 0)
		return 2;
	return (pf.revents & POLLHUP) ? 1 : 0;
}

int steplog_pipe(struct steplog *l)
{
	int p[2];
	if (l->rd >= 0) {
		steplog_pump(l);
		close(l->rd);
		l->rd = -1;
	}
	steplog_close_writer(l);
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0) {
		int rc = -errno;
		close(p[0]);
		close(p[1]);
		return rc;
	}
	/* Fewer wake-ups for chatty steps; the default size works too. */
	if (fcntl(p[1], F_SETPIPE_SZ, PIPE_SIZE) < 0)
		log_debug("log pipe size: %s", strerror(errno));
	l->rd = p[0];
	l->wr = p[1];
	return 0;
}

void steplog_close_writer(struct steplog *l)
{
	if (l->wr >= 0)
		close(l->wr);
	l->wr = -1;
}

/* Past the cap: read and drop. 1 at end of file, 0 when empty, -errno. */
static int drop(struct steplog *l)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(l->rd, buf, sizeof buf);
		if (n > 0)
			continue;
		if (n == 0)
			return 1;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN ? 0 : -errno;
	}
}

int steplog_pump(struct steplog *l)
{
	if (l->rd < 0)
		return 1;
	if (l->fd < 0) {
		int ps = pipe_state(l->rd);
		if (ps < 2)
			return ps;
		int rc = materialize(l);
		if (rc < 0) {
			log_error("step log: %s", strerror(-rc));
			l->capped = 1;
			return drop(l);
		}
	}
	while (!l->capped) {
		uint64_t room = l->cap - l->off;
		loff_t off = (loff_t)l->off;
		ssize_t n = splice(l->rd, NULL, l->fd, &off,
		                   room < PUMP_CHUNK ? (size_t)room : PUMP_CHUNK,
		                   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (n > 0) {
			l->off = (uint64_t)off;
			if (l->off >= l->cap)
				steplog_note(l, "log capped at %llu MiB; further output "
				             "was dropped", (unsigned long long)(l->cap >> 20));
			continue;
		}
		if (n == 0)
			return 1;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return 0;
		/* A full disk or the like: say so once, then drop the rest. */
		int rc = -errno;
		l->capped = 1;
		log_error("step log: %s", strerror(-rc));
		return rc;
	}
	return drop(l);
}

void steplog_note(struct steplog *l, const char *fmt, ...)
{
	if (l->fd < 0 && !l->path)
		return;
	if (!l->capped && l->off < l->cap)
		steplog_pump(l);
	int mrc = materialize(l);
	if (mrc < 0) {
		log_error("step log note: %s", strerror(-mrc));
		return;
	}
	if (l->off >= l->cap)
		l->capped = 1;
	struct strbuf sb = {0};
	va_list ap;
	va_start(ap, fmt);
	strbuf_puts(&sb, "flowyfs: ");
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		util_oom();
	va_end(ap);
	strbuf_puts(&sb, msg);
	strbuf_puts(&sb, "\n");
	free(msg);
	ssize_t n = pwrite(l->fd, sb.buf, sb.len, (off_t)l->off);
	if (n > 0)
		l->off += (uint64_t)n;
	else
		log_error("step log note: %s", n < 0 ? strerror(errno) : "short write");
	strbuf_release(&sb);
}

void steplog_close(struct steplog *l)
{
	steplog_close_writer(l);
	if (l->rd >= 0) {
		steplog_pump(l);
		close(l->rd);
	}
	if (l->fd >= 0)
		close(l->fd);
	l->fd = l->rd = -1;
	free(l->path);
	l->path = NULL;
}
