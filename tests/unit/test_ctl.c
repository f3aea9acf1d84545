/*
 * test_ctl.c - unit tests for ctl.c: each line is parsed and its result
 * rendered as one string (the command, or "error: <message>" verbatim,
 * because a person reads those messages), then compared exactly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "flowyfs/ctl.h"
#include "flowyfs/util.h"

static char shown[4096];

/* "(nothing)" for a blank line or comment, "error: <message>", or the
 * command: "run {json}", "rerun STEP {json}", "sweep k=[...] ... (N runs)",
 * "retry N", "cancel N" (0: none given). */
static const char *show_len(const char *line, size_t len)
{
	struct ctl_cmd c;
	struct strbuf b = {0};
	char *err = (char *)"unset", *js;
	size_t i;
	int rc = ctl_parse(line, len, &c, &err);

	strbuf_puts(&b, "");
	if (rc == 1 && !err) {
		strbuf_puts(&b, "(nothing)");
	} else if (rc == -EINVAL && err) {
		strbuf_printf(&b, "error: %s", err);
		if (c.verb || c.overrides || c.axes || c.step)
			strbuf_puts(&b, " [cmd not zeroed]");
		free(err);
	} else if (rc != 0 || err) {
		strbuf_printf(&b, "rc %d, err %s", rc, err ? err : "NULL");
	} else {
		strbuf_puts(&b, ctl_verb_name(c.verb));
		if (c.step)
			strbuf_printf(&b, " %s", c.step);
		if (c.overrides) {
			js = cJSON_PrintUnformatted(c.overrides);
			strbuf_printf(&b, " %s", js);
			cJSON_free(js);
		}
		for (i = 0; i < c.n_axes; i++) {
			js = cJSON_PrintUnformatted(c.axes[i].values);
			strbuf_printf(&b, " %s=%s", c.axes[i].key, js);
			cJSON_free(js);
		}
		if (c.verb == CTL_SWEEP)
			strbuf_printf(&b, " (%zu runs)", c.n_runs);
		if (c.verb >= CTL_RETRY)
			strbuf_printf(&b, " %lld", (long long)c.run);
	}
	ctl_cmd_free(&c);
	snprintf(shown, sizeof shown, "%s", b.buf);
	strbuf_release(&b);
	return shown;
}

static const char *show(const char *line)
{
	return show_len(line, strlen(line));
}

/* The expansion of line as JSON text (or "rc N"). */
static char *expand(const char *line)
{
	struct ctl_cmd c;
	cJSON *runs = NULL;
	char *err = NULL, *s;
	int rc = ctl_parse(line, strlen(line), &c, &err);

	free(err);
	if (rc)
		return xasprintf("parse rc %d", rc);
	rc = ctl_sweep_expand(&c, &runs);
	if (rc) {
		s = xasprintf("rc %d%s", rc, runs ? " (runs set)" : "");
	} else {
		s = cJSON_PrintUnformatted(runs);
		if ((size_t)cJSON_GetArraySize(runs) != c.n_runs) {
			cJSON_free(s);
			s = xasprintf("%d objects for %zu runs",
			              cJSON_GetArraySize(runs), c.n_runs);
		}
	}
	cJSON_Delete(runs);
	ctl_cmd_free(&c);
	return s;
}

TEST(nothing_to_do)
{
	CHECK_STR(show(""), "(nothing)");
	CHECK_STR(show("   \t "), "(nothing)");
	CHECK_STR(show("\n"), "(nothing)");
	CHECK_STR(show("\r\n"), "(nothing)");
	CHECK_STR(show("# run lr=1"), "(nothing)");
	CHECK_STR(show("  \t# indented comment"), "(nothing)");
	CHECK_STR(show_len(NULL, 0), "(nothing)");
}

