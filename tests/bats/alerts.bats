#!/usr/bin/env bats
# alerts.bats - pipeline.json alerts through the mount: checked live as
# metric lines arrive and as runs go on, each firing once per run as a
# line of runs/<id>/alerts and an alert event; bad alerts in .status.

load helpers
load safety_helpers

setup() {
	mount_flowy
	P=$mnt/pipelines
	SYNC=$BATS_TEST_TMPDIR/sync
	mkdir -p "$SYNC"
}

teardown() {
	flowy_teardown
}

# alerts_of ID: runs/ID/alerts without the time column.
alerts_of() {
	cut -f2- "$mnt/runs/$1/alerts"
}

# has_alert ID NAME: runs/ID/alerts has a line for NAME.
has_alert() {
	cut -f2 "$mnt/runs/$1/alerts" | grep -qx "$2"
}

@test "a metric alert fires live, once per run, as a line of runs/<id>/alerts and an alert event" {
	printf '#!/bin/sh\ncat >> "%s/events"\n' "$SYNC" >"$mnt/hooks/alert.rec"
	chmod +x "$mnt/hooks/alert.rec"
	mkdir "$P/.m"
	echo '{"autorun": false, "alerts": [{"name": "low", "metric": "acc", "below": 0.5, "step": "train"},
	  {"name": "high", "metric": "acc", "above": 0.8, "step": "other"},
	  {"name": "lossy", "metric": "loss", "above": 1}]}' >"$P/.m/pipeline.json"
	printf '{"run": "for v in 0.6 0.4 0.3; do echo \\"{\\\\\\"acc\\\\\\": $v}\\" >> $FLOWY_METRICS; done; i=0; while [ ! -e %s/go ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; echo \\"{\\\\\\"acc\\\\\\": 0.9, \\\\\\"loss\\\\\\": 0.5}\\" >> $FLOWY_METRICS"}\n' \
		"$SYNC" >"$P/.m/train.json"
	echo '{"run": "echo \"{\\\"acc\\\": 0.1}\" >> $FLOWY_METRICS"}' >"$P/.m/other.json"
	mv "$P/.m" "$P/m"
	expect_eq "$(head -n 1 "$P/m/.status")" "valid"
	echo run >"$P/m/.ctl"
	local id
	id=$(latest_run_of m)
	# The alert is there while the step still runs (it waits for go).
	wait_for "$RUN_WAIT" has_alert "$id" low
	expect_eq "$(cat "$mnt/runs/$id/steps/train/status")" running
	touch "$SYNC/go"
	wait_run "$id" >/dev/null
	expect_eq "$(alerts_of "$id")" $'name\tmetric\tvalue\tthreshold\nlow\tacc\t0.4\t0.5'
	wait_for "$RUN_WAIT" test -s "$SYNC/events"
	sleep 0.3 # nothing more may come
	expect_eq "$(sed 's/"time":"[^"]*"/"time":T/' "$SYNC/events")" \
		"{\"event\":\"alert\",\"time\":T,\"pipeline\":\"m\",\"run\":$id,\"step\":\"train\",\"status\":\"fired\",\"error\":null,\"params\":{},\"outputs\":{},\"metrics\":{\"acc\":0.4},\"alert\":\"low\",\"metric\":\"acc\",\"value\":0.4,\"threshold\":0.5}"
	# A new run may fire it again, once.
	: >"$SYNC/events"
	echo run >"$P/m/.ctl"
	local id2
	id2=$(wait_new_run m "$id")
	expect_eq "$(alerts_of "$id2")" $'name\tmetric\tvalue\tthreshold\nlow\tacc\t0.4\t0.5'
	expect_eq "$(alerts_of "$id")" $'name\tmetric\tvalue\tthreshold\nlow\tacc\t0.4\t0.5'
}

@test "duration_above fires for a slow run and a slow step, not for a fast one" {
	mkdir "$P/.d"
	echo '{"autorun": false, "alerts": [{"name": "slow", "duration_above": 0.3},
	  {"name": "slowstep", "duration_above": 0.2, "step": "wait"},
	  {"name": "faststep", "duration_above": 5, "step": "quick"}]}' >"$P/.d/pipeline.json"
	echo '{"run": "sleep 0.6; echo > out/o", "outputs": ["o"]}' >"$P/.d/wait.json"
	echo '{"run": "true"}' >"$P/.d/quick.json"
	mv "$P/.d" "$P/d"
	echo run >"$P/d/.ctl"
	local id
	id=$(wait_new_run d)
	expect_eq "$(cut -f2,3,5 "$mnt/runs/$id/alerts")" \
		$'name\tmetric\tthreshold\nslowstep\tduration\t0.2\nslow\tduration\t0.3'
	local v
	v=$(awk -F'\t' '$2 == "slowstep" {print $4}' "$mnt/runs/$id/alerts")
	awk -v v="$v" 'BEGIN { exit !(v > 0.2 && v < 0.6) }'
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
}

@test "duration_above leaves out the time a run spends paused" {
	mkdir "$P/.pz"
	echo '{"autorun": false, "alerts": [{"name": "slow", "duration_above": 1},
	  {"name": "slowstep", "duration_above": 1, "step": "s"}]}' >"$P/.pz/pipeline.json"
	echo "{\"run\": \"while [ ! -e $SYNC/go ]; do sleep 0.05; done; echo > out/o\", \"outputs\": [\"o\"]}" >"$P/.pz/s.json"
	mv "$P/.pz" "$P/pz"
	echo run >"$P/pz/.ctl"
	local id i
	id=$(wait_step_running pz s)
	echo "pause $id" >"$P/pz/.ctl"
	for ((i = 0; i < 50; i++)); do
		[ "$(cat "$mnt/runs/$id/status")" = paused ] && break
		sleep 0.1
	done
	[ "$(cat "$mnt/runs/$id/status")" = paused ]
	touch "$SYNC/go"   # stopped, the step cannot see it before the resume
	sleep 1.5          # paused longer than both thresholds
	echo "resume $id" >"$P/pz/.ctl"
	expect_eq "$(wait_run "$id")" succeeded "after resume"
	expect_eq "$(cat "$mnt/runs/$id/alerts")" $'time\tname\tmetric\tvalue\tthreshold' "no alert"
}

@test "a run without alerts has only the header in runs/<id>/alerts" {
	write_step plain s '{"run": "echo \"{\\\"acc\\\": 0.1}\" >> $FLOWY_METRICS"}'
	local id
	id=$(wait_new_run plain)
	expect_eq "$(cat "$mnt/runs/$id/alerts")" $'time\tname\tmetric\tvalue\tthreshold'
	run cat "$mnt/runs/999/alerts"
	expect_contains "$output" "No such file or directory"
}

@test "bad alerts are reported in .status with file:line:col" {
	mkdir "$P/.b"
	printf '%s\n' '{"alerts": [' \
		' {"name": "a", "metric": "acc"},' \
		' {"name": "b", "duration_above": "1h"},' \
		' {"name": "c", "metric": "x", "below": 1, "step": "nope"}]}' >"$P/.b/pipeline.json"
	echo '{"run": "true"}' >"$P/.b/s.json"
	mv "$P/.b" "$P/b"
	expect_eq "$(cat "$P/b/.status")" 'invalid
pipeline.json:2:16: alert on a metric needs "above" or "below"
pipeline.json:3:16: "duration_above" must be a positive number of seconds
pipeline.json:4:51: alert step "nope": no such step in this pipeline
last run: none'
}
