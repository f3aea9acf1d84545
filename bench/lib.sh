# bench/lib.sh - helpers the bench scripts share (sourced, not run).
#
#   now            seconds since the epoch, with nanoseconds
#   sub A B [P]    A - B with P decimals (default 6)
#   div A B [P]    A / B with P decimals (default 6); empty when B is 0 or
#                  either is missing
#   min A B        the smaller (A may be empty: B)
#   nap S          sleep S seconds without forking: a read with a timeout
#                  on a pipe nobody writes

now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" -v p="${3:-6}" 'BEGIN { printf "%.*f", p, a - b }'; }
div() {
	[ -n "$1" ] && [ -n "$2" ] || return 0
	awk -v a="$1" -v b="$2" -v p="${3:-6}" 'BEGIN { if (b > 0) printf "%.*f", p, a / b }'
}
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b < a) ? b : a }'; }
exec {sleep_fd}<> <(:)
nap() { read -r -t "$1" -u "$sleep_fd" _ || true; }
