#!/usr/bin/env bats
# persistence.bats - the store outlives the daemon; one daemon per store;
# start-up errors are one line and exit status 1.

load helpers

setup() {
	store=$BATS_TEST_TMPDIR/store
	mnt=$BATS_TEST_TMPDIR/mnt
}

teardown() {
	flowy_teardown
	# A step orphaned by a killed daemon (see below): we end it by its PID.
	if [ -s "$BATS_TEST_TMPDIR/orphan.pid" ]; then
		kill "$(cat "$BATS_TEST_TMPDIR/orphan.pid")" 2>/dev/null || true
	fi
}

# snapshot_tree: a text picture of what we assert survives a restart.
snapshot_tree() {
	local f
	echo "== pipelines"
	(cd "$mnt/pipelines/keep" && for f in $(ls -A | LC_ALL=C sort); do
		[ -f "$f" ] || continue
		case $f in .ctl) continue ;; esac
		echo "-- $f"
		cat "$f"
	done)
	echo "== runs"
	ls "$mnt/runs" | LC_ALL=C sort
	for f in status pipeline started finished duration params.json summary; do
		echo "-- $f"
		cat "$mnt/runs/1/$f"
	done
	for f in status exit_code attempts duration cached reason log; do
		echo "-- step $f"
		cat "$mnt/runs/1/steps/gen/$f"
	done
	echo "== artifacts"
	ls -l "$mnt/artifacts/keep" | awk '{ print $9, $10, $11 }'
	cat "$mnt/artifacts/keep/txt"
	cat "$mnt/artifacts/keep/dir/a" "$mnt/artifacts/keep/dir/sub/b"
	readlink "$mnt/runs/1/steps/gen/outputs/txt"
}

@test "pipelines, runs and artifacts survive unmount and remount" {
	mount_flowy
	local s=$mnt/pipelines/.keep
	mkdir -p "$s/lib"
	printf '%s\n' '{"params": {"greeting": "hello"}}' >"$s/pipeline.json"
	printf '%s\n' 'echo "$FLOWY_PARAM_greeting from lib"' >"$s/lib/say.sh"
	printf '%s\n' '{"run": "sh lib/say.sh > out/txt; echo logged; mkdir -p out/dir/sub; echo A > out/dir/a; echo B > out/dir/sub/b", "outputs": ["txt", "dir"], "params": ["greeting"]}' >"$s/gen.json"
	mv "$s" "$mnt/pipelines/keep"
	[ "$(wait_new_run keep)" = 1 ]
	[ "$(cat "$mnt/runs/1/status")" = succeeded ]
	[ "$(cat "$mnt/artifacts/keep/txt")" = "hello from lib" ]
	[ "$(cat "$mnt/runs/1/steps/gen/log")" = logged ]
	local before after
	before=$(snapshot_tree)
	remount_flowy
	after=$(snapshot_tree)
	expect_eq "$after" "$before" "tree after remount"
	[ "$(cat "$mnt/pipelines/keep/lib/say.sh")" = 'echo "$FLOWY_PARAM_greeting from lib"' ]
	[ "$(readlink "$mnt/runs/latest")" = 1 ]
	[ "$(head -n 1 "$mnt/pipelines/keep/.status")" = valid ]
	# The cache survived too: running again reuses everything.
	echo run >"$mnt/pipelines/keep/.ctl"
	local id
	id=$(wait_new_run keep 1)
	[ "$id" = 2 ]
	[ "$(cat "$mnt/runs/2/steps/gen/status")" = cached ]
	[ "$(cat "$mnt/runs/2/steps/gen/reason")" = cached ]
	# And run ids keep increasing across restarts.
	remount_flowy
	printf '%s\n' '{"params": {"greeting": "bye"}}' >"$mnt/pipelines/keep/pipeline.json"
	id=$(wait_new_run keep 2)
	[ "$id" = 3 ]
	[ "$(cat "$mnt/artifacts/keep/txt")" = "bye from lib" ]
	[ "$(cat "$mnt/runs/3/steps/gen/reason")" = "param greeting changed" ]
}

@test "a second daemon on the same store fails: already served" {
	mount_flowy
	mkdir -p "$BATS_TEST_TMPDIR/mnt2"
	run timeout 20 "$FLOWYFS_BIN" --store "$store" -f "$BATS_TEST_TMPDIR/mnt2"
	[ "$status" -eq 1 ]
	[[ $output == *"already served"* ]]
	[ "${#lines[@]}" -eq 1 ]
	! grep -q " $BATS_TEST_TMPDIR/mnt2 fuse" /proc/mounts || false
	# The first daemon still serves.
	[ "$(head -c 8 "$mnt/README")" = "flowyfs:" ]
	write_step p s '{"run": "echo ok > out/o", "outputs": ["o"]}'
	wait_new_run p >/dev/null
	[ "$(cat "$mnt/artifacts/p/o")" = ok ]
}

