#!/usr/bin/env bats
# parallel.bats - independent steps run at once up to -j; what a step sees:
# its environment, its working directory, read-only inputs.

load helpers

teardown() {
	flowy_teardown
}

# rendezvous_step SELF OTHER TRIES: a step command that stamps its start,
# announces itself, waits (at most TRIES x 0.05 s) for OTHER to announce
# itself, and stamps its end. Started together, the two intervals overlap;
# run one after the other, the first one gives up waiting and they do not.
rendezvous_step() {
	local d=$BATS_TEST_TMPDIR
	printf '{"run": "date +%%s.%%N > out/t; touch %s/%s.started; i=0; while [ ! -e %s/%s.started ] && [ $i -lt %s ]; do sleep 0.05; i=$((i+1)); done; sleep 0.1; date +%%s.%%N >> out/t", "outputs": ["t_%s"]}' \
		"$d" "$1" "$d" "$2" "$3" "$1" | sed "s#out/t#out/t_$1#g"
}

# overlap A_FILE B_FILE: succeed when the [start, end] intervals overlap.
overlap() {
	local a0 a1 b0 b1
	a0=$(sed -n 1p "$1"); a1=$(sed -n 2p "$1")
	b0=$(sed -n 1p "$2"); b1=$(sed -n 2p "$2")
	echo "a: $a0 .. $a1  b: $b0 .. $b1" >&2
	awk -v a0="$a0" -v a1="$a1" -v b0="$b0" -v b1="$b1" \
		'BEGIN { exit !(a0 < b1 && b0 < a1) }'
}

@test "-j 2: two independent steps run at the same time" {
	mount_flowy -j 2
	mkdir "$mnt/pipelines/.par"
	rendezvous_step a b 200 >"$mnt/pipelines/.par/a.json"
	rendezvous_step b a 200 >"$mnt/pipelines/.par/b.json"
	mv "$mnt/pipelines/.par" "$mnt/pipelines/par"
	local id
	id=$(wait_new_run par)
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
	[ "$(wc -l <"$mnt/artifacts/par/t_a")" -eq 2 ]
	[ "$(wc -l <"$mnt/artifacts/par/t_b")" -eq 2 ]
	overlap "$mnt/artifacts/par/t_a" "$mnt/artifacts/par/t_b"
}

@test "-j 1: independent steps run one after the other" {
	mount_flowy -j 1
	mkdir "$mnt/pipelines/.ser"
	rendezvous_step a b 30 >"$mnt/pipelines/.ser/a.json"
	rendezvous_step b a 30 >"$mnt/pipelines/.ser/b.json"
	mv "$mnt/pipelines/.ser" "$mnt/pipelines/ser"
	local id
	id=$(wait_new_run ser)
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
	! overlap "$mnt/artifacts/ser/t_a" "$mnt/artifacts/ser/t_b" || false
}

@test "a dependent step starts only after its input is done" {
	mount_flowy -j 4
	write_step dep a '{"run": "sleep 0.3; date +%s.%N > out/x; date +%s.%N >> out/x", "outputs": ["x"]}'
	write_step dep b '{"run": "date +%s.%N > out/y; date +%s.%N >> out/y", "inputs": ["x"], "outputs": ["y"]}'
	local id
	id=$(wait_new_run dep)
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
	awk -v a1="$(sed -n 2p "$mnt/artifacts/dep/x")" -v b0="$(sed -n 1p "$mnt/artifacts/dep/y")" \
		'BEGIN { exit !(a1 <= b0) }'
}

