#!/usr/bin/env bats
# crash.bats - crash trial: 20 times, queue a run of a pipeline with
# compressible, incompressible and directory outputs, kill -9 the daemon at
# a random point of the run, and check what a crash may never break: the
# database passes PRAGMA integrity_check, every object in the store decodes
# to the content its name is the hash of, and after a restart on the same
# store the pipeline runs to success.
#
# Per-iteration figures go to $CRASH_LOG (default: crash-trial.tsv next to
# the binary under test, so the plain and ASan runs keep one each); a
# summary line goes to fd 3.

load helpers
load safety_helpers

ITERATIONS=${CRASH_ITERATIONS:-20}

setup() {
	store=$BATS_TEST_TMPDIR/store
	CRASH_LOG=${CRASH_LOG:-$(dirname "$FLOWYFS_BIN")/crash-trial.tsv}
}

teardown() {
	flowy_teardown
}

# verify_objects: check every object of the store (not objects/tmp): raw
# files, .zst (zstd seekable format) and .tree (raw text) hash, decoded, to
# their name. Sets OBJ_OK and OBJ_BAD; prints one line per bad object.
verify_objects() {
	local f rel hex want got
	OBJ_OK=0
	OBJ_BAD=0
	while IFS= read -r -d '' f; do
		rel=${f#"$store/objects/"}
		case $rel in
		tmp/*) continue ;;
		esac
		hex=${rel/\//}
		case $hex in
		*.zst) hex=${hex%.zst}; got=$(zstd -qdc <"$f" 2>/dev/null | sha256sum | cut -d' ' -f1) ;;
		*.tree) hex=${hex%.tree}; got=$(sha256sum <"$f" | cut -d' ' -f1) ;;
		*) got=$(sha256sum <"$f" | cut -d' ' -f1) ;;
		esac
		if [[ ! $hex =~ ^[0-9a-f]{64}$ ]]; then
			echo "unexpected file in objects/: $rel"
			OBJ_BAD=$((OBJ_BAD + 1))
		elif [ "$got" != "$hex" ]; then
			echo "object $rel decodes to $got"
			OBJ_BAD=$((OBJ_BAD + 1))
		else
			OBJ_OK=$((OBJ_OK + 1))
		fi
	done < <(find "$store/objects" -type f -print0 2>/dev/null)
}

# write_pipeline ITER: the pipeline "crash"; pipeline.json changes with
# ITER so that every iteration computes everything again.
write_pipeline() {
	local s=$mnt/pipelines/crash
	mkdir -p "$s"
	printf '{"params": {"iter": "%s-%s"}}\n' "$1" "$RANDOM" >"$s/pipeline.json"
	[ -e "$s/text.json" ] && return 0
	# Short sleeps spread one run over ~0.8 s (text -> tree -> join is the
	# longest path), so the kills land in every phase of it and after it.
	printf '%s\n' '{"run": "sleep 0.1; seq 1 150000 > out/text; echo $FLOWY_PARAM_iter >> out/text", "outputs": ["text"], "params": ["iter"]}' >"$s/text.json"
	printf '%s\n' '{"run": "sleep 0.2; head -c 2M /dev/urandom > out/noise", "outputs": ["noise"], "params": ["iter"]}' >"$s/noise.json"
	printf '%s\n' '{"run": "sleep 0.3; mkdir -p out/tree/sub; cp in/text out/tree/a; head -c 2M /dev/urandom > out/tree/sub/b; echo $FLOWY_PARAM_iter > out/tree/sub/c", "inputs": ["text"], "outputs": ["tree"], "params": ["iter"]}' >"$s/tree.json"
	printf '%s\n' '{"run": "sleep 0.2; cat in/text in/noise > out/both; cp -r in/tree out/copy", "inputs": ["text", "noise", "tree"], "outputs": ["both", "copy"]}' >"$s/join.json"
}

# iteration I: one crash and the checks after it. Appends a TSV line to
# $CRASH_LOG (columns: see the header the test writes; killed_ms is from the
# end of the .ctl write to the kill, recovery_ms from the end of the checks
# to the end of the run after the restart); returns 1 (with a message) on
# the first thing that is wrong.
iteration() {
	local i=$1 ms t0 t1 killed_at id st integrity t2 kst rid rst
	mount_flowy || return 1
	write_pipeline "$i"
	echo run >"$mnt/pipelines/crash/.ctl" || { echo "iteration $i: echo run > .ctl failed" >&2; return 1; }
	id=$(latest_run_of crash)
	ms=$((RANDOM % 1501))
	t0=$(date +%s%N)
	sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
	st=$(run_status "$id")
	kill -9 "$FLOWY_PID"
	t1=$(date +%s%N)
	wait "$FLOWY_PID" 2>/dev/null || true
	FLOWY_PID=
	rm -f "$BATS_TEST_TMPDIR/daemon.pid"
	fusermount3 -uz "$mnt"
	killed_at=$(( (t1 - t0) / 1000000 ))
	integrity=$(db_check | tr '\n' ' ' | sed 's/ $//')
	verify_objects >"$BATS_TEST_TMPDIR/bad-objects"
	t2=$(date +%s%N)
	mount_flowy || { echo "iteration $i: remount after the crash failed" >&2; return 1; }
	kst=$(run_status "$id")
	echo run >"$mnt/pipelines/crash/.ctl" || { echo "iteration $i: echo run > .ctl after the restart failed" >&2; return 1; }
	rid=$(wait_new_run crash "$id") || { echo "iteration $i: no run finished after the restart" >&2; return 1; }
	rst=$(run_status "$rid")
	unmount_flowy
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$i" "$ms" "$killed_at" "$id" "$st" \
		"$kst" "$integrity" "$OBJ_OK" "$OBJ_BAD" "$rst" \
		"$(( ($(date +%s%N) - t2) / 1000000 ))" >>"$CRASH_LOG"
	if [ "$integrity" != ok ]; then
		echo "iteration $i (killed ${killed_at} ms after queueing, run $id $st): integrity_check: $integrity" >&2
		return 1
	fi
	if [ "$OBJ_BAD" -ne 0 ]; then
		echo "iteration $i (killed ${killed_at} ms after queueing, run $id $st): bad objects:" >&2
		cat "$BATS_TEST_TMPDIR/bad-objects" >&2
		return 1
	fi
	if [ "$rst" != succeeded ]; then
		echo "iteration $i: the run after the restart ended $rst" >&2
		return 1
	fi
	if [ "$DAEMON_RC" != 0 ]; then
		echo "iteration $i: the restarted daemon did not stop cleanly (status $DAEMON_RC)" >&2
		show_daemon_log >&2
		return 1
	fi
}

@test "crash trial: kill -9 at random points of runs, $ITERATIONS times" {
	mkdir -p "$(dirname "$CRASH_LOG")"
	printf 'iter\tsleep_ms\tkilled_ms\trun\tstatus_at_kill\tstatus_after_restart\tintegrity\tobjects_ok\tobjects_bad\tnext_run\trecovery_ms\n' >"$CRASH_LOG"
	local i ok=0 t_start=$SECONDS fail=
	for ((i = 1; i <= ITERATIONS; i++)); do
		if ! iteration "$i"; then
			fail=$i
			break
		fi
		ok=$((ok + 1))
	done
	local objs statuses
	objs=$(awk -F'\t' 'NR > 1 { s += $8 } END { print s + 0 }' "$CRASH_LOG")
	statuses=$(awk -F'\t' 'NR > 1 { n[$5]++ } END { sep = ""; for (k in n) { printf "%s%s=%d", sep, k, n[k]; sep = " " } }' "$CRASH_LOG")
	echo "# crash trial ($(basename "$(dirname "$FLOWYFS_BIN")")): $ok/$ITERATIONS iterations ok${fail:+, iteration $fail FAILED} in $((SECONDS - t_start)) s; killed while: $statuses; objects verified: $objs; figures: $CRASH_LOG" >&3
	[ -z "$fail" ]
}
