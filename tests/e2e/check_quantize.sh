#!/bin/sh
# check_quantize.sh — `llmc quantize` on a real model, stories260K.gguf (f32;
# rows of 64 elements, and 172 for ffn_down).
#  - Each TYPE (the names in any case): exit 0, the fallbacks named on
#    stderr (172 is not a multiple of 32, so ffn_down falls back to f16 for
#    every type; rows of 64 take q4_0 for q4_K and q8_0 for q6_K), the file
#    compiles, `llmc inspect` shows the types chosen, and greedy generation
#    prints the story's opening.
#  - q6_K is byte for byte what llama.cpp c392e509's `llama-quantize
#    stories260K.gguf OUT Q6_K` wrote (its mix takes the same fallbacks for
#    this model; the sha256 below was taken from that file).
#  - Refusals: an already quantized input, an unknown TYPE, a missing input;
#    none leaves OUT or OUT.tmp behind.
#
# usage: check_quantize.sh LLMC REPO_ROOT WORKDIR
set -eu
LLMC=$1 ROOT=$2 WORK=$3
MODEL=$ROOT/tests/data/models/stories260K.gguf
LLAMA_CPP_Q6_K_SHA256=137d1fbe834a43bc20cc1e04a9459af61953a7579baeedba17590faacfb13104
rm -rf "$WORK"
mkdir -p "$WORK"
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# check_type TYPE FALLBACK_LINES TYPE_OF_ROWS_OF_64
check_type() {
  out=$WORK/stories-$1.gguf
  if ! "$LLMC" quantize "$MODEL" "$out" "$1" >"$WORK/$1.out" 2>"$WORK/$1.err"; then
    fail "llmc quantize $1: $(cat "$WORK/$1.err")"
    return
  fi
  [ "$(grep -c '^llmc quantize: ' "$WORK/$1.err")" = "$2" ] || fail "$1: expected $2 fallback lines, got: $(cat "$WORK/$1.err")"
  grep -q "^llmc quantize: blk.4.ffn_down.weight: rows of 172 elements are not a multiple of $1's block of .*: using f16" \
    "$WORK/$1.err" || fail "$1: no f16 fallback reported for blk.4.ffn_down.weight"
  "$LLMC" compile "$out" -o "$WORK/stories-$1.so" 2>"$WORK/$1.compile.err" || {
    fail "llmc compile of the $1 file: $(cat "$WORK/$1.compile.err")"
    return
  }
  "$LLMC" inspect "$WORK/stories-$1.so" >"$WORK/$1.inspect"
  grep -Eq "^ +blk.0.attn_output.weight +$3 " "$WORK/$1.inspect" || fail "$1: blk.0.attn_output.weight is not $3"
  grep -Eq "^ +token_embd.weight +$3 " "$WORK/$1.inspect" || fail "$1: token_embd.weight is not $3"
  "$LLMC" run "$WORK/stories-$1.so" -n 20 --temp 0 >"$WORK/$1.txt" 2>"$WORK/$1.run.err" || fail "llmc run ($1): $(cat "$WORK/$1.run.err")"
  if grep -q "^Once upon a time" "$WORK/$1.txt"; then
    echo "ok: $1: $(cat "$WORK/$1.out"); text: $(cat "$WORK/$1.txt")"
  else
    fail "$1: greedy text is \"$(cat "$WORK/$1.txt")\""
  fi
}
check_type q8_0 5 q8_0
check_type q4_0 5 q4_0
check_type q4_K 37 q4_0
check_type q6_K 37 q8_0
grep -q "using q4_0 (llama.cpp would use q5_0, which llmc does not read)" "$WORK/q4_K.err" ||
  fail "q4_K: the q4_0 fallback does not say why it is not llama.cpp's q5_0"

# TYPE in llama.cpp's spelling, and the file llama-quantize wrote.
"$LLMC" quantize "$MODEL" "$WORK/Q6_K.gguf" Q6_K >/dev/null 2>&1 || fail "llmc quantize ... Q6_K"
sum=$(sha256sum "$WORK/Q6_K.gguf" | cut -d' ' -f1)
[ "$sum" = "$LLAMA_CPP_Q6_K_SHA256" ] && echo "ok: Q6_K: identical to llama-quantize's file" ||
  fail "Q6_K: sha256 $sum, llama-quantize's file has $LLAMA_CPP_Q6_K_SHA256"

# expect_refusal STATUS MESSAGE ARGS...: fails with STATUS, says MESSAGE, leaves no output.
expect_refusal() {
  want=$1 message=$2
  shift 2
  status=0
  "$LLMC" quantize "$@" >/dev/null 2>"$WORK/refusal.err" || status=$?
  [ "$status" = "$want" ] || fail "llmc quantize $*: exit $status, expected $want"
  grep -q "$message" "$WORK/refusal.err" || fail "llmc quantize $*: no \"$message\" in: $(cat "$WORK/refusal.err")"
  [ ! -e "$WORK/refused.gguf" ] && [ ! -e "$WORK/refused.gguf.tmp" ] || fail "llmc quantize $*: left a file behind"
}
expect_refusal 1 "tensor output.weight is q8_0: .*requantizing is not supported" "$WORK/stories-q8_0.gguf" "$WORK/refused.gguf" q4_0
expect_refusal 2 "unknown TYPE q5_0" "$MODEL" "$WORK/refused.gguf" q5_0
expect_refusal 1 "no such file" "$WORK/missing.gguf" "$WORK/refused.gguf" q8_0
expect_refusal 2 "expected IN.gguf OUT.gguf TYPE" "$MODEL" "$WORK/refused.gguf"

echo "$failures failures"
[ "$failures" = 0 ]
