/*
 * test_step.c - unit tests for step_load() (src/def/): pipeline directories
 * are written under a mkdtemp() directory (pipedir.h), loaded with
 * step_load(), and the result checked field by field, or the errors checked
 * as exact strings (file:line:col included) because .status shows them to
 * users verbatim.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "pipedir.h"
#include "flowyfs/step.h"

#define RULE "(names are [A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128 bytes)"
#define HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

TEST(test_name_valid)
{
	char name[STEP_NAME_MAX + 2];

	CHECK(step_name_valid("a"));
	CHECK(step_name_valid("A_b.c-d"));
	CHECK(step_name_valid("_x"));
	CHECK(step_name_valid("0"));
	memset(name, 'a', sizeof name);
	name[STEP_NAME_MAX] = '\0';
	CHECK(step_name_valid(name));
	name[STEP_NAME_MAX] = 'a';
	name[STEP_NAME_MAX + 1] = '\0';
	CHECK(!step_name_valid(name));
	CHECK(!step_name_valid(""));
	CHECK(!step_name_valid(NULL));
	CHECK(!step_name_valid("-x"));
	CHECK(!step_name_valid(".x"));
	CHECK(!step_name_valid(".."));
	CHECK(!step_name_valid("a b"));
	CHECK(!step_name_valid("a/b"));
	CHECK(!step_name_valid("a:b"));
	CHECK(!step_name_valid("\xc3\xa9"));
}

TEST(test_syntax_error)
{
	const char *files[] = {
		"a.json", "{\n  \"run\": \"x\",\n  \"inputs\": [\"a\" \"b\"]\n}\n",
		"b.json", "{\n  \"run\": \"x\",\n  \"outputs\": [\"o\"],\n}\n",
		"c.json", "{\n  \"run\": \"x\",\n",
		"d.json", "{\"run\": \"x\"} trailing",
		"e.json", "  \n",
		"f.json", "[\"run\"]",
		NULL,
	};

	CHECK_ERRORS(files,
		"a.json:3:18: JSON syntax error near '\"b\"]'\n"
		"b.json:3:19: JSON syntax error: trailing comma before '}'\n"
		"c.json:3:1: JSON syntax error at end of file\n"
		"d.json:1:14: JSON syntax error near 'trailing'\n"
		"e.json: file is empty (a JSON object is expected)\n"
		"f.json:1:1: a step definition must be a JSON object");
}

TEST(test_syntax_error_excerpt)
{
	const char *files[] = {
		"a.json", "{\n\t\"run\": \"x\", \"outputs\": [\"o\"] \"description\": \"long text here\"\n}",
		NULL,
	};

	CHECK_ERRORS(files,
		"a.json:2:31: JSON syntax error near '\"description\": \"long tex...'");
}

TEST(test_unknown_key)
{
	const char *files[] = {
		"a.json", "{\n  \"run\": \"x\",\n  \"foo\": 1,\n  \"outputs\": [\"o\"],\n"
		          "  \"we\\nird\\\"\": 2,\n  \"run\": \"y\"\n}\n",
		NULL,
	};

	CHECK_ERRORS(files,
		"a.json:3:3: unknown key \"foo\"\n"
		"a.json:5:3: unknown key \"we\\nird\\\"\"\n"
		"a.json:6:3: duplicate key \"run\"");
}

TEST(test_missing_run)
{
	const char *files[] = {
		"a.json", "{\n  \"outputs\": [\"o\"]\n}\n",
		"b.json", "\n\n  {}",
		"c.json", "{\"run\": \"\"}",
		NULL,
	};

	CHECK_ERRORS(files,
		"a.json:1:1: missing required key \"run\"\n"
		"b.json:3:3: missing required key \"run\"\n"
		"c.json:1:2: \"run\" must be a non-empty string");
}

TEST(test_wrong_types)
{
	const char *files[] = {
		"a.json",
		"{\n"
		"  \"run\": 5,\n"
		"  \"inputs\": \"x\",\n"
		"  \"outputs\": [\"o\", 3],\n"
		"  \"retries\": 1.5,\n"
		"  \"timeout\": 0,\n"
		"  \"params\": 7,\n"
		"  \"code\": \"train.py\",\n"
		"  \"description\": []\n"
		"}\n",
		"b.json", "{\"run\": \"x\", \"retries\": 101, \"timeout\": \"1\", \"inputs\": [1]}",
		NULL,
	};

	CHECK_ERRORS(files,
		"a.json:2:3: \"run\" must be a non-empty string\n"
		"a.json:3:3: \"inputs\" must be an array of strings\n"
		"a.json:4:20: \"outputs\" must be an array of strings\n"
		"a.json:5:3: \"retries\" must be an integer from 0 to 100\n"
		"a.json:6:3: \"timeout\" must be a number of seconds greater than 0\n"
		"a.json:7:3: \"params\" must be an array of names or an object\n"
		"a.json:8:3: \"code\" must be an array of paths\n"
		"a.json:9:3: \"description\" must be a string\n"
		"b.json:1:14: \"retries\" must be an integer from 0 to 100\n"
		"b.json:1:30: \"timeout\" must be a number of seconds greater than 0\n"
		"b.json:1:57: \"inputs\" must be an array of strings");
}

TEST(test_bad_step_name)
{
	const char *files[] = {
		"-x.json", "{\"run\": \"x\"}",
		"ok.json", "{\"run\": \"y\"}",
		".hidden.json", "not json at all",
		".json", "{",
		"lib.json", NULL,          /* a folder: code, not a step */
		"notes.txt", "{",
		NULL,
	};
	struct pipeline_def *p = load("p", files);

	CHECK_STR(errors(p), "-x.json: invalid step name \"-x\" " RULE);
	CHECK_INT(p->n_steps, 2);
	CHECK_STR(p->steps[0].name, "-x");
	CHECK_STR(p->steps[1].name, "ok");
	CHECK_STR(p->steps[1].file, "ok.json");
	step_free(p);
}

