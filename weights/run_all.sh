#!/bin/sh
# Runs the training stages in order, resuming each from its checkpoint. A stage stops at its step
# budget or after its minutes for this invocation, whichever comes first; a finished stage is
# skipped. Usage (background, low priority):
#   nice -n 10 nohup weights/run_all.sh > weights/logs/run_all.out 2>&1 &
# Environment: MINUTES_SCALE (default 1) multiplies every stage's minutes (e.g. 0 = no time limit).
set -e
cd "$(dirname "$0")"
PY=${PYTHON:-/usr/bin/python3}
SCALE=${MINUTES_SCALE:-1}
mkdir -p logs
run() { # stage steps minutes
  m=$(awk "BEGIN{print $3 * $SCALE}")
  echo "== $(date +%T) stage $1: up to $2 steps, $m minutes"
  $PY train.py --stage "$1" --steps "$2" --minutes "$m"
}
run distill 3000 15
run efa 3000 35
run refine0 2000 25
run refine1 1500 25
run temporal 800 15
echo "== $(date +%T) done"
