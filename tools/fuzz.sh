#!/bin/bash
# Builds the libFuzzer targets of fuzz/ with clang (ASan + UBSan, -Dfuzz=true) into build-fuzz/,
# replays their committed corpus (fuzz/corpus/TARGET/, plus the test model and the shipped model
# for the loader), then fuzzes each target for N seconds, one after the other (one process).
#   tools/fuzz.sh                   replay, then 60 s per target (what tools/test.sh runs)
#   tools/fuzz.sh --seconds 1800    a long run by hand (README "Reliability")
#   tools/fuzz.sh --replay-only     only the replay
#   tools/fuzz.sh --target json     only one target (model | json); may be repeated
# New inputs go to build-fuzz/fuzz-corpus/TARGET/ (kept between runs, never committed by the
# script), crashes to build-fuzz/fuzz-artifacts/. Add a crashing input to fuzz/corpus/TARGET/
# (regress-*) with its fix. Environment: CC (default clang-14, else clang), ST_FUZZ_BUILD (build
# directory), ST_FUZZ_ARGS (more libFuzzer options).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
replay_only=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
  --seconds)
    seconds=$2
    shift 2
    ;;
  --replay-only)
    replay_only=1
    shift
    ;;
  --target)
    targets+=("$2")
    shift 2
    ;;
  *)
    echo "usage: $0 [--seconds N] [--replay-only] [--target model|json]..." >&2
    exit 2
    ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(model json)

build=${ST_FUZZ_BUILD:-build-fuzz}
if [ -z "${CC:-}" ]; then
  if command -v clang-14 >/dev/null; then CC=clang-14; else CC=clang; fi
fi
opts=(-Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false -Dtests=false -Dexamples=false)
if [ -f "$build/build.ninja" ]; then
  meson setup --reconfigure "$build" "${opts[@]}" >/dev/null
else
  CC=$CC meson setup "$build" "${opts[@]}" >/dev/null
fi
ninja -C "$build" "${targets[@]/#/fuzz/fuzz-}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
common=(-max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
read -r -a extra <<<"${ST_FUZZ_ARGS:-}"
for t in "${targets[@]}"; do
  exe=$build/fuzz/fuzz-$t
  work=$build/fuzz-corpus/$t
  mkdir -p "$work" "$build/fuzz-artifacts"
  # Replay: every committed input once (-runs=0 runs the corpus, then stops); the loader also
  # gets the full-size models, which are too large for the committed corpus.
  echo "== fuzz $t: replay of fuzz/corpus/$t ($(ls "fuzz/corpus/$t" | wc -l) inputs)"
  "$exe" "${common[@]}" -runs=0 "fuzz/corpus/$t"
  if [ "$t" = model ]; then
    for f in tests/data/model_random.safetensors tests/data/model_wct_random.safetensors \
      weights/styletransfer.safetensors; do
      if [ -f "$f" ]; then "$exe" "$f"; fi
    done
  fi
  if [ "$replay_only" = 1 ] || [ "$seconds" = 0 ]; then
    continue
  fi
  echo "== fuzz $t: $seconds s"
  "$exe" "${common[@]}" "${extra[@]}" -dict="fuzz/$t.dict" -max_total_time="$seconds" \
    -artifact_prefix="$build/fuzz-artifacts/$t-" "$work" "fuzz/corpus/$t"
done