TEST(run_values)
{
	CHECK_STR(show("run"), "run {}");
	CHECK_STR(show("run\n"), "run {}");
	CHECK_STR(show("run\r\n"), "run {}");
	CHECK_STR(show("  run  \t "), "run {}");
	CHECK_STR(show("run lr=0.1 epochs=10 neg=-2.5e3"),
	          "run {\"lr\":0.1,\"epochs\":10,\"neg\":-2500}");
	CHECK_STR(show("run a=true b=false c=null"),
	          "run {\"a\":true,\"b\":false,\"c\":null}");
	CHECK_STR(show("run name=resnet quoted=\"resnet\" num=\"5\""),
	          "run {\"name\":\"resnet\",\"quoted\":\"resnet\",\"num\":\"5\"}");
	CHECK_STR(show("run layers=[1,2,3] opt={\"m\":0.9}"),
	          "run {\"layers\":[1,2,3],\"opt\":{\"m\":0.9}}");
	/* Not JSON: kept as written. */
	CHECK_STR(show("run a=01 b=1. c=+1 d=True e=0x10 f=1e g=2024-01-01"),
	          "run {\"a\":\"01\",\"b\":\"1.\",\"c\":\"+1\",\"d\":\"True\","
	          "\"e\":\"0x10\",\"f\":\"1e\",\"g\":\"2024-01-01\"}");
	CHECK_STR(show("run re=[a-z]+ obj={x} path=/data/a=b"),
	          "run {\"re\":\"[a-z]+\",\"obj\":\"{x}\",\"path\":\"/data/a=b\"}");
	CHECK_STR(show("run _k=1 K_2=2"), "run {\"_k\":1,\"K_2\":2}");
	/* UTF-8 is text like any other. */
	CHECK_STR(show("run who=\xc3\xa9t\xc3\xa9"), "run {\"who\":\"\xc3\xa9t\xc3\xa9\"}");
	CHECK_STR(show("run e=\"\\u00e9\\n\""), "run {\"e\":\"\xc3\xa9\\n\"}");
}

TEST(run_blanks_inside_values)
{
	CHECK_STR(show("run msg=\"a b\"\tx=1"), "run {\"msg\":\"a b\",\"x\":1}");
	CHECK_STR(show("run opt={\"a\": 1, \"b\": [2, 3]} n=1"),
	          "run {\"opt\":{\"a\":1,\"b\":[2,3]},\"n\":1}");
	CHECK_STR(show("run q=\"say \\\"hi\\\" [\""), "run {\"q\":\"say \\\"hi\\\" [\"}");
	CHECK_STR(show("run x=a]b"), "run {\"x\":\"a]b\"}");
	CHECK_STR(show("run a=1 # a comment a=2"), "run {\"a\":1}");
	CHECK_STR(show("run tag=#1"), "run {\"tag\":\"#1\"}");
}

TEST(run_errors)
{
	CHECK_STR(show("run alpha"), "error: run: \"alpha\" needs a value: write alpha=VALUE");
	CHECK_STR(show("run 0.1"), "error: run: unexpected \"0.1\" (write KEY=VALUE)");
	CHECK_STR(show("run =5"), "error: run: \"=5\" has no param name before \"=\"");
	CHECK_STR(show("run 9lives=1"),
	          "error: run: \"9lives\" is not a param name (param names are "
	          "[A-Za-z_][A-Za-z0-9_]*, at most 128 bytes)");
	CHECK_STR(show("run a.b=1"),
	          "error: run: \"a.b\" is not a param name (param names are "
	          "[A-Za-z_][A-Za-z0-9_]*, at most 128 bytes)");
	CHECK_STR(show("run lr="),
	          "error: run: \"lr\" has no value: write lr=VALUE (or lr=\"\" for "
	          "an empty string)");
	CHECK_STR(show("run lr= 0.1"),
	          "error: run: \"lr\" has no value: write lr=VALUE (or lr=\"\" for "
	          "an empty string)");
	CHECK_STR(show("run lr=1 epochs=2 lr=3"), "error: run: \"lr\" is given twice");
	CHECK_STR(show("run b=1 a=1 b=2 a=2"), "error: run: \"b\" is given twice");
	CHECK_STR(show("run layers=[1,2 x=1"),
	          "error: run: the value of \"layers\" has an unclosed \"[\"");
	CHECK_STR(show("run opt={\"a\":[1}"),
	          "error: run: the value of \"opt\" has an unclosed \"[\"");
	CHECK_STR(show("run msg=\"hello world"),
	          "error: run: the value of \"msg\" has an unclosed quote");
	CHECK_STR(show("run =\"x"), "error: run: \"=\\\"x\" has an unclosed quote");
	/* Found by fuzz_ctl: blanks inside an open bracket are in the token,
	 * and a message shows a tab as \t to stay one printable line. */
	CHECK_STR(show("run ={ =\tk8"), "error: run: \"={ =\\tk8\" has an unclosed \"{\"");
	CHECK_STR(show("sweep x=\"a\tb\",\"a\tb\""),
	          "error: sweep: \"x\" lists \"\\\"a\\tb\\\"\" twice");
	CHECK_STR(show("run big=1e999"),
	          "error: run: the value of \"big\" has a number out of range: 1e999");
	CHECK_STR(show("run big=[1,-1e400]"),
	          "error: run: the value of \"big\" has a number out of range: [1,-1e400]");
	CHECK_STR(show("run s=\"a\\u0000b\""),
	          "error: run: the value of \"s\" contains \\u0000 (a NUL character)");
	/* An escaped backslash before u0000 is no NUL. */
	CHECK_STR(show("run s=\"a\\\\u0000b\""), "run {\"s\":\"a\\\\u0000b\"}");
}

