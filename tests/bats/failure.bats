#!/usr/bin/env bats
# failure.bats - failing steps, bad outputs, retries and timeouts.

load helpers

setup() {
	mount_flowy
}

teardown() {
	flowy_teardown
}

@test "a failing step: failed, exit_code, log, downstream skipped, run failed" {
	local s=$mnt/pipelines/.f
	mkdir "$s"
	printf '%s\n' '{"run": "echo hello-from-a; echo oops >&2; exit 3", "outputs": ["a"]}' >"$s/a.json"
	printf '%s\n' '{"run": "cp in/a out/b", "inputs": ["a"], "outputs": ["b"]}' >"$s/b.json"
	printf '%s\n' '{"run": "echo independent > out/c", "outputs": ["c"]}' >"$s/c.json"
	mv "$s" "$mnt/pipelines/f"
	local id
	id=$(wait_new_run f)
	[ "$(cat "$mnt/runs/$id/status")" = failed ]
	[ "$(step_file "$id" a status)" = failed ]
	[ "$(step_file "$id" a exit_code)" = 3 ]
	[ "$(step_file "$id" a attempts)" = 1 ]
	[ "$(step_file "$id" a error)" = "step exited with status 3" ]
	run step_file "$id" a log
	[ "${lines[0]}" = hello-from-a ]
	[ "${lines[1]}" = oops ]
	[[ $output == *"exited with status 3"* ]]
	[ "$(step_file "$id" b status)" = skipped ]
	[ "$(step_file "$id" b attempts)" = 0 ]
	[ "$(step_file "$id" b log)" = "" ]
	[ "$(step_file "$id" b reason)" = "upstream step a failed" ]
	# An independent step still ran.
	[ "$(step_file "$id" c status)" = succeeded ]
	[ "$(cat "$mnt/artifacts/f/c")" = independent ]
	# Nothing was published for the failed and skipped steps.
	[ ! -e "$mnt/artifacts/f/a" ]
	[ ! -L "$mnt/artifacts/f/a" ]
	[ ! -e "$mnt/artifacts/f/b" ]
	[ ! -L "$mnt/artifacts/f/b" ]
	[ -z "$(ls -A "$mnt/runs/$id/steps/a/outputs")" ]
	run awk -F'\t' '{ print $1 "|" $2 "|" $5 }' "$mnt/runs/$id/summary"
	expect_eq "$output" $'step|status|outputs\na|failed|\nb|skipped|\nc|succeeded|c' summary
	expect_eq "$(tail -n 1 "$mnt/pipelines/f/.status")" \
		"last run: $id failed (a: step exited with status 3)" ".status"
	expect_eq "$(cat "$mnt/runs/$id/error")" "a: step exited with status 3" "run error"
	[ "$(head -n 1 "$mnt/pipelines/f/.status")" = valid ]
}

@test "skipping a step does not make the daemon log internal errors" {
	write_step g a '{"run": "exit 1", "outputs": ["a"]}'
	write_step g b '{"run": "cp in/a out/b", "inputs": ["a"], "outputs": ["b"]}'
	local id
	id=$(wait_new_run g)
	[ "$(step_file "$id" b status)" = skipped ]
	run grep -i 'sqlite\|constraint' "$BATS_TEST_TMPDIR/daemon.log"
	[ "$status" -ne 0 ]
}

@test "a step killed by a signal reports 128+N" {
	write_step k a '{"run": "kill -9 $$", "outputs": ["a"]}'
	local id
	id=$(wait_new_run k)
	[ "$(step_file "$id" a status)" = failed ]
	[ "$(step_file "$id" a exit_code)" = 137 ]
}

@test "an output symlink pointing outside out/ fails the step" {
	write_step sl a '{"run": "ln -s /etc/passwd out/x", "outputs": ["x"]}'
	local id
	id=$(wait_new_run sl)
	[ "$(cat "$mnt/runs/$id/status")" = failed ]
	[ "$(step_file "$id" a status)" = failed ]
	[ "$(step_file "$id" a error)" = "out/x: symlink points outside out/ (-> /etc/passwd)" ]
	[[ $(step_file "$id" a log) == *"out/x: symlink points outside out/ (-> /etc/passwd)"* ]]
	[ ! -L "$mnt/artifacts/sl/x" ]
}

