#!/usr/bin/env bash
# bench/run.sh - flowyfs speed against the baselines DESIGN.md section 7
# names, measured side by side in one run (`make bench`).
#
#   1. large artifact read through the mount vs the same bytes on local disk
#      (1 GiB incompressible: cold and warm); compressible artifacts (text
#      and CSV) read cold vs `zstd -d` of the same content (zstd -3), their
#      stored size vs `zstd -3` of the whole file, and random 4 KiB reads
#      of the text artifact (O_DIRECT, so each reaches the daemon); the
#      store's hash vs `openssl dgst -sha256` and its ingest (hash, write,
#      fsync, publish) vs `cp` then `sha256sum`, both on the 1 GiB file,
#      as whole processes (build/bench/store_tool).
#   2. a 1,000-step chain pipeline vs an equivalent Makefile: cold run
#      (vs `make -j1`; both the best of BENCH_REPS, make and the daemon
#      taking turns, the daemon's reps each a chain of its own with new
#      content) and re-check with nothing changed (vs `make -q`, in turns
#      too);
#      beside them the floor of one step's start (build/bench/exec_floor:
#      posix_spawn of sh, as make does, and the daemon's isolated starts:
#      a namespace made for the step, and a slot's namespace entered; and
#      the floor of a stored step, a slot's start plus the output's hash,
#      publish and the next step's in/ link, as a ratio to posix_spawn).
#      The daemon's store and scratch (--scratch) and make's directories
#      are all in the bench directory, and nothing there is deleted before
#      the daemon's run (see the chain part for why).
#   4. (part tree) a directory artifact of 1,000,000 empty files (a tree
#      object stored by build/bench/store_tool): stat of one entry in a
#      fresh daemon (the tree's index is loaded then) and of 200 more (each
#      a new lookup), `ls | wc -l` of it vs a local directory of the same
#      files, and the daemon's RSS after.
#   3. views with 10,000 runs in the store: 2,000 real ones (a one-step
#      pipeline that reports metrics, forced to rerun, queued by writes
#      to .ctl and run four at a time), then clones of the last one (its
#      rows, metrics, run directory and new objects for its outputs,
#      written into the stopped store): every view of the tree that grows with the
#      runs, as whole commands: ls of runs/, lineage/sha256/,
#      artifacts/sha256/ and metrics/<p>/ (the big ones also read alone,
#      without ls: store_tool listdir); cat of run.json, summary and
#      status of the latest run and of one in the middle,
#      metrics/<p>/runs.tsv and metrics/<p>/<m>, store/stats, .status,
#      producer, the ancestors of the chain's last artifact and the
#      descendants of its first (1,000 deep; with the chain part, or a
#      kept BENCH_DIR that has it). Goal: < 10 ms each; with
#      BENCH_RUNS_BIG, the same at that many runs, goal < 30 ms. Each ls
#      is also timed on a local directory of the same names: it passes
#      under the goal or no slower than that (ls itself spends more on
#      thousands of names than the view, the readdir rows, does). The
#      daemon's RSS after each size and the time the fill took are noted.
#
# Environment:
#   BENCH_BIG_MB    size of the incompressible artifact, MiB   (1024)
#   BENCH_TEXT_MB   size of the compressible artifacts, MiB    (256)
#   BENCH_RAND      random 4 KiB reads to time                  (2000)
#   BENCH_PARTS     which parts to run: artifacts chain views tree (all)
#   BENCH_TREE_N    entries of the tree part's directory        (1000000)
#   BENCH_CHAIN     steps in the chain                          (1000)
#   BENCH_RUNS      runs in the store for the view timings      (10000)
#   BENCH_RUNS_BIG  then fill to this many runs and time again, goal
#                   30 ms (0: not done; filling goes at 7.6 ms a run at
#                   -j 2 on a quiet 2-CPU machine, 23 ms under load: the
#                   fill to 100000 took 27 minutes here; run it by hand)
#   BENCH_VIEWS_REAL  of the BENCH_RUNS, how many are real runs; the
#                   rest are clones of the last (store_tool gcfill, as
#                   bench/gc.sh fills): rows, metrics, run directory and
#                   new output objects of their own          (2000)
#   BENCH_VIEWS_J   the daemon's -j while it fills the store      (4:
#                   the runs are tiny; 4 fill 15 % faster than 2)
#   BENCH_FILL_BATCH  runs queued by one write while filling      (500)
#   BENCH_REPS      repetitions per timing; the best is kept    (3)
#   BENCH_DISK_REPS the same for the cold reads, hash and ingest of the
#                   artifacts part, which move 1 GiB each          (2)
#   BENCH_POLL      seconds between polls of a run's status     (0.05)
#   BENCH_DIR       scratch directory (default: mktemp under /tmp); it must
#                   be on the same disk as the local-disk baseline
#   BENCH_FS=host   work in that directory on the host's file system; by
#                   default (as root, without BENCH_DIR) the directory is a
#                   fresh ext4 of its own, a sparse image beside it
#                   (bench_fs in bench/lib.sh)
#   BENCH_KEEP=1    keep BENCH_DIR afterwards
#   BENCH_STRICT=1  exit 1 when a target is missed
#   FLOWYFS_BIN     the daemon (default: build/flowyfs of this repo)
#
# Cold reads drop the page cache (sync; echo 3 > /proc/sys/vm/drop_caches)
# before each read, for the baseline and for the mount alike; without root
# they are skipped. The daemon runs with -j 1, like make -j1.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh" # now, sub, div, min, nap, die, row, arow, table, bench_mount, bench_stop
bin=${FLOWYFS_BIN:-$here/build/flowyfs}
tool=${STORE_TOOL:-$here/build/bench/store_tool}
floor_tool=${EXEC_FLOOR:-$here/build/bench/exec_floor}
parts=" ${BENCH_PARTS:-artifacts chain views tree} "
part() { [[ $parts == *" $1 "* ]]; }
rand_n=${BENCH_RAND:-2000}
big_mb=${BENCH_BIG_MB:-1024}
text_mb=${BENCH_TEXT_MB:-256}
chain_n=${BENCH_CHAIN:-1000}
reps=${BENCH_REPS:-3}
# The cold reads and the ingest each move 1 GiB at the disk's speed a rep
# (a quarter of the bench's time at 3): they keep the best of 2.
disk_reps=${BENCH_DISK_REPS:-$((reps < 2 ? reps : 2))}
poll=${BENCH_POLL:-0.05}
views_j=${BENCH_VIEWS_J:-4}
fill_batch=${BENCH_FILL_BATCH:-500}
views_real=${BENCH_VIEWS_REAL:-2000}

