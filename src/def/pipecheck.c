/*
 * pipecheck.c - what no single file can tell: the steps of a pipeline
 * together. Outputs are sorted once (O(n log n)) to find names produced
 * by two steps and to resolve every LOCAL input to the step producing it;
 * dag.c then orders the graph or names a cycle. Every kind of problem is
 * reported even when others exist (an unresolved input does not hide a
 * cycle: the edges that are known are enough to find one).
 */
#include <stdlib.h>
#include <string.h>

#include "flowyfs/dag.h"
#include "flowyfs/diag.h"
#include "flowyfs/pipecheck.h"
#include "flowyfs/util.h"

size_t pipecheck_link(struct stepload *l)
{
	struct pipeline_def *p = l->p;
	struct diag *d = &l->diag;
	struct stepload_named *v;
	size_t n = 0, i, j, s, k, selfs = 0;
	int known = 1;

	for (s = 0; s < p->n_steps; s++) {
		n += p->steps[s].n_outputs;
		known &= l->files[s].outputs_known;
	}
	v = xcalloc(n, sizeof *v);
	for (n = 0, s = 0; s < p->n_steps; s++)
		for (i = 0; i < p->steps[s].n_outputs; i++, n++) {
			v[n].name = p->steps[s].outputs[i];
			v[n].i = s;
			v[n].j = i;
		}
	qsort(v, n, sizeof *v, stepload_named_cmp);
	for (i = 0; i < n; i = j) {
		size_t last = v[i].i;

		for (j = i + 1; j < n && !strcmp(v[j].name, v[i].name); j++) {
			if (v[j].i == last)
				continue;
			last = v[j].i;
			diag_at(d, &l->files[last].src, l->files[last].out_pos[v[j].j],
			        "output %s is produced by both %s and %s",
			        diag_quote(d, v[i].name), diag_quote(d, p->steps[v[i].i].name),
			        diag_quote(d, p->steps[last].name));
		}
	}
	for (s = 0; s < p->n_steps; s++) {
		struct step_def *st = &p->steps[s];
		struct stepfile *f = &l->files[s];

		for (i = 0; i < st->n_inputs; i++) {
			struct step_input *in = &st->inputs[i];

			if (in->kind != STEP_IN_LOCAL)
				continue;
			k = stepload_named_find(v, n, in->artifact);
			if (k == JPOS_NONE) {
				if (known)
					diag_at(d, &f->src, f->in_pos[i],
					        "input %s is not produced by any step",
					        diag_quote(d, in->ref));
				continue;
			}
			in->producer = (int)v[k].i;
			if (v[k].i == s) {
				char *name = diag_plain(st->name);

				diag_at(d, &f->src, f->in_pos[i], "cycle: %s -> %s",
				        name, name);
				free(name);
				selfs++;
			}
		}
	}
	free(v);
	return selfs;
}

void pipecheck_cycles(struct stepload *l)
{
	struct pipeline_def *p = l->p;
	size_t *order = xcalloc(p->n_steps, sizeof *order), s, len;
	char *cycle = NULL, *arrow;

	if (!dag_order(order, p, &cycle)) {
		p->order = order;
		order = NULL;
		goto out;
	}
	if (!cycle) {
		diag_file(&l->diag, NULL, "cannot order the steps");
		goto out;
	}
	arrow = strstr(cycle, " -> ");
	len = arrow ? (size_t)(arrow - cycle) : strlen(cycle);
	for (s = 0; s < p->n_steps; s++)
		if (strlen(p->steps[s].name) == len &&
		    !strncmp(p->steps[s].name, cycle, len))
			break;
	diag_file(&l->diag, s < p->n_steps ? l->files[s].src.disp : NULL, "cycle: %s",
	          cycle);
out:
	free(cycle);
	free(order);
}
