/*
 * slots.h - where a root daemon's local steps run: a few slots, each a
 * directory below the scratch (<scratch>/.slots/<n>) and a mount
 * namespace made once for it (exec_ns_make) in which the store and the
 * scratch root are covered, that directory alone bound back, and the
 * mount read-only. A step takes a free slot and its scratch is laid out
 * in it as <slot>/work (its cwd, and what $FLOWY_IN and $FLOWY_OUT name:
 * a pooled directory renamed in, scratchpool.h); the process runs there,
 * its outputs are read from there, and then the directory goes to the
 * run's pool (it succeeded: off the path from one step to the next) or
 * home to <run>/<step> (it failed, and stays for a person to look at),
 * and the slot is free again. So a step starts at the cost of a plain
 * spawn and sees what a namespace of its own would show it, with one
 * rename between its end and the next step's start. One step per slot
 * at a time: the slots grow to the most steps that ever held one at once
 * (with -j 1, two: the next step starts before the last one's directory
 * goes to the pool). A slot's namespace copies the mount table as it was
 * when made, so when the daemon's changes (a file system mounted since),
 * free slots are made anew before the next step takes one; and as it
 * holds what was mounted then, the slots are dropped as soon as the table
 * changes (busy ones when given back), not to keep a file system
 * unmounted since busy.
 *
 * A step cannot leave anything to the next one in its slot: what is in
 * the slot when it is given back (what the step put beside work, or a
 * work that is not the directory laid out: moved away or replaced by a
 * link) is removed, never followed, and such a step fails (slots_check).
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
	char *work;                /* dir/work: the step's scratch while it holds the slot */
	dev_t dev;                 /* the directory laid out there (slots_hold) */
	ino_t ino;
	int busy;
	unsigned gen;              /* the mount table it was made from */
};

struct slots;

struct slots *slots_new(struct flowy *f);
void slots_free(struct slots *sl);
/* A free slot (made if none is), busy until slots_give, nothing at its
 * work: the caller lays the step's scratch out there. NULL (with the
 * reason logged, at most once for a reason that will not pass) when the
 * step is to make a namespace of its own: no root, no namespace. */
struct slot *slots_take(struct slots *sl);
/* The scratch is laid out at s->work: remember which directory it is.
 * 0 or -errno. */
int slots_hold(struct slot *s);
/* Is s->work still the directory held? 0, or -EXDEV with *why (malloc'd)
 * when the step moved it away or replaced it. */
int slots_check(const struct slot *s, char **why);
/* The step is done with s (its directory taken out, or lost): everything
 * still in the slot is removed, and the slot is free. */
void slots_give(struct slots *sl, struct slot *s);
/* The daemon's mount table changed (the watcher saw it): drop the slots
 * made from the old one. */
void slots_mounts_changed(struct slots *sl);
#endif
