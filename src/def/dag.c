/*
 * dag.c - the step graph of a pipeline.
 *
 * Nothing declares edges: a step depends on the producer of each LOCAL
 * input, which step_load() resolved into step_input.producer. From that
 * this file derives the topological order (Kahn's algorithm with a
 * name-ordered ready heap, so the order is the same on every run and every
 * machine), names one actual cycle when there is no order, finds what is
 * downstream of a step (for "rerun STEP"), and renders the graph as text
 * (.dag) and Graphviz (.dag.dot). Everything is O((steps + edges) log n),
 * so a 1,000-step chain costs nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/dag.h"
#include "flowyfs/util.h"

#define NONE ((size_t)-1)

/* ---- memory and strings ------------------------------------------------ */

/* Append s with control characters shown as '?' (a valid pipeline has
 * none; an invalid one is still rendered, one line per step); in a dot
 * string (dot set) also escape '"' and '\'. */
static void sb_clean(struct strbuf *b, const char *s, int dot)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch == 0x7f)
			strbuf_add(b, "?", 1);
		else if (dot && (ch == '"' || ch == '\\')) {
			strbuf_add(b, "\\", 1);
			strbuf_add(b, s, 1);
		} else
			strbuf_add(b, s, 1);
	}
}

/* ---- the graph ----------------------------------------------------------- */

static int size_cmp(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

int dag_deps(size_t ***out_deps, size_t **out_n, const struct pipeline_def *p)
{
	size_t **deps, *n, i, j, k;

	deps = xcalloc(p->n_steps, sizeof *deps);
	n = xcalloc(p->n_steps, sizeof *n);
	for (i = 0; i < p->n_steps; i++) {
		const struct step_def *st = &p->steps[i];

		deps[i] = xcalloc(st->n_inputs, sizeof **deps);
		for (j = 0; j < st->n_inputs; j++) {
			const struct step_input *in = &st->inputs[j];

			if (in->kind == STEP_IN_LOCAL && in->producer >= 0 &&
			    (size_t)in->producer < p->n_steps)
				deps[i][n[i]++] = (size_t)in->producer;
		}
		qsort(deps[i], n[i], sizeof **deps, size_cmp);
		for (j = k = 0; j < n[i]; j++)
			if (!k || deps[i][k - 1] != deps[i][j])
				deps[i][k++] = deps[i][j];
		n[i] = k;
	}
	*out_deps = deps;
	*out_n = n;
	return 0;
}

void dag_deps_free(size_t **deps, size_t *n, size_t n_steps)
{
	size_t i;

	for (i = 0; deps && i < n_steps; i++)
		free(deps[i]);
	free(deps);
	free(n);
}

/* Consumers of each step as one array: those of i are
 * list[off[i] .. off[i + 1]), in increasing index order. */
static void dag_consumers(const struct pipeline_def *p, size_t **deps,
                          const size_t *n, size_t **out_off, size_t **out_list)
{
	size_t *off, *list, *fill, i, j, total = 0;

	off = xcalloc(p->n_steps + 1, sizeof *off);
	for (i = 0; i < p->n_steps; i++)
		for (j = 0; j < n[i]; j++)
			off[deps[i][j] + 1]++;
	for (i = 0; i < p->n_steps; i++)
		off[i + 1] += off[i];
	total = off[p->n_steps];
	list = xcalloc(total, sizeof *list);
	fill = xcalloc(p->n_steps, sizeof *fill);
	for (i = 0; i < p->n_steps; i++)
		for (j = 0; j < n[i]; j++) {
			size_t d = deps[i][j];

			list[off[d] + fill[d]++] = i;
		}
	free(fill);
	*out_off = off;
	*out_list = list;
}

/* A binary heap of step indexes, smallest name on top. */
struct heap {
	size_t *v, n;
	const struct pipeline_def *p;
};

static int heap_less(const struct heap *h, size_t a, size_t b)
{
	int r = strcmp(h->p->steps[a].name, h->p->steps[b].name);

	return r ? r < 0 : a < b;
}

static void heap_push(struct heap *h, size_t x)
{
	size_t i = h->n++;

	while (i > 0 && heap_less(h, x, h->v[(i - 1) / 2])) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = x;
}

static size_t heap_pop(struct heap *h)
{
	size_t top = h->v[0], x = h->v[--h->n], i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && heap_less(h, h->v[c + 1], h->v[c]))
			c++;
		if (!heap_less(h, h->v[c], x))
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = x;
	return top;
}

