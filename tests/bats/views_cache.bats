#!/usr/bin/env bats
# views_cache.bats - the big views are kept per change of the store (a
# listing in the kernel's cache, runs.tsv, metrics, lineage in the
# daemon's) and every change shows at once: a new run in ls runs/ and in
# runs.tsv, a new artifact in ls lineage/sha256/ and artifacts/sha256/, a
# tag, a deleted run; and a live run's duration in runs.tsv moves with the
# clock (such a text is not kept).

load helpers

setup() {
	mount_flowy -j 2
	P=$mnt/pipelines
}

teardown() {
	flowy_teardown
}

# listing DIR: ls of DIR, read twice (the second from the kernel's cache
# when it kept it); both must agree.
listing() {
	local a b
	a=$(ls "$1")
	b=$(ls "$1")
	expect_eq "$b" "$a" "second ls of $1"
	printf '%s\n' "$a"
}

@test "kept listings and views follow runs, artifacts, tags and deletes at once" {
	write_step t s '{"run": "echo $FLOWY_RUN > out/o; printf \"{\\\"m\\\": %s}\\n\" $FLOWY_RUN >> $FLOWY_METRICS", "outputs": ["o"]}'
	local r1 r2 r3 h1 h3
	r1=$(wait_new_run t)
	h1=$(basename "$(readlink "$mnt/artifacts/t/o")")
	expect_eq "$(listing "$mnt/runs")" "$(printf '%s\nlatest' "$r1")" "runs/"
	expect_eq "$(listing "$mnt/lineage/sha256")" "$h1" "lineage/sha256/"
	expect_eq "$(listing "$mnt/metrics/t")" "$(printf 'm\nm.svg\nruns.tsv')" "metrics/t/"
	expect_eq "$(cut -f1,2 "$mnt/metrics/t/runs.tsv")" "$(printf 'run\tstatus\n%s\tsucceeded' "$r1")" "runs.tsv"
	expect_eq "$(cut -f1,3 "$mnt/metrics/t/m")" "$(printf 'run\tvalue\n%s\t%s' "$r1" "$r1")" "metrics/t/m"

	echo run >"$P/t/.ctl" # all cached: a new run, no new artifact
	r2=$(wait_new_run t "$r1")
	expect_eq "$(listing "$mnt/runs")" "$(printf '%s\n%s\nlatest' "$r1" "$r2")" "runs/ after a cached run"
	expect_eq "$(cut -f1,2 "$mnt/metrics/t/runs.tsv")" \
		"$(printf 'run\tstatus\n%s\tsucceeded\n%s\tsucceeded' "$r1" "$r2")" "runs.tsv after a cached run"
	expect_eq "$(listing "$mnt/lineage/sha256")" "$h1" "lineage/sha256/ after a cached run"

	echo 'rerun s' >"$P/t/.ctl" # forced: a new artifact and metric value
	r3=$(wait_new_run t "$r2")
	h3=$(basename "$(readlink "$mnt/artifacts/t/o")")
	[ "$h3" != "$h1" ]
	expect_eq "$(listing "$mnt/lineage/sha256")" "$(printf '%s\n%s' "$h1" "$h3" | sort)" "lineage/sha256/ after a rerun"
	expect_eq "$(listing "$mnt/artifacts/sha256")" "$(printf '%s\n%s' "$h1" "$h3" | sort)" "artifacts/sha256/"
	expect_eq "$(cut -f1,3 "$mnt/metrics/t/m")" \
		"$(printf 'run\tvalue\n%s\t%s\n%s\t%s\n%s\t%s' "$r1" "$r1" "$r2" "$r1" "$r3" "$r3")" "metrics/t/m after a rerun"
	expect_eq "$(cat "$mnt/lineage/sha256/$h3/producer")" \
		"$(printf 'pipeline\tt\nstep\ts\nrun\t%s\noutput\to' "$r3")" "producer"

	echo best >"$mnt/runs/$r2/tags"
	expect_eq "$(awk -F'\t' -v r="$r2" '$1 == r { print $NF }' "$mnt/metrics/t/runs.tsv")" best "tag in runs.tsv"
	echo worst >"$mnt/runs/$r2/tags"
	expect_eq "$(awk -F'\t' -v r="$r2" '$1 == r { print $NF }' "$mnt/metrics/t/runs.tsv")" worst "changed tag"

	rm -r "$mnt/runs/$r2"
	expect_eq "$(listing "$mnt/runs")" "$(printf '%s\n%s\nlatest' "$r1" "$r3")" "runs/ after rm -r"
	expect_eq "$(cut -f1 "$mnt/metrics/t/runs.tsv")" "$(printf 'run\n%s\n%s' "$r1" "$r3")" "runs.tsv after rm -r"
	expect_eq "$(cut -f1,3 "$mnt/metrics/t/m")" \
		"$(printf 'run\tvalue\n%s\t%s\n%s\t%s' "$r1" "$r1" "$r3" "$r3")" "metrics/t/m after rm -r"
}

@test "a live run's duration in runs.tsv moves with the clock" {
	write_step t s '{"run": "sleep 3; echo x > out/o", "outputs": ["o"]}'
	local id i a b
	id=$(wait_step_running t s)
	a=$(awk -F'\t' -v r="$id" '$1 == r { print $4 }' "$mnt/metrics/t/runs.tsv")
	for ((i = 0; i < 30; i++)); do
		sleep 0.1
		b=$(awk -F'\t' -v r="$id" '$1 == r { print $4 }' "$mnt/metrics/t/runs.tsv")
		[ "$b" = "$a" ] || break
	done
	[[ $a =~ ^[0-9]+\.[0-9]{3}$ ]]
	[[ $b =~ ^[0-9]+\.[0-9]{3}$ ]]
	[ "$b" != "$a" ]
	expect_eq "$(awk -F'\t' -v r="$id" '$1 == r { print $2 }' "$mnt/metrics/t/runs.tsv")" running "status"
	expect_eq "$(wait_run "$id")" succeeded "end"
}
