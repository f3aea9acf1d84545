# bench/lib.sh - helpers the bench scripts share (sourced, not run).
#
#   now            seconds since the epoch, with nanoseconds
#   sub A B [P]    A - B with P decimals (default 6)
#   div A B [P]    A / B with P decimals (default 6); empty when B is 0 or
#                  either is missing
#   min A B        the smaller (A may be empty: B)
#   nap S          sleep S seconds without forking: a read with a timeout
#                  on a pipe nobody writes
#   bench_mount LOG CMD...  start the daemon command CMD (in the
#                  foreground mode, -f, its mountpoint in $mnt) with its
#                  output appended to LOG, set pid, and wait for the mount
#                  (die when the daemon exits or no mount shows in 4 s)
#   bench_mounted MNT PID LOG
#                  wait (up to 4 s) for the daemon PID to mount MNT; false,
#                  with its LOG on stderr, when it exits or the mount does
#                  not appear
#   bench_stop MNT PID
#                  unmount MNT and wait for the daemon PID to exit (PID
#                  empty: nothing to stop)
#   die MSG...     "bench: MSG" on stderr, exit 1
#   bench_workdir PREFIX [BASE [DIR]]
#                  set dir (DIR, else a new directory BASE/PREFIX.XXXXXX,
#                  BASE /tmp), store and mnt in it, pid empty; on exit the
#                  daemon pid is stopped and dir removed (kept with
#                  BENCH_KEEP=1)

now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" -v p="${3:-6}" 'BEGIN { printf "%.*f", p, a - b }'; }
div() {
	[ -n "$1" ] && [ -n "$2" ] || return 0
	awk -v a="$1" -v b="$2" -v p="${3:-6}" 'BEGIN { if (b > 0) printf "%.*f", p, a / b }'
}
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b < a) ? b : a }'; }
exec {sleep_fd}<> <(:)
nap() { read -r -t "$1" -u "$sleep_fd" _ || true; }
bench_mounted() {
	local _i
	for _i in $(seq 1 200); do
		grep -q " $1 fuse" /proc/mounts && return 0
		kill -0 "$2" 2>/dev/null || { cat "$3" >&2; return 1; }
		nap 0.02
	done
	grep -q " $1 fuse" /proc/mounts
}
bench_mount() {
	local log=$1
	shift
	"$@" >> "$log" 2>&1 &
	pid=$!
	bench_mounted "$mnt" "$pid" "$log" || { pid=""; die "the daemon did not mount $mnt"; }
}
die() { echo "bench: $*" >&2; exit 1; }
# bench_fs DIR GIB INODES: as root (unless BENCH_FS=host), make DIR a fresh
# ext4 file system (with its journal, as mkfs.ext4 makes it) in a sparse
# image beside it, so that every contestant meets the same disk: a host
# file system's history changes what creating files costs there (ext4
# without a journal skips every inode freed in the last minutes, one
# lookup each, on each create). Sets bench_fs_note; bench_fs_release
# undoes it (unmount, remove the image).
bench_fs_img=""
bench_fs_note="the host file system"
bench_fs() {
	[ "${BENCH_FS:-ext4}" != host ] && [ "$(id -u)" = 0 ] || return 0
	command -v mkfs.ext4 >/dev/null || return 0
	local img=$1.img
	truncate -s "${2}G" "$img" &&
		mkfs.ext4 -q -F -N "$3" -E lazy_itable_init=1,nodiscard "$img" &&
		mount -o loop "$img" "$1" || { rm -f "$img"; return 0; }
	bench_fs_img=$img
	bench_fs_note="a fresh ext4 (journal) in $img, ${2} GiB sparse"
}
bench_fs_release() {
	[ -n "$bench_fs_img" ] || return 0
	umount "${bench_fs_img%.img}" && rm -f "$bench_fs_img"
	bench_fs_img=""
}
bench_workdir() {
	dir=${3:-$(mktemp -d "${2:-/tmp}/$1.XXXXXX")}
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	store=$dir/store mnt=$dir/mnt
	mkdir -p "$store" "$mnt"
	pid=""
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}
bench_cleanup() {
	local rc=$?
	bench_stop "$mnt" "$pid"
	if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $dir" >&2; else rm -rf "$dir"; fi
	exit "$rc"
}
bench_stop() {
	[ -n "$2" ] || return 0
	fusermount3 -u "$1" 2>/dev/null || true
	wait "$2" 2>/dev/null || true
}

# The result table every bench script prints, and `make bench` gathers
# (bench/summary.sh) when BENCH_ROWS names a file to append the rows to.
#
#   row METRIC FLOWY BASE UNIT DIR GOAL   a ratio FLOWY/BASE against GOAL:
#                  DIR ge (ratio >= GOAL) or le (<= GOAL); an empty value
#                  prints n/a
#   arow METRIC VALUE UNIT DIR GOAL       an absolute goal (no baseline):
#                  VALUE DIR GOAL, e.g. arow "ls runs/" 4.2 ms le 10
#   orow METRIC VALUE BASE UNIT GOAL      VALUE <= GOAL or VALUE <= BASE
#                  (the ratio shown): for a whole command whose own cost,
#                  as BASE measures it elsewhere, may pass GOAL by itself
#   table          the rows so far, aligned
#   missed         true when a row so far is a MISS
bench_rows=()
bench_row_add() {
	bench_rows+=("$1")
	if [ -n "${BENCH_ROWS:-}" ]; then printf '%s\n' "$1" >> "$BENCH_ROWS"; fi
}
bench_pass() { # bench_pass VALUE DIR GOAL
	if [ -z "$1" ]; then
		echo n/a
	elif awk -v r="$1" -v t="$3" -v d="$2" 'BEGIN { exit !(d == "ge" ? r >= t : r <= t) }'; then
		echo ok
	else
		echo MISS
	fi
}
bench_cmp() { [ "$1" = ge ] && echo '>=' || echo '<='; }
row() {
	local ratio
	ratio=$(div "$2" "$3")
	bench_row_add "$(printf '%s\t%s\t%s\t%s\t%s\t%s' "$1" \
		"${2:+$2 $4}" "${3:+$3 $4}" "${ratio:+$(printf '%.2fx' "$ratio")}" \
		"$(bench_cmp "$5") ${6}x" "$(bench_pass "$ratio" "$5" "$6")")"
}
arow() {
	bench_row_add "$(printf '%s\t%s\t-\t-\t%s\t%s' "$1" "${2:+$2 $3}" \
		"$(bench_cmp "$4") $5 $3" "$(bench_pass "$2" "$4" "$5")")"
}
orow() {
	local ratio pass
	ratio=$(div "$2" "$3")
	pass=$(bench_pass "$2" le "$5")
	[ "$pass" != MISS ] || pass=$(bench_pass "$ratio" le 1)
	bench_row_add "$(printf '%s\t%s\t%s\t%s\t%s\t%s' "$1" "${2:+$2 $4}" "${3:+$3 $4}" \
		"${ratio:+$(printf '%.2fx' "$ratio")}" "<= $5 $4 or 1.0x" "$pass")"
}
bench_header() { printf 'metric\tflowyfs\tbaseline\tratio\tgoal\tpass\n'; }
table() {
	[ "${#bench_rows[@]}" -gt 0 ] || return 0
	{ bench_header; printf '%s\n' "${bench_rows[@]}"; } | column -t -s "$(printf '\t')"
}
missed() { printf '%s\n' "${bench_rows[@]}" | grep -q $'\tMISS$'; }
