#!/bin/sh
# check_self_contained.sh — a model.so is one self-contained file: it
# carries its tokenizer (and its chat template), so it keeps working once
# its source is gone and it has been moved.
#
# Two models, each compiled from a copy in a temporary folder:
# stories260K.gguf (its tokenizer is the file's tokenizer.ggml.* keys) and
# a Hugging Face folder (tests/data/hf/llama's weights with Llama 2's
# tokenizer.json and a chat template added). For each:
#  - `llmc tokenize`, `llmc run` (greedy from BOS) and, for the folder,
#    `llmc run --chat` print the same before and after the copy is deleted
#    and the .so moved, and the ids are those of the source tokenizer;
#  - the .so names the temporary folder only as the value of its two
#    informational "source" fields (compiled.source, tokenizer.source);
#  - for the GGUF, the embedded tokenizer is its keys, not the weights.
# Last, a model.json whose tokenizer file is missing does not compile.
#
# usage: check_self_contained.sh LLMC REPO_ROOT WORKDIR
set -eu
LLMC=$1 ROOT=$2 WORK=$3
DATA=$ROOT/tests/data
rm -rf "$WORK"
mkdir -p "$WORK"
SRC=$(mktemp -d "${TMPDIR:-/tmp}/llmc-self-contained-XXXXXX")
trap 'rm -rf "$SRC"' EXIT
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
TEXT="Once upon a time"

# outputs TAG SO CHAT: what the commands print for SO, into
# $WORK/TAG.{tok,run,chat}.txt (chat only when CHAT is 1).
outputs() {
  "$LLMC" tokenize "$2" "$TEXT" >"$WORK/$1.tok.txt" 2>"$WORK/$1.err" || fail "$1: tokenize: $(cat "$WORK/$1.err")"
  "$LLMC" run "$2" -n 5 --temp 0 >"$WORK/$1.run.txt" 2>"$WORK/$1.err" || fail "$1: run: $(cat "$WORK/$1.err")"
  [ "$3" = 0 ] || "$LLMC" run "$2" -p in --chat -n 3 --temp 0 >"$WORK/$1.chat.txt" 2>"$WORK/$1.err" ||
    fail "$1: run --chat: $(cat "$WORK/$1.err")"
}

# check NAME SOURCE REFERENCE_TOKENIZER CHAT: compiles SOURCE (inside
# $SRC/NAME), records the outputs, deletes $SRC/NAME, moves the .so to
# $WORK and compares.
check() {
  "$LLMC" compile "$2" -o "$SRC/$1.so" 2>"$WORK/$1.err" || {
    fail "$1: compile: $(cat "$WORK/$1.err")"
    return
  }
  outputs "$1.before" "$SRC/$1.so" "$4"
  [ "$(cat "$WORK/$1.before.tok.txt")" = "$("$LLMC" tokenize "$3" "$TEXT")" ] &&
    echo "ok: $1: tokenizes as $(basename "$3")" || fail "$1: ids differ from those of $3"
  rm -rf "${SRC:?}/$1"
  mv "$SRC/$1.so" "$WORK/$1.so"
  outputs "$1.after" "$WORK/$1.so" "$4"
  for out in tok run chat; do
    [ -f "$WORK/$1.before.$out.txt" ] || continue
    if cmp -s "$WORK/$1.before.$out.txt" "$WORK/$1.after.$out.txt" && [ -s "$WORK/$1.after.$out.txt" ]; then
      echo "ok: $1: $out prints the same with the source gone and the .so moved"
    else
      fail "$1: $out printed '$(cat "$WORK/$1.before.$out.txt")', then '$(cat "$WORK/$1.after.$out.txt")'"
    fi
  done
  # strings(1) would show the mentions; this also says where each one is.
  if python3 - "$WORK/$1.so" "$SRC" <<'PY'
import sys
data, src = open(sys.argv[1], "rb").read(), sys.argv[2].encode()
at, i = [], data.find(src)
while i >= 0:
    at.append(i)
    i = data.find(src, i + 1)
bad = [i for i in at if not data[:i].endswith(b'"source":"')]
sys.exit(1 if bad or len(at) != 2 else 0)
PY
  then
    echo "ok: $1: names its source folder only as a \"source\""
  else
    fail "$1: the .so names $SRC other than in two \"source\" fields: $(strings "$WORK/$1.so" | grep -F "$SRC")"
  fi
}

mkdir "$SRC/stories"
cp "$DATA/models/stories260K.gguf" "$SRC/stories/"
check stories "$SRC/stories/stories260K.gguf" "$DATA/models/stories260K.gguf" 0
"$LLMC" inspect "$WORK/stories.so" >"$WORK/stories.inspect.txt"
if python3 - "$WORK/stories.inspect.txt" "$DATA/models/stories260K.gguf" <<'PY'
import json, os, sys
tok = json.loads(open(sys.argv[1]).read().split("\nmetadata:\n", 1)[1])["tokenizer"]
size = os.path.getsize(sys.argv[2])
print(f"embedded tokenizer: {tok['bytes']} bytes at offset {tok['offset']}, from a GGUF of {size} bytes")
sys.exit(not (tok["embedded"] == "gguf" and tok["offset"] % 64 == 0 and tok["bytes"] * 10 < size))
PY
then
  echo "ok: stories: the embedded GGUF holds the tokenizer, not the weights"
else
  fail "stories: the embedded tokenizer is not a small GGUF"
fi

mkdir "$SRC/hf"
cp "$DATA/hf/llama/config.json" "$DATA/hf/llama/model.safetensors" \
  "$DATA/tokenizers/hf-json/llama2/tokenizer.json" "$SRC/hf/"
# (Its text, "<s>in the", is ids below the model's 512: 1, 262, 278.)
printf '%s' '{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %} the' >"$SRC/hf/chat_template.jinja"
check hf "$SRC/hf" "$DATA/tokenizers/hf-json/llama2/tokenizer.json" 1

# A model.json naming a tokenizer that is not there: one clear error.
"$LLMC" import "$DATA/hf/llama_plain" -o "$WORK/plain.json"
python3 - "$WORK/plain.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["tokenizer"] = {"file": "no-such-tokenizer.json"}
json.dump(doc, open(sys.argv[1], "w"))
PY
rc=0
"$LLMC" compile "$WORK/plain.json" -o "$WORK/plain.so" 2>"$WORK/plain.err" || rc=$?
if [ "$rc" = 1 ] && grep -q "$WORK/no-such-tokenizer.json" "$WORK/plain.err" && [ ! -e "$WORK/plain.so" ]; then
  echo "ok: a missing tokenizer file is a compile error"
else
  fail "missing tokenizer file: status $rc, $(cat "$WORK/plain.err")"
fi

echo "$failures failures"
[ "$failures" = 0 ]
