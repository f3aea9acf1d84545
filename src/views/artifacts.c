/*
 * views/artifacts.c - artifacts/: every output by content hash, read-only.
 *
 *   artifacts/sha256/<hex>[/path...]   a blob (file) or a tree (directory),
 *                                      walked through tree objects
 *   artifacts/<p>/<name>               symlink -> ../sha256/<hex>, latest
 *
 * Objects never change, so they are immutable to the kernel (long
 * timeouts, keep_cache); the <p>/<name> links move and are not. Paths
 * inside a tree are walked through the store's tree index (a binary
 * search per component) and a tree's listing streams from it, so a
 * directory of a million entries costs no copy of its names.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/util.h"
#include "flowyfs/view.h"

/* Resolve "sha256/<hex>/a/b" to the entry it names. */
struct obj {
	char hex[CAS_HEX_LEN + 1];
	char type;     /* 'f', 'd', 'l' */
	unsigned mode;
	uint64_t size;
};

int artifacts_resolve(struct flowy *f, const char *rel, struct obj *out);

int artifacts_resolve(struct flowy *f, const char *rel, struct obj *out)
{
	size_t n = strcspn(rel, "/");
	if (n != CAS_HEX_LEN)
		return -ENOENT;
	memcpy(out->hex, rel, n);
	out->hex[n] = '\0';
	if (!cas_hex_valid(out->hex))
		return -ENOENT;
	struct cas_stat st;
	int rc = cas_stat(f->cas, out->hex, &st);
	if (rc < 0)
		return rc;
	out->type = st.kind == CAS_TREE ? 'd' : 'f';
	out->mode = st.kind == CAS_TREE ? 0555 : 0444;
	out->size = st.kind == CAS_TREE ? 0 : st.size;
	const char *p = rel + n;
	while (*p == '/') {
		p++;
		size_t len = strcspn(p, "/");
		if (!len)
			break;
		if (out->type != 'd')
			return -ENOTDIR;
		tree_index *t = NULL;
		struct cas_entry e;
		rc = tree_index_open(f->cas, out->hex, &t);
		if (rc == 0)
			rc = tree_index_find(t, p, len, &e);
		tree_index_close(t);
		if (rc < 0)
			return rc;
		memcpy(out->hex, e.hex, sizeof out->hex);
		out->type = e.type;
		out->size = e.type == 'd' ? 0 : e.size;
		out->mode = e.type == 'd' ? 0555 : e.type == 'l' ? 0777 :
		            (e.mode & 0111) ? 0555 : 0444;
		p += len;
	}
	return 0;
}

/* artifacts/<p>/<name> -> hex of the latest version (malloc'd) or NULL. */
static char *latest(struct flowy *f, const char *p, const char *name)
{
	db_lock(f->db);
	char *h = db_text(f->db, "SELECT hash FROM latest WHERE pipeline=? AND name=?",
	                  "tt", p, name);
	db_unlock(f->db);
	return h;
}

static int art_getattr(struct flowy *f, const char *path, struct view_attr *a)
{
	char buf[4096], *part[3];
	int n = view_split(path, buf, sizeof buf, part, 3);
	if (n == 1 || (n == 2 && !strcmp(part[1], "sha256"))) {
		a->mode = S_IFDIR | 0555;
		return 0;
	}
	if (n >= 3 && !strcmp(part[1], "sha256")) {
		struct obj o;
		int rc = artifacts_resolve(f, path + strlen("artifacts/sha256/"), &o);
		if (rc < 0)
			return rc;
		a->mode = (o.type == 'd' ? S_IFDIR : o.type == 'l' ? S_IFLNK : S_IFREG) | o.mode;
		a->size = o.size;
		a->immutable = 1;
		a->mtime = view_artifact_time(f, path + strlen("artifacts/sha256/"));
		return 0;
	}
	if (n == 2) {
		db_lock(f->db);
		int64_t c = db_int(f->db, 0, "SELECT count(*) FROM latest WHERE pipeline=?",
		                   "t", part[1]);
		db_unlock(f->db);
		if (!c)
			return -ENOENT;
		a->mode = S_IFDIR | 0555;
		return 0;
	}
	if (n == 3) {
		char *h = latest(f, part[1], part[2]);
		if (!h)
			return -ENOENT;
		a->mode = S_IFLNK | 0777;
		a->size = strlen("../sha256/") + strlen(h);
		free(h);
		return 0;
	}
	return -ENOENT;
}