TEST(test_bad_output_name)
{
	const char *files[] = {
		"a.json", "{\n  \"run\": \"x\",\n  \"outputs\": [\"ok\", \"a b\", \"ok\"]\n}\n",
		NULL,
	};

	CHECK_ERRORS(files,
		"a.json:3:21: invalid output name \"a b\" " RULE "\n"
		"a.json:3:28: output \"ok\" is listed twice");
}

TEST(test_input_not_produced)
{
	const char *files[] = {
		"a.json", "{\"run\": \"x\", \"outputs\": [\"o\"]}",
		"b.json", "{\n  \"run\": \"y\",\n  \"inputs\": [\"o\", \"missing\"]\n}\n",
		NULL,
	};

	CHECK_ERRORS(files,
		"b.json:3:19: input \"missing\" is not produced by any step");
}

TEST(test_not_produced_quiet_when_unknown)
{
	/* b's outputs cannot be read: do not blame a's input on it. */
	const char *files[] = {
		"a.json", "{\"run\": \"y\", \"inputs\": [\"o\"]}",
		"b.json", "{\"run\": \"x\", \"outputs\": [\"o\",]}",
		NULL,
	};

	CHECK_ERRORS(files, "b.json:1:29: JSON syntax error: trailing comma before ']'");
}

TEST(test_duplicate_output)
{
	const char *files[] = {
		"a.json", "{\"run\": \"x\", \"outputs\": [\"model\"]}",
		"b.json", "{\n  \"run\": \"y\",\n  \"outputs\": [\"model\"]\n}\n",
		NULL,
	};

	CHECK_ERRORS(files,
		"b.json:3:15: output \"model\" is produced by both \"a\" and \"b\"");
}

