# helpers.bash - shared helpers for the flowyfs end-to-end tests.
#
# Every test mounts a real store with the daemon in the foreground
# (mount_flowy), talks to it only through the mount with shell tools, and
# unmounts in teardown (unmount_flowy). Waits poll with a bound; nothing
# sleeps a fixed long time.

: "${FLOWYFS_BIN:?set FLOWYFS_BIN to the flowyfs binary (make bats does)}"

# Bounds for polling loops, in tenths of a second.
MOUNT_WAIT=${MOUNT_WAIT:-100}     # 10 s
RUN_WAIT=${RUN_WAIT:-200}         # 20 s

# mount_flowy [EXTRA_ARGS...]: mount $BATS_TEST_TMPDIR/store on
# $BATS_TEST_TMPDIR/mnt (sets $mnt, $store, $FLOWY_PID). Fails if the
# daemon exits or the mount does not show up within the bound.
mount_flowy() {
	store=${store:-$BATS_TEST_TMPDIR/store}
	mnt=${mnt:-$BATS_TEST_TMPDIR/mnt}
	mkdir -p "$mnt"
	# Under a sanitizer build, memory errors abort the daemon (and fail the
	# test); leaks are checked by one dedicated test (persistence.bats), so
	# one leak does not fail every test. ASAN_OPTIONS set by the caller wins.
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} \
		"$FLOWYFS_BIN" --store "$store" "$@" -f "$mnt" \
		>>"$BATS_TEST_TMPDIR/daemon.log" 2>&1 &
	FLOWY_PID=$!
	echo "$FLOWY_PID" >"$BATS_TEST_TMPDIR/daemon.pid"
	local i
	for ((i = 0; i < MOUNT_WAIT; i++)); do
		if grep -q " $mnt fuse" /proc/mounts; then
			return 0
		fi
		if ! kill -0 "$FLOWY_PID" 2>/dev/null; then
			echo "flowyfs exited before mounting:" >&2
			cat "$BATS_TEST_TMPDIR/daemon.log" >&2
			FLOWY_PID=
			return 1
		fi
		sleep 0.1
	done
	echo "flowyfs did not mount $mnt in time" >&2
	return 1
}

# unmount_flowy: unmount $mnt and wait for the daemon we started; sets
# DAEMON_RC to its exit status (or "killed" when it had to be forced, or
# "dead" when it was gone before the unmount). Falls back to a lazy unmount
# and a kill of that one PID if it does not exit.
unmount_flowy() {
	local pid=${FLOWY_PID:-} i
	DAEMON_RC=
	if [ -z "$pid" ] && [ -f "$BATS_TEST_TMPDIR/daemon.pid" ]; then
		pid=$(cat "$BATS_TEST_TMPDIR/daemon.pid")
	fi
	if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
		DAEMON_RC=dead
	fi
	if [ -n "${mnt:-}" ] && grep -q " $mnt fuse" /proc/mounts; then
		for ((i = 0; i < 20; i++)); do
			fusermount3 -u "$mnt" 2>/dev/null && break
			sleep 0.1
		done
	fi
	if [ -n "$pid" ]; then
		for ((i = 0; i < MOUNT_WAIT; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "flowyfs $pid did not exit after unmount; forcing" >&2
			fusermount3 -uz "$mnt" 2>/dev/null || true
			kill "$pid" 2>/dev/null || true
			sleep 0.5
			kill -9 "$pid" 2>/dev/null || true
			DAEMON_RC=killed
		fi
		local rc=0
		wait "$pid" 2>/dev/null || rc=$?
		[ -n "$DAEMON_RC" ] || DAEMON_RC=$rc
	fi
	if [ -n "${mnt:-}" ] && grep -q " $mnt fuse" /proc/mounts; then
		fusermount3 -uz "$mnt" 2>/dev/null || true
	fi
	FLOWY_PID=
	rm -f "$BATS_TEST_TMPDIR/daemon.pid"
}

# sigterm_flowy: SIGTERM the daemon we started, wait for it to exit (at
# most MOUNT_WAIT), reap it (its status on stderr) and unmount what it
# left; fails when it still runs after the bound.
sigterm_flowy() {
	local i rc=0
	kill -TERM "$FLOWY_PID"
	for ((i = 0; i < MOUNT_WAIT; i++)); do
		kill -0 "$FLOWY_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$FLOWY_PID" 2>/dev/null; then
		echo "flowyfs was still running $((MOUNT_WAIT / 10)) s after SIGTERM" >&2
		return 1
	fi
	wait "$FLOWY_PID" || rc=$?
	echo "flowyfs exited with status $rc after SIGTERM" >&2
	FLOWY_PID=
	rm -f "$BATS_TEST_TMPDIR/daemon.pid"
	if grep -q " $mnt fuse" /proc/mounts; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt"
	fi
}

# unmount_clean: unmount and fail unless the daemon exited with status 0.
unmount_clean() {
	unmount_flowy
	if [ "$DAEMON_RC" != 0 ]; then
		echo "flowyfs did not stop cleanly on unmount (status $DAEMON_RC):" >&2
		show_daemon_log >&2
		return 1
	fi
}

# remount_flowy [EXTRA_ARGS...]: unmount, check the daemon exited cleanly
# (status 0), mount the same store again.
remount_flowy() {
	unmount_clean || return 1
	mount_flowy "$@"
}

# show_daemon_log: the sanitizer report if there is one, else the log's end.
show_daemon_log() {
	local log=$BATS_TEST_TMPDIR/daemon.log
	if grep -q 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$log"; then
		grep -m 1 -A 25 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$log"
	else
		tail -n 40 "$log"
	fi
}

# flowy_teardown: always unmount; fail the test if the daemon crashed during
# it or did not exit with status 0 on unmount (an ASan report, a leak...).
flowy_teardown() {
	unmount_flowy
	if [ -n "$DAEMON_RC" ] && [ "$DAEMON_RC" != 0 ]; then
		echo "flowyfs did not stop cleanly (status $DAEMON_RC); daemon log:" >&2
		show_daemon_log >&2
		return 1
	fi
	# Shown by bats only when the test failed.
	if [ -s "$BATS_TEST_TMPDIR/daemon.log" ]; then
		echo "--- daemon log:" >&2
		tail -n 40 "$BATS_TEST_TMPDIR/daemon.log" >&2
	fi
}

# teardown_with_dir DIR: flowy_teardown, then remove DIR (a test's own
# directory outside bats' temporary ones, holding DIR/mnt) unless DIR is
# empty or its mount is still there (never remove through a mount).
teardown_with_dir() {
	local rc=0
	flowy_teardown || rc=$?
	if [ -n "$1" ] && ! grep -q " $1/mnt fuse" /proc/mounts; then
		rm -rf "$1"
	fi
	return "$rc"
}

# daemon_alive: succeed while the daemon we started runs; otherwise say so
# (with the end of its log) and fail, so waits stop at once on a crash.
daemon_alive() {
	if [ -n "${FLOWY_PID:-}" ] && ! kill -0 "$FLOWY_PID" 2>/dev/null; then
		echo "flowyfs (pid $FLOWY_PID) is not running any more" >&2
		return 1
	fi
}

# is_terminal STATUS: a run status that does not change any more.
is_terminal() {
	case $1 in
	succeeded | failed | cancelled | interrupted) return 0 ;;
	esac
	return 1
}

# wait_run ID: poll runs/ID/status until it is terminal (bounded); prints
# the final status. Fails if the run does not exist or does not end in time.
wait_run() {
	local id=$1 st i
	for ((i = 0; i < RUN_WAIT; i++)); do
		if st=$(cat "$mnt/runs/$id/status" 2>/dev/null) && is_terminal "$st"; then
			echo "$st"
			return 0
		fi
		daemon_alive || return 1
		sleep 0.1
	done
	echo "run $id did not finish in time (status: ${st:-none})" >&2
	return 1
}

# latest_run_of P: the id of the newest run of pipeline P, or nothing.
latest_run_of() {
	local p=$1 d best= l
	# pipelines/P/.latest is the newest run (max id); a removed pipeline
	# has none, so its runs are looked for one by one.
	if l=$(readlink "$mnt/pipelines/$p/.latest" 2>/dev/null); then
		echo "${l##*/}"
		return 0
	fi
	for d in "$mnt"/runs/*/; do
		d=${d%/}
		d=${d##*/}
		[[ $d =~ ^[0-9]+$ ]] || continue
		[ "$(cat "$mnt/runs/$d/pipeline" 2>/dev/null)" = "$p" ] || continue
		if [ -z "$best" ] || [ "$d" -gt "$best" ]; then best=$d; fi
	done
	echo "$best"
}

