#!/usr/bin/env bats
# hooks.bats - hooks/ through the mount: a read-write directory kept in
# the store, executables run on events with the event as JSON, the
# example log hook on a run with a failing step, and hooks that hang,
# crash, flood or cannot run, which change nothing but hooks/.log and
# hooks/.out/.

load helpers
load safety_helpers

setup() {
	export HOME=$BATS_TEST_TMPDIR/home
	mkdir -p "$HOME"
	mount_flowy --hook-timeout 1
	H=$mnt/hooks
	P=$mnt/pipelines
	REPO=$BATS_TEST_DIRNAME/../..
}

teardown() {
	if [ -n "${WEB_PID:-}" ]; then
		kill "$WEB_PID" 2>/dev/null || true
		wait "$WEB_PID" 2>/dev/null || true
	fi
	flowy_teardown
}

# hook NAME BODY: an executable shell script hooks/NAME.
hook() {
	printf '#!/bin/sh\n%s\n' "$2" >"$H/$1"
	chmod +x "$H/$1"
}

# pipeline_off P: an empty pipeline directory that only .ctl runs.
pipeline_off() {
	mkdir -p "$P/$1"
	echo '{"autorun": false}' >"$P/$1/pipeline.json"
}

# log_has N: hooks/.log has N lines besides its header.
log_has() {
	[ "$(($(wc -l <"$H/.log") - 1))" -ge "$1" ]
}

# hook_log HOOK: event and exit of HOOK's lines in hooks/.log, in order.
hook_log() {
	awk -F'\t' -v h="$1" 'NR > 1 && $3 == h {print $2 " " $4}' "$H/.log"
}

# lines_of FILE N: wait until FILE has N lines (bounded).
lines_of() {
	[ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]
}

@test "hooks/ is read-write, shows .log and .out, keeps its files across a remount" {
	run ls -A "$H"
	expect_eq "$output" $'.log\n.out'
	expect_eq "$(cat "$H/.log")" $'time\tevent\thook\texit\tduration'
	hook run-failed.sh 'echo failed'
	mkdir "$H/lib"
	echo data >"$H/lib/conf"
	mv "$H/run-failed.sh" "$H/run-failed.notify"
	expect_eq "$(stat -c %a "$H/run-failed.notify")" 755
	[ -f "$store/hooks/run-failed.notify" ]
	run sh -c "echo x > '$H/.log'"
	expect_contains "$output" "Permission denied"
	run rm "$H/.log"
	expect_contains "$output" "Operation not permitted"
	run sh -c "echo x > '$H/.out/x'"
	[ "$status" -ne 0 ]
	run ln -s /etc/passwd "$H/pw"
	expect_contains "$output" "Operation not permitted"
	remount_flowy --hook-timeout 1
	run ls -A "$H"
	expect_eq "$output" $'.log\n.out\nlib\nrun-failed.notify'
	expect_eq "$(cat "$H/lib/conf")" data
}

@test "the example log hook sees the exact events of a run with a failing step, in order" {
	cp "$REPO/hooks/any.log" "$H/"
	pipeline_off f
	write_step f make '{"run": "echo x > out/a", "outputs": ["a"]}'
	write_step f use '{"run": "echo broken >&2; exit 3", "inputs": ["a"], "outputs": ["b"]}'
	echo run >"$P/f/.ctl"
	local id
	id=$(wait_new_run f)
	expect_eq "$(run_status "$id")" failed
	wait_for "$RUN_WAIT" lines_of "$HOME/flowyfs-events.log" 8
	sleep 0.3 # nothing more may come
	expect_eq "$(cut -f2- "$HOME/flowyfs-events.log")" \
"run-queued	f	$id	-	queued
run-started	f	$id	-	running
step-started	f	$id	make	running
step-succeeded	f	$id	make	succeeded
artifact-published	f	$id	make	-
step-started	f	$id	use	running
step-failed	f	$id	use	failed
run-failed	f	$id	-	failed"
	expect_eq "$(hook_log any.log | tr '\n' ' ')" \
		"run-queued 0 run-started 0 step-started 0 step-succeeded 0 artifact-published 0 step-started 0 step-failed 0 run-failed 0 "
}