TEST(test_duplicate_as)
{
	const char *files[] = {
		"a.json", "{\"run\": \"x\", \"outputs\": [\"tmp\"]}",
		"b.json", "{\"run\": \"y\",\n \"inputs\": [\"tmp\", \"q/tmp\", \"file:/tmp/\"]}",
		NULL,
	};

	/* (file: paths must exist: /tmp does.) */
	CHECK_ERRORS(files,
		"b.json:2:20: inputs \"tmp\" and \"q/tmp\" would both be in/tmp\n"
		"b.json:2:29: inputs \"q/tmp\" and \"file:/tmp/\" would both be in/tmp");
}

TEST(test_cycle)
{
	const char *files[] = {
		"a.json", "{\"run\": \"x\", \"inputs\": [\"c_out\"], \"outputs\": [\"a_out\"]}",
		"b.json", "{\"run\": \"x\", \"inputs\": [\"a_out\"], \"outputs\": [\"b_out\"]}",
		"c.json", "{\"run\": \"x\", \"inputs\": [\"b_out\"], \"outputs\": [\"c_out\"]}",
		"d.json", "{\"run\": \"x\", \"outputs\": [\"d_out\"]}",
		NULL,
	};

	CHECK_ERRORS(files, "a.json: cycle: a -> b -> c -> a");
}

TEST(test_cycle_named_from_smallest)
{
	/* Flow b -> m -> z -> b; "a" is downstream of the cycle, not on it. */
	const char *files[] = {
		"a.json", "{\"run\": \"x\", \"inputs\": [\"z_out\"]}",
		"z.json", "{\"run\": \"x\", \"inputs\": [\"m_out\"], \"outputs\": [\"z_out\"]}",
		"m.json", "{\"run\": \"x\", \"inputs\": [\"b_out\"], \"outputs\": [\"m_out\"]}",
		"b.json", "{\"run\": \"x\", \"inputs\": [\"z_out\"], \"outputs\": [\"b_out\"]}",
		NULL,
	};

	CHECK_ERRORS(files, "b.json: cycle: b -> m -> z -> b");
}

TEST(test_self_cycle)
{
	const char *files[] = {
		"a.json", "{\n  \"run\": \"x\",\n  \"inputs\": [\"o\"],\n  \"outputs\": [\"o\"]\n}\n",
		NULL,
	};

	CHECK_ERRORS(files, "a.json:3:14: cycle: a -> a");
}

TEST(test_param_list_unknown)
{
	const char *files[] = {
		"pipeline.json", "{\"params\": {\"lr\": 0.1}}",
		"a.json", "{\n  \"run\": \"x\",\n  \"params\": [\"lr\", \"epochs\", \"lr\", \"a-b\"]\n}\n",
		"b.json", "{\"run\": \"x\", \"params\": {\"lr\": 1, \"x y\": 2}}",
		NULL,
	};

	CHECK_ERRORS(files,
		"a.json:3:20: param \"epochs\" is not in pipeline.json params\n"
		"a.json:3:30: param \"lr\" is listed twice\n"
		"a.json:3:36: invalid param name \"a-b\" "
		"(param names are [A-Za-z0-9_]+, at most 128 bytes)\n"
		"b.json:1:34: invalid param name \"x y\" "
		"(param names are [A-Za-z0-9_]+, at most 128 bytes)");
}

TEST(test_code_paths)
{
	const char *files[] = {
		"train.py", "print(1)\n",
		"lib", NULL,
		"a.json", "{\n  \"run\": \"x\",\n  \"code\": [\"train.py\", \"lib/\", \"../etc\", "
		          "\"/abs\", \"nope.py\", \"lib/../x\", \"\"]\n}\n",
		NULL,
	};

	CHECK_ERRORS(files,
		"a.json:3:32: code path \"../etc\" must not contain \"..\"\n"
		"a.json:3:42: code path \"/abs\" must be relative to the pipeline directory\n"
		"a.json:3:50: code path \"nope.py\" does not exist\n"
		"a.json:3:61: code path \"lib/../x\" must not contain \"..\"\n"
		"a.json:3:73: code path must not be empty");
}

