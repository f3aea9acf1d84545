/*
 * test_svg.c - the SVG writer (escaping, axis ticks, plots) and the
 * Graphviz renderer (dagsvg), its cache and the background renderer
 * (prerender), and the columns huge graphs are drawn in (dagbig).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "flowyfs/dagsvg.h"
#include "flowyfs/prerender.h"
#include "flowyfs/svg.h"
#include "flowyfs/util.h"

static char *esc(const char *s, size_t n)
{
	struct strbuf sb = {0};
	svg_escape_n(&sb, s, n);
	strbuf_grow(&sb, 1);
	return strbuf_detach(&sb, NULL);
}

TEST(escape_entities)
{
	char *e = esc("a<b>&\"c'", 9);
	CHECK_STR(e, "a&lt;b&gt;&amp;&quot;c&#39;");
	free(e);
}

TEST(escape_controls_dropped_tabs_kept)
{
	char *e = esc("a\x01\x1b[0mb\tc\nd\x7f", 13);
	CHECK_STR(e, "a[0mb\tc\nd");
	free(e);
}

TEST(escape_invalid_utf8_replaced)
{
	/* valid é, a lone continuation byte, an overlong '/', a surrogate,
	 * a truncated sequence at the end */
	const char in[] = "\xc3\xa9|\x80|\xc0\xaf|\xed\xa0\x80|\xe2\x82";
	char *e = esc(in, sizeof in - 1);
	CHECK_STR(e, "\xc3\xa9|\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|"
	          "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd");
	free(e);
}

TEST(escape_nul_in_middle)
{
	char *e = esc("a\0b", 3);
	CHECK_STR(e, "ab");
	free(e);
}

static int has_tick(const struct svg_axis *a, double v)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->ticks[i] == v)
			return 1;
	return 0;
}

TEST(ticks_linear_nice)
{
	struct svg_axis a;
	svg_axis_make(&a, 0.13, 0.97, 1, 0);
	CHECK(!a.log);
	CHECK(a.lo == 0 && a.hi == 1);
	CHECK(has_tick(&a, 0.2) && has_tick(&a, 0.4) && has_tick(&a, 0.6));
	char buf[UTIL_DOUBLE_LEN];
	for (size_t i = 0; i < a.n; i++) /* exact decimals: 0.6, not 0.6000000000000001 */
		CHECK(strlen(util_fmt_double(buf, a.ticks[i])) <= 3);
	CHECK(a.n >= 4 && a.n <= 8);
}

TEST(ticks_negative_and_large)
{
	struct svg_axis a;
	svg_axis_make(&a, -37, 512, 1, 0);
	CHECK(!a.log);
	CHECK(a.lo <= -37 && a.hi >= 512);
	CHECK(has_tick(&a, 0));
	CHECK(has_tick(&a, 100) || has_tick(&a, 200));
}

TEST(ticks_integer_axis)
{
	struct svg_axis a;
	svg_axis_make(&a, 0, 3, 0, 1);
	CHECK(a.lo == 0 && a.hi == 3);
	CHECK_INT(a.n, 4);          /* 0 1 2 3, never 0.5 */
	svg_axis_make(&a, 0, 0, 0, 1);
	CHECK(a.lo == -1 && a.hi == 1);
	svg_axis_make(&a, 0, 9999, 0, 1);
	CHECK(a.n <= SVG_MAX_TICKS);
	CHECK(has_tick(&a, 2000));
}

TEST(ticks_single_value)
{
	struct svg_axis a;
	svg_axis_make(&a, 5, 5, 1, 0);
	CHECK(a.lo < 5 && a.hi > 5);
	CHECK(!a.log);
}