@test "a relative symlink escaping out/ through .. fails the step" {
	write_step sl a '{"run": "mkdir out/d && ln -s ../../in out/d/up", "outputs": ["d"]}'
	local id
	id=$(wait_new_run sl)
	[ "$(step_file "$id" a status)" = failed ]
	[[ $(step_file "$id" a error) == "out/d/up: symlink points outside out/ (-> ../../in)" ]]
}

@test "a relative symlink inside out/ in a directory output is kept and readable" {
	write_step sl a '{"run": "mkdir -p out/d/sub && echo hi > out/d/sub/f && ln -s sub/f out/d/link", "outputs": ["d"]}'
	local id
	id=$(wait_new_run sl)
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
	[ -L "$mnt/artifacts/sl/d/link" ]
	[ "$(readlink "$mnt/artifacts/sl/d/link")" = sub/f ]
	[ "$(cat "$mnt/artifacts/sl/d/link")" = hi ]
	[ "$(cat "$mnt/artifacts/sl/d/sub/f")" = hi ]
}

@test "a step not writing its declared output fails" {
	write_step no a '{"run": "echo nothing; echo > out/y", "outputs": ["y", "z"]}'
	local id
	id=$(wait_new_run no)
	[ "$(cat "$mnt/runs/$id/status")" = failed ]
	[ "$(step_file "$id" a status)" = failed ]
	[ "$(step_file "$id" a exit_code)" = 0 ]
	[ "$(step_file "$id" a error)" = "step did not write its output out/z" ]
	run step_file "$id" a log
	[ "${lines[0]}" = nothing ]
	[[ $output == *"did not write its output out/z"* ]]
	# The output it did write is not published either.
	[ ! -L "$mnt/artifacts/no/y" ]
}

@test "a step failing on its first attempt succeeds on retry with attempts=2" {
	local marker=$BATS_TEST_TMPDIR/retry.marker
	write_step r a "{\"run\": \"if [ -e $marker ]; then echo second > out/r; else touch $marker; echo first-fail; exit 1; fi\", \"outputs\": [\"r\"], \"retries\": 2}"
	local id
	id=$(wait_new_run r)
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
	[ "$(step_file "$id" a status)" = succeeded ]
	[ "$(step_file "$id" a attempts)" = 2 ]
	[ "$(step_file "$id" a exit_code)" = 0 ]
	[ "$(step_file "$id" a error)" = "" ]
	[[ $(step_file "$id" a log) == *first-fail* ]]
	[ "$(cat "$mnt/artifacts/r/r")" = second ]
}

@test "retries exhausted: attempts = retries + 1, step failed" {
	local count=$BATS_TEST_TMPDIR/count
	write_step r a "{\"run\": \"echo x >> $count; exit 7\", \"outputs\": [\"r\"], \"retries\": 2}"
	local id
	id=$(wait_new_run r)
	[ "$(cat "$mnt/runs/$id/status")" = failed ]
	[ "$(step_file "$id" a attempts)" = 3 ]
	[ "$(step_file "$id" a exit_code)" = 7 ]
	[ "$(wc -l <"$count")" -eq 3 ]
}

@test "a step exceeding its timeout fails with timed out" {
	local pidf=$BATS_TEST_TMPDIR/sleep.pid
	write_step t a "{\"run\": \"echo \$\$ > $pidf; exec sleep 30\", \"outputs\": [\"r\"], \"timeout\": 1}"
	local id
	id=$(wait_new_run t)
	[ "$(cat "$mnt/runs/$id/status")" = failed ]
	[ "$(step_file "$id" a status)" = failed ]
	[[ $(step_file "$id" a error) == *"timed out"* ]]
	[[ $(step_file "$id" a log) == *"timed out"* ]]
	[ "$(step_file "$id" a exit_code)" -gt 128 ]
	! kill -0 "$(cat "$pidf")" 2>/dev/null || false
}

@test "a failure does not stop later runs of the pipeline" {
	write_step fx a '{"run": "exit 1", "outputs": ["a"]}'
	local id
	id=$(wait_new_run fx)
	[ "$(cat "$mnt/runs/$id/status")" = failed ]
	write_step fx a '{"run": "echo fixed > out/a", "outputs": ["a"]}'
	local id2
	id2=$(wait_new_run fx "$id")
	[ "$(cat "$mnt/runs/$id2/status")" = succeeded ]
	[ "$(cat "$mnt/artifacts/fx/a")" = fixed ]
	# A rerun after a failure is never served from a cache of the failure.
	[ "$(step_file "$id2" a cached)" = no ]
}
