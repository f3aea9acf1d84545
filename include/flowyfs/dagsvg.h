/*
 * dagsvg.h - a Graphviz graph laid out and drawn as SVG by libgvc (dot
 * layout), with the house look: left to right, filled boxes for steps,
 * light ellipses for artifacts. Graphviz is not thread-safe: every call
 * is serialized here. Results are cached by their dot text, so an
 * unchanged pipeline or a finished run is laid out once; a pipeline's
 * graph can be kept in the cache under its name (dagsvg_keep).
 */
#ifndef FLOWYFS_DAGSVG_H
#define FLOWYFS_DAGSVG_H

/* Graphs of more nodes than this get layout options that bound
 * Graphviz's work (dagsvg.c). */
#define DAGSVG_BIG 200
/* Graphs of more nodes than this are drawn by a layered layout of our own
 * (dagbig.h): dot takes 0.1 s for 600 nodes here, 0.5 s for 2,000. */
#define DAGSVG_HUGE 500

/* Lay out the graph in dot (Graphviz source; later node statements may
 * override the attributes of earlier ones) and render it as a standalone
 * SVG document in *out (malloc'd, the caller frees). Nodes whose name
 * starts with "art:" are drawn as artifacts. 0, -EINVAL when dot does not
 * parse or cannot be laid out (logged), -ENOMEM. */
int dagsvg_render(const char *dot, char **out);

/* Render dot as dagsvg_render does, into the cache only, and keep it
 * there under key (a pipeline's name) until the next dagsvg_keep of the
 * same key: a later dagsvg_render of the same dot is a copy. At most 64
 * keys are kept (then the one used least recently goes). 0 or as
 * dagsvg_render. */
int dagsvg_keep(const char *key, const char *dot);

/* 1 when a render of dot is in the cache (a read would copy it), else 0. */
int dagsvg_cached(const char *dot);

/* Append s to sb as the inside of a dot double-quoted string (" and \
 * escaped, control characters dropped). */
struct strbuf;
void dagsvg_quote(struct strbuf *sb, const char *s);

/* Free the Graphviz context and the cache (at exit; optional). No render
 * may follow: Graphviz's text layout keeps state that outlives a context. */
void dagsvg_shutdown(void);

#endif