TEST(ticks_log_when_orders_of_magnitude)
{
	struct svg_axis a;
	svg_axis_make(&a, 0.0066, 10, 1, 0);
	CHECK(a.log);
	CHECK(a.lo == 0.001 && a.hi == 10);
	CHECK(has_tick(&a, 0.01) && has_tick(&a, 1));
	svg_axis_make(&a, 0.0066, 10, 0, 0);  /* log not allowed */
	CHECK(!a.log);
	svg_axis_make(&a, -1, 1000, 1, 0);    /* not all positive */
	CHECK(!a.log);
	svg_axis_make(&a, 1, 50, 1, 0);       /* less than two decades */
	CHECK(!a.log);
	svg_axis_make(&a, 1e-30, 1e30, 1, 0); /* many decades: at most 9 ticks */
	CHECK(a.log && a.n <= 9 && a.n >= 2);
}

TEST(ticks_extremes)
{
	struct svg_axis a;
	svg_axis_make(&a, 5e-324, 5e-324, 1, 0);   /* a denormal */
	CHECK(a.n >= 2 && a.lo < a.hi);
	svg_axis_make(&a, -1.7e308, 1.7e308, 1, 0); /* the span overflows */
	CHECK(a.n >= 2 && a.lo < a.hi && isfinite(a.lo) && isfinite(a.hi));
	svg_axis_make(&a, 1e300, 1e300, 1, 0);
	CHECK(a.n >= 2 && a.lo < a.hi);
	svg_axis_make(&a, NAN, 1, 1, 0);
	CHECK(a.lo == 0 && a.hi == 1);
}

TEST(plot_escapes_labels_and_skips_nan)
{
	double x[] = {0, 1, 2, 3}, y[] = {1, NAN, 0.5, 0.25};
	struct svg_series s[] = {{"run 1 lr=<b>&</b>", x, y, 4}, {"\x01two", x, y, 2}};
	struct svg_plot p = {.title = "p: \"loss\"", .xlabel = "index", .ylabel = "loss",
	                     .series = s, .n_series = 2};
	char *svg = svg_plot_render(&p);
	CHECK_CONTAINS(svg, "<?xml version=\"1.0\"");
	CHECK_CONTAINS(svg, "run 1 lr=&lt;b&gt;&amp;&lt;/b&gt;");
	CHECK_CONTAINS(svg, ">two</text>");
	CHECK_CONTAINS(svg, "p: &quot;loss&quot;");
	CHECK(!strstr(svg, "<b>"));
	CHECK(!strstr(svg, "nan"));
	CHECK_CONTAINS(svg, "<polyline");
	CHECK_CONTAINS(svg, "</svg>\n");
	free(svg);
}

TEST(plot_log_axis_labelled)
{
	double x[] = {0, 1, 2}, y[] = {100, 1, 0.01};
	struct svg_series s[] = {{"r", x, y, 3}};
	struct svg_plot p = {.ylabel = "loss", .series = s, .n_series = 1};
	char *svg = svg_plot_render(&p);
	CHECK_CONTAINS(svg, "loss (log scale)");
	CHECK_CONTAINS(svg, ">0.01</text>");
	CHECK_CONTAINS(svg, ">100</text>");
	free(svg);
}

TEST(plot_without_data)
{
	struct svg_plot p = {.title = "nothing <here>"};
	char *svg = svg_plot_render(&p);
	CHECK_CONTAINS(svg, "nothing &lt;here&gt;");
	CHECK_CONTAINS(svg, "</svg>");
	free(svg);
}

TEST(inline_strips_prolog)
{
	const char *doc = "<?xml version=\"1.0\"?>\n<!DOCTYPE svg>\n<!-- c -->\n<svg a=\"1\"/>";
	CHECK_STR(svg_inline(doc), "<svg a=\"1\"/>");
	CHECK_STR(svg_inline("plain"), "plain");
}

