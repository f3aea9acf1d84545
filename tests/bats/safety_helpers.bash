# safety_helpers.bash - helpers shared by the safety tests (isolation,
# secrets, multiuser, disk, limits, ctl, crash). Loaded after helpers.bash.
#
# Every daemon these tests start gets its scratch inside the test's own
# directory (FLOWYFS_SCRATCH), never the shared default under /var/tmp, so a
# hostile step or a leftover never touches another test or engineer.

export FLOWYFS_SCRATCH=${FLOWYFS_SCRATCH_TEST:-$BATS_TEST_TMPDIR/scratch}

# json_str S: S as a JSON string literal (for the characters these tests use).
json_str() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}

# step_json RUN [OUTPUTS_JSON] [EXTRA]: a step definition with RUN escaped.
# OUTPUTS_JSON defaults to ["o"]: a step without outputs is never run (the
# daemon counts it as cached on its first run), so every step here has one.
step_json() {
	printf '{"run": %s, "outputs": %s%s}' "$(json_str "$1")" "${2:-[\"o\"]}" "${3:+, $3}"
}

# hostile CMD: CMD in a subshell (its cd stays there), then the output o,
# so the step runs and its status says whether the rest worked.
hostile() {
	printf '( %s ); echo done > out/o' "$1"
}

# has_scratch_option: the binary under test knows --scratch DIR.
has_scratch_option() {
	"$FLOWYFS_BIN" --help 2>&1 | grep -q -- '--scratch'
}

# scratch_opt DIR: point the daemon's scratch at DIR. Sets SCRATCH_ARGS to
# (--scratch DIR) when the binary knows the option, else to () (the old
# daemon keeps its scratch inside the store, so with the store on a test
# tmpfs the scratch is there either way); exports FLOWYFS_SCRATCH=DIR too.
# Use: scratch_opt DIR; mount_flowy "${SCRATCH_ARGS[@]}".
scratch_opt() {
	export FLOWYFS_SCRATCH=$1
	SCRATCH_ARGS=()
	if has_scratch_option; then
		SCRATCH_ARGS=(--scratch "$1")
	fi
}

# db_check [STORE]: print PRAGMA integrity_check of STORE/flowy.db (read-only:
# the check never creates a database that is not there, nor changes one).
db_check() {
	local s=${1:-$store}
	if [ ! -f "$s/flowy.db" ]; then
		echo "no database at $s/flowy.db"
		return 1
	fi
	sqlite3 -readonly "$s/flowy.db" 'PRAGMA integrity_check' 2>&1
}

# expect_db_ok [STORE]: the database passes its integrity check.
expect_db_ok() {
	local out
	out=$(db_check "$@") || true
	expect_eq "$out" ok "PRAGMA integrity_check"
}

# db_check_offline [MOUNT_ARGS...]: stop the daemon (it holds the database
# in exclusive locking mode, so nothing else can read it while it runs),
# check it stopped cleanly, check the database, and mount again.
db_check_offline() {
	unmount_clean || return 1
	expect_db_ok || return 1
	mount_flowy "$@"
}

# wait_for TENTHS CMD...: poll CMD every 0.1 s until it succeeds, at most
# TENTHS times; fails (and says what it waited for) when it never does, or
# at once when the daemon died.
wait_for() {
	local n=$1 i
	shift
	for ((i = 0; i < n; i++)); do
		"$@" 2>/dev/null && return 0
		daemon_alive || return 1
		sleep 0.1
	done
	echo "timed out after $((n / 10)).$((n % 10)) s waiting for: $*" >&2
	return 1
}

# run_status ID: the status of run ID (empty when unreadable).
run_status() {
	cat "$mnt/runs/$1/status" 2>/dev/null
}

# queue_run P: echo run > pipelines/P/.ctl, wait for the new run; prints its id.
queue_run() {
	local before
	before=$(latest_run_of "$1")
	echo run >"$mnt/pipelines/$1/.ctl" || return 1
	wait_new_run "$1" "${before:-0}"
}

# expect_contains HAYSTACK NEEDLE [WHAT]: fixed-string, case-sensitive.
expect_contains() {
	if ! grep -qF -- "$2" <<<"$1"; then
		echo "${3:-text} does not contain: $2" >&2
		echo "--- actual:" >&2
		printf '%s\n' "$1" >&2
		return 1
	fi
}

# sha FILE: the SHA-256 of FILE's content.
sha() {
	sha256sum <"$1" | cut -d' ' -f1
}

# artifact_hex P NAME: the hash artifacts/P/NAME points to.
artifact_hex() {
	local t
	t=$(readlink "$mnt/artifacts/$1/$2") || return 1
	echo "${t##*/}"
}

# tmpfs_mount DIR SIZE: mount a tmpfs of SIZE on DIR (created), recorded in
# $BATS_TEST_TMPDIR/tmpfs.list so that tmpfs_teardown unmounts it.
tmpfs_mount() {
	mkdir -p "$1"
	mount -t tmpfs -o "size=$2,mode=0755" tmpfs "$1" || return 1
	echo "$1" >>"$BATS_TEST_TMPDIR/tmpfs.list"
}

# tmpfs_used DIR: bytes used on the file system of DIR.
tmpfs_used() {
	df -B1 --output=used "$1" | tail -n 1 | tr -d ' '
}

# tmpfs_avail DIR: bytes available on the file system of DIR.
tmpfs_avail() {
	df -B1 --output=avail "$1" | tail -n 1 | tr -d ' '
}

# safety_teardown: flowy_teardown, then unmount every tmpfs this test made
# (after the FUSE mount, even when flowy_teardown failed).
safety_teardown() {
	local rc=0 d
	flowy_teardown || rc=$?
	if [ -f "$BATS_TEST_TMPDIR/tmpfs.list" ]; then
		while read -r d; do
			if mountpoint -q "$d"; then
				umount "$d" 2>/dev/null || umount -l "$d" || rc=1
			fi
		done < <(tac "$BATS_TEST_TMPDIR/tmpfs.list")
		rm -f "$BATS_TEST_TMPDIR/tmpfs.list"
	fi
	return "$rc"
}
