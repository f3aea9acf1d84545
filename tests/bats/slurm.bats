#!/usr/bin/env bats
# slurm.bats - the Slurm executor against a real single-node cluster on
# this machine (tests/slurm/cluster.sh: slurmctld and slurmd started with
# -D, stopped by pid in teardown_file). One daemon serves the whole file
# (--shared-dir, polls every 1 s backing off to 4 s); `sbatch` and
# `squeue` are shims that log each call and exec the real tool. A job with
# a one-minute limit is queued first and checked last, so waiting for
# Slurm's time limit overlaps the other tests (plain build only).

load helpers

setup_file() {
	command -v slurmctld >/dev/null && command -v slurmd >/dev/null ||
		skip "slurm-wlm is not installed (make installs it)"
	export CLUSTER=$BATS_FILE_TMPDIR/cluster
	mkdir -p "$CLUSTER"
	bash "$BATS_TEST_DIRNAME/../slurm/cluster.sh" start "$CLUSTER" || {
		bash "$BATS_TEST_DIRNAME/../slurm/cluster.sh" stop "$CLUSTER"
		return 1
	}
	export SLURM_CONF=$CLUSTER/slurm.conf
	export SHIMS=$BATS_FILE_TMPDIR/bin CALLS=$BATS_FILE_TMPDIR/calls
	mkdir -p "$SHIMS"
	local t real
	for t in sbatch squeue scancel; do
		real=$(command -v $t)
		printf '#!/bin/sh\necho "%s $*" >>%s\nexec %s "$@"\n' "$t" "$CALLS" "$real" \
			>"$SHIMS/$t"
		chmod +x "$SHIMS/$t"
	done
	: >"$CALLS"
	export PATH=$SHIMS:$PATH FLOWYFS_SLURM_POLL=1:4
	export store=$BATS_FILE_TMPDIR/store mnt=$BATS_FILE_TMPDIR/mnt
	export SHARED=$BATS_FILE_TMPDIR/shared
	mkdir -p "$SHARED"
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR mount_flowy --shared-dir "$SHARED" -j 2
	echo "$FLOWY_PID" >"$BATS_FILE_TMPDIR/flowy.pid"
	# The time-limit job, checked by the last tests. It takes Slurm 60 to
	# 90 s to end, so only the plain build waits for it: the daemon's side
	# (a state that ended the job) is the same code as a cancel's.
	sanitizer_build && return 0
	publish limit '{"run": "sleep 300", "outputs": ["x"], "executor": "slurm",
	                "resources": {"time": "1m"}}'
}

teardown_file() {
	if [ -n "${mnt:-}" ] && [ -s "$BATS_FILE_TMPDIR/flowy.pid" ]; then
		FLOWY_PID=$(cat "$BATS_FILE_TMPDIR/flowy.pid")
		BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR unmount_flowy
	fi
	[ -z "${CLUSTER:-}" ] || bash "$BATS_TEST_DIRNAME/../slurm/cluster.sh" stop "$CLUSTER"
}

setup() {
	FLOWY_PID=$(cat "$BATS_FILE_TMPDIR/flowy.pid" 2>/dev/null || true)
}

teardown() {
	if [ -n "${BATS_TEST_COMPLETED:-}" ]; then
		return 0
	fi
	echo "--- daemon log:" >&2
	tail -n 30 "$BATS_FILE_TMPDIR/daemon.log" >&2
	squeue -t all >&2 || true
}

# publish P STEP_JSON [PIPELINE_JSON]: pipeline P with one step "s", as
# one change (staged, then renamed).
publish() {
	local d=$BATS_FILE_TMPDIR/src-$1
	rm -rf "$d"
	mkdir -p "$d"
	printf '%s\n' "$2" >"$d/s.json"
	[ -z "${3:-}" ] || printf '%s\n' "$3" >"$d/pipeline.json"
	cp -r "$d" "$mnt/pipelines/.$1"
	mv "$mnt/pipelines/.$1" "$mnt/pipelines/$1"
}

# wait_started P: the id of P's first run once it exists.
wait_started() {
	local i id
	for ((i = 0; i < 100; i++)); do
		id=$(latest_run_of "$1")
		[ -n "$id" ] && { echo "$id"; return 0; }
		sleep 0.1
	done
	return 1
}

