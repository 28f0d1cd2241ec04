#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# One command for the GPU figures of the README: builds ($BUILD, default build/), runs the
# engine's table (st-bench --table, fp32 and fp16) and the same model in PyTorch (CUDA fp32 and
# fp16 eager when CUDA is available, else CPU fp32), and writes both tables as Markdown.
#
#   tools/bench_gpu.sh [OUT.md]        (default: $BUILD/bench-gpu.md)
#
# Environment: SIZES (default 320x240,640x360,1280x720,1920x1080), FRAMES (default 10),
# STEPS_MAX (default 3), DEVICE (st-bench --device index, default: the element's choice),
# PYTHON (default /usr/bin/python3), MODEL (default weights/styletransfer.safetensors),
# ST_BENCH (an st-bench built elsewhere, e.g. gpu-pack/bin/st-bench on a machine with no
# toolchain: then nothing is built).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${1:-$BUILD/bench-gpu.md}
SIZES=${SIZES:-320x240,640x360,1280x720,1920x1080}
FRAMES=${FRAMES:-10}
STEPS_MAX=${STEPS_MAX:-3}
PYTHON=${PYTHON:-/usr/bin/python3}
MODEL=${MODEL:-weights/styletransfer.safetensors}

BENCH=${ST_BENCH:-}
if [ -z "$BENCH" ]; then
  if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" >&2
  fi
  meson compile -C "$BUILD" >&2
  BENCH=$BUILD/compute/st-bench
fi
mkdir -p "$(dirname "$OUT")"

dev_arg=""
if [ -n "${DEVICE:-}" ]; then dev_arg="--device $DEVICE"; fi

tmp_engine=$(mktemp)
tmp_torch=$(mktemp)
trap 'rm -f "$tmp_engine" "$tmp_torch"' EXIT

echo "== engine: st-bench --table ($SIZES, steps 0..$STEPS_MAX, $FRAMES frames)" >&2
# shellcheck disable=SC2086
"$BENCH" "$MODEL" --table --fp16 both --sizes "$SIZES" \
  --steps-max "$STEPS_MAX" --frames "$FRAMES" $dev_arg > "$tmp_engine"

if "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null
then
  torch_args="--device cuda --fp16 both"
else
  echo "== PyTorch: no CUDA, timing the CPU (fp32)" >&2
  torch_args="--device cpu --fp16 no"
fi
echo "== PyTorch: tools/bench_torch_model.py $torch_args" >&2
# shellcheck disable=SC2086
if ! "$PYTHON" tools/bench_torch_model.py --model "$MODEL" $torch_args --sizes "$SIZES" \
     --steps-max "$STEPS_MAX" --frames "$FRAMES" > "$tmp_torch"; then
  echo "(PyTorch benchmark failed or PyTorch is not installed)" > "$tmp_torch"
fi

{
  echo "# GPU benchmark ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown))"
  echo
  if command -v nvidia-smi > /dev/null 2>&1; then
    echo "GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)"
    echo
  fi
  echo "## Engine"
  echo
  cat "$tmp_engine"
  echo
  echo "## PyTorch"
  echo
  cat "$tmp_torch"
} > "$OUT"
echo "wrote $OUT" >&2
cat "$OUT"
