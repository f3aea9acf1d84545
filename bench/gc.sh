#!/usr/bin/env bash
# bench/gc.sh - gc of a big store (`make bench` runs it after engine.sh):
# BENCH_GC_RUNS (10,000) runs and, with BENCH_GC_FILES (10) outputs each,
# about 100,000 objects; `gc keep=BENCH_GC_KEEP older-than=0` removes all
# but the last BENCH_GC_KEEP (100) runs.
#
# The store is filled in two honest parts, since 10,000 real runs take
# ~15 minutes here (~90 ms a run, most of it the fsync of every object):
#   1. BENCH_GC_REAL (100) real runs through the mount: a pipeline whose
#      one step writes BENCH_GC_FILES small outputs of its own (they name
#      $FLOWY_RUN, so every run makes new objects), forced to rerun;
#   2. the rest cloned from the last real run by build/bench/store_tool
#      gcfill, with the mount stopped: its rows under new ids, a copy of
#      its directory (log, metrics, params), and new objects of their own
#      written in the store's layout (without fsync, which gc never reads);
#      the newest clone's outputs become the latest, as a rerun's would.
# Then the daemon is started again on the store and timed:
#   - `gc ... dry-run`: marking and walking 100,000 objects, nothing removed
#   - `gc ...`: the same, removing ~99 % of the runs and objects
#   - the bytes gc.log says it freed against what du says the objects and
#     run directories lost (goal: equal)
# Each timing is the write of the command to store/.ctl, which returns
# when the gc has ended.
#
# Environment:
#   BENCH_GC_RUNS   runs in the store                (10000)
#   BENCH_GC_REAL   of them real runs                (100)
#   BENCH_GC_FILES  outputs (objects) per run        (10)
#   BENCH_GC_KEEP   runs the gc keeps                (100)
#   BENCH_DIR       scratch directory (default: mktemp under /dev/shm, else
#                   /tmp). tmpfs by default: on this machine's shared disk
#                   one file's creation or removal costs 0.2 to 2 ms,
#                   which alone would put the fill of ~130,000 files and
#                   their removal past the minute this part may take; the
#                   gc's own work (SQLite, the walk, one unlinkat an
#                   object) is the same. BENCH_DIR=/tmp/x measures the disk.
#   BENCH_KEEP=1    keep BENCH_DIR afterwards
#   FLOWYFS_BIN     the daemon (default: build/flowyfs of this repo)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${FLOWYFS_BIN:-$here/build/flowyfs}
tool=$here/build/bench/store_tool
runs_n=${BENCH_GC_RUNS:-10000}
real_n=${BENCH_GC_REAL:-100}
files_n=${BENCH_GC_FILES:-10}
keep_n=${BENCH_GC_KEEP:-100}

. "$here/bench/lib.sh" # now, sub, nap, arow, table, die, bench_workdir, bench_stop
[ -x "$bin" ] || die "no daemon at $bin (run make first)"
[ -x "$tool" ] || die "no $tool (make build/bench/store_tool)"
[ "$real_n" -ge 1 ] && [ "$runs_n" -ge "$real_n" ] || die "need 1 <= BENCH_GC_REAL <= BENCH_GC_RUNS"
tmp=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && tmp=/dev/shm
bench_workdir flowygc "$tmp" "${BENCH_DIR:-}"
stop() {
	bench_stop "$mnt" "$pid"
	pid=""
}

start() { bench_mount "$dir/flowyfs.log" "$bin" --store "$store" -j 2 -f "$mnt"; }

wait_run() { # wait_run ID: its final status
	cat "$mnt/runs/$1/wait"
}

du_bytes() { du -sB1 -c "$store/objects" "$store/runs" | tail -1 | cut -f1; }

echo "== gc: $runs_n runs ($real_n real), $files_n objects each, keep $keep_n"
start
stage=$mnt/pipelines/.fill
mkdir "$stage"
outs=$(for ((k = 0; k < files_n; k++)); do printf '%s"o%d"' "${k:+,}" "$k"; done | sed 's/^,//')
printf '{"run": "for i in $(seq 0 %d); do echo $FLOWY_RUN $i > out/o$i; done", "outputs": [%s]}\n' \
	"$((files_n - 1))" "$outs" > "$stage/mk.json"
mv "$stage" "$mnt/pipelines/fill"
for _ in $(seq 1 500); do [ -e "$mnt/runs/1" ] && break; nap 0.02; done
[ "$(wait_run 1)" = succeeded ] || die "the first real run failed"
t0=$(now)
if [ "$real_n" -gt 1 ]; then
	for ((i = 1; i < real_n; i++)); do echo "rerun mk"; done > "$dir/rerun.cmds"
	cat "$dir/rerun.cmds" > "$mnt/pipelines/fill/.ctl"
	[ "$(wait_run "$real_n")" = succeeded ] || die "real run $real_n failed"
fi
real_secs=$(sub "$(now)" "$t0" 1)
stop
t0=$(now)
if [ "$runs_n" -gt "$real_n" ]; then
	"$tool" gcfill "$store" "$real_n" "$((runs_n - real_n))" "$files_n" > /dev/null
fi
fill_secs=$(sub "$(now)" "$t0" 1)
objects=$(find "$store/objects" -path "$store/objects/tmp" -prune -o -type f -print | wc -l)
echo "   filled: $real_n real runs in ${real_secs}s, $((runs_n - real_n)) cloned in ${fill_secs}s; $objects objects"
start
[ "$(ls "$mnt/runs" | grep -c '^[0-9]')" = "$runs_n" ] || die "the store does not hold $runs_n runs"
nap 0.3 # past gc's slack for the newest objects
cmd="gc keep=$keep_n older-than=0"
t0=$(now)
echo "$cmd dry-run" > "$mnt/store/.ctl"
dry_secs=$(sub "$(now)" "$t0" 3)
before=$(du_bytes)
t0=$(now)
echo "$cmd" > "$mnt/store/.ctl"
gc_secs=$(sub "$(now)" "$t0" 3)
after=$(du_bytes)
row_of() { grep -P "\t$1\t" "$mnt/store/gc.log" | tail -1; }
read -r dry_runs dry_objs dry_bytes < <(row_of "$cmd dry-run" | cut -f3-5)
read -r gc_runs gc_objs gc_bytes < <(row_of "$cmd" | cut -f3-5)
du_freed=$((before - after))
left=$(ls "$mnt/runs" | grep -c '^[0-9]')
[ "$left" = "$keep_n" ] || die "gc left $left runs, expected $keep_n"
want="$runs_n 0"
[ "$runs_n" -gt "$real_n" ] && want="clone $runs_n output 0"
[ "$(cat "$mnt/artifacts/fill/o0")" = "$want" ] || die "the latest artifact does not read back"
echo "   dry run: ${dry_secs}s would remove $dry_runs runs, $dry_objs objects, $dry_bytes bytes"
echo "   gc:      ${gc_secs}s removed $gc_runs runs, $gc_objs objects, $gc_bytes bytes; du: $du_freed bytes"
stop

diff=$((gc_bytes > du_freed ? gc_bytes - du_freed : du_freed - gc_bytes))
arow "gc dry-run, $runs_n runs / $objects objects" "$dry_secs" s le 10
arow "gc removing $gc_runs runs / $gc_objs objects" "$gc_secs" s le 30
arow "gc bytes freed vs du (difference)" "$diff" B le 0
table
