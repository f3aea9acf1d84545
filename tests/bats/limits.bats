#!/usr/bin/env bats
# limits.bats - disk exhaustion by accident: a step's log is capped at
# 64 MiB (a note at its end says so), also when the step feeds its own log
# back to itself; a sparse file in a pipeline stays sparse (the run does not
# fill a 256 MiB tmpfs with a 4 GiB file of zeros); cancel and SIGTERM are
# honoured within 10 s while a huge output is being ingested; a run of more
# steps than the daemon may have files open goes to its end (a step that is
# over holds none).
#
# The tmpfs tests need root; each tmpfs is unmounted in teardown, after the
# FUSE mount, even when the test failed.

load helpers
load safety_helpers

LOG_CAP=$((64 * 1024 * 1024 + 4096))

setup() {
	store=$BATS_TEST_TMPDIR/store
}

teardown() {
	safety_teardown
}

# on_tmpfs SIZE: store and scratch on a fresh tmpfs of SIZE; mounts flowyfs.
on_tmpfs() {
	[ "$(id -u)" = 0 ] || skip "needs root (mounts a tmpfs)"
	D=$BATS_TEST_TMPDIR/disk
	tmpfs_mount "$D" "$1"
	store=$D/store
	scratch_opt "$D/scratch"
	mount_flowy "${SCRATCH_ARGS[@]}"
}

# log_size ID STEP: bytes of runs/ID/steps/STEP/log, read through the mount.
log_size() {
	wc -c <"$mnt/runs/$1/steps/$2/log"
}

@test "100 MB of output: the step succeeds, its log is capped at 64 MiB and says so" {
	# On a tmpfs so that a daemon without the cap fills no real disk.
	on_tmpfs 256m
	write_step chatty s '{"run": "yes | head -c 100000000; echo done > out/o", "outputs": ["o"]}'
	local id size
	id=$(wait_new_run chatty)
	expect_eq "$(run_status "$id")" succeeded "run status"
	size=$(log_size "$id" s)
	echo "log: $size bytes (cap $LOG_CAP)" >&2
	[ "$size" -le "$LOG_CAP" ]
	run tail -n 5 "$mnt/runs/$id/steps/s/log"
	expect_contains "$output" "log capped at 64 MiB" "the last lines of the log"
}

@test "a step that cats its own log ends, with its log within the cap" {
	# The tmpfs bounds the damage a daemon without the cap can do.
	on_tmpfs 256m
	write_step loop s '{"run": "echo hi; cat \"$FLOWY_MOUNT/runs/$FLOWY_RUN/steps/$FLOWY_STEP/log\"; echo > out/o", "outputs": ["o"]}'
	local id st size
	id=$(RUN_WAIT=600 wait_new_run loop)
	st=$(run_status "$id")
	size=$(log_size "$id" s)
	echo "run $id: $st, log $size bytes (cap $LOG_CAP)" >&2
	[ "$size" -le "$LOG_CAP" ]
}

@test "a 4 GiB sparse file in a pipeline runs without filling a 256 MiB tmpfs" {
	on_tmpfs 256m
	mkdir "$mnt/pipelines/.sp"
	truncate -s 4G "$mnt/pipelines/.sp/big.bin"
	printf '%s\n' '{"run": "test \"$(stat -c %s big.bin)\" = 4294967296 && echo ok > out/o", "outputs": ["o"]}' \
		>"$mnt/pipelines/.sp/s.json"
	local before max used i id= st=
	before=$(tmpfs_used "$D")
	max=$before
	mv "$mnt/pipelines/.sp" "$mnt/pipelines/sp"
	# Watch the tmpfs while the run goes (bounded: 120 s).
	for ((i = 0; i < 1200; i++)); do
		used=$(tmpfs_used "$D")
		[ "$used" -le "$max" ] || max=$used
		[ -n "$id" ] || id=$(latest_run_of sp)
		if [ -n "$id" ]; then
			st=$(run_status "$id")
			is_terminal "$st" && break
		fi
		daemon_alive
		sleep 0.1
	done
	used=$(tmpfs_used "$D")
	[ "$used" -le "$max" ] || max=$used
	echo "run ${id:-none}: ${st:-none}; tmpfs used: $before before, at most $max bytes" >&2
	expect_eq "$st" succeeded "run status"
	[ "$(cat "$mnt/artifacts/sp/o")" = ok ]
	[ "$max" -lt $((64 * 1024 * 1024)) ]
}