[ -x "$bin" ] || die "no daemon at $bin (run make first)"
[ -x "$tool" ] || die "no store tool at $tool (run make build/bench/store_tool)"
for t in zstd make fusermount3 dd awk openssl sha256sum; do
	command -v "$t" >/dev/null || die "$t is not installed"
done

if [ -n "${BENCH_DIR:-}" ]; then
	dir=$BENCH_DIR
	mkdir -p "$dir"
else
	dir=$(mktemp -d /tmp/flowybench.XXXXXX)
fi
dir=$(cd "$dir" && pwd)
pid=""
cleanup() {
	local rc=$?
	bench_stop "$mnt" "$pid"
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "bench: kept $dir${bench_fs_img:+ (still mounted from $bench_fs_img)}" >&2
	else
		bench_fs_release || rc=1
		rm -rf "$dir"
	fi
	exit "$rc"
}
trap cleanup EXIT
# Everything below happens on a file system of its own (bench_fs): 16 GiB
# and 3,000,000 inodes hold the artifacts, their copies and the tree
# part's million local files.
[ -n "${BENCH_DIR:-}" ] || bench_fs "$dir" 16 3000000
store=$dir/store mnt=$dir/mnt data=$dir/data mk=$dir/make
mkdir -p "$store" "$mnt" "$data" "$mk"

trap 'exit 130' INT TERM

# --- helpers -----------------------------------------------------------

# took PART: say how long the part took (the bench's time is a goal too).
part_t0=$SECONDS
took() { echo "   ($1: $((SECONDS - part_t0))s)"; part_t0=$SECONDS; }

can_drop=0
if [ -w /proc/sys/vm/drop_caches ]; then can_drop=1; fi
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

# read_secs FILE: seconds to read FILE sequentially (dd, 1 MiB blocks).
read_secs() {
	local t0 t1
	t0=$(now)
	dd if="$1" of=/dev/null bs=1M status=none
	t1=$(now)
	sub "$t1" "$t0"
}

# Run ids are global and increasing; one thing runs at a time here, so the
# run a change queues is the one after the current latest.
latest_id() {
	local l
	l=$(readlink "$mnt/runs/latest" 2>/dev/null) || { echo 0; return; }
	echo "$l"
}

# iso_epoch ISO: epoch seconds of a run's started/finished timestamp.
iso_epoch() { [ -n "$1" ] && date -d "$1" +%s.%N 2>/dev/null; }

# wait_run ID TIMEOUT_S: poll runs/ID/status until terminal; prints status.
# Polling costs the daemon work (each poll is a lookup, getattr, open and
# read of a generated file), so it is not done too often; the end time is
# then taken from the run's own `finished` stamp (ms), which the daemon
# writes with the terminal status.
wait_run() {
	local id=$1 limit=$2 st="" t0
	t0=$SECONDS
	while :; do
		st=""
		{ read -r st < "$mnt/runs/$id/status"; } 2>/dev/null || true
		case $st in
		succeeded | failed | cancelled | interrupted) echo "$st"; return 0 ;;
		esac
		if (( SECONDS - t0 > limit )); then
			echo "timeout(${st:-none})"
			return 0
		fi
		nap "$poll"
	done
}

# run_end ID T_POLLED: the end of run ID: its `finished` stamp, else the
# time the poll saw it end.
run_end() {
	local f
	f=$(iso_epoch "$(cat "$mnt/runs/$1/finished" 2>/dev/null)") || true
	echo "${f:-$2}"
}

# publish NAME: move the staging dir pipelines/.NAME to pipelines/NAME
# and wait for the run that queues; prints "seconds status id t0".
publish() {
	local name=$1 limit=${2:-600} prev id t0 t1 st
	prev=$(latest_id)
	id=$((prev + 1))
	t0=$(now)
	mv "$mnt/pipelines/.$name" "$mnt/pipelines/$name"
	st=$(wait_run "$id" "$limit")
	t1=$(run_end "$id" "$(now)")
	echo "$(sub "$t1" "$t0") $st $id $t0"
}

check_run() { # check_run STATUS ID WHAT
	if [ "$1" != succeeded ]; then
		echo "bench: $3: run $2 ended $1" >&2
		cat "$mnt/pipelines/${4:-x}/.status" 2>/dev/null >&2 || true
		exit 1
	fi
}

s3() { [ -n "$1" ] && printf '%.3f' "$1"; }
gbps() { # gbps BYTES SECONDS
	awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.3f", b / s / 1e9 }'
}

obj() { # the object file of a hash: objects/ab/<rest>[.zst|.tree]
	local f
	for f in "$store/objects/${1:0:2}/${1:2}"*; do [ -f "$f" ] && echo "$f" && return; done
	echo /dev/null
}

# --- mount --------------------------------------------------------------

