/* test_scratchpool.c - the run's pool of scratch directories: a given
 * directory is emptied into the trash (in/ and out/ kept, modes reset) and
 * taken back under another name; directories whose in/ or out/ is not a
 * real directory are refused and left alone; a step log is made only by
 * its first byte or note. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "flowyfs/scratchpool.h"
#include "flowyfs/steplog.h"
#include "flowyfs/util.h"

static char dir[] = "/tmp/flowyfs-test-pool-XXXXXX";

static char *at(const char *rel)
{
	return xasprintf("%s/%s", dir, rel);
}

/* base/name with in/, out/ and some files a step leaves behind. */
static int make_step(const char *name, int out_link)
{
	char *d = at(name), *in = xasprintf("%s/in", d), *out = xasprintf("%s/out", d);
	char *f = xasprintf("%s/out/o1", d), *l = xasprintf("%s/in/x", d);
	char *cwdf = xasprintf("%s/tmpfile", d);
	int rc = mkdir(d, 0700) || mkdir(in, 0755) ||
	         (out_link ? symlink("/etc", out) : mkdir(out, 0755)) ||
	         symlink("/nonexistent/artifact", l) ||
	         (!out_link && util_put_file(f, "data\n", 5)) ||
	         util_put_file(cwdf, "t", 1);
	free(d); free(in); free(out); free(f); free(l); free(cwdf);
	return rc;
}

/* How many entries dir/rel has (-errno when it cannot be read). */
static int entries(const char *rel)
{
	char *p = at(rel);
	DIR *d = opendir(p);
	free(p);
	if (!d)
		return -errno;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

TEST(given_dir_comes_back_empty_under_a_new_name)
{
	struct scratchpool p;
	scratchpool_init(&p, dir);
	char *a = at("a"), *b = at("b"), *c = at("c");
	CHECK_INT(scratchpool_take(&p, b), 0); /* nothing pooled yet */
	CHECK_INT(make_step("a", 0), 0);
	char *out = at("a/out");
	CHECK_INT(chmod(out, 0), 0); /* a step took its own write permission */
	CHECK_INT(chmod(a, 0755), 0); /* and opened its directory to all */
	CHECK_INT(scratchpool_give(&p, a, 0755), 0);
	struct stat st;
	CHECK_INT(lstat(a, &st) < 0 && errno == ENOENT, 1);
	CHECK_INT(entries(".trash"), 3);   /* out/o1, in/x, tmpfile */
	CHECK_INT(scratchpool_take(&p, b), 1);
	CHECK_INT(entries("b"), 2);        /* in, out */
	CHECK_INT(entries("b/in"), 0);
	CHECK_INT(entries("b/out"), 0);
	char *bout = at("b/out");
	CHECK_INT(stat(bout, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0755);
	CHECK_INT(stat(b, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0700);
	CHECK_INT(scratchpool_take(&p, c), 0); /* the one was taken */
	CHECK_INT(entries(".pool"), 0);
	scratchpool_free(&p);
	free(a); free(b); free(c); free(out); free(bout);
}

TEST(a_dir_whose_out_is_a_link_is_refused_and_left_alone)
{
	struct scratchpool p;
	scratchpool_init(&p, dir);
	CHECK_INT(make_step("evil", 1), 0);
	char *e = at("evil"), *x = at("x");
	int before = entries(".trash");
	CHECK_INT(scratchpool_give(&p, e, 0755), -ENOTDIR);
	CHECK_INT(entries("evil"), 3);     /* in, out (the link), tmpfile */
	CHECK_INT(entries(".trash"), before);
	CHECK_INT(scratchpool_take(&p, x), 0);
	/* and the whole directory as a link */
	char *ln = at("ln");
	CHECK_INT(symlink(e, ln), 0);
	CHECK_INT(scratchpool_give(&p, ln, 0755), -ENOTDIR);
	scratchpool_free(&p);
	free(e); free(x); free(ln);
}

TEST(log_file_is_made_by_the_first_byte_or_note)
{
	char *path = at("quiet.log"), *path2 = at("loud.log"), *path3 = at("noted.log");
	struct steplog l;
	struct stat st;
	/* a step that prints nothing leaves no file */
	steplog_init(&l);
	CHECK_INT(steplog_open(&l, path, 1000), 0);
	CHECK_INT(steplog_pipe(&l), 0);
	CHECK_INT(steplog_pump(&l), 0);
	steplog_close_writer(&l);
	CHECK_INT(steplog_pump(&l), 1);
	steplog_close(&l);
	CHECK_INT(lstat(path, &st) < 0 && errno == ENOENT, 1);
	/* one that prints makes it, and a second open appends */
	steplog_init(&l);
	CHECK_INT(steplog_open(&l, path2, 1000), 0);
	CHECK_INT(steplog_pipe(&l), 0);
	CHECK_INT(write(l.wr, "hi\n", 3), 3);
	steplog_close_writer(&l);
	CHECK_INT(steplog_pump(&l), 1);
	steplog_close(&l);
	steplog_init(&l);
	CHECK_INT(steplog_open(&l, path2, 1000), 0);
	steplog_note(&l, "again");
	steplog_close(&l);
	char *text = NULL;
	size_t len = 0;
	CHECK_INT(util_read_file(path2, &text, &len), 0);
	CHECK_STR(text, "hi\nflowyfs: again\n");
	free(text);
	/* a note alone makes it too */
	steplog_init(&l);
	CHECK_INT(steplog_open(&l, path3, 1000), 0);
	steplog_note(&l, "no space");
	steplog_close(&l);
	CHECK_INT(util_read_file(path3, &text, &len), 0);
	CHECK_STR(text, "flowyfs: no space\n");
	free(text);
	free(path); free(path2); free(path3);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	RUN(given_dir_comes_back_empty_under_a_new_name);
	RUN(a_dir_whose_out_is_a_link_is_refused_and_left_alone);
	RUN(log_file_is_made_by_the_first_byte_or_note);
	int rc = CHECK_DONE();
	util_rm_rf(dir);
	return rc;
}
