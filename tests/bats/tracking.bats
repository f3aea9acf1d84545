#!/usr/bin/env bats
# tracking.bats - the complete runs/<id>/ of issue 3: run.json, git, env,
# dag.dot, pipeline.commit, snapshot/, live status and logs.

load helpers

setup() {
	mount_flowy
}

teardown() {
	flowy_teardown
}

two_steps() {
	write_file p pipeline.json '{"params": {"n": 2, "who": "x"}}'
	write_file p gen.sh 'seq $FLOWY_PARAM_n'
	write_step p a '{"run": "sh gen.sh > out/nums", "outputs": ["nums"], "params": ["n"]}'
	write_step p b '{"run": "wc -l < in/nums > out/count", "inputs": ["nums"], "outputs": ["count"], "code": []}'
}

@test "a run's files: status, params.json, summary, run.json, dag.dot" {
	two_steps
	R=$(wait_new_run p)
	[ "$(cat "$mnt/runs/$R/status")" = succeeded ]
	[ "$(cat "$mnt/runs/$R/pipeline")" = p ]
	[ "$(cat "$mnt/runs/$R/params.json")" = '{"n":2,"who":"x"}' ]
	grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$' "$mnt/runs/$R/started"
	grep -qE '^[0-9]+\.[0-9]{3}$' "$mnt/runs/$R/duration"
	expect_eq "$(cut -f1,2,4,5 "$mnt/runs/$R/summary")" \
		"$(printf 'step\tstatus\tcached\toutputs\na\tsucceeded\tno\tnums\nb\tsucceeded\tno\tcount')" summary
	j=$mnt/runs/$R/run.json
	grep -qF "$(printf '\t"id":\t%s,' "$R")" "$j"
	grep -qF "$(printf '\t"status":\t"succeeded",')" "$j"
	grep -qF "$(printf '"nums":\t"%s"' "$(printf '1\n2\n' | sha256sum | cut -d' ' -f1)")" "$j"
	[ "$(grep -c '"name":' "$j")" = 2 ]
	head -1 "$mnt/runs/$R/dag.dot" | grep -qx 'digraph "p" {'
	[ "$(tail -1 "$mnt/runs/$R/dag.dot")" = "}" ]
	[ "$(cat "$mnt/runs/$R/steps/b/exit_code")" = 0 ]
	[ "$(cat "$mnt/runs/$R/steps/b/attempts")" = 1 ]
	[ "$(cat "$mnt/runs/$R/steps/b/reason")" = "no earlier run" ]
	[ "$(readlink "$mnt/runs/$R/steps/b/inputs/nums")" = \
		"../../../../../artifacts/sha256/$(printf '1\n2\n' | sha256sum | cut -d' ' -f1)" ]
	[ "$(cat "$mnt/runs/$R/steps/b/outputs/count")" = 2 ]
}

@test "pipeline.commit: one commit per pipeline version; the snapshot is what ran" {
	two_steps
	R1=$(wait_new_run p)
	c1=$(cat "$mnt/runs/$R1/pipeline.commit")
	[[ "$c1" =~ ^[0-9a-f]{40}$ ]]
	echo run >"$mnt/pipelines/p/.ctl"
	R2=$(wait_new_run p "$R1")
	[ "$(cat "$mnt/runs/$R2/pipeline.commit")" = "$c1" ]
	write_file p gen.sh 'seq 5'
	R3=$(wait_new_run p "$R2")
	c3=$(cat "$mnt/runs/$R3/pipeline.commit")
	[[ "$c3" =~ ^[0-9a-f]{40}$ ]] && [ "$c3" != "$c1" ]
	[ "$(cat "$mnt/runs/$R1/snapshot/gen.sh")" = 'seq $FLOWY_PARAM_n' ]
	[ "$(cat "$mnt/runs/$R3/snapshot/gen.sh")" = 'seq 5' ]
	[ "$(ls "$mnt/runs/$R1/snapshot" | tr '\n' ' ')" = "a.json b.json gen.sh pipeline.json " ]
	[ "$(cat "$mnt/runs/$R3/steps/a/reason")" = "gen.sh changed" ]
	run bash -c 'echo x > "$1"' _ "$mnt/runs/$R1/snapshot/gen.sh"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Read-only file system"* ]]
}

