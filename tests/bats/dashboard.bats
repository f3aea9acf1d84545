#!/usr/bin/env bats
# dashboard.bats - --http ADDR:PORT: the live dashboard, read-only, over a
# real mount; abusive clients; and headless Chromium (tests/browser/cdp.py,
# which starts the browser and stops it by its pid) checking the DOM.
# Screenshots are kept in build/screenshots/ (not committed).

load helpers

BROWSER=$BATS_TEST_DIRNAME/../browser
SHOTS=$BATS_TEST_DIRNAME/../../build/screenshots

setup() {
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	url=http://127.0.0.1:$port
	mount_flowy --http "127.0.0.1:$port"
	mkdir -p "$SHOTS"
}

teardown() {
	if [ -n "${helper_pid:-}" ]; then
		kill "$helper_pid" 2>/dev/null || true
		wait "$helper_pid" 2>/dev/null || true
	fi
	flowy_teardown
}

# code URL [CURL_ARGS...]: the HTTP status of URL.
code() {
	curl -s -o /dev/null -m 20 -w '%{http_code}' "$@"
}

# A two-step pipeline with a metric and a param; $R its finished run.
make_runs() {
	write_file p pipeline.json '{"params": {"lr": 0.1}}'
	write_step p prep '{"run": "seq 3 > out/data", "outputs": ["data"]}'
	write_step p train '{"run": "echo {\\\"loss\\\": 0.5} >> $FLOWY_METRICS; echo {\\\"loss\\\": 0.25} >> $FLOWY_METRICS; echo trained-$FLOWY_PARAM_lr; cat in/data > out/model", "inputs": ["data"], "outputs": ["model"], "params": ["lr"]}'
	R1=$(wait_new_run p)
	write_file p pipeline.json '{"params": {"lr": 0.2}}'
	R=$(wait_new_run p "$R1")
}

@test "--http serves the pages from the views; read-only; no way out of the tree" {
	make_runs
	body=$(curl -sf -m 20 "$url/")
	grep -q 'href="/pipeline/p"' <<<"$body"
	grep -q "href=\"/run/$R\"" <<<"$body"
	grep -q 'st-succeeded' <<<"$body"
	grep -q "trained-0.2" <<<"$(curl -sf -m 20 "$url/run/$R")"
	grep -q '<svg' <<<"$(curl -sf -m 20 "$url/pipeline/p")"
	grep -q 'p: loss' <<<"$(curl -sf -m 20 "$url/metrics/p")"
	grep -q 'params.lr' <<<"$(curl -sf -m 20 "$url/compare/p")"
	# Comparison pages: the newest runs, then those before run id.
	body=$(curl -sf -m 20 "$url/compare/p")
	grep -qxF "<p class=\"range\" id=\"range\">Runs $R1 to $R: 2 of 2</p>" <<<"$body"
	[ "$(grep -c '^<tr><td' <<<"$body")" = 2 ]
	body=$(curl -sf -m 20 "$url/compare/p?before=$R")
	grep -qxF "<p class=\"range\" id=\"range\">Runs $R1 to $R1: 1 of 2 · <a href=\"/compare/p\">the newest</a></p>" <<<"$body"
	[ "$(grep -c '^<tr><td' <<<"$body")" = 1 ]
	[ "$(code "$url/compare/p?before=$R1")" = 404 ]
	[ "$(code "$url/compare/p?before=x")" = 404 ]
	# The files are the mount's, byte for byte.
	expect_eq "$(curl -sf -m 20 "$url/file/runs/$R/summary")" "$(cat "$mnt/runs/$R/summary")" summary
	curl -sf -m 20 "$url/file/runs/$R/dag.svg" -o "$BATS_TEST_TMPDIR/dag.svg"
	cmp "$BATS_TEST_TMPDIR/dag.svg" "$mnt/runs/$R/dag.svg"
	[ "$(curl -s -m 20 -o /dev/null -w '%{content_type}' "$url/file/runs/$R/dag.svg")" = image/svg+xml ]
	[ "$(code -I "$url/run/$R")" = 200 ]
	# Read-only.
	[ "$(code -X POST -d x "$url/")" = 405 ]
	[ "$(code -X PUT -d x "$url/file/runs/$R/status")" = 405 ]
	[ "$(code -X DELETE "$url/run/$R")" = 405 ]
	# Only generated files of the tree; nothing of the host.
	[ "$(code --path-as-is "$url/file/../../etc/passwd")" != 200 ]
	[ "$(code --path-as-is "$url/file/runs/../../../etc/passwd")" = 403 ]
	[ "$(code --path-as-is "$url/file/runs/%2e%2e/%2e%2e/etc/passwd")" = 403 ]
	[ "$(code "$url/file/pipelines/p/train.json")" = 403 ]
	[ "$(code "$url/file/runs/$R/snapshot/train.json")" = 403 ]
	[ "$(code "$url/file/artifacts/p/model")" = 403 ]
	[ "$(code "$url/file/runs/999/status")" = 404 ]
	[ "$(code "$url/run/999")" = 404 ]
	[ "$(code --path-as-is "$url/run/..")" = 404 ]
	[ "$(code "$url/nothing")" = 404 ]
	[ "$(code "$url/file/pipelines/p/.dag.svg")" = 200 ]
	# Hostile text from the tree is escaped in the pages.
	write_file h pipeline.json '{"params": {"x": "<script>alert(1)</script>"}}'
	write_step h s '{"run": "echo \"<b>&amp;</b>\"; echo o > out/o", "outputs": ["o"], "params": ["x"]}'
	H=$(wait_new_run h)
	page=$(curl -sf -m 20 "$url/run/$H")
	grep -q '&lt;script&gt;alert(1)&lt;/script&gt;' <<<"$page"
	grep -q '&lt;b&gt;&amp;amp;&lt;/b&gt;' <<<"$page"
	! grep -q '<script>alert' <<<"$page"
}

