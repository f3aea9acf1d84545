#!/usr/bin/env bats
# validation.bats - every validation error, exactly as .status reports it;
# invalid pipelines never run; .ctl and mkdir refuse bad input.

load helpers

setup() {
	mount_flowy
}

teardown() {
	flowy_teardown
}

NAME_RULE='names are [A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128 bytes'

# put P FILE CONTENT: write pipelines/P/FILE (printf %b, so \n works).
put() {
	mkdir -p "$mnt/pipelines/$1"
	printf '%b' "$3" >"$mnt/pipelines/$1/$2"
}

# status_is P EXPECTED: .status of P is exactly EXPECTED.
status_is() {
	run cat "$mnt/pipelines/$1/.status"
	[ "$status" -eq 0 ]
	expect_eq "$output" "$2" "pipelines/$1/.status"
}

@test "a valid pipeline says valid" {
	put ok s.json '{"run": "echo hi > out/o", "outputs": ["o"]}\n'
	wait_new_run ok >/dev/null
	status_is ok "valid
last run: 1 succeeded"
}

@test "a .status read while the pipeline validates shows that validation's result" {
	# A 400-step chain moved into place: the scheduler validates it at
	# once; the read that comes meanwhile waits for it.
	mkdir "$mnt/pipelines/.v"
	echo '{"autorun": false}' >"$mnt/pipelines/.v/pipeline.json"
	awk -v dir="$mnt/pipelines/.v" 'BEGIN {
		for (i = 0; i < 400; i++) {
			f = sprintf("%s/s%03d.json", dir, i)
			if (i) printf "{\"run\": \"cat in/o%03d > out/o%03d\", \"inputs\": [\"o%03d\"], \"outputs\": [\"o%03d\"]}\n", i - 1, i, i - 1, i > f
			else printf "{\"run\": \"echo > out/o000\", \"outputs\": [\"o000\"]}\n" > f
			close(f)
		}
	}'
	mv "$mnt/pipelines/.v" "$mnt/pipelines/v"
	status=$(cat "$mnt/pipelines/v/.status")
	expect_eq "$(head -1 <<<"$status")" valid "first line of .status"
	expect_eq "$(tail -1 <<<"$status")" "last run: none" "last line of .status"
	! grep -q null <<<"$status"
}

@test "malformed JSON: file:line:col of the error" {
	put p s.json '{\n  "run": "true",\n  "outputs": ["a" "b"]\n}\n'
	status_is p "invalid
s.json:3:19: JSON syntax error near '\"b\"]'
last run: none"
}

@test "a trailing comma is reported at the comma" {
	put p s.json '{\n  "run": "true",\n  "outputs": ["a",]\n}\n'
	status_is p "invalid
s.json:3:18: JSON syntax error: trailing comma before ']'
last run: none"
	put p s.json '{\n  "run": "true",\n  "outputs": ["a"],\n}\n'
	status_is p "invalid
s.json:3:19: JSON syntax error: trailing comma before '}'
last run: none"
}

@test "malformed JSON: truncated file" {
	put p s.json '{"run": "true"'
	run cat "$mnt/pipelines/p/.status"
	[ "${lines[0]}" = invalid ]
	[[ ${lines[1]} =~ ^s\.json:1:[0-9]+:\ JSON\ syntax\ error ]]
	[ "${lines[-1]}" = "last run: none" ]
}

@test "unknown key" {
	put p s.json '{"run": "true", "bogus": 1}\n'
	status_is p 'invalid
s.json:1:17: unknown key "bogus"
last run: none'
}

@test "an unknown key that is a near miss says what was meant" {
	put p train.json '{\n  "run": "true",\n  "inputs": [],\n  "ouputs": ["model"],\n  "Timeout": 5\n}\n'
	status_is p 'invalid
train.json:4:3: unknown key "ouputs" (did you mean "outputs"?)
train.json:5:3: unknown key "Timeout" (did you mean "timeout"?)
last run: none'
	put p pipeline.json '{"autorn": false}\n'
	put p train.json '{"run": "true", "resources": {"cpu": 2}}\n'
	status_is p 'invalid
pipeline.json:1:2: unknown key "autorn" (did you mean "autorun"?)
train.json:1:31: unknown key "cpu" (did you mean "cpus"?)
last run: none'
}

