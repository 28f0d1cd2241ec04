#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Paints only the faces of a video: OpenCV's facedetect (gstreamer1.0-opencv) attaches a
# GstVideoRegionOfInterestMeta "face" to every frame for every face it finds, and the element
# styles those rectangles with soft edges (mask-source=roi roi-types=face); the rest stays the
# original picture. Written as a Matroska H.264 file.
#
# Usage: examples/paint-faces.sh [INPUT] [OUTPUT.mkv] [STYLE]
#   INPUT   video file (default: examples/sample.mkv)
#   OUTPUT  Matroska file to write (default: faces.mkv)
#   STYLE   style image (default: examples/default-style.jpg)
# Environment:
#   ST_FEATHER  soft edge around each face in pixels (default: 24)
#   ST_PROPS    more styletransfer properties, e.g. "steps=3"
#   GST_LAUNCH  the launcher (default: gst-launch-1.0)
# The plugin must be installed or on GST_PLUGIN_PATH (`meson devenv -C build` sets that up).
set -eu
set -f
here=$(cd "$(dirname "$0")" && pwd)
input=${1:-$here/sample.mkv}
output=${2:-faces.mkv}
style=${3:-$here/default-style.jpg}
if [ ! -f "$input" ]; then
  echo "paint-faces.sh: input \"$input\" does not exist" >&2
  exit 1
fi
if ! gst-inspect-1.0 facedetect > /dev/null 2>&1; then
  echo "paint-faces.sh: the facedetect element is missing (Debian/Ubuntu: apt install" \
    "gstreamer1.0-opencv)" >&2
  exit 3
fi

# facedetect reads RGB; display=false leaves the picture untouched (no drawn ellipses)
# shellcheck disable=SC2086
${GST_LAUNCH:-gst-launch-1.0} -q filesrc "location=$input" ! decodebin ! videoconvert \
  ! facedetect display=false ! videoconvert ! styletransfer "style=$style" mask-source=roi \
  roi-types=face "feather=${ST_FEATHER:-24}" ${ST_PROPS:-} \
  ! videoconvert ! x264enc tune=zerolatency speed-preset=veryfast ! matroskamux \
  ! filesink "location=$output"
echo "paint-faces.sh: wrote $output"
