#!/usr/bin/env bash
# Runs the whole unit suite under AddressSanitizer, then under ThreadSanitizer, each in its own
# scratch path (.build-asan, .build-tsan) so that neither rebuilds the other's or the normal
# .build. Ends with one summary line per run.
#   tools/sanitize.sh [address] [thread] [-- SWIFT-TEST-ARGS...]   e.g. tools/sanitize.sh thread -- --filter ParallelTests
# Our own code (Swift and the CKernels C, which SwiftPM compiles with the same sanitizer) runs
# with no suppression.
set -uo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"
sanitizers=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do sanitizers+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#sanitizers[@]} -eq 0 ] && sanitizers=(address thread)
# The Swift backtracer and the sanitizers both catch fatal signals; the sanitizer's report is the
# one wanted, and the backtracer can outlive the test process and hold the pipe open.
export SWIFT_BACKTRACE=enable=no
# LeakSanitizer is off by default (ASAN_OPTIONS=detect_leaks=1 turns it on): under XCTest on Linux
# it reports about 95 KB in 1,100 allocations on every run, none of them ours to fix: one
# XCTestCaseRun and one test name per test (174 of each), everything the test cases hold, and two
# Swift weak-reference side tables, whose address the object keeps in a tagged refcount word that
# LeakSanitizer cannot read (llvm/llvm-project#56751). Leaks in the readers of untrusted files are
# checked per input by the fuzz targets (libFuzzer runs LeakSanitizer by default).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
# ThreadSanitizer needs no suppression here: OpenBLAS and json-c are not instrumented, so their
# own accesses are not tracked, and their threads are created through the intercepted pthreads.
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=0:second_deadlock_stack=1}

summary=()
status=0
for sanitizer in "${sanitizers[@]}"; do
  case $sanitizer in
    address) scratch=.build-asan; pattern='ERROR: (AddressSanitizer|LeakSanitizer)' ;;
    thread)  scratch=.build-tsan; pattern='WARNING: ThreadSanitizer' ;;
    *) echo "unknown sanitizer '$sanitizer'; expected address or thread" >&2; exit 64 ;;
  esac
  # Tests that bound the address space (ulimit -v) skip themselves under a sanitizer, whose
  # shadow memory needs terabytes of it; they run in the plain suite.
  export NNBUILD_SANITIZER=$sanitizer
  mkdir -p "$scratch"
  log=$scratch/sanitize.log
  echo "== swift test under the $sanitizer sanitizer (log: $log)"
  start=$(date +%s)
  swift test --disable-swift-testing --sanitize="$sanitizer" --scratch-path "$scratch" "$@" >"$log" 2>&1
  rc=$?
  elapsed=$(( $(date +%s) - start ))
  grep -E "$pattern|^SUMMARY: |error: |Test Case .* failed|Executed [0-9]+ tests" "$log" | sort | uniq -c | sort -rn | head -n 30
  executed=$(grep -E "Executed [0-9]+ tests?, with" "$log" | tail -1 | sed -E 's/^[[:space:]]*//')
  reports=$(grep -cE "$pattern" "$log")
  leaked=$(grep -m1 -oE 'SUMMARY: AddressSanitizer: [0-9]+ byte\(s\) leaked in [0-9]+ allocation\(s\)' "$log" | sed 's/SUMMARY: AddressSanitizer: //' || true)
  [ "$rc" -eq 0 ] && [ "$reports" -eq 0 ] || status=1
  summary+=("$sanitizer: ${executed:-the suite did not finish}; $reports sanitizer reports${leaked:+ (LeakSanitizer: $leaked)}; exit $rc; $elapsed s")
done
echo "== summary"
printf '%s\n' "${summary[@]}"
exit $status
