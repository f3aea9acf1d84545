/*
 * render/dagsvg.c - graphs drawn by Graphviz, linked (libgvc, the dot
 * layout and the core SVG renderer), not run as a program; graphs of more
 * than DAGSVG_HUGE nodes are parsed and given their graph attributes here
 * and drawn by dagbig.c, which asks node_look for the house look.
 *
 * One Graphviz context for the daemon, made on first use; Graphviz keeps
 * global state (its error buffer, the layout's statics), so every call
 * holds one mutex. A small cache keyed by the dot text answers a repeated
 * render (an unchanged pipeline, a finished run, a dashboard that polls)
 * without laying the graph out again; renders kept under a key (each
 * pipeline's graph, drawn in the background by prerender.c) stay until
 * that key's next one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <graphviz/gvc.h>

#include "flowyfs/dagbig.h"
#include "flowyfs/dagsvg.h"
#include "flowyfs/log.h"
#include "flowyfs/util.h"

#define CACHE_SLOTS 16
#define KEEP_SLOTS 64

/* The cache: CACHE_SLOTS renders used last, and KEEP_SLOTS renders kept
 * under a key (a pipeline's name, dagsvg_keep) that only the next render
 * kept under the same key replaces, so a page that redraws a live run's
 * graph four times a second does not push the pipelines' graphs out. */
struct slot {
	char *key, *dot, *svg;
	unsigned long long used;
};

static pthread_mutex_t gv_lock = PTHREAD_MUTEX_INITIALIZER;
static GVC_t *gvc;
static struct slot cache[CACHE_SLOTS], kept[KEEP_SLOTS];
static unsigned long long clock_tick;

void dagsvg_quote(struct strbuf *sb, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			continue;
		if (c == '"' || c == '\\')
			strbuf_add(sb, "\\", 1);
		strbuf_add(sb, s, 1);
	}
}

/* Graphviz's messages go to the daemon's log (aglasterr keeps the last). */
static int gv_error(char *msg)
{
	size_t n = strcspn(msg, "\n");
	log_debug("graphviz: %.*s", (int)n, msg);
	return 0;
}

static void slot_clear(struct slot *s)
{
	free(s->key);
	free(s->dot);
	free(s->svg);
	memset(s, 0, sizeof *s);
}

/* Lock held. The cached SVG of dot (a copy), or NULL. */
static char *cache_get(const char *dot)
{
	for (size_t i = 0; i < KEEP_SLOTS + CACHE_SLOTS; i++) {
		struct slot *s = i < KEEP_SLOTS ? &kept[i] : &cache[i - KEEP_SLOTS];
		if (s->dot && !strcmp(s->dot, dot)) {
			s->used = ++clock_tick;
			return xstrdup(s->svg);
		}
	}
	return NULL;
}

/* Lock held. Keep a copy of dot and svg: under key (NULL: none) in the
 * slot of that key, else in the least recently used slot of its kind. */
static void cache_put(const char *key, const char *dot, const char *svg)
{
	struct slot *pool = key ? kept : cache, *s = &pool[0];
	size_t n = key ? KEEP_SLOTS : CACHE_SLOTS;
	for (size_t i = 0; i < n; i++) {
		if (key && pool[i].key && !strcmp(pool[i].key, key)) {
			s = &pool[i];
			break;
		}
		if (pool[i].used < s->used)
			s = &pool[i];
	}
	slot_clear(s);
	s->key = key ? xstrdup(key) : NULL;
	s->dot = xstrdup(dot);
	s->svg = xstrdup(svg);
	s->used = ++clock_tick;
}

/* The house look: node attributes a node has no value for (dot may
 * declare an attribute for some nodes only: the others then hold ""). */
static const struct {
	const char *name, *step, *artifact;
} look[] = {
	{"fontname", "Helvetica", "Helvetica"},
	{"fontsize", "11", "10"},
	{"style", "filled", "filled"},
	{"fillcolor", "#ffffff", "#f4f4f4"},
	{"color", "#555555", "#aaaaaa"},
	{"margin", "0.12,0.05", "0.08,0.03"},
	{"height", "0.4", "0.3"},
};

/* Graph and edge attributes, and those of graphs of more than 200 nodes
 * (a 100-step pipeline has 200): newrank (one network-simplex ranking of
 * the whole graph; the classic ranking spends seconds outside its timed
 * phases on a long graph), fewer crossing-minimization passes, and at most
 * 0.1 x nodes network-simplex iterations when placing nodes, which is most
 * of the rest. Measured on 1,000-step pipelines (CPU seconds, libgvc
 * 2.42): a chain 1.0 -> 0.06, 100 layers of 10 fed by the layer before
 * 1.2 -> 0.14, the same with edges from up to 5 layers back 5.6 -> 0.6;
 * edges may bend a little more (docs/pictures.md). */
static const struct {
	int kind, big;
	const char *name, *value;
} graph_look[] = {
	{AGRAPH, 0, "rankdir", "LR"}, {AGRAPH, 0, "fontname", "Helvetica"},
	{AGRAPH, 0, "nodesep", "0.25"}, {AGRAPH, 0, "ranksep", "0.45"},
	{AGRAPH, 0, "bgcolor", "white"}, {AGRAPH, 0, "pad", "0.2"},
	{AGEDGE, 0, "color", "#888888"}, {AGEDGE, 0, "arrowsize", "0.7"},
	{AGRAPH, 1, "newrank", "true"}, {AGRAPH, 1, "mclimit", "0.2"},
	{AGRAPH, 1, "nslimit", "0.1"},
};

