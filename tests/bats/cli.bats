#!/usr/bin/env bats
# cli.bats - the command line: one-line startup errors that start with
# "flowyfs: " (unknown option, missing argument, a mountpoint that is
# already a mount point), --help, and the man page docs/flowyfs.1 agreeing
# with --help.

load helpers
bats_require_minimum_version 1.5.0

MAN=$BATS_TEST_DIRNAME/../../docs/flowyfs.1

teardown() {
	flowy_teardown
}

# render_man: docs/flowyfs.1 as plain text, wide enough not to break lines.
render_man() {
	if command -v man >/dev/null; then
		MANWIDTH=200 man -l "$MAN"
	else
		groff -man -Tascii -rLL=200n -P-cbu "$MAN"
	fi
}

@test "an unknown option is one line, without the usage" {
	run --separate-stderr "$FLOWYFS_BIN" -x "$BATS_TEST_TMPDIR"
	[ "$status" -eq 1 ]
	expect_eq "$stderr" "flowyfs: unknown option -x (see flowyfs --help)" stderr
	expect_eq "$output" "" stdout
	run --separate-stderr "$FLOWYFS_BIN" --bogus=1 "$BATS_TEST_TMPDIR"
	[ "$status" -eq 1 ]
	expect_eq "$stderr" "flowyfs: unknown option --bogus (see flowyfs --help)" stderr
}

@test "an option without its argument is one line" {
	run --separate-stderr "$FLOWYFS_BIN" --store
	[ "$status" -eq 1 ]
	expect_eq "$stderr" "flowyfs: option --store needs an argument" stderr
	expect_eq "$output" "" stdout
	run --separate-stderr "$FLOWYFS_BIN" --scratch
	expect_eq "$stderr" "flowyfs: option --scratch needs an argument" stderr
	run --separate-stderr "$FLOWYFS_BIN" -j
	[ "$status" -eq 1 ]
	expect_eq "$stderr" "flowyfs: option -j needs an argument" stderr
	run --separate-stderr "$FLOWYFS_BIN"
	[ "$status" -eq 1 ]
	expect_eq "$stderr" "flowyfs: missing MOUNTPOINT (see flowyfs --help)" stderr
}

@test "--help prints the usage to stdout, exit 0" {
	run --separate-stderr "$FLOWYFS_BIN" --help
	[ "$status" -eq 0 ]
	expect_eq "$stderr" "" stderr
	[[ ${lines[0]} == "usage: flowyfs [--store DIR] [--scratch DIR] "* ]]
}

@test "a second daemon on a mounted mountpoint: already a mount point" {
	mount_flowy
	run --separate-stderr timeout 20 "$FLOWYFS_BIN" --store "$BATS_TEST_TMPDIR/store2" -f "$mnt"
	[ "$status" -eq 1 ]
	expect_eq "$stderr" "flowyfs: mountpoint $mnt: already a mount point (unmount it first: fusermount3 -u $mnt)" stderr
	[ ! -e "$BATS_TEST_TMPDIR/store2" ]
	# The same with a trailing slash, and the first mount still serves.
	run --separate-stderr timeout 20 "$FLOWYFS_BIN" --store "$BATS_TEST_TMPDIR/store2" -f "$mnt/"
	[ "$status" -eq 1 ]
	expect_eq "$stderr" "flowyfs: mountpoint $mnt/: already a mount point (unmount it first: fusermount3 -u $mnt/)" stderr
	[ -d "$mnt/pipelines" ]
}

@test "a directory that is no mount point and not empty: not empty" {
	mkdir -p "$BATS_TEST_TMPDIR/full"
	touch "$BATS_TEST_TMPDIR/full/x"
	run --separate-stderr "$FLOWYFS_BIN" --store "$BATS_TEST_TMPDIR/store" "$BATS_TEST_TMPDIR/full"
	[ "$status" -eq 1 ]
	expect_eq "$stderr" "flowyfs: mountpoint $BATS_TEST_TMPDIR/full: not empty" stderr
}

@test "the man page documents the command line" {
	local text
	text=$(render_man)
	for fact in --store --scratch "-j N" "-o OPTS" "store=DIR" STORE --help --version \
		FLOWYFS_STORE FLOWYFS_SCRATCH XDG_DATA_HOME TMPDIR \
		pipelines/ artifacts/ runs/ lineage/ metrics/ \
		"fusermount3 -u MOUNTPOINT" "EXIT STATUS" FILES flowy.db history.git \
		"SEE ALSO" "already a mount point"; do
		grep -qF -- "$fact" <<<"$text" || { echo "man page lacks: $fact" >&2; return 1; }
	done
	# Every long option of --help is in the man page.
	local opts opt
	opts=$("$FLOWYFS_BIN" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u)
	[ -n "$opts" ]
	for opt in $opts; do
		grep -qF -- "$opt" <<<"$text" || { echo "man page lacks $opt" >&2; return 1; }
	done
}
