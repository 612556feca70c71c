#!/usr/bin/env bash
# Prints llmc's and llama.cpp's speed on the same GGUF files, same threads,
# same prompt and generation lengths: `llmc bench` on the compiled model
# beside `llama-bench` on the GGUF.
#
# usage: LLAMA_BENCH=/path/to/llama-bench scripts/bench_vs_llamacpp.sh MODEL.gguf... 
# env:   THREADS (default: nproc), P (default 128), N (default 32), R (default 3),
#        LLMC (default build/llmc)
# llama.cpp is not part of this repository: build it yourself and point
# LLAMA_BENCH at its llama-bench.
set -euo pipefail
llmc=${LLMC:-build/llmc}
threads=${THREADS:-$(nproc)} p=${P:-128} n=${N:-32} r=${R:-3}
[ -x "${LLAMA_BENCH:-}" ] || { echo "set LLAMA_BENCH to llama.cpp's llama-bench binary" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '| model | engine | threads | pp%s t/s | tg%s t/s |\n|---|---|---|---|---|\n' "$p" "$n"
for gguf in "$@"; do
  name=$(basename "$gguf" .gguf)
  "$llmc" compile "$gguf" -o "$work/$name.so"
  "$llmc" bench "$work/$name.so" -p "$p" -n "$n" -r "$r" -t "$threads" --json |
    python3 -c 'import json, sys; d = json.load(sys.stdin); print("| %s | llmc | %d | %.1f ± %.1f | %.1f ± %.1f |" % (sys.argv[1], d["threads"], d["pp_tok_s"], d["pp_stddev"], d["tg_tok_s"], d["tg_stddev"]))' "$name"
  # -mmp 0: llama.cpp reads the weights into memory, as llmc copies models
  # of 64 MiB and more into huge-page memory (docs/model-so.md).
  "$LLAMA_BENCH" -m "$gguf" -p "$p" -n "$n" -r "$r" -t "$threads" -mmp 0 -o json 2>/dev/null |
    python3 -c 'import json, sys
rows = json.load(sys.stdin)
pp = next(x for x in rows if x["n_prompt"] > 0); tg = next(x for x in rows if x["n_gen"] > 0)
print("| %s | llama.cpp | %d | %.1f ± %.1f | %.1f ± %.1f |" % (sys.argv[1], pp["n_threads"], pp["avg_ts"], pp["stddev_ts"], tg["avg_ts"], tg["stddev_ts"]))' "$name"
done
