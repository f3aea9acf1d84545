/*
 * stepkey.c - the keys of a <step>.json, one {key, parser} row each in
 * step_keys[]; keytab.c walks the file against the table. A parser checks
 * its value's type and shape and fills the step_def; what depends on
 * several keys (foreach names an input or a param of the step,
 * concurrency and min_success need foreach, register names outputs) is
 * checked once the whole object was read, in stepkey_parse(). Each
 * problem is reported at the position of the key (or the element) it
 * concerns. The step's canonical text, its cache key, is the whole
 * definition with sorted keys, without "description".
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "flowyfs/diag.h"
#include "flowyfs/keytab.h"
#include "flowyfs/resources.h"
#include "flowyfs/stepkey.h"
#include "flowyfs/util.h"

#define NAME_RULE  STEPLOAD_NAME_RULE
#define PARAM_RULE STEPLOAD_PARAM_RULE

/* ---- references ---------------------------------------------------------- */

/* Does the slash-separated path have a component equal to comp? */
static int path_has_component(const char *path, const char *comp)
{
	size_t n = strlen(comp);
	const char *s = path;

	while (*s) {
		const char *e = strchr(s, '/');
		size_t len = e ? (size_t)(e - s) : strlen(s);

		if (len == n && !strncmp(s, comp, n))
			return 1;
		if (!e)
			break;
		s = e + 1;
	}
	return 0;
}

static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

static int hex64(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\0';
}

/* Parse the reference ref (at offset off of s) into in. Returns 0, or -1
 * after reporting what is wrong with it. */
static int input_parse(struct stepload *l, struct jpos_src *s, size_t off,
                       const char *ref, struct step_input *in)
{
	struct diag *d = &l->diag;
	const char *slash = strchr(ref, '/');
	struct stat sb;

	memset(in, 0, sizeof *in);
	in->producer = -1;
	if (!strncmp(ref, "file:", 5)) {
		const char *path = ref + 5, *end, *base;

		if (path[0] != '/') {
			diag_at(d, s, off, "input %s: a file: path must be absolute", diag_quote(d, ref));
			return -1;
		}
		if (has_control(path)) {
			diag_at(d, s, off, "input %s: a file: path must not contain "
			        "control characters", diag_quote(d, ref));
			return -1;
		}
		if (path_has_component(path, "..") || path_has_component(path, ".")) {
			diag_at(d, s, off, "input %s: a file: path must not contain "
			        "\".\" or \"..\" components", diag_quote(d, ref));
			return -1;
		}
		end = path + strlen(path);
		while (end > path && end[-1] == '/')
			end--;
		if (end == path) {
			diag_at(d, s, off, "input %s: a file: path must name a file or "
			        "directory below /", diag_quote(d, ref));
			return -1;
		}
		for (base = end; base > path && base[-1] != '/'; base--)
			;
		if (l->checks && l->checks->file_input) {
			const char *why = l->checks->file_input(path, l->checks->arg);
			if (why) {
				diag_at(d, s, off, "input %s: %s", diag_quote(d, ref), why);
				return -1;
			}
		}
		/* Missing now is a mistake in the definition, not a run-time
		 * failure (the caller's check came first: stat() must not reach
		 * into the mount). */
		if (stat(path, &sb) < 0) {
			diag_at(d, s, off, "input %s: %s", diag_quote(d, ref),
			        errno == ENOENT || errno == ENOTDIR ?
			        "no such file or directory" : strerror(errno));
			return -1;
		}
		in->kind = STEP_IN_FILE;
		in->path = xstrdup(path);
		in->as = xstrndup(base, (size_t)(end - base));
	} else if (!strncmp(ref, "sha256:", 7)) {
		if (!hex64(ref + 7)) {
			diag_at(d, s, off, "input %s: expected 64 lowercase hex digits "
			        "after sha256:", diag_quote(d, ref));
			return -1;
		}
		in->kind = STEP_IN_PINNED;
		in->hex = xstrdup(ref + 7);
		in->as = xstrdup(in->hex);
	} else if (!strncmp(ref, "registry:", 9)) {
		const char *model = ref + 9, *at = strchr(model, '@');
		char *m = at ? xstrndup(model, (size_t)(at - model)) : NULL;
		int bad_alias = !at || !step_name_valid(at + 1) ||
		                (at[1] == 'v' && at[2] && strspn(at + 2, "0123456789") ==
		                 strlen(at + 2));
		if (!m || !step_name_valid(m) || bad_alias) {
			diag_at(d, s, off, "input %s: expected registry:<model>@<alias>, "
			        "both names " NAME_RULE ", the alias not v<N>",
			        diag_quote(d, ref));
			free(m);
			return -1;
		}
		in->kind = STEP_IN_REGISTRY;
		in->model = m;
		in->alias = xstrdup(at + 1);
		in->as = xstrdup(m);
	} else if (slash && !strchr(slash + 1, '/') && !strchr(ref, ':')) {
		char *pl = xstrndup(ref, (size_t)(slash - ref));

		if (!step_name_valid(pl)) {
			diag_at(d, s, off, "input %s: invalid pipeline name %s (" NAME_RULE ")",
			        diag_quote(d, ref), diag_quote(d, pl));
			free(pl);
			return -1;
		}
		if (!step_name_valid(slash + 1)) {
			diag_at(d, s, off, "input %s: invalid artifact name %s (" NAME_RULE ")",
			        diag_quote(d, ref), diag_quote(d, slash + 1));
			free(pl);
			return -1;
		}
		in->kind = STEP_IN_PIPELINE;
		in->pipeline = pl;
		in->artifact = xstrdup(slash + 1);
		in->as = xstrdup(in->artifact);
	} else if (slash || strchr(ref, ':')) {
		diag_at(d, s, off, "input %s: invalid reference (expected name, "
		        "pipeline/name, file:/abs/path, sha256:<64 hex digits> or "
		        "registry:<model>@<alias>)",
		        diag_quote(d, ref));
		return -1;
	} else if (!step_name_valid(ref)) {
		diag_at(d, s, off, "input %s: invalid artifact name (" NAME_RULE ")",
		        diag_quote(d, ref));
		return -1;
	} else {
		in->kind = STEP_IN_LOCAL;
		in->artifact = xstrdup(ref);
		in->as = xstrdup(ref);
	}
	in->ref = xstrdup(ref);
	return 0;
}

