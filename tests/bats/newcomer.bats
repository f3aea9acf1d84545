#!/usr/bin/env bats
# newcomer.bats - what a new user tripped over: cached runs keep their
# numbers, a failed step's scratch stays readable, tables agree on how
# they show a missing value, the daemon's messages are readable at the
# mount root.

load helpers

setup() {
	mount_flowy
	P=$mnt/pipelines
}

teardown() {
	flowy_teardown
}

@test "a fully cached run carries the metrics of the run that made its outputs" {
	mkdir -p "$P/.cm"
	cat >"$P/.cm/fit.json" <<'JSON'
{"run": "echo m > out/m; echo '{\"acc\": 0.9775, \"loss\": 0.5}' >> $FLOWY_METRICS; echo '{\"acc\": 0.98}' >> $FLOWY_METRICS", "outputs": ["m"]}
JSON
	mv "$P/.cm" "$P/cm"
	local a b
	a=$(wait_new_run cm)
	echo run >"$P/cm/.ctl"
	b=$(readlink "$P/cm/.latest"); b=${b##*/}
	[ "$(wait_run "$b")" = succeeded ]
	expect_eq "$(cat "$mnt/runs/$b/steps/fit/status")" cached "the second run"
	expect_eq "$(cat "$mnt/runs/$b/steps/fit/metrics/acc")" "$(printf 'index\tvalue\n0\t0.9775\n1\t0.98')" "its acc series"
	expect_eq "$(cut -f1,5- "$mnt/metrics/cm/runs.tsv")" "$(printf 'run\tmetrics.acc\tmetrics.loss\n%s\t0.98\t0.5\n%s\t0.98\t0.5' "$a" "$b")" "runs.tsv"
}
