/*
 * views/lineage.c - lineage/: each artifact's provenance. The directory
 * exists now; its entries (producer, parents/, children/, ancestors ...)
 * are filled in by the tracking work (issue 3).
 */
#include <errno.h>
#include <string.h>

#include "flowyfs/view.h"

static int lineage_getattr(struct flowy *f, const char *path, struct view_attr *a)
{
	if (strcmp(path, "lineage"))
		return -ENOENT;
	a->mode = S_IFDIR | 0555;
	return 0;
}

static int lineage_readdir(struct flowy *f, const char *path, struct dirlist *l)
{
	return strcmp(path, "lineage") ? -ENOENT : 0;
}

const struct view view_lineage = {
	.name = "lineage",
	.getattr = lineage_getattr,
	.readdir = lineage_readdir,
};
