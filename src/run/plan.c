/*
 * plan.c - what a run now would do (plan.h).
 *
 * The plan walks the live pipeline (not a snapshot) in run order. A step
 * whose upstream would run cannot know its inputs yet: it "would run
 * after" that step (a real run may still find it cached when the upstream
 * produces the same bytes). Code files are hashed through the snapshot
 * cache, so only files changed since the last snapshot cost a hash.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowyfs/cachekey.h"
#include "flowyfs/catalog.h"
#include "flowyfs/dag.h"
#include "flowyfs/plan.h"
#include "flowyfs/snapshot.h"
#include "flowyfs/step.h"
#include "flowyfs/util.h"
#include "flowyfs/vcs.h"

struct planned {
	int runs;                  /* would run */
	char (*out)[CAS_HEX_LEN + 1];
	char **in;
};

/* Hash of input k of step d, or NULL with *why. */
static char *input_hash(struct flowy *f, const struct pipeline_def *p,
                        const struct planned *pl, const struct step_input *in,
                        uid_t uid, gid_t gid, char **why)
{
	char hex[CAS_HEX_LEN + 1] = "";
	switch (in->kind) {
	case STEP_IN_LOCAL: {
		const struct step_def *u = &p->steps[in->producer];
		for (size_t o = 0; o < u->n_outputs; o++)
			if (!strcmp(u->outputs[o], in->artifact))
				return xstrdup(pl[in->producer].out[o]);
		break;
	}
	case STEP_IN_PIPELINE: {
		char *h = db_text(f->db, "SELECT hash FROM latest WHERE pipeline=? AND "
		                  "name=?", "tt", in->pipeline, in->artifact);
		if (!h)
			*why = xasprintf("input %s: pipeline %s has no artifact %s yet", in->ref,
			                 in->pipeline, in->artifact);
		return h;
	}
	case STEP_IN_FILE: {
		enum cas_kind kind;
		char *err = NULL;
		struct cas_put_opts opts = {.as_user = uid != geteuid(), .uid = uid,
		                            .gid = gid};
		if (cas_put_path(f->cas, hex, &kind, in->path, "/", &opts, &err) < 0) {
			*why = xasprintf("input %s: %s", in->ref, err ? err : "cannot read it");
			free(err);
			return NULL;
		}
		free(err);
		return xstrdup(hex);
	}
	case STEP_IN_PINNED:
		return xstrdup(in->hex);
	}
	*why = xasprintf("input %s: cannot resolve it", in->ref);
	return NULL;
}

/* The workdir's code state, as a run records it (or NULL). */
static char *workdir_code(const struct pipeline_def *p)
{
	if (!p->workdir)
		return NULL;
	struct vcs_workdir w;
	char *err = NULL, *code;
	if (vcs_workdir_state(&w, p->workdir, &err) == 0)
		code = xasprintf("%s%s%s", w.commit, w.dirty ? "+" : "",
		                 w.dirty ? w.dirty_hash : "");
	else
		code = xstrdup("not a git repository");
	free(err);
	vcs_workdir_free(&w);
	return code;
}

char *plan_render(struct flowy *f, const char *pipeline)
{
	struct catalog_def *held = NULL;
	const struct pipeline_def *p = catalog_def_get(f, pipeline, &held);
	if (!p)
		return xstrdup("invalid: see .status\n");
	char *dir = xasprintf("%s/%s", f->pipelines_dir, pipeline);
	struct strbuf sb = {0};
	struct codefile *code = NULL;
	size_t ncode = 0;
	struct stat st;
	uid_t uid = geteuid();
	gid_t gid = getegid();
	if (uid == 0 && f->allow_other && stat(dir, &st) == 0) {
		uid = st.st_uid;  /* file: inputs are read as the steps would */
		gid = st.st_gid;
	}
	int rc;
	if ((rc = snapshot_hash_live(f->snapshots, f, pipeline, &code, &ncode)) < 0) {
		strbuf_printf(&sb, "cannot read the pipeline's files: %s\n", strerror(-rc));
		goto out;
	}
	char *wd = workdir_code(p);
	size_t *deflt = NULL, ndeflt = snapshot_default_code(code, ncode, &deflt);
	size_t n = p->n_steps;
	struct planned *pl = xcalloc(n + 1, sizeof *pl);
	strbuf_puts(&sb, "step\taction\treason\n");
	for (size_t k = 0; k < n; k++) {
		size_t i = p->order[k];
		const struct step_def *d = &p->steps[i];
		pl[i].out = xcalloc(d->n_outputs + 1, sizeof *pl[i].out);
		pl[i].in = xcalloc(d->n_inputs + 1, sizeof *pl[i].in);
		char *reason = NULL;
		for (size_t in = 0; in < d->n_inputs && !reason; in++) {
			const struct step_input *ip = &d->inputs[in];
			if (ip->kind == STEP_IN_LOCAL && pl[ip->producer].runs)
				reason = xasprintf("after upstream step %s runs",
				                   p->steps[ip->producer].name);
			else if (!(pl[i].in[in] = input_hash(f, p, pl, ip, uid, gid, &reason)) &&
			         !reason)
				reason = xasprintf("input %s cannot be resolved", ip->ref);
		}
		if (!reason) {
			char *key = NULL, *parts = NULL;
			size_t *idx = NULL;
			size_t nidx = snapshot_step_code(code, ncode, deflt, ndeflt, d, &idx);
			cachekey_compute(d, NULL, code, idx, nidx, wd, pl[i].in, NULL, &key, &parts);
			free(idx);
			if (cachekey_lookup(f->db, f->cas, d, key, pl[i].out, NULL))
				reason = NULL;
			else
				reason = cachekey_explain(f->db, pipeline, d, NULL, INT64_MAX, parts);
			free(key);
			free(parts);
		}
		pl[i].runs = reason != NULL;
		strbuf_printf(&sb, "%s\t%s\t%s\n", d->name, reason ? "run" : "cached",
		              reason ? reason : "cached");
		free(reason);
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; pl[i].in && k < p->steps[i].n_inputs; k++)
			free(pl[i].in[k]);
		free(pl[i].in);
		free(pl[i].out);
	}
	free(pl);
	free(deflt);
	free(wd);
out:
	snapshot_codes_free(code, ncode);
	catalog_def_put(held);
	free(dir);
	return strbuf_detach(&sb, NULL);
}
