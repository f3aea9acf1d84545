/*
 * fs.h - the FUSE low-level operations. They translate inode numbers to
 * paths (inode.c), find the view owning the path (route.c) and dispatch;
 * no view logic lives here.
 */
#ifndef FLOWYFS_FS_H
#define FLOWYFS_FS_H

#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>

extern const struct fuse_lowlevel_ops fs_ops;

#endif
