#!/usr/bin/env bats
# gc.bats - store/.ctl through the mount: gc with retention (last N, age,
# and the runs always kept: registry versions, latest artifacts, tagged
# keep, pinned inputs), dry runs, forget of a removed pipeline, gc while a
# run goes on, refused commands (errno and store/.status), store/gc.log,
# bytes freed equal to what du says, and a crash trial: kill -9 in the
# middle of gc, CRASH_ITERATIONS times (default 10), loses no object a row
# names and leaves the database intact.

load helpers
load safety_helpers

ITERATIONS=${CRASH_ITERATIONS:-10}
GC_HEADER=$(printf 'time\tcommand\truns\tobjects\tbytes\tduration\tremoved_runs')

setup() {
	mount_flowy -j 2
	P=$mnt/pipelines
}

teardown() {
	flowy_teardown
}

# ctl CMD: write CMD to store/.ctl; prints the shell's error, returns its status.
ctl() {
	bash -c 'echo "$1" > "$2"' _ "$1" "$mnt/store/.ctl" 2>&1
}

# gc_rows: store/gc.log without its time and duration columns.
gc_rows() {
	cut -f2-5,7 "$mnt/store/gc.log"
}

# du_bytes: disk usage of the store's objects and run directories.
du_bytes() {
	du -sB1 -c "$store/objects" "$store/runs" | tail -1 | cut -f1
}

# runs_list: the run ids in runs/, ascending, on one line.
runs_list() {
	ls "$mnt/runs" | grep -v '^latest$' | sort -n | tr '\n' ' '
}

# hex_of LINK: the hash an artifacts/ symlink points at.
hex_of() {
	basename "$(readlink "$1")"
}

# run_ctl P CMD: queue CMD on pipeline P and wait for the run; prints its id.
run_ctl() {
	echo "$2" >"$P/$1/.ctl" || return 1
	local id
	id=$(basename "$(readlink "$P/$1/.latest")")
	wait_run "$id" >/dev/null || return 1
	echo "$id"
}

@test "store/: files and modes; bad commands fail with EINVAL and say why in .status" {
	expect_eq "$(ls -A "$mnt/store" | LC_ALL=C sort)" "$(printf '.ctl\n.status\ngc.log\nstats')" "store/"
	expect_eq "$(cd "$mnt/store" && stat -c '%n %a' .ctl .status gc.log)" "$(printf '.ctl 200\n.status 444\ngc.log 444')" "modes"
	expect_eq "$(cat "$mnt/store/gc.log")" "$GC_HEADER$(printf '\ntotal\t\t0\t0\t0\t0.000\t')" "empty gc.log"
	expect_eq "$(cat "$mnt/store/.status")" "$(printf 'gc idle\nlast command: none')" "fresh .status"
	local -a cmds=(bogus "gc keep=x" "gc keep=-1" "gc older-than=3x" "gc now" forget "forget ../x" "forget p extra")
	local -a why=(
		'unknown command "bogus" (expected gc or forget)'
		'gc: keep=x: not a count of runs (keep=N, N >= 0)'
		'gc: keep=-1: not a count of runs (keep=N, N >= 0)'
		'gc: older-than=3x: not an age (a whole number with s, m, h, d or w, e.g. 30d)'
		'gc: unknown argument "now" (expected keep=N, older-than=AGE or dry-run)'
		'forget: which pipeline? (forget <pipeline>)'
		'forget: "../x" is not a pipeline name'
		'forget: unknown argument "extra" (expected forget <pipeline> [dry-run])')
	local i out
	for i in "${!cmds[@]}"; do
		out=$(ctl "${cmds[$i]}") && { echo "'${cmds[$i]}' was accepted" >&2; return 1; }
		[[ $out == *"Invalid argument"* ]]
		expect_eq "$(tail -n 1 "$mnt/store/.status")" "last refusal: ${cmds[$i]}: Invalid argument: ${why[$i]}" "refusal of ${cmds[$i]}"
	done
	run cat "$mnt/store/.ctl"
	[ "$status" -ne 0 ] && [[ $output == *"Permission denied"* ]]
	run bash -c "echo x > '$mnt/store/gc.log'"
	[ "$status" -ne 0 ]
	expect_eq "$(cat "$mnt/store/gc.log")" "$GC_HEADER$(printf '\ntotal\t\t0\t0\t0\t0.000\t')" "nothing logged"
	grep -q 'store/.ctl: bogus: Invalid argument' "$mnt/log"
	daemon_alive
}

