#!/bin/bash
# Installs the Debian 12 packages needed to build, test and run styletransfer.
# (clang-14 and libclang-rt-14-dev, libFuzzer's runtime: only a recommendation of clang-14, are
# for tools/fuzz.sh.)
# Used by ./run.sh, .ci/run and the README. Safe to run again (apt-get skips what is installed).
set -euo pipefail

PACKAGES=(
  build-essential meson ninja-build pkg-config python3
  glslc libvulkan-dev mesa-vulkan-drivers vulkan-validationlayers
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-libav
  python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
  slurmctld slurmd slurm-client
  clang-14 libclang-rt-14-dev
)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  SUDO=(sudo)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-debian: all ${#PACKAGES[@]} packages are installed"
  exit 0
fi
echo "setup-debian: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