static void sk_inputs(struct stepload *l, struct jpos_src *s, void *obj,
                      cJSON *arr, size_t ko, size_t vo)
{
	struct diag *d = &l->diag;
	struct stepfile *f = obj;
	struct step_def *st = f->st;
	size_t *eoff = NULL, n, i;
	struct stepload_named *v = NULL;
	cJSON *e;

	if (!cJSON_IsArray(arr)) {
		diag_at(d, s, ko, "\"inputs\" must be an array of strings");
		return;
	}
	n = (size_t)cJSON_GetArraySize(arr);
	eoff = jpos_offsets(s->text, arr, vo, ko);
	st->inputs = xcalloc(n, sizeof *st->inputs);
	f->in_pos = xcalloc(n, sizeof *f->in_pos);
	for (i = 0, e = arr->child; e; e = e->next, i++) {
		size_t eo = eoff[i];

		if (!cJSON_IsString(e)) {
			diag_at(d, s, eo, "\"inputs\" must be an array of strings");
			continue;
		}
		if (input_parse(l, s, eo, e->valuestring,
		                &st->inputs[st->n_inputs]))
			continue;
		f->in_pos[st->n_inputs++] = eo;
	}
	/* Two inputs may not land on the same in/<as>. */
	v = xcalloc(st->n_inputs, sizeof *v);
	for (i = 0; i < st->n_inputs; i++) {
		v[i].name = st->inputs[i].as;
		v[i].i = i;
	}
	qsort(v, st->n_inputs, sizeof *v, stepload_named_cmp);
	for (i = 1; i < st->n_inputs; i++)
		if (!strcmp(v[i].name, v[i - 1].name)) {
			char *as = diag_plain(v[i].name);

			diag_at(d, s, f->in_pos[v[i].i],
			        "inputs %s and %s would both be in/%s",
			        diag_quote(d, st->inputs[v[i - 1].i].ref),
			        diag_quote(d, st->inputs[v[i].i].ref), as);
			free(as);
		}
	free(v);
	free(eoff);
}

