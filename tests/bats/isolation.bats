#!/usr/bin/env bats
# isolation.bats - steps cannot reach the store: each step runs in its own
# mount namespace where the store directory is an empty read-only directory,
# its scratch is outside the store (--scratch DIR, else $FLOWYFS_SCRATCH,
# else ${TMPDIR:-/var/tmp}/flowyfs-<uid>; one subdirectory per store), and
# the whole mount is read-only (reads through $FLOWY_MOUNT still work).
# The daemon never reads through its own mount: a file: input into it is
# a validation error.

load helpers
load safety_helpers

setup() {
	T=$BATS_TEST_TMPDIR
	store=$T/store
	# Deep on purpose: a step's ../../.. then stays inside this test's
	# directory wherever below the scratch the daemon puts its cwd.
	export FLOWYFS_SCRATCH=$T/scr/a/b/scratch
	mount_flowy
	seed_early
}

teardown() {
	flowy_teardown
	if [ -n "${LATE:-}" ] && mountpoint -q "$LATE"; then
		umount "$LATE"
	fi
}

# seed_early: pipeline "early" with one artifact that the tests below do not
# read before the hostile step runs (so no page cache can answer for it):
# EARLY_ID, EARLY_HEX (its hash, from the link only), EARLY_SHA (expected).
seed_early() {
	EARLY_JSON='{"run": "seq 1 300000 > out/data", "outputs": ["data"]}'
	write_step early gen "$EARLY_JSON"
	EARLY_ID=$(wait_new_run early)
	[ "$(run_status "$EARLY_ID")" = succeeded ]
	EARLY_HEX=$(artifact_hex early data)
	EARLY_SHA=$(seq 1 300000 | sha256sum | cut -d' ' -f1)
	[ "$EARLY_HEX" = "$EARLY_SHA" ]
}

# check_store_intact P JSON: after a hostile step of pipeline P (defined by
# JSON), the store and everything in it is as it was, and runs still work.
check_store_intact() {
	local p=$1 json=$2 e
	daemon_alive
	run ls -A "$store"
	for e in flowy.db objects pipelines history.git; do
		if ! grep -qx -- "$e" <<<"$output"; then
			echo "the store lost $e; ls -A \$store:" >&2
			printf '%s\n' "$output" >&2
			return 1
		fi
	done
	expect_eq "$(cat "$mnt/pipelines/early/gen.json")" "$EARLY_JSON" "early/gen.json (mount)"
	expect_eq "$(cat "$store/pipelines/early/gen.json")" "$EARLY_JSON" "early/gen.json (store)"
	expect_eq "$(cat "$mnt/pipelines/$p/a.json")" "$json" "$p/a.json (mount)"
	[ "$(head -n 1 "$mnt/pipelines/early/.status")" = valid ]
	expect_eq "$(sha "$mnt/artifacts/early/data")" "$EARLY_SHA" "sha256 of the earlier artifact"
	db_check_offline
	expect_eq "$(sha "$mnt/artifacts/early/data")" "$EARLY_SHA" "sha256 of the earlier artifact after a remount"
	local v="later-$$-$RANDOM" id
	write_step later s "{\"run\": \"echo $v > out/o\", \"outputs\": [\"o\"]}"
	id=$(wait_new_run later)
	[ "$(run_status "$id")" = succeeded ]
	[ "$(cat "$mnt/artifacts/later/o")" = "$v" ]
}

@test "a step deleting everything from ../../.. leaves the store intact" {
	# The guard only keeps a mistake of the daemon from deleting outside this
	# test's directory; the test fails if it fires (the scratch must be
	# below $FLOWYFS_SCRATCH, inside $T).
	local cmd="cd ../../.. && here=\$(pwd -P) && case \"\$here\" in \"$T\"/*) rm -rf * .[!.]* ;; *) echo \"flowytest: not deleting in \$here\" ;; esac; true"
	local json
	json=$(step_json "$(hostile "$cmd")")
	write_step wipe a "$json"
	local id
	id=$(wait_new_run wipe)
	run step_file "$id" a log
	if [[ $output == *"flowytest: not deleting"* ]]; then
		echo "the step's cwd was not below \$FLOWYFS_SCRATCH: $output" >&2
		return 1
	fi
	check_store_intact wipe "$json"
}

