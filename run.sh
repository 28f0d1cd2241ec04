#!/bin/bash
# Main job: install the dependencies, build, and stylize the bundled sample clip with the bundled
# default style. Usage: ./run.sh [OUTPUT.mp4]   (default: build/sample-stylized.mp4)
set -euo pipefail
cd "$(dirname "$0")"

tools/setup-debian.sh
if [ ! -f build/build.ninja ]; then
  meson setup build
fi
meson compile -C build

clip=$(ls examples/sample.* | head -n 1)
style=$(ls examples/default-style.* | head -n 1)
out=${1:-build/sample-stylized.mp4}
mkdir -p "$(dirname "$out")"

# meson devenv puts the plugin (build/gst) on GST_PLUGIN_PATH and the model (weights/) in
# ST_MODEL_PATH. The element accepts I420 directly; the videoconvert after it feeds the encoder.
meson devenv -C build --workdir "$PWD" \
  gst-launch-1.0 -e \
    filesrc location="$clip" ! decodebin ! videoconvert ! video/x-raw,format=I420 ! \
    styletransfer style="$style" ! videoconvert ! \
    avenc_mpeg4 bitrate=6000000 max-bframes=0 ! mp4mux ! filesink location="$out"

echo
echo "Stylized $clip with $style:"
echo "  $(realpath "$out")"