# mount_daemon J: serve the store on mnt with -j J.
mount_daemon() {
	bench_mount "$dir/flowyfs.log" "$bin" --store "$store" --scratch "$dir/scratch" \
		-j "$1" -f "$mnt"
}
# unmount_daemon: unmount mnt and reap the daemon, which must exit 0.
unmount_daemon() {
	fusermount3 -u "$mnt"
	wait "$pid" || die "daemon exited with status $? at unmount"
	pid=""
}
# remount J: the same store again, with -j J (a no-op when the daemon
# already has it).
daemon_j=1
remount() {
	[ "$1" != "$daemon_j" ] || return 0
	unmount_daemon
	mount_daemon "$1"
	daemon_j=$1
}
mount_daemon 1

echo "flowyfs bench: $(uname -r), $(nproc) CPUs, dir $dir on $bench_fs_note"
echo "  big ${big_mb} MiB, text ${text_mb} MiB, chain ${chain_n} steps, best of ${reps}"
[ "$can_drop" = 1 ] || echo "  not root: cold reads skipped"

if part artifacts; then
# --- 1. large artifact read ------------------------------------------------

echo "== artifacts: generating data"
big=$data/big.bin text=$data/text.txt csv=$data/data.csv
# Incompressible: AES-CTR of zeros (four times as fast as /dev/urandom).
openssl enc -aes-128-ctr -nosalt -pass pass:flowybench -pbkdf2 < /dev/zero 2>/dev/null |
	head -c "${big_mb}M" > "$big" || true
[ "$(stat -c %s "$big")" = $((big_mb << 20)) ] || die "cannot make $big"
# Compressible text: numbers, one per line (zstd -3 gets ~20x on this).
{ seq 1 100000000 || true; } | head -c "${text_mb}M" > "$text"
# CSV: a sensor table with ids, timestamps, floats and labels (~3x): a
# quarter made by awk (9 s for the whole), then repeated. The period is
# far past zstd -3's window and the store's frames, so every frame and
# window compresses as new data would.
awk 'BEGIN { srand(7); print "id,time,sensor,value,flag,label"
	for (i = 0; ; i++) printf "%d,2026-01-%02d %02d:%02d:%02d,s%03d,%.4f,%d,%s\n",
		i, 1 + i % 28, int(i / 3600) % 24, int(i / 60) % 60, i % 60,
		int(rand() * 200), rand() * 1000, rand() < 0.1, rand() < 0.5 ? "alpha" : "beta" }' |
	head -c "$(((text_mb << 20) / 4))" > "$csv.part" || true
for _ in 1 2 3 4 5; do cat "$csv.part"; done | head -c "${text_mb}M" > "$csv" || true
rm -f "$csv.part"
[ "$(stat -c %s "$csv")" = $((text_mb << 20)) ] || die "cannot make $csv"
zstd -3 -q -f -o "$text.zst" "$text"
zstd -3 -q -f -o "$csv.zst" "$csv"
big_bytes=$(stat -c %s "$big")
text_bytes=$(stat -c %s "$text")
csv_bytes=$(stat -c %s "$csv")

took "artifacts, data"
mkdir "$mnt/pipelines/.big"
cat > "$mnt/pipelines/.big/big.json" <<JSON
{"run": "cat $big > out/big", "outputs": ["big"]}
JSON
cat > "$mnt/pipelines/.big/text.json" <<JSON
{"run": "cat $text > out/text", "outputs": ["text"]}
JSON
cat > "$mnt/pipelines/.big/csv.json" <<JSON
{"run": "cat $csv > out/csv", "outputs": ["csv"]}
JSON
read -r secs st id _ < <(publish big 600)
check_run "$st" "$id" "ingest" big
echo "   ingest run $id: ${secs}s for $((big_mb + text_mb)) MiB (steps: $(awk -F'\t' 'NR>1 { printf "%s %ss ", $1, $3 }' "$mnt/runs/$id/summary"))"

took "artifacts, ingest run"
fbig=$mnt/artifacts/big/big ftext=$mnt/artifacts/big/text fcsv=$mnt/artifacts/big/csv
[ "$(stat -L -c %s "$fbig")" = "$big_bytes" ] || die "artifact big has the wrong size"
[ "$(stat -L -c %s "$ftext")" = "$text_bytes" ] || die "artifact text has the wrong size"
[ "$(stat -L -c %s "$fcsv")" = "$csv_bytes" ] || die "artifact csv has the wrong size"
hex_big=$(basename "$(readlink "$fbig")") hex_text=$(basename "$(readlink "$ftext")")
hex_csv=$(basename "$(readlink "$fcsv")")
obj_big=$(obj "$hex_big") obj_text=$(obj "$hex_text") obj_csv=$(obj "$hex_csv")
stored_text=$(stat -c %s "$obj_text") stored_csv=$(stat -c %s "$obj_csv")
zst_text=$(stat -c %s "$text.zst") zst_csv=$(stat -c %s "$csv.zst")
echo "   stored: big as ${obj_big##*/} ($(stat -c %s "$obj_big") B);" \
	"text as ${obj_text##*/} ($stored_text B, zstd -3 file: $zst_text B);" \
	"csv as ${obj_csv##*/} ($stored_csv B, zstd -3 file: $zst_csv B)"

cold_local="" cold_flowy="" warm_local="" warm_flowy=""
cold_text="" cold_zstd="" cold_csv="" cold_zstd_csv=""
if [ "$can_drop" = 1 ]; then
	echo "== cold reads (page cache dropped before each)"
	for _ in $(seq 1 "$disk_reps"); do
		drop_caches; s=$(read_secs "$big"); cold_local=$(min "$cold_local" "$s")
		drop_caches; s=$(read_secs "$fbig"); cold_flowy=$(min "$cold_flowy" "$s")
		drop_caches
		t0=$(now); zstd -d -q -c "$text.zst" > /dev/null; t1=$(now)
		cold_zstd=$(min "$cold_zstd" "$(sub "$t1" "$t0")")
		drop_caches; s=$(read_secs "$ftext"); cold_text=$(min "$cold_text" "$s")
		drop_caches
		t0=$(now); zstd -d -q -c "$csv.zst" > /dev/null; t1=$(now)
		cold_zstd_csv=$(min "$cold_zstd_csv" "$(sub "$t1" "$t0")")
		drop_caches; s=$(read_secs "$fcsv"); cold_csv=$(min "$cold_csv" "$s")
	done
