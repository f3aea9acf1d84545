#!/usr/bin/env bats
# wait.bats - runs/<id>/wait through the mount: a read blocks until the
# run ends and gives its final status (at once for an ended run); many
# waiters hold no FUSE thread, so the mount keeps answering; SIGINT ends
# one wait at once.

load helpers
load safety_helpers

setup() {
	mount_flowy
	P=$mnt/pipelines
	SYNC=$BATS_TEST_TMPDIR/sync
	mkdir -p "$SYNC"
	WAITERS=()
}

teardown() {
	local p
	touch "$SYNC/go" # let a gated step end, so its waiters end too
	for p in "${WAITERS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${WAITERS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	flowy_teardown
}

# gated P EXIT: a pipeline (autorun off) whose one step waits (bounded)
# for $SYNC/go, then exits with EXIT.
gated() {
	mkdir "$P/.$1"
	echo '{"autorun": false}' >"$P/.$1/pipeline.json"
	printf '{"run": "i=0; while [ ! -e %s/go ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done; exit %s"}\n' \
		"$SYNC" "$2" >"$P/.$1/s.json"
	mv "$P/.$1" "$P/$1"
}

# ms_since T0: milliseconds since T0 (date +%s%N).
ms_since() {
	echo $((($(date +%s%N) - $1) / 1000000))
}

# all_exited PID...: none of the PIDs runs any more.
all_exited() {
	local p
	for p in "$@"; do
		kill -0 "$p" 2>/dev/null && return 1
	done
	return 0
}

@test "echo run > .ctl && cat .latest/wait prints the final status once the run ended" {
	mkdir "$P/.w"
	echo '{"autorun": false}' >"$P/.w/pipeline.json"
	echo '{"run": "sleep 0.5; exit 2"}' >"$P/.w/s.json"
	mv "$P/.w" "$P/w"
	local t0 out
	t0=$(date +%s%N)
	run sh -c "echo run > '$P/w/.ctl' && cat '$P/w/.latest/wait'"
	expect_eq "$status" 0
	expect_eq "$output" failed
	[ "$(ms_since "$t0")" -ge 500 ]
	expect_eq "$(cat "$mnt/runs/1/status")" failed
	# An ended run answers at once, every time, and the file ends there.
	t0=$(date +%s%N)
	expect_eq "$(cat "$mnt/runs/1/wait")" failed
	[ "$(ms_since "$t0")" -lt 1000 ]
	expect_eq "$(od -c "$mnt/runs/1/wait" | head -n 1)" "0000000   f   a   i   l   e   d  \n"
	expect_eq "$(dd if="$mnt/runs/1/wait" bs=3 2>/dev/null)" failed
	run cat "$mnt/runs/99/wait"
	expect_eq "$status" 1
	expect_contains "$output" "No such file or directory"
	run ls "$mnt/runs/1"
	expect_contains "$output" "wait"
	expect_eq "$(stat -c '%a %s' "$mnt/runs/1/wait")" "444 0"
}

@test "50 waiters get the status when the run ends, and the mount answers meanwhile" {
	gated g 0
	echo run >"$P/g/.ctl"
	local id i t0 ms
	id=$(latest_run_of g)
	for ((i = 0; i < 50; i++)); do
		cat "$mnt/runs/$id/wait" >"$SYNC/out.$i" 2>&1 &
		WAITERS+=($!)
	done
	sleep 0.5 # the waiters are blocked in read(2) now
	! all_exited "${WAITERS[@]}"
	# More waiters than FUSE worker threads: the mount still answers at once.
	t0=$(date +%s%N)
	ls "$mnt" >/dev/null
	ls "$mnt/runs/$id" >/dev/null
	expect_eq "$(cat "$mnt/runs/$id/status")" running
	echo '{"run": "true"}' >"$BATS_TEST_TMPDIR/x.json"
	mkdir "$P/other"
	cp "$BATS_TEST_TMPDIR/x.json" "$P/other/s.json"
	ms=$(ms_since "$t0")
	echo "mount latency with 50 waiters: ${ms} ms" >&3
	[ "$ms" -lt 2000 ]
	touch "$SYNC/go"
	wait_for "$RUN_WAIT" all_exited "${WAITERS[@]}"
	for ((i = 0; i < 50; i++)); do
		wait "${WAITERS[$i]}"
		expect_eq "$(cat "$SYNC/out.$i")" succeeded "waiter $i"
	done
	WAITERS=()
}

@test "SIGINT ends one wait at once; the run and the other waiters go on" {
	gated s 1
	echo run >"$P/s/.ctl"
	local id a b t0 rc=0
	id=$(latest_run_of s)
	env --default-signal=INT cat "$mnt/runs/$id/wait" >"$SYNC/a" 2>&1 &
	a=$!
	cat "$mnt/runs/$id/wait" >"$SYNC/b" 2>&1 &
	b=$!
	WAITERS=("$a" "$b")
	sleep 0.3
	! all_exited "$a"
	t0=$(date +%s%N)
	kill -INT "$a"
	wait_for 20 all_exited "$a"
	echo "SIGINT to exit: $(ms_since "$t0") ms" >&3
	wait "$a" || rc=$?
	expect_eq "$rc" 130
	expect_eq "$(cat "$SYNC/a")" ""
	expect_eq "$(cat "$mnt/runs/$id/status")" running
	! all_exited "$b"
	touch "$SYNC/go"
	wait_for "$RUN_WAIT" all_exited "$b"
	wait "$b"
	expect_eq "$(cat "$SYNC/b")" failed
	expect_eq "$(cat "$mnt/runs/$id/wait")" failed
	WAITERS=()
}

@test "a wait ends with interrupted when the daemon stops under it" {
	gated u 0
	echo run >"$P/u/.ctl"
	local id w
	id=$(latest_run_of u)
	cat "$mnt/runs/$id/wait" >"$SYNC/u" 2>&1 &
	w=$!
	WAITERS=("$w")
	sleep 0.3
	sigterm_flowy
	wait_for "$RUN_WAIT" all_exited "$w"
	wait "$w" || true
	# Its answer, then (cat reads on) the mount is gone.
	expect_eq "$(head -n 1 "$SYNC/u")" interrupted
	WAITERS=()
}
