/*
 * svg.h - the project's small SVG writer: text escaping for SVG and HTML,
 * axis ticks (linear, and decades when values span orders of magnitude)
 * and a line plot of named series with axes, labels and a legend.
 */
#ifndef FLOWYFS_SVG_H
#define FLOWYFS_SVG_H

#include <stddef.h>

struct strbuf;

/* Append s escaped for XML text and attribute values (also HTML): & < > "
 * ' become entities, control characters other than tab and newline are
 * dropped, and bytes that are not valid UTF-8 become U+FFFD, so any
 * untrusted text yields a well-formed document. */
void svg_escape(struct strbuf *sb, const char *s);
/* The same for the first len bytes of s (which may hold no NUL). */
void svg_escape_n(struct strbuf *sb, const char *s, size_t len);

#define SVG_MAX_TICKS 16

/* An axis: the shown range [lo, hi], and tick values inside it. log: the
 * axis is logarithmic (base 10; lo, hi and ticks are still values, not
 * exponents). */
struct svg_axis {
	double lo, hi;
	int log;
	double ticks[SVG_MAX_TICKS];
	size_t n;
};

/* Choose an axis for values in [min, max] (finite, min <= max): about five
 * "nice" ticks (1, 2 or 5 times a power of ten) with the range widened to
 * the ticks around it; with integer set the step is at least 1. When
 * allow_log and min > 0 and max / min >= 100 the axis is logarithmic with
 * ticks at powers of ten. A single value gets a range around it. */
void svg_axis_make(struct svg_axis *out, double min, double max, int allow_log,
                   int integer);

struct svg_series {
	const char *label;        /* legend text (escaped here) */
	const double *x, *y;      /* n points; non-finite ones are skipped */
	size_t n;
};

struct svg_plot {
	const char *title, *xlabel, *ylabel; /* any may be NULL */
	const struct svg_series *series;
	size_t n_series;
	int width, height;        /* of the plot area and axes; 0: 640 x 320 */
};

/* Render p as a standalone SVG document (with XML declaration); malloc'd,
 * the caller frees. With no finite point it says "no data". */
char *svg_plot_render(const struct svg_plot *p);

/* A small standalone SVG document showing one line of text (e.g. why
 * there is no picture); malloc'd. */
char *svg_message(const char *text);

/* The <svg ...> element of an SVG document, without what comes before it
 * (XML declaration, DOCTYPE, comments), for inlining into HTML: a pointer
 * into doc, or doc itself when there is no "<svg". */
const char *svg_inline(const char *doc);

#endif