@test "gc keep=1 older-than=0 keeps latest, registry, keep-tagged and pinned runs; dry-run first; bytes as du" {
	write_file p pipeline.json '{"params": {"v": 0}, "autorun": false}'
	write_step p mk '{"run": "echo $FLOWY_PARAM_v > out/o", "outputs": ["o"], "params": ["v"]}'
	local p1 p2 p3 p4 h1 h3 r1 r2 q1
	p1=$(run_ctl p "run v=1")
	h1=$(hex_of "$mnt/artifacts/p/o")
	p2=$(run_ctl p "run v=2")
	echo keep >"$mnt/runs/$p2/tags"
	p3=$(run_ctl p "run v=3")
	h3=$(hex_of "$mnt/artifacts/p/o")
	p4=$(run_ctl p "run v=4")
	write_file r pipeline.json '{"params": {"v": 0}, "autorun": false}'
	write_step r fit '{"run": "echo model $FLOWY_PARAM_v > out/m", "outputs": ["m"], "params": ["v"], "register": {"m": "clf"}}'
	r1=$(run_ctl r "run v=10")
	r2=$(run_ctl r "run v=11")
	write_file q pipeline.json '{"autorun": false}'
	write_step q use "{\"run\": \"cat in/$h1 > out/c\", \"inputs\": [\"sha256:$h1\"], \"outputs\": [\"c\"]}"
	q1=$(run_ctl q run)
	expect_eq "$p1 $p2 $p3 $p4 $r1 $r2 $q1" "1 2 3 4 5 6 7" "run ids"
	expect_eq "$(cat "$mnt/artifacts/q/c")" 1 "pinned input"
	# a bare gc keeps 10 runs per pipeline and 30 days: nothing goes
	ctl gc
	sleep 0.3 # past the gc's slack for objects just written
	local before
	before=$(du_bytes)
	ctl 'gc keep=1 older-than=0 dry-run'
	expect_eq "$(runs_list)" "1 2 3 4 5 6 7 " "runs after the dry run"
	[ -f "$mnt/artifacts/sha256/$h3" ]
	expect_eq "$(du_bytes)" "$before" "du after the dry run"
	ctl 'gc keep=1 older-than=0'
	local after freed
	after=$(du_bytes)
	freed=$((before - after))
	[ "$freed" -gt 0 ]
	expect_eq "$(gc_rows)" "$(printf 'command\truns\tobjects\tbytes\tremoved_runs\ngc keep=10 older-than=30d\t0\t0\t0\t\ngc keep=1 older-than=0 dry-run\t1\t1\t%s\t3\ngc keep=1 older-than=0\t1\t1\t%s\t3\n\t1\t1\t%s\t' "$freed" "$freed" "$freed")" "gc.log"
	expect_eq "$(tail -n 1 "$mnt/store/gc.log" | cut -f1)" total "total row"
	expect_eq "$(sed -n 2p "$mnt/store/.status")" "last command: gc keep=1 older-than=0: removed 1 runs (3), 1 objects, $freed bytes" ".status"
	expect_eq "$(runs_list)" "1 2 4 5 6 7 " "runs kept"
	[ ! -e "$store/runs/3" ]
	run cat "$mnt/artifacts/sha256/$h3"
	[ "$status" -ne 0 ] && [[ $output == *"No such file or directory"* ]]
	[ ! -e "$mnt/lineage/sha256/$h3" ]
	expect_eq "$(cat "$mnt/artifacts/sha256/$h1" "$mnt/artifacts/p/o" "$mnt/registry/clf/v1" "$mnt/registry/clf/v2" "$mnt/runs/$p2/steps/mk/outputs/o")" "$(printf '1\n4\nmodel 10\nmodel 11\n2')" "kept outputs"
	expect_eq "$(cat "$mnt/runs/$p4/snapshot/mk.json")" '{"run": "echo $FLOWY_PARAM_v > out/o", "outputs": ["o"], "params": ["v"]}' "snapshot"
	# keep=0: the latest, tagged, registered and pinned runs still stay;
	# run 1's snapshot (shared by 2 and 4) moves to run 2
	ctl 'gc keep=0 older-than=0'
	expect_eq "$(runs_list)" "1 2 4 5 6 7 " "runs kept with keep=0"
	echo >"$mnt/runs/$p2/tags"
	ctl 'gc keep=0 older-than=0'
	expect_eq "$(runs_list)" "1 4 5 6 7 " "run 2 untagged"
	expect_eq "$(run_ctl p 'run v=4')" 8 "next run"
	expect_eq "$(cat "$mnt/runs/8/steps/mk/status" "$mnt/artifacts/p/o")" "$(printf 'cached\n4')" "cache after gc"
	unmount_clean
	expect_db_ok
}

