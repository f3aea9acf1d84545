/*
 * fs.h - the FUSE low-level operations. They translate inode numbers to
 * paths (inode.c), find the view owning the path (route.c) and dispatch;
 * no view logic lives here.
 */
#ifndef FLOWYFS_FS_H
#define FLOWYFS_FS_H

#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>

/* Largest read request: 1 MiB less 64 KiB, so a spliced reply (data plus
 * header) fits a pipe of the default pipe-max-size (1 MiB). */
#define FS_MAX_READ (1024 * 1024 - 64 * 1024)
/* Kernel read-ahead of the mount, bytes: one FS_MAX_READ read. The kernel
 * takes the smaller of this and the bdi's read_ahead_kb at INIT, which
 * main.c raises to match before the session starts. 4 MiB (four reads in
 * flight) measured 1.2-1.3x slower cold on raw artifacts, no faster on
 * compressed ones. */
#define FS_READAHEAD FS_MAX_READ

extern const struct fuse_lowlevel_ops fs_ops;

#endif
