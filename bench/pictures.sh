#!/usr/bin/env bash
# bench/pictures.sh - how long the pictures and the dashboard take to
# render, as a person gets them (`make bench` runs it after slurm.sh):
#
#   1. pipelines/<p>/.dag.svg of a BENCH_STEPS (1,000) step pipeline read
#      with cat: the first read at once after a change of its graph (the
#      read validates and lays the graph out), the first read once the
#      change window and the background render have passed (BENCH_SETTLE
#      seconds after the change), and the reads after that; and the first
#      read of a 100-step one. The pipeline: layers of 10 steps, each step
#      reading an output of the layer before and every other one a second
#      output from up to 5 layers back; autorun off, so nothing runs.
#   2. metrics/<p>/<m>.svg with BENCH_RUNS (2,000) runs in the store (a
#      one-step pipeline reporting BENCH_POINTS points of loss a run,
#      forced to rerun, as bench/run.sh's views part does).
#   3. dashboard pages with those runs, through --http with curl: the
#      pipelines page (/), a run page (/run/<id>), the metrics page
#      (/metrics/<p>) and the comparison page (/compare/<p>), best of
#      BENCH_REPS after one warm-up request (curl's time_total).
#
# Goal: < 100 ms each. Environment:
#   BENCH_PARTS   which parts: dag runs (runs: 2 and 3)   (both)
#   BENCH_STEPS   steps of the big pipeline                (1000)
#   BENCH_RUNS    runs in the store (10000 for the figures at 10,000
#                 runs: several minutes of filling)           (2000)
#   BENCH_CHUNK   reruns asked for in one write             (250)
#   BENCH_POINTS  loss points each run reports             (20)
#   BENCH_REPS    repetitions per timing; the best is kept (3)
#   BENCH_SETTLE  seconds between a change and the read that follows the
#                 background render                        (3)
#   BENCH_KEEP=1  keep the scratch directory
#   FLOWYFS_BIN   the daemon (default: build/flowyfs of this repo)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${FLOWYFS_BIN:-$here/build/flowyfs}
parts=" ${BENCH_PARTS:-dag runs} "
part() { [[ $parts == *" $1 "* ]]; }
steps_n=${BENCH_STEPS:-1000}
runs_n=${BENCH_RUNS:-2000}
chunk=${BENCH_CHUNK:-250}
points=${BENCH_POINTS:-20}
reps=${BENCH_REPS:-3}
settle=${BENCH_SETTLE:-3}

. "$here/bench/lib.sh" # now, sub, min, nap, bench_mount, arow, table, die, bench_workdir
[ -x "$bin" ] || die "no daemon at $bin (run make first)"
for t in curl python3 fusermount3 awk; do
	command -v "$t" >/dev/null || die "$t is not installed"
done
bench_workdir flowypics

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
bench_mount "$dir/flowyfs.log" "$bin" --store "$store" -j 2 --http "127.0.0.1:$port" -f "$mnt"
P=$mnt/pipelines
echo "flowyfs pictures bench: $(nproc) CPUs, $steps_n steps, $runs_n runs, best of $reps"

ms_of() { awk -v s="$1" 'BEGIN { printf "%.1f", s * 1000 }'; }
# once CMD...: seconds one call of CMD takes (its output discarded).
once() {
	local t0 t1
	t0=$(now); "$@" > /dev/null; t1=$(now)
	sub "$t1" "$t0"
}
# best CMD...: the best of reps calls, in ms, after one call to warm up.
best() {
	local b=""
	"$@" > /dev/null
	for _ in $(seq 1 "$reps"); do b=$(min "$b" "$(once "$@")"); done
	ms_of "$b"
}

if part dag; then
# --- 1. .dag.svg --------------------------------------------------------------

