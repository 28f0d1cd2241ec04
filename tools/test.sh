#!/bin/bash
# The whole test suite (the README's test command and CI, after tools/setup-debian.sh):
#   1. build/      every test, Vulkan validation layers on, any validation message fatal;
#   2. build-asan/ the engine and element tests again under AddressSanitizer, LeakSanitizer and
#                  UndefinedBehaviorSanitizer (tests/sanitize/meson.build): any report fails;
#                  of the stress suite, 100 churn cycles and the 4 threads (not the soak);
#   3. build-fuzz/ the libFuzzer targets (tools/fuzz.sh, clang): the committed corpus replayed,
#                  then 60 s of fuzzing per target (ST_FUZZ_SECONDS overrides; 0: replay only).
# `tools/test.sh --no-sanitizers` runs step 1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

setup() { # setup DIR [meson options...]: configure once, reconfigure afterwards
  local dir=$1
  shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@"
  else
    meson setup "$dir" "$@"
  fi
}

setup build
meson test -C build --print-errorlogs

if [ "${1:-}" != "--no-sanitizers" ]; then
  setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dexamples=false
  # everything, not only what the tests link: the test setup preloads tests/sanitize's shim
  meson compile -C build-asan
  # the same driver, the same shaders: start from the first pass's test cache (tests/meson.build;
  # compiling every pipeline again on lavapipe is most of a cold run's time)
  if [ -d build/tests/cache ] && [ ! -e build-asan/tests/cache ]; then
    mkdir -p build-asan/tests && cp -a build/tests/cache build-asan/tests/
  fi
  # the sanitizers make every test 2-3x slower on lavapipe: twice each test's time limit
  meson test -C build-asan --print-errorlogs --timeout-multiplier 2 --suite compute --suite gst
  ST_CHURN_CYCLES=100 GST_CHECKS=test_churn_cycles,test_churn_threads \
    meson test -C build-asan --print-errorlogs --timeout-multiplier 2 'styletransfer stress'
  tools/fuzz.sh --seconds "${ST_FUZZ_SECONDS:-60}"
fi
