/*
 * fuzz_ctl.c - libFuzzer target for ctl.c: arbitrary bytes as one .ctl
 * line through ctl_parse(), ctl_sweep_expand() and ctl_cmd_free(). Beyond
 * what ASan/UBSan catch, it aborts when a contract of ctl.h is broken: a
 * result other than 0, 1, -EINVAL; a message missing, present when it
 * should not be, or not one printable line; an expansion whose size is
 * not n_runs or whose objects lack a swept key.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/ctl.h"

/* One line of printable text: no byte below 0x20, no DEL. */
static int one_line(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_cmd c;
	cJSON *runs = NULL, *o;
	char *err = NULL;
	size_t i;
	int rc = ctl_parse((const char *)data, size, &c, &err), x;

	if (rc == -EINVAL) {
		if (!err || !err[0] || !one_line(err) || c.verb || c.overrides ||
		    c.axes || c.step)
			abort();
		free(err);
		return 0;
	}
	if (err || (rc != 0 && rc != 1))
		abort();
	if (rc == 1) {
		if (c.verb)
			abort();
		return 0;
	}
	x = ctl_sweep_expand(&c, &runs);
	if (c.verb == CTL_RUN || c.verb == CTL_RERUN || c.verb == CTL_SWEEP) {
		if (x || !runs || (size_t)cJSON_GetArraySize(runs) != c.n_runs ||
		    c.n_runs < 1 || c.n_runs > CTL_SWEEP_MAX)
			abort();
		for (o = runs->child; o; o = o->next)
			for (i = 0; i < c.n_axes; i++)
				if (!cJSON_GetObjectItemCaseSensitive(o, c.axes[i].key))
					abort();
		if (c.verb == CTL_RERUN && !c.step)
			abort();
	} else if (x != -EINVAL || runs || (c.verb == CTL_RETRY && c.run < 1)) {
		abort();
	}
	cJSON_Delete(runs);
	ctl_cmd_free(&c);
	return 0;
}
