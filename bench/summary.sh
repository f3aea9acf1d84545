#!/usr/bin/env bash
# bench/summary.sh ROWS [TIMES] - the one table of `make bench`: every row
# the bench scripts appended to ROWS (bench/lib.sh, row and arow), aligned,
# with a count of ok and MISS, and the seconds each script took (TIMES:
# script<TAB>seconds). Exit 1 under BENCH_STRICT=1 when one missed.
set -euo pipefail
rows=$1
[ -s "$rows" ] || { echo "bench: no rows in $rows" >&2; exit 1; }
echo
echo "== make bench: every figure against its goal"
{ printf 'metric\tflowyfs\tbaseline\tratio\tgoal\tpass\n'; cat "$rows"; } |
	column -t -s "$(printf '\t')"
ok=$(grep -c $'\tok$' "$rows" || true)
miss=$(grep -c $'\tMISS$' "$rows" || true)
echo "$ok ok, $miss MISS"
if [ -s "${2:-}" ]; then
	awk -F'\t' '{ s += $2; printf "%s%s %ss", (NR > 1 ? ", " : "time: "), $1, $2 } END { printf "; %ss in all\n", s }' "$2"
fi
[ "${BENCH_STRICT:-0}" != 1 ] || [ "$miss" = 0 ]
