/*
 * envinfo.c - host facts and interpreter versions for runs/<id>/env.
 * An interpreter counts when its name appears as a word in a step's
 * command; its version is the first line `NAME --version` prints, asked
 * once per daemon (a version does not change under a running daemon often
 * enough to pay a process per run).
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "flowyfs/envinfo.h"
#include "flowyfs/util.h"

static const char *const interpreters[] = {
	"python3", "python", "Rscript", "R", "node", "perl", "ruby", "julia",
	"java", "bash", NULL,
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static char *versions[sizeof interpreters / sizeof *interpreters];

/* Does word appear in cmd delimited by non-name characters? */
static int has_word(const char *cmd, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = cmd; (p = strstr(p, word)); p += n) {
		int before = p == cmd || !(isalnum((unsigned char)p[-1]) || p[-1] == '_' ||
		                           p[-1] == '.' || p[-1] == '-');
		int after = !(isalnum((unsigned char)p[n]) || p[n] == '_');
		if (before && after)
			return 1;
	}
	return 0;
}

static char *ask_version(const char *name)
{
	char *cmd = xasprintf("command -v %s >/dev/null 2>&1 && %s --version 2>&1 "
	                      "</dev/null | head -n 1", name, name);
	FILE *p = popen(cmd, "r");
	free(cmd);
	if (!p)
		return xstrdup("");
	char line[512] = "";
	if (!fgets(line, sizeof line, p))
		line[0] = '\0';
	pclose(p);
	line[strcspn(line, "\r\n")] = '\0';
	for (char *c = line; *c; c++)
		if (*c == '\t')
			*c = ' ';
	return xstrdup(line);
}

char *envinfo_render(const char *const *commands, size_t n)
{
	struct strbuf sb = {0};
	struct utsname u;
	if (uname(&u) == 0) {
		strbuf_printf(&sb, "host\t%s\n", u.nodename);
		strbuf_printf(&sb, "kernel\t%s %s %s\n", u.sysname, u.release, u.machine);
	}
	strbuf_printf(&sb, "cpus\t%ld\n", sysconf(_SC_NPROCESSORS_ONLN));
	struct sysinfo si;
	if (sysinfo(&si) == 0)
		strbuf_printf(&sb, "memory\t%llu MiB\n",
		              (unsigned long long)si.totalram * si.mem_unit / (1024 * 1024));
	for (size_t i = 0; interpreters[i]; i++) {
		int used = 0;
		for (size_t k = 0; k < n && !used; k++)
			used = has_word(commands[k], interpreters[i]);
		if (!used)
			continue;
		pthread_mutex_lock(&cache_lock);
		if (!versions[i])
			versions[i] = ask_version(interpreters[i]);
		if (*versions[i])
			strbuf_printf(&sb, "%s\t%s\n", interpreters[i], versions[i]);
		else
			strbuf_printf(&sb, "%s\tnot found on PATH\n", interpreters[i]);
		pthread_mutex_unlock(&cache_lock);
	}
	return strbuf_detach(&sb, NULL);
}

void envinfo_free_cache(void)
{
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; interpreters[i]; i++) {
		free(versions[i]);
		versions[i] = NULL;
	}
	pthread_mutex_unlock(&cache_lock);
}
