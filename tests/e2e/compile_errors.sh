#!/bin/sh
# compile_errors.sh — bad input to `llmc compile`: each case must print one
# clear error naming the file and the place in it, exit with status 1, and
# leave no output (nor temporary files) behind; an existing output file is
# left as it was.
#
# usage: compile_errors.sh LLMC HF_FOLDER WORKDIR   (HF_FOLDER: a good checkpoint)
set -eu
LLMC=$1 HF=$(cd "$2" && pwd) WORK=$3
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# A good model.json over the checkpoint, to break in different ways.
"$LLMC" import "$HF" -o good.json || { echo "FAIL: llmc import of a good folder" >&2; exit 1; }

# edit OUT PYTHON: writes OUT from good.json after running PYTHON on `d`.
edit() {
  python3 - "$1" "$2" <<'PY'
import json, sys
d = json.load(open("good.json"))
exec(sys.argv[2])
open(sys.argv[1], "w").write(json.dumps(d) if not isinstance(d, str) else d)
PY
}

# expect_error SRC NEEDLE: compiling SRC fails with status 1, stderr holds
# NEEDLE, and neither the output nor its temporaries exist afterwards.
expect_error() {
  rc=0
  "$LLMC" compile "$1" -o out.so >stdout.txt 2>stderr.txt || rc=$?
  [ "$rc" = 1 ] || fail "$1: exit status $rc, expected 1 ($(cat stderr.txt))"
  grep -qF -- "$2" stderr.txt || fail "$1: message lacks '$2': $(cat stderr.txt)"
  [ "$(wc -l <stderr.txt)" -le 2 ] || fail "$1: more than one error line: $(cat stderr.txt)"
  for f in out.so out.so.tmp out.so.tmp.o; do
    [ ! -e "$f" ] || fail "$1: left $f behind"
  done
  echo "ok: $1: $(cat stderr.txt)"
}

printf '{"format": "llmc-model", "version": 1,' >truncated.json
expect_error truncated.json "truncated.json:1: not valid JSON"
expect_error missing.json "cannot open missing.json"
edit version.json 'd["version"] = 7'
expect_error version.json "version.json:/version: unsupported version"
edit unknown_op.json 'd["graph"][5]["op"] = "frobnicate"'
expect_error unknown_op.json "unknown_op.json:/graph/5/op: unknown op \"frobnicate\""
edit bad_arg.json 'd["graph"][5]["args"][0] = "nowhere"'
expect_error bad_arg.json "bad_arg.json:/graph/5/args/0: \"nowhere\" is neither an earlier node nor a tensor"
edit bad_dtype.json 'd["tensors"][1]["dtype"] = "f64"'
expect_error bad_dtype.json "bad_dtype.json:/tensors/1/dtype: unknown tensor dtype \"f64\""
# A weight whose shape does not fit the graph: the node using it is named.
edit bad_shape.json '
for t in d["tensors"]:
    if t["name"] == "model.layers.0.self_attn.q_proj.weight": t["shape"] = [128, 64]'
expect_error bad_shape.json "inner dims 128 vs 64"
edit missing_file.json 'd["weight_files"][0]["path"] = "no/such/model.safetensors"'
expect_error missing_file.json "missing_file.json:/weight_files/0: cannot open"
# A weight file cut short: the tensor that no longer fits is named.
mkdir -p short
head -c 1000000 "$HF/model.safetensors" >short/model.safetensors
edit truncated_weights.json 'd["weight_files"][0]["path"] = "short/model.safetensors"'
expect_error truncated_weights.json "(truncated file?)"

# A tokenizer this llmc cannot use stops the compile, not the first run.
python3 - "$HF/../../tokenizers/hf-json/llama2/tokenizer.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
t["pre_tokenizer"] = {"type": "NoSuchPreTokenizer"}
json.dump(t, open("unusable_tokenizer.json", "w"))
PY
edit bad_tokenizer.json 'd["tokenizer"] = {"file": "unusable_tokenizer.json"}'
expect_error bad_tokenizer.json 'pre-tokenizer "NoSuchPreTokenizer" is not supported'

# Hugging Face folders: unknown architecture, truncated safetensors.
mkdir -p unknown_arch truncated_hf
sed 's/LlamaForCausalLM/FrobForCausalLM/; s/"model_type": "llama"/"model_type": "frob"/' "$HF/config.json" >unknown_arch/config.json
cp "$HF/model.safetensors" unknown_arch/
expect_error unknown_arch "FrobForCausalLM"
cp "$HF/config.json" truncated_hf/
head -c 1000000 "$HF/model.safetensors" >truncated_hf/model.safetensors
expect_error truncated_hf "truncated_hf/model.safetensors"

# A CPU LLVM does not know.
rc=0
"$LLMC" compile good.json -o out.so --cpu no-such-cpu 2>stderr.txt || rc=$?
[ "$rc" = 1 ] && grep -q '"no-such-cpu" is not a CPU LLVM knows' stderr.txt && [ ! -e out.so ] ||
  fail "--cpu no-such-cpu: status $rc, $(cat stderr.txt)"

# A failed compile keeps an existing output as it was.
echo "previous model" >out.so
"$LLMC" compile unknown_op.json -o out.so 2>/dev/null && fail "compile of unknown_op.json succeeded"
[ "$(cat out.so)" = "previous model" ] || fail "a failed compile changed the existing output"
rm -f out.so

echo "$failures failures"
[ "$failures" = 0 ]
