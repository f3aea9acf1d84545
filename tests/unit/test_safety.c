/* test_safety.c - the pieces that keep steps away from the store: host
 * paths that lead into a mount (hostfs), capped step logs (steplog),
 * hole-keeping copies (util_copy_fd), out/ walks that refuse escapes and
 * honour the stop flag (cas_put_at), the isolated start (exec), in a
 * namespace of its own or in one made for many steps, from two threads
 * at once, from a thread that bounded its steps' capabilities, and the slots
 * built on the latter (slots.c). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/capability.h>

#include "check.h"
#include "flowyfs/cas.h"
#include "flowyfs/exec.h"
#include "flowyfs/flowy.h"
#include "flowyfs/hostfs.h"
#include "flowyfs/slots.h"
#include "flowyfs/steplog.h"
#include "flowyfs/util.h"

static char dir[] = "/tmp/flowyfs-test-safety-XXXXXX";

static char *at(const char *rel)
{
	return xasprintf("%s/%s", dir, rel);
}

TEST(inside_mount_follows_links_and_stops_at_the_mount)
{
	char *mnt = at("mnt"), *link = at("ln"), *rel = at("d/rel"), *d = at("d");
	CHECK_INT(mkdir(mnt, 0755), 0);
	CHECK_INT(mkdir(d, 0755), 0);
	CHECK_INT(symlink(mnt, link), 0);
	CHECK_INT(symlink("../mnt/x", rel), 0);
	char *p1 = at("mnt/artifacts/x"), *p2 = at("ln/artifacts"), *p3 = at("d/rel");
	char *p4 = at("d"), *p5 = at("d/../mnt"), *p6 = at("nope/x");
	CHECK_INT(hostfs_inside_mount(p1, mnt, (dev_t)-1), 1);
	CHECK_INT(hostfs_inside_mount(p2, mnt, (dev_t)-1), 1);
	CHECK_INT(hostfs_inside_mount(p3, mnt, (dev_t)-1), 1);
	CHECK_INT(hostfs_inside_mount(p4, mnt, (dev_t)-1), 0);
	CHECK_INT(hostfs_inside_mount(p5, mnt, (dev_t)-1), 1);
	CHECK_INT(hostfs_inside_mount(p6, mnt, (dev_t)-1), 0);
	/* a component on the mount's device counts as inside (a bind mount) */
	struct stat st;
	CHECK_INT(stat(dir, &st), 0);
	CHECK_INT(hostfs_inside_mount(p4, "/nonexistent-mount", st.st_dev), 1);
	struct hostfs_mount mi;
	CHECK_INT(hostfs_mount_info("/proc", &mi), 0);
	CHECK_INT(hostfs_mount_info(dir, &mi), -ENOENT);
	free(p1); free(p2); free(p3); free(p4); free(p5); free(p6);
	free(mnt); free(link); free(rel); free(d);
}

TEST(log_is_capped_and_noted)
{
	char *path = at("step.log");
	struct steplog l;
	steplog_init(&l);
	CHECK_INT(steplog_open(&l, path, 100000), 0);
	CHECK_INT(steplog_pipe(&l), 0);
	char buf[4096];
	memset(buf, 'y', sizeof buf);
	/* more than the cap, through the pipe, pumped as a scheduler would */
	for (int i = 0; i < 40; i++) {
		CHECK_INT(write(l.wr, buf, sizeof buf), sizeof buf);
		CHECK(steplog_pump(&l) >= 0);
	}
	steplog_close_writer(&l);
	CHECK_INT(steplog_pump(&l), 1);
	steplog_note(&l, "done");
	steplog_close(&l);
	char *text = NULL;
	size_t len = 0;
	CHECK_INT(util_read_file(path, &text, &len), 0);
	CHECK_INT(len, 100000 + strlen("flowyfs: log capped at 0 MiB; further output "
	                               "was dropped\n") + strlen("flowyfs: done\n"));
	CHECK_CONTAINS(text, "flowyfs: log capped at 0 MiB");
	CHECK_CONTAINS(text + len - 14, "flowyfs: done\n");
	free(text);
	free(path);
}

