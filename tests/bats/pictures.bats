#!/usr/bin/env bats
# pictures.bats - the pictures of the tree through a real mount:
# pipelines/<p>/.dag.svg, runs/<id>/dag.svg, metrics/<p>/<m>.svg,
# runs/<id>/steps/<s>/metrics/<m>.svg and runs/<id>/report.html. Every SVG
# is checked with an XML parser; the report with an HTML parser.

load helpers

setup() {
	mount_flowy
}

teardown() {
	flowy_teardown
}

# valid_xml FILE: FILE parses as XML and its root element is <svg>.
valid_xml() {
	python3 - "$1" <<'PY'
import sys, xml.dom.minidom
doc = xml.dom.minidom.parse(sys.argv[1])
assert doc.documentElement.tagName == "svg", doc.documentElement.tagName
PY
}

# svg_shapes FILE: for each node of a drawn graph, its title, its shape's
# fill, stroke-dasharray (- when solid) and left x (a box's x or first
# point, an ellipse's cx), tab-separated, one a line.
svg_shapes() {
	python3 - "$1" <<'PY'
import sys, xml.dom.minidom
doc = xml.dom.minidom.parse(sys.argv[1])
for g in doc.getElementsByTagName("g"):
    if g.getAttribute("class") != "node":
        continue
    title = g.getElementsByTagName("title")[0].firstChild.data
    shape = [e for e in g.getElementsByTagName("*")
             if e.tagName in ("rect", "polygon", "ellipse")][0]
    x = shape.getAttribute("x") or shape.getAttribute("cx") or \
        shape.getAttribute("points").split(",")[0]
    print("\t".join([title, shape.getAttribute("fill"),
                     shape.getAttribute("stroke-dasharray") or "-", x]))
PY
}

# svg_texts FILE: every <text> and <title> of the SVG, one a line.
svg_texts() {
	python3 - "$1" <<'PY'
import sys, xml.dom.minidom
doc = xml.dom.minidom.parse(sys.argv[1])
for tag in ("text", "title"):
    for e in doc.getElementsByTagName(tag):
        print("".join(n.data for n in e.childNodes if n.nodeType == n.TEXT_NODE))
PY
}

@test ".dag.svg: steps and artifacts laid out by Graphviz, valid SVG" {
	write_step d prep '{"run": "echo 1 > out/data", "outputs": ["data"]}'
	write_step d train '{"run": "cat in/data > out/model", "inputs": ["data"], "outputs": ["model"]}'
	write_step d eval '{"run": "cat in/model in/data > out/score", "inputs": ["model", "data"], "outputs": ["score"]}'
	ls -a "$mnt/pipelines/d" | grep -qx .dag.svg
	cp "$mnt/pipelines/d/.dag.svg" "$BATS_TEST_TMPDIR/d.svg"
	valid_xml "$BATS_TEST_TMPDIR/d.svg"
	texts=$(svg_texts "$BATS_TEST_TMPDIR/d.svg")
	for n in step:prep step:train step:eval art:data art:model art:score prep train eval; do
		grep -qx "$n" <<<"$texts" || { echo "missing $n in: $texts"; false; }
	done
	# Edges: data feeds train and eval.
	grep -qx 'art:data->step:train' <<<"$texts"
	grep -qx 'art:data->step:eval' <<<"$texts"
	# An invalid pipeline still gets a picture, saying so.
	write_step d eval '{"run": "x", "inputs": ["nothing"]}'
	cp "$mnt/pipelines/d/.dag.svg" "$BATS_TEST_TMPDIR/bad.svg"
	valid_xml "$BATS_TEST_TMPDIR/bad.svg"
	grep -q 'invalid pipeline: see .status' "$BATS_TEST_TMPDIR/bad.svg"
	# Read-only, like the other generated files.
	! echo x 2>/dev/null >"$mnt/pipelines/d/.dag.svg"
}

# svg_titles FILE: the <title> of the graph, every node and every edge,
# sorted (bytes).
svg_titles() {
	python3 - "$1" <<'PY' | LC_ALL=C sort
import sys, xml.dom.minidom
doc = xml.dom.minidom.parse(sys.argv[1])
for e in doc.getElementsByTagName("title"):
    print("".join(n.data for n in e.childNodes if n.nodeType == n.TEXT_NODE))
PY
}

