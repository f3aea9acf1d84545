/*
 * views/root.c - the mount root: the generated README, the daemon's log
 * (<store>/daemon.log, read-only) and one directory per view of the route
 * table.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowyfs/util.h"
#include "flowyfs/view.h"

static const char readme[] =
	"flowyfs: pipelines as a content-addressed tree\n"
	"\n"
	"pipelines/<p>/      write <step>.json files here; .status says if the\n"
	"                    pipeline is valid, .dag shows the graph, and\n"
	"                    `echo run > pipelines/<p>/.ctl` starts a run\n"
	"artifacts/sha256/   every output, named by the SHA-256 of its content\n"
	"artifacts/<p>/<n>   the latest version of output n of pipeline p\n"
	"runs/<id>/          one run: status, timing, params, steps/<s>/log;\n"
	"                    note and tags are yours to write\n"
	"runs/latest         the newest run\n"
	"lineage/            where each artifact came from\n"
	"metrics/            numbers the steps reported, across runs\n"
	"registry/<model>/   model versions v1 v2 ... and aliases (ln -sfn v3 prod)\n"
	"store/stats         objects, bytes, dedup, cache hit rates\n"
	"store/.ctl          echo gc > store/.ctl reclaims space; store/gc.log\n"
	"log                 the daemon's messages (refused commands, errors)\n"
	"hooks/              executables run on events (hooks/.log says how it went)\n"
	"\n"
	"Everything is plain text; see the flowyfs docs for the full layout.\n";

static int root_getattr(struct flowy *f, const char *path, struct view_attr *a)
{
	if (!*path) {
		a->mode = S_IFDIR | 0755;
		return 0;
	}
	if (!strcmp(path, "README")) {
		view_text_attr(a, readme, 0);
		a->immutable = 1;
		return 0;
	}
	if (!strcmp(path, "log")) {
		char *lp = xasprintf("%s/daemon.log", f->store);
		struct stat st;
		int rc = stat(lp, &st) < 0 ? -errno : 0;
		free(lp);
		a->mode = S_IFREG | 0444;
		a->size = rc ? 0 : (uint64_t)st.st_size;
		a->mtime = rc ? 0 : (double)st.st_mtime;
		return 0;
	}
	return -ENOENT;
}

static int root_readdir(struct flowy *f, const char *path, struct dirlist *l)
{
	if (*path)
		return -ENOTDIR;
	dirlist_add(l, "README", S_IFREG);
	dirlist_add(l, "log", S_IFREG);
	for (const struct view *const *v = route_views; *v; v++)
		dirlist_add(l, (*v)->name, S_IFDIR);
	return 0;
}

static int root_open(struct flowy *f, const char *path, int flags, struct fh *h)
{
	if (!strcmp(path, "log")) {
		if ((flags & O_ACCMODE) != O_RDONLY)
			return -EROFS;
		char *lp = xasprintf("%s/daemon.log", f->store);
		int fd = open(lp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		free(lp);
		if (fd < 0) {
			view_text_fh(h, xstrdup(""));
			return 0;
		}
		h->kind = FH_FD;
		h->fd = fd;
		h->direct_io = 1;
		return 0;
	}
	if (strcmp(path, "README"))
		return *path ? -ENOENT : -EISDIR;
	if ((flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	view_text_fh(h, xstrdup(readme));
	h->direct_io = 0;
	h->keep_cache = 1;
	return 0;
}

const struct view view_root = {
	.name = "",
	.getattr = root_getattr,
	.readdir = root_readdir,
	.open = root_open,
};
