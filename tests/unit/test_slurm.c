/*
 * test_slurm.c - the Slurm executor's pure parts: the batch script it
 * generates from resources and pipeline.json's slurm, how Slurm states
 * map to step results, squeue output parsing and the poll backoff.
 */
#include <stdlib.h>
#include <cJSON.h>

#include "check.h"
#include "flowyfs/exec_slurm.h"

static char *script(const char *res, const char *pres, const char *slurm, double timeout,
                    int *rc, char **err)
{
	cJSON *r = res ? cJSON_Parse(res) : NULL, *p = pres ? cJSON_Parse(pres) : NULL;
	cJSON *s = slurm ? cJSON_Parse(slurm) : NULL;
	char *env[] = {"FLOWY_STEP=train", "FLOWY_PARAM_msg=it's", NULL};
	struct slurm_script sc = {
		.name = "flowy-p-train", .dir = "/shared/h/runs/1/train",
		.cmd = "python3 train.py 'a b'", .env = env, .resources = r,
		.presources = p, .slurm = s, .timeout = timeout,
	};
	struct strbuf sb = {0};
	*err = NULL;
	*rc = exec_slurm_script(&sc, &sb, err);
	cJSON_Delete(r);
	cJSON_Delete(p);
	cJSON_Delete(s);
	return sb.buf ? strbuf_detach(&sb, NULL) : xstrdup("");
}

TEST(script_resources)
{
	int rc;
	char *err, *t = script("{\"cpus\": 4, \"mem\": \"8G\", \"gpus\": 1, \"time\": \"2h\"}",
	                       "{\"partition\": \"cpu\", \"mem\": \"1G\"}",
	                       "{\"partition\": \"ignored\", \"account\": \"ml\", "
	                       "\"args\": [\"--qos=high\", \"--exclusive\"]}", 0, &rc, &err);
	CHECK_INT(rc, 0);
	CHECK(!strncmp(t, "#!/bin/sh\n", 10));
	CHECK_CONTAINS(t, "#SBATCH --job-name=flowy-p-train\n");
	CHECK_CONTAINS(t, "#SBATCH --output=/shared/h/runs/1/train/.flowy/slurm.out\n");
	CHECK_CONTAINS(t, "#SBATCH --chdir=/shared/h/runs/1/train\n");
	CHECK_CONTAINS(t, "#SBATCH --cpus-per-task=4\n");
	CHECK_CONTAINS(t, "#SBATCH --mem=8192M\n");    /* the step's, not the pipeline's */
	CHECK_CONTAINS(t, "#SBATCH --gpus=1\n");
	CHECK_CONTAINS(t, "#SBATCH --time=120\n");
	CHECK_CONTAINS(t, "#SBATCH --partition=cpu\n"); /* resources win over slurm */
	CHECK_CONTAINS(t, "#SBATCH --account=ml\n");
	CHECK_CONTAINS(t, "#SBATCH --qos=high\n#SBATCH --exclusive\n");
	CHECK_CONTAINS(t, "export FLOWY_STEP='train'\n");
	CHECK_CONTAINS(t, "export FLOWY_PARAM_msg='it'\\''s'\n");
	CHECK_CONTAINS(t, "/bin/sh -c 'python3 train.py '\\''a b'\\''' </dev/null");
	/* The exit code, atomically, as the last act. */
	CHECK_CONTAINS(t, "> \"$d/.flowy/exit.tmp\" &&\n  mv -f \"$d/.flowy/exit.tmp\" "
	               "\"$d/.flowy/exit\"\nexit \"$code\"\n");
	CHECK(!strstr(t, "#SBATCH --partition=ignored"));
	free(t);
}

TEST(script_defaults)
{
	int rc;
	char *err, *t = script(NULL, NULL, "{\"partition\": \"gpu\"}", 90, &rc, &err);
	CHECK_INT(rc, 0);
	CHECK(!strstr(t, "--cpus-per-task"));
	CHECK(!strstr(t, "--mem"));
	CHECK(!strstr(t, "--gpus"));
	CHECK_CONTAINS(t, "#SBATCH --time=3\n"); /* 90 s timeout + a minute, rounded up */
	CHECK_CONTAINS(t, "#SBATCH --partition=gpu\n");
	free(t);
	t = script("{\"gpus\": 0, \"time\": \"30s\"}", NULL, NULL, 0, &rc, &err);
	CHECK_INT(rc, 0);
	CHECK(!strstr(t, "--gpus"));
	CHECK_CONTAINS(t, "#SBATCH --time=1\n");
	free(t);
}

