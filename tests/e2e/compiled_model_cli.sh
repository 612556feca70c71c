#!/bin/sh
# compiled_model_cli.sh — a model compiled from examples/tiny-llama through
# `llmc inspect` and `llmc invoke`: the inspect report lists the ABI, the
# entry points with their signatures and the weights; invoking the first
# batchful region on its own yields, for its embedding output, exactly the
# rows of the checkpoint's embedding table (read here straight from the
# safetensors file, not through llmc).
#
# usage: compiled_model_cli.sh LLMC REPO_ROOT WORKDIR
set -eu
LLMC=$1 ROOT=$2 WORK=$3
mkdir -p "$WORK"
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

SO=$WORK/tiny.so
"$LLMC" compile "$ROOT/examples/tiny-llama/model.json" -o "$SO"
"$LLMC" inspect "$SO" >"$WORK/inspect.txt"
for needle in "abi_version:  2 (runtime 2)" "architecture: llama" \
  "  step      llmc_step(step: step)" \
  "  batchful  llmc_region_0(step: step, %4: f32[T,128] out, %11: f32[T,128] out)" \
  "  batchless llmc_region_1(step: step, %11: f32[T,128] in, %16: f32[T,128] out)" \
  "  tok_embd        f32    [512,128]             0        262144"; do
  grep -qF -- "$needle" "$WORK/inspect.txt" || fail "inspect lacks '$needle'"
done

"$LLMC" invoke "$SO" llmc_region_0 --tokens 5,7,9 --out "%4=$WORK/embed.f32" || fail "invoke exited $?"
python3 - "$ROOT/tests/data/hf/llama_plain/model.safetensors" "$WORK/embed.f32" <<'PY' || fail "embedding rows differ"
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
entry = json.loads(raw[8:8 + n])["model.embed_tokens.weight"]
base = 8 + n + entry["data_offsets"][0]
want = b"".join(raw[base + t * 512: base + (t + 1) * 512] for t in (5, 7, 9))
got = open(sys.argv[2], "rb").read()
sys.exit(0 if got == want else 1)
PY

"$LLMC" bench "$SO" -p 16 -n 4 -r 1 --json >"$WORK/bench.json" || fail "bench exited $?"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(not (d["pp_tok_s"] > 0 and d["tg_tok_s"] > 0))' \
  "$WORK/bench.json" || fail "bench --json: $(cat "$WORK/bench.json")"

rc=0
"$LLMC" invoke "$SO" no_such_entry --tokens 1 2>"$WORK/err.txt" || rc=$?
[ "$rc" = 1 ] && grep -q "llmc_region_0" "$WORK/err.txt" || fail "unknown entry: status $rc, $(cat "$WORK/err.txt")"

# A Hugging Face folder's chat template (tokenizer_config.json) reaches model.json.
mkdir -p "$WORK/hf_chat"
cp "$ROOT/tests/data/hf/llama_plain/config.json" "$ROOT/tests/data/hf/llama_plain/model.safetensors" "$WORK/hf_chat/"
printf '%s' '{"chat_template": [{"name": "default", "template": "{{ bos_token }}hi"}, {"name": "tool_use", "template": "x"}]}' \
  >"$WORK/hf_chat/tokenizer_config.json"
"$LLMC" import "$WORK/hf_chat" -o "$WORK/hf_chat.json" || fail "import of a folder with tokenizer_config.json"
python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["config"].get("chat_template") != "{{ bos_token }}hi")' \
  "$WORK/hf_chat.json" || fail "the default chat template of tokenizer_config.json is not in model.json"

echo "$failures failures"
[ "$failures" = 0 ]