fi
took "artifacts, cold reads"
echo "== warm reads (read once, then time the next reads)"
read_secs "$big" > /dev/null
read_secs "$fbig" > /dev/null
for _ in $(seq 1 "$reps"); do
	s=$(read_secs "$big"); warm_local=$(min "$warm_local" "$s")
	s=$(read_secs "$fbig"); warm_flowy=$(min "$warm_flowy" "$s")
done
# The files are identical (a cheap check: sizes were checked above).
cmp -n $((4 << 20)) "$big" "$fbig" || die "artifact big differs from its source"
cmp "$text" "$ftext" || die "artifact text differs from its source"
cmp "$csv" "$fcsv" || die "artifact csv differs from its source"

took "artifacts, warm reads"
echo "== random 4 KiB reads of the text and csv artifacts (O_DIRECT, ${rand_n} reads)"
# The objects themselves are in the page cache (just read); each read
# reaches the daemon, which decodes (part of) a frame for it.
read -r rand_mean rand_p99 < <("$tool" randread "$ftext" "$rand_n" 1)
# Again at other offsets: the frames the first pass decoded are in the
# daemon's shared frame cache now, so this is what a read costs without
# a decode (the first pass also paid one decode per frame it touched).
read -r rand_again _ < <("$tool" randread "$ftext" "$rand_n" 2)
read -r rand_csv rand_csv99 < <("$tool" randread "$fcsv" "$rand_n" 1)
echo "   text: mean ${rand_mean} ms, p99 ${rand_p99} ms; csv: mean ${rand_csv} ms, p99 ${rand_csv99} ms"
echo "   text again, other offsets: mean ${rand_again} ms"

took "artifacts, random reads"
echo "== hash and ingest of ${big_mb} MiB (warm page cache)"
hash_flowy="" hash_ssl="" ingest_flowy="" ingest_base=""
cat "$big" > /dev/null
want=$(openssl dgst -sha256 -r "$big" | cut -d' ' -f1)
for _ in $(seq 1 "$disk_reps"); do
	t0=$(now); got=$("$tool" hash "$big"); t1=$(now)
	[ "$got" = "$want" ] || die "store hash $got differs from openssl's $want"
	hash_flowy=$(min "$hash_flowy" "$(sub "$t1" "$t0")")
	t0=$(now); openssl dgst -sha256 "$big" > /dev/null; t1=$(now)
	hash_ssl=$(min "$hash_ssl" "$(sub "$t1" "$t0")")
	rm -rf "$dir/ingest" "$dir/cp.out"; sync
	t0=$(now); got=$("$tool" put "$dir/ingest" "$big"); t1=$(now)
	[ "$got" = "$want" ] || die "store put named $got, expected $want"
	ingest_flowy=$(min "$ingest_flowy" "$(sub "$t1" "$t0")")
	rm -rf "$dir/ingest"; sync
	t0=$(now); cp "$big" "$dir/cp.out"; sha256sum "$dir/cp.out" > /dev/null; t1=$(now)
	ingest_base=$(min "$ingest_base" "$(sub "$t1" "$t0")")
	rm -f "$dir/cp.out"
done

took artifacts
fi

if part chain; then
# --- 2. chain ---------------------------------------------------------------

echo "== chain: ${chain_n} steps"
name() { printf 'o%04d' "$1"; }
# The Makefile: a rule per step, each recipe run by make's shell.
{
	echo "all: $(name "$chain_n")"
	echo "$(name 1):"
	printf '\techo 1 > $@\n'
	for ((i = 2; i <= chain_n; i++)); do
		echo "$(name "$i"): $(name $((i - 1)))"
		printf '\techo %d > $@\n' "$i"
	done
} > "$mk/chain.mk"

# The pipeline, written into a staging dir (never validated nor run):
# stage_chain NAME WORD, WORD echoed after each step's name (so that the
# reps after the first, chain2 and on, store new content and are not
# cached).
stage_chain() {
	local stage=$mnt/pipelines/.$1 w=${2:+ $2} i o p
	mkdir "$stage"
	printf '{"run": "echo $FLOWY_STEP%s > out/%s", "outputs": ["%s"]}\n' \
		"$w" "$(name 1)" "$(name 1)" > "$stage/$(printf 's%04d' 1).json"
	for ((i = 2; i <= chain_n; i++)); do
		o=$(name "$i") p=$(name $((i - 1)))
		printf '{"run": "echo $FLOWY_STEP%s > out/%s", "inputs": ["%s"], "outputs": ["%s"]}\n' \
			"$w" "$o" "$p" "$o" > "$stage/$(printf 's%04d' "$i").json"
	done
}
for r in $(seq 1 "$reps"); do
	stage_chain "chain$([ "$r" = 1 ] || echo "$r")" "$([ "$r" = 1 ] || echo "$r")"
done

# Nothing is deleted before the daemon's run: on ext4 without a journal
# (as here) a deleted inode is not reused for a minute or more, and every
# create in its block group first walks past all such inodes, so a chain
# measured right after another one's files were removed pays for them.
# Each rep of make (and of the floor below) gets a directory of its own,
# all next to the daemon's store and scratch, and all stay until the end.

