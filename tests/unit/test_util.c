/*
 * test_util.c - unit tests for util_fmt_double, the one number formatter
 * every view uses: exact strings for the shortest form that reads back,
 * integers without exponent or ".0", the non-finite values, and that
 * JSON documents (view_json_numbers + cJSON) print numbers the same way.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "check.h"
#include "flowyfs/util.h"
#include "flowyfs/view.h"

static const char *fmt(double v)
{
	static char buf[UTIL_DOUBLE_LEN];
	return util_fmt_double(buf, v);
}

TEST(test_shortest)
{
	CHECK_STR(fmt(0.9775), "0.9775");
	CHECK_STR(fmt(0.1), "0.1");
	CHECK_STR(fmt(1.0 / 3), "0.3333333333333333");
	CHECK_STR(fmt(0.9779166666666667), "0.9779166666666667");
	CHECK_STR(fmt(2.0 / 3), "0.6666666666666666");
	CHECK_STR(fmt(0.1 + 0.2), "0.30000000000000004");
	CHECK_STR(fmt(5e-324), "5e-324");
	CHECK_STR(fmt(1.7976931348623157e308), "1.7976931348623157e+308");
	CHECK_STR(fmt(123456789012345680.0), "1.2345678901234568e+17");
}

TEST(test_integers)
{
	CHECK_STR(fmt(3.0), "3");
	CHECK_STR(fmt(0.0), "0");
	CHECK_STR(fmt(-0.0), "-0");
	CHECK_STR(fmt(-42.0), "-42");
	CHECK_STR(fmt(100.0), "100");
	CHECK_STR(fmt(1.5e10), "15000000000");
	CHECK_STR(fmt(1e16), "10000000000000000");
	CHECK_STR(fmt(1e17), "1e+17");
	CHECK_STR(fmt(1e21), "1e+21");
	CHECK_STR(fmt(9007199254740993.0), "9007199254740992");
}

TEST(test_non_finite)
{
	CHECK_STR(fmt(NAN), "nan");
	CHECK_STR(fmt(INFINITY), "inf");
	CHECK_STR(fmt(-INFINITY), "-inf");
}

TEST(test_round_trips)
{
	double vs[] = {0.9775, 1.0 / 7, 6.02214076e23, 1e-310, -2.5e-5, 4503599627370497.0};
	for (size_t i = 0; i < sizeof vs / sizeof *vs; i++) {
		const char *s = fmt(vs[i]);
		CHECK(strtod(s, NULL) == vs[i]);
		CHECK(strlen(s) < UTIL_DOUBLE_LEN);
	}
}

TEST(test_json_agrees)
{
	/* cJSON alone already prints 0.9775 the same way ... */
	cJSON *n = cJSON_CreateNumber(0.9775);
	char *t = cJSON_PrintUnformatted(n);
	CHECK_STR(t, fmt(0.9775));
	free(t);
	cJSON_Delete(n);
	/* ... but not 1/3; view_json_numbers makes every number agree. */
	cJSON *o = cJSON_CreateObject();
	cJSON *a = cJSON_AddArrayToObject(o, "acc");
	cJSON_AddItemToArray(a, cJSON_CreateNumber(0.9775));
	cJSON_AddItemToArray(a, cJSON_CreateNumber(1.0 / 3));
	cJSON_AddNumberToObject(o, "n", 3);
	cJSON_AddNumberToObject(o, "big", 1e21);
	cJSON_AddStringToObject(o, "s", "x");
	view_json_numbers(o);
	t = cJSON_PrintUnformatted(o);
	CHECK_STR(t, "{\"acc\":[0.9775,0.3333333333333333],\"n\":3,\"big\":1e+21,\"s\":\"x\"}");
	free(t);
	cJSON_Delete(o);
}

int main(void)
{
	RUN(test_shortest);
	RUN(test_integers);
	RUN(test_non_finite);
	RUN(test_round_trips);
	RUN(test_json_agrees);
	return CHECK_DONE();
}
