/*
 * log.h - the daemon's log: errors always, debug lines with -d. Lines go
 * to stderr (foreground) or syslog (daemonized).
 */
#ifndef FLOWYFS_LOG_H
#define FLOWYFS_LOG_H

void log_init(int debug, int use_syslog);
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
