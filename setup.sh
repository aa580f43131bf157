#!/usr/bin/env bash
# Sets nnbuild up on a fresh Debian machine and runs it on a bundled example model.
#   1. installs the C libraries it uses (json-c, zlib; OpenBLAS, loaded at run time for
#      ExecutionSettings.batchVariantBLAS) and pkg-config when missing;
#   2. builds the release binary;
#   3. runs `nnbuild infer` on the bundled sentiment model in specs/.
set -euo pipefail
cd "$(dirname "$0")"

need=()
for pkg in libjson-c-dev libopenblas-dev zlib1g-dev pkg-config; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi

command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"
echo "setup: building nnbuild and nnbuild-serve, which \`nnbuild serve\` runs (release)" >&2
swift build -c release 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' || true
test -x .build/release/nnbuild && test -x .build/release/nnbuild-serve

example=specs/text_bilstm
echo "setup: the sentences behind $example/input.json:" >&2
nl -v0 -w1 -s': ' "$example/sentences.txt" >&2
# The model as Keras's model.save() wrote it: one .keras file, no Python needed.
echo "setup: running: nnbuild infer $example/model.keras --input $example/input.json --top-k 3 --class-names $example/classes.txt" >&2
.build/release/nnbuild infer "$example/model.keras" \
  --input "$example/input.json" --top-k 3 --class-names "$example/classes.txt"