@test "git: a workdir's commit, branch and dirty state, and a dirty edit reruns" {
	wd=$BATS_TEST_TMPDIR/wd
	mkdir "$wd"
	git -C "$wd" init -q -b main
	echo 'print("v1")' >"$wd/train.py"
	git -C "$wd" add train.py
	git -C "$wd" -c user.email=t@t -c user.name=t commit -qm one
	head=$(git -C "$wd" rev-parse HEAD)
	write_file w pipeline.json "{\"workdir\": \"$wd\"}"
	write_step w s '{"run": "cat $FLOWY_WORKDIR/train.py > out/o", "outputs": ["o"]}'
	R1=$(wait_new_run w)
	expect_eq "$(cat "$mnt/runs/$R1/git")" \
		"$(printf 'workdir\t%s\ncommit\t%s\nbranch\tmain\ndirty\tno' "$wd" "$head")" git
	echo 'print("v2")' >"$wd/train.py"
	echo run >"$mnt/pipelines/w/.ctl"
	R2=$(wait_new_run w "$R1")
	[ "$(sed -n 4p "$mnt/runs/$R2/git")" = "$(printf 'dirty\tyes')" ]
	grep -qE "^dirty_hash	[0-9a-f]{64}$" "$mnt/runs/$R2/git"
	[ "$(cat "$mnt/runs/$R2/steps/s/reason")" = "workdir changed" ]
	[ "$(cat "$mnt/artifacts/w/o")" = 'print("v2")' ]
	echo run >"$mnt/pipelines/w/.ctl"
	R3=$(wait_new_run w "$R2")
	[ "$(cat "$mnt/runs/$R3/steps/s/status")" = cached ]
}

@test "env: host facts and the interpreters the steps call" {
	write_step e s '{"run": "bash -c \"echo hi\" > out/o", "outputs": ["o"]}'
	R=$(wait_new_run e)
	[ "$(grep -c '^host	' "$mnt/runs/$R/env")" = 1 ]
	grep -qx "kernel	$(uname -s) $(uname -r) $(uname -m)" "$mnt/runs/$R/env"
	grep -qx "cpus	$(nproc)" "$mnt/runs/$R/env"
	grep -qE '^memory	[0-9]+ MiB$' "$mnt/runs/$R/env"
	grep -qx "bash	$(bash --version | head -1)" "$mnt/runs/$R/env"
	! grep -q '^python3' "$mnt/runs/$R/env"
	[ "$(cat "$mnt/runs/$R/git")" = none ]
}

@test "live: status and log of a running step are current at every open" {
	mark=$BATS_TEST_TMPDIR/go
	write_step l s "{\"run\": \"echo first; i=0; while [ ! -e $mark ] && [ \$i -lt 300 ]; do sleep 0.05; i=\$((i+1)); done; echo second; echo x > out/o\", \"outputs\": [\"o\"]}"
	local i R=
	for ((i = 0; i < 100; i++)); do
		R=$(latest_run_of l)
		[ -n "$R" ] && [ "$(cat "$mnt/runs/$R/steps/s/log" 2>/dev/null)" = first ] && break
		sleep 0.1
	done
	[ "$(cat "$mnt/runs/$R/status")" = running ]
	[ "$(cat "$mnt/runs/$R/steps/s/status")" = running ]
	[ -z "$(cat "$mnt/runs/$R/finished")" ]
	# tail -f follows the log as it grows.
	timeout 10 tail -n +1 -f "$mnt/runs/$R/steps/s/log" >"$BATS_TEST_TMPDIR/tail.out" &
	tail_pid=$!
	touch "$mark"
	[ "$(wait_run "$R")" = succeeded ]
	for ((i = 0; i < 50; i++)); do
		grep -q second "$BATS_TEST_TMPDIR/tail.out" && break
		sleep 0.1
	done
	kill "$tail_pid" 2>/dev/null || true
	wait "$tail_pid" 2>/dev/null || true
	[ "$(cat "$BATS_TEST_TMPDIR/tail.out")" = "$(printf 'first\nsecond')" ]
	[ "$(cat "$mnt/runs/$R/steps/s/log")" = "$(printf 'first\nsecond')" ]
	[ -n "$(cat "$mnt/runs/$R/finished")" ]
}
