/*
 * render/dagbig.c - graphs too big for Graphviz's dot layout to answer a
 * read in time (more than DAGSVG_HUGE nodes; dot takes half a second and
 * more for a 1,000-step pipeline), drawn by a layered layout of our own:
 * each node in the column of its longest path from a source (left to
 * right, as dot draws them), the nodes of a column ordered by where their
 * inputs are (one barycenter sweep), edges as curves from column to
 * column. Linear in nodes and edges but for one sort per column. The
 * graph comes parsed by dagsvg.c (cgraph), with its graph attributes and
 * the house look of its nodes as a function (look), so labels, fills,
 * dashes, pen widths and tooltips are the ones dot would have drawn; the
 * SVG has the same structure as Graphviz's (a <g class="node"> with the
 * node's name as <title> per node, a <g class="edge"> titled tail->head
 * per edge).
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/dagbig.h"
#include "flowyfs/svg.h"
#include "flowyfs/util.h"

#define PT 72.0            /* points an inch */
#define CHAR_EM 0.56       /* a Helvetica character's mean width, in ems */

/* The graph's spacing, in points: its ranksep (between columns), nodesep
 * (between the nodes of a column) and pad, as dot reads them (inches). */
struct spacing {
	double ranksep, nodesep, pad;
};

/* The node attributes drawn, looked up once (agattr): NULL when the graph
 * has none of that name. */
enum { A_LABEL, A_SHAPE, A_STYLE, A_FILL, A_COLOR, A_PEN, A_FONT, A_SIZE,
       A_MARGIN, A_WIDTH, A_HEIGHT, A_TIP, A_N };
static const char *const attr_names[A_N] = {
	"label", "shape", "style", "fillcolor", "color", "penwidth", "fontname",
	"fontsize", "margin", "width", "height", "tooltip",
};

/* The attributes' symbols, and what a node without a value gets, by kind
 * (0 a step, 1 an artifact). */
struct attrs {
	Agsym_t *sym[A_N];
	const char *deflt[2][A_N];
};

struct bnode {
	Agnode_t *n;
	const struct attrs *at;
	int artifact;
	char *text;            /* the label's lines, each ended by '\n' but the last */
	int lines;
	size_t longest;        /* the longest line's bytes */
	int rank, order, nin;
	double key;            /* where its inputs are, for the column's order */
	double w, h, x, y;     /* size and centre */
};

static const char *str(void *obj, Agsym_t *sym, const char *def)
{
	char *v = sym ? agxget(obj, sym) : NULL;
	return v && *v ? v : def;
}

/* A number, or def when v is not one. */
static double number(const char *v, double def)
{
	char *end;
	double d = strtod(v, &end);
	return end == v ? def : d;
}

static double num(void *obj, Agsym_t *sym, double def)
{
	return number(str(obj, sym, ""), def);
}

/* Node attribute a of b: its value, else the look's for its kind, else def. */
static const char *nattr(const struct bnode *b, int a, const char *def)
{
	const char *d = b->at->deflt[b->artifact][a];
	return str(b->n, b->at->sym[a], d ? d : def);
}

static double nnum(const struct bnode *b, int a, double def)
{
	return number(nattr(b, a, ""), def);
}

/* Append tmpl to sb with each '#' in it replaced by the next argument, a
 * double, to two decimals (coordinates: printf's %f is most of a
 * drawing's time). */
static void put(struct strbuf *sb, const char *tmpl, ...)
{
	va_list ap;
	va_start(ap, tmpl);
	for (const char *p = tmpl; *p; ) {
		size_t lit = strcspn(p, "#");
		strbuf_add(sb, p, lit);
		p += lit;
		if (!*p)
			break;
		p++;
		char b[32], *q = b + sizeof b;
		double v = va_arg(ap, double);
		long long c = llround(fabs(v) * 100), whole = c / 100;
		*--q = (char)('0' + c % 10);
		*--q = (char)('0' + c / 10 % 10);
		*--q = '.';
		do
			*--q = (char)('0' + whole % 10);
		while ((whole /= 10));
		if (v < 0 && c)
			*--q = '-';
		strbuf_add(sb, q, (size_t)(b + sizeof b - q));
	}
	va_end(ap);
}

/* The label's text as dot would draw it, lines ended by '\n' (in the
 * label, "\n", "\l" and "\r" end one; "\N" is the node's name, and a
 * backslash before any other character stands for that character; an
 * unset label is "\N"). Sets b's text, lines and longest. */