@test "a step's environment: FLOWY_* variables and the FLOWY_PARAMS file" {
	mount_flowy
	local s=$mnt/pipelines/.envp
	mkdir "$s"
	printf '%s\n' '{"params": {"k": "v1", "num": 3, "obj": {"z": 1}, "unused": "u"}}' >"$s/pipeline.json"
	printf '%s\n' '{"run": "echo up > out/u", "outputs": ["u"]}' >"$s/up.json"
	printf '%s\n' '{"run": "env | grep ^FLOWY_ | LC_ALL=C sort > out/env; cat \"$FLOWY_PARAMS\" > out/params; pwd > out/pwd", "inputs": ["u"], "outputs": ["env", "params", "pwd"], "params": ["k", "num", "obj"]}' >"$s/s.json"
	printf '%s\n' '{"run": "env | grep ^FLOWY_PARAM_ | LC_ALL=C sort > out/tenv; cat \"$FLOWY_PARAMS\" > out/tparams", "outputs": ["tenv", "tparams"], "params": {"k": "override", "e": 2.5}}' >"$s/t.json"
	mv "$s" "$mnt/pipelines/envp"
	local id
	id=$(wait_new_run envp)
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
	local env=$mnt/artifacts/envp/env pwd
	pwd=$(cat "$mnt/artifacts/envp/pwd")
	get() { sed -n "s/^$1=//p" "$env"; }
	[ "$(get FLOWY_PIPELINE)" = envp ]
	[ "$(get FLOWY_STEP)" = s ]
	[ "$(get FLOWY_RUN)" = "$id" ]
	[ "$(get FLOWY_PARAM_k)" = v1 ]
	[ "$(get FLOWY_PARAM_num)" = 3 ]
	# Only scalar params the step declared are injected.
	! grep -q '^FLOWY_PARAM_obj=' "$env" || false
	! grep -q '^FLOWY_PARAM_unused=' "$env" || false
	[ "$(get FLOWY_IN)" = "$pwd/in" ]
	[ "$(get FLOWY_OUT)" = "$pwd/out" ]
	[ -n "$(get FLOWY_METRICS)" ]
	[ -n "$(get FLOWY_PARAMS)" ]
	# FLOWY_PARAMS holds the step's resolved params as JSON.
	[ "$(tr -d ' \t\n' <"$mnt/artifacts/envp/params")" = '{"k":"v1","num":3,"obj":{"z":1}}' ]
	# The object form overrides the context for that step.
	run cat "$mnt/artifacts/envp/tenv"
	expect_eq "$output" $'FLOWY_PARAM_e=2.5\nFLOWY_PARAM_k=override' "params of t"
	[ "$(tr -d ' \t\n' <"$mnt/artifacts/envp/tparams")" = '{"k":"override","e":2.5}' ]
}

@test "a step's cwd holds its code files, in/ and an empty out/" {
	mount_flowy
	local s=$mnt/pipelines/.cw
	mkdir -p "$s/lib"
	printf 'helper\n' >"$s/lib/h.sh"
	printf 'notes\n' >"$s/notes.txt"
	printf '%s\n' '{"run": "echo up > out/u", "outputs": ["u"]}' >"$s/up.json"
	printf '%s\n' '{"run": "ls -A out > out.before; find . | grep -v ^./out/ | LC_ALL=C sort > out/files; cat out.before > out/outdir; cat lib/h.sh > out/h", "inputs": ["u"], "outputs": ["files", "outdir", "h"]}' >"$s/s.json"
	printf '%s\n' '{"run": "find . | grep -v ^./out/ | LC_ALL=C sort > out/nfiles", "outputs": ["nfiles"], "code": ["lib"]}' >"$s/n.json"
	mv "$s" "$mnt/pipelines/cw"
	local id
	id=$(wait_new_run cw)
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
	[ "$(cat "$mnt/artifacts/cw/outdir")" = "" ]
	[ "$(cat "$mnt/artifacts/cw/h")" = helper ]
	run cat "$mnt/artifacts/cw/files"
	expect_eq "$output" ".
./in
./in/u
./lib
./lib/h.sh
./notes.txt
./out
./out.before" "files in the step's cwd"
	# A step that names its code gets only that code.
	grep -qx './lib/h.sh' "$mnt/artifacts/cw/nfiles"
	! grep -q 'notes.txt' "$mnt/artifacts/cw/nfiles" || false
}

