/*
 * test_def_keys.c - unit tests for the keys of the definition layer
 * (stepkey.c, pipekey.c, resources.c, diag.c's suggestions) and for
 * step_is_default_code(): each key accepted into its step_def or
 * pipeline_def field, each bad value refused with its exact message and
 * line:col, near misses of known keys named, and several problems listed
 * at once.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "pipedir.h"
#include "flowyfs/resources.h"
#include "flowyfs/step.h"

/* The step named name of p, or NULL. */
static const struct step_def *step_of(const struct pipeline_def *p, const char *name)
{
	for (size_t i = 0; i < p->n_steps; i++)
		if (!strcmp(p->steps[i].name, name))
			return &p->steps[i];
	return NULL;
}

TEST(test_new_step_keys_good)
{
	const char *files[] = {
		"pipeline.json", "{\"params\": {\"seeds\": [1, 2, 3], \"lr\": 0.1}}",
		"prep.json", "{\"run\": \"x\", \"outputs\": [\"shards\"]}",
		"train.json",
		"{\n"
		"  \"run\": \"train\",\n"
		"  \"inputs\": [\"shards\"],\n"
		"  \"outputs\": [\"model\", \"report\"],\n"
		"  \"retries\": 2, \"backoff\": 5,\n"
		"  \"when\": \"test -s in/shards\",\n"
		"  \"foreach\": \"shards\",\n"
		"  \"concurrency\": 4,\n"
		"  \"min_success\": 0.5,\n"
		"  \"register\": {\"model\": \"churn\"},\n"
		"  \"executor\": \"slurm\",\n"
		"  \"resources\": {\"cpus\": 4, \"mem\": \"8G\", \"gpus\": 1, \"time\": \"2h\", "
		"\"partition\": \"gpu\"},\n"
		"  \"description\": \"fit\"\n"
		"}\n",
		"sweep.json",
		"{\"run\": \"x\", \"params\": [\"seeds\", \"lr\"], \"foreach\": \"param:seeds\"}",
		NULL,
	};
	struct pipeline_def *p = load("p", files);
	const struct step_def *t = step_of(p, "train"), *sw = step_of(p, "sweep"),
	                      *pr = step_of(p, "prep");

	CHECK_STR(errors(p), "");
	CHECK(t && sw && pr);
	CHECK(t->backoff == 5);
	CHECK_INT(t->retries, 2);
	CHECK_STR(t->when, "test -s in/shards");
	CHECK_INT(t->foreach_kind, STEP_FOREACH_INPUT);
	CHECK_STR(t->foreach, "shards");
	CHECK_INT(t->foreach_input, 0);
	CHECK_INT(t->concurrency, 4);
	CHECK(t->min_success == 0.5);
	CHECK_INT(t->n_reg, 1);
	CHECK_STR(t->reg[0].output, "model");
	CHECK_STR(t->reg[0].model, "churn");
	CHECK_STR(t->executor, "slurm");
	CHECK(cJSON_IsObject(t->resources));
	CHECK_STR(cJSON_GetObjectItem(t->resources, "mem")->valuestring, "8G");
	/* Every key but description is in the cache key. */
	CHECK_STR(t->canonical,
		"{\"backoff\":5,\"concurrency\":4,\"executor\":\"slurm\",\"foreach\":\"shards\","
		"\"inputs\":[\"shards\"],\"min_success\":0.5,\"outputs\":[\"model\",\"report\"],"
		"\"register\":{\"model\":\"churn\"},\"resources\":{\"cpus\":4,\"gpus\":1,"
		"\"mem\":\"8G\",\"partition\":\"gpu\",\"time\":\"2h\"},\"retries\":2,"
		"\"run\":\"train\",\"when\":\"test -s in/shards\"}");
	CHECK_INT(sw->foreach_kind, STEP_FOREACH_PARAM);
	CHECK_STR(sw->foreach, "seeds");
	CHECK_INT(sw->foreach_input, -1);
	/* The defaults. */
	CHECK_INT(pr->foreach_kind, STEP_FOREACH_NONE);
	CHECK_INT(pr->foreach_input, -1);
	CHECK(pr->min_success == 1);
	CHECK_INT(pr->concurrency, 0);
	CHECK(pr->backoff == 0);
	CHECK(!pr->when && !pr->executor && !pr->resources && !pr->n_reg);
	CHECK_INT(p->autorun, 1);
	step_free(p);
}