# wait_job_state ID STATE: until squeue shows job ID in STATE (bounded).
wait_job_state() {
	local i
	for ((i = 0; i < 150; i++)); do
		[ "$(squeue -h -t all -j "$1" -o %T 2>/dev/null)" = "$2" ] && return 0
		sleep 0.2
	done
	echo "job $1 is $(squeue -h -t all -j "$1" -o %T 2>&1), not $2" >&2
	return 1
}

# wait_job RUN STEP: the Slurm job id once runs/RUN/steps/STEP/job has one.
wait_job() {
	local i j
	for ((i = 0; i < 100; i++)); do
		j=$(cat "$mnt/runs/$1/steps/$2/job" 2>/dev/null)
		[ -n "$j" ] && { echo "$j"; return 0; }
		sleep 0.1
	done
	return 1
}

@test "slurm: the quickstart on Slurm gives the local artifacts; a rerun is cached without a job" {
	local qs=$BATS_TEST_DIRNAME/../../examples/quickstart f
	cp -r "$qs" "$mnt/pipelines/.local"
	mv "$mnt/pipelines/.local" "$mnt/pipelines/local"
	local lid
	lid=$(wait_new_run local)
	[ "$(cat "$mnt/runs/$lid/status")" = succeeded ]
	# The same pipeline with every step on Slurm.
	mkdir -p "$BATS_FILE_TMPDIR/qs"
	cp -r "$qs"/. "$BATS_FILE_TMPDIR/qs"
	for f in corpus shard count; do
		sed -i 's/^{/{ "executor": "slurm",/' "$BATS_FILE_TMPDIR/qs/$f.json"
	done
	local before
	before=$(grep -c '^sbatch' "$CALLS" || true)
	cp -r "$BATS_FILE_TMPDIR/qs" "$mnt/pipelines/.onslurm"
	mv "$mnt/pipelines/.onslurm" "$mnt/pipelines/onslurm"
	local sid
	sid=$(wait_new_run onslurm)
	[ "$(cat "$mnt/runs/$sid/status")" = succeeded ]
	[ "$(($(grep -c '^sbatch' "$CALLS") - before))" -eq 3 ]
	for f in corpus.txt shards counts.tsv top.txt; do
		[ "$(readlink "$mnt/artifacts/onslurm/$f")" = "$(readlink "$mnt/artifacts/local/$f")" ]
	done
	for s in corpus shard count; do
		[[ $(step_file "$sid" $s job) =~ ^[0-9]+$ ]]
		[ "$(step_file "$lid" $s job)" = "" ]
		[ "$(step_file "$sid" $s exit_code)" = 0 ]
		[ "$(readlink "$mnt/runs/$sid/steps/$s/outputs/"*)" = \
		  "$(readlink "$mnt/runs/$lid/steps/$s/outputs/"*)" ]
	done
	# The job really ran under Slurm, and its log came back.
	local job
	job=$(step_file "$sid" count job)
	run squeue -h -t all -j "$job" -o '%T|%j'
	[ "$output" = "COMPLETED|flowy-onslurm-count" ]
	# The lineage view is as for a local step.
	run cat "$mnt/runs/$sid/summary"
	[[ $output == *"count	succeeded"* ]]
	# A rerun: every step cached, nothing submitted.
	before=$(grep -c '^sbatch' "$CALLS")
	echo run >"$mnt/pipelines/onslurm/.ctl"
	local id2
	id2=$(wait_new_run onslurm "$sid")
	for s in corpus shard count; do
		[ "$(step_file "$id2" $s status)" = cached ]
		[ "$(step_file "$id2" $s job)" = "" ]
	done
	[ "$(grep -c '^sbatch' "$CALLS")" -eq "$before" ]
}

