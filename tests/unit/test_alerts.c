/* test_alerts.c - when an alert fires: metric bounds, the step filter,
 * durations of runs and steps, and the runs/<id>/alerts line. */
#include <stdlib.h>

#include "check.h"
#include "flowyfs/alerts.h"

TEST(metric_bounds)
{
	struct alert_def below = {.name = "low", .metric = "acc", .below = 0.9, .has_below = 1};
	struct alert_def band = {.name = "band", .metric = "loss", .above = 2, .has_above = 1,
	                         .below = -1, .has_below = 1};
	double th = 0;
	CHECK(alerts_metric_fires(&below, "train", "acc", 0.5, &th));
	CHECK(th == 0.9);
	CHECK(!alerts_metric_fires(&below, "train", "acc", 0.9, &th)); /* not below */
	CHECK(!alerts_metric_fires(&below, "train", "acc", 0.95, &th));
	CHECK(!alerts_metric_fires(&below, "train", "loss", 0.1, &th)); /* other metric */
	CHECK(alerts_metric_fires(&band, "s", "loss", 2.5, &th));
	CHECK(th == 2);
	CHECK(alerts_metric_fires(&band, "s", "loss", -3, &th));
	CHECK(th == -1);
	CHECK(!alerts_metric_fires(&band, "s", "loss", 2, &th));
	CHECK(!alerts_metric_fires(&band, "s", "loss", 0, &th));
}

TEST(metric_of_one_step)
{
	struct alert_def a = {.name = "x", .metric = "acc", .step = "eval", .above = 1,
	                      .has_above = 1};
	double th;
	CHECK(alerts_metric_fires(&a, "eval", "acc", 2, &th));
	CHECK(!alerts_metric_fires(&a, "train", "acc", 2, &th));
}

TEST(durations)
{
	struct alert_def run = {.name = "slow", .duration_above = 10, .has_duration = 1};
	struct alert_def step = {.name = "slowstep", .step = "train", .duration_above = 10,
	                         .has_duration = 1};
	struct alert_def metric = {.name = "m", .metric = "acc", .above = 0, .has_above = 1};
	double th;
	CHECK(alerts_duration_fires(&run, NULL, 10.5));
	CHECK(!alerts_duration_fires(&run, NULL, 10));
	CHECK(!alerts_duration_fires(&run, "train", 50)); /* a step's time is not the run's */
	CHECK(alerts_duration_fires(&step, "train", 11));
	CHECK(!alerts_duration_fires(&step, "eval", 11));
	CHECK(!alerts_duration_fires(&step, NULL, 11));
	CHECK(!alerts_duration_fires(&metric, NULL, 1e9));
	CHECK(!alerts_metric_fires(&run, "train", "duration", 1e9, &th));
}

TEST(line)
{
	char *l = alerts_line(3600.5, "low", "acc", 0.1 + 0.2, 0.9);
	CHECK_STR(l, "1970-01-01T01:00:00.500Z\tlow\tacc\t0.30000000000000004\t0.9\n");
	free(l);
	l = alerts_line(0, "slow", "duration", 7200.25, 7200);
	CHECK_STR(l, "1970-01-01T00:00:00.000Z\tslow\tduration\t7200.25\t7200\n");
	free(l);
}

int main(void)
{
	RUN(metric_bounds);
	RUN(metric_of_one_step);
	RUN(durations);
	RUN(line);
	return CHECK_DONE();
}
