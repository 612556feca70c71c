#!/usr/bin/env bash
# Builds llmc, compiles the bundled TinyStories model (tests/data/models/
# stories260K.gguf, llama2.c's 260K-parameter Llama) to native code, and runs
# it: a completion, its speed, and a look inside the compiled file. Then the
# same for a Hugging Face checkpoint (tests/data/hf/llama, random weights).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)"
out=build/demo
mkdir -p "$out"
set -x
build/llmc compile tests/data/models/stories260K.gguf -o "$out/stories.so" --verbose
build/llmc run "$out/stories.so" -p "Once upon a time" -n 120 --temp 0.7 --seed 1
build/llmc bench "$out/stories.so" -p 128 -n 64
build/llmc inspect "$out/stories.so" | sed -n '1,12p'
build/llmc compile tests/data/hf/llama -o "$out/llama.so" --verbose
build/llmc logits "$out/llama.so" --tokens 1,328,384,353,219,207,297 -o "$out/logits.f32" --chunk 3