@test "slurm: a failing job fails its step with its exit code and log" {
	publish failing '{"run": "echo oops; echo \"{\\\"loss\\\": 0.5}\" >>$FLOWY_METRICS; exit 3",
	                  "outputs": ["x"], "executor": "slurm"}'
	local id
	id=$(wait_new_run failing)
	[ "$(cat "$mnt/runs/$id/status")" = failed ]
	[ "$(step_file "$id" s exit_code)" = 3 ]
	[ "$(step_file "$id" s error)" = "step exited with status 3" ]
	run step_file "$id" s log
	[[ $output == *oops* ]]
	run cat "$mnt/runs/$id/steps/s/metrics/loss"
	[[ $output == *0.5* ]]
	# Its scratch stays on the shared dir, shown as workdir.
	[ "$(readlink "$mnt/runs/$id/steps/s/workdir")" = "$SHARED/$(ls "$SHARED")/runs/$id/s" ]
	[ -f "$mnt/runs/$id/steps/s/workdir/.flowy/job.sh" ]
	wait_job_state "$(step_file "$id" s job)" FAILED
	# A job Slurm refuses fails at once, saying why.
	publish refused '{"run": "true", "outputs": ["x"], "executor": "slurm",
	                  "resources": {"partition": "nosuchpartition"}}'
	id=$(wait_new_run refused)
	run step_file "$id" s error
	[[ $output == "sbatch failed: "*"partition"* ]]
}

@test "slurm: --executor and --shared-dir are checked at start" {
	run "$FLOWYFS_BIN" --executor slurm "$BATS_TEST_TMPDIR"
	[ "$status" -eq 1 ]
	[ "$output" = "flowyfs: --executor slurm needs --shared-dir (a directory the compute nodes share)" ]
	run "$FLOWYFS_BIN" --executor pbs --shared-dir "$SHARED" "$BATS_TEST_TMPDIR"
	[ "$status" -eq 1 ]
	[ "$output" = "flowyfs: --executor pbs: expected local or slurm" ]
	mkdir -p "$BATS_TEST_TMPDIR/m"
	run "$FLOWYFS_BIN" --store "$BATS_TEST_TMPDIR/s" --shared-dir /nonexistent "$BATS_TEST_TMPDIR/m"
	[ "$status" -eq 1 ]
	[[ $output == "flowyfs: shared dir /nonexistent: No such file or directory" ]]
}

@test "slurm: pause, resume and cancel of a running job, cancel of a pending one" {
	publish running '{"run": "sleep 120", "outputs": ["x"], "executor": "slurm"}'
	publish pending '{"run": "true", "outputs": ["x"], "executor": "slurm"}' \
		'{"slurm": {"args": ["--begin=now+1hour"]}}'
	local rid pid rjob pjob
	rid=$(wait_started running)
	pid=$(wait_started pending)
	rjob=$(wait_job "$rid" s)
	pjob=$(wait_job "$pid" s)
	wait_job_state "$rjob" RUNNING
	wait_job_state "$pjob" PENDING
	[ "$(step_file "$rid" s status)" = running ]
	# pause and resume suspend and resume the job
	echo pause >"$mnt/pipelines/running/.ctl"
	wait_job_state "$rjob" SUSPENDED
	[ "$(cat "$mnt/runs/$rid/status")" = paused ]
	echo resume >"$mnt/pipelines/running/.ctl"
	wait_job_state "$rjob" RUNNING
	echo cancel >"$mnt/pipelines/running/.ctl"
	echo cancel >"$mnt/pipelines/pending/.ctl"
	[ "$(wait_run "$rid")" = cancelled ]
	[ "$(wait_run "$pid")" = cancelled ]
	wait_job_state "$rjob" CANCELLED
	wait_job_state "$pjob" CANCELLED
	grep -q "^scancel.*$rjob" "$CALLS"
}

@test "slurm: a foreach step is one job array; a failed item is resubmitted alone" {
	local flag=$BATS_FILE_TMPDIR/c-failed-once
	publish array "{\"run\": \"if [ \$FLOWY_ITEM = c ] && [ ! -e $flag ]; then touch $flag; exit 1; fi; echo \$FLOWY_ITEM > out/o\",
	                \"outputs\": [\"o\"], \"executor\": \"slurm\", \"foreach\": \"param:items\",
	                \"params\": [\"items\"], \"concurrency\": 2, \"retries\": 1}" \
		'{"params": {"items": ["a", "b", "c", "d"]}}'
	local id
	id=$(wait_new_run array)
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
	run cat "$mnt/artifacts/array/o/c"
	[ "$output" = c ]
	local a b c d
	a=$(step_file "$id" s items/a/job)
	b=$(step_file "$id" s items/b/job)
	c=$(step_file "$id" s items/c/job)
	d=$(step_file "$id" s items/d/job)
	# One array for the four, the concurrency its % limit ...
	[ "${a%_*}" = "${b%_*}" ] && [ "${a%_*}" = "${d%_*}" ]
	[ "$a" = "${a%_*}_0" ] && [ "$d" = "${a%_*}_3" ]
	grep -q "^sbatch --parsable --array=0,1,2,3%2 " "$CALLS"
	# ... and c, which failed once, in an array of its own.
	[ "${c%_*}" != "${a%_*}" ] && [ "$c" = "${c%_*}_2" ]
	grep -q "^sbatch --parsable --array=2%2 " "$CALLS"
	[ "$(step_file "$id" s items/c/attempts)" = 2 ]
}

