#!/usr/bin/env bats
# store_tree.bats - directory artifacts through the mount: lookups of the
# first, last and missing names and of names with odd bytes (each walked
# through the store's tree index), a listing equal to the step's own
# directory, nested trees, and the same after a remount (a fresh index).

load helpers

setup() {
	src=$BATS_TEST_TMPDIR/src
	mkdir -p "$src/d/sub"
	# 1000 files f0001..f1000 (empty but three holding their own number,
	# so few objects to store), odd names, a subdir
	(cd "$src/d" && seq -f 'f%04g' 1 1000 | xargs touch && for i in 0001 0500 1000; do
		echo "$i" > "f$i"; done)
	printf 'space\n' > "$src/d/a b"
	printf 'dash\n' > "$src/d/-lead"
	printf 'utf8\n' > "$src/d/$(printf '\303\274ber')"
	printf 'high\n' > "$src/d/$(printf 'z\377')"
	printf 'ctl\n' > "$src/d/$(printf '\001x')"
	printf 'deep\n' > "$src/d/sub/inner"
	mount_flowy
	write_step tree make "{\"run\": \"cp -r $src/d out/d\", \"outputs\": [\"d\"]}"
	ID=$(wait_new_run tree)
	[ "$(cat "$mnt/runs/$ID/status")" = succeeded ]
	d=$mnt/artifacts/tree/d
}

teardown() {
	flowy_teardown
}

check_lookups() {
	local n
	[ "$(cat "$d/f0001")" = 0001 ]
	[ "$(cat "$d/f1000")" = 1000 ]
	[ "$(cat "$d/f0500")" = 0500 ]
	[ "$(stat -L -c %s "$d/f1000")" = 5 ]
	[ "$(stat -L -c %s "$d/f0999")" = 0 ]
	[ "$(cat "$d/a b")" = space ]
	[ "$(cat "$d/-lead")" = dash ]
	[ "$(cat "$d/$(printf '\303\274ber')")" = utf8 ]
	[ "$(cat "$d/$(printf 'z\377')")" = high ]
	[ "$(cat "$d/$(printf '\001x')")" = ctl ]
	[ "$(cat "$d/sub/inner")" = deep ]
	# missing names: before the first, between, after the last, a prefix
	for n in '!' f0000 f00015 f1001 f100 zz sub/none; do
		run stat -L "$d/$n"
		[ "$status" = 1 ]
		[[ $output == *"No such file or directory"* ]]
	done
	run cat "$d/f0001/x"
	[ "$status" = 1 ]
	[[ $output == *"Not a directory"* ]]
}

@test "a directory artifact: lookups of first, last, odd and missing names, the exact listing, the same after a remount" {
	check_lookups
	[ "$(LC_ALL=C ls -A "$d" | wc -l)" = 1006 ]
	diff <(LC_ALL=C ls -A "$d") <(LC_ALL=C ls -A "$src/d")
	diff <(cd "$d" && LC_ALL=C find . | LC_ALL=C sort) <(cd "$src/d" && LC_ALL=C find . | LC_ALL=C sort)
	[ "$(stat -L -c %F "$d/sub")" = directory ]
	remount_flowy
	diff <(LC_ALL=C ls -A "$d") <(LC_ALL=C ls -A "$src/d")
	check_lookups
}
