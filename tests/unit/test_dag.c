/*
 * test_dag.c - unit tests for dag.c. Pipelines are built by hand here (not
 * through step_load) so the graph code is tested on its own, including
 * shapes step_load() would refuse (cycles) and steps whose indexes are not
 * in name order; step_free() releases them like loaded ones.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "flowyfs/dag.h"

static char *dup_str(const char *s)
{
	char *d = strdup(s);

	if (!d)
		abort();
	return d;
}

static struct pipeline_def *pipe_new(const char *name)
{
	struct pipeline_def *p = calloc(1, sizeof *p);

	if (!p)
		abort();
	p->name = dup_str(name);
	p->params = cJSON_CreateObject();
	return p;
}

/* Split a comma-separated list ("" = none) into *out, returning the count. */
static size_t split(const char *list, char ***out)
{
	char *copy = dup_str(list), *tok, *save = NULL;
	size_t n = 0;

	*out = calloc(strlen(list) + 1, sizeof **out);
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		(*out)[n++] = dup_str(tok);
	free(copy);
	return n;
}

/* Add a step; ins and outs are comma-separated references and names. */
static void pipe_add(struct pipeline_def *p, const char *name, const char *ins,
                     const char *outs)
{
	struct step_def *st;
	char **refs;
	size_t i, n;

	p->steps = realloc(p->steps, (p->n_steps + 1) * sizeof *p->steps);
	st = &p->steps[p->n_steps++];
	memset(st, 0, sizeof *st);
	st->name = dup_str(name);
	st->params = cJSON_CreateObject();
	st->code_default = 1;
	st->n_outputs = split(outs, &st->outputs);
	n = split(ins, &refs);
	st->inputs = calloc(n + 1, sizeof *st->inputs);
	for (i = 0; i < n; i++) {
		struct step_input *in = &st->inputs[i];
		char *slash = strchr(refs[i], '/');

		in->ref = refs[i];
		in->producer = -1;
		if (!strncmp(refs[i], "file:", 5)) {
			in->kind = STEP_IN_FILE;
			in->path = dup_str(refs[i] + 5);
			in->as = dup_str(strrchr(refs[i], '/') + 1);
		} else if (!strncmp(refs[i], "sha256:", 7)) {
			in->kind = STEP_IN_PINNED;
			in->hex = dup_str(refs[i] + 7);
			in->as = dup_str(in->hex);
		} else if (slash) {
			in->kind = STEP_IN_PIPELINE;
			in->pipeline = strndup(refs[i], (size_t)(slash - refs[i]));
			in->artifact = dup_str(slash + 1);
			in->as = dup_str(slash + 1);
		} else {
			in->kind = STEP_IN_LOCAL;
			in->artifact = dup_str(refs[i]);
			in->as = dup_str(refs[i]);
		}
	}
	st->n_inputs = n;
	free(refs);
}

/* Resolve LOCAL inputs to their producers, as step_load() does. */
static void pipe_link(struct pipeline_def *p)
{
	size_t i, j;

	for (i = 0; i < p->n_steps; i++)
		for (j = 0; j < p->steps[i].n_inputs; j++)
			if (p->steps[i].inputs[j].kind == STEP_IN_LOCAL)
				p->steps[i].inputs[j].producer =
					step_producer(p, p->steps[i].inputs[j].artifact);
}

/* The order as names joined by spaces. */
static char *order_names(const struct pipeline_def *p, const size_t *order)
{
	static char buf[1024];
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < p->n_steps; i++) {
		if (i)
			strcat(buf, " ");
		strcat(buf, p->steps[order[i]].name);
	}
	return buf;
}

TEST(test_order_ties)
{
	/* b and c are free, a waits for d: ready steps go by name. */
	struct pipeline_def *p = pipe_new("p");
	size_t order[4];
	char *cycle = (char *)"unset";

	pipe_add(p, "a", "x", "");
	pipe_add(p, "b", "", "");
	pipe_add(p, "c", "", "");
	pipe_add(p, "d", "", "x");
	pipe_link(p);
	CHECK_INT(dag_order(order, p, &cycle), 0);
	CHECK(cycle == NULL);
	CHECK_STR(order_names(p, order), "b c d a");
	step_free(p);
}