# run_count: the number of runs the mount shows.
run_count() {
	local n=0 d
	for d in "$mnt"/runs/*/; do
		d=${d%/}
		[[ ${d##*/} =~ ^[0-9]+$ ]] && n=$((n + 1))
	done
	echo "$n"
}

# wait_new_run P [AFTER]: wait for a run of pipeline P with an id greater
# than AFTER (default: none) to appear and finish; prints its id.
wait_new_run() {
	local p=$1 after=${2:-0} id i
	for ((i = 0; i < RUN_WAIT; i++)); do
		id=$(latest_run_of "$p")
		if [ -n "$id" ] && [ "$id" -gt "$after" ]; then
			wait_run "$id" >/dev/null || return 1
			echo "$id"
			return 0
		fi
		daemon_alive || return 1
		sleep 0.1
	done
	echo "no new run of $p after ${after} appeared" >&2
	return 1
}

# wait_step_running P STEP: wait (bounded) until the newest run of P has
# STEP running; prints the run's id.
wait_step_running() {
	local i id
	for ((i = 0; i < RUN_WAIT; i++)); do
		id=$(latest_run_of "$1")
		if [ -n "$id" ] && [ "$(cat "$mnt/runs/$id/steps/$2/status" 2>/dev/null)" = running ]; then
			echo "$id"
			return 0
		fi
		daemon_alive || return 1
		sleep 0.1
	done
	echo "no run of $1 with $2 running" >&2
	return 1
}

# write_step P NAME JSON: write pipelines/P/NAME.json (creating P).
write_step() {
	mkdir -p "$mnt/pipelines/$1"
	printf '%s\n' "$3" >"$mnt/pipelines/$1/$2.json"
}

# write_file P PATH CONTENT: write a code/config file of pipeline P.
write_file() {
	mkdir -p "$(dirname "$mnt/pipelines/$1/$2")"
	printf '%s\n' "$3" >"$mnt/pipelines/$1/$2"
}

# step_file RUN STEP FILE: the content of runs/RUN/steps/STEP/FILE.
step_file() {
	cat "$mnt/runs/$1/steps/$2/$3"
}

# sanitizer_build: the binary under test was built with ASan/UBSan.
sanitizer_build() {
	grep -aq -e __asan_init -e __ubsan_handle "$FLOWYFS_BIN"
}

# expect_eq ACTUAL EXPECTED [WHAT]: compare with a readable diff on failure.
expect_eq() {
	if [ "$1" != "$2" ]; then
		echo "${3:-value} differs" >&2
		echo "--- expected:" >&2
		printf '%s\n' "$2" >&2
		echo "--- actual:" >&2
		printf '%s\n' "$1" >&2
		return 1
	fi
}
