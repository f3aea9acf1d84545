#!/usr/bin/env bats
# lineage.bats - lineage/ through the mount: a chain across two pipelines
# that starts at a host file, with exact producer, links and chains.

load helpers

setup() {
	mount_flowy
	raw=$BATS_TEST_TMPDIR/raw.txt
	printf 'raw data\n' >"$raw"
	write_step src up "{\"run\": \"tr a-z A-Z < in/raw.txt > out/upper\", \"inputs\": [\"file:$raw\"], \"outputs\": [\"upper\"]}"
	SRC=$(wait_new_run src)
	s=$mnt/pipelines/.dst
	mkdir "$s"
	printf '%s\n' '{"run": "rev in/upper > out/rev", "inputs": ["src/upper"], "outputs": ["rev"]}' >"$s/r.json"
	printf '%s\n' '{"run": "wc -c < in/rev > out/n", "inputs": ["rev"], "outputs": ["n"]}' >"$s/n.json"
	mv "$s" "$mnt/pipelines/dst"
	DST=$(wait_new_run dst)
	h_raw=$(printf 'raw data\n' | sha256sum | cut -d' ' -f1)
	h_up=$(printf 'RAW DATA\n' | sha256sum | cut -d' ' -f1)
	h_rev=$(printf 'ATAD WAR\n' | sha256sum | cut -d' ' -f1)
	h_n=$(printf '9\n' | sha256sum | cut -d' ' -f1)
}

teardown() {
	flowy_teardown
}

@test "both runs succeed and the artifacts are named by their content hash" {
	[ "$(cat "$mnt/runs/$SRC/status")" = succeeded ]
	[ "$(cat "$mnt/runs/$DST/status")" = succeeded ]
	[ "$(readlink "$mnt/artifacts/dst/n")" = "../sha256/$h_n" ]
	[ "$(readlink "$mnt/lineage/dst/n")" = "../sha256/$h_n" ]
	[ "$(cat "$mnt/lineage/dst/n/producer")" = "$(printf 'pipeline\tdst\nstep\tn\nrun\t%s\noutput\tn' "$DST")" ]
}

@test "ancestors: the whole chain up, across pipelines, to the host file" {
	expected=$(printf '%s\n' \
		"$(printf 'n\tdst\tn\t%s\t%s' "$DST" "$h_n")" \
		"$(printf '  rev\tdst\tr\t%s\t%s' "$DST" "$h_rev")" \
		"$(printf '    upper\tsrc\tup\t%s\t%s' "$SRC" "$h_up")" \
		"$(printf '      raw.txt\tfile:%s\t-\t-\t%s' "$raw" "$h_raw")")
	expect_eq "$(cat "$mnt/lineage/dst/n/ancestors")" "$expected" ancestors
}

@test "descendants: the whole chain down from the first pipeline's output" {
	expected=$(printf '%s\n' \
		"$(printf 'upper\tsrc\tup\t%s\t%s' "$SRC" "$h_up")" \
		"$(printf '  dst:r:rev\tdst\tr\t%s\t%s' "$DST" "$h_rev")" \
		"$(printf '    dst:n:n\tdst\tn\t%s\t%s' "$DST" "$h_n")")
	expect_eq "$(cat "$mnt/lineage/src/upper/descendants")" "$expected" descendants
}

@test "parents and children are symlinks to the neighbours' lineage" {
	[ "$(ls "$mnt/lineage/sha256/$h_rev/parents")" = upper ]
	[ "$(readlink "$mnt/lineage/sha256/$h_rev/parents/upper")" = "../../$h_up" ]
	[ "$(ls "$mnt/lineage/sha256/$h_up/children")" = "dst:r:rev" ]
	[ "$(readlink "$mnt/lineage/sha256/$h_up/children/dst:r:rev")" = "../../$h_rev" ]
	# Following the links walks the graph.
	[ "$(sed -n 2p "$mnt/lineage/sha256/$h_rev/parents/upper/producer")" = "$(printf 'step\tup')" ]
	[ "$(cat "$mnt/lineage/sha256/$h_n/parents/rev/parents/upper/parents/raw.txt/producer")" = \
		"$(printf 'source\tfile:%s' "$raw")" ]
}

@test "run links to the producing run; params are the step's params" {
	[ "$(readlink "$mnt/lineage/sha256/$h_up/run")" = "../../../runs/$SRC" ]
	[ "$(cat "$mnt/lineage/sha256/$h_up/run/pipeline")" = src ]
	[ "$(cat "$mnt/lineage/sha256/$h_up/params")" = "{}" ]
}

@test "a host file input has a source but no run" {
	[ "$(ls "$mnt/lineage/sha256/$h_raw" | tr '\n' ' ')" = "ancestors children descendants params parents producer registry " ]
	run readlink "$mnt/lineage/sha256/$h_raw/run"
	[ "$status" -ne 0 ]
	[ "$(cat "$mnt/artifacts/sha256/$h_raw")" = "raw data" ]
}

@test "lineage is read-only and unknown hashes do not exist" {
	run bash -c 'echo x > "$1/lineage/sha256/$2/producer"' _ "$mnt" "$h_n"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Read-only file system"* ]]
	run ls "$mnt/lineage/sha256/$(printf 'nothing\n' | sha256sum | cut -d' ' -f1)"
	[ "$status" -ne 0 ]
	[[ "$output" == *"No such file or directory"* ]]
}

@test "lineage/sha256 lists every artifact as a directory" {
	for h in "$h_raw" "$h_up" "$h_rev" "$h_n"; do
		[ -d "$mnt/lineage/sha256/$h" ]
		ls "$mnt/lineage/sha256" | grep -qx "$h"
	done
	[ "$(find "$mnt/lineage/sha256" -mindepth 1 -maxdepth 1 -type d | wc -l)" = 4 ]
}
