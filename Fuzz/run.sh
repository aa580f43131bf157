#!/usr/bin/env bash
# Builds the libFuzzer targets and runs each for SECONDS (default 600), starting from the seed
# corpus (real files: the committed fixtures and examples). Crashing inputs land in
# Fuzz/crashes/<target>/; commit them under Tests/Malformed/ as regression tests once fixed.
#   Fuzz/run.sh [SECONDS] [FuzzSpec|FuzzWeights|FuzzHDF5]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
targets=${2:-"FuzzSpec FuzzWeights FuzzHDF5"}
# A clean build: objects left from a build with other coverage flags make libFuzzer refuse to run.
# swiftc's -sanitize=fuzzer adds no coverage by itself here, hence the explicit flags.
rm -rf .build
swift build -c release --sanitize fuzzer --sanitize address \
  -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' || true
for target in $targets; do
  corpus=corpus/$target
  mkdir -p "$corpus" crashes/$target
  max_len=65536
  if [ "$target" = FuzzHDF5 ]; then
    # HDF5 files are sparse with headers: whole fixtures up to 256 kB, so seeds are not truncated.
    max_len=262144
    find ../Tests/HDF5Fixtures -name '*.h5' -size -256k -exec cp {} "$corpus/" \; 2>/dev/null || true
  elif [ "$target" = FuzzSpec ]; then
    find ../Tests/Fixtures ../specs ../Tests/Malformed -name '*.json' -size -64k -exec cp {} "$corpus/" \; 2>/dev/null || true
  else
    find ../Tests/Fixtures ../specs ../Tests/Malformed -name '*.safetensors' -size -256k -exec cp {} "$corpus/" \; 2>/dev/null || true
  fi
  echo "== $target for $seconds s (corpus: $(ls "$corpus" | wc -l) files)"
  ".build/release/$target" "$corpus" -max_total_time="$seconds" -max_len=$max_len -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="crashes/$target/" -print_final_stats=1 2>&1 | tail -n 15
done