static void sk_outputs(struct stepload *l, struct jpos_src *s, void *obj,
                       cJSON *arr, size_t ko, size_t vo)
{
	struct diag *d = &l->diag;
	struct stepfile *f = obj;
	struct step_def *st = f->st;
	size_t *eoff = NULL, n, i;
	struct stepload_named *v = NULL;
	cJSON *e;

	if (!cJSON_IsArray(arr)) {
		f->outputs_known = 0;
		diag_at(d, s, ko, "\"outputs\" must be an array of strings");
		return;
	}
	n = (size_t)cJSON_GetArraySize(arr);
	eoff = jpos_offsets(s->text, arr, vo, ko);
	st->outputs = xcalloc(n, sizeof *st->outputs);
	f->out_pos = xcalloc(n, sizeof *f->out_pos);
	for (i = 0, e = arr->child; e; e = e->next, i++) {
		size_t eo = eoff[i];

		if (!cJSON_IsString(e)) {
			f->outputs_known = 0;
			diag_at(d, s, eo, "\"outputs\" must be an array of strings");
			continue;
		}
		if (!step_name_valid(e->valuestring))
			diag_at(d, s, eo, "invalid output name %s (" NAME_RULE ")",
			        diag_quote(d, e->valuestring));
		f->out_pos[st->n_outputs] = eo;
		st->outputs[st->n_outputs++] = xstrdup(e->valuestring);
	}
	v = xcalloc(st->n_outputs, sizeof *v);
	for (i = 0; i < st->n_outputs; i++) {
		v[i].name = st->outputs[i];
		v[i].i = i;
	}
	qsort(v, st->n_outputs, sizeof *v, stepload_named_cmp);
	for (i = 1; i < st->n_outputs; i++)
		if (!strcmp(v[i].name, v[i - 1].name))
			diag_at(d, s, f->out_pos[v[i].i], "output %s is listed twice",
			        diag_quote(d, v[i].name));
	free(v);
	free(eoff);
}

static void sk_params(struct stepload *l, struct jpos_src *s, void *obj,
                      cJSON *val, size_t ko, size_t vo)
{
	struct diag *d = &l->diag;
	struct stepfile *f = obj;
	struct step_def *st = f->st;
	size_t *eoff = NULL, n, i;
	unsigned char *skip = NULL;
	struct stepload_named *v = NULL;
	cJSON *e;

	if (cJSON_IsObject(val)) {
		skip = xcalloc((size_t)cJSON_GetArraySize(val) + 1, 1);
		stepload_check_param_keys(l, s, val, vo, skip);
		for (i = 0, e = val->child; e; e = e->next, i++)
			if (!skip[i])
				cJSON_AddItemToObject(st->params, e->string,
				                      stepload_json(cJSON_Duplicate(e, 1)));
		goto out;
	}
	if (!cJSON_IsArray(val)) {
		diag_at(d, s, ko, "\"params\" must be an array of names or an object");
		goto out;
	}
	n = (size_t)cJSON_GetArraySize(val);
	eoff = jpos_offsets(s->text, val, vo, ko);
	skip = xcalloc(n + 1, 1);
	v = xcalloc(n, sizeof *v);
	for (i = 0, e = val->child; e; e = e->next, i++) {
		v[i].name = cJSON_IsString(e) ? e->valuestring : "";
		v[i].i = i;
		if (!cJSON_IsString(e)) {
			skip[i] = 1;
			diag_at(d, s, eoff[i],
			        "\"params\" must be an array of names or an object");
		} else if (!stepload_name_valid(e->valuestring, 1)) {
			skip[i] = 1;
			diag_at(d, s, eoff[i],
			        "invalid param name %s (" PARAM_RULE ")", diag_quote(d, e->valuestring));
		}
	}
	qsort(v, n, sizeof *v, stepload_named_cmp);
	for (i = 1; i < n; i++)
		if (skip[v[i].i] != 1 && skip[v[i - 1].i] != 1 &&
		    !strcmp(v[i].name, v[i - 1].name)) {
			skip[v[i].i] = 2;
			diag_at(d, s, eoff[v[i].i],
			        "param %s is listed twice", diag_quote(d, v[i].name));
		}
	for (i = 0, e = val->child; e; e = e->next, i++) {
		cJSON *cv;

		if (skip[i])
			continue;
		cv = stepload_param(l, e->valuestring);
		if (!cv && l->ctx_ok)
			diag_at(d, s, eoff[i],
			        "param %s is not in pipeline.json params", diag_quote(d, e->valuestring));
		if (cv)
			cJSON_AddItemToObject(st->params, e->valuestring,
			                      stepload_json(cJSON_Duplicate(cv, 1)));
	}
out:
	free(v);
	free(skip);
	free(eoff);
}

