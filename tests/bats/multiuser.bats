#!/usr/bin/env bats
# multiuser.bats - pipelines/ on a root daemon's allow_other mount: what
# other users create is theirs, chown works, the caller's umask counts once,
# in-pipeline symlinks, attributes with nanoseconds, fstat after unlink.
#
# The mountpoint lives under a 0755 directory in /tmp (bats' own temporary
# directories are 0700, which user nobody could not cross).

load helpers

NOBODY=65534

setup() {
	[ "$(id -u)" = 0 ] || skip "needs root: an allow_other mount and other users"
	MU_DIR=$(mktemp -d /tmp/flowyfs-mu.XXXXXX)
	chmod 755 "$MU_DIR"
	mnt=$MU_DIR/mnt
	mount_flowy -o allow_other
	P=$mnt/pipelines
	mkdir "$P/mu"
	chown "$NOBODY:$NOBODY" "$P/mu"
}

teardown() {
	teardown_with_dir "${MU_DIR:-}"
}

# as_nobody CMD...: run CMD as uid and gid 65534 with no other groups.
as_nobody() {
	setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups "$@"
}

@test "what user nobody creates in its pipeline directory is owned by 65534:65534" {
	as_nobody sh -c 'cd "$1" && echo x > f && mkdir d && ln -s f l && mkfifo p' _ "$P/mu"
	[ "$(stat -c %u:%g "$P/mu/f")" = 65534:65534 ]
	[ "$(stat -c %u:%g "$P/mu/d")" = 65534:65534 ]
	[ "$(stat -c %u:%g "$P/mu/l")" = 65534:65534 ]
	[ "$(stat -c %u:%g "$P/mu/p")" = 65534:65534 ]
	[ "$(stat -c %F "$P/mu/p")" = fifo ]
	# The backing files carry the owner, so it survives a remount.
	[ "$(stat -c %u:%g "$store/pipelines/mu/f")" = 65534:65534 ]
	# What root creates stays root's.
	echo y >"$P/mu/r"
	[ "$(stat -c %u:%g "$P/mu/r")" = 0:0 ]
	# nobody cannot write into a pipeline directory it does not own.
	mkdir "$P/rootp"
	run as_nobody sh -c 'echo x > "$1"' _ "$P/rootp/f"
	[ "$status" -ne 0 ]
	[[ $output == *"Permission denied"* ]]
}

@test "generated files of nobody's pipeline are nobody's: it may write .ctl" {
	as_nobody sh -c 'printf "%s\n" "$2" > "$1/s.json"' _ "$P/mu" \
		'{"run": "echo hi > out/o", "outputs": ["o"]}'
	[ "$(stat -c %u:%g:%a "$P/mu/.ctl")" = 65534:65534:200 ]
	[ "$(stat -c %u:%g:%a "$P/mu/.status")" = 65534:65534:444 ]
	local first
	first=$(wait_new_run mu)
	as_nobody sh -c 'echo run > "$1"' _ "$P/mu/.ctl"
	wait_new_run mu "$first" >/dev/null
	[ "$(cat "$mnt/artifacts/mu/o")" = hi ]
	# Someone else may not.
	mkdir "$P/rootp"
	cp "$P/mu/s.json" "$P/rootp/s.json"
	[ "$(stat -c %u:%g "$P/rootp/.ctl")" = 0:0 ]
	run as_nobody sh -c 'echo run > "$1"' _ "$P/rootp/.ctl"
	[ "$status" -ne 0 ]
	[[ $output == *"Permission denied"* ]]
}

@test "root's chown and chgrp change the owner; nobody's chown to root is refused" {
	echo x >"$P/mu/f"
	chown 1234:5678 "$P/mu/f"
	[ "$(stat -c %u:%g "$P/mu/f")" = 1234:5678 ]
	[ "$(stat -c %u:%g "$store/pipelines/mu/f")" = 1234:5678 ]
	chgrp 42 "$P/mu/f"
	[ "$(stat -c %u:%g "$P/mu/f")" = 1234:42 ]
	ln -s f "$P/mu/l"
	chown -h 77:88 "$P/mu/l"
	[ "$(stat -c %u:%g "$P/mu/l")" = 77:88 ]
	[ "$(stat -c %u:%g "$P/mu/f")" = 1234:42 ]
	as_nobody touch "$P/mu/mine"
	run as_nobody chown 0 "$P/mu/mine"
	[ "$status" -ne 0 ]
	[[ $output == *"Operation not permitted"* ]]
	[ "$(stat -c %u:%g "$P/mu/mine")" = 65534:65534 ]
}

