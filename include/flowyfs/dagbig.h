/*
 * dagbig.h - a graph too big for dot to lay out in time, drawn as SVG by a
 * layered layout of our own (render/dagbig.c): left to right, each node in
 * the column of its longest path from a source.
 */
#ifndef FLOWYFS_DAGBIG_H
#define FLOWYFS_DAGBIG_H

#include <graphviz/cgraph.h>

/* The value a node attribute takes when the graph gives it none: for an
 * artifact's node (its name starts with "art:") or a step's; NULL: the
 * drawing's own default. */
typedef const char *(*dagbig_look_fn)(int artifact, const char *attr);

/* The SVG document of g, parsed and given its graph attributes (dagsvg.c):
 * its nodes' label, shape ("box", else an ellipse), style (filled,
 * dashed), fillcolor, color, penwidth, fontname, fontsize, margin, width,
 * height and tooltip are drawn (look fills in those a node lacks), its
 * edges' color and arrowsize. malloc'd; the caller frees. */
char *dagbig_svg(Agraph_t *g, dagbig_look_fn look);

#endif