# The floor: the same number of `sh -c 'echo > out/o'` one after the
# other, started as make does (posix_spawn) and as the daemon does (a
# mount namespace of its own, store and scratch covered: exec.c; or, as
# root, a slot's namespace made once and entered, the step's directory
# renamed in and out: slots.c); and, as root, the floor of a stored step:
# a slot's start plus what a content-addressed store must do before the
# next step can start (the output hashed, published as an object, the
# next step's in/ link made; exec_floor.c). make's start and the stored
# step are the best of reps, each rep a directory of its own.
floor_spawn="" floor_iso="" floor_slot="" floor_stored="" floor_fsync=""
if [ -x "$floor_tool" ]; then
	mkdir -p "$dir/floor"
	for r in $(seq 1 "$reps"); do
		floor_spawn=$(min "$floor_spawn" "$("$floor_tool" spawn "$dir/floor/spawn$r" "$chain_n")")
		[ "$(id -u)" != 0 ] || floor_stored=$(min "$floor_stored" \
			"$("$floor_tool" stored "$dir/floor/stored$r" "$chain_n")")
	done
	# Once each (a note): each is chain_n processes.
	floor_iso=$("$floor_tool" isolated "$dir/floor/iso" "$chain_n")
	[ "$(id -u)" != 0 ] || floor_slot=$("$floor_tool" slot "$dir/floor/slot" "$chain_n")
	floor_fsync=$("$floor_tool" fsync "$dir/floor/fsync" "$chain_n")
fi

# make and the daemon take turns, rep by rep (make's rep r, then the
# daemon's chain r; make -q, then a re-check), so a machine whose speed
# drifts (this kind's moves by a third within minutes) moves both sides
# alike; each side keeps its best. Each daemon rep is a chain of its own
# (chain, chain2, ...), so each stores new content.
make_cold="" make_q="" chain_cold="" chain_run="" chain_wait=""
for r in $(seq 1 "$reps"); do
	mkdir "$mk/rep$r"
	cp "$mk/chain.mk" "$mk/rep$r/"
	sync
	t0=$(now); make -s -C "$mk/rep$r" -f chain.mk -j1 > /dev/null; t1=$(now)
	make_cold=$(min "$make_cold" "$(sub "$t1" "$t0")")
	cname=chain$([ "$r" = 1 ] || echo "$r")
	sync
	read -r secs st chain_id chain_t0 < <(publish "$cname" 10800)
	check_run "$st" "$chain_id" "chain cold" "$cname"
	n_ok=$(awk -F'\t' 'NR>1 && $2=="succeeded"' "$mnt/runs/$chain_id/summary" | wc -l)
	[ "$n_ok" = "$chain_n" ] || die "chain cold: $n_ok of $chain_n steps succeeded"
	want="s$(printf '%04d' "$chain_n")$([ "$r" = 1 ] || echo " $r")"
	[ "$(cat "$mnt/artifacts/$cname/$(name "$chain_n")")" = "$want" ] ||
		die "$cname: last output is wrong"
	if [ -z "$chain_cold" ] || [ "$(min "$chain_cold" "$secs")" != "$chain_cold" ]; then
		chain_cold=$secs
		chain_run=$(cat "$mnt/runs/$chain_id/duration")
		chain_wait=$(sub "$(iso_epoch "$(cat "$mnt/runs/$chain_id/started")")" "$chain_t0")
	fi
done

chain_q="" chain_q_run="" chain_q_wait=""
for _ in $(seq 1 "$reps"); do
	t0=$(now); make -q -C "$mk/rep1" -f chain.mk; t1=$(now)
	make_q=$(min "$make_q" "$(sub "$t1" "$t0")")
	prev=$(latest_id)
	t0=$(now)
	echo run > "$mnt/pipelines/chain/.ctl"
	st=$(wait_run $((prev + 1)) 300)
	t1=$(run_end $((prev + 1)) "$(now)")
	chain_q_wait=$(min "$chain_q_wait" \
		"$(sub "$(iso_epoch "$(cat "$mnt/runs/$((prev + 1))/started")")" "$t0")")
	check_run "$st" $((prev + 1)) "chain re-check" chain
	chain_q=$(min "$chain_q" "$(sub "$t1" "$t0")")
	chain_q_run=$(min "$chain_q_run" "$(cat "$mnt/runs/$((prev + 1))/duration")")
	n_c=$(awk -F'\t' 'NR>1 && $2=="cached"' "$mnt/runs/$((prev + 1))/summary" | wc -l)
	[ "$n_c" = "$chain_n" ] || die "chain re-check: $n_c of $chain_n steps cached"
done

took chain
fi

if part tree; then
# --- 4. a huge directory artifact ------------------------------------------------

tree_n=${BENCH_TREE_N:-1000000}
echo "== tree: a directory artifact of ${tree_n} files"
# The tree is stored straight into the store (a step making a million
# files in its scratch takes minutes on ext4 here); the mount serves any
# object by hash. The local baseline is the same files on tmpfs when
# /dev/shm is there (creating them on ext4 costs ~150 us each), else in
# the bench dir. ls runs with LC_ALL=C on both (no locale collation).
t0=$(now)
hex_tree=$("$tool" tree "$store/objects" "$tree_n")
echo "   stored in $(sub "$(now)" "$t0" 2)s: $(stat -c %s "$(obj "$hex_tree")") B"
tree_local=$(mktemp -d /dev/shm/flowybench-tree.XXXXXX 2>/dev/null) || tree_local=$data/tree
mkdir -p "$tree_local"
t0=$(now)
"$tool" files "$tree_local" "$tree_n"
echo "   local copy in $tree_local: $(sub "$(now)" "$t0" 1)s to create"
# A fresh daemon: its tree cache is empty, so the first lookup loads.
unmount_daemon
mount_daemon "$daemon_j"
tdir=$mnt/artifacts/sha256/$hex_tree
names=()
for i in $(awk -v n="$tree_n" 'BEGIN { srand(3); for (k = 0; k < 201; k++) print 1 + int(rand() * n) }'); do
	names+=("$tdir/$(printf 'f%07d' "$i")")
