#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The one command for a lent GPU machine (weights/README.md, "Training on a lent GPU machine").
# Here, first: /usr/bin/python3 tools/gpu_pack.py (after a build), then the `run` tool with
#     command "bash tools/gpu_train.sh", carry ["gpu-pack"], timeout_s 600
# There, from the repository root, within DEADLINE_MIN minutes of its start:
#   1. proof (PROOF=1): unpacks the Vulkan loader, runs the engine's tests (gpu-pack/bin, built
#      here) on the GPU, then tools/bench_gpu.sh (st-bench and the same weights in PyTorch,
#      CUDA fp32/fp16) at SIZES, at most PROOF_S seconds in all;
#   2. trains STAGE (default efa) in weights/checkpoints (ST_CKPT_DIR) from gpu-pack/data and the packed
#      teacher for the minutes left, checkpointing every minute;
#   3. copies the stage's checkpoint, its log and the run's log to $OUT (each under 16 MiB).
# Back here: copy files_at/* into weights/checkpoints/ and weights/logs/, look at the log,
# commit. Checked here on the CPU with a tiny budget:
#     cp -r weights/checkpoints /tmp/gpu-ck && OUT=/tmp/gpu-out ST_CKPT_DIR=/tmp/gpu-ck \
#       ST_LOG_DIR=/tmp/gpu-out/logs ST_ALLOW_CPU=1 PYTHON=/usr/bin/python3 SIZES=160x120 \
#       DEADLINE_MIN=5 bash tools/gpu_train.sh
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
OUT=${OUT:-/tmp/gpu-out}
STAGE=${STAGE:-efa}
STEPS=${STEPS:-200000}
DEADLINE_MIN=${DEADLINE_MIN:-9}
PROOF=${PROOF:-1}
PROOF_S=${PROOF_S:-150}
SIZES=${SIZES:-640x360,1280x720,1920x1080}
PY=${PYTHON:-python3}
CKPT=${ST_CKPT_DIR:-weights/checkpoints}
LOGS=${ST_LOG_DIR:-weights/logs}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu.log") 2>&1
echo "gpu_train: $(date -u) stage $STAGE deadline ${DEADLINE_MIN} min, commit $(git rev-parse --short HEAD 2>/dev/null)"
if [ ! -d gpu-pack/data ]; then
  echo "gpu_train: gpu-pack/ is missing: run tools/gpu_pack.py here and carry gpu-pack" >&2
  exit 1
fi
if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  if [ -z "${ST_ALLOW_CPU:-}" ]; then
    echo "gpu_train: PyTorch sees no CUDA device (ST_ALLOW_CPU=1 trains on the CPU)" >&2
    exit 1
  fi
  echo "gpu_train: no CUDA device, training on the CPU (ST_ALLOW_CPU)"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null

if [ "$PROOF" = 1 ]; then
  if ! ldconfig -p | grep -q libvulkan.so.1; then
    for f in gpu-pack/gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -f "$icd" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then export VK_DRIVER_FILES=$icd; fi
  echo "== engine tests on the GPU"
  timeout $((PROOF_S * 2 / 3)) bash gpu-pack/bin/run-engine.sh 2>&1 | tail -n 60
  echo "engine tests: exit ${PIPESTATUS[0]}"
  echo "== tools/bench_gpu.sh ($SIZES)"
  left=$((PROOF_S - ($(date +%s) - T0)))
  if [ "$left" -gt 20 ]; then
    ST_BENCH=gpu-pack/bin/st-bench PYTHON=$PY SIZES=$SIZES FRAMES=10 \
      timeout "$left" bash tools/bench_gpu.sh "$OUT/bench-gpu.md" > /dev/null
    echo "bench_gpu: exit $?"
  fi
fi

left_s=$((DEADLINE_MIN * 60 - ($(date +%s) - T0) - 40))
if [ "$left_s" -lt 30 ]; then
  echo "gpu_train: no time left to train"
else
  echo "== training $STAGE for $((left_s / 60)) min $((left_s % 60)) s"
  # PyTorch >= 2.6 loads weights only by default; the checkpoints hold configs and optimizer state
  TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 ST_DATA=gpu-pack/data ST_TEACHER=gpu-pack/teacher.safetensors \
    PYTHONUNBUFFERED=1 "$PY" weights/train.py --stage "$STAGE" --steps "$STEPS" \
    --minutes "$(awk "BEGIN {print $left_s / 60}")" --ckpt-every 60 ${TRAIN_ARGS:-} 2>&1 | tail -n 30
  echo "train.py: exit ${PIPESTATUS[0]}"
fi
cp "$CKPT/$STAGE.pt" "$LOGS/$STAGE.log" "$OUT/" 2>/dev/null
ls -l "$OUT"
echo "gpu_train: done after $(($(date +%s) - T0)) s"
