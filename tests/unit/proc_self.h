/*
 * proc_self.h - unit-test helper: count what this process has in
 * /proc/self (its threads, its open files), to check that a component
 * gives back what it took. Header-only (static functions).
 */
#ifndef FLOWYFS_TEST_PROC_SELF_H
#define FLOWYFS_TEST_PROC_SELF_H

#include <dirent.h>
#include <stdio.h>

/* Entries of /proc/self/<what> besides . and .., or -1. */
static inline int proc_self_count(const char *what)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/%s", what);
	DIR *d = opendir(path);
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 2;
}

/* Threads of this process. */
static inline int threads_now(void)
{
	return proc_self_count("task");
}

/* Files this process has open (less the one counting them). */
static inline int open_fds(void)
{
	int n = proc_self_count("fd");
	return n < 0 ? n : n - 1;
}

#endif
