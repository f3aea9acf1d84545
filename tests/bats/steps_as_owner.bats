#!/usr/bin/env bats
# multiuser.bats - the daemon as root with -o allow_other: a pipeline
# directory made by another user runs its steps as that user; one made by
# root runs as root. A step of another user hard-linking a file it does not
# own into out/ fails (with fs.protected_hardlinks off, so the link can be
# made at all).
#
# Bats tmpdirs are 0700, so what user nobody must reach (the mountpoint, the
# scratch, the linked file) lives in a 0755 directory under /tmp made here
# and removed in teardown; the store stays in the bats tmpdir.

load helpers
load safety_helpers

NOBODY=65534

setup() {
	[ "$(id -u)" = 0 ] || skip "needs root (a daemon with allow_other serving another user)"
	PUB=$(mktemp -d /tmp/flowyfs-multiuser.XXXXXX)
	echo "$PUB" >"$BATS_TEST_TMPDIR/pub.dir"
	chmod 0755 "$PUB"
	mnt=$PUB/mnt
	store=$BATS_TEST_TMPDIR/store
	export FLOWYFS_SCRATCH=$PUB/scratch
	mount_flowy -o allow_other
}

teardown() {
	local rc=0
	flowy_teardown || rc=$?
	if [ -f "$BATS_TEST_TMPDIR/protected_hardlinks.old" ]; then
		sysctl -q -w "fs.protected_hardlinks=$(cat "$BATS_TEST_TMPDIR/protected_hardlinks.old")" || rc=1
		rm -f "$BATS_TEST_TMPDIR/protected_hardlinks.old"
	fi
	if [ -f "$BATS_TEST_TMPDIR/pub.dir" ]; then
		local pub
		pub=$(cat "$BATS_TEST_TMPDIR/pub.dir")
		if grep -q " $pub[/ ]" /proc/mounts; then
			echo "something is still mounted below $pub; not removing it" >&2
			rc=1
		else
			rm -rf --one-file-system "$pub"
		fi
	fi
	return "$rc"
}

# as_nobody CMD...: run CMD as user and group nobody, no supplementary groups.
as_nobody() {
	setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups "$@"
}

# nobody_step P NAME JSON: as nobody, make pipeline P and write its step.
nobody_step() {
	as_nobody mkdir "$mnt/pipelines/$1"
	as_nobody sh -c 'printf "%s\n" "$1" > "$2"' _ "$3" "$mnt/pipelines/$1/$2.json"
}

IDS_STEP='{"run": "id -u > out/uid; id -g > out/gid; cat $FLOWY_PARAMS > out/params; echo {\\\"loss\\\": 0.5} >> $FLOWY_METRICS", "outputs": ["uid", "gid", "params"]}'

@test "a pipeline made by user nobody runs its steps as nobody" {
	nobody_step np ids "$IDS_STEP"
	local id
	id=$(wait_new_run np)
	expect_eq "$(run_status "$id")" succeeded "run status"
	expect_eq "$(cat "$mnt/artifacts/np/uid")" $NOBODY "uid of the step"
	expect_eq "$(cat "$mnt/artifacts/np/gid")" $NOBODY "gid of the step"
	# its params and metrics files (fds the daemon opened) work as nobody too
	expect_eq "$(tr -d ' \n' <"$mnt/artifacts/np/params")" "{}" "params"
	expect_eq "$(cat "$mnt/runs/$id/steps/ids/metrics/loss")" "$(printf 'index\tvalue\n0\t0.5')" "metrics"
}

@test "a pipeline made by root runs its steps as root" {
	write_step rp ids "$IDS_STEP"
	local id
	id=$(wait_new_run rp)
	[ "$(run_status "$id")" = succeeded ]
	expect_eq "$(cat "$mnt/artifacts/rp/uid")" 0 "uid of the step"
	expect_eq "$(cat "$mnt/artifacts/rp/gid")" 0 "gid of the step"
}

@test "a hard link to a root-only file in out/ of nobody's step fails the step" {
	sysctl -n fs.protected_hardlinks >"$BATS_TEST_TMPDIR/protected_hardlinks.old"
	sysctl -q -w fs.protected_hardlinks=0
	local secret=$PUB/secret
	echo "flowytest secret $$ $RANDOM" >"$secret"
	chmod 0600 "$secret"
	local ssha
	ssha=$(sha "$secret")
	# nobody can make the link (same file system as the scratch) but not read it.
	mkdir "$PUB/nb"
	chown $NOBODY:$NOBODY "$PUB/nb"
	as_nobody ln "$secret" "$PUB/nb/probe"
	rm -f "$PUB/nb/probe"
	! as_nobody cat "$secret" >/dev/null 2>&1 || false
	nobody_step hl s "$(step_json "ln \"$secret\" out/s" '["s"]')"
	local id
	id=$(wait_new_run hl)
	expect_eq "$(run_status "$id")" failed "run status"
	expect_eq "$(step_file "$id" s status)" failed "step status"
	# In the step's namespace out/ is its own bind mount, so link(2) from
	# anywhere else fails (EXDEV) before flowyfs sees the file; were it
	# made, the ingest refuses it ("a hard link to a file the step's user
	# cannot read", tests/unit/test_safety.c covers that path).
	local err log
	err=$(step_file "$id" s error)
	log=$(step_file "$id" s log)
	if [[ $err != *"hard link"* && $log != *"Invalid cross-device link"* ]]; then
		echo "neither a hard-link refusal nor EXDEV: error=$err log=$log" >&2
		return 1
	fi
	[ ! -L "$mnt/artifacts/hl/s" ]
	[ ! -e "$mnt/artifacts/sha256/$ssha" ]
	[ -z "$(find "$store/objects" -path "*/${ssha:0:2}/${ssha:2}*" -print -quit)" ]
}