@test ".dag.svg: drawn anew when the graph changes, as before when it changes back" {
	write_file g pipeline.json '{"autorun": false}'
	write_step g a '{"run": "echo 1 > out/x", "outputs": ["x"]}'
	write_step g b '{"run": "cat in/x > out/y", "inputs": ["x"], "outputs": ["y"]}'
	cp "$mnt/pipelines/g/.dag.svg" "$BATS_TEST_TMPDIR/one.svg"
	expect_eq "$(svg_titles "$BATS_TEST_TMPDIR/one.svg")" "art:x
art:x->step:b
art:y
g
step:a
step:a->art:x
step:b
step:b->art:y" "titles of the first graph"
	# A step more: the next read shows it (the graph is drawn anew, in
	# the read or in the background, never an older drawing).
	write_step g c '{"run": "cat in/y > out/z", "inputs": ["y"], "outputs": ["z"]}'
	cp "$mnt/pipelines/g/.dag.svg" "$BATS_TEST_TMPDIR/two.svg"
	expect_eq "$(svg_titles "$BATS_TEST_TMPDIR/two.svg")" "art:x
art:x->step:b
art:y
art:y->step:c
art:z
g
step:a
step:a->art:x
step:b
step:b->art:y
step:c
step:c->art:z" "titles of the second graph"
	# Back to the first graph: the same drawing, byte for byte.
	rm "$mnt/pipelines/g/c.json"
	cmp "$mnt/pipelines/g/.dag.svg" "$BATS_TEST_TMPDIR/one.svg"
	# Invalid: the picture says so, and valid again it is the graph again.
	write_step g b '{"run": "x", "inputs": ["nothing"]}'
	grep -q 'invalid pipeline: see .status' "$mnt/pipelines/g/.dag.svg"
	write_step g b '{"run": "cat in/x > out/y", "inputs": ["x"], "outputs": ["y"]}'
	cmp "$mnt/pipelines/g/.dag.svg" "$BATS_TEST_TMPDIR/one.svg"
}

@test "runs/<id>/dag.svg: steps filled by status, cached dashed, durations shown" {
	write_step c a '{"run": "echo a > out/x", "outputs": ["x"]}'
	write_step c b '{"run": "cat in/x; exit 3", "inputs": ["x"], "outputs": ["y"]}'
	R1=$(wait_new_run c)
	[ "$(cat "$mnt/runs/$R1/status")" = failed ]
	ls "$mnt/runs/$R1" | grep -qx dag.svg
	cp "$mnt/runs/$R1/dag.svg" "$BATS_TEST_TMPDIR/r1.svg"
	valid_xml "$BATS_TEST_TMPDIR/r1.svg"
	texts=$(svg_texts "$BATS_TEST_TMPDIR/r1.svg")
	grep -Eqx 'succeeded, [0-9]+\.[0-9]{3} s' <<<"$texts"
	grep -Eqx 'failed, [0-9]+\.[0-9]{3} s' <<<"$texts"
	# The failed step's box is red, the succeeded one green (and solid).
	shapes=$(svg_shapes "$BATS_TEST_TMPDIR/r1.svg")
	grep -q $'^step:a\t#b7e4c7\t-\t' <<<"$shapes"
	grep -q $'^step:b\t#f4a6a6\t' <<<"$shapes"
	# Run again: a is cached now (dashed, "cached"), b fails again.
	echo run >"$mnt/pipelines/c/.ctl"
	R2=$(wait_new_run c "$R1")
	[ "$(cat "$mnt/runs/$R2/steps/a/cached")" = yes ]
	cp "$mnt/runs/$R2/dag.svg" "$BATS_TEST_TMPDIR/r2.svg"
	valid_xml "$BATS_TEST_TMPDIR/r2.svg"
	svg_texts "$BATS_TEST_TMPDIR/r2.svg" | grep -qx cached
	svg_shapes "$BATS_TEST_TMPDIR/r2.svg" | grep -q $'^step:a\t#cfe3f7\t[0-9]'  # dashed
	[ ! -e "$mnt/runs/999/dag.svg" ]
}

