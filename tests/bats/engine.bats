#!/usr/bin/env bats
# engine.bats - the scheduler through the mount: runs of several
# pipelines and several runs of one pipeline at once, run-time overrides,
# sweeps, retry, cancel/pause of one run, .plan, steps without outputs.

load helpers

setup() {
	mount_flowy -j 4
	P=$mnt/pipelines
	SYNC=$BATS_TEST_TMPDIR/sync
	mkdir -p "$SYNC"
}

teardown() {
	flowy_teardown
}

# make_pipeline NAME: move a staged pipeline (.NAME/, filled by the
# caller) into place, which queues its first run at once.
make_pipeline() {
	mv "$P/.$1" "$P/$1"
}

# ctl P CMD: write CMD to P's .ctl; prints the write's error, if any.
ctl() {
	echo "$2" >"$P/$1/.ctl"
}

# latest P: the id .latest points at.
latest() {
	local t
	t=$(readlink "$P/$1/.latest") || return 1
	echo "${t##*/}"
}

@test "runs of two pipelines run at the same moment (each step waits to see the other)" {
	local p
	for p in a b; do
		local o=$([ $p = a ] && echo b || echo a)
		mkdir -p "$P/.$p"
		printf '{"run": "touch %s/%s; i=0; while [ ! -e %s/%s ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; [ -e %s/%s ] && echo met > out/o", "outputs": ["o"]}\n' \
			"$SYNC" "$p" "$SYNC" "$o" "$SYNC" "$o" >"$P/.$p/s.json"
	done
	make_pipeline a
	make_pipeline b
	local ida idb
	ida=$(wait_new_run a)
	idb=$(wait_new_run b)
	expect_eq "$(cat "$mnt/runs/$ida/status") $(cat "$mnt/runs/$idb/status")" "succeeded succeeded" "both runs"
	expect_eq "$(cat "$mnt/artifacts/a/o") $(cat "$mnt/artifacts/b/o")" "met met" "each saw the other running"
}

@test "a sweep queues one run per combination, each with its params, all at once" {
	mkdir -p "$P/.sw"
	echo '{"params": {"lr": 0.1, "layers": 1, "tag": "x"}}' >"$P/.sw/pipeline.json"
	cat >"$P/.sw/fit.json" <<'EOF'
{"run": "echo $FLOWY_PARAM_lr $FLOWY_PARAM_layers > out/o; printf '{\"score\": %s}\\n' $FLOWY_PARAM_layers >> $FLOWY_METRICS", "params": ["lr", "layers"], "outputs": ["o"]}
EOF
	make_pipeline sw
	local first
	first=$(wait_new_run sw)
	[ "$(wait_run "$first")" = succeeded ]
	ctl sw "sweep lr=0.01,0.001 layers=1,2,3"
	# the write returned: the six runs exist, .latest is the last of them
	local last
	last=$(latest sw)
	expect_eq "$last" "$((first + 6))" ".latest after the sweep"
	local id
	for ((id = first + 1; id <= last; id++)); do
		[ "$(wait_run "$id")" = succeeded ]
	done
	expect_eq "$(cut -f1,5- "$mnt/metrics/sw/runs.tsv")" "$(printf 'run\tparams.layers\tparams.lr\tparams.tag\tmetrics.score\n%s\n' \
		"$first	1	0.1	x	1
$((first + 1))	1	0.01	x	1
$((first + 2))	2	0.01	x	2
$((first + 3))	3	0.01	x	3
$((first + 4))	1	0.001	x	1
$((first + 5))	2	0.001	x	2
$((first + 6))	3	0.001	x	3")" "runs.tsv"
	expect_eq "$(cat "$mnt/runs/$((first + 3))/params.json")" '{"lr":0.01,"layers":3,"tag":"x"}' "params.json of a swept run"
	# (lr 0.01, layers 1) is cached from no run: every combination ran
	expect_eq "$(cat "$mnt/runs/$((first + 1))/steps/fit/reason")" "param lr changed" "reason"
	tr -d ' \t\n' <"$mnt/runs/$last/run.json" | grep -q '"trigger":"sweep"'
}

