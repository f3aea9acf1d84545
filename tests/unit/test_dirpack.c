/*
 * test_dirpack.c - directory listings packed as FUSE dirents: every entry
 * once, in order, with offsets 1..n, whatever the READDIR sizes and
 * offsets (sequential and seeking back); a kept listing comes back only
 * while the database's generation stays; and "the same as handed out
 * last" holds exactly for an identical listing of the same directory.
 */
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "flowyfs/db.h"
#include "flowyfs/dirpack.h"
#include "flowyfs/flowy.h"
#include "flowyfs/gencache.h"
#include "flowyfs/util.h"
#include "flowyfs/view.h"

static void fill(struct dirlist *l, int n, const char *prefix)
{
	char name[64];
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof name, "%s%d", prefix, i);
		dirlist_add(l, name, i % 2 ? S_IFDIR : S_IFREG);
	}
}

/* Read p as the kernel would, size bytes a READDIR from offset off on;
 * the names joined by '\n' into out; the entries read. */
static int read_all(struct dirpack *p, off_t off, size_t size, struct strbuf *out)
{
	int n = 0;
	for (;;) {
		const char *start;
		size_t got = dirpack_slice(p, off, size, &start);
		if (!got)
			return n;
		for (size_t at = 0; at < got;) {
			const struct fuse_dirent *d = (const void *)(start + at);
			if ((off_t)d->off != off + 1)
				return -1;
			strbuf_add(out, d->name, d->namelen);
			strbuf_puts(out, "\n");
			off = (off_t)d->off;
			at += FUSE_DIRENT_SIZE(d);
			n++;
		}
	}
}

TEST(every_entry_once_in_order)
{
	struct dirlist l = {0};
	struct strbuf want = {0}, got = {0}, part = {0};
	fill(&l, 5000, "run");
	for (size_t i = 0; i < l.n; i++)
		strbuf_printf(&want, "%s\n", l.e[i].name);
	struct dirpack *p = dirpack_build(&l);
	CHECK_INT(read_all(p, 0, 4096, &got), 5000);
	CHECK_STR(got.buf, want.buf);
	/* A small buffer: one entry a call; then seek back to entry 4990. */
	strbuf_release(&got);
	CHECK_INT(read_all(p, 0, 40, &got), 5000);
	CHECK_STR(got.buf, want.buf);
	CHECK_INT(read_all(p, 4990, 128 * 1024, &part), 10);
	CHECK_STR(part.buf, want.buf + (strlen(want.buf) - strlen(strstr(want.buf, "run4990\n"))));
	/* Too small for one entry: nothing, not a partial record. */
	const char *start;
	CHECK_INT(dirpack_slice(p, 0, 8, &start), 0);
	CHECK_INT(dirpack_slice(p, 5000, 4096, &start), 0);
	dirpack_free(p);
	strbuf_release(&want);
	strbuf_release(&got);
	strbuf_release(&part);
	dirlist_free(&l);
}

TEST(kept_while_the_generation_stays_and_same_when_identical)
{
	char dir[] = "/tmp/flowyfs-test-dirpack-XXXXXX", *err = NULL;
	CHECK(mkdtemp(dir) != NULL);
	char *path = xasprintf("%s/flowy.db", dir);
	struct flowy f = {0};
	CHECK_INT(db_open(&f.db, path, &err), 0);
	gencache_clear();

	struct dirlist a = {0}, b = {0};
	fill(&a, 100, "r");
	fill(&b, 101, "r");
	uint64_t gen;
	CHECK(dirpack_kept(&f, "runs", &gen) == NULL);
	struct dirpack *pa = dirpack_build(&a);
	CHECK_INT(dirpack_keep("runs", gen, pa), 0);   /* never handed out */
	struct dirpack *k = dirpack_kept(&f, "runs", &gen);
	CHECK(k != NULL);
	CHECK_INT(k->len, pa->len);
	CHECK(!memcmp(k->buf, pa->buf, pa->len));
	dirpack_free(k);

	/* A change of the store: not kept any more; the same listing built
	 * again is the one handed out, another one is not. */
	int64_t id;
	CHECK_INT(db_run_create(f.db, &id, "p", "ctl"), 0);
	uint64_t gen2;
	CHECK(dirpack_kept(&f, "runs", &gen2) == NULL);
	CHECK(gen2 > gen);
	CHECK_INT(dirpack_keep("runs", gen2, pa), 1);
	struct dirpack *pb = dirpack_build(&b);
	CHECK_INT(dirpack_keep("runs", gen2, pb), 0);
	CHECK_INT(dirpack_keep("runs", gen2, pa), 0);  /* after b: a is new again */
	CHECK_INT(dirpack_keep("other", gen2, pa), 0); /* per directory */
	CHECK_INT(dirpack_keep("other", gen2, pa), 1);

	dirpack_free(pa);
	dirpack_free(pb);
	dirlist_free(&a);
	dirlist_free(&b);
	gencache_clear();
	db_close(f.db);
	unlink(path);
	char *wal = xasprintf("%s-wal", path), *shm = xasprintf("%s-shm", path);
	unlink(wal);
	unlink(shm);
	free(wal);
	free(shm);
	rmdir(dir);
	free(path);
}

int main(void)
{
	RUN(every_entry_once_in_order);
	RUN(kept_while_the_generation_stays_and_same_when_identical);
	return CHECK_DONE();
}