static void sk_code(struct stepload *l, struct jpos_src *s, void *obj,
                    cJSON *arr, size_t ko, size_t vo)
{
	struct diag *d = &l->diag;
	struct stepfile *f = obj;
	struct step_def *st = f->st;
	size_t *eoff = NULL, n, i;
	struct stat sb;
	cJSON *e;

	st->code_default = 0;
	if (!cJSON_IsArray(arr)) {
		diag_at(d, s, ko, "\"code\" must be an array of paths");
		return;
	}
	n = (size_t)cJSON_GetArraySize(arr);
	eoff = jpos_offsets(s->text, arr, vo, ko);
	st->code = xcalloc(n, sizeof *st->code);
	for (i = 0, e = arr->child; e; e = e->next, i++) {
		size_t eo = eoff[i];
		const char *path = e->valuestring;

		if (!cJSON_IsString(e)) {
			diag_at(d, s, eo, "\"code\" must be an array of paths");
		} else if (!path[0]) {
			diag_at(d, s, eo, "code path must not be empty");
		} else if (path[0] == '/') {
			diag_at(d, s, eo, "code path %s must be relative to the "
			        "pipeline directory", diag_quote(d, path));
		} else if (path_has_component(path, "..")) {
			diag_at(d, s, eo, "code path %s must not contain \"..\"",
			        diag_quote(d, path));
		} else if (fstatat(l->dirfd, path, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				diag_at(d, s, eo, "code path %s does not exist", diag_quote(d, path));
			else
				diag_at(d, s, eo, "code path %s: %s", diag_quote(d, path),
				        strerror(errno));
		} else {
			st->code[st->n_code++] = xstrdup(path);
		}
	}
	free(eoff);
}

/* ---- the other keys ------------------------------------------------------ */

static void sk_run(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                   size_t ko, size_t vo)
{
	stepload_string(l, s, val, ko, 1, &((struct stepfile *)obj)->st->run,
	                "\"run\" must be a non-empty string");
}

static void sk_retries(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                       size_t ko, size_t vo)
{
	struct stepfile *f = obj;

	if (!cJSON_IsNumber(val) || !(val->valuedouble >= 0 && val->valuedouble <= 100) ||
	    (double)(int)val->valuedouble != val->valuedouble)
		diag_at(&l->diag, s, ko, "\"retries\" must be an integer from 0 to 100");
	else
		f->st->retries = (int)val->valuedouble;
}

static void sk_backoff(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                       size_t ko, size_t vo)
{
	struct stepfile *f = obj;

	if (!cJSON_IsNumber(val) || !isfinite(val->valuedouble) ||
	    !(val->valuedouble >= 0))
		diag_at(&l->diag, s, ko, "\"backoff\" must be a number of seconds, "
		        "0 or more");
	else
		f->st->backoff = val->valuedouble;
}

static void sk_timeout(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                       size_t ko, size_t vo)
{
	struct stepfile *f = obj;

	if (!cJSON_IsNumber(val) || !isfinite(val->valuedouble) ||
	    !(val->valuedouble > 0))
		diag_at(&l->diag, s, ko, "\"timeout\" must be a number of seconds "
		        "greater than 0");
	else
		f->st->timeout = val->valuedouble;
}

static void sk_description(struct stepload *l, struct jpos_src *s, void *obj,
                           cJSON *val, size_t ko, size_t vo)
{
	stepload_string(l, s, val, ko, 0, &((struct stepfile *)obj)->st->description,
	                "\"description\" must be a string");
}

static void sk_when(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                    size_t ko, size_t vo)
{
	stepload_string(l, s, val, ko, 1, &((struct stepfile *)obj)->st->when,
	                "\"when\" must be a non-empty string "
	                "(a shell command: exit 0 runs the step, 1 skips it)");
}

/* The shape only; what it names is checked in foreach_resolve(). */
static void sk_foreach(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                       size_t ko, size_t vo)
{
	struct stepfile *f = obj;
	const char *v = cJSON_IsString(val) ? val->valuestring : NULL;

	if (!v || !v[0] || !strcmp(v, "param:")) {
		diag_at(&l->diag, s, ko, "\"foreach\" must be the name of one of the "
		        "step's inputs or \"param:<name>\"");
		return;
	}
	if (!strncmp(v, "param:", 6)) {
		f->st->foreach_kind = STEP_FOREACH_PARAM;
		f->st->foreach = xstrdup(v + 6);
	} else {
		f->st->foreach_kind = STEP_FOREACH_INPUT;
		f->st->foreach = xstrdup(v);
	}
}

static void sk_concurrency(struct stepload *l, struct jpos_src *s, void *obj,
                           cJSON *val, size_t ko, size_t vo)
{
	struct stepfile *f = obj;

	if (!cJSON_IsNumber(val) || !(val->valuedouble >= 1 && val->valuedouble <= 1e6) ||
	    (double)(int)val->valuedouble != val->valuedouble)
		diag_at(&l->diag, s, ko, "\"concurrency\" must be a whole number of at "
		        "least 1");
	else
		f->st->concurrency = (int)val->valuedouble;
}

static void sk_min_success(struct stepload *l, struct jpos_src *s, void *obj,
                           cJSON *val, size_t ko, size_t vo)
{
	struct stepfile *f = obj;

	if (!cJSON_IsNumber(val) || !(val->valuedouble >= 0 && val->valuedouble <= 1))
		diag_at(&l->diag, s, ko, "\"min_success\" must be a number from 0 to 1 "
		        "(the fraction of items that must succeed)");
	else
		f->st->min_success = val->valuedouble;
}

/* The shape and the model names; that each names an output is checked in
 * register_resolve(). */
static void sk_register(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                        size_t ko, size_t vo)
{
	struct diag *d = &l->diag;
	struct stepfile *f = obj;
	struct step_def *st = f->st;
	size_t *koff = NULL, n, i;
	cJSON *e;

	if (!cJSON_IsObject(val)) {
		diag_at(d, s, ko, "\"register\" must be an object of "
		        "\"<output>\": \"<model>\"");
		return;
	}
	n = (size_t)cJSON_GetArraySize(val);
	koff = jpos_offsets(s->text, val, vo, ko);
	st->reg = xcalloc(n + 1, sizeof *st->reg);
	for (i = 0, e = val->child; e; e = e->next, i++) {
		size_t eo = koff[i];

		if (!cJSON_IsString(e)) {
			diag_at(d, s, eo, "\"register\": the model of output %s must "
			        "be a string", diag_quote(d, e->string));
			continue;
		}
		if (!step_name_valid(e->valuestring)) {
			diag_at(d, s, eo, "\"register\": invalid model name %s ("
			        NAME_RULE ")", diag_quote(d, e->valuestring));
			continue;
		}
		st->reg[st->n_reg].output = xstrdup(e->string);
		st->reg[st->n_reg].model = xstrdup(e->valuestring);
		st->n_reg++;
	}
	free(koff);
}

static void sk_executor(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                        size_t ko, size_t vo)
{
	resources_parse_executor(l, s, val, ko, &((struct stepfile *)obj)->st->executor);
}

static void sk_resources(struct stepload *l, struct jpos_src *s, void *obj,
                         cJSON *val, size_t ko, size_t vo)
{
	resources_parse(l, s, val, ko, vo, &((struct stepfile *)obj)->st->resources);
}

/* The table. Order: how the docs list them (and the first of two equally
 * near misses wins). */
enum { K_RUN, K_INPUTS, K_OUTPUTS, K_PARAMS, K_CODE, K_RETRIES, K_BACKOFF,
       K_TIMEOUT, K_DESCRIPTION, K_WHEN, K_FOREACH, K_CONCURRENCY, K_MIN_SUCCESS,
       K_REGISTER, K_EXECUTOR, K_RESOURCES, K_N };

static const struct keytab step_keys[K_N] = {
	[K_RUN] = {"run", sk_run},
	[K_INPUTS] = {"inputs", sk_inputs},
	[K_OUTPUTS] = {"outputs", sk_outputs},
	[K_PARAMS] = {"params", sk_params},
	[K_CODE] = {"code", sk_code},
	[K_RETRIES] = {"retries", sk_retries},
	[K_BACKOFF] = {"backoff", sk_backoff},
	[K_TIMEOUT] = {"timeout", sk_timeout},
	[K_DESCRIPTION] = {"description", sk_description},
	[K_WHEN] = {"when", sk_when},
	[K_FOREACH] = {"foreach", sk_foreach},
	[K_CONCURRENCY] = {"concurrency", sk_concurrency},
	[K_MIN_SUCCESS] = {"min_success", sk_min_success},
	[K_REGISTER] = {"register", sk_register},
	[K_EXECUTOR] = {"executor", sk_executor},
	[K_RESOURCES] = {"resources", sk_resources},
};

/* ---- checks across the keys of one step ------------------------------- */

/* Does the step's "params" (a list or an object) name name? */
static int listed(const cJSON *params, const char *name)
{
	const cJSON *e;

	if (cJSON_IsObject(params))
		return cJSON_GetObjectItemCaseSensitive(params, name) != NULL;
	cJSON_ArrayForEach(e, params)
		if (cJSON_IsString(e) && !strcmp(e->valuestring, name))
			return 1;
	return 0;
}

/* "foreach" names one of the step's inputs (by reference or in/ name) or
 * a list param the step uses. */
static void foreach_resolve(struct stepload *l, struct stepfile *f, size_t ko)
{
	struct step_def *st = f->st;
	struct diag *d = &l->diag;
	const cJSON *v;
	size_t i;

	if (st->foreach_kind == STEP_FOREACH_INPUT) {
		for (i = 0; i < st->n_inputs; i++)
			if (!strcmp(st->inputs[i].ref, st->foreach))
				break;
		for (size_t k = 0; i == st->n_inputs && k < st->n_inputs; k++)
			if (!strcmp(st->inputs[k].as, st->foreach))
				i = k;
		if (i < st->n_inputs)
			st->foreach_input = (int)i;
		else
			diag_at(d, &f->src, ko, "\"foreach\": %s is not one of the step's "
			        "inputs (write \"param:%s\" for a param)",
			        diag_quote(d, st->foreach), st->foreach);
		return;
	}
	if (!stepload_name_valid(st->foreach, 1)) {
		diag_at(d, &f->src, ko, "\"foreach\": invalid param name %s (" PARAM_RULE ")",
		        diag_quote(d, st->foreach));
		return;
	}
	v = cJSON_GetObjectItemCaseSensitive(st->params, st->foreach);
	if (!v && listed(cJSON_GetObjectItemCaseSensitive(f->root, "params"), st->foreach))
		return;         /* listed, missing from the context: said already */
	if (!v && l->ctx_ok)
		diag_at(d, &f->src, ko, "\"foreach\": param %s is not one of the step's "
		        "params", diag_quote(d, st->foreach));
	else if (v && !cJSON_IsArray(v))
		diag_at(d, &f->src, ko, "\"foreach\": param %s is not a list",
		        diag_quote(d, st->foreach));
}

/* Each output of "register" is an output of the step, once. Sorted
 * lists keep a hostile file at O(n log n). */
static void register_resolve(struct stepload *l, struct stepfile *f, size_t ko)
{
	struct step_def *st = f->st;
	struct diag *d = &l->diag;
	struct stepload_named *v = NULL, *outs = NULL;
	size_t *koff = NULL, n, i;
	cJSON *reg = cJSON_GetObjectItemCaseSensitive(f->root, "register"), *e;

	if (!cJSON_IsObject(reg))
		return;
	n = (size_t)cJSON_GetArraySize(reg);
	koff = jpos_offsets(f->src.text, reg, jpos_value(f->src.text, ko), ko);
	v = xcalloc(n + 1, sizeof *v);
	for (i = 0, e = reg->child; e; e = e->next, i++) {
		v[i].name = e->string;
		v[i].i = i;
	}
	qsort(v, n, sizeof *v, stepload_named_cmp);
	outs = xcalloc(st->n_outputs + 1, sizeof *outs);
	for (i = 0; i < st->n_outputs; i++) {
		outs[i].name = st->outputs[i];
		outs[i].i = i;
	}
	qsort(outs, st->n_outputs, sizeof *outs, stepload_named_cmp);
	for (i = 0; i < n; i++) {
		size_t eo = koff[v[i].i];

		if (i && !strcmp(v[i].name, v[i - 1].name))
			diag_at(d, &f->src, eo, "\"register\": output %s is listed twice",
			        diag_quote(d, v[i].name));
		else if (f->outputs_known &&
		         stepload_named_find(outs, st->n_outputs, v[i].name) == JPOS_NONE)
			diag_at(d, &f->src, eo, "\"register\": %s is not one of the step's "
			        "outputs", diag_quote(d, v[i].name));
	}
	free(outs);
	free(v);
	free(koff);
}

void stepkey_parse(struct stepload *l, struct stepfile *f)
{
	struct step_def *st = f->st;
	struct diag *d = &l->diag;
	size_t seen[K_N];
	cJSON *dup;

	st->params = stepload_json(cJSON_CreateObject());
	st->code_default = 1;
	st->foreach_input = -1;
	st->min_success = 1;
	if (!step_name_valid(st->name))
		diag_file(d, f->src.disp, "invalid step name %s (" NAME_RULE ")",
		          diag_quote(d, st->name));
	if (!f->src.text || stepload_parse(l, &f->src, &f->root))
		return;
	f->obj = jpos_start(f->src.text);
	if (!cJSON_IsObject(f->root)) {
		diag_at(d, &f->src, f->obj, "a step definition must be a JSON object");
		return;
	}
	f->outputs_known = 1;
	keytab_walk(step_keys, K_N, l, &f->src, f->root, f->obj, f, seen);
	if (seen[K_RUN] == JPOS_NONE)
		diag_at(d, &f->src, f->obj, "missing required key \"run\"");
	if (st->foreach)
		foreach_resolve(l, f, seen[K_FOREACH]);
	if (seen[K_CONCURRENCY] != JPOS_NONE && seen[K_FOREACH] == JPOS_NONE)
		diag_at(d, &f->src, seen[K_CONCURRENCY], "\"concurrency\" needs \"foreach\"");
	if (seen[K_MIN_SUCCESS] != JPOS_NONE && seen[K_FOREACH] == JPOS_NONE)
		diag_at(d, &f->src, seen[K_MIN_SUCCESS], "\"min_success\" needs \"foreach\"");
	if (seen[K_REGISTER] != JPOS_NONE)
		register_resolve(l, f, seen[K_REGISTER]);
	/* The cache key covers what the step does, not how it is described. */
	dup = stepload_json(cJSON_Duplicate(f->root, 1));
	cJSON_DeleteItemFromObjectCaseSensitive(dup, "description");
	jpos_sort_keys(dup);
	st->canonical = cJSON_PrintUnformatted(dup);
	if (!st->canonical)
		util_oom();
	cJSON_Delete(dup);
}
