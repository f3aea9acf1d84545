/*
 * flowy.h - the daemon's shared state, handed to every module that needs
 * more than its own piece: the store's parts and where they live.
 */
#ifndef FLOWYFS_FLOWY_H
#define FLOWYFS_FLOWY_H

#include <pthread.h>
#include <sys/types.h>

#include "flowyfs/cas.h"
#include "flowyfs/db.h"
#include "flowyfs/inode.h"
#include "flowyfs/vcs.h"

struct sched;
struct catalog;
struct watch;
struct events;
struct snapshots;
struct hooks;
struct alerts;
struct waits;

struct flowy {
	char *store;          /* absolute store directory */
	char *mnt;            /* absolute mountpoint */
	dev_t mnt_dev;        /* its device, once mounted (from mountinfo) */
	unsigned long mnt_flags; /* its mount flags (MS_NOSUID, ...) */
	int unmounted;        /* the mount went away (watch.c saw it) */
	pthread_t main_thread; /* runs the FUSE loop: the one a stop signals */
	char *pipelines_dir;  /* <store>/pipelines: backing files of pipelines/ */
	char *runs_dir;       /* <store>/runs: logs, metrics, params per run */
	char *hooks_dir;      /* <store>/hooks: backing files of hooks/ */
	char *events_dir;     /* <store>/events: hooks.log, out/<hook> */
	char *scratch_dir;    /* where steps run: outside the store, one
	                         directory per store (--scratch) */
	int jobs;             /* -j */
	const char *executor; /* --executor: where steps run by default */
	char *shared_dir;     /* --shared-dir: Slurm jobs' scratch, or NULL */
	int allow_other;      /* the mount is shared with other users */
	int debug;
	double coalesce;      /* seconds a change waits for more changes */
	cas *cas;
	db *db;
	vcs *vcs;             /* <store>/history.git: versions of pipelines */
	inode_table *inodes;
	struct sched *sched;
	struct syncer *syncer;     /* fsyncs steps' outputs (run.c); NULL: inline */
	struct catalog *catalog;
	struct watch *watch;
	struct events *events; /* subscribers to state changes */
	struct snapshots *snapshots; /* the last snapshot of each pipeline */
	char *scratch_cover;  /* hidden from steps: the scratch of every store */
	struct slots *slots;  /* where local steps run (slots.h) */
	struct hooks *hooks;  /* the hook runner (hooks.c) */
	struct alerts *alerts; /* live alert checks (alerts.c) */
	struct waits *waits;  /* reads of runs/<id>/wait not answered yet (wait.c) */
};

#endif