# A step whose loss falls from lr to lr/125 over five reports (two and a
# bit orders of magnitude: a log axis) and whose acc rises.
curve_step='{"run": "for i in 1 2 3 4 5; do awk -v i=$i -v lr=$FLOWY_PARAM_lr \"BEGIN { printf \\\"{\\\\\\\"loss\\\\\\\": %g, \\\\\\\"acc\\\\\\\": %g}\\\\n\\\", lr / (i*i*i), 1 - 1 / (i + 1) }\" >> $FLOWY_METRICS; done; echo $FLOWY_PARAM_lr > out/model", "outputs": ["model"], "params": ["lr"]}'

@test "metrics/<p>/<m>.svg: one curve per run, legend names run and differing params, log scale" {
	write_file m pipeline.json '{"params": {"lr": 0.1, "batch": 32}}'
	write_step m train "$curve_step"
	R1=$(wait_new_run m)
	write_file m pipeline.json '{"params": {"lr": 0.3, "batch": 32}}'
	R2=$(wait_new_run m "$R1")
	write_file m pipeline.json '{"params": {"lr": 0.2, "batch": 32}}'
	R3=$(wait_new_run m "$R2")
	[ "$(ls "$mnt/metrics/m" | tr '\n' ' ')" = "acc acc.svg loss loss.svg runs.tsv " ]
	cp "$mnt/metrics/m/loss.svg" "$BATS_TEST_TMPDIR/loss.svg"
	valid_xml "$BATS_TEST_TMPDIR/loss.svg"
	texts=$(svg_texts "$BATS_TEST_TMPDIR/loss.svg")
	# The legend: run and the param that differs (batch does not).
	grep -qx "run $R1 lr=0.1" <<<"$texts"
	grep -qx "run $R2 lr=0.3" <<<"$texts"
	grep -qx "run $R3 lr=0.2" <<<"$texts"
	grep -qx 'loss (log scale)' <<<"$texts"
	grep -qx 'm: loss' <<<"$texts"
	grep -qx 'index' <<<"$texts"
	[ "$(grep -c '<g class="series"' "$BATS_TEST_TMPDIR/loss.svg")" = 3 ]
	[ "$(grep -c '<polyline' "$BATS_TEST_TMPDIR/loss.svg")" = 3 ]
	# Decade ticks on the log axis, printed in the shortest form.
	grep -qx '0.001' <<<"$texts"
	grep -qx '0.1' <<<"$texts"
	# acc spans less than two decades: a linear axis with nice ticks.
	cp "$mnt/metrics/m/acc.svg" "$BATS_TEST_TMPDIR/acc.svg"
	valid_xml "$BATS_TEST_TMPDIR/acc.svg"
	texts=$(svg_texts "$BATS_TEST_TMPDIR/acc.svg")
	! grep -q 'log scale' <<<"$texts"
	grep -qx '0.6' <<<"$texts"
	grep -qx '0.8' <<<"$texts"
	# One step's series.
	[ "$(ls "$mnt/runs/$R2/steps/train/metrics" | tr '\n' ' ')" = "acc acc.svg loss loss.svg " ]
	cp "$mnt/runs/$R2/steps/train/metrics/loss.svg" "$BATS_TEST_TMPDIR/one.svg"
	valid_xml "$BATS_TEST_TMPDIR/one.svg"
	[ "$(grep -c '<polyline' "$BATS_TEST_TMPDIR/one.svg")" = 1 ]
	svg_texts "$BATS_TEST_TMPDIR/one.svg" | grep -qx "run $R2 train"
	[ ! -e "$mnt/metrics/m/nope.svg" ]
	[ ! -e "$mnt/runs/$R2/steps/train/metrics/nope.svg" ]
}