@test "a hook added after runs that no hook took gets the next run's events" {
	pipeline_off q
	write_step q make '{"run": "echo x > out/a", "outputs": ["a"]}'
	# hooks/ unchanged for over a second: the runner's listing of it (no
	# hooks) then holds, and the next runs' events are dropped where they
	# are emitted, without waking it.
	sleep 1.1
	local id
	for _ in 1 2; do
		echo run >"$P/q/.ctl"
		id=$(wait_new_run q)
		expect_eq "$(run_status "$id")" succeeded
	done
	expect_eq "$(tail -n +2 "$H/.log")" ""
	hook step-succeeded.sh 'echo "$FLOWY_EVENT $FLOWY_RUN $FLOWY_STEP" >> "$HOME/took"'
	echo rerun make >"$P/q/.ctl"
	id=$(wait_new_run q)
	expect_eq "$(run_status "$id")" succeeded
	wait_for "$RUN_WAIT" lines_of "$HOME/took" 1
	expect_eq "$(cat "$HOME/took")" "step-succeeded $id make"
}

@test "a hook gets the event as JSON on stdin and FLOWY_* in its environment" {
	hook step-succeeded.json 'cat >> "$HOME/ev.json"; echo "$FLOWY_EVENT|$FLOWY_RUN|$FLOWY_PIPELINE|$FLOWY_STEP|$FLOWY_HOOK" >> "$HOME/env"'
	hook run-failed 'cat >> "$HOME/ev.json"; echo "$FLOWY_EVENT|$FLOWY_RUN|$FLOWY_PIPELINE|$FLOWY_STEP|$FLOWY_HOOK" >> "$HOME/env"'
	hook artifact-published.json 'cat >> "$HOME/art.json"'
	pipeline_off j
	echo '{"autorun": false, "params": {"lr": 0.5}}' >"$P/j/pipeline.json"
	write_step j s '{"run": "echo \"{\\\"acc\\\": 0.25}\" >> $FLOWY_METRICS; echo \"{\\\"acc\\\": 0.75}\" >> $FLOWY_METRICS; echo hi > out/o", "outputs": ["o"], "params": ["lr"]}'
	write_step j t '{"run": "exit 1", "inputs": ["o"]}'
	echo run >"$P/j/.ctl"
	local id
	id=$(wait_new_run j)
	wait_for "$RUN_WAIT" lines_of "$HOME/env" 2
	wait_for "$RUN_WAIT" lines_of "$HOME/art.json" 1
	local h
	h=$(readlink "$mnt/runs/$id/steps/s/outputs/o")
	h=${h##*/}
	# Two hooks run side by side (each in its own event order): their lines
	# may come in either order, so compare them sorted.
	expect_eq "$(sort "$HOME/env")" "run-failed|$id|j||run-failed
step-succeeded|$id|j|s|step-succeeded.json"
	# Times vary: compare everything else exactly.
	expect_eq "$(sed 's/"time":"[^"]*"/"time":T/' "$HOME/ev.json" | sort)" \
"{\"event\":\"run-failed\",\"time\":T,\"pipeline\":\"j\",\"run\":$id,\"step\":null,\"status\":\"failed\",\"error\":\"t: step exited with status 1\",\"params\":{\"lr\":0.5},\"outputs\":{},\"metrics\":{}}
{\"event\":\"step-succeeded\",\"time\":T,\"pipeline\":\"j\",\"run\":$id,\"step\":\"s\",\"status\":\"succeeded\",\"error\":null,\"params\":{\"lr\":0.5},\"outputs\":{\"o\":\"sha256:$h\"},\"metrics\":{\"acc\":0.75}}"
	expect_eq "$(sed 's/"time":"[^"]*"/"time":T/' "$HOME/art.json")" \
"{\"event\":\"artifact-published\",\"time\":T,\"pipeline\":\"j\",\"run\":$id,\"step\":\"s\",\"status\":null,\"error\":null,\"params\":{\"lr\":0.5},\"outputs\":{\"o\":\"sha256:$h\"},\"metrics\":{\"acc\":0.75},\"output\":\"o\",\"hash\":\"sha256:$h\"}"
}

@test "hooks that hang, crash, flood or are not executable change nothing but hooks/.log and .out" {
	hook run-started.hang 'echo waiting; exec sleep 60'
	hook run-started.crash 'kill -SEGV $$'
	hook run-started.flood 'head -c 10000000 /dev/zero | tr "\0" y; exit 4'
	printf '#!/bin/sh\necho never\n' >"$H/run-started.noexec"
	hook any.count 'cat > /dev/null; echo "$FLOWY_EVENT" >> "$HOME/count"'
	pipeline_off iso
	write_step iso s '{"run": "echo ok > out/o", "outputs": ["o"]}'
	local t0 t1 id
	t0=$(date +%s%N)
	echo run >"$P/iso/.ctl"
	id=$(wait_new_run iso)
	t1=$(date +%s%N)
	expect_eq "$(run_status "$id")" succeeded
	# The run did not wait for the hanging hook (timeout 1 s, then TERM).
	[ $(((t1 - t0) / 1000000)) -lt 900 ]
	wait_for "$RUN_WAIT" log_has 10
	expect_eq "$(hook_log run-started.hang)" "run-started timeout"
	expect_eq "$(hook_log run-started.crash)" "run-started 139"
	expect_eq "$(hook_log run-started.flood)" "run-started 4"
	expect_eq "$(hook_log run-started.noexec)" "run-started not-executable"
	expect_eq "$(hook_log any.count | tr '\n' ' ')" \
		"run-queued 0 run-started 0 step-started 0 step-succeeded 0 artifact-published 0 run-succeeded 0 "
	local d
	d=$(awk -F'\t' '$3 == "run-started.hang" {print $5}' "$H/.log")
	[ "${d%.*}" -ge 1 ] && [ "${d%.*}" -lt 4 ]
	expect_eq "$(cat "$H/.out/run-started.hang")" $'waiting\n[flowyfs: stopped after the 1s timeout]'
	expect_eq "$(head -c 65536 "$H/.out/run-started.flood" | tr -d y | wc -c)" 0
	expect_eq "$(tail -n 1 "$H/.out/run-started.flood")" \
		"[flowyfs: output cut at 65536 bytes, 9934464 more dropped]"
	expect_eq "$(cat "$H/.out/run-started.noexec")" \
		"not executable (mode 0644): chmod +x hooks/run-started.noexec to run it"
	run cat "$H/.out/run-started.nothere"
	expect_contains "$output" "No such file or directory"
}

@test "a hook cannot see the store and the mount is read-only for it" {
	hook run-succeeded.iso "ls -A '$store' | wc -l; touch '$mnt/pipelines/x' 2>&1; pwd"
	pipeline_off q
	write_step q s '{"run": "echo ok > out/o", "outputs": ["o"]}'
	echo run >"$P/q/.ctl"
	wait_new_run q >/dev/null
	wait_for "$RUN_WAIT" log_has 1
	expect_eq "$(hook_log run-succeeded.iso)" "run-succeeded 0"
	expect_eq "$(cat "$H/.out/run-succeeded.iso")" \
"0
touch: cannot touch '$mnt/pipelines/x': Read-only file system
/"
	[ ! -e "$P/x" ]
}

@test "20 hooks of one event run side by side, each once" {
	local i
	for ((i = 0; i < 20; i++)); do
		hook "run-started.h$i" 'sleep 0.5; echo "$FLOWY_HOOK"'
	done
	pipeline_off many
	write_step many s '{"run": "true"}'
	local t0=$SECONDS
	echo run >"$P/many/.ctl"
	wait_new_run many >/dev/null
	wait_for "$RUN_WAIT" log_has 20
	# One after the other they would take 10 s.
	[ $((SECONDS - t0)) -lt 6 ]
	expect_eq "$(awk -F'\t' 'NR > 1 {print $2, $4}' "$H/.log" | sort | uniq -c | awk '{print $1, $2, $3}')" \
		"20 run-started 0"
	for ((i = 0; i < 20; i++)); do
		expect_eq "$(cat "$H/.out/run-started.h$i")" "run-started.h$i"
	done
}

# status_is ID S: run ID's status is S.
status_is() {
	[ "$(cat "$mnt/runs/$1/status")" = "$2" ]
}

@test "retry, pause, resume and cancel events reach hooks with their exact JSON" {
	hook any.json 'cat >> "$HOME/all.json"'
	pipeline_off r
	write_step r r '{"run": "echo no >&2; exit 5", "retries": 1}'
	echo run >"$P/r/.ctl"
	expect_eq "$(cat "$P/r/.latest/wait")" failed
	pipeline_off c
	write_step c c '{"run": "sleep 20"}'
	echo run >"$P/c/.ctl"
	local id
	id=$(latest_run_of c)
	wait_for "$RUN_WAIT" test "$(cat "$mnt/runs/$id/steps/c/status")" = running
	echo pause >"$P/c/.ctl"
	wait_for "$RUN_WAIT" status_is "$id" paused
	echo resume >"$P/c/.ctl"
	wait_for "$RUN_WAIT" status_is "$id" running
	echo cancel >"$P/c/.ctl"
	expect_eq "$(cat "$mnt/runs/$id/wait")" cancelled
	wait_for "$RUN_WAIT" lines_of "$HOME/all.json" 14
	sleep 0.3 # nothing more may come
	local e='"params":{},"outputs":{},"metrics":{}}'
	expect_eq "$(sed 's/"time":"[^"]*"/"time":T/' "$HOME/all.json")" \
"{\"event\":\"run-queued\",\"time\":T,\"pipeline\":\"r\",\"run\":1,\"step\":null,\"status\":\"queued\",\"error\":null,$e
{\"event\":\"run-started\",\"time\":T,\"pipeline\":\"r\",\"run\":1,\"step\":null,\"status\":\"running\",\"error\":null,$e
{\"event\":\"step-started\",\"time\":T,\"pipeline\":\"r\",\"run\":1,\"step\":\"r\",\"status\":\"running\",\"error\":null,$e
{\"event\":\"step-retry\",\"time\":T,\"pipeline\":\"r\",\"run\":1,\"step\":\"r\",\"status\":\"running\",\"error\":\"step exited with status 5\",$e
{\"event\":\"step-started\",\"time\":T,\"pipeline\":\"r\",\"run\":1,\"step\":\"r\",\"status\":\"running\",\"error\":null,$e
{\"event\":\"step-failed\",\"time\":T,\"pipeline\":\"r\",\"run\":1,\"step\":\"r\",\"status\":\"failed\",\"error\":\"step exited with status 5\",$e
{\"event\":\"run-failed\",\"time\":T,\"pipeline\":\"r\",\"run\":1,\"step\":null,\"status\":\"failed\",\"error\":\"r: step exited with status 5\",$e
{\"event\":\"run-queued\",\"time\":T,\"pipeline\":\"c\",\"run\":$id,\"step\":null,\"status\":\"queued\",\"error\":null,$e
{\"event\":\"run-started\",\"time\":T,\"pipeline\":\"c\",\"run\":$id,\"step\":null,\"status\":\"running\",\"error\":null,$e
{\"event\":\"step-started\",\"time\":T,\"pipeline\":\"c\",\"run\":$id,\"step\":\"c\",\"status\":\"running\",\"error\":null,$e
{\"event\":\"run-paused\",\"time\":T,\"pipeline\":\"c\",\"run\":$id,\"step\":null,\"status\":\"paused\",\"error\":null,$e
{\"event\":\"run-resumed\",\"time\":T,\"pipeline\":\"c\",\"run\":$id,\"step\":null,\"status\":\"running\",\"error\":null,$e
{\"event\":\"step-failed\",\"time\":T,\"pipeline\":\"c\",\"run\":$id,\"step\":\"c\",\"status\":\"failed\",\"error\":\"cancelled\",$e
{\"event\":\"run-cancelled\",\"time\":T,\"pipeline\":\"c\",\"run\":$id,\"step\":null,\"status\":\"cancelled\",\"error\":null,$e"
}

@test "hooks kept in the store run again after a remount" {
	hook run-failed.note 'echo "failed: $FLOWY_PIPELINE"'
	remount_flowy --hook-timeout 1
	pipeline_off k
	write_step k s '{"run": "exit 1"}'
	echo run >"$P/k/.ctl"
	expect_eq "$(cat "$P/k/.latest/wait")" failed
	wait_for "$RUN_WAIT" log_has 1
	expect_eq "$(hook_log run-failed.note)" "run-failed 0"
	expect_eq "$(cat "$H/.out/run-failed.note")" "failed: k"
}

@test "the example webhook posts a Slack-style JSON body with curl" {
	command -v python3 >/dev/null || skip "no python3 for the test's web server"
	command -v curl >/dev/null || skip "no curl"
	# A one-request web server on a free port, recording the body.
	python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers["Content-Length"])
        open(sys.argv[1], "wb").write(self.rfile.read(n))
        open(sys.argv[1] + ".type", "w").write(self.headers["Content-Type"])
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[2], "w").write(str(s.server_port))
s.timeout = 20
s.handle_request()
' "$BATS_TEST_TMPDIR/body" "$BATS_TEST_TMPDIR/port" &
	WEB_PID=$!
	wait_for "$RUN_WAIT" test -s "$BATS_TEST_TMPDIR/port"
	sed "s|^URL=\$|URL=http://127.0.0.1:$(cat "$BATS_TEST_TMPDIR/port")/hook|" \
		"$REPO/hooks/any.webhook" >"$H/run-failed.webhook"
	chmod +x "$H/run-failed.webhook"
	pipeline_off wh
	write_step wh s '{"run": "exit 1"}'
	echo run >"$P/wh/.ctl"
	expect_eq "$(cat "$P/wh/.latest/wait")" failed
	wait_for "$RUN_WAIT" test -s "$BATS_TEST_TMPDIR/body"
	expect_eq "$(cat "$BATS_TEST_TMPDIR/body")" '{"text": "flowyfs: wh run 1: run-failed"}'
	expect_eq "$(cat "$BATS_TEST_TMPDIR/body.type")" application/json
	wait "$WEB_PID"
	WEB_PID=
	wait_for "$RUN_WAIT" log_has 1
	expect_eq "$(hook_log run-failed.webhook)" "run-failed 0"
}

@test "the notify-send and sendmail examples do nothing, successfully, where the tool is missing" {
	if PATH=/usr/local/bin:/usr/bin:/bin command -v notify-send >/dev/null ||
		PATH=/usr/local/bin:/usr/bin:/bin command -v sendmail >/dev/null ||
		[ -x /usr/sbin/sendmail ]; then
		skip "notify-send or sendmail is installed: they would really send"
	fi
	cp "$REPO/hooks/run-failed.notify" "$REPO/hooks/run-failed.mail" "$H/"
	pipeline_off nm
	write_step nm s '{"run": "exit 1"}'
	echo run >"$P/nm/.ctl"
	expect_eq "$(cat "$P/nm/.latest/wait")" failed
	wait_for "$RUN_WAIT" log_has 2
	expect_eq "$(hook_log run-failed.notify)" "run-failed 0"
	expect_eq "$(hook_log run-failed.mail)" "run-failed 0"
	expect_eq "$(cat "$H/.out/run-failed.notify" "$H/.out/run-failed.mail")" ""
}
