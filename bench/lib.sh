# bench/lib.sh - helpers the bench scripts share (sourced, not run).
#
#   now            seconds since the epoch, with nanoseconds
#   sub A B [P]    A - B with P decimals (default 6)
#   div A B [P]    A / B with P decimals (default 6); empty when B is 0 or
#                  either is missing
#   min A B        the smaller (A may be empty: B)
#   nap S          sleep S seconds without forking: a read with a timeout
#                  on a pipe nobody writes
#   mounted MNT PID LOG  wait (4 s at most) until the daemon PID serves
#                  MNT; fails, showing LOG, when it exits or never does

now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" -v p="${3:-6}" 'BEGIN { printf "%.*f", p, a - b }'; }
div() {
	[ -n "$1" ] && [ -n "$2" ] || return 0
	awk -v a="$1" -v b="$2" -v p="${3:-6}" 'BEGIN { if (b > 0) printf "%.*f", p, a / b }'
}
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b < a) ? b : a }'; }
exec {sleep_fd}<> <(:)
nap() { read -r -t "$1" -u "$sleep_fd" _ || true; }
mounted() {
	for _ in $(seq 1 200); do
		grep -q " $1 fuse" /proc/mounts && return 0
		kill -0 "$2" 2>/dev/null || { cat "$3" >&2; echo "bench: daemon exited" >&2; return 1; }
		nap 0.02
	done
	grep -q " $1 fuse" /proc/mounts || { echo "bench: mount of $1 did not appear" >&2; return 1; }
}

# The result table every bench script prints, and `make bench` gathers
# (bench/summary.sh) when BENCH_ROWS names a file to append the rows to.
#
#   row METRIC FLOWY BASE UNIT DIR GOAL   a ratio FLOWY/BASE against GOAL:
#                  DIR ge (ratio >= GOAL) or le (<= GOAL); an empty value
#                  prints n/a
#   arow METRIC VALUE UNIT DIR GOAL       an absolute goal (no baseline):
#                  VALUE DIR GOAL, e.g. arow "ls runs/" 4.2 ms le 10
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
bench_header() { printf 'metric\tflowyfs\tbaseline\tratio\tgoal\tpass\n'; }
table() {
	[ "${#bench_rows[@]}" -gt 0 ] || return 0
	{ bench_header; printf '%s\n' "${bench_rows[@]}"; } | column -t -s "$(printf '\t')"
}
missed() { printf '%s\n' "${bench_rows[@]}" | grep -q $'\tMISS$'; }