@test "run KEY=VALUE overrides a param for that run only; a bad key is refused with the reason in .status" {
	mkdir -p "$P/.ov"
	echo '{"params": {"lr": 0.1, "name": "base"}}' >"$P/.ov/pipeline.json"
	echo '{"run": "echo $FLOWY_PARAM_lr $FLOWY_PARAM_name > out/o", "params": ["lr", "name"], "outputs": ["o"]}' >"$P/.ov/s.json"
	make_pipeline ov
	local first id
	first=$(wait_new_run ov)
	ctl ov 'run lr=0.5 name="big one"'
	id=$(latest ov)
	[ "$id" -gt "$first" ]
	[ "$(wait_run "$id")" = succeeded ]
	expect_eq "$(cat "$mnt/artifacts/ov/o")" "0.5 big one" "the step saw the overrides"
	expect_eq "$(cat "$mnt/runs/$id/params.json")" '{"lr":0.5,"name":"big one"}' "params.json"
	expect_eq "$(tr -d ' \t\n' <"$mnt/runs/$id/run.json" | grep -o '"trigger":"[a-z]*"')" '"trigger":"ctl"' "trigger"
	# the pipeline's own values are untouched: a plain run is cached from the first
	ctl ov run
	id=$(latest ov)
	[ "$(wait_run "$id")" = succeeded ]
	expect_eq "$(cat "$mnt/runs/$id/steps/s/status")" cached "plain run after the override"
	local before
	before=$(run_count ov)
	run ctl ov "run nope=1"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Invalid argument"* ]]
	expect_eq "$(grep '^last command' "$P/ov/.status")" \
		"last command: run nope=1: refused: nope is not a param of this pipeline (pipeline.json params: lr, name)" ".status"
	expect_eq "$(run_count ov)" "$before" "no run for a refused command"
	daemon_alive
}

@test "a run captures its params when queued: edit, run, edit, run gives both values" {
	mkdir -p "$P/.cap"
	echo '{"params": {"v": 1}}' >"$P/.cap/pipeline.json"
	echo '{"run": "sleep 0.3; echo $FLOWY_PARAM_v > out/o", "params": ["v"], "outputs": ["o"]}' >"$P/.cap/s.json"
	make_pipeline cap
	wait_new_run cap >/dev/null
	echo '{"params": {"v": 2}}' >"$P/cap/pipeline.json"
	ctl cap run
	local r2 r3
	r2=$(latest cap)
	echo '{"params": {"v": 3}}' >"$P/cap/pipeline.json"
	ctl cap run
	r3=$(latest cap)
	[ "$r3" -gt "$r2" ]
	[ "$(wait_run "$r2")" = succeeded ]
	[ "$(wait_run "$r3")" = succeeded ]
	expect_eq "$(cat "$mnt/runs/$r2/params.json") $(cat "$mnt/runs/$r3/params.json")" '{"v":2} {"v":3}' "params of the two runs"
	expect_eq "$(cat "$mnt/runs/$r2/snapshot/pipeline.json")" '{"params": {"v": 2}}' "snapshot of the first"
}

