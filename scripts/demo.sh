#!/usr/bin/env bash
# Builds llmc, compiles the bundled example model (examples/tiny-llama, a
# hand-written model.json over a tiny random-weight Llama checkpoint) and the
# 3-layer Llama test checkpoint, and runs them: inspect, logits, and the
# top next tokens.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)"
out=build/demo
mkdir -p "$out"
set -x
build/llmc compile examples/tiny-llama/model.json -o "$out/tiny-llama.so" --verbose
build/llmc inspect "$out/tiny-llama.so" | head -40
build/llmc compile tests/data/hf/llama -o "$out/llama.so" --verbose
build/llmc logits "$out/llama.so" --tokens 1,328,384,353,219,207,297 -o "$out/logits.f32" --chunk 3
set +x
python3 - "$out/logits.f32" <<'PY'
import array, sys
a = array.array("f"); a.frombytes(open(sys.argv[1], "rb").read())
vocab = 512
last = a[-vocab:]
top = sorted(range(vocab), key=lambda i: -last[i])[:5]
print("rows:", len(a) // vocab, " top next tokens after the last row:", [(t, round(last[t], 3)) for t in top])
PY
