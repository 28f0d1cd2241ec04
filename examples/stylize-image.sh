#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Stylizes one image (or the first frame of a video) and writes it as PNG.
#
# Usage: examples/stylize-image.sh [INPUT] [OUTPUT] [STYLE]
#   INPUT   image (any format GStreamer decodes) or video (default: examples/sample.mkv,
#           its first frame)
#   OUTPUT  PNG file to write (default: stylized.png)
#   STYLE   style image (default: examples/default-style.jpg)
# Environment:
#   ST_PROPS    more styletransfer properties; for a still image more refinement steps pay off,
#               e.g. "steps=6 processing-size=512"
#   GST_LAUNCH  the launcher (default: gst-launch-1.0)
# The plugin must be installed or on GST_PLUGIN_PATH (`meson devenv -C build` sets that up).
set -eu
set -f
here=$(cd "$(dirname "$0")" && pwd)
input=${1:-$here/sample.mkv}
output=${2:-stylized.png}
style=${3:-$here/default-style.jpg}
if [ ! -f "$input" ]; then
  echo "stylize-image.sh: input \"$input\" does not exist" >&2
  exit 1
fi

# imagefreeze num-buffers=1 turns the decoded image into exactly one timed video frame.
# shellcheck disable=SC2086
${GST_LAUNCH:-gst-launch-1.0} -q filesrc "location=$input" ! decodebin ! videoconvert \
  ! imagefreeze num-buffers=1 ! styletransfer "style=$style" ${ST_PROPS:-} \
  ! videoconvert ! pngenc ! filesink "location=$output"
echo "stylize-image.sh: wrote $output"
