/*
 * dagbig.h - a graph too big for dot to lay out in time, drawn as SVG by a
 * layered layout of our own (render/dagbig.c): left to right, each node in
 * the column of its longest path from a source.
 */
#ifndef FLOWYFS_DAGBIG_H
#define FLOWYFS_DAGBIG_H

#include <graphviz/cgraph.h>

/* The SVG document of g, parsed and styled (dagsvg.c): its nodes' label,
 * shape ("box", else an ellipse), style (filled, dashed), fillcolor,
 * color, penwidth, fontname, fontsize, margin, width, height and tooltip
 * are drawn, its edges' color and arrowsize. malloc'd; the caller frees. */
char *dagbig_svg(Agraph_t *g);

#endif
