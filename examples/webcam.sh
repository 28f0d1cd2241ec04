#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Stylizes a webcam live and shows it in a window.
#
# Usage: examples/webcam.sh [STYLE] [DEVICE]
#   STYLE   style image (default: examples/default-style.jpg)
#   DEVICE  V4L2 device (default: /dev/video0)
# Environment:
#   ST_SRC      source, a gst-launch description replacing the webcam
#               (default: "v4l2src device=DEVICE ! queue max-size-buffers=1 leaky=downstream",
#               the queue drops frames while the filter is busy, so the picture stays current)
#   ST_SINK     sink description (default: autovideosink)
#   ST_CONVERT  1: a videoconvert in front of the element, for a camera whose formats the element
#               does not take (the element takes YUY2, UYVY, YVYU, NV12, I420, RGB, BGR, RGBx...
#               straight from v4l2src; a camera giving only MJPG needs
#               ST_SRC="v4l2src ! image/jpeg ! jpegdec" instead, jpegdec gives I420)
#   ST_PROPS    more styletransfer properties, e.g. "processing-size=320 steps=1"
#   GST_LAUNCH  the launcher (default: gst-launch-1.0)
# The plugin must be installed or on GST_PLUGIN_PATH (`meson devenv -C build` sets that up).
# Headless, a few frames:
#   ST_SRC="videotestsrc num-buffers=10" ST_SINK=fakesink examples/webcam.sh
set -eu
set -f # descriptions are split into words but never globbed
here=$(cd "$(dirname "$0")" && pwd)
style=${1:-$here/default-style.jpg}
device=${2:-/dev/video0}
src=${ST_SRC:-v4l2src device=$device ! queue max-size-buffers=1 leaky=downstream}
sink=${ST_SINK:-autovideosink}

# No conversion in front by default: the element converts the camera's YUY2 (or NV12, ...) on
# the GPU. The videoconvert after it passes the frames through untouched when the sink takes the
# camera's format (most do), and converts them only for one that does not.
front=
if [ "${ST_CONVERT:-0}" = 1 ]; then
  front="! videoconvert"
fi

# shellcheck disable=SC2086 # word splitting of the descriptions is intended
exec ${GST_LAUNCH:-gst-launch-1.0} -e $src $front \
  ! styletransfer "style=$style" ${ST_PROPS:-} \
  ! videoconvert ! $sink
