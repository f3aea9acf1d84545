/*
 * stepio.c - a step's inputs and outputs into the store (stepio.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowyfs/hostfs.h"
#include "flowyfs/registry.h"
#include "flowyfs/stepio.h"
#include "flowyfs/util.h"

/* How a store operation's failure reads in a step's error. */
static char *store_error(int rc, char *why)
{
	char *msg = rc == -ENOSPC
		? xasprintf("no space left on device while storing %s (the store's disk "
		            "is full)", why ? why : "the outputs")
		: why ? xstrdup(why) : xasprintf("cannot store the outputs: %s",
		                                 strerror(-rc));
	free(why);
	return msg;
}

int stepio_input(struct run *r, size_t i, size_t k, char *hex, char **err)
{
	struct flowy *f = r->f;
	struct srun *s = &r->s[i];
	const struct step_input *in = &s->def->inputs[k];
	hex[0] = '\0';
	switch (in->kind) {
	case STEP_IN_LOCAL: {
		const struct srun *p = &r->s[in->producer];
		for (size_t o = 0; o < p->def->n_outputs; o++)
			if (!strcmp(p->def->outputs[o], in->artifact))
				memcpy(hex, p->out_hex[o], CAS_HEX_LEN + 1);
		break;
	}
	case STEP_IN_PIPELINE: {
		db_lock(f->db);
		char *h = db_text(f->db, "SELECT hash FROM latest WHERE pipeline=? AND "
		                  "name=?", "tt", in->pipeline, in->artifact);
		db_unlock(f->db);
		if (!h) {
			*err = xasprintf("input %s: pipeline %s has no artifact %s yet",
			                 in->ref, in->pipeline, in->artifact);
			return -ENOENT;
		}
		snprintf(hex, CAS_HEX_LEN + 1, "%s", h);
		free(h);
		break;
	}
	case STEP_IN_FILE: {
		if (hostfs_inside_mount(in->path, f->mnt, f->mnt_dev)) {
			*err = xasprintf("input %s: a file: input may not point into "
			                 "the mount (use other/name or sha256:)", in->ref);
			return -EINVAL;
		}
		enum cas_kind kind;
		char *why = NULL;
		/* Read as the steps' user: a file: input publishes nothing that
		 * user could not read itself. */
		struct cas_put_opts opts = {
			.as_user = r->uid != geteuid(), .uid = r->uid, .gid = r->gid,
			.stop = &r->abort_io,
		};
		int rc = cas_put_path(f->cas, hex, &kind, in->path, "/", &opts, &why);
		if (rc < 0) {
			*err = rc == -ENOSPC ? store_error(rc, why) :
			       xasprintf("input %s: %s", in->ref, why ? why : strerror(-rc));
			if (rc != -ENOSPC)
				free(why);
			return rc;
		}
		break;
	}
	case STEP_IN_REGISTRY: {
		int64_t v = 0;
		int rc = registry_alias_get(f->db, in->model, in->alias, &v, hex);
		if (rc < 0) {
			*err = xasprintf("input %s: %s", in->ref, rc == -ENOENT ?
			                 "no such model or alias" : strerror(-rc));
			return rc;
		}
		break;
	}
	case STEP_IN_PINNED: {
		struct cas_stat st;
		if (cas_stat(f->cas, in->hex, &st) < 0) {
			*err = xasprintf("input %s: no such artifact", in->ref);
			return -ENOENT;
		}
		snprintf(hex, CAS_HEX_LEN + 1, "%s", in->hex);
		break;
	}
	}
	return 0;
}

/* Resolve every input of step i to a content hash. */
int stepio_inputs(struct run *r, size_t i, char **err)
{
	struct srun *s = &r->s[i];
	for (size_t k = 0; k < s->def->n_inputs; k++) {
		char hex[CAS_HEX_LEN + 1];
		int rc = stepio_input(r, i, k, hex, err);
		if (rc < 0)
			return rc;
		s->in_hex[k] = xstrdup(hex);
	}
	return 0;
}

/* A top-level output that is a symlink into the artifacts of this mount
 * (e.g. made by `ln -s in/x out/y`) names an existing artifact: reuse it
 * without reading through the mount. Returns 1 when handled. */
static int reuse_linked_artifact(struct run *r, size_t i, size_t o, int outfd)
{
	struct srun *s = &r->s[i];
	char target[PATH_MAX];
	ssize_t n = readlinkat(outfd, s->def->outputs[o], target, sizeof target - 1);
	if (n < 0)
		return 0;
	target[n] = '\0';
	const char *t = target;
	if (!strncmp(t, "../in/", 6)) {
		for (size_t k = 0; k < s->def->n_inputs; k++)
			if (!strcmp(t + 6, s->def->inputs[k].as)) {
				snprintf(s->out_hex[o], CAS_HEX_LEN + 1, "%s", s->in_hex[k]);
				return 1;
			}
		return 0;
	}
	char *prefix = xasprintf("%s/artifacts/sha256/", r->f->mnt);
	size_t pl = strlen(prefix);
	int ok = !strncmp(t, prefix, pl) && cas_hex_valid(t + pl) &&
	         cas_stat(r->f->cas, t + pl, &(struct cas_stat){0}) == 0;
	free(prefix);
	if (ok)
		snprintf(s->out_hex[o], CAS_HEX_LEN + 1, "%s", t + pl);
	return ok;
}

/* Hash and commit every declared output; 0 or -errno with s->error set.
 * out/ must still be the directory prepare_scratch made; every output is
 * read through its fd (see cas_put_at), as the steps' user. The objects
 * are published at once (the next step may read them) and made durable
 * by the run's next record (run.c), before any row names them. */
int stepio_outputs(struct run *r, size_t i)
{
	struct srun *s = &r->s[i];
	struct stat st;
	int rc = 0;
	char *out = xasprintf("%s/out", s->scratch);
	int outfd = open(out, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	free(out);
	if (outfd < 0 || fstat(outfd, &st) < 0 || st.st_dev != s->out_dev ||
	    st.st_ino != s->out_ino) {
		struct stat lst;
		char *path = xasprintf("%s/out", s->scratch);
		int is_link = lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode);
		free(path);
		s->error = xasprintf("out/ is not the directory flowyfs made (it was %s); "
		                     "write outputs into the out/ directory you are given",
		                     is_link ? "replaced by a symlink" :
		                     outfd < 0 && errno == ENOENT ? "removed" : "replaced");
		if (outfd >= 0)
			close(outfd);
		return -EPERM;
	}
	struct cas_put_opts opts = {
		.as_user = r->uid != geteuid(), .uid = r->uid, .gid = r->gid,
		.stop = &r->abort_io, .later = &r->syncs,
	};
	for (size_t o = 0; !rc && o < s->def->n_outputs; o++) {
		const char *name = s->def->outputs[o];
		if (fstatat(outfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			s->error = xasprintf("step did not write its output out/%s", name);
			rc = -ENOENT;
		} else if (S_ISLNK(st.st_mode) && reuse_linked_artifact(r, i, o, outfd)) {
			;
		} else {
			enum cas_kind kind;
			char *why = NULL;
			rc = cas_put_at(r->f->cas, s->out_hex[o], &kind, outfd, name, "out",
			                &opts, &why);
			if (rc == -ECANCELED) {
				free(why);
				s->error = xstrdup("stopped while storing the outputs");
			} else if (rc < 0) {
				s->error = store_error(rc, why);
			} else {
				free(why);
			}
		}
	}
	close(outfd);
	return rc;
}