@test "a step running rm -rf \$STORE/* leaves the store intact" {
	local json
	json=$(step_json "$(hostile "rm -rf \"$store\"/* ; true")")
	write_step wipe a "$json"
	wait_new_run wipe >/dev/null
	check_store_intact wipe "$json"
}

@test "a step cannot read the store's database" {
	write_step peek a "$(step_json "cat \"$store/flowy.db\" > out/x" '["x"]')"
	local id
	id=$(wait_new_run peek)
	expect_eq "$(run_status "$id")" failed "run status"
	[ "$(step_file "$id" a status)" = failed ]
	[ ! -L "$mnt/artifacts/peek/x" ]
}

@test "a step sees the store as an empty, read-only directory" {
	write_step look a "$(step_json "ls -A \"$store\" > out/listing" '["listing"]')"
	local id
	id=$(wait_new_run look)
	[ "$(run_status "$id")" = succeeded ]
	expect_eq "$(cat "$mnt/artifacts/look/listing")" "" "the store as a step lists it"
	write_step plant a "$(step_json "touch \"$store/planted\" && echo > out/o")"
	id=$(wait_new_run plant)
	expect_eq "$(run_status "$id")" failed "run of a step writing into the store"
	[ ! -e "$store/planted" ]
}

# mark_step NAME: a step that leaves file mark-NAME in its cwd and waits.
mark_step() {
	step_json "touch mark-$1; echo marked; exec sleep 30"
}

# find_mark NAME DIR...: the path of mark-NAME below the DIRs, if any.
find_mark() {
	local n=$1 f
	shift
	f=$(find "$@" -name "mark-$n" -print -quit 2>/dev/null)
	[ -n "$f" ] && echo "$f"
}

# where_mark NAME DIR...: find_mark, polled until it shows up (bounded).
where_mark() {
	wait_for "$RUN_WAIT" find_mark "$@" >/dev/null || return 1
	find_mark "$@"
}

# cancel_run P ID: cancel the running run ID of P and wait for cancelled.
cancel_run() {
	echo cancel >"$mnt/pipelines/$1/.ctl"
	[ "$(wait_run "$2")" = cancelled ]
}

