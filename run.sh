#!/bin/bash
# Main job: install the dependencies, build, and stylize the bundled sample clip with the bundled
# default style into an H.264 MP4, then check that the file plays (tools/main-job.sh).
# Usage: ./run.sh [OUTPUT.mp4]   (default: build/sample-stylized.mp4)
set -euo pipefail
cd "$(dirname "$0")"

tools/setup-debian.sh
if [ ! -f build/build.ninja ]; then
  meson setup build
fi
meson compile -C build

# meson devenv puts the plugin (build/gst) on GST_PLUGIN_PATH and the model (weights/) in
# ST_MODEL_PATH.
meson devenv -C build --workdir "$PWD" tools/main-job.sh "$@"