done
read -r tree_first tree_later < <("$tool" stat "${names[@]}")
[ ! -e "$tdir/missing" ] || die "tree: a missing name exists"
tree_ls="" tree_ls_local=""
for _ in $(seq 1 "$reps"); do
	t0=$(now); c=$(LC_ALL=C ls "$tdir" | wc -l); t1=$(now)
	[ "$c" = "$tree_n" ] || die "tree: ls counted $c entries, expected $tree_n"
	tree_ls=$(min "$tree_ls" "$(sub "$t1" "$t0")")
	t0=$(now); c=$(LC_ALL=C ls "$tree_local" | wc -l); t1=$(now)
	tree_ls_local=$(min "$tree_ls_local" "$(sub "$t1" "$t0")")
done
tree_rss=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")
rm -rf "$tree_local"

took tree
fi

if part views; then
# --- 3. views with many runs ---------------------------------------------------

runs_n=${BENCH_RUNS:-10000}
runs_big=${BENCH_RUNS_BIG:-0}
# The views' own daemon: the same store, -j BENCH_VIEWS_J (the chain's
# -j 1 is for the comparison with make -j1 only).
remount "$views_j"
echo "== views: ${runs_n} runs in the store (daemon -j ${views_j})"
if [ ! -d "$mnt/pipelines/track" ]; then
	stage=$mnt/pipelines/.track
	mkdir "$stage"
	echo '{"params": {"lr": 0.01, "epochs": 3}}' > "$stage/pipeline.json"
	cat > "$stage/train.json" <<'JSON'
{"run": "printf '{\"loss\": %s, \"acc\": 0.5}\\n' \"$FLOWY_RUN\" >> \"$FLOWY_METRICS\"; echo \"$FLOWY_RUN\" > out/model",
 "outputs": ["model"], "params": ["lr", "epochs"]}
JSON
	read -r _ st track_id _ < <(publish track 60)
	check_run "$st" "$track_id" "track" track
fi

# fill_runs N: forced runs of track (each one a real step run) until the
# store holds N runs, queued fill_batch at a time by one write of one
# command a line, run -j at a time. (The scheduler walks every live run
# on each tick, so queueing 10,000 at once costs more than the runs.)
# Sets fill_secs and fill_n (the runs added).
fill_runs() {
	local want=$1 have t0 t1 last left k
	have=$(ls "$mnt/runs" | grep -c '^[0-9]')
	fill_n=$((want > have ? want - have : 0))
	t0=$(now)
	for ((done_n = 0; done_n < fill_n; done_n += k)); do
		k=$((fill_n - done_n < fill_batch ? fill_n - done_n : fill_batch))
		for ((i = 0; i < k; i++)); do echo "rerun train"; done > "$dir/rerun.cmds"
		cat "$dir/rerun.cmds" > "$mnt/pipelines/track/.ctl"
		last=$(latest_id)
		# Slots go to the oldest run first: once the last one queued has
		# ended, only the -j before it may still be running.
		for ((i = last - views_j + 1; i <= last; i++)); do
			st=$(wait_run "$i" 3600)
			[ "$i" -le $((last - k)) ] || check_run "$st" "$i" "filling: run $i" track
		done
	done
	left=$(awk -F'\t' 'NR > 1 && $2 != "succeeded"' "$mnt/metrics/track/runs.tsv")
	[ -z "$left" ] || die "filling: runs that did not succeed: $(echo "$left" | cut -f1,2 | head -3)"
	t1=$(now)
	fill_secs=$(sub "$t1" "$t0")
}

ms() { # ms CMD...: best of reps, in milliseconds (the first call warms up)
	local best="" t0 t1
	"$@" > /dev/null
	for _ in $(seq 1 "$reps"); do
		t0=$(now); "$@" > /dev/null; t1=$(now)
		best=$(min "$best" "$(sub "$t1" "$t0")")
	done
	awk -v s="$best" 'BEGIN { printf "%.1f", s * 1000 }'
}

