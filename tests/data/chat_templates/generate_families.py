#!/usr/bin/env python3
"""Re-renders the expected outputs in families.json with jinja2.

families.json holds chat templates of the common model families and the
conversations each is rendered with; the expected text ("rendered") or the
exception ("error", "exception") of every case is what jinja2 produces under
Hugging Face's settings, reproduced here from transformers'
_compile_jinja_template: ImmutableSandboxedEnvironment(trim_blocks=True,
lstrip_blocks=True, extensions=[loopcontrols] + AssistantTracker's
{% generation %}), raise_exception, strftime_now and its tojson filter.

llmc's tests never run this (they read families.json); it is how the file
was made, kept so that the expectations can be checked or extended:

    python3 tests/data/chat_templates/generate_families.py   # needs jinja2 3.1
"""
import json
import os
import sys
from datetime import datetime

import jinja2
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "families.json")


class Generation(Extension):
    """Hugging Face's AssistantTracker, minus the tracking: renders the body."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def strftime_now(fmt):
    return datetime.now().strftime(fmt)


def main():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols, Generation])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    with open(PATH, encoding="utf-8") as f:
        families = json.load(f)
    for family in families.values():
        template = env.from_string(family["template"])
        for case in family["cases"]:
            for key in ("rendered", "error", "exception"):
                case.pop(key, None)
            context = dict(messages=case["messages"],
                           add_generation_prompt=case["add_generation_prompt"],
                           bos_token=family["bos_token"], eos_token=family["eos_token"])
            context.update(case["extra"])
            try:
                case["rendered"] = template.render(**context)
            except Exception as e:  # the expectation is the exception itself
                case["error"] = str(e)
                case["exception"] = type(e).__name__
    with open(PATH, "w", encoding="utf-8") as f:
        json.dump(families, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"jinja2 {jinja2.__version__}: re-rendered {sum(len(f['cases']) for f in families.values())} cases",
          file=sys.stderr)


if __name__ == "__main__":
    main()
