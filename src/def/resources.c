/*
 * resources.c - the "executor" and "resources" keys of steps and of
 * pipeline.json. Values are checked here, once, so an executor can trust
 * them: cpus a whole number >= 1, gpus >= 0, mem a size such as "8G", time
 * a duration such as "2h" or "1:30:00", partition a non-empty string. The
 * object is kept as written (cJSON) for the executor, which also gets the
 * two conversions (resources_seconds, resources_bytes). Slurm takes the
 * same spellings of time and memory, so they pass through unchanged.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/diag.h"
#include "flowyfs/keytab.h"
#include "flowyfs/resources.h"
#include "flowyfs/stepload.h"
#include "flowyfs/util.h"

/* ---- conversions ---------------------------------------------------------- */

/* Parse a whole number of at most 9 digits at *s, advancing it; -1 if none. */
static long digits(const char **s)
{
	long v = 0;
	int n = 0;

	while (**s >= '0' && **s <= '9' && n < 9) {
		v = v * 10 + (**s - '0');
		(*s)++;
		n++;
	}
	if (!n || (**s >= '0' && **s <= '9'))
		return -1;
	return v;
}

/* Two digits 00..59 at *s, advancing it; -1 if not. */
static long sixty(const char **s)
{
	const char *p = *s;

	if (!(p[0] >= '0' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9'))
		return -1;
	*s = p + 2;
	return (p[0] - '0') * 10 + (p[1] - '0');
}

double resources_seconds(const char *time)
{
	const char *s = time;
	long a, b, c, d = 0;
	double v;

	if (!time)
		return -1;
	a = digits(&s);
	if (a < 0)
		return -1;
	if (s[0] && !s[1] && strchr("smhd", s[0])) {
		v = (double)a * (s[0] == 's' ? 1 : s[0] == 'm' ? 60 :
		                 s[0] == 'h' ? 3600 : 86400);
		return v > 0 ? v : -1;
	}
	if (*s == '-') {        /* D-H:MM:SS */
		d = a;
		s++;
		a = digits(&s);
		if (a < 0 || *s != ':')
			return -1;
	}
	if (*s != ':')
		return -1;
	s++;
	b = sixty(&s);
	if (b < 0)
		return -1;
	if (!*s && !d) {        /* M:SS */
		v = (double)a * 60 + (double)b;
		return v > 0 ? v : -1;
	}
	if (*s != ':')
		return -1;
	s++;
	c = sixty(&s);
	if (c < 0 || *s)
		return -1;
	v = (double)d * 86400 + (double)a * 3600 + (double)b * 60 + (double)c;
	return v > 0 ? v : -1;
}

int resources_bytes(const char *mem, uint64_t *out)
{
	const char *s = mem;
	const char *units = "KMGT", *u;
	long v;

	if (!mem)
		return -EINVAL;
	v = digits(&s);
	if (v < 1 || !s[0] || s[1])
		return -EINVAL;
	u = strchr(units, s[0] >= 'a' && s[0] <= 'z' ? s[0] - 'a' + 'A' : s[0]);
	if (!u || !*u)
		return -EINVAL;
	*out = (uint64_t)v << (10 * (u - units + 1));
	return 0;
}

/* ---- the resources table ---------------------------------------------------- */

static int whole(const cJSON *v, double min)
{
	return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= min &&
	       v->valuedouble <= 1e6 && floor(v->valuedouble) == v->valuedouble;
}

static void rs_cpus(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                    size_t ko, size_t vo)
{
	if (!whole(val, 1))
		diag_at(&l->diag, s, ko, "\"cpus\" must be a whole number of at least 1");
}

static void rs_gpus(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                    size_t ko, size_t vo)
{
	if (!whole(val, 0))
		diag_at(&l->diag, s, ko, "\"gpus\" must be a whole number of at least 0");
}

static void rs_mem(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                   size_t ko, size_t vo)
{
	uint64_t b;

	if (!cJSON_IsString(val) || resources_bytes(val->valuestring, &b) < 0)
		diag_at(&l->diag, s, ko, "\"mem\" must be a size such as \"8G\" or "
		        "\"512M\" (a whole number and K, M, G or T)");
}

static void rs_time(struct stepload *l, struct jpos_src *s, void *obj, cJSON *val,
                    size_t ko, size_t vo)
{
	if (!cJSON_IsString(val) || resources_seconds(val->valuestring) <= 0)
		diag_at(&l->diag, s, ko, "\"time\" must be a duration such as \"30m\", "
		        "\"2h\", \"1d\" or \"1:30:00\"");
}

static void rs_partition(struct stepload *l, struct jpos_src *s, void *obj,
                         cJSON *val, size_t ko, size_t vo)
{
	if (!cJSON_IsString(val) || !val->valuestring[0])
		diag_at(&l->diag, s, ko, "\"partition\" must be a non-empty string");
}

static const struct keytab resource_keys[] = {
	{"cpus", rs_cpus},
	{"mem", rs_mem},
	{"gpus", rs_gpus},
	{"time", rs_time},
	{"partition", rs_partition},
};
#define N_RESOURCE_KEYS (sizeof resource_keys / sizeof resource_keys[0])

void resources_parse(struct stepload *l, struct jpos_src *s, cJSON *val,
                     size_t ko, size_t vo, cJSON **out)
{
	if (!keytab_walk_member(resource_keys, N_RESOURCE_KEYS, l, s, val, ko, vo, NULL,
	                        "resources"))
		return;
	cJSON_Delete(*out);
	*out = stepload_json(cJSON_Duplicate(val, 1));
}

void resources_parse_executor(struct stepload *l, struct jpos_src *s, cJSON *val,
                              size_t ko, char **out)
{
	if (!cJSON_IsString(val) || (strcmp(val->valuestring, "local") &&
	    strcmp(val->valuestring, "slurm"))) {
		diag_at(&l->diag, s, ko, "\"executor\" must be \"local\" or \"slurm\"");
		return;
	}
	free(*out);
	*out = xstrdup(val->valuestring);
}