/* A tree's entries, streamed to readdir from its index (held open for
 * the directory handle's life). */
static int tree_more(void *arg, size_t i, char *name, size_t cap, mode_t *mode)
{
	struct cas_entry e;
	int rc = tree_index_entry(arg, i, &e, name, cap);
	if (rc == 0)
		*mode = e.type == 'd' ? S_IFDIR : e.type == 'l' ? S_IFLNK : S_IFREG;
	return rc;
}

static void tree_more_free(void *arg)
{
	tree_index_close(arg);
}

static int art_readdir(struct flowy *f, const char *path, struct dirlist *l)
{
	char buf[4096], *part[3];
	int n = view_split(path, buf, sizeof buf, part, 3);
	sqlite3_stmt *st = NULL;
	db_lock(f->db);
	l->kept = n <= 2; /* artifacts/, sha256/ and <p>/: the database's alone */
	if (n == 1) {
		dirlist_add(l, "sha256", S_IFDIR);
		st = db_prepare(f->db, "SELECT DISTINCT pipeline FROM latest ORDER BY 1", "");
	} else if (n == 2 && !strcmp(part[1], "sha256")) {
		st = db_prepare(f->db, "SELECT hash, kind FROM artifacts ORDER BY 1", "");
	} else if (n == 2) {
		st = db_prepare(f->db, "SELECT name FROM latest WHERE pipeline=? ORDER BY 1",
		                "t", part[1]);
	}
	while (st && sqlite3_step(st) == SQLITE_ROW)
		dirlist_add(l, (const char *)sqlite3_column_text(st, 0),
		            n == 1 ? S_IFDIR : strcmp(part[1], "sha256") ? S_IFLNK :
		            !strcmp((const char *)sqlite3_column_text(st, 1), "tree") ?
		            S_IFDIR : S_IFREG);
	db_finish(f->db, st);
	db_unlock(f->db);
	if (st || n == 1)
		return 0;
	if (n < 3 || strcmp(part[1], "sha256"))
		return -ENOTDIR;
	struct obj o;
	int rc = artifacts_resolve(f, path + strlen("artifacts/sha256/"), &o);
	if (rc < 0)
		return rc;
	if (o.type != 'd')
		return -ENOTDIR;
	tree_index *t = NULL;
	rc = tree_index_open(f->cas, o.hex, &t);
	if (rc < 0)
		return rc;
	l->more_n = tree_index_count(t);
	l->more = tree_more;
	l->more_free = tree_more_free;
	l->more_arg = t;
	return 0;
}

static int art_open(struct flowy *f, const char *path, int flags, struct fh *h)
{
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC))
		return -EROFS;
	if (strncmp(path, "artifacts/sha256/", 17))
		return -EISDIR;
	struct obj o;
	int rc = artifacts_resolve(f, path + 17, &o);
	if (rc < 0)
		return rc;
	if (o.type == 'd')
		return -EISDIR;
	rc = cas_reader_open(f->cas, o.hex, &h->reader);
	if (rc < 0)
		return rc;
	h->kind = FH_CAS;
	h->keep_cache = 1;
	return 0;
}

static int art_readlink(struct flowy *f, const char *path, char **out)
{
	char buf[4096], *part[3];
	int n = view_split(path, buf, sizeof buf, part, 3);
	if (n == 3 && strcmp(part[1], "sha256")) {
		char *h = latest(f, part[1], part[2]);
		if (!h)
			return -ENOENT;
		*out = xasprintf("../sha256/%s", h);
		free(h);
		return 0;
	}
	struct obj o;
	int rc = strncmp(path, "artifacts/sha256/", 17) ? -EINVAL :
	         artifacts_resolve(f, path + 17, &o);
	if (rc < 0)
		return rc;
	if (o.type != 'l')
		return -EINVAL;
	cas_reader *r = NULL;
	rc = cas_reader_open(f->cas, o.hex, &r);
	if (rc < 0)
		return rc;
	uint64_t size = cas_reader_size(r);
	char *t = xcalloc(1, size + 1);
	ssize_t got = cas_reader_pread(r, t, size, 0);
	cas_reader_close(r);
	if (got < 0) {
		free(t);
		return (int)got;
	}
	*out = t;
	return 0;
}

const struct view view_artifacts = {
	.name = "artifacts",
	.getattr = art_getattr,
	.readdir = art_readdir,
	.open = art_open,
	.readlink = art_readlink,
};
