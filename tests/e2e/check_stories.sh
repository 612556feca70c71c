#!/bin/sh
# check_stories.sh — a real trained model end to end: stories260K.gguf
# (llama2.c's TinyStories 260K) compiled from GGUF, its tokenizer from the
# same file.
#  - `llmc run` greedy from BOS prints exactly what llama2.c printed for 200
#    and 256 steps (llama2.c adds a newline after the 256-step text).
#  - `llmc perplexity` agrees within 0.1% with the figures llama.cpp
#    c392e509's llama-perplexity printed for the same files, text and context
#    (tests/data/models/README.md), for the f32 and the f16 file.
#
# usage: check_stories.sh LLMC REPO_ROOT WORKDIR
set -eu
LLMC=$1 ROOT=$2 WORK=$3
DATA=$ROOT/tests/data
mkdir -p "$WORK"
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

"$LLMC" compile "$DATA/models/stories260K.gguf" -o "$WORK/stories.so"
"$LLMC" compile "$DATA/models/stories260K-f16.gguf" -o "$WORK/stories-f16.so"

"$LLMC" run "$WORK/stories.so" -n 200 --temp 0 >"$WORK/n200.txt" 2>"$WORK/run.err" || fail "llmc run: $(cat "$WORK/run.err")"
cmp "$WORK/n200.txt" "$DATA/models/stories260K_greedy_n200.expected.txt" && echo "ok: greedy 200" ||
  fail "greedy text (200 steps) differs from llama2.c's"
"$LLMC" run "$WORK/stories.so" -n 256 --temp 0 >"$WORK/n256.txt" 2>"$WORK/run.err" || fail "llmc run: $(cat "$WORK/run.err")"
echo >>"$WORK/n256.txt"
cmp "$WORK/n256.txt" "$DATA/models/stories260K_greedy_default256.expected.txt" && echo "ok: greedy 256" ||
  fail "greedy text (256 steps) differs from llama2.c's"

# check_ppl MODEL CTX LLAMA_CPP_PPL
check_ppl() {
  got=$("$LLMC" perplexity "$1" -f "$DATA/text/tiny_stories.txt" -c "$2" 2>/dev/null | tail -n 1 | sed 's/^ppl = //')
  if python3 -c "import sys; g, w = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(g - w) / w > 0.001)" "$got" "$3"; then
    echo "ok: $(basename "$1") -c $2: llmc $got, llama.cpp $3"
  else
    fail "$(basename "$1") -c $2: llmc ppl $got, llama.cpp $3 (more than 0.1% apart)"
  fi
}
check_ppl "$WORK/stories.so" 64 4.3585
check_ppl "$WORK/stories.so" 128 3.8991
check_ppl "$WORK/stories-f16.so" 64 4.3590
check_ppl "$WORK/stories-f16.so" 128 3.8992

echo "$failures failures"
[ "$failures" = 0 ]