@test "the scratch is outside the store, under \$FLOWYFS_SCRATCH" {
	run ls -A "$store"
	if grep -qx scratch <<<"$output"; then
		echo "the store holds a scratch directory: $output" >&2
		return 1
	fi
	write_step sc a "$(mark_step env)"
	local m
	m=$(where_mark env "$store" "$FLOWYFS_SCRATCH" "$T/scr")
	echo "mark: $m" >&2
	[[ $m == "$FLOWYFS_SCRATCH"/* ]]
	run ls -A "$store"
	! grep -qx scratch <<<"$output" || false
	cancel_run sc "$(latest_run_of sc)"
}

@test "--scratch DIR wins over \$FLOWYFS_SCRATCH; other directories in it are kept" {
	unmount_flowy
	local S=$T/opt-scratch
	mkdir -p "$S/foreign-store"
	echo keep >"$S/foreign-store/keep"
	mount_flowy --scratch "$S"
	write_step sc a "$(mark_step opt)"
	local m id
	m=$(where_mark opt "$store" "$T/scr" "$S")
	echo "mark: $m" >&2
	[[ $m == "$S"/* ]]
	# One subdirectory per store: DIR/<something>/..., not DIR/<run id>/...
	id=$(latest_run_of sc)
	local first=${m#"$S"/}
	first=${first%%/*}
	[ -d "$S/$first" ]
	[ "$first" != "$id" ]
	[ "$first" != foreign-store ]
	cancel_run sc "$id"
	remount_flowy --scratch "$S"
	[ "$(cat "$S/foreign-store/keep")" = keep ]
	! ls -A "$store" | grep -qx scratch || false
}

@test "without --scratch or \$FLOWYFS_SCRATCH the scratch is \$TMPDIR/flowyfs-<uid>" {
	unmount_flowy
	local saved=$FLOWYFS_SCRATCH
	unset FLOWYFS_SCRATCH
	mkdir -p "$T/tmpd"
	TMPDIR=$T/tmpd mount_flowy
	export FLOWYFS_SCRATCH=$saved
	write_step sc a "$(mark_step tmpdir)"
	local m
	m=$(where_mark tmpdir "$store" "$T/tmpd" "$T/scr")
	echo "mark: $m" >&2
	[[ $m == "$T/tmpd/flowyfs-$(id -u)"/* ]]
	cancel_run sc "$(latest_run_of sc)"
}

@test "the mount is read-only for steps: writes through \$FLOWY_MOUNT get EROFS" {
	mkdir "$mnt/pipelines/.w"
	step_json 'echo x > "$FLOWY_MOUNT/pipelines/w/evil.json" && echo > out/a' '["a"]' >"$mnt/pipelines/.w/a.json"
	step_json 'mkdir "$FLOWY_MOUNT/pipelines/w2" && echo > out/b' '["b"]' >"$mnt/pipelines/.w/b.json"
	step_json 'echo run > "$FLOWY_MOUNT/pipelines/early/.ctl" && echo > out/c' '["c"]' >"$mnt/pipelines/.w/c.json"
	mv "$mnt/pipelines/.w" "$mnt/pipelines/w"
	local id s
	id=$(wait_new_run w)
	for s in a b c; do
		expect_eq "$(step_file "$id" $s status)" failed "status of step $s"
		expect_contains "$(step_file "$id" $s log)" "Read-only file system" "log of step $s"
	done
	[ "$(run_status "$id")" = failed ]
	[ ! -e "$mnt/pipelines/w/evil.json" ]
	[ ! -e "$store/pipelines/w/evil.json" ]
	[ ! -e "$mnt/pipelines/w2" ]
	[ "$(head -n 1 "$mnt/pipelines/w/.status")" = valid ]
	# The .ctl write queued nothing.
	[ "$(latest_run_of early)" = "$EARLY_ID" ]
}

@test "a root step holds none of the capabilities that would undo its namespace" {
	[ "$(id -u)" = 0 ] || skip "the daemon drops capabilities as root only"
	# CAP_SETPCAP, SYS_MODULE, SYS_RAWIO, SYS_CHROOT, SYS_PTRACE, SYS_ADMIN,
	# SYS_BOOT, MKNOD, MAC_OVERRIDE, MAC_ADMIN, PERFMON, BPF: bits of
	local dropped=$((0xc3086f0100)) id b e
	write_step caps a "$(step_json 'grep -E "^Cap(Bnd|Eff):" /proc/self/status | tr -s "\t " " " > out/o; umount "$FLOWY_MOUNT" 2>/dev/null; echo "umount $?" >> out/o')"
	id=$(wait_new_run caps)
	[ "$(run_status "$id")" = succeeded ]
	b=$(awk '$1 == "CapBnd:" { print $2 }' "$mnt/artifacts/caps/o")
	e=$(awk '$1 == "CapEff:" { print $2 }' "$mnt/artifacts/caps/o")
	[ -n "$b" ] && [ -n "$e" ]
	expect_eq "$(printf '%x' $((0x$b & dropped)))" 0 "dropped capabilities in the bounding set ($b)"
	expect_eq "$(printf '%x' $((0x$e & dropped)))" 0 "dropped capabilities in effect ($e)"
	# The rest of root's stay (CAP_CHOWN, bit 0, for one).
	expect_eq "$((0x$e & 1))" 1 "CAP_CHOWN in effect ($e)"
	[ "$(tail -n 1 "$mnt/artifacts/caps/o")" != "umount 0" ]
	grep -q " $mnt fuse" /proc/mounts
}

@test "a step still reads artifacts/ and runs/ through \$FLOWY_MOUNT" {
	write_step rd a "{\"run\": \"cat \\\"\$FLOWY_MOUNT/artifacts/early/data\\\" > out/copy; cat \\\"\$FLOWY_MOUNT/runs/$EARLY_ID/status\\\" > out/st; cat in/data > out/viain\", \"inputs\": [\"early/data\"], \"outputs\": [\"copy\", \"st\", \"viain\"]}"
	local id
	id=$(wait_new_run rd)
	[ "$(run_status "$id")" = succeeded ]
	[ "$(artifact_hex rd copy)" = "$EARLY_SHA" ]
	[ "$(artifact_hex rd viain)" = "$EARLY_SHA" ]
	[ "$(cat "$mnt/artifacts/rd/st")" = succeeded ]
}

@test "a file: input pointing into the mount makes the pipeline invalid" {
	ln -s "$mnt/artifacts/early/data" "$T/link-data"
	ln -s "$mnt" "$T/link-mnt"
	local p src
	local -A inp=(
		[fm1]="file:$mnt/artifacts/early/data"
		[fm2]="file:$T/link-data"
		[fm3]="file:$T/link-mnt/artifacts/early/data"
		[fm4]="file:$mnt/pipelines/early/gen.json"
		[fm5]="file:$mnt"
	)
	for p in fm1 fm2 fm3 fm4 fm5; do
		mkdir "$mnt/pipelines/.$p"
		printf '{"run": "cat in/* > out/o", "inputs": ["%s"], "outputs": ["o"]}\n' \
			"${inp[$p]}" >"$mnt/pipelines/.$p/s.json"
		mv "$mnt/pipelines/.$p" "$mnt/pipelines/$p"
	done
	for p in fm1 fm2 fm3 fm4 fm5; do
		run cat "$mnt/pipelines/$p/.status"
		echo "$p (${inp[$p]}):" >&2
		expect_eq "${lines[0]}" invalid "first line of $p/.status"
		expect_contains "$output" "may not point into the mount" "$p/.status"
	done
}

@test "a step's scratch holds nothing of the steps before it, and a link left for in/ is never followed" {
	mkdir -p "$T/host"
	echo keep >"$T/host/keep"
	mkdir -p "$mnt/pipelines/.ch"
	# a leaves files in its cwd and in out/, b replaces in/ by a link to a
	# host directory, c and d list what they were given.
	printf '%s\n' '{"run": "echo junk > left; mkdir -p d/e; echo x > out/extra; echo a > out/a", "outputs": ["a"]}' >"$mnt/pipelines/.ch/a.json"
	printf '%s\n' "{\"run\": \"rm -rf in; ln -s $T/host in; echo b > out/b\", \"inputs\": [\"a\"], \"outputs\": [\"b\"]}" >"$mnt/pipelines/.ch/b.json"
	printf '%s\n' '{"run": "l=$(ls -A . in out | tr \"\\n\" \" \"); echo \"$l\" > out/c", "inputs": ["b"], "outputs": ["c"]}' >"$mnt/pipelines/.ch/c.json"
	printf '%s\n' '{"run": "l=$(ls -A . in out | tr \"\\n\" \" \"); echo \"$l\" > out/d", "inputs": ["c"], "outputs": ["d"]}' >"$mnt/pipelines/.ch/d.json"
	mv "$mnt/pipelines/.ch" "$mnt/pipelines/ch"
	local id
	id=$(wait_new_run ch)
	expect_eq "$(cat "$mnt/runs/$id/status")" succeeded "the run"
	expect_eq "$(cat "$mnt/artifacts/ch/c")" ".: in out  in: b  out: " "what c was given"
	expect_eq "$(cat "$mnt/artifacts/ch/d")" ".: in out  in: c  out: " "what d was given"
	expect_eq "$(cat "$T/host/keep")" keep "the host directory b linked"
	expect_eq "$(ls -A "$T/host")" keep "nothing moved into it"
	# A quiet step has an empty log (no file behind it).
	expect_eq "$(cat "$mnt/runs/$id/steps/d/log")" "" "d's log"
	[ ! -e "$store/runs/$id/d.log" ]
	# The run's scratch (its steps' directories, the pool and its trash)
	# went with its end.
	expect_eq "$(find "$FLOWYFS_SCRATCH" -mindepth 2 -maxdepth 2 -name "$id")" "" \
		"the run's scratch after its end"
}

@test "a step that moves its own directory away, or leaves files beside it, fails or leaves nothing to the next" {
	mkdir -p "$T/host"
	echo keep >"$T/host/keep"
	# a leaves a file beside its directory; b swaps its directory for a
	# link to a host directory; c, after both, lists what is around it.
	write_step mv a "$(step_json 'echo junk > ../left; echo a > out/o' '["o"]')"
	local id
	id=$(wait_new_run mv)
	expect_eq "$(run_status "$id")" succeeded "the run of a"
	write_step swap b "$(step_json "d=\$(basename \"\$PWD\"); cd .. && mv \"\$d\" moved && ln -s $T/host \"\$d\"" '["o"]')"
	id=$(wait_new_run swap)
	expect_eq "$(run_status "$id")" failed "the run of b"
	expect_eq "$(step_file "$id" b status)" failed "b's status"
	expect_contains "$(step_file "$id" b log)" \
		"the step moved or replaced its own directory (it must stay where the step was started)" "b's log"
	expect_eq "$(ls -A "$T/host")" keep "the host directory b linked"
	write_step look c "$(step_json 'ls -A .. > out/o; ls -A . >> out/o' '["o"]')"
	id=$(wait_new_run look)
	expect_eq "$(run_status "$id")" succeeded "the run of c"
	expect_eq "$(cat "$mnt/artifacts/look/o")" "$(printf '%s\n' "$(basename "$(step_cwd_of look)")" in out)" \
		"what c sees beside and in its directory"
}

# step_cwd_of P: where pipeline P's last step ran (its $FLOWY_OUT minus out).
step_cwd_of() {
	write_step "$1-where" w "$(step_json 'echo "$PWD" > out/o' '["o"]')"
	wait_new_run "$1-where" >/dev/null
	cat "$mnt/artifacts/$1-where/o"
}

@test "two steps running at once do not see each other's directory" {
	unmount_flowy
	mount_flowy -j 2
	local sync=$T/sync
	mkdir -p "$sync"
	# Each says it is up, waits (bounded) for the other, then lists what is
	# beside its directory and two levels up.
	local a b
	a="touch $sync/a; i=0; while [ ! -e $sync/b ] && [ \$i -lt 600 ]; do sleep 0.05; i=\$((i+1)); done; [ -e $sync/b ] && echo both > out/a; ls -A .. >> out/a; ls -A ../.. >> out/a"
	b="touch $sync/b; i=0; while [ ! -e $sync/a ] && [ \$i -lt 600 ]; do sleep 0.05; i=\$((i+1)); done; [ -e $sync/a ] && echo both > out/b; ls -A .. >> out/b; ls -A ../.. >> out/b"
	mkdir "$mnt/pipelines/.two"
	step_json "$a" '["a"]' >"$mnt/pipelines/.two/a.json"
	step_json "$b" '["b"]' >"$mnt/pipelines/.two/b.json"
	mv "$mnt/pipelines/.two" "$mnt/pipelines/two"
	local id
	id=$(wait_new_run two)
	expect_eq "$(run_status "$id")" succeeded "the run"
	local la lb
	la=$(cat "$mnt/artifacts/two/a") lb=$(cat "$mnt/artifacts/two/b")
	expect_eq "$(head -n 1 <<<"$la")" both "a ran while b did"
	expect_eq "$(head -n 1 <<<"$lb")" both "b ran while a did"
	# Beside each only its own directory (work), two levels up only its
	# own slot: slots 0 and 1, one each (docs/safety.md, "Slots").
	expect_eq "$(sed 1d <<<"$la" | tr '\n' ' ')$(sed 1d <<<"$lb" | tr '\n' ' ')" \
		"$(if [ "$(sed -n 3p <<<"$la")" = 0 ]; then echo "work 0 work 1 "; else echo "work 1 work 0 "; fi)" \
		"what a and b see around them"
}

@test "a file system mounted after steps have run is seen by the next step" {
	[ "$(id -u)" = 0 ] || skip "needs root (mounts a tmpfs)"
	LATE=$T/late
	mkdir -p "$LATE"
	mount -t tmpfs -o size=64k flowytest-late "$LATE"
	echo "mounted late" >"$LATE/f"
	write_step late a "$(step_json "cat $LATE/f > out/o" '["o"]')"
	local id
	id=$(wait_new_run late)
	expect_eq "$(run_status "$id")" succeeded "the run"
	expect_eq "$(cat "$mnt/artifacts/late/o")" "mounted late" "what the step read"
}
