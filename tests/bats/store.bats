#!/usr/bin/env bats
# store.bats - reading artifacts through the mount: a compressible output
# (stored as zstd seekable frames) and an incompressible one (stored raw)
# read back whole with cat, in pieces with dd skip= at and around frame
# boundaries, with O_DIRECT (every read reaches the daemon), by several
# readers at once, and the stored object decodes with the zstd command.

load helpers

MIB=$((1024 * 1024))

setup() {
	src=$BATS_TEST_TMPDIR/src
	mkdir -p "$src"
	# 5.5 frames of CSV-like text, and 3 MiB + 5 bytes of noise
	awk 'BEGIN { for (i = 0; i < 240000; i++)
		printf "%d,sensor-%03d,%d.%02d,%s\n", i, (i * 7919) % 211, i % 1000, i % 100,
			(i % 3) ? "ok" : "warn" }' | head -c $((5 * MIB + MIB / 2)) > "$src/text"
	head -c $((3 * MIB + 5)) /dev/urandom > "$src/noise"
	mount_flowy
	write_step store make "{\"run\": \"cp $src/text out/text && cp $src/noise out/noise\", \"outputs\": [\"text\", \"noise\"]}"
	ID=$(wait_new_run store)
	[ "$(cat "$mnt/runs/$ID/status")" = succeeded ]
	text=$mnt/artifacts/store/text noise=$mnt/artifacts/store/noise
}

teardown() {
	flowy_teardown
}

# object HEX: the object file the store keeps for HEX.
object() {
	local f
	for f in "$store/objects/${1:0:2}/${1:2}"*; do
		[ -f "$f" ] && echo "$f" && return 0
	done
	return 1
}

hex_of() { local h; h=$(readlink "$1"); echo "${h##*/}"; }

@test "a compressible artifact is stored in frames that zstd decodes; noise is stored raw" {
	local t n
	t=$(object "$(hex_of "$text")")
	n=$(object "$(hex_of "$noise")")
	[[ $t == *.zst ]]
	[[ $n != *.* ]]
	zstd -d -q -c "$t" | cmp - "$src/text"
	cmp "$n" "$src/noise"
	[ "$(stat -L -c %s "$text")" = "$(stat -c %s "$src/text")" ]
}

@test "cat reads both artifacts back whole" {
	cat "$text" | cmp - "$src/text"
	cat "$noise" | cmp - "$src/noise"
	cmp "$text" "$src/text"
}

@test "dd with skip reads the right bytes at and around frame boundaries" {
	local f bs skip count
	for f in text noise; do
		for bs in 4096 65536 1000000; do
			for skip in 0 1 255 256 257 511 512 1279 1280 1407; do
				count=3
				# 4096-byte blocks: frame i starts at block 256 i
				[ $((skip * bs)) -lt "$(stat -c %s "$src/$f")" ] || continue
				cmp <(dd if="$mnt/artifacts/store/$f" bs="$bs" skip="$skip" count="$count" status=none) \
					<(dd if="$src/$f" bs="$bs" skip="$skip" count="$count" status=none)
			done
		done
	done
	# the last bytes
	cmp <(tail -c 7 "$text") <(tail -c 7 "$src/text")
	cmp <(tail -c 7 "$noise") <(tail -c 7 "$src/noise")
}

@test "O_DIRECT reads at random offsets reach the daemon and match the source" {
	local i skip blocks
	blocks=$(( $(stat -c %s "$src/text") / 4096 ))
	for ((i = 0; i < 40; i++)); do
		skip=$(( (i * 7919 + 13) % blocks ))
		cmp <(dd if="$text" iflag=direct bs=4096 skip="$skip" count=1 status=none) \
			<(dd if="$src/text" bs=4096 skip="$skip" count=1 status=none)
	done
	cmp <(dd if="$text" iflag=direct bs=1M status=none) "$src/text"
}

@test "several readers at once read the same artifacts" {
	local pids=() i rc=0
	for i in 1 2 3; do
		cmp "$text" "$src/text" & pids+=($!)
		cmp "$noise" "$src/noise" & pids+=($!)
	done
	(dd if="$text" bs=4096 skip=700 status=none | cmp - <(dd if="$src/text" bs=4096 skip=700 status=none)) &
	pids+=($!)
	for i in "${pids[@]}"; do
		wait "$i" || rc=1
	done
	[ "$rc" = 0 ]
}

@test "artifacts read the same after a remount (fresh readers, cold caches)" {
	remount_flowy
	cmp "$mnt/artifacts/store/text" "$src/text"
	cmp <(dd if="$mnt/artifacts/store/text" bs=4096 skip=1000 count=2 status=none) \
		<(dd if="$src/text" bs=4096 skip=1000 count=2 status=none)
	cmp "$mnt/artifacts/store/noise" "$src/noise"
}