/* Copies of every size around the small-copy limit (read and written
 * whole) are exact, and a copy over longer content ends where its source
 * does. */
TEST(copies_are_exact_at_every_size)
{
	const size_t sizes[] = {0, 1, 4095, 65535, 65536, 65537, 300000};
	char *a = at("csrc"), *b = at("cdst");
	unsigned char *data = malloc(300000), *got = malloc(300001);
	for (size_t i = 0; i < 300000; i++)
		data[i] = (unsigned char)(i * 7 + i / 251);
	for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
		size_t n = sizes[k];
		CHECK_INT(util_put_file(a, (const char *)data, n), 0);
		CHECK_INT(util_copy_file(a, b, 0640, NULL), 0);
		int fd = open(b, O_RDONLY);
		CHECK_INT(read(fd, got, 300001), (ssize_t)n);
		close(fd);
		CHECK(!memcmp(got, data, n));
		struct stat st;
		CHECK_INT(stat(b, &st), 0);
		CHECK_INT(st.st_mode & 0777, 0640);
		/* into an open file holding more: cut to the source's size */
		fd = open(b, O_RDWR);
		CHECK_INT(pwrite(fd, data, 300000, 0), 300000);
		int in = open(a, O_RDONLY);
		CHECK_INT(util_copy_fd(in, fd, n, NULL), 0);
		close(in);
		CHECK_INT(fstat(fd, &st), 0);
		CHECK_INT(st.st_size, n);
		close(fd);
	}
	free(got);
	free(data);
	free(b);
	free(a);
}

