#!/usr/bin/env bash
# Runs every test: the Swift unit, CLI and Keras-fixture tests (swift test), then the shared Keras
# conformance cases through the release binary. Needs no TensorFlow: fixtures are committed files.
set -uo pipefail
cd "$(dirname "$0")"
command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"
status=0

echo "== swift test"
swift test || status=1

echo "== Keras conformance cases (../shared/conformance, max relative error 1e-5)"
if [ -d ../shared/conformance ]; then
  swift build -c release --product nnbuild 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]'
  python3 ../shared/conformance/check.py .build/release/nnbuild ../shared/conformance --tol 1e-5 || status=1
else
  echo "(../shared/conformance not present; skipped)"
fi
echo "== Keras round trip (skipped without TensorFlow)"
python3 tools/roundtrip_test.py .build/release/nnbuild || status=1

echo "== Examples/CustomLayer: a Keras custom layer via the Swift API and as a plugin"
example=Examples/CustomLayer
if (cd "$example" && swift build 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]|^Building|^Build complete'); then :; fi
demo="$example/.build/debug/custom-layer-demo"
plugin="$example/.build/debug/libCustomLayerPlugin.so"
fixture="$example/fixture"
if [ -x "$demo" ] && [ -f "$plugin" ]; then
  python3 tools/check_output.py <("$demo" "$fixture/model.json" "$fixture/weights.safetensors" "$fixture/input.npy") \
    "$fixture/expected.npy" --label "Swift API" || status=1
  .build/release/nnbuild --plugin "$plugin" compare "$fixture/model.json" "$fixture/weights.safetensors" \
    --input "$fixture/input.npy" --expected "$fixture/expected.npy" || status=1
else
  echo "FAIL: Examples/CustomLayer did not build"; status=1
fi
exit $status
