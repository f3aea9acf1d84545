#!/usr/bin/env bats
# quickstart.bats - the README's example, end to end through the mount.

load helpers

QS=$BATS_TEST_DIRNAME/../../examples/quickstart

setup() {
	mount_flowy
}

teardown() {
	flowy_teardown
}

# publish_quickstart: copy the example in as one change (staged, then
# renamed), wait for its run; sets $ID.
publish_quickstart() {
	cp -r "$QS" "$mnt/pipelines/.quickstart"
	mv "$mnt/pipelines/.quickstart" "$mnt/pipelines/quickstart"
	ID=$(wait_new_run quickstart)
}

TOP=$'the\na\nis\npipeline\ntree'

@test "quickstart: outputs, shards and summary of the first run" {
	publish_quickstart
	[ "$(cat "$mnt/runs/$ID/status")" = succeeded ]
	[ "$(run_count)" -eq 1 ]
	run cat "$mnt/artifacts/quickstart/top.txt"
	[ "$status" -eq 0 ]
	expect_eq "$output" "$TOP" top.txt
	run ls "$mnt/artifacts/quickstart/shards"
	expect_eq "$output" $'part-00\npart-01\npart-02' "shards/"
	# The shards are the corpus, split in three, losslessly.
	[ "$(cat "$mnt"/artifacts/quickstart/shards/part-0{0,1,2})" = "$(cat "$mnt/artifacts/quickstart/corpus.txt")" ]
	[ "$(wc -l <"$mnt/artifacts/quickstart/corpus.txt")" -eq 20 ]
	[ "$(head -n 1 "$mnt/artifacts/quickstart/corpus.txt")" = "the quick brown fox jumps over the lazy dog 1" ]
	# counts.tsv: word<TAB>count, most frequent first.
	run head -n 2 "$mnt/artifacts/quickstart/counts.tsv"
	expect_eq "$output" $'the\t40\na\t20' "counts.tsv head"
	run awk -F'\t' '{ print $1 "|" $2 "|" $4 "|" $5 }' "$mnt/runs/$ID/summary"
	expect_eq "$output" "step|status|cached|outputs
corpus|succeeded|no|corpus.txt
shard|succeeded|no|shards
count|succeeded|no|counts.tsv,top.txt" summary
	for s in corpus shard count; do
		[ "$(cat "$mnt/runs/$ID/steps/$s/reason")" = "no earlier run" ]
	done
	run cat "$mnt/pipelines/quickstart/.dag"
	expect_eq "$output" $'corpus\t- -> corpus.txt\nshard\tcorpus.txt -> shards\ncount\tshards -> counts.tsv,top.txt' .dag
	[ "$(tr -d ' \t\n' <"$mnt/runs/$ID/params.json")" = '{"top":5,"shards":3}' ]
}

@test "quickstart: echo run > .ctl reruns with every step cached" {
	publish_quickstart
	[ "$(cat "$mnt/runs/$ID/status")" = succeeded ]
	local first_top
	first_top=$(readlink "$mnt/artifacts/quickstart/top.txt")
	echo run >"$mnt/pipelines/quickstart/.ctl"
	local id2
	id2=$(wait_new_run quickstart "$ID")
	[ "$id2" -gt "$ID" ]
	[ "$(cat "$mnt/runs/$id2/status")" = succeeded ]
	for s in corpus shard count; do
		[ "$(cat "$mnt/runs/$id2/steps/$s/status")" = cached ]
		[ "$(cat "$mnt/runs/$id2/steps/$s/reason")" = cached ]
		[ "$(cat "$mnt/runs/$id2/steps/$s/cached")" = yes ]
		# Cached steps reuse the very same artifacts.
		for o in "$mnt/runs/$id2/steps/$s/outputs/"*; do
			[ "$(readlink "$o")" = "$(readlink "$mnt/runs/$ID/steps/$s/outputs/${o##*/}")" ]
		done
	done
	run awk -F'\t' 'NR > 1 { print $1 "|" $2 "|" $4 }' "$mnt/runs/$id2/summary"
	expect_eq "$output" $'corpus|cached|yes\nshard|cached|yes\ncount|cached|yes' summary
	[ "$(readlink "$mnt/artifacts/quickstart/top.txt")" = "$first_top" ]
	[ "$(readlink "$mnt/runs/latest")" = "$id2" ]
	run cat "$mnt/pipelines/quickstart/.status"
	expect_eq "$output" "$(printf 'valid\nlast run: %s succeeded' "$id2")" .status
}

@test "quickstart: copied straight in with cp -r (as the demo does) ends with the same outputs" {
	cp -r "$QS" "$mnt/pipelines/quickstart"
	# cp writes file by file, so several runs may be queued; wait until the
	# pipeline settles on a finished run that has every step.
	local i id=
	for ((i = 0; i < RUN_WAIT; i++)); do
		id=$(latest_run_of quickstart)
		if [ -n "$id" ] && is_terminal "$(cat "$mnt/runs/$id/status")" &&
			[ "$(tail -n 1 "$mnt/pipelines/quickstart/.status")" = "last run: $id succeeded" ] &&
			[ "$(ls "$mnt/runs/$id/steps" | wc -l)" -eq 3 ]; then
			break
		fi
		sleep 0.1
	done
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
	run cat "$mnt/artifacts/quickstart/top.txt"
	expect_eq "$output" "$TOP" top.txt
	[ "$(head -n 1 "$mnt/pipelines/quickstart/.status")" = valid ]
	# Whatever the intermediate runs were, the pipeline files read back intact.
	for f in "$QS"/*; do
		cmp "$f" "$mnt/pipelines/quickstart/${f##*/}"
	done
}

@test "quickstart: a param change reruns only the steps that use it" {
	publish_quickstart
	sed 's/"top": 5/"top": 2/' "$QS/pipeline.json" >"$mnt/pipelines/quickstart/pipeline.json"
	local id2
	id2=$(wait_new_run quickstart "$ID")
	[ "$(cat "$mnt/runs/$id2/status")" = succeeded ]
	[ "$(cat "$mnt/runs/$id2/steps/corpus/status")" = cached ]
	[ "$(cat "$mnt/runs/$id2/steps/shard/status")" = cached ]
	[ "$(cat "$mnt/runs/$id2/steps/count/status")" = succeeded ]
	[ "$(cat "$mnt/runs/$id2/steps/count/reason")" = "param top changed" ]
	run cat "$mnt/artifacts/quickstart/top.txt"
	expect_eq "$output" $'the\na' top.txt
}