/* Every step left with indeg > 0 has a dependency also left (else Kahn's
 * algorithm would have freed it), so walking dependencies from one must
 * come back to a step already seen: that loop is a cycle. Written in data
 * flow order (producer -> consumer), from the smallest name on it. */
static char *dag_cycle(const struct pipeline_def *p, size_t **deps,
                       const size_t *n, const size_t *indeg)
{
	size_t *seen, *path, len = 0, cur = NONE, i, j, start, first, k;
	struct strbuf b = {0};
	struct heap h = { NULL, 0, p };

	seen = xmalloc(p->n_steps * sizeof *seen);
	path = xmalloc(p->n_steps * sizeof *path);
	for (i = 0; i < p->n_steps; i++) {
		seen[i] = NONE;
		if (indeg[i] && (cur == NONE || heap_less(&h, i, cur)))
			cur = i;
	}
	while (cur != NONE && seen[cur] == NONE) {
		size_t next = NONE;

		seen[cur] = len;
		path[len++] = cur;
		for (j = 0; j < n[cur]; j++) {
			size_t d = deps[cur][j];

			if (indeg[d] && (next == NONE || heap_less(&h, d, next)))
				next = d;
		}
		cur = next;
	}
	if (cur == NONE)
		goto out;
	/* path[start..len) is the cycle against the flow: reverse it. */
	start = seen[cur];
	first = len - 1;
	for (i = start; i < len; i++)
		if (heap_less(&h, path[i], path[first]))
			first = i;
	for (k = 0; k <= len - start; k++) {
		/* walk backwards through path from first, wrapping in the cycle */
		size_t span = len - start;
		size_t at = start + (first - start + span - (k % span)) % span;

		if (k)
			strbuf_puts(&b, " -> ");
		sb_clean(&b, p->steps[path[at]].name, 0);
	}
out:
	free(path);
	free(seen);
	return b.buf;
}

int dag_order(size_t *out, const struct pipeline_def *p, char **cycle)
{
	size_t **deps = NULL, *n = NULL, *off = NULL, *list = NULL, *indeg = NULL;
	size_t i, j, done = 0;
	struct heap h = { NULL, 0, p };
	int ret = 0;

	if (cycle)
		*cycle = NULL;
	dag_deps(&deps, &n, p);
	dag_consumers(p, deps, n, &off, &list);
	indeg = xcalloc(p->n_steps, sizeof *indeg);
	h.v = xcalloc(p->n_steps, sizeof *h.v);
	for (i = 0; i < p->n_steps; i++) {
		indeg[i] = n[i];
		if (!indeg[i])
			heap_push(&h, i);
	}
	while (h.n) {
		size_t s = heap_pop(&h);

		out[done++] = s;
		for (j = off[s]; j < off[s + 1]; j++)
			if (!--indeg[list[j]])
				heap_push(&h, list[j]);
	}
	if (done < p->n_steps) {
		ret = -ELOOP;
		if (cycle)
			*cycle = dag_cycle(p, deps, n, indeg);
	}
	free(h.v);
	free(indeg);
	free(list);
	free(off);
	dag_deps_free(deps, n, p->n_steps);
	return ret;
}

void dag_downstream(const struct pipeline_def *p, size_t i, unsigned char *mark)
{
	size_t **deps = NULL, *n = NULL, *off = NULL, *list = NULL, *stack = NULL;
	size_t sp = 0, j;
	unsigned char *seen = NULL;

	if (i >= p->n_steps)
		return;
	dag_deps(&deps, &n, p);
	dag_consumers(p, deps, n, &off, &list);
	seen = xcalloc(p->n_steps, 1);
	stack = xcalloc(p->n_steps, sizeof *stack);
	seen[i] = 1;
	stack[sp++] = i;
	while (sp) {
		size_t s = stack[--sp];

		mark[s] = 1;
		for (j = off[s]; j < off[s + 1]; j++)
			if (!seen[list[j]]) {
				seen[list[j]] = 1;
				stack[sp++] = list[j];
			}
	}
	free(stack);
	free(seen);
	free(list);
	free(off);
	dag_deps_free(deps, n, p->n_steps);
}

/* ---- renderings ------------------------------------------------------------ */

/* The order to render in: topological, or by index when there is none
 * (an invalid pipeline is rendered too). Caller frees. */
static size_t *dag_render_order(const struct pipeline_def *p)
{
	size_t *order = xcalloc(p->n_steps, sizeof *order), i;

	if (dag_order(order, p, NULL))
		for (i = 0; i < p->n_steps; i++)
			order[i] = i;
	return order;
}

