/*
 * diag.c - the problems found in a pipeline definition, as a user reads
 * them in .status.
 *
 * Validation does not stop at the first problem: every parser adds what
 * it finds here, with the offset in the file it concerns, and
 * diag_finish() sorts the lot by file, line and column (then by the order
 * found) and formats "<file>:<line>:<col>: <message>". User text inside a
 * message is quoted and escaped so one message stays one line. Hostile
 * input stays cheap: at most DIAG_FILE_MAX messages per file and DIAG_MAX
 * per pipeline are kept, the rest counted. An unknown key gets a
 * suggestion when it is a near miss of a known one (Damerau distance <= 2
 * or a difference of case only).
 */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/diag.h"
#include "flowyfs/util.h"

struct diag_err {
	char *file;             /* NULL: about the whole pipeline */
	int line, col;          /* line 0 or INT_MAX: no position */
	size_t seq;
	char *msg;
};

/* ---- quoting ----------------------------------------------------------- */

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

static void tmp_clear(struct diag *d)
{
	while (d->n_tmp)
		free(d->tmp[--d->n_tmp]);
}

const char *diag_quote(struct diag *d, const char *s)
{
	struct strbuf b = {0};

	sb_putc(&b, '"');
	sb_escape(&b, s, DIAG_QUOTE_MAX, '"');
	sb_putc(&b, '"');
	GROW(d->tmp, d->cap_tmp, d->n_tmp);
	d->tmp[d->n_tmp++] = b.buf;
	return b.buf;
}

char *diag_plain(const char *s)
{
	struct strbuf b = {0};

	strbuf_puts(&b, "");
	sb_escape(&b, s, (size_t)-1 / 2, 0);
	return b.buf;
}

/* ---- the list ------------------------------------------------------------ */

static void diag_vadd(struct diag *d, const char *file, int line, int col,
                      const char *fmt, va_list ap)
{
	struct diag_err *e;
	char *msg;

	if (d->n >= DIAG_MAX) {
		d->dropped++;
		goto out;
	}
	if (vasprintf(&msg, fmt, ap) < 0)
		util_oom();
	GROW(d->errs, d->cap, d->n);
	e = &d->errs[d->n];
	e->file = file ? xstrdup(file) : NULL;
	e->line = line;
	e->col = col;
	e->seq = d->n++;
	e->msg = msg;
out:
	tmp_clear(d);
}

void diag_file(struct diag *d, const char *file, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(d, file, 0, 0, fmt, ap);
	va_end(ap);
}

void diag_at(struct diag *d, struct jpos_src *s, size_t off, const char *fmt, ...)
{
	va_list ap;
	int line, col;

	if (s->n_errs >= DIAG_FILE_MAX) {
		s->dropped++;
		tmp_clear(d);
		return;
	}
	s->n_errs++;
	jpos_at(s, off, &line, &col);
	va_start(ap, fmt);
	diag_vadd(d, s->disp, line, col, fmt, ap);
	va_end(ap);
}

static void diag_pos(struct diag *d, const char *file, int line, int col,
                     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(d, file, line, col, fmt, ap);
	va_end(ap);
}

void diag_dropped(struct diag *d, const struct jpos_src *s)
{
	if (s->dropped)
		diag_pos(d, s->disp, INT_MAX, 0, "too many errors in this file: %zu "
		         "more not shown", s->dropped);
}

size_t diag_count(const struct diag *d)
{
	return d->n + d->dropped;
}

static int diag_err_cmp(const void *a, const void *b)
{
	const struct diag_err *x = a, *y = b;
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


void diag_finish(struct diag *d, char ***out, size_t *n)
{
	char **v;
	size_t i, k;

	if (d->n)
		qsort(d->errs, d->n, sizeof *d->errs, diag_err_cmp);
	v = xcalloc(d->n + 2, sizeof *v);
	for (i = 0; i < d->n; i++) {
		struct diag_err *e = &d->errs[i];
		int r;

		if (!e->file)
			r = asprintf(&v[i], "%s", e->msg);
		else if (!e->line || e->line == INT_MAX)
			r = asprintf(&v[i], "%s: %s", e->file, e->msg);
		else
			r = asprintf(&v[i], "%s:%d:%d: %s", e->file, e->line, e->col,
			             e->msg);
		if (r < 0)
			util_oom();
	}
	k = d->n;
	if (d->dropped &&
	    asprintf(&v[k++], "too many errors: %zu more not shown", d->dropped) < 0)
		util_oom();
	diag_free(d);
	*out = v;
	*n = k;
}

void diag_free(struct diag *d)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		free(d->errs[i].msg);
		free(d->errs[i].file);
	}
	free(d->errs);
	tmp_clear(d);
	free(d->tmp);
	memset(d, 0, sizeof *d);
}

/* ---- near misses ----------------------------------------------------------- */

/* Optimal-string-alignment distance of a and b ignoring case, or 3 when it
 * is more than 2. Keys are short; a long unknown key is cut off by the
 * length test before any work. */
static int diag_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	int *d, r;

	if ((la > lb ? la - lb : lb - la) > 2)
		return 3;
	d = xcalloc((la + 1) * (lb + 1), sizeof *d);
#define D(i, j) d[(i) * (lb + 1) + (j)]
	for (i = 0; i <= la; i++)
		D(i, 0) = (int)i;
	for (j = 0; j <= lb; j++)
		D(0, j) = (int)j;
	for (i = 1; i <= la; i++)
		for (j = 1; j <= lb; j++) {
			int ca = tolower((unsigned char)a[i - 1]);
			int cb = tolower((unsigned char)b[j - 1]);
			int v = D(i - 1, j - 1) + (ca != cb);

			if (D(i - 1, j) + 1 < v)
				v = D(i - 1, j) + 1;
			if (D(i, j - 1) + 1 < v)
				v = D(i, j - 1) + 1;
			if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb &&
			    D(i - 2, j - 2) + 1 < v)
				v = D(i - 2, j - 2) + 1;
			D(i, j) = v;
		}
	r = D(la, lb);
#undef D
	free(d);
	return r > 2 ? 3 : r;
}

int diag_near(const char *word, const char *known)
{
	return diag_distance(word, known) <= 2;
}

void diag_unknown_key(struct diag *d, struct jpos_src *s, size_t off,
                      const char *key, const void *known, size_t n, size_t stride)
{
	const char *best = NULL;
	int best_d = 3;
	size_t i;

	for (i = 0; i < n; i++) {
		const char *k = *(const char *const *)((const char *)known + i * stride);
		int dist = diag_distance(key, k);

		if (dist < best_d) {
			best = k;
			best_d = dist;
		}
	}
	if (best)
		diag_at(d, s, off, "unknown key %s (did you mean %s?)",
		        diag_quote(d, key), diag_quote(d, best));
	else
		diag_at(d, s, off, "unknown key %s", diag_quote(d, key));
}
