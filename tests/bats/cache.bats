#!/usr/bin/env bats
# cache.bats - the cache key (definition, code, params, input hashes) and
# the reason recorded for every miss.

load helpers

setup() {
	mount_flowy
	# a: uses param n and a.sh only; b: consumes a's output, no code.
	local s=$mnt/pipelines/.c
	mkdir "$s"
	printf '%s\n' '{"params": {"n": 1, "m": 1}}' >"$s/pipeline.json"
	printf '%s\n' 'echo a' >"$s/a.sh"
	printf '%s\n' 'echo other' >"$s/other.sh"
	printf '%s\n' '{"run": "sh a.sh > out/x; echo $FLOWY_PARAM_n >> out/x", "outputs": ["x"], "params": ["n"], "code": ["a.sh"]}' >"$s/a.json"
	printf '%s\n' '{"run": "cat in/x > out/y", "inputs": ["x"], "outputs": ["y"], "code": []}' >"$s/b.json"
	mv "$s" "$mnt/pipelines/c"
	ID=$(wait_new_run c)
	[ "$(cat "$mnt/runs/$ID/status")" = succeeded ]
}

teardown() {
	flowy_teardown
}

# after_change: wait for the run queued by a change; sets ID to it.
after_change() {
	ID=$(wait_new_run c "$ID")
	[ "$(cat "$mnt/runs/$ID/status")" = succeeded ]
}

# st STEP: "status|cached|reason" of STEP in run $ID.
st() {
	echo "$(step_file "$ID" "$1" status)|$(step_file "$ID" "$1" cached)|$(step_file "$ID" "$1" reason)"
}

@test "first run: no earlier run" {
	[ "$(st a)" = "succeeded|no|no earlier run" ]
	[ "$(st b)" = "succeeded|no|no earlier run" ]
	[ "$(cat "$mnt/artifacts/c/y")" = "$(printf 'a\n1')" ]
}

@test "a param change: param n changed, then input x changed downstream" {
	printf '%s\n' '{"params": {"n": 2, "m": 1}}' >"$mnt/pipelines/c/pipeline.json"
	after_change
	[ "$(st a)" = "succeeded|no|param n changed" ]
	[ "$(st b)" = "succeeded|no|input x changed" ]
	[ "$(cat "$mnt/artifacts/c/y")" = "$(printf 'a\n2')" ]
}

@test "a change to a param the step does not use is not a miss" {
	printf '%s\n' '{"params": {"n": 1, "m": 2}}' >"$mnt/pipelines/c/pipeline.json"
	after_change
	[ "$(st a)" = "cached|yes|cached" ]
	[ "$(st b)" = "cached|yes|cached" ]
}

@test "a code file change: a.sh changed" {
	printf '%s\n' 'echo a2' >"$mnt/pipelines/c/a.sh"
	after_change
	[ "$(st a)" = "succeeded|no|a.sh changed" ]
	[ "$(st b)" = "succeeded|no|input x changed" ]
	[ "$(cat "$mnt/artifacts/c/y")" = "$(printf 'a2\n1')" ]
}

@test "a definition change: definition changed" {
	printf '%s\n' '{"run": "sh a.sh > out/x; echo $FLOWY_PARAM_n >> out/x; echo more >> out/x", "outputs": ["x"], "params": ["n"], "code": ["a.sh"]}' \
		>"$mnt/pipelines/c/a.json"
	after_change
	[ "$(st a)" = "succeeded|no|definition changed" ]
	[ "$(st b)" = "succeeded|no|input x changed" ]
	[ "$(cat "$mnt/artifacts/c/y")" = "$(printf 'a\n1\nmore')" ]
}

@test "a step with narrowed code is not rerun when an unrelated script changes" {
	printf '%s\n' 'echo changed' >"$mnt/pipelines/c/other.sh"
	after_change
	[ "$(st a)" = "cached|yes|cached" ]
	[ "$(st b)" = "cached|yes|cached" ]
}

@test "a step with default code reruns when any code file changes" {
	printf '%s\n' '{"run": "echo d > out/d", "outputs": ["d"]}' >"$mnt/pipelines/c/d.json"
	after_change
	[ "$(st d)" = "succeeded|no|no earlier run" ]
	printf '%s\n' 'echo changed' >"$mnt/pipelines/c/other.sh"
	after_change
	[ "$(st d)" = "succeeded|no|other.sh changed" ]
	[ "$(st a)" = "cached|yes|cached" ]
}

@test "an upstream rerun yielding identical bytes leaves downstream cached" {
	# Same output bytes, different definition.
	printf '%s\n' '{"run": "sh a.sh > out/x; echo $FLOWY_PARAM_n >> out/x; true", "outputs": ["x"], "params": ["n"], "code": ["a.sh"]}' \
		>"$mnt/pipelines/c/a.json"
	local prev_x
	prev_x=$(readlink "$mnt/artifacts/c/x")
	after_change
	[ "$(st a)" = "succeeded|no|definition changed" ]
	[ "$(st b)" = "cached|yes|cached" ]
	[ "$(readlink "$mnt/artifacts/c/x")" = "$prev_x" ]
}

@test "a cached step reuses the outputs of the run that made them" {
	echo run >"$mnt/pipelines/c/.ctl"
	local first=$ID
	after_change
	[ "$(st a)" = "cached|yes|cached" ]
	[ "$(readlink "$mnt/runs/$ID/steps/a/outputs/x")" = "$(readlink "$mnt/runs/$first/steps/a/outputs/x")" ]
	[ "$(readlink "$mnt/runs/$ID/steps/b/inputs/x")" = "$(readlink "$mnt/runs/$first/steps/b/inputs/x")" ]
}

@test "rerun STEP forces that step and what depends on it" {
	echo "rerun a" >"$mnt/pipelines/c/.ctl"
	after_change
	[ "$(st a)" = "succeeded|no|forced" ]
	[ "$(st b)" = "succeeded|no|forced" ]
	[ "$(cat "$mnt/artifacts/c/y")" = "$(printf 'a\n1')" ]
}

@test "rerun STEP only forces downstream, not upstream" {
	echo "rerun b" >"$mnt/pipelines/c/.ctl"
	after_change
	[ "$(st a)" = "cached|yes|cached" ]
	[ "$(st b)" = "succeeded|no|forced" ]
}

@test "rerun of a step that does not exist fails with EINVAL, queues nothing, daemon survives" {
	run bash -c 'echo "rerun nosuchstep" > "$1"' _ "$mnt/pipelines/c/.ctl"
	[ "$status" -ne 0 ]
	[[ $output == *"Invalid argument"* ]]
	write_step sentinel s '{"run": "echo > out/o", "outputs": ["o"]}'
	wait_new_run sentinel >/dev/null
	[ "$(latest_run_of c)" = "$ID" ]
	daemon_alive
}

@test "reverting a change is a cache hit on the older run" {
	printf '%s\n' '{"params": {"n": 2, "m": 1}}' >"$mnt/pipelines/c/pipeline.json"
	after_change
	[ "$(st a)" = "succeeded|no|param n changed" ]
	printf '%s\n' '{"params": {"n": 1, "m": 1}}' >"$mnt/pipelines/c/pipeline.json"
	after_change
	[ "$(st a)" = "cached|yes|cached" ]
	[ "$(st b)" = "cached|yes|cached" ]
	[ "$(cat "$mnt/artifacts/c/y")" = "$(printf 'a\n1')" ]
}
