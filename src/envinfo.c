/*
 * envinfo.c - host facts and interpreters for runs/<id>/env.
 *
 * An interpreter counts when a word of a step's command names one: a bare
 * name (python3, Rscript, node ...) is resolved on the PATH the steps get
 * (the daemon's own: steps inherit it), an absolute path (a virtualenv's
 * /opt/venv/bin/python) is taken as written. Each is recorded as the
 * command wrote it, with the file it resolves to, its version (the first
 * line `<it> --version` prints) and, for Python, the installed
 * distributions (name==version, sorted). What an interpreter says is
 * asked once per daemon per resolved file and remembered: it does not
 * change under a running daemon often enough to pay processes per run.
 * Interpreters are run directly (no shell) with stdin from /dev/null.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "flowyfs/envinfo.h"
#include "flowyfs/log.h"
#include "flowyfs/util.h"

extern char **environ;

#define ASK_TIMEOUT 10.0        /* seconds an interpreter may take to answer */
#define ASK_MAX (256 << 10)     /* bytes of its answer kept */

static const char *const interpreters[] = {
	"python3", "python", "Rscript", "R", "node", "perl", "ruby", "julia",
	"java", "bash", NULL,
};

/* What one resolved interpreter said. */
struct known {
	char *path;       /* realpath */
	char *version;
	char *packages;   /* Python only, else NULL */
	struct known *next;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct known *cache;

static const char python_packages[] =
	"import importlib.metadata as m\n"
	"print(' '.join(sorted({'%s==%s' % (d.metadata['Name'], d.version)\n"
	"                       for d in m.distributions() if d.metadata['Name']},\n"
	"                      key=str.lower)))\n";

/* Run argv (argv[0] an absolute path) and return what it printed on
 * stdout and stderr (malloc'd, at most ASK_MAX bytes), or NULL. */
static char *ask(char *const argv[])
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return NULL;
	posix_spawn_file_actions_t fa;
	char *out = NULL;
	pid_t pid = -1;
	if (posix_spawn_file_actions_init(&fa) != 0)
		goto out_pipe;
	int rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	if (!rc)
		rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc) {
		pid = -1;
		goto out_pipe;
	}
	close(pfd[1]);
	pfd[1] = -1;
	struct strbuf sb = {0};
	char buf[4096];
	double until = util_now() + ASK_TIMEOUT;
	for (;;) {
		double left = until - util_now();
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			break; /* too slow: what it said so far */
		ssize_t n = read(pfd[0], buf, sizeof buf);
		if (n <= 0)
			break;
		if (sb.len < ASK_MAX)
			strbuf_add(&sb, buf, (size_t)n);
	}
	out = strbuf_detach(&sb, NULL);
out_pipe:
	close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	if (pid > 0) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == 0) {
			kill(pid, SIGKILL);
			if (waitpid(pid, &st, 0) < 0)
				log_debug("envinfo: waitpid: %s", strerror(errno));
		}
	}
	return out;
}

/* The first line of text, tabs made spaces (malloc'd). */
static char *first_line(const char *text)
{
	char *l = xstrndup(text ? text : "", text ? strcspn(text, "\r\n") : 0);
	for (char *c = l; *c; c++)
		if (*c == '\t')
			*c = ' ';
	return l;
}

/* word resolved to an executable file: an absolute path as is, a bare
 * name on PATH; realpath'd (malloc'd), or NULL. */
static char *resolve(const char *word)
{
	char full[PATH_MAX];
	if (word[0] == '/')
		return access(word, X_OK) == 0 ? realpath(word, NULL) : NULL;
	const char *path = getenv("PATH");
	for (const char *p = path ? path : ""; *p; ) {
		size_t n = strcspn(p, ":");
		if (n && snprintf(full, sizeof full, "%.*s/%s", (int)n, p, word) < (int)sizeof full) {
			struct stat st;
			if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0)
				return realpath(full, NULL);
		}
		p += n + (p[n] == ':');
	}
	return NULL;
}

