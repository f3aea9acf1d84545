/*
 * ctl.c - parsing the commands written to pipelines/<p>/.ctl.
 *
 * A person types these lines (echo 'sweep lr=0.1,0.01' > .ctl), so every
 * refusal says what is wrong in their terms and how to write it instead,
 * and a near miss of a command name gets a suggestion. The input is
 * whatever a write() carried: the whole line is checked first (length,
 * NUL and control bytes, UTF-8), after which every token is printable
 * text that a message may quote as is. Values are only parsed, never
 * evaluated; the work is linear in the line except for the duplicate
 * checks, which are O(n log n) for keys and bounded by CTL_SWEEP_MAX for
 * the values of one swept key.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/ctl.h"
#include "flowyfs/util.h"

#define QUOTE_MAX   60     /* bytes of a token quoted in a message */
#define SUGGEST_MAX 16     /* longer unknown commands get no suggestion */
#define KEY_RULE  "param names are [A-Za-z_][A-Za-z0-9_]*, at most 128 bytes"
#define STEP_RULE "step names are [A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128 bytes"

static const char *const verb_names[] = {
	[CTL_RUN] = "run", [CTL_SWEEP] = "sweep", [CTL_RERUN] = "rerun",
	[CTL_RETRY] = "retry", [CTL_CANCEL] = "cancel", [CTL_PAUSE] = "pause",
	[CTL_RESUME] = "resume",
};
#define N_VERBS ((int)(sizeof verb_names / sizeof verb_names[0]))

/* A stretch of the line. */
struct tok {
	const char *s;
	size_t len;
};

/* A KEY=VALUE token split at its first '='. */
struct pair {
	struct tok all, key, val;
};

static cJSON *xjson(cJSON *j)
{
	if (!j)
		util_oom();
	return j;
}

static int blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

static int digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

const char *ctl_verb_name(enum ctl_verb verb)
{
	if ((int)verb <= 0 || (int)verb >= N_VERBS)
		return "?";
	return verb_names[verb];
}

/* ---- messages ------------------------------------------------------------ */

/* Append s[0..n) for a message: at most QUOTE_MAX bytes (cut at a UTF-8
 * boundary, then "..."), a tab as \t, in quotes with '"' and '\' escaped
 * when quoted. Tokens come from a checked line: UTF-8 without control
 * characters but tab (which a quoted or bracketed value may hold). */
static void put_tok(struct strbuf *b, const char *s, size_t n, int quoted)
{
	size_t i, max = n;

	if (n > QUOTE_MAX) {
		max = QUOTE_MAX;
		while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
			max--;
	}
	if (quoted)
		strbuf_add(b, "\"", 1);
	for (i = 0; i < max; i++) {
		if (s[i] == '\t') {
			strbuf_puts(b, "\\t");
			continue;
		}
		if (quoted && (s[i] == '"' || s[i] == '\\'))
			strbuf_add(b, "\\", 1);
		strbuf_add(b, s + i, 1);
	}
	if (max < n)
		strbuf_puts(b, "...");
	if (quoted)
		strbuf_add(b, "\"", 1);
}

/* Set *err (when err is not NULL) to the message fmt, where %s is a C
 * string, %z a size_t, %Q a token (const char *, size_t) quoted and %T
 * the same unquoted. Returns -EINVAL. */
static int fail(char **err, const char *fmt, ...)
{
	struct strbuf b = {0};
	const char *s;
	va_list ap;

	if (!err)
		return -EINVAL;
	strbuf_puts(&b, "");
	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		if (*fmt != '%' || !fmt[1]) {
			strbuf_add(&b, fmt, 1);
			continue;
		}
		switch (*++fmt) {
		case 's':
			strbuf_puts(&b, va_arg(ap, const char *));
			break;
		case 'z':
			strbuf_printf(&b, "%zu", va_arg(ap, size_t));
			break;
		case 'Q':
		case 'T':
			s = va_arg(ap, const char *);
			put_tok(&b, s, va_arg(ap, size_t), *fmt == 'Q');
			break;
		default:
			strbuf_add(&b, fmt, 1);
		}
	}
	va_end(ap);
	*err = strbuf_detach(&b, NULL);
	return -EINVAL;
}

