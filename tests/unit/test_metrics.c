/* test_metrics.c - parsing metric lines and tailing a growing file. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "flowyfs/metrics.h"
#include "flowyfs/util.h"

static char dir[] = "/tmp/flowyfs-test-metrics-XXXXXX";

static void free_parsed(char **names, double *values, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(values);
}

TEST(parse_good_and_bad_lines)
{
	char **names;
	double *values;
	size_t n;
	const char *why = NULL;
	CHECK_INT(metrics_parse_line("{\"loss\": 0.5, \"acc\": 1}", &names, &values, &n, &why), 0);
	CHECK_INT(n, 2);
	CHECK_STR(names[0], "loss");
	CHECK(values[0] == 0.5);
	CHECK_STR(names[1], "acc");
	free_parsed(names, values, n);
	CHECK_INT(metrics_parse_line("{\"loss\": \"x\"}", &names, &values, &n, &why), -EINVAL);
	CHECK_STR(why, "a value is not a number");
	CHECK_INT(metrics_parse_line("[1, 2]", &names, &values, &n, &why), -EINVAL);
	CHECK_STR(why, "not a JSON object");
	CHECK_INT(metrics_parse_line("{loss: 1", &names, &values, &n, &why), -EINVAL);
	CHECK_STR(why, "not valid JSON");
	CHECK_INT(metrics_parse_line("{\"../x\": 1}", &names, &values, &n, &why), -EINVAL);
	CHECK_STR(why, "a metric name is not a valid name");
	CHECK_INT(metrics_parse_line("{}", &names, &values, &n, &why), -EINVAL);
}

TEST(tail_ingests_complete_lines_and_counts_bad_ones)
{
	char *dbp = xasprintf("%s/m.db", dir), *mp = xasprintf("%s/m.metrics", dir);
	char *err = NULL;
	db *d = NULL;
	CHECK_INT(db_open(&d, dbp, &err), 0);
	FILE *fp = fopen(mp, "w");
	fputs("{\"loss\": 3}\n{\"loss\": 2}\nnot json\n{\"loss\": 1", fp);
	fflush(fp);
	struct metrics_tail t;
	metrics_tail_init(&t, open(mp, O_RDONLY | O_CLOEXEC), 7, "train");
	/* What the step does to the path afterwards changes nothing read. */
	char *other = xasprintf("%s/m.other", dir);
	CHECK_INT(rename(mp, other), 0);
	CHECK_INT(symlink("/etc/passwd", mp), 0);
	CHECK_INT(metrics_tail_poll(&t, d, 0), 2);   /* the last line is unfinished */
	CHECK_INT(t.bad, 1);
	CHECK_STR(t.first_bad, "line 3: not valid JSON");
	fputs("}\n{\"acc\": 0.9}\n", fp);
	fclose(fp);
	CHECK_INT(metrics_tail_poll(&t, d, 1), 2);
	db_lock(d);
	CHECK_INT(db_int(d, -1, "SELECT count(*) FROM metrics WHERE run_id=7 AND step='train'", ""), 4);
	CHECK_INT(db_int(d, -1, "SELECT value FROM metrics WHERE name='loss' AND idx=2", ""), 1);
	CHECK_INT(db_int(d, -1, "SELECT idx FROM metrics WHERE name='acc'", ""), 0);
	db_unlock(d);
	metrics_tail_free(&t);
	db_close(d);
	unlink(mp);
	free(other);
	free(mp);
	free(dbp);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	RUN(parse_good_and_bad_lines);
	RUN(tail_ingests_complete_lines_and_counts_bad_ones);
	util_rm_rf(dir);
	return CHECK_DONE();
}