TEST(test_order_by_name_not_index)
{
	/* Indexes deliberately out of name order; a chain plus free steps. */
	struct pipeline_def *p = pipe_new("p");
	size_t order[5];

	pipe_add(p, "zeta", "m", "z");
	pipe_add(p, "mid", "a", "m");
	pipe_add(p, "alpha", "", "a");
	pipe_add(p, "omega", "z,other/q", "");
	pipe_add(p, "beta", "file:/x/y,sha256:00", "");
	pipe_link(p);
	CHECK_INT(dag_order(order, p, NULL), 0);
	CHECK_STR(order_names(p, order), "alpha beta mid zeta omega");
	step_free(p);
}

TEST(test_order_empty)
{
	struct pipeline_def *p = pipe_new("p");
	size_t order[1];
	char *cycle = NULL;

	CHECK_INT(dag_order(order, p, &cycle), 0);
	CHECK(cycle == NULL);
	step_free(p);
}

TEST(test_cycle)
{
	/* Flow b -> m -> z -> b; a hangs below the cycle; free runs first. */
	struct pipeline_def *p = pipe_new("p");
	size_t order[5];
	char *cycle = NULL;

	pipe_add(p, "a", "z_out", "");
	pipe_add(p, "z", "m_out", "z_out");
	pipe_add(p, "m", "b_out,free_out", "m_out");
	pipe_add(p, "b", "z_out", "b_out");
	pipe_add(p, "free", "", "free_out");
	pipe_link(p);
	CHECK_INT(dag_order(order, p, &cycle), -ELOOP);
	CHECK_STR(cycle, "b -> m -> z -> b");
	free(cycle);
	CHECK_INT(dag_order(order, p, NULL), -ELOOP);
	step_free(p);
}

TEST(test_self_cycle)
{
	struct pipeline_def *p = pipe_new("p");
	size_t order[2];
	char *cycle = NULL;

	pipe_add(p, "first", "", "x");
	pipe_add(p, "loop", "x,again", "again");
	pipe_link(p);
	CHECK_INT(dag_order(order, p, &cycle), -ELOOP);
	CHECK_STR(cycle, "loop -> loop");
	free(cycle);
	step_free(p);
}

TEST(test_deps)
{
	struct pipeline_def *p = pipe_new("p");
	size_t **deps = NULL, *n = NULL;

	pipe_add(p, "a", "", "x,y");
	pipe_add(p, "b", "", "z");
	pipe_add(p, "c", "z,y,x,other/w,file:/f,nobody", "");
	pipe_link(p);
	CHECK_INT(dag_deps(&deps, &n, p), 0);
	CHECK_INT(n[0], 0);
	CHECK_INT(n[1], 0);
	CHECK_INT(n[2], 2);
	CHECK_INT(deps[2][0], 0);
	CHECK_INT(deps[2][1], 1);
	dag_deps_free(deps, n, p->n_steps);
	dag_deps_free(NULL, NULL, 0);
	step_free(p);
}

TEST(test_downstream)
{
	/* a -> b, a -> c, b + c -> d; e on its own. */
	struct pipeline_def *p = pipe_new("p");
	unsigned char mark[5];

	pipe_add(p, "a", "", "ao");
	pipe_add(p, "b", "ao", "bo");
	pipe_add(p, "c", "ao", "co");
	pipe_add(p, "d", "bo,co", "");
	pipe_add(p, "e", "", "eo");
	pipe_link(p);
	memset(mark, 0, sizeof mark);
	dag_downstream(p, 1, mark);
	CHECK(!memcmp(mark, "\0\1\0\1\0", 5));
	memset(mark, 0, sizeof mark);
	dag_downstream(p, 0, mark);
	CHECK(!memcmp(mark, "\1\1\1\1\0", 5));
	memset(mark, 0, sizeof mark);
	dag_downstream(p, 3, mark);
	CHECK(!memcmp(mark, "\0\0\0\1\0", 5));
	/* marks add up: other entries are left as they are */
	dag_downstream(p, 4, mark);
	CHECK(!memcmp(mark, "\0\0\0\1\1", 5));
	dag_downstream(p, 99, mark);
	CHECK(!memcmp(mark, "\0\0\0\1\1", 5));
	step_free(p);
}