TEST(test_new_step_keys_bad_types)
{
	const char *files[] = {
		"s.json",
		"{\n"
		"  \"run\": \"x\",\n"
		"  \"backoff\": -1,\n"
		"  \"when\": \"\",\n"
		"  \"foreach\": 3,\n"
		"  \"concurrency\": 0,\n"
		"  \"min_success\": 1.5,\n"
		"  \"register\": [\"model\"],\n"
		"  \"executor\": \"k8s\",\n"
		"  \"resources\": 4\n"
		"}\n",
		NULL,
	};

	CHECK_ERRORS(files,
		"s.json:3:3: \"backoff\" must be a number of seconds, 0 or more\n"
		"s.json:4:3: \"when\" must be a non-empty string (a shell command: exit 0 "
		"runs the step, 1 skips it)\n"
		"s.json:5:3: \"foreach\" must be the name of one of the step's inputs or "
		"\"param:<name>\"\n"
		"s.json:6:3: \"concurrency\" must be a whole number of at least 1\n"
		"s.json:7:3: \"min_success\" must be a number from 0 to 1 (the fraction of "
		"items that must succeed)\n"
		"s.json:8:3: \"register\" must be an object of \"<output>\": \"<model>\"\n"
		"s.json:9:3: \"executor\" must be \"local\" or \"slurm\"\n"
		"s.json:10:3: \"resources\" must be an object (keys: cpus, mem, gpus, time, "
		"partition)");
}

TEST(test_foreach_names)
{
	const char *files[] = {
		"pipeline.json", "{\"params\": {\"lr\": 0.1, \"seeds\": [1]}}",
		"a.json", "{\n  \"run\": \"x\",\n  \"inputs\": [\"file:/tmp\"],\n"
		          "  \"foreach\": \"data\"\n}\n",
		"b.json", "{\n  \"run\": \"x\",\n  \"params\": [\"lr\"],\n"
		          "  \"foreach\": \"param:lr\"\n}\n",
		"c.json", "{\n  \"run\": \"x\",\n  \"foreach\": \"param:seeds\"\n}\n",
		"d.json", "{\n  \"run\": \"x\",\n  \"foreach\": \"param:a-b\"\n}\n",
		"e.json", "{\n  \"run\": \"x\",\n  \"concurrency\": 2,\n  \"min_success\": 0\n}\n",
		"f.json", "{\n  \"run\": \"x\",\n  \"inputs\": [\"file:/tmp\"],\n"
		          "  \"foreach\": \"file:/tmp\"\n}\n",
		"g.json", "{\n  \"run\": \"x\",\n  \"params\": [\"nope\"],\n"
		          "  \"foreach\": \"param:nope\"\n}\n",
		NULL,
	};

	CHECK_ERRORS(files,
		"a.json:4:3: \"foreach\": \"data\" is not one of the step's inputs "
		"(write \"param:data\" for a param)\n"
		"b.json:4:3: \"foreach\": param \"lr\" is not a list\n"
		"c.json:3:3: \"foreach\": param \"seeds\" is not one of the step's params\n"
		"d.json:3:3: \"foreach\": invalid param name \"a-b\" (param names are "
		"[A-Za-z0-9_]+, at most 128 bytes)\n"
		"e.json:3:3: \"concurrency\" needs \"foreach\"\n"
		"e.json:4:3: \"min_success\" needs \"foreach\"\n"
		"g.json:3:14: param \"nope\" is not in pipeline.json params");
}