@test "--http: a bad address or a taken port fails the start with one line" {
	mkdir -p "$BATS_TEST_TMPDIR/m2"
	run "$FLOWYFS_BIN" --store "$BATS_TEST_TMPDIR/s2" --http 127.0.0.1:99999 -f "$BATS_TEST_TMPDIR/m2"
	[ "$status" = 1 ]
	[ "$output" = "flowyfs: --http 127.0.0.1:99999: expected [ADDR:]PORT with PORT from 1 to 65535" ]
	run "$FLOWYFS_BIN" --store "$BATS_TEST_TMPDIR/s2" --http "127.0.0.1:$port" -f "$BATS_TEST_TMPDIR/m2"
	[ "$status" = 1 ]
	[ "$output" = "flowyfs: --http 127.0.0.1:$port: Address already in use" ]
	! grep -q " $BATS_TEST_TMPDIR/m2 fuse" /proc/mounts
	run "$FLOWYFS_BIN" --http
	[ "$status" = 1 ]
	[ "$output" = "flowyfs: option --http needs an argument" ]
	# The first daemon is unharmed.
	[ "$(code "$url/")" = 200 ]
}

@test "--http survives 200 concurrent slow and malformed connections; the mount stays responsive" {
	make_runs
	run timeout 120 python3 "$BROWSER/abuse.py" "$port" "$mnt/runs/$R/status" p
	echo "# $output" >&3
	[ "$status" = 0 ]
	daemon_alive
	[ "$(cat "$mnt/runs/$R/status")" = succeeded ]
	[ "$(code "$url/run/$R")" = 200 ]
}

# browser ARGS...: tests/browser/cdp.py, bounded; the DOM in $dom.
browser() {
	command -v chromium >/dev/null || skip "chromium is not installed"
	dom=$(timeout 90 python3 "$BROWSER/cdp.py" "$@")
}

@test "Chromium: the dashboard lists pipelines and runs; a run page updates live without a reload" {
	make_runs
	browser --screenshot "$SHOTS/dashboard.png" "$url/"
	grep -q "data-pipeline=\"p\"" <<<"$dom"
	grep -q "<tr data-run=\"$R\">" <<<"$dom"
	grep -q 'st-succeeded' <<<"$dom"
	# A step that waits for a file: the page opens while it runs; the file
	# is made once the page has loaded, and the page must show the end.
	go=$BATS_TEST_TMPDIR/go
	write_step w s "{\"run\": \"echo waiting; i=0; while [ ! -e $go ] && [ \$i -lt 400 ]; do sleep 0.05; i=\$((i+1)); done; echo finished-waiting; echo x > out/o\", \"outputs\": [\"o\"]}"
	W=$(wait_step_running w s)
	[ "$(cat "$mnt/runs/$W/status")" = running ]
	browser --touch "$go" --timeout 30 --screenshot "$SHOTS/run-live.png" \
		--until "document.querySelector('#run-status .st').textContent === 'succeeded' && document.querySelector('pre.log').textContent.indexOf('finished-waiting') >= 0" \
		"$url/run/$W"
	grep -q 'id="run-status"><span class="st st-succeeded">succeeded' <<<"$dom"
	grep -q 'finished-waiting' <<<"$dom"
	[ -s "$SHOTS/run-live.png" ]
	[ "$(wait_run "$W")" = succeeded ]
}

@test "Chromium: the comparison table sorts by any column and marks the best run; metric and pipeline pages" {
	make_runs
	write_file p pipeline.json '{"params": {"lr": 0.05}}'
	R3=$(wait_new_run p "$R")
	# Click "run" twice: descending by run id.
	browser --screenshot "$SHOTS/compare.png" --until "(function(){ var th = document.querySelector('#compare th[data-col=\"0\"]'); if (!window.clicked) { th.click(); th.click(); window.clicked = 1; } var c = document.querySelectorAll('#compare tbody tr td:first-child'); return c.length === 3 && c[0].textContent === '$R3' && c[2].textContent === '$R1'; })()" "$url/compare/p"
	grep -q 'class="best"' <<<"$dom"
	browser --screenshot "$SHOTS/metrics.png" "$url/metrics/p"
	grep -q "run $R3 lr=0.05" <<<"$dom"
	browser --screenshot "$SHOTS/pipeline.png" "$url/pipeline/p"
	grep -q '<title>step:train</title>' <<<"$dom"
}

@test "Chromium: report.html opens from the mount (file://) and shows the run" {
	make_runs
	browser --screenshot "$SHOTS/report.png" --height 2400 "file://$mnt/runs/$R/report.html"
	grep -q "Run $R of p" <<<"$dom"
	grep -q 'trained-0.2' <<<"$dom"
	grep -q '<title>step:train</title>' <<<"$dom"
	grep -q 'run '"$R"' train: loss' <<<"$dom"
	! grep -q '<script' <<<"$dom"
}