static void style_graph(Agraph_t *g)
{
	int big = agnnodes(g) > DAGSVG_BIG;
	for (size_t i = 0; i < sizeof graph_look / sizeof *graph_look; i++)
		if (!graph_look[i].big || big)
			agattr(g, graph_look[i].kind, (char *)graph_look[i].name,
			       (char *)graph_look[i].value);
}

/* The house look of an attribute of an artifact's node or a step's, or
 * NULL (for dagbig.c, which asks instead of setting it on every node). */
static const char *node_look(int artifact, const char *attr)
{
	for (size_t i = 0; i < sizeof look / sizeof *look; i++)
		if (!strcmp(look[i].name, attr))
			return artifact ? look[i].artifact : look[i].step;
	return NULL;
}

static void style_nodes(Agraph_t *g)
{
	Agsym_t *sym[sizeof look / sizeof *look];
	for (size_t i = 0; i < sizeof look / sizeof *look; i++) {
		sym[i] = agattr(g, AGNODE, (char *)look[i].name, NULL);
		if (!sym[i])
			sym[i] = agattr(g, AGNODE, (char *)look[i].name, "");
	}
	for (Agnode_t *n = agfstnode(g); n; n = agnxtnode(g, n)) {
		int art = !strncmp(agnameof(n), "art:", 4);
		for (size_t i = 0; i < sizeof look / sizeof *look; i++)
			if (!*agxget(n, sym[i]))
				agxset(n, sym[i], (char *)(art ? look[i].artifact : look[i].step));
	}
}

/* Lock held. Render dot into *out (from the cache when there), keeping
 * it under key when key is set. */
static int render_locked(const char *key, const char *dot, char **out)
{
	int rc = 0;
	char *data = NULL;
	unsigned int len = 0;
	Agraph_t *g = NULL;
	int laid = 0;
	*out = NULL;
	if ((*out = cache_get(dot))) {
		if (key)
			cache_put(key, dot, *out);
		goto done;
	}
	if (!gvc) {
		agseterr(AGERR);   /* errors only, and into our log, not stderr */
		agseterrf(gv_error);
		gvc = gvContext();
		if (!gvc) {
			log_error("graphviz: cannot create a context");
			rc = -ENOMEM;
			goto done;
		}
	}
	g = agmemread(dot);
	if (!g) {
		const char *e = aglasterr();
		log_error("graphviz: the graph does not parse: %s", e ? e : "syntax error");
		rc = -EINVAL;
		goto done;
	}
	style_graph(g);
	if (agnnodes(g) > DAGSVG_HUGE) {
		*out = dagbig_svg(g, node_look);
		cache_put(key, dot, *out);
		goto done;
	}
	style_nodes(g);
	if (gvLayout(gvc, g, "dot") != 0) {
		log_error("graphviz: dot layout failed");
		rc = -EINVAL;
		goto done;
	}
	laid = 1;
	if (gvRenderData(gvc, g, "svg", &data, &len) != 0 || !data) {
		log_error("graphviz: svg rendering failed");
		rc = -EINVAL;
		goto done;
	}
	*out = xstrndup(data, len);
	cache_put(key, dot, *out);
done:
	if (data)
		gvFreeRenderData(data);
	if (laid && gvFreeLayout(gvc, g) != 0)
		log_error("graphviz: cannot free a layout");
	if (g && agclose(g) != 0)
		log_error("graphviz: cannot free a graph");
	return rc;
}

int dagsvg_render(const char *dot, char **out)
{
	pthread_mutex_lock(&gv_lock);
	int rc = render_locked(NULL, dot, out);
	pthread_mutex_unlock(&gv_lock);
	return rc;
}

int dagsvg_keep(const char *key, const char *dot)
{
	char *svg = NULL;
	pthread_mutex_lock(&gv_lock);
	int rc = render_locked(key, dot, &svg);
	pthread_mutex_unlock(&gv_lock);
	free(svg);
	return rc;
}

int dagsvg_cached(const char *dot)
{
	pthread_mutex_lock(&gv_lock);
	int found = 0;
	for (size_t i = 0; i < KEEP_SLOTS + CACHE_SLOTS && !found; i++) {
		const struct slot *s = i < KEEP_SLOTS ? &kept[i] : &cache[i - KEEP_SLOTS];
		found = s->dot && !strcmp(s->dot, dot);
	}
	pthread_mutex_unlock(&gv_lock);
	return found;
}

void dagsvg_shutdown(void)
{
	pthread_mutex_lock(&gv_lock);
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		slot_clear(&cache[i]);
	for (size_t i = 0; i < KEEP_SLOTS; i++)
		slot_clear(&kept[i]);
	/* gvFreeContext returns how many errors Graphviz saw in its life. */
	if (gvc && gvFreeContext(gvc) != 0)
		log_debug("graphviz: the context had seen errors");
	gvc = NULL;
	pthread_mutex_unlock(&gv_lock);
}
