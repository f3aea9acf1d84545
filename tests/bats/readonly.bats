#!/usr/bin/env bats
# readonly.bats - everything outside pipelines/ refuses writes with EROFS;
# artifact objects are read-only files (444) and directories (555).

load helpers

setup() {
	mount_flowy
	write_step ro make '{"run": "mkdir out/d && echo inner > out/d/f && echo blob > out/b", "outputs": ["d", "b"]}'
	ID=$(wait_new_run ro)
	[ "$(cat "$mnt/runs/$ID/status")" = succeeded ]
	HEX=$(readlink "$mnt/artifacts/ro/b")
	HEX=${HEX##*/}
	HEXD=$(readlink "$mnt/artifacts/ro/d")
	HEXD=${HEXD##*/}
}

teardown() {
	flowy_teardown
}

# erofs CMD...: the command fails and says "Read-only file system".
erofs() {
	run "$@"
	if [ "$status" -eq 0 ] || [[ $output != *"Read-only file system"* ]]; then
		echo "expected EROFS from: $* (status $status): $output" >&2
		return 1
	fi
}

# sh_erofs SCRIPT ARG: like erofs, for a shell redirection on ARG ($1).
sh_erofs() {
	erofs bash -c "$1" _ "$2"
}

@test "creating files and directories outside pipelines/ gives EROFS" {
	local d
	for d in "" artifacts artifacts/sha256 artifacts/ro runs "runs/$ID" \
		"runs/$ID/steps" "runs/$ID/steps/make" "runs/$ID/steps/make/outputs" \
		lineage lineage/sha256 lineage/ro "lineage/sha256/$HEX" "lineage/sha256/$HEX/parents" \
		metrics; do
		sh_erofs 'echo x > "$1"' "$mnt/$d/newfile"
		erofs touch "$mnt/$d/newfile2"
		erofs mkdir "$mnt/$d/newdir"
		erofs ln -s /etc/passwd "$mnt/$d/newlink"
		[ ! -e "$mnt/$d/newfile" ]
		[ ! -e "$mnt/$d/newdir" ]
		[ ! -L "$mnt/$d/newlink" ]
	done
}

@test "writing, appending to, truncating and touching generated files gives EROFS" {
	local f
	for f in README "runs/$ID/status" "runs/$ID/summary" "runs/$ID/steps/make/log" \
		"runs/$ID/steps/make/status"; do
		sh_erofs 'echo x > "$1"' "$mnt/$f"
		sh_erofs 'echo x >> "$1"' "$mnt/$f"
		erofs truncate -s 0 "$mnt/$f"
		erofs touch "$mnt/$f"
		erofs chmod 666 "$mnt/$f"
	done
	[ "$(cat "$mnt/runs/$ID/status")" = succeeded ]
	[ "$(head -c 8 "$mnt/README")" = "flowyfs:" ]
}

@test "artifacts cannot be written, removed, renamed or chmodded" {
	sh_erofs 'echo x > "$1"' "$mnt/artifacts/ro/b"
	sh_erofs 'echo x > "$1"' "$mnt/artifacts/sha256/$HEX"
	sh_erofs 'echo x >> "$1"' "$mnt/artifacts/sha256/$HEX"
	sh_erofs 'echo x > "$1"' "$mnt/artifacts/sha256/$HEXD/f"
	erofs truncate -s 0 "$mnt/artifacts/sha256/$HEX"
	erofs rm -f "$mnt/artifacts/ro/b"
	erofs rm -f "$mnt/artifacts/sha256/$HEX"
	erofs rm -f "$mnt/artifacts/sha256/$HEXD/f"
	erofs rmdir "$mnt/artifacts/sha256/$HEXD"
	erofs mv "$mnt/artifacts/sha256/$HEX" "$mnt/artifacts/sha256/x"
	erofs mv "$mnt/artifacts/ro/b" "$mnt/artifacts/ro/c"
	erofs chmod 644 "$mnt/artifacts/sha256/$HEX"
	erofs touch "$mnt/artifacts/sha256/$HEX"
	erofs mkdir "$mnt/artifacts/sha256/$HEXD/sub"
	# Untouched.
	[ "$(cat "$mnt/artifacts/ro/b")" = blob ]
	[ "$(cat "$mnt/artifacts/sha256/$HEXD/f")" = inner ]
	[ "$(readlink "$mnt/artifacts/ro/b")" = "../sha256/$HEX" ]
}

@test "runs cannot be renamed; removing a file of a run changes nothing (only rm -r of the run deletes it)" {
	rm -f "$mnt/runs/$ID/status"
	erofs rm -f "$mnt/runs/latest"
	rmdir "$mnt/runs/$ID/steps/make/inputs"
	erofs mv "$mnt/runs/$ID" "$mnt/runs/999"
	rm -f "$mnt/runs/$ID/steps/make/outputs/b"
	erofs touch "$mnt/runs/$ID/new"
	[ "$(cat "$mnt/runs/$ID/status")" = succeeded ]
	[ "$(readlink "$mnt/runs/latest")" = "$ID" ]
	[ -L "$mnt/runs/$ID/steps/make/outputs/b" ]
}

@test "nothing can be moved out of pipelines/ into a read-only tree" {
	write_file ro notes.txt hello
	erofs mv "$mnt/pipelines/ro/notes.txt" "$mnt/artifacts/notes.txt"
	erofs mv "$mnt/pipelines/ro/notes.txt" "$mnt/runs/notes.txt"
	[ "$(cat "$mnt/pipelines/ro/notes.txt")" = hello ]
}

@test "artifact objects are mode 444, tree directories 555" {
	[ "$(stat -c %a "$mnt/artifacts/sha256/$HEX")" = 444 ]
	[ "$(stat -c %a "$mnt/artifacts/sha256/$HEXD")" = 555 ]
	[ "$(stat -c %a "$mnt/artifacts/sha256/$HEXD/f")" = 444 ]
	[ "$(stat -L -c %a "$mnt/artifacts/ro/b")" = 444 ]
	[ "$(stat -c %F "$mnt/artifacts/sha256/$HEX")" = "regular file" ]
	[ "$(stat -c %s "$mnt/artifacts/sha256/$HEX")" = 5 ]
	[ "$(stat -c %s "$mnt/artifacts/sha256/$HEXD/f")" = 6 ]
	# Every object listed under sha256/ obeys the same rule.
	local o
	for o in "$mnt"/artifacts/sha256/*; do
		if [ -d "$o" ]; then
			[ "$(stat -c %a "$o")" = 555 ]
		else
			[ "$(stat -c %a "$o")" = 444 ]
		fi
	done
}