@test "a bad when" {
	put p s.json '{"run": "true", "when": ""}\n'
	status_is p 'invalid
s.json:1:17: "when" must be a non-empty string (a shell command: exit 0 runs the step, 1 skips it)
last run: none'
	put p s.json '{"run": "true", "when": ["test", "-e", "x"]}\n'
	status_is p 'invalid
s.json:1:17: "when" must be a non-empty string (a shell command: exit 0 runs the step, 1 skips it)
last run: none'
}

@test "a bad foreach" {
	put p pipeline.json '{"params": {"lr": 0.1}}\n'
	put p a.json '{"run": "true", "outputs": ["shards"]}\n'
	put p s.json '{\n  "run": "true",\n  "inputs": ["shards"],\n  "params": ["lr"],\n  "foreach": "shard"\n}\n'
	status_is p 'invalid
s.json:5:3: "foreach": "shard" is not one of the step'"'"'s inputs (write "param:shard" for a param)
last run: none'
	put p s.json '{\n  "run": "true",\n  "inputs": ["shards"],\n  "params": ["lr"],\n  "foreach": "param:lr",\n  "concurrency": 0\n}\n'
	status_is p 'invalid
s.json:5:3: "foreach": param "lr" is not a list
s.json:6:3: "concurrency" must be a whole number of at least 1
last run: none'
	put p s.json '{"run": "true", "min_success": 0.5}\n'
	status_is p 'invalid
s.json:1:17: "min_success" needs "foreach"
last run: none'
}

@test "several problems of several kinds are listed at once" {
	put p a.json '{"run": "true", "inputs": ["b_out"], "outputs": ["a_out"]}\n'
	put p b.json '{"run": "true", "inputs": ["a_out"], "outputs": ["b_out"]}\n'
	put p c.json '{"run": "true", "inputs": ["nobody", "file:/nonexistent/flowyfs"], "outputs": ["a_out"], "executor": "k8s"}\n'
	put p d.json '{"run": "true", "retries": 1, "backof": 2, "resources": {"mem": "lots"}}\n'
	status_is p 'invalid
a.json: cycle: a -> b -> a
c.json:1:28: input "nobody" is not produced by any step
c.json:1:38: input "file:/nonexistent/flowyfs": no such file or directory
c.json:1:80: output "a_out" is produced by both "a" and "c"
c.json:1:90: "executor" must be "local" or "slurm"
d.json:1:31: unknown key "backof" (did you mean "backoff"?)
d.json:1:58: "mem" must be a size such as "8G" or "512M" (a whole number and K, M, G or T)
last run: none'
}

@test "the new keys of steps and pipeline.json validate" {
	put p pipeline.json '{"autorun": false, "executor": "local", "resources": {"cpus": 1, "time": "1:00:00"}, "slurm": {"partition": "cpu", "account": "ml", "args": ["--qos=low"]}, "alerts": [{"name": "slow", "duration_above": 60}], "params": {"seeds": [1, 2]}}\n'
	put p a.json '{"run": "true", "outputs": ["model"], "retries": 1, "backoff": 0.5, "when": "true", "params": ["seeds"], "foreach": "param:seeds", "concurrency": 2, "min_success": 0.5, "register": {"model": "churn"}, "executor": "local", "resources": {"mem": "512M", "gpus": 0, "partition": "cpu"}}\n'
	run head -n 1 "$mnt/pipelines/p/.status"
	expect_eq "$output" valid "pipelines/p/.status line 1"
}

@test "unknown key in pipeline.json" {
	put p pipeline.json '{"params": {}, "colour": "red"}\n'
	put p s.json '{"run": "true"}\n'
	status_is p 'invalid
pipeline.json:1:16: unknown key "colour"
last run: none'
}

@test "missing run" {
	put p s.json '{"outputs": ["a"]}\n'
	status_is p 'invalid
s.json:1:1: missing required key "run"
last run: none'
}

@test "bad step file name" {
	put p 'bad@name.json' '{"run": "true"}\n'
	status_is p "invalid
bad@name.json: invalid step name \"bad@name\" ($NAME_RULE)
last run: none"
}

@test "bad output name" {
	put p s.json '{"run": "true", "outputs": ["bad/name"]}\n'
	status_is p "invalid
s.json:1:29: invalid output name \"bad/name\" ($NAME_RULE)
last run: none"
}

