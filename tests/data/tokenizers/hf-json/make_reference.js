// make_reference.js — writes reference.json: the ids Hugging Face tokenizers
// (the npm package "tokenizers", its native binding of the Rust library)
// gives for tricky strings with the tokenizer.json files beside this
// script, and the text its decode gives back. Not run by the tests; rerun
// by hand:  npm install tokenizers@0.23.2 && node make_reference.js
"use strict";
const fs = require("fs");
const path = require("path");
const { Tokenizer } = require("tokenizers");

const texts = [
  "Hello world", " Hello world", "Hello  world", "   leading spaces", "trailing spaces   ",
  "tab\there", "new\nline\n\n\ndouble", "\r\n", "I'm can't we'll they've 'RE you sure?",
  "3.14159 and 1234567890", "numbers 1 12 123 1234 12345", "UPPER lower MiXeD",
  "emoji 🦙🦙 and 😀👍🏽 😶‍🌫️", "naïve café résumé", "日本語のテキスト", "中文分词测试", "한국어 텍스트",
  "Ελληνικά", "Привет мир", "العربية", "កាន់តែពិសេសអាច", "Cửa Việt",
  "code: def f(x):\n    return x**2  # comment", "if (a[i] != b->c) { return -1; }",
  "        eight spaces", "a                                b", "ＦＵＬＬ width", "zero\u200bwidth",
  "!!!???...,,,", "------=======", "<s> looks special", "<|endoftext|>end", "<|user|>\nhi<|end|>\n<|assistant|>",
  "", " ", "\n", "a",
];

async function main() {
  const out = {
    _note: "ids: Hugging Face tokenizers 0.23.2 (npm tokenizers), encode(text, null, {addSpecialTokens: false}) " +
      "(special-token text is parsed); decoded: decode(ids, false)",
  };
  // llama2/tokenizer.json is left out: this version refuses its merges "   " and
  // "     " (tokens that hold spaces), which llmc reads.
  for (const name of ["phi-3", "phi-2", "falcon-tokenizer"]) {
    const tok = Tokenizer.fromFile(path.join(__dirname, name, "tokenizer.json"));
    out[name] = [];
    for (const text of texts) {
      const enc = await tok.encode(text, null, { addSpecialTokens: false });
      const ids = enc.getIds();
      out[name].push({ text, ids, decoded: await tok.decode(ids, false) });
    }
  }
  fs.writeFileSync(path.join(__dirname, "reference.json"), JSON.stringify(out, null, 1) + "\n");
}
main();