TEST(test_foreach_by_in_name)
{
	const char *files[] = {
		"s.json", "{\"run\": \"x\", \"inputs\": [\"file:/tmp/\"], \"foreach\": \"tmp\"}",
		NULL,
	};
	struct pipeline_def *p = load("p", files);

	CHECK_STR(errors(p), "");
	CHECK_INT(p->steps[0].foreach_input, 0);
	step_free(p);
}

TEST(test_register_rules)
{
	const char *files[] = {
		"s.json",
		"{\n"
		"  \"run\": \"x\",\n"
		"  \"outputs\": [\"model\"],\n"
		"  \"register\": {\n"
		"    \"model\": \"churn\",\n"
		"    \"report\": \"r\",\n"
		"    \"model\": \"again\",\n"
		"    \"x\": \"bad name\",\n"
		"    \"y\": 3\n"
		"  }\n"
		"}\n",
		NULL,
	};

	CHECK_ERRORS(files,
		"s.json:6:5: \"register\": \"report\" is not one of the step's outputs\n"
		"s.json:7:5: \"register\": output \"model\" is listed twice\n"
		"s.json:8:5: \"register\": invalid model name \"bad name\" (names are "
		"[A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128 bytes)\n"
		"s.json:8:5: \"register\": \"x\" is not one of the step's outputs\n"
		"s.json:9:5: \"register\": the model of output \"y\" must be a string\n"
		"s.json:9:5: \"register\": \"y\" is not one of the step's outputs");
}

TEST(test_resources_rules)
{
	const char *files[] = {
		"s.json",
		"{\n"
		"  \"run\": \"x\",\n"
		"  \"resources\": {\n"
		"    \"cpus\": 0,\n"
		"    \"mem\": \"8GB\",\n"
		"    \"gpus\": 1.5,\n"
		"    \"time\": \"2 hours\",\n"
		"    \"partition\": \"\",\n"
		"    \"cpu\": 2,\n"
		"    \"disk\": \"1G\",\n"
		"    \"cpus\": 2\n"
		"  }\n"
		"}\n",
		NULL,
	};

	CHECK_ERRORS(files,
		"s.json:4:5: \"cpus\" must be a whole number of at least 1\n"
		"s.json:5:5: \"mem\" must be a size such as \"8G\" or \"512M\" (a whole "
		"number and K, M, G or T)\n"
		"s.json:6:5: \"gpus\" must be a whole number of at least 0\n"
		"s.json:7:5: \"time\" must be a duration such as \"30m\", \"2h\", \"1d\" or "
		"\"1:30:00\"\n"
		"s.json:8:5: \"partition\" must be a non-empty string\n"
		"s.json:9:5: unknown key \"cpu\" (did you mean \"cpus\"?)\n"
		"s.json:10:5: unknown key \"disk\"\n"
		"s.json:11:5: duplicate key \"cpus\"");
}

TEST(test_resources_conversions)
{
	uint64_t b = 0;

	CHECK(resources_seconds("2h") == 7200);
	CHECK(resources_seconds("30m") == 1800);
	CHECK(resources_seconds("45s") == 45);
	CHECK(resources_seconds("1d") == 86400);
	CHECK(resources_seconds("1:30:00") == 5400);
	CHECK(resources_seconds("90:00") == 5400);
	CHECK(resources_seconds("1-02:00:00") == 93600);
	CHECK(resources_seconds("0s") < 0);
	CHECK(resources_seconds("1:60:00") < 0);
	CHECK(resources_seconds("2 h") < 0);
	CHECK(resources_seconds("h") < 0);
	CHECK(resources_seconds("") < 0);
	CHECK(resources_seconds("1-2") < 0);
	CHECK(resources_seconds("9999999999h") < 0);
	CHECK_INT(resources_bytes("8G", &b), 0);
	CHECK(b == 8ull << 30);
	CHECK_INT(resources_bytes("512m", &b), 0);
	CHECK(b == 512ull << 20);
	CHECK_INT(resources_bytes("1T", &b), 0);
	CHECK(b == 1ull << 40);
	CHECK_INT(resources_bytes("8", &b), -EINVAL);
	CHECK_INT(resources_bytes("8GB", &b), -EINVAL);
	CHECK_INT(resources_bytes("0G", &b), -EINVAL);
	CHECK_INT(resources_bytes("G", &b), -EINVAL);
	CHECK_INT(resources_bytes("1.5G", &b), -EINVAL);
}

