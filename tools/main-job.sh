#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The main job's work, after ./run.sh has installed and built everything: stylizes the bundled
# sample clip with the bundled default style into an H.264 MP4 (examples/transcode.sh, which
# prints the progress every second), then reads the file back with GStreamer and fails unless it
# decodes to the input's frame count with strictly increasing timestamps and the input's duration
# (tools/check_video.py). Prints the output's duration, frame count, size and the wall time.
# Usage: tools/main-job.sh [OUTPUT.mp4]   (default: build/sample-stylized.mp4)
# Environment: as examples/transcode.sh (ST_PROPS, ST_SIZE, ST_BITRATE, GST_LAUNCH), and ST_INPUT
# (another clip instead of the bundled one: the tests use a short one);
# the plugin and the model must be found (./run.sh runs this inside `meson devenv -C build`).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

clip=${ST_INPUT:-$(ls "$here"/examples/sample.* | head -n 1)}
style=$(ls "$here"/examples/default-style.* | head -n 1)
out=${1:-$here/build/sample-stylized.mp4}
mkdir -p "$(dirname "$out")"
rm -f "$out"
export ST_BITRATE=${ST_BITRATE:-6000000}

echo "Stylizing $clip with $style (progress every second: position / length of the input)"
start=$(date +%s%N)
"$here/examples/transcode.sh" "$clip" "$out" "$style"
ms=$((($(date +%s%N) - start) / 1000000))

check=(/usr/bin/python3 "$here/tools/check_video.py" "$out" --like "$clip")
if [ -n "${ST_SIZE:-}" ]; then
  check+=(--size "$ST_SIZE")
fi
if ! summary=$("${check[@]}"); then
  echo "main-job: $out was written but does not play correctly (see above)" >&2
  exit 1
fi
bytes=$(stat -c %s "$out")
echo
echo "Stylized $clip with $style in $((ms / 1000)).$((ms % 1000 / 100)) s:"
echo "  $(realpath "$out")"
echo "  ${summary#"$out": }, $((bytes / 1024)) KiB"