/* ---- the line as text ---------------------------------------------------- */

/* Length of the UTF-8 sequence at s[0..n) (s[0] >= 0x80) with its code
 * point in *cp, or 0 when it is not valid (overlong, surrogate, beyond
 * U+10FFFF, cut short). */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned *cp)
{
	size_t k, i;
	unsigned min, c = s[0];

	if (c >= 0xc2 && c <= 0xdf) {
		k = 2, c &= 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		k = 3, c &= 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		k = 4, c &= 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < k)
		return 0;
	for (i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return k;
}

/* 0 when s[0..n) is text a command may hold: valid UTF-8 without NUL or
 * control characters other than tab; else -EINVAL naming the first bad
 * byte by its column (byte offset + 1). */
static int check_text(const char *line, size_t n, char **err)
{
	const unsigned char *s = (const unsigned char *)line;
	size_t i = 0, k;
	unsigned cp;
	char what[16];

	while (i < n) {
		cp = s[i];
		k = 1;
		if (cp >= 0x80 && !(k = utf8_seq(s + i, n - i, &cp))) {
			snprintf(what, sizeof what, "\\x%02x", s[i]);
			return fail(err, "the line is not valid UTF-8 (byte %s at "
			            "column %z)", what, i + 1);
		}
		if (cp == 0)
			return fail(err, "the line contains a NUL byte at column %z",
			            i + 1);
		if (cp == '\n')
			return fail(err, "the line contains a newline at column %z "
			            "(one command per line)", i + 1);
		if ((cp < 0x20 && cp != '\t') || (cp >= 0x7f && cp <= 0x9f)) {
			snprintf(what, sizeof what, cp < 0x80 ? "\\x%02x" : "U+%04X", cp);
			return fail(err, "the line contains a control character (%s) "
			            "at column %z", what, i + 1);
		}
		i += k;
	}
	return 0;
}

/* ---- tokens -------------------------------------------------------------- */

/* Length of the value at s[0..n) up to the first byte of stops outside
 * "..." (with backslash escapes) and matching [...] / {...}, or n. *open
 * gets the innermost quote or bracket left open at the end ('"', '[',
 * '{') or 0; an unmatched closing bracket is an ordinary byte. stack has
 * room for n bytes. */
static size_t scan(const char *s, size_t n, const char *stops, char *stack,
                   char *open)
{
	size_t i, depth = 0;
	int in_str = 0;

	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (in_str) {
			if (ch == '\\' && i + 1 < n)
				i++;
			else if (ch == '"')
				in_str = 0;
			continue;
		}
		if (ch == '"')
			in_str = 1;
		else if (ch == '[' || ch == '{')
			stack[depth++] = ch;
		else if (depth && ((ch == ']' && stack[depth - 1] == '[') ||
		                   (ch == '}' && stack[depth - 1] == '{')))
			depth--;
		else if (!depth && ch && strchr(stops, ch))
			break;
	}
	*open = in_str ? '"' : depth ? stack[depth - 1] : 0;
	return i;
}

static const char *open_name(char open)
{
	return open == '"' ? "quote" : open == '[' ? "\"[\"" : "\"{\"";
}

/* Split the arguments s[0..n) into tokens (*out, *n_out; the caller frees
 * *out). A token runs to the next space or tab; after its first '=' a
 * quote or bracket holds blanks too. A token starting with '#' begins a
 * comment. Returns 0, or -EINVAL for a quote or bracket left open. */
static int tokenize(const char *verb, const char *s, size_t n, char *stack,
                    struct tok **out, size_t *n_out, char **err)
{
	size_t i = 0, cap = 0, start, eq;
	char open;

	*out = NULL;
	*n_out = 0;
	for (;;) {
		while (i < n && blank(s[i]))
			i++;
		if (i == n || s[i] == '#')
			return 0;
		start = i;
		while (i < n && !blank(s[i]) && s[i] != '=')
			i++;
		if (i < n && s[i] == '=') {
			eq = i++;
			i += scan(s + i, n - i, " \t", stack, &open);
			if (open && eq > start)
				return fail(err, "%s: the value of %Q has an unclosed %s",
				            verb, s + start, eq - start, open_name(open));
			if (open)
				return fail(err, "%s: %Q has an unclosed %s", verb,
				            s + start, i - start, open_name(open));
		}
		GROW(*out, cap, *n_out);
		(*out)[(*n_out)++] = (struct tok){ s + start, i - start };
	}
}