TEST(test_pipeline_keys_good)
{
	const char *files[] = {
		"pipeline.json",
		"{\n"
		"  \"autorun\": false,\n"
		"  \"executor\": \"local\",\n"
		"  \"resources\": {\"cpus\": 2, \"time\": \"1:30:00\"},\n"
		"  \"slurm\": {\"partition\": \"gpu\", \"account\": \"ml\", "
		"\"args\": [\"--qos=high\"]},\n"
		"  \"alerts\": [{\"name\": \"slow\", \"duration_above\": 7200}]\n"
		"}\n",
		"s.json", "{\"run\": \"x\"}",
		NULL,
	};
	struct pipeline_def *p = load("p", files);

	CHECK_STR(errors(p), "");
	CHECK_INT(p->autorun, 0);
	CHECK_STR(p->executor, "local");
	CHECK(cJSON_IsObject(p->resources));
	CHECK_STR(cJSON_GetObjectItem(p->slurm, "account")->valuestring, "ml");
	CHECK_INT(p->n_alerts, 1);
	CHECK_STR(p->alerts[0].name, "slow");
	CHECK(p->alerts[0].has_duration && p->alerts[0].duration_above == 7200);
	CHECK(!p->alerts[0].metric && !p->alerts[0].step);
	step_free(p);
}

TEST(test_pipeline_keys_bad)
{
	const char *files[] = {
		"pipeline.json",
		"{\n"
		"  \"autorun\": \"yes\",\n"
		"  \"executor\": 1,\n"
		"  \"resources\": {\"gpus\": -1},\n"
		"  \"slurm\": {\"partition\": 1, \"acount\": \"x\", \"args\": [\"-x\", 2]},\n"
		"  \"alerts\": [{\"name\": \"a\"}, 3],\n"
		"  \"Params\": {}\n"
		"}\n",
		"s.json", "{\"run\": \"x\"}",
		"t.json", "{\"run\": \"x\", \"slurm\": {}}",
		NULL,
	};

	CHECK_ERRORS(files,
		"pipeline.json:2:3: \"autorun\" must be true or false\n"
		"pipeline.json:3:3: \"executor\" must be \"local\" or \"slurm\"\n"
		"pipeline.json:4:17: \"gpus\" must be a whole number of at least 0\n"
		"pipeline.json:5:13: \"partition\" must be a non-empty string\n"
		"pipeline.json:5:29: unknown key \"acount\" (did you mean \"account\"?)\n"
		"pipeline.json:5:59: \"args\" must be an array of strings (extra sbatch "
		"arguments)\n"
		"pipeline.json:6:14: an alert needs \"metric\" with \"above\" or "
		"\"below\", or \"duration_above\"\n"
		"pipeline.json:6:29: \"alerts\" must be an array of objects\n"
		"pipeline.json:7:3: unknown key \"Params\" (did you mean \"params\"?)\n"
		"t.json:1:14: unknown key \"slurm\"");
	{
		const char *more[] = {
			"pipeline.json", "{\"slurm\": [], \"alerts\": {}}",
			"s.json", "{\"run\": \"x\"}",
			NULL,
		};
		CHECK_ERRORS(more,
			"pipeline.json:1:2: \"slurm\" must be an object (keys: partition, "
			"account, args)\n"
			"pipeline.json:1:15: \"alerts\" must be an array of objects");
	}
}

