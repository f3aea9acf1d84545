/*
 * cas_gc.c - garbage collection of objects (cas_gc.h): the mark set and
 * the sweep.
 *
 * The mark set is an open-addressing table of 32-byte digests, each with
 * a bit for "marked as a blob" and one for "marked as a tree" (the empty
 * content is both an empty file and the empty directory). Marking a tree
 * reads it and marks its entries, once per tree: a shared subtree costs
 * one read however many trees hold it.
 *
 * The sweep walks the 256 shard directories once and removes an object
 * only when it is unmarked and its mtime is before the cutoff. A put that
 * finds its content already stored sets the object's mtime to now
 * (cas_obj_exists), and a new object is born with the current time, so
 * whatever is written or re-found while a gc runs survives that gc even
 * though its mark set was taken earlier. Removal is one unlinkat per
 * object: a crash leaves every object either whole or gone, never half.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowyfs/cas.h"
#include "flowyfs/util.h"

#define MARK_BLOB 1
#define MARK_TREE 2

struct cas_mark {
	struct mark_e {
		unsigned char md[32];
		unsigned char bits;  /* MARK_*; 0: free slot */
	} *e;
	size_t n, cap;           /* cap: a power of two */
};

static int hexval(int ch)
{
	return ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10;
}

/* hex (64 lowercase digits, checked by the caller) as 32 bytes. */
static void digest_of(unsigned char md[32], const char *hex)
{
	for (int i = 0; i < 32; i++)
		md[i] = (unsigned char)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
}

struct cas_mark *cas_mark_new(void)
{
	struct cas_mark *m = xcalloc(1, sizeof *m);
	m->cap = 1024;
	m->e = xcalloc(m->cap, sizeof *m->e);
	return m;
}

void cas_mark_free(struct cas_mark *m)
{
	if (!m)
		return;
	free(m->e);
	free(m);
}

static size_t slot_of(const struct cas_mark *m, const unsigned char md[32])
{
	size_t h;
	memcpy(&h, md, sizeof h); /* a digest's bytes are already uniform */
	size_t i = h & (m->cap - 1);
	while (m->e[i].bits && memcmp(m->e[i].md, md, 32))
		i = (i + 1) & (m->cap - 1);
	return i;
}

static void grow(struct cas_mark *m)
{
	struct cas_mark old = *m;
	m->cap *= 2;
	m->e = xcalloc(m->cap, sizeof *m->e);
	for (size_t i = 0; i < old.cap; i++)
		if (old.e[i].bits)
			m->e[slot_of(m, old.e[i].md)] = old.e[i];
	free(old.e);
}

/* Set bit for md: 1 when it was not set yet, else 0. */
static int mark_set(struct cas_mark *m, const unsigned char md[32], unsigned char bit)
{
	if (2 * (m->n + 1) > m->cap)
		grow(m);
	size_t i = slot_of(m, md);
	if (!m->e[i].bits) {
		memcpy(m->e[i].md, md, 32);
		m->n++;
	}
	if (m->e[i].bits & bit)
		return 0;
	m->e[i].bits |= bit;
	return 1;
}

int cas_mark_has(const struct cas_mark *m, const char *hex, int tree)
{
	unsigned char md[32];
	if (!cas_hex_valid(hex))
		return 0;
	digest_of(md, hex);
	size_t i = slot_of(m, md);
	return (m->e[i].bits & (tree ? MARK_TREE : MARK_BLOB)) != 0;
}

size_t cas_mark_count(const struct cas_mark *m)
{
	size_t k = 0;
	for (size_t i = 0; i < m->cap; i++)
		k += (m->e[i].bits & MARK_BLOB) != 0;
	for (size_t i = 0; i < m->cap; i++)
		k += (m->e[i].bits & MARK_TREE) != 0;
	return k;
}