TEST(copies_keep_holes)
{
	char *a = at("sparse"), *b = at("copy");
	int fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK_INT(pwrite(fd, "data", 4, 100 << 20), 4);
	CHECK_INT(ftruncate(fd, 300 << 20), 0);
	close(fd);
	CHECK_INT(util_copy_file(a, b, 0644, NULL), 0);
	struct stat st;
	CHECK_INT(stat(b, &st), 0);
	CHECK_INT(st.st_size, 300 << 20);
	CHECK(st.st_blocks * 512 < (1 << 20)); /* holes stayed holes */
	char got[4] = "";
	fd = open(b, O_RDONLY);
	CHECK_INT(pread(fd, got, 4, 100 << 20), 4);
	close(fd);
	CHECK(!memcmp(got, "data", 4));
	/* hashing reads no hole, and names the same content either way */
	char h1[CAS_HEX_LEN + 1], h2[CAS_HEX_LEN + 1];
	CHECK_INT(cas_hash_file(h1, a), 0);
	char *c = at("dense");
	char *zero = calloc(1, 1 << 20);
	fd = open(c, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	for (int i = 0; i < 300; i++)
		CHECK_INT(write(fd, zero, 1 << 20), 1 << 20);
	CHECK_INT(pwrite(fd, "data", 4, 100 << 20), 4);
	close(fd);
	CHECK_INT(cas_hash_file(h2, c), 0);
	CHECK_STR(h1, h2);
	int stop = 1;
	CHECK_INT(cas_hash_file_stop(h2, a, &stop), -ECANCELED);
	char *d = at("stopped");
	CHECK_INT(util_copy_file(c, d, 0644, &stop), -ECANCELED);
	free(d);
	free(zero);
	free(a);
	free(b);
	free(c);
}

TEST(out_walk_refuses_escapes_and_stops)
{
	char *store = at("objects"), *out = at("out"), *err = NULL;
	cas *c = NULL;
	CHECK_INT(cas_open(&c, store), 0);
	CHECK_INT(mkdir(out, 0755), 0);
	char *l1 = at("out/abs"), *l2 = at("out/rel");
	CHECK_INT(symlink("/etc/passwd", l1), 0);
	CHECK_INT(symlink("../../../../../../etc/passwd", l2), 0);
	int ofd = open(out, O_RDONLY | O_DIRECTORY);
	char hex[CAS_HEX_LEN + 1];
	enum cas_kind kind;
	CHECK_INT(cas_put_at(c, hex, &kind, ofd, "abs", "out", NULL, &err), -EXDEV);
	CHECK_CONTAINS(err, "out/abs: symlink points outside out/");
	free(err);
	CHECK_INT(cas_put_at(c, hex, &kind, ofd, "rel", "out", NULL, &err), -EXDEV);
	CHECK_CONTAINS(err, "symlink points outside out/");
	free(err);
	/* read as another user: a hard link to a file only root may read */
	if (geteuid() == 0) {
		char *secret = at("secret"), *hl = at("out/hl");
		CHECK_INT(util_put_file(secret, "s3cret\n", 7), 0);
		CHECK_INT(chmod(secret, 0600), 0);
		CHECK_INT(link(secret, hl), 0);
		struct cas_put_opts as = {.as_user = 1, .uid = 65534, .gid = 65534};
		CHECK_INT(cas_put_at(c, hex, &kind, ofd, "hl", "out", &as, &err), -EACCES);
		CHECK_CONTAINS(err, "out/hl: a hard link to a file the step's user cannot read");
		free(err);
		CHECK_INT(cas_put_at(c, hex, &kind, ofd, "hl", "out", NULL, &err), 0);
		CHECK_INT(unlink(hl), 0);
		free(hl);
		free(secret);
	}
	/* a sparse output is stored raw, holes kept, and a set stop flag ends it */
	char *big = at("out/big");
	int fd = open(big, O_WRONLY | O_CREAT, 0644);
	CHECK_INT(ftruncate(fd, 64 << 20), 0);
	close(fd);
	struct cas_put_opts o = {0};
	int stop = 1;
	o.stop = &stop;
	CHECK_INT(cas_put_at(c, hex, &kind, ofd, "big", "out", &o, &err), -ECANCELED);
	free(err);
	stop = 0;
	CHECK_INT(cas_put_at(c, hex, &kind, ofd, "big", "out", &o, &err), 0);
	struct cas_stat cs;
	CHECK_INT(cas_stat(c, hex, &cs), 0);
	CHECK_INT(cs.size, 64 << 20);
	CHECK_INT(cs.compressed, 0);
	CHECK(cs.stored_size <= (64u << 20));
	close(ofd);
	cas_close(c);
	free(big);
	free(l1);
	free(l2);
	free(out);
	free(store);
}

TEST(isolated_step_sees_no_store)
{
	char *store = at("store"), *cover = at("scratch"), *cwd = at("scratch/1/s");
	char *secret = at("store/secret"), *log = at("iso.log");
	CHECK_INT(mkdir(store, 0700), 0);
	CHECK_INT(util_put_file(secret, "s3cret\n", 7), 0);
	CHECK_INT(util_mkdir_p(cwd, 0700), 0);
	char *cmd = xasprintf("cat %s; ls -A %s; echo here > mine; ls ..; "
	                      "umount %s 2>/dev/null && echo UNMOUNTED; true",
	                      secret, store, store);
	int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char *envp[] = {"PATH=/usr/bin:/bin", NULL}, *err = NULL;
	struct exec_spec spec = {
		.cmd = cmd, .cwd = cwd, .envp = envp, .out_fd = lfd,
		.hide = {store, cover}, .nhide = 2, .keep = cwd,
		.uid = geteuid(), .gid = getegid(),
	};
	struct exec_proc p;
	CHECK_INT(exec_start(&p, &spec, &err), 0);
	CHECK(err == NULL);
	CHECK_INT(exec_reap(&p), 0);
	close(lfd);
	char *text = NULL;
	size_t len;
	CHECK_INT(util_read_file(log, &text, &len), 0);
	CHECK(strstr(text, "s3cret") == NULL);
	CHECK(strstr(text, "UNMOUNTED") == NULL);
	CHECK_CONTAINS(text, "No such file or directory");
	CHECK_CONTAINS(text, "s\n");     /* ls .. shows only the step's own dir */
	free(text);
	char *mine = at("scratch/1/s/mine");
	CHECK_INT(access(mine, F_OK), 0); /* its own scratch is the real one */
	CHECK_INT(access(secret, F_OK), 0);
	free(mine);
	free(cmd);
	free(log);
	free(secret);
	free(cwd);
	free(cover);
	free(store);
}

/* Run cmd in the namespace ns with cwd; its output. */
static char *run_in(const struct exec_ns *ns, const char *cwd, const char *cmd)
{
	char *log = at("ns.log"), *err = NULL, *text = NULL;
	int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char *envp[] = {"PATH=/usr/bin:/bin", NULL};
	struct exec_spec spec = {
		.cmd = cmd, .cwd = cwd, .envp = envp, .out_fd = lfd,
		.uid = geteuid(), .gid = getegid(), .ns = ns,
	};
	struct exec_proc p;
	size_t len;
	int code = -1;
	if (exec_start(&p, &spec, &err) < 0)
		text = xasprintf("exec_start: %s", err);
	else if ((code = exec_reap(&p)) != 0)
		text = xasprintf("exit status %d", code);
	else if (util_read_file(log, &text, &len) < 0)
		text = xstrdup("no output");
	close(lfd);
	free(err);
	free(log);
	return text; /* the callers' checks of it fail on a failure */
}

/* Thread body: start 30 children that exit with their number's last
 * digit, one after the other; how many ended otherwise. */
static void *start_many(void *arg)
{
	const char *cwd = arg;
	long bad = 0;
	char *envp[] = {"PATH=/usr/bin:/bin", NULL};
	for (int k = 0; k < 30; k++) {
		char cmd[32], *err = NULL;
		snprintf(cmd, sizeof cmd, "exit %d", k % 10);
		struct exec_spec spec = {
			.cmd = cmd, .cwd = cwd, .envp = envp, .out_fd = 2,
			.uid = geteuid(), .gid = getegid(),
		};
		struct exec_proc p;
		if (exec_start(&p, &spec, &err) < 0 || exec_reap(&p) != k % 10)
			bad++;
		free(err);
	}
	return (void *)bad;
}

/* Each thread's children start on a stack of their own (kept for the
 * thread's next start): two threads starting at once both get every
 * exit status right. */
TEST(starts_from_two_threads_at_once)
{
	char *cwd = at("threads");
	CHECK_INT(mkdir(cwd, 0700), 0);
	pthread_t t[2];
	for (int k = 0; k < 2; k++)
		CHECK_INT(pthread_create(&t[k], NULL, start_many, cwd), 0);
	void *bad[2];
	for (int k = 0; k < 2; k++)
		CHECK_INT(pthread_join(t[k], &bad[k]), 0);
	CHECK_INT((long)bad[0], 0);
	CHECK_INT((long)bad[1], 0);
	CHECK_INT((long)start_many(cwd), 0); /* and the main thread after them */
	free(cwd);
}

/* What a thread that bounded its steps' capabilities saw. */
struct bounded {
	int rc, admin, chown, ns_rc;
	char *caps;   /* a step's CapBnd line, from that thread */
};

static void *bound_and_start(void *arg)
{
	struct bounded *b = arg;
	b->rc = exec_bound_caps();
	b->admin = prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0);
	b->chown = prctl(PR_CAPBSET_READ, CAP_CHOWN, 0, 0, 0);
	/* Its own effective capabilities stay: it still makes a namespace. */
	char *store = at("bstore"), *keep = at("bscratch/slot"), *cover = at("bscratch");
	char *err = NULL;
	struct exec_ns ns = {-1};
	struct exec_spec made = {.hide = {store, cover}, .nhide = 2, .keep = keep};
	if (mkdir(store, 0700) < 0 || util_mkdir_p(keep, 0700) < 0)
		b->ns_rc = -errno;
	else
		b->ns_rc = exec_ns_make(&ns, &made, &err);
	if (!b->ns_rc)
		b->caps = run_in(&ns, keep, "grep ^CapBnd: /proc/self/status");
	exec_ns_close(&ns);
	free(err);
	free(store);
	free(keep);
	free(cover);
	return NULL;
}

