/*
 * log.c - one place that decides where the daemon's messages go: stderr
 * while in the foreground, syslog once daemonized; debug lines only
 * with -d.
 */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

#include "flowyfs/log.h"

static int log_debug_on, log_syslog;

void log_init(int debug, int use_syslog)
{
	log_debug_on = debug;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog("flowyfs", LOG_PID, LOG_DAEMON);
}

static void vlog(int prio, const char *tag, const char *fmt, va_list ap)
{
	if (log_syslog) {
		vsyslog(prio, fmt, ap);
		return;
	}
	char line[4096];
	vsnprintf(line, sizeof line, fmt, ap);
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
