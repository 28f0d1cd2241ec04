#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Shows the original (left) and the stylized video (right) side by side: tee + compositor.
#
# Usage: examples/side-by-side.sh [INPUT] [STYLE]
#   INPUT   video file (default: examples/sample.mkv)
#   STYLE   style image (default: examples/default-style.jpg)
# Environment:
#   ST_SRC      source, a gst-launch description replacing the file, e.g. "v4l2src" for a webcam
#   ST_SINK     sink description (default: autovideosink)
#   ST_SIZE     size of each half, WIDTHxHEIGHT (default: 480x360)
#   ST_PROPS    more styletransfer properties, e.g. "steps=1"
#   GST_LAUNCH  the launcher (default: gst-launch-1.0)
# The plugin must be installed or on GST_PLUGIN_PATH (`meson devenv -C build` sets that up).
set -eu
set -f
here=$(cd "$(dirname "$0")" && pwd)
input=${1:-$here/sample.mkv}
style=${2:-$here/default-style.jpg}
size=${ST_SIZE:-480x360}
w=${size%x*}
h=${size#*x}
if [ -z "${ST_SRC:-}" ] && [ ! -f "$input" ]; then
  echo "side-by-side.sh: input \"$input\" does not exist" >&2
  exit 1
fi
sink=${ST_SINK:-autovideosink}
if [ -n "${ST_SRC:-}" ]; then
  # shellcheck disable=SC2086
  set -- $ST_SRC
else
  set -- filesrc "location=$input" ! decodebin
fi

# The original goes to the compositor's sink_0 at x=0, the stylized copy to sink_1 at x=WIDTH.
# shellcheck disable=SC2086
exec ${GST_LAUNCH:-gst-launch-1.0} -e "$@" ! videoconvert ! videoscale \
  ! "video/x-raw,width=$w,height=$h,pixel-aspect-ratio=1/1" ! tee name=t \
  t. ! queue ! videoconvert ! comp.sink_0 \
  t. ! queue ! styletransfer "style=$style" ${ST_PROPS:-} ! videoconvert ! comp.sink_1 \
  compositor name=comp sink_0::xpos=0 "sink_1::xpos=$w" ! videoconvert ! $sink
