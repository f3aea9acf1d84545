/*
 * step.c - loading and validating a pipeline definition.
 *
 * A pipeline is a directory of JSON files: an optional pipeline.json (the
 * params context and a few settings) and one <step>.json per step.
 * step_load() parses them with cJSON and checks everything DESIGN.md
 * section 3 asks for: syntax, keys and their types, names, input
 * references, every output produced by one step, no cycles. It collects
 * *every* problem as "<file>:<line>:<col>: <message>", sorted, because
 * .status has to tell a user exactly what to fix in one go. cJSON keeps no
 * source positions, so a small scanner walks the text (already known to be
 * valid JSON) to map each parsed member or element back to its offset.
 * Hostile input stays cheap: files over STEP_FILE_MAX are refused, every
 * check is O(n log n), and at most STEP_ERRORS_MAX messages are kept.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowyfs/step.h"
#include "flowyfs/util.h"
#include "flowyfs/dag.h"

#define STEP_FILE_MAX   (4u << 20)     /* bytes of one JSON file */
#define STEP_ERRORS_MAX 1000           /* messages kept per pipeline */
#define STEP_FILE_ERRORS_MAX 100       /* positioned messages kept per file */
#define STEP_QUOTE_MAX  80             /* bytes of a value quoted in a message */
#define NAME_RULE  "names are [A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128 bytes"
#define PARAM_RULE "param names are [A-Za-z0-9_]+, at most 128 bytes"
#define NO_POS ((size_t)-1)

/* ---- memory and strings ------------------------------------------------ */

static cJSON *xjson(cJSON *j)
{
	if (!j)
		util_oom();
	return j;
}

static void sb_putc(struct strbuf *b, char ch)
{
	strbuf_add(b, &ch, 1);
}

/* Append s escaped for a one-line message: control characters as \n, \t,
 * \xNN; when quote is set, it and backslashes get a backslash too. At most
 * max bytes of s are shown (cut at a UTF-8 boundary), then "...". */
static void sb_escape(struct strbuf *b, const char *s, size_t max, char quote)
{
	size_t n = strlen(s), i;
	int cut = 0;
	char hex[8];

	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		cut = 1;
	}
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (quote && (ch == '\\' || ch == (unsigned char)quote)) {
			sb_putc(b, '\\');
			sb_putc(b, (char)ch);
		} else if (ch == '\n') {
			strbuf_puts(b, "\\n");
		} else if (ch == '\t') {
			strbuf_puts(b, "\\t");
		} else if (ch == '\r') {
			strbuf_puts(b, "\\r");
		} else if (ch < 0x20 || ch == 0x7f) {
			snprintf(hex, sizeof hex, "\\x%02x", ch);
			strbuf_puts(b, hex);
		} else {
			sb_putc(b, (char)ch);
		}
	}
	if (cut)
		strbuf_puts(b, "...");
}

/* ---- names ------------------------------------------------------------- */

static int name_char(char ch, int first, int param)
{
	if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= '0' && ch <= '9') || ch == '_')
		return 1;
	return !first && !param && (ch == '.' || ch == '-');
}

int step_name_valid(const char *name)
{
	size_t i;

	if (!name || !name[0])
		return 0;
	for (i = 0; name[i]; i++)
		if (i >= STEP_NAME_MAX || !name_char(name[i], i == 0, 0))
			return 0;
	return 1;
}

/* Param names also become FLOWY_PARAM_<name>: [A-Za-z0-9_]+. */
static int step_param_name_valid(const char *name)
{
	size_t i;

	if (!name || !name[0])
		return 0;
	for (i = 0; name[i]; i++)
		if (i >= STEP_NAME_MAX || !name_char(name[i], 1, 1))
			return 0;
	return 1;
}

/* Does the slash-separated path have a component equal to comp? */
static int path_has_component(const char *path, const char *comp)
{
	size_t n = strlen(comp);
	const char *s = path;

	while (*s) {
		const char *e = strchr(s, '/');
		size_t len = e ? (size_t)(e - s) : strlen(s);

		if (len == n && !strncmp(s, comp, n))
			return 1;
		if (!e)
			break;
		s = e + 1;
	}
	return 0;
}

static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* ---- source text, positions, a scanner over valid JSON ---------------- */

struct src {
	char *disp;             /* file name as shown in messages */
	char *text;             /* contents, NUL-terminated; NULL if unread */
	size_t len;
	size_t *ls;             /* offset of the start of each line */
	size_t n_ls;
	size_t n_errs, dropped; /* positioned messages kept, left out */
};

static void src_lines(struct src *s)
{
	size_t i, cap = 0;

	GROW(s->ls, cap, s->n_ls);
	s->ls[s->n_ls++] = 0;
	for (i = 0; i < s->len; i++)
		if (s->text[i] == '\n') {
			GROW(s->ls, cap, s->n_ls);
			s->ls[s->n_ls++] = i + 1;
		}
}

