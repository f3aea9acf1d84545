/*
 * cas_export.c - objects copied out of the store as plain files
 * (cas_export.h): what a step on another machine (the Slurm executor's
 * inputs under --shared-dir) or a test needs of an artifact, streamed
 * through the public reader and tree API, so compressed objects are
 * decompressed once, as they are written out.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowyfs/cas.h"
#include "flowyfs/util.h"

/* Write object hex (an entry of type 'f', 'l' or 'd', with mode) out to
 * dest, which must not exist: a blob streamed through a reader (so a
 * compressed one is decompressed once), a link as a link, a tree as a
 * directory, recursively. Files come out 0444 (0555 when executable). */
static int export_obj(struct cas *c, const char *hex, const char *dest, char type,
                      unsigned mode)
{
	struct cas_tree *t = NULL;
	cas_reader *rd = NULL;
	char *buf = NULL;
	int fd = -1, rc = 0;

	if (type == 'd') {
		if ((rc = cas_tree_read(c, hex, &t)) == 0 && mkdir(dest, 0755) < 0)
			rc = -errno;
		for (size_t i = 0; rc == 0 && i < t->n; i++) {
			char *child = xasprintf("%s/%s", dest, t->entries[i].name);
			rc = export_obj(c, t->entries[i].hex, child, t->entries[i].type,
			                t->entries[i].mode);
			free(child);
		}
		goto out;
	}
	if ((rc = cas_reader_open(c, hex, &rd)) < 0)
		goto out;
	uint64_t size = cas_reader_size(rd), off = 0;
	if (type == 'l') {
		buf = xmalloc(size + 1);
		ssize_t n = cas_reader_pread(rd, buf, size, 0);
		buf[n > 0 ? n : 0] = '\0';
		rc = n != (ssize_t)size ? -EIO : symlink(buf, dest) < 0 ? -errno : 0;
		goto out;
	}
	if ((fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		rc = -errno;
		goto out;
	}
	buf = xmalloc(1 << 20);
	while (rc == 0 && off < size) {
		ssize_t n = cas_reader_pread(rd, buf, 1 << 20, off);
		if (n <= 0)
			rc = n < 0 ? (int)n : -EIO;
		else if (write(fd, buf, (size_t)n) != n)
			rc = -errno ? -errno : -EIO;
		else
			off += (uint64_t)n;
	}
	if (rc == 0 && fchmod(fd, (mode & 0111) ? 0555 : 0444) < 0)
		rc = -errno;
out:
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = -errno;
	free(buf);
	cas_reader_close(rd);
	cas_tree_free(t);
	return rc;
}

int cas_export(struct cas *c, const char *hex, const char *dest)
{
	struct cas_stat st;
	int rc = cas_stat(c, hex, &st);

	if (rc < 0)
		return rc;
	return export_obj(c, hex, dest, st.kind == CAS_TREE ? 'd' : 'f', 0444);
}
