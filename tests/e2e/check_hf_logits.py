#!/usr/bin/env python3
"""End-to-end check of one Hugging Face test model against transformers' logits.

usage: check_hf_logits.py LLMC MODEL_DIR WORK_DIR

Compiles MODEL_DIR with `llmc compile`, then for every prompt in
MODEL_DIR/reference.json runs `llmc logits` whole, with --chunk 1 and with
--chunk 5, and compares with the reference prefill logits; then feeds the prompt
plus its greedy continuation and compares the continuation's positions with the
reference greedy logits. Fails if any value differs by more than 2e-3. The
references were computed by Hugging Face transformers, not by llmc.
"""
import array
import json
import os
import subprocess
import sys
import time

TOLERANCE = 2e-3


def read_f32(path):
    a = array.array("f")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    return a


def max_abs_diff(got, want):
    if len(got) != len(want):
        return float("inf")
    return max(abs(g - w) for g, w in zip(got, want))


def main():
    llmc, model_dir, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    name = os.path.basename(os.path.normpath(model_dir))
    so = os.path.join(work, name + ".so")
    t0 = time.time()
    subprocess.run([llmc, "compile", model_dir, "-o", so], check=True)
    print(f"{name}: compiled in {time.time() - t0:.2f} s")
    ref = json.load(open(os.path.join(model_dir, "reference.json")))
    failures = 0
    for i, p in enumerate(ref["prompts"]):
        ids = p["input_ids"]
        vocab = p["prefill_shape"][1]
        want = read_f32(os.path.join(model_dir, p["prefill_logits"]))
        cases = [("whole", ids, []), ("chunk1", ids, ["--chunk", "1"]), ("chunk5", ids, ["--chunk", "5"])]
        full = ids + p["greedy_ids"]
        cases.append(("greedy", full, ["--chunk", "5"]))
        for label, tokens, extra in cases:
            out = os.path.join(work, f"{name}_{i}_{label}.f32")
            subprocess.run([llmc, "logits", so, "--tokens", ",".join(map(str, tokens)), "-o", out] + extra,
                           check=True)
            got = read_f32(out)
            if label == "greedy":
                n = len(ids)
                got = got[(n - 1) * vocab:(n - 1 + len(p["greedy_ids"])) * vocab]
                expect = read_f32(os.path.join(model_dir, p["greedy_logits"]))
            else:
                expect = want
            diff = max_abs_diff(got, expect)
            ok = diff <= TOLERANCE
            failures += not ok
            print(f"{name}: prompt {i} ({len(ids)} tokens) {label:7s} max |diff| = {diff:.3g} "
                  f"{'ok' if ok else 'FAIL (tolerance %g)' % TOLERANCE}")
    print(f"{name}: {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
