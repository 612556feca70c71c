#!/usr/bin/env python3
"""llmc on GGUF files of every architecture it imports, against references
llmc did not produce.

usage: check_gguf_arch.py LLMC FAMILY WORK_DIR

FAMILY is one of: llama, qwen2, gemma, qwen3, phi3, gemma2, mixtral (the
GGUF architecture, Mixtral being llama.cpp's `llama` with experts). For each
checkpoint of the family, make_gguf_arch.py converts it to GGUF as llama.cpp's
convert_hf_to_gguf.py would, with stories260K's 512-token vocabulary so that
llama.cpp's tools load the same files; `llmc compile` compiles the GGUF file
and `llmc logits` runs prompts whole, with --chunk 1 and with --chunk 5.
Every logit must be within 2e-3 of the reference (check_hf_logits.py's
tolerance):

* tests/data/hf/<name> (llama, llama_plain, mistral, qwen2, gemma): the
  logits Hugging Face transformers computed (reference.json), prefill and
  the greedy continuation; converted to f32 GGUF.
* the families without transformers checkpoints here (qwen3, phi3, gemma2,
  mixtral, and Llama's biases and linear RoPE scaling): tiny random
  checkpoints written by make_tiny_checkpoint.py's family configs, their
  weights rounded to float16 so that f32 and f16 GGUF files hold the same
  values; both are checked against hf_reference.py, the float64
  reimplementation of transformers that check_reference_archs.py
  validates.

Exit status 1 if anything fails.
"""
import json
import os
import random
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hf_reference  # noqa: E402
import make_gguf_arch  # noqa: E402
import make_tiny_checkpoint as tiny  # noqa: E402
from check_hf_logits import TOLERANCE, max_abs_diff, read_f32  # noqa: E402

DATA = os.path.join(HERE, "..", "data")
VOCAB = os.path.join(DATA, "models", "stories260K.gguf")  # 512 tokens, like every model here
# general.name: not the folder's, which may say "phi3" (make_gguf_arch.py).
NAME = "llmc gguf_arch test"
RUNS = [("whole", []), ("chunk1", ["--chunk", "1"]), ("chunk5", ["--chunk", "5"])]
PROMPT_LENGTHS = [9, 23]

# Tiny checkpoints: make_tiny_checkpoint.py's family configs with the
# vocabulary of VOCAB. GGUF files do not carry Gemma 2's
# query_pre_attn_scalar: llama.cpp uses the head size (2B, 9B), or D/H for a
# model of 46 blocks (27B), so the checkpoints here have those values
# (docs/gguf.md).
TINY = {
    "llama_bias_linear": (tiny.llama(attention_bias=True, mlp_bias=True, vocab_size=512,
                                     rope_parameters=dict(tiny.rope(10000.0, factor=4.0),
                                                          rope_type="linear")), None),
    "qwen3": (tiny.qwen3(vocab_size=512), None),
    "qwen3_bias": (tiny.qwen3(attention_bias=True, tie_word_embeddings=False, vocab_size=512), None),
    "phi3": (tiny.phi3(vocab_size=512), None),
    "phi3_partial_swa": (tiny.phi3(rope_parameters=tiny.rope(10000.0, partial_rotary_factor=0.5),
                                   sliding_window=6, vocab_size=512), None),
    "gemma2": (tiny.gemma2(attn_logit_softcapping=3.0, final_logit_softcapping=5.0,
                           query_pre_attn_scalar=32, sliding_window=4, vocab_size=512), None),
    "gemma2_46": (tiny.gemma2(attn_logit_softcapping=3.0, final_logit_softcapping=5.0,
                              query_pre_attn_scalar=16, sliding_window=4, vocab_size=512,
                              num_hidden_layers=46,
                              layer_types=["sliding_attention", "full_attention"] * 23), None),
    "mixtral": (tiny.mixtral(vocab_size=512), "per_expert"),
}

# GGUF architecture -> its checkpoints: ("hf", tests/data/hf folder) or ("tiny", TINY key).
FAMILIES = {
    "llama": [("hf", "llama"), ("hf", "llama_plain"), ("hf", "mistral"),
              ("tiny", "llama_bias_linear")],
    "qwen2": [("hf", "qwen2")],
    "gemma": [("hf", "gemma")],
    "qwen3": [("tiny", "qwen3"), ("tiny", "qwen3_bias")],
    "phi3": [("tiny", "phi3"), ("tiny", "phi3_partial_swa")],
    "gemma2": [("tiny", "gemma2"), ("tiny", "gemma2_46")],
    "mixtral": [("tiny", "mixtral")],
}