@test "retry RUN reruns what failed with RUN's snapshot and params and reuses what succeeded" {
	mkdir -p "$P/.rt"
	echo '{"params": {"k": 7}}' >"$P/.rt/pipeline.json"
	echo "{\"run\": \"echo a > out/a; echo ran >> $SYNC/a.count\", \"outputs\": [\"a\"]}" >"$P/.rt/a.json"
	echo "{\"run\": \"[ -e $SYNC/ok ] && cat in/a > out/b && echo \$FLOWY_PARAM_k >> out/b\", \"inputs\": [\"a\"], \"params\": [\"k\"], \"outputs\": [\"b\"]}" >"$P/.rt/b.json"
	make_pipeline rt
	local id
	id=$(wait_new_run rt)
	expect_eq "$(cat "$mnt/runs/$id/status")" failed "first run"
	# edits after the failed run do not leak into its retry
	echo '{"params": {"k": 8}}' >"$P/rt/pipeline.json"
	touch "$SYNC/ok"
	ctl rt "retry $id"
	local rid
	rid=$(latest rt)
	[ "$rid" -gt "$id" ]
	expect_eq "$(wait_run "$rid")" succeeded "the retry"
	expect_eq "$(cat "$mnt/runs/$rid/steps/a/status") / $(cat "$mnt/runs/$rid/steps/a/reason")" "cached / succeeded in run $id" "a in the retry"
	expect_eq "$(cat "$mnt/runs/$rid/steps/b/status")" succeeded "b in the retry"
	expect_eq "$(cat "$mnt/runs/$rid/params.json")" '{"k":7}' "params of the retry"
	expect_eq "$(tr -d ' \t\n' <"$mnt/runs/$rid/run.json" | grep -o '"retry_of":[0-9]*')" "\"retry_of\":$id" "retry_of"
	expect_eq "$(wc -l <"$SYNC/a.count")" 1 "a ran once"
	expect_eq "$(cat "$mnt/artifacts/rt/b")" "a
7" "b's output"
	run ctl rt "retry $rid"
	[ "$status" -ne 0 ]
	expect_eq "$(grep '^last command' "$P/rt/.status")" "last command: retry $rid: refused: retry: run $rid succeeded: nothing to retry" "retry of a success"
	run ctl rt "retry 999"
	[ "$status" -ne 0 ]
	[[ "$output" == *"No such process"* ]]
}

@test "retry of a run interrupted by a daemon stop" {
	mkdir -p "$P/.ri"
	echo "{\"run\": \"[ -e $SYNC/go ] || sleep 60; echo done > out/o\", \"outputs\": [\"o\"]}" >"$P/.ri/s.json"
	make_pipeline ri
	local id i
	for ((i = 0; i < RUN_WAIT; i++)); do
		id=$(latest_run_of ri)
		[ -n "$id" ] && [ "$(step_file "$id" s status 2>/dev/null)" = running ] && break
		sleep 0.1
	done
	remount_flowy -j 4
	expect_eq "$(cat "$mnt/runs/$id/status")" interrupted "after the stop"
	touch "$SYNC/go"
	ctl ri "retry $id"
	local rid
	rid=$(latest ri)
	expect_eq "$(wait_run "$rid")" succeeded "the retry"
	expect_eq "$(cat "$mnt/artifacts/ri/o")" done "output"
}

@test "cancel RUN cancels that run only; cancel of an ended run is refused" {
	mkdir -p "$P/.cn"
	echo '{"params": {"n": 0}}' >"$P/.cn/pipeline.json"
	echo "{\"run\": \"while [ ! -e $SYNC/stop.\$FLOWY_PARAM_n ]; do sleep 0.05; done; echo \$FLOWY_PARAM_n > out/o\", \"params\": [\"n\"], \"outputs\": [\"o\"]}" >"$P/.cn/s.json"
	touch "$SYNC/stop.0"
	make_pipeline cn
	local first
	first=$(wait_new_run cn)
	ctl cn "sweep n=1,2"
	local a=$((first + 1)) b=$((first + 2)) i
	for ((i = 0; i < RUN_WAIT; i++)); do
		[ "$(step_file "$a" s status)" = running ] && [ "$(step_file "$b" s status)" = running ] && break
		sleep 0.1
	done
	ctl cn "cancel $a"
	expect_eq "$(wait_run "$a")" cancelled "the cancelled run"
	expect_eq "$(cat "$mnt/runs/$b/status")" running "the other run"
	touch "$SYNC/stop.2"
	expect_eq "$(wait_run "$b")" succeeded "the other run"
	run ctl cn "cancel $a"
	[ "$status" -ne 0 ]
	expect_eq "$(grep '^last command' "$P/cn/.status")" "last command: cancel $a: refused: cancel: run $a has already ended (cancelled)" ".status"
	run ctl cn "cancel 999"
	[[ "$output" == *"No such process"* ]]
}

