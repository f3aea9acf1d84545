#!/usr/bin/env bats
# notes.bats - runs/<id>/note and runs/<id>/tags through the mount (written
# with echo, read back exactly, kept across a remount, tags in runs.tsv),
# and rm -r runs/<id>: a finished run's rows and store directory go, a
# live run is EBUSY.

load helpers

setup() {
	mount_flowy -j 2
	P=$mnt/pipelines
}

teardown() {
	flowy_teardown
}

@test "note and tags are writable, read back exactly, survive a remount and show in runs.tsv" {
	write_step t s '{"run": "echo x > out/o", "outputs": ["o"]}'
	local id
	id=$(wait_new_run t)
	expect_eq "$(stat -c %a "$mnt/runs/$id/note" "$mnt/runs/$id/tags")" "$(printf '644\n644')" "modes"
	expect_eq "$(cat "$mnt/runs/$id/note")" "" "empty note"
	printf 'first try\nwith lr 0.1\n' >"$mnt/runs/$id/note"
	expect_eq "$(cat "$mnt/runs/$id/note")" "$(printf 'first try\nwith lr 0.1')" "note"
	echo 'and more' >>"$mnt/runs/$id/note"
	expect_eq "$(cat "$mnt/runs/$id/note")" "$(printf 'first try\nwith lr 0.1\nand more')" "appended note"
	printf 'keep\n  best \n\nkeep\nbaseline\n' >"$mnt/runs/$id/tags"
	expect_eq "$(cat "$mnt/runs/$id/tags")" "$(printf 'keep\nbest\nbaseline')" "tags, normalized"
	expect_eq "$(cut -f1,2 "$mnt/metrics/t/runs.tsv" | head -1)" "$(printf 'run\tstatus')" "header start"
	expect_eq "$(head -1 "$mnt/metrics/t/runs.tsv" | awk -F'\t' '{print $NF}')" tags "last column"
	expect_eq "$(tail -1 "$mnt/metrics/t/runs.tsv" | awk -F'\t' '{print $NF}')" "keep,best,baseline" "tags cell"
	run bash -c "printf 'a,b\n' > '$mnt/runs/$id/tags'"
	[ "$status" -ne 0 ] && [[ $output == *"Invalid argument"* ]]
	run bash -c "echo x > '$mnt/runs/$id/status'"
	[ "$status" -ne 0 ]
	: >"$mnt/runs/$id/tags"
	expect_eq "$(cat "$mnt/runs/$id/tags")" "" "tags emptied"
	echo keep >"$mnt/runs/$id/tags"
	remount_flowy -j 2
	expect_eq "$(cat "$mnt/runs/$id/note")" "$(printf 'first try\nwith lr 0.1\nand more')" "note after remount"
	expect_eq "$(cat "$mnt/runs/$id/tags")" "keep" "tags after remount"
}

@test "rm -r runs/<id> deletes a finished run; a running one is EBUSY" {
	write_step t s '{"run": "echo x > out/o; echo {\"m\": 1} >> $FLOWY_METRICS", "outputs": ["o"]}'
	local r1 r2 r3
	r1=$(wait_new_run t)
	echo 'run' >"$P/t/.ctl"
	r2=$(wait_new_run t "$r1")
	[ -d "$store/runs/$r1" ]
	rm -r "$mnt/runs/$r1"
	[ ! -e "$mnt/runs/$r1" ]
	[ ! -e "$store/runs/$r1" ]
	expect_eq "$(ls "$mnt/runs" | grep -v latest)" "$r2" "runs left"
	expect_eq "$(cut -f1 "$mnt/metrics/t/runs.tsv")" "$(printf 'run\n%s' "$r2")" "runs.tsv"
	# the run that shared r1's snapshot still shows it
	expect_eq "$(ls "$mnt/runs/$r2/snapshot")" "s.json" "snapshot of $r2"
	expect_eq "$(cat "$mnt/runs/$r2/steps/s/status")" cached "r2"
	# a running run cannot go
	write_step slow s "{\"run\": \"while [ ! -e $BATS_TEST_TMPDIR/go ]; do sleep 0.05; done; echo y > out/o\", \"outputs\": [\"o\"]}"
	local i
	for ((i = 0; i < 100; i++)); do
		r3=$(latest_run_of slow)
		[ -n "$r3" ] && [ "$(cat "$mnt/runs/$r3/status")" = running ] && break
		sleep 0.1
	done
	expect_eq "$(cat "$mnt/runs/$r3/status")" running "slow runs"
	run rmdir "$mnt/runs/$r3"
	[ "$status" -ne 0 ] && [[ $output == *"Device or resource busy"* ]]
	run rm -r "$mnt/runs/$r3"
	[ "$status" -ne 0 ] && [[ $output == *"Device or resource busy"* ]]
	touch "$BATS_TEST_TMPDIR/go"
	expect_eq "$(wait_run "$r3")" succeeded "slow ends"
	rm -r "$mnt/runs/$r3"
	[ ! -e "$mnt/runs/$r3" ]
	run rmdir "$mnt/runs/99"
	[ "$status" -ne 0 ] && [[ $output == *"No such file or directory"* ]]
}
