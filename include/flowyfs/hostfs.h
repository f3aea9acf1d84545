/*
 * hostfs.h - facts about host paths that the daemon must learn without
 * ever going through its own mount (a FUSE worker that reads the mount
 * waits on the other workers, and can deadlock them): the mount table
 * entry of a path, and whether a host path (following its symlinks) leads
 * into the mount.
 */
#ifndef FLOWYFS_HOSTFS_H
#define FLOWYFS_HOSTFS_H

#include <sys/types.h>

struct hostfs_mount {
	dev_t dev;              /* the mount's device (major:minor) */
	unsigned long flags;    /* MS_NOSUID, MS_NODEV, MS_NOEXEC, atime flags */
	char devname[64];       /* "major:minor", as /sys/class/bdi names it */
};

/* The last (visible) mount whose mount point is exactly path, from
 * /proc/self/mountinfo. 0, or -ENOENT when path is no mount point. */
int hostfs_mount_info(const char *path, struct hostfs_mount *out);

/* Does the absolute host path lead into the mount at mnt (device
 * mnt_dev)? Resolves it one component at a time, following symlinks, and
 * stops before entering mnt; a component on mnt_dev (a bind mount of it)
 * counts as inside too. 1 inside, 0 not (also when a part is missing). */
int hostfs_inside_mount(const char *path, const char *mnt, dev_t mnt_dev);

#endif
