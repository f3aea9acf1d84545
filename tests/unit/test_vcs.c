/* test_vcs.c - the store's pipeline history: a commit of many new files
 * lands as one pack (no loose objects), a commit of a few as loose
 * objects; both read back through libgit2 with the right contents and
 * parent; an unchanged directory returns the current head; files of every
 * size (read whole, or streamed by libgit2 past 1 MiB) keep their bytes
 * and their executable bit. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "check.h"
#include "flowyfs/util.h"
#include "flowyfs/vcs.h"

static char dir[] = "/tmp/flowyfs-test-vcs-XXXXXX";

static char *at(const char *rel)
{
	return xasprintf("%s/%s", dir, rel);
}

/* Files in dir/rel whose name ends with suffix. */
static int count_files(const char *rel, const char *suffix)
{
	char *p = at(rel);
	DIR *d = opendir(p);
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		size_t len = strlen(e->d_name), sl = strlen(suffix);
		n += e->d_name[0] != '.' && len >= sl && !strcmp(e->d_name + len - sl, suffix);
	}
	if (d)
		closedir(d);
	free(p);
	return n;
}

/* Loose objects: the files in the two-hex-digit directories of objects/. */
static int count_loose(void)
{
	char *p = at("history.git/objects");
	DIR *d = opendir(p);
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (strlen(e->d_name) == 2 && e->d_name[0] != '.') {
			char *sub = xasprintf("history.git/objects/%s", e->d_name);
			n += count_files(sub, "");
			free(sub);
		}
	if (d)
		closedir(d);
	free(p);
	return n;
}

/* The blob at path in commit hex, as a string ("" when missing). */
static char *blob_at(const char *hex, const char *path, char *parent_out)
{
	git_repository *repo = NULL;
	git_oid id;
	git_commit *c = NULL;
	git_tree *t = NULL;
	git_tree_entry *e = NULL;
	git_blob *b = NULL;
	char *r = xstrdup("");
	char *git = at("history.git");
	if (git_repository_open_bare(&repo, git) == 0 && git_oid_fromstr(&id, hex) == 0 &&
	    git_commit_lookup(&c, repo, &id) == 0 && git_commit_tree(&t, c) == 0 &&
	    git_tree_entry_bypath(&e, t, path) == 0 &&
	    git_blob_lookup(&b, repo, git_tree_entry_id(e)) == 0) {
		free(r);
		r = xstrndup(git_blob_rawcontent(b), (size_t)git_blob_rawsize(b));
	}
	if (parent_out) {
		parent_out[0] = '\0';
		if (c && git_commit_parentcount(c) == 1)
			git_oid_tostr(parent_out, 41, git_commit_parent_id(c, 0));
	}
	git_blob_free(b);
	git_tree_entry_free(e);
	git_tree_free(t);
	git_commit_free(c);
	git_repository_free(repo);
	free(git);
	return r;
}

/* Files s<from>..s<to - 1>.json of sub, each with its tag and number. */
static int write_range(const char *sub, int from, int to, const char *tag)
{
	char *d = at(sub);
	int rc = mkdir(d, 0755) < 0 && errno != EEXIST;
	for (int i = from; !rc && i < to; i++) {
		char *p = xasprintf("%s/s%04d.json", d, i);
		char *body = xasprintf("{\"run\": \"echo %s %d\"}\n", tag, i);
		rc = util_put_file(p, body, strlen(body));
		free(body);
		free(p);
	}
	free(d);
	return rc;
}

static int write_files(const char *sub, int n, const char *tag)
{
	return write_range(sub, 0, n, tag);
}