@test "the caller's umask applies once: umask 002 gives 664 and 775, 077 gives 600 and 700" {
	as_nobody sh -c 'umask 002 && cd "$1" && echo x > f && mkdir d' _ "$P/mu"
	[ "$(stat -c %a "$P/mu/f")" = 664 ]
	[ "$(stat -c %a "$P/mu/d")" = 775 ]
	as_nobody sh -c 'umask 077 && cd "$1" && echo x > g && mkdir e' _ "$P/mu"
	[ "$(stat -c %a "$P/mu/g")" = 600 ]
	[ "$(stat -c %a "$P/mu/e")" = 700 ]
	[ "$(stat -c %a "$store/pipelines/mu/f")" = 664 ]
}

@test "relative symlinks inside the pipeline can be made and read; absolute or escaping ones fail EPERM" {
	mkdir "$P/other"
	as_nobody sh -c 'cd "$1" && mkdir -p sub && echo data > sub/t && ln -s sub/t l && ln -s ../sub/t sub/up' _ "$P/mu"
	[ "$(readlink "$P/mu/l")" = sub/t ]
	[ "$(readlink "$P/mu/sub/up")" = ../sub/t ]
	[ "$(cat "$P/mu/l")" = data ]
	[ "$(cat "$P/mu/sub/up")" = data ]
	[ "$(stat -c %F "$P/mu/l")" = "symbolic link" ]
	run as_nobody ln -s /etc/passwd "$P/mu/abs"
	[ "$status" -ne 0 ]
	[[ $output == *"Operation not permitted"* ]]
	run as_nobody ln -s ../other/x "$P/mu/esc"
	[ "$status" -ne 0 ]
	[[ $output == *"Operation not permitted"* ]]
	run as_nobody ln -s ../../../etc "$P/mu/sub/esc"
	[ "$status" -ne 0 ]
	[[ $output == *"Operation not permitted"* ]]
	[ ! -L "$P/mu/abs" ]
	[ ! -L "$P/mu/esc" ]
	[ ! -L "$P/mu/sub/esc" ]
}

@test "timestamps keep nanoseconds: touch -d then ls -l --time-style=full-iso" {
	echo x >"$P/mu/f"
	TZ=UTC touch -d '2021-03-04 05:06:07.123456789' "$P/mu/f"
	run env TZ=UTC ls -l --time-style=full-iso "$P/mu/f"
	[[ $output == *" 2021-03-04 05:06:07.123456789 +0000 "* ]]
	[ "$(stat -c %.9Y "$P/mu/f")" = 1614834367.123456789 ]
	TZ=UTC touch -a -d '2022-01-01 00:00:00.000000042' "$P/mu/f"
	[ "$(stat -c %.9X "$P/mu/f")" = 1640995200.000000042 ]
	[ "$(stat -c %.9Y "$P/mu/f")" = 1614834367.123456789 ]
}

@test "ctime moves on chmod and chown; st_ino and nlink are the backing file's" {
	echo x >"$P/mu/f"
	local c1 c2 c3
	c1=$(stat -c %.9Z "$P/mu/f")
	sleep 0.1
	chmod 600 "$P/mu/f"
	c2=$(stat -c %.9Z "$P/mu/f")
	# Same number of digits: a later time sorts after.
	[[ $c2 > $c1 ]]
	[ "$(stat -c %.9Z "$store/pipelines/mu/f")" = "$c2" ]
	sleep 0.1
	chown 99 "$P/mu/f"
	c3=$(stat -c %.9Z "$P/mu/f")
	[[ $c3 > $c2 ]]
	# st_ino: the backing inode with the top bit set; links counted.
	local ino
	ino=$(stat -c %i "$store/pipelines/mu/f")
	[ "$(stat -c %i "$P/mu/f")" = "$(printf %u $((ino | (1 << 63))))" ]
	ln "$P/mu/f" "$P/mu/g"
	[ "$(stat -c %h "$P/mu/f")" = 2 ]
	[ "$(stat -c %i "$P/mu/g")" = "$(stat -c %i "$P/mu/f")" ]
	mkdir -p "$P/mu/d/e"
	[ "$(stat -c %h "$P/mu/d")" = 3 ]
}

@test "fstat of an open file still works after it is unlinked" {
	run as_nobody perl -e '
		open(my $f, "+>", $ARGV[0]) or die "open: $!";
		syswrite($f, "12345") == 5 or die "write: $!";
		unlink($ARGV[0]) or die "unlink: $!";
		-e $ARGV[0] and die "still there";
		my @s = stat($f) or die "fstat: $!";
		chmod(0600, $f) or die "fchmod: $!";
		my @t = stat($f) or die "fstat: $!";
		printf "%d %o %d\n", $s[7], $t[2] & 07777, $t[4];
	' "$P/mu/gone"
	[ "$status" -eq 0 ]
	[ "$output" = "5 600 65534" ]
	[ ! -e "$P/mu/gone" ]
}