@test "in/ inputs are read-only symlinks into the mount's artifacts" {
	mount_flowy
	write_step ro up '{"run": "echo up > out/u", "outputs": ["u"]}'
	write_step ro s '{"run": "{ echo x > in/u; echo rc=$?; echo y >> in/u; echo rc=$?; cat in/u; readlink in/u; } > out/wr 2>&1; true", "inputs": ["u"], "outputs": ["wr"]}'
	local id
	id=$(wait_new_run ro)
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
	local hex
	hex=$(readlink "$mnt/artifacts/ro/u")
	hex=${hex##*/}
	run cat "$mnt/artifacts/ro/wr"
	[ "${#lines[@]}" -eq 6 ]
	[[ ${lines[0]} == *"in/u: Read-only file system" ]]
	[ "${lines[1]}" != rc=0 ]
	[[ ${lines[2]} == *"in/u: Read-only file system" ]]
	[ "${lines[3]}" != rc=0 ]
	[ "${lines[4]}" = up ]
	[ "${lines[5]}" = "$mnt/artifacts/sha256/$hex" ]
	[ "$(cat "$mnt/artifacts/ro/u")" = up ]
}

@test "ln -s ../in/x out/y passes an input through as the same artifact" {
	mount_flowy
	write_step pt up '{"run": "mkdir out/d && echo deep > out/d/f && echo flat > out/f", "outputs": ["d", "f"]}'
	write_step pt s '{"run": "ln -s ../in/d out/d2 && ln -s ../in/f out/f2", "inputs": ["d", "f"], "outputs": ["d2", "f2"]}'
	local id
	id=$(wait_new_run pt)
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
	[ "$(readlink "$mnt/artifacts/pt/d2")" = "$(readlink "$mnt/artifacts/pt/d")" ]
	[ "$(readlink "$mnt/artifacts/pt/f2")" = "$(readlink "$mnt/artifacts/pt/f")" ]
	[ "$(cat "$mnt/artifacts/pt/d2/f")" = deep ]
}

@test "a step's log is readable while it runs" {
	mount_flowy
	local go=$BATS_TEST_TMPDIR/go
	write_step lg s "{\"run\": \"echo started; i=0; while [ ! -e $go ] && [ \$i -lt 200 ]; do sleep 0.05; i=\$((i+1)); done; echo ended; echo > out/o\", \"outputs\": [\"o\"]}"
	local i id= log=
	for ((i = 0; i < RUN_WAIT; i++)); do
		id=$(latest_run_of lg)
		if [ -n "$id" ]; then
			log=$(step_file "$id" s log 2>/dev/null)
			[ "$log" = started ] && break
		fi
		sleep 0.05
	done
	[ "$log" = started ]
	[ "$(step_file "$id" s status)" = running ]
	[ "$(cat "$mnt/runs/$id/status")" = running ]
	[ "$(cat "$mnt/runs/$id/finished")" = "" ]
	touch "$go"
	[ "$(wait_run "$id")" = succeeded ]
	[ "$(step_file "$id" s log)" = $'started\nended' ]
}

@test "in-pipeline symlinks reach the step's cwd as symlinks, and count as code" {
	mount_flowy
	local s=$mnt/pipelines/.ln
	mkdir -p "$s/lib"
	printf 'v1\n' >"$s/lib/conf.txt"
	ln -s lib/conf.txt "$s/conf"
	printf '%s\n' '{"run": "readlink conf > out/l; cat conf > out/c", "outputs": ["l", "c"]}' >"$s/s.json"
	mv "$s" "$mnt/pipelines/ln"
	local id
	id=$(wait_new_run ln)
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
	[ "$(cat "$mnt/artifacts/ln/l")" = lib/conf.txt ]
	[ "$(cat "$mnt/artifacts/ln/c")" = v1 ]
	# repointing the link is a code change: the step reruns
	printf 'v2\n' >"$mnt/pipelines/ln/lib/other.txt"
	ln -sfn lib/other.txt "$mnt/pipelines/ln/conf"
	local id2
	id2=$(wait_new_run ln "$id")
	[ "$(cat "$mnt/artifacts/ln/c")" = v2 ]
	[[ $(cat "$mnt/runs/$id2/steps/s/reason") == *"conf changed"* ]]
}
