#!/usr/bin/env bats
# pipelines.bats - pipelines/ is an ordinary read-write tree (with a few
# rules); staging directories publish atomically; runs see a snapshot.

load helpers

setup() {
	mount_flowy
	P=$mnt/pipelines
}

teardown() {
	flowy_teardown
}

@test "mkdir, create, write, append, rename, unlink and rmdir work and read back" {
	mkdir "$P/ops"
	[ -d "$P/ops" ]
	[ "$(stat -c %a "$P/ops")" = 755 ]
	echo hello >"$P/ops/f.txt"
	[ "$(cat "$P/ops/f.txt")" = hello ]
	[ "$(stat -c %a "$P/ops/f.txt")" = 644 ]
	echo world >>"$P/ops/f.txt"
	[ "$(cat "$P/ops/f.txt")" = "$(printf 'hello\nworld')" ]
	echo x >"$P/ops/f.txt"
	[ "$(cat "$P/ops/f.txt")" = x ]
	[ "$(stat -c %s "$P/ops/f.txt")" = 2 ]
	mv "$P/ops/f.txt" "$P/ops/g.txt"
	[ ! -e "$P/ops/f.txt" ]
	[ "$(cat "$P/ops/g.txt")" = x ]
	mkdir -p "$P/ops/lib/deep"
	printf 'nested\n' >"$P/ops/lib/deep/n.sh"
	[ "$(cat "$P/ops/lib/deep/n.sh")" = nested ]
	mv "$P/ops/g.txt" "$P/ops/lib/g.txt"
	[ "$(cat "$P/ops/lib/g.txt")" = x ]
	chmod 755 "$P/ops/lib/deep/n.sh"
	[ "$(stat -c %a "$P/ops/lib/deep/n.sh")" = 755 ]
	truncate -s 3 "$P/ops/lib/deep/n.sh"
	[ "$(cat "$P/ops/lib/deep/n.sh")" = nes ]
	run ls "$P/ops/lib"
	expect_eq "$output" $'deep\ng.txt' "ls lib"
	run rmdir "$P/ops/lib"
	[ "$status" -ne 0 ]
	[[ $output == *"not empty"* ]]
	rm "$P/ops/lib/g.txt" "$P/ops/lib/deep/n.sh"
	rmdir "$P/ops/lib/deep" "$P/ops/lib"
	run ls -A "$P/ops"
	expect_eq "$output" $'.ctl\n.dag\n.dag.dot\n.dag.svg\n.plan\n.status' "ls -A of an empty pipeline"
	rmdir "$P/ops"
	[ ! -e "$P/ops" ]
	run ls "$P"
	[ "$output" = "" ]
}

@test "a pipeline with files can be removed with rm -r" {
	write_step gone s '{"run": "echo > out/o", "outputs": ["o"]}'
	write_file gone lib/x.sh 'echo'
	wait_new_run gone >/dev/null
	rm -r "$P/gone"
	[ ! -e "$P/gone" ]
	run ls "$P"
	[ "$output" = "" ]
}

@test "a large file reads back byte for byte" {
	head -c 3000000 /dev/urandom >"$BATS_TEST_TMPDIR/big"
	mkdir "$P/big"
	cp "$BATS_TEST_TMPDIR/big" "$P/big/data.bin"
	cmp "$BATS_TEST_TMPDIR/big" "$P/big/data.bin"
	[ "$(stat -c %s "$P/big/data.bin")" = 3000000 ]
}

@test "mv pipelines/.staging pipelines/p publishes the pipeline and runs it" {
	mkdir "$P/.staging"
	printf '%s\n' '{"run": "cat msg > out/o", "outputs": ["o"]}' >"$P/.staging/s.json"
	printf '%s\n' 'published' >"$P/.staging/msg"
	# A staging directory is never run; its .status checks it on demand.
	run ls -A "$P/.staging"
	expect_eq "$output" $'.status\nmsg\ns.json' "ls -A of staging"
	[ "$(head -n 1 "$P/.staging/.status")" = valid ]
	mv "$P/.staging" "$P/p"
	[ ! -e "$P/.staging" ]
	local id
	id=$(wait_new_run p)
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
	[ "$(cat "$mnt/artifacts/p/o")" = published ]
	[ "$(run_count)" -eq 1 ]
	[ "$(cat "$P/p/msg")" = published ]
	[ "$(head -n 1 "$P/p/.status")" = valid ]
}

