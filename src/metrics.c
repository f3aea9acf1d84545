/*
 * metrics.c - tailing a step's metrics file into SQLite. The file (held
 * open by the daemon) is read from the last offset on every scheduler tick, so values show up in
 * runs/<id>/steps/<s>/metrics/ while the step still runs; one transaction
 * per tick keeps a chatty step from costing a commit per line. What has
 * been read is given back (a hole punched up to the last whole MiB), so a
 * memory-backed file holds only what is still to be read.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "flowyfs/log.h"
#include "flowyfs/metrics.h"
#include "flowyfs/step.h"

#define METRICS_LINE_MAX (1024 * 1024)
#define METRICS_PUNCH ((off_t)1 << 20)

/* Free the bytes before t->off, in whole MiB, once a MiB more was read. */
static void give_back(struct metrics_tail *t)
{
	off_t upto = t->off & ~(METRICS_PUNCH - 1);
	if (upto <= t->punched)
		return;
	if (fallocate(t->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, upto) < 0) {
		log_debug("metrics of %s: cannot free what was read: %s", t->step,
		          strerror(errno));
		t->punched = INT64_MAX; /* not supported here: never again */
		return;
	}
	t->punched = upto;
}

void metrics_tail_init(struct metrics_tail *t, int fd, int64_t run_id,
                       const char *step)
{
	memset(t, 0, sizeof *t);
	t->fd = fd;
	t->run_id = run_id;
	t->step = xstrdup(step);
}

void metrics_tail_free(struct metrics_tail *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->ncounts; i++)
		free(t->counts[i].name);
	free(t->counts);
	free(t->first_bad);
	strbuf_release(&t->partial);
	if (t->step && t->fd >= 0)
		close(t->fd);
	free(t->step);
	memset(t, 0, sizeof *t);
	t->fd = -1;
}

int metrics_parse_line(const char *line, char ***names, double **values,
                       size_t *n, const char **why)
{
	*names = NULL;
	*values = NULL;
	*n = 0;
	cJSON *o = cJSON_Parse(line);
	int rc = 0;
	if (!o) {
		*why = "not valid JSON";
		rc = -EINVAL;
	} else if (!cJSON_IsObject(o)) {
		*why = "not a JSON object";
		rc = -EINVAL;
	} else {
		for (cJSON *v = o->child; v; v = v->next) {
			if (!cJSON_IsNumber(v)) {
				*why = "a value is not a number";
				rc = -EINVAL;
				break;
			}
			if (!step_name_valid(v->string)) {
				*why = "a metric name is not a valid name";
				rc = -EINVAL;
				break;
			}
		}
		if (!rc && !o->child) {
			*why = "empty object";
			rc = -EINVAL;
		}
	}
	if (!rc) {
		size_t k = (size_t)cJSON_GetArraySize(o), i = 0;
		*names = xcalloc(k, sizeof **names);
		*values = xcalloc(k, sizeof **values);
		for (cJSON *v = o->child; v; v = v->next, i++) {
			(*names)[i] = xstrdup(v->string);
			(*values)[i] = v->valuedouble;
		}
		*n = k;
	}
	cJSON_Delete(o);
	return rc;
}

static long next_index(struct metrics_tail *t, const char *name)
{
	for (size_t i = 0; i < t->ncounts; i++)
		if (!strcmp(t->counts[i].name, name))
			return t->counts[i].n++;
	t->counts = xrealloc(t->counts, (t->ncounts + 1) * sizeof *t->counts);
	t->counts[t->ncounts].name = xstrdup(name);
	t->counts[t->ncounts].n = 1;
	t->ncounts++;
	return 0;
}

static int ingest_line(struct metrics_tail *t, db *d, const char *line, double now)
{
	t->line++;
	if (!line[strspn(line, " \t\r")])
		return 0; /* blank lines are fine */
	char **names;
	double *values;
	size_t n;
	const char *why = NULL;
	if (metrics_parse_line(line, &names, &values, &n, &why) < 0) {
		if (!t->bad++)
			t->first_bad = xasprintf("line %ld: %s", t->line, why);
		return 0;
	}
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (!rc)
			rc = db_exec(d, "INSERT INTO metrics(run_id, step, name, idx, value, "
			             "time) VALUES(?, ?, ?, ?, ?, ?)", "ittidd", t->run_id,
			             t->step, names[i], (int64_t)next_index(t, names[i]),
			             values[i], now);
		if (!rc && t->on_value)
			t->on_value(t->arg, t->step, names[i], values[i]);
		free(names[i]);
	}
	free(names);
	free(values);
	return rc < 0 ? rc : (int)n;
}

int metrics_tail_poll(struct metrics_tail *t, db *d, int final)
{
	if (!t->step || t->fd < 0)
		return 0;
	char buf[65536];
	ssize_t got;
	/* Bounded per call, so a step writing without pause cannot hold the
	 * scheduler here. */
	for (int k = 0; k < 64 && (got = pread(t->fd, buf, sizeof buf, t->off)) > 0; k++) {
		strbuf_add(&t->partial, buf, (size_t)got);
		t->off += got;
	}
	give_back(t);
	if (!t->partial.len)
		return 0;
	int rows = 0;
	double now = util_now();
	db_lock(d);
	int rc = db_begin(d);
	char *start = t->partial.buf, *nl;
	while ((nl = memchr(start, '\n', t->partial.len - (size_t)(start - t->partial.buf)))) {
		*nl = '\0';
		int got = rc ? 0 : ingest_line(t, d, start, now);
		if (got < 0)
			rc = got;
		else
			rows += got;
		start = nl + 1;
	}
	size_t rest = t->partial.len - (size_t)(start - t->partial.buf);
	if (rest > METRICS_LINE_MAX) { /* a line that never ends */
		t->line++;
		if (!t->bad++)
			t->first_bad = xasprintf("line %ld: longer than %d bytes", t->line,
			                         METRICS_LINE_MAX);
		start += rest;
		rest = 0;
	}
	if (final && rest) {
		int got = rc ? 0 : ingest_line(t, d, start, now);
		if (got < 0)
			rc = got;
		else
			rows += got;
		rest = 0;
	}
	if (rc)
		db_rollback(d);
	else
		rc = db_commit(d);
	db_unlock(d);
	memmove(t->partial.buf, start, rest);
	t->partial.len = rest;
	t->partial.buf[rest] = '\0';
	return rc < 0 ? rc : rows;
}
