#!/usr/bin/env bats
# recheck.bats - a run in which nothing changed (the same files, params
# and inputs as an earlier run that succeeded) is recorded as one row and
# reads, in every file, as the full path's all-cached run does; anything
# changed takes the full path, with its reasons.

load helpers
load safety_helpers

setup() {
	export HOME=$BATS_TEST_TMPDIR/home
	mkdir -p "$HOME" "$BATS_TEST_TMPDIR/data"
	SRC=$BATS_TEST_TMPDIR/data/src
	echo one >"$SRC"
	mount_flowy
	P=$mnt/pipelines
	make_pipeline r
}

# make_pipeline NAME: the pipeline the tests run. a reads a file: input
# and a param and reports a metric; b, c follow.
make_pipeline() {
	local s=$P/.$1
	mkdir "$s"
	echo '{"autorun": false, "params": {"n": 1}}' >"$s/pipeline.json"
	printf '{"run": "cat in/src > out/a; echo $FLOWY_PARAM_n >> out/a; echo \\"{\\\\\\"loss\\\\\\": 0.25}\\" >> $FLOWY_METRICS", "inputs": ["file:%s"], "params": ["n"], "outputs": ["a"]}\n' "$SRC" >"$s/a.json"
	echo '{"run": "cat in/a > out/b", "inputs": ["a"], "outputs": ["b"]}' >"$s/b.json"
	echo '{"run": "cat in/b > out/c", "inputs": ["b"], "outputs": ["c"]}' >"$s/c.json"
	mv "$s" "$P/$1"
}

teardown() {
	flowy_teardown
}

# run_r [ARGS]: queue a run of r (run ARGS), wait for it; prints its id.
# run_of NAME [ARGS]: the same for pipeline NAME.
run_r() {
	run_of r "$@"
}

run_of() {
	local before p=$1
	shift
	before=$(latest_run_of "$p")
	echo "run${1:+ $1}" >"$P/$p/.ctl"
	local id
	id=$(wait_new_run "$p" "${before:-0}") || return 1
	expect_eq "$(cat "$mnt/runs/$id/status")" succeeded "run $id status" || return 1
	echo "$id"
}