@test "metrics/<p>/<m>.svg shows the last 10 runs" {
	mkdir -p "$mnt/pipelines/ten"
	printf '%s\n' 'printf "{\"v\": %d}\n" $RANDOM >>"$FLOWY_METRICS"; date +%s%N > out/o' \
		>"$mnt/pipelines/ten/v.sh"
	write_step ten s '{"run": "sh v.sh", "outputs": ["o"]}'
	R=$(wait_new_run ten)
	for i in $(seq 11); do
		echo "rerun s" >"$mnt/pipelines/ten/.ctl"
		R=$(wait_new_run ten "$R")
	done
	[ "$(tail -n +2 "$mnt/metrics/ten/v" | wc -l)" = 12 ]
	cp "$mnt/metrics/ten/v.svg" "$BATS_TEST_TMPDIR/v.svg"
	valid_xml "$BATS_TEST_TMPDIR/v.svg"
	[ "$(grep -c '<g class="series"' "$BATS_TEST_TMPDIR/v.svg")" = 10 ]
	texts=$(svg_texts "$BATS_TEST_TMPDIR/v.svg")
	grep -qx "run $R" <<<"$texts"
	grep -qx "run $((R - 9))" <<<"$texts"
	! grep -qx "run $((R - 10))" <<<"$texts"
}