static void label_split(struct bnode *b)
{
	const char *l = nattr(b, A_LABEL, "\\N");
	struct strbuf sb = {0};
	size_t start = 0;

	b->lines = 1;
	b->longest = 0;
	for (const char *p = l; *p; p++) {
		if (p[0] != '\\' || !p[1]) {
			strbuf_add(&sb, p, 1);
		} else if (strchr("nlr", *++p)) {
			if (p[1]) {
				strbuf_add(&sb, "\n", 1);
				b->lines++;
			}
			start = sb.len;
		} else if (*p == 'N') {
			strbuf_puts(&sb, agnameof(b->n));
		} else {
			strbuf_add(&sb, p, 1);
		}
		if (sb.len - start > b->longest)
			b->longest = sb.len - start;
	}
	strbuf_grow(&sb, 1);  /* a NUL even when empty */
	b->text = strbuf_detach(&sb, NULL);
}

static int is_box(const struct bnode *b)
{
	return !strcmp(nattr(b, A_SHAPE, "ellipse"), "box");
}

static void measure(struct bnode *b)
{
	label_split(b);
	double fs = nnum(b, A_SIZE, 14);
	double mx = 0.11 * PT, my = 0.055 * PT;
	const char *m = nattr(b, A_MARGIN, "");
	if (*m) {
		char *end;
		mx = strtod(m, &end) * PT;
		my = *end == ',' ? strtod(end + 1, NULL) * PT : mx;
	}
	double w = (double)b->longest * fs * CHAR_EM + 2 * mx;
	double h = b->lines * fs * 1.2 + 2 * my;
	if (!is_box(b)) {
		w *= M_SQRT2;   /* an ellipse round the text's box */
		h *= M_SQRT2;
	}
	b->w = fmax(w, nnum(b, A_WIDTH, 0.75) * PT);
	b->h = fmax(h, nnum(b, A_HEIGHT, 0.5) * PT);
}

