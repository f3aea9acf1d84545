/*
 * log.c - one place that decides where the daemon's messages go: stderr
 * while in the foreground, syslog once daemonized; debug lines only
 * with -d. Every line also goes, with its time, to the store's log file
 * (readable at the mount root as `log`), kept under LOG_FILE_CAP by
 * moving it to <file>.1 when it grows past the cap. Threads are named
 * here too, for the tools that show who is doing what.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "flowyfs/log.h"

static int log_debug_on, log_syslog;
static int log_fd = -1;
static char *log_path;
static unsigned long log_file_lost;  /* lines the file could not take */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

int log_open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	char *p = strdup(path);
	if (!p) {
		close(fd);
		return -ENOMEM;
	}
	pthread_mutex_lock(&log_lock);
	if (log_fd >= 0)
		close(log_fd);
	free(log_path);
	log_fd = fd;
	log_path = p;
	pthread_mutex_unlock(&log_lock);
	return 0;
}

void log_close_file(void)
{
	pthread_mutex_lock(&log_lock);
	if (log_fd >= 0)
		close(log_fd);
	log_fd = -1;
	free(log_path);
	log_path = NULL;
	pthread_mutex_unlock(&log_lock);
}

/* Append one line to the log file, moving a full file to <file>.1 first.
 * A failure here has nowhere to be reported: the line still reached
 * stderr or syslog. */
static void file_line(const char *tag, const char *line)
{
	char stamp[32], buf[4200];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	int n = snprintf(buf, sizeof buf, "%s.%03ldZ %s%s\n", stamp, ts.tv_nsec / 1000000,
	                 tag, line);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof buf)
		n = sizeof buf - 1;
	pthread_mutex_lock(&log_lock);
	struct stat st;
	if (log_fd >= 0 && fstat(log_fd, &st) == 0 && st.st_size + n > LOG_FILE_CAP) {
		char old[4096];
		snprintf(old, sizeof old, "%s.1", log_path);
		int fd = rename(log_path, old) == 0
			? open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644)
			: -1;
		if (fd >= 0) {
			close(log_fd);
			log_fd = fd;
		}
	}
	/* On a full disk the line is lost from the file only. */
	if (log_fd >= 0 && write(log_fd, buf, (size_t)n) != n)
		log_file_lost++;
	pthread_mutex_unlock(&log_lock);
}

void log_init(int debug, int use_syslog)
{
	log_debug_on = debug;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog("flowyfs", LOG_PID, LOG_DAEMON);
}

static void vlog(int prio, const char *tag, const char *fmt, va_list ap)
{
	char line[4096];
	vsnprintf(line, sizeof line, fmt, ap);
	file_line(tag, line);
	if (log_syslog)
		syslog(prio, "%s", line);
	else
		fprintf(stderr, "flowyfs: %s%s\n", tag, line);
}

void log_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_ERR, "error: ", fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_INFO, "", fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	if (!log_debug_on)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, "debug: ", fmt, ap);
	va_end(ap);
}

void log_thread_name(const char *role)
{
	char name[16];
	snprintf(name, sizeof name, "flowyfs-%s", role);
	int rc = pthread_setname_np(pthread_self(), name);
	if (rc)
		log_debug("thread name %s: %s", name, strerror(rc));
}