/* One line per step, in topological order (index order if there is none):
 *     <step> TAB <inputs as written, comma-separated, or -> " -> "
 *     <outputs, comma-separated, or -> NEWLINE
 * e.g. "train\tclean,other/features -> model,report.html\n". Nothing
 * else: no header, so cut -f1 lists the steps in the order they run. */
char *dag_render_text(const struct pipeline_def *p)
{
	struct strbuf b = {0};
	size_t *order = dag_render_order(p), k, j;

	for (k = 0; k < p->n_steps; k++) {
		const struct step_def *st = &p->steps[order[k]];

		sb_clean(&b, st->name, 0);
		strbuf_puts(&b, "\t");
		for (j = 0; j < st->n_inputs; j++) {
			if (j)
				strbuf_puts(&b, ",");
			sb_clean(&b, st->inputs[j].ref, 0);
		}
		if (!st->n_inputs)
			strbuf_puts(&b, "-");
		strbuf_puts(&b, " -> ");
		for (j = 0; j < st->n_outputs; j++) {
			if (j)
				strbuf_puts(&b, ",");
			sb_clean(&b, st->outputs[j], 0);
		}
		if (!st->n_outputs)
			strbuf_puts(&b, "-");
		strbuf_puts(&b, "\n");
	}
	free(order);
	return strbuf_detach(&b, NULL);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void dot_id(struct strbuf *b, const char *prefix, const char *name)
{
	strbuf_puts(b, "\"");
	strbuf_puts(b, prefix);
	sb_clean(b, name, 1);
	strbuf_puts(b, "\"");
}

static void dot_node(struct strbuf *b, const char *prefix, const char *name,
                     const char *shape)
{
	strbuf_puts(b, "  ");
	dot_id(b, prefix, name);
	strbuf_puts(b, " [shape=");
	strbuf_puts(b, shape);
	strbuf_puts(b, ",label=\"");
	sb_clean(b, name, 1);
	strbuf_puts(b, "\"];\n");
}

static void dot_edge(struct strbuf *b, const char *pa, const char *a,
                     const char *pb, const char *bname)
{
	strbuf_puts(b, "  ");
	dot_id(b, pa, a);
	strbuf_puts(b, " -> ");
	dot_id(b, pb, bname);
	strbuf_puts(b, ";\n");
}

/* digraph "<pipeline>" { steps as "step:<name>" boxes in topological
 * order, artifacts as "art:<ref>" ellipses sorted by reference, then per
 * step its edges art -> step for inputs and step -> art for outputs }.
 * Artifact nodes are keyed by reference: a local name, or the external
 * reference as written ("other/name", "file:/x", "sha256:..."). */
char *dag_render_dot(const struct pipeline_def *p)
{
	struct strbuf b = {0};
	size_t *order = dag_render_order(p), k, j, n_arts = 0;
	const char **arts;

	for (k = 0; k < p->n_steps; k++)
		n_arts += p->steps[k].n_inputs + p->steps[k].n_outputs;
	arts = xcalloc(n_arts, sizeof *arts);
	n_arts = 0;
	for (k = 0; k < p->n_steps; k++) {
		for (j = 0; j < p->steps[k].n_inputs; j++)
			arts[n_arts++] = p->steps[k].inputs[j].ref;
		for (j = 0; j < p->steps[k].n_outputs; j++)
			arts[n_arts++] = p->steps[k].outputs[j];
	}
	qsort(arts, n_arts, sizeof *arts, str_cmp);

	strbuf_puts(&b, "digraph \"");
	sb_clean(&b, p->name ? p->name : "", 1);
	strbuf_puts(&b, "\" {\n");
	for (k = 0; k < p->n_steps; k++)
		dot_node(&b, "step:", p->steps[order[k]].name, "box");
	for (j = 0; j < n_arts; j++)
		if (!j || strcmp(arts[j], arts[j - 1]))
			dot_node(&b, "art:", arts[j], "ellipse");
	for (k = 0; k < p->n_steps; k++) {
		const struct step_def *st = &p->steps[order[k]];

		for (j = 0; j < st->n_inputs; j++)
			dot_edge(&b, "art:", st->inputs[j].ref, "step:", st->name);
		for (j = 0; j < st->n_outputs; j++)
			dot_edge(&b, "step:", st->name, "art:", st->outputs[j]);
	}
	strbuf_puts(&b, "}\n");
	free(arts);
	free(order);
	return strbuf_detach(&b, NULL);
}
