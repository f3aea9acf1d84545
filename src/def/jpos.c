/*
 * jpos.c - positions in JSON text for messages about definitions.
 *
 * cJSON parses a definition but forgets where each value was. The files
 * are small and already known to be valid JSON when positions are wanted,
 * so instead of a second parser this file has a scanner that only skips
 * values: jpos_children() lists the offsets of the members of an object
 * (or elements of an array) in source order, which match cJSON's child
 * list one to one. A table of line starts turns an offset into line:col
 * in O(log n). It also sorts cJSON keys for the canonical form of a step.
 */
#include <stdlib.h>
#include <string.h>

#include "flowyfs/jpos.h"
#include "flowyfs/util.h"

void jpos_lines(struct jpos_src *s)
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

void jpos_at(const struct jpos_src *s, size_t off, int *line, int *col)
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

void jpos_free(struct jpos_src *s)
{
	free(s->ls);
	free(s->text);
	free(s->disp);
}

/* cJSON skips every byte <= 32 as whitespace; so do we. */
static size_t jpos_ws(const char *s, size_t i)
{
	while (s[i] && (unsigned char)s[i] <= 32)
		i++;
	return i;
}

/* Offset of the top-level value (cJSON skips a UTF-8 BOM too). */
size_t jpos_start(const char *s)
{
	return jpos_ws(s, strncmp(s, "\xef\xbb\xbf", 3) ? 0 : 3);
}

static size_t jpos_skip_string(const char *s, size_t i)
{
	for (i++; s[i] && s[i] != '"'; i++)
		if (s[i] == '\\' && s[i + 1])
			i++;
	return s[i] ? i + 1 : i;
}

static size_t jpos_skip_value(const char *s, size_t i)
{
	size_t depth = 0;

	if (s[i] == '"')
		return jpos_skip_string(s, i);
	if (s[i] == '{' || s[i] == '[') {
		do {
			if (s[i] == '"') {
				i = jpos_skip_string(s, i);
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
size_t jpos_error_fix(const char *s, size_t off)
{
	char *stack = NULL, ch;
	size_t depth = 0, cap = 0, i, j, ret = off;

	if (off == 0)
		return off;
	for (i = jpos_start(s); i < off - 1;) {
		if (s[i] == '"') {
			i = jpos_skip_string(s, i);
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
size_t jpos_children(const char *s, size_t at, size_t **keys, size_t **vals)
{
	size_t n = 0, cap = 0, vcap = 0, i = at;
	int obj = s[at] == '{';

	*keys = NULL;
	if (vals)
		*vals = NULL;
	if (s[at] != '{' && s[at] != '[')
		return 0;
	i = jpos_ws(s, i + 1);
	while (s[i] && s[i] != '}' && s[i] != ']') {
		GROW(*keys, cap, n);
		(*keys)[n] = i;
		if (obj) {
			i = jpos_ws(s, jpos_skip_string(s, i));
			if (s[i] == ':')
				i = jpos_ws(s, i + 1);
		}
		if (vals) {
			GROW(*vals, vcap, n);
			(*vals)[n] = i;
		}
		n++;
		i = jpos_ws(s, jpos_skip_value(s, i));
		if (s[i] != ',')
			break;
		i = jpos_ws(s, i + 1);
	}
	return n;
}


size_t *jpos_offsets(const char *s, const cJSON *json, size_t at, size_t fallback)
{
	size_t *found = NULL, *out, nf, n = 0, i;
	const cJSON *it;

	for (it = json->child; it; it = it->next)
		n++;
	nf = jpos_children(s, at, &found, NULL);
	out = xcalloc(n + 1, sizeof *out);
	for (i = 0; i < n; i++)
		out[i] = i < nf ? found[i] : fallback;
	free(found);
	return out;
}

size_t jpos_value(const char *s, size_t key)
{
	size_t i = jpos_ws(s, jpos_skip_string(s, key));

	return s[i] == ':' ? jpos_ws(s, i + 1) : i;
}

int jpos_member_cmp(const void *a, const void *b)
{
	const struct jpos_member *x = a, *y = b;
	int r = strcmp(x->item->string, y->item->string);

	if (r)
		return r;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Sort the keys of every object in j (recursively; stable for repeats). */
void jpos_sort_keys(cJSON *j)
{
	struct jpos_member *v;
	cJSON *it;
	size_t n = 0, i;

	for (it = j->child; it; it = it->next, n++)
		jpos_sort_keys(it);
	if (!cJSON_IsObject(j) || n < 2)
		return;
	v = xmalloc(n * sizeof *v);
	for (i = 0, it = j->child; it; it = it->next, i++) {
		v[i].item = it;
		v[i].pos = i;
	}
	qsort(v, n, sizeof *v, jpos_member_cmp);
	j->child = v[0].item;
	for (i = 0; i < n; i++) {
		v[i].item->next = i + 1 < n ? v[i + 1].item : NULL;
		v[i].item->prev = i ? v[i - 1].item : v[n - 1].item;
	}
	free(v);
}