TEST(test_alerts_good)
{
	const char *files[] = {
		"pipeline.json",
		"{\"alerts\": [{\"name\": \"low\", \"metric\": \"acc\", \"below\": 0.9, "
		"\"step\": \"train\"},\n"
		"  {\"name\": \"band\", \"metric\": \"loss\", \"above\": 2, \"below\": -1},\n"
		"  {\"name\": \"slow\", \"duration_above\": 0.5, \"step\": \"train\"}]}",
		"train.json", "{\"run\": \"x\"}",
		NULL,
	};
	struct pipeline_def *p = load("p", files);

	CHECK_STR(errors(p), "");
	CHECK_INT(p->n_alerts, 3);
	CHECK_STR(p->alerts[0].metric, "acc");
	CHECK_STR(p->alerts[0].step, "train");
	CHECK(p->alerts[0].has_below && !p->alerts[0].has_above);
	CHECK(p->alerts[0].below == 0.9);
	CHECK(p->alerts[1].has_above && p->alerts[1].has_below);
	CHECK(p->alerts[1].above == 2 && p->alerts[1].below == -1);
	CHECK_STR(p->alerts[2].name, "slow");
	CHECK(p->alerts[2].duration_above == 0.5);
	step_free(p);
}

TEST(test_alerts_bad)
{
	const char *files[] = {
		"pipeline.json",
		"{\"alerts\": [\n"
		" {\"metric\": \"acc\", \"below\": 1},\n"
		" {\"name\": \"a\", \"metric\": \"acc\"},\n"
		" {\"name\": \"b\", \"above\": 1},\n"
		" {\"name\": \"c\", \"metric\": \"acc\", \"above\": \"1\"},\n"
		" {\"name\": \"d\", \"duration_above\": -3},\n"
		" {\"name\": \"e\", \"metric\": \"x\", \"above\": 1, \"duration_above\": 3},\n"
		" {\"name\": \"f\", \"metric\": \"x\", \"above\": 1, \"step\": \"nope\"},\n"
		" {\"name\": \"g\", \"metric\": \"x\", \"abve\": 1},\n"
		" {\"name\": \"../h\", \"duration_above\": 1},\n"
		" {\"name\": \"i\", \"duration_above\": 1},\n"
		" {\"name\": \"i\", \"duration_above\": 2}]}",
		"s.json", "{\"run\": \"x\"}",
		NULL,
	};

	CHECK_ERRORS(files,
		"pipeline.json:2:2: an alert needs a \"name\"\n"
		"pipeline.json:3:16: alert on a metric needs \"above\" or \"below\"\n"
		"pipeline.json:4:16: \"above\" needs a \"metric\"\n"
		"pipeline.json:5:33: \"above\" must be a number\n"
		"pipeline.json:6:16: \"duration_above\" must be a positive number of seconds\n"
		"pipeline.json:7:43: \"duration_above\" goes in an alert of its own, without "
		"\"metric\"\n"
		"pipeline.json:8:51: alert step \"nope\": no such step in this pipeline\n"
		"pipeline.json:9:16: alert on a metric needs \"above\" or \"below\"\n"
		"pipeline.json:9:31: unknown key \"abve\" (did you mean \"above\"?)\n"
		"pipeline.json:10:3: \"name\" must be a name (names are "
		"[A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128 bytes)\n"
		"pipeline.json:12:3: alert \"i\" is defined twice");
}

