#!/usr/bin/env bats
# store.bats - store/stats through the mount: the store's objects and
# bytes (checked against the object files on disk), dedup and compression
# ratios, and per pipeline its runs, cache hit rate and bytes.

load helpers

setup() {
	mount_flowy -j 2
	P=$mnt/pipelines
}

teardown() {
	flowy_teardown
}

# ratio NUM DEN: NUM/DEN with three decimals, in the shortest form.
ratio() {
	awk -v n="$1" -v d="$2" 'BEGIN { r = sprintf("%.3f", n / d); sub(/0+$/, "", r); sub(/\.$/, "", r); print r }'
}

@test "store/stats: objects, logical and stored bytes, ratios, runs, per pipeline" {
	expect_eq "$(ls "$mnt/store")" "$(printf 'gc.log\nstats')" "store/"
	expect_eq "$(stat -c %a "$mnt/store" "$mnt/store/stats")" "$(printf '555\n444')" "modes"
	expect_eq "$(cat "$mnt/store/stats")" "$(printf 'key\tvalue\nobjects\t0\nlogical_bytes\t0\nstored_bytes\t0\ndedup_ratio\t1\ncompression_ratio\t1\nruns\t0\n\npipeline\truns\tcache_hit_rate\tbytes')" "empty store"
	write_step s mk '{"run": "printf hello > out/f", "outputs": ["f"]}'
	local s1
	s1=$(wait_new_run s)
	echo run >"$P/s/.ctl"
	wait_new_run s "$s1" >/dev/null
	# a directory of two copies of the same file, and a big compressible file
	write_step d mk '{"run": "mkdir out/d && printf hello > out/d/a && printf hello > out/d/b && head -c 200000 /dev/zero > out/z", "outputs": ["d", "z"]}'
	wait_new_run d >/dev/null
	local tree stored zsize
	tree=$(find "$store/objects" -name '*.tree' -printf '%s\n')
	stored=$(find "$store/objects" -path "$store/objects/tmp" -prune -o -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
	zsize=$(find "$store/objects" -name '*.zst' -printf '%s\n')
	[ -n "$tree" ] && [ -n "$zsize" ] && [ "$zsize" -lt 200000 ]
	local logical=$((5 + tree + 200000))
	# every output of every run kept whole: s twice (5 each), d (10), z
	local referenced=$((5 + 5 + 10 + 200000))
	expect_eq "$(cat "$mnt/store/stats")" "$(printf 'key\tvalue\nobjects\t3\nlogical_bytes\t%s\nstored_bytes\t%s\ndedup_ratio\t%s\ncompression_ratio\t%s\nruns\t3\n\npipeline\truns\tcache_hit_rate\tbytes\nd\t1\t0\t200010\ns\t2\t0.5\t5' \
		"$logical" "$stored" "$(ratio "$referenced" "$logical")" "$(ratio "$logical" "$stored")")" "stats"
	run bash -c "echo x > '$mnt/store/stats'"
	[ "$status" -ne 0 ]
	run touch "$mnt/store/new"
	[ "$status" -ne 0 ] && [[ $output == *"Read-only file system"* ]]
}
