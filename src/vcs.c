/*
 * vcs.c - libgit2: the store's history of pipelines and the git state of
 * workdirs. Trees are built straight from the snapshot directory with
 * treebuilders (no index, no checkout), so committing costs one blob write
 * per new file content and nothing for unchanged ones.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <git2.h>

#include "flowyfs/cas.h"
#include "flowyfs/util.h"
#include "flowyfs/vcs.h"

struct vcs {
	git_repository *repo;
};

static char *git_err(const char *what)
{
	const git_error *e = git_error_last();
	return xasprintf("%s: %s", what, e && e->message ? e->message : "libgit2 error");
}

struct init_job {
	const char *path;
	git_repository *repo;
	char *err;
};

/* libgit2 creates with 0777/0666 and leaves the rest to the umask, which
 * is 0 in the daemon: a new repository is made in a thread with a umask of
 * its own (libgit2's error state is per thread, so the message too). */
static void *init_repo(void *arg)
{
	struct init_job *j = arg;
	int rc = util_private_umask(022);
	if (rc < 0)
		j->err = xasprintf("%s: no umask of its own: %s", j->path, strerror(-rc));
	else if (git_repository_init(&j->repo, j->path, 1) < 0)
		j->err = git_err(j->path);
	return NULL;
}

int vcs_open(vcs **out, const char *path, char **err)
{
	git_libgit2_init();
	git_repository *repo = NULL;
	if (git_repository_open_bare(&repo, path) < 0) {
		struct init_job j = {.path = path};
		pthread_t th;
		int rc = pthread_create(&th, NULL, init_repo, &j);
		if (rc)
			j.err = xasprintf("%s: %s", path, strerror(rc));
		else if ((rc = pthread_join(th, NULL)) != 0 && !j.err)
			j.err = xasprintf("%s: %s", path, strerror(rc));
		if (j.err) {
			git_repository_free(j.repo);
			*err = j.err;
			git_libgit2_shutdown();
			return -EIO;
		}
		repo = j.repo;
	}
	*out = xcalloc(1, sizeof **out);
	(*out)->repo = repo;
	return 0;
}

