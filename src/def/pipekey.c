/*
 * pipekey.c - pipeline.json: the settings shared by the steps of a
 * pipeline. Each key is a row of pipe_keys with its parser; keytab.c
 * walks the file against it. The params object is the context steps take
 * their params from; when it is broken the steps are not blamed for
 * params it would have held (ctx_ok). Each object of "alerts" is walked
 * against its own small table, then checked as a whole (a name, a metric
 * with a bound or a duration, a step that exists); alerts.c evaluates them.
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

/* ---- "alerts": an array of objects with their own table ------------------- */

static void al_string(struct stepload *l, struct jpos_src *s, cJSON *val, size_t ko,
                      char **out, const char *key, int name)
{
	if (!cJSON_IsString(val) || !stepload_name_valid(val->valuestring, 0))
		diag_at(&l->diag, s, ko, "\"%s\" must be a %s (%s)", key,
		        name ? "name" : "metric name", STEPLOAD_NAME_RULE);
	else
		*out = xstrdup(val->valuestring);
}

static void al_number(struct stepload *l, struct jpos_src *s, cJSON *val, size_t ko,
                      double *out, int *has, const char *key, int positive)
{
	if (!cJSON_IsNumber(val) || (positive && !(val->valuedouble > 0))) {
		diag_at(&l->diag, s, ko, "\"%s\" must be a %snumber%s", key,
		        positive ? "positive " : "", positive ? " of seconds" : "");
		return;
	}
	*out = val->valuedouble;
	*has = 1;
}

static void al_name(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                    size_t ko, size_t vo)
{
	al_string(l, s, val, ko, &((struct alert_def *)obj)->name, "name", 1);
}

static void al_metric(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                      size_t ko, size_t vo)
{
	al_string(l, s, val, ko, &((struct alert_def *)obj)->metric, "metric", 0);
}

static void al_step(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                    size_t ko, size_t vo)
{
	struct alert_def *a = obj;
	size_t i;

	al_string(l, s, val, ko, &a->step, "step", 1);
	if (!a->step)
		return;
	for (i = 0; i < l->n_step_files; i++)
		if (strlen(l->step_files[i]) == strlen(a->step) + 5 &&
		    !strncmp(l->step_files[i], a->step, strlen(a->step)))
			return;
	diag_at(&l->diag, s, vo, "alert step %s: no such step in this pipeline",
	        diag_quote(&l->diag, a->step));
}

static void al_above(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                     size_t ko, size_t vo)
{
	struct alert_def *a = obj;
	al_number(l, s, val, ko, &a->above, &a->has_above, "above", 0);
}

static void al_below(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                     size_t ko, size_t vo)
{
	struct alert_def *a = obj;
	al_number(l, s, val, ko, &a->below, &a->has_below, "below", 0);
}

static void al_duration(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                        size_t ko, size_t vo)
{
	struct alert_def *a = obj;
	al_number(l, s, val, ko, &a->duration_above, &a->has_duration, "duration_above", 1);
}

enum { AK_NAME, AK_METRIC, AK_ABOVE, AK_BELOW, AK_DURATION, AK_STEP, N_ALERT_KEYS };

static const struct keytab alert_keys[N_ALERT_KEYS] = {
	[AK_NAME] = {"name", al_name},
	[AK_METRIC] = {"metric", al_metric},
	[AK_ABOVE] = {"above", al_above},
	[AK_BELOW] = {"below", al_below},
	[AK_DURATION] = {"duration_above", al_duration},
	[AK_STEP] = {"step", al_step},
};

static void alert_clear(struct alert_def *a)
{
	free(a->name);
	free(a->metric);
	free(a->step);
	memset(a, 0, sizeof *a);
}

/* The alert as a whole, once its keys were parsed: 1 when it is usable. */
static int alert_whole(struct stepload *l, struct jpos_src *s, const struct alert_def *a,
                       const size_t *seen, size_t at)
{
	int ok = 1;

	if (seen[AK_NAME] == JPOS_NONE) {
		diag_at(&l->diag, s, at, "an alert needs a \"name\"");
		ok = 0;
	}
	if (seen[AK_METRIC] != JPOS_NONE) {
		if (seen[AK_ABOVE] == JPOS_NONE && seen[AK_BELOW] == JPOS_NONE) {
			diag_at(&l->diag, s, seen[AK_METRIC],
			        "alert on a metric needs \"above\" or \"below\"");
			ok = 0;
		}
		if (seen[AK_DURATION] != JPOS_NONE) {
			diag_at(&l->diag, s, seen[AK_DURATION], "\"duration_above\" "
			        "goes in an alert of its own, without \"metric\"");
			ok = 0;
		}
	} else {
		for (int k = AK_ABOVE; k <= AK_BELOW; k++)
			if (seen[k] != JPOS_NONE) {
				diag_at(&l->diag, s, seen[k], "\"%s\" needs a \"metric\"",
				        alert_keys[k].key);
				ok = 0;
			}
		if (ok && seen[AK_DURATION] == JPOS_NONE) {
			diag_at(&l->diag, s, at, "an alert needs \"metric\" with \"above\" "
			        "or \"below\", or \"duration_above\"");
			ok = 0;
		}
	}
	return ok && a->name && (a->metric || a->has_duration) &&
	       (!a->metric || a->has_above || a->has_below) &&
	       (seen[AK_STEP] == JPOS_NONE || a->step);
}

static void pk_alerts(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                      size_t ko, size_t vo)
{
	struct pipeline_def *p = obj;
	size_t *eoff, i, k, seen[N_ALERT_KEYS], before;
	cJSON *e;

	if (!pk_array_of(l, s, val, ko, vo, cJSON_IsObject,
	                 "\"alerts\" must be an array of objects"))
		return;
	eoff = jpos_offsets(s->text, val, vo, ko);
	p->alerts = xcalloc((size_t)cJSON_GetArraySize(val) + 1, sizeof *p->alerts);
	for (i = 0, e = val->child; e; e = e->next, i++) {
		struct alert_def *a = &p->alerts[p->n_alerts];

		if (!cJSON_IsObject(e))
			continue; /* reported by pk_array_of */
		before = diag_count(&l->diag);
		keytab_walk(alert_keys, N_ALERT_KEYS, l, s, e, eoff[i], a, seen);
		if (!alert_whole(l, s, a, seen, eoff[i]) || diag_count(&l->diag) != before) {
			alert_clear(a);
			continue;
		}
		for (k = 0; k < p->n_alerts && strcmp(p->alerts[k].name, a->name); k++)
			;
		if (k < p->n_alerts) {
			diag_at(&l->diag, s, seen[AK_NAME], "alert %s is defined twice",
			        diag_quote(&l->diag, a->name));
			alert_clear(a);
			continue;
		}
		p->n_alerts++;
	}
	free(eoff);
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