/* What the interpreter at path (realpath) says, remembered. Lock held. */
static const struct known *learn(const char *path, int python)
{
	for (struct known *k = cache; k; k = k->next)
		if (!strcmp(k->path, path))
			return k;
	struct known *k = xcalloc(1, sizeof *k);
	k->path = xstrdup(path);
	char *v = ask((char *const[]){(char *)path, "--version", NULL});
	k->version = first_line(v);
	free(v);
	if (python) {
		char *pk = ask((char *const[]){(char *)path, "-c", (char *)python_packages, NULL});
		k->packages = first_line(pk);
		free(pk);
	}
	k->next = cache;
	cache = k;
	return k;
}

/* The interpreter a word names: its basename is one of interpreters[]
 * (python3.11 counts as python3). */
static int names_interpreter(const char *word, int *python)
{
	const char *base = strrchr(word, '/');
	base = base ? base + 1 : word;
	for (size_t i = 0; interpreters[i]; i++) {
		size_t n = strlen(interpreters[i]);
		if (strncmp(base, interpreters[i], n))
			continue;
		const char *rest = base + n;
		while (*rest && (isdigit((unsigned char)*rest) || *rest == '.'))
			rest++;
		if (!*rest) {
			*python = !strncmp(interpreters[i], "python", 6);
			return 1;
		}
	}
	return 0;
}

/* The words of cmd that could name a program: split on blanks and shell
 * operators, quotes taken off; a word with expansions is skipped.
 * Appends new ones to *words. */
static void command_words(const char *cmd, char ***words, size_t *n)
{
	const char *p = cmd;
	while (*p) {
		p += strspn(p, " \t\n;&|()<>`");
		size_t len = strcspn(p, " \t\n;&|()<>`");
		if (!len)
			break;
		/* Quotes around a word are the shell's: "python3 x.py" in bash -c.
		 * Looked at in place; only a new interpreter's name is copied. */
		char w[PATH_MAX];
		size_t q = strspn(p, "\"'");
		size_t wl = len - q < sizeof w ? len - q : 0;  /* longer: no program */
		memcpy(w, p + q, wl);
		w[wl] = '\0';
		p += len;
		w[strcspn(w, "\"'")] = '\0';
		int python;
		if (!*w || strpbrk(w, "$*?=\\") || !names_interpreter(w, &python))
			continue;
		int seen = 0;
		for (size_t k = 0; k < *n && !seen; k++)
			seen = !strcmp((*words)[k], w);
		if (seen)
			continue;
		*words = xrealloc(*words, (*n + 1) * sizeof **words);
		(*words)[(*n)++] = xstrdup(w);
	}
}

static int cmp_word(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
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
	char **words = NULL;
	size_t nw = 0;
	for (size_t k = 0; k < n; k++)
		command_words(commands[k], &words, &nw);
	if (nw)
		qsort(words, nw, sizeof *words, cmp_word);
	for (size_t i = 0; i < nw; i++) {
		int python = 0;
		names_interpreter(words[i], &python);
		char *path = resolve(words[i]);
		if (!path) {
			strbuf_printf(&sb, "%s\tnot found%s\n", words[i],
			              words[i][0] == '/' ? "" : " on PATH");
			free(words[i]);
			continue;
		}
		pthread_mutex_lock(&cache_lock);
		const struct known *k = learn(path, python);
		strbuf_printf(&sb, "%s\t%s\n", words[i], k->version);
		strbuf_printf(&sb, "%s.path\t%s\n", words[i], k->path);
		if (k->packages)
			strbuf_printf(&sb, "%s.packages\t%s\n", words[i], k->packages);
		pthread_mutex_unlock(&cache_lock);
		free(path);
		free(words[i]);
	}
	free(words);
	return strbuf_detach(&sb, NULL);
}

void envinfo_free_cache(void)
{
	pthread_mutex_lock(&cache_lock);
	for (struct known *k = cache, *next; k; k = next) {
		next = k->next;
		free(k->path);
		free(k->version);
		free(k->packages);
		free(k);
	}
	cache = NULL;
	pthread_mutex_unlock(&cache_lock);
}