TEST(test_input_refs_invalid)
{
	const char *files[] = {
		"a.json", "{\n  \"run\": \"x\",\n  \"inputs\": [\"file:data.csv\", \"file:/a/../b\", "
		          "\"sha256:abc\", \"x/y/z\", \"-p/x\", \"p/.x\", \"a b\", \"file:/\"]\n}\n",
		NULL,
	};

	CHECK_ERRORS(files,
		"a.json:3:14: input \"file:data.csv\": a file: path must be absolute\n"
		"a.json:3:31: input \"file:/a/../b\": a file: path must not contain "
		"\".\" or \"..\" components\n"
		"a.json:3:47: input \"sha256:abc\": expected 64 lowercase hex digits after sha256:\n"
		"a.json:3:61: input \"x/y/z\": invalid reference (expected name, "
		"pipeline/name, file:/abs/path, sha256:<64 hex digits> or "
		"registry:<model>@<alias>)\n"
		"a.json:3:70: input \"-p/x\": invalid pipeline name \"-p\" " RULE "\n"
		"a.json:3:78: input \"p/.x\": invalid artifact name \".x\" " RULE "\n"
		"a.json:3:86: input \"a b\": invalid artifact name " RULE "\n"
		"a.json:3:93: input \"file:/\": a file: path must name a file or "
		"directory below /");
}

TEST(test_pipeline_json)
{
	const char *files[] = {
		"pipeline.json", "{\n  \"params\": {\"lr\": 1, \"bad-name\": 2, \"lr\": 3},\n"
		                 "  \"workdir\": \"rel\",\n  \"color\": \"red\"\n}\n",
		"a.json", "{\"run\": \"x\", \"params\": [\"lr\"]}",
		NULL,
	};
	struct pipeline_def *p;

	CHECK_ERRORS(files,
		"pipeline.json:2:23: invalid param name \"bad-name\" "
		"(param names are [A-Za-z0-9_]+, at most 128 bytes)\n"
		"pipeline.json:2:38: param \"lr\" is set twice\n"
		"pipeline.json:3:3: \"workdir\" must be an absolute path\n"
		"pipeline.json:4:3: unknown key \"color\"");
	{
		const char *bad[] = {
			"pipeline.json", "{\"params\": [1]",
			"a.json", "{\"run\": \"x\", \"params\": [\"lr\"]}",
			NULL,
		};
		/* A broken context does not make every listed param an error. */
		p = load("p", bad);
		CHECK_STR(errors(p), "pipeline.json:1:15: JSON syntax error at end of file");
		step_free(p);
	}
}

TEST(test_errors_sorted)
{
	const char *files[] = {
		"b.json", "{\n  \"rn\": 1,\n  \"run\": \"x\",\n\n  \"x\": 2\n}",
		"a.json", "{\"run\": \"x\",\n\n\n \"y\": 1}",
		"pipeline.json", "{\"z\": 1}",
		NULL,
	};
	struct pipeline_def *p = load("bad name", files);

	CHECK_STR(errors(p),
		"invalid pipeline name \"bad name\" " RULE "\n"
		"a.json:4:2: unknown key \"y\"\n"
		"b.json:2:3: unknown key \"rn\" (did you mean \"run\"?)\n"
		"b.json:5:3: unknown key \"x\"\n"
		"pipeline.json:1:2: unknown key \"z\"");
	step_free(p);
}

TEST(test_no_steps)
{
	const char *empty[] = { NULL };
	const char *only_ctx[] = { "pipeline.json", "{\"params\": {}}", "x.py", "", NULL };

	CHECK_ERRORS(empty, "pipeline has no steps (write a <step>.json)");
	CHECK_ERRORS(only_ctx, "pipeline has no steps (write a <step>.json)");
}