TEST(many_new_files_land_as_one_pack)
{
	vcs *v = NULL;
	char *err = NULL, *git = at("history.git"), *snap = at("snap1");
	char c1[41], c2[41], c3[41], parent[41];
	CHECK_INT(vcs_open(&v, git, &err), 0);
	CHECK_INT(write_files("snap1", 200, "a"), 0);
	CHECK_INT(vcs_commit_dir(v, c1, "p", snap, 200, "run 1 of p", &err), 0);
	CHECK_INT(strlen(c1), 40);
	CHECK_INT(count_files("history.git/objects/pack", ".pack"), 1);
	CHECK_INT(count_files("history.git/objects/pack", ".idx"), 1);
	CHECK_INT(count_loose(), 0); /* nothing loose */
	char *b = blob_at(c1, "s0123.json", parent);
	CHECK_STR(b, "{\"run\": \"echo a 123\"}\n");
	CHECK_STR(parent, "");
	free(b);

	/* Unchanged: the head comes back, nothing is written. */
	CHECK_INT(vcs_commit_dir(v, c2, "p", snap, 200, "run 2 of p", &err), 0);
	CHECK_STR(c2, c1);
	CHECK_INT(count_files("history.git/objects/pack", ".pack"), 1);

	/* One file changed, told as one new file: a loose blob, tree, commit. */
	char *one = at("snap1/s0007.json");
	CHECK_INT(util_put_file(one, "changed\n", 8), 0);
	free(one);
	CHECK_INT(vcs_commit_dir(v, c3, "p", snap, 1, "run 3 of p", &err), 0);
	CHECK(strcmp(c3, c1) != 0);
	CHECK_INT(count_files("history.git/objects/pack", ".pack"), 1);
	CHECK_INT(count_loose(), 3);
	b = blob_at(c3, "s0007.json", parent);
	CHECK_STR(b, "changed\n");
	CHECK_STR(parent, c1);
	free(b);
	b = blob_at(c3, "s0008.json", NULL);
	CHECK_STR(b, "{\"run\": \"echo a 8\"}\n");
	free(b);
	vcs_close(v);
	free(snap);
	free(git);
	free(err);
}

/* Objects in all packs of the history (each pack's header counts its). */
static long packed_objects(void)
{
	char *p = at("history.git/objects/pack");
	DIR *d = opendir(p);
	long n = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 5 || strcmp(e->d_name + len - 5, ".pack"))
			continue;
		char *f = xasprintf("%s/%s", p, e->d_name);
		unsigned char h[12] = {0};
		FILE *fp = fopen(f, "rb");
		if (fp && fread(h, 1, sizeof h, fp) == sizeof h)
			n += (long)h[8] << 24 | (long)h[9] << 16 | (long)h[10] << 8 | h[11];
		if (fp)
			fclose(fp);
		free(f);
	}
	if (d)
		closedir(d);
	free(p);
	return n;
}

TEST(a_packed_commit_holds_only_what_the_history_lacks)
{
	vcs *v = NULL;
	char *err = NULL, *git = at("history.git"), *snap = at("snap4");
	char c[41];
	CHECK_INT(vcs_open(&v, git, &err), 0);
	/* s0000..s0099 as the first test's pack has them, then 100 of its own
	 * (and two files with one content: one blob). */
	CHECK_INT(write_files("snap4", 100, "a"), 0);
	CHECK_INT(write_range("snap4", 100, 199, "n"), 0);
	char *last = at("snap4/s0199.json"), *body = "{\"run\": \"echo n 198\"}\n";
	CHECK_INT(util_put_file(last, body, strlen(body)), 0);
	free(last);
	long before = packed_objects();
	CHECK_INT(vcs_commit_dir(v, c, "n", snap, 200, "run 1 of n", &err), 0);
	CHECK_INT(packed_objects() - before, 99 + 1 + 1); /* blobs, tree, commit */
	char *b = blob_at(c, "s0042.json", NULL);
	CHECK_STR(b, "{\"run\": \"echo a 42\"}\n");
	free(b);
	b = blob_at(c, "s0199.json", NULL);
	CHECK_STR(b, body);
	free(b);
	vcs_close(v);
	free(snap);
	free(git);
	free(err);
}

