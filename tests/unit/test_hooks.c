/* test_hooks.c - which hook files run for which event, the event's JSON
 * and the hooks.log line. */
#include <stdlib.h>

#include "check.h"
#include "flowyfs/hooks.h"

TEST(match_names)
{
	CHECK(hooks_match("run-failed", "run-failed"));
	CHECK(hooks_match("run-failed.sh", "run-failed"));
	CHECK(hooks_match("run-failed.notify.py", "run-failed"));
	CHECK(hooks_match("any.log", "step-started"));
	CHECK(hooks_match("any.log", "alert"));
	CHECK(!hooks_match("any", "run-failed"));       /* any needs a suffix */
	CHECK(!hooks_match("any.", "run-failed"));
	CHECK(!hooks_match("run-failed.", "run-failed"));
	CHECK(!hooks_match("run-failedx", "run-failed"));
	CHECK(!hooks_match("run", "run-failed"));
	CHECK(!hooks_match("run-failed", "run-failed-x"));
	CHECK(!hooks_match("step-failed.sh", "run-failed"));
	CHECK(!hooks_match(".log", "run-failed"));
	CHECK(!hooks_match(".any.log", "run-failed"));
	CHECK(!hooks_match("run-failed.sh~", "run-failed"));
	CHECK(!hooks_match("any.sh~", "run-failed"));
	CHECK(!hooks_match("", "run-failed"));
}

TEST(untaken_kinds)
{
	const uint32_t every = ((1u << EV_KIND_END) - 1) & ~1u;
	CHECK_INT(hooks_untaken(NULL, 0), every);
	char *one[] = {"step-succeeded.sh", ".run-failed", "run-failed.sh~"};
	CHECK_INT(hooks_untaken(one, 3), every & ~(1u << EV_STEP_SUCCEEDED));
	char *two[] = {"run-failed", "alert.notify"};
	CHECK_INT(hooks_untaken(two, 2),
	          every & ~(1u << EV_RUN_FAILED) & ~(1u << EV_ALERT));
	char *any[] = {"zzz", "any.log"};
	CHECK_INT(hooks_untaken(any, 2), 0);
}

TEST(a_listing_holds_only_for_the_same_directory_a_second_after_its_change)
{
	struct stat listed = {.st_dev = 3, .st_ino = 7};
	listed.st_mtim.tv_sec = listed.st_ctim.tv_sec = 1000;
	struct stat now = listed;
	CHECK(hooks_listing_holds(&listed, 1001.5, &now));
	CHECK(!hooks_listing_holds(&listed, 1000.9, &now)); /* too soon after */
	now.st_mtim.tv_nsec = 1;                            /* changed since */
	CHECK(!hooks_listing_holds(&listed, 1001.5, &now));
	now = listed;
	now.st_ctim.tv_sec = 1001;                          /* renamed into, say */
	CHECK(!hooks_listing_holds(&listed, 1005, &now));
	now = listed;
	now.st_ino = 8;                                     /* another directory */
	CHECK(!hooks_listing_holds(&listed, 1005, &now));
}

TEST(json_of_a_step_event)
{
	struct event ev = {.kind = EV_STEP_SUCCEEDED, .time = 86400.25, .pipeline = "p",
	                   .run = 7, .step = "train", .status = "succeeded"};
	cJSON *outs = cJSON_CreateObject(), *m = cJSON_CreateObject();
	cJSON_AddStringToObject(outs, "model", "sha256:ab");
	cJSON_AddNumberToObject(m, "acc", 0.1);
	char *j = hooks_json(&ev, "{\"lr\": 0.3}", outs, m);
	CHECK_STR(j, "{\"event\":\"step-succeeded\",\"time\":\"1970-01-02T00:00:00.250Z\","
	          "\"pipeline\":\"p\",\"run\":7,\"step\":\"train\",\"status\":\"succeeded\","
	          "\"error\":null,\"params\":{\"lr\":0.3},\"outputs\":{\"model\":\"sha256:ab\"},"
	          "\"metrics\":{\"acc\":0.1}}\n");
	free(j);
	cJSON_Delete(outs);
	cJSON_Delete(m);
}

TEST(json_of_a_run_event_without_extras)
{
	struct event ev = {.kind = EV_RUN_FAILED, .time = 0.5, .pipeline = "p", .run = 2,
	                   .status = "failed", .error = "s: exit \"1\""};
	char *j = hooks_json(&ev, NULL, NULL, NULL);
	CHECK_STR(j, "{\"event\":\"run-failed\",\"time\":\"1970-01-01T00:00:00.500Z\","
	          "\"pipeline\":\"p\",\"run\":2,\"step\":null,\"status\":\"failed\","
	          "\"error\":\"s: exit \\\"1\\\"\",\"params\":{},\"outputs\":{},\"metrics\":{}}\n");
	free(j);
}

TEST(json_of_artifact_and_alert)
{
	struct event ev = {.kind = EV_ARTIFACT_PUBLISHED, .pipeline = "p", .run = 1,
	                   .step = "s", .name = "a", .hash = "cd"};
	char *j = hooks_json(&ev, "not json", NULL, NULL);
	CHECK_CONTAINS(j, "\"params\":{}");
	CHECK_CONTAINS(j, "\"output\":\"a\",\"hash\":\"sha256:cd\"}\n");
	free(j);
	struct event al = {.kind = EV_ALERT, .pipeline = "p", .run = 1, .step = "s",
	                   .alert = "low", .metric = "acc", .value = 0.8, .threshold = 0.9};
	j = hooks_json(&al, NULL, NULL, NULL);
	CHECK_CONTAINS(j, "\"event\":\"alert\"");
	CHECK_CONTAINS(j, "\"alert\":\"low\",\"metric\":\"acc\",\"value\":0.8,"
	               "\"threshold\":0.9}\n");
	free(j);
}

TEST(log_line)
{
	char *l = hooks_log_line(60.5, "run-failed", "any.log", "timeout", 30.0004);
	CHECK_STR(l, "1970-01-01T00:01:00.500Z\trun-failed\tany.log\ttimeout\t30.000\n");
	free(l);
}

TEST(event_copy_owns_its_strings)
{
	char step[] = "s";
	struct event ev = {.kind = EV_STEP_FAILED, .pipeline = "p", .step = step,
	                   .error = "boom"};
	struct event *c = events_copy(&ev);
	step[0] = 'x';
	CHECK_STR(c->step, "s");
	CHECK_STR(c->error, "boom");
	CHECK(c->status == NULL);
	events_free_copy(c);
	events_free_copy(NULL);
	CHECK(events_is_run_end(EV_RUN_INTERRUPTED));
	CHECK(!events_is_run_end(EV_STEP_FAILED));
	CHECK_STR(events_name(EV_ALERT), "alert");
}

int main(void)
{
	RUN(match_names);
	RUN(untaken_kinds);
	RUN(a_listing_holds_only_for_the_same_directory_a_second_after_its_change);
	RUN(json_of_a_step_event);
	RUN(json_of_a_run_event_without_extras);
	RUN(json_of_artifact_and_alert);
	RUN(log_line);
	RUN(event_copy_owns_its_strings);
	return CHECK_DONE();
}