TEST(test_missing_dir)
{
	struct pipeline_def *p = (void *)1;
	char path[512];

	snprintf(path, sizeof path, "%s/does-not-exist", root);
	CHECK_INT(step_load(&p, "p", path), -ENOENT);
	CHECK(p == NULL);
	step_free(NULL);
}

TEST(test_hostile_files)
{
	const char *files[] = { "ok.json", "{\"run\": \"x\"}", NULL };
	const char *dir = mkpipe(files);
	struct pipeline_def *p = NULL;
	char path[512], *big;
	size_t i, n = 5u << 20;
	FILE *f;

	snprintf(path, sizeof path, "%s/fifo.json", dir);
	CHECK(mkfifo(path, 0644) == 0);
	snprintf(path, sizeof path, "%s/link.json", dir);
	CHECK(symlink("/etc/passwd", path) == 0);
	snprintf(path, sizeof path, "%s/nul.json", dir);
	f = fopen(path, "w");
	CHECK(f != NULL);
	fwrite("{\"run\":\0\"x\"}", 1, 13, f);
	fclose(f);
	/* one byte over the limit, valid JSON otherwise */
	big = malloc(n + 1);
	CHECK(big != NULL);
	memset(big, ' ', n);
	memcpy(big, "{\"run\": \"x\"}", 12);
	big[n] = '\0';
	snprintf(path, sizeof path, "%s/huge.json", dir);
	write_file(path, big);
	/* nested deeper than cJSON allows */
	memset(big, '[', 2000);
	memset(big + 2000, ']', 2000);
	big[4000] = '\0';
	snprintf(path, sizeof path, "%s/deep.json", dir);
	write_file(path, big);
	/* 150 bad outputs: 100 messages, then a count */
	strcpy(big, "{\"run\": \"x\", \"outputs\": [");
	for (i = 0; i < 150; i++)
		sprintf(big + strlen(big), "%s\"-%zu\"", i ? "," : "", i);
	strcat(big, "]}");
	snprintf(path, sizeof path, "%s/many.json", dir);
	write_file(path, big);
	free(big);

	CHECK_INT(step_load(&p, "p", dir), 0);
	CHECK_INT(p->n_errors, 106);
	CHECK_STR(p->errors[0], "deep.json:1:1001: JSON syntax error near '[[[[[[[[[[[[[[[[[[[[[[[[...'");
	CHECK_STR(p->errors[1], "fifo.json: not a regular file (definitions must be regular files)");
	CHECK_STR(p->errors[2], "huge.json: file too large (more than 4 MiB)");
	CHECK_STR(p->errors[3], "link.json: not a regular file (definitions must be regular files)");
	CHECK_STR(p->errors[4], "many.json:1:26: invalid output name \"-0\" " RULE);
	CHECK_STR(p->errors[104], "many.json: too many errors in this file: 50 more not shown");
	CHECK_STR(p->errors[105], "nul.json:1:8: file contains a NUL byte");
	CHECK_INT(p->n_steps, 5);
	step_free(p);
}

static const char *const valid[] = {
	"pipeline.json",
	"{\n  \"description\": \"demo\",\n  \"workdir\": \"/src/demo\",\n"
	"  \"params\": {\"lr\": 0.1, \"epochs\": 3, \"name\": \"x\"}\n}\n",
	"prep.json",
	"{\"run\": \"sh prep.sh\", \"inputs\": [\"file:/etc/passwd\"], "
	"\"outputs\": [\"clean\"], \"code\": [\"prep.sh\"]}",
	"train.json",
	"{\n"
	"  \"run\": \"python3 train.py in/clean out/model\",\n"
	"  \"inputs\": [\"clean\", \"other/features\", \"sha256:" HEX "\"],\n"
	"  \"outputs\": [\"model\", \"report.html\"],\n"
	"  \"params\": [\"lr\", \"epochs\"],\n"
	"  \"code\": [\"train.py\", \"lib/\"],\n"
	"  \"retries\": 2,\n"
	"  \"timeout\": 600,\n"
	"  \"description\": \"fit the model\"\n"
	"}\n",
	"eval.json",
	"{\"run\": \"eval\", \"inputs\": [\"model\", \"clean\"], \"outputs\": [\"score\"],"
	" \"params\": {\"lr\": 0.5, \"k\": [1, 2]}}",
	"prep.sh", "echo\n",
	"train.py", "print()\n",
	"lib", NULL,
	"lib/util.py", "\n",
	NULL,
};

