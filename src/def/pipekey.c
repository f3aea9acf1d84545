/*
 * pipekey.c - pipeline.json: the settings shared by the steps of a
 * pipeline. Each key is a row of pipe_keys with its parser; keytab.c
 * walks the file against it. The params object is the context steps take
 * their params from; when it is broken the steps are not blamed for
 * params it would have held (ctx_ok). "alerts" is kept as written: this
 * layer checks only that it is an array of objects, the events module
 * gives the rest of its meaning.
 */
#include <stdlib.h>
#include <string.h>

#include "flowyfs/diag.h"
#include "flowyfs/keytab.h"
#include "flowyfs/pipekey.h"
#include "flowyfs/resources.h"
#include "flowyfs/util.h"

static void pk_params(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                      size_t ko, size_t vo)
{
	struct pipeline_def *p = obj;
	unsigned char *dup;

	if (!cJSON_IsObject(val)) {
		l->ctx_ok = 0;
		diag_at(&l->diag, s, ko, "\"params\" must be an object of name: value");
		return;
	}
	dup = xcalloc((size_t)cJSON_GetArraySize(val) + 1, 1);
	stepload_check_param_keys(l, s, val, vo, dup);
	free(dup);
	cJSON_Delete(p->params);
	p->params = stepload_json(cJSON_Duplicate(val, 1));
}

static void pk_description(struct stepload *l, struct jpos_src *s, void *obj,
                           cJSON *val, size_t ko, size_t vo)
{
	stepload_string(l, s, val, ko, 0, &((struct pipeline_def *)obj)->description,
	                "\"description\" must be a string");
}

static void pk_workdir(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                       size_t ko, size_t vo)
{
	struct pipeline_def *p = obj;

	if (!cJSON_IsString(val) || val->valuestring[0] != '/')
		diag_at(&l->diag, s, ko, "\"workdir\" must be an absolute path");
	else
		p->workdir = xstrdup(val->valuestring);
}

static void pk_autorun(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                       size_t ko, size_t vo)
{
	struct pipeline_def *p = obj;

	if (!cJSON_IsBool(val))
		diag_at(&l->diag, s, ko, "\"autorun\" must be true or false");
	else
		p->autorun = cJSON_IsTrue(val);
}

static void pk_executor(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                        size_t ko, size_t vo)
{
	resources_parse_executor(l, s, val, ko, &((struct pipeline_def *)obj)->executor);
}

static void pk_resources(struct stepload *l, struct jpos_src *s, void *obj,
                         cJSON *val, size_t ko, size_t vo)
{
	resources_parse(l, s, val, ko, vo, &((struct pipeline_def *)obj)->resources);
}

/* ---- "slurm": its own small table ------------------------------------------ */

static void sl_string(struct stepload *l, struct jpos_src *s, cJSON *val, size_t ko,
                      const char *key)
{
	if (!cJSON_IsString(val) || !val->valuestring[0])
		diag_at(&l->diag, s, ko, "\"%s\" must be a non-empty string", key);
}

static void sl_partition(struct stepload *l, struct jpos_src *s, void *obj,
                         cJSON *val, size_t ko, size_t vo)
{
	sl_string(l, s, val, ko, "partition");
}

static void sl_account(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                       size_t ko, size_t vo)
{
	sl_string(l, s, val, ko, "account");
}

/* Is val an array whose every element passes is? Else report msg at the
 * key, or at each element that does not. Returns 1 when val is an array. */
static int pk_array_of(struct stepload *l, struct jpos_src *s, cJSON *val,
                       size_t ko, size_t vo, cJSON_bool (*is)(const cJSON *),
                       const char *msg)
{
	size_t *eoff, i;
	cJSON *e;

	if (!cJSON_IsArray(val)) {
		diag_at(&l->diag, s, ko, "%s", msg);
		return 0;
	}
	eoff = jpos_offsets(s->text, val, vo, ko);
	for (i = 0, e = val->child; e; e = e->next, i++)
		if (!is(e))
			diag_at(&l->diag, s, eoff[i], "%s", msg);
	free(eoff);
	return 1;
}

static void sl_args(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                    size_t ko, size_t vo)
{
	pk_array_of(l, s, val, ko, vo, cJSON_IsString,
	            "\"args\" must be an array of strings (extra sbatch arguments)");
}

static const struct keytab slurm_keys[] = {
	{"partition", sl_partition},
	{"account", sl_account},
	{"args", sl_args},
};
#define N_SLURM_KEYS (sizeof slurm_keys / sizeof slurm_keys[0])

static void pk_slurm(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                     size_t ko, size_t vo)
{
	struct pipeline_def *p = obj;

	if (keytab_walk_member(slurm_keys, N_SLURM_KEYS, l, s, val, ko, vo, p, "slurm"))
		p->slurm = stepload_json(cJSON_Duplicate(val, 1));
}

static void pk_alerts(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                      size_t ko, size_t vo)
{
	struct pipeline_def *p = obj;

	if (pk_array_of(l, s, val, ko, vo, cJSON_IsObject,
	                "\"alerts\" must be an array of objects"))
		p->alerts = stepload_json(cJSON_Duplicate(val, 1));
}

static const struct keytab pipe_keys[] = {
	{"params", pk_params},
	{"description", pk_description},
	{"workdir", pk_workdir},
	{"autorun", pk_autorun},
	{"executor", pk_executor},
	{"resources", pk_resources},
	{"slurm", pk_slurm},
	{"alerts", pk_alerts},
};
#define N_PIPE_KEYS (sizeof pipe_keys / sizeof pipe_keys[0])

void pipekey_load(struct stepload *l, int present)
{
	struct pipeline_def *p = l->p;
	struct jpos_src s = {0};
	size_t seen[N_PIPE_KEYS], obj;
	cJSON *root = NULL;
	int r;

	p->params = stepload_json(cJSON_CreateObject());
	p->autorun = 1;
	l->ctx_ok = 1;
	if (!present)
		goto index;
	s.disp = xstrdup("pipeline.json");
	r = stepload_read(l, &s, "pipeline.json");
	if (r == 1)
		goto index;
	if (r < 0 || stepload_parse(l, &s, &root)) {
		l->ctx_ok = 0;   /* no context: do not blame the steps for it */
		goto index;
	}
	obj = jpos_start(s.text);
	if (!cJSON_IsObject(root)) {
		l->ctx_ok = 0;
		diag_at(&l->diag, &s, obj, "pipeline.json must hold a JSON object");
		goto index;
	}
	keytab_walk(pipe_keys, N_PIPE_KEYS, l, &s, root, obj, p, seen);
index:
	stepload_index_params(l);
	diag_dropped(&l->diag, &s);
	cJSON_Delete(root);
	jpos_free(&s);
}
