/*
 * slots.h - where a root daemon's local steps run: a few slots, each a
 * directory below the scratch (<scratch>/.slots/<n>) and a mount
 * namespace made once for it (exec_ns_make) in which the store and the
 * scratch root are covered, that directory alone bound back, and the
 * mount read-only. A step takes a free slot; its scratch is renamed into
 * the slot as <slot>/work (its cwd, and what $FLOWY_IN and $FLOWY_OUT
 * name) and back when its process is reaped, so a step starts at the
 * cost of a plain spawn and sees what a namespace of its own would show
 * it. One process per slot at a time: the slots grow to the most steps
 * that ever ran at once. A slot's namespace copies the mount table as it
 * was when made, so when the daemon's changes (a file system mounted
 * since), free slots are made anew before the next step enters one; and
 * as it holds what was mounted then, the slots are dropped as soon as the
 * table changes (busy ones when their step ends), not to keep a file
 * system unmounted since busy.
 *
 * A step cannot leave anything to the next one in its slot: what it put
 * beside work is removed when it is reaped, and a work that is not the
 * directory renamed in (moved away or replaced by a link) is refused.
 * Slots need root (a daemon that is not root makes a namespace per step);
 * if one cannot be made the daemon says so once and makes a namespace per
 * step from then on.
 */
#ifndef FLOWYFS_SLOTS_H
#define FLOWYFS_SLOTS_H

#include <sys/types.h>

#include "flowyfs/exec.h"

struct flowy;

struct slot {
	struct exec_ns ns;
	char *dir;                 /* <scratch>/.slots/<n>, bound in ns */
	char *work;                /* dir/work: the step's scratch while it runs */
	char *home;                /* where that scratch lives otherwise */
	dev_t dev;                 /* the directory renamed in */
	ino_t ino;
	int busy;
	unsigned gen;              /* the mount table it was made from */
};

struct slots;

struct slots *slots_new(struct flowy *f);
void slots_free(struct slots *sl);
/* Move the scratch directory home into a free slot (made if none is)
 * and return it, or NULL (with the reason logged, at most once for a
 * reason that will not pass) when the step is to make a namespace of its
 * own: no root, no namespace, or home could not be moved. */
struct slot *slots_take(struct slots *sl, const char *home);
/* The step is over: move its scratch home again and free the slot.
 * Returns 0, or -EXDEV with *why (malloc'd) when the step moved or
 * replaced its work directory (its scratch is then lost), or another
 * -errno when it could not be moved back. */
int slots_give(struct slots *sl, struct slot *s, char **why);
/* The daemon's mount table changed (the watcher saw it): drop the slots
 * made from the old one. */
void slots_mounts_changed(struct slots *sl);
#endif
