#!/bin/sh
# Runs the training stages in order, each resuming from its checkpoint. A stage stops at its step
# budget or when its total training time (over all runs, kept in the checkpoint) reaches its
# minute budget, whichever comes first; a finished stage is skipped, so re-running this script
# continues where training stopped. Background, low priority:
#   nice -n 10 nohup weights/run_all.sh > weights/logs/run_all.out 2>&1 &
# MINUTES_SCALE (default 1) multiplies every minute budget (e.g. 3 for a longer run; on a GPU the
# step budgets are reached first). STEPS_SCALE likewise multiplies the step budgets.
set -e
cd "$(dirname "$0")"
PY=${PYTHON:-/usr/bin/python3}
MS=${MINUTES_SCALE:-1}
SS=${STEPS_SCALE:-1}
mkdir -p logs
run() { # stage steps minutes
  m=$(awk "BEGIN{print $3 * $MS}")
  n=$(awk "BEGIN{print int($2 * $SS)}")
  echo "== $(date +%T) stage $1: up to $n steps, $m minutes in total"
  $PY train.py --stage "$1" --steps "$n" --budget-minutes "$m"
}
run distill 3000 12
run efa 3000 30
run refine0 2000 20
run refine1 1500 20
run temporal 800 10
echo "== $(date +%T) done"