TEST(test_valid_pipeline)
{
	struct pipeline_def *p = load("demo", valid);
	struct step_def *ev, *prep, *train;
	cJSON *v;

	CHECK_STR(errors(p), "");
	CHECK_INT(p->n_errors, 0);
	CHECK_STR(p->name, "demo");
	CHECK_STR(p->description, "demo");
	CHECK_STR(p->workdir, "/src/demo");
	CHECK_INT(cJSON_GetArraySize(p->params), 3);
	CHECK_INT(p->n_steps, 3);
	ev = &p->steps[0];
	prep = &p->steps[1];
	train = &p->steps[2];
	CHECK_STR(ev->name, "eval");
	CHECK_STR(prep->name, "prep");
	CHECK_STR(train->name, "train");
	CHECK_STR(train->file, "train.json");
	CHECK(p->order != NULL);
	CHECK_INT(p->order[0], 1);
	CHECK_INT(p->order[1], 2);
	CHECK_INT(p->order[2], 0);

	CHECK_STR(train->run, "python3 train.py in/clean out/model");
	CHECK_STR(train->description, "fit the model");
	CHECK_INT(train->retries, 2);
	CHECK(train->timeout == 600);
	CHECK_INT(train->n_inputs, 3);
	CHECK_INT(train->inputs[0].kind, STEP_IN_LOCAL);
	CHECK_STR(train->inputs[0].ref, "clean");
	CHECK_STR(train->inputs[0].as, "clean");
	CHECK_STR(train->inputs[0].artifact, "clean");
	CHECK_INT(train->inputs[0].producer, 1);
	CHECK_INT(train->inputs[1].kind, STEP_IN_PIPELINE);
	CHECK_STR(train->inputs[1].pipeline, "other");
	CHECK_STR(train->inputs[1].artifact, "features");
	CHECK_STR(train->inputs[1].as, "features");
	CHECK_INT(train->inputs[1].producer, -1);
	CHECK_INT(train->inputs[2].kind, STEP_IN_PINNED);
	CHECK_STR(train->inputs[2].hex, HEX);
	CHECK_STR(train->inputs[2].as, HEX);
	CHECK_INT(prep->inputs[0].kind, STEP_IN_FILE);
	CHECK_STR(prep->inputs[0].path, "/etc/passwd");
	CHECK_STR(prep->inputs[0].as, "passwd");
	CHECK_INT(prep->inputs[0].producer, -1);
	CHECK_INT(ev->inputs[0].producer, 2);
	CHECK_INT(ev->inputs[1].producer, 1);

	CHECK_INT(train->n_outputs, 2);
	CHECK_STR(train->outputs[1], "report.html");
	CHECK_INT(train->n_code, 2);
	CHECK_STR(train->code[1], "lib/");
	CHECK_INT(train->code_default, 0);
	CHECK_INT(ev->n_code, 0);
	CHECK_INT(ev->code_default, 1);
	CHECK_INT(ev->retries, 0);
	CHECK(ev->timeout == 0);

	/* params: listed names take the context's values, an object its own */
	CHECK_INT(cJSON_GetArraySize(train->params), 2);
	v = cJSON_GetObjectItemCaseSensitive(train->params, "lr");
	CHECK(cJSON_IsNumber(v) && v->valuedouble == 0.1);
	v = cJSON_GetObjectItemCaseSensitive(train->params, "epochs");
	CHECK(cJSON_IsNumber(v) && v->valueint == 3);
	CHECK(!cJSON_GetObjectItemCaseSensitive(train->params, "name"));
	CHECK_INT(cJSON_GetArraySize(ev->params), 2);
	v = cJSON_GetObjectItemCaseSensitive(ev->params, "lr");
	CHECK(cJSON_IsNumber(v) && v->valuedouble == 0.5);
	CHECK(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(ev->params, "k")));
	CHECK_INT(cJSON_GetArraySize(prep->params), 0);

	CHECK_INT(step_producer(p, "model"), 2);
	CHECK_INT(step_producer(p, "clean"), 1);
	CHECK_INT(step_producer(p, "nope"), -1);
	CHECK_INT(step_producer(NULL, "x"), -1);

	/* description is left out: editing prose does not rerun a step */
	CHECK_STR(train->canonical,
		"{\"code\":[\"train.py\",\"lib/\"],"
		"\"inputs\":[\"clean\",\"other/features\",\"sha256:" HEX "\"],"
		"\"outputs\":[\"model\",\"report.html\"],\"params\":[\"lr\",\"epochs\"],"
		"\"retries\":2,\"run\":\"python3 train.py in/clean out/model\","
		"\"timeout\":600}");
	CHECK_STR(ev->canonical,
		"{\"inputs\":[\"model\",\"clean\"],\"outputs\":[\"score\"],"
		"\"params\":{\"k\":[1,2],\"lr\":0.5},\"run\":\"eval\"}");
	step_free(p);
}

