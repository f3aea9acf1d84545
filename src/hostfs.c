/*
 * hostfs.c - host path facts without touching the mount: mountinfo
 * lookups, and a realpath that resolves one component at a time so it
 * can stop at the mount point instead of stepping into it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "flowyfs/hostfs.h"
#include "flowyfs/util.h"

#define MAX_LINKS 40

int hostfs_mount_info(const char *path, struct hostfs_mount *out)
{
	static const struct { const char *name; unsigned long flag; } opts[] = {
		{"nosuid", MS_NOSUID}, {"nodev", MS_NODEV}, {"noexec", MS_NOEXEC},
		{"noatime", MS_NOATIME}, {"nodiratime", MS_NODIRATIME},
		{"relatime", MS_RELATIME}, {"strictatime", MS_STRICTATIME},
	};
	FILE *mi = fopen("/proc/self/mountinfo", "r");
	if (!mi)
		return -errno;
	char line[8192], point[PATH_MAX], mopts[1024], dev[64];
	int found = 0;
	while (fgets(line, sizeof line, mi)) {
		if (sscanf(line, "%*s %*s %63s %*s %4095s %1023s", dev, point, mopts) != 3 ||
		    strcmp(point, path))
			continue;
		unsigned maj = 0, min = 0;
		if (sscanf(dev, "%u:%u", &maj, &min) != 2)
			continue;
		found = 1; /* the last mount on path is the visible one */
		out->dev = makedev(maj, min);
		snprintf(out->devname, sizeof out->devname, "%s", dev);
		out->flags = 0;
		char *save = NULL;
		for (char *o = strtok_r(mopts, ",", &save); o; o = strtok_r(NULL, ",", &save))
			for (size_t i = 0; i < sizeof opts / sizeof *opts; i++)
				if (!strcmp(o, opts[i].name))
					out->flags |= opts[i].flag;
	}
	fclose(mi);
	return found ? 0 : -ENOENT;
}

static int inside(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return !strncmp(path, dir, n) && (path[n] == '/' || !path[n]);
}

int hostfs_inside_mount(const char *path, const char *mnt, dev_t mnt_dev)
{
	struct strbuf done = {0}, todo = {0};
	int links = 0, result = 0;

	strbuf_puts(&todo, path);
	strbuf_puts(&done, "");
	while (todo.len) {
		/* Take the next component off the front of todo. */
		char *p = todo.buf;
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		char *comp = xstrndup(p, n);
		memmove(todo.buf, p + n, strlen(p + n) + 1);
		todo.len = strlen(todo.buf);
		if (!n || !strcmp(comp, ".")) {
			free(comp);
			continue;
		}
		if (!strcmp(comp, "..")) {
			char *slash = strrchr(done.buf, '/');
			done.len = slash ? (size_t)(slash - done.buf) : 0;
			done.buf[done.len] = '\0';
			free(comp);
			continue;
		}
		size_t keep = done.len;
		strbuf_printf(&done, "/%s", comp);
		free(comp);
		if (inside(done.buf, mnt)) {
			result = 1;
			break;
		}
		struct stat st;
		if (lstat(done.buf, &st) < 0)
			break; /* missing: nothing there leads anywhere */
		if (st.st_dev == mnt_dev) {
			result = 1;
			break;
		}
		if (!S_ISLNK(st.st_mode))
			continue;
		char target[PATH_MAX];
		ssize_t tn = readlink(done.buf, target, sizeof target - 1);
		if (tn < 0 || ++links > MAX_LINKS)
			break;
		target[tn] = '\0';
		/* Resolve the target in place of this component. */
		struct strbuf next = {0};
		strbuf_printf(&next, "%s/%s", target, todo.buf);
		strbuf_release(&todo);
		todo = next;
		if (target[0] == '/')
			keep = 0;
		done.len = keep;
		done.buf[keep] = '\0';
	}
	strbuf_release(&done);
	strbuf_release(&todo);
	return result;
}