@test "forget: refused while the pipeline exists or runs; removes runs, latest, metrics, lineage and objects" {
	write_step f mk "{\"run\": \"echo forget-me > out/x; echo '{\\\"loss\\\": 1}' >> \$FLOWY_METRICS\", \"outputs\": [\"x\"]}"
	local id hex out
	id=$(wait_new_run f)
	hex=$(hex_of "$mnt/artifacts/f/x")
	expect_eq "$(cut -f1,2,3 "$mnt/metrics/f/loss")" "$(printf 'run\tstep\tvalue\n%s\tmk\t1' "$id")" "metrics before"
	out=$(ctl 'forget f') && return 1
	[[ $out == *"File exists"* ]]
	expect_eq "$(tail -n 1 "$mnt/store/.status")" "last refusal: forget f: File exists: forget f: the pipeline still exists (rm -r pipelines/f first)" "refusal"
	rm -r "$P/f"
	sleep 0.3 # past the gc's slack for objects just written
	ctl 'forget f dry-run'
	[ -d "$mnt/runs/$id" ] && [ -e "$mnt/artifacts/f/x" ]
	local before
	before=$(du_bytes)
	ctl 'forget f'
	expect_eq "$(ls "$mnt/runs")" "" "runs/"
	expect_eq "$(ls "$mnt/artifacts")" sha256 "artifacts/"
	expect_eq "$(ls "$mnt/metrics")" "" "metrics/"
	[ ! -e "$mnt/lineage/sha256/$hex" ] && [ ! -e "$mnt/artifacts/sha256/$hex" ] && [ ! -e "$mnt/lineage/f" ]
	expect_eq "$(gc_rows | tail -n 3)" "$(printf 'forget f dry-run\t1\t1\t%s\t%s\nforget f\t1\t1\t%s\t%s\n\t1\t1\t%s\t' "$((before - $(du_bytes)))" "$id" "$((before - $(du_bytes)))" "$id" "$((before - $(du_bytes)))")" "gc.log"
	out=$(ctl 'forget f') && return 1
	[[ $out == *"No such file or directory"* ]]
	expect_eq "$(tail -n 1 "$mnt/store/.status")" "last refusal: forget f: No such file or directory: forget f: nothing of that pipeline is stored" "refusal"
	unmount_clean
	expect_db_ok
}

@test "gc while a run goes on: the live run and what it writes stay; forget of it is EBUSY" {
	write_file c pipeline.json '{"params": {"v": 0}, "autorun": false}'
	write_step c a '{"run": "echo $FLOWY_PARAM_v > out/x", "outputs": ["x"], "params": ["v"]}'
	write_step c b '{"run": "sleep 1; cat in/x > out/y; echo b >> out/y", "inputs": ["x"], "outputs": ["y"]}'
	local c1 c2 out hx
	c1=$(run_ctl c "run v=1")
	echo "run v=2" >"$P/c/.ctl"
	c2=$(wait_step_running c b)
	hx=$(hex_of "$mnt/runs/$c2/steps/a/outputs/x")
	ctl 'gc keep=0 older-than=0'
	expect_eq "$(gc_rows | sed -n 2p)" "$(printf 'gc keep=0 older-than=0\t0\t0\t0\t')" "nothing of a live pipeline goes"
	rm -r "$P/c"
	out=$(ctl 'forget c') && return 1
	[[ $out == *"Device or resource busy"* ]]
	expect_eq "$(tail -n 1 "$mnt/store/.status")" "last refusal: forget c: Device or resource busy: forget c: run $c2 of it is still queued or running" "refusal"
	expect_eq "$(wait_run "$c2")" succeeded "the run during gc"
	expect_eq "$(cat "$mnt/artifacts/sha256/$hx" "$mnt/artifacts/c/y")" "$(printf '2\n2\nb')" "its outputs"
	ctl 'gc keep=0 older-than=0'
	expect_eq "$(runs_list)" "$c2 " "the latest run stays"
	unmount_clean
	expect_db_ok
}