static void src_pos(const struct src *s, size_t off, int *line, int *col)
{
	size_t lo = 0, hi = s->n_ls;

	if (off > s->len)
		off = s->len;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->ls[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	*line = (int)lo + 1;
	*col = (int)(off - (s->n_ls ? s->ls[lo] : 0)) + 1;
}

static void src_free(struct src *s)
{
	free(s->ls);
	free(s->text);
	free(s->disp);
}

/* cJSON skips every byte <= 32 as whitespace; so do we. */
static size_t js_ws(const char *s, size_t i)
{
	while (s[i] && (unsigned char)s[i] <= 32)
		i++;
	return i;
}

/* Offset of the top-level value (cJSON skips a UTF-8 BOM too). */
static size_t js_start(const char *s)
{
	return js_ws(s, strncmp(s, "\xef\xbb\xbf", 3) ? 0 : 3);
}

static size_t js_skip_string(const char *s, size_t i)
{
	for (i++; s[i] && s[i] != '"'; i++)
		if (s[i] == '\\' && s[i + 1])
			i++;
	return s[i] ? i + 1 : i;
}

static size_t js_skip_value(const char *s, size_t i)
{
	size_t depth = 0;

	if (s[i] == '"')
		return js_skip_string(s, i);
	if (s[i] == '{' || s[i] == '[') {
		do {
			if (s[i] == '"') {
				i = js_skip_string(s, i);
				continue;
			}
			if (s[i] == '{' || s[i] == '[')
				depth++;
			else if (s[i] == '}' || s[i] == ']')
				depth--;
			i++;
		} while (depth > 0 && s[i]);
		return i;
	}
	while (s[i] && (unsigned char)s[i] > 32 && !strchr(",]}", s[i]))
		i++;
	return i;
}

/* cJSON reports a missing member name one byte late ({"a": 1,} points
 * past the '}'): move such a position back onto the offending byte. */
static size_t js_error_fix(const char *s, size_t off)
{
	char *stack = NULL, ch;
	size_t depth = 0, cap = 0, i, j, ret = off;

	if (off == 0)
		return off;
	for (i = js_start(s); i < off - 1;) {
		if (s[i] == '"') {
			i = js_skip_string(s, i);
			continue;
		}
		if (s[i] == '{' || s[i] == '[') {
			GROW(stack, cap, depth);
			stack[depth++] = s[i];
		} else if ((s[i] == '}' || s[i] == ']') && depth) {
			depth--;
		}
		i++;
	}
	ch = s[off - 1];
	if (i != off - 1 || !depth || stack[depth - 1] != '{' || ch == '"' ||
	    ch == ',' || ch == '{' || (unsigned char)ch <= 32)
		goto out;
	for (j = off - 1; j > 0 && (unsigned char)s[j - 1] <= 32; j--)
		;
	if (j > 0 && (s[j - 1] == '{' || s[j - 1] == ','))
		ret = off - 1;
out:
	free(stack);
	return ret;
}

/* The children of the object or array at s[at], in source order: *keys
 * gets the offset of each member's key (or each element), *vals (if not
 * NULL) the offset of each member's value. Returns how many. */
static size_t js_children(const char *s, size_t at, size_t **keys, size_t **vals)
{
	size_t n = 0, cap = 0, vcap = 0, i = at;
	int obj = s[at] == '{';

	*keys = NULL;
	if (vals)
		*vals = NULL;
	if (s[at] != '{' && s[at] != '[')
		return 0;
	i = js_ws(s, i + 1);
	while (s[i] && s[i] != '}' && s[i] != ']') {
		GROW(*keys, cap, n);
		(*keys)[n] = i;
		if (obj) {
			i = js_ws(s, js_skip_string(s, i));
			if (s[i] == ':')
				i = js_ws(s, i + 1);
		}
		if (vals) {
			GROW(*vals, vcap, n);
			(*vals)[n] = i;
		}
		n++;
		i = js_ws(s, js_skip_value(s, i));
		if (s[i] != ',')
			break;
		i = js_ws(s, i + 1);
	}
	return n;
}

/* ---- the load context and its error list ------------------------------ */

struct serr {
	char *file;             /* NULL: about the whole pipeline */
	int line, col;          /* line 0 or INT_MAX: no position */
	size_t seq;
	char *msg;
};

struct sfile {
	struct src src;
	cJSON *root;
	size_t obj;             /* offset of the root value */
	size_t *in_pos;         /* offset of each kept input */
	size_t *out_pos;        /* offset of each output */
	int outputs_known;      /* the "outputs" of this step could be read */
};

struct ctx {
	struct pipeline_def *p;
	int dirfd;
	struct sfile *files;    /* parallel to p->steps */
	struct serr *errs;
	size_t n_errs, cap_errs, dropped;
	char **tmp;             /* quoted strings for the next message */
	size_t n_tmp, cap_tmp;
	cJSON **ctx_idx;        /* context params sorted by key */
	size_t n_ctx;
	int ctx_ok;             /* pipeline.json params usable for lookups */
	const struct step_checks *checks; /* the caller's, or NULL */
};

static void tmp_clear(struct ctx *c)
{
	while (c->n_tmp)
		free(c->tmp[--c->n_tmp]);
}

static const char *tmp_keep(struct ctx *c, char *s)
{
	GROW(c->tmp, c->cap_tmp, c->n_tmp);
	c->tmp[c->n_tmp++] = s;
	return s;
}

/* s quoted for a message; valid until the next message is added. */
static const char *q(struct ctx *c, const char *s)
{
	struct strbuf b = {0};

	sb_putc(&b, '"');
	sb_escape(&b, s, STEP_QUOTE_MAX, '"');
	sb_putc(&b, '"');
	return tmp_keep(c, b.buf);
}

/* s with control characters escaped, unquoted (names, file names). */
static char *plain(const char *s)
{
	struct strbuf b = {0};

	strbuf_puts(&b, "");
	sb_escape(&b, s, (size_t)-1 / 2, 0);
	return b.buf;
}

static void verr(struct ctx *c, const char *file, int line, int col,
                 const char *fmt, va_list ap)
{
	struct serr *e;
	char *msg;

	if (c->n_errs >= STEP_ERRORS_MAX) {
		c->dropped++;
		goto out;
	}
	if (vasprintf(&msg, fmt, ap) < 0)
		util_oom();
	GROW(c->errs, c->cap_errs, c->n_errs);
	e = &c->errs[c->n_errs];
	e->file = file ? xstrdup(file) : NULL;
	e->line = line;
	e->col = col;
	e->seq = c->n_errs++;
	e->msg = msg;
out:
	tmp_clear(c);
}

__attribute__((format(printf, 3, 4)))
static void err_file(struct ctx *c, const char *file, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(c, file, 0, 0, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 4, 5)))
static void err_at(struct ctx *c, struct src *s, size_t off,
                   const char *fmt, ...)
{
	va_list ap;
	int line, col;

	if (s->n_errs >= STEP_FILE_ERRORS_MAX) {
		s->dropped++;
		tmp_clear(c);
		return;
	}
	s->n_errs++;
	src_pos(s, off, &line, &col);
	va_start(ap, fmt);
	verr(c, s->disp, line, col, fmt, ap);
	va_end(ap);
}

