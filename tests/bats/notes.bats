#!/usr/bin/env bats
# notes.bats - runs/<id>/note and runs/<id>/tags through the mount (written
# with echo, read back exactly, kept across a remount, tags in runs.tsv),
# and rm -r runs/<id>: a finished run's rows and store directory go, a
# live run is EBUSY, and a daemon's owner who is not root can do it too
# (the run's directories are 0755 for the kernel's permission check).

load helpers

setup() {
	mount_flowy -j 2
	P=$mnt/pipelines
}

teardown() {
	teardown_with_dir "${NR_DIR:-}"
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

@test "a daemon's owner who is not root tags a run and deletes it with rm -r" {
	[ "$(id -u)" = 0 ] || skip "needs root to start a daemon as user nobody"
	command -v setpriv >/dev/null || skip "needs setpriv"
	unmount_clean
	# A 0755 directory of nobody's (bats' own are 0700), a wrapper that
	# execs the daemon as nobody (the same pid, so teardown stops it).
	NR_DIR=$(mktemp -d /tmp/flowyfs-notes.XXXXXX)
	chmod 755 "$NR_DIR"
	mkdir "$NR_DIR/home" "$NR_DIR/mnt"
	chown -R 65534:65534 "$NR_DIR"
	printf '#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=%s/home %s "$@"\n' \
		"$NR_DIR" "$FLOWYFS_BIN" >"$NR_DIR/as-nobody"
	chmod 755 "$NR_DIR/as-nobody"
	store=$NR_DIR/store
	mnt=$NR_DIR/mnt
	FLOWYFS_BIN=$NR_DIR/as-nobody
	mount_flowy -j 2
	# Only nobody may enter its mount (no allow_other): every look is its.
	local as="setpriv --reuid=65534 --regid=65534 --clear-groups"
	$as sh -c 'mkdir -p "$1/.t" && echo "{\"run\": \"echo x > out/o\", \"outputs\": [\"o\"]}" > "$1/.t/s.json" && mv "$1/.t" "$1/t"' _ "$mnt/pipelines"
	local i st=
	for ((i = 0; i < RUN_WAIT; i++)); do
		st=$($as cat "$mnt/runs/1/status" 2>/dev/null) || true
		[ "$st" = succeeded ] && break
		sleep 0.1
	done
	expect_eq "$st" succeeded "run 1"
	$as sh -c 'echo keep > "$1/tags"' _ "$mnt/runs/1"
	expect_eq "$($as cat "$mnt/runs/1/tags")" keep "tags"
	run $as touch "$mnt/runs/1/new"
	[ "$status" -ne 0 ] && [[ $output == *"Read-only file system"* ]]
	$as rm -r "$mnt/runs/1"
	expect_eq "$($as ls -A "$mnt/runs")" "" "runs left"
	[ ! -e "$NR_DIR/store/runs/1" ]
	unmount_clean
}
