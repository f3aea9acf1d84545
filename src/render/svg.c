/*
 * render/svg.c - a small SVG writer for the metric plots, written here
 * rather than taken from a plotting library: the plots are one kind (lines
 * of a few series over an index), Debian's plotting libraries either pull
 * in a whole toolkit (PLplot with its drivers, cairo and fonts) or are
 * meant for a separate process (gnuplot), and neither escapes untrusted
 * labels or numbers the way the rest of the tree does (util_fmt_double).
 * A few hundred lines give axes with nice ticks, log scale, a legend, and
 * XML that is well formed whatever the text.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/svg.h"
#include "flowyfs/util.h"

/* ---- escaping ------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if none.
 * Overlong forms, surrogates and code points past U+10FFFF are invalid,
 * and so are U+FFFE and U+FFFF, which XML does not allow. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned cp;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
		return 0;
	return len;
}

void svg_escape_n(struct strbuf *sb, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	while (p < end) {
		const unsigned char *run = p;
		/* Copy plain bytes in one go. */
		while (p < end && *p >= 0x20 && *p < 0x7f && *p != '&' && *p != '<' &&
		       *p != '>' && *p != '"' && *p != '\'')
			p++;
		if (p > run)
			strbuf_add(sb, run, (size_t)(p - run));
		if (p == end)
			break;
		switch (*p) {
		case '&': strbuf_puts(sb, "&amp;"); p++; continue;
		case '<': strbuf_puts(sb, "&lt;"); p++; continue;
		case '>': strbuf_puts(sb, "&gt;"); p++; continue;
		case '"': strbuf_puts(sb, "&quot;"); p++; continue;
		case '\'': strbuf_puts(sb, "&#39;"); p++; continue;
		case '\t': case '\n': strbuf_add(sb, p, 1); p++; continue;
		}
		if (*p < 0x20 || *p == 0x7f) {
			p++;
			continue;
		}
		size_t n = utf8_len(p, (size_t)(end - p));
		if (n) {
			strbuf_add(sb, p, n);
			p += n;
		} else {
			strbuf_puts(sb, "\xef\xbf\xbd");
			p++;
		}
	}
}

void svg_escape(struct strbuf *sb, const char *s)
{
	svg_escape_n(sb, s ? s : "", s ? strlen(s) : 0);
}

/* ---- axes ---------------------------------------------------------------- */

/* 10^e for an integer e, exact where a double can be. */
static double pow10i(int e)
{
	double r = 1;
	for (int i = 0; i < (e < 0 ? -e : e); i++)
		r *= 10;
	return e < 0 ? 1 / r : r;
}

/* k * m * 10^e computed so that e.g. 3 * 1 * 10^-1 gives 0.3, not
 * 0.30000000000000004: divide by the exact 10^-e instead. */
static double tick_value(double k, double m, int e)
{
	return e >= 0 ? k * m * pow10i(e) : k * m / pow10i(-e);
}

static void axis_log(struct svg_axis *a, double min, double max)
{
	int e0 = (int)floor(log10(min) + 1e-9), e1 = (int)ceil(log10(max) - 1e-9);
	if (e1 <= e0)
		e1 = e0 + 1;
	int every = 1;
	while ((e1 - e0) / every + 1 > 8)
		every++;
	a->log = 1;
	a->lo = pow10i(e0);
	a->hi = pow10i(e1);
	a->n = 0;
	for (int e = e0; e <= e1 && a->n < SVG_MAX_TICKS; e += every)
		a->ticks[a->n++] = pow10i(e);
}