/* A root thread that bounds its steps' capabilities keeps its own, and
 * its steps start without them; the other threads keep theirs. */
TEST(a_bounded_thread_starts_steps_without_the_dropped_capabilities)
{
	if (geteuid() != 0)
		return; /* the bounding set is root's to drop from */
	struct bounded b = {0};
	pthread_t t;
	CHECK_INT(pthread_create(&t, NULL, bound_and_start, &b), 0);
	CHECK_INT(pthread_join(t, NULL), 0);
	CHECK_INT(b.rc, 0);
	CHECK_INT(b.admin, 0);
	CHECK_INT(b.chown, 1);
	CHECK_INT(b.ns_rc, 0);
	CHECK(b.caps != NULL);
	unsigned long long bnd = 0;
	CHECK_INT(sscanf(b.caps, "CapBnd: %llx", &bnd), 1);
	free(b.caps);
	CHECK_INT(bnd & (1ULL << CAP_SYS_ADMIN), 0);
	CHECK_INT(bnd & (1ULL << CAP_SYS_PTRACE), 0);
	CHECK_INT(bnd & (1ULL << CAP_SETPCAP), 0);
	CHECK(bnd & (1ULL << CAP_CHOWN));
	CHECK_INT(prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0), 1); /* this thread's */
}