def f16_exact(values):
    """values rounded to the nearest float16 (kept as floats)."""
    return list(struct.unpack("<%de" % len(values), struct.pack("<%de" % len(values), *values)))


def make_tiny(name, folder):
    """Writes TINY[name] as make_tiny_checkpoint.make writes its variants,
    with every weight rounded to float16; returns its config."""
    cfg, moe_layout = TINY[name]
    os.makedirs(folder, exist_ok=True)
    rng = random.Random("llmc-gguf-arch-" + name)
    one_plus = cfg["model_type"] in ("gemma", "gemma2")
    tensors = {n: (shape, f16_exact(tiny.random_values(n, shape, one_plus, rng)))
               for n, shape in sorted(tiny.tensor_shapes(cfg, moe_layout).items())}
    tiny.write_safetensors(os.path.join(folder, "model.safetensors"), tensors)
    tiny.write_json(os.path.join(folder, "config.json"), cfg)
    return cfg


def run_logits(llmc, so, ids, out, extra):
    subprocess.run([llmc, "logits", so, "--tokens", ",".join(map(str, ids)), "-o", out] + extra,
                   check=True)
    return read_f32(out)


def report(label, diff):
    ok = diff <= TOLERANCE
    print(f"{label} max |diff| = {diff:.3g} {'ok' if ok else 'FAIL (tolerance %g)' % TOLERANCE}")
    return 0 if ok else 1


def compile_gguf(llmc, folder, work, name, outtype):
    gguf = os.path.join(work, f"{name}-{outtype}.gguf")
    so = os.path.join(work, f"{name}-{outtype}.so")
    make_gguf_arch.convert(folder, gguf, outtype, VOCAB, NAME)
    subprocess.run([llmc, "compile", gguf, "-o", so], check=True)
    return so


def check_transformers(llmc, name, work):
    """A tests/data/hf checkpoint as f32 GGUF against transformers' logits."""
    folder = os.path.join(DATA, "hf", name)
    so = compile_gguf(llmc, folder, work, name, "f32")
    ref = json.load(open(os.path.join(folder, "reference.json")))
    failures = 0
    for i, p in enumerate(ref["prompts"]):
        ids, vocab = p["input_ids"], p["prefill_shape"][1]
        want = read_f32(os.path.join(folder, p["prefill_logits"]))
        for label, extra in RUNS:
            got = run_logits(llmc, so, ids, os.path.join(work, f"{name}_{i}_{label}.f32"), extra)
            failures += report(f"{name} f32 prompt {i} ({len(ids)} tokens) {label:7s}",
                               max_abs_diff(got, want))
        n, steps = len(ids), len(p["greedy_ids"])
        got = run_logits(llmc, so, ids + p["greedy_ids"], os.path.join(work, f"{name}_{i}_greedy.f32"),
                         ["--chunk", "5"])[(n - 1) * vocab:(n - 1 + steps) * vocab]
        failures += report(f"{name} f32 prompt {i} ({len(ids)} tokens) greedy ",
                           max_abs_diff(got, read_f32(os.path.join(folder, p["greedy_logits"]))))
    return failures


def check_tiny(llmc, name, work):
    """A tiny checkpoint as f32 and f16 GGUF against hf_reference.py."""
    folder = os.path.join(work, name)
    cfg = make_tiny(name, folder)
    ref = hf_reference.Reference(folder)
    rng = random.Random("llmc-gguf-arch-prompt-" + name)
    prompts = [[1] + [rng.randrange(cfg["vocab_size"]) for _ in range(n - 1)] for n in PROMPT_LENGTHS]
    wants = [[v for row in ref.logits(ids) for v in row] for ids in prompts]
    failures = 0
    for outtype in ("f32", "f16"):
        so = compile_gguf(llmc, folder, work, name, outtype)
        for i, (ids, want) in enumerate(zip(prompts, wants)):
            for label, extra in RUNS:
                out = os.path.join(work, f"{name}_{outtype}_{i}_{label}.f32")
                failures += report(f"{name} {outtype} prompt {i} ({len(ids)} tokens) {label:7s}",
                                   max_abs_diff(run_logits(llmc, so, ids, out, extra), want))
    return failures


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in FAMILIES:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    llmc, family, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    failures = 0
    for kind, name in FAMILIES[family]:
        failures += (check_transformers if kind == "hf" else check_tiny)(llmc, name, work)
    print(f"{family}: {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
