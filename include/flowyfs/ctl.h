/*
 * ctl.h - parsing one line written to pipelines/<p>/.ctl into a command.
 *
 * Pure parsing: nothing here queues, looks up or checks against a
 * pipeline (whether STEP exists or RUN belongs to the pipeline is the
 * caller's business). The grammar, one command per line:
 *
 *     run [KEY=VALUE ...]              queue a run with param overrides
 *     sweep KEY=V1,V2,... [KEY=...]    one run per combination
 *     rerun STEP [KEY=VALUE ...]       STEP and downstream run uncached
 *     retry RUN                        RUN is a run id (a positive integer)
 *     cancel [RUN]  pause [RUN]  resume [RUN]
 *
 * Tokens are separated by spaces and tabs; a token starting with '#'
 * begins a comment. KEY is [A-Za-z_][A-Za-z0-9_]*, at most CTL_NAME_MAX
 * bytes; STEP is [A-Za-z0-9_][A-Za-z0-9_.-]*, at most CTL_NAME_MAX bytes.
 * A VALUE is JSON when it parses as JSON (a number in strict JSON syntax,
 * true, false, null, a "string", an [array] or an {object}), else a plain
 * string. Inside a VALUE, spaces within "..." or brackets do not end it
 * (run msg="a b" opt={"x": [1, 2]}); a quote or bracket left open is an
 * error. Sweep values are split on commas outside quotes and brackets, so
 * `sweep lr=0.1,0.01 layers=[1,2],[3]` is 2 x 2 runs.
 */
#ifndef FLOWYFS_CTL_H
#define FLOWYFS_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <cJSON.h>

#define CTL_LINE_MAX  65536   /* bytes of one line, newline excluded */
#define CTL_NAME_MAX  128     /* bytes of a KEY or a STEP */
#define CTL_SWEEP_MAX 1000    /* runs one sweep may ask for */

enum ctl_verb {
	CTL_RUN = 1,
	CTL_SWEEP,
	CTL_RERUN,
	CTL_RETRY,
	CTL_CANCEL,
	CTL_PAUSE,
	CTL_RESUME,
};

/* One swept param: its values in the order written (at least one, no two
 * equal). */
struct ctl_axis {
	char *key;
	cJSON *values;          /* a cJSON array */
};

struct ctl_cmd {
	enum ctl_verb verb;
	char *step;             /* CTL_RERUN: the step; else NULL */
	int64_t run;            /* CTL_RETRY: the run id (> 0); CANCEL, PAUSE,
	                           RESUME: the run id, or 0 when none was given
	                           (the pipeline's current runs); else 0 */
	cJSON *overrides;       /* CTL_RUN, CTL_RERUN: object KEY -> VALUE in
	                           the order written, maybe empty; else NULL */
	struct ctl_axis *axes;  /* CTL_SWEEP: one per KEY, in the order written */
	size_t n_axes;
	size_t n_runs;          /* runs the command queues: the product of the
	                           axes' sizes for a sweep (1..CTL_SWEEP_MAX),
	                           1 for run and rerun, 0 otherwise */
};

/* Parse the line line[0..len) (need not be NUL-terminated; one trailing
 * "\n" or "\r\n" is allowed). Returns 0 with *out filled, 1 when the line
 * asks for nothing (blank or a comment), or -EINVAL with *err set to a
 * one-line message (malloc'd, the caller frees) naming the problem, e.g.
 *     run: "alpha" needs a value: write alpha=VALUE
 * Lines longer than CTL_LINE_MAX, with a NUL or another control character
 * than tab, or not valid UTF-8 are refused. *out is zeroed on every
 * return and owns what it holds after 0: free it with ctl_cmd_free().
 * err may be NULL; *err is NULL unless the result is -EINVAL. */
int ctl_parse(const char *line, size_t len, struct ctl_cmd *out, char **err);

/* Free what cmd holds and zero it; NULL or a zeroed cmd is a no-op. */
void ctl_cmd_free(struct ctl_cmd *cmd);

/* The param overrides of each run cmd asks for, as a new cJSON array of
 * objects (cmd->n_runs of them) in *out, which the caller frees with
 * cJSON_Delete(): for a sweep one object per combination of the axes,
 * keys in the order written, the first axis varying slowest (sweep a=1,2
 * b=x,y gives a1 bx, a1 by, a2 bx, a2 by); for run and rerun the one
 * object of overrides. Returns 0, or -EINVAL (and *out NULL) for other
 * verbs. */
int ctl_sweep_expand(const struct ctl_cmd *cmd, cJSON **out);

/* The verb as written ("run", "sweep", ...), or "?" for an unknown value. */
const char *ctl_verb_name(enum ctl_verb verb);

#endif
