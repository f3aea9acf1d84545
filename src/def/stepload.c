/*
 * stepload.c - what every part of one step_load() shares: reading a
 * definition file (bounded: files over STEPLOAD_FILE_MAX are refused,
 * read with O_NOFOLLOW so a link cannot make the daemon read elsewhere)
 * and parsing it with cJSON, the syntax error placed at its line and
 * column; the index of pipeline.json's params that steps look names up
 * in; the rule for param names; and sorted name lists used to find
 * repeats in O(n log n), so hostile input stays cheap.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowyfs/stepload.h"
#include "flowyfs/util.h"

cJSON *stepload_json(cJSON *j)
{
	if (!j)
		util_oom();
	return j;
}

void stepload_string(struct stepload *l, struct jpos_src *s, cJSON *val, size_t ko,
                     int nonempty, char **out, const char *msg)
{
	if (!cJSON_IsString(val) || (nonempty && !val->valuestring[0])) {
		diag_at(&l->diag, s, ko, "%s", msg);
		return;
	}
	free(*out);
	*out = xstrdup(val->valuestring);
}

/* ---- reading and parsing one file ------------------------------------- */

int stepload_read(struct stepload *l, struct jpos_src *s, const char *name)
{
	struct stat st;
	size_t cap = 0;
	ssize_t r;
	int fd, ret = -1;

	fd = openat(l->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			ret = 1;
			goto out;
		}
		diag_file(&l->diag, s->disp, "cannot read: %s", strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		diag_file(&l->diag, s->disp, "not a regular file");
		goto out;
	}
	/* Read up to one byte more than allowed, to notice a file too large
	 * even when it grew after fstat(). */
	cap = (st.st_size > STEPLOAD_FILE_MAX ? STEPLOAD_FILE_MAX + 1 :
	       (size_t)st.st_size) + 1;
	s->text = xmalloc(cap);
	s->len = 0;
	for (;;) {
		if (s->len + 1 >= cap) {
			if (s->len > STEPLOAD_FILE_MAX)
				break;
			cap = cap * 2 > STEPLOAD_FILE_MAX + 2 ? STEPLOAD_FILE_MAX + 2 : cap * 2;
			s->text = xrealloc(s->text, cap);
		}
		r = read(fd, s->text + s->len, cap - 1 - s->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			diag_file(&l->diag, s->disp, "cannot read: %s", strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		s->len += (size_t)r;
	}
	if (s->len > STEPLOAD_FILE_MAX) {
		diag_file(&l->diag, s->disp, "file too large (more than %u MiB)",
		         STEPLOAD_FILE_MAX >> 20);
		goto out;
	}
	s->text[s->len] = '\0';
	jpos_lines(s);
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


int stepload_parse(struct stepload *l, struct jpos_src *s, cJSON **out)
{
	const char *end = NULL, *nul;
	size_t off, n, k;

	*out = NULL;
	nul = memchr(s->text, '\0', s->len);
	if (nul) {
		diag_at(&l->diag, s, (size_t)(nul - s->text), "file contains a NUL byte");
		return -1;
	}
	if (!s->text[jpos_start(s->text)]) {
		diag_file(&l->diag, s->disp, "file is empty (a JSON object is expected)");
		return -1;
	}
	/* The length includes the NUL: cJSON requires it to see the end. */
	*out = cJSON_ParseWithLengthOpts(s->text, s->len + 1, &end, 1);
	if (*out)
		return 0;
	off = end && end >= s->text ? (size_t)(end - s->text) : 0;
	if (off > s->len)
		off = s->len;
	off = jpos_error_fix(s->text, off);
	for (n = 0; off + n < s->len && n < 24; n++)
		if (s->text[off + n] == '\n' || s->text[off + n] == '\r')
			break;
	while (n && off + n < s->len && ((unsigned char)s->text[off + n] & 0xc0) == 0x80)
		n--;     /* do not cut a UTF-8 character */
	for (k = off; k > 0 && (unsigned char)s->text[k - 1] <= 32; k--)
		;
	if (off < s->len && (s->text[off] == '}' || s->text[off] == ']') &&
	    k > 0 && s->text[k - 1] == ',') {
		/* Say so at the comma, not at the next line's bracket. */
		diag_at(&l->diag, s, k - 1, "JSON syntax error: trailing comma before '%c'",
		        s->text[off]);
	} else if (off >= s->len) {
		diag_at(&l->diag, s, off, "JSON syntax error at end of file");
	} else if (!n) {
		diag_at(&l->diag, s, off, "JSON syntax error at end of line");
	} else {
		char *ex = xstrndup(s->text + off, n), *shown = diag_plain(ex);

		diag_at(&l->diag, s, off, "JSON syntax error near '%s%s'", shown,
		        off + n < s->len && s->text[off + n] != '\n' &&
		        s->text[off + n] != '\r' ? "..." : "");
		free(shown);
		free(ex);
	}
	return -1;
}

/* ---- params ---------------------------------------------------------- */

int stepload_name_valid(const char *name, int param)
{
	size_t i;

	if (!name || !name[0])
		return 0;
	for (i = 0; name[i]; i++) {
		char ch = name[i];

		if (i >= STEP_NAME_MAX)
			return 0;
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '_')
			continue;
		if (param || !i || (ch != '.' && ch != '-'))
			return 0;
	}
	return 1;
}

void stepload_check_param_keys(struct stepload *l, struct jpos_src *s, cJSON *obj,
                               size_t vo, unsigned char *dup)
{
	struct stepload_named *v;
	size_t *koff = NULL, n = 0, i;
	cJSON *it;

	koff = jpos_offsets(s->text, obj, vo, vo);
	for (it = obj->child; it; it = it->next)
		n++;
	v = xcalloc(n, sizeof *v);
	for (i = 0, it = obj->child; it; it = it->next, i++) {
		v[i].name = it->string;
		v[i].i = i;
		if (!stepload_name_valid(it->string, 1))
			diag_at(&l->diag, s, koff[i],
			        "invalid param name %s (" STEPLOAD_PARAM_RULE ")",
			        diag_quote(&l->diag, it->string));
	}
	qsort(v, n, sizeof *v, stepload_named_cmp);
	for (i = 1; i < n; i++)
		if (!strcmp(v[i].name, v[i - 1].name)) {
			dup[v[i].i] = 1;
			diag_at(&l->diag, s, koff[v[i].i],
			        "param %s is set twice", diag_quote(&l->diag, v[i].name));
		}
	free(v);
	free(koff);
}

void stepload_index_params(struct stepload *l)
{
	struct pipeline_def *p = l->p;
	struct jpos_member *m;
	cJSON *it;
	size_t i;

	/* Run-time overrides replace context values before steps take them. */
	if (l->checks && l->checks->overrides)
		for (const cJSON *o = l->checks->overrides->child; o; o = o->next)
			if (cJSON_GetObjectItemCaseSensitive(p->params, o->string) &&
			    !cJSON_ReplaceItemInObjectCaseSensitive(p->params, o->string,
			                                            stepload_json(cJSON_Duplicate(o, 1))))
				util_oom();
	/* Sorted by key, first occurrence first: lookups match cJSON's. */
	for (it = p->params->child; it; it = it->next)
		l->n_ctx++;
	m = xcalloc(l->n_ctx, sizeof *m);
	for (i = 0, it = p->params->child; it; it = it->next, i++) {
		m[i].item = it;
		m[i].pos = i;
	}
	qsort(m, l->n_ctx, sizeof *m, jpos_member_cmp);
	l->ctx_idx = xcalloc(l->n_ctx, sizeof *l->ctx_idx);
	for (i = 0; i < l->n_ctx; i++)
		l->ctx_idx[i] = m[i].item;
	free(m);
}

cJSON *stepload_param(const struct stepload *l, const char *name)
{
	size_t lo = 0, hi = l->n_ctx;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(l->ctx_idx[mid]->string, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < l->n_ctx && !strcmp(l->ctx_idx[lo]->string, name) ?
	        l->ctx_idx[lo] : NULL;
}

/* ---- sorted names ---------------------------------------------------- */

int stepload_named_cmp(const void *a, const void *b)
{
	const struct stepload_named *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	if (r)
		return r;
	if (x->i != y->i)
		return x->i < y->i ? -1 : 1;
	return x->j < y->j ? -1 : x->j > y->j;
}


size_t stepload_named_find(const struct stepload_named *v, size_t n, const char *name)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(v[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && !strcmp(v[lo].name, name) ? lo : JPOS_NONE;
}
