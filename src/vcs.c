/*
 * vcs.c - libgit2: the store's history of pipelines and the git state of
 * workdirs. Trees are built straight from the snapshot directory with
 * treebuilders (no index, no checkout), so committing costs one blob write
 * per new file content and nothing for unchanged ones. A commit of many
 * new files (a pipeline seen for the first time, or rewritten) is written
 * into memory first and lands as one pack, not a loose object (a file of
 * its own) per blob.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <git2.h>
#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>

#include "flowyfs/cas.h"
#include "flowyfs/log.h"
#include "flowyfs/util.h"
#include "flowyfs/vcs.h"

struct vcs {
	git_repository *repo;
	char *path;
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
	log_thread_name("gitinit");
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
	(*out)->path = xstrdup(path);
	return 0;
}

void vcs_close(vcs *v)
{
	if (!v)
		return;
	git_repository_free(v->repo);
	git_libgit2_shutdown();
	free(v->path);
	free(v);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Write the tree of dir; symlinks and special files are not part of it. */
#define VCS_MAX_BLOB (64 << 20)
#define VCS_READ_WHOLE (1 << 20) /* files up to this (all, in a packed commit) are read into memory */

/* Where a tree's objects go: repo's object database, or (mem set, a
 * mem_repo's) straight into its mempack. git_odb_write looks a new object
 * up in every backend first and, on a miss, rescans the pack directory
 * before it writes (libgit2's freshen): per blob of a pipeline seen for
 * the first time, that rescan was half a commit's time. A pack-bound
 * write looks once without the rescan (the packs were read at open). */
struct tree_dst {
	git_repository *repo;
	git_odb *odb;
	git_odb_backend *mem;
	git_oid *fresh;   /* with mem: what the pack is to hold */
	size_t nfresh, cap;
};

static void add_fresh(struct tree_dst *t, const git_oid *oid)
{
	GROW(t->fresh, t->cap, t->nfresh);
	t->fresh[t->nfresh++] = *oid;
}

static int put_blob(struct tree_dst *t, git_oid *oid, const void *data, size_t len)
{
	if (!t->mem)
		return git_blob_create_from_buffer(oid, t->repo, data, len);
	if (git_odb_hash(oid, data, len, GIT_OBJECT_BLOB) < 0)
		return -1;
	if (git_odb_exists_ext(t->odb, oid, GIT_ODB_LOOKUP_NO_REFRESH))
		return 0;
	add_fresh(t, oid);
	return t->mem->write(t->mem, oid, data, len, GIT_OBJECT_BLOB);
}

