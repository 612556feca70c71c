#!/usr/bin/env bash
# Builds llmc, compiles the bundled TinyStories model (tests/data/models/
# stories260K.gguf, llama2.c's 260K-parameter Llama) to native code, and runs
# it: a completion, its speed, and a look inside the compiled file. Then the
# same for a Hugging Face checkpoint (tests/data/hf/llama, random weights).
# Last, serves the story model over the OpenAI API (llmc serve) and loads
# it with llmc bench-serve.
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
# Serve the story model over the OpenAI API and load it with 16 streamed
# requests, 8 at a time (--port 0: any free port; the first line on stderr
# names it).
set +x
build/llmc serve "$out/stories.so" --port 0 2>"$out/serve.log" &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
url=
for _ in $(seq 100); do
  url=$(sed -n 's/^llmc serve: listening on \([^ ]*\) .*/\1/p' "$out/serve.log")
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$out/serve.log" >&2; exit 1; }
set -x
build/llmc bench-serve --url "$url" --num-prompts 16 --max-concurrency 8 --input-len 32 --output-len 48
kill -TERM "$server"
wait "$server"