TEST(namespace_made_once_serves_many_steps)
{
	char *store = at("nstore"), *cover = at("nscratch"), *keep = at("nscratch/slot");
	char *other = at("nscratch/other"), *secret = at("nstore/secret");
	char *work = at("nscratch/slot/work");
	CHECK_INT(mkdir(store, 0700), 0);
	CHECK_INT(util_put_file(secret, "s3cret\n", 7), 0);
	CHECK_INT(util_mkdir_p(keep, 0700), 0);
	CHECK_INT(util_mkdir_p(other, 0700), 0);
	char *err = NULL;
	struct exec_ns ns;
	struct exec_spec made = {.hide = {store, cover}, .nhide = 2, .keep = keep};
	CHECK_INT(exec_ns_make(&ns, &made, &err), 0);
	CHECK(err == NULL);
	CHECK(ns.fd >= 0);
	/* A directory renamed into keep after the namespace was made is there:
	 * the bind is of the directory, not of what it held then. */
	CHECK_INT(mkdir(work, 0700), 0);
	char *cmd = xasprintf("cat %s; ls -A %s | wc -l; ls -A ..; ls -A ../..; "
	                      "echo one > mine; umount %s 2>/dev/null && echo UNMOUNTED; true",
	                      secret, store, store);
	char *text = run_in(&ns, work, cmd);
	CHECK(strstr(text, "s3cret") == NULL);
	CHECK(strstr(text, "UNMOUNTED") == NULL);
	/* the store empty; beside work nothing; beside the slot nothing
	 * (other is covered) */
	CHECK_CONTAINS(text, "No such file or directory\n0\nwork\nslot\n");
	free(text);
	char *mine = at("nscratch/slot/work/mine");
	char *got = NULL;
	size_t len;
	CHECK_INT(util_read_file(mine, &got, &len), 0);
	CHECK_STR(got, "one\n");
	free(got);
	/* The next step in the same namespace, its own directory in place. */
	char *w1 = at("nscratch/w1");
	CHECK_INT(rename(work, w1), 0);
	CHECK_INT(mkdir(work, 0700), 0);
	text = run_in(&ns, work, "ls -A; echo two > mine");
	CHECK_STR(text, "");
	free(text);
	CHECK_INT(util_read_file(mine, &got, &len), 0);
	CHECK_STR(got, "two\n");
	free(got);
	exec_ns_close(&ns);
	CHECK_INT(ns.fd, -1);
	free(w1);
	free(mine);
	free(cmd);
	free(work);
	free(secret);
	free(other);
	free(keep);
	free(cover);
	free(store);
}