TEST(dagsvg_renders_and_quotes)
{
	struct strbuf sb = {0};
	strbuf_puts(&sb, "digraph \"p\" {\n  \"step:a\" [shape=box,label=\"a\"];\n"
	            "  \"art:x\" [shape=ellipse,label=\"x\"];\n  \"step:a\" -> \"art:x\";\n"
	            "  \"step:a\" [fillcolor=\"#f4a6a6\", label=\"");
	dagsvg_quote(&sb, "a\"<&>\\\n");
	strbuf_puts(&sb, "\"];\n}\n");
	char *svg = NULL;
	CHECK_INT(dagsvg_render(sb.buf, &svg), 0);
	CHECK_CONTAINS(svg, "<svg");
	CHECK_CONTAINS(svg, "#f4a6a6");
	CHECK_CONTAINS(svg, "a&quot;&lt;&amp;&gt;\\");
	CHECK_CONTAINS(svg, "#f4f4f4");     /* the artifact's look */
	char *again = NULL;               /* from the cache: the same text */
	CHECK_INT(dagsvg_render(sb.buf, &again), 0);
	CHECK_STR(again, svg);
	free(again);
	free(svg);
	strbuf_release(&sb);
	CHECK_INT(dagsvg_render("digraph { a -> }", &svg), -EINVAL);
	CHECK(svg == NULL);
}

