#!/usr/bin/env bats
# layout.bats - the live mount matches fs-layout/tree.tsv, row by row.
#
# A small pipeline runs (a step making a file and a directory output, a step
# consuming both), then every row of tree.tsv has its placeholders replaced
# by real values and is checked for type and permission bits.

load helpers

TSV=$BATS_TEST_DIRNAME/../../fs-layout/tree.tsv

setup() {
	mount_flowy
	local s=$mnt/pipelines/.lay
	mkdir "$s"
	printf '%s\n' '{"params": {"x": 1, "name": "lay"}}' >"$s/pipeline.json"
	cat >"$s/make.json" <<'JSON'
{"run": "mkdir out/d && echo in-d > out/d/f1 && echo f > out/f && echo '{\"loss\": 0.5}' >> \"$FLOWY_METRICS\"", "outputs": ["d", "f"]}
JSON
	cat >"$s/use.json" <<'JSON'
{"run": "cat in/f in/d > out/g && echo '{\"acc\": 0.75}' >> \"$FLOWY_METRICS\"", "inputs": ["f", "d"], "foreach": "d", "outputs": ["g"], "params": ["x"]}
JSON
	mv "$s" "$mnt/pipelines/lay"
	ID=$(wait_new_run lay)
	[ "$(cat "$mnt/runs/$ID/status")" = succeeded ]
	HEXF=$(readlink "$mnt/artifacts/lay/f")
	HEXF=${HEXF##*/}
	HEXD=$(readlink "$mnt/artifacts/lay/d")
	HEXD=${HEXD##*/}
	HEXG=$(readlink "$mnt/artifacts/lay/g")
	HEXG=${HEXG##*/}
}

teardown() {
	flowy_teardown
}

# expand PATH: the concrete paths (relative to the mount) a tree.tsv path
# stands for in this store, one per line. The pipeline "lay" has steps
# make (-> d f, metric loss) and use (f d -> g, metric acc), a foreach
# over the entries of d (one: f1).
expand() {
	local p=$1 s n h sn
	p=${p//<p>/lay}
	p=${p//<id>/$ID}
	if [[ $p == *'/parents/<name>'* ]]; then
		for n in f d; do s=${p//<hex>/$HEXG}; echo "${s//<name>/$n}"; done
	elif [[ $p == *'/children/lay:<step>:<name>'* ]]; then
		for h in "$HEXF" "$HEXD"; do
			s=${p//<hex>/$h}; s=${s//<step>/use}; echo "${s//<name>/g}"
		done
	elif [[ $p == *'<hex>'* ]]; then
		for h in "$HEXF" "$HEXD" "$HEXG"; do echo "${p//<hex>/$h}"; done
	elif [[ $p == *'/workdir' || $p == */.lay/* ]]; then
		: # a failed step's, a staging directory's: newcomer.bats checks them
	elif [[ $p == *'/items'* ]]; then
		s=${p//<step>/use}
		echo "${s//<item>/f1}"
	elif [[ $p == *'<step>'*'<metric>'* ]]; then
		for sn in make:loss use:acc; do
			s=${p//<step>/${sn%%:*}}
			echo "${s//<metric>/${sn#*:}}"
		done
	elif [[ $p == *'<metric>'* ]]; then
		for n in loss acc; do echo "${p//<metric>/$n}"; done
	elif [[ $p == *'inputs/<name>'* ]]; then
		for n in f d; do s=${p//<step>/use}; echo "${s//<name>/$n}"; done
	elif [[ $p == *'outputs/<name>'* ]]; then
		for sn in make:d make:f use:g; do
			s=${p//<step>/${sn%%:*}}
			echo "${s//<name>/${sn#*:}}"
		done
	elif [[ $p == *'<step>'* ]]; then
		for s in make use; do echo "${p//<step>/$s}"; done
	elif [[ $p == *'<name>'* ]]; then
		for n in d f g; do echo "${p//<name>/$n}"; done
	else
		echo "$p"
	fi
}

# kind_of PATH: symlink | dir | file | missing (symlinks are not followed).
kind_of() {
	if [ -L "$1" ]; then echo symlink
	elif [ -d "$1" ]; then echo dir
	elif [ -f "$1" ]; then echo file
	else echo missing
	fi
}

@test "tree.tsv exists and has rows" {
	[ -f "$TSV" ]
	run grep -vc '^#' "$TSV"
	[ "$output" -ge 30 ]
}

@test "every row of fs-layout/tree.tsv matches the live mount (type and perm)" {
	local errs="" rows=0 checked=0 path type perm caching what c full kind want_perm i
	while IFS=$'\t' read -r path type perm caching what; do
		[[ -z $path || $path == \#* ]] && continue
		rows=$((rows + 1))
		local n=0
		while read -r c; do
			n=$((n + 1))
			full=$mnt$c
			kind=$(kind_of "$full")
			IFS='|' read -ra types <<<"$type"
			IFS='|' read -ra perms <<<"$perm"
			want_perm=
			for i in "${!types[@]}"; do
				if [ "${types[$i]}" = "$kind" ]; then
					want_perm=${perms[$i]:-${perms[0]}}
				fi
			done
			if [ -z "$want_perm" ]; then
				errs+="$c: is $kind, tree.tsv says $type"$'\n'
				continue
			fi
			local got
			got=$(stat -c %a "$full")
			if [ "$got" != "$want_perm" ]; then
				errs+="$c: perm $got, tree.tsv says $want_perm"$'\n'
			fi
			checked=$((checked + 1))
		done < <(expand "$path")
		[ "$n" -gt 0 ] || [[ $path == */workdir || $path == */.\<p\>/* ]] || errs+="$path: expanded to nothing"$'\n'
	done <"$TSV"
	if [ -n "$errs" ]; then
		printf '%s' "$errs" >&2
		false
	fi
	[ "$rows" -ge 30 ]
	[ "$checked" -gt "$rows" ]
}

@test "a file and a directory artifact exist under artifacts/sha256 with their kinds" {
	[ -f "$mnt/artifacts/sha256/$HEXF" ]
	[ ! -L "$mnt/artifacts/sha256/$HEXF" ]
	[ -d "$mnt/artifacts/sha256/$HEXD" ]
	[ ! -L "$mnt/artifacts/sha256/$HEXD" ]
	[ "$(stat -c %a "$mnt/artifacts/sha256/$HEXD/f1")" = 444 ]
	[ "$(cat "$mnt/artifacts/sha256/$HEXF")" = f ]
	[ "$(cat "$mnt/artifacts/sha256/$HEXD/f1")" = in-d ]
}

@test "directories list exactly the rows tree.tsv gives them" {
	# children DIR_PATTERN: the fixed (placeholder-free) names tree.tsv lists
	# directly under DIR_PATTERN, sorted.
	children() {
		awk -F'\t' -v d="$1" '!/^#/ && NF {
			p = $1
			if (d == "/") pre = "/"; else pre = d "/"
			if (index(p, pre) != 1 || p == d) next
			rest = substr(p, length(pre) + 1)
			if (rest ~ /\// || rest ~ /</) next
			print rest
		}' "$TSV" | LC_ALL=C sort
	}
	local exp act
	exp=$(children /)
	act=$(ls -A "$mnt/" | LC_ALL=C sort)
	expect_eq "$act" "$exp" "entries of /"
	exp=$(children '/runs/<id>')
	act=$(ls -A "$mnt/runs/$ID" | LC_ALL=C sort)
	expect_eq "$act" "$exp" "entries of /runs/$ID"
	exp=$(children '/runs/<id>/steps/<step>' | grep -vx workdir)
	act=$(ls -A "$mnt/runs/$ID/steps/use" | LC_ALL=C sort)
	expect_eq "$act" "$exp" "entries of /runs/$ID/steps/use (a foreach step)"
	act=$(ls -A "$mnt/runs/$ID/steps/make" | LC_ALL=C sort)
	expect_eq "$act" "$(grep -vx items <<<"$exp")" "entries of /runs/$ID/steps/make"
	expect_eq "$(ls -A "$mnt/runs/$ID/steps/use/items")" f1 "items of use"
	expect_eq "$(ls -A "$mnt/runs/$ID/steps/use/items/f1" | LC_ALL=C sort)" \
		"$(children '/runs/<id>/steps/<step>/items/<item>')" "entries of an item"
	local h
	exp=$(children '/lineage/sha256/<hex>')
	for h in "$HEXF" "$HEXD" "$HEXG"; do
		act=$(ls -A "$mnt/lineage/sha256/$h" | LC_ALL=C sort)
		expect_eq "$act" "$exp" "entries of /lineage/sha256/$h"
	done
	act=$(ls -A "$mnt/lineage" | LC_ALL=C sort)
	expect_eq "$act" "$(printf 'lay\nsha256')" "entries of /lineage"
	act=$(ls -A "$mnt/lineage/lay")
	expect_eq "$act" "$(printf 'd\nf\ng')" "entries of lineage/lay"
	act=$(ls -A "$mnt/metrics/lay")
	expect_eq "$act" "$(printf 'acc\nacc.svg\nloss\nloss.svg\nruns.tsv')" "entries of metrics/lay"
	act=$(ls -A "$mnt/runs/$ID/steps/make/metrics")
	expect_eq "$act" "$(printf 'loss\nloss.svg')" "metrics of make"
	act=$(ls -A "$mnt/runs/$ID/steps")
	expect_eq "$act" "$(printf 'make\nuse')" "steps of run $ID"
	act=$(ls -A "$mnt/runs/$ID/steps/use/inputs")
	expect_eq "$act" "$(printf 'd\nf')" "inputs of use"
	act=$(ls -A "$mnt/runs/$ID/steps/make/outputs")
	expect_eq "$act" "$(printf 'd\nf')" "outputs of make"
	act=$(ls -A "$mnt/artifacts/lay")
	expect_eq "$act" "$(printf 'd\nf\ng')" "entries of artifacts/lay"
	act=$(ls -A "$mnt/pipelines/lay")
	expect_eq "$act" "$(printf '.ctl\n.dag\n.dag.dot\n.dag.svg\n.latest\n.plan\n.status\nmake.json\npipeline.json\nuse.json')" \
		"entries of pipelines/lay"
}

@test "symlinks point where tree.tsv says" {
	[ "$(readlink "$mnt/runs/latest")" = "$ID" ]
	[ "$(readlink "$mnt/pipelines/lay/.latest")" = "../../runs/$ID" ]
	[ "$(readlink "$mnt/artifacts/lay/f")" = "../sha256/$HEXF" ]
	[ "$(readlink "$mnt/artifacts/lay/d")" = "../sha256/$HEXD" ]
	[ "$(readlink "$mnt/runs/$ID/steps/use/inputs/f")" = "../../../../../artifacts/sha256/$HEXF" ]
	[ "$(readlink "$mnt/runs/$ID/steps/use/inputs/d")" = "../../../../../artifacts/sha256/$HEXD" ]
	[ "$(readlink "$mnt/runs/$ID/steps/make/outputs/d")" = "../../../../../artifacts/sha256/$HEXD" ]
	# ... and resolve to the content through the mount.
	[ "$(cat "$mnt/runs/latest/steps/use/outputs/g/f1")" = "$(printf 'f\nin-d')" ]
	[ "$(cat "$mnt/artifacts/lay/g/f1")" = "$(printf 'f\nin-d')" ]
	[ "$(cat "$mnt/runs/$ID/steps/use/inputs/d/f1")" = in-d ]
	# Hashes are SHA-256 of the content for a file output.
	[ "$HEXF" = "$(printf 'f\n' | sha256sum | cut -d' ' -f1)" ]
	[[ $HEXD =~ ^[0-9a-f]{64}$ ]]
	# lineage
	[ "$(readlink "$mnt/lineage/lay/g")" = "../sha256/$HEXG" ]
	[ "$(readlink "$mnt/lineage/sha256/$HEXG/run")" = "../../../runs/$ID" ]
	[ "$(readlink "$mnt/lineage/sha256/$HEXG/parents/f")" = "../../$HEXF" ]
	[ "$(readlink "$mnt/lineage/sha256/$HEXG/parents/d")" = "../../$HEXD" ]
	[ "$(readlink "$mnt/lineage/sha256/$HEXF/children/lay:use:g")" = "../../$HEXG" ]
	[ "$(cat "$mnt/lineage/sha256/$HEXG/run/pipeline")" = lay ]
	[ -z "$(ls -A "$mnt/lineage/sha256/$HEXF/parents")" ]
	[ -z "$(ls -A "$mnt/lineage/sha256/$HEXG/children")" ]
}

@test "lineage: producer, params, ancestors and descendants" {
	run cat "$mnt/lineage/sha256/$HEXG/producer"
	expect_eq "$output" "$(printf 'pipeline\tlay\nstep\tuse\nrun\t%s\noutput\tg' "$ID")" producer
	[ "$(tr -d ' \t\n' <"$mnt/lineage/sha256/$HEXG/params")" = '{"x":1}' ]
	run cat "$mnt/lineage/sha256/$HEXG/ancestors"
	expect_eq "$output" "$(printf 'g\tlay\tuse\t%s\t%s\n  d\tlay\tmake\t%s\t%s\n  f\tlay\tmake\t%s\t%s' \
		"$ID" "$HEXG" "$ID" "$HEXD" "$ID" "$HEXF")" ancestors
	run cat "$mnt/lineage/sha256/$HEXF/descendants"
	expect_eq "$output" "$(printf 'f\tlay\tmake\t%s\t%s\n  lay:use:g\tlay\tuse\t%s\t%s' \
		"$ID" "$HEXF" "$ID" "$HEXG")" descendants
}

@test "metrics: a step's series and the pipeline's TSVs" {
	run cat "$mnt/runs/$ID/steps/make/metrics/loss"
	expect_eq "$output" $'index\tvalue\n0\t0.5' "make/metrics/loss"
	run awk -F'\t' '{ print $1 "|" $2 "|" $3 }' "$mnt/metrics/lay/acc"
	expect_eq "$output" "$(printf 'run|step|value\n%s|use|0.75' "$ID")" "metrics/lay/acc"
	run head -n 1 "$mnt/metrics/lay/runs.tsv"
	expect_eq "$output" $'run\tstatus\tstarted\tduration\tparams.name\tparams.x\tmetrics.acc\tmetrics.loss\tcommit' "runs.tsv header"
	run awk -F'\t' 'NR == 2 { print $1 "|" $2 "|" $5 "|" $6 "|" $7 "|" $8 }' "$mnt/metrics/lay/runs.tsv"
	expect_eq "$output" "$ID|succeeded|lay|1|0.75|0.5" "runs.tsv row"
}

@test "a run's snapshot holds the step definitions as they ran" {
	for s in make use; do
		cmp "$mnt/runs/$ID/snapshot/$s.json" "$mnt/pipelines/lay/$s.json"
	done
	printf '%s\n' '{"run": "echo changed > out/g", "inputs": ["f", "d"], "outputs": ["g"]}' >"$mnt/pipelines/lay/use.json"
	local id2
	id2=$(wait_new_run lay "$ID")
	cmp "$mnt/runs/$id2/snapshot/use.json" "$mnt/pipelines/lay/use.json"
	! cmp -s "$mnt/runs/$ID/snapshot/use.json" "$mnt/pipelines/lay/use.json" || false
	grep -q 'acc' "$mnt/runs/$ID/snapshot/use.json"
}

@test "README is generated text starting with flowyfs:" {
	run head -c 8 "$mnt/README"
	[ "$output" = "flowyfs:" ]
	[ "$(tail -c 1 "$mnt/README" | od -An -c | tr -d ' ')" = '\n' ]
	run grep -c . "$mnt/README"
	[ "$output" -gt 3 ]
}

@test "generated files have the documented formats and end with a newline" {
	local iso='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$'
	local dur='^[0-9]+\.[0-9]{3}$'
	[ "$(cat "$mnt/runs/$ID/pipeline")" = lay ]
	[[ $(cat "$mnt/runs/$ID/started") =~ $iso ]]
	[[ $(cat "$mnt/runs/$ID/finished") =~ $iso ]]
	[[ $(cat "$mnt/runs/$ID/duration") =~ $dur ]]
	[ "$(tr -d ' \t\n' <"$mnt/runs/$ID/params.json")" = '{"x":1,"name":"lay"}' ]
	[ "$(cat "$mnt/runs/$ID/error")" = "" ]
	for s in make use; do
		[ "$(cat "$mnt/runs/$ID/steps/$s/status")" = succeeded ]
		[ "$(cat "$mnt/runs/$ID/steps/$s/exit_code")" = 0 ]
		[ "$(cat "$mnt/runs/$ID/steps/$s/attempts")" = 1 ]
		[ "$(cat "$mnt/runs/$ID/steps/$s/cached")" = no ]
		[ "$(cat "$mnt/runs/$ID/steps/$s/reason")" = "no earlier run" ]
		[ "$(cat "$mnt/runs/$ID/steps/$s/error")" = "" ]
		[[ $(cat "$mnt/runs/$ID/steps/$s/duration") =~ $dur ]]
	done
	run cat "$mnt/pipelines/lay/.status"
	[ "$output" = "$(printf 'valid\nlast run: %s succeeded' "$ID")" ]
	run cat "$mnt/pipelines/lay/.dag"
	[ "$output" = "$(printf 'make\t- -> d,f\nuse\tf,d -> g')" ] ||
		[ "$output" = "$(printf 'make\t- -> d,f\nuse\td,f -> g')" ]
	run head -n 1 "$mnt/pipelines/lay/.dag.dot"
	[[ $output == digraph* ]]
	run awk -F'\t' '{ print $1 "|" $2 "|" $4 "|" $5 }' "$mnt/runs/$ID/summary"
	[ "$output" = "$(printf 'step|status|cached|outputs\nmake|succeeded|no|d,f\nuse|succeeded|no|g')" ]
	local f
	for f in "$mnt"/runs/"$ID"/{status,pipeline,started,finished,duration,params.json,summary,error,run.json,env,dag.dot,pipeline.commit} \
		"$mnt"/lineage/sha256/"$HEXG"/{producer,params,ancestors,descendants} \
		"$mnt"/metrics/lay/{runs.tsv,acc,loss} "$mnt/runs/$ID/steps/make/metrics/loss" \
		"$mnt"/runs/"$ID"/steps/make/{status,exit_code,attempts,duration,cached,reason,error} \
		"$mnt"/pipelines/lay/{.status,.dag,.dag.dot,.dag.svg} \
		"$mnt"/runs/"$ID"/{dag.svg,report.html} "$mnt"/metrics/lay/loss.svg; do
		if [ "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" != '\n' ]; then
			echo "$f does not end with a newline" >&2
			false
		fi
	done
}

@test "readdir's entry types agree with stat everywhere (find -type vs test -d/-L/-f)" {
	local t p k bad=""
	for t in d f l; do
		while IFS= read -r p; do
			k=$(kind_of "$p")
			case $t:$k in d:dir | f:file | l:symlink) continue ;; esac
			bad+="${p#"$mnt"}: readdir type $t, stat says $k"$'\n'
		done < <(find "$mnt" -mindepth 1 -type "$t")
	done
	if [ -n "$bad" ]; then
		printf '%s' "$bad" >&2
		false
	fi
	# find walked into the lineage and artifact trees.
	[ -n "$(find "$mnt/lineage/sha256" -mindepth 2 -name producer)" ]
	[ -n "$(find "$mnt/artifacts/sha256" -mindepth 2 -name f1)" ]
}

@test "metrics/<p>/runs.tsv of a pipeline without params or metrics" {
	write_step plain s '{"run": "echo > out/o", "outputs": ["o"]}'
	local id
	id=$(wait_new_run plain)
	run cat "$mnt/metrics/plain/runs.tsv"
	daemon_alive
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "$(printf 'run\tstatus\tstarted\tduration\tcommit')" ]
	[[ ${lines[1]} == "$id"$'\t'succeeded$'\t'* ]]
	[ "${#lines[@]}" -eq 2 ]
}

@test "concurrent readers of generated files all see the right content" {
	local f pids="" i p failed=0
	for f in "runs/$ID/pipeline" "runs/$ID/status" "runs/$ID/summary" pipelines/lay/.status; do
		(
			want=$(cat "$mnt/$f")
			for ((i = 0; i < 300; i++)); do
				[ "$(cat "$mnt/$f")" = "$want" ] || exit 1
			done
		) &
		pids+=" $!"
	done
	for p in $pids; do
		wait "$p" || failed=1
	done
	daemon_alive
	[ "$failed" -eq 0 ]
	daemon_alive
	[ "$(cat "$mnt/runs/$ID/pipeline")" = lay ]
}
