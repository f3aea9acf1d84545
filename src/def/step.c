/*
 * step.c - loading a pipeline definition: the entry points of the
 * definition layer (src/def/).
 *
 * A pipeline is a directory of JSON files: an optional pipeline.json (the
 * params context and a few settings) and one <step>.json per step.
 * step_load() lists and reads them, has pipekey.c parse pipeline.json,
 * stepkey.c each step (each key a {key, parser} row), pipecheck.c check
 * across steps (outputs, inputs, cycles), and diag.c sort *every* problem
 * found as "<file>:<line>:<col>: <message>", because .status has to tell a
 * user exactly what to fix in one go. It never fails on bad input, only
 * on I/O or memory trouble. Also here: the rule for names, and which
 * files of a pipeline are the default code of a step.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowyfs/diag.h"
#include "flowyfs/pipecheck.h"
#include "flowyfs/pipekey.h"
#include "flowyfs/step.h"
#include "flowyfs/stepkey.h"
#include "flowyfs/stepload.h"
#include "flowyfs/util.h"

/* ---- names ------------------------------------------------------------- */

int step_name_valid(const char *name)
{
	return stepload_name_valid(name, 0);
}

/* ---- the default code ---------------------------------------------------- */

static int ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && !strncasecmp(s + n - k, suffix, k);
}

/* Does the base name (n bytes) start with word, followed by nothing or by
 * '.', '-' or '_' (README, README.md, LICENSE-MIT), any case? */
static int starts_word(const char *s, size_t n, const char *word)
{
	size_t k = strlen(word);

	return n >= k && !strncasecmp(s, word, k) &&
	       (n == k || s[k] == '.' || s[k] == '-' || s[k] == '_');
}

/* Is the base name (n bytes) an editor's temp file or documentation? */
static int not_code(const char *s, size_t n)
{
	static const char *const suffixes[] = {
		"~", ".swp", ".swo", ".swx", ".tmp",    /* editors */
		".md", ".markdown", ".rst",             /* documentation */
	};
	static const char *const words[] = {"README", "LICENSE", "LICENCE", "COPYING"};
	size_t i;

	if (n >= 2 && s[0] == '#' && s[n - 1] == '#')
		return 1;                               /* emacs auto-save */
	if (n == 4 && !strncmp(s, "4913", 4))
		return 1;                               /* vim's write probe */
	for (i = 0; i < sizeof suffixes / sizeof *suffixes; i++)
		if (ends_with(s, n, suffixes[i]))
			return 1;
	for (i = 0; i < sizeof words / sizeof *words; i++)
		if (starts_word(s, n, words[i]))
			return 1;
	return 0;
}

int step_is_default_code(const char *rel)
{
	const char *s = rel, *e;
	size_t n;

	if (!rel || !rel[0] || rel[0] == '/')
		return 0;
	for (;;) {
		e = strchr(s, '/');
		n = e ? (size_t)(e - s) : strlen(s);
		if (n && s[0] == '.')
			return 0;                       /* dotfile or dot-directory */
		if (!e)
			break;
		s = e + 1;
	}
	if (!n || not_code(s, n))
		return 0;
	return s != rel || !ends_with(s, n, ".json");
}

/* ---- the entry points ---------------------------------------------------- */

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_json_suffix(const char *name)
{
	size_t n = strlen(name);

	return n > 5 && !strcmp(name + n - 5, ".json");
}

static void input_clear(struct step_input *in)
{
	free(in->hex);
	free(in->model);
	free(in->alias);
	free(in->path);
	free(in->artifact);
	free(in->pipeline);
	free(in->as);
	free(in->ref);
	memset(in, 0, sizeof *in);
	in->producer = -1;
}

int step_load(struct pipeline_def **out, const char *name, const char *dir)
{
	return step_load_checked(out, name, dir, NULL);
}

