#!/usr/bin/env bats
# disk.bats - a full disk: the store and the scratch on a small tmpfs. A step
# that fills it, or whose output does not fit into the store, fails (not
# stuck) with "no space left on device"; the daemon lives on, its database
# is intact, and once there is room again runs succeed. With the disk nearly
# full, `run` is refused up front and .status says why.
#
# Needs root (mount -t tmpfs). Each tmpfs is unmounted in teardown, after
# the FUSE mount, even when the test failed.

load helpers
load safety_helpers

setup() {
	[ "$(id -u)" = 0 ] || skip "needs root (mounts a tmpfs)"
	D=$BATS_TEST_TMPDIR/disk
	tmpfs_mount "$D" 64m
	store=$D/store
	scratch_opt "$D/scratch"
	mount_flowy "${SCRATCH_ARGS[@]}"
}

teardown() {
	safety_teardown
}

# after_full_disk P ID: run ID of P failed for lack of space; the daemon is
# alive, the database intact; with a small step instead, runs succeed.
after_full_disk() {
	local p=$1 id=$2 id2
	expect_eq "$(run_status "$id")" failed "status of run $id"
	[ "$(step_file "$id" big status)" = failed ]
	expect_contains "$(step_file "$id" big error)" "no space left on device" "error of step big"
	daemon_alive
	echo "tmpfs used after the failed run: $(tmpfs_used "$D") bytes" >&2
	db_check_offline "${SCRATCH_ARGS[@]}"
	write_step "$p" big '{"run": "echo small > out/big", "outputs": ["big"]}'
	id2=$(wait_new_run "$p" "$id")
	expect_eq "$(run_status "$id2")" succeeded "status of the run after freeing space"
	[ "$(cat "$mnt/artifacts/$p/big")" = small ]
	daemon_alive
}

@test "a step filling the disk fails with no space left on device, and runs go on" {
	write_step full big '{"run": "head -c 100M /dev/zero > out/big", "outputs": ["big"]}'
	local id
	id=$(wait_new_run full)
	after_full_disk full "$id"
}

@test "an output that fits the scratch but not the store fails with no space left on device" {
	# Incompressible, so the store cannot keep it in less than its size.
	write_step ingest big '{"run": "head -c 40M /dev/urandom > out/big", "outputs": ["big"]}'
	local id
	id=$(wait_new_run ingest)
	after_full_disk ingest "$id"
}

@test "with the disk nearly full, run is refused and .status says so; with room it runs" {
	write_step p s '{"run": "echo ok > out/o", "outputs": ["o"]}'
	local id
	id=$(wait_new_run p)
	[ "$(run_status "$id")" = succeeded ]
	local avail
	avail=$(tmpfs_avail "$D")
	fallocate -l $((avail - 1024 * 1024)) "$D/filler"
	echo "free with the filler: $(tmpfs_avail "$D") bytes" >&2
	run bash -c 'echo run > "$1"' _ "$mnt/pipelines/p/.ctl"
	echo "echo run > .ctl: status $status: $output" >&2
	[ "$status" -ne 0 ]
	run cat "$mnt/pipelines/p/.status"
	expect_contains "$output" "refused" ".status"
	expect_contains "$output" "free on the store's disk" ".status"
	daemon_alive
	rm "$D/filler"
	echo run >"$mnt/pipelines/p/.ctl"
	local id2
	id2=$(wait_new_run p "$id")
	[ "$(run_status "$id2")" = succeeded ]
}
