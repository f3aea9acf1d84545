/*
 * views/metrics.c - metrics/: numbers steps report, across runs. The directory
 * exists now; its entries (<p>/<metric>, <p>/runs.tsv)
 * are filled in by the tracking work (issue 3).
 */
#include <errno.h>
#include <string.h>

#include "flowyfs/view.h"

static int metrics_getattr(struct flowy *f, const char *path, struct view_attr *a)
{
	if (strcmp(path, "metrics"))
		return -ENOENT;
	a->mode = S_IFDIR | 0555;
	return 0;
}

static int metrics_readdir(struct flowy *f, const char *path, struct dirlist *l)
{
	return strcmp(path, "metrics") ? -ENOENT : 0;
}

const struct view view_metrics = {
	.name = "metrics",
	.getattr = metrics_getattr,
	.readdir = metrics_readdir,
};
