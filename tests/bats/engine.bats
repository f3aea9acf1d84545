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

# runs_of P: how many runs pipeline P has.
runs_of() {
	local n=0 d
	for d in "$mnt"/runs/*/; do
		d=${d%/}
		[[ ${d##*/} =~ ^[0-9]+$ ]] || continue
		[ "$(cat "$d/pipeline")" = "$1" ] && n=$((n + 1))
	done
	echo "$n"
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
	expect_eq "$(cut -f1,5-8 "$mnt/metrics/sw/runs.tsv")" "$(printf 'run\tparams.layers\tparams.lr\tparams.tag\tmetrics.score\n%s\n' \
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
	# the edit queues a run of its own (k=8), which may end after the
	# retry and take artifacts/rt/b: read the retry's own output
	expect_eq "$(cat "$mnt/runs/$rid/steps/b/outputs/b")" "a
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
	id=$(wait_step_running ri s)
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
	id=$(wait_step_running pa s)
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
	wall=$(awk -v a="$(date -d "$(cat "$mnt/runs/$id/started")" +%s.%N)" \
		-v b="$(date -d "$(cat "$mnt/runs/$id/finished")" +%s.%N)" 'BEGIN { print b - a }')
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

@test "when: exit 0 runs the step, exit 1 skips it and what needs it, the run still succeeds" {
	mkdir -p "$P/.wh"
	echo '{"params": {"go": "yes"}}' >"$P/.wh/pipeline.json"
	echo '{"run": "echo a > out/a", "outputs": ["a"], "when": "[ \"$FLOWY_PARAM_go\" = yes ]", "params": ["go"]}' >"$P/.wh/a.json"
	echo '{"run": "cat in/a > out/b", "inputs": ["a"], "outputs": ["b"]}' >"$P/.wh/b.json"
	echo '{"run": "echo c > out/c", "outputs": ["c"], "when": "test -e in/x || exit 1"}' >"$P/.wh/c.json"
	echo '{"run": "echo d > out/d", "outputs": ["d"], "when": "exit 3"}' >"$P/.wh/d.json"
	make_pipeline wh
	local id
	id=$(wait_new_run wh)
	expect_eq "$(cat "$mnt/runs/$id/status")" failed "the run (d's when exits 3)"
	expect_eq "$(cat "$mnt/runs/$id/steps/a/status") $(cat "$mnt/runs/$id/steps/b/status")" "succeeded succeeded" "a and b (when true)"
	expect_eq "$(cat "$mnt/runs/$id/steps/c/status") / $(cat "$mnt/runs/$id/steps/c/reason")" "skipped / when: false" "c"
	expect_eq "$(cat "$mnt/runs/$id/steps/d/error")" "when: exited with status 3" "d"
	rm "$P/wh/d.json"
	ctl wh 'run go="no"'
	id=$(latest wh)
	expect_eq "$(wait_run "$id")" succeeded "a run where a is skipped"
	expect_eq "$(cat "$mnt/runs/$id/steps/a/status") / $(cat "$mnt/runs/$id/steps/a/reason")" "skipped / when: false" "a"
	expect_eq "$(cat "$mnt/runs/$id/steps/b/status") / $(cat "$mnt/runs/$id/steps/b/reason")" "skipped / upstream step a was skipped (when: false)" "b"
}

@test "foreach over a directory of 20 files: one task each; changing one file reruns exactly one" {
	local H=$BATS_TEST_TMPDIR/data i
	mkdir -p "$H"
	for ((i = 1; i <= 20; i++)); do echo "v$i" >"$H/f$(printf %02d "$i")"; done
	mkdir -p "$P/.fe"
	echo "{\"run\": \"echo \$FLOWY_ITEM >> $SYNC/ran; tr v w < in/data > out/o\", \"inputs\": [\"file:$H\"], \"foreach\": \"data\", \"outputs\": [\"o\"], \"concurrency\": 3}" >"$P/.fe/map.json"
	echo '{"run": "cat in/o/* > out/all", "inputs": ["o"], "outputs": ["all"]}' >"$P/.fe/join.json"
	make_pipeline fe
	local id
	id=$(wait_new_run fe)
	expect_eq "$(cat "$mnt/runs/$id/status")" succeeded "first run"
	expect_eq "$(ls "$mnt/runs/$id/steps/map/items" | wc -l)" 20 "items"
	expect_eq "$(cat "$mnt/runs/$id/steps/map/items/f07/status")" succeeded "an item's status"
	expect_eq "$(ls "$mnt/runs/$id/steps/map/outputs/o/" | head -3 | tr '\n' ' ')" "f01 f02 f03 " "the merged output"
	expect_eq "$(cat "$mnt/runs/$id/steps/map/outputs/o/f07")" w7 "an item's output"
	expect_eq "$(head -2 "$mnt/artifacts/fe/all" | tr '\n' ' ')" "w1 w2 " "downstream reads the directory"
	expect_eq "$(wc -l <"$SYNC/ran")" 20 "tasks run"
	: >"$SYNC/ran"
	echo changed >"$H/f07"
	local id2
	id2=$(wait_new_run fe "$id")
	expect_eq "$(cat "$mnt/runs/$id2/status")" succeeded "second run"
	expect_eq "$(cat "$SYNC/ran")" f07 "exactly one task ran"
	expect_eq "$(cat "$mnt/runs/$id2/steps/map/items/f07/reason") $(cat "$mnt/runs/$id2/steps/map/items/f08/status")" "input data changed cached" "reasons"
	expect_eq "$(sed -n 7p "$mnt/artifacts/fe/all")" "changed" "the new content flows down"
	grep -q 'foreach: 1 of 20 items ran, 19 cached, 0 failed' "$mnt/runs/$id2/steps/map/log"
}