void svg_axis_make(struct svg_axis *a, double min, double max, int allow_log,
                   int integer)
{
	memset(a, 0, sizeof *a);
	if (!isfinite(min) || !isfinite(max) || min > max)
		min = 0, max = 1;
	if (allow_log && min > 0 && max / min >= 100) {
		axis_log(a, min, max);
		return;
	}
	if (min == max) {
		double d = min == 0 ? 1 : fabs(min) * 0.1;
		if (!(d >= 1e-300))
			d = 1;
		if (integer && d < 1)
			d = 1;
		min -= d;
		max += d;
	}
	double raw = (max - min) / 5;
	if (!(raw >= 1e-300 && raw <= 1e300)) {
		/* Beyond what nice steps can name (denormals, a span that
		 * overflows): the two ends are the ticks. */
		a->lo = min;
		a->hi = max > min ? max : min + 1;
		a->ticks[a->n++] = a->lo;
		a->ticks[a->n++] = a->hi;
		return;
	}
	int e = (int)floor(log10(raw));
	double base = pow10i(e), m = 10;
	static const double nice[] = {1, 2, 5, 10};
	for (size_t i = 0; i < sizeof nice / sizeof *nice; i++)
		if (nice[i] * base >= raw * 0.999) {
			m = nice[i];
			break;
		}
	if (m == 10) {
		m = 1;
		e++;
	}
	if (integer && tick_value(1, m, e) < 1) {
		m = 1;
		e = 0;
	}
	double step = tick_value(1, m, e);
	double k0 = floor(min / step + 1e-9), k1 = ceil(max / step - 1e-9);
	while (k1 - k0 + 1 > SVG_MAX_TICKS) { /* only for integer steps of 1 */
		m *= 2;
		step = tick_value(1, m, e);
		k0 = floor(min / step + 1e-9);
		k1 = ceil(max / step - 1e-9);
	}
	a->lo = tick_value(k0, m, e);
	a->hi = tick_value(k1, m, e);
	if (a->hi <= a->lo)
		a->hi = tick_value(k0 + 1, m, e);
	for (double k = k0; k <= k1 && a->n < SVG_MAX_TICKS; k++) {
		double v = tick_value(k, m, e);
		a->ticks[a->n++] = v == 0 ? 0 : v; /* no "-0" */
	}
}

