#!/bin/bash
# ThreadSanitizer run of the stress suite (README "Reliability"), by hand: builds build-tsan/
# (-Db_sanitize=thread) and tools/tsan/glib-pthread-shim.c, then runs test_churn_cycles (first:
# it also fills the build's pipeline cache, without which lavapipe's first frames under TSan
# outlast test_churn_threads' watchdog) and test_churn_threads, and fails on any report.
#   tools/tsan.sh                       100 cycles, 30 s of 4 threads
#   tools/tsan.sh --cycles N --seconds S
# Why the shim: GLib's GMutex and GCond are futexes inside libglib, which TSan does not see, so
# every access they order would be reported; the shim (LD_PRELOAD) puts them on pthreads, which
# TSan intercepts. setarch -R: gcc 12's TSan cannot map its shadow memory with the kernel's
# default address-space randomisation. Validation layers off: they are uninstrumented C++ whose
# own locking TSan misreads (the validation pass is the other suites' job). Reports: the
# directory printed at the end (tsan.PID files); none means no race seen. Suppressed: GStreamer's
# own lock order in decodebin (tools/tsan/suppressions.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

cycles=100
seconds=30
while [ $# -gt 0 ]; do
  case "$1" in
  --cycles)
    cycles=$2
    shift 2
    ;;
  --seconds)
    seconds=$2
    shift 2
    ;;
  *)
    echo "usage: $0 [--cycles N] [--seconds S]" >&2
    exit 2
    ;;
  esac
done

build=build-tsan
[ -d "$build" ] || meson setup "$build" -Db_sanitize=thread -Db_lundef=false
ninja -C "$build" gst/libgststyletransfer.so tests/gst/test_stress
cc -O1 -g -fPIC -shared -fsanitize=thread -o "$build/libglib-pthread-shim.so" \
  tools/tsan/glib-pthread-shim.c $(pkg-config --cflags --libs glib-2.0) -lpthread

reports=$PWD/$build/tsan-reports
rm -rf "$reports"
mkdir -p "$reports"
wrapper="env ST_VALIDATION=0 ST_VALIDATION_FATAL=0 LD_PRELOAD=$PWD/$build/libglib-pthread-shim.so setarch -R"
export CK_FORK=no
export TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 log_path=$reports/tsan suppressions=$PWD/tools/tsan/suppressions.txt"
export ST_CHURN_CYCLES=$cycles ST_THREADS_SECONDS=$seconds
for t in test_churn_cycles test_churn_threads; do
  GST_CHECKS=$t meson test -C "$build" --no-rebuild --wrapper "$wrapper" 'styletransfer stress' -v
done
n=$(cat "$reports"/tsan.* 2>/dev/null | grep -c "WARNING: ThreadSanitizer" || true)
echo "tsan: $n reports ($reports)"
[ "$n" -eq 0 ]