@test "a paused run has status paused, and paused time is not part of its duration" {
	mkdir -p "$P/.pa"
	echo "{\"run\": \"while [ ! -e $SYNC/done ]; do sleep 0.05; done; echo x > out/o\", \"outputs\": [\"o\"]}" >"$P/.pa/s.json"
	make_pipeline pa
	local id i
	for ((i = 0; i < RUN_WAIT; i++)); do
		id=$(latest_run_of pa)
		[ -n "$id" ] && [ "$(step_file "$id" s status)" = running ] && break
		sleep 0.1
	done
	ctl pa "pause $id"
	for ((i = 0; i < 50; i++)); do
		[ "$(cat "$mnt/runs/$id/status")" = paused ] && break
		sleep 0.1
	done
	expect_eq "$(cat "$mnt/runs/$id/status")" paused "status"
	touch "$SYNC/done"   # the step is stopped: it cannot see this yet
	sleep 2
	[ "$(cat "$mnt/runs/$id/status")" = paused ]
	ctl pa "resume $id"
	expect_eq "$(wait_run "$id")" succeeded "after resume"
	# the 2 s paused are left out of the duration
	local dur wall
	dur=$(cat "$mnt/runs/$id/duration")
	wall=$(( $(date -d "$(cat "$mnt/runs/$id/finished")" +%s) - $(date -d "$(cat "$mnt/runs/$id/started")" +%s) ))
	awk -v d="$dur" -v w="$wall" 'BEGIN { exit !(d <= w - 1.5) }'
}

@test ".plan says what a run now would do and why, without running anything" {
	mkdir -p "$P/.pl"
	echo '{"params": {"lr": 1}}' >"$P/.pl/pipeline.json"
	echo 'echo prep' >"$P/.pl/prep.sh"
	echo '{"run": "sh prep.sh > out/d", "outputs": ["d"], "code": ["prep.sh"]}' >"$P/.pl/prep.json"
	echo '{"run": "cat in/d > out/m; echo $FLOWY_PARAM_lr >> out/m", "inputs": ["d"], "params": ["lr"], "outputs": ["m"], "code": []}' >"$P/.pl/train.json"
	echo '{"run": "cat in/m", "inputs": ["m"], "code": []}' >"$P/.pl/show.json"
	make_pipeline pl
	local id n
	id=$(wait_new_run pl)
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
	expect_eq "$(cat "$P/pl/.plan")" "$(printf 'step\taction\treason\nprep\tcached\tcached\ntrain\tcached\tcached\nshow\trun\tno outputs')" ".plan after a run"
	n=$(run_count pl)
	# an edit of a param, before its run: the plan sees it
	echo '{"params": {"lr": 2}}' >"$P/pl/pipeline.json"
	expect_eq "$(cat "$P/pl/.plan")" "$(printf 'step\taction\treason\nprep\tcached\tcached\ntrain\trun\tparam lr changed\nshow\trun\tafter upstream step train runs')" ".plan after a param edit"
	echo 'echo prep2' >"$P/pl/prep.sh"
	expect_eq "$(cut -f1,3 "$P/pl/.plan")" "$(printf 'step\treason\nprep\tprep.sh changed\ntrain\tafter upstream step prep runs\nshow\tafter upstream step train runs')" ".plan after a code edit"
	expect_eq "$(run_count pl)" "$n" "reading .plan ran nothing"
}

@test "a step without outputs runs on every run (reason: no outputs)" {
	mkdir -p "$P/.no"
	echo "{\"run\": \"echo ran >> $SYNC/no.count\"}" >"$P/.no/s.json"
	make_pipeline no
	local a b
	a=$(wait_new_run no)
	ctl no run
	b=$(latest no)
	[ "$(wait_run "$b")" = succeeded ]
	expect_eq "$(cat "$mnt/runs/$a/steps/s/status") $(cat "$mnt/runs/$b/steps/s/status")" "succeeded succeeded" "both ran"
	expect_eq "$(cat "$mnt/runs/$b/steps/s/reason")" "no outputs" "reason"
	expect_eq "$(wc -l <"$SYNC/no.count")" 2 "times it ran"
}
