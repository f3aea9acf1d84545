/*
 * fuzz_step.c - libFuzzer target for the pipeline definition parser
 * (step.c, and dag.c through it). One fuzz input is a whole pipeline
 * directory:
 *
 *     <pipeline.json>             bytes before the first separator
 *     %%% train.json              a separator line names the next file
 *     <train.json>
 *     %%% prep.sh                 any name: not *.json is a code file
 *     %%% data/                   a trailing '/' makes a directory
 *
 * Empty leading bytes mean no pipeline.json. A name that could leave the
 * directory (empty, ".", "..", with '/' inside, over 100 bytes) becomes
 * f<N>.json. The files go to one private directory made at start (under
 * $TMPDIR, else /dev/shm when writable, else /tmp: tmpfs runs about five
 * times as many inputs a second as ext4), emptied after each input and
 * removed at exit, so an input costs a few small writes. Besides what ASan/UBSan catch it aborts
 * when step.h's contract breaks: step_load() failing on a readable
 * directory, an empty message, or a valid pipeline whose order is not a
 * topological order of its steps, or whose first output is not found
 * as produced by its first step. The graph is rendered too (dag.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowyfs/dag.h"
#include "flowyfs/step.h"

#define SEP "%%% "
#define NAME_MAX_FUZZ 100

static char dir[4096];
static int dfd = -1;

/* Remove every entry of the directory (files, and the empty directories
 * an input made). */
static void empty_dir(void)
{
	DIR *d;
	struct dirent *de;
	int fd = dup(dfd);

	if (fd < 0 || !(d = fdopendir(fd)))
		abort();
	rewinddir(d);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(dfd, de->d_name, 0) < 0 &&
		    unlinkat(dfd, de->d_name, AT_REMOVEDIR) < 0)
			abort();
	}
	closedir(d);
}

static void remove_dir(void)
{
	if (dfd < 0)
		return;
	empty_dir();
	close(dfd);
	dfd = -1;
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	if (!tmp || !*tmp)
		tmp = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(dir, sizeof dir, "%s/flowyfs-fuzz-step-XXXXXX", tmp);
	if (!mkdtemp(dir) || (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		perror(dir);
		abort();
	}
	atexit(remove_dir);
	return 0;
}

/* Write data[0..len) to name (or make the directory name/). */
static void put(const char *name, size_t nlen, const uint8_t *data, size_t len,
                int seq)
{
	char fname[NAME_MAX_FUZZ + 16];
	int is_dir = nlen > 1 && name[nlen - 1] == '/', fd;
	size_t n = is_dir ? nlen - 1 : nlen, off = 0;
	ssize_t w;

	if (!n || n > NAME_MAX_FUZZ || memchr(name, '/', n) || memchr(name, '\0', n) ||
	    (n == 1 && name[0] == '.') || (n == 2 && !memcmp(name, "..", 2))) {
		snprintf(fname, sizeof fname, "f%d.json", seq);
		is_dir = 0;
	} else {
		memcpy(fname, name, n);
		fname[n] = '\0';
	}
	if (is_dir) {
		if (mkdirat(dfd, fname, 0755) < 0 && errno != EEXIST)
			abort();
		return;
	}
	fd = openat(dfd, fname, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		if (errno == EISDIR || errno == ELOOP)
			return;          /* a directory of that name came first */
		abort();
	}
	while (off < len) {
		w = write(fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			abort();
		off += (size_t)w;
	}
	close(fd);
}

/* Offset of the next separator line at or after off (a line start), or
 * size. */
static size_t next_sep(const uint8_t *d, size_t size, size_t off)
{
	while (off < size) {
		if (size - off >= 4 && !memcmp(d + off, SEP, 4))
			return off;
		const uint8_t *nl = memchr(d + off, '\n', size - off);
		if (!nl)
			return size;
		off = (size_t)(nl - d) + 1;
	}
	return size;
}

static void check(const struct pipeline_def *p)
{
	unsigned char *pos_seen;
	size_t *pos, i, j;

	for (i = 0; i < p->n_errors; i++)
		if (!p->errors[i] || !p->errors[i][0])
			abort();
	if (p->n_errors)
		return;
	if (!p->order && p->n_steps)
		abort();
	pos = calloc(p->n_steps + 1, sizeof *pos);
	pos_seen = calloc(p->n_steps + 1, 1);
	if (!pos || !pos_seen)
		abort();
	for (i = 0; i < p->n_steps; i++) {
		if (p->order[i] >= p->n_steps || pos_seen[p->order[i]]++)
			abort();
		pos[p->order[i]] = i;
	}
	for (i = 0; i < p->n_steps; i++)
		for (j = 0; j < p->steps[i].n_inputs; j++) {
			const struct step_input *in = &p->steps[i].inputs[j];

			if (in->kind == STEP_IN_LOCAL &&
			    (in->producer < 0 || pos[in->producer] >= pos[i]))
				abort();
		}
	free(pos);
	free(pos_seen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pipeline_def *p = NULL;
	size_t off = next_sep(data, size, 0), end, nl;
	int seq = 0;
	char *s;

	if (off > 0)
		put("pipeline.json", 13, data, off, seq);
	while (off < size) {
		const uint8_t *e = memchr(data + off, '\n', size - off);

		nl = e ? (size_t)(e - data) : size;
		end = next_sep(data, size, nl < size ? nl + 1 : size);
		put((const char *)data + off + 4, nl - off - 4, data + nl + (nl < size),
		    end - nl - (nl < size), ++seq);
		off = end;
	}
	if (step_load(&p, "fuzz", dir) != 0 || !p)
		abort();
	check(p);
	s = dag_render_text(p);
	free(s);
	s = dag_render_dot(p);
	free(s);
	if (p->n_steps) {
		unsigned char *mark = calloc(p->n_steps, 1);

		if (!mark)
			abort();
		dag_downstream(p, 0, mark);
		if (!mark[0])
			abort();
		free(mark);
		/* Without errors every output has exactly one producer. */
		if (!p->n_errors && p->steps[0].n_outputs &&
		    step_producer(p, p->steps[0].outputs[0]) != 0)
			abort();
	}
	if (!p->n_errors && step_producer(p, "") != -1)
		abort();      /* an invalid pipeline keeps its invalid names */
	step_free(p);
	empty_dir();
	return 0;
}
