#!/bin/sh
# run_fuzzers.sh BUILD_DIR SECONDS — builds the input-parsing fuzz targets
# (GGUF, safetensors, tokenizer.json, chat templates) with
# clang-19 (libFuzzer + AddressSanitizer + UndefinedBehaviorSanitizer, every
# sanitizer report fatal) straight from the sources, without the CMake
# build, and runs each for SECONDS on inputs up to 64 KiB, starting from
# tests/fuzz/corpus/<target>. Exits non-zero on any crash, leak, sanitizer
# report, timeout or out-of-memory; a reproducer is left in
# BUILD_DIR/fuzz/<target>-crash-*. Exits 77 (ctest: skipped) when clang-19
# or its fuzzer runtime (Debian: libclang-rt-19-dev) is not installed.
#
# New inputs found go to BUILD_DIR/fuzz/corpus/<target>, never into the
# checked-in seeds. The random seed is fixed (LLMC_FUZZ_SEED, default 1) so
# that CI explores the same inputs each time; set another to search further.
set -eu
if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
seconds=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$1/fuzz"
out=$(cd "$1/fuzz" && pwd)
clang=${CLANG:-clang-19}

if ! command -v "$clang" >/dev/null 2>&1; then
  echo "run_fuzzers: $clang not found: skipped" >&2
  exit 77
fi
flags="-std=c17 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I$src/runtime"
probe="$out/probe.c"
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return d && n; }' >"$probe"
if ! $clang $flags "$probe" -o "$out/probe" 2>/dev/null; then
  echo "run_fuzzers: $clang cannot link -fsanitize=fuzzer (install libclang-rt-19-dev): skipped" >&2
  exit 77
fi

cjson=$(pkg-config --cflags --libs libcjson)
rt="$src/runtime"
$clang $flags "$src/tests/fuzz/fuzz_gguf.c" "$rt/formats/gguf.c" "$rt/support/status.c" \
  -o "$out/fuzz_gguf"
# shellcheck disable=SC2086 # $cjson is a list of flags
$clang $flags "$src/tests/fuzz/fuzz_safetensors.c" "$rt/formats/safetensors.c" \
  "$rt/support/arena.c" "$rt/support/file.c" "$rt/support/status.c" $cjson -lm \
  -o "$out/fuzz_safetensors"
tok=$(pkg-config --cflags --libs libpcre2-8 libutf8proc)
# shellcheck disable=SC2086 # $cjson and $tok are lists of flags
$clang $flags "$src/tests/fuzz/fuzz_tokenizer_json.c" "$rt/tokenizer.c" "$rt/tokenizer_hf.c" \
  "$rt/tokenizer_bpe.c" "$rt/tokenizer_gguf.c" "$rt/pretokenize.c" "$rt/formats/gguf.c" \
  "$rt/support/file.c" "$rt/support/status.c" -I"$rt/include" $cjson $tok -lm -o "$out/fuzz_tokenizer_json"

# shellcheck disable=SC2086 # $cjson is a list of flags
$clang $flags "$src/tests/fuzz/fuzz_jinja.c" "$rt/chat_template.c" "$rt"/jinja_*.c \
  "$rt/support/arena.c" "$rt/support/status.c" $cjson -lm -o "$out/fuzz_jinja"

for target in fuzz_gguf fuzz_safetensors fuzz_tokenizer_json fuzz_jinja; do
  mkdir -p "$out/corpus/$target"
  echo "run_fuzzers: $target for ${seconds}s"
  dict=""
  [ -f "$src/tests/fuzz/${target#fuzz_}.dict" ] && dict="-dict=$src/tests/fuzz/${target#fuzz_}.dict"
  # shellcheck disable=SC2086 # $dict is empty or one flag
  "$out/$target" $dict -seed="${LLMC_FUZZ_SEED:-1}" -max_len=65536 -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/$target-" \
    "$out/corpus/$target" "$src/tests/fuzz/corpus/$target" 2>"$out/$target.log" || {
    tail -n 60 "$out/$target.log" >&2
    echo "run_fuzzers: $target FAILED (log: $out/$target.log)" >&2
    exit 1
  }
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$out/$target.log" | sed "s/^/  $target /"
done
echo "run_fuzzers: no crashes"
