#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Paints only the background of a video: the style where a mask image is white, the original
# picture where it is black (mask-source=image), written as a Matroska H.264 file. With STYLE2,
# two styles in one frame: STYLE where the mask is white, STYLE2 where it is black (style-2; the
# network aligns each region to its own style).
#
# Usage: examples/paint-background.sh [INPUT] [OUTPUT.mkv] [MASK] [STYLE] [STYLE2]
#   INPUT   video file (default: examples/sample.mkv)
#   OUTPUT  Matroska file to write (default: background.mkv)
#   MASK    mask image, any size and any format GStreamer decodes (grey levels blend; default:
#           examples/sample-background-mask.png, everything but the person in the sample clip)
#   STYLE   style image (default: examples/default-style.jpg)
#   STYLE2  second style image, where the mask is black (default: none, the original picture)
# Environment:
#   ST_PROPS    more styletransfer properties, e.g. "steps=3"
#   GST_LAUNCH  the launcher (default: gst-launch-1.0)
# The plugin must be installed or on GST_PLUGIN_PATH (`meson devenv -C build` sets that up).
set -eu
set -f
here=$(cd "$(dirname "$0")" && pwd)
input=${1:-$here/sample.mkv}
output=${2:-background.mkv}
mask=${3:-$here/sample-background-mask.png}
style=${4:-$here/default-style.jpg}
style2=${5:-}
for f in "$input" "$mask" ${style2:+"$style2"}; do
  if [ ! -f "$f" ]; then
    echo "paint-background.sh: \"$f\" does not exist" >&2
    exit 1
  fi
done

# the mask is scaled to every frame by the element; videoconvert before x264enc gives it I420
# shellcheck disable=SC2086
${GST_LAUNCH:-gst-launch-1.0} -q filesrc "location=$input" ! decodebin ! videoconvert \
  ! styletransfer "style=$style" ${style2:+"style-2=$style2"} mask-source=image "mask=$mask" \
  ${ST_PROPS:-} \
  ! videoconvert ! x264enc tune=zerolatency speed-preset=veryfast ! matroskamux \
  ! filesink "location=$output"
echo "paint-background.sh: wrote $output"
