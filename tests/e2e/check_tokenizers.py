#!/usr/bin/env python3
"""check_tokenizers.py — `llmc tokenize` against ids other tokenizers gave.

usage: check_tokenizers.py LLMC DATA_DIR [SET ...]

DATA_DIR is tests/data/tokenizers. The sets (all by default):

  llama.cpp  every string of every llama.cpp/*.gguf.inp (separated by
             "\\n__ggml_vocab_test__\\n") must give the ids on the matching
             line of the .out file; those references were made with special
             tokens not parsed, so this runs --no-parse-special
  trained    every entry of trained/reference.json: "ids" are what Hugging
             Face tokenizers gives for the tokenizer.json (special tokens in
             the text parsed: llmc tokenize's default); "ids_sentencepiece",
             where given, what sentencepiece gives (which never parses
             special tokens: checked with --no-parse-special)
  hf-json    the real tokenizer.json files of hf-json/: on the llama.cpp
             test strings against the .out of the GGUF holding the same
             vocabulary (both references come from Hugging Face's tokenizer
             of that model: llama2 ~ llama-spm, phi-3 ~ phi-3, falcon ~
             falcon), and every entry of hf-json/reference.json (ids Hugging
             Face tokenizers 0.23.2 gives, special tokens parsed)

Each tokenizer is loaded once: its texts go to `llmc tokenize --batch` as a
JSON array on standard input (one id array per line comes back). The first
text of each tokenizer is also run the plain way, as the only argument and
on standard input, which must give the same ids. Prints one line per
failure and a summary per set; exits 1 if anything failed.
"""
import json
import os
import subprocess
import sys

SEPARATOR = "\n__ggml_vocab_test__\n"


def run(llmc, source, parse_special, extra, stdin):
    args = [llmc, "tokenize", source] + ([] if parse_special else ["--no-parse-special"]) + extra
    proc = subprocess.run(args, input=stdin.encode("utf-8"), capture_output=True)
    if proc.returncode != 0:
        return None, "exit %d: %s" % (proc.returncode, proc.stderr.decode("utf-8", "replace").strip())
    return [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()], None


def tokenize_all(llmc, source, texts, parse_special):
    """The ids of every text, or an error message for each."""
    lines, err = run(llmc, source, parse_special, ["--batch"], json.dumps(texts, ensure_ascii=False))
    if err or len(lines) != len(texts):
        return [err or "%d lines for %d texts" % (len(lines), len(texts))] * len(texts)
    return lines


def llama_cpp_cases(data_dir, vocab):
    """(text, ids) pairs of llama.cpp's test for ggml-vocab-VOCAB.gguf."""
    base = os.path.join(data_dir, "llama.cpp", "ggml-vocab-%s.gguf" % vocab)
    with open(base + ".inp", encoding="utf-8", newline="") as f:
        texts = f.read().split(SEPARATOR)
    if texts and texts[-1] == "":
        texts.pop()
    with open(base + ".out", encoding="utf-8") as f:
        lines = f.read().split("\n")
    if len(lines) < len(texts):
        raise SystemExit("%s.out: %d lines for %d strings" % (base, len(lines), len(texts)))
    return [(t, [int(x) for x in line.split()]) for t, line in zip(texts, lines)]


def check(llmc, source, cases, parse_special, label):
    failed = 0
    got_all = tokenize_all(llmc, source, [t for t, _ in cases], parse_special)
    for i, ((text, want), got) in enumerate(zip(cases, got_all)):
        if got != want:
            failed += 1
            print("FAIL %s #%d %r\n  want %s\n  got  %s" % (label, i, text, want, got))
    # The plain contract: TEXT as an argument ("--" first) and on standard input.
    text, want = cases[0]
    for extra, stdin in ((["--", text], ""), ([], text)):
        lines, err = run(llmc, source, parse_special, extra, stdin)
        if err or lines != [want]:
            failed += 1
            print("FAIL %s plain %s: want %s, got %s" % (label, extra[:1] or "stdin", want, err or lines))
    return len(cases) + 2 - failed, failed


def set_llama_cpp(llmc, data_dir):
    passed = failed = 0
    folder = os.path.join(data_dir, "llama.cpp")
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".gguf"):
            continue
        vocab = name[len("ggml-vocab-"):-len(".gguf")]
        p, f = check(llmc, os.path.join(folder, name), llama_cpp_cases(data_dir, vocab), False, vocab)
        passed, failed = passed + p, failed + f
    return passed, failed


def set_trained(llmc, data_dir):
    folder = os.path.join(data_dir, "trained")
    with open(os.path.join(folder, "reference.json"), encoding="utf-8") as f:
        ref = json.load(f)
    passed = failed = 0
    for name, entries in sorted(ref.items()):
        if name.startswith("_"):
            continue
        source = os.path.join(folder, name + ".json")
        p, f = check(llmc, source, [(e["text"], e["ids"]) for e in entries], True, name)
        passed, failed = passed + p, failed + f
        spm = [(e["text"], e["ids_sentencepiece"]) for e in entries if "ids_sentencepiece" in e]
        if spm:
            p, f = check(llmc, source, spm, False, name + " (sentencepiece)")
            passed, failed = passed + p, failed + f
    return passed, failed


# hf-json tokenizer -> the llama.cpp vocabulary made from the same model.
SAME_VOCAB = {"llama2": "llama-spm", "phi-3": "phi-3", "falcon-tokenizer": "falcon"}


def set_hf_json(llmc, data_dir):
    passed = failed = 0
    for folder, vocab in sorted(SAME_VOCAB.items()):
        source = os.path.join(data_dir, "hf-json", folder, "tokenizer.json")
        p, f = check(llmc, source, llama_cpp_cases(data_dir, vocab), False, folder)
        passed, failed = passed + p, failed + f
    with open(os.path.join(data_dir, "hf-json", "reference.json"), encoding="utf-8") as f:
        ref = json.load(f)
    for folder, entries in sorted(ref.items()):
        if folder.startswith("_"):
            continue
        source = os.path.join(data_dir, "hf-json", folder, "tokenizer.json")
        cases = [(e["text"], e["ids"]) for e in entries]
        p, f = check(llmc, source, cases, True, folder + " (reference.json)")
        passed, failed = passed + p, failed + f
    return passed, failed


SETS = {"llama.cpp": set_llama_cpp, "trained": set_trained, "hf-json": set_hf_json}


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    llmc, data_dir = sys.argv[1], sys.argv[2]
    names = sys.argv[3:] or list(SETS)
    total_failed = 0
    for name in names:
        passed, failed = SETS[name](llmc, data_dir)
        total_failed += failed
        print("%s: %d passed, %d failed" % (name, passed, failed))
    sys.exit(1 if total_failed else 0)


if __name__ == "__main__":
    main()