@test "an invalid staging directory is not run until published" {
	mkdir "$P/.wip"
	printf '%s\n' '{"run": "echo > out/o", "outputs": ["o"], "bogus": 1}' >"$P/.wip/s.json"
	write_step sentinel s '{"run": "echo > out/o", "outputs": ["o"]}'
	wait_new_run sentinel >/dev/null
	[ "$(run_count)" -eq 1 ]
	mv "$P/.wip" "$P/w"
	run cat "$P/w/.status"
	expect_eq "$output" $'invalid\ns.json:1:43: unknown key "bogus"\nlast run: none' .status
}

@test "only relative symlinks that stay inside their pipeline can be made (else EPERM)" {
	mkdir -p "$P/s/sub" "$P/t"
	echo data >"$P/s/real"
	run ln -s /etc/passwd "$P/s/link"
	[ "$status" -ne 0 ]
	[[ $output == *"Operation not permitted"* ]]
	run ln -s ../t/x "$P/s/out"
	[ "$status" -ne 0 ]
	[[ $output == *"Operation not permitted"* ]]
	run ln -s ../../s/real "$P/s/sub/esc"
	[ "$status" -ne 0 ]
	[[ $output == *"Operation not permitted"* ]]
	run ln -s /etc "$P/link"
	[ "$status" -ne 0 ]
	[[ $output == *"Operation not permitted"* ]]
	run ln -s s "$P/rel"
	[ "$status" -ne 0 ]
	[[ $output == *"Operation not permitted"* ]]
	[ ! -L "$P/s/link" ]
	[ ! -L "$P/s/out" ]
	[ ! -L "$P/s/sub/esc" ]
	[ ! -L "$P/link" ]
	[ ! -L "$P/rel" ]
	ln -s real "$P/s/rel"
	ln -s ../real "$P/s/sub/up"
	[ "$(readlink "$P/s/rel")" = real ]
	[ "$(cat "$P/s/rel")" = data ]
	[ "$(cat "$P/s/sub/up")" = data ]
}

@test "hard links work inside one pipeline, not across pipelines (EXDEV)" {
	mkdir "$P/s" "$P/t"
	echo data >"$P/s/real"
	ln "$P/s/real" "$P/s/hard"
	[ "$(cat "$P/s/hard")" = data ]
	[ "$(stat -c %h "$P/s/real")" = 2 ]
	[ "$(stat -c %i "$P/s/real")" = "$(stat -c %i "$P/s/hard")" ]
	run ln "$P/s/real" "$P/t/hard"
	[ "$status" -ne 0 ]
	[[ $output == *"Invalid cross-device link"* ]]
	[ ! -e "$P/t/hard" ]
	run ln "$P/s/real" "$P/hard"
	[ "$status" -ne 0 ]
	[[ $output == *"Operation not permitted"* ]]
	rm "$P/s/real"
	[ "$(stat -c %h "$P/s/hard")" = 1 ]
}

@test "plain files directly in pipelines/ are refused (EPERM)" {
	run touch "$P/plain"
	[ "$status" -ne 0 ]
	[[ $output == *"Operation not permitted"* ]]
	run bash -c 'echo x > "$1"' _ "$P/plain.json"
	[ "$status" -ne 0 ]
	[[ $output == *"Operation not permitted"* ]]
	[ ! -e "$P/plain" ]
}

@test "generated files cannot be renamed or renamed over; unlinking one changes nothing" {
	write_step g s '{"run": "echo > out/o", "outputs": ["o"]}'
	echo hi >"$P/g/t.txt"
	local before
	before=$(cat "$P/g/.dag")
	for f in .status .dag .dag.dot .dag.svg .ctl; do
		# Unlink succeeds (so rm -r works) and the file is generated again.
		rm "$P/g/$f"
		[ -e "$P/g/$f" ]
		run mv "$P/g/$f" "$P/g/moved"
		[ "$status" -ne 0 ]
		[[ $output == *"Operation not permitted"* ]]
		run mv "$P/g/t.txt" "$P/g/$f"
		[ "$status" -ne 0 ]
		[[ $output == *"Operation not permitted"* || $output == *"File exists"* ]]
		run mkdir "$P/g/$f"
		[ "$status" -ne 0 ]
		[[ $output == *"File exists"* ]]
	done
	[ "$(cat "$P/g/t.txt")" = hi ]
	[ ! -e "$P/g/moved" ]
	run bash -c 'echo x > "$1"' _ "$P/g/.status"
	[ "$status" -ne 0 ]
	run bash -c 'echo x > "$1"' _ "$P/g/.dag"
	[ "$status" -ne 0 ]
	[ "$(head -n 1 "$P/g/.status")" = valid ]
	[ "$(cat "$P/g/.dag")" = "$before" ]
	# (.latest too once the run the step's writes queued has started)
	run bash -c 'ls -A "$1" | grep -vx .latest' _ "$P/g"
	expect_eq "$output" $'.ctl\n.dag\n.dag.dot\n.dag.svg\n.plan\n.status\ns.json\nt.txt' "ls -A"
}