# stage NAME N: a pipeline of N steps in pipelines/.NAME (not yet in place).
stage() {
	local s=$P/.$1
	mkdir -p "$s"
	echo '{"autorun": false}' > "$s/pipeline.json"
	awk -v n="$2" -v dir="$s" 'BEGIN {
		srand(7)
		for (i = 0; i < n; i++) {
			l = int(i / 10)
			ins = ""
			if (l > 0) {
				a = (l - 1) * 10 + int(rand() * 10)
				ins = sprintf("\"o%04d\"", a)
				if (i % 2) {
					lo = (l > 5 ? l - 5 : 0) * 10
					b = lo + int(rand() * (l * 10 - lo))
					if (b != a) ins = ins sprintf(", \"o%04d\"", b)
				}
			}
			f = sprintf("%s/s%04d.json", dir, i)
			printf "{\"run\": \"echo %d > out/o%04d\", \"inputs\": [%s], \"outputs\": [\"o%04d\"]}\n",
				i, i, ins, i > f
			close(f)
		}
	}'
}
# extra NAME K N: a step more in the N-step NAME, reading its last output:
# a new graph.
extra() {
	printf '{"run": "cat in/o%04d > out/x%d", "inputs": ["o%04d"], "outputs": ["x%d"]}\n' \
		$(($3 - 1)) "$2" $(($3 - 1)) "$2" > "$P/$1/x$2.json"
}
# check_svg NAME NODES: pipelines/NAME/.dag.svg is XML with NODES nodes.
check_svg() {
	local n
	cat "$P/$1/.dag.svg" > "$dir/$1.svg"
	python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' "$dir/$1.svg" ||
		die "$1/.dag.svg is not XML"
	n=$(nodes "$dir/$1.svg")
	[ "$n" = "$2" ] || die "$1/.dag.svg has $n nodes, expected $2"
}
nodes() { grep -c '<g id="node[0-9]*" class="node">' "$1" || true; }

stage big "$steps_n"
mv "$P/.big" "$P/big"
stage small 100
mv "$P/.small" "$P/small"
[ "$(head -1 "$P/big/.status")" = valid ] || { cat "$P/big/.status" >&2; die "big is not valid"; }

# At once after a change: validation and layout in the read itself.
first=""
for k in $(seq 1 "$reps"); do
	extra big "$k" "$steps_n"
	first=$(min "$first" "$(once cat "$P/big/.dag.svg")")
done
check_svg big $((2 * (steps_n + reps)))
later=$(best cat "$P/big/.dag.svg")
# After the change window: the background render has laid it out.
settled=""
for k in $(seq $((reps + 1)) $((2 * reps))); do
	extra big "$k" "$steps_n"
	nap "$settle"
	settled=$(min "$settled" "$(once cat "$P/big/.dag.svg")")
done
small=""
for k in $(seq 1 "$reps"); do
	extra small "$k" 100
	small=$(min "$small" "$(once cat "$P/small/.dag.svg")")
done
check_svg small $((2 * (100 + reps)))
size=$(stat -c %s "$dir/big.svg")
fi

if part runs; then
# --- 2. metric plot and 3. dashboard, with many runs ----------------------------

s=$P/.track
mkdir -p "$s"
echo '{"params": {"lr": 0.01}}' > "$s/pipeline.json"
cat > "$s/train.json" <<JSON
{"run": "i=0; while [ \$i -lt $points ]; do echo \"{\\\\\"loss\\\\\": \$((FLOWY_RUN * 100 + $points - i))}\" >> \"\$FLOWY_METRICS\"; i=\$((i + 1)); done; echo \$FLOWY_RUN > out/model",
 "outputs": ["model"], "params": ["lr"]}
JSON
mv "$s" "$P/track"
wait_end() { # wait_end ID LIMIT_S: its terminal status, or timeout
	local st="" t0=$SECONDS
	while ((SECONDS - t0 <= $2)); do
		{ read -r st < "$mnt/runs/$1/status"; } 2>/dev/null || true
		case $st in succeeded | failed | cancelled | interrupted) echo "$st"; return ;; esac
		nap 0.05
	done
	echo timeout
}
first_id=""
for _ in $(seq 1 200); do
	first_id=$(readlink "$P/track/.latest" 2>/dev/null) && break
	nap 0.05