TEST(name_lengths)
{
	char line[400];

	snprintf(line, sizeof line, "run %0128d=1", 0);
	line[4] = 'k';
	CHECK_CONTAINS(show(line), "run {\"k0000");
	snprintf(line, sizeof line, "run %0129d=1", 0);
	line[4] = 'k';
	CHECK_STR(show(line),
	          "error: run: \"k00000000000000000000000000000000000000000000"
	          "000000000000000...\" is not a param name (param names are "
	          "[A-Za-z_][A-Za-z0-9_]*, at most 128 bytes)");
	snprintf(line, sizeof line, "rerun %0128d", 7);
	CHECK_CONTAINS(show(line), "rerun 0000");
	snprintf(line, sizeof line, "rerun %0129d", 7);
	CHECK_CONTAINS(show(line), "is not a step name");
}

TEST(unknown_commands)
{
	CHECK_STR(show("rnu"), "error: unknown command \"rnu\" (did you mean \"run\"?)");
	CHECK_STR(show("RUN lr=1"), "error: unknown command \"RUN\" (did you mean \"run\"?)");
	CHECK_STR(show("swep lr=1,2"), "error: unknown command \"swep\" (did you mean \"sweep\"?)");
	CHECK_STR(show("cancle"), "error: unknown command \"cancle\" (did you mean \"cancel\"?)");
	CHECK_STR(show("retyr 3"), "error: unknown command \"retyr\" (did you mean \"retry\"?)");
	CHECK_STR(show("ru"), "error: unknown command \"ru\" (did you mean \"run\"?)");
	CHECK_STR(show("stop"),
	          "error: unknown command \"stop\" (commands: run, sweep, rerun, "
	          "retry, cancel, pause, resume)");
	CHECK_STR(show("x"),
	          "error: unknown command \"x\" (commands: run, sweep, rerun, "
	          "retry, cancel, pause, resume)");
	CHECK_STR(show("\"quoted\\\""),
	          "error: unknown command \"\\\"quoted\\\\\\\"\" (commands: run, "
	          "sweep, rerun, retry, cancel, pause, resume)");
}

TEST(sweep)
{
	CHECK_STR(show("sweep lr=0.1,0.01 layers=[1,2],[3]"),
	          "sweep lr=[0.1,0.01] layers=[[1,2],[3]] (4 runs)");
	CHECK_STR(show("sweep lr=0.1"), "sweep lr=[0.1] (1 runs)");
	CHECK_STR(show("sweep opt={\"a\":1,\"b\":2},{\"a\":3} m=\"x,y\",z"),
	          "sweep opt=[{\"a\":1,\"b\":2},{\"a\":3}] m=[\"x,y\",\"z\"] (4 runs)");
	CHECK_STR(show("sweep a=1,\"1\",one"), "sweep a=[1,\"1\",\"one\"] (3 runs)");
	CHECK_STR(show("sweep"), "error: sweep: nothing to sweep: write sweep KEY=V1,V2,...");
	CHECK_STR(show("sweep lr"), "error: sweep: \"lr\" needs a value: write lr=VALUE");
	CHECK_STR(show("sweep lr=0.1,,0.2"),
	          "error: sweep: \"lr=0.1,,0.2\" has an empty value (an extra comma?)");
	CHECK_STR(show("sweep lr=0.1,"),
	          "error: sweep: \"lr=0.1,\" has an empty value (an extra comma?)");
	CHECK_STR(show("sweep lr=,1"),
	          "error: sweep: \"lr=,1\" has an empty value (an extra comma?)");
	CHECK_STR(show("sweep lr=1,2 lr=3"), "error: sweep: \"lr\" is given twice");
	CHECK_STR(show("sweep lr=0.1,0.2,0.10"), "error: sweep: \"lr\" lists \"0.10\" twice");
	CHECK_STR(show("sweep x=[1,2],[1, 2]"), "error: sweep: \"x\" lists \"[1, 2]\" twice");
	CHECK_STR(show("sweep x=1,1e999"),
	          "error: sweep: the value of \"x\" has a number out of range: 1e999");
}

