#!/usr/bin/env bash
# demo.sh - mount the default store on $MNT (default /mnt/flowy), copy the
# quickstart pipeline in, wait for its run and show where to look.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/build/flowyfs
mnt=${MNT:-/mnt/flowy}

mkdir -p "$mnt"
if ! grep -q " $mnt fuse.flowyfs " /proc/mounts; then
	"$bin" "$mnt"
fi
before=$(readlink "$mnt/runs/latest" 2>/dev/null || echo 0)
rm -rf "$mnt/pipelines/quickstart"
cp -r "$here/examples/quickstart" "$mnt/pipelines/quickstart"
echo "pipeline status:"; sed 's/^/  /' "$mnt/pipelines/quickstart/.status"

# The change window is short; wait for the run it queued to finish.
for _ in $(seq 1 100); do
	run=$(readlink "$mnt/runs/latest" 2>/dev/null || echo 0)
	if [ "$run" -gt "$before" ] && [ "$(cat "$mnt/runs/$run/pipeline")" = quickstart ]; then
		case $(cat "$mnt/runs/$run/status") in
		succeeded | failed | cancelled | interrupted) break ;;
		esac
	fi
	sleep 0.1
done
echo
echo "run $run: $(cat "$mnt/runs/$run/status")"
column -t -s "$(printf '\t')" "$mnt/runs/$run/summary" | sed 's/^/  /'
echo
echo "top words (cat $mnt/artifacts/quickstart/top.txt):"
sed 's/^/  /' "$mnt/artifacts/quickstart/top.txt"
cat <<MSG

Look around:
  ls $mnt/artifacts/quickstart/            latest outputs (symlinks by hash)
  ls $mnt/artifacts/quickstart/shards/     a directory output
  cat $mnt/runs/latest/steps/count/log     a step's log
  cat $mnt/pipelines/quickstart/.dag       the graph
  echo run > $mnt/pipelines/quickstart/.ctl   run again (all cached)
Stop with: fusermount3 -u $mnt
MSG
