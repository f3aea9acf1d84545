/*
 * check.h - the unit-test harness: a handful of assertion macros and a
 * runner that prints the plain closing line "N passed, N failed".
 * Each test file defines TEST(name) functions and lists them in main()
 * with RUN(name). A failed CHECK records the file and line and ends the
 * current test; the process exits non-zero when any test failed.
 */
#ifndef FLOWYFS_CHECK_H
#define FLOWYFS_CHECK_H

#include <stdio.h>
#include <string.h>
#include <errno.h>

static int check_passed, check_failed, check_cur_failed;

#define TEST(name) static void name(void)

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
	check_cur_failed = 1; return; } } while (0)

#define CHECK_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); \
	if (_a != _b) { fprintf(stderr, "  %s:%d: %s == %lld, expected %lld\n", \
	__FILE__, __LINE__, #a, _a, _b); check_cur_failed = 1; return; } } while (0)

#define CHECK_STR(a, b) do { const char *_a = (a), *_b = (b); \
	if (!_a || !_b || strcmp(_a, _b) != 0) { fprintf(stderr, \
	"  %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, \
	_a ? _a : "(null)", _b ? _b : "(null)"); check_cur_failed = 1; return; } } while (0)

#define CHECK_CONTAINS(hay, needle) do { const char *_h = (hay), *_n = (needle); \
	if (!_h || !strstr(_h, _n)) { fprintf(stderr, "  %s:%d: \"%s\" does not contain \"%s\"\n", \
	__FILE__, __LINE__, _h ? _h : "(null)", _n); check_cur_failed = 1; return; } } while (0)

#define RUN(name) do { check_cur_failed = 0; name(); \
	if (check_cur_failed) { check_failed++; fprintf(stderr, "FAIL %s\n", #name); } \
	else { check_passed++; fprintf(stderr, "ok   %s\n", #name); } } while (0)

#define CHECK_DONE() (printf("%d passed, %d failed\n", check_passed, check_failed), \
	check_failed ? 1 : 0)

#endif
