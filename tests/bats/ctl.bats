#!/usr/bin/env bats
# ctl.bats - pipelines/<p>/.ctl never crashes the daemon: every hostile
# command either succeeds or fails the write with an error, the daemon stays
# up, a plain `run` still queues a run that succeeds, and after a refused
# command .status says so on a line starting "last command:".

load helpers
load safety_helpers

setup() {
	mount_flowy
	write_step p s '{"run": "echo ok > out/o", "outputs": ["o"]}'
	local id
	id=$(wait_new_run p)
	[ "$(run_status "$id")" = succeeded ]
	P=$BATS_TEST_TMPDIR/payloads
	mkdir -p "$P"
}

teardown() {
	flowy_teardown
}

# payload NAME PRINTF_FORMAT: write payload NAME (bytes given as for printf).
payload() {
	printf "$2" >"$P/$1"
}

# make_payloads: one file per hostile command, names in PAYLOADS (in order).
make_payloads() {
	PAYLOADS=()
	local n=0
	add() {
		n=$((n + 1))
		local name
		name=$(printf '%02d-%s' "$n" "$1")
		payload "$name" "$2"
		PAYLOADS+=("$name")
	}
	add run-param 'run alpha=0.01\n'
	add run-eq 'run =\n'
	add run-a-b-c 'run a=b=c\n'
	add rerun-bare 'rerun\n'
	add rerun-dotdot 'rerun ../x\n'
	add rerun-nosuchstep 'rerun nosuchstep\n'
	add cancel-999999 'cancel 999999\n'
	add pause-abc 'pause abc\n'
	add resume 'resume\n'
	n=$((n + 1))
	{ head -c 102400 /dev/zero | tr '\0' a; echo; } >"$P/$(printf %02d $n)-100k-line"
	PAYLOADS+=("$(printf %02d $n)-100k-line")
	add bytes-00-ff-01 '\000\377\001'
	add sweep-lr 'sweep lr=\n'
	add retry-bare 'retry\n'
	add retry-0 'retry 0\n'
	add empty ''
	add newlines '\n\n\n\n'
	n=$((n + 1))
	yes run | head -n 200 >"$P/$(printf %02d $n)-200-runs"
	PAYLOADS+=("$(printf %02d $n)-200-runs")
}

# newest_run: the highest run id of pipeline p (0 when none).
newest_run() {
	local id
	id=$(latest_run_of p)
	echo "${id:-0}"
}

# revive: after the daemon died, reap it, drop its dead mount, mount again.
revive() {
	wait "$FLOWY_PID" 2>/dev/null || true
	FLOWY_PID=
	rm -f "$BATS_TEST_TMPDIR/daemon.pid"
	fusermount3 -uz "$mnt" 2>/dev/null || true
	mount_flowy
}

# try_payload NAME: one hostile command and the checks after it; appends
# problems to $PROBLEMS (none when all is well). The daemon is alive after.
try_payload() {
	local name=$1 rc=0 before st
	exec 4>>"$PROBLEMS"
	bash -c 'cat "$1" > "$2"' _ "$P/$name" "$mnt/pipelines/p/.ctl" 2>/dev/null || rc=$?
	echo "$name: write status $rc" >&2
	if ! daemon_alive 2>/dev/null; then
		echo >&4 "$name: the daemon died (last log lines: $(tail -n 2 "$BATS_TEST_TMPDIR/daemon.log" | tr '\n' ' '))"
		revive >&2
		exec 4>&-
		return 0
	fi
	if [ "$rc" -ne 0 ]; then
		echo refused >>"$BATS_TEST_TMPDIR/refused"
		if ! grep -q '^last command:' "$mnt/pipelines/p/.status"; then
			echo >&4 "$name: refused, but .status has no line starting 'last command:' ($(tr '\n' '|' <"$mnt/pipelines/p/.status"))"
		fi
	fi
	# Whatever the command queued may take a while (200 runs); a plain
	# run queued after it must still happen and succeed (bounded: 300 s).
	before=$(newest_run)
	if ! echo run >"$mnt/pipelines/p/.ctl"; then
		echo >&4 "$name: a plain 'echo run > .ctl' afterwards failed"
	elif ! RUN_WAIT=3000 wait_new_run p "$before" >/dev/null ||
		! st=$(RUN_WAIT=3000 wait_run "$(newest_run)"); then
		echo >&4 "$name: the run queued afterwards did not finish"
	elif [ "$st" != succeeded ]; then
		echo >&4 "$name: the run queued afterwards ended $st"
	fi
	if ! daemon_alive 2>/dev/null; then
		echo >&4 "$name: the daemon died after the plain run"
		revive >&2
	fi
	exec 4>&-
	return 0
}

@test "hostile .ctl commands: the daemon survives, refusals show in .status, run still works" {
	make_payloads
	local name
	PROBLEMS=$BATS_TEST_TMPDIR/problems
	: >"$PROBLEMS"
	for name in "${PAYLOADS[@]}"; do
		try_payload "$name"
	done
	if [ -s "$PROBLEMS" ]; then
		echo "--- problems:" >&2
		cat "$PROBLEMS" >&2
		return 1
	fi
	# The list holds commands that cannot be right (rerun of a step that does
	# not exist...): some of them must have been refused.
	[ -s "$BATS_TEST_TMPDIR/refused" ]
}