static int mark_tree(struct cas *c, struct cas_mark *m, const char *hex,
                     const unsigned char md[32])
{
	if (!cas_obj_stored(c, hex, CAS_TREE) || !mark_set(m, md, MARK_TREE))
		return 0;
	struct cas_tree *t = NULL;
	int rc = cas_tree_read(c, hex, &t);
	if (rc == -ENOENT)
		return 0;
	for (size_t i = 0; !rc && i < t->n; i++)
		rc = cas_mark_add(c, m, t->entries[i].hex, t->entries[i].type == 'd' ? 'd' : 'f');
	cas_tree_free(t);
	return rc;
}

int cas_mark_add(struct cas *c, struct cas_mark *m, const char *hex, char type)
{
	unsigned char md[32];
	if (!cas_hex_valid(hex))
		return -EINVAL;
	digest_of(md, hex);
	if (type != 'd' && cas_obj_stored(c, hex, CAS_BLOB))
		mark_set(m, md, MARK_BLOB);
	return type == 'd' || type == 0 ? mark_tree(c, m, hex, md) : 0;
}

/* One entry of a shard: "<62 hex>[.zst|.tree]" -> its hex and whether
 * it is a tree; 0 for a name that is no object (left alone). */
static int object_name(const char *shard, const char *name, char hex[CAS_HEX_LEN + 1],
                       int *tree)
{
	size_t n = strlen(name);
	if (n < CAS_HEX_LEN - 2)
		return 0;
	const char *suffix = name + CAS_HEX_LEN - 2;
	if (*suffix && strcmp(suffix, ".zst") && strcmp(suffix, ".tree"))
		return 0;
	memcpy(hex, shard, 2);
	memcpy(hex + 2, name, CAS_HEX_LEN - 2);
	hex[CAS_HEX_LEN] = '\0';
	*tree = !strcmp(suffix, ".tree");
	return cas_hex_valid(hex);
}

static double mtime_of(const struct stat *st)
{
	return (double)st->st_mtim.tv_sec + st->st_mtim.tv_nsec / 1e9;
}

/* Sweep one directory dfd (a shard, or tmp/ with all_garbage set). */
static int sweep_dir(int dfd, const char *shard, const struct cas_mark *m, double cutoff,
                     int dry, int all_garbage, struct cas_sweep *out)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		int rc = -errno;
		close(dfd);
		return rc;
	}
	int rc = 0;
	struct dirent *e;
	while ((errno = 0, e = readdir(d))) {
		char hex[CAS_HEX_LEN + 1];
		int tree = 0;
		if (e->d_name[0] == '.')
			continue;
		if (!all_garbage && !object_name(shard, e->d_name, hex, &tree))
			continue;
		if (!all_garbage && cas_mark_has(m, hex, tree)) {
			out->kept++;
			continue;
		}
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT && !rc)
				rc = -errno;
			continue;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		if (mtime_of(&st) >= cutoff) {
			out->spared++;
			continue;
		}
		if (!dry && unlinkat(dirfd(d), e->d_name, 0) < 0) {
			if (errno != ENOENT && !rc)
				rc = -errno;
			continue;
		}
		out->objects++;
		out->bytes += (uint64_t)st.st_blocks * 512;
	}
	if (errno && !rc)
		rc = -errno;
	closedir(d);
	return rc;
}

int cas_sweep(struct cas *c, const struct cas_mark *m, double cutoff, int dry,
              struct cas_sweep *out)
{
	int rc = 0;
	for (int i = 0; i < 256; i++) {
		static const char dig[] = "0123456789abcdef";
		char shard[3] = {dig[i >> 4], dig[i & 15], '\0'};
		int fd = openat(cas_dirfd(c), shard, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			if (errno != ENOENT && !rc)
				rc = -errno;
			continue;
		}
		int r = sweep_dir(fd, shard, m, cutoff, dry, 0, out);
		if (r < 0 && !rc)
			rc = r;
	}
	/* Named temps of puts that never finished (no O_TMPFILE here). */
	struct cas_sweep tmp = {0};
	int fd = openat(cas_dirfd(c), "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = fd < 0 ? (errno == ENOENT ? 0 : -errno)
	               : sweep_dir(fd, "", m, cutoff, dry, 1, &tmp);
	out->bytes += tmp.bytes;
	if (r < 0 && !rc)
		rc = r;
	return rc;
}
