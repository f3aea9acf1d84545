#!/usr/bin/env bats
# metrics.bats - $FLOWY_METRICS ingestion and the metrics/ views, compared
# across runs with different params.

load helpers

setup() {
	mount_flowy
}

teardown() {
	flowy_teardown
}

# A step whose loss is 10 * lr, reported twice (the last value counts).
train_step='{"run": "echo {\\\"loss\\\": 99} >> $FLOWY_METRICS; awk -v lr=$FLOWY_PARAM_lr \"BEGIN { printf \\\"{\\\\\\\"loss\\\\\\\": %g}\\\\n\\\", lr * 10 }\" >> $FLOWY_METRICS; echo $FLOWY_PARAM_lr > out/model", "outputs": ["model"], "params": ["lr"]}'

@test "three runs with different params compare in runs.tsv" {
	write_file t pipeline.json '{"params": {"lr": 0.1}}'
	write_step t train "$train_step"
	R1=$(wait_new_run t)
	write_file t pipeline.json '{"params": {"lr": 0.3}}'
	R2=$(wait_new_run t "$R1")
	write_file t pipeline.json '{"params": {"lr": 0.2}}'
	R3=$(wait_new_run t "$R2")
	[ "$(head -1 "$mnt/metrics/t/runs.tsv")" = "$(printf 'run\tstatus\tstarted\tduration\tparams.lr\tmetrics.loss\tcommit')" ]
	expected=$(printf '%s\t%s\t%s\t%s\n' "$R1" succeeded 0.1 1 "$R2" succeeded 0.3 3 "$R3" succeeded 0.2 2)
	expect_eq "$(tail -n +2 "$mnt/metrics/t/runs.tsv" | cut -f1,2,5,6)" "$expected" runs.tsv
	# Ready for sort: the best run by loss.
	[ "$(tail -n +2 "$mnt/metrics/t/runs.tsv" | sort -t "$(printf '\t')" -k6,6g | head -1 | cut -f1)" = "$R1" ]
	# started is ISO 8601 UTC, duration seconds.
	tail -n +2 "$mnt/metrics/t/runs.tsv" | cut -f3 | grep -qvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$' && false
	tail -n +2 "$mnt/metrics/t/runs.tsv" | cut -f4 | grep -qvE '^[0-9]+\.[0-9]{3}$' && false
	# One file per metric: last value per run and step.
	expect_eq "$(cut -f1-3 "$mnt/metrics/t/loss")" \
		"$(printf 'run\tstep\tvalue\n%s\ttrain\t1\n%s\ttrain\t3\n%s\ttrain\t2' "$R1" "$R2" "$R3")" loss
	[ "$(ls "$mnt/metrics/t" | tr '\n' ' ')" = "loss loss.svg runs.tsv " ]
	# The series of one step.
	expect_eq "$(cat "$mnt/runs/$R2/steps/train/metrics/loss")" "$(printf 'index\tvalue\n0\t99\n1\t3')" series
}

@test "malformed metric lines are counted in the log and never fatal" {
	write_step m s '{"run": "printf \"{\\\"a\\\": 1}\\nnot json\\n{\\\"a\\\": \\\"x\\\"}\\n{\\\"a\\\": 2}\\n\" >> $FLOWY_METRICS; echo ok > out/o", "outputs": ["o"]}'
	R=$(wait_new_run m)
	[ "$(cat "$mnt/runs/$R/status")" = succeeded ]
	expect_eq "$(cat "$mnt/runs/$R/steps/s/metrics/a")" "$(printf 'index\tvalue\n0\t1\n1\t2')" series
	grep -qx 'flowyfs: 2 malformed metric line(s) ignored (first: line 2: not valid JSON)' \
		"$mnt/runs/$R/steps/s/log"
}

@test "metrics are ingested while the step still runs" {
	mark=$BATS_TEST_TMPDIR/go
	write_step live s "{\"run\": \"echo '{\\\"step\\\": 1}' >> \$FLOWY_METRICS; i=0; while [ ! -e $mark ] && [ \$i -lt 300 ]; do sleep 0.05; i=\$((i+1)); done; echo done > out/o\", \"outputs\": [\"o\"]}"
	local i seen=
	for ((i = 0; i < 100; i++)); do
		R=$(latest_run_of live)
		if [ -n "$R" ] && [ "$(cat "$mnt/runs/$R/steps/s/metrics/step" 2>/dev/null)" = "$(printf 'index\tvalue\n0\t1')" ]; then
			seen=$(cat "$mnt/runs/$R/steps/s/status")
			break
		fi
		sleep 0.1
	done
	touch "$mark"
	[ "$seen" = running ]
	[ "$(wait_run "$R")" = succeeded ]
}

@test "numbers print in their shortest round-trip form everywhere" {
	write_file n pipeline.json '{"params": {"lr": 0.3333333333333333, "grid": [0.1, 1e21]}}'
	write_step n s '{"run": "echo {\\\"acc\\\": 0.9775} >> $FLOWY_METRICS; echo ok > out/o", "outputs": ["o"]}'
	R=$(wait_new_run n)
	[ "$(wait_run "$R")" = succeeded ]
	printf 'index\tvalue\n0\t0.9775\n' > "$BATS_TEST_TMPDIR/series"
	cmp "$BATS_TEST_TMPDIR/series" "$mnt/runs/$R/steps/s/metrics/acc"
	expect_eq "$(tail -n +2 "$mnt/metrics/n/acc" | cut -f1-3)" "$(printf '%s\ts\t0.9775' "$R")" acc
	expect_eq "$(head -1 "$mnt/metrics/n/runs.tsv")" \
		"$(printf 'run\tstatus\tstarted\tduration\tparams.grid\tparams.lr\tmetrics.acc\tcommit')" header
	expect_eq "$(tail -n +2 "$mnt/metrics/n/runs.tsv" | cut -f5-7)" \
		"$(printf '[0.1,1e+21]\t0.3333333333333333\t0.9775')" runs.tsv
	# run.json agrees (cJSON alone would print 1/3 as 0.33333333333333331).
	grep -q '"acc":[[:space:]]*\[0\.9775\]' "$mnt/runs/$R/run.json"
	grep -q '"lr":[[:space:]]*0\.3333333333333333,\?$' "$mnt/runs/$R/run.json"
	! grep -q '33331' "$mnt/runs/$R/run.json"
}