@test "the store can be served again after the daemon stopped" {
	mount_flowy
	remount_flowy
	[ "$(head -c 8 "$mnt/README")" = "flowyfs:" ]
}

@test "a missing mountpoint: one line, status 1" {
	run timeout 20 "$FLOWYFS_BIN" --store "$store" -f "$BATS_TEST_TMPDIR/nonexistent"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == *"$BATS_TEST_TMPDIR/nonexistent"* ]]
	[[ $output == *"No such file or directory"* ]]
}

@test "a mountpoint that is not empty: one line, status 1" {
	mkdir -p "$BATS_TEST_TMPDIR/full"
	echo keep >"$BATS_TEST_TMPDIR/full/file"
	run timeout 20 "$FLOWYFS_BIN" --store "$store" -f "$BATS_TEST_TMPDIR/full"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == *"$BATS_TEST_TMPDIR/full"* ]]
	[[ $output == *"not empty"* ]]
	[ "$(cat "$BATS_TEST_TMPDIR/full/file")" = keep ]
	! grep -q " $BATS_TEST_TMPDIR/full fuse" /proc/mounts || false
}

@test "a mountpoint that is a file: one line, status 1" {
	echo data >"$BATS_TEST_TMPDIR/afile"
	run timeout 20 "$FLOWYFS_BIN" --store "$store" -f "$BATS_TEST_TMPDIR/afile"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == *"$BATS_TEST_TMPDIR/afile"* ]]
	[[ $output == *"ot a directory"* ]]
	[ "$(cat "$BATS_TEST_TMPDIR/afile")" = data ]
}

@test "a store that is a file: one line, status 1" {
	echo data >"$BATS_TEST_TMPDIR/storefile"
	mkdir -p "$mnt"
	run timeout 20 "$FLOWYFS_BIN" --store "$BATS_TEST_TMPDIR/storefile" -f "$mnt"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == *"$BATS_TEST_TMPDIR/storefile"* ]]
	[[ $output == *"ot a directory"* ]]
	[ "$(cat "$BATS_TEST_TMPDIR/storefile")" = data ]
	! grep -q " $mnt fuse" /proc/mounts || false
}

@test "unmounting during a run stops the step and marks the run interrupted" {
	mount_flowy
	local pidf=$BATS_TEST_TMPDIR/step.pid
	write_step slow s "{\"run\": \"echo \$\$ > $pidf; exec sleep 30\", \"outputs\": [\"o\"]}"
	local i id=
	for ((i = 0; i < RUN_WAIT; i++)); do
		id=$(latest_run_of slow)
		[ -n "$id" ] && [ "$(cat "$mnt/runs/$id/steps/s/status")" = running ] && [ -s "$pidf" ] && break
		sleep 0.1
	done
	[ "$(cat "$mnt/runs/$id/steps/s/status")" = running ]
	local spid
	spid=$(cat "$pidf")
	kill -0 "$spid"
	remount_flowy
	# The step's process is gone (bounded wait: it may take a moment to reap).
	for ((i = 0; i < 50; i++)); do
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.1
	done
	! kill -0 "$spid" 2>/dev/null || false
	[ "$(cat "$mnt/runs/$id/status")" = interrupted ]
	[[ $(cat "$mnt/runs/$id/finished") =~ ^[0-9]{4}- ]]
	# No step of a finished run is left running or pending.
	run cat "$mnt/runs/$id/steps/s/status"
	[ "$output" = failed ]
	[ -n "$(cat "$mnt/runs/$id/steps/s/error")" ]
	run awk -F'\t' 'NR > 1 { print $2 }' "$mnt/runs/$id/summary"
	[ "$output" = failed ]
}

# alive PID: the process exists and is not a zombie.
alive() {
	[ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat")" != Z ]
}