# start_ingest P: pipeline P's step s makes a 64 GiB sparse output and
# exits; wait (bounded) until it exited, so the daemon is ingesting it.
# Sets ID. The step prints its pid, so a daemon that shows no exit_code
# before the ingest is done can still be seen to have reaped it.
start_ingest() {
	write_step "$1" s '{"run": "echo \"flowytest-pid $$\"; truncate -s 64G out/big; echo truncated", "outputs": ["big"]}'
	local i
	ID=
	for ((i = 0; i < RUN_WAIT; i++)); do
		ID=$(latest_run_of "$1")
		[ -n "$ID" ] && [ "$(step_file "$ID" s status 2>/dev/null)" != pending ] &&
			[ -n "$(step_file "$ID" s status 2>/dev/null)" ] && break
		daemon_alive
		sleep 0.1
	done
	wait_for "$RUN_WAIT" step_exited "$ID" s
	echo "run $ID: step exited; step status $(step_file "$ID" s status), exit_code '$(step_file "$ID" s exit_code)'" >&2
}

# step_exited ID STEP: exit_code is set, or the log says the step is done
# and its process is gone (reaped).
step_exited() {
	[ -n "$(step_file "$1" "$2" exit_code)" ] && return 0
	local log pid
	log=$(step_file "$1" "$2" log)
	[[ $log == *truncated* ]] || return 1
	pid=$(sed -n 's/^flowytest-pid \([0-9]*\)$/\1/p' <<<"$log" | head -n 1)
	[ -n "$pid" ] && [ ! -e "/proc/$pid" ]
}

@test "cancel during the ingest of a huge output: cancelled within 10 s" {
	mount_flowy
	start_ingest ing
	echo cancel >"$mnt/pipelines/ing/.ctl"
	local st
	st=$(RUN_WAIT=100 wait_run "$ID") || true
	expect_eq "${st:-$(run_status "$ID")}" cancelled "status of run $ID 10 s after cancel"
	daemon_alive
}

@test "SIGTERM during the ingest of a huge output: the daemon exits within 10 s, the run is interrupted" {
	mount_flowy
	start_ingest ing
	sigterm_flowy
	mount_flowy
	expect_eq "$(run_status "$ID")" interrupted "status of run $ID after the restart"
}

@test "a new pipeline version shares the unchanged files of the last snapshot (one copy, hashed once)" {
	mount_flowy
	local s=$mnt/pipelines/.sh
	mkdir -p "$s"
	head -c 8M /dev/urandom >"$s/data.bin"
	printf '%s\n' '{"run": "sha256sum data.bin | cut -c1-64 > out/h", "outputs": ["h"]}' >"$s/a.json"
	mv "$s" "$mnt/pipelines/sh"
	local r1 r2
	r1=$(wait_new_run sh)
	[ "$(cat "$mnt/runs/$r1/status")" = succeeded ]
	printf '%s\n' '{"run": "sha256sum data.bin | cut -c1-64 > out/h; echo v2", "outputs": ["h"]}' >"$mnt/pipelines/sh/a.json"
	r2=$(wait_new_run sh "$r1")
	[ "$(cat "$mnt/runs/$r2/status")" = succeeded ]
	# the same inode in both snapshots: linked, not copied
	expect_eq "$(stat -c %i "$store/runs/$r2/snapshot/data.bin")" \
		"$(stat -c %i "$store/runs/$r1/snapshot/data.bin")" "inode of data.bin"
	# the changed file is a copy of its own
	[ "$(stat -c %i "$store/runs/$r2/snapshot/a.json")" != "$(stat -c %i "$store/runs/$r1/snapshot/a.json")" ]
	cmp "$mnt/runs/$r2/snapshot/a.json" "$mnt/pipelines/sh/a.json"
	# editing the data file in place makes the next snapshot copy it again
	printf 'x' | dd of="$mnt/pipelines/sh/data.bin" bs=1 seek=100 conv=notrunc status=none
	local r3
	r3=$(wait_new_run sh "$r2")
	[ "$(cat "$mnt/runs/$r3/status")" = succeeded ]
	[ "$(stat -c %i "$store/runs/$r3/snapshot/data.bin")" != "$(stat -c %i "$store/runs/$r2/snapshot/data.bin")" ]
	expect_eq "$(cat "$mnt/artifacts/sh/h")" "$(sha256sum <"$mnt/pipelines/sh/data.bin" | cut -c1-64)" "hash the step saw"
}