static int serr_cmp(const void *a, const void *b)
{
	const struct serr *x = a, *y = b;
	int r;

	if (!x->file != !y->file)
		return x->file ? 1 : -1;
	if (x->file && (r = strcmp(x->file, y->file)))
		return r;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

__attribute__((format(printf, 5, 6)))
static void err_pos(struct ctx *c, const char *file, int line, int col,
                    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(c, file, line, col, fmt, ap);
	va_end(ap);
}

/* Say how many messages about s were left out (sorted after the rest). */
static void err_dropped(struct ctx *c, const struct src *s)
{
	if (s->dropped)
		err_pos(c, s->disp, INT_MAX, 0, "too many errors in this file: %zu "
		        "more not shown", s->dropped);
}

/* Sort the collected errors and hand them to p as formatted strings. */
static void errs_finish(struct ctx *c)
{
	struct pipeline_def *p = c->p;
	size_t i;

	if (c->n_errs)
		qsort(c->errs, c->n_errs, sizeof *c->errs, serr_cmp);
	p->errors = xcalloc(c->n_errs + 1, sizeof *p->errors);
	for (i = 0; i < c->n_errs; i++) {
		struct serr *e = &c->errs[i];
		int r;

		if (!e->file)
			r = asprintf(&p->errors[i], "%s", e->msg);
		else if (!e->line || e->line == INT_MAX)
			r = asprintf(&p->errors[i], "%s: %s", e->file, e->msg);
		else
			r = asprintf(&p->errors[i], "%s:%d:%d: %s", e->file,
			             e->line, e->col, e->msg);
		if (r < 0)
			util_oom();
	}
	p->n_errors = c->n_errs;
	if (c->dropped &&
	    asprintf(&p->errors[p->n_errors++], "too many errors: %zu more not shown",
	             c->dropped) < 0)
		util_oom();
}

/* ---- reading and parsing one file ------------------------------------- */

/* Read name (in the pipeline directory) into s. Returns 0, 1 when the file
 * has vanished meanwhile, -1 after reporting why it cannot be used. */
static int src_read(struct ctx *c, struct src *s, const char *name)
{
	struct stat st;
	size_t cap = 0;
	ssize_t r;
	int fd, ret = -1;

	fd = openat(c->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			ret = 1;
			goto out;
		}
		err_file(c, s->disp, "cannot read: %s", strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		err_file(c, s->disp, "not a regular file");
		goto out;
	}
	/* Read up to one byte more than allowed, to notice a file too large
	 * even when it grew after fstat(). */
	cap = (st.st_size > STEP_FILE_MAX ? STEP_FILE_MAX + 1 : (size_t)st.st_size) + 1;
	s->text = xmalloc(cap);
	s->len = 0;
	for (;;) {
		if (s->len + 1 >= cap) {
			if (s->len > STEP_FILE_MAX)
				break;
			cap = cap * 2 > STEP_FILE_MAX + 2 ? STEP_FILE_MAX + 2 : cap * 2;
			s->text = xrealloc(s->text, cap);
		}
		r = read(fd, s->text + s->len, cap - 1 - s->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err_file(c, s->disp, "cannot read: %s", strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		s->len += (size_t)r;
	}
	if (s->len > STEP_FILE_MAX) {
		err_file(c, s->disp, "file too large (more than %u MiB)",
		         STEP_FILE_MAX >> 20);
		goto out;
	}
	s->text[s->len] = '\0';
	src_lines(s);
	ret = 0;
out:
	if (ret) {
		free(s->text);
		s->text = NULL;
		s->len = 0;
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

/* Parse s->text into *out. Returns 0, or -1 after reporting the error. */
static int src_parse(struct ctx *c, struct src *s, cJSON **out)
{
	const char *end = NULL, *nul;
	struct strbuf b = {0};
	size_t off, n;

	*out = NULL;
	nul = memchr(s->text, '\0', s->len);
	if (nul) {
		err_at(c, s, (size_t)(nul - s->text), "file contains a NUL byte");
		return -1;
	}
	if (!s->text[js_start(s->text)]) {
		err_file(c, s->disp, "file is empty (a JSON object is expected)");
		return -1;
	}
	/* The length includes the NUL: cJSON requires it to see the end. */
	*out = cJSON_ParseWithLengthOpts(s->text, s->len + 1, &end, 1);
	if (*out)
		return 0;
	off = end && end >= s->text ? (size_t)(end - s->text) : 0;
	if (off > s->len)
		off = s->len;
	off = js_error_fix(s->text, off);
	for (n = 0; off + n < s->len && n < 24; n++)
		if (s->text[off + n] == '\n' || s->text[off + n] == '\r')
			break;
	while (n && off + n < s->len && ((unsigned char)s->text[off + n] & 0xc0) == 0x80)
		n--;     /* do not cut a UTF-8 character */
	if (off >= s->len) {
		err_at(c, s, off, "JSON syntax error at end of file");
	} else if (!n) {
		err_at(c, s, off, "JSON syntax error at end of line");
	} else {
		char *ex = xstrndup(s->text + off, n);

		strbuf_puts(&b, "");
		sb_escape(&b, ex, n, 0);
		err_at(c, s, off, "JSON syntax error near '%s%s'", b.buf,
		       off + n < s->len && s->text[off + n] != '\n' &&
		       s->text[off + n] != '\r' ? "..." : "");
		free(ex);
		free(b.buf);
	}
	return -1;
}

/* ---- sorting helpers ---------------------------------------------------- */

struct named {
	const char *name;
	size_t i, j;            /* two indexes, compared in order */
};

static int named_cmp(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	if (r)
		return r;
	if (x->i != y->i)
		return x->i < y->i ? -1 : 1;
	return x->j < y->j ? -1 : x->j > y->j;
}

/* First entry of the sorted v[0..n) named name, or NO_POS. */
static size_t named_find(const struct named *v, size_t n, const char *name)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(v[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && !strcmp(v[lo].name, name) ? lo : NO_POS;
}

struct member {
	cJSON *item;
	size_t pos;
};

static int member_cmp(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	int r = strcmp(x->item->string, y->item->string);

	if (r)
		return r;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Sort the keys of every object in j (recursively; stable for repeats). */
static void json_sort(cJSON *j)
{
	struct member *v;
	cJSON *it;
	size_t n = 0, i;

	for (it = j->child; it; it = it->next, n++)
		json_sort(it);
	if (!cJSON_IsObject(j) || n < 2)
		return;
	v = xmalloc(n * sizeof *v);
	for (i = 0, it = j->child; it; it = it->next, i++) {
		v[i].item = it;
		v[i].pos = i;
	}
	qsort(v, n, sizeof *v, member_cmp);
	j->child = v[0].item;
	for (i = 0; i < n; i++) {
		v[i].item->next = i + 1 < n ? v[i + 1].item : NULL;
		v[i].item->prev = i ? v[i - 1].item : v[n - 1].item;
	}
	free(v);
}

/* ---- pipeline.json ------------------------------------------------------ */

/* Check the param names of an object (context or a step's override);
 * dup[i] is set for each member that repeats an earlier key. */
static void params_check_keys(struct ctx *c, struct src *s, cJSON *obj,
                              size_t vo, unsigned char *dup)
{
	struct named *v;
	size_t *koff = NULL, nk, n = 0, i;
	cJSON *it;

	nk = js_children(s->text, vo, &koff, NULL);
	for (it = obj->child; it; it = it->next)
		n++;
	v = xcalloc(n, sizeof *v);
	for (i = 0, it = obj->child; it; it = it->next, i++) {
		v[i].name = it->string;
		v[i].i = i;
		if (!step_param_name_valid(it->string))
			err_at(c, s, i < nk ? koff[i] : vo,
			       "invalid param name %s (" PARAM_RULE ")",
			       q(c, it->string));
	}
	qsort(v, n, sizeof *v, named_cmp);
	for (i = 1; i < n; i++)
		if (!strcmp(v[i].name, v[i - 1].name)) {
			dup[v[i].i] = 1;
			err_at(c, s, v[i].i < nk ? koff[v[i].i] : vo,
			       "param %s is set twice", q(c, v[i].name));
		}
	free(v);
	free(koff);
}

static void step_context(struct ctx *c, int present)
{
	struct pipeline_def *p = c->p;
	struct src s = {0};
	size_t *koff = NULL, *voff = NULL, n, i, obj, seen[3];
	unsigned char *dup = NULL;
	cJSON *root = NULL, *it;
	struct member *m = NULL;
	int r;

	p->params = xjson(cJSON_CreateObject());
	p->autorun = 1;
	c->ctx_ok = 1;
	if (!present)
		goto index;
	s.disp = xstrdup("pipeline.json");
	r = src_read(c, &s, "pipeline.json");
	if (r == 1)
		goto index;
	if (r < 0 || src_parse(c, &s, &root)) {
		c->ctx_ok = 0;   /* no context: do not blame the steps for it */
		goto index;
	}
	obj = js_start(s.text);
	if (!cJSON_IsObject(root)) {
		c->ctx_ok = 0;
		err_at(c, &s, obj, "pipeline.json must hold a JSON object");
		goto index;
	}
	seen[0] = seen[1] = seen[2] = NO_POS;
	n = js_children(s.text, obj, &koff, &voff);
	for (i = 0, it = root->child; it; it = it->next, i++) {
		size_t ko = i < n ? koff[i] : obj, vo = i < n ? voff[i] : obj;
		int k = !strcmp(it->string, "params") ? 0 :
		        !strcmp(it->string, "description") ? 1 :
		        !strcmp(it->string, "workdir") ? 2 : -1;

		if (k < 0) {
			err_at(c, &s, ko, "unknown key %s", q(c, it->string));
			continue;
		}
		if (seen[k] != NO_POS) {
			err_at(c, &s, ko, "duplicate key %s", q(c, it->string));
			continue;
		}
		seen[k] = ko;
		if (k == 0 && !cJSON_IsObject(it)) {
			c->ctx_ok = 0;
			err_at(c, &s, ko, "\"params\" must be an object of name: value");
		} else if (k == 0) {
			dup = xcalloc((size_t)cJSON_GetArraySize(it) + 1, 1);
			params_check_keys(c, &s, it, vo, dup);
			free(dup);
			cJSON_Delete(p->params);
			p->params = xjson(cJSON_Duplicate(it, 1));
		} else if (k == 1 && !cJSON_IsString(it)) {
			err_at(c, &s, ko, "\"description\" must be a string");
		} else if (k == 1) {
			p->description = xstrdup(it->valuestring);
		} else if (!cJSON_IsString(it) || it->valuestring[0] != '/') {
			err_at(c, &s, ko, "\"workdir\" must be an absolute path");
		} else {
			p->workdir = xstrdup(it->valuestring);
		}
	}
index:
	/* Run-time overrides replace context values before steps take them. */
	if (c->checks && c->checks->overrides)
		for (const cJSON *o = c->checks->overrides->child; o; o = o->next)
			if (cJSON_GetObjectItemCaseSensitive(p->params, o->string) &&
			    !cJSON_ReplaceItemInObjectCaseSensitive(p->params, o->string,
			                                            xjson(cJSON_Duplicate(o, 1))))
				util_oom();
	/* Sorted by key, first occurrence first: lookups match cJSON's. */
	for (it = p->params->child; it; it = it->next)
		c->n_ctx++;
	m = xcalloc(c->n_ctx, sizeof *m);
	for (i = 0, it = p->params->child; it; it = it->next, i++) {
		m[i].item = it;
		m[i].pos = i;
	}
	qsort(m, c->n_ctx, sizeof *m, member_cmp);
	c->ctx_idx = xcalloc(c->n_ctx, sizeof *c->ctx_idx);
	for (i = 0; i < c->n_ctx; i++)
		c->ctx_idx[i] = m[i].item;
	free(m);
	err_dropped(c, &s);
	free(voff);
	free(koff);
	cJSON_Delete(root);
	src_free(&s);
}

static cJSON *context_find(const struct ctx *c, const char *name)
{
	size_t lo = 0, hi = c->n_ctx;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(c->ctx_idx[mid]->string, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->n_ctx && !strcmp(c->ctx_idx[lo]->string, name) ?
	       c->ctx_idx[lo] : NULL;
}

/* ---- one step ----------------------------------------------------------- */

static void input_clear(struct step_input *in)
{
	free(in->hex);
	free(in->path);
	free(in->artifact);
	free(in->pipeline);
	free(in->as);
	free(in->ref);
	memset(in, 0, sizeof *in);
	in->producer = -1;
}

static int hex64(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\0';
}

/* Parse the reference ref (at offset off of s) into in. Returns 0, or -1
 * after reporting what is wrong with it. */
static int input_parse(struct ctx *c, struct src *s, size_t off,
                       const char *ref, struct step_input *in)
{
	const char *slash = strchr(ref, '/');

	memset(in, 0, sizeof *in);
	in->producer = -1;
	if (!strncmp(ref, "file:", 5)) {
		const char *path = ref + 5, *end, *base;

		if (path[0] != '/') {
			err_at(c, s, off, "input %s: a file: path must be absolute", q(c, ref));
			return -1;
		}
		if (has_control(path)) {
			err_at(c, s, off, "input %s: a file: path must not contain "
			       "control characters", q(c, ref));
			return -1;
		}
		if (path_has_component(path, "..") || path_has_component(path, ".")) {
			err_at(c, s, off, "input %s: a file: path must not contain "
			       "\".\" or \"..\" components", q(c, ref));
			return -1;
		}
		end = path + strlen(path);
		while (end > path && end[-1] == '/')
			end--;
		if (end == path) {
			err_at(c, s, off, "input %s: a file: path must name a file or "
			       "directory below /", q(c, ref));
			return -1;
		}
		for (base = end; base > path && base[-1] != '/'; base--)
			;
		if (c->checks && c->checks->file_input) {
			const char *why = c->checks->file_input(path, c->checks->arg);
			if (why) {
				err_at(c, s, off, "input %s: %s", q(c, ref), why);
				return -1;
			}
		}
		in->kind = STEP_IN_FILE;
		in->path = xstrdup(path);
		in->as = xstrndup(base, (size_t)(end - base));
	} else if (!strncmp(ref, "sha256:", 7)) {
		if (!hex64(ref + 7)) {
			err_at(c, s, off, "input %s: expected 64 lowercase hex digits "
			       "after sha256:", q(c, ref));
			return -1;
		}
		in->kind = STEP_IN_PINNED;
		in->hex = xstrdup(ref + 7);
		in->as = xstrdup(in->hex);
	} else if (slash && !strchr(slash + 1, '/') && !strchr(ref, ':')) {
		char *pl = xstrndup(ref, (size_t)(slash - ref));

		if (!step_name_valid(pl)) {
			err_at(c, s, off, "input %s: invalid pipeline name %s (" NAME_RULE ")",
			       q(c, ref), q(c, pl));
			free(pl);
			return -1;
		}
		if (!step_name_valid(slash + 1)) {
			err_at(c, s, off, "input %s: invalid artifact name %s (" NAME_RULE ")",
			       q(c, ref), q(c, slash + 1));
			free(pl);
			return -1;
		}
		in->kind = STEP_IN_PIPELINE;
		in->pipeline = pl;
		in->artifact = xstrdup(slash + 1);
		in->as = xstrdup(in->artifact);
	} else if (slash || strchr(ref, ':')) {
		err_at(c, s, off, "input %s: invalid reference (expected name, "
		       "pipeline/name, file:/abs/path or sha256:<64 hex digits>)", q(c, ref));
		return -1;
	} else if (!step_name_valid(ref)) {
		err_at(c, s, off, "input %s: invalid artifact name (" NAME_RULE ")",
		       q(c, ref));
		return -1;
	} else {
		in->kind = STEP_IN_LOCAL;
		in->artifact = xstrdup(ref);
		in->as = xstrdup(ref);
	}
	in->ref = xstrdup(ref);
	return 0;
}

static void step_inputs(struct ctx *c, struct step_def *st, struct sfile *f,
                        cJSON *arr, size_t ko, size_t vo)
{
	size_t *eoff = NULL, ne, n, i;
	struct named *v = NULL;
	cJSON *e;

	if (!cJSON_IsArray(arr)) {
		err_at(c, &f->src, ko, "\"inputs\" must be an array of strings");
		return;
	}
	n = (size_t)cJSON_GetArraySize(arr);
	ne = js_children(f->src.text, vo, &eoff, NULL);
	st->inputs = xcalloc(n, sizeof *st->inputs);
	f->in_pos = xcalloc(n, sizeof *f->in_pos);
	for (i = 0, e = arr->child; e; e = e->next, i++) {
		size_t eo = i < ne ? eoff[i] : ko;

		if (!cJSON_IsString(e)) {
			err_at(c, &f->src, eo, "\"inputs\" must be an array of strings");
			continue;
		}
		if (input_parse(c, &f->src, eo, e->valuestring,
		                &st->inputs[st->n_inputs]))
			continue;
		f->in_pos[st->n_inputs++] = eo;
	}
	/* Two inputs may not land on the same in/<as>. */
	v = xcalloc(st->n_inputs, sizeof *v);
	for (i = 0; i < st->n_inputs; i++) {
		v[i].name = st->inputs[i].as;
		v[i].i = i;
	}
	qsort(v, st->n_inputs, sizeof *v, named_cmp);
	for (i = 1; i < st->n_inputs; i++)
		if (!strcmp(v[i].name, v[i - 1].name)) {
			char *as = plain(v[i].name);

			err_at(c, &f->src, f->in_pos[v[i].i],
			       "inputs %s and %s would both be in/%s",
			       q(c, st->inputs[v[i - 1].i].ref),
			       q(c, st->inputs[v[i].i].ref), as);
			free(as);
		}
	free(v);
	free(eoff);
}

static void step_outputs(struct ctx *c, struct step_def *st, struct sfile *f,
                         cJSON *arr, size_t ko, size_t vo)
{
	size_t *eoff = NULL, ne, n, i;
	struct named *v = NULL;
	cJSON *e;

	if (!cJSON_IsArray(arr)) {
		f->outputs_known = 0;
		err_at(c, &f->src, ko, "\"outputs\" must be an array of strings");
		return;
	}
	n = (size_t)cJSON_GetArraySize(arr);
	ne = js_children(f->src.text, vo, &eoff, NULL);
	st->outputs = xcalloc(n, sizeof *st->outputs);
	f->out_pos = xcalloc(n, sizeof *f->out_pos);
	for (i = 0, e = arr->child; e; e = e->next, i++) {
		size_t eo = i < ne ? eoff[i] : ko;

		if (!cJSON_IsString(e)) {
			f->outputs_known = 0;
			err_at(c, &f->src, eo, "\"outputs\" must be an array of strings");
			continue;
		}
		if (!step_name_valid(e->valuestring))
			err_at(c, &f->src, eo, "invalid output name %s (" NAME_RULE ")",
			       q(c, e->valuestring));
		f->out_pos[st->n_outputs] = eo;
		st->outputs[st->n_outputs++] = xstrdup(e->valuestring);
	}
	v = xcalloc(st->n_outputs, sizeof *v);
	for (i = 0; i < st->n_outputs; i++) {
		v[i].name = st->outputs[i];
		v[i].i = i;
	}
	qsort(v, st->n_outputs, sizeof *v, named_cmp);
	for (i = 1; i < st->n_outputs; i++)
		if (!strcmp(v[i].name, v[i - 1].name))
			err_at(c, &f->src, f->out_pos[v[i].i], "output %s is listed twice",
			       q(c, v[i].name));
	free(v);
	free(eoff);
}

static void step_params(struct ctx *c, struct step_def *st, struct sfile *f,
                        cJSON *val, size_t ko, size_t vo)
{
	size_t *eoff = NULL, ne, n, i;
	unsigned char *skip = NULL;
	struct named *v = NULL;
	cJSON *e;

	if (cJSON_IsObject(val)) {
		skip = xcalloc((size_t)cJSON_GetArraySize(val) + 1, 1);
		params_check_keys(c, &f->src, val, vo, skip);
		for (i = 0, e = val->child; e; e = e->next, i++)
			if (!skip[i])
				cJSON_AddItemToObject(st->params, e->string,
				                      xjson(cJSON_Duplicate(e, 1)));
		goto out;
	}
	if (!cJSON_IsArray(val)) {
		err_at(c, &f->src, ko, "\"params\" must be an array of names or an object");
		goto out;
	}
	n = (size_t)cJSON_GetArraySize(val);
	ne = js_children(f->src.text, vo, &eoff, NULL);
	skip = xcalloc(n + 1, 1);
	v = xcalloc(n, sizeof *v);
	for (i = 0, e = val->child; e; e = e->next, i++) {
		v[i].name = cJSON_IsString(e) ? e->valuestring : "";
		v[i].i = i;
		if (!cJSON_IsString(e)) {
			skip[i] = 1;
			err_at(c, &f->src, i < ne ? eoff[i] : ko,
			       "\"params\" must be an array of names or an object");
		} else if (!step_param_name_valid(e->valuestring)) {
			skip[i] = 1;
			err_at(c, &f->src, i < ne ? eoff[i] : ko,
			       "invalid param name %s (" PARAM_RULE ")", q(c, e->valuestring));
		}
	}
	qsort(v, n, sizeof *v, named_cmp);
	for (i = 1; i < n; i++)
		if (skip[v[i].i] != 1 && skip[v[i - 1].i] != 1 &&
		    !strcmp(v[i].name, v[i - 1].name)) {
			skip[v[i].i] = 2;
			err_at(c, &f->src, v[i].i < ne ? eoff[v[i].i] : ko,
			       "param %s is listed twice", q(c, v[i].name));
		}
	for (i = 0, e = val->child; e; e = e->next, i++) {
		cJSON *cv;

		if (skip[i])
			continue;
		cv = context_find(c, e->valuestring);
		if (!cv && c->ctx_ok)
			err_at(c, &f->src, i < ne ? eoff[i] : ko,
			       "param %s is not in pipeline.json params", q(c, e->valuestring));
		if (cv)
			cJSON_AddItemToObject(st->params, e->valuestring,
			                      xjson(cJSON_Duplicate(cv, 1)));
	}
out:
	free(v);
	free(skip);
	free(eoff);
}

static void step_code(struct ctx *c, struct step_def *st, struct sfile *f,
                      cJSON *arr, size_t ko, size_t vo)
{
	size_t *eoff = NULL, ne, n, i;
	struct stat sb;
	cJSON *e;

	st->code_default = 0;
	if (!cJSON_IsArray(arr)) {
		err_at(c, &f->src, ko, "\"code\" must be an array of paths");
		return;
	}
	n = (size_t)cJSON_GetArraySize(arr);
	ne = js_children(f->src.text, vo, &eoff, NULL);
	st->code = xcalloc(n, sizeof *st->code);
	for (i = 0, e = arr->child; e; e = e->next, i++) {
		size_t eo = i < ne ? eoff[i] : ko;
		const char *path = e->valuestring;

		if (!cJSON_IsString(e)) {
			err_at(c, &f->src, eo, "\"code\" must be an array of paths");
		} else if (!path[0]) {
			err_at(c, &f->src, eo, "code path must not be empty");
		} else if (path[0] == '/') {
			err_at(c, &f->src, eo, "code path %s must be relative to the "
			       "pipeline directory", q(c, path));
		} else if (path_has_component(path, "..")) {
			err_at(c, &f->src, eo, "code path %s must not contain \"..\"",
			       q(c, path));
		} else if (fstatat(c->dirfd, path, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				err_at(c, &f->src, eo, "code path %s does not exist", q(c, path));
			else
				err_at(c, &f->src, eo, "code path %s: %s", q(c, path),
				       strerror(errno));
		} else {
			st->code[st->n_code++] = xstrdup(path);
		}
	}
	free(eoff);
}

enum { K_RUN, K_INPUTS, K_OUTPUTS, K_PARAMS, K_CODE, K_RETRIES, K_TIMEOUT,
       K_DESCRIPTION, K_N };

static const char *const step_keys[K_N] = {
	"run", "inputs", "outputs", "params", "code", "retries", "timeout",
	"description",
};

/* Parse and check the step st from f; cross-step checks come later. */
static void step_parse(struct ctx *c, struct step_def *st, struct sfile *f)
{
	size_t *koff = NULL, *voff = NULL, n, i, seen[K_N];
	cJSON *it, *dup;
	int k;

	st->params = xjson(cJSON_CreateObject());
	st->code_default = 1;
	st->foreach_input = -1;
	st->min_success = 1;
	if (!step_name_valid(st->name))
		err_file(c, f->src.disp, "invalid step name %s (" NAME_RULE ")",
		         q(c, st->name));
	if (!f->src.text || src_parse(c, &f->src, &f->root))
		return;
	f->obj = js_start(f->src.text);
	if (!cJSON_IsObject(f->root)) {
		err_at(c, &f->src, f->obj, "a step definition must be a JSON object");
		return;
	}
	f->outputs_known = 1;
	for (k = 0; k < K_N; k++)
		seen[k] = NO_POS;
	n = js_children(f->src.text, f->obj, &koff, &voff);
	for (i = 0, it = f->root->child; it; it = it->next, i++) {
		size_t ko = i < n ? koff[i] : f->obj, vo = i < n ? voff[i] : f->obj;

		for (k = 0; k < K_N && strcmp(it->string, step_keys[k]); k++)
			;
		if (k == K_N) {
			err_at(c, &f->src, ko, "unknown key %s", q(c, it->string));
			continue;
		}
		if (seen[k] != NO_POS) {
			err_at(c, &f->src, ko, "duplicate key %s", q(c, it->string));
			continue;
		}
		seen[k] = ko;
		switch (k) {
		case K_RUN:
			if (!cJSON_IsString(it) || !it->valuestring[0])
				err_at(c, &f->src, ko, "\"run\" must be a non-empty string");
			else
				st->run = xstrdup(it->valuestring);
			break;
		case K_INPUTS:
			step_inputs(c, st, f, it, ko, vo);
			break;
		case K_OUTPUTS:
			step_outputs(c, st, f, it, ko, vo);
			break;
		case K_PARAMS:
			step_params(c, st, f, it, ko, vo);
			break;
		case K_CODE:
			step_code(c, st, f, it, ko, vo);
			break;
		case K_RETRIES:
			if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0 &&
			    it->valuedouble <= 100) ||
			    (double)(int)it->valuedouble != it->valuedouble)
				err_at(c, &f->src, ko,
				       "\"retries\" must be an integer from 0 to 100");
			else
				st->retries = (int)it->valuedouble;
			break;
		case K_TIMEOUT:
			if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) ||
			    !(it->valuedouble > 0))
				err_at(c, &f->src, ko, "\"timeout\" must be a number of "
				       "seconds greater than 0");
			else
				st->timeout = it->valuedouble;
			break;
		case K_DESCRIPTION:
			if (!cJSON_IsString(it))
				err_at(c, &f->src, ko, "\"description\" must be a string");
			else
				st->description = xstrdup(it->valuestring);
			break;
		}
	}
	if (seen[K_RUN] == NO_POS)
		err_at(c, &f->src, f->obj, "missing required key \"run\"");
	/* The cache key covers what the step does, not how it is described. */
	dup = xjson(cJSON_Duplicate(f->root, 1));
	cJSON_DeleteItemFromObjectCaseSensitive(dup, "description");
	json_sort(dup);
	st->canonical = cJSON_PrintUnformatted(dup);
	if (!st->canonical)
		util_oom();
	cJSON_Delete(dup);
	free(voff);
	free(koff);
}

/* ---- across steps ------------------------------------------------------- */

/* Outputs produced once; LOCAL inputs resolved to their producer. */
static void step_link(struct ctx *c)
{
	struct pipeline_def *p = c->p;
	struct named *v;
	size_t n = 0, i, j, s, k;
	int known = 1;

	for (s = 0; s < p->n_steps; s++) {
		n += p->steps[s].n_outputs;
		known &= c->files[s].outputs_known;
	}
	v = xcalloc(n, sizeof *v);
	for (n = 0, s = 0; s < p->n_steps; s++)
		for (i = 0; i < p->steps[s].n_outputs; i++, n++) {
			v[n].name = p->steps[s].outputs[i];
			v[n].i = s;
			v[n].j = i;
		}
	qsort(v, n, sizeof *v, named_cmp);
	for (i = 0; i < n; i = j) {
		size_t last = v[i].i;

		for (j = i + 1; j < n && !strcmp(v[j].name, v[i].name); j++) {
			if (v[j].i == last)
				continue;
			last = v[j].i;
			err_at(c, &c->files[last].src, c->files[last].out_pos[v[j].j],
			       "output %s is produced by both %s and %s", q(c, v[i].name),
			       q(c, p->steps[v[i].i].name), q(c, p->steps[last].name));
		}
	}
	for (s = 0; s < p->n_steps; s++) {
		struct step_def *st = &p->steps[s];
		struct sfile *f = &c->files[s];

		for (i = 0; i < st->n_inputs; i++) {
			struct step_input *in = &st->inputs[i];

			if (in->kind != STEP_IN_LOCAL)
				continue;
			k = named_find(v, n, in->artifact);
			if (k == NO_POS) {
				if (known)
					err_at(c, &f->src, f->in_pos[i],
					       "input %s is not produced by any step",
					       q(c, in->ref));
				continue;
			}
			in->producer = (int)v[k].i;
			if (v[k].i == s) {
				char *name = plain(st->name);

				err_at(c, &f->src, f->in_pos[i], "cycle: %s -> %s",
				       name, name);
				free(name);
			}
		}
	}
	free(v);
}

static void step_cycle_check(struct ctx *c)
{
	struct pipeline_def *p = c->p;
	size_t *order = xcalloc(p->n_steps, sizeof *order), s, len;
	char *cycle = NULL, *arrow;

	if (!dag_order(order, p, &cycle)) {
		p->order = order;
		order = NULL;
		goto out;
	}
	if (!cycle) {
		err_file(c, NULL, "cannot order the steps");
		goto out;
	}
	arrow = strstr(cycle, " -> ");
	len = arrow ? (size_t)(arrow - cycle) : strlen(cycle);
	for (s = 0; s < p->n_steps; s++)
		if (strlen(p->steps[s].name) == len &&
		    !strncmp(p->steps[s].name, cycle, len))
			break;
	err_file(c, s < p->n_steps ? c->files[s].src.disp : NULL, "cycle: %s", cycle);
out:
	free(cycle);
	free(order);
}

/* ---- the entry points ---------------------------------------------------- */

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_json_suffix(const char *name)
{
	size_t n = strlen(name);

	return n > 5 && !strcmp(name + n - 5, ".json");
}

int step_load(struct pipeline_def **out, const char *name, const char *dir)
{
	return step_load_checked(out, name, dir, NULL);
}

int step_load_checked(struct pipeline_def **out, const char *name, const char *dir,
                      const struct step_checks *checks)
{
	struct pipeline_def *p = NULL;
	struct ctx c = {0};
	char **names = NULL;
	size_t n_names = 0, cap_names = 0, cap_steps = 0, i;
	int ret = 0, dfd = -1, has_ctx = 0;
	DIR *d = NULL;
	struct dirent *de;
	struct stat sb;

	*out = NULL;
	c.checks = checks;
	c.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c.dirfd < 0) {
		ret = -errno;
		goto out;
	}
	dfd = dup(c.dirfd);
	if (dfd < 0 || !(d = fdopendir(dfd))) {
		ret = -errno;
		goto out;
	}
	dfd = -1;
	p = xcalloc(1, sizeof *p);
	c.p = p;
	p->name = xstrdup(name);
	p->dir = xstrdup(dir);
	if (!step_name_valid(name))
		err_file(&c, NULL, "invalid pipeline name %s (" NAME_RULE ")", q(&c, name));

	/* The step files: top-level *.json, dot-files ignored, folders are code. */
	for (errno = 0; (de = readdir(d)); errno = 0) {
		if (de->d_name[0] == '.' || !has_json_suffix(de->d_name))
			continue;
		if (fstatat(c.dirfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(sb.st_mode))
			continue;
		if (!S_ISREG(sb.st_mode)) {
			char *disp = plain(de->d_name);

			err_file(&c, disp, "not a regular file (definitions must be "
			         "regular files)");
			free(disp);
			continue;
		}
		if (!strcmp(de->d_name, "pipeline.json")) {
			has_ctx = 1;
			continue;
		}
		GROW(names, cap_names, n_names);
		names[n_names++] = xstrdup(de->d_name);
	}
	if (errno) {
		ret = -errno;
		goto out;
	}
	if (n_names)
		qsort(names, n_names, sizeof *names, str_cmp);
	step_context(&c, has_ctx);

	for (i = 0; i < n_names; i++) {
		struct sfile f = {0};
		struct step_def *st;
		int r;

		f.src.disp = plain(names[i]);
		r = src_read(&c, &f.src, names[i]);
		if (r == 1) {
			src_free(&f.src);
			continue;
		}
		GROW(p->steps, cap_steps, p->n_steps);
		c.files = xrealloc(c.files, cap_steps * sizeof *c.files);
		st = &p->steps[p->n_steps];
		memset(st, 0, sizeof *st);
		st->file = names[i];
		st->name = xstrndup(names[i], strlen(names[i]) - 5);
		names[i] = NULL;
		c.files[p->n_steps++] = f;
	}
	for (i = 0; i < p->n_steps; i++)
		step_parse(&c, &p->steps[i], &c.files[i]);
	step_link(&c);
	if (!p->n_steps)
		err_file(&c, NULL, "pipeline has no steps (write a <step>.json)");
	if (!c.n_errs && !c.dropped)
		step_cycle_check(&c);
	for (i = 0; i < p->n_steps; i++)
		err_dropped(&c, &c.files[i].src);
	errs_finish(&c);
	*out = p;
	p = NULL;
out:
	for (i = 0; i < c.n_errs; i++) {
		free(c.errs[i].msg);
		free(c.errs[i].file);
	}
	free(c.errs);
	tmp_clear(&c);
	free(c.tmp);
	free(c.ctx_idx);
	for (i = 0; c.p && i < c.p->n_steps; i++) {
		free(c.files[i].out_pos);
		free(c.files[i].in_pos);
		cJSON_Delete(c.files[i].root);
		src_free(&c.files[i].src);
	}
	free(c.files);
	for (i = 0; i < n_names; i++)
		free(names[i]);
	free(names);
	if (d)
		closedir(d);
	if (dfd >= 0)
		close(dfd);
	if (c.dirfd >= 0)
		close(c.dirfd);
	step_free(p);
	return ret;
}

void step_free(struct pipeline_def *p)
{
	size_t i, j;

	if (!p)
		return;
	for (i = 0; i < p->n_errors; i++)
		free(p->errors[i]);
	free(p->errors);
	free(p->order);
	for (i = 0; i < p->n_steps; i++) {
		struct step_def *st = &p->steps[i];

		cJSON_free(st->canonical);
		for (j = 0; j < st->n_code; j++)
			free(st->code[j]);
		free(st->code);
		cJSON_Delete(st->params);
		for (j = 0; j < st->n_outputs; j++)
			free(st->outputs[j]);
		free(st->outputs);
		for (j = 0; j < st->n_inputs; j++)
			input_clear(&st->inputs[j]);
		free(st->inputs);
		free(st->description);
		free(st->run);
		free(st->file);
		free(st->name);
	}
	free(p->steps);
	free(p->workdir);
	free(p->description);
	cJSON_Delete(p->params);
	free(p->dir);
	free(p->name);
	free(p);
}

int step_producer(const struct pipeline_def *p, const char *artifact)
{
	size_t i, j;

	if (!p || !artifact)
		return -1;
	for (i = 0; i < p->n_steps; i++)
		for (j = 0; j < p->steps[i].n_outputs; j++)
			if (!strcmp(p->steps[i].outputs[j], artifact))
				return (int)i;
	return -1;
}