@test "a killed daemon: the store serves again, its run is interrupted, nothing lost" {
	mount_flowy
	local pidf=$BATS_TEST_TMPDIR/orphan.pid marker=$BATS_TEST_TMPDIR/slept
	write_step kd a "{\"run\": \"if [ ! -e $marker ]; then touch $marker; echo \$\$ > $pidf; exec sleep 30; fi; echo a > out/a\", \"outputs\": [\"a\"]}"
	write_step kd b '{"run": "echo b > out/b", "outputs": ["b"]}'
	local i id=
	for ((i = 0; i < RUN_WAIT; i++)); do
		id=$(latest_run_of kd)
		[ -n "$id" ] && [ "$(step_file "$id" a status)" = running ] &&
			[ "$(step_file "$id" b status)" = succeeded ] && [ -s "$pidf" ] && break
		sleep 0.1
	done
	[ "$(step_file "$id" a status)" = running ]
	kill -9 "$FLOWY_PID"
	wait "$FLOWY_PID" || true
	FLOWY_PID=
	fusermount3 -u "$mnt"
	local orphan
	orphan=$(cat "$pidf")
	kill -0 "$orphan" # the dead daemon's step still runs...
	mount_flowy
	# ...until the new daemon stops it (a zombie counts as stopped).
	for ((i = 0; i < 50; i++)); do
		alive "$orphan" || break
		sleep 0.1
	done
	run alive "$orphan"
	[ "$status" -ne 0 ]
	[ "$(cat "$mnt/runs/$id/status")" = interrupted ]
	[ "$(tail -n 1 "$mnt/pipelines/kd/.status")" = "last run: $id interrupted" ]
	[ "$(cat "$mnt/artifacts/kd/b")" = b ]
	[ "$(step_file "$id" b status)" = succeeded ]
	[ "$(step_file "$id" a status)" != running ]
	# It runs again: b from the cache, a for real.
	echo run >"$mnt/pipelines/kd/.ctl"
	local id2
	id2=$(wait_new_run kd "$id")
	[ "$(cat "$mnt/runs/$id2/status")" = succeeded ]
	[ "$(step_file "$id2" b status)" = cached ]
	[ "$(cat "$mnt/artifacts/kd/a")" = a ]
}

# read_tree DIR: cat every file and readlink every symlink below DIR
# (classified by stat, not by readdir's d_type; symlinks are not followed).
read_tree() {
	local e
	for e in "$1"/* "$1"/.[!.]*; do
		if [ -L "$e" ]; then
			readlink "$e" >/dev/null
		elif [ -d "$e" ]; then
			read_tree "$e"
		elif [ -f "$e" ]; then
			case ${e##*/} in .ctl) ;; *) cat "$e" >/dev/null ;; esac
		fi
	done
}

@test "the daemon stops cleanly (status 0, no leaks under ASan) after a busy session" {
	ASAN_OPTIONS=detect_leaks=1 mount_flowy
	# A bit of everything: a pipeline that runs, fails, retries, is cached,
	# is invalid, is cancelled; and every view is read.
	cp -r "$BATS_TEST_DIRNAME/../../examples/quickstart" "$mnt/pipelines/.qs"
	mv "$mnt/pipelines/.qs" "$mnt/pipelines/qs"
	local id
	id=$(wait_new_run qs)
	echo run >"$mnt/pipelines/qs/.ctl"
	id=$(wait_new_run qs "$id")
	[ "$(step_file "$id" count status)" = cached ]
	write_step bad s '{"run": "true", "bogus": 1, "inputs": ["x"]}'
	printf '%s\n' '{"params": {"k": 1}}' >"$mnt/pipelines/bad/pipeline.json"
	mkdir "$mnt/pipelines/f" "$mnt/pipelines/c"
	printf '%s\n' '{"params": {"k": 1}}' >"$mnt/pipelines/f/pipeline.json"
	printf '%s\n' '{"params": {"k": 1}}' >"$mnt/pipelines/c/pipeline.json"
	write_step f a '{"run": "echo $$ > /dev/null; exit 1", "outputs": ["a"], "retries": 1}'
	write_step f b '{"run": "cp in/a out/b", "inputs": ["a"], "outputs": ["b"]}'
	id=$(wait_new_run f)
	[ "$(cat "$mnt/runs/$id/status")" = failed ]
	write_step c a '{"run": "exec sleep 30", "outputs": ["a"]}'
	local i
	for ((i = 0; i < RUN_WAIT; i++)); do
		id=$(latest_run_of c)
		[ -n "$id" ] && [ "$(step_file "$id" a status)" = running ] && break
		sleep 0.1
	done
	echo cancel >"$mnt/pipelines/c/.ctl"
	[ "$(wait_run "$id")" = cancelled ]
	local top
	for top in "$mnt"/*; do
		if [ -d "$top" ]; then read_tree "$top"; else cat "$top" >/dev/null; fi
	done
	unmount_flowy
	if [ "$DAEMON_RC" != 0 ]; then
		show_daemon_log >&2
		false
	fi
}