@test "report.html: one self-contained page with status, params, steps, DAG, plots, outputs, lineage, log tails, errors" {
	write_file r pipeline.json '{"params": {"lr": 0.1, "note": "<img src=x onerror=alert(1)>"}}'
	cat >"$BATS_TEST_TMPDIR/train.sh" <<'SH'
for i in 1 2 3 4 5; do
	awk -v i=$i -v lr=$FLOWY_PARAM_lr 'BEGIN { printf "{\"loss\": %g}\n", lr / (i*i*i) }' >>"$FLOWY_METRICS"
done
for k in $(seq 30); do echo line-$k; done
echo "<script>alert(2)</script>"
printf 'bad \377 byte\n'
echo $FLOWY_PARAM_lr > out/model
SH
	mkdir -p "$mnt/pipelines/r"
	cp "$BATS_TEST_TMPDIR/train.sh" "$mnt/pipelines/r/train.sh"
	write_step r train '{"run": "sh train.sh", "outputs": ["model"], "params": ["lr", "note"]}'
	write_step r check '{"run": "echo checking; echo oops >&2; exit 4", "inputs": ["model"], "outputs": ["verdict"]}'
	R=$(wait_new_run r)
	[ "$(cat "$mnt/runs/$R/status")" = failed ]
	grep -q line-30 "$mnt/runs/$R/steps/train/log"
	cp "$mnt/runs/$R/report.html" "$BATS_TEST_TMPDIR/report.html"
	model=$(readlink "$mnt/runs/$R/steps/train/outputs/model")
	model=${model##*/}
	size=$(stat -c %s "$mnt/artifacts/sha256/$model")
	python3 - "$BATS_TEST_TMPDIR/report.html" "$R" "$model" "$size" <<'PY'
import sys
from html.parser import HTMLParser
path, run, model, size = sys.argv[1:]
raw = open(path, "rb").read()
text = raw.decode("utf-8")          # valid UTF-8 whatever the log held
class P(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text, self.refs = [], [], []
    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href", "xlink:href") and v:
                self.refs.append(v)
    def handle_data(self, d):
        self.text.append(d)
p = P()
p.feed(text)
body = "".join(p.text)
assert "script" not in p.tags, "a script tag"
assert "img" not in p.tags and "link" not in p.tags, p.tags
assert not [r for r in p.refs if "//" in r or r.startswith("http")], p.refs
assert "@import" not in text and "url(" not in text
for want in ["Run %s of r" % run, "Params", "Steps", "Graph", "Metrics", "Outputs",
             "Lineage", "Logs", "<img src=x onerror=alert(1)>", "<script>alert(2)</script>",
             "line-30", "line-13", model, size, "oops", "exit", "run %s train: loss" % run,
             "failed"]:
    assert want in body, "missing %r" % want
assert "line-12\n" not in body, "more than 20 log lines"
assert "\ufffd" in body, "the invalid byte is not replaced"
for tag in ("svg", "table", "style", "pre"):
    assert tag in p.tags, tag
assert p.tags.count("svg") >= 2, p.tags.count("svg")   # the DAG and the plot
PY
	[ ! -e "$mnt/runs/999/report.html" ]
}

@test ".dag.svg of a 100-step pipeline: valid, unscaled, laid out in bounded time" {
	# Every step reads "seed", made by the step written last, so the
	# pipeline becomes valid (and runs) once, when it is complete.
	local i
	for i in $(seq -w 1 99); do
		prev=$([ "$i" = 01 ] && echo seed || echo "o$(printf '%02d' $((10#$i - 1)))")
		write_step big "s$i" "{\"run\": \"cat in/$prev > out/o$i\", \"inputs\": [\"$prev\"], \"outputs\": [\"o$i\"]}"
	done
	write_step big zz '{"run": "echo 1 > out/seed", "outputs": ["seed"]}'
	head -1 "$mnt/pipelines/big/.status" | grep -qx valid
	t0=$(date +%s%N)
	cp "$mnt/pipelines/big/.dag.svg" "$BATS_TEST_TMPDIR/big.svg"
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	echo "# .dag.svg of 100 steps + 100 artifacts: $ms ms" >&3
	valid_xml "$BATS_TEST_TMPDIR/big.svg"
	[ "$(grep -c '<g id="node' "$BATS_TEST_TMPDIR/big.svg")" = 200 ]
	# Readable: text at its size, not scaled down to fit.
	! grep -q 'transform="scale(0' "$BATS_TEST_TMPDIR/big.svg"
	grep -q 'font-size="11.00"' "$BATS_TEST_TMPDIR/big.svg"
	[ "$ms" -lt 10000 ]
	# Laid out once: the second open is served from the cache.
	t0=$(date +%s%N)
	cmp -s "$mnt/pipelines/big/.dag.svg" "$BATS_TEST_TMPDIR/big.svg"
	t1=$(date +%s%N)
	echo "# again (cached): $(((t1 - t0) / 1000000)) ms" >&3
}

@test ".dag.svg of a 300-step pipeline, and its run's dag.svg: drawn in columns, without dot" {
	# A chain of 300 steps (600 nodes, over the 500 that dot lays out),
	# staged in a hidden directory and moved in whole: one valid pipeline,
	# one run.
	local s=$mnt/pipelines/.huge i
	mkdir "$s"
	for i in $(seq 0 299); do
		if [ "$i" = 0 ]; then
			echo '{"run": "echo 0 > out/o000", "outputs": ["o000"]}' > "$s/s000.json"
		else
			printf '{"run": "cat in/o%03d > out/o%03d", "inputs": ["o%03d"], "outputs": ["o%03d"]}\n' \
				$((i - 1)) "$i" $((i - 1)) "$i" > "$s/$(printf 's%03d' "$i").json"
		fi
	done
	mv "$s" "$mnt/pipelines/huge"
	head -1 "$mnt/pipelines/huge/.status" | grep -qx valid
	cp "$mnt/pipelines/huge/.dag.svg" "$BATS_TEST_TMPDIR/huge.svg"
	valid_xml "$BATS_TEST_TMPDIR/huge.svg"
	! grep -q 'Generated by graphviz' "$BATS_TEST_TMPDIR/huge.svg"
	[ "$(grep -c '<g id="node[0-9]*" class="node">' "$BATS_TEST_TMPDIR/huge.svg")" = 600 ]
	[ "$(grep -c '<g id="edge[0-9]*" class="edge">' "$BATS_TEST_TMPDIR/huge.svg")" = 599 ]
	# Left to right: every step's box is right of the step before it.
	svg_shapes "$BATS_TEST_TMPDIR/huge.svg" | grep '^step:s' | LC_ALL=C sort |
		awk -F'\t' 'NR > 1 && $4 + 0 <= prev { print "not right of the one before: " $0; bad = 1 }
			{ prev = $4 + 0; n++ } END { exit bad || n != 300 }' 
	id=$(wait_new_run huge)
	[ "$(cat "$mnt/runs/$id/status")" = succeeded ]
	cp "$mnt/runs/$id/dag.svg" "$BATS_TEST_TMPDIR/run.svg"
	valid_xml "$BATS_TEST_TMPDIR/run.svg"
	[ "$(grep -c '<g id="node[0-9]*" class="node">' "$BATS_TEST_TMPDIR/run.svg")" = 600 ]
	# Each step restyled by its status: filled green, the status under
	# the name, and the status as its tooltip.
	[ "$(grep -c 'fill="#b7e4c7"' "$BATS_TEST_TMPDIR/run.svg")" = 300 ]
	grep -q '<a xlink:title="s150: succeeded">' "$BATS_TEST_TMPDIR/run.svg"
	grep -q '>succeeded, [0-9.]* s</text>' "$BATS_TEST_TMPDIR/run.svg"
}