/* The number after attr=" in the element after <title>title</title>. */
static double after_title(const char *svg, const char *title, const char *attr)
{
	char *t = xasprintf("<title>%s</title>", title), *a = xasprintf(" %s=\"", attr);
	const char *p = strstr(svg, t);
	double v = -1;
	if (p && (p = strstr(p, a)))
		v = strtod(p + strlen(a), NULL);
	free(t);
	free(a);
	return v;
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* A graph of more than DAGSVG_HUGE nodes is drawn in columns of our own:
 * a chain of 300 steps (600 nodes) and a step "side" reading the first
 * output, restyled as a run's graph is (two lines, dashed, a tooltip).
 * Each node is one column right of its input, "side" in the column of
 * s0001 (both read o0000), and small graphs still go to Graphviz. */
TEST(dagsvg_draws_huge_graphs_in_columns)
{
	struct strbuf sb = {0};
	int n = 300;
	strbuf_puts(&sb, "digraph \"huge\" {\n");
	for (int i = 0; i < n; i++) {
		strbuf_printf(&sb, "  \"step:s%04d\" [shape=box,label=\"s%04d\"];\n", i, i);
		strbuf_printf(&sb, "  \"art:o%04d\" [shape=ellipse,label=\"o%04d\"];\n", i, i);
		strbuf_printf(&sb, "  \"step:s%04d\" -> \"art:o%04d\";\n", i, i);
		if (i)
			strbuf_printf(&sb, "  \"art:o%04d\" -> \"step:s%04d\";\n", i - 1, i);
	}
	strbuf_puts(&sb, "  \"step:side\" [shape=box];\n  \"art:o0000\" -> \"step:side\";\n"
	            "  \"step:s0000\" [style=\"filled,dashed\", fillcolor=\"#cfe3f7\", "
	            "label=\"s0000\\ncached \\\\n\", tooltip=\"s0000: a & b\"];\n}\n");
	CHECK(2 * n + 1 > DAGSVG_HUGE);
	char *svg = NULL;
	CHECK_INT(dagsvg_render(sb.buf, &svg), 0);
	CHECK(strstr(svg, "Generated by graphviz") == NULL);
	CHECK_INT(count_of(svg, "class=\"node\""), 2 * n + 1);
	CHECK_INT(count_of(svg, "class=\"edge\""), 2 * n);
	CHECK_CONTAINS(svg, "<title>step:s0000&#45;&gt;art:o0000</title>");
	double s0 = after_title(svg, "step:s0000", "x"), s1 = after_title(svg, "step:s0001", "x");
	double o0 = after_title(svg, "art:o0000", "cx"), side = after_title(svg, "step:side", "x");
	double last = after_title(svg, "art:o0299", "cx");
	CHECK(s0 >= 0 && o0 > s0 && s1 > o0 && last > s1);
	CHECK(fabs((side + after_title(svg, "step:side", "width") / 2) -
	           (s1 + after_title(svg, "step:s0001", "width") / 2)) < 0.01);
	/* the restyled node: dashed, filled, its tooltip escaped, two lines
	 * (the second "cached \n": a backslash before n is a backslash) */
	CHECK_CONTAINS(svg, "<a xlink:title=\"s0000: a &amp; b\">");
	CHECK_CONTAINS(svg, "fill=\"#cfe3f7\" stroke=\"#555555\" stroke-dasharray=\"5,2\"");
	CHECK_CONTAINS(svg, ">s0000</text>");
	CHECK_CONTAINS(svg, ">cached \\n</text>");
	CHECK_CONTAINS(svg, "fill=\"#f4f4f4\"");  /* the artifacts' look */
	CHECK_CONTAINS(svg, ">step:side</text>");  /* no label: the name */
	free(svg);
	strbuf_release(&sb);
	CHECK_INT(dagsvg_render("digraph { \"step:a\" -> \"art:x\" }", &svg), 0);
	CHECK_CONTAINS(svg, "Generated by graphviz");
	free(svg);
}

/* A small graph, different for each n. */
static char *graph(int n)
{
	return xasprintf("digraph \"g%d\" {\n  \"step:s%d\" [shape=box,label=\"s%d\"];\n"
	                 "  \"art:o\" [label=\"o\"];\n  \"step:s%d\" -> \"art:o\";\n}\n",
	                 n, n, n, n);
}

TEST(dagsvg_keep_outlasts_other_renders)
{
	char *kept = graph(0), *svg = NULL;
	CHECK_INT(dagsvg_keep("p", kept), 0);
	CHECK(dagsvg_cached(kept));
	/* More renders than the cache of renders used last holds. */
	for (int i = 1; i <= 40; i++) {
		char *g = graph(i);
		CHECK_INT(dagsvg_render(g, &svg), 0);
		free(svg);
		free(g);
	}
	CHECK(dagsvg_cached(kept));
	char *early = graph(1);
	CHECK(!dagsvg_cached(early));   /* pushed out by the 39 after it */
	/* The next graph kept under the same key replaces it. */
	char *next = graph(100);
	CHECK_INT(dagsvg_keep("p", next), 0);
	CHECK(dagsvg_cached(next));
	CHECK(!dagsvg_cached(kept));
	CHECK_INT(dagsvg_keep("p", "digraph { a -> }"), -EINVAL);
	free(early);
	free(next);
	free(kept);
}

TEST(prerender_draws_in_the_background)
{
	struct prerender *pr = NULL;
	CHECK_INT(prerender_start(&pr), 0);
	char *g = graph(7), *h = graph(8);
	prerender_dag(pr, "q", g);
	prerender_dag(pr, "q", h);      /* may replace g while it waits */
	int seen = 0;
	for (int i = 0; i < 500 && !seen; i++) {   /* 10 s at most */
		seen = dagsvg_cached(h);
		if (!seen) {
			struct timespec ts = {0, 20 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	CHECK(seen);
	prerender_stop(pr);
	prerender_stop(NULL);
	free(g);
	free(h);
	dagsvg_shutdown();   /* last: no render may follow it */
}

int main(void)
{
	RUN(escape_entities);
	RUN(escape_controls_dropped_tabs_kept);
	RUN(escape_invalid_utf8_replaced);
	RUN(escape_nul_in_middle);
	RUN(ticks_linear_nice);
	RUN(ticks_negative_and_large);
	RUN(ticks_integer_axis);
	RUN(ticks_single_value);
	RUN(ticks_log_when_orders_of_magnitude);
	RUN(ticks_extremes);
	RUN(plot_escapes_labels_and_skips_nan);
	RUN(plot_log_axis_labelled);
	RUN(plot_without_data);
	RUN(inline_strips_prolog);
	RUN(dagsvg_renders_and_quotes);
	RUN(dagsvg_draws_huge_graphs_in_columns);
	RUN(dagsvg_keep_outlasts_other_renders);
	RUN(prerender_draws_in_the_background);
	return CHECK_DONE();
}
