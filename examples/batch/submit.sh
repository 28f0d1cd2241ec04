#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Submits examples/batch/stylize-array.sh as Slurm job arrays, one task per entry of LIST, and
# prints how to watch them. A list longer than the cluster's MaxArraySize (scontrol show config)
# is split into several arrays. Run the same command again to redo only what is missing or failed
# (the tasks of finished entries skip them).
#
# Usage: examples/batch/submit.sh LIST OUTDIR [STYLE] [-- SBATCH-OPTION...]
#   LIST, OUTDIR, STYLE   as for stylize-array.sh (checked before anything is submitted)
#   SBATCH-OPTION         passed to every sbatch, e.g. --partition=gpu --time=2:00:00 --wait
#                         (with --wait each array is waited for before the next is submitted)
# Environment:
#   ST_GRES            GPUs of each task (default gpu:1, sbatch --gres); empty for none
#   ST_ARRAY_PARALLEL  at most this many tasks of an array at once (sbatch --array=...%N)
#   and what stylize-array.sh reads (ST_PROPS, ST_SIZE, ST_BITRATE, ...), passed to the tasks.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
job=$here/stylize-array.sh

args=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  args+=("$1")
  shift
done
[ $# -eq 0 ] || shift
if [ ${#args[@]} -lt 2 ] || [ ${#args[@]} -gt 3 ]; then
  echo "usage: $0 LIST OUTDIR [STYLE] [-- SBATCH-OPTION...]" >&2
  exit 2
fi
for cmd in sbatch scontrol; do
  if ! command -v "$cmd" >/dev/null; then
    echo "submit.sh: $cmd not found: this needs the Slurm client commands (slurm-client); without" \
      "Slurm run $job ${args[*]}" >&2
    exit 2
  fi
done
# absolute paths: the tasks may start in another directory
for i in "${!args[@]}"; do
  args[i]=$(realpath -m "${args[$i]}")
done
outdir=${args[1]}
count=$("$job" --check "${args[@]}")
if [ "$count" -eq 0 ]; then
  echo "submit.sh: ${args[0]} has no entries: nothing to submit"
  exit 0
fi
mkdir -p "$outdir/logs"
max=$(scontrol show config | awk '$1 == "MaxArraySize" { print $3 }')
if [ -z "$max" ] || [ "$max" -lt 2 ]; then
  echo "submit.sh: could not read MaxArraySize from scontrol show config" >&2
  exit 1
fi
gres=${ST_GRES-gpu:1}
parallel=${ST_ARRAY_PARALLEL:+%$ST_ARRAY_PARALLEL}

ids=()
failed=0
# task ids go from 0 to MaxArraySize - 1: an array per MaxArraySize entries, each with its offset
for ((offset = 0; offset < count; offset += max)); do
  n=$((count - offset < max ? count - offset : max))
  status=0
  id=$(sbatch --parsable --array="0-$((n - 1))$parallel" ${gres:+--gres="$gres"} \
    --output="$outdir/logs/slurm-%A_%a.out" \
    --export="ALL,ST_ARRAY_OFFSET=$offset,ST_EXAMPLES_DIR=$(dirname "$here")" \
    "$@" "$job" "${args[@]}") || status=$?
  id=${id%%;*}
  if [ -z "$id" ]; then
    echo "submit.sh: sbatch failed for entries $offset-$((offset + n - 1))" >&2
    exit 1
  fi
  ids+=("$id")
  msg="submit.sh: job array $id: entries $offset-$((offset + n - 1))"
  if [ "$status" -ne 0 ]; then # only with --wait: a task failed
    msg+=", sbatch exit status $status"
    failed=1
  fi
  echo "$msg"
done

joined=$(
  IFS=,
  echo "${ids[*]}"
)
cat <<EOF
submit.sh: $count entries of ${args[0]} in ${#ids[@]} job array(s) (MaxArraySize $max): $joined
  tasks left:    squeue -r -j $joined
  files done:    ls $outdir/*.mp4 | wc -l     (of $count)
  per file:      $outdir/logs/NAME.log (every attempt; the last line says done, skipped or failed)
  failed now:    tail -qn1 $outdir/logs/*.log | grep ^failed
  per task:      $outdir/logs/slurm-JOB_TASK.out
  then:          the same command again redoes only what is missing or failed
EOF
exit $failed