@test "deleting a step file removes the step from the pipeline" {
	write_step d a '{"run": "echo > out/a", "outputs": ["a"]}'
	write_step d b '{"run": "echo > out/b", "outputs": ["b"]}'
	run cat "$P/d/.dag"
	expect_eq "$output" $'a\t- -> a\nb\t- -> b' .dag
	rm "$P/d/b.json"
	run cat "$P/d/.dag"
	expect_eq "$output" $'a\t- -> a' .dag
	# Renaming a step file renames the step.
	mv "$P/d/a.json" "$P/d/c.json"
	run cat "$P/d/.dag"
	expect_eq "$output" $'c\t- -> a' .dag
}

@test "editing a step mid-run does not affect the running run (snapshot)" {
	mkdir "$P/.snap"
	printf 'v1\n' >"$P/.snap/script.sh"
	printf '%s\n' '{"run": "sleep 1; cat script.sh > out/x", "outputs": ["x"]}' >"$P/.snap/s.json"
	mv "$P/.snap" "$P/snap"
	local i id=
	for ((i = 0; i < RUN_WAIT; i++)); do
		id=$(latest_run_of snap)
		[ -n "$id" ] && [ "$(step_file "$id" s status)" = running ] && break
		sleep 0.05
	done
	[ "$(step_file "$id" s status)" = running ]
	printf 'v2\n' >"$P/snap/script.sh"
	printf '%s\n' '{"run": "sleep 1; cat script.sh > out/x; echo edited", "outputs": ["x"]}' >"$P/snap/s.json"
	[ "$(wait_run "$id")" = succeeded ]
	[ "$(cat "$mnt/runs/$id/steps/s/outputs/x")" = v1 ]
	[ "$(step_file "$id" s log)" = "" ]
	# The edit queued a run of its own, which sees the new files.
	local id2
	id2=$(wait_new_run snap "$id")
	[ "$(cat "$mnt/runs/$id2/steps/s/outputs/x")" = v2 ]
	[ "$(step_file "$id2" s log)" = edited ]
	[ "$(cat "$mnt/artifacts/snap/x")" = v2 ]
}

@test "echo cancel > .ctl stops a running run: cancelled, step process gone" {
	local pidf=$BATS_TEST_TMPDIR/step.pid
	write_step k a "{\"run\": \"echo \$\$ > $pidf; exec sleep 30\", \"outputs\": [\"o\"]}"
	write_step k b '{"run": "cp in/o out/p", "inputs": ["o"], "outputs": ["p"]}'
	local i id=
	for ((i = 0; i < RUN_WAIT; i++)); do
		id=$(latest_run_of k)
		[ -n "$id" ] && [ "$(step_file "$id" a status)" = running ] && [ -s "$pidf" ] && break
		sleep 0.1
	done
	[ "$(step_file "$id" a status)" = running ]
	echo cancel >"$P/k/.ctl"
	[ "$(wait_run "$id")" = cancelled ]
	for ((i = 0; i < 50; i++)); do
		kill -0 "$(cat "$pidf")" 2>/dev/null || break
		sleep 0.1
	done
	! kill -0 "$(cat "$pidf")" 2>/dev/null || false
	[ "$(step_file "$id" b status)" = skipped ]
	[ "$(tail -n 1 "$P/k/.status")" = "last run: $id cancelled" ]
	# Nothing left to cancel.
	run bash -c 'echo cancel > "$1"' _ "$P/k/.ctl"
	[ "$status" -ne 0 ]
	[[ $output == *"No such process"* ]]
}

