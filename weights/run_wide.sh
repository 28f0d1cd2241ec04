#!/bin/bash
# The wide-encoder line (issue 13): f1/f2/f3 of 32/64/128 channels (decoders 64/32) instead of
# 16/32/64, so that the closed-form chain matches more of the teacher's channels at each level.
# Distillation from scratch, the chain's three reconstruction decoders, then the refinement
# steps on the chain's x0 (refine0, refine1, temporal; the chain is their initial image); each
# stage stops at its budget of minutes (all runs together) and is resumable (run this again to
# go on), checkpoints in weights/checkpoints/wide/, logs in weights/logs/wide/.
#   nohup nice -n 10 weights/run_wide.sh DISTILL_MIN CHAIN_MIN [REFINE0_MIN REFINE1_MIN
#     TEMPORAL_MIN] >> weights/logs/wide/run.out 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
export ST_CKPT_DIR=weights/checkpoints/wide ST_LOG_DIR=weights/logs/wide
arch='{"enc": [32, 64, 128], "dec": [64, 32]}'
distill_min=${1:-50}
chain_min=${2:-60}
refine_min=("${3:-0}" "${4:-0}" "${5:-0}")
if [ -f "$ST_CKPT_DIR/distill.pt" ]; then arch_opt=(); else arch_opt=(--arch "$arch"); fi
/usr/bin/python3 weights/train.py --stage distill --steps 100000 --budget-minutes "$distill_min" \
  "${arch_opt[@]}"
/usr/bin/python3 weights/train.py --stage chain --steps 100000 --budget-minutes "$chain_min"
stages=(refine0 refine1 temporal)
for i in 0 1 2; do
  [ "${refine_min[$i]}" != 0 ] || break
  st=${stages[$i]}
  if [ -f "$ST_CKPT_DIR/$st.pt" ]; then init_opt=(); else init_opt=(--initial chain); fi
  /usr/bin/python3 weights/train.py --stage "$st" --steps 100000 --budget-minutes "${refine_min[$i]}" \
    "${init_opt[@]}"
done