TEST(slots_hold_scratch_and_refuse_a_replaced_one)
{
	struct flowy f = {0};
	f.store = at("sstore");
	f.scratch_cover = at("sscr");
	f.scratch_dir = at("sscr/store1");
	CHECK_INT(mkdir(f.store, 0700), 0);
	CHECK_INT(util_mkdir_p(f.scratch_dir, 0700), 0);
	struct slots *sl = slots_new(&f);
	struct slot *s = slots_take(sl);
	CHECK(s != NULL);
	char *slot0 = at("sscr/store1/.slots/0"), *work = at("sscr/store1/.slots/0/work");
	CHECK_STR(s->dir, slot0);
	CHECK_STR(s->work, work);
	CHECK_INT(access(work, F_OK), -1); /* the caller lays it out */
	char *out = at("sscr/store1/.slots/0/work/out");
	CHECK_INT(util_mkdir_p(out, 0700), 0);
	CHECK_INT(slots_hold(s), 0);
	/* a step: writes an output, leaves a file beside its directory */
	char *text = run_in(&s->ns, s->work, "echo x > out/x; echo junk > ../left; ls -A ..");
	CHECK_STR(text, "left\nwork\n");
	free(text);
	char *why = NULL;
	CHECK_INT(slots_check(s, &why), 0);
	CHECK(why == NULL);
	/* its directory taken out (to a pool or home), the slot given back */
	char *home = at("sscr/store1/a"), *file = at("sscr/store1/a/out/x");
	CHECK_INT(rename(work, home), 0);
	slots_give(sl, s);
	CHECK_INT(access(file, F_OK), 0);
	char *left = at("sscr/store1/.slots/0/left");
	CHECK_INT(access(left, F_OK), -1);
	/* taken again: the same slot (one at a time), nothing of the last */
	struct slot *s2 = slots_take(sl);
	CHECK(s2 == s);
	CHECK_INT(mkdir(work, 0700), 0);
	CHECK_INT(slots_hold(s2), 0);
	text = run_in(&s2->ns, s2->work, "ls -A ..");
	CHECK_STR(text, "work\n");
	free(text);
	/* a second at once gets a slot of its own */
	struct slot *s3 = slots_take(sl);
	CHECK(s3 != NULL && s3 != s2);
	char *slot1 = at("sscr/store1/.slots/1");
	CHECK_STR(s3->dir, slot1);
	CHECK_INT(mkdir(s3->work, 0700), 0);
	CHECK_INT(slots_hold(s3), 0);
	text = run_in(&s3->ns, s3->work, "ls -A ../..");
	CHECK_STR(text, "1\n"); /* slot 0, busy, is not to be seen */
	free(text);
	/* a slot given back with its directory still in it: removed */
	slots_give(sl, s3);
	char *work1 = at("sscr/store1/.slots/1/work");
	CHECK_INT(access(work1, F_OK), -1);
	/* a step that swaps its directory for a link to the host */
	char *secret = at("sscr/store1/secret");
	CHECK_INT(util_put_file(secret, "keep\n", 5), 0);
	text = run_in(&s2->ns, s2->work, "cd .. && mv work w && ln -s / work");
	free(text);
	CHECK_INT(slots_check(s2, &why), -EXDEV);
	CHECK_CONTAINS(why, "moved or replaced its own directory");
	free(why);
	struct stat st;
	slots_give(sl, s2);
	char *w = at("sscr/store1/.slots/0/w");
	CHECK_INT(lstat(w, &st), -1);    /* the slot is empty again */
	CHECK_INT(lstat(work, &st), -1);
	CHECK_INT(access(secret, F_OK), 0); /* and the link was not followed */
	/* so does one that moved it away and made another in its place */
	s2 = slots_take(sl);
	CHECK(s2 == s);
	CHECK_INT(mkdir(work, 0700), 0);
	CHECK_INT(slots_hold(s2), 0);
	text = run_in(&s2->ns, s2->work, "cd .. && mv work w2 && mkdir work");
	free(text);
	CHECK_INT(slots_check(s2, &why), -EXDEV);
	free(why);
	slots_give(sl, s2);
	char *w2 = at("sscr/store1/.slots/0/w2");
	CHECK_INT(lstat(w2, &st), -1);
	free(w2);
	slots_free(sl);
	free(secret);
	free(w);
	free(work1);
	free(slot1);
	free(left);
	free(home);
	free(work);
	free(slot0);
	free(out);
	free(file);
	free(f.scratch_dir);
	free(f.scratch_cover);
	free(f.store);
}