/* Where v falls on the axis, 0..1. */
static double axis_pos(const struct svg_axis *a, double v)
{
	if (a->log)
		return (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
	return (v - a->lo) / (a->hi - a->lo);
}

/* ---- the plot ------------------------------------------------------------ */

/* Ten distinguishable colours (Tableau 10). */
static const char *const palette[] = {
	"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
	"#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
};

static void num(struct strbuf *sb, double v)
{
	char buf[UTIL_DOUBLE_LEN];
	strbuf_puts(sb, util_fmt_double(buf, v));
}

static const char *header =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<svg xmlns=\"http://www.w3.org/2000/svg\" ";

static const char *style =
	"<style>text{font-family:Helvetica,Arial,sans-serif;font-size:12px;fill:#222}"
	".t{font-size:14px;font-weight:bold}.g{stroke:#e6e6e6;stroke-width:1}"
	".ax{stroke:#444;stroke-width:1}.l{fill:none;stroke-width:2}</style>\n";

char *svg_message(const char *text)
{
	struct strbuf sb = {0};
	strbuf_puts(&sb, header);
	strbuf_puts(&sb, "width=\"420\" height=\"60\" viewBox=\"0 0 420 60\">\n");
	strbuf_puts(&sb, style);
	strbuf_puts(&sb, "<rect width=\"420\" height=\"60\" fill=\"#fafafa\" stroke=\"#ccc\"/>\n"
	            "<text x=\"16\" y=\"35\">");
	svg_escape(&sb, text);
	strbuf_puts(&sb, "</text>\n</svg>\n");
	return strbuf_detach(&sb, NULL);
}

const char *svg_inline(const char *doc)
{
	const char *s = strstr(doc, "<svg");
	return s ? s : doc;
}

/* Is every finite x an integer (the index axis usually is)? */
static int all_integers(const struct svg_plot *p)
{
	for (size_t i = 0; i < p->n_series; i++)
		for (size_t k = 0; k < p->series[i].n; k++) {
			double x = p->series[i].x[k];
			if (isfinite(x) && x != floor(x))
				return 0;
		}
	return 1;
}

char *svg_plot_render(const struct svg_plot *p)
{
	double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
	size_t points = 0;
	for (size_t i = 0; i < p->n_series; i++)
		for (size_t k = 0; k < p->series[i].n; k++) {
			double x = p->series[i].x[k], y = p->series[i].y[k];
			if (!isfinite(x) || !isfinite(y))
				continue;
			xmin = fmin(xmin, x);
			xmax = fmax(xmax, x);
			ymin = fmin(ymin, y);
			ymax = fmax(ymax, y);
			points++;
		}
	if (!points)
		return svg_message(p->title ? p->title : "no data");
	struct svg_axis xa, ya;
	svg_axis_make(&xa, xmin, xmax, 0, all_integers(p));
	svg_axis_make(&ya, ymin, ymax, 1, 0);

	const int left = 72, right = 24, top = p->title ? 36 : 16, below = 48;
	int w = p->width > 0 ? p->width : 640, h = p->height > 0 ? p->height : 320;
	int legend = (int)p->n_series * 18 + (p->n_series ? 8 : 0);
	int W = left + w + right, H = top + h + below + legend;
	struct strbuf sb = {0};
	strbuf_puts(&sb, header);
	strbuf_printf(&sb, "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n", W, H, W, H);
	strbuf_puts(&sb, style);
	strbuf_printf(&sb, "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", W, H);
	if (p->title) {
		strbuf_printf(&sb, "<text class=\"t\" x=\"%d\" y=\"22\">", left);
		svg_escape(&sb, p->title);
		strbuf_puts(&sb, "</text>\n");
	}
	/* Grid and tick labels. */
	for (size_t i = 0; i < ya.n; i++) {
		double y = top + h - axis_pos(&ya, ya.ticks[i]) * h;
		strbuf_printf(&sb, "<line class=\"g\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>"
		              "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", left, left + w, y, y,
		              left - 6, y + 4);
		num(&sb, ya.ticks[i]);
		strbuf_puts(&sb, "</text>\n");
	}
	for (size_t i = 0; i < xa.n; i++) {
		double x = left + axis_pos(&xa, xa.ticks[i]) * w;
		strbuf_printf(&sb, "<line class=\"g\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\"/>"
		              "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", x, x, top,
		              top + h, x, top + h + 16);
		num(&sb, xa.ticks[i]);
		strbuf_puts(&sb, "</text>\n");
	}
	strbuf_printf(&sb, "<line class=\"ax\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/>"
	              "<line class=\"ax\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/>\n",
	              left, left + w, top + h, top + h, left, left, top, top + h);
	if (p->xlabel) {
		strbuf_printf(&sb, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">",
		              left + w / 2, top + h + 36);
		svg_escape(&sb, p->xlabel);
		strbuf_puts(&sb, "</text>\n");
	}
	if (p->ylabel || ya.log) {
		strbuf_printf(&sb, "<text x=\"16\" y=\"%d\" text-anchor=\"middle\" "
		              "transform=\"rotate(-90 16 %d)\">", top + h / 2, top + h / 2);
		svg_escape(&sb, p->ylabel ? p->ylabel : "");
		strbuf_puts(&sb, ya.log ? " (log scale)" : "");
		strbuf_puts(&sb, "</text>\n");
	}
	/* The series: a polyline each (a dot per point when there are few). */
	for (size_t i = 0; i < p->n_series; i++) {
		const struct svg_series *s = &p->series[i];
		const char *c = palette[i % (sizeof palette / sizeof *palette)];
		size_t shown = 0;
		for (size_t k = 0; k < s->n; k++)
			shown += isfinite(s->x[k]) && isfinite(s->y[k]) && (!ya.log || s->y[k] > 0);
		strbuf_printf(&sb, "<g class=\"series\" data-series=\"%zu\">", i);
		if (shown > 1) {
			strbuf_printf(&sb, "<polyline class=\"l\" stroke=\"%s\" points=\"", c);
			for (size_t k = 0; k < s->n; k++) {
				if (!isfinite(s->x[k]) || !isfinite(s->y[k]) || (ya.log && s->y[k] <= 0))
					continue;
				strbuf_printf(&sb, "%.1f,%.1f ", left + axis_pos(&xa, s->x[k]) * w,
				              top + h - axis_pos(&ya, s->y[k]) * h);
			}
			sb.len--; /* the last space */
			sb.buf[sb.len] = '\0';
			strbuf_puts(&sb, "\"/>");
		}
		if (shown <= 50)
			for (size_t k = 0; k < s->n; k++) {
				if (!isfinite(s->x[k]) || !isfinite(s->y[k]) || (ya.log && s->y[k] <= 0))
					continue;
				strbuf_printf(&sb, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\">"
				              "<title>", left + axis_pos(&xa, s->x[k]) * w,
				              top + h - axis_pos(&ya, s->y[k]) * h, c);
				num(&sb, s->x[k]);
				strbuf_puts(&sb, ": ");
				num(&sb, s->y[k]);
				strbuf_puts(&sb, "</title></circle>");
			}
		strbuf_puts(&sb, "</g>\n");
	}
	/* The legend, one line a series below the axes. */
	for (size_t i = 0; i < p->n_series; i++) {
		int y = top + h + below + (int)i * 18 + 8;
		strbuf_printf(&sb, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"4\" fill=\"%s\"/>"
		              "<text class=\"legend\" x=\"%d\" y=\"%d\">", left, y + 1,
		              palette[i % (sizeof palette / sizeof *palette)], left + 20, y + 6);
		svg_escape(&sb, p->series[i].label ? p->series[i].label : "");
		strbuf_puts(&sb, "</text>\n");
	}
	strbuf_puts(&sb, "</svg>\n");
	return strbuf_detach(&sb, NULL);
}
