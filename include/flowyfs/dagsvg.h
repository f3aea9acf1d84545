/*
 * dagsvg.h - a Graphviz graph laid out and drawn as SVG by libgvc (dot
 * layout), with the house look: left to right, filled boxes for steps,
 * light ellipses for artifacts. Graphviz is not thread-safe: every call
 * is serialized here. Results are cached by their dot text, so an
 * unchanged pipeline or a finished run is laid out once.
 */
#ifndef FLOWYFS_DAGSVG_H
#define FLOWYFS_DAGSVG_H

/* Lay out the graph in dot (Graphviz source; later node statements may
 * override the attributes of earlier ones) and render it as a standalone
 * SVG document in *out (malloc'd, the caller frees). Nodes whose name
 * starts with "art:" are drawn as artifacts. 0, -EINVAL when dot does not
 * parse or cannot be laid out (logged), -ENOMEM. */
int dagsvg_render(const char *dot, char **out);

/* Append s to sb as the inside of a dot double-quoted string (" and \
 * escaped, control characters dropped). */
struct strbuf;
void dagsvg_quote(struct strbuf *sb, const char *s);

/* Free the Graphviz context and the cache (at exit; optional). */
void dagsvg_shutdown(void);

#endif
