#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Stylizes the videos of a list: one per task of a Slurm job array (examples/batch/submit.sh
# submits it), or every one in turn when run by hand, without a scheduler.
#
# Usage: stylize-array.sh LIST OUTDIR [STYLE]
#        stylize-array.sh --check LIST OUTDIR [STYLE]   check the list, print its number of entries
#   LIST    one input video per line; a tab and an image after the path give that video its own
#           style; blank lines and lines starting with # are skipped; relative paths are relative
#           to the list's directory
#   OUTDIR  gets NAME.mp4 for each input NAME.* (H.264, examples/transcode.sh) and logs/NAME.log,
#           the log of every attempt at that input, each ending in a line "done: ...",
#           "skipped: ..." or "failed: ..."
#   STYLE   style image of the entries without their own
# The entry: ST_ARRAY_OFFSET (default 0) + SLURM_ARRAY_TASK_ID under Slurm, + JOB_COMPLETION_INDEX
# in a Kubernetes Indexed Job (0-based); with neither, every entry in turn.
# An entry is skipped when OUTDIR/NAME.mp4 exists and plays like its input (tools/check_video.py:
# frame count, timestamps, duration), so a resubmitted or requeued array redoes only what is
# missing. Otherwise it is written to OUTDIR/.NAME.part.mp4, checked the same way and only then
# renamed to OUTDIR/NAME.mp4: a task killed halfway never leaves a file that looks finished.
# Device: the element's device-id is ST_DEVICE_ID when set; else the UUID of the GPU the scheduler
# allocated to the task, the first one of CUDA_VISIBLE_DEVICES, GPU_DEVICE_ORDINAL or SLURM_JOB_GPUS
# (an index, or a UUID "GPU-..." used as it is), looked up with nvidia-smi (the Vulkan loader
# ignores those variables, so an index would mean another GPU); with no GPU allocated, or no
# nvidia-smi, the element chooses the device itself (the log says so).
# Exit status: 0 when every entry of the task is done or skipped, 1 when one failed, 2 on bad usage.
# Environment: ST_PROPS, ST_SIZE, ST_BITRATE (see transcode.sh), ST_DEVICE_ID, ST_ARRAY_OFFSET,
#   ST_EXAMPLES_DIR (the examples/ directory; needed when Slurm runs a copy of this script, which
#   submit.sh sets), GST_LAUNCH.
#SBATCH --job-name=stylize
#SBATCH --requeue
set -euo pipefail

usage() {
  echo "usage: $0 [--check] LIST OUTDIR [STYLE]" >&2
  exit 2
}
check_only=false
if [ "${1:-}" = "--check" ]; then
  check_only=true
  shift
fi
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  usage
fi
list=$1
outdir=$2
default_style=${3:-}