# steps_of ID: every step file but times (status, cached, reason,
# exit_code, attempts, error, inputs, outputs, metrics) of run ID.
steps_of() {
	local s f
	for s in a b c; do
		for f in status cached reason exit_code attempts error; do
			printf '%s/%s=%s\n' "$s" "$f" "$(step_file "$1" "$s" "$f")"
		done
		for f in "$mnt/runs/$1/steps/$s"/inputs/* "$mnt/runs/$1/steps/$s"/outputs/*; do
			printf '%s/%s -> %s\n' "$s" "${f#"$mnt/runs/$1/steps/$s/"}" "$(readlink "$f")"
		done
		printf '%s/metrics/loss=%s\n' "$s" "$(cat "$mnt/runs/$1/steps/$s/metrics/loss" 2>/dev/null)"
	done
}

# ended_in_log FILE ID: the events log FILE has run ID's last event.
ended_in_log() {
	[ -f "$1" ] && grep -q "	run-succeeded	r	$2	" "$1"
}

# sql QUERY: a query on the store's database (the daemon must be stopped).
sql() {
	sqlite3 "$store/flowy.db" "$1"
}

@test "an unchanged re-check is one row and reads as the full path's all-cached run" {
	local id1 id2 id3
	id1=$(run_r)
	# The same steps in another pipeline: no earlier run of its own, so the
	# full path, every step cached (by id1).
	make_pipeline q
	id2=$(run_of q)
	# After a restart the snapshot is taken anew, to the same commit: a
	# re-check of id2.
	remount_flowy
	id3=$(run_of q)
	expect_eq "$(cut -f1,2,4- "$mnt/runs/$id3/summary")" "step	status	cached	outputs
a	cached	yes	a
b	cached	yes	b
c	cached	yes	c"
	expect_eq "$(cut -f1,2,4- "$mnt/runs/$id3/summary")" "$(cut -f1,2,4- "$mnt/runs/$id2/summary")"
	expect_eq "$(steps_of "$id3")" "$(steps_of "$id2")"
	expect_eq "$(step_file "$id3" a reason)|$(step_file "$id3" c reason)" "cached|cached"
	expect_eq "$(step_file "$id3" a exit_code)|$(step_file "$id3" a attempts)" "0|0"
	expect_eq "$(cat "$mnt/runs/$id3/steps/a/metrics/loss")" "$(printf 'index\tvalue\n0\t0.25')"
	expect_eq "$(readlink "$mnt/runs/$id3/steps/c/outputs/c")" \
		"$(readlink "$mnt/runs/$id1/steps/c/outputs/c")"
	# The same graph (read through the run it repeats: none of its own).
	cmp "$mnt/runs/$id3/dag.dot" "$mnt/runs/$id2/dag.dot"
	grep -q '^digraph' "$mnt/runs/$id3/dag.dot"
	grep -q '<title>step:a</title>' "$mnt/runs/$id3/dag.svg"
	# run.json tells the same, times aside.
	local notime='"(id|started|finished|duration)":'
	expect_eq "$(grep -Ev "$notime" "$mnt/runs/$id3/run.json")" \
		"$(grep -Ev "$notime" "$mnt/runs/$id2/run.json")"
	expect_eq "$(grep -c '"reason":	"cached"' "$mnt/runs/$id3/run.json")" 3
	expect_eq "$(cut -f1,2 "$P/q/.plan" | tail -n +2)" "a	cached
b	cached
c	cached"
	unmount_clean
	expect_eq "$(sql "SELECT coalesce(same_as, '-') FROM runs WHERE id IN ($id2, $id3) ORDER BY id")" "-
$id2"
	expect_eq "$(sql "SELECT count(*) FROM steps_recorded WHERE run_id=$id3")|$(sql "SELECT count(*) FROM step_io_recorded WHERE run_id=$id3")" "0|0"
	expect_eq "$(sql "SELECT coalesce(dag, '-') FROM runs WHERE id=$id3")" -
}

@test "a changed file: input or param takes the full path, with the reason" {
	local id1 id2 id3 id4
	id1=$(run_r)
	id2=$(run_r)
	expect_eq "$(cut -f2 "$mnt/runs/$id2/summary" | tr '\n' ' ')" "status cached cached cached "
	echo two >"$SRC"
	id3=$(run_r)
	expect_eq "$(steps_of "$id3" | grep -e /status= -e /reason=)" "a/status=succeeded
a/reason=input src changed
b/status=succeeded
b/reason=input a changed
c/status=succeeded
c/reason=input b changed"
	expect_eq "$(cat "$mnt/artifacts/r/c")" "two
1"
	id4=$(run_r n=2)
	expect_eq "$(step_file "$id4" a reason)|$(step_file "$id4" b reason)" "param n changed|input a changed"
	unmount_clean
	expect_eq "$(sql "SELECT id || ':' || coalesce(same_as, '-') FROM runs ORDER BY id" | tr '\n' ' ')" \
		"$id1:- $id2:$id1 $id3:- $id4:- "
	expect_eq "$(sql "SELECT count(*) FROM steps_recorded WHERE run_id IN ($id3, $id4)")" 6
}

@test "a re-check sends the events of a cached run, and outlives the run it repeats" {
	cp "$BATS_TEST_DIRNAME/../../hooks/any.log" "$mnt/hooks/"
	local id1 id2 out
	id1=$(run_r)
	wait_for "$RUN_WAIT" ended_in_log "$HOME/flowyfs-events.log" "$id1"
	id2=$(run_r)
	wait_for "$RUN_WAIT" ended_in_log "$HOME/flowyfs-events.log" "$id2"
	expect_eq "$(grep "	$id2	" "$HOME/flowyfs-events.log" | cut -f2-)" "run-queued	r	$id2	-	queued
run-started	r	$id2	-	running
step-cached	r	$id2	a	cached
step-cached	r	$id2	b	cached
step-cached	r	$id2	c	cached
run-succeeded	r	$id2	-	succeeded"
	out=$(steps_of "$id2")
	rm -r "$mnt/runs/$id1"
	[ ! -e "$mnt/runs/$id1" ]
	expect_eq "$(steps_of "$id2")" "$out"
	expect_eq "$(cut -f2 "$mnt/runs/$id2/summary" | tr '\n' ' ')" "status cached cached cached "
}
