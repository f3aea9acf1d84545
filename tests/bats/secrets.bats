#!/usr/bin/env bats
# secrets.bats - no secrets through out/: out/ itself must be the directory
# flowyfs made, symlinks in it must stay inside it (absolute, relative and
# nested escapes all fail the step), nothing of /etc/shadow ever becomes an
# artifact, and the store is private (0700). Hard links into out/ are in
# multiuser.bats (they need a step running as another user).

load helpers
load safety_helpers

setup() {
	mount_flowy
	SHADOW_SHA=$(sha /etc/shadow)
}

teardown() {
	flowy_teardown
}

# no_shadow_artifact: no artifact (no file of any blob or tree under
# artifacts/sha256/, no object in the store) has /etc/shadow's content.
no_shadow_artifact() {
	local f h
	if [ -e "$mnt/artifacts/sha256/$SHADOW_SHA" ]; then
		echo "/etc/shadow is artifact $SHADOW_SHA" >&2
		return 1
	fi
	while IFS= read -r -d '' f; do
		h=$(sha "$f")
		if [ "$h" = "$SHADOW_SHA" ]; then
			echo "$f has the content of /etc/shadow" >&2
			return 1
		fi
	done < <(find "$mnt/artifacts/sha256/" -type f -print0)
	if [ -n "$(find "$store/objects" -path "*/${SHADOW_SHA:0:2}/${SHADOW_SHA:2}*" -print -quit)" ]; then
		echo "the store holds an object of /etc/shadow" >&2
		return 1
	fi
}

# expect_step_error ID STEP FRAGMENT: run ID failed, STEP failed with an
# error containing FRAGMENT.
expect_step_error() {
	expect_eq "$(run_status "$1")" failed "status of run $1"
	expect_eq "$(step_file "$1" "$2" status)" failed "status of step $2"
	expect_contains "$(step_file "$1" "$2" error)" "$3" "error of step $2"
}

@test "out/ replaced by a symlink to /etc: the step fails, nothing of /etc is stored" {
	write_step etc s "$(step_json 'rm -rf out; ln -s /etc out' '["passwd", "shadow"]')"
	local id
	id=$(wait_new_run etc)
	expect_step_error "$id" s "is not the directory flowyfs made"
	[ ! -L "$mnt/artifacts/etc/shadow" ]
	[ ! -L "$mnt/artifacts/etc/passwd" ]
	no_shadow_artifact
}

@test "an absolute symlink out/shadow -> /etc/shadow fails the step" {
	write_step abs s "$(step_json 'ln -s /etc/shadow out/shadow' '["shadow"]')"
	local id
	id=$(wait_new_run abs)
	expect_step_error "$id" s "symlink points outside out/"
	no_shadow_artifact
}

@test "a relative symlink escaping out/ (../../../../../etc) fails the step" {
	write_step rel s "$(step_json 'ln -s ../../../../../etc out/x' '["x"]')"
	local id
	id=$(wait_new_run rel)
	expect_step_error "$id" s "symlink points outside out/"
	no_shadow_artifact
}

@test "a symlink to /etc/shadow nested in a directory output fails the step" {
	write_step nest s "$(step_json 'mkdir out/d; ln -s /etc/shadow out/d/s' '["d"]')"
	local id
	id=$(wait_new_run nest)
	expect_step_error "$id" s "symlink points outside out/"
	[ ! -L "$mnt/artifacts/nest/d" ]
	no_shadow_artifact
}

@test "the store directory is private: mode 0700" {
	expect_eq "$(stat -c %a "$store")" 700 "mode of the store"
}