@test "an output named .. is refused" {
	put p s.json '{"run": "true", "outputs": [".."]}\n'
	status_is p "invalid
s.json:1:29: invalid output name \"..\" ($NAME_RULE)
last run: none"
}

@test "input nobody produces" {
	put p s.json '{"run": "true", "inputs": ["nope"]}\n'
	status_is p 'invalid
s.json:1:28: input "nope" is not produced by any step
last run: none'
}

@test "two steps producing one name" {
	put p a.json '{"run": "true", "outputs": ["x"]}\n'
	put p b.json '{"run": "true", "outputs": ["x"]}\n'
	status_is p 'invalid
b.json:1:29: output "x" is produced by both "a" and "b"
last run: none'
}

@test "a cycle names the cycle" {
	put p a.json '{"run": "true", "inputs": ["y"], "outputs": ["x"]}\n'
	put p b.json '{"run": "true", "inputs": ["x"], "outputs": ["y"]}\n'
	status_is p 'invalid
a.json: cycle: a -> b -> a
last run: none'
}

@test "a step consuming its own output is a cycle" {
	put p c.json '{"run": "true", "inputs": ["x"], "outputs": ["x"]}\n'
	status_is p 'invalid
c.json:1:28: cycle: c -> c
last run: none'
}

@test "unknown param" {
	put p s.json '{"run": "true", "params": ["lr"]}\n'
	status_is p 'invalid
s.json:1:28: param "lr" is not in pipeline.json params'"
last run: none"
}

@test "a step file over 4 MiB, or with a NUL byte, is refused" {
	mkdir "$mnt/pipelines/p"
	head -c 5000000 /dev/zero | tr '\0' ' ' >"$mnt/pipelines/p/big.json"
	printf '{"run":"true"}\0' >"$mnt/pipelines/p/nul.json"
	status_is p 'invalid
big.json: file too large (more than 4 MiB)
nul.json:1:15: file contains a NUL byte
last run: none'
}

@test "a pipeline without steps is invalid" {
	mkdir "$mnt/pipelines/p"
	status_is p 'invalid
pipeline has no steps (write a <step>.json)
last run: none'
	put p notes.txt 'just code\n'
	status_is p 'invalid
pipeline has no steps (write a <step>.json)
last run: none'
}