/* Nodes by column, then by key (ties: the order they came in). */
static int by_place(const void *a, const void *b)
{
	const struct bnode *x = *(struct bnode *const *)a, *y = *(struct bnode *const *)b;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Columns: the longest path from a source (Kahn's order; a node on a
 * cycle, which a valid pipeline has none of, stays where it got). */
static int rank_nodes(Agraph_t *g, struct bnode *nodes, int nn, struct bnode **by_seq)
{
	struct bnode **queue = xmalloc((size_t)nn * sizeof *queue);
	int head = 0, tail = 0, maxr = 0;

	for (int i = 0; i < nn; i++)
		if (nodes[i].nin == 0)
			queue[tail++] = &nodes[i];
	while (head < tail) {
		struct bnode *v = queue[head++];
		for (Agedge_t *e = agfstout(g, v->n); e; e = agnxtout(g, e)) {
			struct bnode *w = by_seq[AGSEQ(aghead(e))];
			if (w->rank < v->rank + 1)
				w->rank = v->rank + 1;
			if (--w->nin == 0)
				queue[tail++] = w;
		}
		if (v->rank > maxr)
			maxr = v->rank;
	}
	free(queue);
	return maxr;
}

/* Order each column by the mean height of the nodes' inputs in theirs
 * (a node without inputs about where it came), column by column from the
 * left; then give every node its centre, and the drawing its size. */
static void place(Agraph_t *g, struct bnode *nodes, int nn, int maxr,
                  struct bnode **by_seq, const struct spacing *sp,
                  double *width, double *height)
{
	struct bnode **col = xmalloc((size_t)nn * sizeof *col);
	int *start = xcalloc((size_t)maxr + 2, sizeof *start);
	double *colw = xcalloc((size_t)maxr + 1, sizeof *colw);
	double *colh = xcalloc((size_t)maxr + 1, sizeof *colh);

	for (int i = 0; i < nn; i++) {
		col[i] = &nodes[i];
		nodes[i].key = 0;
		start[nodes[i].rank + 1]++;
	}
	for (int r = 0; r <= maxr; r++)
		start[r + 1] += start[r];
	qsort(col, (size_t)nn, sizeof *col, by_place);  /* by column, in order */
	for (int r = 0; r <= maxr; r++) {
		int a = start[r], z = start[r + 1];
		for (int k = a; k < z; k++) {
			struct bnode *b = col[k];
			double sum = 0;
			int ins = 0;
			for (Agedge_t *e = agfstin(g, b->n); e; e = agnxtin(g, e)) {
				sum += by_seq[AGSEQ(agtail(e))]->y;  /* its place, for now */
				ins++;
			}
			b->key = ins ? sum / ins : (k - a) * (b->h + sp->nodesep);
		}
		qsort(col + a, (size_t)(z - a), sizeof *col, by_place);
		double y = 0;
		for (int k = a; k < z; k++) {
			col[k]->y = y + col[k]->h / 2;  /* from the column's top */
			y += col[k]->h + sp->nodesep;
			colw[r] = fmax(colw[r], col[k]->w);
		}
		colh[r] = z > a ? y - sp->nodesep : 0;
	}
	double x = sp->pad, h = 0;
	for (int r = 0; r <= maxr; r++)
		h = fmax(h, colh[r]);
	for (int r = 0; r <= maxr; r++) {
		for (int k = start[r]; k < start[r + 1]; k++) {
			col[k]->x = x + colw[r] / 2;
			col[k]->y += sp->pad + (h - colh[r]) / 2;  /* columns centred */
		}
		x += colw[r] + (r < maxr ? sp->ranksep : 0);
	}
	*width = x + sp->pad;
	*height = h + 2 * sp->pad;
	free(colh);
	free(colw);
	free(start);
	free(col);
}

static void text_lines(struct strbuf *sb, const struct bnode *b)
{
	const char *p = b->text;
	double fs = nnum(b, A_SIZE, 14), lh = fs * 1.2;
	const char *font = nattr(b, A_FONT, "Helvetica");

	for (int i = 0; i < b->lines; i++) {
		size_t len = strcspn(p, "\n");
		put(sb, "<text text-anchor=\"middle\" x=\"#\" y=\"#\" font-family=\"",
		    b->x, b->y - b->lines * lh / 2 + (i + 0.75) * lh);
		svg_escape(sb, font);
		put(sb, ",sans-Serif\" font-size=\"#\">", fs);
		svg_escape_n(sb, p, len);
		strbuf_puts(sb, "</text>\n");
		p += len + (p[len] != '\0');
	}
}

static void draw_node(struct strbuf *sb, const struct bnode *b, int id)
{
	const char *style = nattr(b, A_STYLE, "");
	const char *tip = nattr(b, A_TIP, "");
	double pen = nnum(b, A_PEN, 1);

	strbuf_printf(sb, "<g id=\"node%d\" class=\"node\">\n<title>", id);
	svg_escape(sb, agnameof(b->n));
	strbuf_puts(sb, "</title>\n");
	if (*tip) {
		strbuf_printf(sb, "<g id=\"a_node%d\"><a xlink:title=\"", id);
		svg_escape(sb, tip);
		strbuf_puts(sb, "\">\n");
	}
	strbuf_puts(sb, "<");
	if (is_box(b))
		put(sb, "rect x=\"#\" y=\"#\" width=\"#\" height=\"#\"",
		    b->x - b->w / 2, b->y - b->h / 2, b->w, b->h);
	else
		put(sb, "ellipse cx=\"#\" cy=\"#\" rx=\"#\" ry=\"#\"",
		    b->x, b->y, b->w / 2, b->h / 2);
	strbuf_puts(sb, " fill=\"");
	svg_escape(sb, strstr(style, "filled") ? nattr(b, A_FILL, "lightgrey") : "none");
	strbuf_puts(sb, "\" stroke=\"");
	svg_escape(sb, nattr(b, A_COLOR, "black"));
	strbuf_puts(sb, "\"");
	if (strstr(style, "dashed"))
		strbuf_puts(sb, " stroke-dasharray=\"5,2\"");
	if (pen != 1)
		put(sb, " stroke-width=\"#\"", pen);
	strbuf_puts(sb, "/>\n");
	text_lines(sb, b);
	if (*tip)
		strbuf_puts(sb, "</a>\n</g>\n");
	strbuf_puts(sb, "</g>\n");
}

/* From the tail's right side to the head's left, leaving and arriving
 * level, with the arrowhead at the head. */
static void draw_edge(struct strbuf *sb, Agedge_t *e, Agsym_t *const esym[2],
                      const struct bnode *t, const struct bnode *h, int id)
{
	const char *color = str(e, esym[0], "black");
	double len = 10 * num(e, esym[1], 1), half = len * 0.35;
	double x1 = t->x + t->w / 2, y1 = t->y, x2 = h->x - h->w / 2 - len, y2 = h->y;
	double mid = (x1 + x2) / 2;

	strbuf_printf(sb, "<g id=\"edge%d\" class=\"edge\">\n<title>", id);
	svg_escape(sb, agnameof(agtail(e)));
	strbuf_puts(sb, "&#45;&gt;");
	svg_escape(sb, agnameof(aghead(e)));
	strbuf_puts(sb, "</title>\n<path fill=\"none\" stroke=\"");
	svg_escape(sb, color);
	put(sb, "\" d=\"M#,#C#,# #,# #,#\"/>\n", x1, y1, mid, y1, mid, y2, x2, y2);
	strbuf_puts(sb, "<polygon fill=\"");
	svg_escape(sb, color);
	strbuf_puts(sb, "\" stroke=\"");
	svg_escape(sb, color);
	put(sb, "\" points=\"#,# #,# #,#\"/>\n</g>\n", x2 + len, y2, x2, y2 - half, x2, y2 + half);
}

char *dagbig_svg(Agraph_t *g, dagbig_look_fn look)
{
	int nn = agnnodes(g), maxseq = 0, k = 0;
	struct bnode *nodes = xcalloc((size_t)(nn ? nn : 1), sizeof *nodes);
	struct strbuf sb = {0};
	double width, height;
	struct attrs at;
	Agsym_t *esym[2] = {agattr(g, AGEDGE, "color", NULL),
	                    agattr(g, AGEDGE, "arrowsize", NULL)};

	for (int a = 0; a < A_N; a++) {
		at.sym[a] = agattr(g, AGNODE, (char *)attr_names[a], NULL);
		for (int kind = 0; kind < 2; kind++)
			at.deflt[kind][a] = look ? look(kind, attr_names[a]) : NULL;
	}

	for (Agnode_t *n = agfstnode(g); n; n = agnxtnode(g, n))
		if ((int)AGSEQ(n) > maxseq)
			maxseq = (int)AGSEQ(n);
	struct bnode **by_seq = xcalloc((size_t)maxseq + 1, sizeof *by_seq);
	for (Agnode_t *n = agfstnode(g); n; n = agnxtnode(g, n), k++) {
		nodes[k].n = n;
		nodes[k].at = &at;
		nodes[k].artifact = !strncmp(agnameof(n), "art:", 4);
		nodes[k].order = k;
		nodes[k].nin = agdegree(g, n, 1, 0);
		measure(&nodes[k]);
		by_seq[AGSEQ(n)] = &nodes[k];
	}
	struct spacing sp = {
		num(g, agattr(g, AGRAPH, "ranksep", NULL), 0.5) * PT,
		num(g, agattr(g, AGRAPH, "nodesep", NULL), 0.25) * PT,
		num(g, agattr(g, AGRAPH, "pad", NULL), 0.0555) * PT,
	};
	int maxr = rank_nodes(g, nodes, nn, by_seq);
	place(g, nodes, nn, maxr, by_seq, &sp, &width, &height);

	strbuf_puts(&sb, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n");
	put(&sb, "<svg width=\"#pt\" height=\"#pt\" viewBox=\"0.00 0.00 # #\" "
	    "xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\">\n",
	    width, height, width, height);
	strbuf_puts(&sb, "<g id=\"graph0\" class=\"graph\">\n<title>");
	svg_escape(&sb, agnameof(g));
	strbuf_puts(&sb, "</title>\n<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"");
	svg_escape(&sb, str(g, agattr(g, AGRAPH, "bgcolor", NULL), "white"));
	strbuf_puts(&sb, "\"/>\n");
	for (int i = 0; i < nn; i++)
		draw_node(&sb, &nodes[i], i + 1);
	k = 0;
	for (int i = 0; i < nn; i++)
		for (Agedge_t *e = agfstout(g, nodes[i].n); e; e = agnxtout(g, e))
			draw_edge(&sb, e, esym, &nodes[i], by_seq[AGSEQ(aghead(e))], ++k);
	strbuf_puts(&sb, "</g>\n</svg>\n");
	for (int i = 0; i < nn; i++)
		free(nodes[i].text);
	free(by_seq);
	free(nodes);
	return strbuf_detach(&sb, NULL);
}
