/*
 * log.h - the daemon's log: errors always, debug lines with -d. Lines go
 * to stderr (foreground) or syslog (daemonized), and to the store's log
 * file (the mount's `log`).
 */
#ifndef FLOWYFS_LOG_H
#define FLOWYFS_LOG_H

void log_init(int debug, int use_syslog);
/* Also write every line, with its UTC time, to the file at path
 * (appended; moved to <path>.1 past LOG_FILE_CAP bytes). 0 or -errno. */
#define LOG_FILE_CAP (16 << 20)
int log_open_file(const char *path);
void log_close_file(void);
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Name the calling thread "flowyfs-" role, as top -H, ps -L and perf show
 * it (15 bytes in all: role is cut to 7); a name that cannot be set is a
 * debug line, and the thread keeps the process's name. */
void log_thread_name(const char *role);

#endif
