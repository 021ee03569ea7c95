#!/usr/bin/env bash
# A Pi owner's install, checked as it is done: a regular (non-editable) `pip install ".[camera,mqtt]"` into its own
# venv, then `classify`, `watch` on a real video file and the daemon for a few seconds, run outside the checkout
# so that nothing is imported from the source tree.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "$repo[camera,mqtt]"
py="$work/venv/bin/python"
cd "$work"
"$py" - <<'PY'
import importlib.util, sys
for name in ("tensorflow", "keras"):
    assert importlib.util.find_spec(name) is None, f"{name} must not be installed by the device install"
import flowercam, flowercam.sources  # noqa: E401
assert "site-packages" in flowercam.__file__, flowercam.__file__
PY
"$work/venv/bin/flowercam" classify "$repo/device/flowercam/samples/image_01315.jpg"
"$py" - "$repo/device/flowercam/samples/image_01315.jpg" "$work/garden.avi" <<'PY'
import sys
import cv2
frame = cv2.resize(cv2.imread(sys.argv[1]), (160, 120))
writer = cv2.VideoWriter(sys.argv[2], cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
for _ in range(30):
    writer.write(frame)
writer.release()
PY
"$work/venv/bin/flowercam" watch --source "$work/garden.avi" --max-frames 3 --fps 50
cat > "$work/flowercam.toml" <<TOML
[source]
uri = "$work/garden.avi"
fps = 10
loop = true
[events]
file = "$work/events.jsonl"
heartbeat_s = 1.0
snapshot_dir = ""
TOML
"$work/venv/bin/flowercam" daemon --config "$work/flowercam.toml" > "$work/daemon.out" 2>&1 &
pid=$!
sleep 6
kill -TERM "$pid"
wait "$pid" || { echo "user install: the daemon exited with $?" >&2; cat "$work/daemon.out" >&2; exit 1; }
grep -q '"event": "label"' "$work/events.jsonl" || grep -q '"label"' "$work/events.jsonl" \
  || { echo "user install: the daemon wrote no label event" >&2; cat "$work/daemon.out" >&2; exit 1; }
"$work/venv/bin/build-models" train tiny --data "$work" >/dev/null 2>"$work/bm.err" && exit_bm=0 || exit_bm=$?
[ "$exit_bm" -eq 2 ] && [ "$(wc -l < "$work/bm.err")" -eq 1 ] && grep -q "\[build\]" "$work/bm.err" \
  || { echo "user install: build-models without the [build] extra should say so in one line" >&2; cat "$work/bm.err" >&2; exit 1; }
echo "user install: classify, watch, daemon and build-models checked in a regular install"