# time_views GOAL_MS: a row per view of the tree that grows with runs
# (views_rows: metric, ms, goal and, for an ls, the same ls of a local
# directory holding the same names; they join the table after the others).
# An ls of thousands of names costs more in ls (sorting, quoting,
# printing) than in the file system, in a local directory too: its row
# passes under the goal or no slower than that local ls, and the readdir
# row beside it is the view's own time against the goal.
views_rows=()
vrow() { views_rows+=("$(printf '%s\t%s\t%s\t%s' "$1" "$2" "$goal" "${3:-}")"); }
# lsrow METRIC VIEW: ls of the view against ls of a local directory of
# the same names.
lsrow() {
	mkdir -p "$dir/ls.local"
	(cd "$dir/ls.local" && ls "$mnt/$2" | xargs -r touch)
	vrow "$1" "$(ms ls "$mnt/$2")" "$(ms ls "$dir/ls.local")"
	rm -rf "$dir/ls.local"
}
time_views() {
	local goal=$1 n mid first last l anc desc
	n=$(ls "$mnt/runs" | grep -c '^[0-9]')
	mid=$(awk -F'\t' -v h=$((n / 2)) 'NR == h + 1 { print $1 }' "$mnt/metrics/track/runs.tsv")
	l=$(awk 'END { print NR - 1 }' "$mnt/metrics/track/runs.tsv")
	[ "$l" -gt 0 ] || die "views: metrics/track/runs.tsv has no rows"
	lsrow "ls runs/ (${n} runs)" runs
	vrow "readdir runs/, no ls (${n} runs)" "$(rd "$mnt/runs")"
	vrow "readlink runs/latest (${n} runs)" "$(ms readlink "$mnt/runs/latest")"
	vrow "cat runs/latest/run.json (${n} runs)" \
		"$(ms cat "$mnt/runs/latest/run.json")"
	vrow "cat runs/<mid>/run.json (${n} runs)" "$(ms cat "$mnt/runs/$mid/run.json")"
	vrow "cat runs/latest/summary (${n} runs)" "$(ms cat "$mnt/runs/latest/summary")"
	vrow "cat runs/latest/status (${n} runs)" "$(ms cat "$mnt/runs/latest/status")"
	lsrow "ls runs/<mid>/steps/train/ (${n} runs)" "runs/$mid/steps/train"
	vrow "cat metrics/track/runs.tsv (${l} rows)" \
		"$(ms cat "$mnt/metrics/track/runs.tsv")"
	vrow "cat metrics/track/loss (${l} rows)" "$(ms cat "$mnt/metrics/track/loss")"
	lsrow "ls metrics/track/ (${n} runs)" metrics/track
	lsrow "ls lineage/sha256/ (${n} runs)" lineage/sha256
	vrow "readdir lineage/sha256/, no ls (${n} runs)" "$(rd "$mnt/lineage/sha256")"
	vrow "cat lineage/track/model/producer (${n} runs)" \
		"$(ms cat "$mnt/lineage/track/model/producer")"
	lsrow "ls artifacts/sha256/ (${n} runs)" artifacts/sha256
	vrow "readdir artifacts/sha256/, no ls (${n} runs)" "$(rd "$mnt/artifacts/sha256")"
	vrow "readlink artifacts/track/model (${n} runs)" \
		"$(ms readlink "$mnt/artifacts/track/model")"
	vrow "cat pipelines/track/.status (${n} runs)" \
		"$(ms cat "$mnt/pipelines/track/.status")"
	vrow "cat store/stats (${n} runs)" "$(ms cat "$mnt/store/stats")"
	first=$(printf 'o%04d' 1) last=$(printf 'o%04d' "$chain_n")
	if [ -e "$mnt/lineage/chain/$last" ]; then
		anc=$(wc -l < "$mnt/lineage/chain/$last/ancestors")
		[ "$anc" = "$chain_n" ] || die "ancestors of $last: $anc lines, expected $chain_n"
		desc=$(wc -l < "$mnt/lineage/chain/$first/descendants")
		[ "$desc" = "$chain_n" ] || die "descendants of $first: $desc lines, expected $chain_n"
		vrow "cat lineage/chain/${last}/ancestors (${anc} deep, ${n} runs)" \
			"$(ms cat "$mnt/lineage/chain/$last/ancestors")"
		vrow "cat lineage/chain/${first}/descendants (${desc} deep, ${n} runs)" \
			"$(ms cat "$mnt/lineage/chain/$first/descendants")"
	fi
	# The views are kept until the store changes: what the first read
	# after a change costs (a tag written, so everything renders anew).
	local t0 t1 first_tsv first_ls
	echo bench > "$mnt/runs/$mid/tags"
	t0=$(now); cat "$mnt/metrics/track/runs.tsv" > /dev/null; t1=$(now)
	first_tsv=$(awk -v s="$(sub "$t1" "$t0")" 'BEGIN { printf "%.1f", s * 1000 }')
	: > "$mnt/runs/$mid/tags"
	t0=$(now); ls "$mnt/runs" > /dev/null; t1=$(now)
	first_ls=$(awk -v s="$(sub "$t1" "$t0")" 'BEGIN { printf "%.1f", s * 1000 }')
	views_notes+=("at ${n} runs, the first read after a change: runs.tsv ${first_tsv} ms, ls runs/ ${first_ls} ms")
	views_notes+=("daemon RSS at ${n} runs: $(rss_mib) MiB (VmRSS)")
}
# rd DIR: the best of reps whole reads of DIR (opendir, readdir to the
# end), in ms: what ls asks of the file system, without its own sorting
# and printing (which take longer than the read of a big directory).
rd() { "$tool" listdir "$1" $((reps + 1)) | cut -d' ' -f2; }
rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status"; }

# clone_runs N: with the daemon stopped, clone the latest run until the
# store holds N runs (store_tool gcfill: its rows, metrics and run
# directory under new ids, new objects for its outputs), then mount again.
clone_runs() {
	local want=$1 have last t0
	have=$(ls "$mnt/runs" | grep -c '^[0-9]')
	clone_n=$((want > have ? want - have : 0))
	[ "$clone_n" -gt 0 ] || return 0
	last=$(latest_id)
	t0=$(now)
	unmount_daemon
	"$tool" gcfill "$store" "$last" "$clone_n" 0 > /dev/null || die "cannot clone run $last"
	mount_daemon "$daemon_j"
	views_notes+=("then ${clone_n} clones of run ${last} in $(sub "$(now)" "$t0" 1)s (store_tool gcfill)")
}

views_notes=()
real_n=$((runs_n < views_real ? runs_n : views_real))
fill_runs "$real_n"
views_notes+=("filling to ${real_n} runs: $(s3 "$fill_secs")s for ${fill_n} forced runs ($(awk \
	-v s="$fill_secs" -v n="$fill_n" 'BEGIN { if (n > 0) printf "%.2f", s / n * 1000; else print "-" }') ms a run, -j ${views_j})")
clone_runs "$runs_n"
time_views 10
if [ "$runs_big" -gt "$runs_n" ]; then
	echo "== views: ${runs_big} runs in the store"
	fill_runs "$runs_big"
	views_notes+=("filling to ${runs_big} runs: $(s3 "$fill_secs")s for ${fill_n} forced runs ($(awk \
		-v s="$fill_secs" -v n="$fill_n" 'BEGIN { if (n > 0) printf "%.2f", s / n * 1000; else print "-" }') ms a run, -j ${views_j})")
	time_views 30
