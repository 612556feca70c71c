#!/bin/sh
# runtime_cli.sh — the llmc tool's runtime commands (inspect, logits, invoke)
# on the hand-written fixture model (tests/fixtures/fake_model.c), with
# outputs compared byte for byte against values worked out by hand from the
# fixture's formula, and the error paths' exit codes.
#
# usage: runtime_cli.sh LLMC FAKE_MODEL.so FAKE_MODEL_BAD_VERSION.so WORKDIR
set -eu
LLMC=$1 MODEL=$2 BAD_MODEL=$3 WORK=$4
mkdir -p "$WORK"
cd "$WORK"
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# Writes the 32-bit hex words given as arguments to stdout, little-endian.
hex_words() {
  for w in "$@"; do
    for shift in 0 8 16 24; do
      # shellcheck disable=SC2059 # the format is the byte, as an octal escape
      printf "\\$(printf %03o $(((0x$w >> shift) & 255)))"
    done
  done
}

# The file's contents as 32-bit hex words, one line.
words_of() { od -An -v -tx4 "$1" | tr -s ' \n' '  ' | sed 's/^ //; s/ $//'; }

# expect_rc RC NEEDLE CMD...: CMD exits with RC and its stderr contains NEEDLE.
expect_rc() {
  want=$1 needle=$2
  shift 2
  rc=0
  "$@" >out.txt 2>err.txt || rc=$?
  [ "$rc" = "$want" ] || fail "$* exited $rc, expected $want: $(cat err.txt)"
  grep -qF -- "$needle" err.txt || fail "$*: stderr lacks '$needle': $(cat err.txt)"
}

# ---- inspect ----
"$LLMC" inspect "$MODEL" >inspect.txt || fail "llmc inspect exited $?"
for line in \
  "abi_version:  2 (runtime 2)" \
  "target:       x86_64-unknown-linux-gnu, cpu generic, features (none)" \
  "  step      llmc_step(step: step)" \
  "  batchful  fake_region_0(step: step, x: f32[T,4] in, y: f32[T,4] out)" \
  "  bigram  f32    [8,8]             0           256" \
  "  bias    f32    [8]             256            32" \
  '	"format":	"llmc-model-so",'; do
  grep -qxF -- "$line" inspect.txt || fail "llmc inspect lacks the line '$line'"
done

# ---- logits: tokens 1,2,1,3,1 -> rows 10t + v + v/4 + (earlier equal tokens) ----
expected_logits="41200000 41340000 41480000 415c0000 41700000 41820000 418c0000 41960000 \
41a00000 41aa0000 41b40000 41be0000 41c80000 41d20000 41dc0000 41e60000 \
41300000 41440000 41580000 416c0000 41800000 418a0000 41940000 419e0000 \
41f00000 41fa0000 42020000 42070000 420c0000 42110000 42160000 421b0000 \
41400000 41540000 41680000 417c0000 41880000 41920000 419c0000 41a60000"
# shellcheck disable=SC2086 # one argument per word
hex_words $expected_logits >expected.f32
for args in "" "--chunk 1" "--chunk 3 -t 2" "--chunk 5 -t 1" "--chunk 9"; do
  # shellcheck disable=SC2086
  "$LLMC" logits "$MODEL" --tokens 1,2,1,3,1 -o got.f32 $args || fail "llmc logits $args exited $?"
  cmp -s got.f32 expected.f32 || fail "llmc logits $args: got $(words_of got.f32)"
done
LLMC_WEIGHTS=copy "$LLMC" logits "$MODEL" --tokens 1,2,1,3,1 -o got.f32 -t 2 ||
  fail "LLMC_WEIGHTS=copy llmc logits exited $?"
cmp -s got.f32 expected.f32 || fail "LLMC_WEIGHTS=copy llmc logits: got $(words_of got.f32)"

# ---- invoke: y = 2 x + token + bias[d], x = 0..11, tokens 1,2,3 ----
hex_words 0 3f800000 40000000 40400000 40800000 40a00000 40c00000 40e00000 \
  41000000 41100000 41200000 41300000 >x.f32
hex_words 3f800000 40500000 40b00000 40f80000 41200000 41440000 41680000 41860000 \
  41980000 41aa0000 41bc0000 41ce0000 >y_expected.f32
"$LLMC" invoke "$MODEL" fake_region_0 --tokens 1,2,3 --in x=x.f32 --out y=y.f32 >invoke.txt ||
  fail "llmc invoke fake_region_0 exited $?"
cmp -s y.f32 y_expected.f32 || fail "llmc invoke fake_region_0: got $(words_of y.f32)"
grep -qxF "y f32[3,4] -> y.f32" invoke.txt || fail "llmc invoke printed: $(cat invoke.txt)"
"$LLMC" invoke "$MODEL" llmc_step --tokens 4,4 -t 2 || fail "llmc invoke llmc_step exited $?"

# ---- errors ----
expect_rc 1 "the model has: llmc_step, fake_region_0" "$LLMC" invoke "$MODEL" nope --tokens 1
hex_words 0 0 0 >short.f32
expect_rc 1 "needs 48" "$LLMC" invoke "$MODEL" fake_region_0 --tokens 1,2,3 --in x=short.f32
expect_rc 1 "--out z: the entry point has no tensor argument" "$LLMC" invoke "$MODEL" fake_region_0 --tokens 1 --out z=z.f32
expect_rc 1 "needs --tokens" "$LLMC" invoke "$MODEL" fake_region_0
expect_rc 1 "not below the vocab size 8" "$LLMC" logits "$MODEL" --tokens 1,8 -o got.f32
many=0
for _ in $(seq 64); do many="$many,1"; done
expect_rc 1 "max_context 64" "$LLMC" logits "$MODEL" --tokens "$many" -o got.f32
expect_rc 1 "model ABI version 3, this runtime speaks ABI version 2" \
  "$LLMC" logits "$BAD_MODEL" --tokens 1 -o got.f32
expect_rc 1 "not an ELF file" "$LLMC" inspect inspect.txt
expect_rc 1 "cannot open" "$LLMC" inspect missing.so
expect_rc 2 "-o OUT.f32 is required" "$LLMC" logits "$MODEL" --tokens 1
expect_rc 2 "--tokens" "$LLMC" logits "$MODEL" --tokens 1,x -o got.f32
expect_rc 2 "unknown option --frob" "$LLMC" invoke "$MODEL" llmc_step --frob
expect_rc 2 "unknown command 'frobnicate'" "$LLMC" frobnicate
"$LLMC" --help | grep -q "logits" || fail "llmc --help does not list logits"
for cmd in logits inspect invoke; do
  "$LLMC" "$cmd" --help | grep -q "^usage: llmc $cmd" || fail "llmc $cmd --help"
done

if [ "$failures" -ne 0 ]; then
  echo "runtime_cli: $failures failure(s)" >&2
  exit 1
fi
echo "runtime_cli: all passed"