@test "foreach over a list param, with a failing item and min_success" {
	mkdir -p "$P/.fp"
	echo '{"params": {"lrs": [0.1, 0.01, "bad", 0.001]}}' >"$P/.fp/pipeline.json"
	echo '{"run": "case $FLOWY_PARAM_lrs in bad) exit 4;; esac; echo lr=$FLOWY_ITEM > out/o", "params": ["lrs"], "foreach": "param:lrs", "outputs": ["o"], "min_success": 0.75}' >"$P/.fp/fit.json"
	make_pipeline fp
	local id
	id=$(wait_new_run fp)
	expect_eq "$(cat "$mnt/runs/$id/status")" succeeded "3 of 4 is enough"
	expect_eq "$(ls "$mnt/runs/$id/steps/fit/items" | tr '\n' ' ')" "0.001 0.01 0.1 bad " "items named by value"
	expect_eq "$(cat "$mnt/runs/$id/steps/fit/items/bad/status") $(cat "$mnt/runs/$id/steps/fit/items/bad/exit_code")" "failed 4" "the bad item"
	expect_eq "$(ls "$mnt/artifacts/fp/o" | tr '\n' ' ')" "0.001 0.01 0.1 " "merged: the items that succeeded"
	expect_eq "$(cat "$mnt/artifacts/fp/o/0.01")" "lr=0.01" "an item's output"
	sed -i 's/0.75/1/' "$P/fp/fit.json"
	local id2
	id2=$(wait_new_run fp "$id")
	expect_eq "$(cat "$mnt/runs/$id2/status")" failed "all must succeed"
	expect_eq "$(cat "$mnt/runs/$id2/steps/fit/error")" "foreach: 1 of 4 items failed (min_success 1 needs 4)" "error"
}

@test "autorun false: no run on a change or a trigger; .status says it is stale and why" {
	write_step src a '{"run": "echo 1 > out/d", "outputs": ["d"]}'
	local s1
	s1=$(wait_new_run src)
	mkdir -p "$P/.dst"
	echo '{"autorun": false}' >"$P/.dst/pipeline.json"
	echo '{"run": "cat in/d > out/e", "inputs": ["src/d"], "outputs": ["e"]}' >"$P/.dst/b.json"
	mv "$P/.dst" "$P/dst"
	sleep 1 # the change window (0.3 s) passes: nothing may be queued
	expect_eq "$(runs_of dst)" 0 "runs of dst"
	expect_eq "$(grep '^stale' "$P/dst/.status")" 'stale: its files changed since its last run (autorun is off: write "run" to .ctl)' ".status"
	ctl dst run
	local d1
	d1=$(latest dst)
	[ "$(wait_run "$d1")" = succeeded ]
	[ -z "$(grep '^stale' "$P/dst/.status")" ]
	write_step src a '{"run": "echo 2 > out/d", "outputs": ["d"]}'
	wait_new_run src "$s1" >/dev/null
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q '^stale' "$P/dst/.status" && break
		sleep 0.1
	done
	expect_eq "$(grep '^stale' "$P/dst/.status")" 'stale: input src/d changed (autorun is off: write "run" to .ctl)' ".status after the trigger"
	expect_eq "$(runs_of dst)" 1 "runs of dst"
	expect_eq "$(cut -f1,2 "$P/dst/.plan" | tail -1)" "$(printf 'b\trun')" ".plan"
}

@test "retries wait backoff seconds, doubling" {
	mkdir -p "$P/.bo"
	echo "{\"run\": \"date +%s.%N >> $SYNC/tries; [ \$(wc -l < $SYNC/tries) -ge 3 ] && echo ok > out/o\", \"outputs\": [\"o\"], \"retries\": 2, \"backoff\": 0.5}" >"$P/.bo/s.json"
	make_pipeline bo
	local id
	id=$(wait_new_run bo)
	expect_eq "$(cat "$mnt/runs/$id/status") $(cat "$mnt/runs/$id/steps/s/attempts")" "succeeded 3" "run"
	# gaps of at least 0.5 s and then 1 s between the attempts
	awk 'NR > 1 { gap[NR] = $1 - prev } { prev = $1 } END { exit !(gap[2] >= 0.5 && gap[3] >= 1.0) }' "$SYNC/tries"
	grep -q 'retrying in 0.5s' "$mnt/runs/$id/steps/s/log"
	grep -q 'retrying in 1s' "$mnt/runs/$id/steps/s/log"
}

@test "the daemon's threads carry the names of what they do (top -H, ps -L, perf)" {
	# Each thread names itself as it starts: poll until all have.
	local want="flowyfs-alerts flowyfs-capture flowyfs-hooks flowyfs-render flowyfs-sched flowyfs-syncer flowyfs-watch "
	local names i
	for ((i = 0; i < 50; i++)); do
		names=$(sort /proc/"$FLOWY_PID"/task/*/comm | grep -v '^flowyfs$' | tr '\n' ' ')
		[ "$names" != "$want" ] || break
		sleep 0.1
	done
	expect_eq "$names" "$want" "thread names"
}
