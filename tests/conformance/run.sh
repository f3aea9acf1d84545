#!/usr/bin/env bash
# run.sh - POSIX conformance of pipelines/ with pjdfstest (make conformance).
#
# Builds pjdfstest from PJDFSTEST_SRC into build/pjdfstest (when missing),
# mounts a fresh store with -o allow_other on a directory under /tmp whose
# components are all 0755 (pjdfstest switches to other uids), makes the
# pipeline directory pipelines/conf/ and runs `prove -r` there for each
# group. The tests listed in docs/conformance.md are skipped (reported as
# "# SKIP"); every other failure fails the run. Prints per-group counts.
# Always unmounts, stops its own daemon by PID and removes its directory.
#
# Environment: FLOWYFS_BIN (default build/flowyfs), PJDFSTEST_SRC (default
# ../shared/third_party/pjdfstest beside the repository), CONFORMANCE_GROUPS
# (default: the groups below), CONFORMANCE_NO_EXCLUDE=1 to run everything,
# CONFORMANCE_JOBS (groups run at once, default 4).
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${FLOWYFS_BIN:-$root/build/flowyfs}
src=${PJDFSTEST_SRC:-$root/../shared/third_party/pjdfstest}
pjd=$root/build/pjdfstest
groups=${CONFORMANCE_GROUPS:-open rename unlink truncate ftruncate utimensat mkdir rmdir chmod chown}
doc=$root/docs/conformance.md