/* Is s[0..n) a param name: [A-Za-z_][A-Za-z0-9_]*, at most CTL_NAME_MAX? */
static int key_valid(const char *s, size_t n)
{
	size_t i;

	if (!n || n > CTL_NAME_MAX || digit(s[0]))
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      digit(s[i]) || s[i] == '_'))
			return 0;
	return 1;
}

/* Is s[0..n) a step name: [A-Za-z0-9_][A-Za-z0-9_.-]*, at most
 * CTL_NAME_MAX bytes (step.h's rule)? */
static int step_valid(const char *s, size_t n)
{
	size_t i;

	if (!n || n > CTL_NAME_MAX || s[0] == '.' || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      digit(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
			return 0;
	return 1;
}

/* A run id: decimal digits, 1 .. INT64_MAX. 0 or -1 when t is not one. */
static int run_id(const struct tok *t, int64_t *out)
{
	int64_t v = 0;
	size_t i;

	if (!t->len)
		return -1;
	for (i = 0; i < t->len; i++) {
		if (!digit(t->s[i]) || v > (INT64_MAX - (t->s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (t->s[i] - '0');
	}
	if (!v)
		return -1;
	*out = v;
	return 0;
}

/* ---- values -------------------------------------------------------------- */

/* Is s[0..n) a number in strict JSON syntax (cJSON also takes "01", "1."
 * and "+1"-like forms that are better kept as the strings written)? */
static int json_number(const char *s, size_t n)
{
	size_t i = 0;

	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0')
		i++;
	else if (i < n && s[i] >= '1' && s[i] <= '9')
		while (i < n && digit(s[i]))
			i++;
	else
		return 0;
	if (i < n && s[i] == '.') {
		if (++i >= n || !digit(s[i]))
			return 0;
		while (i < n && digit(s[i]))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		if (++i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || !digit(s[i]))
			return 0;
		while (i < n && digit(s[i]))
			i++;
	}
	return i == n;
}

/* Does the (valid) JSON text s[0..n) hold a \u0000 escape in a string? */
static int json_has_nul(const char *s, size_t n)
{
	size_t i;
	int in_str = 0;

	for (i = 0; i < n; i++) {
		if (!in_str) {
			in_str = s[i] == '"';
		} else if (s[i] == '"') {
			in_str = 0;
		} else if (s[i] == '\\' && i + 1 < n) {
			if (s[i + 1] == 'u' && i + 6 <= n && !memcmp(s + i + 2, "0000", 4))
				return 1;
			i++;
		}
	}
	return 0;
}

/* Are all numbers in j and its siblings finite? */
static int json_finite(const cJSON *j)
{
	for (; j; j = j->next) {
		if (cJSON_IsNumber(j) && !isfinite(j->valuedouble))
			return 0;
		if (j->child && !json_finite(j->child))
			return 0;
	}
	return 1;
}

/* Parse the VALUE v (non-empty) of key into *out (caller owns it): JSON
 * when it is JSON, else a plain string. */
static int parse_value(const char *verb, const struct tok *key,
                       const struct tok *v, cJSON **out, char **err)
{
	char *text = xstrndup(v->s, v->len);
	const char *end = NULL;
	cJSON *j = NULL;
	int rc = 0;
	char c0 = v->s[0];

	*out = NULL;
	if (c0 == '-' || digit(c0)) {
		if (json_number(v->s, v->len))
			j = cJSON_ParseWithOpts(text, &end, 1);
	} else if (c0 == '"' || c0 == '[' || c0 == '{' || !strcmp(text, "true") ||
	           !strcmp(text, "false") || !strcmp(text, "null")) {
		j = cJSON_ParseWithOpts(text, &end, 1);
	}
	if (j && json_has_nul(v->s, v->len)) {
		rc = fail(err, "%s: the value of %Q contains \\u0000 (a NUL "
		          "character)", verb, key->s, key->len);
		goto out;
	}
	if (j && !json_finite(j)) {
		rc = fail(err, "%s: the value of %Q has a number out of range: %T",
		          verb, key->s, key->len, v->s, v->len);
		goto out;
	}
	if (!j)
		j = xjson(cJSON_CreateString(text));
	*out = j;
	j = NULL;
out:
	cJSON_Delete(j);
	free(text);
	return rc;
}

static void add_member(cJSON *obj, const struct tok *key, cJSON *v)
{
	char *k = xstrndup(key->s, key->len);

	if (!cJSON_AddItemToObject(obj, k, v))
		util_oom();
	free(k);
}

/* ---- KEY=VALUE ------------------------------------------------------------ */

/* Split t at its first '=' into *p; -EINVAL when it is not KEY=VALUE. */
static int split_pair(const char *verb, const struct tok *t, struct pair *p,
                      char **err)
{
	const char *eq = memchr(t->s, '=', t->len);

	p->all = *t;
	if (!eq) {
		if (key_valid(t->s, t->len))
			return fail(err, "%s: %Q needs a value: write %T=VALUE", verb,
			            t->s, t->len, t->s, t->len);
		return fail(err, "%s: unexpected %Q (write KEY=VALUE)", verb,
		            t->s, t->len);
	}
	p->key = (struct tok){ t->s, (size_t)(eq - t->s) };
	p->val = (struct tok){ eq + 1, t->len - p->key.len - 1 };
	if (!p->key.len)
		return fail(err, "%s: %Q has no param name before \"=\"", verb,
		            t->s, t->len);
	if (!key_valid(p->key.s, p->key.len))
		return fail(err, "%s: %Q is not a param name (" KEY_RULE ")", verb,
		            p->key.s, p->key.len);
	if (!p->val.len)
		return fail(err, "%s: %Q has no value: write %T=VALUE (or %T=\"\" "
		            "for an empty string)", verb, p->key.s, p->key.len,
		            p->key.s, p->key.len, p->key.s, p->key.len);
	return 0;
}

/* A key and where it was written, for finding repeats by sorting. */
struct keyref {
	const struct tok *key;
	size_t idx;
};

static int keyref_cmp(const void *a, const void *b)
{
	const struct keyref *x = a, *y = b;
	size_t n = x->key->len < y->key->len ? x->key->len : y->key->len;
	int r = memcmp(x->key->s, y->key->s, n);

	if (r)
		return r;
	if (x->key->len != y->key->len)
		return x->key->len < y->key->len ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* -EINVAL naming the key given twice whose repeat comes first, else 0. */
static int check_dups(const char *verb, const struct pair *p, size_t n,
                      char **err)
{
	struct keyref *v = xcalloc(n, sizeof *v);
	size_t i, dup = n;

	for (i = 0; i < n; i++)
		v[i] = (struct keyref){ &p[i].key, i };
	if (n > 1)
		qsort(v, n, sizeof *v, keyref_cmp);
	for (i = 1; i < n; i++)
		if (v[i].key->len == v[i - 1].key->len &&
		    !memcmp(v[i].key->s, v[i - 1].key->s, v[i].key->len) &&
		    v[i].idx < dup)
			dup = v[i].idx;
	free(v);
	if (dup == n)
		return 0;
	return fail(err, "%s: %Q is given twice", verb, p[dup].key.s,
	            p[dup].key.len);
}

/* Parse KEY=VALUE tokens into a new object *out (the caller owns it). */
static int parse_overrides(const char *verb, const struct tok *t, size_t n,
                           cJSON **out, char **err)
{
	struct pair *p = xcalloc(n, sizeof *p);
	cJSON *obj = xjson(cJSON_CreateObject()), *v;
	size_t i;
	int rc = 0;

	*out = NULL;
	for (i = 0; i < n && !rc; i++)
		rc = split_pair(verb, &t[i], &p[i], err);
	if (!rc)
		rc = check_dups(verb, p, n, err);
	for (i = 0; i < n && !rc; i++) {
		rc = parse_value(verb, &p[i].key, &p[i].val, &v, err);
		if (!rc)
			add_member(obj, &p[i].key, v);
	}
	if (!rc) {
		*out = obj;
		obj = NULL;
	}
	cJSON_Delete(obj);
	free(p);
	return rc;
}

/* ---- sweep ------------------------------------------------------------------ */

/* The comma-separated values of p (balanced: tokenize() checked) into
 * *out (the caller frees it); -EINVAL for an empty one. */
static int split_values(const struct pair *p, char *stack, struct tok **out,
                        size_t *n_out, char **err)
{
	const char *s = p->val.s;
	size_t n = p->val.len, i = 0, cap = 0, k;
	char open;

	*out = NULL;
	*n_out = 0;
	for (;;) {
		k = scan(s + i, n - i, ",", stack, &open);
		if (!k)
			return fail(err, "sweep: %Q has an empty value (an extra "
			            "comma?)", p->all.s, p->all.len);
		GROW(*out, cap, *n_out);
		(*out)[(*n_out)++] = (struct tok){ s + i, k };
		i += k;
		if (i == n)
			return 0;
		i++;            /* the comma */
		if (i == n)
			return fail(err, "sweep: %Q has an empty value (an extra "
			            "comma?)", p->all.s, p->all.len);
	}
}

/* -EINVAL when the axes (sizes n[0..n_axes)) make more than CTL_SWEEP_MAX
 * runs, naming the sizes; else 0 with the product in *runs. */
static int check_product(const size_t *n, size_t n_axes, size_t *runs,
                         char **err)
{
	struct strbuf b = {0};
	size_t prod = 1, i, shown = 0;
	int over = 0, rc;

	for (i = 0; i < n_axes; i++)
		over |= __builtin_mul_overflow(prod, n[i], &prod);
	if (!over && prod <= CTL_SWEEP_MAX) {
		*runs = prod;
		return 0;
	}
	strbuf_puts(&b, "");
	for (i = 0; i < n_axes; i++) {
		if (n[i] < 2)
			continue;
		if (shown++ == 8) {
			strbuf_puts(&b, " x ...");
			break;
		}
		strbuf_printf(&b, "%s%zu", shown > 1 ? " x " : "", n[i]);
	}
	if (!over)
		strbuf_printf(&b, " = %zu", prod);
	rc = fail(err, "sweep: %s runs, more than %z", b.buf,
	          (size_t)CTL_SWEEP_MAX);
	strbuf_release(&b);
	return rc;
}

static int parse_sweep(const struct tok *t, size_t n, char *stack,
                       struct ctl_cmd *out, char **err)
{
	struct pair *p = xcalloc(n, sizeof *p);
	struct tok **vals = xcalloc(n, sizeof *vals);
	size_t *n_vals = xcalloc(n, sizeof *n_vals), i, j;
	cJSON *v;
	int rc = 0;

	if (!n) {
		rc = fail(err, "sweep: nothing to sweep: write sweep KEY=V1,V2,...");
		goto out;
	}
	for (i = 0; i < n && !rc; i++) {
		rc = split_pair("sweep", &t[i], &p[i], err);
		if (!rc)
			rc = split_values(&p[i], stack, &vals[i], &n_vals[i], err);
	}
	if (!rc)
		rc = check_dups("sweep", p, n, err);
	if (!rc)
		rc = check_product(n_vals, n, &out->n_runs, err);
	if (rc)
		goto out;
	out->axes = xcalloc(n, sizeof *out->axes);
	for (i = 0; i < n; i++) {
		struct ctl_axis *a = &out->axes[out->n_axes++];

		a->key = xstrndup(p[i].key.s, p[i].key.len);
		a->values = xjson(cJSON_CreateArray());
		for (j = 0; j < n_vals[i]; j++) {
			cJSON *e;

			rc = parse_value("sweep", &p[i].key, &vals[i][j], &v, err);
			if (rc)
				goto out;
			/* At most CTL_SWEEP_MAX values: quadratic is fine. */
			for (e = a->values->child; e; e = e->next)
				if (cJSON_Compare(e, v, 1))
					break;
			if (e) {
				cJSON_Delete(v);
				rc = fail(err, "sweep: %Q lists %Q twice", p[i].key.s,
				          p[i].key.len, vals[i][j].s, vals[i][j].len);
				goto out;
			}
			if (!cJSON_AddItemToArray(a->values, v))
				util_oom();
		}
	}
out:
	for (i = 0; i < n; i++)
		free(vals[i]);
	free(vals);
	free(n_vals);
	free(p);
	return rc;
}

/* ---- commands --------------------------------------------------------------- */

/* Optimal string alignment distance (edits, with swaps of neighbours)
 * between a[0..n) and b, both at most SUGGEST_MAX bytes. */
static size_t osa(const char *a, size_t n, const char *b)
{
	size_t d[SUGGEST_MAX + 1][SUGGEST_MAX + 1], m = strlen(b), i, j;

	for (i = 0; i <= n; i++)
		d[i][0] = i;
	for (j = 0; j <= m; j++)
		d[0][j] = j;
	for (i = 1; i <= n; i++)
		for (j = 1; j <= m; j++) {
			size_t c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);

			if (d[i - 1][j] + 1 < c)
				c = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < c)
				c = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < c)
				c = d[i - 2][j - 2] + 1;
			d[i][j] = c;
		}
	return d[n][m];
}

static int unknown_verb(const struct tok *t, char **err)
{
	char low[SUGGEST_MAX];
	size_t i, best = 3, d;
	int v, pick = 0;

	if (t->len <= SUGGEST_MAX) {
		for (i = 0; i < t->len; i++)
			low[i] = t->s[i] >= 'A' && t->s[i] <= 'Z' ?
			         (char)(t->s[i] - 'A' + 'a') : t->s[i];
		for (v = 1; v < N_VERBS; v++) {
			d = osa(low, t->len, verb_names[v]);
			if (d < best && d < strlen(verb_names[v])) {
				best = d;
				pick = v;
			}
		}
	}
	if (pick)
		return fail(err, "unknown command %Q (did you mean \"%s\"?)", t->s,
		            t->len, verb_names[pick]);
	return fail(err, "unknown command %Q (commands: run, sweep, rerun, "
	            "retry, cancel, pause, resume)", t->s, t->len);
}

static int parse_rerun(const struct tok *t, size_t n, struct ctl_cmd *out,
                       char **err)
{
	if (!n || memchr(t[0].s, '=', t[0].len))
		return fail(err, "rerun: which step? write rerun STEP [KEY=VALUE ...]");
	if (!step_valid(t[0].s, t[0].len))
		return fail(err, "rerun: %Q is not a step name (" STEP_RULE ")",
		            t[0].s, t[0].len);
	out->step = xstrndup(t[0].s, t[0].len);
	out->n_runs = 1;
	return parse_overrides("rerun", t + 1, n - 1, &out->overrides, err);
}

/* retry RUN; cancel, pause, resume [RUN]. */
static int parse_run_id(const char *verb, int required, const struct tok *t,
                        size_t n, struct ctl_cmd *out, char **err)
{
	if (!n && required)
		return fail(err, "%s: which run? write %s RUN (a run id)", verb, verb);
	if (!n)
		return 0;
	if (run_id(&t[0], &out->run))
		return fail(err, "%s: %Q is not a run id%s", verb, t[0].s, t[0].len,
		            t[0].len == 1 && t[0].s[0] == '0' ?
		            " (run ids start at 1)" : "");
	if (n > 1)
		return fail(err, "%s: unexpected %Q after the run id", verb, t[1].s,
		            t[1].len);
	return 0;
}

int ctl_parse(const char *line, size_t len, struct ctl_cmd *out, char **err)
{
	struct tok *toks = NULL, verb;
	size_t n = 0, i = 0;
	char *stack = NULL;
	const char *name;
	int rc, v;

	memset(out, 0, sizeof *out);
	if (err)
		*err = NULL;
	if (len && line[len - 1] == '\n')
		len--;
	if (len && line[len - 1] == '\r')
		len--;
	if (len > CTL_LINE_MAX) {
		rc = fail(err, "the line is too long (%z bytes; at most %z)", len,
		          (size_t)CTL_LINE_MAX);
		goto out;
	}
	rc = check_text(line, len, err);
	if (rc)
		goto out;
	while (i < len && blank(line[i]))
		i++;
	if (i == len || line[i] == '#') {
		rc = 1;
		goto out;
	}
	verb.s = line + i;
	while (i < len && !blank(line[i]))
		i++;
	verb.len = (size_t)(line + i - verb.s);
	for (v = 1; v < N_VERBS; v++)
		if (strlen(verb_names[v]) == verb.len &&
		    !memcmp(verb_names[v], verb.s, verb.len))
			break;
	if (v == N_VERBS) {
		rc = unknown_verb(&verb, err);
		goto out;
	}
	name = verb_names[v];
	stack = xmalloc(len + 1);
	rc = tokenize(name, line + i, len - i, stack, &toks, &n, err);
	if (rc)
		goto out;
	out->verb = (enum ctl_verb)v;
	switch (out->verb) {
	case CTL_RUN:
		out->n_runs = 1;
		rc = parse_overrides(name, toks, n, &out->overrides, err);
		break;
	case CTL_SWEEP:
		rc = parse_sweep(toks, n, stack, out, err);
		break;
	case CTL_RERUN:
		rc = parse_rerun(toks, n, out, err);
		break;
	case CTL_RETRY:
		rc = parse_run_id(name, 1, toks, n, out, err);
		break;
	default:
		rc = parse_run_id(name, 0, toks, n, out, err);
	}
out:
	free(stack);
	free(toks);
	if (rc < 0)
		ctl_cmd_free(out);
	return rc;
}

void ctl_cmd_free(struct ctl_cmd *cmd)
{
	size_t i;

	if (!cmd)
		return;
	for (i = 0; i < cmd->n_axes; i++) {
		free(cmd->axes[i].key);
		cJSON_Delete(cmd->axes[i].values);
	}
	free(cmd->axes);
	cJSON_Delete(cmd->overrides);
	free(cmd->step);
	memset(cmd, 0, sizeof *cmd);
}

/* ---- expansion ------------------------------------------------------------ */

static void add_copy(cJSON *obj, const char *key, const cJSON *v)
{
	if (!cJSON_AddItemToObject(obj, key, xjson(cJSON_Duplicate(v, 1))))
		util_oom();
}

int ctl_sweep_expand(const struct ctl_cmd *cmd, cJSON **out)
{
	cJSON *arr = NULL, *obj, **cur = NULL;
	size_t runs = 1, r, a;

	*out = NULL;
	if (!cmd)
		return -EINVAL;
	if (cmd->verb == CTL_RUN || cmd->verb == CTL_RERUN) {
		arr = xjson(cJSON_CreateArray());
		obj = cmd->overrides ? xjson(cJSON_Duplicate(cmd->overrides, 1)) :
		      xjson(cJSON_CreateObject());
		if (!cJSON_AddItemToArray(arr, obj))
			util_oom();
		goto done;
	}
	if (cmd->verb != CTL_SWEEP || !cmd->n_axes)
		return -EINVAL;
	/* Trust the axes, not n_runs: a hand-made cmd may disagree. */
	for (a = 0; a < cmd->n_axes; a++) {
		int n = cmd->axes[a].values ? cJSON_GetArraySize(cmd->axes[a].values) : 0;

		if (n <= 0 || !cmd->axes[a].key ||
		    __builtin_mul_overflow(runs, (size_t)n, &runs) ||
		    runs > CTL_SWEEP_MAX)
			return -EINVAL;
	}
	arr = xjson(cJSON_CreateArray());
	cur = xcalloc(cmd->n_axes, sizeof *cur);
	for (a = 0; a < cmd->n_axes; a++)
		cur[a] = cmd->axes[a].values->child;
	for (r = 0; r < runs; r++) {
		obj = xjson(cJSON_CreateObject());
		for (a = 0; a < cmd->n_axes; a++)
			add_copy(obj, cmd->axes[a].key, cur[a]);
		if (!cJSON_AddItemToArray(arr, obj))
			util_oom();
		/* An odometer: the last axis turns fastest. */
		for (a = cmd->n_axes; a-- > 0;) {
			cur[a] = cur[a]->next;
			if (cur[a])
				break;
			cur[a] = cmd->axes[a].values->child;
		}
	}
	free(cur);
done:
	*out = arr;
	return 0;
}
