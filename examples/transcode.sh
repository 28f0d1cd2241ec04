#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Stylizes a video file into a new file, printing the progress every second.
#
# Usage: examples/transcode.sh [INPUT] [OUTPUT] [STYLE]
#   INPUT   video file (default: examples/sample.mkv)
#   OUTPUT  file to write (default: sample-stylized.mp4); the extension picks the format:
#           .mp4/.m4v/.mov: H.264 in MP4 (x264enc + mp4mux, gstreamer1.0-plugins-ugly)
#           .mkv: H.264 in Matroska   .webm: VP8 in WebM (vp8enc + webmmux, plugins-good)
#   STYLE   style image (default: examples/default-style.jpg)
# Only the video is kept (no audio).
# Environment:
#   ST_PROPS     more styletransfer properties, e.g. "processing-size=512 steps=3"
#   ST_SIZE      scale the video to WIDTHxHEIGHT first, e.g. 320x240 (default: keep the size)
#   ST_BITRATE   video bitrate in bit/s (default: 2000000)
#   GST_LAUNCH   the launcher (default: gst-launch-1.0)
# The plugin must be installed or on GST_PLUGIN_PATH (`meson devenv -C build` sets that up).
# Ctrl-C stops early and still writes a playable file.
set -eu
set -f
here=$(cd "$(dirname "$0")" && pwd)
input=${1:-$here/sample.mkv}
output=${2:-sample-stylized.mp4}
style=${3:-$here/default-style.jpg}
bitrate=${ST_BITRATE:-2000000}

# H.264 4:2:0 (I420, the main/high profile every player decodes); x264enc takes kbit/s.
h264="video/x-raw,format=I420 ! x264enc bitrate=$((bitrate / 1000)) speed-preset=faster"
case "$output" in
*.mp4 | *.m4v | *.mov) encode="$h264 ! mp4mux" ;;
*.mkv) encode="$h264 ! matroskamux" ;;
*.webm) encode="vp8enc target-bitrate=$bitrate deadline=1 ! webmmux" ;;
*)
  echo "transcode.sh: unknown output format \"$output\": use .mp4, .m4v, .mov, .mkv or .webm" >&2
  exit 2
  ;;
esac
if [ ! -f "$input" ]; then
  echo "transcode.sh: input \"$input\" does not exist" >&2
  exit 1
fi
scale=""
if [ -n "${ST_SIZE:-}" ]; then
  w=${ST_SIZE%x*}
  h=${ST_SIZE#*x}
  scale="videoscale ! video/x-raw,width=$w,height=$h,pixel-aspect-ratio=1/1 !"
fi

# progressreport queries the position upstream (what has been stylized) and prints it.
# shellcheck disable=SC2086
${GST_LAUNCH:-gst-launch-1.0} -e filesrc "location=$input" ! decodebin ! videoconvert \
  ! $scale styletransfer "style=$style" ${ST_PROPS:-} \
  ! progressreport update-freq=1 ! videoconvert ! $encode ! filesink "location=$output"
echo "transcode.sh: wrote $output"