@test "cancel while the run hashes its snapshot (a 64 GiB sparse file): cancelled within 10 s" {
	mount_flowy
	local s=$mnt/pipelines/.snapc
	mkdir -p "$s"
	truncate -s 64G "$s/huge.bin"
	printf '%s\n' '{"run": "echo never > out/o", "outputs": ["o"]}' >"$s/a.json"
	mv "$s" "$mnt/pipelines/snapc"
	local id i
	for ((i = 0; i < 100; i++)); do
		id=$(latest_run_of snapc)
		[ -n "$id" ] && break
		sleep 0.1
	done
	[ -n "$id" ]
	# still setting up: hashing 64 GiB of zeros takes far longer than this
	[ "$(run_status "$id")" = queued ]
	echo cancel >"$mnt/pipelines/snapc/.ctl"
	local st
	st=$(RUN_WAIT=100 wait_run "$id")
	expect_eq "$st" cancelled "status 10 s after cancel"
	grep -q "stopped while" "$mnt/runs/$id/error"
	daemon_alive
}

@test "unmounting while a file: input changes all the time stops cleanly (watches stop before the scheduler)" {
	mount_flowy
	local host=$BATS_TEST_TMPDIR/host
	mkdir -p "$host"
	echo 0 >"$host/in.txt"
	write_step w a "{\"run\": \"cat in/in.txt > out/o\", \"inputs\": [\"file:$host/in.txt\"], \"outputs\": [\"o\"]}"
	wait_new_run w >/dev/null
	# a writer that keeps the watch busy through the unmount
	( for ((i = 0; i < 300; i++)); do echo "$i" >"$host/in.txt"; sleep 0.01; done ) &
	local writer=$!
	sleep 0.3
	unmount_flowy
	kill "$writer" 2>/dev/null || true
	wait "$writer" 2>/dev/null || true
	expect_eq "$DAEMON_RC" 0 "daemon exit status (a sanitizer report makes it non-zero)"
}

@test "a chain of more steps than the daemon may have files open runs to its end" {
	# 128 files at most: the daemon needs a few dozen of its own, and before
	# a finished step's metrics file was closed with its step, step 100 or
	# so failed with "Too many open files".
	ulimit -S -n 128
	mount_flowy
	local n=160 i
	mkdir "$mnt/pipelines/.long"
	# each step writes its log and a metric, so both its files are made
	printf '{"run": "echo 1 > out/o1", "outputs": ["o1"]}\n' >"$mnt/pipelines/.long/s1.json"
	for ((i = 2; i <= n; i++)); do
		printf '{"run": "echo step %d; echo %s >> $FLOWY_METRICS; echo %d > out/o%d", "inputs": ["o%d"], "outputs": ["o%d"]}\n' \
			"$i" "'{\\\"x\\\": $i}'" "$i" "$i" $((i - 1)) "$i" >"$mnt/pipelines/.long/s$i.json"
	done
	mv "$mnt/pipelines/.long" "$mnt/pipelines/long"
	local id
	id=$(wait_new_run long)
	expect_eq "$(run_status "$id")" succeeded "the run of $n steps"
	expect_eq "$(awk -F'\t' 'NR > 1 && $2 == "succeeded"' "$mnt/runs/$id/summary" | wc -l)" "$n" \
		"steps that succeeded"
	expect_eq "$(cat "$mnt/artifacts/long/o$n")" "$n" "the last output"
	expect_eq "$(cat "$mnt/runs/$id/steps/s$n/log")" "step $n" "the last step's log"
	expect_eq "$(cat "$mnt/runs/$id/steps/s$n/metrics/x")" "$(printf 'index\tvalue\n0\t%s' "$n")" \
		"the last step's metric"
}
