#!/usr/bin/env python3
"""Renders every case of chat-template reference files through
`llmc render-template` and compares the output, byte for byte, with what
jinja2 rendered under Hugging Face's settings.

    check_chat_templates.py LLMC SCRATCH_DIR REFERENCE.json...

Each reference file maps a name to {template, bos_token, eos_token, cases};
a case has messages, add_generation_prompt and extra (more variables), and
either "rendered" (the expected text) or "error" (jinja2 raised). An error
without "exception", or with "TemplateError", came from the template's
raise_exception(): llmc must exit 3 with the message on stderr. Any other
exception (TypeError, UndefinedError...) must make llmc exit 1.
Prints one line per failure and a summary; exits 1 if anything failed.
"""
import concurrent.futures
import json
import os
import subprocess
import sys


def check_case(llmc, template_path, context_path, case):
    """Returns None if the case passes, else a description of the difference."""
    proc = subprocess.run([llmc, "render-template", "--template", template_path,
                           "--context", context_path], capture_output=True, timeout=60)
    stderr = proc.stderr.decode("utf-8", "replace").strip()
    if "rendered" in case:
        want = case["rendered"].encode("utf-8")
        if proc.returncode != 0:
            return f"exit {proc.returncode} ({stderr}), expected the text {case['rendered']!r}"
        if proc.stdout != want:
            got = proc.stdout.decode("utf-8", "replace")
            return f"rendered {got!r}\n    expected {case['rendered']!r}"
        return None
    raised = case.get("exception", "TemplateError") == "TemplateError"
    want_rc = 3 if raised else 1
    if proc.returncode != want_rc:
        return f"exit {proc.returncode} ({stderr!r}), expected {want_rc}: jinja2 raised {case['error']!r}"
    if raised and case["error"] not in stderr:
        return f"stderr {stderr!r} lacks the message {case['error']!r}"
    if proc.stdout:
        return f"printed {proc.stdout!r} although rendering failed"
    return None


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    llmc, scratch, references = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(scratch, exist_ok=True)
    jobs = []  # (label, template path, context path, case)
    for reference in references:
        with open(reference, encoding="utf-8") as f:
            families = json.load(f)
        tag = os.path.splitext(os.path.basename(reference))[0]
        for name, family in families.items():
            template_path = os.path.join(scratch, f"{tag}.{name}.jinja")
            with open(template_path, "w", encoding="utf-8") as f:
                f.write(family["template"])
            for i, case in enumerate(family["cases"]):
                context = dict(messages=case["messages"],
                               add_generation_prompt=case["add_generation_prompt"],
                               bos_token=family["bos_token"], eos_token=family["eos_token"])
                context.update(case.get("extra", {}))
                context_path = os.path.join(scratch, f"{tag}.{name}.{i}.json")
                with open(context_path, "w", encoding="utf-8") as f:
                    json.dump(context, f, ensure_ascii=False)
                jobs.append((f"{tag}/{name} case {i}", template_path, context_path, case))
    # Each case is a process of its own: run them side by side.
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        problems = list(pool.map(lambda job: check_case(llmc, *job[1:]), jobs))
    failed = 0
    for (label, _, _, _), problem in zip(jobs, problems):
        if problem:
            failed += 1
            print(f"FAIL {label}: {problem}")
    print(f"chat templates: {len(jobs) - failed}/{len(jobs)} cases match jinja2")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
