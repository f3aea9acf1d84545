#!/usr/bin/env bats
# inputs.bats - the other kinds of input reference: other/name,
# file:/abs/path (file or directory, watched), sha256:<hex> (pinned).

load helpers

setup() {
	mount_flowy
	H=$BATS_TEST_TMPDIR/host
	mkdir -p "$H/dir/sub"
	echo hostdata >"$H/host.txt"
	echo h1 >"$H/dir/f"
	echo h2 >"$H/dir/sub/g"
	write_step up a '{"run": "echo upv1 > out/data", "outputs": ["data"]}'
	UP=$(wait_new_run up)
	[ "$(cat "$mnt/runs/$UP/status")" = succeeded ]
	HEX=$(readlink "$mnt/artifacts/up/data")
	HEX=${HEX##*/}
}

teardown() {
	flowy_teardown
}

@test "other/name, file: and sha256: inputs appear in in/ with their content" {
	write_step down s "{\"run\": \"cat in/data in/host.txt in/dir/f in/dir/sub/g in/$HEX > out/all\", \"inputs\": [\"up/data\", \"file:$H/host.txt\", \"file:$H/dir\", \"sha256:$HEX\"], \"outputs\": [\"all\"]}"
	local id
	id=$(wait_new_run down)
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
	run cat "$mnt/artifacts/down/all"
	expect_eq "$output" $'upv1\nhostdata\nh1\nh2\nupv1' "all"
	run ls "$mnt/runs/$id/steps/s/inputs"
	expect_eq "$output" "$HEX"$'\ndata\ndir\nhost.txt' "inputs/"
	[ "$(readlink "$mnt/runs/$id/steps/s/inputs/data")" = "../../../../../artifacts/sha256/$HEX" ]
	[ "$(cat "$mnt/runs/$id/steps/s/inputs/host.txt")" = hostdata ]
	[ "$(cat "$mnt/runs/$id/steps/s/inputs/dir/sub/g")" = h2 ]
	# The host file was ingested: its artifact is its SHA-256.
	local hh
	hh=$(readlink "$mnt/runs/$id/steps/s/inputs/host.txt")
	[ "${hh##*/}" = "$(sha256sum <"$H/host.txt" | cut -d' ' -f1)" ]
}

@test "lineage of a file: input names its source" {
	write_step down s "{\"run\": \"tr a-z A-Z < in/host.txt > out/copy\", \"inputs\": [\"file:$H/host.txt\"], \"outputs\": [\"copy\"]}"
	local id hh
	id=$(wait_new_run down)
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
	hh=$(readlink "$mnt/runs/$id/steps/s/inputs/host.txt")
	hh=${hh##*/}
	run cat "$mnt/lineage/sha256/$hh/producer"
	expect_eq "$output" "$(printf 'source\tfile:%s' "$H/host.txt")" producer
	local c
	c=$(readlink "$mnt/artifacts/down/copy")
	[ "$(readlink "$mnt/lineage/sha256/${c##*/}/parents/host.txt")" = "../../$hh" ]
	[ "$(readlink "$mnt/lineage/sha256/$hh/children/down:s:copy")" = "../../${c##*/}" ]
	# An ingested file has no producing run, so no run link; what readdir
	# lists must also be there on lookup.
	run ls -A "$mnt/lineage/sha256/$hh"
	expect_eq "$output" $'ancestors\nchildren\ndescendants\nparams\nparents\nproducer\nregistry' "lineage of a source"
	local e
	for e in $output; do
		[ -e "$mnt/lineage/sha256/$hh/$e" ]
	done
}

@test "changing a file: input queues a run: input NAME changed" {
	write_step down s "{\"run\": \"cat in/host.txt > out/copy\", \"inputs\": [\"file:$H/host.txt\"], \"outputs\": [\"copy\"]}"
	local id
	id=$(wait_new_run down)
	[ "$(cat "$mnt/artifacts/down/copy")" = hostdata ]
	echo hostdata2 >"$H/host.txt"
	local id2
	id2=$(wait_new_run down "$id")
	[ "$(cat "$mnt/runs/$id2/status")" = succeeded ]
	[ "$(step_file "$id2" s reason)" = "input host.txt changed" ]
	[ "$(cat "$mnt/artifacts/down/copy")" = hostdata2 ]
	# Replacing the file by a rename counts too.
	echo hostdata3 >"$H/host.new"
	mv "$H/host.new" "$H/host.txt"
	local id3
	id3=$(wait_new_run down "$id2")
	[ "$(cat "$mnt/artifacts/down/copy")" = hostdata3 ]
}

@test "a new upstream version queues the consumer (a cross-pipeline trigger)" {
	write_step down s '{"run": "cat in/data > out/copy", "inputs": ["up/data"], "outputs": ["copy"]}'
	local id
	id=$(wait_new_run down)
	[ "$(cat "$mnt/artifacts/down/copy")" = upv1 ]
	write_step up a '{"run": "echo upv2 > out/data", "outputs": ["data"]}'
	local up2
	up2=$(wait_new_run up "$UP")
	[ "$(cat "$mnt/artifacts/up/data")" = upv2 ]
	# No write to down/: the new latest up/data queues it.
	local id2
	id2=$(wait_new_run down "$up2")
	[ "$(wait_run "$id2")" = succeeded ]
	[ "$(step_file "$id2" s reason)" = "input data changed" ]
	tr -d '\t\n' <"$mnt/runs/$id2/run.json" | grep -q '"trigger": *"input up/data changed"'
	[ "$(cat "$mnt/artifacts/down/copy")" = upv2 ]
}

@test "a missing file: input is a validation error, and the pipeline does not run" {
	write_step down s "{\"run\": \"true\", \"inputs\": [\"file:$H/nonexistent\"]}"
	run cat "$mnt/pipelines/down/.status"
	expect_eq "$output" "invalid
s.json:1:28: input \"file:$H/nonexistent\": no such file or directory
last run: none" .status
	# Once the file exists the pipeline is valid and runs.
	echo here >"$H/nonexistent"
	write_step down s "{\"run\": \"true\", \"inputs\": [\"file:$H/nonexistent\"]}"
	local id
	id=$(wait_new_run down)
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
}

@test "malformed references are validation errors" {
	write_step bad s '{"run": "true", "inputs": ["sha256:abc"]}'
	run cat "$mnt/pipelines/bad/.status"
	expect_eq "$output" 'invalid
s.json:1:28: input "sha256:abc": expected 64 lowercase hex digits after sha256:
last run: none' .status
	write_step bad s '{"run": "true", "inputs": ["file:relative/path"]}'
	run cat "$mnt/pipelines/bad/.status"
	expect_eq "$output" 'invalid
s.json:1:28: input "file:relative/path": a file: path must be absolute
last run: none' .status
}