@test "a step name over 128 bytes is refused, shown cut" {
	local long
	long=$(printf 'x%.0s' {1..129})
	put p "$long.json" '{"run": "true"}\n'
	run cat "$mnt/pipelines/p/.status"
	[ "${#lines[@]}" -eq 3 ]
	[ "${lines[0]}" = invalid ]
	# The name is shown cut (with ...) so the line stays readable.
	[[ ${lines[1]} =~ ^x{129}\.json:\ invalid\ step\ name\ \"x{20,128}\.\.\.\"\ \( ]]
	[[ ${lines[1]} == *"($NAME_RULE)" ]]
	[ "${lines[2]}" = "last run: none" ]
	# 128 bytes is fine.
	rm "$mnt/pipelines/p/$long.json"
	put p "${long:1}.json" '{"run": "true"}\n'
	[ "$(head -n 1 "$mnt/pipelines/p/.status")" = valid ]
}

@test "every error of a pipeline is listed, and fixing them makes it valid" {
	put p a.json '{"run": "true", "bogus": 1}\n'
	put p b.json '{"outputs": ["a"]}\n'
	status_is p 'invalid
a.json:1:17: unknown key "bogus"
b.json:1:1: missing required key "run"
last run: none'
	put p a.json '{"run": "true"}\n'
	put p b.json '{"run": "echo > out/a", "outputs": ["a"]}\n'
	wait_new_run p >/dev/null
	run head -n 1 "$mnt/pipelines/p/.status"
	[ "$output" = valid ]
}

@test "an invalid pipeline does not run" {
	put bad s.json '{"run": "echo ran > out/o", "outputs": ["o"], "bogus": 1}\n'
	put bad t.json '{"run": "true", "inputs": ["nope"]}\n'
	[ "$(head -n 1 "$mnt/pipelines/bad/.status")" = invalid ]
	# A valid pipeline changed afterwards: its run is queued after anything
	# the invalid one could have queued, so once it is done we know.
	put sentinel s.json '{"run": "echo > out/o", "outputs": ["o"]}\n'
	local id
	id=$(wait_new_run sentinel)
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
	[ -z "$(latest_run_of bad)" ]
	[ "$(run_count)" -eq 1 ]
	[ ! -e "$mnt/artifacts/bad/o" ]
	[ "$(tail -n 1 "$mnt/pipelines/bad/.status")" = "last run: none" ]
}

@test "echo run > .ctl on an invalid pipeline fails with EINVAL and starts nothing" {
	put bad s.json '{"run": "true", "bogus": 1}\n'
	run bash -c 'echo run > "$1"' _ "$mnt/pipelines/bad/.ctl"
	[ "$status" -ne 0 ]
	[[ $output == *"Invalid argument"* ]]
	put sentinel s.json '{"run": "echo > out/o", "outputs": ["o"]}\n'
	wait_new_run sentinel >/dev/null
	[ -z "$(latest_run_of bad)" ]
}

@test "an unknown .ctl command fails with EINVAL" {
	put p s.json '{"run": "echo > out/o", "outputs": ["o"]}\n'
	local id
	id=$(wait_new_run p)
	run bash -c 'echo bogus > "$1"' _ "$mnt/pipelines/p/.ctl"
	[ "$status" -ne 0 ]
	[[ $output == *"Invalid argument"* ]]
	run bash -c 'echo "rerun" > "$1"' _ "$mnt/pipelines/p/.ctl"
	[ "$status" -ne 0 ]
	[[ $output == *"Invalid argument"* ]]
	# Nothing was queued by the refused commands.
	put sentinel s.json '{"run": "echo > out/o", "outputs": ["o"]}\n'
	wait_new_run sentinel >/dev/null
	[ "$(latest_run_of p)" = "$id" ]
}

@test "reading .ctl gives Permission denied" {
	put p s.json '{"run": "true"}\n'
	run cat "$mnt/pipelines/p/.ctl"
	[ "$status" -ne 0 ]
	[[ $output == *"Permission denied"* ]]
}

@test "cancel, pause and resume with nothing to act on give ESRCH" {
	put p s.json '{"run": "echo > out/o", "outputs": ["o"]}\n'
	wait_new_run p >/dev/null
	for c in cancel pause resume; do
		run bash -c 'echo "$2" > "$1"' _ "$mnt/pipelines/p/.ctl" "$c"
		[ "$status" -ne 0 ]
		[[ $output == *"No such process"* ]]
	done
}

@test "mkdir of an invalid pipeline name fails with EINVAL" {
	local long
	long=$(printf 'a%.0s' {1..129})
	for n in 'bad@name' '-x' 'a b' "$long"; do
		run mkdir "$mnt/pipelines/$n"
		[ "$status" -ne 0 ]
		[[ $output == *"Invalid argument"* ]]
		[ ! -e "$mnt/pipelines/$n" ]
	done
	# 128 bytes is still fine.
	mkdir "$mnt/pipelines/${long:1}"
	[ -d "$mnt/pipelines/${long:1}" ]
}

@test "the daemon survives hostile step files" {
	put h s.json '\0\1\2 {{{{'
	put h t.json "$(printf '[%.0s' {1..5000})"
	put h u.json '{"run": 5, "outputs": "x", "inputs": [1], "params": 7}\n'
	put h v.json '{"run": "true", "outputs": ["../../etc/x"]}\n'
	put h w.json '{"run": "true", "inputs": ["file:relative"]}\n'
	run cat "$mnt/pipelines/h/.status"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = invalid ]
	[[ $output == *"s.json:"* ]]
	[[ $output == *"t.json:"* ]]
	[[ $output == *"u.json:"* ]]
	[[ $output == *"v.json:1:29: invalid output name \"../../etc/x\""* ]]
	[[ $output == *'w.json:1:28: input "file:relative": a file: path must be absolute'* ]]
	[ "${lines[-1]}" = "last run: none" ]
	# Still serving.
	put ok s.json '{"run": "echo > out/o", "outputs": ["o"]}\n'
	[ "$(wait_new_run ok | xargs -I{} cat "$mnt/runs/{}/status")" = succeeded ]
}