int step_load_checked(struct pipeline_def **out, const char *name, const char *dir,
                      const struct step_checks *checks)
{
	struct pipeline_def *p = NULL;
	struct stepload c = {0};
	char **names = NULL;
	size_t n_names = 0, cap_names = 0, cap_steps = 0, i;
	int ret = 0, dfd = -1, has_ctx = 0;
	DIR *d = NULL;
	struct dirent *de;
	struct stat sb;

	*out = NULL;
	c.checks = checks;
	c.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c.dirfd < 0) {
		ret = -errno;
		goto out;
	}
	dfd = dup(c.dirfd);
	if (dfd < 0 || !(d = fdopendir(dfd))) {
		ret = -errno;
		goto out;
	}
	dfd = -1;
	p = xcalloc(1, sizeof *p);
	c.p = p;
	p->name = xstrdup(name);
	p->dir = xstrdup(dir);
	if (!step_name_valid(name))
		diag_file(&c.diag, NULL, "invalid pipeline name %s (" STEPLOAD_NAME_RULE ")",
		          diag_quote(&c.diag, name));

	/* The step files: top-level *.json, dot-files ignored, folders are code. */
	for (errno = 0; (de = readdir(d)); errno = 0) {
		if (de->d_name[0] == '.' || !has_json_suffix(de->d_name))
			continue;
		/* The entry's type as readdir tells it (a stat only when it
		 * cannot: a tenth of a 1000-step validation was these stats). */
		mode_t type = de->d_type == DT_REG ? S_IFREG : de->d_type == DT_DIR ? S_IFDIR :
		              de->d_type == DT_LNK ? S_IFLNK : 0;
		if (!type) {
			if (fstatat(c.dirfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			type = sb.st_mode & S_IFMT;
		}
		if (S_ISDIR(type))
			continue;
		if (!S_ISREG(type)) {
			char *disp = diag_plain(de->d_name);

			diag_file(&c.diag, disp, "not a regular file (definitions must "
			          "be regular files)");
			free(disp);
			continue;
		}
		if (!strcmp(de->d_name, "pipeline.json")) {
			has_ctx = 1;
			continue;
		}
		GROW(names, cap_names, n_names);
		names[n_names++] = xstrdup(de->d_name);
	}
	if (errno) {
		ret = -errno;
		goto out;
	}
	if (n_names)
		qsort(names, n_names, sizeof *names, str_cmp);
	c.step_files = names;
	c.n_step_files = n_names;
	pipekey_load(&c, has_ctx);
	c.step_files = NULL;

	for (i = 0; i < n_names; i++) {
		struct stepfile f = {0};
		struct step_def *st;
		int r;

		f.src.disp = diag_plain(names[i]);
		r = stepload_read(&c, &f.src, names[i]);
		if (r == 1) {
			jpos_free(&f.src);
			continue;
		}
		GROW(p->steps, cap_steps, p->n_steps);
		c.files = xrealloc(c.files, cap_steps * sizeof *c.files);
		st = &p->steps[p->n_steps];
		memset(st, 0, sizeof *st);
		st->file = names[i];
		st->name = xstrndup(names[i], strlen(names[i]) - 5);
		names[i] = NULL;
		c.files[p->n_steps++] = f;
	}
	for (i = 0; i < p->n_steps; i++) {
		c.files[i].st = &p->steps[i];
		stepkey_parse(&c, &c.files[i]);
	}
	/* Every kind of problem is listed: a cycle is looked for even when
	 * other problems were found (only a step reading its own output,
	 * already reported, makes a second report of it pointless). */
	if (!pipecheck_link(&c))
		pipecheck_cycles(&c);
	if (!p->n_steps)
		diag_file(&c.diag, NULL, "pipeline has no steps (write a <step>.json)");
	for (i = 0; i < p->n_steps; i++)
		diag_dropped(&c.diag, &c.files[i].src);
	diag_finish(&c.diag, &p->errors, &p->n_errors);
	if (p->n_errors) {
		free(p->order);      /* valid only when there are no errors */
		p->order = NULL;
	}
	*out = p;
	p = NULL;
out:
	diag_free(&c.diag);
	free(c.ctx_idx);
	for (i = 0; c.p && i < c.p->n_steps; i++) {
		free(c.files[i].out_pos);
		free(c.files[i].in_pos);
		cJSON_Delete(c.files[i].root);
		jpos_free(&c.files[i].src);
	}
	free(c.files);
	for (i = 0; i < n_names; i++)
		free(names[i]);
	free(names);
	if (d)
		closedir(d);
	if (dfd >= 0)
		close(dfd);
	if (c.dirfd >= 0)
		close(c.dirfd);
	step_free(p);
	return ret;
}

void step_hold(struct pipeline_def *p)
{
	__atomic_add_fetch(&p->holders, 1, __ATOMIC_RELAXED);
}

void step_free(struct pipeline_def *p)
{
	size_t i, j;

	if (!p || __atomic_fetch_sub(&p->holders, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (i = 0; i < p->n_errors; i++)
		free(p->errors[i]);
	free(p->errors);
	free(p->order);
	for (i = 0; i < p->n_steps; i++) {
		struct step_def *st = &p->steps[i];

		cJSON_free(st->canonical);
		cJSON_Delete(st->resources);
		free(st->executor);
		for (j = 0; j < st->n_reg; j++) {
			free(st->reg[j].model);
			free(st->reg[j].output);
		}
		free(st->reg);
		free(st->foreach);
		free(st->when);
		for (j = 0; j < st->n_code; j++)
			free(st->code[j]);
		free(st->code);
		cJSON_Delete(st->params);
		for (j = 0; j < st->n_outputs; j++)
			free(st->outputs[j]);
		free(st->outputs);
		for (j = 0; j < st->n_inputs; j++)
			input_clear(&st->inputs[j]);
		free(st->inputs);
		free(st->description);
		free(st->run);
		free(st->file);
		free(st->name);
	}
	free(p->steps);
	for (i = 0; i < p->n_alerts; i++) {
		free(p->alerts[i].name);
		free(p->alerts[i].metric);
		free(p->alerts[i].step);
	}
	free(p->alerts);
	cJSON_Delete(p->slurm);
	cJSON_Delete(p->resources);
	free(p->executor);
	free(p->workdir);
	free(p->description);
	cJSON_Delete(p->params);
	free(p->dir);
	free(p->name);
	free(p);
}

int step_producer(const struct pipeline_def *p, const char *artifact)
{
	size_t i, j;

	if (!p || !artifact)
		return -1;
	for (i = 0; i < p->n_steps; i++)
		for (j = 0; j < p->steps[i].n_outputs; j++)
			if (!strcmp(p->steps[i].outputs[j], artifact))
				return (int)i;
	return -1;
}