die() { echo "conformance: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (allow_other, chown, other uids)"
[ -x "$bin" ] || die "no flowyfs binary at $bin (run make)"
[ -f "$src/pjdfstest.c" ] || die "no pjdfstest source at $src (set PJDFSTEST_SRC)"
command -v prove >/dev/null || die "prove (perl) is missing"

# Build pjdfstest in a copy (the source directory is read-only).
if [ ! -x "$pjd/pjdfstest" ] || [ "$src/pjdfstest.c" -nt "$pjd/pjdfstest" ]; then
	echo "conformance: building pjdfstest in $pjd"
	rm -rf "$pjd"
	mkdir -p "$root/build"
	cp -r "$src" "$pjd" && chmod -R u+w "$pjd" || die "cannot copy $src"
	(cd "$pjd" && autoreconf -ifs && ./configure && make pjdfstest) \
		>"$root/build/pjdfstest-build.log" 2>&1 ||
		die "pjdfstest build failed; see build/pjdfstest-build.log"
fi

for g in $groups; do
	[ -d "$pjd/tests/$g" ] || die "no pjdfstest group $g"
done

base= excl= pid=
running=()
# stop_daemon: unmount, wait for our daemon (by PID, killed if it does not
# exit); sets daemon_rc to its exit status.
stop_daemon() {
	daemon_rc=
	cd /
	if [ -n "$base" ] && grep -q " $base/mnt fuse" /proc/mounts; then
		for _ in $(seq 1 50); do
			fusermount3 -u "$base/mnt" 2>/dev/null && break
			sleep 0.1
		done
	fi
	if [ -n "$pid" ]; then
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "conformance: flowyfs $pid did not exit; killing it" >&2
			fusermount3 -uz "$base/mnt" 2>/dev/null
			kill "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
		daemon_rc=$?
		pid=
	fi
	if [ -n "$base" ] && grep -q " $base/mnt fuse" /proc/mounts; then
		fusermount3 -uz "$base/mnt"
	fi
}

cleanup() {
	cd /
	# The groups still running (interrupted): each is a process group.
	for p in "${running[@]}"; do
		kill -- "-$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	stop_daemon
	if [ -n "$base" ] && ! grep -q " $base/mnt fuse" /proc/mounts; then
		rm -rf "$base"
	fi
	[ -z "$excl" ] || rm -f "$excl"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The exclusions: the lines of the ```conformance-exclude blocks of
# docs/conformance.md, `group/NN.t` (the whole file) or `group/NN.t:1,4-6`
# (those assertions).
excl=$(mktemp /tmp/flowyfs-conf-excl.XXXXXX) || die "mktemp failed"
if [ "${CONFORMANCE_NO_EXCLUDE:-0}" != 1 ]; then
	awk '/^```conformance-exclude/ { on = 1; next } /^```/ { on = 0 }
	     on && /^[a-z_]+\/[0-9]+\.t(:[0-9,-]+)?$/ { print }' "$doc" >"$excl"
fi

base=$(mktemp -d /tmp/flowyfs-conf.XXXXXX) || die "mktemp failed"
chmod 755 "$base"
mnt=$base/mnt
store=$base/store
mkdir -m 755 "$mnt"

"$bin" --store "$store" -o allow_other -f "$mnt" >"$root/build/conformance-daemon.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
	grep -q " $mnt fuse" /proc/mounts && break
	kill -0 "$pid" 2>/dev/null || die "flowyfs exited; see build/conformance-daemon.log"
	sleep 0.1
done
grep -q " $mnt fuse" /proc/mounts || die "flowyfs did not mount $mnt"
mkdir "$mnt/pipelines/conf" || die "cannot make pipelines/conf"
cd "$mnt/pipelines/conf" || die "cannot enter pipelines/conf"

export CONFORMANCE_EXCLUDE=$excl
filter=$root/tests/conformance/tap-filter.sh
# The groups run side by side (most of their time is sleep 1 between
# timestamp checks); each test file makes its own uniquely named directory.
# Each runs in a session of its own, so an interrupt can stop it whole.
jobs=${CONFORMANCE_JOBS:-4}
for g in $groups; do
	while :; do
		alive=()
		for p in "${running[@]}"; do
			if kill -0 "$p" 2>/dev/null; then
				alive+=("$p")
			else
				wait "$p"
			fi
		done
		running=("${alive[@]}")
		[ "${#running[@]}" -lt "$jobs" ] && break
		sleep 0.2
	done
	setsid sh -c 'prove -r -v --exec "$1" "$2" >"$3" 2>&1; echo $? >"$4"' _ \
		"$filter" "$pjd/tests/$g" "$root/build/conformance-$g.log" "$base/rc.$g" &
	running+=("$!")
done
for p in "${running[@]}"; do
	wait "$p"
done
running=()

# passed: ok; failed: not ok; skipped: excluded here; todo: what pjdfstest
# itself marks as a known Linux difference (# TODO, never a failure).
failed=0
tp=0 tf=0 ts=0 tt=0
printf '%-10s %6s %6s %6s %6s\n' group passed failed skipped todo
for g in $groups; do
	log=$root/build/conformance-$g.log
	rc=$(cat "$base/rc.$g" 2>/dev/null || echo 1)
	tap=$(grep -E '^(not )?ok [0-9]+' "$log")
	p=$(grep -E '^ok ' <<<"$tap" | grep -vEc '# (SKIP|skip|TODO)')
	s=$(grep -Ec '^ok [0-9]+ # (SKIP|skip)' <<<"$tap")
	t=$(grep -c '# TODO' <<<"$tap")
	f=$(grep -E '^not ok ' <<<"$tap" | grep -vc '# TODO')
	printf '%-10s %6d %6d %6d %6d%s\n' "$g" "$p" "$f" "$s" "$t" \
		"$([ "$rc" = 0 ] || echo "  FAIL (see build/conformance-$g.log)")"
	tp=$((tp + p)) tf=$((tf + f)) ts=$((ts + s)) tt=$((tt + t))
	[ "$rc" = 0 ] || failed=1
done
printf '%-10s %6d %6d %6d %6d\n' total "$tp" "$tf" "$ts" "$tt"
if ! kill -0 "$pid" 2>/dev/null; then
	echo "conformance: flowyfs died during the run" >&2
	failed=1
fi
stop_daemon
if [ "$daemon_rc" != 0 ]; then
	echo "conformance: flowyfs exited with status $daemon_rc; see build/conformance-daemon.log" >&2
	failed=1
fi
[ "$failed" = 0 ] && echo "conformance: PASS" || echo "conformance: FAIL"
exit "$failed"
