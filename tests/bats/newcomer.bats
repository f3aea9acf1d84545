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
	expect_eq "$(cut -f1,5,6 "$mnt/metrics/cm/runs.tsv")" "$(printf 'run\tmetrics.acc\tmetrics.loss\n%s\t0.98\t0.5\n%s\t0.98\t0.5' "$a" "$b")" "runs.tsv"
}

@test "a failed step's scratch stays readable as steps/<s>/workdir until the pipeline's next run" {
	mkdir -p "$P/.wd"
	echo '{"run": "echo partial > notes.txt; mkdir -p out; exit 2", "outputs": ["o"]}' >"$P/.wd/s.json"
	echo '{"run": "echo ok > out/p", "outputs": ["p"]}' >"$P/.wd/fine.json"
	mv "$P/.wd" "$P/wd"
	local id
	id=$(wait_new_run wd)
	expect_eq "$(cat "$mnt/runs/$id/status")" failed "the run"
	[ -L "$mnt/runs/$id/steps/s/workdir" ]
	expect_eq "$(cat "$mnt/runs/$id/steps/s/workdir/notes.txt")" partial "a file the failed step left"
	expect_eq "$(ls "$mnt/runs/$id/steps/s/" | grep -c workdir)" 1 "listed"
	[ ! -e "$mnt/runs/$id/steps/fine/workdir" ]
	local w
	w=$(readlink "$mnt/runs/$id/steps/s/workdir")
	echo run >"$P/wd/.ctl"
	local id2
	id2=$(readlink "$P/wd/.latest"); id2=${id2##*/}
	[ "$id2" -gt "$id" ]
	wait_run "$id2" >/dev/null
	[ ! -e "$mnt/runs/$id/steps/s/workdir" ]
	[ ! -e "$w" ]
	[ -L "$mnt/runs/$id2/steps/s/workdir" ]
}

@test "the daemon's messages are readable at the mount root as log" {
	mkdir -p "$P/lg"
	run bash -c "echo 'run nosuch=1' > '$P/lg/.ctl'"
	[ "$status" -ne 0 ]
	grep -q 'lg/.ctl: run nosuch=1: refused: ' "$mnt/log"
	expect_eq "$(stat -c %a "$mnt/log")" 444 "mode"
	run bash -c "echo x >> '$mnt/log'"
	[ "$status" -ne 0 ]
	head -1 "$mnt/log" | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z serving store '
}

@test "editor temp files, dotfiles and docs queue no run; a definition edit does" {
	mkdir -p "$P/.ed"
	echo '{"run": "echo hi > out/g", "outputs": ["g"]}' >"$P/.ed/greet.json"
	mv "$P/.ed" "$P/ed"
	local id
	id=$(wait_new_run ed)
	echo junk >"$P/ed/.greet.json.swp"
	echo junk >"$P/ed/greet.json~"
	echo junk >"$P/ed/4913"
	echo "# notes" >"$P/ed/NOTES.md"
	sleep 1 # twice the change window: a run would be queued by now
	expect_eq "$(latest_run_of ed)" "$id" "no new run"
	rm "$P/ed/4913" "$P/ed/greet.json~" "$P/ed/.greet.json.swp"
	echo '{"run": "echo hello > out/g", "outputs": ["g"]}' >"$P/ed/greet.json"
	local id2
	id2=$(wait_new_run ed "$id")
	expect_eq "$(cat "$mnt/runs/$id2/steps/greet/reason")" "definition changed" "reason"
	expect_eq "$(ls "$mnt/runs/$id2/snapshot" | tr '\n' ' ')" "NOTES.md greet.json " "the snapshot has the notes"
}

@test "a file: input being written queues its run after the writer closes it, on the whole file" {
	local H=$BATS_TEST_TMPDIR/host
	mkdir -p "$H"
	echo v0 >"$H/in.txt"
	mkdir -p "$P/.fi"
	echo "{\"run\": \"cat in/in.txt > out/copy\", \"inputs\": [\"file:$H/in.txt\"], \"outputs\": [\"copy\"]}" >"$P/.fi/s.json"
	mv "$P/.fi" "$P/fi"
	local id
	id=$(wait_new_run fi)
	exec 7>"$H/in.txt"     # truncated, kept open
	echo part1 >&7
	sleep 1                # longer than the change window, the writer still busy
	expect_eq "$(latest_run_of fi)" "$id" "no run while the file is open for writing"
	echo part2 >&7
	exec 7>&-
	local id2
	id2=$(wait_new_run fi "$id")
	expect_eq "$(cat "$mnt/artifacts/fi/copy")" "$(printf 'part1\npart2')" "the run saw the whole file"
	sleep 0.5
	expect_eq "$(latest_run_of fi)" "$id2" "one run for the write"
}

@test "env records the interpreters the steps' commands name: resolved file, version, Python distributions" {
	local py
	py=$(command -v python3)
	local real
	real=$(readlink -f "$py")
	mkdir -p "$P/.en"
	echo "{\"run\": \"bash -c 'python3 -c pass' && $real -c pass; echo > out/o\", \"outputs\": [\"o\"]}" >"$P/.en/s.json"
	mv "$P/.en" "$P/en"
	local id
	id=$(wait_new_run en)
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
	local env=$mnt/runs/$id/env
	expect_eq "$(grep -P '^python3\t' "$env")" "$(printf 'python3\t%s' "$(python3 --version 2>&1 | head -1)")" "python3 version"
	expect_eq "$(grep -P '^python3\.path\t' "$env")" "$(printf 'python3.path\t%s' "$real")" "python3 resolved"
	expect_eq "$(grep -P "^$real\\t" "$env" | cut -f2)" "$(python3 --version 2>&1 | head -1)" "the absolute one"
	local want
	want=$(python3 -c "import importlib.metadata as m; print(' '.join(sorted({'%s==%s' % (d.metadata['Name'], d.version) for d in m.distributions() if d.metadata['Name']}, key=str.lower)))")
	expect_eq "$(grep -P '^python3\.packages\t' "$env" | cut -f2)" "$want" "distributions"
	expect_eq "$(grep -P '^bash\.path\t' "$env" | cut -f2)" "$(readlink -f "$(command -v bash)")" "bash"
}

@test "mount(8) and fstab style: mount -t fuse 'flowyfs#STORE' MNT -o store options" {
	unmount_flowy
	local st2=$BATS_TEST_TMPDIR/store2 m2=$BATS_TEST_TMPDIR/mnt2
	mkdir -p "$m2"
	run mount -t fuse "$FLOWYFS_BIN#$st2" "$m2" -o "jobs=3,scratch=$BATS_TEST_TMPDIR/scr2"
	[ "$status" -eq 0 ]
	mnt=$m2
	FLOWY_PID=$(cat "$st2/lock")
	echo "$FLOWY_PID" >"$BATS_TEST_TMPDIR/daemon.pid"
	grep -q " $m2 fuse.flowyfs " /proc/mounts
	local i
	for ((i = 0; i < 50; i++)); do grep -q 'serving store' "$m2/log" && break; sleep 0.1; done
	grep -q "serving store $st2 on $m2 with -j 3" "$m2/log"
	[ -d "$BATS_TEST_TMPDIR/scr2" ]
	# the store named twice, differently, is refused before anything mounts
	run "$FLOWYFS_BIN" "$st2" "$BATS_TEST_TMPDIR/none" -o store=/elsewhere
	expect_eq "$output" "flowyfs: two stores: $st2 and /elsewhere (give one)" "two stores"
	[ "$status" -eq 1 ]
	fusermount3 -u "$m2"
	for ((i = 0; i < 100; i++)); do kill -0 "$FLOWY_PID" 2>/dev/null || break; sleep 0.1; done
	! kill -0 "$FLOWY_PID" 2>/dev/null
	FLOWY_PID=
	rm -f "$BATS_TEST_TMPDIR/daemon.pid" # nothing left for teardown
}

@test "runs.tsv: a column per external input and the pipeline commit; a metric name two steps log is qualified by step" {
	local H=$BATS_TEST_TMPDIR/h
	mkdir -p "$H"
	echo one >"$H/data.csv"
	mkdir -p "$P/.rt"
	cat >"$P/.rt/prep.json" <<JSON
{"run": "cat in/data.csv > out/d; echo '{\"loss\": 2, \"rows\": 3}' >> \$FLOWY_METRICS", "inputs": ["file:$H/data.csv"], "outputs": ["d"]}
JSON
	cat >"$P/.rt/fit.json" <<'JSON'
{"run": "cat in/d > out/m; echo '{\"loss\": 0.5}' >> $FLOWY_METRICS", "inputs": ["d"], "outputs": ["m"]}
JSON
	mv "$P/.rt" "$P/rt"
	local a
	a=$(wait_new_run rt)
	local hex commit
	hex=$(sha256sum <"$H/data.csv" | cut -c1-12)
	commit=$(cut -c1-12 "$mnt/runs/$a/pipeline.commit")
	expect_eq "$(cat "$mnt/metrics/rt/runs.tsv" | cut -f1,5-)" "$(printf 'run\tmetrics.fit.loss\tmetrics.prep.loss\tmetrics.rows\tinput.file:%s/data.csv\tcommit\n%s\t0.5\t2\t3\t%s\t%s' "$H" "$a" "$hex" "$commit")" "runs.tsv"
	[ ${#commit} = 12 ]
}

@test "a staging directory .p/ has a .status of its own, checked before anything runs" {
	mkdir "$P/.st"
	echo '{"run": "true", "ouputs": ["x"]}' >"$P/.st/a.json"
	expect_eq "$(cat "$P/.st/.status")" "$(printf 'invalid\na.json:1:17: unknown key "ouputs" (did you mean "outputs"?)')" "invalid staging"
	expect_eq "$(ls -A "$P/.st" | tr '\n' ' ')" ".status a.json " "listing"
	echo '{"run": "echo > out/x", "outputs": ["x"]}' >"$P/.st/a.json"
	expect_eq "$(cat "$P/.st/.status")" "$(printf 'valid\nstaging: move it into place to run it: mv .st st')" "valid staging"
	expect_eq "$(run_count)" 0 "nothing ran"
	mv "$P/.st" "$P/st"
	local id
	id=$(wait_new_run st)
	expect_eq "$(cat "$mnt/runs/$id/status")" succeeded "after the move"
}

@test "a finished run's files keep its finish time; tar of a run exits 0; artifacts keep their creation time" {
	write_step tm s '{"run": "mkdir out/d; echo a > out/d/x; echo b > out/f", "outputs": ["d", "f"]}'
	local id
	id=$(wait_new_run tm)
	local fin
	fin=$(date -d "$(cat "$mnt/runs/$id/finished")" +%s)
	sleep 1.1
	expect_eq "$(stat -c %Y "$mnt/runs/$id/status")" "$fin" "status mtime"
	expect_eq "$(stat -c %Y "$mnt/runs/$id/steps/s/reason")" "$fin" "a step file's mtime"
	expect_eq "$(stat -c %Y "$mnt/runs/$id")" "$fin" "the run directory"
	run tar -chzf "$BATS_TEST_TMPDIR/run.tgz" -C "$mnt/runs" "$id"
	expect_eq "$status $output" "0 " "tar -chzf of the run"
	local hex t1 t2
	hex=$(readlink "$mnt/artifacts/tm/f"); hex=${hex##*/}
	t1=$(stat -c %Y "$mnt/artifacts/sha256/$hex")
	sleep 1.1
	echo run >"$mnt/pipelines/tm/.ctl"
	t2=$(stat -c %Y "$mnt/artifacts/sha256/$hex")
	expect_eq "$t2" "$t1" "an artifact's mtime"
	[ "$t1" -le "$fin" ]
}