void vcs_close(vcs *v)
{
	if (!v)
		return;
	git_repository_free(v->repo);
	git_libgit2_shutdown();
	free(v);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Write the tree of dir; symlinks and special files are not part of it. */
#define VCS_MAX_BLOB (64 << 20)

static int write_tree(git_repository *repo, git_oid *out, const char *dir)
{
	git_treebuilder *tb = NULL;
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0;
	int rc = 0;
	if (!d)
		return -errno;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		names = xrealloc(names, (n + 1) * sizeof *names);
		names[n++] = xstrdup(e->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, cmp_names);
	if (git_treebuilder_new(&tb, repo, NULL) < 0) {
		rc = -EIO;
		goto out;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		char *path = xasprintf("%s/%s", dir, names[i]);
		struct stat st;
		git_oid oid;
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			rc = write_tree(repo, &oid, path);
			if (!rc && git_treebuilder_insert(NULL, tb, names[i], &oid,
			                                  GIT_FILEMODE_TREE) < 0)
				rc = -EIO;
		} else if (S_ISREG(st.st_mode)) {
			/* A huge file (data, not code) is named, not copied: history
			 * must not grow by a data set (or a sparse terabyte) per run. */
			int made;
			if (st.st_size > VCS_MAX_BLOB) {
				char *note = xasprintf("flowyfs: %lld bytes, too large for the "
				                       "history (over %d MiB); not kept\n",
				                       (long long)st.st_size, VCS_MAX_BLOB >> 20);
				made = git_blob_create_from_buffer(&oid, repo, note, strlen(note));
				free(note);
			} else {
				made = git_blob_create_from_disk(&oid, repo, path);
			}
			if (made < 0 ||
			    git_treebuilder_insert(NULL, tb, names[i], &oid,
			                           (st.st_mode & 0111) ? GIT_FILEMODE_BLOB_EXECUTABLE
			                                               : GIT_FILEMODE_BLOB) < 0)
				rc = -EIO;
		}
		free(path);
	}
	if (!rc && git_treebuilder_write(out, tb) < 0)
		rc = -EIO;
out:
	git_treebuilder_free(tb);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

int vcs_commit_dir(vcs *v, char out[41], const char *pipeline, const char *dir,
                   const char *message, char **err)
{
	git_oid tree_id, commit_id;
	git_tree *tree = NULL;
	git_commit *parent = NULL;
	git_signature *sig = NULL;
	char *ref = xasprintf("refs/heads/%s", pipeline);
	int rc = write_tree(v->repo, &tree_id, dir);
	if (rc < 0) {
		*err = git_err("cannot write the pipeline tree");
		goto out;
	}
	git_oid head;
	if (git_reference_name_to_id(&head, v->repo, ref) == 0 &&
	    git_commit_lookup(&parent, v->repo, &head) == 0 &&
	    git_oid_equal(git_commit_tree_id(parent), &tree_id)) {
		git_oid_tostr(out, 41, &head);
		goto out;
	}
	if (git_tree_lookup(&tree, v->repo, &tree_id) < 0 ||
	    git_signature_now(&sig, "flowyfs", "flowyfs@localhost") < 0 ||
	    git_commit_create_v(&commit_id, v->repo, ref, sig, sig, NULL, message, tree,
	                        parent ? 1 : 0, parent) < 0) {
		*err = git_err("cannot commit the pipeline");
		rc = -EIO;
		goto out;
	}
	git_oid_tostr(out, 41, &commit_id);
out:
	git_signature_free(sig);
	git_commit_free(parent);
	git_tree_free(tree);
	free(ref);
	return rc;
}

static int cmp_entries(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int vcs_workdir_state(struct vcs_workdir *out, const char *path, char **err)
{
	memset(out, 0, sizeof *out);
	git_libgit2_init();
	git_repository *repo = NULL;
	git_reference *head = NULL;
	git_status_list *sl = NULL;
	int rc = 0;
	if (git_repository_open_ext(&repo, path, 0, NULL) < 0) {
		*err = git_err(path);
		rc = -ENOENT;
		goto out;
	}
	if (git_repository_head(&head, repo) == 0) {
		git_oid_tostr(out->commit, sizeof out->commit, git_reference_target(head));
		out->branch = xstrdup(git_reference_is_branch(head) ?
		                      git_reference_shorthand(head) : "HEAD");
	} else {
		out->branch = xstrdup("");
	}
	git_status_options so;
	git_status_options_init(&so, GIT_STATUS_OPTIONS_VERSION);
	so.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS;
	if (git_status_list_new(&sl, repo, &so) < 0) {
		*err = git_err("git status");
		rc = -EIO;
		goto out;
	}
	size_t n = git_status_list_entrycount(sl);
	char **lines = xcalloc(n + 1, sizeof *lines);
	const char *wd = git_repository_workdir(repo);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const git_status_entry *e = git_status_byindex(sl, i);
		const git_diff_delta *d = e->index_to_workdir ? e->index_to_workdir
		                                              : e->head_to_index;
		if (!d || e->status == GIT_STATUS_CURRENT || (e->status & GIT_STATUS_IGNORED))
			continue;
		const char *p = d->new_file.path ? d->new_file.path : d->old_file.path;
		char *full = xasprintf("%s%s", wd ? wd : "", p);
		char hex[CAS_HEX_LEN + 1] = "deleted";
		cas_hash_file(hex, full);
		lines[k++] = xasprintf("%s %s\n", p, hex);
		free(full);
	}
	qsort(lines, k, sizeof *lines, cmp_entries);
	struct strbuf all = {0};
	for (size_t i = 0; i < k; i++) {
		strbuf_puts(&all, lines[i]);
		free(lines[i]);
	}
	free(lines);
	out->dirty = k > 0;
	if (k)
		cas_hash_buf(out->dirty_hash, all.buf, all.len);
	strbuf_release(&all);
out:
	git_status_list_free(sl);
	git_reference_free(head);
	git_repository_free(repo);
	git_libgit2_shutdown();
	return rc;
}

void vcs_workdir_free(struct vcs_workdir *w)
{
	if (w)
		free(w->branch);
}