TEST(test_near_miss)
{
	const char *files[] = {
		"train.json",
		"{\n"
		"  \"run\": \"x\",\n"
		"  \"inputs\": [],\n"
		"  \"ouputs\": [\"model\"],\n"
		"  \"RETRIES\": 1,\n"
		"  \"time_out\": 3,\n"
		"  \"forech\": \"x\",\n"
		"  \"colour\": 1,\n"
		"  \"min-success\": 1\n"
		"}\n",
		NULL,
	};

	CHECK_ERRORS(files,
		"train.json:4:3: unknown key \"ouputs\" (did you mean \"outputs\"?)\n"
		"train.json:5:3: unknown key \"RETRIES\" (did you mean \"retries\"?)\n"
		"train.json:6:3: unknown key \"time_out\" (did you mean \"timeout\"?)\n"
		"train.json:7:3: unknown key \"forech\" (did you mean \"foreach\"?)\n"
		"train.json:8:3: unknown key \"colour\"\n"
		"train.json:9:3: unknown key \"min-success\" (did you mean \"min_success\"?)");
}

TEST(test_every_problem_listed)
{
	/* A cycle stays visible next to an unresolved input and a duplicate
	 * output; a missing file: input is a validation error. */
	const char *files[] = {
		"a.json", "{\"run\": \"x\", \"inputs\": [\"b_out\"], \"outputs\": [\"a_out\"]}",
		"b.json", "{\"run\": \"x\", \"inputs\": [\"a_out\"], \"outputs\": [\"b_out\"]}",
		"c.json", "{\"run\": \"x\", \"inputs\": [\"nobody\"], \"outputs\": [\"a_out\"]}",
		"d.json", "{\"run\": \"x\", \"inputs\": [\"file:/nonexistent/flowyfs/x\"]}",
		NULL,
	};

	CHECK_ERRORS(files,
		"a.json: cycle: a -> b -> a\n"
		"c.json:1:25: input \"nobody\" is not produced by any step\n"
		"c.json:1:48: output \"a_out\" is produced by both \"a\" and \"c\"\n"
		"d.json:1:25: input \"file:/nonexistent/flowyfs/x\": no such file or "
		"directory");
}

TEST(test_default_code)
{
	static const char *const yes[] = {
		"train.py", "lib/util.py", "lib/conf.json", "Makefile", "data.csv",
		"requirements.txt", "notes.txt", "lib/sub/x.sh", "x.json.bak", "tmpfile",
		"a#b", "49130", "my4913",
	};
	static const char *const no[] = {
		"train.json", "pipeline.json", ".hidden", ".greet.json.swp", ".x.swo",
		".x.swx", "train.py~", "#train.py#", ".#train.py", "4913", "lib/4913",
		"x.tmp", "x.swp", "NOTES.md", "lib/README.md", "README", "readme.txt",
		"README.rst", "doc.rst", "doc.markdown", "LICENSE", "LICENSE-MIT",
		"LICENCE.txt", "COPYING", ".git/config", "lib/.cache/x.py", "", "/abs",
		"lib/", "X.MD",
	};
	size_t i;

	for (i = 0; i < sizeof yes / sizeof *yes; i++)
		if (!step_is_default_code(yes[i])) {
			fprintf(stderr, "  not code: %s\n", yes[i]);
			CHECK(0);
		}
	for (i = 0; i < sizeof no / sizeof *no; i++)
		if (step_is_default_code(no[i])) {
			fprintf(stderr, "  code: %s\n", no[i]);
			CHECK(0);
		}
	CHECK(!step_is_default_code(NULL));
}

int main(void)
{
	pipedir_init("def-keys");
	RUN(test_new_step_keys_good);
	RUN(test_new_step_keys_bad_types);
	RUN(test_foreach_names);
	RUN(test_foreach_by_in_name);
	RUN(test_register_rules);
	RUN(test_resources_rules);
	RUN(test_resources_conversions);
	RUN(test_pipeline_keys_good);
	RUN(test_pipeline_keys_bad);
	RUN(test_alerts_good);
	RUN(test_alerts_bad);
	RUN(test_near_miss);
	RUN(test_every_problem_listed);
	RUN(test_default_code);
	pipedir_cleanup();
	return CHECK_DONE();
}