fi

took views
fi

# --- 4. table --------------------------------------------------------------

if part artifacts; then
	row "read ${big_mb}MiB warm (vs local disk warm)" \
		"$(gbps "$big_bytes" "$warm_flowy")" "$(gbps "$big_bytes" "$warm_local")" GB/s ge 0.8
	row "read ${big_mb}MiB cold (vs local disk cold)" \
		"$(gbps "$big_bytes" "$cold_flowy")" "$(gbps "$big_bytes" "$cold_local")" GB/s ge 0.9
	row "read ${text_mb}MiB text cold (vs zstd -d)" \
		"$(gbps "$text_bytes" "$cold_text")" "$(gbps "$text_bytes" "$cold_zstd")" GB/s ge 1.5
	row "read ${text_mb}MiB csv cold (vs zstd -d)" \
		"$(gbps "$csv_bytes" "$cold_csv")" "$(gbps "$csv_bytes" "$cold_zstd_csv")" GB/s ge 1.5
	# Sizes and the random read: lower is better.
	row "stored size text (vs zstd -3 file)" "$stored_text" "$zst_text" B le 1.05
	row "stored size csv (vs zstd -3 file)" "$stored_csv" "$zst_csv" B le 1.05
	arow "random 4KiB read of text, mean" "$rand_mean" ms le 0.5
	arow "random 4KiB read of csv, mean" "$rand_csv" ms le 0.5
	row "hash ${big_mb}MiB (vs openssl dgst -sha256)" \
		"$(gbps "$big_bytes" "$hash_flowy")" "$(gbps "$big_bytes" "$hash_ssl")" GB/s ge 0.95
	row "ingest ${big_mb}MiB (vs cp + sha256sum)" \
		"$(gbps "$big_bytes" "$ingest_flowy")" "$(gbps "$big_bytes" "$ingest_base")" GB/s ge 0.8
fi
if part chain; then
	# Times: a ratio flowyfs/make; lower is better.
	row "chain ${chain_n} cold (vs make -j1)" \
		"$(s3 "$chain_cold")" "$(s3 "$make_cold")" s le 1.1
	row "chain ${chain_n} re-check (vs make -q)" \
		"$(s3 "$chain_q")" "$(s3 "$make_q")" s le 1.0
fi
if part tree; then
	arow "stat in a ${tree_n}-entry tree, first (loads its index)" "$tree_first" ms le 1000
	arow "stat in a ${tree_n}-entry tree, later (mean of 200)" "$tree_later" ms le 1
	row "ls | wc -l of a ${tree_n}-entry tree (vs local dir)" \
		"$(s3 "$tree_ls")" "$(s3 "$tree_ls_local")" s le 1.5
	arow "daemon RSS after ls of the ${tree_n}-entry tree" "$tree_rss" MiB le 512
fi
if part views; then
	for r in "${views_rows[@]}"; do
		IFS=$'\t' read -r m v g b <<< "$r"
		if [ -n "$b" ]; then
			orow "$m (vs a local dir of its names)" "$v" "$b" ms "$g"
		else
			arow "$m" "$v" ms le "$g"
		fi
	done
fi

echo
table
echo
if part artifacts; then
	echo "notes: cold reads are the best of ${disk_reps}, warm reads of ${reps} (dd bs=1M); hash and"
	echo "  ingest the best of ${disk_reps} whole processes (build/bench/store_tool), ingest into a new store each"
	echo "  time (its fsync included; cp's copy is not synced); random reads: p99 ${rand_p99} ms"
	echo "  (text), ${rand_csv99} ms (csv); text again at other offsets (its frames cached):"
	echo "  mean ${rand_again} ms."
	echo "  read sizes: big ${big_bytes} B, text ${text_bytes} B, csv ${csv_bytes} B; GB = 1e9 B."
fi
if part chain; then
	echo "notes: chain times are wall time"
	echo "  from mv (cold) or 'echo run > .ctl' (re-check) to the run's terminal status"
	echo "  (its 'finished' stamp), so they include the change window; both best of ${reps}"
	echo "  (the daemon's reps are chains of their own, chain..chain${reps}, each new content)."
	echo "  chain cold (best): $(s3 "$chain_wait")s from mv to run started, then ${chain_run}s run duration."
	echo "  re-check: $(s3 "$chain_q_wait")s from .ctl to run started, ${chain_q_run}s run duration (best)."
	echo "  per step: flowyfs $(awk -v s="$chain_cold" -v n="$chain_n" 'BEGIN { printf "%.2f", s / n * 1000 }') ms," \
		"make $(awk -v s="$make_cold" -v n="$chain_n" 'BEGIN { printf "%.2f", s / n * 1000 }') ms"
	[ -z "$floor_iso" ] || echo "  floor per process (build/bench/exec_floor): posix_spawn of sh" \
		"${floor_spawn} ms (what make pays), the daemon's isolated start ${floor_iso} ms" \
		"${floor_slot:+(in a slot, as root: ${floor_slot} ms)};" \
		"an fsync'd object of a few bytes ${floor_fsync} ms."
	[ -z "$floor_stored" ] || echo "  floor of a stored step (a slot's start, the output hashed and" \
		"published, the next in/ link; best of ${reps}): ${floor_stored} ms," \
		"$(awk -v a="$floor_stored" -v b="$floor_spawn" 'BEGIN { printf "%.2f", a / b }')x" \
		"posix_spawn's: no scheduler that isolates its steps and stores their outputs" \
		"goes below that ratio here."
fi

if part views; then
	echo "notes: views are the best of ${reps} (after one warm-up), whole commands (ls, cat)."
	for l in "${views_notes[@]}"; do echo "  $l"; done
fi

if [ "${BENCH_STRICT:-0}" = 1 ]; then
	! missed || exit 1
fi
exit 0