TEST(files_of_every_size_keep_their_bytes)
{
	vcs *v = NULL;
	char *err = NULL, *git = at("history.git"), *snap = at("snap3");
	char c[41];
	CHECK_INT(mkdir(snap, 0755), 0);
	size_t big = (1 << 20) + 17;
	char *data = malloc(big + 1);
	for (size_t i = 0; i < big; i++)
		data[i] = (char)('a' + i % 26);
	data[big] = '\0';
	char *empty = at("snap3/empty"), *one = at("snap3/run.sh"), *large = at("snap3/large");
	CHECK_INT(util_put_file(empty, "", 0), 0);
	CHECK_INT(util_put_file(one, "#!/bin/sh\necho hi\n", 19), 0);
	CHECK_INT(chmod(one, 0755), 0);
	CHECK_INT(util_put_file(large, data, big), 0);
	CHECK_INT(vcs_open(&v, git, &err), 0);
	CHECK_INT(vcs_commit_dir(v, c, "r", snap, 3, "run 1 of r", &err), 0);
	char *b = blob_at(c, "empty", NULL);
	CHECK_STR(b, "");
	free(b);
	b = blob_at(c, "run.sh", NULL);
	CHECK_STR(b, "#!/bin/sh\necho hi\n");
	free(b);
	b = blob_at(c, "large", NULL);
	CHECK_INT(strlen(b), big);
	CHECK(!strcmp(b, data));
	free(b);
	/* the executable bit is the tree entry's mode */
	git_repository *repo = NULL;
	git_oid id;
	git_commit *cm = NULL;
	git_tree *t = NULL;
	CHECK_INT(git_repository_open_bare(&repo, git), 0);
	CHECK_INT(git_oid_fromstr(&id, c), 0);
	CHECK_INT(git_commit_lookup(&cm, repo, &id), 0);
	CHECK_INT(git_commit_tree(&t, cm), 0);
	const git_tree_entry *e = git_tree_entry_byname(t, "run.sh");
	CHECK(e != NULL);
	CHECK_INT(git_tree_entry_filemode(e), GIT_FILEMODE_BLOB_EXECUTABLE);
	e = git_tree_entry_byname(t, "empty");
	CHECK(e != NULL);
	CHECK_INT(git_tree_entry_filemode(e), GIT_FILEMODE_BLOB);
	git_tree_free(t);
	git_commit_free(cm);
	git_repository_free(repo);
	vcs_close(v);
	free(large);
	free(one);
	free(empty);
	free(data);
	free(snap);
	free(git);
	free(err);
}

/* A file too big to read whole (it goes to libgit2 by its path) is in a
 * packed commit's pack like the rest, and so is a subdirectory's tree. */
TEST(a_packed_commit_keeps_big_files_and_subdirectories)
{
	vcs *v = NULL;
	char *err = NULL, *git = at("history.git"), *snap = at("snap5");
	char c[41];
	CHECK_INT(vcs_open(&v, git, &err), 0);
	CHECK_INT(write_files("snap5", 100, "big"), 0);
	size_t big = (1 << 20) + 17;
	char *data = malloc(big + 1);
	for (size_t i = 0; i < big; i++)
		data[i] = (char)('A' + i % 23);
	data[big] = '\0';
	char *sub = at("snap5/lib"), *large = at("snap5/lib/model.bin");
	CHECK_INT(mkdir(sub, 0755), 0);
	CHECK_INT(util_put_file(large, data, big), 0);
	long loose = count_loose();
	CHECK_INT(vcs_commit_dir(v, c, "big", snap, 101, "run 1 of big", &err), 0);
	CHECK_INT(count_loose(), loose); /* all in the pack */
	char *b = blob_at(c, "lib/model.bin", NULL);
	CHECK_INT(strlen(b), big);
	CHECK(!strcmp(b, data));
	free(b);
	vcs_close(v);
	free(large);
	free(sub);
	free(data);
	free(snap);
	free(git);
	free(err);
}

TEST(a_packed_commit_follows_the_branch)
{
	vcs *v = NULL;
	char *err = NULL, *git = at("history.git"), *snap = at("snap2");
	char head[41], c[41], parent[41];
	CHECK_INT(vcs_open(&v, git, &err), 0);
	CHECK_INT(write_files("snap2", 100, "b"), 0);
	CHECK_INT(vcs_commit_dir(v, head, "q", snap, 100, "run 1 of q", &err), 0);
	CHECK_INT(write_files("snap2", 100, "c"), 0);
	CHECK_INT(vcs_commit_dir(v, c, "q", snap, 100, "run 2 of q", &err), 0);
	char *b = blob_at(c, "s0099.json", parent);
	CHECK_STR(b, "{\"run\": \"echo c 99\"}\n");
	CHECK_STR(parent, head);
	free(b);
	/* The branch names the new commit. */
	git_repository *repo = NULL;
	git_oid id;
	char tip[41] = "";
	CHECK_INT(git_repository_open_bare(&repo, git), 0);
	CHECK_INT(git_reference_name_to_id(&id, repo, "refs/heads/q"), 0);
	git_oid_tostr(tip, sizeof tip, &id);
	git_repository_free(repo);
	CHECK_STR(tip, c);
	vcs_close(v);
	free(snap);
	free(git);
	free(err);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	git_libgit2_init();
	RUN(many_new_files_land_as_one_pack);
	RUN(a_packed_commit_follows_the_branch);
	RUN(a_packed_commit_holds_only_what_the_history_lacks);
	RUN(files_of_every_size_keep_their_bytes);
	RUN(a_packed_commit_keeps_big_files_and_subdirectories);
	git_libgit2_shutdown();
	util_rm_rf(dir);
	return CHECK_DONE();
}
