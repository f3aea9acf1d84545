#!/usr/bin/env bats
# registry.bats - registry/ through the mount: versions from a step's
# "register" key, aliases set with ln -s / ln -sfn and removed with rm,
# their history, models made by hand (mkdir, .ctl add), refusals with
# their errno and reason, and registry:<model>@<alias> inputs that rerun
# (or mark stale) the pipelines reading an alias when it moves.

load helpers

setup() {
	mount_flowy -j 2
	P=$mnt/pipelines
	R=$mnt/registry
}

teardown() {
	flowy_teardown
}

# train_pipeline: pipeline "t" whose step "fit" writes model-<lr> and
# the metric acc, registering its output "model" as model clf.
train_pipeline() {
	mkdir -p "$P/.t"
	echo '{"params": {"lr": 1}}' >"$P/.t/pipeline.json"
	echo '{"run": "printf model-$FLOWY_PARAM_lr > out/model; echo \"{\\\"acc\\\": $FLOWY_PARAM_lr.5}\" >> $FLOWY_METRICS", "outputs": ["model"], "params": ["lr"], "register": {"model": "clf"}}' >"$P/.t/fit.json"
	mv "$P/.t" "$P/t"
}

# run_t [K=V]: a run of t with those overrides; waits for it, prints its id.
run_t() {
	echo "run $*" >"$P/t/.ctl"
	local id
	id=$(readlink "$P/t/.latest")
	id=${id##*/}
	[ "$(wait_run "$id")" = succeeded ]
	echo "$id"
}

hash_of() {
	printf '%s' "$1" | sha256sum | cut -c1-64
}

@test "a registered output's new contents become v1, v2 ...; the same content never twice" {
	train_pipeline
	local r1 r2 r3
	r1=$(wait_new_run t)
	r2=$(run_t lr=2)
	r3=$(run_t lr=1) # the content of v1 again (cached): no new version
	local h1 h2
	h1=$(hash_of model-1)
	h2=$(hash_of model-2)
	expect_eq "$(ls "$R")" "clf" "models"
	expect_eq "$(ls "$R/clf")" "$(printf 'history\nv1\nv2\nversions.tsv')" "model dir"
	expect_eq "$(readlink "$R/clf/v1")" "../../artifacts/sha256/$h1" "v1"
	expect_eq "$(readlink "$R/clf/v2")" "../../artifacts/sha256/$h2" "v2"
	expect_eq "$(cat "$R/clf/v2")" "model-2" "v2 reads the artifact"
	expect_eq "$(cut -f1-6,8 "$R/clf/versions.tsv")" "$(printf 'version\thash\tpipeline\trun\tstep\toutput\tacc\nv1\t%s\tt\t%s\tfit\tmodel\t1.5\nv2\t%s\tt\t%s\tfit\tmodel\t2.5' "$h1" "$r1" "$h2" "$r2")" "versions.tsv"
	cut -f7 "$R/clf/versions.tsv" | tail -n +2 | grep -Eqx '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z'
	[ "$r3" -gt "$r2" ]
	expect_eq "$(stat -c '%A' "$R/clf/versions.tsv" "$R/clf/history" "$R/clf/.ctl" "$R/clf/.status")" "$(printf -- '-r--r--r--\n-r--r--r--\n--w-------\n-r--r--r--')" "modes"
}

@test "aliases: ln -s, ln -sfn to promote and roll back, rm; history records every move" {
	train_pipeline
	wait_new_run t >/dev/null
	run_t lr=2 >/dev/null
	cd "$R/clf"
	ln -s v1 production
	expect_eq "$(readlink production)" v1 "production"
	expect_eq "$(cat production)" model-1 "through the alias"
	ln -sfn v2 production
	ln -sfn v2 production # where it already points: no move
	ln -s v2 staging
	ln -sfn v1 production
	rm staging
	expect_eq "$(readlink production)" v1 "after the rollback"
	[ ! -e staging ] && [ ! -L staging ]
	expect_eq "$(ls)" "$(printf 'history\nproduction\nv1\nv2\nversions.tsv')" "listing"
	expect_eq "$(cut -f2- history)" "$(printf 'alias\tfrom\tto\tuid\nproduction\t\tv1\t%s\nproduction\tv1\tv2\t%s\nstaging\t\tv2\t%s\nproduction\tv2\tv1\t%s\nstaging\tv2\t\t%s' "$(id -u)" "$(id -u)" "$(id -u)" "$(id -u)" "$(id -u)")" "history"
	cut -f1 history | tail -n +2 | grep -Eqx '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z'
	cd /
}

@test "refusals: bad alias names, targets that are not versions, writes elsewhere; .status says why" {
	train_pipeline
	wait_new_run t >/dev/null
	cd "$R/clf"
	run ln -s v9 production
	[ "$status" -ne 0 ] && [[ $output == *"No such file or directory"* ]]
	expect_eq "$(grep '^last refusal' .status)" "last refusal: ln -s v9 production: No such file or directory: no such version" ".status"
	run ln -s ../../artifacts/sha256/x production
	[ "$status" -ne 0 ] && [[ $output == *"Invalid argument"* ]]
	expect_eq "$(grep '^last refusal' .status)" "last refusal: ln -s ../../artifacts/sha256/x production: Invalid argument: an alias points at a version: v<N>" ".status"
	run ln -s v1 v7
	[ "$status" -ne 0 ] && [[ $output == *"Invalid argument"* ]]
	expect_eq "$(grep '^last refusal' .status)" "last refusal: ln -s v1 v7: Invalid argument: v<N> names a version, not an alias" ".status"
	run ln -s v1 v1
	[ "$status" -ne 0 ] && [[ $output == *"File exists"* ]]
	run rm v1
	[ "$status" -ne 0 ] && [[ $output == *"Permission denied"* ]]
	expect_eq "$(grep '^last refusal' .status)" "last refusal: rm v1: Permission denied: versions are permanent" ".status"
	run touch notes.txt
	[ "$status" -ne 0 ] && [[ $output == *"Permission denied"* ]]
	run rm history
	[ "$status" -ne 0 ] && [[ $output == *"Permission denied"* ]]
	run rm production
	[ "$status" -ne 0 ] && [[ $output == *"No such file or directory"* ]]
	run mkdir "$R/clf/sub"
	[ "$status" -ne 0 ] && [[ $output == *"Permission denied"* ]]
	run mkdir "$R/bad name"
	[ "$status" -ne 0 ] && [[ $output == *"Invalid argument"* ]]
	run rmdir "$R/clf"
	[ "$status" -ne 0 ] && [[ $output == *"Directory not empty"* ]]
	expect_eq "$(ls "$R/clf")" "$(printf 'history\nv1\nversions.tsv')" "nothing changed"
	expect_eq "$(tail -n +2 history)" "" "no moves"
	grep -q 'registry/clf: rm v1: Permission denied: versions are permanent' "$mnt/log"
	cd /
}

@test "a model made by hand: mkdir, add sha256:<hex> to .ctl; refused adds fail the write" {
	write_step src a '{"run": "printf weights > out/w", "outputs": ["w"]}'
	wait_new_run src >/dev/null
	local h
	h=$(hash_of weights)
	mkdir "$R/hand"
	expect_eq "$(cat "$R/hand/versions.tsv")" "$(printf 'version\thash\tpipeline\trun\tstep\toutput\tcreated')" "empty versions.tsv"
	echo "add sha256:$h" >"$R/hand/.ctl"
	expect_eq "$(readlink "$R/hand/v1")" "../../artifacts/sha256/$h" "v1"
	expect_eq "$(cut -f1-6 "$R/hand/versions.tsv" | tail -1)" "$(printf 'v1\t%s\t\t\t\t' "$h")" "a version made by hand has no origin"
	run bash -c "echo 'add sha256:$h' > '$R/hand/.ctl'"
	[ "$status" -ne 0 ] && [[ $output == *"File exists"* ]]
	run bash -c "echo 'add sha256:$(hash_of nothing)' > '$R/hand/.ctl'"
	[ "$status" -ne 0 ] && [[ $output == *"No such file or directory"* ]]
	expect_eq "$(grep '^last refusal' "$R/hand/.status")" "last refusal: add sha256:$(hash_of nothing): No such file or directory: no such artifact in the store" ".status"
	run bash -c "echo 'promote v1' > '$R/hand/.ctl'"
	[ "$status" -ne 0 ] && [[ $output == *"Invalid argument"* ]]
	run bash -c "echo 'add sha256:$h' > '$R/nomodel/.ctl'"
	[ "$status" -ne 0 ]
	mkdir "$R/empty"
	rmdir "$R/empty"
	expect_eq "$(ls "$R")" "hand" "models"
	expect_eq "$(head -3 "$R/hand/.status")" "$(printf 'model hand\nversions 1\naliases 0')" ".status counts"
}

# consumer P [AUTORUN]: pipeline P whose step "use" copies the version
# production of clf points at.
consumer() {
	mkdir -p "$P/.$1"
	[ -z "${2:-}" ] || echo "{\"autorun\": $2}" >"$P/.$1/pipeline.json"
	echo '{"run": "cat in/clf > out/used", "inputs": ["registry:clf@production"], "outputs": ["used"]}' >"$P/.$1/use.json"
	mv "$P/.$1" "$P/$1"
}

@test "registry:<model>@<alias> input: the step gets the alias's version; a move reruns the reader" {
	train_pipeline
	wait_new_run t >/dev/null
	run_t lr=2 >/dev/null
	ln -s v1 "$R/clf/production"
	consumer deploy
	local d1 d2
	d1=$(wait_new_run deploy)
	expect_eq "$(cat "$mnt/artifacts/deploy/used")" model-1 "deploy used v1"
	expect_eq "$(readlink "$mnt/runs/$d1/steps/use/inputs/clf")" "../../../../../artifacts/sha256/$(hash_of model-1)" "input link"
	ln -sfn v2 "$R/clf/production"
	d2=$(wait_new_run deploy "$d1")
	expect_eq "$(cat "$mnt/artifacts/deploy/used")" model-2 "deploy used v2"
	grep -q '"trigger":[[:space:]]*"input registry:clf@production changed"' "$mnt/runs/$d2/run.json"
	expect_eq "$(cat "$mnt/lineage/sha256/$(hash_of model-2)/registry")" "$(printf 'model\tversion\taliases\nclf\tv2\tproduction')" "lineage registry"
	expect_eq "$(cat "$mnt/lineage/sha256/$(hash_of model-1)/registry")" "$(printf 'model\tversion\taliases\nclf\tv1\t')" "lineage registry of v1"
}

@test "registry input with autorun off: a move marks the reader stale; a missing alias fails its run" {
	train_pipeline
	wait_new_run t >/dev/null
	consumer gate false
	echo run >"$P/gate/.ctl"
	local g1
	g1=$(readlink "$P/gate/.latest")
	g1=${g1##*/}
	expect_eq "$(wait_run "$g1")" failed "no alias yet"
	expect_eq "$(cat "$mnt/runs/$g1/steps/use/error")" "input registry:clf@production: no such model or alias" "error"
	ln -s v1 "$R/clf/production"
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q '^stale: input registry' "$P/gate/.status" && break
		sleep 0.1
	done
	expect_eq "$(grep '^stale' "$P/gate/.status")" 'stale: input registry:clf@production changed (autorun is off: write "run" to .ctl)' ".status"
	expect_eq "$(ls "$mnt/runs" | grep -c .)" 3 "no run queued (t, gate, latest)"
}

@test "an invalid registry reference is a definition error" {
	mkdir -p "$P/.bad"
	echo '{"run": "true", "inputs": ["registry:clf"], "outputs": ["o"]}' >"$P/.bad/s.json"
	mv "$P/.bad" "$P/bad"
	grep -q 'input "registry:clf": expected registry:<model>@<alias>' "$P/bad/.status"
	echo '{"run": "true", "inputs": ["registry:clf@v2"], "outputs": ["o"]}' >"$P/bad/s.json"
	grep -q 'input "registry:clf@v2": expected registry:<model>@<alias>, both names' "$P/bad/.status"
}