TEST(sweep_limit)
{
	struct strbuf b = {0};
	int i;

	/* 10 x 100 = 1000 is the most; 10 x 101 is one axis too far. */
	strbuf_puts(&b, "sweep a=0,1,2,3,4,5,6,7,8,9 one=1 b=0");
	for (i = 1; i < 100; i++)
		strbuf_printf(&b, ",%d", i);
	CHECK_CONTAINS(show(b.buf), "(1000 runs)");
	strbuf_puts(&b, ",100");
	CHECK_STR(show(b.buf), "error: sweep: 10 x 101 = 1010 runs, more than 1000");
	strbuf_release(&b);
	/* Overflowing the product names the first sizes only. */
	strbuf_puts(&b, "sweep");
	for (i = 0; i < 70; i++)
		strbuf_printf(&b, " k%d=1,2", i);
	CHECK_STR(show(b.buf),
	          "error: sweep: 2 x 2 x 2 x 2 x 2 x 2 x 2 x 2 x ... runs, more than 1000");
	strbuf_release(&b);
}

TEST(sweep_expand)
{
	char *s;

	s = expand("sweep a=1,2 b=x,y");
	CHECK_STR(s, "[{\"a\":1,\"b\":\"x\"},{\"a\":1,\"b\":\"y\"},"
	          "{\"a\":2,\"b\":\"x\"},{\"a\":2,\"b\":\"y\"}]");
	free(s);
	s = expand("sweep layers=[1,2],[3] lr=0.1");
	CHECK_STR(s, "[{\"layers\":[1,2],\"lr\":0.1},{\"layers\":[3],\"lr\":0.1}]");
	free(s);
	s = expand("run lr=0.1");
	CHECK_STR(s, "[{\"lr\":0.1}]");
	free(s);
	s = expand("rerun train");
	CHECK_STR(s, "[{}]");
	free(s);
	s = expand("retry 4");
	CHECK_STR(s, "rc -22");
	free(s);
	s = expand("cancel");
	CHECK_STR(s, "rc -22");
	free(s);
	cJSON *out = (cJSON *)1;
	CHECK_INT(ctl_sweep_expand(NULL, &out), -EINVAL);
	CHECK(out == NULL);
}

TEST(rerun)
{
	CHECK_STR(show("rerun train"), "rerun train {}");
	CHECK_STR(show("rerun train.v2-b lr=0.5"), "rerun train.v2-b {\"lr\":0.5}");
	CHECK_STR(show("rerun 01_prep"), "rerun 01_prep {}");
	CHECK_STR(show("rerun"), "error: rerun: which step? write rerun STEP [KEY=VALUE ...]");
	CHECK_STR(show("rerun lr=0.1"),
	          "error: rerun: which step? write rerun STEP [KEY=VALUE ...]");
	CHECK_STR(show("rerun a/b"),
	          "error: rerun: \"a/b\" is not a step name (step names are "
	          "[A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128 bytes)");
	CHECK_STR(show("rerun .hidden"),
	          "error: rerun: \".hidden\" is not a step name (step names are "
	          "[A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128 bytes)");
	CHECK_STR(show("rerun train extra"),
	          "error: rerun: \"extra\" needs a value: write extra=VALUE");
	CHECK_STR(show("rerun train a=1 a=2"), "error: rerun: \"a\" is given twice");
}

TEST(run_ids)
{
	CHECK_STR(show("retry 12"), "retry 12");
	CHECK_STR(show("retry 9223372036854775807"), "retry 9223372036854775807");
	CHECK_STR(show("retry 9223372036854775808"),
	          "error: retry: \"9223372036854775808\" is not a run id");
	CHECK_STR(show("retry abc"), "error: retry: \"abc\" is not a run id");
	CHECK_STR(show("retry -3"), "error: retry: \"-3\" is not a run id");
	CHECK_STR(show("retry 0"), "error: retry: \"0\" is not a run id (run ids start at 1)");
	CHECK_STR(show("retry"), "error: retry: which run? write retry RUN (a run id)");
	CHECK_STR(show("retry 3 4"), "error: retry: unexpected \"4\" after the run id");
	CHECK_STR(show("cancel"), "cancel 0");
	CHECK_STR(show("cancel 7"), "cancel 7");
	CHECK_STR(show("pause"), "pause 0");
	CHECK_STR(show("resume 3 # resume it"), "resume 3");
	CHECK_STR(show("pause x"), "error: pause: \"x\" is not a run id");
	CHECK_STR(show("resume 1 2"), "error: resume: unexpected \"2\" after the run id");
}

