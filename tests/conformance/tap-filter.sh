#!/bin/sh
# tap-filter.sh TEST - prove's --exec for run.sh: runs one pjdfstest .t
# file and turns the assertions excluded in $CONFORMANCE_EXCLUDE (lines
# "group/NN.t" or "group/NN.t:1,4-6", from docs/conformance.md; a file may
# have several lines) into "ok N # SKIP", whatever their outcome; a
# whole-file exclusion is a skipped plan. Other lines pass through.
t=$1
name=$(basename "$(dirname "$t")")/$(basename "$t")
specs=$(grep -E "^${name%.t}\\.t(:|\$)" "${CONFORMANCE_EXCLUDE:-/dev/null}")
if printf '%s\n' "$specs" | grep -qxF "$name"; then
	echo "1..0 # SKIP excluded in docs/conformance.md"
	exit 0
fi
# A file's assertions may be listed over several lines.
nums=$(printf '%s\n' "$specs" | sed -n "s|^$name:||p" | paste -sd, -)
sh "$t" 2>&1 | awk -v nums="$nums" '
BEGIN {
	n = split(nums, r, ",")
	for (i = 1; i <= n; i++) {
		if (split(r[i], ab, "-") == 2)
			for (j = ab[1]; j <= ab[2]; j++) skip[j] = 1
		else if (r[i] != "")
			skip[r[i]] = 1
	}
}
/^(not )?ok [0-9]+/ {
	k = ($1 == "not") ? $3 : $2
	if (k in skip) {
		print "ok " k " # SKIP excluded in docs/conformance.md"
		next
	}
}
{ print }
'
