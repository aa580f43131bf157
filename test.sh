#!/usr/bin/env bash
# Runs every test: the Swift unit, CLI and Keras-fixture tests (swift test), then the shared Keras
# conformance cases through the release binary. Needs no TensorFlow: fixtures are committed files.
# Ends with one line totalling every section: `total: N passed, M failed, K skipped`; a section
# that could not run (the TensorFlow round trip without TensorFlow) says why and counts as skipped.
set -uo pipefail
cd "$(dirname "$0")"
command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"
status=0
passed=0
failed=0
skipped=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Adds a section's "N passed, M failed" line (or XCTest's closing line) to the totals.
count() {
  local line
  # XCTest's last line: "Executed N tests, with F failures" or "..., with S tests skipped and F failures".
  line=$(grep -E "Executed [0-9]+ tests?, with .*[0-9]+ failures?" "$log" | tail -1)
  if [ -n "$line" ]; then
    local n f s=0
    n=$(sed -E 's/.*Executed ([0-9]+) tests?.*/\1/' <<<"$line"); f=$(sed -E 's/.* ([0-9]+) failures?.*/\1/' <<<"$line")
    if grep -q "tests\? skipped" <<<"$line"; then s=$(sed -E 's/.*with ([0-9]+) tests? skipped.*/\1/' <<<"$line"); fi
    passed=$((passed + n - f - s)); failed=$((failed + f)); skipped=$((skipped + s)); return
  fi
  line=$(grep -E '^([A-Za-z]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
  if [ -n "$line" ]; then
    passed=$((passed + $(sed -E 's/^([A-Za-z]+: )?([0-9]+) passed.*/\2/' <<<"$line")))
    failed=$((failed + $(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")))
    if grep -qE ', [0-9]+ skipped' <<<"$line"; then skipped=$((skipped + $(sed -E 's/.*, ([0-9]+) skipped.*/\1/' <<<"$line"))); fi
  fi
}

echo "== swift test"
swift test --disable-swift-testing 2>&1 | tee "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
count

echo "== Keras fixtures and graph fixtures again on the portable path (NNBUILD_KERNELS=baseline: the portable kernels and Swift SIMD, as CPUs without AVX2 run)"
NNBUILD_KERNELS=baseline swift test --disable-swift-testing --skip-build --filter 'KerasFixtureTests|GraphFixtureTests|ParallelTests' 2>&1 | tee "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
count

# The other kernel path this CPU supports besides its default (its best): on an AVX-512 CPU the
# AVX2 kernels, which an AVX2-only CPU runs by default. nnbuild itself says whether the CPU has
# AVX-512: it refuses NNBUILD_KERNELS=avx512 (exit 64) on a CPU without it.
echo "== Keras fixtures, graph fixtures, kernel-path, convolution, pooling, split-step and pointwise-depthwise tests again on the AVX2 path (NNBUILD_KERNELS=avx2, where Winograd runs), on a CPU whose default is AVX-512"
nnbuild_debug="$(swift build --show-bin-path 2>/dev/null)/nnbuild"
if [ ! -x "$nnbuild_debug" ]; then
  echo "skipped: $nnbuild_debug was not built, so this CPU's kernel paths are unknown"; skipped=$((skipped + 1))
elif NNBUILD_KERNELS=avx512 "$nnbuild_debug" --version >/dev/null 2>&1; then
  NNBUILD_KERNELS=avx2 swift test --disable-swift-testing --skip-build --filter 'KerasFixtureTests|GraphFixtureTests|ParallelTests|KernelPathTests|ConvolutionTests|Convolution3DTests|SplitStepTests|PoolingTests|PointwiseDepthwiseTests' 2>&1 | tee "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  count
else
  echo "skipped: this CPU has no AVX-512, the avx512 pass does not run"; skipped=$((skipped + 1))
fi

echo "== Keras conformance cases (../shared/conformance, max relative error 1e-5)"
# nnbuild, and beside it nnbuild-plugins, which runs a command that loads a plugin.
for product in nnbuild nnbuild-plugins; do
  swift build -c release --product "$product" 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]'
done
if [ -d ../shared/conformance ]; then
  python3 ../shared/conformance/check.py .build/release/nnbuild ../shared/conformance --tol 1e-5 2>&1 | tee "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  count
else
  echo "(../shared/conformance not present; skipped)"
fi

echo "== Keras round trip (needs TensorFlow)"
python3 tools/roundtrip_test.py .build/release/nnbuild 2>&1 | tee "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
count
if grep -q '^SKIPPED:' "$log"; then
  echo "== Keras round trip: SKIPPED, not run and not counted as passed: $(sed -n 's/^SKIPPED: //p' "$log" | head -1)"
fi

echo "== MelSpectrogram against float64 numpy (tools/spectrogram_reference.py: Keras's float32 is too coarse to judge it at top_db 80)"
python3 tools/spectrogram_reference.py .build/release/nnbuild 2>&1 | tee "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
count

echo "== Keras Applications end to end (needs TensorFlow; small input sizes; tools/applications_test.py --all for the default sizes)"
python3 tools/applications_test.py .build/release/nnbuild 2>&1 | grep -v -e '^WARNING' -e '^I0000' -e '^W0000' -e 'DT_DOUBLE' \
  -e 'oneDNN' -e 'cpu_feature_guard' -e 'To enable the following' | tee "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
count
if grep -q '^SKIPPED:' "$log"; then
  echo "== Keras Applications: SKIPPED, not run and not counted as passed: $(sed -n 's/^SKIPPED: //p' "$log" | head -1)"
fi

echo "== tf-keras (Keras 2) applications from their .h5 files (needs tf-keras)"
python3 tools/keras2_applications.py --nnbuild .build/release/nnbuild 2>&1 | grep -v -e '^WARNING' -e '^I0000' -e '^W0000' \
  -e 'oneDNN' -e 'cpu_feature_guard' -e 'To enable the following' -e 'saving_api' -e 'UserWarning' -e '^  ' | tee "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
count
if grep -q '^SKIPPED:' "$log"; then
  echo "== tf-keras applications: SKIPPED, not run and not counted as passed: $(sed -n 's/^SKIPPED: //p' "$log" | head -1)"
fi

echo "== Spark: RDD.pipe through nnbuild infer --stream (needs Java 17 and pyspark)"
python3 tools/spark_test.py .build/release/nnbuild 2>&1 | grep -Ev '^(WARNING|Using Spark|Setting default|To adjust logging)|NativeCodeLoader' | tee "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
count
if grep -q '^SKIPPED:' "$log"; then
  echo "== Spark: SKIPPED, not run and not counted as passed: $(sed -n 's/^SKIPPED: //p' "$log" | head -1)"
fi

echo "== Examples/CustomLayer: a Keras custom layer via the Swift API and as a plugin"
example=Examples/CustomLayer
# A failed build must not fall back on binaries left from an earlier one.
built=1
(cd "$example" && swift build) > "$log" 2>&1 || built=0
grep -Ev '^\[[0-9]+/[0-9]+\]|^Building|^Build complete' "$log" || true
demo="$example/.build/debug/custom-layer-demo"
plugin="$example/.build/debug/libCustomLayerPlugin.so"
fixture="$example/fixture"
if [ "$built" -eq 1 ] && [ -x "$demo" ] && [ -f "$plugin" ]; then
  python3 tools/check_output.py <("$demo" "$fixture/model.json" "$fixture/weights.safetensors" "$fixture/input.npy") \
    "$fixture/expected.npy" --label "Swift API" 2>&1 | tee "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  count
  if .build/release/nnbuild --plugin "$plugin" compare "$fixture/model.json" "$fixture/weights.safetensors" \
       --input "$fixture/input.npy" --expected "$fixture/expected.npy"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); status=1
  fi
else
  echo "FAIL: Examples/CustomLayer did not build"; failed=$((failed + 1)); status=1
fi

echo "== the release nnbuild: Swift runtime linked in, plugins handed to nnbuild-plugins"
# The release nnbuild links the Swift runtime statically (a faster start); a plugin needs the
# shared one, so nnbuild hands a command naming a plugin to nnbuild-plugins, and says so in one
# line when that executable is missing.
if ldd .build/release/nnbuild | grep -q 'libswiftCore'; then
  echo "FAIL: .build/release/nnbuild links the shared Swift runtime"; failed=$((failed + 1)); status=1
else
  passed=$((passed + 1))
fi
lonely="$(mktemp -d)"
cp .build/release/nnbuild "$lonely/"
# $1 names the way a plugin is asked for; the rest is the command.
alone_refuses() {
  local way="$1"; shift
  if "$@" > "$log" 2>&1; then
    echo "FAIL: nnbuild without nnbuild-plugins beside it accepted a plugin ($way)"; failed=$((failed + 1)); status=1
  elif [ "$(wc -l < "$log")" -eq 1 ] && grep -q "cannot run the executable that loads plugins $lonely/nnbuild-plugins" "$log"; then
    passed=$((passed + 1))
  else
    echo "FAIL: nnbuild without nnbuild-plugins ($way): expected one line naming it, got:"; cat "$log"; failed=$((failed + 1)); status=1
  fi
}
alone_refuses --plugin "$lonely/nnbuild" --plugin "$lonely/libx.so" layers
alone_refuses NNBUILD_PLUGIN_PATH env NNBUILD_PLUGIN_PATH="$lonely/libx.so" "$lonely/nnbuild" layers
# Without a plugin it needs no sibling.
if "$lonely/nnbuild" layers > "$log" 2>&1; then passed=$((passed + 1)); else
  echo "FAIL: nnbuild alone failed 'layers' without a plugin:"; head -3 "$log"; failed=$((failed + 1)); status=1
fi
rm -rf "$lonely"

[ "$status" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1  # a step failed without saying how many
echo "total: $passed passed, $failed failed, $skipped skipped"
exit $status