TEST(test_canonical_stable)
{
	const char *a[] = {
		"a.json", "{\"run\": \"x\", \"params\": {\"b\": 1, \"a\": {\"y\": 1, \"x\": 2}},"
		          " \"outputs\": [\"o\", \"p\"]}",
		NULL,
	};
	const char *b[] = {
		"a.json", "{\n\t\"outputs\" : [ \"o\",\n \"p\" ],\n\t\"params\": {\"a\": {\"x\": 2, "
		          "\"y\": 1}, \"b\": 1},\n\t\"run\":\"x\"\n}\n",
		NULL,
	};
	const char *c[] = {
		"a.json", "{\"run\": \"x\", \"params\": {\"b\": 1, \"a\": {\"y\": 1, \"x\": 2}},"
		          " \"outputs\": [\"p\", \"o\"]}",
		NULL,
	};
	struct pipeline_def *pa = load("p", a), *pb = load("p", b), *pc = load("p", c);

	CHECK_INT(pa->n_errors + pb->n_errors + pc->n_errors, 0);
	CHECK_STR(pa->steps[0].canonical, pb->steps[0].canonical);
	CHECK(strcmp(pa->steps[0].canonical, pc->steps[0].canonical) != 0);
	step_free(pc);
	step_free(pb);
	step_free(pa);
}

int main(void)
{
	pipedir_init("step");
	RUN(test_name_valid);
	RUN(test_syntax_error);
	RUN(test_syntax_error_excerpt);
	RUN(test_unknown_key);
	RUN(test_missing_run);
	RUN(test_wrong_types);
	RUN(test_bad_step_name);
	RUN(test_bad_output_name);
	RUN(test_input_not_produced);
	RUN(test_not_produced_quiet_when_unknown);
	RUN(test_duplicate_output);
	RUN(test_duplicate_as);
	RUN(test_cycle);
	RUN(test_cycle_named_from_smallest);
	RUN(test_self_cycle);
	RUN(test_param_list_unknown);
	RUN(test_code_paths);
	RUN(test_input_refs_invalid);
	RUN(test_pipeline_json);
	RUN(test_errors_sorted);
	RUN(test_no_steps);
	RUN(test_missing_dir);
	RUN(test_hostile_files);
	RUN(test_valid_pipeline);
	RUN(test_canonical_stable);
	pipedir_cleanup();
	return CHECK_DONE();
}