TEST(hostile_bytes)
{
	char *big;

	CHECK_STR(show_len("run\0 a=1", 8), "error: the line contains a NUL byte at column 4");
	CHECK_STR(show_len("# comment\0", 10),
	          "error: the line contains a NUL byte at column 10");
	CHECK_STR(show("run a=\x01"),
	          "error: the line contains a control character (\\x01) at column 7");
	CHECK_STR(show("run a=\x7f"),
	          "error: the line contains a control character (\\x7f) at column 7");
	CHECK_STR(show("run a=\xc2\x85"),
	          "error: the line contains a control character (U+0085) at column 7");
	CHECK_STR(show("run\ra=1"),
	          "error: the line contains a control character (\\x0d) at column 4");
	CHECK_STR(show("run\nrun"),
	          "error: the line contains a newline at column 4 (one command per line)");
	CHECK_STR(show("run a=\xff"),
	          "error: the line is not valid UTF-8 (byte \\xff at column 7)");
	CHECK_STR(show("run a=\xc0\xaf"),      /* overlong "/" */
	          "error: the line is not valid UTF-8 (byte \\xc0 at column 7)");
	CHECK_STR(show("run a=\xed\xa0\x80"),  /* a surrogate */
	          "error: the line is not valid UTF-8 (byte \\xed at column 7)");
	CHECK_STR(show("run a=\xe2\x82"),      /* cut short */
	          "error: the line is not valid UTF-8 (byte \\xe2 at column 7)");
	CHECK_STR(show("run a=\xf4\x90\x80\x80"), /* beyond U+10FFFF */
	          "error: the line is not valid UTF-8 (byte \\xf4 at column 7)");
	CHECK_STR(show("run a=\xf0\x9f\x99\x82"), "run {\"a\":\"\xf0\x9f\x99\x82\"}");

	big = xmalloc(CTL_LINE_MAX + 2);
	memset(big, ' ', CTL_LINE_MAX + 2);
	memcpy(big, "run", 3);
	CHECK_STR(show_len(big, CTL_LINE_MAX), "run {}");
	CHECK_STR(show_len(big, CTL_LINE_MAX + 1),
	          "error: the line is too long (65537 bytes; at most 65536)");
	big[CTL_LINE_MAX] = '\n';
	CHECK_STR(show_len(big, CTL_LINE_MAX + 1), "run {}");
	free(big);
}

TEST(long_tokens_are_cut_in_messages)
{
	char line[300];

	snprintf(line, sizeof line, "rerun %s", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	         "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	         "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	         "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	         "\xc3\xa9\xc3\xa9\xc3\xa9");
	/* 31 two-byte characters: 60 bytes shown, the cut between characters. */
	CHECK_STR(show(line),
	          "error: rerun: \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	          "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	          "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	          "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	          "...\" is not a step name (step names are "
	          "[A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128 bytes)");
}

TEST(err_may_be_null_and_free_is_safe)
{
	struct ctl_cmd c;

	CHECK_INT(ctl_parse("rnu", 3, &c, NULL), -EINVAL);
	CHECK_INT(ctl_parse("run a=1", 7, &c, NULL), 0);
	ctl_cmd_free(&c);
	ctl_cmd_free(&c);
	ctl_cmd_free(NULL);
	CHECK_STR(ctl_verb_name(CTL_RESUME), "resume");
	CHECK_STR(ctl_verb_name((enum ctl_verb)0), "?");
	CHECK_STR(ctl_verb_name((enum ctl_verb)99), "?");
}

int main(void)
{
	RUN(nothing_to_do);
	RUN(run_values);
	RUN(run_blanks_inside_values);
	RUN(run_errors);
	RUN(name_lengths);
	RUN(unknown_commands);
	RUN(sweep);
	RUN(sweep_limit);
	RUN(sweep_expand);
	RUN(rerun);
	RUN(run_ids);
	RUN(hostile_bytes);
	RUN(long_tokens_are_cut_in_messages);
	RUN(err_may_be_null_and_free_is_safe);
	return CHECK_DONE();
}