TEST(script_refuses)
{
	int rc;
	char *err, *t = script(NULL, NULL, "{\"args\": [\"--a\\n#SBATCH --b\"]}", 0, &rc, &err);
	CHECK_INT(rc, -EINVAL);
	CHECK_CONTAINS(err, "slurm.args");
	free(err);
	free(t);
	t = script("{\"mem\": \"lots\"}", NULL, NULL, 0, &rc, &err);
	CHECK_INT(rc, -EINVAL);
	CHECK_CONTAINS(err, "resources.mem");
	free(err);
	free(t);
}

TEST(states)
{
	static const char *const waiting[] = {"PENDING", "CONFIGURING", "SUSPENDED", "REQUEUED"};
	static const char *const running[] = {"RUNNING", "COMPLETING", "SOMETHING_NEW"};
	static const char *const ended[] = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT",
	                                   "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED",
	                                   "BOOT_FAIL", "DEADLINE"};
	for (size_t k = 0; k < 4; k++)
		CHECK_INT(exec_slurm_phase(waiting[k]), SLURM_WAITING);
	for (size_t k = 0; k < 3; k++)
		CHECK_INT(exec_slurm_phase(running[k]), SLURM_RUNNING);
	for (size_t k = 0; k < 9; k++)
		CHECK_INT(exec_slurm_phase(ended[k]), SLURM_ENDED);
	CHECK(!exec_slurm_explain("COMPLETED"));
	CHECK(!exec_slurm_explain("FAILED"));
	CHECK(!exec_slurm_explain("RUNNING"));
	CHECK_CONTAINS(exec_slurm_explain("TIMEOUT"), "time limit");
	CHECK_CONTAINS(exec_slurm_explain("OUT_OF_MEMORY"), "resources.mem");
	CHECK_CONTAINS(exec_slurm_explain("NODE_FAIL"), "node");
	CHECK_CONTAINS(exec_slurm_explain("PREEMPTED"), "preempted");
	CHECK_CONTAINS(exec_slurm_explain("CANCELLED"), "cancelled");
	CHECK_INT(exec_slurm_code("TIMEOUT"), 143);
	CHECK_INT(exec_slurm_code("CANCELLED"), 143);
	CHECK_INT(exec_slurm_code("PREEMPTED"), 143);
	CHECK_INT(exec_slurm_code("OUT_OF_MEMORY"), 137);
	CHECK_INT(exec_slurm_code("NODE_FAIL"), 1);
	CHECK_INT(exec_slurm_code(""), 1);
}

TEST(parse_squeue)
{
	struct slurm_row *rows = NULL;
	size_t n = exec_slurm_parse("12|RUNNING|None\n"
	                            "13_4|PENDING|JobArrayTaskLimit\n"
	                            "garbage line\n"
	                            "|RUNNING|x\n"
	                            "14|CANCELLED by 0|None\n"
	                            "15|COMPLETED", &rows);
	CHECK_INT(n, 4);
	CHECK_STR(rows[0].id, "12");
	CHECK_STR(rows[0].state, "RUNNING");
	CHECK_STR(rows[0].reason, "None");
	CHECK_STR(rows[1].id, "13_4");
	CHECK_STR(rows[1].reason, "JobArrayTaskLimit");
	CHECK_STR(rows[2].state, "CANCELLED");
	CHECK_STR(rows[3].id, "15");
	CHECK_STR(rows[3].state, "COMPLETED");
	CHECK_STR(rows[3].reason, "");
	free(rows);
	CHECK_INT(exec_slurm_parse("", &rows), 0);
	free(rows);
}

TEST(backoff)
{
	double i = 2;
	i = exec_slurm_backoff(i, 0, 2, 30);
	CHECK(i == 4);
	for (int k = 0; k < 10; k++)
		i = exec_slurm_backoff(i, 0, 2, 30);
	CHECK(i == 30);
	CHECK(exec_slurm_backoff(i, 1, 2, 30) == 2);
	/* With N jobs at the maximum interval: 2 calls a minute, whatever N. */
	CHECK(60 / exec_slurm_backoff(30, 0, 2, 30) == 2);
}

int main(void)
{
	RUN(script_resources);
	RUN(script_defaults);
	RUN(script_refuses);
	RUN(states);
	RUN(parse_squeue);
	RUN(backoff);
	return CHECK_DONE();
}
