/*
 * envinfo.h - the environment a run ran in, for runs/<id>/env: host,
 * kernel, CPUs, memory, and the versions of the interpreters the steps'
 * commands call, when they are on PATH.
 */
#ifndef FLOWYFS_ENVINFO_H
#define FLOWYFS_ENVINFO_H

#include <stddef.h>

/* Render key<TAB>value lines; commands are the steps' run strings.
 * Interpreter versions are asked once per daemon and remembered.
 * Caller frees. */
char *envinfo_render(const char *const *commands, size_t n);

/* Forget remembered versions (at shutdown). */
void envinfo_free_cache(void);

#endif