/* A file system mounted after a slot was made is seen by the next step
 * (the slot is made again from the new mount table); a slot is dropped
 * as soon as the watcher says the table changed. */
TEST(slots_see_what_was_mounted_since)
{
	if (geteuid() != 0)
		return; /* no slots without root */
	struct flowy f = {0};
	f.store = at("mstore");
	f.scratch_cover = at("mscr");
	f.scratch_dir = at("mscr/store1");
	char *late = at("late"), *file = at("late/f");
	CHECK_INT(mkdir(f.store, 0700), 0);
	CHECK_INT(util_mkdir_p(f.scratch_dir, 0700), 0);
	CHECK_INT(mkdir(late, 0755), 0);
	struct slots *sl = slots_new(&f);
	struct slot *s = slots_take(sl);
	CHECK(s != NULL);
	CHECK_INT(mkdir(s->work, 0700), 0);
	char *cmd = xasprintf("cat %s 2>/dev/null || echo none", file);
	char *text = run_in(&s->ns, s->work, cmd);
	CHECK_STR(text, "none\n");
	free(text);
	slots_give(sl, s);
	/* told of a change, the free slot goes at once (its namespace held
	 * the old table's mounts) */
	int old_ns = s->ns.fd;
	CHECK(fcntl(old_ns, F_GETFD) >= 0);
	slots_mounts_changed(sl);
	CHECK_INT(fcntl(old_ns, F_GETFD), -1);
	CHECK_INT(errno, EBADF);
	CHECK_INT(mount("late", late, "tmpfs", 0, "size=64k"), 0);
	int put = util_put_file(file, "mounted\n", 8);
	s = slots_take(sl);
	int made = s ? mkdir(s->work, 0700) : -1;
	text = s ? run_in(&s->ns, s->work, cmd) : xstrdup("no slot");
	if (s)
		slots_give(sl, s);
	slots_free(sl); /* its namespaces hold the tmpfs too */
	CHECK_INT(umount(late), 0); /* before any check can return */
	CHECK_INT(put, 0);
	CHECK_STR(text, "mounted\n");
	free(text);
	CHECK_INT(made, 0);
	free(cmd);
	free(file);
	free(late);
	free(f.scratch_dir);
	free(f.scratch_cover);
	free(f.store);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	RUN(inside_mount_follows_links_and_stops_at_the_mount);
	RUN(log_is_capped_and_noted);
	RUN(copies_are_exact_at_every_size);
	RUN(copies_keep_holes);
	RUN(out_walk_refuses_escapes_and_stops);
	RUN(isolated_step_sees_no_store);
	RUN(starts_from_two_threads_at_once);
	RUN(a_bounded_thread_starts_steps_without_the_dropped_capabilities);
	RUN(namespace_made_once_serves_many_steps);
	RUN(slots_hold_scratch_and_refuse_a_replaced_one);
	RUN(slots_see_what_was_mounted_since);
	util_rm_rf(dir);
	return CHECK_DONE();
}