done
first_id=${first_id##*/}
[ -n "$first_id" ] || die "track did not run"
[ "$(wait_end "$first_id" 60)" = succeeded ] || die "run $first_id of track failed"
more=$((runs_n - 1))
t0=$(now)
# In writes of BENCH_CHUNK reruns, each after the last one's runs ended:
# the scheduler's work per run grows with the runs that wait.
last_id=$first_id
while ((last_id - first_id < more)); do
	k=$((more - (last_id - first_id)))
	((k <= chunk)) || k=$chunk
	for ((i = 0; i < k; i++)); do echo "rerun train"; done > "$dir/rerun.cmds"
	cat "$dir/rerun.cmds" > "$P/track/.ctl"
	last_id=$((last_id + k))
	st=$(wait_end "$last_id" 600)
	[ "$st" = succeeded ] || die "run $last_id of track: $st"
done
fill=$(sub "$(now)" "$t0" 1)
nruns=$(ls "$mnt/runs" | grep -c '^[0-9]')
plot=$(best cat "$mnt/metrics/track/loss.svg")
cat "$mnt/metrics/track/loss.svg" > "$dir/loss.svg"
curves=$(grep -o '<g class="series"' "$dir/loss.svg" | wc -l)
first_legend=$(grep -o "run $last_id<" "$dir/loss.svg" | head -1)
[ -n "$first_legend" ] || die "loss.svg does not show run $last_id"

# page PATH: best of reps, in ms; every answer must be 200.
page() {
	local b="" t code
	for k in $(seq 0 "$reps"); do
		read -r code t < <(curl -s -o "$dir/page.html" -m 60 -w '%{http_code} %{time_total}\n' "$url$1")
		[ "$code" = 200 ] || die "GET $1: $code"
		[ "$k" = 0 ] || b=$(min "$b" "$t")
	done
	ms_of "$b"
}
d_home=$(page /)
grep -q "data-run=\"$last_id\"" "$dir/page.html" || die "/ does not list run $last_id"
d_run=$(page "/run/$last_id")
d_metrics=$(page /metrics/track)
grep -q '<g class="series"' "$dir/page.html" || die "/metrics/track shows no curve"
d_compare=$(page /compare/track)
compare_rows=$(grep -c '^<tr><td' "$dir/page.html" || true)
if ((nruns > 500)); then
	grep -q 'id="older"' "$dir/page.html" || die "/compare/track has no link to older runs"
fi
fi

# --- table ----------------------------------------------------------------------
if part dag; then
	arow ".dag.svg ${steps_n} steps: first read at once after a change" "$(ms_of "$first")" ms le 100
	arow ".dag.svg ${steps_n} steps: first read ${settle}s after a change" "$(ms_of "$settled")" ms le 100
	arow ".dag.svg ${steps_n} steps: later reads" "$later" ms le 100
	arow ".dag.svg 100 steps: first read at once after a change" "$(ms_of "$small")" ms le 100
fi
if part runs; then
	arow "metrics/<p>/loss.svg (${nruns} runs, ${curves} curves)" "$plot" ms le 100
	arow "dashboard / (${nruns} runs)" "$d_home" ms le 100
	arow "dashboard /run/<id> (${nruns} runs)" "$d_run" ms le 100
	arow "dashboard /metrics/<p> (${nruns} runs)" "$d_metrics" ms le 100
	arow "dashboard /compare/<p> (${compare_rows} rows shown)" "$d_compare" ms le 100
fi
echo
table
echo
if part dag; then
	echo "notes: .dag.svg of ${steps_n} steps is $size bytes, $((2 * (steps_n + reps))) nodes;"
	echo "  a change here is one step more (a new graph); times are one cat each, the best of $reps."
fi
if part runs; then
	echo "  filling the store: ${fill}s for ${more} forced runs of ${points} points each."
fi
exit 0
