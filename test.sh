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
exit $status