@test "pause stops the running step's processes, resume continues them" {
	local pidf=$BATS_TEST_TMPDIR/step.pid
	write_step pz a "{\"run\": \"echo \$\$ > $pidf; sleep 1; echo done > out/o\", \"outputs\": [\"o\"]}"
	local i id=
	for ((i = 0; i < RUN_WAIT; i++)); do
		id=$(latest_run_of pz)
		[ -n "$id" ] && [ "$(step_file "$id" a status)" = running ] && [ -s "$pidf" ] && break
		sleep 0.05
	done
	local spid state
	spid=$(cat "$pidf")
	echo pause >"$P/pz/.ctl"
	for ((i = 0; i < 50; i++)); do
		state=$(awk '{ print $3 }' "/proc/$spid/stat")
		[ "$state" = T ] && break
		sleep 0.1
	done
	[ "$state" = T ]
	for ((i = 0; i < 50; i++)); do
		[ "$(cat "$mnt/runs/$id/status")" = paused ] && break
		sleep 0.1
	done
	[ "$(cat "$mnt/runs/$id/status")" = paused ]
	echo resume >"$P/pz/.ctl"
	for ((i = 0; i < 50; i++)); do
		state=$(awk '{ print $3 }' "/proc/$spid/stat" 2>/dev/null) || break
		[ "$state" != T ] && break
		sleep 0.1
	done
	[ "$state" != T ]
	[ "$(wait_run "$id")" = succeeded ]
	[ "$(cat "$mnt/artifacts/pz/o")" = done ]
}

@test "changes within the window coalesce into one run" {
	mkdir "$P/co"
	printf '%s\n' '{"run": "echo 1 > out/a", "outputs": ["a"]}' >"$P/co/a.json"
	printf '%s\n' '{"run": "echo 2 > out/b", "outputs": ["b"]}' >"$P/co/b.json"
	printf '%s\n' '{"run": "echo 3 > out/c", "outputs": ["c"]}' >"$P/co/c.json"
	local id
	id=$(wait_new_run co)
	# Writes done back to back (well inside 0.3 s) make one run with all steps.
	run ls "$mnt/runs/$id/steps"
	expect_eq "$output" $'a\nb\nc' "steps of the run"
	[ "$(run_count)" -eq 1 ]
}

@test "git clone of a repository with internal symlinks into a pipeline works" {
	local src=$BATS_TEST_TMPDIR/src
	mkdir -p "$src/lib/sub"
	git -C "$src" init -q
	echo 'echo hi' >"$src/lib/run.sh"
	chmod 755 "$src/lib/run.sh"
	echo data >"$src/lib/sub/data.txt"
	ln -s lib/run.sh "$src/run"
	ln -s ../run.sh "$src/lib/sub/run"
	ln -s sub "$src/lib/s"
	git -C "$src" add -A
	git -C "$src" -c user.name=t -c user.email=t@t commit -qm init
	git clone -q "$src" "$P/gc"
	[ "$(readlink "$P/gc/run")" = lib/run.sh ]
	[ "$(readlink "$P/gc/lib/sub/run")" = ../run.sh ]
	[ "$(cat "$P/gc/run")" = 'echo hi' ]
	[ "$(cat "$P/gc/lib/s/data.txt")" = data ]
	[ "$(stat -c %a "$P/gc/lib/run.sh")" = 755 ]
	# The index's stat data (inode, times in ns, sizes) match what the
	# mount reports, and every file and link is what was committed; only
	# the pipeline's generated files are new.
	run git -C "$P/gc" status --porcelain
	[ "$status" -eq 0 ]
	expect_eq "$output" $'?? .ctl\n?? .dag\n?? .dag.dot\n?? .dag.svg\n?? .plan\n?? .status' "git status"
	run git -C "$P/gc" fsck --no-progress
	[ "$status" -eq 0 ]
}

@test "pipelines/<p>/.latest points at that pipeline's newest run, whatever other pipelines do" {
	[ ! -e "$mnt/pipelines/.nolatest" ] || false
	write_step la a '{"run": "echo a > out/o", "outputs": ["o"]}'
	local id
	id=$(wait_new_run la)
	expect_eq "$(readlink "$mnt/pipelines/la/.latest")" "../../runs/$id" ".latest"
	[ "$(cat "$mnt/pipelines/la/.latest/status")" = succeeded ]
	ls -A "$mnt/pipelines/la" | grep -qx .latest
	# another pipeline's run moves runs/latest, not la/.latest
	write_step lb b '{"run": "echo b > out/o", "outputs": ["o"]}'
	local other
	other=$(wait_new_run lb)
	expect_eq "$(readlink "$mnt/runs/latest")" "$other" "runs/latest"
	expect_eq "$(readlink "$mnt/pipelines/la/.latest")" "../../runs/$id" ".latest after another pipeline ran"
	# the run exists as soon as the write returns
	echo run >"$mnt/pipelines/la/.ctl"
	local next
	next=$(readlink "$mnt/pipelines/la/.latest")
	[ "$next" != "../../runs/$id" ]
	[ -d "$mnt/pipelines/la/$next" ]
	# a pipeline without runs has no .latest
	mkdir "$mnt/pipelines/lc"
	[ ! -e "$mnt/pipelines/lc/.latest" ] && [ ! -L "$mnt/pipelines/lc/.latest" ]
}
