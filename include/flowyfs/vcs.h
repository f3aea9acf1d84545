/*
 * vcs.h - version history with libgit2. Every run commits the snapshot of
 * its pipeline to a bare repository in the store (branch = pipeline name;
 * an unchanged tree reuses the last commit), so each run names the exact
 * pipeline version it ran. It also reads the git state of a pipeline's
 * workdir: commit, branch and whether (and how) it is dirty.
 */
#ifndef FLOWYFS_VCS_H
#define FLOWYFS_VCS_H

typedef struct vcs vcs;

/* Open or create the bare repository at path. *err (malloc'd) on failure. */
int vcs_open(vcs **out, const char *path, char **err);
void vcs_close(vcs *v);

#include <stddef.h>

/* From this many new files on, a commit's objects are written as one pack. */
#define VCS_PACK_FROM 64

/* Commit directory dir as the new state of branch pipeline; out gets the
 * commit id (40 hex + NUL). Unchanged content returns the current head.
 * nfiles: how many of dir's files are new since the last commit (at most). */
int vcs_commit_dir(vcs *v, char out[41], const char *pipeline, const char *dir,
                   size_t nfiles, const char *message, char **err);

struct vcs_workdir {
	char commit[41];      /* "" when the repository has no commit */
	char *branch;         /* branch name, or "HEAD" when detached */
	int dirty;
	char dirty_hash[65];  /* SHA-256 over changed paths and contents */
};

/* Git state of the repository containing path. */
int vcs_workdir_state(struct vcs_workdir *out, const char *path, char **err);
void vcs_workdir_free(struct vcs_workdir *w);

#endif
