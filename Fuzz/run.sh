#!/usr/bin/env bash
# Builds the libFuzzer targets and runs each for SECONDS (default 600), starting from the seed
# corpus: the committed fixtures, examples and malformed cases, plus Fuzz/seeds/<target>/, with the
# target's dictionary Fuzz/dicts/<target>.dict. Crashing inputs land in Fuzz/crashes/<target>/;
# once fixed, commit them under Tests/Malformed/ as regression tests.
#   Fuzz/run.sh [SECONDS] [TARGETS]      TARGETS: any of "FuzzSpec FuzzWeights FuzzInput FuzzZip FuzzHDF5"
# By default libFuzzer stops at the first crash. FUZZ_KEEP_GOING=1 runs in fork mode instead and
# goes on past crashes, out-of-memory and timeouts, saving each (for a survey of a faulty build).
set -euo pipefail
cd "$(dirname "$0")"
command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"
seconds=${1:-600}
targets=${2:-"FuzzSpec FuzzWeights FuzzInput FuzzZip FuzzHDF5"}
# Swift's backtracer is a separate process that can outlive a crashed harness and hold the pipe
# open, so libFuzzer's output never ends; libFuzzer prints its own stack.
export SWIFT_BACKTRACE=enable=no

# swiftc's -sanitize=fuzzer adds no coverage by itself here, hence the explicit flags.
flags=(-c release --sanitize fuzzer --sanitize address
       -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp)
# Objects left from a build with other coverage flags make libFuzzer refuse to run: clean when the
# flags change.
if [ "$(cat .build/fuzz-flags 2>/dev/null)" != "${flags[*]}" ]; then rm -rf .build; fi
# A failed build stops here: the targets of an earlier build are still in .build/release, and
# fuzzing them would test old code (it did once, silently).
status=0
mkdir -p .build
# SwiftPM reused its cached build plan for this package after a source file was added to nnbuild
# (the path dependency), and compiled ModelSpec without it: plan again on every run (the
# objects stay cached, so this costs seconds).
rm -f .build/release.yaml .build/release/description.json
swift build "${flags[@]}" > .build/fuzz-build.log 2>&1 || status=$?
grep -Ev '^\[[0-9]+/[0-9]+\]' .build/fuzz-build.log || true
[ "$status" -eq 0 ] || { echo "Fuzz/run.sh: the fuzz build failed (exit $status); not running the targets of an earlier build" >&2; exit 1; }
for target in $targets; do [ -x ".build/release/$target" ] || { echo "build failed: no $target" >&2; exit 1; }; done
echo "${flags[*]}" > .build/fuzz-flags

# seed_from CORPUS DIR... FIND-TESTS: copies the files found into CORPUS, named by content.
seed_from() {
  local corpus=$1; shift
  find "$@" -print0 | while IFS= read -r -d '' file; do
    cp "$file" "$corpus/$(sha1sum <"$file" | cut -c1-16).${file##*.}"
  done
}

summary=()
for target in $targets; do
  corpus=corpus/$target
  mkdir -p "$corpus" crashes/$target logs
  # Copied under their content's hash: fixtures share file names (model.json, input.npy).
  case $target in
    FuzzSpec)    seed_from "$corpus" ../Tests/Fixtures ../specs ../Tests/Malformed -name '*.json' -size -64k ;;
    FuzzWeights) seed_from "$corpus" ../Tests/Fixtures ../specs ../Tests/Malformed -name '*.safetensors' -size -256k ;;
    FuzzInput)   seed_from "$corpus" ../Tests ../specs \( -name '*.npy' -o -name '*.json' \) -size -64k ;;
    FuzzZip)     seed_from "$corpus" ../Tests \( -name '*.npz' -o -name '*.keras' -o -name '*.zip' \) -size -256k ;;
    FuzzHDF5)    seed_from "$corpus" ../Tests/HDF5Fixtures \( -name '*.h5' -o -name '*.hdf5' \) -size -256k ;;
  esac
  [ -d seeds/$target ] && seed_from "$corpus" seeds/$target -type f
  dict=()
  [ -f dicts/$target.dict ] && dict=(-dict=dicts/$target.dict)
  # HDF5 files are sparse with headers: whole fixtures up to 256 kB, so seeds are not truncated.
  max_len=65536
  [ "$target" = FuzzHDF5 ] && max_len=262144
  mode=()
  [ "${FUZZ_KEEP_GOING:-0}" = 1 ] && mode=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
  ls crashes/$target | sort >logs/$target.before
  log=logs/$target.log
  echo "== $target for $seconds s (corpus: $(ls "$corpus" | wc -l) files${dict:+, ${dict[0]#-dict=}})"
  start=$(date +%s)
  # -rss_limit_mb=2048 is libFuzzer's default, stated so that nobody raises it by accident; it also
  # sets the largest single allocation (-malloc_limit_mb), so a multi-terabyte request fails at once.
  ".build/release/$target" "$corpus" "${dict[@]}" "${mode[@]}" -max_total_time="$seconds" -max_len="$max_len" \
    -rss_limit_mb=2048 -timeout=10 -artifact_prefix="crashes/$target/" -print_final_stats=1 >"$log" 2>&1 || true
  elapsed=$(( $(date +%s) - start ))
  # Runs: libFuzzer's final statistic, or in fork mode the last "#N:" progress line.
  runs=$( (grep -E '^stat::number_of_executed_units' "$log" || true) | awk '{s += $2} END {print s + 0}')
  if [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then runs=$( (grep -oE '^#[0-9]+' "$log" || true) | tail -1 | tr -d '#'); fi
  # Artifacts new in the folder, and those libFuzzer says it wrote (an input that crashed before
  # has the same name, since libFuzzer names an artifact by its content's hash).
  written=$( (grep -oE 'Test unit written to [^ ]+' "$log" || true) | sed 's/.*\///')
  new=$( (ls crashes/$target | sort | comm -13 logs/$target.before -; echo "$written") | grep . | sort -u || true)
  crashes=$(grep -cE '^(crash|leak|deadly-signal)-' <<<"$new" || true)
  ooms=$(grep -cE '^(oom|timeout|slow-unit)-' <<<"$new" || true)
  # One line of cause per new artifact (fork mode keeps the children's reports to itself).
  for artifact in $new; do
    report=$(".build/release/$target" "crashes/$target/$artifact" -rss_limit_mb=2048 -timeout=10 2>&1 || true)
    cause=$(grep -m1 -oE 'Fatal error: .{0,120}|SUMMARY: [A-Za-z]+: [a-z -]+( \(malloc\([0-9]+\)\))?' <<<"$report" || true)
    # The innermost frame of nnbuild's own code that has a line number.
    at=$( (grep -E ' in .* /.*/Sources/[A-Za-z]+/.*:[0-9]+:[0-9]+' <<<"$report" || true) | grep -v '/Fuzz/Sources/' | head -1 | grep -oE 'Sources/[^ ]+' || true)
    echo "  $artifact: ${cause:-no longer reproduces}${at:+ at $at}"
  done
  line="$target: ${runs:-0} runs in $elapsed s, crashes: $crashes, out-of-memory/timeouts: $ooms (log: Fuzz/$log)"
  echo "$line"
  summary+=("$line")
done
echo "== summary"
printf '%s\n' "${summary[@]}"
