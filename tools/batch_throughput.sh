#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Measures the files per minute of examples/batch on a one-node Slurm cluster started here
# (tools/local_slurm.py): N copies of one input, one job array per parallelism P (--array=0-N%P,
# sbatch --wait), each into a fresh output directory. The README's "Many files, many GPUs"
# figures come from it.
#
# Usage: tools/batch_throughput.sh [N] [P...]   (default: 8 files, parallelism 1 and 2)
# Environment: ST_INPUT (default examples/sample.mkv), ST_STYLE (examples/default-style.jpg),
#   ST_GRES (default: none: no GPU on a lavapipe machine), ST_PROPS, ST_SIZE as for the job script,
#   ST_WORK (scratch directory, default a new one under /tmp, removed at the end).
# Needs the build (meson devenv -C build sets GST_PLUGIN_PATH and ST_MODEL_PATH) and Slurm
# (tools/setup-debian.sh), and root for slurmd.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-8}
shift || true
parallel=("$@")
[ ${#parallel[@]} -gt 0 ] || parallel=(1 2)
input=$(realpath "${ST_INPUT:-$root/examples/sample.mkv}")
style=$(realpath "${ST_STYLE:-$root/examples/default-style.jpg}")
work=${ST_WORK:-$(mktemp -d /tmp/st-throughput-XXXXXX)}
export ST_GRES=${ST_GRES-}

cleanup() {
  "$root/tools/local_slurm.py" stop "$work/slurm" || true
  [ -n "${ST_WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/in"
ext=${input##*.}
for i in $(seq -w 1 "$n"); do
  ln -sf "$input" "$work/in/clip$i.$ext"
  echo "clip$i.$ext"
done >"$work/in/list.txt"
eval "$("$root/tools/local_slurm.py" start "$work/slurm")"
echo "batch_throughput: $n x $input, style $style, ST_PROPS='${ST_PROPS:-}' ST_SIZE='${ST_SIZE:-}'," \
  "$(nproc) CPUs, $(sinfo -h -o %c) on the node"
for p in "${parallel[@]}"; do
  t0=$(date +%s.%N)
  ST_ARRAY_PARALLEL=$p "$root/examples/batch/submit.sh" "$work/in/list.txt" "$work/out-$p" \
    "$style" -- --wait >"$work/submit-$p.log"
  done_files=$(find "$work/out-$p" -maxdepth 1 -name '*.mp4' | wc -l)
  awk -v t0="$t0" -v t1="$(date +%s.%N)" -v d="$done_files" -v n="$n" -v p="$p" 'BEGIN {
    printf "batch_throughput: --array=0-%d%%%d: %d of %d files in %.0f s: %.2f files per minute\n",
      n - 1, p, d, n, t1 - t0, d * 60 / (t1 - t0) }' 
done