@test "slurm: job states come from one batched squeue call per interval" {
	local n=6 k before t0 t1
	for ((k = 0; k < n; k++)); do
		publish "many$k" '{"run": "sleep 6; echo ok > out/x", "outputs": ["x"],
		                   "executor": "slurm"}'
	done
	before=$(grep -c '^squeue' "$CALLS" || true)
	t0=$(date +%s)
	for ((k = 0; k < n; k++)); do
		[ "$(wait_run "$(wait_started "many$k")")" = succeeded ]
	done
	t1=$(date +%s)
	local calls=$(($(grep -c '^squeue' "$CALLS") - before)) secs=$((t1 - t0 + 1))
	echo "# $calls squeue calls in ${secs}s for $n jobs" >&3
	# At most one call per second (the minimum interval), never per job.
	[ "$calls" -le "$secs" ]
	# Each call asks about every job at once (-j a,b,c ...).
	grep '^squeue' "$CALLS" | tail -n "$calls" | grep -q -- '-j [0-9_]*,[0-9]'
}

@test "slurm: a job over its time limit ends TIMEOUT with a readable error" {
	sanitizer_build && skip "a minute of Slurm's time: the plain build checks it"
	local id
	id=$(latest_run_of limit)
	[ "$(RUN_WAIT=1200 wait_run "$id")" = failed ]
	run step_file "$id" s error
	[[ $output == *"Slurm state TIMEOUT"* ]]
	[[ $output == "Slurm job "* ]]
	wait_job_state "$(step_file "$id" s job)" TIMEOUT
}

@test "slurm: stopping the daemon cancels its running jobs and marks the run interrupted" {
	# A daemon of this test's own (its exit status is ours to see), with
	# Slurm as the default executor.
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR unmount_flowy
	rm -f "$BATS_FILE_TMPDIR/flowy.pid"
	store=$BATS_TEST_TMPDIR/store mnt=$BATS_TEST_TMPDIR/mnt
	mount_flowy --executor slurm --shared-dir "$SHARED"
	publish stopme '{"run": "sleep 120", "outputs": ["x"]}'
	local id job
	id=$(wait_started stopme)
	job=$(wait_job "$id" s)
	wait_job_state "$job" RUNNING
	local t0=$SECONDS
	unmount_flowy
	[ "$DAEMON_RC" = 0 ] || { show_daemon_log >&2; false; }
	[ $((SECONDS - t0)) -le 10 ]
	wait_job_state "$job" CANCELLED
	grep -q "^scancel $job" "$CALLS"
	mount_flowy --executor slurm --shared-dir "$SHARED"
	[ "$(cat "$mnt/runs/$id/status")" = interrupted ]
	# A daemon killed outright leaves its job running; the next one marks
	# the run interrupted and cancels the job.
	local old=$id
	echo run >"$mnt/pipelines/stopme/.ctl"
	id=$(latest_run_of stopme)
	[ "$id" -gt "$old" ]
	job=$(wait_job "$id" s)
	wait_job_state "$job" RUNNING
	kill -KILL "$FLOWY_PID"
	unmount_flowy
	[ "$(squeue -h -t all -j "$job" -o %T)" = RUNNING ]
	mount_flowy --executor slurm --shared-dir "$SHARED"
	[ "$(cat "$mnt/runs/$id/status")" = interrupted ]
	wait_job_state "$job" CANCELLED
	# Nothing of these daemons is left in the queue.
	[ -z "$(squeue -h -t pending,running -o %i)" ]
	flowy_teardown
}
