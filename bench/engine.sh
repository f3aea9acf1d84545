#!/usr/bin/env bash
# bench/engine.sh - the scheduler against a shell loop doing the same
# work, measured side by side in one run (`make bench` runs it after
# run.sh):
#
#   1. a sweep of BENCH_SWEEP (20) runs of a 5-step chain at -j 2, from the
#      write of `sweep` to the end of the last run, vs the same 100
#      commands run one after the other by a shell loop (goal: <= 1.05x
#      the loop's time; the slots let it go below 1x on 2 cores).
#   2. 8 pipelines of 5 steps queued at once, vs the loop of their 40
#      commands.
#   3. cat .plan of a BENCH_PLAN (1000) step chain that ran once (goal
#      < 50 ms), best of BENCH_REPS.
#
# Each step burns BENCH_WORK (200000) iterations of awk, so the work is
# CPU time, the same in the loop and in the steps.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${FLOWYFS_BIN:-$here/build/flowyfs}
sweep_n=${BENCH_SWEEP:-20}
plan_n=${BENCH_PLAN:-1000}
reps=${BENCH_REPS:-3}
work=${BENCH_WORK:-200000}

. "$here/bench/lib.sh" # now, sub, div, nap, row, arow, table, die, bench_workdir
[ -x "$bin" ] || die "no daemon at $bin (run make first)"
bench_workdir flowyengine
mkdir -p "$dir/loop"

bench_mount "$dir/flowyfs.log" "$bin" --store "$store" -j 2 -f "$mnt"
P=$mnt/pipelines

# The command of step k (the loop runs it too): burn CPU, write out/o<k>.
cmd() { echo "awk -v x=\$FLOWY_PARAM_x 'BEGIN { for (i = 0; i < $work; i++) s += i * x; print s }' > out/o$1"; }

# chain5 NAME: stage a 5-step chain with a param x (not yet in place).
chain5() {
	local s=$P/.$1 k
	mkdir -p "$s"
	echo '{"params": {"x": 0}}' >"$s/pipeline.json"
	echo "{\"run\": \"$(cmd 1)\", \"params\": [\"x\"], \"outputs\": [\"o1\"]}" >"$s/s1.json"
	for k in 2 3 4 5; do
		echo "{\"run\": \"cat in/o$((k - 1)) > /dev/null; $(cmd $k)\", \"inputs\": [\"o$((k - 1))\"], \"params\": [\"x\"], \"outputs\": [\"o$k\"]}" >"$s/s$k.json"
	done
}

wait_status() { # wait_status ID: poll until the run ended; prints its status
	local st=""
	while :; do
		{ read -r st < "$mnt/runs/$1/status"; } 2>/dev/null || true
		case $st in succeeded | failed | cancelled | interrupted) echo "$st"; return ;; esac
		nap 0.05
	done
}

latest_of() { local t; t=$(readlink "$P/$1/.latest"); echo "${t##*/}"; }

# loop N: the shell loop doing N runs' worth of the chain's commands.
loop() {
	local n=$1 r k t0 t1
	t0=$(now)
	for ((r = 1; r <= n; r++)); do
		for k in 1 2 3 4 5; do
			mkdir -p "$dir/loop/$r/$k/out"
			(cd "$dir/loop/$r/$k" && FLOWY_PARAM_x=$r sh -c "$(cmd $k)")
		done
	done
	t1=$(now)
	sub "$t1" "$t0"
}

echo "flowyfs engine bench: $(nproc) CPUs, -j 2, $work iterations per step"

# --- 1. sweep -----------------------------------------------------------------
chain5 sw
mv "$P/.sw" "$P/sw"
first=""
while [ -z "$first" ]; do first=$(latest_of sw 2>/dev/null || true); nap 0.05; done
[ "$(wait_status "$first")" = succeeded ] || die "first run of sw failed"
values=$(seq -s, 1 "$sweep_n")
t0=$(now)
echo "sweep x=$values" >"$P/sw/.ctl"
last=$(latest_of sw)
for ((id = first + 1; id <= last; id++)); do
	[ "$(wait_status "$id")" = succeeded ] || die "sweep run $id failed"
done
t1=$(now)
sweep_s=$(sub "$t1" "$t0" 3)
loop_s=$(loop "$sweep_n")
row "sweep of $sweep_n runs x 5 steps, -j2 (vs shell loop)" "$sweep_s" "$loop_s" s le 1.05

# --- 2. eight pipelines at once ---------------------------------------------------
for p in 1 2 3 4 5 6 7 8; do
	chain5 "m$p"
	sed -i "s|\"x\": 0|\"x\": $p|" "$P/.m$p/pipeline.json"
done
t0=$(now)
for p in 1 2 3 4 5 6 7 8; do mv "$P/.m$p" "$P/m$p"; done
for p in 1 2 3 4 5 6 7 8; do
	id=""
	while [ -z "$id" ]; do id=$(latest_of "m$p" 2>/dev/null || true); nap 0.05; done
	[ "$(wait_status "$id")" = succeeded ] || die "pipeline m$p failed"
done
t1=$(now)
many_s=$(sub "$t1" "$t0" 3)
rm -rf "$dir/loop"
loop8_s=$(loop 8)
row "8 pipelines x 5 steps at once, -j2 (vs shell loop)" "$many_s" "$loop8_s" s le 1.05

# --- 3. .plan -------------------------------------------------------------------
s=$P/.pl
mkdir -p "$s"
echo '{"run": "echo 1 > out/o0001", "outputs": ["o0001"], "code": []}' >"$s/s0001.json"
for ((i = 2; i <= plan_n; i++)); do
	printf '{"run": "cat in/o%04d > out/o%04d", "inputs": ["o%04d"], "outputs": ["o%04d"], "code": []}\n' \
		$((i - 1)) "$i" $((i - 1)) "$i" >"$s/$(printf 's%04d' "$i").json"
done
mv "$s" "$P/pl"
id=""
while [ -z "$id" ]; do id=$(latest_of pl 2>/dev/null || true); nap 0.05; done
[ "$(wait_status "$id")" = succeeded ] || die "the plan pipeline failed"
best=""
for ((r = 0; r < reps; r++)); do
	t0=$(now)
	cat "$P/pl/.plan" > "$dir/plan.txt"
	t1=$(now)
	t=$(sub "$t1" "$t0" 3)
	best=$(min "$best" "$t")
done
cached=$(grep -c $'\tcached\t' "$dir/plan.txt" || true)
arow "cat .plan of $plan_n steps ($cached cached)" "$(awk -v s="$best" 'BEGIN { printf "%.1f", s * 1000 }')" ms le 50
echo
table
echo "daemon RSS: $(awk '/VmRSS/ { print $2, $3 }' "/proc/$pid/status")"
