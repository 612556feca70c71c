#!/usr/bin/env python3
"""llmc against an independent Python reference, for the families with no
transformers-made checkpoint here (Qwen3, Phi-3, Gemma 2, Mixtral).

usage: check_reference_archs.py LLMC WORK_DIR

1. Proves the reference faithful: hf_reference.py's prefill logits for every
   prompt of tests/data/hf/{llama,llama_plain,mistral,qwen2,gemma} (made by
   transformers 5.17) must match transformers' within 1e-4.
2. For every variant of make_tiny_checkpoint.py: writes the checkpoint under
   WORK_DIR, compiles it with `llmc compile`, runs `llmc logits` on two
   prompts (9 and 23 tokens, random ids after a first id 1) whole, with
   --chunk 1 and with --chunk 5, and compares with hf_reference.py's logits:
   every value within 2e-3, the tolerance of the transformers checks
   (check_hf_logits.py).

transformers cannot run on this machine, so the held-out families are checked
against hf_reference.py, a float64 reimplementation of their modeling code;
step 1 is what makes that comparison mean something. Exit status 1 if
anything fails.
"""
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_reference  # noqa: E402
import make_tiny_checkpoint  # noqa: E402

TOLERANCE = 2e-3
HF_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "hf")
HF_MODELS = ["llama", "llama_plain", "mistral", "qwen2", "gemma"]
PROMPT_LENGTHS = [9, 23]
RUNS = [("whole", []), ("chunk1", ["--chunk", "1"]), ("chunk5", ["--chunk", "5"])]


def prompts(variant, vocab):
    rng = random.Random("llmc-prompt-" + variant)
    return [[1] + [rng.randrange(vocab) for _ in range(n - 1)] for n in PROMPT_LENGTHS]


def check_variant(llmc, variant, work):
    """Compiles one tiny checkpoint and compares llmc with the reference.
    Returns (number of failures, largest difference)."""
    folder = os.path.join(work, variant)
    cfg = make_tiny_checkpoint.make(variant, folder)
    so = os.path.join(work, variant + ".so")
    subprocess.run([llmc, "compile", folder, "-o", so], check=True)
    ref = hf_reference.Reference(folder)
    failures, worst = 0, 0.0
    for i, ids in enumerate(prompts(variant, cfg["vocab_size"])):
        want = [v for row in ref.logits(ids) for v in row]
        for label, extra in RUNS:
            out = os.path.join(work, f"{variant}_{i}_{label}.f32")
            subprocess.run([llmc, "logits", so, "--tokens", ",".join(map(str, ids)), "-o", out] + extra,
                           check=True)
            diff = hf_reference.max_abs_diff(hf_reference.read_f32(out), want)
            ok = diff <= TOLERANCE
            failures += not ok
            worst = max(worst, diff)
            print(f"llmc vs reference: {variant} prompt {i} ({len(ids)} tokens) {label:6s} "
                  f"max |diff| = {diff:.3g} {'ok' if ok else 'FAIL (tolerance %g)' % TOLERANCE}")
    return failures, worst


def main():
    if len(sys.argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    llmc, work = sys.argv[1:3]
    os.makedirs(work, exist_ok=True)
    t0 = time.time()
    failures = sum(hf_reference.validate(os.path.join(HF_DATA, m)) for m in HF_MODELS)
    print(f"reference validated on {len(HF_MODELS)} transformers checkpoints in {time.time() - t0:.1f} s")
    summary = []
    for variant in make_tiny_checkpoint.VARIANTS:
        f, worst = check_variant(llmc, variant, work)
        failures += f
        summary.append(f"  {variant:18s} max |diff| {worst:.3g}{'  FAIL' if f else ''}")
    print("llmc vs reference, per variant:\n" + "\n".join(summary))
    print(f"{failures} failures in {time.time() - t0:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