/* prep reads a host file, train reads prep's output and another
 * pipeline's, eval reads train's and writes nothing, lone does nothing. */
static struct pipeline_def *small(void)
{
	struct pipeline_def *p = pipe_new("demo");

	pipe_add(p, "eval", "model,clean", "");
	pipe_add(p, "lone", "", "");
	pipe_add(p, "prep", "file:/data/raw.csv", "clean");
	pipe_add(p, "train", "clean,other/features", "model,report.html");
	pipe_link(p);
	return p;
}

TEST(test_render_text)
{
	struct pipeline_def *p = small();
	char *text = dag_render_text(p);

	CHECK_STR(text,
		"lone\t- -> -\n"
		"prep\tfile:/data/raw.csv -> clean\n"
		"train\tclean,other/features -> model,report.html\n"
		"eval\tmodel,clean -> -\n");
	free(text);
	step_free(p);
}

TEST(test_render_dot)
{
	struct pipeline_def *p = small();
	char *dot = dag_render_dot(p);

	CHECK_STR(dot,
		"digraph \"demo\" {\n"
		"  \"step:lone\" [shape=box,label=\"lone\"];\n"
		"  \"step:prep\" [shape=box,label=\"prep\"];\n"
		"  \"step:train\" [shape=box,label=\"train\"];\n"
		"  \"step:eval\" [shape=box,label=\"eval\"];\n"
		"  \"art:clean\" [shape=ellipse,label=\"clean\"];\n"
		"  \"art:file:/data/raw.csv\" [shape=ellipse,label=\"file:/data/raw.csv\"];\n"
		"  \"art:model\" [shape=ellipse,label=\"model\"];\n"
		"  \"art:other/features\" [shape=ellipse,label=\"other/features\"];\n"
		"  \"art:report.html\" [shape=ellipse,label=\"report.html\"];\n"
		"  \"art:file:/data/raw.csv\" -> \"step:prep\";\n"
		"  \"step:prep\" -> \"art:clean\";\n"
		"  \"art:clean\" -> \"step:train\";\n"
		"  \"art:other/features\" -> \"step:train\";\n"
		"  \"step:train\" -> \"art:model\";\n"
		"  \"step:train\" -> \"art:report.html\";\n"
		"  \"art:model\" -> \"step:eval\";\n"
		"  \"art:clean\" -> \"step:eval\";\n"
		"}\n");
	free(dot);
	step_free(p);
}

TEST(test_render_empty_and_cyclic)
{
	struct pipeline_def *p = pipe_new("e\"q");
	char *s;

	s = dag_render_text(p);
	CHECK_STR(s, "");
	free(s);
	s = dag_render_dot(p);
	CHECK_STR(s, "digraph \"e\\\"q\" {\n}\n");
	free(s);
	/* No order exists: steps come in index order, nothing is lost. */
	pipe_add(p, "b", "y", "x");
	pipe_add(p, "a", "x", "y,w\n");
	pipe_link(p);
	s = dag_render_text(p);
	CHECK_STR(s, "b\ty -> x\na\tx -> y,w?\n");
	free(s);
	step_free(p);
}

int main(void)
{
	RUN(test_order_ties);
	RUN(test_order_by_name_not_index);
	RUN(test_order_empty);
	RUN(test_cycle);
	RUN(test_self_cycle);
	RUN(test_deps);
	RUN(test_downstream);
	RUN(test_render_text);
	RUN(test_render_dot);
	RUN(test_render_empty_and_cyclic);
	return CHECK_DONE();
}