# check_rows: every hash on stdin (those the rows of the database name,
# read while unmounted) reads back through the mount with that hash
# (trees: every file of them reads).
check_rows() {
	local hex got
	while read -r hex; do
		if [ -d "$mnt/artifacts/sha256/$hex" ]; then
			find "$mnt/artifacts/sha256/$hex" -type f -exec cat {} + >/dev/null ||
				{ echo "tree $hex does not read back" >&2; return 1; }
		else
			got=$(sha256sum <"$mnt/artifacts/sha256/$hex" | cut -d' ' -f1)
			[ "$got" = "$hex" ] || { echo "object $hex reads back as $got" >&2; return 1; }
		fi
	done
}

# restore BASE: the parts of the store a gc changes (objects, run
# directories, the database) as they are in the copy BASE.
restore() {
	rm -rf "$store/objects" "$store/runs" "$store"/flowy.db*
	cp -a "$1/objects" "$1/runs" "$1"/flowy.db* "$store/"
}

@test "crash trial: kill -9 in the middle of gc, $ITERATIONS times" {
	write_file g pipeline.json '{"params": {"v": 0}, "autorun": false}'
	write_step g mk '{"run": "mkdir out/d; for i in $(seq 1 10); do echo $FLOWY_PARAM_v $i > out/d/f$i; done; head -c 100000 /dev/urandom > out/r", "outputs": ["d", "r"], "params": ["v"]}'
	echo 'sweep v=1,2,3,4,5,6' >"$P/g/.ctl"
	local id
	for id in 1 2 3 4 5 6; do wait_run "$id" >/dev/null; done
	echo keep >"$mnt/runs/3/tags"
	unmount_flowy
	local base=$BATS_TEST_TMPDIR/base ref=$BATS_TEST_TMPDIR/ref
	cp -a "$store" "$base"
	# the reference: the same gc, not interrupted
	restore "$base"
	mount_flowy -j 2
	sleep 0.3 # past the gc's slack
	ctl 'gc keep=1 older-than=0'
	local ms_gc runs_ref objs_ref
	ms_gc=$(sed -n 2p "$mnt/store/gc.log" | cut -f6 | awk '{ printf "%d", $1 * 1000 + 1 }')
	runs_ref=$(runs_list)
	objs_ref=$(cd "$store/objects" && find . -path ./tmp -prune -o -type f -print | LC_ALL=C sort)
	unmount_flowy
	local i ms mid=0 out named
	for ((i = 1; i <= ITERATIONS; i++)); do
		restore "$base"
		mount_flowy -j 2
		ms=$((RANDOM % (2 * ms_gc + 1)))
		(echo 'gc keep=1 older-than=0' >"$mnt/store/.ctl") 2>/dev/null &
		local writer=$!
		sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
		kill -9 "$FLOWY_PID"
		wait "$FLOWY_PID" 2>/dev/null || true
		FLOWY_PID=
		rm -f "$BATS_TEST_TMPDIR/daemon.pid"
		fusermount3 -uz "$mnt"
		wait "$writer" 2>/dev/null || true
		[ "$(sqlite3 -readonly "$store/flowy.db" 'SELECT count(*) FROM gc_log')" = 0 ] && mid=$((mid + 1))
		out=$(db_check)
		expect_eq "$out" ok "iteration $i (kill after $ms ms): integrity_check"
		named=$(sqlite3 -readonly "$store/flowy.db" 'SELECT hash FROM step_io UNION SELECT hash FROM latest UNION SELECT hash FROM registry_versions')
		[ "$(wc -l <<<"$named")" -ge 4 ]
		mount_flowy -j 2
		check_rows <<<"$named" || { echo "iteration $i (kill after $ms ms)" >&2; return 1; }
		ctl 'gc keep=1 older-than=0'
		expect_eq "$(runs_list)" "$runs_ref" "iteration $i: runs after a whole gc"
		expect_eq "$(cd "$store/objects" && find . -path ./tmp -prune -o -type f -print | LC_ALL=C sort)" "$objs_ref" "iteration $i: objects after a whole gc"
		unmount_flowy
		[ "$DAEMON_RC" = 0 ]
	done
	echo "# gc crash trial ($(basename "$(dirname "$FLOWYFS_BIN")")): $ITERATIONS iterations ok, $mid of them killed before gc.log had its row (a whole gc takes ~$ms_gc ms)" >&3
}