examples=${ST_EXAMPLES_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
transcode=$examples/transcode.sh
check_video=$examples/../tools/check_video.py
if [ ! -x "$transcode" ] || [ ! -x "$check_video" ]; then
  echo "stylize-array.sh: $transcode or $check_video not found: set ST_EXAMPLES_DIR to the" \
    "examples/ directory of a styletransfer source tree" >&2
  exit 2
fi
if [ ! -f "$list" ] || [ ! -r "$list" ]; then
  echo "stylize-array.sh: the list \"$list\" does not exist or cannot be read" >&2
  exit 2
fi
list_dir=$(cd "$(dirname "$list")" && pwd)

# The entries, one per line: INPUT<TAB>NAME<TAB>STYLE, paths made absolute, STYLE defaulted, NAME
# the input's file name without its extension.
entries() {
  awk -F'\t' -v dir="$list_dir" -v style="$default_style" '
    function abs(p) { return (p ~ /^\// || p == "") ? p : dir "/" p }
    /^[[:space:]]*(#|$)/ { next }
    { n = $1; sub(/.*\//, "", n); if (n ~ /.\./) sub(/\.[^.]*$/, "", n)
      print abs($1) "\t" n "\t" ((NF > 1 && $2 != "") ? abs($2) : style) }' "$list"
}

# Entries that cannot be done whatever the files hold, as lines NAME<TAB>why: two inputs with one
# output name, no style.
list_conflicts() {
  entries | awk -F'\t' '
    { if ($2 in seen) print $2 "\tentries " seen[$2] " and " NR - 1 " are both written to " $2 ".mp4"
      seen[$2] = NR - 1
      if ($3 == "") print $2 "\tentry " NR - 1 " (" $1 ") has no style: give STYLE or one in the list" }'
}

if $check_only; then
  problems=$(
    list_conflicts | cut -f 2-
    entries | while IFS=$'\t' read -r input _ style; do
      [ -f "$input" ] || echo "input \"$input\" does not exist"
      [ -z "$style" ] || [ -f "$style" ] || echo "style \"$style\" does not exist"
    done
  )
  if [ -n "$problems" ]; then
    echo "stylize-array.sh: $list:" >&2
    echo "  ${problems//$'\n'/$'\n'  }" >&2
    exit 1
  fi
  entries | wc -l
  exit 0
fi
conflicts=$(list_conflicts)

# Prints the device-id for this task's GPU ("" for the element's own choice); says why on stderr.
device_id() {
  if [ -n "${ST_DEVICE_ID:-}" ]; then
    echo "device: ST_DEVICE_ID=$ST_DEVICE_ID" >&2
    echo "$ST_DEVICE_ID"
    return
  fi
  local var gpu="" rows row
  for var in CUDA_VISIBLE_DEVICES GPU_DEVICE_ORDINAL SLURM_JOB_GPUS; do
    if [ -n "${!var:-}" ]; then
      gpu=${!var%%,*}
      break
    fi
  done
  if [ -z "$gpu" ]; then
    echo "device: no GPU allocated (CUDA_VISIBLE_DEVICES, GPU_DEVICE_ORDINAL, SLURM_JOB_GPUS" \
      "unset): the element chooses" >&2
    return
  fi
  case $gpu in
  GPU-*)
    echo "device: $var=$gpu, a UUID: device-id=$gpu" >&2
    echo "$gpu"
    return
    ;;
  esac
  if ! command -v nvidia-smi >/dev/null; then
    echo "device: GPU $gpu allocated ($var) but no nvidia-smi to find its UUID: the element" \
      "chooses (set ST_DEVICE_ID to select it)" >&2
    return
  fi
  if ! rows=$(nvidia-smi --query-gpu=index,uuid,pci.bus_id --format=csv,noheader 2>&1); then
    echo "device: nvidia-smi failed ($rows): the element chooses" >&2
    return
  fi
  # a task confined to its GPUs (cgroup ConstrainDevices) sees only them, numbered from 0
  if [ "$(echo "$rows" | wc -l)" -eq 1 ]; then
    row=$rows
  else
    row=$(echo "$rows" | awk -F', *' -v i="$gpu" '$1 == i')
  fi
  if [ -z "$row" ]; then
    echo "device: nvidia-smi lists no GPU $gpu ($var): the element chooses" >&2
    return
  fi
  local uuid pci
  uuid=$(echo "$row" | awk -F', *' '{print $2}')
  pci=$(echo "$row" | awk -F', *' '{print $3}')
  echo "device: GPU $gpu ($var) is $uuid (PCI $pci): device-id=$uuid" >&2
  echo "$uuid"
}

# Stylizes the input $1 (output name $2) with the style $3 (through the part file $part); prints
# what it does, last a line "done: ...", "skipped: ..." or "failed: ..."; fails if it failed.
stylize() {
  local input=$1 name=$2 style=$3 out=$outdir/$2.mp4 t0 clash id
  t0=$(date +%s)
  clash=$(echo "$conflicts" | awk -F'\t' -v n="$name" '$1 == n { print $2 }')
  if [ -n "$clash" ]; then
    echo "failed: $input: $clash"
    return 1
  fi
  if [ -f "$out" ] && "$check_video" --quiet "$out" --like "$input"; then
    echo "skipped: $out exists and plays like $input"
    return 0
  elif [ -f "$out" ]; then
    echo "$out exists but does not play like $input: stylizing it again"
  fi
  id=$(device_id)
  rm -f "$part"
  # -v prints the device the element opened (its read-only device-* properties); -X leaves out
  # the caps and queue sizes that -v would print as well
  local quiet="-X caps -X max-size-buffers -X max-size-time -X max-size-bytes"
  if ! ST_PROPS="${ST_PROPS:-}${id:+ device-id=$id}" \
    GST_LAUNCH="${GST_LAUNCH:-gst-launch-1.0} -v $quiet" "$transcode" "$input" "$part" "$style"; then
    rm -f "$part"
    echo "failed: $input: transcode.sh failed (the error is above)"
    return 1
  fi
  if ! "$check_video" "$part" --like "$input"; then
    rm -f "$part"
    echo "failed: $input: the stylized file does not play like the input"
    return 1
  fi
  if ! mv -f "$part" "$out"; then
    echo "failed: $input: could not rename $part to $out"
    return 1
  fi
  echo "done: $out in $(($(date +%s) - t0)) s"
}

# Stylizes entry $1 (INPUT<TAB>NAME<TAB>STYLE), appending to its log; prints the result line.
part=""
process() {
  local input style name log status=0
  IFS=$'\t' read -r input name style <<<"$1"
  log=$outdir/logs/$name.log
  part=$outdir/.$name.part.mp4
  local task=${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-pid $$}}${SLURM_ARRAY_TASK_ID:+_$SLURM_ARRAY_TASK_ID}
  echo "== $(date '+%F %T') $(hostname) task $task: $input (style $style)" >>"$log"
  stylize "$input" "$name" "$style" >>"$log" 2>&1 || status=1
  part=""
  tail -n 1 "$log"
  return $status
}
# a task cancelled or timed out by Slurm gets SIGTERM: leave no part file behind
trap '[ -z "$part" ] || rm -f "$part"; exit 143' TERM INT

mkdir -p "$outdir/logs"
index=${SLURM_ARRAY_TASK_ID:-${JOB_COMPLETION_INDEX:-}}
if [ -n "$index" ]; then
  n=$((${ST_ARRAY_OFFSET:-0} + index))
  entry=$(entries | sed -n "$((n + 1))p")
  if [ -z "$entry" ]; then
    echo "stylize-array.sh: $list has no entry $n" >&2
    exit 1
  fi
  process "$entry"
else
  failed=0
  total=0
  while IFS= read -r entry; do
    total=$((total + 1))
    process "$entry" </dev/null || failed=$((failed + 1))
  done < <(entries)
  echo "stylize-array.sh: $total entries, $failed failed"
  [ "$failed" -eq 0 ]
fi
