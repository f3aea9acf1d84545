#!/usr/bin/env bash
# bench/slurm.sh - the Slurm executor against plain sbatch on a local
# single-node cluster (tests/slurm/cluster.sh, started and stopped here by
# pid; `make bench` runs it last):
#
#   1. BENCH_SLURM_N (50) trivial independent steps on Slurm, from the
#      publish of the pipeline to the end of its run, vs the same N
#      trivial jobs submitted at once with `sbatch --wait` (ratio: the
#      executor's per-step overhead; goal <= 1.5x), and the squeue calls
#      the daemon made meanwhile.
#   2. a foreach step over a BENCH_SLURM_ARRAY (100) element list param:
#      one job array; the time to submit it (sbatch calls, seconds) and to
#      finish it.
#
# Skipped (exit 0, a note) when slurm-wlm is not installed.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh" # now, sub, div, min, nap, die, row, arow, table, bench_mount, bench_stop
bin=${FLOWYFS_BIN:-$here/build/flowyfs}
n=${BENCH_SLURM_N:-50}
arr=${BENCH_SLURM_ARRAY:-100}

[ -x "$bin" ] || die "no daemon at $bin (run make first)"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null; then
	echo "bench/slurm.sh: slurm-wlm is not installed; skipped"
	exit 0
fi
dir=$(mktemp -d /tmp/flowyslurm.XXXXXX)
store=$dir/store mnt=$dir/mnt shared=$dir/shared
mkdir -p "$store" "$mnt" "$shared" "$dir/cluster" "$dir/bin" "$dir/plain"
pid=""
cleanup() {
	local rc=$?
	bench_stop "$mnt" "$pid"
	bash "$here/tests/slurm/cluster.sh" stop "$dir/cluster"
	rm -rf "$dir"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


bash "$here/tests/slurm/cluster.sh" start "$dir/cluster" || die "the cluster did not start"
export SLURM_CONF=$dir/cluster/slurm.conf
calls=$dir/calls
for t in sbatch squeue; do
	printf '#!/bin/sh\necho "%s $*" >>%s\nexec %s "$@"\n' "$t" "$calls" "$(command -v $t)" \
		>"$dir/bin/$t"
	chmod +x "$dir/bin/$t"
done
: >"$calls"

# wait_latest P: until pipelines/P/.latest exists (the run is queued).
wait_latest() {
	for _ in $(seq 1 600); do
		[ -e "$mnt/pipelines/$1/.latest" ] && return 0
		sleep 0.05
	done
	die "no run of $1 was queued"
}

# wait_end P: the final status of P's latest run, once it has one.
wait_end() {
	local st
	for _ in $(seq 1 12000); do
		st=$(cat "$mnt/pipelines/$1/.latest/status" 2>/dev/null || true)
		case $st in succeeded | failed | cancelled | interrupted) echo "$st"; return 0 ;; esac
		sleep 0.05
	done
	die "the run of $1 did not end"
}

# 1a. plain sbatch --wait, all at once.
printf '#!/bin/sh\n#SBATCH --output=/dev/null\necho ok > %s/plain/o$1\n' "$dir" >"$dir/job.sh"
t0=$(now)
for ((k = 0; k < n; k++)); do
	sbatch --wait --parsable --output=/dev/null "$dir/job.sh" "$k" >/dev/null &
done
wait
plain=$(sub "$(now)" "$t0" 2)
[ "$(ls "$dir/plain" | wc -l)" -eq "$n" ] || die "plain sbatch: not every job wrote"

PATH=$dir/bin:$PATH FLOWYFS_SLURM_POLL=1:4 bench_mount "$dir/flowyfs.log" \
	"$bin" --store "$store" --executor slurm --shared-dir "$shared" -f "$mnt"

# 1b. the same jobs as n independent steps.
src=$dir/src/many
mkdir -p "$src"
for ((k = 0; k < n; k++)); do
	printf '{"run": "echo ok > out/o%d", "outputs": ["o%d"]}\n' "$k" "$k" \
		>"$src/s$k.json"
done
: >"$calls"
t0=$(now)
cp -r "$src" "$mnt/pipelines/.many"
mv "$mnt/pipelines/.many" "$mnt/pipelines/many"
wait_latest many
st=$(wait_end many)
ours=$(sub "$(now)" "$t0" 2)
[ "$st" = succeeded ] || die "the run of $n steps: $st"
sq=$(grep -c '^squeue' "$calls" || true)
row "slurm: $n trivial jobs (vs concurrent sbatch --wait)" "$ours" "$plain" s le 1.5
echo "slurm: $sq squeue calls ($(div "$sq" "$(div "$ours" 60)" 1) a minute)"

# 2. a job array of arr items.
src=$dir/src/arr
mkdir -p "$src"
items=$(seq -s, 1 "$arr")
printf '{"params": {"items": [%s]}}\n' "$items" >"$src/pipeline.json"
printf '{"run": "echo $FLOWY_ITEM > out/o", "outputs": ["o"], "foreach": "param:items", "params": ["items"]}\n' \
	>"$src/s.json"
: >"$calls"
t0=$(now)
cp -r "$src" "$mnt/pipelines/.arr"
mv "$mnt/pipelines/.arr" "$mnt/pipelines/arr"
wait_latest arr
# Submitted: every item has its job id.
for _ in $(seq 1 600); do
	if [ "$(cat "$mnt/pipelines/arr/.latest/steps/s/items/$arr/job" 2>/dev/null)" ]; then
		break
	fi
	sleep 0.1
done
submitted=$(sub "$(now)" "$t0" 2)
st=$(wait_end arr)
total=$(sub "$(now)" "$t0" 2)
[ "$st" = succeeded ] || die "the $arr-item array: $st"
echo "slurm: a $arr-item foreach: $(grep -c '^sbatch' "$calls") sbatch call(s)," \
     "submitted in $submitted s, done in $total s," \
     "$(grep -c '^squeue' "$calls") squeue calls"
echo
table