static int write_tree(struct tree_dst *t, git_oid *out, const char *dir)
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
	if (git_treebuilder_new(&tb, t->repo, NULL) < 0) {
		rc = -EIO;
		goto out;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		char *path = xasprintf("%s/%s", dir, names[i]);
		struct stat st;
		git_oid oid;
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			rc = write_tree(t, &oid, path);
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
				made = put_blob(t, &oid, note, strlen(note));
				free(note);
			} else if (st.st_size <= VCS_READ_WHOLE || t->mem) {
				/* Read here: libgit2's from_disk resolves the path
				 * (realpath, readlink) for every file first; and a
				 * pack-bound blob must pass put_blob, which lists it
				 * for the pack (its objects are in memory anyway). */
				char *data = NULL;
				size_t len = 0;
				made = util_read_file(path, &data, &len) < 0 ? -1
				       : put_blob(t, &oid, data, len);
				free(data);
			} else {
				made = git_blob_create_from_disk(&oid, t->repo, path);
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
	if (!rc && t->mem)
		add_fresh(t, out);
out:
	git_treebuilder_free(tb);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

/* Commit the tree of dir on repo as the next commit of ref (with parent,
 * or none); the ref is left alone when update_ref is 0. */
static int make_commit(git_repository *repo, git_oid *commit_id, const char *ref,
                       const git_oid *tree_id, git_commit *parent,
                       const char *message, int update_ref)
{
	git_tree *tree = NULL;
	git_signature *sig = NULL;
	int rc = git_tree_lookup(&tree, repo, tree_id) < 0 ||
	         git_signature_now(&sig, "flowyfs", "flowyfs@localhost") < 0 ||
	         git_commit_create_v(commit_id, repo, update_ref ? ref : NULL, sig, sig,
	                             NULL, message, tree, parent ? 1 : 0, parent) < 0
		? -EIO : 0;
	git_signature_free(sig);
	git_tree_free(tree);
	return rc;
}

/* A second handle on the repository whose object database has a mempack
 * in front: what a commit writes through it stays in memory until
 * mem_write_pack writes it all as one pack. */
struct mem_repo {
	git_repository *repo;
	git_odb *odb;
	git_odb_backend *mem;  /* owned by odb once added */
};

static int mem_open(struct mem_repo *m, const char *path)
{
	memset(m, 0, sizeof *m);
	if (git_repository_open_bare(&m->repo, path) < 0 ||
	    git_repository_odb(&m->odb, m->repo) < 0 || git_mempack_new(&m->mem) < 0)
		return -EIO;
	if (git_odb_add_backend(m->odb, m->mem, 999) < 0) {
		m->mem->free(m->mem);
		m->mem = NULL;
		return -EIO;
	}
	return 0;
}

/* One pack of the n objects (in m's memory, or already in the history:
 * a tree that did not change), and only them: what the history has stays
 * where it is (git_mempack_dump would pack every object the commit's tree
 * reaches). */
static int mem_write_pack(struct mem_repo *m, const git_oid *objs, size_t n)
{
	git_buf pack = {0};
	git_odb_writepack *wp = NULL;
	git_packbuilder *pb = NULL;
	git_indexer_progress stats = {0};
	int rc = git_packbuilder_new(&pb, m->repo) < 0 ? -EIO : 0;
	for (size_t i = 0; !rc && i < n; i++)
		if (git_packbuilder_insert(pb, &objs[i], NULL) < 0)
			rc = -EIO;
	rc = rc < 0 || git_packbuilder_write_buf(&pack, pb) < 0 ||
	         git_odb_write_pack(&wp, m->odb, NULL, NULL) < 0 ||
	         wp->append(wp, pack.ptr, pack.size, &stats) < 0 ||
	         wp->commit(wp, &stats) < 0 ? -EIO : 0;
	if (wp)
		wp->free(wp);
	git_packbuilder_free(pb);
	git_buf_dispose(&pack);
	return rc;
}

static int mem_close(struct mem_repo *m)
{
	int rc = m->mem && git_mempack_reset(m->mem) < 0 ? -EIO : 0;
	git_odb_free(m->odb); /* frees mem too */
	git_repository_free(m->repo);
	return rc;
}

/* Many new files go through a mem_repo: their objects land as one pack,
 * and the branch moves only once the pack is in place (and only if it
 * still points where it did: the parent, or nowhere). */
int vcs_commit_dir(vcs *v, char out[41], const char *pipeline, const char *dir,
                   size_t nfiles, const char *message, char **err)
{
	struct mem_repo m = {0};
	struct tree_dst dst = {0};
	int packed = nfiles >= VCS_PACK_FROM;
	git_repository *repo = v->repo;
	git_commit *parent = NULL;
	git_reference *moved = NULL;
	git_oid tree_id, commit_id, head;
	char *ref = xasprintf("refs/heads/%s", pipeline);
	const char *what = "cannot open the history";
	int rc = packed ? mem_open(&m, v->path) : 0, has_head;
	if (rc < 0)
		goto out;
	if (packed)
		repo = m.repo;
	what = "cannot write the pipeline tree";
	dst = (struct tree_dst){.repo = repo, .odb = m.odb, .mem = m.mem};
	if ((rc = write_tree(&dst, &tree_id, dir)) < 0)
		goto out;
	has_head = git_reference_name_to_id(&head, repo, ref) == 0;
	if (has_head && git_commit_lookup(&parent, repo, &head) == 0 &&
	    git_oid_equal(git_commit_tree_id(parent), &tree_id)) {
		git_oid_tostr(out, 41, &head); /* unchanged: all stored already */
		goto out;
	}
	what = "cannot commit the pipeline";
	if ((rc = make_commit(repo, &commit_id, ref, &tree_id, parent, message, !packed)) < 0)
		goto out;
	what = "cannot write the history pack";
	if (packed) {
		add_fresh(&dst, &commit_id);
		if ((rc = mem_write_pack(&m, dst.fresh, dst.nfresh)) < 0)
			goto out;
	}
	what = "cannot move the pipeline's branch";
	if (packed && git_reference_create_matching(&moved, v->repo, ref, &commit_id, 1,
	                                            has_head ? &head : NULL, message) < 0) {
		rc = -EIO;
		goto out;
	}
	git_oid_tostr(out, 41, &commit_id);
out:
	if (rc < 0)
		*err = git_err(what);
	git_reference_free(moved);
	git_commit_free(parent);
	if (packed && mem_close(&m) < 0 && !rc) {
		*err = git_err("cannot free the history's memory");
		rc = -EIO;
	}
	free(dst.fresh);
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
