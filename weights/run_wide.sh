#!/bin/bash
# The wide-encoder line (issue 13): f1/f2/f3 of 32/64/128 channels (decoders 64/32) instead of
# 16/32/64, so that the closed-form chain matches more of the teacher's channels at each level.
# Distillation from scratch, then the chain's three reconstruction decoders; both resumable (run
# this again to go on), checkpoints in weights/checkpoints/wide/, logs in weights/logs/wide/.
#   nohup nice -n 10 weights/run_wide.sh DISTILL_MIN CHAIN_MIN >> weights/logs/wide/run.out 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
export ST_CKPT_DIR=weights/checkpoints/wide ST_LOG_DIR=weights/logs/wide
arch='{"enc": [32, 64, 128], "dec": [64, 32]}'
distill_min=${1:-50}
chain_min=${2:-60}
if [ -f "$ST_CKPT_DIR/distill.pt" ]; then arch_opt=(); else arch_opt=(--arch "$arch"); fi
/usr/bin/python3 weights/train.py --stage distill --steps 100000 --budget-minutes "$distill_min" \
  "${arch_opt[@]}"
/usr/bin/python3 weights/train.py --stage chain --steps 100000 --budget-minutes "$chain_min"
